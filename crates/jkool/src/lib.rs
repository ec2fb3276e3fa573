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
//! | `severity` | field `severity` (a jKool severity name or a Python level number), else from the level: TRACE, DEBUG, INFO, WARN → `WARNING`, ERROR | the span's level, same mapping |
//! | `comp-code` | field `comp_code`, else from the severity: `ERROR` and above → `ERROR`, `WARNING` → `WARNING`, else `SUCCESS` | `ERROR` when the span failed, else by level |
//! | `status` | — | `EXCEPTION` when the span recorded an error value or saw an ERROR event, else `END` |
//! | `source-fqn` | field `source_fqn` of the event or the innermost span that has one, else the layer's default, else [`default_source_fqn`] | same |
//! | `tracking-id` | field `tracking_id`, else a fresh UUID v4 per record | the span's own id (created when the span was) |
//! | `parent-id` | field `parent_tracking_id`, else the enclosing span's tracking id | the parent span's tracking id |
//! | `time-usec` | field `time_usec`, else the event's time, µs since the Unix epoch (UTC) | the span's start, µs |
//! | `start-time-usec`, `end-time-usec` | fields `start_time_usec`, `end_time_usec` | span creation and close, µs since the epoch |
//! | `elapsed-time-usec` | field `elapsed_time_usec` | wall time from creation to close, µs |
//! | `wait-time-usec` | field `wait_time_usec` (or the original's `wait_time_used`) | idle time (wall time minus the time the span was entered), µs |
//! | `corrid` | array of the record's correlators (field `correlator`, inherited from spans; plus field `corr_id`) | same (without `corr_id`) |
//! | `location` | field `location` (inherited from spans) | same |
//! | `resource`, `user` | fields `resource`, `user` (text) | same |
//! | `reason-code` | field `reason_code` (text or `i64`) | same |
//! | `pid` | field `pid`, else this process's id | this process's id |
//! | `tid` | field `tid`, else logship's number of the emitting thread (stable per thread, from 1; not the OS id) | the thread that closed the span |
//! | `exception` | field `exception` (text), else the first error value among the fields, with its `source()` chain (`outer: inner`) | the first error recorded on the span |
//! | `source-url`, `msg-tag`, `encoding`, `charset`, `mime-type` | fields `source_url`, `msg_tag`, `encoding`, `charset`, `mime_type` (text) | — |
//! | `msg-size`, `msg-age` | fields `msg_size` (bytes), `msg_age` (µs) | — |
//! | `properties` | every other field of the event, as `{name, type, value}` | the span's fields |
//! | `snapshots` | the event's snapshots ([`SnapshotPlacement::Embedded`]), each with `parent-id` = the event's `tracking-id` | — |
//!
//! Fields of enclosing spans are not repeated on each event: they are the properties of the
//! span's ACTIVITY, which the event's `parent-id` points to.
//!
//! The event fields named after the original `logEvent` parameters ([`fields`], e.g.
//! `tracing::warn!(time_usec = t, comp_code = "WARNING", msg_tag = "billing", "…")`) become
//! those top-level keys when their value has the expected type: times in µs since the epoch
//! between 2000 and 2100, durations, sizes, `pid`, `tid` as non-negative integers, the others
//! as non-blank text, `severity` and `comp_code` as one of their names (any case). Anything
//! else (`time_usec` in milliseconds, `comp_code = "FAILED"`, `msg_size = -1`) stays a plain
//! property under its own name, so nothing is lost and the document stays valid. The first
//! field of a name wins; a repeated one stays a property. On an ACTIVITY these fields are
//! properties: a span's timing and level are its own.
//!
//! ## Data types
//! Properties take the Java model's shape: `type` is the lowercase Java data type of
//! `Property.getDataType` and `value` is always a JSON string
//! (jkool-client-java-api `src/main/java/com/jkoolcloud/client/api/model/Property.java`,
//! TNT4J `src/main/java/com/jkoolcloud/tnt4j/core/Property.java` and
//! `format/JSONFormatter.java`, the swagger's `property.value: string`).
//!
//! | Rust value | property `type` | JSON `value` |
//! |---|---|---|
//! | text, `?x`, `%x` | `string` | the text |
//! | `i64`, `u64`, `i128`, `u128` within ±(2⁶³−1) | `long` | decimal text, `"42"` |
//! | larger integers | `string` | decimal text (beyond a Java `long`) |
//! | `f64` | `double` | shortest round-trip text, `"1.0"`, `"1e300"` |
//! | NaN, ±∞ | `string` | `"NaN"`, `"inf"`, `"-inf"` |
//! | `bool` | `bool` | `"true"` / `"false"` |
//! | `&dyn Error` | (`exception`; further errors `string`) | message and sources joined by `: ` |
//! | snapshot property of type TIMESTAMP | `long`, with `"value-type":"timestamp"` | µs since the epoch as text |
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
//! * Correlators are always an array under `corrid`, as the Java `Trackable` and TNT4J's JSON
//!   formatter send them; the original sent one string under `corr-id`, which cannot carry
//!   the several correlators a span tree collects.
//! * Property values are text with lowercase Java types (`long`, `double`, `bool`), as the
//!   Java model and TNT4J send them; the original sent Python values with free-text types.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod encode;
mod error;
pub mod fields;
mod json;
mod model;

pub use encode::{
    DEFAULT_MAX_DOCUMENT_BYTES, EncodedBatch, EncodedDocument, Encoder, SLOT_FIELDS,
    SnapshotPlacement, TRACE_PROPERTIES, default_source_fqn, write_snapshot,
};
pub use error::EncodeError;
pub use model::{ActivityStatus, CompCode, DocumentKind, Severity};
