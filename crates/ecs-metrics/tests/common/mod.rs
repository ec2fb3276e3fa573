//! Shared helpers for the integration tests: fast pipeline settings and document lookups.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use logship_core::{BreakerConfig, RetryPolicy};
use logship_ecs_metrics::{EcsBuilder, EcsLayer};
use logship_testkit::es::{EsDocument, EsReceiver};
use serde_json::Value;

/// Generous bound for waits and flushes; tests never rely on it for speed.
pub const WAIT: Duration = Duration::from_secs(20);

/// A builder aimed at `es` with test-friendly pipeline settings: short linger, quick retries
/// (up to 20 attempts), no circuit breaker, no host fields.
pub fn builder(es: &EsReceiver) -> EcsBuilder {
    EcsLayer::builder(es.url().as_str())
        .with_host_fields(false)
        .with_pipeline(fast)
}

pub fn fast(p: logship_core::PipelineBuilder) -> logship_core::PipelineBuilder {
    p.with_linger(Duration::from_millis(20))
        .with_retry(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(5))
                .with_max_delay(Duration::from_millis(20))
                .with_max_attempts(Some(20)),
        )
        .with_breaker(BreakerConfig::disabled())
        .with_send_timeout(Duration::from_secs(10))
}

/// The sources of every document, with the name of the index they are in.
pub fn sources(es: &EsReceiver) -> Vec<(String, Value)> {
    es.documents()
        .into_iter()
        .map(|d: EsDocument| (d.index, d.source))
        .collect()
}

/// The single document whose `metrics.name` is `name`.
pub fn metric(es: &EsReceiver, name: &str) -> EsDocument {
    let found: Vec<EsDocument> = es
        .documents()
        .into_iter()
        .filter(|d| d.source["metrics"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "documents named {name}: {found:#?}");
    found.into_iter().next().unwrap()
}

/// Nanoseconds since the epoch of an RFC 3339 string.
pub fn nanos(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .timestamp_nanos_opt()
        .unwrap()
}
