//! An Azure Data Explorer (Kusto) receiver: streaming ingestion, queued ingestion through
//! emulated Azure Storage, control commands, and an AAD token endpoint.
//!
//! Written from the Azure Data Explorer REST API documentation, <https://learn.microsoft.com/azure/data-explorer/kusto/api/rest/> (Azure Data Explorer) and what the official
//! `azure-kusto-data`/`azure-kusto-ingest` 6.x clients send (checked against them in
//! `tests/kusto_receiver.rs`). It never imports logship's own Kusto code.
//!
//! # One address for everything
//!
//! [`KustoReceiver::url`] (`http://127.0.0.1:PORT`) is at once
//!
//! * the **engine** endpoint (streaming ingestion, `/v1/rest/mgmt`, `/v1/rest/query`),
//! * the **data-management** (`ingest-`) endpoint the queued client talks to (the official
//!   client does not add the `ingest-` prefix for IP addresses),
//! * the **AAD login endpoint** (`/{tenant}/oauth2/v2.0/token`), advertised by
//!   `GET /v1/rest/auth/metadata`, and
//! * the **Azure Storage** account of the queued path: blob containers under `/blob/…`,
//!   queues under `/queue/…`, handed out by `.get ingestion resources` as SAS URLs.
//!
//! # What it checks (in this order, for a streaming request)
//!
//! | check | answer when it fails |
//! |---|---|
//! | streaming enabled ([`KustoReceiver::set_streaming_enabled`]) | 404, as a cluster without streaming ingestion |
//! | `Authorization: Bearer <token>`, token issued here and not expired | 401 (`WWW-Authenticate: Bearer`) |
//! | scripted faults ([`KustoReceiver::fail_next_streaming`]) | 429 + `Retry-After`, 5xx `@permanent:false`, 400 `@permanent:true`, 401 |
//! | telemetry headers `x-ms-client-request-id`, `x-ms-app`, `x-ms-user`, `x-ms-client-version`, `x-ms-version` (strict mode, the default; the service itself only recommends them) | 400 `BadRequest_MissingClientHeader` |
//! | `streamFormat` present and readable (json, multijson, singlejson, csv, tsv, tsve, scsv, psv, sohsv) | 400 `BadRequest_FormatNotSupported` |
//! | database and table exist (or [`KustoReceiverBuilder::with_auto_create`]) | 400 `BadRequest_EntityNotFound` |
//! | `Content-Encoding` gzip (decoded) or absent; gzip body valid | 400 `BadRequest_InvalidArchive` / 415 |
//! | size: at most [`DEFAULT_MAX_STREAMING_BYTES`] (4 MiB), of the *uncompressed* body by default ([`SizeBasis`]) | 400 `BadRequest_StreamingIngestionRequestSizeLimitExceeded`, `@permanent:true` |
//! | `mappingName` present for a JSON format (`json`, `multijson`, `singlejson`), as the streaming ingestion REST documentation requires; off with [`KustoReceiverBuilder::with_streaming_identity_mapping`] | 400 `BadRequest_MappingReferenceRequired` |
//! | `mappingName` names a mapping of the table with the format's kind | 400 `BadRequest_InvalidMappingReference` |
//! | every record parses and fits the mapping | 400 `BadRequest_UnexpectedCharacterInInputStream` |
//!
//! Error bodies are OneApi errors: `{"error":{"code","message","@type","@message",
//! "@context","@permanent"}}`. A successful request is answered 200 with a v1 dataset and its
//! rows are visible to [`KustoReceiver::rows`] before the response is sent.
//!
//! Queued ingestion is applied **at once** when the queue message arrives (the real service
//! waits for its batching policy, minutes by default). Failures of a queued ingestion cannot
//! be reported over HTTP (the queue accepted the message); they are kept in
//! [`KustoReceiver::queued_ingestions`] with their reason.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use logship_testkit::kusto::KustoReceiver;
//!
//! let receiver = KustoReceiver::builder()
//!     .with_table("logs", "Events", &[("Timestamp", "datetime"), ("Message", "string")])
//!     .start()?;
//! // point the code under test at receiver.url(), with a token from receiver.mint_token()
//! # let _ = receiver.url();
//! assert!(receiver.wait_for_rows("Events", 10, Duration::from_secs(5)));
//! assert_eq!(receiver.row_count("Events"), 10);
//! # Ok::<(), std::io::Error>(())
//! ```

pub(crate) mod csl;
pub(crate) mod formats;
pub(crate) mod http;
mod state;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::{ServerHandle, wait_until};
use state::{Config, Inner, Shared, Table, TokenInfo};

/// Streaming ingestion size limit: 4 MiB (4 × 1024 × 1024 bytes), the Azure Data Explorer REST API documentation, <https://learn.microsoft.com/azure/data-explorer/kusto/api/rest/>.
pub const DEFAULT_MAX_STREAMING_BYTES: usize = 4 * 1024 * 1024;
/// The client id the token endpoint accepts unless [`KustoReceiverBuilder::with_client_credentials`] says otherwise.
pub const DEFAULT_CLIENT_ID: &str = "logship-test-app";
/// The client secret the token endpoint accepts by default.
pub const DEFAULT_CLIENT_SECRET: &str = "logship-test-secret";
/// The public-cloud `KustoServiceResourceId` advertised by `/v1/rest/auth/metadata`.
pub const DEFAULT_SERVICE_RESOURCE_ID: &str = "https://kusto.kusto.windows.net";
/// Lifetime of tokens issued by the token endpoint unless configured: one hour.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Blob container name handed out as `TempStorage`.
pub const TEMP_CONTAINER: &str = "logship-tempstorage";
/// Queue name handed out as `SecuredReadyForAggregationQueue`.
pub const READY_QUEUE: &str = "readyforaggregation-secured";

/// What the streaming size limit is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SizeBasis {
    /// The body after gzip decoding (the stricter reading of "4 MB per request"; default).
    #[default]
    Uncompressed,
    /// The bytes on the wire (what the Python managed client compares to 4 MiB).
    Wire,
}

/// A scripted failure for the next streaming ingestion request(s).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamingFault {
    /// 429 Too Many Requests with `Retry-After` in whole seconds (rounded up), OneApi
    /// `@permanent:false`.
    Throttle {
        /// The delay advertised in `Retry-After`.
        retry_after: Duration,
    },
    /// A transient server error (`status` should be 5xx) with OneApi `@permanent:false`.
    Transient {
        /// HTTP status to answer, e.g. 500 or 503.
        status: u16,
    },
    /// 400 Bad Request with OneApi `@permanent:true` (do not retry).
    Permanent,
    /// 401 Unauthorized, as for an expired token.
    Unauthorized,
}

/// Counters, read with [`KustoReceiver::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KustoStats {
    /// Streaming ingestion requests received (every answer, including errors).
    pub streaming_requests: u64,
    /// Streaming ingestion requests answered 200.
    pub streaming_accepted: u64,
    /// Rows stored from streaming ingestion.
    pub streaming_rows: u64,
    /// Queue messages that were ingested successfully.
    pub queued_ingestions: u64,
    /// Queue messages whose ingestion failed (see [`KustoReceiver::queued_ingestions`]).
    pub queued_failures: u64,
    /// Rows stored from queued ingestion.
    pub queued_rows: u64,
    /// Bytes of streaming bodies as received on the wire (gzip-compressed when sent so).
    pub bytes_wire: u64,
    /// Bytes of streaming bodies after gzip decoding.
    pub bytes_uncompressed: u64,
    /// Tokens issued by the token endpoint.
    pub tokens_issued: u64,
    /// Token requests refused (bad client id, secret, grant, scope or tenant).
    pub token_failures: u64,
    /// Requests answered 401 (missing, unknown, expired token, or scripted).
    pub auth_failures: u64,
    /// Streaming requests answered 429.
    pub throttled: u64,
    /// Control commands received on `/v1/rest/mgmt` and queries on `/v1/rest/query`.
    pub mgmt_commands: u64,
    /// Blobs stored (Put Blob or Put Block List).
    pub blobs_uploaded: u64,
}

/// One streaming ingestion request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamingRequest {
    /// Database from the path.
    pub database: String,
    /// Table from the path.
    pub table: String,
    /// `streamFormat` query parameter.
    pub stream_format: Option<String>,
    /// `mappingName` query parameter.
    pub mapping_name: Option<String>,
    /// All headers, names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Body size on the wire, bytes.
    pub wire_bytes: usize,
    /// Body size after gzip decoding, bytes (0 when decoding failed or was not reached).
    pub uncompressed_bytes: usize,
    /// The HTTP status answered.
    pub status: u16,
}

impl StreamingRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A control command (`/v1/rest/mgmt`) or query (`/v1/rest/query`) as received.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MgmtCommand {
    /// `mgmt` or `query`.
    pub endpoint: String,
    /// The `db` field of the request body.
    pub database: String,
    /// The `csl` field of the request body.
    pub csl: String,
    /// `x-ms-client-request-id` header, if sent.
    pub client_request_id: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
}

/// One queue message of queued ingestion and what became of it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueuedIngestion {
    /// The decoded message JSON (`BlobPath`, `DatabaseName`, `TableName`,
    /// `AdditionalProperties`, …).
    pub message: Value,
    /// Rows ingested, or why the ingestion failed.
    pub outcome: Result<usize, String>,
}

/// A declared table: database, table, `(column, type)` pairs.
type TableDecl = (String, String, Vec<(String, String)>);

/// Configures and starts a [`KustoReceiver`].
///
/// | setting | default |
/// |---|---|
/// | port | 0 (any free port) |
/// | databases/tables | none; [`with_auto_create`](Self::with_auto_create) off |
/// | client credentials | [`DEFAULT_CLIENT_ID`] / [`DEFAULT_CLIENT_SECRET`], any tenant |
/// | token lifetime | [`DEFAULT_TOKEN_LIFETIME`] (1 h) |
/// | bearer token required | yes |
/// | auth metadata | served, resource id [`DEFAULT_SERVICE_RESOURCE_ID`] |
/// | streaming size limit | [`DEFAULT_MAX_STREAMING_BYTES`] on the [`SizeBasis::Uncompressed`] body |
/// | strict telemetry headers | on |
/// | streaming JSON without `mappingName` | refused (the REST documentation's rule) |
/// | streaming ingestion | enabled |
/// | keep rows | on |
#[derive(Debug, Clone)]
#[must_use]
pub struct KustoReceiverBuilder {
    port: u16,
    config: Config,
    static_tokens: Vec<String>,
    tables: Vec<TableDecl>,
    commands: Vec<(String, String)>,
    streaming_enabled: bool,
}

impl KustoReceiverBuilder {
    /// Whether ingested rows are stored (default on). Off, ingestion is parsed, answered and
    /// counted in [`KustoStats`] (`streaming_rows`, `queued_rows`) as usual but the rows are not
    /// kept, so [`KustoReceiver::rows`] stays empty and memory stays flat: for throughput
    /// benchmarks.
    pub fn with_keep_rows(self, keep: bool) -> Self {
        KustoReceiverBuilder {
            config: Config {
                keep_rows: keep,
                ..self.config
            },
            ..self
        }
    }

    /// Listen on `127.0.0.1:port` (0 = any free port).
    pub fn with_port(self, port: u16) -> Self {
        Self { port, ..self }
    }

    /// Declare table `table` in database `database` with `columns` as `(name, type)` pairs
    /// (Kusto scalar types: string, long, int, real, bool, datetime, timespan, dynamic, guid,
    /// decimal). An invalid type makes [`start`](Self::start) fail.
    pub fn with_table(mut self, database: &str, table: &str, columns: &[(&str, &str)]) -> Self {
        self.tables.push((
            database.to_string(),
            table.to_string(),
            columns
                .iter()
                .map(|(c, t)| (c.to_string(), t.to_string()))
                .collect(),
        ));
        self
    }

    /// Declare an empty database (tables can then be created by control commands).
    pub fn with_database(mut self, database: &str) -> Self {
        self.commands.push((database.to_string(), String::new()));
        self
    }

    /// Run control command `csl` against `database` at start, as if sent to `/v1/rest/mgmt`
    /// (e.g. `.create-or-alter table T ingestion json mapping "m" '[…]'`). A command that
    /// fails makes [`start`](Self::start) fail.
    pub fn with_command(mut self, database: &str, csl: &str) -> Self {
        self.commands.push((database.to_string(), csl.to_string()));
        self
    }

    /// Create missing databases and tables on first use (schema-less tables keep JSON
    /// records as they came). Off by default: the service answers `EntityNotFound`.
    pub fn with_auto_create(self, auto_create: bool) -> Self {
        Self {
            config: Config {
                auto_create,
                ..self.config
            },
            ..self
        }
    }

    /// The application (client) id and secret the token endpoint accepts.
    pub fn with_client_credentials(self, client_id: &str, client_secret: &str) -> Self {
        Self {
            config: Config {
                client_id: client_id.to_string(),
                client_secret: client_secret.to_string(),
                ..self.config
            },
            ..self
        }
    }

    /// Only accept token requests for this tenant (default: any tenant).
    pub fn with_tenant(self, tenant: &str) -> Self {
        Self {
            config: Config {
                tenant: Some(tenant.to_string()),
                ..self.config
            },
            ..self
        }
    }

    /// Lifetime of issued tokens (reported in `expires_in`, whole seconds rounded down;
    /// enforced to the millisecond).
    pub fn with_token_lifetime(self, token_lifetime: Duration) -> Self {
        Self {
            config: Config {
                token_lifetime,
                ..self.config
            },
            ..self
        }
    }

    /// Accept `token` as a bearer token that never expires (until
    /// [`KustoReceiver::expire_all_tokens`]); for clients with a fixed token provider.
    pub fn with_static_token(mut self, token: &str) -> Self {
        self.static_tokens.push(token.to_string());
        self
    }

    /// Whether requests need a valid bearer token (default true). With false, the
    /// `Authorization` header is ignored (a client built `with_no_authentication`).
    pub fn with_require_auth(self, require_auth: bool) -> Self {
        Self {
            config: Config {
                require_auth,
                ..self.config
            },
            ..self
        }
    }

    /// Serve `GET /v1/rest/auth/metadata` (default) or answer it 404 (the clients then fall
    /// back to public-cloud defaults).
    pub fn with_auth_metadata(self, auth_metadata: bool) -> Self {
        Self {
            config: Config {
                auth_metadata,
                ..self.config
            },
            ..self
        }
    }

    /// The `KustoServiceResourceId` advertised in the auth metadata; the token endpoint
    /// accepts scope `{resource}/.default` for it and for the receiver URL.
    pub fn with_service_resource_id(self, resource_id: &str) -> Self {
        Self {
            config: Config {
                service_resource_id: resource_id.trim_end_matches('/').to_string(),
                ..self.config
            },
            ..self
        }
    }

    /// Advertise `LoginMfaRequired: true` in the auth metadata (clients then ask for the
    /// `.kustomfa.` resource, which the token endpoint also accepts).
    pub fn with_login_mfa_required(self, login_mfa_required: bool) -> Self {
        Self {
            config: Config {
                login_mfa_required,
                ..self.config
            },
            ..self
        }
    }

    /// Streaming size limit in bytes and what it is measured on (default 4 MiB, uncompressed).
    pub fn with_max_streaming_bytes(self, max_streaming_bytes: usize, basis: SizeBasis) -> Self {
        Self {
            config: Config {
                max_streaming_bytes,
                size_basis: basis,
                ..self.config
            },
            ..self
        }
    }

    /// Require the telemetry headers on streaming requests (default true). The service only
    /// recommends them; the receiver is stricter so a sender that forgets them is caught.
    pub fn with_strict_client_headers(self, strict: bool) -> Self {
        Self {
            config: Config {
                strict_client_headers: strict,
                ..self.config
            },
            ..self
        }
    }

    /// Accept streaming ingestion of a JSON format (`json`, `multijson`, `singlejson`) without
    /// `mappingName`, reading it by the identity mapping (JSON properties by column name).
    /// Off by default: the streaming ingestion REST documentation
    /// (<https://learn.microsoft.com/kusto/api/rest/streaming-ingest>, "Additional
    /// parameters") says `mappingName` is "Optional, but Required if `streamFormat` is one of
    /// `JSON`, `MultiJSON`, or `Avro`", and the receiver then answers 400
    /// `BadRequest_MappingReferenceRequired` (`@permanent: true`; the code is this receiver's
    /// name for the refusal, no service text is known). The service itself is reported to
    /// accept it: the official clients dropped their client-side check
    /// (`Azure/azure-kusto-java` pull request 211 "Remove isMappingRequired from DataFormat",
    /// `Azure/azure-kusto-python` pull request 359 closed unmerged) and a Kusto maintainer
    /// wrote that "all formats ingested to kusto can be ingested without any mapping"
    /// (`Azure/kafka-sink-azure-kusto` issue 76). Turn this on to model that service.
    pub fn with_streaming_identity_mapping(self, accept: bool) -> Self {
        Self {
            config: Config {
                streaming_mapping_required: !accept,
                ..self.config
            },
            ..self
        }
    }

    /// Start with streaming ingestion enabled (default) or disabled (404, as a cluster
    /// without the feature); changeable later with [`KustoReceiver::set_streaming_enabled`].
    pub fn with_streaming_enabled(self, streaming_enabled: bool) -> Self {
        Self {
            streaming_enabled,
            ..self
        }
    }

    /// Binds the port and starts the receiver on its own thread.
    ///
    /// # Errors
    /// The bind or thread error; `InvalidInput` for a bad column type or a failing
    /// [`with_command`](Self::with_command).
    pub fn start(self) -> io::Result<KustoReceiver> {
        let mut inner = Inner {
            streaming_enabled: self.streaming_enabled,
            ..Inner::default()
        };
        for token in &self.static_tokens {
            inner.tokens.insert(
                token.clone(),
                TokenInfo {
                    expires: None,
                    revoked: false,
                },
            );
        }
        for (db, table, columns) in &self.tables {
            let mut cols = Vec::new();
            for (c, t) in columns {
                let t = csl::canonical_type(&t.to_ascii_lowercase())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                cols.push((c.clone(), t.to_string()));
            }
            inner.databases.entry(db.clone()).or_default().insert(
                table.clone(),
                Table {
                    columns: cols,
                    ..Table::default()
                },
            );
        }
        // The URL is known only after binding; the server body reads it from the shared state,
        // so bind first, then fill it in through a channel-free handoff.
        let (tx, rx) = std::sync::mpsc::channel::<Arc<Shared>>();
        let handle = ServerHandle::spawn(
            "kusto-receiver",
            self.port,
            move |listener, stop| async move {
                let Ok(shared) = rx.recv() else { return };
                http::serve(listener, stop, shared).await;
            },
        )?;
        let url = format!("http://{}", handle.addr());
        let config = Config {
            url: url.clone(),
            ..self.config
        };
        for (db, csl) in &self.commands {
            inner.databases.entry(db.clone()).or_default();
            if !csl.is_empty() {
                http::run_command(&config, &mut inner, db, csl).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("{csl}: {}", e.message))
                })?;
            }
        }
        let shared = Arc::new(Shared::new(config, inner));
        tx.send(shared.clone())
            .map_err(|_| io::Error::other("kusto receiver thread ended before start"))?;
        Ok(KustoReceiver {
            handle,
            shared,
            url,
        })
    }
}

/// A running Kusto receiver. Stops when dropped (re-raising a panic of its server thread).
#[derive(Debug)]
pub struct KustoReceiver {
    handle: ServerHandle,
    shared: Arc<Shared>,
    url: String,
}

impl KustoReceiver {
    /// A builder with the defaults listed on [`KustoReceiverBuilder`].
    pub fn builder() -> KustoReceiverBuilder {
        KustoReceiverBuilder {
            port: 0,
            config: Config {
                keep_rows: true,
                url: String::new(),
                service_resource_id: DEFAULT_SERVICE_RESOURCE_ID.to_string(),
                auth_metadata: true,
                login_mfa_required: false,
                client_id: DEFAULT_CLIENT_ID.to_string(),
                client_secret: DEFAULT_CLIENT_SECRET.to_string(),
                tenant: None,
                token_lifetime: DEFAULT_TOKEN_LIFETIME,
                require_auth: true,
                max_streaming_bytes: DEFAULT_MAX_STREAMING_BYTES,
                size_basis: SizeBasis::Uncompressed,
                auto_create: false,
                strict_client_headers: true,
                streaming_mapping_required: true,
                sas_signature: format!("logship-testkit-{}", uuid::Uuid::new_v4().simple()),
                authorization_context: format!("logship-testkit-identity-{}", uuid::Uuid::new_v4()),
            },
            static_tokens: Vec::new(),
            tables: Vec::new(),
            commands: Vec::new(),
            streaming_enabled: true,
        }
    }

    /// `http://127.0.0.1:PORT`: engine, data-management (`ingest-`), login and storage
    /// endpoint at once (see the module docs).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    /// The token endpoint URL for `tenant`: `{url}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.url)
    }

    /// The `AuthorizationContext` returned by `.get kusto identity token`; queue messages
    /// must carry it in `AdditionalProperties.authorizationContext`.
    pub fn authorization_context(&self) -> &str {
        &self.shared.config.authorization_context
    }

    /// The `sig` SAS parameter blob and queue requests must carry.
    pub fn sas_signature(&self) -> &str {
        &self.shared.config.sas_signature
    }

    /// Issues a token directly (not counted in [`KustoStats::tokens_issued`]) with the
    /// configured lifetime.
    pub fn mint_token(&self) -> String {
        let token = new_token();
        let expires = Instant::now() + self.shared.config.token_lifetime;
        self.shared.lock().tokens.insert(
            token.clone(),
            TokenInfo {
                expires: Some(expires),
                revoked: false,
            },
        );
        token
    }

    // ---- faults -------------------------------------------------------------------------

    /// Answer the next `n` streaming requests (after the auth check) with `fault`, queued
    /// behind faults already scripted.
    pub fn fail_next_streaming(&self, n: usize, fault: StreamingFault) {
        let mut inner = self.shared.lock();
        for _ in 0..n {
            inner.faults.push_back(fault.clone());
        }
    }

    /// Shortcut: 429 with `Retry-After` for the next `n` streaming requests.
    pub fn throttle_next(&self, n: usize, retry_after: Duration) {
        self.fail_next_streaming(n, StreamingFault::Throttle { retry_after });
    }

    /// Answer the next `n` requests that carry authorization (streaming, mgmt, query) 401,
    /// whatever their token.
    pub fn unauthorized_next(&self, n: usize) {
        self.shared.lock().unauthorized_next += n;
    }

    /// Expire every token issued so far (including static ones); new tokens work.
    pub fn expire_all_tokens(&self) {
        for t in self.shared.lock().tokens.values_mut() {
            t.revoked = true;
        }
    }

    /// Delay every streaming, mgmt and query answer by `delay` (zero: no delay).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// Enable or disable streaming ingestion (disabled: 404).
    pub fn set_streaming_enabled(&self, enabled: bool) {
        self.shared.lock().streaming_enabled = enabled;
    }

    /// Drop scripted faults, pending 401s and the delay.
    pub fn clear_faults(&self) {
        let mut inner = self.shared.lock();
        inner.faults.clear();
        inner.unauthorized_next = 0;
        inner.delay = Duration::ZERO;
    }

    // ---- assertions ---------------------------------------------------------------------

    /// Rows of every table named `table` (in any database), in arrival order; each row is a
    /// JSON object keyed by column name.
    pub fn rows(&self, table: &str) -> Vec<Value> {
        let inner = self.shared.lock();
        inner
            .databases
            .values()
            .filter_map(|tables| tables.get(table))
            .flat_map(|t| t.rows.iter().cloned())
            .collect()
    }

    /// Rows of `database.table`.
    pub fn rows_in(&self, database: &str, table: &str) -> Vec<Value> {
        let inner = self.shared.lock();
        inner
            .databases
            .get(database)
            .and_then(|tables| tables.get(table))
            .map(|t| t.rows.clone())
            .unwrap_or_default()
    }

    /// Number of rows in every table named `table`.
    pub fn row_count(&self, table: &str) -> usize {
        let inner = self.shared.lock();
        inner
            .databases
            .values()
            .filter_map(|tables| tables.get(table))
            .map(|t| t.rows.len())
            .sum()
    }

    /// Waits until tables named `table` hold at least `n` rows; false when `timeout` passed
    /// first. Assert the exact count afterwards.
    pub fn wait_for_rows(&self, table: &str, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.row_count(table) >= n)
    }

    /// Columns of `database.table` as `(name, canonical type)`.
    pub fn columns(&self, database: &str, table: &str) -> Option<Vec<(String, String)>> {
        let inner = self.shared.lock();
        inner
            .databases
            .get(database)
            .and_then(|tables| tables.get(table))
            .map(|t| t.columns.clone())
    }

    /// Names of the ingestion mappings of `database.table` as `(kind, name)`.
    pub fn mappings(&self, database: &str, table: &str) -> Vec<(String, String)> {
        let inner = self.shared.lock();
        inner
            .databases
            .get(database)
            .and_then(|tables| tables.get(table))
            .map(|t| t.mappings.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> KustoStats {
        self.shared.lock().stats.clone()
    }

    /// Every streaming request received, in order.
    pub fn streaming_requests(&self) -> Vec<StreamingRequest> {
        self.shared.lock().streaming_requests.clone()
    }

    /// The last streaming request received (its headers, format, sizes and answer).
    pub fn last_streaming_request(&self) -> Option<StreamingRequest> {
        self.shared.lock().streaming_requests.last().cloned()
    }

    /// Every control command and query received, in order.
    pub fn mgmt_commands(&self) -> Vec<MgmtCommand> {
        self.shared.lock().mgmt_commands.clone()
    }

    /// Every queue message received, with what became of it.
    pub fn queued_ingestions(&self) -> Vec<QueuedIngestion> {
        self.shared.lock().queued.clone()
    }

    /// Names (`container/blob`, percent-decoded) and sizes in bytes of the stored blobs.
    pub fn blobs(&self) -> BTreeMap<String, usize> {
        self.shared
            .lock()
            .blobs
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect()
    }
}

pub(crate) fn new_token() -> String {
    format!(
        "eyJ0eXAiOiJKV1QifQ.{}.{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}
