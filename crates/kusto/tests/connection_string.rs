//! Connection strings: the keywords and aliases, and errors that name the wrong keyword.

mod support;

use std::time::Duration;

use logship_kusto::{ConnectionStringError, IngestionMode, KustoLayer};
use logship_testkit::kusto::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use support::*;
use tracing_subscriber::prelude::*;

#[test]
fn a_connection_string_is_enough_to_ship() {
    let r = receiver();
    let cs = format!(
        "Data Source={};Initial Catalog={DB};AAD Federated Security=True;Application Client Id={DEFAULT_CLIENT_ID};\
         Application Key={DEFAULT_CLIENT_SECRET};Authority Id=contoso.onmicrosoft.com",
        r.url()
    );
    let (layer, guard) = KustoLayer::from_connection_string(&cs)
        .expect("valid connection string")
        .with_table(TABLE)
        // The receiver's metadata names itself (plain http) as login endpoint: not a
        // Microsoft Entra authority host, so it must be named explicitly.
        .with_login_endpoint(r.url())
        .with_ingestion_mode(IngestionMode::Streaming)
        .build()
        .expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("hello");
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 1, WAIT));
    assert_eq!(guard.stats().delivered, 1);
}

#[test]
fn errors_say_which_keyword_is_wrong() {
    let cases = [
        ("Data Source=https://x;Initial Catalg=db", "Initial Catalg"),
        (
            "Data Source=https://x;AAD Federated Security=perhaps",
            "AAD Federated Security",
        ),
        ("Data Source=not a url", "Data Source"),
        (
            "Data Source=https://x;Application Client Id=a;Application Key=k",
            "Authority Id",
        ),
        ("Data Source=https://x;User ID=u;Password=p", "User ID"),
        ("Initial Catalog=db", "Data Source"),
    ];
    for (cs, keyword) in cases {
        let e = KustoLayer::from_connection_string(cs).expect_err(cs);
        let msg = e.to_string();
        assert!(msg.contains(&format!("`{keyword}`")), "{cs}: {msg}");
    }
    assert!(matches!(
        KustoLayer::from_connection_string("Data Source=https://x;Fed=True;Fed=False"),
        Err(ConnectionStringError::Duplicate { .. })
    ));
}

#[test]
fn secrets_never_show_in_errors_or_debug() {
    let e = KustoLayer::from_connection_string("Data Source=https://x;AppKey=hunter2;Tenant=t")
        .expect_err("error");
    assert!(!format!("{e} {e:?}").contains("hunter2"));
    let b = KustoLayer::from_connection_string(
        "Data Source=https://x;AppClientId=a;AppKey=hunter2;Tenant=t",
    )
    .expect("ok");
    assert!(!format!("{b:?}").contains("hunter2"));
}
