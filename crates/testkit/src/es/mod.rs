//! An Elasticsearch `_bulk` receiver (the Elasticsearch bulk API reference, <https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html> "Elasticsearch `_bulk`, data streams,
//! ECS").
//!
//! [`EsReceiver`] is an in-memory stand-in for an Elasticsearch 8 node that speaks just enough
//! of the REST API for a log shipper: the root endpoint, `_bulk` (with the exact response shape,
//! per-item statuses and errors), index templates and data streams, the three authentication
//! schemes, and gzip bodies. It keeps every document it indexed for assertions and can be
//! scripted, while running, to misbehave the ways a real cluster does (429 items, 429/5xx
//! requests, 413, slow or missing replies).
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use std::time::Duration;
//! use logship_testkit::es::{EsAuth, EsReceiver};
//!
//! let es = EsReceiver::builder()
//!     .with_auth(EsAuth::api_key("id", "secret"))
//!     .start()?;
//! // point the code under test at es.url() ...
//! assert!(es.wait_for_docs(3, Duration::from_secs(5)));
//! assert_eq!(es.documents_in("app-logs").len(), 3);
//! # Ok(()) }
//! ```
//!
//! # Endpoints
//!
//! | request | answer |
//! |---|---|
//! | `GET /`, `HEAD /` | 200, cluster info with version `8.15.0` |
//! | `POST`/`PUT /_bulk`, `POST`/`PUT /{index}/_bulk` | 200 `{"took","errors","items"}`; 400/401/406/413/429/5xx as below |
//! | `PUT`/`POST /_index_template/{name}` | 200 `{"acknowledged":true}`; 400 without `index_patterns` |
//! | `GET /_index_template`, `GET`/`HEAD`/`DELETE /_index_template/{name}` | 200, or 404 `resource_not_found_exception` |
//! | a known path with the wrong method | 405 `Incorrect HTTP method for uri [..]` |
//! | anything else | 400 `no handler found for uri [..]` |
//!
//! Every response carries `X-Elastic-Product: Elasticsearch` (the official 8.x clients refuse
//! to talk to a server without it) and is `application/json`, or
//! `application/vnd.elasticsearch+json;compatible-with=8` when the request's `Accept` asked for
//! the vendor type.
//!
//! # Bulk semantics
//!
//! * The body must end in `\n` (else 400 `The bulk request must be terminated by a newline
//!   [\n]`), blank action lines are skipped, an unknown action or metadata key, a missing index
//!   or a missing `_id` on `update`/`delete` fail the whole request with 400, as ES does.
//! * `Content-Type` must be `application/x-ndjson` or `application/json`, or the ES 8 vendor
//!   types `application/vnd.elasticsearch+x-ndjson` / `+json` with `compatible-with=7` or `8`
//!   (what the official clients send). Any other type (or none, with a body) is answered 406
//!   `Content-Type header [..] is not supported`, as Elasticsearch does (and as OpenSearch
//!   servers such as osmem do for the vendor types, which this receiver accepts instead).
//! * `Content-Encoding: gzip` (or `deflate`) bodies are decompressed.
//! * `index`: 201 `created` / 200 `updated`; `create`: 201, or 409
//!   `version_conflict_engine_exception` when the `_id` exists (counted in
//!   [`EsCounters::duplicates_refused`]); `update` (`doc`, `upsert`, `doc_as_upsert`; no
//!   scripts): 200 `updated` / `noop`, 404 `document_missing_exception`; `delete`: 200
//!   `deleted` / 404 `not_found`. A missing `_id` on `index`/`create` is generated (20
//!   URL-safe base64 characters, like ES). A source line that is not a JSON object fails its
//!   item with 400 `document_parsing_exception`; an invalid index name (uppercase, `*`, ...)
//!   with 400 `invalid_index_name_exception`.
//! * `errors` is true when any item carries an `error` (a 404 `not_found` delete does not).
//!
//! # Data streams
//!
//! A write to a name that matches, at the highest priority, a template with `"data_stream":{}`
//! goes to a data stream: only `create` is allowed (anything else: item 400
//! `illegal_argument_exception` "only write ops with an op_type of create are allowed in data
//! streams"), the source must carry `@timestamp` accepted by the default `date` format
//! `strict_date_optional_time||epoch_millis` (else item 400 `document_parsing_exception`), and
//! the item's `_index` is the backing index `.ds-<stream>-<yyyy.mm.dd>-000001`. As in ES the
//! built-in templates `logs-*-*`, `metrics-*-*`, `traces-*-*` (priority 100) exist unless
//! switched off with [`EsReceiverBuilder::with_builtin_data_stream_templates`]; more come from
//! [`EsReceiverBuilder::with_data_stream_pattern`] or `PUT /_index_template/{name}`. A name that
//! already exists as a plain index stays one.
//!
//! # Faults
//!
//! Request-level faults ([`EsReceiver::throttle_requests`], [`EsReceiver::fail_requests`],
//! [`EsReceiver::hang_requests`], [`EsReceiver::drop_responses`],
//! [`EsReceiver::fail_after_storing`], [`EsReceiver::set_delay`]) and item-level ones
//! ([`EsReceiver::reject_items`], [`EsReceiver::conflict_items`])
//! apply to `_bulk` requests only, so a client's ping or template setup is never disturbed.
//! The body-size limit ([`EsReceiver::set_max_body_bytes`]) and authentication apply to every
//! request. Order of checks for one request: delay, hang, 413, 401, 5xx, 429, then the bulk.

pub(crate) mod bulk;
mod http;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;

use crate::server::ServerHandle;

use bulk::{Store, Template};

/// Version number reported by `GET /`.
pub const ES_VERSION: &str = "8.15.0";

/// How many recent requests [`EsReceiver::requests`] keeps.
pub const REQUEST_LOG_LIMIT: usize = 1000;

/// The credentials the receiver demands (the Elasticsearch bulk API reference, <https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html> "Auth headers").
///
/// Wrong or missing credentials are answered 401 with an ES `security_exception` body and
/// `WWW-Authenticate` headers, and counted in [`EsCounters::auth_failures`].
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EsAuth {
    /// No authentication: any (or no) `Authorization` header is accepted.
    None,
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: ApiKey base64(id:key)` (the "encoded" key ES hands out is that string).
    ApiKey {
        /// API key id.
        id: String,
        /// API key secret.
        key: String,
    },
    /// `Authorization: Bearer <token>` (Elastic Cloud / service tokens).
    Bearer {
        /// The token.
        token: String,
    },
}

impl EsAuth {
    /// Basic auth with these credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        EsAuth::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    /// API key auth with this id and secret.
    pub fn api_key(id: impl Into<String>, key: impl Into<String>) -> Self {
        EsAuth::ApiKey {
            id: id.into(),
            key: key.into(),
        }
    }

    /// Bearer token auth.
    pub fn bearer(token: impl Into<String>) -> Self {
        EsAuth::Bearer {
            token: token.into(),
        }
    }
}

impl std::fmt::Debug for EsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EsAuth::None => f.write_str("None"),
            EsAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            EsAuth::ApiKey { id, .. } => f
                .debug_struct("ApiKey")
                .field("id", id)
                .field("key", &"<redacted>")
                .finish(),
            EsAuth::Bearer { .. } => f
                .debug_struct("Bearer")
                .field("token", &"<redacted>")
                .finish(),
        }
    }
}

/// One live document, as [`EsReceiver::documents`] reports it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EsDocument {
    /// The index or data stream name it was written to (the stream name, not the backing
    /// index).
    pub index: String,
    /// `_id`, given or generated.
    pub id: String,
    /// `_version` (1 on creation, +1 per write).
    pub version: u64,
    /// `_source`.
    pub source: Value,
}

/// One HTTP request as the receiver saw it (see [`EsReceiver::requests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EsRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path without the query, e.g. `/_bulk`.
    pub path: String,
    /// Query string without `?`, if any.
    pub query: Option<String>,
    /// Headers in arrival order, names lowercase.
    pub headers: Vec<(String, String)>,
    /// Body after decompression.
    pub body: Vec<u8>,
    /// Status answered; 0 when the request was never answered (hang / dropped response).
    pub status: u16,
}

impl EsRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Counters, read with [`EsReceiver::counters`]. Everything counts since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EsCounters {
    /// HTTP requests received (every path, every outcome).
    pub requests: u64,
    /// `_bulk` requests received.
    pub bulk_requests: u64,
    /// Responses sent, by HTTP status (unanswered requests are not here).
    pub responses_by_status: BTreeMap<u16, u64>,
    /// Bulk items answered, by (action name, item status), e.g. `("create", 409)`.
    pub bulk_items: BTreeMap<(String, u16), u64>,
    /// `create` items refused with 409 because the `_id` existed.
    pub duplicates_refused: u64,
    /// Request body bytes as received (compressed when `Content-Encoding` was set).
    pub bytes_received: u64,
    /// Request body bytes after decompression.
    pub bytes_decompressed: u64,
    /// Requests whose body was gzip- or deflate-encoded.
    pub compressed_requests: u64,
    /// Requests refused with 401.
    pub auth_failures: u64,
    /// Requests refused with 413.
    pub too_large: u64,
    /// Requests refused with 406 (unsupported `Content-Type`).
    pub unsupported_media_type: u64,
    /// Items answered 429 by [`EsReceiver::reject_items`] faults.
    pub injected_item_rejections: u64,
    /// Requests answered 429 by [`EsReceiver::throttle_requests`].
    pub injected_throttles: u64,
    /// Requests answered 5xx by [`EsReceiver::fail_requests`].
    pub injected_failures: u64,
    /// `create` items answered 409 by [`EsReceiver::conflict_items`] faults.
    pub injected_conflicts: u64,
    /// Requests indexed and then answered with an error by
    /// [`EsReceiver::fail_after_storing`].
    pub failed_after_storing: u64,
    /// Requests left unanswered by [`EsReceiver::hang_requests`] or
    /// [`EsReceiver::drop_responses`].
    pub unanswered: u64,
}

impl EsCounters {
    /// Bulk items answered with `action` (`"index"`, `"create"`, `"update"`, `"delete"`) and
    /// item `status`.
    pub fn items(&self, action: &str, status: u16) -> u64 {
        self.bulk_items
            .get(&(action.to_string(), status))
            .copied()
            .unwrap_or(0)
    }

    /// All bulk items answered.
    pub fn items_total(&self) -> u64 {
        self.bulk_items.values().sum()
    }

    /// Responses sent with HTTP `status`.
    pub fn responses(&self, status: u16) -> u64 {
        self.responses_by_status.get(&status).copied().unwrap_or(0)
    }
}

#[derive(Debug, Default)]
struct ItemRejection {
    index: Option<String>,
    remaining: u64,
}

#[derive(Debug, Default)]
struct Faults {
    delay: Duration,
    hang: u64,
    drop_responses: u64,
    fail: u64,
    fail_status: u16,
    throttle: u64,
    retry_after: Duration,
    item_rejections: Vec<ItemRejection>,
    conflicts: u64,
    fail_after_storing: u64,
    fail_after_storing_status: u16,
    max_body_bytes: Option<usize>,
}

#[derive(Debug)]
struct State {
    store: Store,
    counters: EsCounters,
    faults: Faults,
    auth: EsAuth,
    requests: VecDeque<EsRequest>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Configures and starts an [`EsReceiver`].
///
/// | setting | default |
/// |---|---|
/// | port | 0 (any free port on 127.0.0.1) |
/// | auth | [`EsAuth::None`] |
/// | built-in data stream templates (`logs-*-*`, `metrics-*-*`, `traces-*-*`) | on |
/// | extra data stream patterns | none |
/// | body size limit | none |
/// | keep sources | on |
#[derive(Debug)]
#[must_use]
pub struct EsReceiverBuilder {
    port: u16,
    auth: EsAuth,
    builtin_templates: bool,
    data_streams: Vec<String>,
    max_body_bytes: Option<usize>,
    drop_sources: bool,
}

impl EsReceiverBuilder {
    /// Whether each document's `_source` is stored (default on). Off, documents are parsed,
    /// answered and counted ([`EsCounters::bulk_items`]) and their ids and versions kept (so
    /// `create` conflicts still work), but the stored source is `null`: memory stays small for
    /// throughput benchmarks.
    pub fn with_keep_sources(self, keep: bool) -> Self {
        Self {
            drop_sources: !keep,
            ..self
        }
    }

    /// Listens on `127.0.0.1:port` (0 = any free port).
    pub fn with_port(self, port: u16) -> Self {
        Self { port, ..self }
    }

    /// Demands these credentials.
    pub fn with_auth(self, auth: EsAuth) -> Self {
        Self { auth, ..self }
    }

    /// Whether the built-in templates `logs-*-*`, `metrics-*-*`, `traces-*-*` (priority 100,
    /// data streams) exist, as in a default Elasticsearch 8 (default: true).
    pub fn with_builtin_data_stream_templates(self, on: bool) -> Self {
        Self {
            builtin_templates: on,
            ..self
        }
    }

    /// Makes names matching `pattern` (`*` wildcards) data streams, through a template named
    /// `logship-testkit-ds-<n>` with priority 200 (so it wins over the built-ins).
    pub fn with_data_stream_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.data_streams.push(pattern.into());
        self
    }

    /// Answers 413 to requests whose body exceeds `bytes` (checked on the received and on
    /// the decompressed size, like `http.max_content_length`).
    pub fn with_max_body_bytes(self, bytes: usize) -> Self {
        Self {
            max_body_bytes: Some(bytes),
            ..self
        }
    }

    /// Binds and starts the receiver on its own thread.
    ///
    /// # Errors
    /// The bind error, or a failure to build the runtime or spawn the thread.
    pub fn start(self) -> std::io::Result<EsReceiver> {
        let mut store = Store {
            drop_sources: self.drop_sources,
            ..Store::default()
        };
        if self.builtin_templates {
            for (name, pattern) in [
                ("logs", "logs-*-*"),
                ("metrics", "metrics-*-*"),
                ("traces", "traces-*-*"),
            ] {
                store
                    .templates
                    .insert(name.to_string(), Template::builtin(pattern));
            }
        }
        for (n, pattern) in self.data_streams.iter().enumerate() {
            let body = serde_json::json!({
                "index_patterns": [pattern],
                "data_stream": {},
                "priority": 200,
            });
            if let Ok(t) = Template::from_body(body) {
                store.templates.insert(format!("logship-testkit-ds-{n}"), t);
            }
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                store,
                counters: EsCounters::default(),
                faults: Faults {
                    max_body_bytes: self.max_body_bytes,
                    ..Faults::default()
                },
                auth: self.auth,
                requests: VecDeque::new(),
            }),
        });
        let for_server = Arc::clone(&shared);
        let handle = ServerHandle::spawn("es-receiver", self.port, move |listener, stop| {
            http::serve(listener, stop, for_server)
        })?;
        Ok(EsReceiver { handle, shared })
    }
}

/// A running Elasticsearch stand-in; stops when dropped. See the [module docs](self).
#[derive(Debug)]
pub struct EsReceiver {
    handle: ServerHandle,
    shared: Arc<Shared>,
}

impl EsReceiver {
    /// A builder with the defaults listed on [`EsReceiverBuilder`].
    pub fn builder() -> EsReceiverBuilder {
        EsReceiverBuilder {
            port: 0,
            auth: EsAuth::None,
            builtin_templates: true,
            data_streams: Vec::new(),
            max_body_bytes: None,
            drop_sources: false,
        }
    }

    /// Starts a receiver with the defaults.
    ///
    /// # Errors
    /// As [`EsReceiverBuilder::start`].
    pub fn start() -> std::io::Result<EsReceiver> {
        Self::builder().start()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.handle.addr())
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    /// Every live document, by index name, then in order of first write.
    pub fn documents(&self) -> Vec<EsDocument> {
        let st = self.shared.lock();
        st.store
            .indices
            .iter()
            .flat_map(|(name, idx)| {
                idx.live().map(move |s| EsDocument {
                    index: name.clone(),
                    id: s.id.clone(),
                    version: s.version,
                    source: s.source.clone().unwrap_or(Value::Null),
                })
            })
            .collect()
    }

    /// The live documents of one index or data stream, in order of first write.
    pub fn documents_in(&self, index: &str) -> Vec<EsDocument> {
        self.documents()
            .into_iter()
            .filter(|d| d.index == index)
            .collect()
    }

    /// The live document `index`/`id`, if any.
    pub fn document(&self, index: &str, id: &str) -> Option<EsDocument> {
        self.documents_in(index).into_iter().find(|d| d.id == id)
    }

    /// Number of live documents over all indices.
    pub fn doc_count(&self) -> usize {
        self.shared
            .lock()
            .store
            .indices
            .values()
            .map(|i| i.live().count())
            .sum()
    }

    /// Waits (polling, bounded by `timeout`) until at least `n` documents are live; returns
    /// whether that happened.
    pub fn wait_for_docs(&self, n: usize, timeout: Duration) -> bool {
        crate::server::wait_until(timeout, || self.doc_count() >= n)
    }

    /// Names of existing indices and data streams.
    pub fn indices(&self) -> Vec<String> {
        self.shared.lock().store.indices.keys().cloned().collect()
    }

    /// Names of existing data streams.
    pub fn data_streams(&self) -> Vec<String> {
        let st = self.shared.lock();
        st.store
            .indices
            .iter()
            .filter(|(_, i)| i.backing.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Templates stored by `PUT /_index_template/{name}` or
    /// [`EsReceiverBuilder::with_data_stream_pattern`] (not the built-ins), name → body as
    /// sent.
    pub fn templates(&self) -> BTreeMap<String, Value> {
        let st = self.shared.lock();
        st.store
            .templates
            .iter()
            .filter(|(_, t)| !t.builtin)
            .map(|(n, t)| (n.clone(), t.body.clone()))
            .collect()
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> EsCounters {
        self.shared.lock().counters.clone()
    }

    /// The most recent [`REQUEST_LOG_LIMIT`] requests, oldest first (a request is logged when
    /// answered, or when it is left unanswered).
    pub fn requests(&self) -> Vec<EsRequest> {
        self.shared.lock().requests.iter().cloned().collect()
    }

    /// The most recently logged request.
    pub fn last_request(&self) -> Option<EsRequest> {
        self.shared.lock().requests.back().cloned()
    }

    /// Answers the next `n` bulk items (any index) 429 `es_rejected_execution_exception`.
    pub fn reject_items(&self, n: u64) {
        self.shared
            .lock()
            .faults
            .item_rejections
            .push(ItemRejection {
                index: None,
                remaining: n,
            });
    }

    /// Answers the next `n` bulk items addressed to `index` 429
    /// `es_rejected_execution_exception`.
    pub fn reject_items_for_index(&self, index: &str, n: u64) {
        self.shared
            .lock()
            .faults
            .item_rejections
            .push(ItemRejection {
                index: Some(index.to_string()),
                remaining: n,
            });
    }

    /// Answers the next `n` bulk requests 429 `es_rejected_execution_exception` with
    /// `Retry-After: <retry_after in whole seconds, rounded up>`; nothing is indexed.
    pub fn throttle_requests(&self, n: u64, retry_after: Duration) {
        let mut st = self.shared.lock();
        st.faults.throttle = n;
        st.faults.retry_after = retry_after;
    }

    /// Answers the next `n` bulk requests with HTTP `status` (meant for 5xx; e.g. 503) and an
    /// ES error body; nothing is indexed.
    pub fn fail_requests(&self, n: u64, status: u16) {
        let mut st = self.shared.lock();
        st.faults.fail = n;
        st.faults.fail_status = status;
    }

    /// Answers the next `n` `create` items (any index) 409 `version_conflict_engine_exception`
    /// ("document already exists"), as Elasticsearch does when another writer stored a document
    /// under the same `_id` first; nothing is indexed for them.
    pub fn conflict_items(&self, n: u64) {
        self.shared.lock().faults.conflicts = n;
    }

    /// Indexes the next `n` bulk requests as usual, then answers each with HTTP `status`
    /// (meant for 5xx, e.g. 503) and an ES error body instead of the bulk response: the
    /// documents are stored but the client is told the request failed, so its retry meets
    /// its own copies (409 on `create`).
    pub fn fail_after_storing(&self, n: u64, status: u16) {
        let mut st = self.shared.lock();
        st.faults.fail_after_storing = n;
        st.faults.fail_after_storing_status = status;
    }

    /// Reads the next `n` bulk requests and never answers them (until the receiver stops);
    /// nothing is indexed. The client sees a timeout.
    pub fn hang_requests(&self, n: u64) {
        self.shared.lock().faults.hang = n;
    }

    /// Indexes the next `n` bulk requests but never answers them (a lost reply: a retrying
    /// client will send duplicates).
    pub fn drop_responses(&self, n: u64) {
        self.shared.lock().faults.drop_responses = n;
    }

    /// Delays every bulk request by `delay` before handling it (zero = no delay).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().faults.delay = delay;
    }

    /// Answers 413 to requests whose body exceeds `limit` bytes (None = no limit).
    pub fn set_max_body_bytes(&self, limit: Option<usize>) {
        self.shared.lock().faults.max_body_bytes = limit;
    }

    /// Demands other credentials from now on.
    pub fn set_auth(&self, auth: EsAuth) {
        self.shared.lock().auth = auth;
    }

    /// Clears every scripted fault (delay, hang, dropped responses, 5xx, 429s, item
    /// rejections and conflicts, failures after storing); the body-size limit stays.
    pub fn clear_faults(&self) {
        let mut st = self.shared.lock();
        let max_body_bytes = st.faults.max_body_bytes;
        st.faults = Faults {
            max_body_bytes,
            ..Faults::default()
        };
    }
}
