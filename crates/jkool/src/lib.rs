//! # logship-jkool
//!
//! The jKool document model, written once and used by both
//! [`logship-jkool-http`](https://docs.rs/logship-jkool-http) and
//! [`logship-jkool-mqtt`](https://docs.rs/logship-jkool-mqtt): it turns a
//! [`logship_core::Record`] into jKool's EVENT, ACTIVITY and SNAPSHOT JSON documents
//! (the jKool client model, <https://github.com/Nastel/jkool-client-java-api>, the Python jKool streaming libraries (jKool PythonStreaming, TNT4PY)). It does no I/O.
//!
//! ## Quick start
//! ```
//! use logship_core::{Level, Record, Snapshot, SourceFqn, TrackingId};
//! use logship_jkool::{DocumentKind, Encoder};
//!
//! let fqn: SourceFqn = "APPL=shop#SERVER=web1".parse()?;
//! let encoder = Encoder::new(&fqn);
//! let record = Record::event(Level::WARN, "shop::orders")
//!     .with_message("order placed")
//!     .with_field("order_id", 42_i64)
//!     .with_correlator("order-42")
//!     .with_snapshot(Snapshot::new("order").with_property("total", 99.5))
//!     .build();
//! let mut json = Vec::new();
//! let kind = encoder.encode_record(&record, &mut json)?;
//! assert_eq!(kind, DocumentKind::Event);
//! let text = String::from_utf8(json)?;
//! assert!(text.starts_with(r#"{"operation":"shop::orders","type":"EVENT","msg-text":"order placed","severity":"WARNING""#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Mapping: `tracing` → jKool
//! An event becomes an **EVENT**; a closed span (a span-timing record) becomes an
//! **ACTIVITY**; the events inside a span point at it through `parent-id`. Keys appear in this
//! order; absent values are omitted.
//!
//! | jKool field | EVENT (a `tracing` event) | ACTIVITY (a closed span) |
//! |---|---|---|
//! | `operation` | field `operation` (text), else the target (`my_app::orders`) | field `operation`, else the span's name |
//! | `type` | `EVENT` | `ACTIVITY` |
//! | `msg-text` | the message | — |
//! | `severity` | from the level: TRACE, DEBUG, INFO, WARN → `WARNING`, ERROR | the span's level, same mapping |
//! | `comp-code` | ERROR → `ERROR`, WARN → `WARNING`, else `SUCCESS` | `ERROR` when the span failed, else by level |
//! | `status` | — | `EXCEPTION` when the span recorded an error value or saw an ERROR event, else `END` |
//! | `source-fqn` | field `source_fqn` of the event or the innermost span that has one, else the layer's default, else [`default_source_fqn`] | same |
//! | `tracking-id` | field `tracking_id`, else a fresh UUID v4 per record | the span's own id (created when the span was) |
//! | `parent-id` | the enclosing span's tracking id | the parent span's tracking id |
//! | `time-usec` | the event's time, µs since the Unix epoch (UTC) | the span's start, µs |
//! | `start-time-usec`, `end-time-usec` | — | span creation and close, µs since the epoch |
//! | `elapsed-time-usec` | — | wall time from creation to close, µs |
//! | `wait-time-usec` | — | idle time (wall time minus the time the span was entered), µs |
//! | `corr-id` | array of the record's correlators (field `correlator`, inherited from spans) | same |
//! | `location` | field `location` (inherited from spans) | same |
//! | `resource`, `user` | fields `resource`, `user` (text) | same |
//! | `reason-code` | field `reason_code` (text or `i64`) | same |
//! | `pid` | this process's id | same |
//! | `tid` | logship's number of the emitting thread (stable per thread, from 1; not the OS id) | the thread that closed the span |
//! | `exception` | the first error value among the fields, with its `source()` chain (`outer: inner`) | the first error recorded on the span |
//! | `properties` | every other field of the event, as `{name, type, value}` | the span's fields |
//! | `snapshots` | the event's snapshots ([`SnapshotPlacement::Embedded`]), each with `parent-id` = the event's `tracking-id` | — |
//!
//! Fields of enclosing spans are not repeated on each event: they are the properties of the
//! span's ACTIVITY, which the event's `parent-id` points to.
//!
//! ## Data types
//! | Rust value | property `type` | JSON `value` |
//! |---|---|---|
//! | text, `?x`, `%x` | `STRING` | string |
//! | `i64`, `u64`, `i128`, `u128` within ±(2⁶³−1) | `INTEGER` | integer |
//! | larger integers | `STRING` | decimal text (JSON readers lose precision beyond 2⁶³) |
//! | `f64` | `DOUBLE` | number, always with a fraction or exponent (`1.0`) |
//! | NaN, ±∞ | `STRING` | `"NaN"`, `"inf"`, `"-inf"` |
//! | `bool` | `BOOLEAN` | `true` / `false` |
//! | `&dyn Error` | (`exception`; further errors `STRING`) | message and sources joined by `: ` |
//! | snapshot property of type TIMESTAMP | `TIMESTAMP` | integer, µs since the epoch |
//!
//! ## SNAPSHOT
//! [`write_snapshot`]: `name`, `type` = `SNAPSHOT`, `category`, `time-usec` (the snapshot's
//! own time, else its event's), `parent-id` (the owning event's tracking id) and typed
//! `properties`. With [`SnapshotPlacement::Separate`] the HTTP layer posts them to
//! `{base}/snapshot` instead of embedding them.
//!
//! ## Differences from the originals (on purpose)
//! * Every record gets its own tracking id and timestamp (the Python original froze both at
//!   import time), with microsecond precision (the early original sent whole seconds).
//! * Correlators are always an array, under the issue's `corr-id` key (the Java REST model
//!   spells it `corrid`; jKool accepts both).
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod encode;
mod error;
mod json;
mod model;

pub use encode::{
    DEFAULT_MAX_DOCUMENT_BYTES, EncodedBatch, EncodedDocument, Encoder, SLOT_FIELDS,
    SnapshotPlacement, default_source_fqn, write_snapshot,
};
pub use error::EncodeError;
pub use model::{ActivityStatus, CompCode, DocumentKind, Severity};
