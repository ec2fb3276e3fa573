//! A Fluentd Forward protocol v1 receiver, written from the spec (the Forward protocol v1 specification, <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1>), for
//! asserting what a sender put on the wire.
//!
//! It accepts what real Fluentd 1.15 and Fluent Bit 4.2 accept, and where the two differ it
//! lets the test pick a side:
//!
//! * **Framing** — one msgpack value per request, streamed: requests back to back on one
//!   connection and requests split over many TCP reads are both fine.
//! * **Modes** (told apart by the type of the 2nd array element) — Message (integer or
//!   EventTime), Forward (array), PackedForward (blob as `bin` or `str`) and
//!   CompressedPackedForward (option `compressed: "gzip"`, blob as `bin` or `str`, one or
//!   several gzip members). [`FluentEvent::mode`] says which one carried each event.
//! * **Time** — integer seconds, or EventTime (ext type 0) as `fixext8` (`D7 00`) or `ext8`
//!   (`C7 08 00`); [`EventTimeValue::encoding`] says which.
//! * **Records** must be maps with string keys; anything else is a protocol error. A map that
//!   holds a key twice is recorded as sent and counted
//!   ([`FluentStats::records_with_repeated_keys`]).
//! * **Keep-alive `nil`** — counted; kept open like Fluentd ([`NilPolicy::KeepAlive`], the
//!   default) or closed like Fluent Bit ([`NilPolicy::Close`], which drops everything after it).
//! * **Acks** — only when the option map has `chunk`: the reply is `{"ack": <chunk>}` (fixmap,
//!   key `ack`, value str) holding the chunk byte for byte. A `chunk` sent as `bin` is treated
//!   like Fluent Bit does: a protocol error, the request dropped, the connection closed.
//! * **Handshake** — with [`FluentReceiverBuilder::with_shared_key`]: HELO (wire style per
//!   [`HeloStyle`]), PING check (shared key digest and, with users, password digest), PONG as
//!   str fields. Nothing is accepted before it succeeds.
//! * **Keep-alive denied** — with [`FluentReceiverBuilder::with_deny_keepalive`], as Fluentd's
//!   `deny_keepalive`: HELO `keepalive: false`, each connection closed after its first request
//!   (and ack); what followed on it is dropped and counted.
//! * **Errors** never panic the server: a request that does not decode is counted in
//!   [`FluentStats::protocol_errors`], described in [`FluentReceiver::errors`], and its
//!   connection is closed.
//!
//! Faults ([`Faults`]) script misbehaviour: cut a connection after N bytes, withhold or garble
//! acks, delay acks, refuse connections. Set them at start or change them while running.
//!
//! ```
//! use std::io::Write;
//! use std::time::Duration;
//! use logship_testkit::fluent::{FluentReceiver, Mode};
//!
//! let receiver = FluentReceiver::builder().start()?;
//! let mut conn = std::net::TcpStream::connect(receiver.addr().expect("tcp"))?;
//! // ["app.x", 1700000000, {"msg": "hi"}]
//! conn.write_all(b"\x93\xa5app.x\xce\x65\x53\xf1\x00\x81\xa3msg\xa2hi")?;
//! assert!(receiver.wait_for_events(1, Duration::from_secs(5)));
//! let events = receiver.events();
//! assert_eq!(events[0].tag, "app.x");
//! assert_eq!(events[0].mode, Mode::Message);
//! assert_eq!(events[0].time.secs, 1_700_000_000);
//! # Ok::<(), std::io::Error>(())
//! ```

mod conn;
pub(crate) mod handshake;
mod tls;
pub(crate) mod wire;

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rmpv::Value;
use tokio::sync::watch;

use crate::server::{ServerHandle, wait_until};

pub use tls::TlsIdentity;

/// The Forward protocol mode a request used (the Forward protocol v1 specification, <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1> "Event modes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `[tag, time, record, option?]`.
    Message,
    /// `[tag, [[time, record], ...], option?]`.
    Forward,
    /// `[tag, blob, option?]`, blob (bin or str) = concatenated `[time, record]` values.
    PackedForward,
    /// PackedForward whose blob is gzip (option `compressed: "gzip"`).
    CompressedPackedForward,
}

/// How an event time was encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeEncoding {
    /// A msgpack integer: seconds since the Unix epoch, no sub-second part.
    Integer,
    /// EventTime as `fixext8`: `D7 00` + 8 bytes (10 bytes in all).
    FixExt8,
    /// EventTime as `ext8`: `C7 08 00` + 8 bytes (11 bytes in all).
    Ext8,
}

/// An event time as received: UTC seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventTimeValue {
    /// Seconds since the Unix epoch (UTC).
    pub secs: u64,
    /// Nanoseconds within the second (`0..10^9`); always 0 for [`TimeEncoding::Integer`].
    pub nanos: u32,
    /// Integer, or which EventTime encoding.
    pub encoding: TimeEncoding,
}

impl EventTimeValue {
    /// The time as nanoseconds since the Unix epoch (UTC).
    pub fn as_nanos(&self) -> u128 {
        u128::from(self.secs) * 1_000_000_000 + u128::from(self.nanos)
    }
}

/// One decoded event.
#[derive(Debug, Clone, PartialEq)]
pub struct FluentEvent {
    /// The request's tag.
    pub tag: String,
    /// The event time.
    pub time: EventTimeValue,
    /// The record: always a [`Value::Map`] with string keys.
    pub record: Value,
    /// The mode of the request that carried the event.
    pub mode: Mode,
    /// The request's `chunk` option (lossy UTF-8; the ack echoes the raw bytes).
    pub chunk: Option<String>,
    /// True when the chunk id had been seen before (a resend): events of resent requests are
    /// kept (the receiver records the wire as it is), so filter on this for unique events.
    pub duplicate: bool,
    /// Which connection carried it: 1 for the first connection accepted, and so on.
    pub connection: u64,
}

impl FluentEvent {
    /// The record as JSON (for printing): binary values become `"<n bytes>"`, extension values
    /// `"<ext t: n bytes>"`, non-string map keys their msgpack text.
    pub fn record_json(&self) -> serde_json::Value {
        msgpack_to_json(&self.record)
    }

    /// The record field `key`, if the record has it.
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.record
            .as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

fn msgpack_to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Nil => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Integer(i) => i
            .as_i64()
            .map(J::from)
            .or_else(|| i.as_u64().map(J::from))
            .unwrap_or(J::Null),
        Value::F32(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(J::Null, J::Number),
        Value::F64(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::String(s) => J::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Value::Binary(b) => J::String(format!("<{} bytes>", b.len())),
        Value::Array(a) => J::Array(a.iter().map(msgpack_to_json).collect()),
        Value::Map(m) => J::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = k.as_str().map_or_else(|| k.to_string(), str::to_string);
                    (key, msgpack_to_json(v))
                })
                .collect(),
        ),
        Value::Ext(t, b) => J::String(format!("<ext {t}: {} bytes>", b.len())),
    }
}

/// The HELO wire style (the Forward protocol v1 specification, <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1> "Handshake", wire-type quirks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeloStyle {
    /// Fluentd: `nonce` and `auth` as bin8 (16 bytes each), `keepalive: true`; a bad shared
    /// key gets `["PONG", false, "shared_key mismatch", "", ""]`; a PING whose hostname equals
    /// ours is refused ("same hostname between input and output: invalid configuration").
    #[default]
    Fluentd,
    /// Fluent Bit: `nonce` and `auth` as str holding 16 raw bytes, no `keepalive`; a bad shared
    /// key closes the connection without a PONG.
    FluentBit,
}

/// What to do with a bare `nil` keep-alive (the Forward protocol v1 specification, <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1> "Transport and framing").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NilPolicy {
    /// Count it and keep the connection, like Fluentd.
    #[default]
    KeepAlive,
    /// Count it and close the connection, dropping what follows, like Fluent Bit 4.2.
    Close,
}

/// How many times a fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Times {
    /// Off.
    #[default]
    Never,
    /// For the next N occasions, then off.
    Next(u64),
    /// Until cleared.
    Always,
}

impl Times {
    /// Consumes one occasion: whether the fault fires this time.
    fn take_one(&mut self) -> bool {
        match self {
            Times::Never => false,
            Times::Always => true,
            Times::Next(n) => {
                let fire = *n > 0;
                *n = n.saturating_sub(1);
                if *n == 0 {
                    *self = Times::Never;
                }
                fire
            }
        }
    }
}

/// Scripted misbehaviour. All off by default; set with [`FluentReceiverBuilder::with_faults`]
/// or while running with [`FluentReceiver::set_faults`] / [`FluentReceiver::update_faults`].
/// A change applies from the next read, request or connection on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Faults {
    /// Close each connection once it has received this many bytes (counted per connection,
    /// after TLS). Complete requests within those bytes are processed (and acked); the rest is
    /// dropped. Counted in [`FluentStats::fault_closes`].
    pub close_after_bytes: Option<u64>,
    /// Withhold the ack of requests that ask for one (the events are still recorded).
    /// Counted in [`FluentStats::acks_withheld`].
    pub withhold_acks: Times,
    /// Answer with a wrong chunk (`"garbled-" + chunk`). Counted in [`FluentStats::acks_garbled`].
    pub garble_acks: Times,
    /// Wait this long before writing each ack (`Duration::ZERO`: no wait).
    pub ack_delay: Duration,
    /// Close new connections right after accepting them (before TLS and HELO).
    /// Counted in [`FluentStats::refused_connections`].
    pub refuse_connections: bool,
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Faults::default()
    }
    /// Sets [`Faults::close_after_bytes`].
    pub fn with_close_after_bytes(self, bytes: Option<u64>) -> Self {
        Faults {
            close_after_bytes: bytes,
            ..self
        }
    }
    /// Sets [`Faults::withhold_acks`].
    pub fn with_withhold_acks(self, times: Times) -> Self {
        Faults {
            withhold_acks: times,
            ..self
        }
    }
    /// Sets [`Faults::garble_acks`].
    pub fn with_garble_acks(self, times: Times) -> Self {
        Faults {
            garble_acks: times,
            ..self
        }
    }
    /// Sets [`Faults::ack_delay`].
    pub fn with_ack_delay(self, delay: Duration) -> Self {
        Faults {
            ack_delay: delay,
            ..self
        }
    }
    /// Sets [`Faults::refuse_connections`].
    pub fn with_refuse_connections(self, refuse: bool) -> Self {
        Faults {
            refuse_connections: refuse,
            ..self
        }
    }
}

/// A snapshot of the receiver's counters (all since start or the last [`FluentReceiver::clear`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FluentStats {
    /// Connections accepted and served (refused ones not included).
    pub connections: u64,
    /// Connections closed at once by [`Faults::refuse_connections`].
    pub refused_connections: u64,
    /// Message-mode requests decoded.
    pub requests_message: u64,
    /// Forward-mode requests decoded.
    pub requests_forward: u64,
    /// PackedForward requests decoded.
    pub requests_packed_forward: u64,
    /// CompressedPackedForward requests decoded.
    pub requests_compressed_packed_forward: u64,
    /// Events recorded.
    pub events: u64,
    /// Correct acks written (counted just before the write).
    pub acks_sent: u64,
    /// Acks withheld by [`Faults::withhold_acks`].
    pub acks_withheld: u64,
    /// Wrong acks written by [`Faults::garble_acks`].
    pub acks_garbled: u64,
    /// Requests whose `chunk` had been seen before (resends).
    pub duplicate_chunks: u64,
    /// Bare `nil` keep-alives received.
    pub nil_keepalives: u64,
    /// Successful handshakes.
    pub handshakes_ok: u64,
    /// Failed handshakes (bad PING, wrong shared key, wrong user or password, bin salt).
    pub handshake_failures: u64,
    /// Requests that did not decode (each closed its connection).
    pub protocol_errors: u64,
    /// Connections cut by [`Faults::close_after_bytes`].
    pub fault_closes: u64,
    /// Failed TLS handshakes.
    pub tls_failures: u64,
    /// Bytes received in the transport and handshake phases (after TLS), all connections.
    pub bytes_received: u64,
    /// Entries dropped (yet acknowledged) by [`FluentReceiverBuilder::with_compressed_chunk_limit`].
    pub entries_past_chunk_limit: u64,
    /// Connections closed after their first request by
    /// [`FluentReceiverBuilder::with_deny_keepalive`].
    pub keepalive_closes: u64,
    /// Requests (complete or partial) that arrived on a connection after the one it was closed
    /// for by [`FluentReceiverBuilder::with_deny_keepalive`], and were dropped unread. A
    /// lower bound: what was still in flight when the connection closed is not seen at all.
    pub dropped_after_keepalive_close: u64,
    /// Records whose map holds a key twice (recorded as sent: [`FluentEvent::field`] returns
    /// the first).
    pub records_with_repeated_keys: u64,
    /// Total modelled processing time of [`FluentReceiverBuilder::with_processing_delay`], in
    /// nanoseconds, all connections.
    pub processing_ns: u64,
    /// Time connections spent waiting for the client with no complete request to handle,
    /// in nanoseconds, summed over connections, counted from each connection's first request
    /// that asked for an ack on (a connection opened ahead of use does not count), until it
    /// closes. With one connection, `1 − idle_ns ÷ wall time` is the share of the run the
    /// receiver was busy (decoding, processing, acknowledging): what a client that keeps
    /// chunks in flight drives towards 100 %.
    pub idle_ns: u64,
    /// The most requests one connection had received completely and not yet acknowledged,
    /// seen each time an ack is about to be written (the one being acknowledged included): 1
    /// for a client that waits for each ack before writing the next request; up to its
    /// window for a client that pipelines (what the server has read is bounded by how fast
    /// it reads, so this is a lower bound of the client's window use).
    pub max_requests_awaiting_ack: u64,
    /// The most requests one connection had received completely before its first ack was
    /// written (see [`FluentReceiverBuilder::with_first_ack_after`]).
    pub max_requests_before_first_ack: u64,
}

impl FluentStats {
    /// Requests decoded in `mode`.
    pub fn requests(&self, mode: Mode) -> u64 {
        match mode {
            Mode::Message => self.requests_message,
            Mode::Forward => self.requests_forward,
            Mode::PackedForward => self.requests_packed_forward,
            Mode::CompressedPackedForward => self.requests_compressed_packed_forward,
        }
    }
    /// Requests decoded in any mode.
    pub fn requests_total(&self) -> u64 {
        self.requests_message
            + self.requests_forward
            + self.requests_packed_forward
            + self.requests_compressed_packed_forward
    }
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    refused_connections: AtomicU64,
    requests_message: AtomicU64,
    requests_forward: AtomicU64,
    requests_packed_forward: AtomicU64,
    requests_compressed_packed_forward: AtomicU64,
    acks_sent: AtomicU64,
    acks_withheld: AtomicU64,
    acks_garbled: AtomicU64,
    duplicate_chunks: AtomicU64,
    nil_keepalives: AtomicU64,
    handshakes_ok: AtomicU64,
    handshake_failures: AtomicU64,
    protocol_errors: AtomicU64,
    fault_closes: AtomicU64,
    tls_failures: AtomicU64,
    bytes_received: AtomicU64,
    /// Events decoded but not stored ([`FluentReceiverBuilder::with_keep_events`] off).
    events_not_kept: AtomicU64,
    entries_past_chunk_limit: AtomicU64,
    keepalive_closes: AtomicU64,
    dropped_after_keepalive_close: AtomicU64,
    records_with_repeated_keys: AtomicU64,
    processing_ns: AtomicU64,
    idle_ns: AtomicU64,
    max_requests_awaiting_ack: AtomicU64,
    max_requests_before_first_ack: AtomicU64,
}

struct HandshakeConfig {
    shared_key: String,
    self_hostname: String,
    users: Vec<(String, String)>,
    style: HeloStyle,
}

struct Config {
    handshake: Option<HandshakeConfig>,
    nil_policy: NilPolicy,
    keep_events: bool,
    compressed_chunk_limit: Option<usize>,
    deny_keepalive: bool,
    processing: Processing,
    first_ack_after: u64,
}

/// The modelled cost of processing a request before its ack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Processing {
    per_request: Duration,
    per_event: Duration,
}

impl Processing {
    fn cost(&self, events: usize) -> Duration {
        self.per_request.saturating_add(
            self.per_event
                .saturating_mul(u32::try_from(events).unwrap_or(u32::MAX)),
        )
    }
}

/// State shared by the handle and the connection tasks.
struct Shared {
    config: Config,
    /// Connection ids (never reset by `clear`).
    next_connection: AtomicU64,
    tls: Option<tokio_rustls::TlsAcceptor>,
    counters: Counters,
    events: Mutex<Vec<FluentEvent>>,
    seen_chunks: Mutex<HashSet<Vec<u8>>>,
    faults: Mutex<Faults>,
    errors: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn lock_events(&self) -> MutexGuard<'_, Vec<FluentEvent>> {
        lock(&self.events)
    }
    fn lock_seen(&self) -> MutexGuard<'_, HashSet<Vec<u8>>> {
        lock(&self.seen_chunks)
    }
    fn lock_faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }
    fn faults(&self) -> Faults {
        self.lock_faults().clone()
    }
    fn error(&self, conn: u64, msg: String) {
        lock(&self.errors).push(format!("connection {conn}: {msg}"));
    }
    fn protocol_error(&self, conn: u64, msg: String) {
        self.counters
            .protocol_errors
            .fetch_add(1, Ordering::Relaxed);
        self.error(conn, msg);
    }
    fn handshake_failure(&self, conn: u64, msg: String) {
        self.counters
            .handshake_failures
            .fetch_add(1, Ordering::Relaxed);
        self.error(conn, format!("handshake failed: {msg}"));
    }
}

/// Configures and starts a [`FluentReceiver`].
///
/// | setting | default |
/// |---|---|
/// | port | 0 (a free port on `127.0.0.1`) |
/// | TLS | off |
/// | Unix socket | off (TCP) |
/// | shared key / handshake | off |
/// | self_hostname | `logship-testkit` |
/// | users | none (passwords not checked) |
/// | HELO style | [`HeloStyle::Fluentd`] |
/// | nil keep-alive | [`NilPolicy::KeepAlive`] |
/// | faults | none |
/// | keep events | on |
/// | deny keep-alive | off |
/// | processing delay per request / per event | none |
/// | first ack after | 1 request |
#[derive(Debug, Clone)]
#[must_use]
pub struct FluentReceiverBuilder {
    port: u16,
    tls: Option<TlsIdentity>,
    unix_path: Option<PathBuf>,
    shared_key: Option<String>,
    self_hostname: String,
    users: Vec<(String, String)>,
    helo_style: HeloStyle,
    nil_policy: NilPolicy,
    faults: Faults,
    keep_events: bool,
    compressed_chunk_limit: Option<usize>,
    deny_keepalive: bool,
    processing: Processing,
    first_ack_after: u64,
}

impl Default for FluentReceiverBuilder {
    fn default() -> Self {
        FluentReceiverBuilder {
            port: 0,
            tls: None,
            unix_path: None,
            shared_key: None,
            self_hostname: "logship-testkit".to_string(),
            users: Vec::new(),
            helo_style: HeloStyle::Fluentd,
            nil_policy: NilPolicy::KeepAlive,
            faults: Faults::default(),
            keep_events: true,
            compressed_chunk_limit: None,
            deny_keepalive: false,
            processing: Processing::default(),
            first_ack_after: 1,
        }
    }
}

impl FluentReceiverBuilder {
    /// TCP port on `127.0.0.1` (0 = a free port). Ignored with a Unix socket.
    pub fn with_port(self, port: u16) -> Self {
        FluentReceiverBuilder { port, ..self }
    }

    /// Serve TLS with this identity (see [`TlsIdentity::self_signed`]).
    pub fn with_tls(self, identity: TlsIdentity) -> Self {
        FluentReceiverBuilder {
            tls: Some(identity),
            ..self
        }
    }

    /// Listen on a Unix socket at `path` instead of TCP (a stale file there is removed first,
    /// and the file is removed when the receiver stops).
    pub fn with_unix_socket(self, path: impl Into<PathBuf>) -> Self {
        FluentReceiverBuilder {
            unix_path: Some(path.into()),
            ..self
        }
    }

    /// Turns on the handshake with this shared key (the Forward protocol v1 specification, <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1> "Handshake").
    pub fn with_shared_key(self, key: impl Into<String>) -> Self {
        FluentReceiverBuilder {
            shared_key: Some(key.into()),
            ..self
        }
    }

    /// The server hostname put in PONG and hashed into its digest.
    pub fn with_self_hostname(self, hostname: impl Into<String>) -> Self {
        FluentReceiverBuilder {
            self_hostname: hostname.into(),
            ..self
        }
    }

    /// Adds a user; with at least one user the PING's password digest is checked.
    /// Only meaningful with a shared key.
    pub fn with_user(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.users.push((username.into(), password.into()));
        self
    }

    /// The HELO wire style and failure behaviour.
    pub fn with_helo_style(self, style: HeloStyle) -> Self {
        FluentReceiverBuilder {
            helo_style: style,
            ..self
        }
    }

    /// What a bare `nil` does.
    pub fn with_nil_policy(self, policy: NilPolicy) -> Self {
        FluentReceiverBuilder {
            nil_policy: policy,
            ..self
        }
    }

    /// Faults active from the start.
    pub fn with_faults(self, faults: Faults) -> Self {
        FluentReceiverBuilder { faults, ..self }
    }

    /// Whether decoded events are stored (default on). Off, events are decoded, counted
    /// ([`FluentReceiver::event_count`], [`FluentStats::events`]) and acked as usual but not
    /// kept, so [`FluentReceiver::events`] stays empty and memory stays flat: for throughput
    /// benchmarks that send millions of events.
    pub fn with_keep_events(self, keep: bool) -> Self {
        FluentReceiverBuilder {
            keep_events: keep,
            ..self
        }
    }

    /// Behaves as Fluent Bit's `in_forward` with CompressedPackedForward: it decompresses a
    /// request in pieces of `Buffer_Chunk_Size` (default 1 024 000 bytes) and keeps only the
    /// entries that end within the first piece, **and acknowledges the request anyway** (seen
    /// with Fluent Bit 4.2.8: 6 266 of 10 000 events kept, every request acked). Entries past
    /// the limit are counted in [`FluentStats::entries_past_chunk_limit`]. Off by default
    /// (Fluentd keeps everything).
    pub fn with_compressed_chunk_limit(self, bytes: usize) -> Self {
        FluentReceiverBuilder {
            compressed_chunk_limit: Some(bytes),
            ..self
        }
    }

    /// Behaves as Fluentd's `in_forward` with `deny_keepalive true`: the HELO (with a shared
    /// key, [`HeloStyle::Fluentd`]) says `keepalive: false`, and each connection is closed right
    /// after its first request (after the ack is written, when the request asked for one), so
    /// whatever a client wrote after that request on the same connection is dropped, unread and
    /// unacknowledged. Each such close counts in [`FluentStats::keepalive_closes`]. Without a
    /// shared key there is no HELO to say so (Fluentd closes all the same). Fluentd's code:
    /// fluent/fluentd `lib/fluent/plugin/in_forward.rb` (`generate_helo` sends
    /// `'keepalive' => !@deny_keepalive`; `handle_connection` closes after the response, or at
    /// once without one). Off by default.
    pub fn with_deny_keepalive(self, deny: bool) -> Self {
        FluentReceiverBuilder {
            deny_keepalive: deny,
            ..self
        }
    }

    /// Models a server that needs time to process each request before acknowledging it (a
    /// CPU-bound Fluentd: `in_forward` acknowledges a chunk only after emitting its events,
    /// fluent/fluentd `lib/fluent/plugin/in_forward.rb`): after decoding a request that asks
    /// for an ack, the connection is busy for `per_request` plus `per_event` × its events
    /// before the ack is written. Busy time is kept per connection on an absolute clock (a
    /// timer that fires late is made up on the next request) and summed in
    /// [`FluentStats::processing_ns`], so busy share = that ÷ the wall-clock time of a run.
    /// The connection keeps reading while it is busy, so what a client pipelines is seen
    /// ([`FluentStats::max_requests_awaiting_ack`]); requests are still processed and
    /// acknowledged one at a time, in order, as Fluentd does. The wait is a timer, not a busy
    /// loop: it models a server on a core of its own without taking the test machine's CPU.
    /// Requests without a `chunk` are not delayed. Off (zero) by default.
    pub fn with_processing_delay(self, per_request: Duration, per_event: Duration) -> Self {
        FluentReceiverBuilder {
            processing: Processing {
                per_request,
                per_event,
            },
            ..self
        }
    }

    /// Writes no ack on a connection until `n` requests asking for one have been received
    /// on it (read completely, whether processed yet or not); from then on each request is
    /// acknowledged as usual, in order. A client that waits for each ack before writing the
    /// next request never gets one when `n` > 1 (its ack timeout fires); a client keeping
    /// `n` or more chunks in flight does. A count-based way to show pipelining:
    /// [`FluentStats::max_requests_before_first_ack`] then reports `n` (or more). Default 1
    /// (no hold). A connection that ends before `n` requests gets no ack at all.
    pub fn with_first_ack_after(self, n: u64) -> Self {
        FluentReceiverBuilder {
            first_ack_after: n.max(1),
            ..self
        }
    }

    /// Binds and starts the receiver on its own thread and tokio runtime.
    ///
    /// # Errors
    /// The bind error; `InvalidInput` for unusable TLS PEM; an error building the runtime or
    /// spawning the thread.
    pub fn start(self) -> io::Result<FluentReceiver> {
        let tls = self.tls.as_ref().map(TlsIdentity::acceptor).transpose()?;
        let handshake = self.shared_key.map(|shared_key| HandshakeConfig {
            shared_key,
            self_hostname: self.self_hostname.clone(),
            users: self.users.clone(),
            style: self.helo_style,
        });
        let shared = Arc::new(Shared {
            config: Config {
                handshake,
                nil_policy: self.nil_policy,
                keep_events: self.keep_events,
                compressed_chunk_limit: self.compressed_chunk_limit,
                deny_keepalive: self.deny_keepalive,
                processing: self.processing,
                first_ack_after: self.first_ack_after,
            },
            tls,
            next_connection: AtomicU64::new(0),
            counters: Counters::default(),
            events: Mutex::new(Vec::new()),
            seen_chunks: Mutex::new(HashSet::new()),
            faults: Mutex::new(self.faults),
            errors: Mutex::new(Vec::new()),
        });
        let server = match self.unix_path {
            Some(path) => Server::Unix(UnixServer::spawn(path, shared.clone())?),
            None => {
                let s = shared.clone();
                Server::Tcp(ServerHandle::spawn(
                    "fluent-receiver",
                    self.port,
                    move |listener, mut stop| async move {
                        loop {
                            tokio::select! {
                                _ = stop.stopped() => break,
                                accepted = listener.accept() => match accepted {
                                    Ok((stream, _)) => {
                                        let _ = stream.set_nodelay(true);
                                        tokio::spawn(conn::accept(stream, s.clone()));
                                    }
                                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                                },
                            }
                        }
                    },
                )?)
            }
        };
        Ok(FluentReceiver { server, shared })
    }
}

/// A Unix-socket server on its own thread and runtime (the TCP twin is [`ServerHandle`]).
struct UnixServer {
    path: PathBuf,
    stop: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl UnixServer {
    fn spawn(path: PathBuf, shared: Arc<Shared>) -> io::Result<UnixServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fluent-receiver-unix-rt")
            .enable_all()
            .build()?;
        if path.exists() {
            std::fs::remove_file(&path)?;
        }
        let std_listener = std::os::unix::net::UnixListener::bind(&path)?;
        std_listener.set_nonblocking(true)?;
        let (tx, mut rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("fluent-receiver-unix".to_string())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::UnixListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => panic!("cannot register unix listener with tokio: {e}"),
                    };
                    loop {
                        tokio::select! {
                            _ = rx.wait_for(|stop| *stop) => break,
                            accepted = listener.accept() => match accepted {
                                Ok((stream, _)) => {
                                    tokio::spawn(conn::accept(stream, shared.clone()));
                                }
                                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                            },
                        }
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(UnixServer {
            path,
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for UnixServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
        let _ = std::fs::remove_file(&self.path);
        if let Some(thread) = self.thread.take()
            && let Err(panic) = thread.join()
            && !std::thread::panicking()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

enum Server {
    Tcp(ServerHandle),
    Unix(UnixServer),
}

/// A running Forward receiver. Stops (and re-raises a server panic) when dropped.
pub struct FluentReceiver {
    server: Server,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FluentReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FluentReceiver")
            .field("addr", &self.addr())
            .field("unix_path", &self.unix_path())
            .field("stats", &self.stats())
            .finish()
    }
}

impl FluentReceiver {
    /// A builder with the defaults listed on [`FluentReceiverBuilder`].
    pub fn builder() -> FluentReceiverBuilder {
        FluentReceiverBuilder::default()
    }

    /// The TCP address (`127.0.0.1:<port>`), or `None` for a Unix socket.
    pub fn addr(&self) -> Option<SocketAddr> {
        match &self.server {
            Server::Tcp(h) => Some(h.addr()),
            Server::Unix(_) => None,
        }
    }

    /// The TCP port, or 0 for a Unix socket.
    pub fn port(&self) -> u16 {
        self.addr().map_or(0, |a| a.port())
    }

    /// The Unix socket path, or `None` for TCP.
    pub fn unix_path(&self) -> Option<&Path> {
        match &self.server {
            Server::Tcp(_) => None,
            Server::Unix(u) => Some(&u.path),
        }
    }

    /// Every event decoded so far, in arrival order (resends included; see
    /// [`FluentEvent::duplicate`]).
    pub fn events(&self) -> Vec<FluentEvent> {
        self.shared.lock_events().clone()
    }

    /// The stored events from index `from` on (what arrived since a reader last looked),
    /// without copying the ones before it.
    pub fn events_since(&self, from: usize) -> Vec<FluentEvent> {
        self.shared
            .lock_events()
            .get(from..)
            .map(<[FluentEvent]>::to_vec)
            .unwrap_or_default()
    }

    /// How many events were decoded so far (stored or not, see
    /// [`FluentReceiverBuilder::with_keep_events`]).
    pub fn event_count(&self) -> usize {
        let not_kept = self.shared.counters.events_not_kept.load(Ordering::Relaxed);
        self.shared.lock_events().len() + not_kept as usize
    }

    /// Waits until at least `n` events were decoded or `timeout` passed; whether they were.
    pub fn wait_for_events(&self, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.event_count() >= n)
    }

    /// Waits until `cond` holds for the counters or `timeout` passed; whether it held.
    pub fn wait_for_stats(
        &self,
        timeout: Duration,
        mut cond: impl FnMut(&FluentStats) -> bool,
    ) -> bool {
        wait_until(timeout, || cond(&self.stats()))
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> FluentStats {
        let c = &self.shared.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FluentStats {
            connections: g(&c.connections),
            refused_connections: g(&c.refused_connections),
            requests_message: g(&c.requests_message),
            requests_forward: g(&c.requests_forward),
            requests_packed_forward: g(&c.requests_packed_forward),
            requests_compressed_packed_forward: g(&c.requests_compressed_packed_forward),
            events: self.event_count() as u64,
            acks_sent: g(&c.acks_sent),
            acks_withheld: g(&c.acks_withheld),
            acks_garbled: g(&c.acks_garbled),
            duplicate_chunks: g(&c.duplicate_chunks),
            nil_keepalives: g(&c.nil_keepalives),
            handshakes_ok: g(&c.handshakes_ok),
            handshake_failures: g(&c.handshake_failures),
            protocol_errors: g(&c.protocol_errors),
            fault_closes: g(&c.fault_closes),
            tls_failures: g(&c.tls_failures),
            bytes_received: g(&c.bytes_received),
            entries_past_chunk_limit: g(&c.entries_past_chunk_limit),
            keepalive_closes: g(&c.keepalive_closes),
            dropped_after_keepalive_close: g(&c.dropped_after_keepalive_close),
            records_with_repeated_keys: g(&c.records_with_repeated_keys),
            processing_ns: g(&c.processing_ns),
            idle_ns: g(&c.idle_ns),
            max_requests_awaiting_ack: g(&c.max_requests_awaiting_ack),
            max_requests_before_first_ack: g(&c.max_requests_before_first_ack),
        }
    }

    /// Descriptions of protocol errors, handshake failures and TLS failures, oldest first
    /// (text for humans, not API).
    pub fn errors(&self) -> Vec<String> {
        lock(&self.shared.errors).clone()
    }

    /// Forgets events, counters, seen chunk ids and errors (faults stay as they are).
    pub fn clear(&self) {
        let mut events = self.shared.lock_events();
        events.clear();
        self.shared.lock_seen().clear();
        lock(&self.shared.errors).clear();
        let c = &self.shared.counters;
        for a in [
            &c.connections,
            &c.refused_connections,
            &c.requests_message,
            &c.requests_forward,
            &c.requests_packed_forward,
            &c.requests_compressed_packed_forward,
            &c.acks_sent,
            &c.acks_withheld,
            &c.acks_garbled,
            &c.duplicate_chunks,
            &c.nil_keepalives,
            &c.handshakes_ok,
            &c.handshake_failures,
            &c.protocol_errors,
            &c.fault_closes,
            &c.tls_failures,
            &c.bytes_received,
            &c.events_not_kept,
            &c.entries_past_chunk_limit,
            &c.keepalive_closes,
            &c.dropped_after_keepalive_close,
            &c.records_with_repeated_keys,
            &c.processing_ns,
            &c.idle_ns,
            &c.max_requests_awaiting_ack,
            &c.max_requests_before_first_ack,
        ] {
            a.store(0, Ordering::Relaxed);
        }
    }

    /// The faults now in force.
    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// Replaces the faults (`Faults::none()` clears them all).
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.lock_faults() = faults;
    }

    /// Changes the faults in place, e.g. `r.update_faults(|f| f.withhold_acks = Times::Next(2))`.
    pub fn update_faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.shared.lock_faults());
    }
}
