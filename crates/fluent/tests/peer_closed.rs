//! Regression for the Python original's issue #77: a connection the server (or a load
//! balancer) closed while idle is detected before writing, so even without acks the next
//! batch is not written into a dead socket.
#![allow(clippy::unwrap_used)]

mod common;

use common::{WAIT, assert_clean, fast, receiver};
use logship_fluent::FluentLayer;
use tracing_subscriber::prelude::*;

#[test]
fn idle_connection_closed_by_the_peer_is_replaced() {
    let first = receiver().start().unwrap();
    let port = first.port();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(format!("127.0.0.1:{port}"))
        .with_require_ack(false)
        .with_pipeline(fast)
        .build()
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    tracing::info!("one");
    guard.flush(WAIT).unwrap();
    assert!(first.wait_for_events(1, WAIT));
    // The server goes away while our connection idles; another one takes its port.
    drop(first);
    let second = receiver().with_port(port).start().unwrap();
    tracing::info!("two");
    guard.flush(WAIT).unwrap();
    assert!(second.wait_for_events(1, WAIT));
    assert_eq!(
        second.events()[0].field("message").unwrap().as_str(),
        Some("two")
    );
    let s = guard.stats();
    assert_eq!((s.delivered, s.undelivered(), s.retries), (2, 0, 0));
    assert_clean(&second);
}
