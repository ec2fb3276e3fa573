//! Secrets and TLS, for every backend (issue 9, "secrets"):
//!
//! * application keys, tokens, passwords, shared keys and API keys never appear in `Debug` of
//!   the builders, layers and guards, in build errors, in `Stats` (`last_error` included), in
//!   flush errors, or in the reasons handed to the undelivered callback — also when the server
//!   refuses them;
//! * TLS verification is on by default: a server with a self-signed certificate is refused
//!   (the handshake fails at the client), and turning verification off is an explicit setting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use logship_core::{BreakerConfig, Guard, PipelineBuilder, RetryPolicy};
use logship_testkit::fluent::{FluentReceiver, TlsIdentity};
use logship_testkit::wait_until;
use tracing_subscriber::prelude::*;

const WAIT: Duration = Duration::from_secs(30);
/// Every secret used here contains this marker; no output may.
const MARK: &str = "S3CR3T";

fn secret(what: &str) -> String {
    format!("{MARK}-{what}-0123456789")
}

/// Everything a user can see of a pipeline, concatenated, for one search.
#[derive(Default, Clone)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn push(&self, what: &str, text: String) {
        self.0.lock().unwrap().push(format!("{what}: {text}"));
    }
    /// Quick retries, two attempts, and an undelivered callback that records every reason.
    fn pipeline(&self) -> impl FnOnce(PipelineBuilder) -> PipelineBuilder + Send + 'static {
        let me = self.clone();
        move |p: PipelineBuilder| {
            p.with_linger(Duration::from_millis(20))
                .with_span_timings(false)
                .with_breaker(BreakerConfig::disabled())
                .with_send_timeout(Duration::from_secs(5))
                .with_retry(
                    RetryPolicy::default()
                        .with_initial_delay(Duration::from_millis(1))
                        .with_max_delay(Duration::from_millis(5))
                        .with_max_attempts(Some(2)),
                )
                .with_undelivered_callback(move |u| {
                    me.push("undelivered reason", format!("{:?}", u.reason));
                    me.push("undelivered cause", format!("{:?}", u.cause));
                })
        }
    }
    /// Emits one event, flushes, shuts down, and records everything observable on the way.
    fn drive(
        &self,
        layer: impl tracing_subscriber::Layer<tracing_subscriber::Registry>
        + Send
        + Sync
        + std::fmt::Debug,
        guard: Guard,
    ) {
        self.push("layer", format!("{layer:?}"));
        self.push("guard", format!("{guard:?}"));
        {
            let _d = tracing_subscriber::registry().with(layer).set_default();
            tracing::info!(user = "alice", "login");
        }
        match guard.flush(WAIT) {
            Ok(r) => self.push("flush report", format!("{r:?}")),
            Err(e) => self.push("flush error", format!("{e} / {e:?}")),
        }
        let s = guard.stats();
        self.push("stats", format!("{s:?}"));
        self.push("last_error", format!("{:?}", s.last_error));
        match guard.shutdown(Duration::from_secs(2)) {
            Ok(r) => self.push("shutdown report", format!("{r:?}")),
            Err(e) => self.push("shutdown error", format!("{e} / {e:?}")),
        }
    }
    fn assert_clean(&self, backend: &str) {
        let all = self.0.lock().unwrap().clone();
        for line in &all {
            assert!(
                !line.contains(MARK),
                "{backend}: a secret leaked into {line}"
            );
        }
    }
    fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// `Display`, `Debug` and every `source()` of an error.
fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = format!("{e} / {e:?}");
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(&format!(" / {s} / {s:?}"));
        cur = s.source();
    }
    out
}

// ---- secrets ------------------------------------------------------------------------------------

#[test]
fn fluent_shared_key_and_password_stay_secret() {
    let r = FluentReceiver::builder()
        .with_shared_key("the-right-key")
        .with_user("alice", "the-right-password")
        .start()
        .unwrap();
    let seen = Seen::default();
    let b = logship_fluent::FluentLayer::builder("app")
        .with_server(r.addr().unwrap().to_string())
        .with_shared_key(secret("shared-key"))
        .with_credentials("alice", secret("password"))
        .with_tls(
            logship_fluent::TlsOptions::new().with_client_cert_pem("not a cert", secret("tls-key")),
        )
        .with_pipeline(seen.pipeline());
    seen.push("builder", format!("{b:?}"));
    // The client key is not PEM: the build error must not quote it.
    match b.build() {
        Ok(_) => panic!("a bogus client key must not build"),
        Err(e) => seen.push("build error", error_text(&e)),
    }
    let (layer, guard) = logship_fluent::FluentLayer::builder("app")
        .with_server(r.addr().unwrap().to_string())
        .with_shared_key(secret("shared-key"))
        .with_credentials("alice", secret("password"))
        .with_pipeline(seen.pipeline())
        .build()
        .unwrap();
    seen.drive(layer, guard);
    assert!(r.stats().handshake_failures >= 1, "the key was refused");
    assert!(seen.text().contains("undelivered"), "{}", seen.text());
    seen.assert_clean("fluent");
}

#[test]
fn jkool_http_token_stays_secret() {
    let jk = logship_testkit::jkool::JkoolReceiver::builder()
        .with_token("the-right-token")
        .start()
        .unwrap();
    let seen = Seen::default();
    let b = logship_jkool_http::JkoolHttpLayer::builder(secret("token"))
        .with_base_url(jk.url())
        .with_pipeline(seen.pipeline());
    seen.push("builder", format!("{b:?}"));
    let (layer, guard) = b.build().unwrap();
    seen.drive(layer, guard);
    assert!(jk.counters().auth_failures >= 1, "the token was refused");
    for auth in [
        logship_jkool_http::JkoolAuth::TokenHeader,
        logship_jkool_http::JkoolAuth::Handshake,
    ] {
        let (layer, guard) = logship_jkool_http::JkoolHttpLayer::builder(secret("token"))
            .with_base_url(jk.url())
            .with_auth(auth)
            .with_pipeline(seen.pipeline())
            .build()
            .unwrap();
        seen.drive(layer, guard);
    }
    // A token that cannot be a header value is refused without quoting it.
    match logship_jkool_http::JkoolHttpLayer::builder(format!("{}\n", secret("token")))
        .with_base_url(jk.url())
        .build()
    {
        Ok(_) => panic!("a token with a newline must not build"),
        Err(e) => seen.push("build error", error_text(&e)),
    }
    seen.assert_clean("jkool-http");
}

#[test]
fn jkool_http_credentials_in_the_url_stay_secret() {
    let jk = logship_testkit::jkool::JkoolReceiver::start().unwrap();
    let seen = Seen::default();
    let url = jk.url().replace(
        "http://",
        &format!("http://user:{}@", secret("url-password")),
    );
    let b = logship_jkool_http::JkoolHttpLayer::builder("tok")
        .with_base_url(url)
        .with_pipeline(seen.pipeline());
    seen.push("builder", format!("{b:?}"));
    match b.build() {
        Ok((layer, guard)) => seen.drive(layer, guard),
        Err(e) => seen.push("build error", error_text(&e)),
    }
    seen.assert_clean("jkool-http");
}

#[test]
fn jkool_mqtt_password_stays_secret() {
    let seen = Seen::default();
    // Nothing listens on this port: connection errors end up in the stats.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let b = logship_jkool_mqtt::JkoolMqttLayer::builder(format!("mqtt://127.0.0.1:{port}"))
        .with_credentials("alice", secret("mqtt-password"))
        .with_pipeline(seen.pipeline());
    seen.push("builder", format!("{b:?}"));
    let (layer, guard) = b.build().unwrap();
    seen.drive(layer, guard);
    for url in [
        format!("mqtt://alice:{}@127.0.0.1:{port}", secret("url-password")),
        format!("mqtts://alice:{}@127.0.0.1:{port}", secret("url-password")),
        format!("ftp://alice:{}@127.0.0.1:{port}", secret("url-password")),
    ] {
        let b = logship_jkool_mqtt::JkoolMqttLayer::builder(url).with_pipeline(seen.pipeline());
        seen.push("builder", format!("{b:?}"));
        match b.build() {
            Ok((layer, guard)) => seen.drive(layer, guard),
            Err(e) => seen.push("build error", error_text(&e)),
        }
    }
    seen.assert_clean("jkool-mqtt");
}

#[test]
fn kusto_application_key_token_and_connection_string_stay_secret() {
    use logship_testkit::kusto::{DEFAULT_CLIENT_ID, KustoReceiver};
    let r = KustoReceiver::builder()
        .with_auto_create(true)
        .start()
        .unwrap();
    let seen = Seen::default();
    // A wrong application key: the token endpoint refuses it.
    let b = logship_kusto::KustoLayer::builder()
        .with_cluster(r.url())
        .with_database("db")
        .with_table("T")
        .with_application_key(DEFAULT_CLIENT_ID, secret("app-key"), "contoso")
        // The receiver is the login endpoint too (not a Microsoft Entra host).
        .with_login_endpoint(r.url())
        .with_ingestion_mode(logship_kusto::IngestionMode::Streaming)
        .with_pipeline(seen.pipeline());
    seen.push("builder", format!("{b:?}"));
    let (layer, guard) = b.build().unwrap();
    seen.drive(layer, guard);
    assert!(r.stats().token_failures >= 1, "the key was refused");
    // A token the service does not know.
    let (layer, guard) = logship_kusto::KustoLayer::builder()
        .with_cluster(r.url())
        .with_database("db")
        .with_table("T")
        .with_token(secret("token"))
        .with_ingestion_mode(logship_kusto::IngestionMode::Streaming)
        .with_pipeline(seen.pipeline())
        .build()
        .unwrap();
    seen.drive(layer, guard);
    assert!(r.stats().auth_failures >= 1, "the token was refused");
    // Connection strings: a valid one (Debug of the builder), broken ones (the errors).
    let key = secret("cs-key");
    for cs in [
        format!(
            "Data Source={};Initial Catalog=db;AAD Federated Security=True;Application Client Id={DEFAULT_CLIENT_ID};Application Key={key};Authority Id=contoso",
            r.url()
        ),
        format!(
            "Data Source={};Application Key={key};Bogus Keyword=1",
            r.url()
        ),
        format!(
            "Data Source={};Application Key={key};Password={key}",
            r.url()
        ),
        format!(
            "Data Source={};Application Key={key};Application Key",
            r.url()
        ),
        format!("Application Key={key};Data Source"),
        key.clone(),
        format!("Application Token={key};Data Source=ftp://{key}@x"),
    ] {
        match logship_kusto::KustoBuilder::from_connection_string(&cs) {
            Ok(b) => {
                seen.push("builder", format!("{b:?}"));
                match b.with_table("T").with_pipeline(seen.pipeline()).build() {
                    Ok((layer, guard)) => seen.drive(layer, guard),
                    Err(e) => seen.push("build error", error_text(&e)),
                }
            }
            Err(e) => seen.push("connection string error", error_text(&e)),
        }
    }
    seen.assert_clean("kusto");
}

#[test]
fn ecs_passwords_and_api_keys_stay_secret() {
    use logship_testkit::es::{EsAuth, EsReceiver};
    let es = EsReceiver::builder()
        .with_auth(EsAuth::basic("elastic", "the-right-password"))
        .start()
        .unwrap();
    let seen = Seen::default();
    let url = es.url();
    let builders = [
        logship_ecs_metrics::EcsLayer::builder(url.as_str())
            .with_credentials("elastic", secret("password")),
        logship_ecs_metrics::EcsLayer::builder(url.as_str()).with_api_key("id", secret("api-key")),
        logship_ecs_metrics::EcsLayer::builder(url.as_str())
            .with_encoded_api_key(secret("encoded-api-key")),
        logship_ecs_metrics::EcsLayer::builder(url.as_str()).with_bearer_token(secret("bearer")),
        logship_ecs_metrics::EcsLayer::builder(
            url.replace(
                "http://",
                &format!("http://elastic:{}@", secret("url-password")),
            )
            .as_str(),
        ),
    ];
    for b in builders {
        let b = b
            .with_log_events(true)
            .with_host_fields(false)
            .with_pipeline(seen.pipeline());
        seen.push("builder", format!("{b:?}"));
        match b.build() {
            Ok((layer, guard)) => seen.drive(layer, guard),
            Err(e) => seen.push("build error", error_text(&e)),
        }
    }
    assert!(
        es.counters().auth_failures >= 1,
        "the credentials were refused"
    );
    // A credential that cannot be a header value is refused without quoting it.
    match logship_ecs_metrics::EcsLayer::builder(url.as_str())
        .with_bearer_token(format!("{}\n", secret("bearer")))
        .build()
    {
        Ok(_) => panic!("a token with a newline must not build"),
        Err(e) => seen.push("build error", error_text(&e)),
    }
    seen.assert_clean("ecs");
}

// ---- TLS verification on by default -------------------------------------------------------------

/// A TLS server with a self-signed certificate (the Fluent receiver; the other backends fail
/// at the handshake, before their protocol starts).
fn tls_server() -> FluentReceiver {
    FluentReceiver::builder()
        .with_tls(TlsIdentity::self_signed().unwrap())
        .start()
        .unwrap()
}

/// Ships one event with `layer` and returns the stats once the send attempts are over.
fn ship(
    layer: impl tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync,
    guard: Guard,
) -> logship_core::Stats {
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("over tls");
    }
    let _ = guard.flush(Duration::from_secs(10));
    let s = guard.stats();
    let _ = guard.shutdown(Duration::from_secs(2));
    s
}

fn quick(p: PipelineBuilder) -> PipelineBuilder {
    p.with_linger(Duration::from_millis(20))
        .with_span_timings(false)
        .with_send_timeout(Duration::from_secs(5))
        .with_retry(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(1))
                .with_max_attempts(Some(2)),
        )
}

/// Builds a layer of `backend` to `https`/`tls`/`mqtts` on `port`, verifying (default) or not.
fn tls_layer(
    backend: &str,
    port: u16,
    insecure: bool,
) -> (
    Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>,
    Guard,
) {
    match backend {
        "fluent" => {
            let tls = logship_fluent::TlsOptions::new().danger_accept_invalid_certs(insecure);
            let (l, g) = logship_fluent::FluentLayer::builder("app")
                .with_server(format!("tls://127.0.0.1:{port}"))
                .with_tls(tls)
                .with_pipeline(quick)
                .build()
                .unwrap();
            (Box::new(l), g)
        }
        "jkool-http" => {
            let mut b = logship_jkool_http::JkoolHttpLayer::builder("tok")
                .with_base_url(format!("https://127.0.0.1:{port}/JESL"))
                .with_pipeline(quick);
            if insecure {
                b = b.with_tls(
                    logship_jkool_http::TlsOptions::default().danger_accept_invalid_certs(true),
                );
            }
            let (l, g) = b.build().unwrap();
            (Box::new(l), g)
        }
        "jkool-mqtt" => {
            let mut b =
                logship_jkool_mqtt::JkoolMqttLayer::builder(format!("mqtts://127.0.0.1:{port}"))
                    .with_pipeline(quick);
            if insecure {
                b = b.with_tls(
                    logship_jkool_mqtt::TlsOptions::default().danger_accept_invalid_certs(true),
                );
            }
            let (l, g) = b.build().unwrap();
            (Box::new(l), g)
        }
        "kusto" => {
            let (l, g) = logship_kusto::KustoLayer::builder()
                .with_cluster(format!("https://127.0.0.1:{port}"))
                .with_database("db")
                .with_table("T")
                .with_token("tok")
                .with_ingestion_mode(logship_kusto::IngestionMode::Streaming)
                .with_tls(logship_kusto::TlsOptions::new().danger_accept_invalid_certs(insecure))
                .with_pipeline(quick)
                .build()
                .unwrap();
            (Box::new(l), g)
        }
        "ecs" => {
            let (l, g) = logship_ecs_metrics::EcsLayer::builder(
                format!("https://127.0.0.1:{port}").as_str(),
            )
            .with_log_events(true)
            .with_tls(logship_ecs_metrics::TlsOptions::new().danger_accept_invalid_certs(insecure))
            .with_pipeline(quick)
            .build()
            .unwrap();
            (Box::new(l), g)
        }
        other => panic!("{other}"),
    }
}

const BACKENDS: [&str; 5] = ["fluent", "jkool-http", "jkool-mqtt", "kusto", "ecs"];

#[test]
fn tls_verification_is_on_by_default_for_every_backend() {
    for backend in BACKENDS {
        let server = tls_server();
        let (layer, guard) = tls_layer(backend, server.port(), false);
        let s = ship(layer, guard);
        assert_eq!(s.delivered, 0, "{backend}: {s:#?}");
        assert!(
            wait_until(WAIT, || server.stats().tls_failures >= 1),
            "{backend}: the client must abort the handshake: {:?} {s:#?}",
            server.errors()
        );
        assert_eq!(server.stats().events, 0, "{backend}");
        eprintln!(
            "{backend}: refused a self-signed server: {:?}",
            s.last_error
        );
    }
}

#[test]
fn turning_tls_verification_off_is_explicit_and_works() {
    for backend in BACKENDS {
        let server = tls_server();
        let (layer, guard) = tls_layer(backend, server.port(), true);
        let s = ship(layer, guard);
        assert!(
            wait_until(WAIT, || server.stats().connections >= 1),
            "{backend}: {s:#?}"
        );
        assert_eq!(
            server.stats().tls_failures,
            0,
            "{backend}: the handshake succeeds without verification: {:?}",
            server.errors()
        );
        if backend == "fluent" {
            assert_eq!((s.delivered, server.stats().events), (1, 1), "{s:#?}");
        }
    }
}
