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
//! A field named like a built-in key (`level`, `message`, …) replaces it; keys can be left out
//! with [`FluentBuilder::with_exclude`].
//!
//! ## Tags
//! The tag is `prefix.label` as in the original: an empty prefix gives `label`, an empty label
//! gives `prefix`. The label is the target with `::` turned into `.` by default
//! (`shop::orders` → `app.shop.orders`), or the callsite name, or a field ([`TagLabel`]).
//!
//! ## Delivery guarantee
//! * With acks (the default, [`FluentBuilder::with_require_ack`]): **at least once**. A batch
//!   counts as delivered only when the server has acknowledged every request of it; on a
//!   missing, late or wrong ack or a broken connection it is sent again (same chunk ids), so
//!   the server may receive some records twice. Retries, backoff and the circuit breaker are
//!   the core's ([`logship_core::RetryPolicy`]).
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
//! TLS uses rustls with certificate verification on by default ([`FluentTls`]). The shared-key
//! handshake (HELO/PING/PONG, the Forward protocol v1 specification, <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1>) verifies the server's PONG digest too, so a
//! server that does not know the key gets no data; a failed handshake is a retryable error in
//! `Stats::last_error`, and nothing is sent on that connection.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod classify;
mod config;
mod encode;
mod error;
mod handshake;
mod msgpack;
mod sink;
pub mod template;
mod transport;

pub use config::{
    DEFAULT_MAX_COMPRESSED_REQUEST_BYTES, DEFAULT_MAX_RECORD_BYTES, FluentBuilder, FluentTls,
};
pub use encode::{Mode, SpanStyle, TagLabel, TimeFormat};
pub use error::{FluentError, Secret};
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
