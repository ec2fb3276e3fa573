//! [`KustoBuilder`]: where to send, how to authenticate, which ingestion mode, and the core
//! pipeline settings, validated by [`build`](KustoBuilder::build).
//!
//! | setting | default |
//! |---|---|
//! | cluster, database, table | none: required ([`from_connection_string`](KustoBuilder::from_connection_string) or [`with_cluster`](KustoBuilder::with_cluster) / [`with_database`](KustoBuilder::with_database) / [`with_table`](KustoBuilder::with_table)) |
//! | credentials | none: required (application key, managed identity, token, token provider, or explicitly none) |
//! | [`with_ingestion_mode`](KustoBuilder::with_ingestion_mode) | [`IngestionMode::Managed`]: streaming, queued as fallback |
//! | [`with_mapping_name`](KustoBuilder::with_mapping_name) | [`DEFAULT_MAPPING_NAME`] (`logship_v1`) |
//! | [`with_create_table`](KustoBuilder::with_create_table) | off |
//! | [`with_call_site_columns`](KustoBuilder::with_call_site_columns) | off |
//! | [`with_level_names`](KustoBuilder::with_level_names) | [`LevelNames::Tracing`] (`WARN`) |
//! | [`with_max_request_bytes`](KustoBuilder::with_max_request_bytes) | 4 MiB of uncompressed rows per streaming request |
//! | [`with_fallback_after_attempts`](KustoBuilder::with_fallback_after_attempts) | 3 |
//! | [`with_request_timeout`](KustoBuilder::with_request_timeout) | 30 s per HTTP request |
//! | [`with_connect_timeout`](KustoBuilder::with_connect_timeout) | 10 s per connection (TCP and TLS handshake) |
//! | [`with_max_reply_bytes`](KustoBuilder::with_max_reply_bytes) | 1 MiB per reply body |
//! | login endpoint | the cluster's auth metadata (only a known Microsoft Entra authority host), else `$AadAuthorityUri`, else `https://login.microsoftonline.com` |
//! | [`with_tls`](KustoBuilder::with_tls) | `TlsOptions::default()`: the OS trust store (bundled Mozilla roots when it is empty) |
//! | `x-ms-app` / `x-ms-user` | executable name / `$USER` (`[none]`) |
//! | core: max records per batch | 8 192 (the original's `capacity`) |
//! | core: max bytes per batch | 8 MiB (estimated, before encoding; split into ≤ 4 MiB requests) |
//! | core: queue | 65 536 records / 32 MiB |
//! | core: flush level | ERROR (the original's `flushLevel`) |
//! | core: send timeout | 60 s (one batch may take several requests) |

use std::time::Duration;

use logship_core::{Guard, PipelineBuilder};
use logship_http::HttpOptions;
use logship_tls::TlsOptions;

use crate::KustoLayer;
use crate::auth::{Auth, Credentials, TokenProvider};
use crate::connection_string;
use crate::encode::{LevelNames, RowEncoder, TableLayout};
use crate::error::{KustoError, Secret};
use crate::sink::{KustoSink, Settings};
use crate::transport::Telemetry;

/// The ingestion mapping name used unless [`KustoBuilder::with_mapping_name`] says otherwise.
pub const DEFAULT_MAPPING_NAME: &str = "logship_v1";
/// The streaming ingestion limit: 4 MiB per request (the Azure Data Explorer REST API documentation, <https://learn.microsoft.com/azure/data-explorer/kusto/api/rest/>).
pub const STREAMING_LIMIT_BYTES: usize = 4 * 1024 * 1024;

/// How batches reach the table (the original's `useStreaming`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IngestionMode {
    /// Streaming ingestion only (`POST /v1/rest/ingest/…`): rows are queryable within seconds;
    /// the cluster must have streaming ingestion enabled. Rows too big for one request are
    /// undelivered.
    Streaming,
    /// Queued ingestion only (blob + queue message through the `ingest-` endpoint): no size
    /// limit, no streaming policy needed; rows appear after the table's batching policy.
    Queued,
    /// Streaming, with queued ingestion for rows over the streaming limit, when the cluster
    /// answers 404 (streaming disabled), and after
    /// [`with_fallback_after_attempts`](KustoBuilder::with_fallback_after_attempts) throttled
    /// or transiently failed attempts of a batch (default) — the official managed client's
    /// behaviour.
    #[default]
    Managed,
}

/// Configures a [`KustoLayer`].
///
/// | setting | default |
/// |---|---|
/// | cluster, database, table | none: required ([`from_connection_string`](KustoBuilder::from_connection_string) or [`with_cluster`](KustoBuilder::with_cluster) / [`with_database`](KustoBuilder::with_database) / [`with_table`](KustoBuilder::with_table)) |
/// | credentials | none: required (application key, managed identity, token, token provider, or explicitly none) |
/// | [`with_ingestion_mode`](KustoBuilder::with_ingestion_mode) | [`IngestionMode::Managed`]: streaming, queued as fallback |
/// | [`with_mapping_name`](KustoBuilder::with_mapping_name) | [`DEFAULT_MAPPING_NAME`] (`logship_v1`) |
/// | [`with_create_table`](KustoBuilder::with_create_table) | off |
/// | [`with_call_site_columns`](KustoBuilder::with_call_site_columns) | off |
/// | [`with_level_names`](KustoBuilder::with_level_names) | [`LevelNames::Tracing`] (`WARN`) |
/// | [`with_max_request_bytes`](KustoBuilder::with_max_request_bytes) | 4 MiB of uncompressed rows per streaming request |
/// | [`with_gzip_level`](KustoBuilder::with_gzip_level) | 1 (fastest) |
/// | [`with_fallback_after_attempts`](KustoBuilder::with_fallback_after_attempts) | 3 |
/// | [`with_request_timeout`](KustoBuilder::with_request_timeout) | 30 s per HTTP request |
/// | [`with_connect_timeout`](KustoBuilder::with_connect_timeout) | 10 s per connection (TCP and TLS handshake) |
/// | [`with_max_reply_bytes`](KustoBuilder::with_max_reply_bytes) | 1 MiB per reply body |
/// | login endpoint | the cluster's auth metadata (only a known Microsoft Entra authority host), else `$AadAuthorityUri`, else `https://login.microsoftonline.com` |
/// | [`with_tls`](KustoBuilder::with_tls) | [`TlsOptions::default`]: the OS trust store (bundled Mozilla roots when it is empty) |
/// | `x-ms-app` / `x-ms-user` | executable name / `$USER` (`[none]`) |
/// | core: max records per batch | 8 192 (the original's `capacity`) |
/// | core: max bytes per batch | 8 MiB (estimated, before encoding; split into ≤ 4 MiB requests) |
/// | core: queue | 65 536 records / 32 MiB |
/// | core: flush level | ERROR (the original's `flushLevel`) |
/// | core: send timeout | 60 s (one batch may take several requests) |
///
/// Setters never fail: a bad value is kept and reported by [`build`](Self::build).
#[must_use]
pub struct KustoBuilder {
    cluster: Option<String>,
    ingest_endpoint: Option<String>,
    database: Option<String>,
    table: Option<String>,
    mapping: Option<String>,
    mode: IngestionMode,
    credentials: Credentials,
    federated: Option<bool>,
    login_endpoint: Option<String>,
    service: Option<String>,
    app: Option<String>,
    user: Option<String>,
    host: Option<String>,
    create_table: bool,
    layout: TableLayout,
    max_request_bytes: usize,
    gzip_level: u32,
    fallback_after_attempts: u32,
    request_timeout: Duration,
    connect_timeout: Duration,
    max_reply_bytes: usize,
    tls: TlsOptions,
    pipeline: PipelineBuilder,
    /// A problem found by `from_env` or a `KustoConfig`, reported by `build()`.
    deferred: Option<KustoError>,
}

impl std::fmt::Debug for KustoBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KustoBuilder")
            .field("cluster", &self.cluster.as_deref().map(redact_url))
            .field("database", &self.database)
            .field("table", &self.table)
            .field("mapping", &self.mapping)
            .field("mode", &self.mode)
            .field("layout", &self.layout)
            .field("credentials", &self.credentials)
            .field("login_endpoint", &self.login_endpoint)
            .field(
                "ingest_endpoint",
                &self.ingest_endpoint.as_deref().map(redact_url),
            )
            .field("service", &self.service)
            .field("host", &self.host)
            .field("app", &self.app)
            .field("user", &self.user)
            .field("create_table", &self.create_table)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("fallback_after_attempts", &self.fallback_after_attempts)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_reply_bytes", &self.max_reply_bytes)
            .field("tls", &self.tls)
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

impl Default for KustoBuilder {
    fn default() -> Self {
        Self {
            cluster: None,
            ingest_endpoint: None,
            database: None,
            table: None,
            mapping: Some(DEFAULT_MAPPING_NAME.to_string()),
            mode: IngestionMode::default(),
            credentials: Credentials::Unset,
            federated: None,
            login_endpoint: None,
            service: None,
            app: None,
            user: None,
            host: None,
            create_table: false,
            layout: TableLayout::new(),
            max_request_bytes: STREAMING_LIMIT_BYTES,
            gzip_level: crate::encode::GZIP_LEVEL,
            fallback_after_attempts: 3,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_reply_bytes: logship_http::DEFAULT_MAX_REPLY_BYTES,
            tls: TlsOptions::default(),
            pipeline: PipelineBuilder::new()
                .with_max_batch_records(8192)
                .with_max_batch_bytes(8 * 1024 * 1024)
                .with_max_queue_records(65_536)
                .with_send_timeout(Duration::from_secs(60)),
            deferred: None,
        }
    }
}

impl KustoBuilder {
    /// Keeps the first problem for `build()`.
    pub(crate) fn defer(mut self, e: KustoError) -> Self {
        if self.deferred.is_none() {
            self.deferred = Some(e);
        }
        self
    }

    /// Puts `e` ahead of any problem kept before (the environment's problems explain the
    /// others).
    pub(crate) fn defer_first(mut self, e: KustoError) -> Self {
        self.deferred = Some(e);
        self
    }

    /// Whether credentials are set (not `Unset`).
    pub(crate) fn has_credentials(&self) -> bool {
        !matches!(self.credentials, Credentials::Unset)
    }

    /// An empty builder (the same as [`KustoLayer::builder`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder from a Kusto connection string, e.g.
    /// `Data Source=https://help.westeurope.kusto.windows.net;Initial Catalog=Logs;AAD Federated Security=True;Application Client Id=…;Application Key=…;Authority Id=…`.
    /// Keywords and aliases: [`connection_string`].
    ///
    /// # Errors
    /// [`ConnectionStringError`](crate::ConnectionStringError), naming the keyword at fault.
    pub fn from_connection_string(s: &str) -> Result<Self, crate::ConnectionStringError> {
        let cs = connection_string::parse(s)?;
        let mut b = Self {
            cluster: cs.data_source,
            database: cs.database,
            federated: cs.federated,
            app: cs.app_name,
            user: cs.user_name,
            ..Self::default()
        };
        if let (Some(client_id), Some(key), Some(tenant)) = (cs.client_id, cs.app_key, cs.authority)
        {
            b.credentials = Credentials::ApplicationKey {
                client_id,
                key,
                tenant,
            };
        } else if let Some(t) = cs.app_token {
            b.credentials = Credentials::Static(t);
        }
        Ok(b)
    }

    /// The cluster (engine) URL, e.g. `https://help.westeurope.kusto.windows.net`. An
    /// `ingest-` prefix is removed for streaming and added for queued ingestion (not for IP
    /// addresses and `localhost`).
    pub fn with_cluster(self, url: impl Into<String>) -> Self {
        Self {
            cluster: Some(url.into()),
            ..self
        }
    }
    /// The data-management endpoint for queued ingestion, when it is not the cluster URL with
    /// `ingest-` in front of the host.
    pub fn with_ingest_endpoint(self, url: impl Into<String>) -> Self {
        Self {
            ingest_endpoint: Some(url.into()),
            ..self
        }
    }
    /// The database.
    pub fn with_database(self, db: impl Into<String>) -> Self {
        Self {
            database: Some(db.into()),
            ..self
        }
    }
    /// The table (required).
    pub fn with_table(self, table: impl Into<String>) -> Self {
        Self {
            table: Some(table.into()),
            ..self
        }
    }
    /// The JSON ingestion mapping to reference (default [`DEFAULT_MAPPING_NAME`]); create it
    /// with [`create_mapping_command`](crate::create_mapping_command) or
    /// [`with_create_table`](Self::with_create_table).
    pub fn with_mapping_name(self, name: impl Into<String>) -> Self {
        Self {
            mapping: Some(name.into()),
            ..self
        }
    }
    /// Send no mapping reference: Kusto's identity mapping places each JSON property in the
    /// column of the same name (the table must have this crate's [`COLUMNS`](crate::COLUMNS),
    /// plus the opt-in columns you enabled), and `with_create_table` creates no mapping.
    ///
    /// **A deviation from the streaming ingestion REST documentation**, which says
    /// `mappingName` is "Optional, but Required if `streamFormat` is one of `JSON`,
    /// `MultiJSON`, or `Avro`" (<https://learn.microsoft.com/kusto/api/rest/streaming-ingest>).
    /// The default therefore sends a mapping ([`DEFAULT_MAPPING_NAME`]). This setting exists
    /// because the service is reported to accept multijson without one: the ingestion
    /// mappings documentation says "Ingestion is possible without specifying a mapping"
    /// (<https://learn.microsoft.com/kusto/management/mappings>, identity mapping), the
    /// official clients dropped their "mapping required" check (`Azure/azure-kusto-java` pull
    /// request 211; `Azure/azure-kusto-python` pull request 359 closed unmerged), and a Kusto
    /// maintainer wrote that "all formats ingested to kusto can be ingested without any
    /// mapping" (`Azure/kafka-sink-azure-kusto` issue 76). Queued ingestion documents the
    /// identity mapping; for streaming, a service that follows the REST documentation answers
    /// 400 and the rows are rejected (not retried) with its message, which names `mappingName`.
    pub fn without_mapping(self) -> Self {
        Self {
            mapping: None,
            ..self
        }
    }
    /// Streaming, queued, or managed (default) ingestion.
    pub fn with_ingestion_mode(self, mode: IngestionMode) -> Self {
        Self { mode, ..self }
    }
    /// At start, run `.create-merge table` and `.create-or-alter … ingestion json mapping`
    /// (see [`create_table_command`](crate::create_table_command)) on the cluster; needs
    /// the Table Admin (or Database Admin) role. A failure is counted in the stats and
    /// sending proceeds.
    pub fn with_create_table(self, on: bool) -> Self {
        Self {
            create_table: on,
            ..self
        }
    }

    /// Also write the call-site columns (default off): `File`, `Line`, `Module`,
    /// `ProcessId`, `ThreadName`, `ThreadId` ([`CALL_SITE_COLUMNS`](crate::CALL_SITE_COLUMNS)),
    /// what the original Python `KustoHandler`'s table had as `pathname`, `lineno`, `module`,
    /// `process`, `threadName` and `thread`. The table needs the columns: `with_create_table`
    /// adds them (`.create-merge table` adds missing columns to an existing table), or run
    /// [`TableLayout::create_table_command`](crate::TableLayout::create_table_command) and
    /// [`create_mapping_command`](crate::TableLayout::create_mapping_command) yourself.
    pub fn with_call_site_columns(self, on: bool) -> Self {
        Self {
            layout: self.layout.with_call_site_columns(on),
            ..self
        }
    }
    /// How the `Level` column names levels (default [`LevelNames::Tracing`]: `WARN`);
    /// [`LevelNames::Python`] writes `WARNING` as the original `KustoHandler` did, and adds
    /// the `LevelNo` column (Python's level number).
    pub fn with_level_names(self, names: LevelNames) -> Self {
        Self {
            layout: self.layout.with_level_names(names),
            ..self
        }
    }

    /// Client credentials: AAD application (client) id, its key, and the tenant (id or domain).
    pub fn with_application_key(
        self,
        client_id: impl Into<String>,
        key: impl Into<Secret>,
        tenant: impl Into<String>,
    ) -> Self {
        Self {
            credentials: Credentials::ApplicationKey {
                client_id: client_id.into(),
                key: key.into(),
                tenant: tenant.into(),
            },
            ..self
        }
    }
    /// Managed identity: system-assigned (`None`) or user-assigned by client id. Uses App
    /// Service's `IDENTITY_ENDPOINT`/`IDENTITY_HEADER` when set, else the instance metadata
    /// service `http://169.254.169.254`.
    pub fn with_managed_identity(self, client_id: Option<&str>) -> Self {
        Self {
            credentials: Credentials::ManagedIdentity {
                client_id: client_id.map(str::to_string),
                endpoint: None,
            },
            ..self
        }
    }
    /// A fixed bearer token (it is never refreshed: for tests and short-lived tools).
    pub fn with_token(self, token: impl Into<Secret>) -> Self {
        Self {
            credentials: Credentials::Static(token.into()),
            ..self
        }
    }
    /// Tokens from `provider` (see [`TokenProvider`]).
    pub fn with_token_provider(self, provider: impl TokenProvider) -> Self {
        Self {
            credentials: Credentials::Provider(std::sync::Arc::new(provider)),
            ..self
        }
    }
    /// Send no `Authorization` header (local emulators only).
    pub fn with_no_authentication(self) -> Self {
        Self {
            credentials: Credentials::None,
            ..self
        }
    }
    /// The AAD login endpoint (authority host), e.g. `https://login.microsoftonline.us`;
    /// overrides the cluster's metadata. The environment variable `AadAuthorityUri` is the
    /// fallback when the cluster publishes no metadata.
    ///
    /// The client secret goes to this endpoint. Without this setting, a login endpoint named by
    /// the cluster's (unauthenticated) metadata is used only when it is one of the
    /// [`KNOWN_AUTHORITY_HOSTS`](crate::auth::KNOWN_AUTHORITY_HOSTS) over `https` (or equals
    /// `AadAuthorityUri`); name any other authority you trust here.
    ///
    /// `build()` refuses a URL that is not `https`, except plain `http` on a loopback address
    /// (`127.0.0.1`, `[::1]`, `localhost`) for local emulators.
    pub fn with_login_endpoint(self, url: impl Into<String>) -> Self {
        Self {
            login_endpoint: Some(url.into()),
            ..self
        }
    }

    /// The `Service` column, and the default source FQN `APPL=<service>#SERVER=<host>`.
    pub fn with_service_name(self, service: impl Into<String>) -> Self {
        let service = service.into();
        Self {
            pipeline: self.pipeline.with_service_name(&service),
            service: Some(service),
            ..self
        }
    }
    /// The `Host` column (default: this machine's host name).
    pub fn with_host_name(self, host: impl Into<String>) -> Self {
        Self {
            host: Some(host.into()),
            ..self
        }
    }
    /// The `x-ms-app` header (default: the executable's name).
    pub fn with_app_name(self, app: impl Into<String>) -> Self {
        Self {
            app: Some(app.into()),
            ..self
        }
    }
    /// The `x-ms-user` header (default: `$USER`, else `[none]`).
    pub fn with_user_name(self, user: impl Into<String>) -> Self {
        Self {
            user: Some(user.into()),
            ..self
        }
    }

    /// Most uncompressed bytes of rows per streaming request (default and maximum 4 MiB, at
    /// least 1 KiB). The limit is applied before compression, so the gzip body is smaller
    /// still: both readings of the service's 4 MB limit hold.
    pub fn with_max_request_bytes(self, n: usize) -> Self {
        Self {
            max_request_bytes: n,
            ..self
        }
    }
    /// The gzip (deflate) level of request bodies: 0 (stored, no compression) to 9 (smallest,
    /// slowest); default 1, the fastest level that compresses. The streaming request limit
    /// applies to the uncompressed rows, so a higher level only saves wire bytes, at several
    /// times the worker's CPU per row (zlib's levels, RFC 1951; with the workspace's zlib-rs
    /// backend, level 1 is its `deflate_quick`). Raise it for a metered or slow link.
    pub fn with_gzip_level(self, level: u32) -> Self {
        Self {
            gzip_level: level,
            ..self
        }
    }
    /// In [`IngestionMode::Managed`], the attempt of a batch from which a throttled or
    /// transiently failed streaming request falls back to queued ingestion (default 3: two
    /// retries with the core's backoff first; 1 = at the first failure).
    pub fn with_fallback_after_attempts(self, n: u32) -> Self {
        Self {
            fallback_after_attempts: n,
            ..self
        }
    }
    /// Timeout of one whole HTTP request, reply body included (default 30 s; 1 ms to 10 min).
    /// Applies to every request: streaming ingestion, control commands, the auth metadata,
    /// token and managed-identity endpoints, Azure Storage.
    pub fn with_request_timeout(self, d: Duration) -> Self {
        Self {
            request_timeout: d,
            ..self
        }
    }
    /// Timeout of establishing one connection, TCP and TLS handshake (default 10 s; 1 ms to
    /// 10 min).
    pub fn with_connect_timeout(self, d: Duration) -> Self {
        Self {
            connect_timeout: d,
            ..self
        }
    }
    /// Cap on each reply body, in bytes (default 1 MiB; 1 KiB to 1 GiB). A reply announcing a
    /// larger `Content-Length` is not read, a longer body is cut at the cap; either way the
    /// request's verdict comes from its status, and the error says the body was cut. Kusto's
    /// answers (OneApi errors, tokens, ingestion resources) are a few KiB.
    pub fn with_max_reply_bytes(self, n: usize) -> Self {
        Self {
            max_reply_bytes: n,
            ..self
        }
    }
    /// How server certificates are checked, for every request (cluster, login endpoint,
    /// Azure Storage): see [`TlsOptions`]. The default trusts the OS trust store.
    ///
    /// [`TlsOptions::with_ca_pem`] / [`with_ca_file`](TlsOptions::with_ca_file) **add** a CA
    /// to the OS roots; add [`with_only_custom_roots(true)`](TlsOptions::with_only_custom_roots)
    /// to trust only your CAs (what this crate's former `with_ca_pem` did).
    /// [`TlsOptions::danger_accept_invalid_certs`] turns verification off (tests only: anyone
    /// on the path could read the rows and the tokens) and warns at `build()`.
    /// `TlsOptions::with_server_name` is refused by `build()`: put the certificate's name in
    /// the cluster URL.
    pub fn with_tls(self, tls: TlsOptions) -> Self {
        Self { tls, ..self }
    }
    /// Changes core pipeline settings (batching, queue, retry, flush level…), starting from
    /// this crate's defaults (see [`KustoBuilder`]).
    pub fn with_pipeline(self, f: impl FnOnce(PipelineBuilder) -> PipelineBuilder) -> Self {
        Self {
            pipeline: f(self.pipeline),
            ..self
        }
    }

    /// Validates the settings, starts the worker, and returns the layer and its guard.
    ///
    /// # Errors
    /// [`KustoError`] naming the missing or invalid setting (cluster, database, table, mapping
    /// name, credentials, request size), [`KustoError::Http`] for unusable HTTP or TLS settings
    /// (timeouts or reply cap out of range, an unreadable or malformed CA or client
    /// certificate: the TLS configuration is built here), or the invalid pipeline setting.
    pub fn build(self) -> Result<(KustoLayer, Guard), KustoError> {
        if let Some(e) = self.deferred {
            return Err(e);
        }
        let cluster = self.cluster.ok_or_else(|| {
            KustoError::invalid(
                "with_cluster",
                "is not set: give the cluster URL or a connection string with `Data Source`",
            )
        })?;
        // Credentials never belong in these URLs, and a password holding `/` or `?` hides its
        // `@` from a URL parser: refuse any `@` without showing the URL.
        for (setting, u) in [
            ("with_cluster", Some(cluster.as_str())),
            ("with_ingest_endpoint", self.ingest_endpoint.as_deref()),
        ] {
            if u.is_some_and(|u| u.contains('@')) {
                return Err(KustoError::invalid(
                    setting,
                    "the URL holds `@`, as a URL with credentials does (not shown); give credentials with the builder's credential settings",
                ));
            }
        }
        let cluster_url = logship_http::Url::parse(&cluster)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                KustoError::invalid(
                    "with_cluster",
                    format!("`{}` is not an http(s) URL", redact_url(&cluster)),
                )
            })?;
        let engine = endpoint(&cluster_url, false);
        let ingest = match &self.ingest_endpoint {
            Some(u) => logship_http::Url::parse(u)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .map(|u| u.as_str().trim_end_matches('/').to_string())
                .ok_or_else(|| {
                    KustoError::invalid(
                        "with_ingest_endpoint",
                        format!("`{}` is not an http(s) URL", redact_url(u)),
                    )
                })?,
            None => endpoint(&cluster_url, true),
        };
        let database = self
            .database
            .filter(|d| !d.trim().is_empty())
            .ok_or_else(|| {
                KustoError::invalid(
                    "with_database",
                    "is not set: name the database (or `Initial Catalog` in the connection string)",
                )
            })?;
        check_name("with_database", &database)?;
        let table = self.table.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
            KustoError::invalid("with_table", "is not set: name the table to ingest into")
        })?;
        check_name("with_table", &table)?;
        if let Some(m) = &self.mapping
            && (m.is_empty()
                || !m
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            return Err(KustoError::invalid(
                "with_mapping_name",
                format!("`{m}` is not a valid mapping name: use letters, digits, `_`, `-` and `.`"),
            ));
        }
        if !(1024..=STREAMING_LIMIT_BYTES).contains(&self.max_request_bytes) {
            return Err(KustoError::invalid(
                "with_max_request_bytes",
                format!(
                    "is {} bytes; use 1024 ..= {STREAMING_LIMIT_BYTES} (the streaming ingestion limit)",
                    self.max_request_bytes
                ),
            ));
        }
        if self.gzip_level > 9 {
            return Err(KustoError::invalid(
                "with_gzip_level",
                format!(
                    "is {}; use 0 (no compression) ..= 9 (smallest)",
                    self.gzip_level
                ),
            ));
        }
        if self.fallback_after_attempts == 0 {
            return Err(KustoError::invalid(
                "with_fallback_after_attempts",
                "is 0; use 1 or more",
            ));
        }
        match &self.credentials {
            Credentials::Unset if self.federated == Some(true) => {
                return Err(KustoError::invalid(
                    "AAD Federated Security",
                    "is True but no credentials were given: add `Application Client Id`, `Application Key` and \
                     `Authority Id` (or `Application Token`), or call with_application_key / with_managed_identity / \
                     with_token_provider",
                ));
            }
            Credentials::Unset => {
                return Err(KustoError::invalid(
                    "with_application_key",
                    "no credentials: call with_application_key, with_managed_identity, with_token, \
                     with_token_provider, or with_no_authentication (emulators)",
                ));
            }
            Credentials::ApplicationKey {
                client_id,
                key,
                tenant,
            } if client_id.trim().is_empty()
                || key.expose().is_empty()
                || tenant.trim().is_empty() =>
            {
                return Err(KustoError::invalid(
                    "with_application_key",
                    "needs a non-empty client id, key and tenant",
                ));
            }
            _ => {}
        }
        if let Some(l) = &self.login_endpoint
            && !crate::auth::explicit_login_ok(l)
        {
            return Err(KustoError::invalid(
                "with_login_endpoint",
                format!(
                    "`{}` is not an https URL (plain http is allowed only on a loopback address, \
                     for local emulators): the client secret is sent there",
                    redact_url(l)
                ),
            ));
        }
        // The TLS configuration is built here, so a bad CA or client certificate fails now.
        let http = HttpOptions::new("kusto")
            .with_tls(self.tls)
            .with_connect_timeout(self.connect_timeout)
            .with_request_timeout(Some(self.request_timeout))
            .with_max_reply_bytes(self.max_reply_bytes)
            .build()?;
        let host = self.host.unwrap_or_else(|| {
            hostname::get()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "localhost".into())
        });
        let app = self.app.unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "logship".into())
        });
        let user = self
            .user
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("USERNAME").ok())
            .unwrap_or_else(|| "[none]".into());
        let settings = Settings {
            engine: engine.clone(),
            ingest,
            database,
            table,
            mapping: self.mapping,
            mode: self.mode,
            max_request_bytes: self.max_request_bytes,
            gzip_level: self.gzip_level,
            fallback_after_attempts: self.fallback_after_attempts,
            create_table: self.create_table,
            layout: self.layout,
            telemetry: Telemetry::new(&app, &user),
        };
        let auth = Auth::new(self.credentials, engine, self.login_endpoint);
        let enc = RowEncoder::new(&host, self.service.as_deref()).with_layout(self.layout);
        let sink = KustoSink::new(settings, enc, http, auth);
        Ok(self.pipeline.build_layer::<KustoLayer, _>(sink)?)
    }
}

/// The engine (`ingest` false) or data-management endpoint for a cluster URL.
pub(crate) fn endpoint(url: &logship_http::Url, ingest: bool) -> String {
    let mut u = url.clone();
    u.set_path("");
    u.set_query(None);
    let host = u.host_str().unwrap_or("").to_string();
    let is_ip_or_local = host.parse::<std::net::IpAddr>().is_ok()
        || host.starts_with('[')
        || host.eq_ignore_ascii_case("localhost");
    if !is_ip_or_local {
        let bare = host.strip_prefix("ingest-").unwrap_or(&host);
        let want = if ingest {
            format!("ingest-{bare}")
        } else {
            bare.to_string()
        };
        let _ = u.set_host(Some(&want));
    }
    u.as_str().trim_end_matches('/').to_string()
}

fn check_name(setting: &'static str, name: &str) -> Result<(), KustoError> {
    if name.len() > 1024
        || name
            .chars()
            .any(|c| matches!(c, '\'' | '"' | '\\' | '/' | '?' | '#') || c.is_control())
    {
        return Err(KustoError::invalid(
            setting,
            format!(
                "`{name}` is not a valid Kusto entity name: use letters, digits, spaces, `_`, `-` and `.`"
            ),
        ));
    }
    Ok(())
}

pub(crate) use logship_core::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> logship_http::Url {
        logship_http::Url::parse(s).unwrap()
    }

    #[test]
    fn engine_and_ingest_endpoints() {
        assert_eq!(
            endpoint(&url("https://help.kusto.windows.net/"), true),
            "https://ingest-help.kusto.windows.net"
        );
        assert_eq!(
            endpoint(&url("https://ingest-help.kusto.windows.net"), false),
            "https://help.kusto.windows.net"
        );
        assert_eq!(
            endpoint(&url("http://127.0.0.1:9000/db"), true),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            endpoint(&url("http://localhost:9000"), true),
            "http://localhost:9000"
        );
    }

    #[test]
    fn build_names_what_is_missing() {
        let err = |b: KustoBuilder| b.build().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err(KustoBuilder::new()).starts_with("`with_cluster` is not set"));
        let b = || KustoBuilder::new().with_cluster("https://c.kusto.windows.net");
        assert!(err(b()).starts_with("`with_database` is not set"));
        assert!(err(b().with_database("db")).starts_with("`with_table` is not set"));
        let full = || b().with_database("db").with_table("T");
        assert!(err(full()).starts_with("`with_application_key` no credentials"));
        assert!(
            err(full().with_no_authentication().with_table("a'b"))
                .contains("not a valid Kusto entity name")
        );
        assert!(
            err(full().with_no_authentication().with_mapping_name("m x"))
                .contains("not a valid mapping name")
        );
        assert!(
            err(full()
                .with_no_authentication()
                .with_max_request_bytes(5 * 1024 * 1024))
            .starts_with("`with_max_request_bytes` is 5242880 bytes")
        );
        assert_eq!(
            err(full().with_no_authentication().with_gzip_level(10)),
            "`with_gzip_level` is 10; use 0 (no compression) ..= 9 (smallest)"
        );
        assert!(
            err(full()
                .with_no_authentication()
                .with_login_endpoint("http://login.example.com"))
            .starts_with("`with_login_endpoint` `http://login.example.com` is not an https URL")
        );
        let e = full()
            .with_no_authentication()
            .with_tls(TlsOptions::new().with_ca_pem("garbage"))
            .build()
            .err();
        assert!(matches!(e, Some(KustoError::Http(_))), "{e:?}");
        assert!(e.is_some_and(|e| e.to_string().contains("with_ca_pem")));
        for (b, setting) in [
            (
                full().with_request_timeout(Duration::ZERO),
                "with_request_timeout",
            ),
            (
                full().with_connect_timeout(Duration::ZERO),
                "with_connect_timeout",
            ),
            (full().with_max_reply_bytes(10), "with_max_reply_bytes"),
            (
                full().with_tls(TlsOptions::new().with_server_name("x")),
                "with_server_name",
            ),
        ] {
            let e = err(b.with_no_authentication());
            assert!(e.contains(setting), "{setting}: {e}");
        }
        assert!(matches!(
            full()
                .with_no_authentication()
                .with_pipeline(|p| p.with_max_batch_records(0))
                .build(),
            Err(KustoError::Pipeline(_))
        ));
        let e = KustoBuilder::from_connection_string(
            "Data Source=https://c.kusto.windows.net;Database=d;Fed=True",
        )
        .unwrap()
        .with_table("T")
        .build()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            e.starts_with("`AAD Federated Security` is True but no credentials"),
            "{e}"
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let b = KustoBuilder::from_connection_string(
            "Data Source=https://c.kusto.windows.net;Database=d;Fed=True;AppClientId=a;AppKey=hunter2;Tenant=t",
        )
        .unwrap();
        assert!(!format!("{b:?}").contains("hunter2"));
    }
}
