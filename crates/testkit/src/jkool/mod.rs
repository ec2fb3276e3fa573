//! A jKool JESL HTTP receiver (the jKool client model, <https://github.com/Nastel/jkool-client-java-api> "jKool (Nastel / meshIQ)", the Python jKool streaming libraries (jKool PythonStreaming, TNT4PY)).
//!
//! [`JkoolReceiver`] stands in for the jKool stream endpoint `https://…/JESL`: it takes
//! `POST {base}/event`, `{base}/activity` and `{base}/snapshot` with one JSON object per
//! request, as every reference client sends (jkool-client-java-api `JKStream.post(Trackable)`,
//! the original Python library's `HttpHandler`, the swagger's `event` body); a JSON array of
//! objects only when [`JkoolReceiverBuilder::with_accept_arrays`] is on. It validates every
//! document against the field rules below (taken from the references, not from logship's
//! encoder), keeps the valid ones for assertions, and enforces the access token in any of the
//! three ways Nastel's own clients send it. It can be scripted to fail (5xx, 429 with `Retry-After`), to slow down,
//! to hang, and to revoke tokens while running.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use std::time::Duration;
//! use logship_testkit::jkool::JkoolReceiver;
//!
//! let jk = JkoolReceiver::builder().with_token("secret").start()?;
//! // point the code under test at jk.url() (http://127.0.0.1:PORT/JESL) ...
//! assert!(jk.wait_for(2, Duration::from_secs(5)));
//! assert_eq!(jk.events()[0]["severity"], "INFO");
//! # Ok(()) }
//! ```
//!
//! # Endpoints and answers
//!
//! | request | answer |
//! |---|---|
//! | `POST {base}/event`, `POST {base}/snapshot`, JSON | 202 (all documents valid and stored) |
//! | `POST {base}/activity`, JSON | 200 (as the swagger says) |
//! | `POST <any path>`, `Content-Type: text/plain`, `<access-request><token>T</token></access-request>` | 200 and the TCP connection is authorised; the auth-failure status when `T` is wrong |
//! | `POST {base}/...` with `Pragma: ping` and no body | 200 (JESL's flush ping) |
//! | a JSON array (unless [`JkoolReceiverBuilder::with_accept_arrays`]) | 400, counted in [`JkoolCounters::arrays_refused`]; nothing stored |
//! | a document or accepted array that breaks a rule below, invalid JSON, an empty array, a `Content-Type` other than `application/json` | 400, `text/plain` reason; nothing of that request is stored |
//! | no or wrong token | 401 (or the status set by [`JkoolReceiverBuilder::with_auth_failure_status`], e.g. 403) |
//! | another method on an endpoint | 405; any other path: 404 |
//!
//! An accepted array is all-or-nothing: one invalid element rejects the whole request (the
//! reason names its index). `Content-Encoding: gzip` bodies are accepted.
//!
//! # Document rules
//!
//! From jkool-client-java-api (`model/Trackable.java`, `Event.java`, `Property.java`,
//! `src/swagger/jKoolSwagger.yaml`), TNT4J (`format/JSONFormatter.java`, `JSONLabels.java`,
//! `core/Property.java`) and the original Python library (`logEvent`, `metrics.Property`):
//!
//! * event and activity: `tracking-id` (non-empty string), `source-fqn` and `time-usec` are
//!   required; snapshot: `name`, `type` = `"SNAPSHOT"` and `time-usec`.
//! * `type`, when present, must be `EVENT` / `ACTIVITY` / `SNAPSHOT` for its endpoint.
//! * `time-usec`, `start-time-usec`, `end-time-usec` are integers in microseconds since the
//!   epoch, and must fall between 2000 and 2100 (this catches milliseconds and nanoseconds);
//!   `elapsed-time-usec`, `wait-time-usec`, `msg-age`, `msg-age-usec`, `msg-size` are
//!   non-negative integers (µs, bytes); `pid`, `tid` integers; `reason-code` integer or string.
//! * `severity` one of `NONE TRACE DEBUG INFO NOTICE WARNING ERROR FAILURE CRITICAL FATAL
//!   HALT`; `comp-code` one of `SUCCESS WARNING ERROR`; activity `status` one of `UNKNOWN END
//!   EXCEPTION`.
//! * `source-fqn` is `TYPE=name#TYPE=name…` with TYPE from `USER APPL PROCESS APPSERVER SERVER
//!   RUNTIME VIRTUAL NETWORK DEVICE NETADDR GEOADDR DATACENTER DATASTORE CACHE SERVICE QUEUE`.
//! * `corrid` (Java `Trackable`, TNT4J; an array in both, a string in the RUM plugin): a
//!   string or an array of strings. `corr-id` (the original Python library, the swagger): a
//!   **string**; an array under `corr-id` matches no reference and is refused.
//! * `msg-tag`: a string (Java `Event`, swagger, the original) or an array of strings (TNT4J).
//! * text fields (`msg-text`, `operation`, `exception`, `location`, `source-url`, `encoding`,
//!   `charset`, `mime-type`, `parent-id`, …): strings.
//! * `properties`: array of `{name, type, value[, value-type]}`, name and type non-empty
//!   strings, value present. `type` names are the Java data types of `Property.getDataType`
//!   (`string`, `long`, `int`, `short`, `byte`, `double`, `float`, `bool`, `char`, `date`,
//!   `none`; the original also wrote `integer`), **lowercase**: `STRING` or `INTEGER` matches
//!   no reference and is refused; other names (a Java class name) are accepted. The value is a
//!   JSON string (Java, TNT4J, swagger) or a JSON scalar (the original); for `long`/`int`/
//!   `short`/`byte`/`integer` it must read as an integer, for `double`/`float` as a number, for
//!   `bool` as `true`/`false`. `snapshots`: array of snapshot documents. Unknown fields are
//!   accepted.
//!
//! # Authentication
//!
//! Without [`JkoolReceiverBuilder::with_token`] every request is accepted. With tokens, a data
//! post is authorised by (each method can be switched off with
//! [`JkoolReceiverBuilder::with_auth_methods`]): a `token: <T>` header; an `X-API-Key: <T>`
//! header; or an earlier access-request handshake on the same TCP connection (tracked per
//! accepted connection, so a new connection needs a new handshake). A token removed with
//! [`JkoolReceiver::revoke_token`] stops working at once, also for connections it authorised.
//!
//! # Faults
//!
//! [`JkoolReceiver::fail_requests`], [`JkoolReceiver::throttle_requests`],
//! [`JkoolReceiver::hang_requests`] and [`JkoolReceiver::set_delay`] apply to data posts only
//! (never to the handshake). Order for one request: delay, hang, 5xx, 429, auth, validation.

pub(crate) mod http;
pub(crate) mod validate;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;

use crate::server::ServerHandle;

/// How many recent requests [`JkoolReceiver::requests`] keeps.
pub const REQUEST_LOG_LIMIT: usize = 1000;

/// A way of presenting the access token (the jKool client model, <https://github.com/Nastel/jkool-client-java-api> "Auth").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum JkoolAuthMethod {
    /// Header `token: <T>` on every request (jkool-client-java-api, swagger).
    TokenHeader,
    /// Header `X-API-Key: <T>` on every request (JESL `HttpClient`).
    ApiKeyHeader,
    /// An access-request handshake (`text/plain`
    /// `<access-request><token>T</token></access-request>`) authorising the TCP connection
    /// (tnt4py `HttpHandler`).
    Handshake,
}

impl JkoolAuthMethod {
    /// Stable name used in [`JkoolCounters::authorized_by`]: `token-header`,
    /// `api-key-header`, `handshake`.
    pub fn name(self) -> &'static str {
        match self {
            JkoolAuthMethod::TokenHeader => "token-header",
            JkoolAuthMethod::ApiKeyHeader => "api-key-header",
            JkoolAuthMethod::Handshake => "handshake",
        }
    }
}

/// One HTTP request as the receiver saw it (see [`JkoolReceiver::requests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JkoolRequest {
    /// Id of the TCP connection it came on (unique per accepted connection).
    pub connection: u64,
    /// The peer address of that connection.
    pub peer: SocketAddr,
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/JESL/event`.
    pub path: String,
    /// Headers in arrival order, names lowercase.
    pub headers: Vec<(String, String)>,
    /// Body after decompression.
    pub body: Vec<u8>,
    /// Status answered; 0 when never answered ([`JkoolReceiver::hang_requests`]).
    pub status: u16,
}

impl JkoolRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Counters, read with [`JkoolReceiver::counters`]. Everything counts since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JkoolCounters {
    /// HTTP requests received.
    pub requests: u64,
    /// Distinct TCP connections that sent at least one request.
    pub connections: u64,
    /// Answered requests by (endpoint, status); endpoints are `event`, `activity`,
    /// `snapshot`, `handshake`, `other`.
    pub responses: BTreeMap<(String, u16), u64>,
    /// Requests refused for a missing or wrong token (handshakes included).
    pub auth_failures: u64,
    /// Accepted access-request handshakes.
    pub handshakes: u64,
    /// Data posts authorised, by [`JkoolAuthMethod::name`] (`none` when no token is
    /// configured).
    pub authorized_by: BTreeMap<String, u64>,
    /// Documents rejected by validation (one per invalid element of a batch).
    pub invalid_documents: u64,
    /// Requests whose body was a JSON array, refused (400) because
    /// [`JkoolReceiverBuilder::with_accept_arrays`] is off.
    pub arrays_refused: u64,
    /// Requests answered 400 (invalid documents, JSON, content type or handshake body).
    pub invalid_requests: u64,
    /// Documents stored.
    pub documents: u64,
    /// `Pragma: ping` requests.
    pub pings: u64,
    /// Requests answered 5xx by [`JkoolReceiver::fail_requests`].
    pub injected_failures: u64,
    /// Requests answered 429 by [`JkoolReceiver::throttle_requests`].
    pub injected_throttles: u64,
    /// Requests left unanswered by [`JkoolReceiver::hang_requests`].
    pub unanswered: u64,
    /// Request body bytes as received (compressed when `Content-Encoding` was set).
    pub bytes_received: u64,
}

impl JkoolCounters {
    /// Answered requests to `endpoint` (`event`, `activity`, `snapshot`, `handshake`,
    /// `other`) with `status`.
    pub fn responses_to(&self, endpoint: &str, status: u16) -> u64 {
        self.responses
            .get(&(endpoint.to_string(), status))
            .copied()
            .unwrap_or(0)
    }

    /// Answered requests to `endpoint`, any status.
    pub fn requests_to(&self, endpoint: &str) -> u64 {
        self.responses
            .iter()
            .filter(|((e, _), _)| e == endpoint)
            .map(|(_, n)| n)
            .sum()
    }

    /// Data posts authorised by `method`.
    pub fn authorized(&self, method: JkoolAuthMethod) -> u64 {
        self.authorized_by.get(method.name()).copied().unwrap_or(0)
    }
}

#[derive(Debug, Default)]
struct Faults {
    delay: Duration,
    hang: u64,
    fail: u64,
    fail_status: u16,
    throttle: u64,
    retry_after: Duration,
}

#[derive(Debug)]
struct State {
    events: Vec<Value>,
    activities: Vec<Value>,
    snapshots: Vec<Value>,
    /// `None`: no auth; `Some(set)`: these tokens (possibly none left after revocation).
    tokens: Option<HashSet<String>>,
    methods: HashSet<JkoolAuthMethod>,
    failure_status: u16,
    /// Connection id → the token its handshake presented.
    sessions: HashMap<u64, String>,
    seen_connections: HashSet<u64>,
    counters: JkoolCounters,
    faults: Faults,
    requests: VecDeque<JkoolRequest>,
    rejections: Vec<String>,
    /// Accept a JSON array of documents in one request (off: 400, as no reference sends one).
    accept_arrays: bool,
    /// Store accepted documents (off: only [`JkoolCounters::documents`] counts them).
    keep_documents: bool,
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

/// Configures and starts a [`JkoolReceiver`].
///
/// | setting | default |
/// |---|---|
/// | port | 0 (any free port on 127.0.0.1) |
/// | base path | `/JESL` |
/// | tokens | none (no authentication) |
/// | auth methods | all three [`JkoolAuthMethod`]s |
/// | auth failure status | 401 |
/// | keep documents | on |
/// | accept arrays | off: one JSON object per request |
#[derive(Debug)]
#[must_use]
pub struct JkoolReceiverBuilder {
    port: u16,
    base_path: String,
    tokens: Option<HashSet<String>>,
    methods: HashSet<JkoolAuthMethod>,
    failure_status: u16,
    keep_documents: bool,
    accept_arrays: bool,
}

impl JkoolReceiverBuilder {
    /// Listens on `127.0.0.1:port` (0 = any free port).
    pub fn with_port(self, port: u16) -> Self {
        Self { port, ..self }
    }

    /// The base path the endpoints hang off (default `/JESL`; `""` puts them at the root).
    pub fn with_base_path(self, base: impl Into<String>) -> Self {
        let base = base.into();
        let base = format!("/{}", base.trim_matches('/'));
        Self {
            base_path: if base == "/" { String::new() } else { base },
            ..self
        }
    }

    /// Accepts this access token (call again for more); once called, requests need a token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.tokens
            .get_or_insert_with(HashSet::new)
            .insert(token.into());
        self
    }

    /// Accepts the token only in these ways (default: all three).
    pub fn with_auth_methods(self, methods: &[JkoolAuthMethod]) -> Self {
        Self {
            methods: methods.iter().copied().collect(),
            ..self
        }
    }

    /// The status for a missing or wrong token (default 401; 403 is the other common one).
    pub fn with_auth_failure_status(self, status: u16) -> Self {
        Self {
            failure_status: status,
            ..self
        }
    }

    /// Whether accepted documents are stored (default on). Off, they are validated, answered
    /// and counted in [`JkoolCounters::documents`] as usual but not kept, so the `*_count`
    /// and document accessors stay empty and memory stays flat: for throughput benchmarks.
    pub fn with_keep_documents(self, keep: bool) -> Self {
        Self {
            keep_documents: keep,
            ..self
        }
    }

    /// Whether a request may carry a JSON array of documents (default **off**: such a request
    /// is answered 400 and nothing of it is stored). Every reference client posts one JSON
    /// object per request (jkool-client-java-api `JKStream.post(Trackable)`, the original
    /// Python library's `HttpHandler`, the swagger's `event` body); turn this on to test a
    /// client's opt-in array bodies. An accepted array is all-or-nothing: one invalid
    /// element refuses the whole request.
    pub fn with_accept_arrays(self, accept: bool) -> Self {
        Self {
            accept_arrays: accept,
            ..self
        }
    }

    /// Binds and starts the receiver on its own thread.
    ///
    /// # Errors
    /// The bind error, or a failure to build the runtime or spawn the thread.
    pub fn start(self) -> std::io::Result<JkoolReceiver> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                events: Vec::new(),
                activities: Vec::new(),
                snapshots: Vec::new(),
                tokens: self.tokens,
                methods: self.methods,
                failure_status: self.failure_status,
                sessions: HashMap::new(),
                seen_connections: HashSet::new(),
                counters: JkoolCounters::default(),
                faults: Faults::default(),
                requests: VecDeque::new(),
                rejections: Vec::new(),
                accept_arrays: self.accept_arrays,
                keep_documents: self.keep_documents,
            }),
        });
        let for_server = Arc::clone(&shared);
        let base = self.base_path.clone();
        let handle = ServerHandle::spawn("jkool-receiver", self.port, move |listener, stop| {
            http::serve(listener, stop, for_server, base)
        })?;
        Ok(JkoolReceiver {
            handle,
            shared,
            base_path: self.base_path,
        })
    }
}

/// A running jKool JESL stand-in; stops when dropped. See the [module docs](self).
#[derive(Debug)]
pub struct JkoolReceiver {
    handle: ServerHandle,
    shared: Arc<Shared>,
    base_path: String,
}

impl JkoolReceiver {
    /// A builder with the defaults listed on [`JkoolReceiverBuilder`].
    pub fn builder() -> JkoolReceiverBuilder {
        JkoolReceiverBuilder {
            port: 0,
            base_path: "/JESL".into(),
            tokens: None,
            methods: [
                JkoolAuthMethod::TokenHeader,
                JkoolAuthMethod::ApiKeyHeader,
                JkoolAuthMethod::Handshake,
            ]
            .into_iter()
            .collect(),
            failure_status: 401,
            keep_documents: true,
            accept_arrays: false,
        }
    }

    /// Starts a receiver with the defaults (no authentication).
    ///
    /// # Errors
    /// As [`JkoolReceiverBuilder::start`].
    pub fn start() -> std::io::Result<JkoolReceiver> {
        Self::builder().start()
    }

    /// The base URL, `http://127.0.0.1:PORT/JESL`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.handle.addr(), self.base_path)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    /// Events stored (from `{base}/event`), in arrival order.
    pub fn events(&self) -> Vec<Value> {
        self.shared.lock().events.clone()
    }

    /// Activities stored (from `{base}/activity`), in arrival order.
    pub fn activities(&self) -> Vec<Value> {
        self.shared.lock().activities.clone()
    }

    /// Snapshots stored (from `{base}/snapshot`; not those embedded in events), in arrival
    /// order.
    pub fn snapshots(&self) -> Vec<Value> {
        self.shared.lock().snapshots.clone()
    }

    /// Number of stored events.
    pub fn event_count(&self) -> usize {
        self.shared.lock().events.len()
    }

    /// Number of stored activities.
    pub fn activity_count(&self) -> usize {
        self.shared.lock().activities.len()
    }

    /// Number of stored snapshots.
    pub fn snapshot_count(&self) -> usize {
        self.shared.lock().snapshots.len()
    }

    /// Number of stored documents of all three kinds.
    pub fn doc_count(&self) -> usize {
        let st = self.shared.lock();
        st.events.len() + st.activities.len() + st.snapshots.len()
    }

    /// Waits (polling, bounded by `timeout`) until at least `n` documents of any kind are
    /// stored; returns whether that happened.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        crate::server::wait_until(timeout, || self.doc_count() >= n)
    }

    /// Waits until at least `n` events are stored; returns whether that happened.
    pub fn wait_for_events(&self, n: usize, timeout: Duration) -> bool {
        crate::server::wait_until(timeout, || self.event_count() >= n)
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> JkoolCounters {
        self.shared.lock().counters.clone()
    }

    /// The most recent [`REQUEST_LOG_LIMIT`] requests, oldest first.
    pub fn requests(&self) -> Vec<JkoolRequest> {
        self.shared.lock().requests.iter().cloned().collect()
    }

    /// The most recently logged request.
    pub fn last_request(&self) -> Option<JkoolRequest> {
        self.shared.lock().requests.back().cloned()
    }

    /// The reasons of every 400 answered so far, oldest first (handy in assertion messages).
    pub fn rejections(&self) -> Vec<String> {
        self.shared.lock().rejections.clone()
    }

    /// Answers the next `n` data posts with HTTP `status` (meant for 5xx); nothing is stored.
    pub fn fail_requests(&self, n: u64, status: u16) {
        let mut st = self.shared.lock();
        st.faults.fail = n;
        st.faults.fail_status = status;
    }

    /// Answers the next `n` data posts 429 with `Retry-After: <whole seconds, rounded up>`;
    /// nothing is stored.
    pub fn throttle_requests(&self, n: u64, retry_after: Duration) {
        let mut st = self.shared.lock();
        st.faults.throttle = n;
        st.faults.retry_after = retry_after;
    }

    /// Reads the next `n` data posts and never answers them (until the receiver stops);
    /// nothing is stored.
    pub fn hang_requests(&self, n: u64) {
        self.shared.lock().faults.hang = n;
    }

    /// Delays every data post by `delay` (zero = no delay).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().faults.delay = delay;
    }

    /// Clears delay, hang, 5xx and 429 faults.
    pub fn clear_faults(&self) {
        self.shared.lock().faults = Faults::default();
    }

    /// Stops accepting `token` at once: headers carrying it and connections whose handshake
    /// presented it are refused from the next request on. Authentication stays on even when no
    /// token is left.
    pub fn revoke_token(&self, token: &str) {
        let mut st = self.shared.lock();
        st.tokens.get_or_insert_with(HashSet::new).remove(token);
    }

    /// Starts accepting `token` (turning authentication on if it was off).
    pub fn add_token(&self, token: impl Into<String>) {
        self.shared
            .lock()
            .tokens
            .get_or_insert_with(HashSet::new)
            .insert(token.into());
    }
}
