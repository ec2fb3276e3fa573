//! Delivered/s of the Kusto layer (streaming ingestion, no authentication) to a light counting
//! streaming-ingestion receiver in the
//! same process, with a flat-out caller on this thread (default pipeline settings: the queue
//! fills, the excess is dropped and counted), measured at the receiver over the emitting window.
//!
//! `cargo run --release -p logship-kusto --example throughput_lite -- [secs]`
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../../http/examples/support/mod.rs"]
mod support;

use tracing_subscriber::prelude::*;

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5.0);
    let c = support::Counter::start(support::Api::Kusto, Some(gunzip));
    let (layer, guard) = logship_kusto::KustoLayer::builder()
        .with_cluster(format!("http://{}", c.addr))
        .with_database("logs")
        .with_table("Events")
        .with_no_authentication()
        .with_ingestion_mode(logship_kusto::IngestionMode::Streaming)
        .with_create_table(true)
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let docs = c.docs.clone();
    let req = c.requests.clone();
    let h = guard.handle();
    support::flat_out(
        "kusto",
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

fn gunzip(body: &[u8], out: &mut Vec<u8>) -> bool {
    use std::io::Read;
    flate2::read::GzDecoder::new(body).read_to_end(out).is_ok()
}
