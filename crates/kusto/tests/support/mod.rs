//! Shared helpers for the integration tests: a receiver with the logship table, a builder
//! pointed at it with fast retries, and an undelivered-records recorder.
#![allow(dead_code)]

pub mod hostile;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use logship_core::{RetryPolicy, undelivered::Cause};
use logship_kusto::{KustoBuilder, KustoLayer};
use logship_testkit::kusto::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, KustoReceiver, KustoReceiverBuilder,
};

pub const DB: &str = "logs";
pub const TABLE: &str = "Events";
pub const WAIT: Duration = Duration::from_secs(20);

/// The schema written out by hand (not taken from the crate), so a column the encoder
/// renames or retypes is caught.
pub const SCHEMA: [(&str, &str); 15] = [
    ("Timestamp", "datetime"),
    ("Level", "string"),
    ("Target", "string"),
    ("Message", "string"),
    ("Fields", "dynamic"),
    ("SpanName", "string"),
    ("Duration", "timespan"),
    ("SourceFqn", "string"),
    ("Correlators", "dynamic"),
    ("TrackingId", "string"),
    ("ParentTrackingId", "string"),
    ("Snapshots", "dynamic"),
    ("Host", "string"),
    ("Service", "string"),
    ("Thread", "string"),
];

/// A receiver builder with the table and the crate's default mapping.
pub fn receiver_builder() -> KustoReceiverBuilder {
    KustoReceiver::builder()
        .with_table(DB, TABLE, &SCHEMA)
        .with_command(
            DB,
            &logship_kusto::create_mapping_command(TABLE, logship_kusto::DEFAULT_MAPPING_NAME),
        )
}

pub fn receiver() -> KustoReceiver {
    receiver_builder().start().expect("receiver starts")
}

/// A builder for `r` with client credentials, fast retries and a short linger. The receiver
/// is also the login endpoint, named explicitly: its metadata's plain-http `LoginEndpoint`
/// would be refused (it is not a Microsoft Entra authority host).
pub fn builder(r: &KustoReceiver) -> KustoBuilder {
    KustoLayer::builder()
        .with_cluster(r.url())
        .with_database(DB)
        .with_table(TABLE)
        .with_application_key(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, "contoso")
        .with_login_endpoint(r.url())
        .with_host_name("test-host")
        .with_app_name("logship-kusto-tests")
        .with_user_name("tester")
        .with_pipeline(|p| {
            p.with_linger(Duration::from_millis(50)).with_retry(
                RetryPolicy::default()
                    .with_initial_delay(Duration::from_millis(10))
                    .with_max_delay(Duration::from_millis(50)),
            )
        })
}

/// Collects `(cause, reason, record count)` of undelivered groups.
pub type LostGroup = (Cause, Option<String>, usize);

#[derive(Clone, Default)]
pub struct Lost(pub Arc<Mutex<Vec<LostGroup>>>);

impl Lost {
    pub fn install(&self, b: KustoBuilder) -> KustoBuilder {
        let me = self.clone();
        b.with_pipeline(move |p| {
            p.with_undelivered_callback(move |u| {
                if let Ok(mut v) = me.0.lock() {
                    v.push((u.cause, u.reason.clone(), u.records.len()));
                }
            })
        })
    }
    pub fn get(&self) -> Vec<LostGroup> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}
