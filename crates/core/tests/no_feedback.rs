//! Regression test: a sink whose own code logs (as reqwest, hyper, h2, rustls and rumqttc do)
//! must not feed those events back into logship layers. Its own binary, because it installs
//! a *global* subscriber: the worker thread must see it, as in a real application.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use logship_core::testing::MemorySink;
use logship_core::{Batch, Outcome, PipelineBuilder, SendContext, Sink};
use tracing_subscriber::prelude::*;

static SINK_LOGGED: AtomicU64 = AtomicU64::new(0);

struct Chatty(MemorySink);

impl Sink for Chatty {
    fn name(&self) -> &'static str {
        "chatty"
    }
    async fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> Outcome {
        tracing::trace!(target: "hyper::proto", "writing {} records", batch.len());
        tracing::error!(target: "rustls", "pretend handshake trouble");
        let span = tracing::info_span!("h2 stream");
        let _e = span.enter();
        tracing::info!("inside a dependency span");
        // Also from a thread the worker's runtime starts (DNS lookups run there).
        tokio::task::spawn_blocking(|| tracing::warn!(target: "reqwest", "blocking pool"))
            .await
            .ok();
        SINK_LOGGED.fetch_add(4, Ordering::Relaxed);
        self.0.send(batch, cx).await
    }
}

#[test]
fn exporter_telemetry_never_reaches_logship_layers() {
    let (inner, received) = MemorySink::new();
    let (layer, guard) = PipelineBuilder::new().build(Chatty(inner)).unwrap();
    tracing_subscriber::registry()
        .with(layer.with_filter(tracing_subscriber::filter::LevelFilter::TRACE))
        .init();
    for i in 0..3 {
        tracing::info!(i, "application event");
    }
    guard.flush(Duration::from_secs(10)).unwrap();
    guard.flush(Duration::from_secs(10)).unwrap();
    assert!(SINK_LOGGED.load(Ordering::Relaxed) >= 4, "the sink did log");
    let messages: Vec<String> = received
        .records()
        .iter()
        .map(|r| r.message().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        messages, ["application event"; 3],
        "no self-generated record arrived"
    );
    assert_eq!(guard.stats().dropped(), 0);
}
