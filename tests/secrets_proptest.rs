//! Credentials never show, for any secret text (issue 14): a sentinel secret of random text,
//! full of URL and connection-string delimiters (`#?/@:%;=`), is put where credentials go —
//! URL userinfo and queries, Kusto connection-string keys and their neighbours, Fluent
//! addresses, tokens, passwords, shared keys — and fed to every builder. Neither the sentinel
//! nor its fixed core may appear in the `Debug` of a builder, layer or guard, nor in a build
//! error (with its sources); for Fluent and Elasticsearch against a server that refuses
//! connections, nor in `Stats::last_error` nor in the dead-letter file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use logship_core::{BreakerConfig, Guard, PipelineBuilder, RetryPolicy};
use proptest::prelude::*;
use tracing_subscriber::prelude::*;

/// The fixed core of every sentinel: seeing it means some of a secret was shown.
const CORE: &str = "Zq9Xk";

/// A secret: random text around the core, with every delimiter that confuses parsers.
fn sentinel() -> impl Strategy<Value = String> {
    ("[A-Za-z0-9#?/@:%;=]{0,8}", "[A-Za-z0-9#?/@:%;=]{0,8}")
        .prop_map(|(a, b)| format!("{a}{CORE}{b}"))
}

/// A port on 127.0.0.1 where nothing listens: connections are refused at once.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Everything shown, for one search.
#[derive(Default)]
struct Shown(Vec<String>);

impl Shown {
    fn push(&mut self, what: &str, text: impl Into<String>) {
        self.0.push(format!("{what}: {}", text.into()));
    }
    fn error(&mut self, what: &str, e: &(dyn std::error::Error + 'static)) {
        let mut text = format!("{e} / {e:?}");
        let mut cur = e.source();
        while let Some(s) = cur {
            text.push_str(&format!(" / {s} / {s:?}"));
            cur = s.source();
        }
        self.push(what, text);
    }
    /// A built layer: its and its guard's `Debug`, then a short shutdown.
    fn built(&mut self, what: &str, layer: &dyn std::fmt::Debug, guard: Guard) {
        self.push(what, format!("{layer:?} / {guard:?}"));
        let _ = guard.shutdown(Duration::from_secs(2));
    }
    fn check(&self, secret: &str) -> Result<(), TestCaseError> {
        for line in &self.0 {
            prop_assert!(
                !line.contains(secret) && !line.contains(CORE),
                "secret {secret:?} shown in {line}"
            );
        }
        Ok(())
    }
}

/// Quick, short retries; no breaker; records that fail go to `dead_letters`.
fn quick(dead_letters: &Path) -> impl FnOnce(PipelineBuilder) -> PipelineBuilder + Send + 'static {
    let dir = dead_letters.to_path_buf();
    move |p: PipelineBuilder| {
        p.with_linger(Duration::from_millis(10))
            .with_span_timings(false)
            .with_loss_summary(false)
            .with_breaker(BreakerConfig::disabled())
            .with_send_timeout(Duration::from_secs(5))
            .with_retry(
                RetryPolicy::default()
                    .with_initial_delay(Duration::from_millis(1))
                    .with_max_delay(Duration::from_millis(5))
                    .with_max_attempts(Some(2)),
            )
            .with_dead_letter_dir(dir)
    }
}

/// Ships one event, waits for it to fail, and records `last_error` and the dead letters.
fn ship_and_fail(
    shown: &mut Shown,
    layer: impl tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync,
    guard: Guard,
    dead_letters: &Path,
) -> Result<(), TestCaseError> {
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!(user = "alice", "login");
    }
    let _ = guard.flush(Duration::from_secs(30));
    let stats = guard.stats();
    let _ = guard.shutdown(Duration::from_secs(2));
    prop_assert_eq!(stats.undelivered(), 1, "{:#?}", stats);
    prop_assert!(stats.dead_letter_written >= 1, "{:#?}", stats);
    let last = stats.last_error.clone().unwrap_or_default();
    prop_assert!(!last.is_empty());
    shown.push("last_error", last);
    shown.push("stats", format!("{stats:?}"));
    let mut files = 0;
    for entry in std::fs::read_dir(dead_letters).unwrap() {
        let path = entry.unwrap().path();
        shown.push("dead letter", std::fs::read_to_string(&path).unwrap());
        files += 1;
    }
    prop_assert!(files >= 1, "a dead-letter file was written");
    Ok(())
}

/// URLs (with and without a scheme) holding `secret` as a password, a user, or a query.
fn urls(scheme: &str, port: u16, secret: &str) -> Vec<String> {
    vec![
        format!("{scheme}://elastic:{secret}@127.0.0.1:{port}/"),
        format!("{scheme}://{secret}@127.0.0.1:{port}"),
        format!("{scheme}://elastic:{secret}@[::1]:{port}/p"),
        format!("{scheme}://127.0.0.1:{port}/p?token={secret}"),
        format!("elastic:{secret}@127.0.0.1:{port}"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn fluent_never_shows_a_secret(secret in sentinel()) {
        let port = closed_port();
        let mut shown = Shown::default();
        // Addresses with credentials: refused at build, and shown redacted.
        for address in [
            format!("tls://user:{secret}@127.0.0.1:{port}"),
            format!("tcp://{secret}@127.0.0.1:{port}"),
            format!("user:{secret}@127.0.0.1:{port}"),
            format!("user:{secret}@[::1]:{port}"),
        ] {
            let b = logship_fluent::FluentLayer::builder("app").with_server(address);
            shown.push("builder", format!("{b:?}"));
            match b.build() {
                Ok((layer, guard)) => shown.built("layer", &layer, guard),
                Err(e) => shown.error("build error", &e),
            }
        }
        // A shared key and a password, against a server that refuses connections.
        let dir = tempfile::tempdir().unwrap();
        let b = logship_fluent::FluentLayer::builder("app")
            .with_server(format!("127.0.0.1:{port}"))
            .with_shared_key(secret.as_str())
            .with_credentials("alice", secret.as_str())
            .with_pipeline(quick(dir.path()));
        shown.push("builder", format!("{b:?}"));
        let (layer, guard) = b.build().unwrap();
        shown.push("layer", format!("{layer:?} / {guard:?}"));
        ship_and_fail(&mut shown, layer, guard, dir.path())?;
        shown.check(&secret)?;
    }

    #[test]
    fn ecs_never_shows_a_secret(secret in sentinel()) {
        let port = closed_port();
        let mut shown = Shown::default();
        for url in urls("http", port, &secret) {
            let b = logship_ecs_metrics::EcsLayer::builder(url.as_str());
            shown.push("builder", format!("{b:?}"));
            match b.build() {
                Ok((layer, guard)) => shown.built("layer", &layer, guard),
                Err(e) => shown.error("build error", &e),
            }
        }
        // Basic auth, an API key and a token, against a server that refuses connections.
        let builders = [
            logship_ecs_metrics::EcsLayer::builder(format!("http://127.0.0.1:{port}").as_str())
                .with_credentials("elastic", secret.as_str()),
            logship_ecs_metrics::EcsLayer::builder(format!("http://127.0.0.1:{port}").as_str())
                .with_api_key("id", secret.as_str()),
            logship_ecs_metrics::EcsLayer::builder(format!("http://127.0.0.1:{port}").as_str())
                .with_bearer_token(secret.as_str()),
        ];
        for b in builders {
            let dir = tempfile::tempdir().unwrap();
            let b = b
                .with_log_events(true)
                .with_host_fields(false)
                .with_install_template(false)
                .with_pipeline(quick(dir.path()));
            shown.push("builder", format!("{b:?}"));
            match b.build() {
                Ok((layer, guard)) => {
                    shown.push("layer", format!("{layer:?} / {guard:?}"));
                    ship_and_fail(&mut shown, layer, guard, dir.path())?;
                }
                // A secret that cannot be a header value is refused: the error must not show it.
                Err(e) => shown.error("build error", &e),
            }
        }
        shown.check(&secret)?;
    }

    #[test]
    fn kusto_never_shows_a_secret(
        secret in sentinel(),
        neighbour in "(X|Bogus|Fed|Password|Data Source|AppKey|)[ =;]{0,2}[A-Za-z0-9#?/@:%;=]{0,6}",
        quoted in any::<bool>(),
    ) {
        let port = closed_port();
        let cluster = format!("http://127.0.0.1:{port}");
        let mut shown = Shown::default();
        let value = if quoted { format!("\"{secret}\"") } else { secret.clone() };
        let strings = [
            // The key, then a neighbour that may be read as the key's end.
            format!("Data Source={cluster};Fed=True;AppClientId=c;Tenant=t;AppKey={value};{neighbour}"),
            format!("Data Source={cluster};Application Key={value};{neighbour}=1"),
            format!("Data Source={cluster};Application Token={value};{neighbour}"),
            format!("Application Key={value};Data Source"),
            format!("Data Source={cluster};Password={value};{neighbour}"),
            // The secret in the cluster URL, quoted or not.
            format!("Data Source={};Fed=True;AppToken=t", if quoted {
                format!("\"http://u:{secret}@127.0.0.1:{port}\"")
            } else {
                format!("http://u:{secret}@127.0.0.1:{port}")
            }),
            format!("Data Source=\"{cluster}/db?sig={secret}\";Fed=True;AppToken=t"),
        ];
        for cs in strings {
            match logship_kusto::KustoBuilder::from_connection_string(&cs) {
                Ok(b) => {
                    shown.push("builder", format!("{b:?}"));
                    match b.with_table("T").with_database("db").build() {
                        Ok((layer, guard)) => shown.built("layer", &layer, guard),
                        Err(e) => shown.error("build error", &e),
                    }
                }
                Err(e) => shown.error("connection string error", &e),
            }
        }
        for url in urls("http", port, &secret) {
            let b = logship_kusto::KustoLayer::builder()
                .with_cluster(url)
                .with_database("db")
                .with_table("T")
                .with_token(secret.as_str());
            shown.push("builder", format!("{b:?}"));
            match b.build() {
                Ok((layer, guard)) => shown.built("layer", &layer, guard),
                Err(e) => shown.error("build error", &e),
            }
        }
        shown.check(&secret)?;
    }

    #[test]
    fn jkool_never_shows_a_secret(secret in sentinel()) {
        let port = closed_port();
        let mut shown = Shown::default();
        let mut bases = urls("http", port, &secret);
        bases.push(format!("http://127.0.0.1:{port}/JESL"));
        for base in bases {
            let b = logship_jkool_http::JkoolHttpLayer::builder(secret.as_str()).with_base_url(base);
            shown.push("builder", format!("{b:?}"));
            match b.build() {
                Ok((layer, guard)) => shown.built("layer", &layer, guard),
                Err(e) => shown.error("build error", &e),
            }
        }
        let mut brokers = urls("mqtt", port, &secret);
        brokers.push(format!("mqtt://127.0.0.1:{port}"));
        for url in brokers {
            let b = logship_jkool_mqtt::JkoolMqttLayer::builder(url)
                .with_credentials("alice", secret.as_str());
            shown.push("builder", format!("{b:?}"));
            match b.build() {
                Ok((layer, guard)) => shown.built("layer", &layer, guard),
                Err(e) => shown.error("build error", &e),
            }
        }
        shown.check(&secret)?;
    }
}
