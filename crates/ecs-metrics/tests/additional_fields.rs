//! Static additional fields and fields read from environment variables per document (the
//! original's `es_additional_fields` / `es_additional_fields_in_env`).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use logship_testkit::es::EsReceiver;
use serde_json::json;

use common::{WAIT, builder, metric};

#[test]
fn env_fields_override_static_ones_and_missing_variables_keep_them() {
    // `std::env::set_var` needs `unsafe` (forbidden in this workspace): use variables cargo
    // sets for every test process.
    let pkg = std::env::var("CARGO_PKG_NAME").unwrap();
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es)
        .with_additional_fields(json!({
            "App": "static-app",
            "Environment": "static-env",
            "Nested": {"One": "static-one", "Two": "static-two"},
            "service": {"node": {"name": "node-1"}},
            "event": {"kind": "not-this", "module": "shop"}
        }))
        .with_additional_fields_from_env(json!({
            "App": "CARGO_PKG_NAME",
            "Environment": "LOGSHIP_TEST_SURELY_UNSET_VARIABLE",
            "Nested": {"One": "CARGO_MANIFEST_DIR"},
            "FromEnvOnly": "CARGO_PKG_NAME",
            "Missing": "LOGSHIP_TEST_SURELY_UNSET_VARIABLE"
        }))
        .with_service_name("shop")
        .build()
        .unwrap();
    layer.log_time_metric("with_extras", SystemTime::now(), Duration::from_millis(1));
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().delivered, 1);
    let src = metric(&es, "with_extras").source;
    assert_eq!(src["App"], pkg.as_str());
    assert_eq!(src["Environment"], "static-env");
    assert_eq!(src["Nested"], json!({"One": dir, "Two": "static-two"}));
    assert_eq!(src["FromEnvOnly"], pkg.as_str());
    assert!(src.get("Missing").is_none(), "{src}");
    // Merged into the generated objects; the layer's own fields win.
    assert_eq!(
        src["service"],
        json!({"name": "shop", "node": {"name": "node-1"}})
    );
    assert_eq!(src["event"]["kind"], "metric");
    assert_eq!(src["event"]["module"], "shop");
}
