//! Building the backends named on the command line.

use std::time::Duration;

use clap::Args;
use logship_core::{Guard, Handle, Record};

/// Where to send (at least one).
#[derive(Args, Debug)]
pub(crate) struct Targets {
    /// Fluentd / Fluent Bit forward address: `host:port`, `unix:///path` or `tls://host:port`.
    #[arg(long, value_name = "ADDR")]
    fluent: Option<String>,
    /// Fluent tag prefix (the tag is `<prefix>.<target>`).
    #[arg(long, default_value = "logship", requires = "fluent")]
    tag: String,
    /// jKool access token for the HTTPS endpoint.
    #[arg(long, value_name = "TOKEN")]
    jkool_https: Option<String>,
    /// jKool base URL.
    #[arg(
        long,
        default_value = "https://data.jkoolcloud.com/JESL",
        requires = "jkool_https"
    )]
    jkool_url: String,
    /// MQTT broker URL (`mqtt://host:port`, `mqtts://…`) for jKool documents.
    #[arg(long, value_name = "URL")]
    mqtt: Option<String>,
    /// MQTT user name.
    #[arg(long, requires = "mqtt")]
    username: Option<String>,
    /// MQTT password.
    #[arg(long, requires = "mqtt")]
    password: Option<String>,
    /// MQTT topic (a template: `{target}`, `{level}`, `{kind}`).
    #[arg(long, requires = "mqtt")]
    topic: Option<String>,
    /// Elasticsearch / OpenSearch URL.
    #[arg(long, value_name = "URL")]
    es: Option<String>,
    /// Index prefix.
    #[arg(long, default_value = "logship", requires = "es")]
    index: String,
    /// Kusto connection string (`Data Source=…;Initial Catalog=…;…`).
    #[arg(long, value_name = "CONNECTION_STRING")]
    kusto: Option<String>,
    /// Kusto table.
    #[arg(long, default_value = "Logs", requires = "kusto")]
    table: String,
    /// Run `.create-merge table` and create the JSON ingestion mapping first (needs table admin
    /// rights on a real cluster).
    #[arg(long, requires = "kusto")]
    create_table: bool,
    /// How long to wait for delivery, in seconds (at most 86 400: one day).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    timeout: u64,
}

pub(crate) struct Set {
    backends: Vec<(&'static str, Handle, Guard)>,
    timeout: Duration,
}

fn err(name: &str, e: impl std::fmt::Display) -> String {
    format!("{name}: {e}")
}

pub(crate) fn build(t: &Targets) -> Result<Set, String> {
    let mut backends = Vec::new();
    if let Some(addr) = &t.fluent {
        let (l, g) = logship_fluent::FluentLayer::builder(&t.tag)
            .with_server(addr.clone())
            .build()
            .map_err(|e| err("fluent", e))?;
        backends.push(("fluent", l.handle(), g));
    }
    if let Some(token) = &t.jkool_https {
        let (l, g) = logship_jkool_http::JkoolHttpLayer::builder(token.clone())
            .with_base_url(t.jkool_url.clone())
            .build()
            .map_err(|e| err("jkool-https", e))?;
        backends.push(("jkool-https", l.handle(), g));
    }
    if let Some(url) = &t.mqtt {
        let mut b = logship_jkool_mqtt::JkoolMqttLayer::builder(url.clone());
        if let (Some(u), Some(p)) = (&t.username, &t.password) {
            b = b.with_credentials(u.clone(), p.clone());
        }
        if let Some(topic) = &t.topic {
            b = b.with_topic(topic.clone());
        }
        let (l, g) = b.build().map_err(|e| err("mqtt", e))?;
        backends.push(("mqtt", l.handle(), g));
    }
    if let Some(url) = &t.es {
        let (l, g) = logship_ecs_metrics::EcsLayer::builder(url.as_str())
            .with_index_prefix(t.index.clone())
            .with_log_events(true)
            .build()
            .map_err(|e| err("es", e))?;
        backends.push(("es", l.handle(), g));
    }
    if let Some(cs) = &t.kusto {
        let (l, g) = logship_kusto::KustoLayer::from_connection_string(cs)
            .map_err(|e| err("kusto", e))?
            .with_table(t.table.clone())
            .with_create_table(t.create_table)
            .build()
            .map_err(|e| err("kusto", e))?;
        backends.push(("kusto", l.handle(), g));
    }
    if backends.is_empty() {
        return Err(
            "no backend given: use --fluent, --jkool-https, --mqtt, --es or --kusto".into(),
        );
    }
    Ok(Set {
        backends,
        timeout: Duration::from_secs(t.timeout),
    })
}

impl Set {
    pub(crate) fn submit(&self, r: &Record) {
        for (_, h, _) in &self.backends {
            h.submit(r.clone());
        }
    }

    /// Waits until everything submitted so far is delivered (bounded by the timeout).
    pub(crate) fn flush(&self) {
        for (_, _, guard) in &self.backends {
            let _ = guard.flush(self.timeout);
        }
    }

    /// Shuts every backend down and reports; an error when any record was not delivered.
    pub(crate) fn finish(self, expected: u64) -> Result<(), String> {
        let mut failures = Vec::new();
        for (name, handle, guard) in self.backends {
            let result = guard.shutdown(self.timeout);
            let stats = handle.stats();
            match result {
                Ok(_)
                    if stats.delivered >= expected
                        && stats.undelivered() == 0
                        && stats.dropped() == 0 =>
                {
                    eprintln!("{name}: delivered {}", stats.delivered);
                }
                Ok(_) => failures.push(format!(
                    "{name}: delivered {} of {expected}, undelivered {}, dropped {}{}",
                    stats.delivered,
                    stats.undelivered(),
                    stats.dropped(),
                    stats
                        .last_error
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                )),
                Err(e) => failures.push(format!(
                    "{name}: {e}{}",
                    stats
                        .last_error
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                )),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}
