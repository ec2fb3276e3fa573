//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use logship_core::{BreakerConfig, PipelineBuilder, RetryPolicy};
use logship_testkit::fluent::{FluentEvent, FluentReceiver, FluentReceiverBuilder, NilPolicy};

/// Deadline for every wait: generous, since the machine is shared.
pub const WAIT: Duration = Duration::from_secs(20);

/// A receiver that behaves like Fluent Bit on `nil` (closes), so any keep-alive would show.
pub fn receiver() -> FluentReceiverBuilder {
    FluentReceiver::builder().with_nil_policy(NilPolicy::Close)
}

/// `127.0.0.1:<port>` of a TCP receiver.
pub fn addr(r: &FluentReceiver) -> String {
    r.addr().unwrap().to_string()
}

/// Quick retries and no breaker, so fault tests finish fast; long linger so the test decides
/// when batches go (with `flush`).
pub fn fast(p: PipelineBuilder) -> PipelineBuilder {
    p.with_linger(Duration::from_secs(30))
        .with_retry(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(5))
                .with_max_delay(Duration::from_millis(50))
                .with_max_attempts(Some(20)),
        )
        .with_breaker(BreakerConfig::disabled())
}

/// Events that were not resends.
pub fn unique(r: &FluentReceiver) -> Vec<FluentEvent> {
    r.events().into_iter().filter(|e| !e.duplicate).collect()
}

/// The receiver saw no protocol error, no nil, and no record with a key twice.
pub fn assert_clean(r: &FluentReceiver) {
    let s = r.stats();
    assert_eq!(s.protocol_errors, 0, "{:?}", r.errors());
    assert_eq!(s.nil_keepalives, 0, "a nil keep-alive was sent");
    assert_eq!(s.records_with_repeated_keys, 0, "a record held a key twice");
}
