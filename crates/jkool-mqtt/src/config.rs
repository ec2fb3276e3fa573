//! [`JkoolMqttBuilder`]: every setting of the MQTT layer, checked by

use std::sync::Arc;
use std::time::{Duration, Instant};

use logship_core::{Guard, PipelineBuilder};
use logship_jkool::{Encoder, SnapshotPlacement};
use logship_tls::TlsOptions;

use crate::JkoolMqttLayer;
use crate::error::{JkoolMqttError, Password};
use crate::sink::JkoolMqttSink;
use crate::topic::{DEFAULT_TOPIC_TEMPLATE, TopicTemplate};
use crate::wire::{Proto, WireOptions};

/// The MQTT protocol version the layer speaks, chosen with
/// [`with_protocol`](JkoolMqttBuilder::with_protocol).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MqttProtocol {
    /// MQTT 3.1.1 (protocol level 4), the default: every broker of note accepts it.
    #[default]
    V311,
    /// MQTT 5: the broker's PUBACK / PUBREC / PUBCOMP reason codes decide per record
    /// (see [the table](crate#mqtt-5-reason-codes)).
    V5,
}

/// Builds a [`JkoolMqttLayer`].
///
/// [`build`](JkoolMqttBuilder::build).
///
/// | setting | default |
/// |---|---|
/// | broker URL ([`JkoolMqttLayer::builder`]) | `mqtt://host[:1883]` or `mqtts://host[:8883]` |
/// | [`with_protocol`](JkoolMqttBuilder::with_protocol) | [`MqttProtocol::V311`] |
/// | [`with_client_id`](JkoolMqttBuilder::with_client_id) | `logship-<random uuid>` |
/// | [`with_clean_session`](JkoolMqttBuilder::with_clean_session) | true |
/// | [`with_keep_alive`](JkoolMqttBuilder::with_keep_alive) | 60 s |
/// | [`with_credentials`](JkoolMqttBuilder::with_credentials) | none |
/// | [`with_qos`](JkoolMqttBuilder::with_qos) | 1, at least once (a record is delivered when its PUBACK arrives) |
/// | [`with_retain`](JkoolMqttBuilder::with_retain) | false |
/// | [`with_topic`](JkoolMqttBuilder::with_topic) | `{target}` (the record's target, `::` → `/`) |
/// | [`with_max_inflight`](JkoolMqttBuilder::with_max_inflight) | 100 unacknowledged publishes |
/// | [`with_max_document_bytes`](JkoolMqttBuilder::with_max_document_bytes) | 1 MiB per publish payload |
/// | [`with_tls`](JkoolMqttBuilder::with_tls) | on for `mqtts://`, verified against the OS trust store ([`TlsOptions`]) |
/// | core: batch size / linger | 1 000 records / 500 ms |
#[must_use]
pub struct JkoolMqttBuilder {
    url: String,
    protocol: MqttProtocol,
    client_id: Option<String>,
    clean_session: bool,
    keep_alive: Duration,
    credentials: Option<(String, Password)>,
    qos: u8,
    retain: bool,
    topic: String,
    max_inflight: u16,
    max_document_bytes: usize,
    tls: Option<TlsOptions>,
    snapshots: SnapshotPlacement,
    pipeline: PipelineBuilder,
    /// A problem found by `from_env` or a `JkoolMqttConfig`, reported first by `build()`.
    deferred: Option<JkoolMqttError>,
}

impl std::fmt::Debug for JkoolMqttBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JkoolMqttBuilder")
            .field("url", &redact_url(&self.url))
            .field("protocol", &self.protocol)
            .field("client_id", &self.client_id)
            .field("credentials", &self.credentials)
            .field("clean_session", &self.clean_session)
            .field("keep_alive", &self.keep_alive)
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("topic", &self.topic)
            .field("max_inflight", &self.max_inflight)
            .field("max_document_bytes", &self.max_document_bytes)
            .field("tls", &self.tls)
            .field("snapshots", &self.snapshots)
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

impl JkoolMqttLayer {
    /// Starts configuring a layer that publishes to the broker at `url` (`mqtt://host:port`
    /// or `mqtts://host:port`; checked by `build()`).
    pub fn builder(url: impl Into<String>) -> JkoolMqttBuilder {
        JkoolMqttBuilder {
            url: url.into(),
            protocol: MqttProtocol::V311,
            client_id: None,
            clean_session: true,
            keep_alive: Duration::from_secs(60),
            credentials: None,
            qos: 1,
            retain: false,
            topic: DEFAULT_TOPIC_TEMPLATE.into(),
            max_inflight: 100,
            max_document_bytes: logship_jkool::DEFAULT_MAX_DOCUMENT_BYTES,
            tls: None,
            snapshots: SnapshotPlacement::Embedded,
            pipeline: PipelineBuilder::new()
                .with_max_batch_records(1000)
                .with_linger(Duration::from_millis(500)),
            deferred: None,
        }
    }
}

impl JkoolMqttBuilder {
    /// Keeps the first problem for `build()`.
    pub(crate) fn defer(mut self, e: JkoolMqttError) -> Self {
        if self.deferred.is_none() {
            self.deferred = Some(e);
        }
        self
    }

    /// Puts `e` ahead of any problem kept before (the environment's problems explain the
    /// others).
    pub(crate) fn defer_first(mut self, e: JkoolMqttError) -> Self {
        self.deferred = Some(e);
        self
    }

    /// The protocol version: [`MqttProtocol::V311`] (default) or [`MqttProtocol::V5`]. Every
    /// other setting applies to both; with MQTT 5 a broker's failure reason code on an
    /// acknowledgement retries or rejects that record (see
    /// [the table](crate#mqtt-5-reason-codes)), and
    /// [`with_clean_session(false)`](Self::with_clean_session) asks for a session that never
    /// expires (session expiry interval 0xFFFFFFFF, as in MQTT 3.1.1).
    pub fn with_protocol(self, protocol: MqttProtocol) -> Self {
        Self { protocol, ..self }
    }

    /// The MQTT client id (default `logship-<uuid v4>`). With
    /// [`with_clean_session(false)`](Self::with_clean_session) give a stable one.
    pub fn with_client_id(self, id: impl Into<String>) -> Self {
        Self {
            client_id: Some(id.into()),
            ..self
        }
    }

    /// Clean session (MQTT 3.1.1) / clean start (MQTT 5) (default true).
    pub fn with_clean_session(self, clean: bool) -> Self {
        Self {
            clean_session: clean,
            ..self
        }
    }

    /// Keep-alive interval, whole seconds, 1 s – 18 h (default 60 s).
    pub fn with_keep_alive(self, d: Duration) -> Self {
        Self {
            keep_alive: d,
            ..self
        }
    }

    /// Broker username and password.
    pub fn with_credentials(
        self,
        username: impl Into<String>,
        password: impl Into<Password>,
    ) -> Self {
        Self {
            credentials: Some((username.into(), password.into())),
            ..self
        }
    }

    /// QoS 0 (at most once), 1 (at least once, default) or 2 (exactly once at the broker).
    pub fn with_qos(self, qos: u8) -> Self {
        Self { qos, ..self }
    }

    /// Sets the retain flag on every publish (default false).
    pub fn with_retain(self, retain: bool) -> Self {
        Self { retain, ..self }
    }

    /// A topic template (see the [`topic` docs](crate#topics)) or a fixed topic.
    pub fn with_topic(self, template: impl Into<String>) -> Self {
        Self {
            topic: template.into(),
            ..self
        }
    }

    /// Most publishes awaiting their PUBACK at once, 1–65535 (default 100).
    pub fn with_max_inflight(self, n: u16) -> Self {
        Self {
            max_inflight: n,
            ..self
        }
    }

    /// Largest payload in bytes (default 1 MiB); a larger record is rejected alone.
    pub fn with_max_document_bytes(self, n: usize) -> Self {
        Self {
            max_document_bytes: n,
            ..self
        }
    }

    /// TLS settings ([`TlsOptions`], shared by every logship backend; TLS is implied by
    /// `mqtts://`, and this turns it on for `mqtt://` too): the OS trust store by default, an
    /// added CA (`with_ca_pem`, `with_ca_file`), only custom roots, a client certificate, or
    /// (for tests) no verification. PEM files are read by `build()`. The name verified is the
    /// URL's host (`TlsOptions::with_server_name` is refused: the layer verifies the host it
    /// connects to).
    pub fn with_tls(self, tls: TlsOptions) -> Self {
        Self {
            tls: Some(tls),
            ..self
        }
    }

    /// Where event snapshots go (default embedded in the event; `Separate` publishes SNAPSHOT
    /// documents too, use `{kind}` in the topic to tell them apart).
    pub fn with_snapshot_placement(self, p: SnapshotPlacement) -> Self {
        Self {
            snapshots: p,
            ..self
        }
    }

    /// Adjusts the core pipeline settings (queue, batching, retry, breaker, undelivered
    /// callback …): `f` is applied at once to the builder holding this crate's defaults
    /// (1 000 records per batch, 500 ms linger) and whatever earlier calls set. The settings
    /// are checked by `build()`.
    pub fn with_pipeline(mut self, f: impl FnOnce(PipelineBuilder) -> PipelineBuilder) -> Self {
        self.pipeline = f(self.pipeline);
        self
    }

    pub(crate) fn parse_url(&self) -> Result<(String, u16, bool), JkoolMqttError> {
        let bad = |reason: &str| JkoolMqttError::InvalidUrl {
            url: redact_url(&self.url),
            reason: reason.into(),
        };
        if !self.url.contains("://") {
            // `127.0.0.1:1883`, as the original's configuration wrote it.
            return Err(bad(
                "the url has no scheme: write it as mqtt://host:port (or mqtts://host:port for TLS)",
            ));
        }
        let url = url::Url::parse(&self.url).map_err(|e| bad(&e.to_string()))?;
        let tls = match url.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            _ => return Err(bad("use mqtt://host:port or mqtts://host:port")),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("the url has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("put credentials in with_credentials, not in the url"));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(bad(
                "a broker url has no path or query; the topic is set with with_topic",
            ));
        }
        let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
        Ok((host, port, tls))
    }

    /// Checks every setting and starts the worker. Connecting happens on the worker, at the
    /// first batch (a broker that is down is retried by the core, not an error here).
    ///
    /// # Errors
    /// [`JkoolMqttError`] naming the bad URL, topic, number, TLS file or core setting.
    pub fn build(self) -> Result<(JkoolMqttLayer, Guard), JkoolMqttError> {
        if let Some(e) = self.deferred {
            return Err(e);
        }
        let (host, port, url_tls) = self.parse_url()?;
        let topic =
            TopicTemplate::parse(&self.topic).map_err(|reason| JkoolMqttError::InvalidTopic {
                topic: self.topic.clone(),
                reason,
            })?;
        let range = |setting, value: String, hint| JkoolMqttError::OutOfRange {
            setting,
            value,
            hint,
        };
        if self.qos > 2 {
            return Err(range("with_qos", self.qos.to_string(), "use 0, 1 or 2"));
        }
        if self.keep_alive < Duration::from_secs(1) || self.keep_alive > Duration::from_secs(65_535)
        {
            return Err(range(
                "with_keep_alive",
                format!("{:?}", self.keep_alive),
                "use 1 s to 65 535 s",
            ));
        }
        if self.max_inflight == 0 {
            return Err(range("with_max_inflight", "0".into(), "use at least 1"));
        }
        if self.max_document_bytes < 256 || self.max_document_bytes > 256 * 1024 * 1024 {
            return Err(range(
                "with_max_document_bytes",
                self.max_document_bytes.to_string(),
                "use 256 bytes to 256 MiB (the MQTT limit)",
            ));
        }
        let client_id = match &self.client_id {
            Some(id) if id.is_empty() || id.starts_with(' ') => {
                return Err(range(
                    "with_client_id",
                    format!("{id:?}"),
                    "use a non-empty id that does not start with a space",
                ));
            }
            Some(id) => id.clone(),
            None if !self.clean_session => {
                return Err(range(
                    "with_clean_session",
                    "false without a client id".into(),
                    "a persistent session needs a stable id: call with_client_id",
                ));
            }
            None => format!("logship-{}", uuid::Uuid::new_v4().simple()),
        };
        let tls = if url_tls || self.tls.is_some() {
            let options = self.tls.clone().unwrap_or_default();
            if options.server_name().is_some() {
                return Err(JkoolMqttError::TlsServerName);
            }
            let cfg = options.client_config("jkool-mqtt")?;
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| {
                JkoolMqttError::InvalidUrl {
                    url: redact_url(&self.url),
                    reason: format!("the host is not a name TLS can verify: {e}"),
                }
            })?;
            Some((Arc::new(cfg), name))
        } else {
            None
        };
        let keep_alive = Duration::from_secs(self.keep_alive.as_secs());
        let credentials = self
            .credentials
            .as_ref()
            .map(|(user, pass)| (user.clone(), pass.expose().to_string()));
        let options = WireOptions {
            host,
            port,
            proto: match self.protocol {
                MqttProtocol::V311 => Proto::V311,
                MqttProtocol::V5 => Proto::V5,
            },
            client_id,
            clean_session: self.clean_session,
            keep_alive,
            credentials,
            max_inflight: self.max_inflight,
            // Room for the payload plus topic and header; MQTT 5: the broker's Maximum Packet
            // Size lowers it.
            max_outgoing: self.max_document_bytes + 64 * 1024,
            // Incoming packets are acknowledgements: 64 KiB is plenty.
            max_incoming: 64 * 1024,
            tls,
        };
        let sink = JkoolMqttSink {
            options,
            encoder: Encoder::default()
                .with_snapshot_placement(self.snapshots)
                .with_max_document_bytes(self.max_document_bytes),
            topic,
            qos: self.qos,
            retain: self.retain,
            conn: None,
            last_used: Instant::now(),
        };
        Ok(self.pipeline.build_layer::<JkoolMqttLayer, _>(sink)?)
    }
}

pub(crate) use logship_core::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    fn err(b: JkoolMqttBuilder) -> String {
        match b.build() {
            Ok(_) => panic!("built"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn build_says_what_to_fix() {
        let e = err(JkoolMqttLayer::builder("http://h:1883"));
        assert!(e.contains("use mqtt://host:port"), "{e}");
        for bare in ["127.0.0.1:1883", "localhost:1883", "broker", "[::1]:1883"] {
            let e = err(JkoolMqttLayer::builder(bare));
            assert!(e.contains("write it as mqtt://host:port"), "{bare}: {e}");
        }
        let e = err(JkoolMqttLayer::builder("mqtt://u:p@h"));
        assert!(e.contains("with_credentials"), "{e}");
        let e = err(JkoolMqttLayer::builder("mqtt://h/topic"));
        assert!(e.contains("no path"), "{e}");
        let e = err(JkoolMqttLayer::builder("mqtt://h").with_qos(3));
        assert_eq!(e, "`with_qos` is 3; use 0, 1 or 2");
        let e = err(JkoolMqttLayer::builder("mqtt://h").with_topic("a/#"));
        assert!(e.contains("wildcards"), "{e}");
        let e = err(JkoolMqttLayer::builder("mqtt://h").with_clean_session(false));
        assert!(e.contains("call with_client_id"), "{e}");
        let e = err(JkoolMqttLayer::builder("mqtt://h").with_keep_alive(Duration::from_millis(10)));
        assert!(e.contains("1 s to 65 535 s"), "{e}");
        let e =
            err(JkoolMqttLayer::builder("mqtts://h")
                .with_tls(TlsOptions::new().with_ca_pem("junk")));
        assert!(e.contains("with_ca_pem"), "{e}");
        let e =
            err(JkoolMqttLayer::builder("mqtts://h")
                .with_tls(TlsOptions::new().with_server_name("x")));
        assert!(e.contains("with_server_name"), "{e}");
        let e =
            err(JkoolMqttLayer::builder("mqtt://h").with_pipeline(|p| p.with_max_batch_records(0)));
        assert!(e.contains("max_batch_records"), "{e}");
    }

    #[test]
    fn debug_hides_the_password() {
        let b = JkoolMqttLayer::builder("mqtt://h").with_credentials("u", "pw-s3cr3t");
        let d = format!("{b:?}");
        assert!(!d.contains("s3cr3t") && d.contains("***"), "{d}");
    }
}
