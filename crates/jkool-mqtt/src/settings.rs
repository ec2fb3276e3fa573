//! Configuration without code: [`JkoolMqttBuilder::from_env`] (`LOGSHIP_MQTT*` variables) and
//! [`JkoolMqttConfig`] (a configuration file, feature `serde`). Both give the same settings;
//! see docs/configuration.md for the table.

use std::path::PathBuf;
use std::time::Duration;

use logship_core::env::{EnvVars, parse_bool, parse_duration};
use logship_core::{ConfigError, PipelineConfig, Secret};
use logship_tls::TlsOptions;

use crate::{JkoolMqttBuilder, JkoolMqttError, JkoolMqttLayer, MqttProtocol, SnapshotPlacement};

/// Every setting of a [`JkoolMqttBuilder`] that text can give: what
/// [`JkoolMqttBuilder::from_env`] reads from `LOGSHIP_MQTT*` variables and, with the feature
/// `serde`, what a configuration file holds (unknown keys are refused; durations are text with
/// a unit, `"60s"`; sizes a number of bytes or text, `"1MiB"`; the password is a [`Secret`],
/// never shown by `Debug`).
///
/// | key | variable | setting |
/// |---|---|---|
/// | `url` | `LOGSHIP_MQTT` | [`JkoolMqttLayer::builder`] (required) |
/// | `protocol` | `LOGSHIP_MQTT_PROTOCOL` | [`with_protocol`](JkoolMqttBuilder::with_protocol): `3.1.1`, `5` |
/// | `client_id` | `LOGSHIP_MQTT_CLIENT_ID` | [`with_client_id`](JkoolMqttBuilder::with_client_id) |
/// | `clean_session` | `LOGSHIP_MQTT_CLEAN_SESSION` | [`with_clean_session`](JkoolMqttBuilder::with_clean_session) |
/// | `keep_alive` | `LOGSHIP_MQTT_KEEP_ALIVE` | [`with_keep_alive`](JkoolMqttBuilder::with_keep_alive) |
/// | `username`, `password` | `LOGSHIP_MQTT_USERNAME`, `LOGSHIP_MQTT_PASSWORD` | [`with_credentials`](JkoolMqttBuilder::with_credentials) (both or neither) |
/// | `qos` | `LOGSHIP_MQTT_QOS` | [`with_qos`](JkoolMqttBuilder::with_qos): 0, 1, 2 |
/// | `retain` | `LOGSHIP_MQTT_RETAIN` | [`with_retain`](JkoolMqttBuilder::with_retain) |
/// | `topic` | `LOGSHIP_MQTT_TOPIC` | [`with_topic`](JkoolMqttBuilder::with_topic) |
/// | `max_inflight` | `LOGSHIP_MQTT_MAX_INFLIGHT` | [`with_max_inflight`](JkoolMqttBuilder::with_max_inflight) |
/// | `max_document_bytes` | `LOGSHIP_MQTT_MAX_DOCUMENT_BYTES` | [`with_max_document_bytes`](JkoolMqttBuilder::with_max_document_bytes) |
/// | `snapshot_placement` | `LOGSHIP_MQTT_SNAPSHOT_PLACEMENT` | [`with_snapshot_placement`](JkoolMqttBuilder::with_snapshot_placement): `embedded`, `separate` |
/// | `tls_ca` | `LOGSHIP_MQTT_TLS_CA` | [`with_tls`](JkoolMqttBuilder::with_tls)`(TlsOptions::new().with_ca_file(path))` |
/// | `[pipeline]` | `LOGSHIP_MQTT_<SETTING>`, else `LOGSHIP_PIPELINE_<SETTING>` | [`PipelineConfig`] |
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
#[non_exhaustive]
pub struct JkoolMqttConfig {
    /// Broker URL.
    pub url: Option<String>,
    /// MQTT version.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de::protocol"))]
    pub protocol: Option<MqttProtocol>,
    /// Client id.
    pub client_id: Option<String>,
    /// Clean session.
    pub clean_session: Option<bool>,
    /// Keep-alive interval.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::duration")
    )]
    pub keep_alive: Option<Duration>,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Secret>,
    /// QoS.
    pub qos: Option<u8>,
    /// Retain flag.
    pub retain: Option<bool>,
    /// Topic template.
    pub topic: Option<String>,
    /// Unacknowledged publishes.
    pub max_inflight: Option<u16>,
    /// Largest payload.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::bytes_usize")
    )]
    pub max_document_bytes: Option<usize>,
    /// Where snapshots go.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de::snapshots"))]
    pub snapshot_placement: Option<SnapshotPlacement>,
    /// A CA certificate file (PEM) added to the trusted roots.
    pub tls_ca: Option<PathBuf>,
    /// The pipeline settings.
    pub pipeline: PipelineConfig,
}

fn parse_protocol(s: &str) -> Result<MqttProtocol, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "3.1.1" | "311" | "v311" | "4" => Ok(MqttProtocol::V311),
        "5" | "5.0" | "v5" => Ok(MqttProtocol::V5),
        _ => Err("3.1.1 or 5".into()),
    }
}

fn parse_snapshots(s: &str) -> Result<SnapshotPlacement, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "embedded" => Ok(SnapshotPlacement::Embedded),
        "separate" => Ok(SnapshotPlacement::Separate),
        _ => Err("embedded or separate".into()),
    }
}

#[cfg(feature = "serde")]
mod de {
    use logship_core::env::de::parsed;
    use serde::Deserializer;

    pub(super) fn protocol<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<crate::MqttProtocol>, D::Error> {
        parsed(d, super::parse_protocol)
    }
    pub(super) fn snapshots<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<crate::SnapshotPlacement>, D::Error> {
        parsed(d, super::parse_snapshots)
    }
}

impl JkoolMqttConfig {
    /// Reads the `LOGSHIP_MQTT*` and `LOGSHIP_PIPELINE_*` variables of `env` (see the table),
    /// recording malformed values and a missing `LOGSHIP_MQTT` there.
    pub fn from_env(env: &mut EnvVars) -> Self {
        Self {
            url: env.required_text("", "set it to the broker URL, e.g. mqtt://127.0.0.1:1883"),
            protocol: env.parsed("PROTOCOL", parse_protocol),
            client_id: env.text("CLIENT_ID"),
            clean_session: env.parsed("CLEAN_SESSION", parse_bool),
            keep_alive: env.parsed("KEEP_ALIVE", parse_duration),
            username: env.text("USERNAME"),
            password: env.secret("PASSWORD"),
            qos: env.count("QOS"),
            retain: env.parsed("RETAIN", parse_bool),
            topic: env.text("TOPIC"),
            max_inflight: env.count("MAX_INFLIGHT"),
            max_document_bytes: env.bytes("MAX_DOCUMENT_BYTES"),
            snapshot_placement: env.parsed("SNAPSHOT_PLACEMENT", parse_snapshots),
            tls_ca: env.path("TLS_CA"),
            pipeline: PipelineConfig::from_env(env),
        }
    }

    /// The builder with these settings on top of the crate's defaults; it can be configured
    /// further. A user name without a password (or the reverse) is reported by
    /// [`build`](JkoolMqttBuilder::build).
    pub fn into_builder(self) -> JkoolMqttBuilder {
        let mut b = JkoolMqttLayer::builder(self.url.unwrap_or_default());
        macro_rules! set {
            ($field:ident, $method:ident) => {
                if let Some(v) = self.$field {
                    b = b.$method(v);
                }
            };
        }
        set!(protocol, with_protocol);
        set!(client_id, with_client_id);
        set!(clean_session, with_clean_session);
        set!(keep_alive, with_keep_alive);
        set!(qos, with_qos);
        set!(retain, with_retain);
        set!(topic, with_topic);
        set!(max_inflight, with_max_inflight);
        set!(max_document_bytes, with_max_document_bytes);
        set!(snapshot_placement, with_snapshot_placement);
        match (self.username, self.password) {
            (Some(u), Some(p)) => b = b.with_credentials(u, p),
            (None, None) => {}
            _ => {
                b = b.defer(JkoolMqttError::Pipeline(ConfigError::Backend(
                    "username (LOGSHIP_MQTT_USERNAME) and password (LOGSHIP_MQTT_PASSWORD) go \
                     together: set both"
                        .into(),
                )));
            }
        }
        if let Some(ca) = self.tls_ca {
            b = b.with_tls(TlsOptions::new().with_ca_file(ca));
        }
        let pipeline = self.pipeline;
        b.with_pipeline(|p| p.apply_config(pipeline))
    }

    /// `into_builder().build()`.
    ///
    /// # Errors
    /// As [`JkoolMqttBuilder::build`].
    pub fn build(self) -> Result<(JkoolMqttLayer, logship_core::Guard), JkoolMqttError> {
        self.into_builder().build()
    }
}

impl JkoolMqttBuilder {
    /// A builder configured by the process environment, read once, now: `LOGSHIP_MQTT` (the
    /// broker URL; required), the `LOGSHIP_MQTT_*` settings and the pipeline's
    /// `LOGSHIP_MQTT_<SETTING>` / `LOGSHIP_PIPELINE_<SETTING>` (table at [`JkoolMqttConfig`];
    /// value syntax in `logship_core::env`). Keep configuring it as any builder. A malformed
    /// value, a missing URL or an unknown `LOGSHIP_MQTT_*` variable is reported by
    /// [`build`](Self::build), naming each variable and what is expected (never the password).
    pub fn from_env() -> Self {
        Self::from_env_vars(std::env::vars_os())
    }

    /// As [`from_env`](Self::from_env), reading `pairs` (name, value) instead of the process
    /// environment.
    pub fn from_env_vars<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<std::ffi::OsString>,
        V: Into<std::ffi::OsString>,
    {
        let mut env = EnvVars::from_pairs("MQTT", pairs);
        let b = JkoolMqttConfig::from_env(&mut env).into_builder();
        match env.finish() {
            Ok(()) => b,
            Err(e) => b.defer_first(JkoolMqttError::Pipeline(ConfigError::from(e))),
        }
    }
}
