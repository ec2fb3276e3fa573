//! Configuration without code: [`KustoBuilder::from_env`] (`LOGSHIP_KUSTO*` variables) and
//! [`KustoConfig`] (a configuration file, feature `serde`). Both give the same settings; see
//! docs/configuration.md for the table.

use std::path::PathBuf;
use std::time::Duration;

use logship_core::env::{EnvVars, parse_bool, parse_duration};
use logship_core::{PipelineConfig, Secret};
use logship_tls::TlsOptions;

use crate::{IngestionMode, KustoBuilder, KustoError, KustoLayer, LevelNames};

/// Every setting of a [`KustoBuilder`] that text can give: what [`KustoBuilder::from_env`]
/// reads from `LOGSHIP_KUSTO*` variables and, with the feature `serde`, what a configuration
/// file holds (unknown keys are refused; durations are text with a unit, `"30s"`; sizes a
/// number of bytes or text, `"4MiB"`; secrets are [`Secret`]s, never shown by `Debug`).
///
/// | key | variable | setting |
/// |---|---|---|
/// | `connection_string` | `LOGSHIP_KUSTO` | [`KustoBuilder::from_connection_string`] (secret: it may hold a key) |
/// | `application_key` | `LOGSHIP_KUSTO_APP_KEY` | added to the connection string as `Application Key` |
/// | `cluster` | `LOGSHIP_KUSTO_CLUSTER` | [`with_cluster`](KustoBuilder::with_cluster) |
/// | `ingest_endpoint` | `LOGSHIP_KUSTO_INGEST_ENDPOINT` | [`with_ingest_endpoint`](KustoBuilder::with_ingest_endpoint) |
/// | `database` | `LOGSHIP_KUSTO_DATABASE` | [`with_database`](KustoBuilder::with_database) |
/// | `table` | `LOGSHIP_KUSTO_TABLE` | [`with_table`](KustoBuilder::with_table) (required) |
/// | `mapping_name` | `LOGSHIP_KUSTO_MAPPING_NAME` | [`with_mapping_name`](KustoBuilder::with_mapping_name) |
/// | `ingestion_mode` | `LOGSHIP_KUSTO_INGESTION_MODE` | [`with_ingestion_mode`](KustoBuilder::with_ingestion_mode): `managed`, `streaming`, `queued` |
/// | `create_table` | `LOGSHIP_KUSTO_CREATE_TABLE` | [`with_create_table`](KustoBuilder::with_create_table) |
/// | `call_site_columns` | `LOGSHIP_KUSTO_CALL_SITE_COLUMNS` | [`with_call_site_columns`](KustoBuilder::with_call_site_columns) |
/// | `level_names` | `LOGSHIP_KUSTO_LEVEL_NAMES` | [`with_level_names`](KustoBuilder::with_level_names): `tracing`, `python` |
/// | `managed_identity` | `LOGSHIP_KUSTO_MANAGED_IDENTITY` | [`with_managed_identity`](KustoBuilder::with_managed_identity): `system`, or a user-assigned client id |
/// | `token` | `LOGSHIP_KUSTO_TOKEN` | [`with_token`](KustoBuilder::with_token) |
/// | `login_endpoint` | `LOGSHIP_KUSTO_LOGIN_ENDPOINT` | [`with_login_endpoint`](KustoBuilder::with_login_endpoint) |
/// | `service_name`, `host_name`, `app_name`, `user_name` | `LOGSHIP_KUSTO_SERVICE_NAME`, `…_HOST_NAME`, `…_APP_NAME`, `…_USER_NAME` | [`with_service_name`](KustoBuilder::with_service_name)… |
/// | `max_request_bytes`, `max_reply_bytes` | `LOGSHIP_KUSTO_MAX_REQUEST_BYTES`, `…_MAX_REPLY_BYTES` | [`with_max_request_bytes`](KustoBuilder::with_max_request_bytes)… |
/// | `fallback_after_attempts` | `LOGSHIP_KUSTO_FALLBACK_AFTER_ATTEMPTS` | [`with_fallback_after_attempts`](KustoBuilder::with_fallback_after_attempts) |
/// | `request_timeout`, `connect_timeout` | `LOGSHIP_KUSTO_REQUEST_TIMEOUT`, `…_CONNECT_TIMEOUT` | [`with_request_timeout`](KustoBuilder::with_request_timeout)… |
/// | `tls_ca` | `LOGSHIP_KUSTO_TLS_CA` | [`with_tls`](KustoBuilder::with_tls)`(TlsOptions::new().with_ca_file(path))` |
/// | `[pipeline]` | `LOGSHIP_KUSTO_<SETTING>`, else `LOGSHIP_PIPELINE_<SETTING>` | [`PipelineConfig`] |
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
#[non_exhaustive]
pub struct KustoConfig {
    /// A Kusto connection string.
    pub connection_string: Option<Secret>,
    /// An application key added to the connection string.
    pub application_key: Option<Secret>,
    /// Cluster URL.
    pub cluster: Option<String>,
    /// Data-management endpoint.
    pub ingest_endpoint: Option<String>,
    /// Database.
    pub database: Option<String>,
    /// Table.
    pub table: Option<String>,
    /// Ingestion mapping name.
    pub mapping_name: Option<String>,
    /// Ingestion mode.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de::mode"))]
    pub ingestion_mode: Option<IngestionMode>,
    /// Create the table and mapping at start.
    pub create_table: Option<bool>,
    /// Call-site columns.
    pub call_site_columns: Option<bool>,
    /// Level names.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de::level_names"))]
    pub level_names: Option<LevelNames>,
    /// Managed identity: `system` or a client id.
    pub managed_identity: Option<String>,
    /// A fixed bearer token.
    pub token: Option<Secret>,
    /// AAD login endpoint.
    pub login_endpoint: Option<String>,
    /// `Service` column.
    pub service_name: Option<String>,
    /// `Host` column.
    pub host_name: Option<String>,
    /// `x-ms-app`.
    pub app_name: Option<String>,
    /// `x-ms-user`.
    pub user_name: Option<String>,
    /// Bytes per streaming request.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::bytes_usize")
    )]
    pub max_request_bytes: Option<usize>,
    /// Reply body cap.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::bytes_usize")
    )]
    pub max_reply_bytes: Option<usize>,
    /// Attempt that falls back to queued ingestion.
    pub fallback_after_attempts: Option<u32>,
    /// Request timeout.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::duration")
    )]
    pub request_timeout: Option<Duration>,
    /// Connect timeout.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::duration")
    )]
    pub connect_timeout: Option<Duration>,
    /// A CA certificate file (PEM) added to the trusted roots.
    pub tls_ca: Option<PathBuf>,
    /// The pipeline settings.
    pub pipeline: PipelineConfig,
}

fn parse_mode(s: &str) -> Result<IngestionMode, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "managed" => Ok(IngestionMode::Managed),
        "streaming" => Ok(IngestionMode::Streaming),
        "queued" => Ok(IngestionMode::Queued),
        _ => Err("managed, streaming or queued".into()),
    }
}

fn parse_level_names(s: &str) -> Result<LevelNames, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "tracing" => Ok(LevelNames::Tracing),
        "python" => Ok(LevelNames::Python),
        _ => Err("tracing or python".into()),
    }
}

#[cfg(feature = "serde")]
mod de {
    use logship_core::env::de::parsed;
    use serde::Deserializer;

    pub(super) fn mode<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<crate::IngestionMode>, D::Error> {
        parsed(d, super::parse_mode)
    }

    pub(super) fn level_names<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<crate::LevelNames>, D::Error> {
        parsed(d, super::parse_level_names)
    }
}

/// `cs` with `Application Key="<key>"` appended (quotes doubled, as the connection string
/// syntax asks).
fn with_application_key(cs: &str, key: &str) -> String {
    let base = cs.trim_end().trim_end_matches(';');
    format!("{base};Application Key=\"{}\"", key.replace('"', "\"\""))
}

impl KustoConfig {
    /// Reads the `LOGSHIP_KUSTO*` and `LOGSHIP_PIPELINE_*` variables of `env` (see the table),
    /// recording malformed values and a missing `LOGSHIP_KUSTO_TABLE` there.
    pub fn from_env(env: &mut EnvVars) -> Self {
        Self {
            connection_string: env.secret(""),
            application_key: env.secret("APP_KEY"),
            cluster: env.text("CLUSTER"),
            ingest_endpoint: env.text("INGEST_ENDPOINT"),
            database: env.text("DATABASE"),
            table: env.required_text("TABLE", "set it to the table to ingest into, e.g. Logs"),
            mapping_name: env.text("MAPPING_NAME"),
            ingestion_mode: env.parsed("INGESTION_MODE", parse_mode),
            create_table: env.parsed("CREATE_TABLE", parse_bool),
            call_site_columns: env.parsed("CALL_SITE_COLUMNS", parse_bool),
            level_names: env.parsed("LEVEL_NAMES", parse_level_names),
            managed_identity: env.text("MANAGED_IDENTITY"),
            token: env.secret("TOKEN"),
            login_endpoint: env.text("LOGIN_ENDPOINT"),
            service_name: env.text("SERVICE_NAME"),
            host_name: env.text("HOST_NAME"),
            app_name: env.text("APP_NAME"),
            user_name: env.text("USER_NAME"),
            max_request_bytes: env.bytes("MAX_REQUEST_BYTES"),
            max_reply_bytes: env.bytes("MAX_REPLY_BYTES"),
            fallback_after_attempts: env.count("FALLBACK_AFTER_ATTEMPTS"),
            request_timeout: env.parsed("REQUEST_TIMEOUT", parse_duration),
            connect_timeout: env.parsed("CONNECT_TIMEOUT", parse_duration),
            tls_ca: env.path("TLS_CA"),
            pipeline: PipelineConfig::from_env(env),
        }
    }

    /// The builder with these settings on top of the crate's defaults (the connection string
    /// first, the other settings over it); it can be configured further. A connection string
    /// that does not parse, an application key without one, or two kinds of credentials are
    /// reported by [`build`](KustoBuilder::build).
    pub fn into_builder(self) -> KustoBuilder {
        let mut b = match (&self.connection_string, &self.application_key) {
            (Some(cs), key) => {
                let cs = match key {
                    Some(k) => with_application_key(cs.expose(), k.expose()),
                    None => cs.expose().to_string(),
                };
                match KustoBuilder::from_connection_string(&cs) {
                    Ok(b) => b,
                    Err(e) => KustoBuilder::new().defer(KustoError::ConnectionString(e)),
                }
            }
            (None, Some(_)) => KustoBuilder::new().defer(KustoError::invalid(
                "application_key",
                "(LOGSHIP_KUSTO_APP_KEY) needs a connection string (LOGSHIP_KUSTO) naming \
                 `Application Client Id` and `Authority Id`",
            )),
            (None, None) => KustoBuilder::new(),
        };
        macro_rules! set {
            ($field:ident, $method:ident) => {
                if let Some(v) = self.$field {
                    b = b.$method(v);
                }
            };
        }
        set!(cluster, with_cluster);
        set!(ingest_endpoint, with_ingest_endpoint);
        set!(database, with_database);
        set!(table, with_table);
        set!(mapping_name, with_mapping_name);
        set!(ingestion_mode, with_ingestion_mode);
        set!(create_table, with_create_table);
        set!(call_site_columns, with_call_site_columns);
        set!(level_names, with_level_names);
        set!(login_endpoint, with_login_endpoint);
        set!(service_name, with_service_name);
        set!(host_name, with_host_name);
        set!(app_name, with_app_name);
        set!(user_name, with_user_name);
        set!(max_request_bytes, with_max_request_bytes);
        set!(max_reply_bytes, with_max_reply_bytes);
        set!(fallback_after_attempts, with_fallback_after_attempts);
        set!(request_timeout, with_request_timeout);
        set!(connect_timeout, with_connect_timeout);
        let credentials_in_cs = b.has_credentials();
        let mut kinds = Vec::new();
        if credentials_in_cs {
            kinds.push("the connection string's");
        }
        if let Some(mi) = self.managed_identity {
            kinds.push("managed_identity");
            let id = (!mi.eq_ignore_ascii_case("system")).then_some(mi);
            b = b.with_managed_identity(id.as_deref());
        }
        if let Some(t) = self.token {
            kinds.push("token");
            b = b.with_token(t);
        }
        if kinds.len() > 1 {
            b = b.defer(KustoError::invalid(
                "the configuration",
                format!(
                    "names more than one kind of credentials ({}): keep one",
                    kinds.join(", ")
                ),
            ));
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
    /// As [`KustoBuilder::build`].
    pub fn build(self) -> Result<(KustoLayer, logship_core::Guard), KustoError> {
        self.into_builder().build()
    }
}

impl KustoBuilder {
    /// A builder configured by the process environment, read once, now: `LOGSHIP_KUSTO` (the
    /// connection string), `LOGSHIP_KUSTO_TABLE` (required), the other `LOGSHIP_KUSTO_*`
    /// settings and the pipeline's `LOGSHIP_KUSTO_<SETTING>` / `LOGSHIP_PIPELINE_<SETTING>`
    /// (table at [`KustoConfig`]; value syntax in `logship_core::env`). Keep configuring it as
    /// any builder. A malformed value, a missing table or an unknown `LOGSHIP_KUSTO_*`
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
        let mut env = EnvVars::from_pairs("KUSTO", pairs);
        let b = KustoConfig::from_env(&mut env).into_builder();
        match env.finish() {
            Ok(()) => b,
            Err(e) => b.defer_first(KustoError::invalid("from_env", e.to_string())),
        }
    }
}
