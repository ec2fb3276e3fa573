//! Configuration without code: [`JkoolHttpBuilder::from_env`] (`LOGSHIP_JKOOL*` variables) and
//! [`JkoolHttpConfig`] (a configuration file, feature `serde`). Both give the same settings;
//! see docs/configuration.md for the table.

use std::path::PathBuf;
use std::time::Duration;

use logship_core::env::{EnvVars, parse_bool, parse_duration};
use logship_core::{ConfigError, PipelineConfig, Secret};
use logship_tls::TlsOptions;

use crate::{
    BodyShape, JkoolAuth, JkoolHttpBuilder, JkoolHttpError, JkoolHttpLayer, SnapshotPlacement,
};

/// Every setting of a [`JkoolHttpBuilder`] that text can give: what
/// [`JkoolHttpBuilder::from_env`] reads from `LOGSHIP_JKOOL*` variables and, with the feature
/// `serde`, what a configuration file holds (unknown keys are refused; durations are text with
/// a unit, `"10s"`; sizes a number of bytes or text, `"1MiB"`; the token is a [`Secret`],
/// never shown by `Debug`).
///
/// | key | variable | setting |
/// |---|---|---|
/// | `token` | `LOGSHIP_JKOOL_TOKEN` | [`JkoolHttpLayer::builder`] (required; secret) |
/// | `url` | `LOGSHIP_JKOOL_URL` | [`with_base_url`](JkoolHttpBuilder::with_base_url) |
/// | `auth` | `LOGSHIP_JKOOL_AUTH` | [`with_auth`](JkoolHttpBuilder::with_auth): `token_header`, `api_key_header`, `handshake` |
/// | `body_shape` | `LOGSHIP_JKOOL_BODY_SHAPE` | [`with_body_shape`](JkoolHttpBuilder::with_body_shape): `object`, `array` |
/// | `max_requests_in_flight` | `LOGSHIP_JKOOL_MAX_REQUESTS_IN_FLIGHT` | [`with_max_requests_in_flight`](JkoolHttpBuilder::with_max_requests_in_flight) |
/// | `max_request_records` | `LOGSHIP_JKOOL_MAX_REQUEST_RECORDS` | [`with_max_request_records`](JkoolHttpBuilder::with_max_request_records) |
/// | `max_request_bytes`, `max_document_bytes`, `max_reply_bytes` | `LOGSHIP_JKOOL_MAX_REQUEST_BYTES`, `…_MAX_DOCUMENT_BYTES`, `…_MAX_REPLY_BYTES` | [`with_max_request_bytes`](JkoolHttpBuilder::with_max_request_bytes)… |
/// | `gzip` | `LOGSHIP_JKOOL_GZIP` | [`with_gzip`](JkoolHttpBuilder::with_gzip) |
/// | `connect_timeout` | `LOGSHIP_JKOOL_CONNECT_TIMEOUT` | [`with_connect_timeout`](JkoolHttpBuilder::with_connect_timeout) |
/// | `snapshot_placement` | `LOGSHIP_JKOOL_SNAPSHOT_PLACEMENT` | [`with_snapshot_placement`](JkoolHttpBuilder::with_snapshot_placement): `embedded`, `separate` |
/// | `tls_ca` | `LOGSHIP_JKOOL_TLS_CA` | [`with_tls`](JkoolHttpBuilder::with_tls)`(TlsOptions::new().with_ca_file(path))` |
/// | `[pipeline]` | `LOGSHIP_JKOOL_<SETTING>`, else `LOGSHIP_PIPELINE_<SETTING>` | [`PipelineConfig`] |
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
#[non_exhaustive]
pub struct JkoolHttpConfig {
    /// The jKool access token.
    pub token: Option<Secret>,
    /// The stream base URL.
    pub url: Option<String>,
    /// How the token is sent.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de::auth"))]
    pub auth: Option<JkoolAuth>,
    /// One object or an array per post.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de::body_shape"))]
    pub body_shape: Option<BodyShape>,
    /// Posts in flight.
    pub max_requests_in_flight: Option<usize>,
    /// Documents per post (arrays).
    pub max_request_records: Option<usize>,
    /// Bytes per post (arrays).
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::bytes_usize")
    )]
    pub max_request_bytes: Option<usize>,
    /// Largest document.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::bytes_usize")
    )]
    pub max_document_bytes: Option<usize>,
    /// Reply body cap.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::bytes_usize")
    )]
    pub max_reply_bytes: Option<usize>,
    /// gzip request bodies.
    pub gzip: Option<bool>,
    /// Connect timeout.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::duration")
    )]
    pub connect_timeout: Option<Duration>,
    /// Where snapshots go.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de::snapshots"))]
    pub snapshot_placement: Option<SnapshotPlacement>,
    /// A CA certificate file (PEM) added to the trusted roots.
    pub tls_ca: Option<PathBuf>,
    /// The pipeline settings.
    pub pipeline: PipelineConfig,
}

fn parse_auth(s: &str) -> Result<JkoolAuth, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "token_header" => Ok(JkoolAuth::TokenHeader),
        "api_key_header" => Ok(JkoolAuth::ApiKeyHeader),
        "handshake" => Ok(JkoolAuth::Handshake),
        _ => Err("token_header, api_key_header or handshake".into()),
    }
}

fn parse_body_shape(s: &str) -> Result<BodyShape, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "object" => Ok(BodyShape::Object),
        "array" => Ok(BodyShape::Array),
        _ => Err("object or array".into()),
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

    pub(super) fn auth<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<crate::JkoolAuth>, D::Error> {
        parsed(d, super::parse_auth)
    }
    pub(super) fn body_shape<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<crate::BodyShape>, D::Error> {
        parsed(d, super::parse_body_shape)
    }
    pub(super) fn snapshots<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<crate::SnapshotPlacement>, D::Error> {
        parsed(d, super::parse_snapshots)
    }
}

impl JkoolHttpConfig {
    /// Reads the `LOGSHIP_JKOOL*` and `LOGSHIP_PIPELINE_*` variables of `env` (see the
    /// table), recording malformed values and a missing `LOGSHIP_JKOOL_TOKEN` there.
    pub fn from_env(env: &mut EnvVars) -> Self {
        let token = env.secret("TOKEN");
        if token.is_none() {
            let name = env.name("TOKEN");
            env.problem(name, "is not set; set it to your jKool access token");
        }
        Self {
            token,
            url: env.text("URL"),
            auth: env.parsed("AUTH", parse_auth),
            body_shape: env.parsed("BODY_SHAPE", parse_body_shape),
            max_requests_in_flight: env.count("MAX_REQUESTS_IN_FLIGHT"),
            max_request_records: env.count("MAX_REQUEST_RECORDS"),
            max_request_bytes: env.bytes("MAX_REQUEST_BYTES"),
            max_document_bytes: env.bytes("MAX_DOCUMENT_BYTES"),
            max_reply_bytes: env.bytes("MAX_REPLY_BYTES"),
            gzip: env.parsed("GZIP", parse_bool),
            connect_timeout: env.parsed("CONNECT_TIMEOUT", parse_duration),
            snapshot_placement: env.parsed("SNAPSHOT_PLACEMENT", parse_snapshots),
            tls_ca: env.path("TLS_CA"),
            pipeline: PipelineConfig::from_env(env),
        }
    }

    /// The builder with these settings on top of the crate's defaults; it can be configured
    /// further. A missing token is reported by [`build`](JkoolHttpBuilder::build) (an empty
    /// token).
    pub fn into_builder(self) -> JkoolHttpBuilder {
        let mut b = JkoolHttpLayer::builder(self.token.unwrap_or_default());
        macro_rules! set {
            ($field:ident, $method:ident) => {
                if let Some(v) = self.$field {
                    b = b.$method(v);
                }
            };
        }
        set!(url, with_base_url);
        set!(auth, with_auth);
        set!(body_shape, with_body_shape);
        set!(max_requests_in_flight, with_max_requests_in_flight);
        set!(max_request_records, with_max_request_records);
        set!(max_request_bytes, with_max_request_bytes);
        set!(max_document_bytes, with_max_document_bytes);
        set!(max_reply_bytes, with_max_reply_bytes);
        set!(gzip, with_gzip);
        set!(connect_timeout, with_connect_timeout);
        set!(snapshot_placement, with_snapshot_placement);
        if let Some(ca) = self.tls_ca {
            b = b.with_tls(TlsOptions::new().with_ca_file(ca));
        }
        let pipeline = self.pipeline;
        b.with_pipeline(|p| p.apply_config(pipeline))
    }

    /// `into_builder().build()`.
    ///
    /// # Errors
    /// As [`JkoolHttpBuilder::build`].
    pub fn build(self) -> Result<(JkoolHttpLayer, logship_core::Guard), JkoolHttpError> {
        self.into_builder().build()
    }
}

impl JkoolHttpBuilder {
    /// A builder configured by the process environment, read once, now:
    /// `LOGSHIP_JKOOL_TOKEN` (required), `LOGSHIP_JKOOL_URL`, the other `LOGSHIP_JKOOL_*`
    /// settings and the pipeline's `LOGSHIP_JKOOL_<SETTING>` / `LOGSHIP_PIPELINE_<SETTING>`
    /// (table at [`JkoolHttpConfig`]; value syntax in `logship_core::env`). Keep configuring
    /// it as any builder. A malformed value, a missing token or an unknown
    /// `LOGSHIP_JKOOL_*` variable is reported by [`build`](Self::build), naming each
    /// variable and what is expected (never the token).
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
        let mut env = EnvVars::from_pairs("JKOOL", pairs);
        let b = JkoolHttpConfig::from_env(&mut env).into_builder();
        match env.finish() {
            Ok(()) => b,
            Err(e) => b.defer(JkoolHttpError::Pipeline(ConfigError::from(e))),
        }
    }
}
