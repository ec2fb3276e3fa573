//! Configuration without code: [`EcsBuilder::from_env`] (`LOGSHIP_ES*` variables) and
//! [`EcsConfig`] (a configuration file, feature `serde`). Both give the same settings; see
//! docs/configuration.md for the table.

use std::path::PathBuf;
use std::time::Duration;

use logship_core::env::{EnvVars, parse_bool, parse_duration};
use logship_core::{PipelineConfig, Secret};
use logship_tls::TlsOptions;

use crate::{BulkAction, EcsBuilder, EcsError, EcsLayer, IndexFrequency};

/// Every setting of an [`EcsBuilder`] that text can give: what [`EcsBuilder::from_env`] reads
/// from `LOGSHIP_ES*` variables and, with the feature `serde`, what a configuration file holds
/// (unknown keys are refused; durations are text with a unit, `"10s"`; sizes a number of bytes
/// or text, `"10MiB"`; secrets are [`Secret`]s, never shown by `Debug`).
///
/// | key | variable | setting |
/// |---|---|---|
/// | `hosts` (list) | `LOGSHIP_ES` (comma-separated) | [`EcsLayer::builder`] (required) |
/// | `username`, `password` | `LOGSHIP_ES_USERNAME`, `LOGSHIP_ES_PASSWORD` | [`with_credentials`](EcsBuilder::with_credentials) |
/// | `api_key_id`, `api_key` | `LOGSHIP_ES_API_KEY_ID`, `LOGSHIP_ES_API_KEY` | [`with_api_key`](EcsBuilder::with_api_key) |
/// | `encoded_api_key` | `LOGSHIP_ES_ENCODED_API_KEY` | [`with_encoded_api_key`](EcsBuilder::with_encoded_api_key) |
/// | `bearer_token` | `LOGSHIP_ES_BEARER_TOKEN` | [`with_bearer_token`](EcsBuilder::with_bearer_token) |
/// | `index_prefix` | `LOGSHIP_ES_INDEX_PREFIX` | [`with_index_prefix`](EcsBuilder::with_index_prefix) |
/// | `index_frequency` | `LOGSHIP_ES_INDEX_FREQUENCY` | [`with_index_frequency`](EcsBuilder::with_index_frequency): `daily`, `weekly`, `monthly`, `yearly`, `never` |
/// | `data_stream` | `LOGSHIP_ES_DATA_STREAM` | [`with_data_stream`](EcsBuilder::with_data_stream) (the namespace) |
/// | `dataset` | `LOGSHIP_ES_DATASET` | [`with_dataset`](EcsBuilder::with_dataset) |
/// | `bulk_action` | `LOGSHIP_ES_BULK_ACTION` | [`with_bulk_action`](EcsBuilder::with_bulk_action): `create`, `index` |
/// | `service_name`, `service_version`, `environment` | `LOGSHIP_ES_SERVICE_NAME`, `…_SERVICE_VERSION`, `…_ENVIRONMENT` | [`with_service_name`](EcsBuilder::with_service_name)… |
/// | `host_fields` | `LOGSHIP_ES_HOST_FIELDS` | [`with_host_fields`](EcsBuilder::with_host_fields) |
/// | `gzip` | `LOGSHIP_ES_GZIP` | [`with_gzip`](EcsBuilder::with_gzip) |
/// | `tls_ca` | `LOGSHIP_ES_TLS_CA` | [`with_tls`](EcsBuilder::with_tls)`(TlsOptions::new().with_ca_file(path))` |
/// | `max_request_bytes`, `max_reply_bytes` | `LOGSHIP_ES_MAX_REQUEST_BYTES`, `…_MAX_REPLY_BYTES` | [`with_max_request_bytes`](EcsBuilder::with_max_request_bytes)… |
/// | `connect_timeout` | `LOGSHIP_ES_CONNECT_TIMEOUT` | [`with_connect_timeout`](EcsBuilder::with_connect_timeout) |
/// | `install_template` | `LOGSHIP_ES_INSTALL_TEMPLATE` | [`with_install_template`](EcsBuilder::with_install_template) |
/// | `log_events` | `LOGSHIP_ES_LOG_EVENTS` | [`with_log_events`](EcsBuilder::with_log_events) |
/// | `failure_folder` | `LOGSHIP_ES_FAILURE_FOLDER` | [`with_failure_folder`](EcsBuilder::with_failure_folder) |
/// | `[pipeline]` | `LOGSHIP_ES_<SETTING>`, else `LOGSHIP_PIPELINE_<SETTING>` | [`PipelineConfig`] |
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
#[non_exhaustive]
pub struct EcsConfig {
    /// Elasticsearch URLs, in failover order.
    pub hosts: Vec<String>,
    /// Basic authentication user.
    pub username: Option<String>,
    /// Basic authentication password.
    pub password: Option<Secret>,
    /// API key id.
    pub api_key_id: Option<String>,
    /// API key secret.
    pub api_key: Option<Secret>,
    /// Encoded API key.
    pub encoded_api_key: Option<Secret>,
    /// Bearer token.
    pub bearer_token: Option<Secret>,
    /// Index prefix.
    pub index_prefix: Option<String>,
    /// Index date frequency.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de::frequency"))]
    pub index_frequency: Option<IndexFrequency>,
    /// Data stream namespace.
    pub data_stream: Option<String>,
    /// `event.dataset`.
    pub dataset: Option<String>,
    /// Bulk action.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de::action"))]
    pub bulk_action: Option<BulkAction>,
    /// `service.name`.
    pub service_name: Option<String>,
    /// `service.version`.
    pub service_version: Option<String>,
    /// `service.environment`.
    pub environment: Option<String>,
    /// The `host.*` fields.
    pub host_fields: Option<bool>,
    /// gzip request bodies.
    pub gzip: Option<bool>,
    /// A CA certificate file (PEM) added to the trusted roots.
    pub tls_ca: Option<PathBuf>,
    /// Largest request body, bytes.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::bytes_usize")
    )]
    pub max_request_bytes: Option<usize>,
    /// Reply body cap, bytes.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::bytes_usize")
    )]
    pub max_reply_bytes: Option<usize>,
    /// Connect timeout.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::duration")
    )]
    pub connect_timeout: Option<Duration>,
    /// Install the index template.
    pub install_template: Option<bool>,
    /// Ship log events too.
    pub log_events: Option<bool>,
    /// Dead-letter folder.
    pub failure_folder: Option<PathBuf>,
    /// The pipeline settings.
    pub pipeline: PipelineConfig,
}

fn parse_frequency(s: &str) -> Result<IndexFrequency, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "daily" => Ok(IndexFrequency::Daily),
        "weekly" => Ok(IndexFrequency::Weekly),
        "monthly" => Ok(IndexFrequency::Monthly),
        "yearly" => Ok(IndexFrequency::Yearly),
        "never" => Ok(IndexFrequency::Never),
        _ => Err("one of daily, weekly, monthly, yearly, never".into()),
    }
}

fn parse_action(s: &str) -> Result<BulkAction, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "create" => Ok(BulkAction::Create),
        "index" => Ok(BulkAction::Index),
        _ => Err("create or index".into()),
    }
}

#[cfg(feature = "serde")]
mod de {
    use logship_core::env::de::parsed;
    use serde::Deserializer;

    pub(super) fn frequency<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<crate::IndexFrequency>, D::Error> {
        parsed(d, super::parse_frequency)
    }

    pub(super) fn action<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<crate::BulkAction>, D::Error> {
        parsed(d, super::parse_action)
    }
}

impl EcsConfig {
    /// Reads the `LOGSHIP_ES*` and `LOGSHIP_PIPELINE_*` variables of `env` (see the table),
    /// recording malformed values and a missing `LOGSHIP_ES` there.
    pub fn from_env(env: &mut EnvVars) -> Self {
        let hosts = env
            .required_text(
                "",
                "set it to the Elasticsearch URL, e.g. http://127.0.0.1:9200",
            )
            .map(|h| {
                h.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Self {
            hosts,
            username: env.text("USERNAME"),
            password: env.secret("PASSWORD"),
            api_key_id: env.text("API_KEY_ID"),
            api_key: env.secret("API_KEY"),
            encoded_api_key: env.secret("ENCODED_API_KEY"),
            bearer_token: env.secret("BEARER_TOKEN"),
            index_prefix: env.text("INDEX_PREFIX"),
            index_frequency: env.parsed("INDEX_FREQUENCY", parse_frequency),
            data_stream: env.text("DATA_STREAM"),
            dataset: env.text("DATASET"),
            bulk_action: env.parsed("BULK_ACTION", parse_action),
            service_name: env.text("SERVICE_NAME"),
            service_version: env.text("SERVICE_VERSION"),
            environment: env.text("ENVIRONMENT"),
            host_fields: env.parsed("HOST_FIELDS", parse_bool),
            gzip: env.parsed("GZIP", parse_bool),
            tls_ca: env.path("TLS_CA"),
            max_request_bytes: env.bytes("MAX_REQUEST_BYTES"),
            max_reply_bytes: env.bytes("MAX_REPLY_BYTES"),
            connect_timeout: env.parsed("CONNECT_TIMEOUT", parse_duration),
            install_template: env.parsed("INSTALL_TEMPLATE", parse_bool),
            log_events: env.parsed("LOG_EVENTS", parse_bool),
            failure_folder: env.path("FAILURE_FOLDER"),
            pipeline: PipelineConfig::from_env(env),
        }
    }

    /// The builder with these settings on top of the crate's defaults; it can be configured
    /// further. Conflicting or incomplete authentication (a password without a user name, two
    /// kinds at once) is reported by [`build`](EcsBuilder::build).
    pub fn into_builder(self) -> EcsBuilder {
        let mut b = EcsLayer::builder(self.hosts);
        let mut kinds = Vec::new();
        match (self.username, self.password) {
            (Some(u), Some(p)) => {
                kinds.push("username/password");
                b = b.with_credentials(u, p);
            }
            (None, None) => {}
            _ => {
                b = b.fail(invalid(
                    "username (LOGSHIP_ES_USERNAME) and password (LOGSHIP_ES_PASSWORD) go together: set both",
                ));
            }
        }
        match (self.api_key_id, self.api_key) {
            (Some(id), Some(k)) => {
                kinds.push("api_key_id/api_key");
                b = b.with_api_key(id, k);
            }
            (None, None) => {}
            _ => {
                b = b.fail(invalid(
                    "api_key_id (LOGSHIP_ES_API_KEY_ID) and api_key (LOGSHIP_ES_API_KEY) go together: set both",
                ));
            }
        }
        if let Some(k) = self.encoded_api_key {
            kinds.push("encoded_api_key");
            b = b.with_encoded_api_key(k);
        }
        if let Some(t) = self.bearer_token {
            kinds.push("bearer_token");
            b = b.with_bearer_token(t);
        }
        if kinds.len() > 1 {
            b = b.fail(invalid(&format!(
                "more than one authentication given ({}): keep one",
                kinds.join(", ")
            )));
        }
        if let Some(v) = self.index_prefix {
            b = b.with_index_prefix(v);
        }
        if let Some(v) = self.index_frequency {
            b = b.with_index_frequency(v);
        }
        if let Some(v) = self.data_stream {
            b = b.with_data_stream(v);
        }
        if let Some(v) = self.dataset {
            b = b.with_dataset(v);
        }
        if let Some(v) = self.bulk_action {
            b = b.with_bulk_action(v);
        }
        if let Some(v) = self.service_name {
            b = b.with_service_name(v);
        }
        if let Some(v) = self.service_version {
            b = b.with_service_version(v);
        }
        if let Some(v) = self.environment {
            b = b.with_environment(v);
        }
        if let Some(v) = self.host_fields {
            b = b.with_host_fields(v);
        }
        if let Some(v) = self.gzip {
            b = b.with_gzip(v);
        }
        if let Some(v) = self.tls_ca {
            b = b.with_tls(TlsOptions::new().with_ca_file(v));
        }
        if let Some(v) = self.max_request_bytes {
            b = b.with_max_request_bytes(v);
        }
        if let Some(v) = self.max_reply_bytes {
            b = b.with_max_reply_bytes(v);
        }
        if let Some(v) = self.connect_timeout {
            b = b.with_connect_timeout(v);
        }
        if let Some(v) = self.install_template {
            b = b.with_install_template(v);
        }
        if let Some(v) = self.log_events {
            b = b.with_log_events(v);
        }
        if let Some(v) = self.failure_folder {
            b = b.with_failure_folder(v);
        }
        let pipeline = self.pipeline;
        b.with_pipeline(|p| p.apply_config(pipeline))
    }

    /// `into_builder().build()`.
    ///
    /// # Errors
    /// As [`EcsBuilder::build`].
    pub fn build(self) -> Result<(EcsLayer, logship_core::Guard), EcsError> {
        self.into_builder().build()
    }
}

fn invalid(reason: &str) -> EcsError {
    EcsError::InvalidSetting {
        setting: "the configuration",
        reason: reason.into(),
    }
}

impl EcsBuilder {
    /// A builder configured by the process environment, read once, now: `LOGSHIP_ES` (the
    /// URL, or several separated by commas; required), the `LOGSHIP_ES_*` settings and the
    /// pipeline's `LOGSHIP_ES_<SETTING>` / `LOGSHIP_PIPELINE_<SETTING>` (table at
    /// [`EcsConfig`]; value syntax in `logship_core::env`). Keep configuring it as any
    /// builder. A missing `LOGSHIP_ES`, a malformed value or an unknown `LOGSHIP_ES_*`
    /// variable is reported by [`build`](Self::build), naming each variable and what is
    /// expected (never a secret's value).
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
        let mut env = EnvVars::from_pairs("ES", pairs);
        let b = EcsConfig::from_env(&mut env).into_builder();
        match env.finish() {
            Ok(()) => b,
            Err(e) => b.fail_first(EcsError::InvalidSetting {
                setting: "from_env",
                reason: e.to_string(),
            }),
        }
    }
}
