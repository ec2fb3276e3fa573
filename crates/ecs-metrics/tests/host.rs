//! `host.id`: the machine id (or the host name where there is none), read on the worker
//! thread; `with_host_id` replaces it and is checked by `build()`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use logship_ecs_metrics::{EcsError, EcsLayer};
use logship_testkit::es::EsReceiver;

use common::{WAIT, fast, metric};

fn machine_id() -> Option<String> {
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_ascii_lowercase())
        .find(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn host_id_is_the_machine_id_or_the_host_name() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = EcsLayer::builder(es.url().as_str())
        .with_pipeline(fast)
        .build()
        .unwrap();
    layer.log_time_metric("m", SystemTime::now(), Duration::from_millis(1));
    guard.flush(WAIT).unwrap();
    let host = &metric(&es, "m").source["host"];
    let name = hostname::get().unwrap().into_string().unwrap();
    assert_eq!(host["name"], name.as_str());
    let want = machine_id().unwrap_or(name);
    assert_eq!(host["id"], want.as_str(), "{host}");
}

#[test]
fn with_host_id_replaces_it_even_without_host_fields() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = EcsLayer::builder(es.url().as_str())
        .with_host_fields(false)
        .with_host_id("  i-0abc123  ")
        .with_pipeline(fast)
        .build()
        .unwrap();
    layer.log_time_metric("m", SystemTime::now(), Duration::from_millis(1));
    guard.flush(WAIT).unwrap();
    let host = &metric(&es, "m").source["host"];
    assert_eq!(host, &serde_json::json!({"id": "i-0abc123"}));
}

#[test]
fn an_empty_or_huge_host_id_fails_at_build() {
    for bad in [" ".to_string(), "x".repeat(1025)] {
        let err = EcsLayer::builder("http://127.0.0.1:9200")
            .with_host_id(bad)
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            EcsError::InvalidSetting {
                setting: "with_host_id",
                ..
            }
        ));
        assert!(
            err.to_string()
                .contains("non-empty id of at most 1024 bytes"),
            "{err}"
        );
    }
}
