//! `unix:///path` addresses.
#![allow(clippy::unwrap_used)]

mod common;

use common::{WAIT, assert_clean, fast, receiver};
use logship_fluent::FluentLayer;
use tracing_subscriber::prelude::*;

#[test]
fn delivers_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fluent.sock");
    let r = receiver().with_unix_socket(&path).start().unwrap();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(format!("unix://{}", path.display()))
        .with_pipeline(fast)
        .build()
        .unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::warn!(code = 7_u64, "via unix");
    }
    guard.flush(WAIT).unwrap();
    assert!(r.wait_for_events(1, WAIT));
    assert_eq!(r.events()[0].field("code").unwrap().as_u64(), Some(7));
    assert_eq!(guard.stats().delivered, 1);
    assert_eq!(r.stats().acks_sent, 1);
    assert_clean(&r);
}
