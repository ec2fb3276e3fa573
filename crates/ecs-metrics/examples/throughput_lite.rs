//! Delivered/s of the ECS layer (log events on) to a light counting `_bulk` receiver in the
//! same process, with a flat-out caller on this thread (default pipeline settings: the queue
//! fills, the excess is dropped and counted), measured at the receiver over the emitting window.
//!
//! `cargo run --release -p logship-ecs-metrics --example throughput_lite -- [secs]`
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../../http/examples/support/mod.rs"]
mod support;

use tracing_subscriber::prelude::*;

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5.0);
    let c = support::Counter::start(support::Api::EsBulk, None);
    let (layer, guard) = logship_ecs_metrics::EcsLayer::builder(format!("http://{}", c.addr))
        .with_log_events(true)
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let docs = c.docs.clone();
    let req = c.requests.clone();
    let h = guard.handle();
    support::flat_out(
        "ecs",
        &dispatch,
        secs,
        &move || docs.load(std::sync::atomic::Ordering::Relaxed),
        &move || {
            let s = h.stats();
            format!(
                "requests {}, layer dropped {}, undelivered {}",
                req.load(std::sync::atomic::Ordering::Relaxed),
                s.dropped(),
                s.undelivered()
            )
        },
    );
    drop(dispatch);
    let _ = guard.shutdown(std::time::Duration::from_secs(5));
}
