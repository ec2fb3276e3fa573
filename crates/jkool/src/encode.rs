//! [`Encoder`]: `logship_core::Record` → jKool JSON documents. Pure; no I/O.
//!
//! Every record becomes exactly one main document (an EVENT for a `tracing` event, an
//! ACTIVITY for a closed span) and, with [`SnapshotPlacement::Separate`], one SNAPSHOT
//! document per attached snapshot. Keys are written in a fixed order so the output is stable
//! byte for byte (the golden tests below pin it).

use std::borrow::Borrow;
use std::ops::Range;

use logship_core::{
    Property, PropertyValue, Record, RecordKind, Snapshot, SourceFqn, Timestamp, TrackingId, Value,
    json_text,
};

use crate::error::EncodeError;
use crate::json::{Obj, write_array, write_i64, write_str, write_u64};
use crate::model::{ActivityStatus, CompCode, DocumentKind, Severity};

/// Field names that map to a jKool slot instead of becoming a property (text values only;
/// `reason_code` also takes an integer). Any other field becomes a property.
pub const SLOT_FIELDS: [(&str, &str); 4] = [
    ("operation", "operation"),
    ("resource", "resource"),
    ("user", "user"),
    ("reason_code", "reason-code"),
];

/// The default largest encoded document: 1 MiB.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Where the snapshots attached to an event go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SnapshotPlacement {
    /// Inside the event's `snapshots` array (the originals' layout; default).
    #[default]
    Embedded,
    /// As separate SNAPSHOT documents (to `{base}/snapshot` over HTTP), each with `parent-id`
    /// set to the event's `tracking-id`; the event then has no `snapshots` field.
    Separate,
}

/// Turns records into jKool documents. Cheap to clone; see the [crate docs](crate) for the
/// mapping.
#[derive(Clone, Debug)]
pub struct Encoder {
    fallback_fqn: Box<str>,
    pid: u32,
    snapshots: SnapshotPlacement,
    max_document_bytes: usize,
}

impl Default for Encoder {
    /// An encoder whose fallback source FQN is [`default_source_fqn`].
    fn default() -> Self {
        Self::with_fallback_text(default_source_fqn())
    }
}

/// `APPL=<name of this executable>#SERVER=<this host's name>`: the `source-fqn` of records
/// that carry none (jKool requires one on every event and activity). Characters that the FQN
/// syntax reserves (`#`, `=`) are replaced by `_`; `APPL=logship` when even that fails.
pub fn default_source_fqn() -> String {
    let clean = |s: &str| s.replace(['#', '='], "_");
    let app = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().and_then(|s| s.to_str()).map(clean))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "logship".into());
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| clean(&h))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    SourceFqn::for_service(&app, &host)
        .map(|f| f.as_str().to_owned())
        .unwrap_or_else(|_| "APPL=logship".into())
}

/// One document inside an [`EncodedBatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedDocument {
    /// Index of the record it came from, in the slice given to [`Encoder::encode_batch`].
    pub record: usize,
    /// Its kind (and so its endpoint).
    pub kind: DocumentKind,
    range: Range<usize>,
}

impl EncodedDocument {
    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.range.len()
    }
    /// Whether it is empty (never).
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }
}

/// The documents of a batch of records, sharing one buffer.
#[derive(Clone, Debug, Default)]
pub struct EncodedBatch {
    buf: Vec<u8>,
    docs: Vec<EncodedDocument>,
    failed: Vec<(usize, String)>,
}

impl EncodedBatch {
    /// The documents, in record order (a record's main document before its snapshots).
    pub fn documents(&self) -> &[EncodedDocument] {
        &self.docs
    }
    /// The JSON text of `doc` (one object).
    pub fn bytes(&self, doc: &EncodedDocument) -> &[u8] {
        self.buf.get(doc.range.clone()).unwrap_or_default()
    }
    /// Records that could not be encoded: (index, reason).
    pub fn failed(&self) -> &[(usize, String)] {
        &self.failed
    }
    /// Writes `docs` as one JSON array (the body of a batched JESL post).
    pub fn write_array<'a>(
        &self,
        docs: impl IntoIterator<Item = &'a EncodedDocument>,
        out: &mut Vec<u8>,
    ) {
        write_array(out, docs, |out, d| out.extend_from_slice(self.bytes(d)));
    }
}

impl Encoder {
    /// An encoder that gives records without a source FQN `fallback_source_fqn`.
    pub fn new(fallback_source_fqn: &SourceFqn) -> Self {
        Self::with_fallback_text(fallback_source_fqn.as_str().to_owned())
    }

    fn with_fallback_text(fallback: String) -> Self {
        Self {
            fallback_fqn: fallback.into_boxed_str(),
            pid: std::process::id(),
            snapshots: SnapshotPlacement::Embedded,
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
        }
    }

    /// The `pid` written into documents (default: this process's id).
    #[must_use]
    pub fn with_pid(self, pid: u32) -> Self {
        Self { pid, ..self }
    }

    /// Where snapshots go (default [`SnapshotPlacement::Embedded`]).
    #[must_use]
    pub fn with_snapshot_placement(self, snapshots: SnapshotPlacement) -> Self {
        Self { snapshots, ..self }
    }

    /// The largest encoded document, in bytes (default [`DEFAULT_MAX_DOCUMENT_BYTES`]); a
    /// larger one is an [`EncodeError::TooLarge`].
    #[must_use]
    pub fn with_max_document_bytes(self, max_document_bytes: usize) -> Self {
        Self {
            max_document_bytes,
            ..self
        }
    }

    /// The fallback source FQN.
    pub fn fallback_source_fqn(&self) -> &str {
        &self.fallback_fqn
    }

    /// Where snapshots go.
    pub fn snapshot_placement(&self) -> SnapshotPlacement {
        self.snapshots
    }

    /// Encodes every record of a batch (`&[Record]`, or a [`Batch`](logship_core::Batch)'s
    /// `&[Box<Record>]`); failures are listed, not fatal.
    pub fn encode_batch(&self, records: &[impl Borrow<Record>]) -> EncodedBatch {
        let mut batch = EncodedBatch {
            buf: Vec::with_capacity(records.len() * 512),
            docs: Vec::with_capacity(records.len()),
            failed: Vec::new(),
        };
        for (i, r) in records.iter().map(Borrow::borrow).enumerate() {
            let mark = batch.buf.len();
            let docs_mark = batch.docs.len();
            if let Err(e) = self.encode_into(i, r, &mut batch) {
                batch.buf.truncate(mark);
                batch.docs.truncate(docs_mark);
                batch.failed.push((i, e.to_string()));
            }
        }
        batch
    }

    fn encode_into(
        &self,
        index: usize,
        r: &Record,
        batch: &mut EncodedBatch,
    ) -> Result<(), EncodeError> {
        let fresh;
        let tracking = match usable(r.tracking_id()) {
            Some(t) => t,
            None => {
                fresh = TrackingId::new();
                &fresh
            }
        };
        let start = batch.buf.len();
        let kind = self.write_main(r, tracking, &mut batch.buf);
        self.push_doc(batch, index, kind, start)?;
        if self.snapshots == SnapshotPlacement::Separate && r.kind() == RecordKind::Event {
            let parent = tracking.to_string();
            for s in r.snapshots() {
                let start = batch.buf.len();
                write_snapshot(s, Some(&parent), r.timestamp(), &mut batch.buf);
                self.push_doc(batch, index, DocumentKind::Snapshot, start)?;
            }
        }
        Ok(())
    }

    fn push_doc(
        &self,
        batch: &mut EncodedBatch,
        record: usize,
        kind: DocumentKind,
        start: usize,
    ) -> Result<(), EncodeError> {
        let size = batch.buf.len() - start;
        if size > self.max_document_bytes {
            return Err(EncodeError::TooLarge {
                size,
                limit: self.max_document_bytes,
            });
        }
        batch.docs.push(EncodedDocument {
            record,
            kind,
            range: start..batch.buf.len(),
        });
        Ok(())
    }

    /// Writes the record's main document (EVENT or ACTIVITY) into `out` and returns its kind.
    /// With [`SnapshotPlacement::Separate`] the event's snapshots are not included; write them
    /// with [`write_snapshot`].
    ///
    /// # Errors
    /// [`EncodeError::TooLarge`] when the document exceeds the limit (`out` is left as it was).
    pub fn encode_record(
        &self,
        r: &Record,
        out: &mut Vec<u8>,
    ) -> Result<DocumentKind, EncodeError> {
        let fresh;
        let tracking = match usable(r.tracking_id()) {
            Some(t) => t,
            None => {
                fresh = TrackingId::new();
                &fresh
            }
        };
        let start = out.len();
        let kind = self.write_main(r, tracking, out);
        let size = out.len() - start;
        if size > self.max_document_bytes {
            out.truncate(start);
            return Err(EncodeError::TooLarge {
                size,
                limit: self.max_document_bytes,
            });
        }
        Ok(kind)
    }

    fn write_main(&self, r: &Record, tracking: &TrackingId, out: &mut Vec<u8>) -> DocumentKind {
        let activity = r.kind() == RecordKind::SpanTiming;
        let kind = if activity {
            DocumentKind::Activity
        } else {
            DocumentKind::Event
        };
        let fields = Fields::split(r);
        let mut o = Obj::begin(out);
        let default_op = if activity { r.name() } else { r.target() };
        o.str("operation", fields.operation.unwrap_or(default_op));
        o.name("type", kind.type_name());
        if !activity {
            o.opt_str("msg-text", r.message());
        }
        o.name("severity", Severity::from_level(r.level()).as_str());
        let timing = r.timing().filter(|_| activity);
        let failed = timing.is_some_and(|t| t.failed);
        let comp = if failed {
            CompCode::Error
        } else {
            CompCode::from_level(r.level())
        };
        o.name("comp-code", comp.as_str());
        if activity {
            let status = if failed {
                ActivityStatus::Exception
            } else {
                ActivityStatus::End
            };
            o.name("status", status.as_str());
        }
        o.str(
            "source-fqn",
            r.source_fqn()
                .map_or(&*self.fallback_fqn, SourceFqn::as_str),
        );
        write_tracking_id(o.key("tracking-id"), tracking);
        if let Some(p) = usable(r.parent_tracking_id()) {
            write_tracking_id(o.key("parent-id"), p);
        }
        match timing {
            Some(t) => {
                o.u64("time-usec", t.start.as_micros());
                o.u64("start-time-usec", t.start.as_micros());
                o.u64("end-time-usec", t.end.as_micros());
                o.u64("elapsed-time-usec", micros(t.duration));
                o.u64("wait-time-usec", micros(t.duration.saturating_sub(t.busy)));
            }
            None => o.u64("time-usec", r.timestamp().as_micros()),
        }
        if !r.correlators().is_empty() {
            let out = o.key("corr-id");
            write_array(out, r.correlators(), |out, c| write_str(out, c));
        }
        o.opt_str("location", r.location());
        o.opt_str("resource", fields.resource);
        o.opt_str("user", fields.user);
        match fields.reason_code {
            Some(Value::I64(v)) => o.i64("reason-code", v),
            Some(Value::Str(s)) => o.str("reason-code", s),
            _ => {}
        }
        o.u64("pid", u64::from(self.pid));
        o.u64("tid", r.thread().id);
        if let Some(e) = fields.exception {
            write_display_str(o.key("exception"), e);
        }
        if fields.has_properties(r) {
            let out = o.key("properties");
            write_array(out, fields.properties(r), |out, (name, v)| {
                write_field_property(out, name, v);
            });
        }
        if !activity && self.snapshots == SnapshotPlacement::Embedded && !r.snapshots().is_empty() {
            let parent = tracking.to_string();
            let out = o.key("snapshots");
            write_array(out, r.snapshots(), |out, s| {
                write_snapshot(s, Some(&parent), r.timestamp(), out);
            });
        }
        o.end();
        kind
    }
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Writes a standalone SNAPSHOT document: `name`, `type`, `category`, `time-usec` (the
/// snapshot's own time, else `default_time`), `parent-id`, `properties`.
pub fn write_snapshot(
    s: &Snapshot,
    parent: Option<&str>,
    default_time: Timestamp,
    out: &mut Vec<u8>,
) {
    let mut o = Obj::begin(out);
    o.str("name", &s.name);
    o.name("type", DocumentKind::Snapshot.type_name());
    o.opt_str("category", s.category.as_deref());
    o.u64("time-usec", s.time.unwrap_or(default_time).as_micros());
    o.opt_str("parent-id", parent);
    if !s.properties.is_empty() {
        let out = o.key("properties");
        write_array(out, &s.properties, write_snapshot_property);
    }
    o.end();
}

fn write_snapshot_property(out: &mut Vec<u8>, p: &Property) {
    let mut o = Obj::begin(out);
    o.str("name", &p.name);
    o.name("type", p.value.property_type().as_str());
    let out = o.key("value");
    match &p.value {
        PropertyValue::String(s) => write_str(out, s),
        PropertyValue::Integer(v) => write_i64(out, *v),
        PropertyValue::Double(v) => {
            if !json_text::write_f64(out, *v) {
                // NaN, inf, -inf: no JSON number for them.
                write_str(out, &v.to_string());
            }
        }
        PropertyValue::Boolean(v) => out.extend_from_slice(if *v { b"true" } else { b"false" }),
        PropertyValue::Timestamp(ns) => write_u64(out, ns / 1000),
        // A variant added to the core later: keep the document valid as text.
        #[allow(unreachable_patterns)]
        other => write_str(out, &format!("{other:?}")),
    }
    o.end();
}

/// A field as `{name, type, value}`; types: STRING, INTEGER, DOUBLE, BOOLEAN. Values JSON
/// cannot hold exactly (integers beyond ±2⁶³, NaN and infinities) are sent as STRING.
fn write_field_property(out: &mut Vec<u8>, name: &str, v: Value<'_>) {
    let mut o = Obj::begin(out);
    o.str("name", name);
    match v {
        Value::Str(s) => {
            o.name("type", "STRING");
            o.str("value", s);
        }
        Value::I64(v) => {
            o.name("type", "INTEGER");
            o.i64("value", v);
        }
        Value::U64(v) => match i64::try_from(v) {
            Ok(v) => {
                o.name("type", "INTEGER");
                o.i64("value", v);
            }
            Err(_) => {
                o.name("type", "STRING");
                let out = o.key("value");
                out.push(b'"');
                write_u64(out, v);
                out.push(b'"');
            }
        },
        Value::I128(v) => match i64::try_from(v) {
            Ok(v) => {
                o.name("type", "INTEGER");
                o.i64("value", v);
            }
            Err(_) => {
                o.name("type", "STRING");
                o.str("value", &v.to_string());
            }
        },
        Value::U128(v) => match i64::try_from(v) {
            Ok(v) => {
                o.name("type", "INTEGER");
                o.i64("value", v);
            }
            Err(_) => {
                o.name("type", "STRING");
                o.str("value", &v.to_string());
            }
        },
        Value::F64(v) if v.is_finite() => {
            o.name("type", "DOUBLE");
            json_text::write_f64(o.key("value"), v);
        }
        Value::Bool(v) => {
            o.name("type", "BOOLEAN");
            o.key("value")
                .extend_from_slice(if v { b"true" } else { b"false" });
        }
        other => {
            o.name("type", "STRING");
            write_display_str(o.key("value"), &other);
        }
    }
    o.end();
}

/// Writes a tracking id as a JSON string (a UUID in its lowercase hyphenated form, like its
/// `Display`), without the allocation of `to_string`.
fn write_tracking_id(out: &mut Vec<u8>, t: &TrackingId) {
    match t {
        TrackingId::Uuid(u) => {
            // 36 bytes: the hyphenated form's length.
            let mut buf = [0u8; 36];
            out.push(b'"');
            out.extend_from_slice(u.hyphenated().encode_lower(&mut buf).as_bytes());
            out.push(b'"');
        }
        TrackingId::Custom(s) => write_str(out, s),
    }
}

/// Writes `v`'s `Display` text as a JSON string.
fn write_display_str(out: &mut Vec<u8>, v: &dyn std::fmt::Display) {
    let mut s = String::new();
    let _ = std::fmt::Write::write_fmt(&mut s, format_args!("{v}"));
    write_str(out, &s);
}

/// A record's fields split into jKool slots and properties.
struct Fields<'a> {
    operation: Option<&'a str>,
    resource: Option<&'a str>,
    user: Option<&'a str>,
    reason_code: Option<Value<'a>>,
    exception: Option<&'a logship_core::ErrorChain>,
}

impl<'a> Fields<'a> {
    fn split(r: &'a Record) -> Self {
        let mut f = Fields {
            operation: None,
            resource: None,
            user: None,
            reason_code: None,
            exception: None,
        };
        for (name, v) in r.fields() {
            match (name, v) {
                ("operation", Value::Str(s)) if f.operation.is_none() => f.operation = Some(s),
                ("resource", Value::Str(s)) if f.resource.is_none() => f.resource = Some(s),
                ("user", Value::Str(s)) if f.user.is_none() => f.user = Some(s),
                ("reason_code", v @ (Value::Str(_) | Value::I64(_))) if f.reason_code.is_none() => {
                    f.reason_code = Some(v);
                }
                (_, Value::Error(e)) if f.exception.is_none() => f.exception = Some(e),
                _ => {}
            }
        }
        f
    }

    /// Whether this field went into a slot (and so is not a property).
    fn is_slot(&self, name: &str, v: &Value<'_>) -> bool {
        match (name, v) {
            ("operation", Value::Str(s)) => self.operation.is_some_and(|o| std::ptr::eq(o, *s)),
            ("resource", Value::Str(s)) => self.resource.is_some_and(|o| std::ptr::eq(o, *s)),
            ("user", Value::Str(s)) => self.user.is_some_and(|o| std::ptr::eq(o, *s)),
            ("reason_code", Value::Str(s)) => {
                matches!(self.reason_code, Some(Value::Str(o)) if std::ptr::eq(o, *s))
            }
            ("reason_code", Value::I64(_)) => matches!(self.reason_code, Some(Value::I64(_))),
            (_, Value::Error(e)) => self.exception.is_some_and(|o| std::ptr::eq(o, *e)),
            _ => false,
        }
    }

    fn properties(&self, r: &'a Record) -> impl Iterator<Item = (&'a str, Value<'a>)> + '_ {
        r.fields().filter(move |(n, v)| !self.is_slot(n, v))
    }

    fn has_properties(&self, r: &'a Record) -> bool {
        self.properties(r).next().is_some()
    }
}

/// A tracking id jKool accepts: a caller-supplied one that is empty or blank is not (jKool
/// refuses the whole post for it), so the record gets a fresh id / no parent instead.
fn usable(t: Option<&TrackingId>) -> Option<&TrackingId> {
    t.filter(|t| !matches!(t, TrackingId::Custom(s) if s.trim().is_empty()))
}

#[cfg(test)]
mod golden {
    //! Golden documents: exact bytes. `tid` is logship's per-thread number, which differs
    //! between test threads, so it is spliced in from the record.
    use std::time::Duration;

    use logship_core::{ErrorChain, FieldValue, Level, Record, Snapshot, TrackingId};

    use super::*;

    /// 2016-06-23T06:19:21.123456789Z, the originals' example day.
    const T: u64 = 1_466_662_761_123_456_789;

    fn fqn() -> SourceFqn {
        SourceFqn::parse("APPL=Shop#SERVER=web1").unwrap_or_else(|e| panic!("{e}"))
    }

    fn encoder() -> Encoder {
        Encoder::new(&fqn()).with_pid(4242)
    }

    fn id(s: &str) -> TrackingId {
        TrackingId::Custom(s.into())
    }

    fn text(enc: &Encoder, r: &Record) -> String {
        let mut out = Vec::new();
        enc.encode_record(r, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn event_with_everything() {
        let err = ErrorChain {
            message: "payment declined".into(),
            sources: vec!["card expired".into()],
        };
        let r = Record::event(Level::WARN, "shop::orders")
            .with_timestamp(Timestamp::from_nanos(T))
            .with_message("Order \"A1\" processed")
            .with_tracking_id(id("t-1"))
            .with_correlator("order-42")
            .with_correlator("cart-7")
            .with_location("Atlanta, Ga")
            .with_field("order_id", 42_i64)
            .with_field("total", 10.0)
            .with_field("express", true)
            .with_field("sku", "A-1")
            .with_field("big", u64::MAX)
            .with_field("error", FieldValue::Error(err))
            .with_field("user", "alice")
            .with_field("reason_code", 7_i64)
            .with_snapshot(
                Snapshot::new("Payment")
                    .with_category("Order")
                    .with_property("order-no", "A1")
                    .with_property("order-amount", 10_i64)
                    .with_property("paid-at", Timestamp::from_nanos(T)),
            )
            .build();
        let tid = r.thread().id;
        let expected = format!(
            concat!(
                r#"{{"operation":"shop::orders","type":"EVENT","msg-text":"Order \"A1\" processed","#,
                r#""severity":"WARNING","comp-code":"WARNING","source-fqn":"APPL=Shop#SERVER=web1","#,
                r#""tracking-id":"t-1","time-usec":1466662761123456,"corr-id":["order-42","cart-7"],"#,
                r#""location":"Atlanta, Ga","user":"alice","reason-code":7,"pid":4242,"tid":{tid},"#,
                r#""exception":"payment declined: card expired","properties":["#,
                r#"{{"name":"order_id","type":"INTEGER","value":42}},"#,
                r#"{{"name":"total","type":"DOUBLE","value":10.0}},"#,
                r#"{{"name":"express","type":"BOOLEAN","value":true}},"#,
                r#"{{"name":"sku","type":"STRING","value":"A-1"}},"#,
                r#"{{"name":"big","type":"STRING","value":"18446744073709551615"}}],"#,
                r#""snapshots":[{{"name":"Payment","type":"SNAPSHOT","category":"Order","#,
                r#""time-usec":1466662761123456,"parent-id":"t-1","properties":["#,
                r#"{{"name":"order-no","type":"STRING","value":"A1"}},"#,
                r#"{{"name":"order-amount","type":"INTEGER","value":10}},"#,
                r#"{{"name":"paid-at","type":"TIMESTAMP","value":1466662761123456}}]}}]}}"#
            ),
            tid = tid
        );
        assert_eq!(text(&encoder(), &r), expected);
    }

    #[test]
    fn minimal_event_uses_the_fallback_fqn() {
        let r = Record::event(Level::INFO, "app")
            .with_timestamp(Timestamp::from_nanos(T))
            .with_tracking_id(id("t-2"))
            .build();
        let tid = r.thread().id;
        assert_eq!(
            text(&encoder(), &r),
            format!(
                concat!(
                    r#"{{"operation":"app","type":"EVENT","severity":"INFO","comp-code":"SUCCESS","#,
                    r#""source-fqn":"APPL=Shop#SERVER=web1","tracking-id":"t-2","#,
                    r#""time-usec":1466662761123456,"pid":4242,"tid":{}}}"#
                ),
                tid
            )
        );
    }

    #[test]
    fn own_source_fqn_and_operation_win() {
        let r = Record::event(Level::ERROR, "app")
            .with_timestamp(Timestamp::from_nanos(T))
            .with_tracking_id(id("t-3"))
            .with_source_fqn(
                SourceFqn::parse("APPL=Billing#SERVER=b2").unwrap_or_else(|e| panic!("{e}")),
            )
            .with_field("operation", "charge")
            .with_field("resource", "card-gateway")
            .with_field("reason_code", "E42")
            .with_message("l1\nl2")
            .build();
        let tid = r.thread().id;
        assert_eq!(
            text(&encoder(), &r),
            format!(
                concat!(
                    r#"{{"operation":"charge","type":"EVENT","msg-text":"l1\nl2","severity":"ERROR","#,
                    r#""comp-code":"ERROR","source-fqn":"APPL=Billing#SERVER=b2","tracking-id":"t-3","#,
                    r#""time-usec":1466662761123456,"resource":"card-gateway","reason-code":"E42","#,
                    r#""pid":4242,"tid":{}}}"#
                ),
                tid
            )
        );
    }

    #[test]
    fn activity_from_a_failed_span() {
        let r = Record::span_timing(
            "checkout",
            Timestamp::from_nanos(T),
            Duration::from_millis(250),
        )
        .with_busy(Duration::from_millis(200), true)
        .with_tracking_id(id("span-1"))
        .with_correlator("order-42")
        .with_field("items", 3_u64)
        .with_field("ratio", f64::NAN)
        .build();
        let tid = r.thread().id;
        assert_eq!(
            text(&encoder(), &r),
            format!(
                concat!(
                    r#"{{"operation":"checkout","type":"ACTIVITY","severity":"INFO","comp-code":"ERROR","#,
                    r#""status":"EXCEPTION","source-fqn":"APPL=Shop#SERVER=web1","tracking-id":"span-1","#,
                    r#""time-usec":1466662761123456,"start-time-usec":1466662761123456,"#,
                    r#""end-time-usec":1466662761373456,"elapsed-time-usec":250000,"#,
                    r#""wait-time-usec":50000,"corr-id":["order-42"],"pid":4242,"tid":{},"#,
                    r#""properties":[{{"name":"items","type":"INTEGER","value":3}},"#,
                    r#"{{"name":"ratio","type":"STRING","value":"NaN"}}]}}"#
                ),
                tid
            )
        );
    }

    #[test]
    fn activity_of_a_clean_span_ends() {
        let r = Record::span_timing("load", Timestamp::from_nanos(T), Duration::from_micros(5))
            .with_tracking_id(id("span-2"))
            .build();
        let s = text(&encoder(), &r);
        assert!(s.contains(r#""comp-code":"SUCCESS","status":"END""#), "{s}");
        assert!(
            s.contains(r#""elapsed-time-usec":5,"wait-time-usec":0"#),
            "{s}"
        );
    }

    #[test]
    fn separate_snapshots_become_their_own_documents() {
        let enc = encoder().with_snapshot_placement(SnapshotPlacement::Separate);
        let records = [
            Record::event(Level::INFO, "app")
                .with_timestamp(Timestamp::from_nanos(T))
                .with_tracking_id(id("e-1"))
                .with_snapshot(Snapshot::new("pool").with_property("free", 3_i64))
                .build(),
            Record::span_timing("s", Timestamp::from_nanos(T), Duration::from_micros(1))
                .with_tracking_id(id("s-1"))
                .build(),
        ];
        let batch = enc.encode_batch(&records);
        let kinds: Vec<_> = batch
            .documents()
            .iter()
            .map(|d| (d.record, d.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                (0, DocumentKind::Event),
                (0, DocumentKind::Snapshot),
                (1, DocumentKind::Activity)
            ]
        );
        let event = String::from_utf8_lossy(batch.bytes(&batch.documents()[0])).into_owned();
        assert!(!event.contains("snapshots"), "{event}");
        assert_eq!(
            String::from_utf8_lossy(batch.bytes(&batch.documents()[1])),
            concat!(
                r#"{"name":"pool","type":"SNAPSHOT","time-usec":1466662761123456,"parent-id":"e-1","#,
                r#""properties":[{"name":"free","type":"INTEGER","value":3}]}"#
            )
        );
        let mut array = Vec::new();
        batch.write_array(
            batch
                .documents()
                .iter()
                .filter(|d| d.kind == DocumentKind::Event),
            &mut array,
        );
        assert_eq!(array.first(), Some(&b'['));
        assert_eq!(array.last(), Some(&b']'));
        assert_eq!(array.len(), batch.documents()[0].len() + 2);
    }

    #[test]
    fn an_oversized_record_fails_alone() {
        let enc = encoder().with_max_document_bytes(400);
        let big = "x".repeat(500);
        let records = [
            Record::event(Level::INFO, "app")
                .with_message("small")
                .build(),
            Record::event(Level::INFO, "app").with_message(&big).build(),
            Record::event(Level::INFO, "app")
                .with_message("small too")
                .build(),
        ];
        let batch = enc.encode_batch(&records);
        let ok: Vec<_> = batch.documents().iter().map(|d| d.record).collect();
        assert_eq!(ok, [0, 2]);
        assert_eq!(batch.failed().len(), 1);
        assert_eq!(batch.failed()[0].0, 1);
        assert!(
            batch.failed()[0].1.contains("above the limit of 400 bytes"),
            "{:?}",
            batch.failed()
        );
        let mut out = b"keep".to_vec();
        assert!(enc.encode_record(&records[1], &mut out).is_err());
        assert_eq!(out, b"keep");
    }

    #[test]
    fn every_document_is_valid_json() {
        let r = Record::event(Level::DEBUG, "a\u{1}b")
            .with_message("\u{0}\"\\ü")
            .with_field("f", -0.0)
            .with_field("huge", i128::MAX)
            .build();
        let mut out = Vec::new();
        let _ = encoder().encode_record(&r, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["operation"], "a\u{1}b");
        assert_eq!(v["msg-text"], "\u{0}\"\\ü");
        assert_eq!(v["properties"][1]["type"], "STRING");
        assert!(v["tracking-id"].as_str().is_some_and(|t| t.len() == 36));
    }

    #[test]
    fn a_blank_caller_tracking_id_is_replaced_not_sent() {
        // Regression (tests/hostile.rs): `tracking_id = ""` made jKool refuse the whole post
        // ("tracking-id must not be empty"), losing every record batched with it.
        for blank in ["", "  "] {
            let r = Record::event(Level::INFO, "app")
                .with_timestamp(Timestamp::from_nanos(T))
                .with_tracking_id(id(blank))
                .build();
            let v: serde_json::Value =
                serde_json::from_str(&text(&encoder(), &r)).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                v["tracking-id"].as_str().is_some_and(|t| t.len() == 36),
                "{v}"
            );
        }
    }

    #[test]
    fn default_fqn_is_usable() {
        let fqn = default_source_fqn();
        assert!(SourceFqn::parse(&fqn).is_ok(), "{fqn}");
        assert!(fqn.starts_with("APPL="), "{fqn}");
    }
}
