//! # logship-fluent
//!
//! A `tracing` layer that ships events and span timings to Fluentd or Fluent Bit over the
//! [Forward protocol v1] — the Rust successor of `fluent-logger` / `aiofluent`, with
//! acknowledgements, the shared-key handshake, TLS and failover, and without their flaws: the
//! application never waits for the network, and every record that is not delivered is counted
//! and can be handed back to you.
//!
//! [Forward protocol v1]: https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1
//!
//! ## Quick start
//! ```no_run
//! use std::time::Duration;
//! use tracing_subscriber::prelude::*;
//! use logship_fluent::FluentLayer;
//!
//! // FluentSender('app') + emit('follow', {...}) in the original gives the tag `app.follow`;
//! // here the label is the event's target.
//! let (layer, guard) = FluentLayer::builder("app")
//!     .with_server("127.0.0.1:24224")
//!     .build()?;
//! tracing_subscriber::registry().with(layer).init();
//!
//! tracing::info!(target: "follow", from = "userA", to = "userB", "followed");
//!
//! guard.flush(Duration::from_secs(5))?; // also done, bounded, when `guard` is dropped
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What goes on the wire
//! Each batch becomes one request per tag in the chosen [`Mode`] (PackedForward by default),
//! with the option map `{"size": n, "chunk": id}`. Each record is a msgpack map:
//!
//! | `tracing` | record key | msgpack type |
//! |---|---|---|
//! | event time (span timing: close time) | entry time | EventTime (s + ns), or integer s ([`TimeFormat`]) |
//! | message | `message` | str |
//! | level | `level` | str, `TRACE` … `ERROR` |
//! | target | `target` | str |
//! | `key = value` fields | `key` | int / uint / float64 / bool / str as given; 128-bit beyond 64 bits as str; `&dyn Error` as `{"message", "sources"}` |
//! | enclosing spans | `spans` = `[{"name", fields…}]` outermost first, or `"<span>.<field>"` keys ([`SpanStyle`]) | |
//! | source FQN (`source_fqn` field or default) | `source_fqn` | str |
//! | correlators | `correlators` | array of str |
//! | tracking id / parent's | `tracking_id`, `parent_tracking_id` | str (UUID) |
//! | location | `location` | str |
//! | snapshots | `snapshots` = `[{"name", "category"?, "time_ns"?, "properties": {name: value}}]` | |
//! | span timing | `kind` = `"span_timing"`, `span`, `duration_ns`, `busy_ns`, `start_ns` (UTC ns), `failed` | str, uint, bool |
//! | templates ([`FluentBuilder::with_record_template`]) | your keys | str (or uint for `{line}`) |
//!
//! Every key appears once (the core's rule, `logship_core::fields`, "Repeated and reserved
//! field names"): a name repeated on an event keeps its last value, and a field named like a
//! key of this table or a template key (`level`, `message`, `spans`, `correlators`, …) is
//! written as `_level`, `_message`, … next to the built-in key, never replacing it. Keys can
//! be left out with [`FluentBuilder::with_exclude`] (by the field's own name).
//!
//! ## Tags
//! The tag is `prefix.label` as in the original: an empty prefix gives `label`, an empty label
//! gives `prefix`. The label is the target with `::` turned into `.` by default
//! (`shop::orders` → `app.shop.orders`), or the callsite name, or a field ([`TagLabel`]).
//!
//! ## Delivery guarantee
//! * With acks (the default, [`FluentBuilder::with_require_ack`]): **at least once**. A batch
//!   is cut into chunks ([`FluentBuilder::with_chunk_bytes`], 256 KiB), each a request with its
//!   own `chunk` id, and up to [`FluentBuilder::with_max_chunks_in_flight`] (4) are written
//!   before their acks arrive. A record counts as delivered when its chunk is acknowledged; on
//!   a missing, late or wrong ack or a broken connection the chunks not yet acknowledged are
//!   sent again (same chunk ids), so the server may receive some records twice, never an
//!   acknowledged chunk again. Retries, backoff and the circuit breaker are the core's
//!   ([`logship_core::RetryPolicy`]).
//! * Without acks: **at most once**. A batch counts as delivered once written into the socket;
//!   a connection the peer already closed is detected and replaced before writing, but a server
//!   that dies after accepting the bytes loses them without anyone knowing.
//! * Either way, records that are never delivered (retries exhausted, shutdown timeout, queue
//!   full, a record too large) are counted in [`Stats`](logship_core::Stats) and handed to the
//!   undelivered callback (`with_pipeline(|p| p.with_undelivered_callback(..))`) together with
//!   the raw msgpack request bytes of the last attempt, as the original's
//!   `buffer_overflow_handler` received them.
//! * A msgpack `nil` keep-alive is never sent (Fluent Bit drops the connection on it).
//!
//! ## Security
//! TLS uses rustls with certificate verification against the OS trust store by default
//! ([`TlsOptions`], the policy every logship backend shares). The shared-key
//! handshake (HELO/PING/PONG, the Forward protocol v1 specification, <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1>) verifies the server's PONG digest too, so a
//! server that does not know the key gets no data; a failed handshake is a retryable error in
//! `Stats::last_error`, and nothing is sent on that connection.
//!
//! ## Configuration without code
//! [`FluentBuilder::from_env`] reads `LOGSHIP_FLUENT` and the `LOGSHIP_FLUENT_*` variables (`LOGSHIP_FLUENT=logs.example.com:24224`, `LOGSHIP_FLUENT_SHARED_KEY=…`) plus the shared
//! pipeline variables `LOGSHIP_PIPELINE_*`, once, into a builder you can keep configuring;
//! a malformed or unknown variable is reported by `build()`, naming it. With the feature
//! `serde`, [`FluentConfig`] is the same settings as a configuration-file section (unknown keys
//! refused). The tables are on [`FluentConfig`] and in the repository's `docs/configuration.md`.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod classify;
mod config;
mod encode;
mod error;
mod handshake;
mod msgpack;
mod settings;
mod sink;
pub mod template;
mod transport;

pub use config::{
    DEFAULT_CHUNK_BYTES, DEFAULT_MAX_CHUNKS_IN_FLIGHT, DEFAULT_MAX_COMPRESSED_REQUEST_BYTES,
    DEFAULT_MAX_RECORD_BYTES, FluentBuilder,
};
pub use encode::{Mode, SpanStyle, TagLabel, TimeFormat};
pub use error::{FluentError, Secret};
pub use logship_tls::TlsOptions;
pub use settings::{DEFAULT_TAG_PREFIX, FluentConfig};
pub use transport::DEFAULT_PORT;

logship_core::define_layer!(
    /// The Fluent `tracing` layer; build it with [`FluentLayer::builder`].
    FluentLayer
);

impl FluentLayer {
    /// Starts configuring a layer whose tags are `tag_prefix.label` (see the
    /// [crate docs](crate#tags)).
    pub fn builder(tag_prefix: &str) -> FluentBuilder {
        FluentBuilder::new(tag_prefix)
    }
}

#[doc(hidden)]
pub mod __bench {
    //! Entry points for the encoder benchmark; not API.
    use logship_core::Record;

    pub use crate::encode::Mode;

    /// Encodes `records` as one batch in `mode` (with chunk ids) and returns the wire bytes.
    pub fn encode(records: &[Record], mode: Mode) -> usize {
        let enc = crate::encode::Encoder::new(crate::encode::EncodeSettings {
            tag_prefix: "bench".into(),
            mode,
            ..Default::default()
        });
        let ids = crate::encode::ChunkIds {
            salt: [0; 16],
            batch_id: 1,
        };
        enc.encode_batch(records, Some(&ids))
            .requests
            .iter()
            .map(|r| r.bytes.len())
            .sum()
    }
}

#[doc(hidden)]
pub mod fuzzing {
    //! Entry points for the fuzz targets in `fuzz/` (see `docs/fuzzing.md`); not API.
    use logship_core::Record;

    /// Parses a server address as [`FluentBuilder::build`](crate::FluentBuilder::build) does;
    /// `Ok` holds its canonical text (what logs and errors show).
    pub fn address(s: &str) -> Result<String, String> {
        crate::transport::Endpoint::parse(s)
            .map(|e| e.to_string())
            .map_err(|e| e.to_string())
    }

    /// Decodes one server reply from the start of `buf` as the sink does (msgpack, depth
    /// limited): `Ok(Some((text, bytes used)))`, `Ok(None)` when `buf` holds only the start of
    /// one (the sink reads more, up to its 64 KiB reply cap), `Err` when it is invalid.
    pub fn reply(buf: &[u8]) -> Result<Option<(String, usize)>, String> {
        Ok(crate::transport::decode_reply(buf)?.map(|(v, used)| (v.to_string(), used)))
    }

    /// The 64 KiB cap on a reply the sink waits for, in bytes.
    pub const MAX_REPLY_BYTES: usize = crate::transport::MAX_REPLY_BYTES;

    /// Decodes one reply from `buf` and checks it as the ack for `chunk`: `None` while `buf`
    /// holds only the start of a reply, `Some(Ok(()))` for the ack of `chunk`, else
    /// `Some(Err(what the sink would report))`.
    pub fn ack(buf: &[u8], chunk: &str) -> Option<Result<(), String>> {
        use crate::classify::{AckCheck, check_ack};
        let v = match crate::transport::decode_reply(buf) {
            Ok(None) => return None,
            Ok(Some((v, _))) => v,
            Err(e) => return Some(Err(e)),
        };
        Some(match check_ack(&v, chunk) {
            AckCheck::Match => Ok(()),
            AckCheck::Mismatch(got) => Err(format!("ack mismatch: got chunk `{got}`")),
            AckCheck::NotAnAck(why) => Err(why),
        })
    }

    /// The client side of the shared-key handshake on two server messages: decodes and reads
    /// `helo`, writes the PING (shared key `key`, user `u` / `p`, the given `salt`), then
    /// decodes and checks `pong`. `Ok` holds the server hostname the PONG named; `Err` says
    /// which step refused what.
    pub fn handshake(helo: &[u8], pong: &[u8], salt: &str) -> Result<String, String> {
        use crate::handshake::{Credentials, check_pong, encode_ping, parse_helo};
        let decode = |buf: &[u8]| match crate::transport::decode_reply(buf) {
            Ok(Some((v, _))) => Ok(v),
            Ok(None) => Err("incomplete".to_string()),
            Err(e) => Err(e),
        };
        let creds = Credentials {
            self_hostname: "fuzz".into(),
            shared_key: crate::Secret::new("key"),
            user: Some(("u".into(), crate::Secret::new("p"))),
        };
        let helo = parse_helo(&decode(helo)?)?;
        let ping = encode_ping(&helo, &creds, salt);
        match crate::transport::decode_reply(&ping) {
            Ok(Some((v, used))) if used == ping.len() && v.as_array().map(Vec::len) == Some(6) => {}
            other => return Err(format!("the PING does not decode as six items: {other:?}")),
        }
        check_pong(&decode(pong)?, &helo, &creds, salt)
    }

    /// The PONG digest a server knowing the shared key `key` sends for `helo_nonce`, `salt`
    /// and `server_hostname` (lowercase hex SHA-512), so a fuzz target can build a PONG that
    /// [`handshake`] accepts.
    pub fn pong_digest(salt: &str, server_hostname: &[u8], helo_nonce: &[u8]) -> String {
        crate::handshake::sha512_hex(&[salt.as_bytes(), server_hostname, helo_nonce, b"key"])
    }

    /// Parses a record template as the builder does and renders it for `r`; `None` when the
    /// template is refused, `Some(None)` when the key is left out, else the value as text.
    pub fn template(src: &str, r: &Record, hostname: &str) -> Option<Option<String>> {
        use crate::template::{Rendered, Template};
        let t = Template::parse(src).ok()?;
        Some(match t.render(r, hostname) {
            Rendered::Missing => None,
            Rendered::Int(n) => Some(n.to_string()),
            Rendered::Borrowed(s) => Some(s.to_string()),
            Rendered::Owned(s) => Some(s),
        })
    }
}
