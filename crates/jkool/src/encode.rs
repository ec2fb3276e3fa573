//! [`Encoder`]: `logship_core::Record` → jKool JSON documents. Pure; no I/O.
//!
//! Every record becomes exactly one main document (an EVENT for a `tracing` event, an
//! ACTIVITY for a closed span) and, with [`SnapshotPlacement::Separate`], one SNAPSHOT
//! document per attached snapshot. Keys are written in a fixed order so the output is stable
//! byte for byte (the golden tests below pin it).

use std::borrow::{Borrow, Cow};
use std::ops::Range;

use logship_core::{
    Property, PropertyValue, Record, RecordKind, Snapshot, SourceFqn, Timestamp, TrackingId, Value,
    json_text,
};

use crate::error::EncodeError;
use crate::json::{Obj, write_array, write_i64, write_str, write_u64};
use crate::model::{ActivityStatus, CompCode, DocumentKind, Severity};

/// Field names that map to a jKool key instead of becoming a property, on events and
/// activities alike (text values only; `reason_code` also takes an integer). Events take more:
/// the original `logEvent` parameters, [`fields::EVENT_FIELDS`](crate::fields::EVENT_FIELDS).
/// Any other field becomes a property.
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
    /// Writes `docs` as one JSON array: the body of an opt-in array post
    /// (`logship_jkool_http::BodyShape::Array`, which no reference client sends), or the payload
    /// handed to an undelivered callback.
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
        let fields = Fields::split(r, !activity);
        let mut o = Obj::begin(out);
        let default_op = if activity { r.name() } else { r.target() };
        o.str("operation", fields.operation.unwrap_or(default_op));
        o.name("type", kind.type_name());
        if !activity {
            o.opt_str("msg-text", fields.msg_text.or(r.message()));
        }
        let severity = fields
            .severity
            .unwrap_or_else(|| Severity::from_level(r.level()));
        o.name("severity", severity.as_str());
        let timing = r.timing().filter(|_| activity);
        let failed = timing.is_some_and(|t| t.failed);
        let comp = if failed {
            CompCode::Error
        } else {
            fields
                .comp_code
                .unwrap_or_else(|| CompCode::from_severity(severity))
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
        if let Some(p) = fields.parent_id {
            o.str("parent-id", p);
        } else if let Some(p) = usable(r.parent_tracking_id()) {
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
            None => {
                o.u64(
                    "time-usec",
                    fields
                        .time_usec
                        .unwrap_or_else(|| r.timestamp().as_micros()),
                );
                o.opt_u64("start-time-usec", fields.start_time_usec);
                o.opt_u64("end-time-usec", fields.end_time_usec);
                o.opt_u64("elapsed-time-usec", fields.elapsed_time_usec);
                o.opt_u64("wait-time-usec", fields.wait_time_usec);
            }
        }
        let extra_corr = fields
            .corr_id
            .filter(|c| !r.correlators().iter().any(|have| have == c));
        // OpenTelemetry ids (feature `opentelemetry`): the trace id is also a correlator, so
        // jKool stitches every event and activity of one distributed trace, across services,
        // as it does for any shared correlator; see `TRACE_PROPERTIES`.
        let ids = r
            .trace_context()
            .map(|t| (t.trace_id_hex(), t.span_id_hex()));
        let trace_corr = ids
            .as_ref()
            .map(|(t, _)| t.as_str())
            .filter(|c| !r.correlators().iter().any(|have| have == c) && extra_corr != Some(*c));
        if !r.correlators().is_empty() || extra_corr.is_some() || trace_corr.is_some() {
            let out = o.key("corrid");
            let all = r
                .correlators()
                .iter()
                .map(String::as_str)
                .chain(extra_corr)
                .chain(trace_corr);
            write_array(out, all, write_str);
        }
        o.opt_str("location", r.location());
        o.opt_str("resource", fields.resource);
        o.opt_str("user", fields.user);
        match fields.reason_code {
            Some(Value::I64(v)) => o.i64("reason-code", v),
            Some(Value::Str(s)) => o.str("reason-code", s),
            _ => {}
        }
        o.u64("pid", fields.pid.unwrap_or(u64::from(self.pid)));
        o.u64("tid", fields.tid.unwrap_or(r.thread().id));
        match fields.exception {
            Some(Exception::Text(t)) => o.str("exception", t),
            Some(Exception::Chain(e)) => write_display_str(o.key("exception"), e),
            None => {}
        }
        o.opt_str("source-url", fields.source_url);
        o.opt_str("msg-tag", fields.msg_tag);
        o.opt_u64("msg-size", fields.msg_size);
        o.opt_u64("msg-age", fields.msg_age);
        o.opt_str("encoding", fields.encoding);
        o.opt_str("charset", fields.charset);
        o.opt_str("mime-type", fields.mime_type);
        if fields.has_properties(r) || ids.is_some() {
            // With ids, a field named like one of them keeps its value under a renamed key
            // (`_trace_id`): the core's rule (`logship_core::fields`).
            let reserved = |k: &str| ids.is_some() && TRACE_PROPERTIES.contains(&k);
            let own = fields.properties(r).map(|(name, v)| {
                if reserved(name) {
                    let key = logship_core::fields::renamed_key(name, |k| {
                        reserved(k) || r.fields().any(|(f, _)| f == k)
                    });
                    (key, v)
                } else {
                    (Cow::Borrowed(name), v)
                }
            });
            let trace = ids.iter().flat_map(|(t, s)| {
                [
                    (Cow::Borrowed(TRACE_PROPERTIES[0]), Value::Str(t.as_str())),
                    (Cow::Borrowed(TRACE_PROPERTIES[1]), Value::Str(s.as_str())),
                ]
            });
            let out = o.key("properties");
            write_array(out, own.chain(trace), |out, (name, v)| {
                write_field_property(out, &name, v);
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

/// Writes one `{name, type[, value-type], value}` property in the Java model's shape
/// (jkool-client-java-api `Property`, TNT4J `JSONFormatter.format(Property)`): `type` is the
/// lowercase Java data type (`string`, `long`, `double`, `bool`) and `value` is always a JSON
/// string holding the value's text.
fn write_property(
    out: &mut Vec<u8>,
    name: &str,
    ty: PropertyKind,
    value_type: Option<&'static str>,
    value: impl FnOnce(&mut Vec<u8>),
) {
    let mut o = Obj::begin(out);
    o.str("name", name);
    o.name("type", ty.as_str());
    if let Some(vt) = value_type {
        o.name("value-type", vt);
    }
    let out = o.key("value");
    value(out);
    o.end();
}

/// The property `type` names of the Java model (`Property.getDataType`: `"string"`,
/// `"long"`, `"double"`, `"bool"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PropertyKind {
    String,
    Long,
    Double,
    Bool,
}

impl PropertyKind {
    const fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Long => "long",
            Self::Double => "double",
            Self::Bool => "bool",
        }
    }
}

/// `"<digits>"`: an integer as the JSON string the Java model sends.
fn quoted_i64(out: &mut Vec<u8>, v: i64) {
    out.push(b'"');
    write_i64(out, v);
    out.push(b'"');
}

fn quoted_u64(out: &mut Vec<u8>, v: u64) {
    out.push(b'"');
    write_u64(out, v);
    out.push(b'"');
}

/// A finite float as a JSON string (`"10.0"`, `"1e300"`: Java's `Double.parseDouble` reads
/// both); NaN and the infinities as `string` properties (`"NaN"`, `"inf"`, `"-inf"`).
fn write_f64_property(out: &mut Vec<u8>, name: &str, v: f64) {
    if v.is_finite() {
        write_property(out, name, PropertyKind::Double, None, |out| {
            out.push(b'"');
            json_text::write_f64(out, v);
            out.push(b'"');
        });
    } else {
        write_property(out, name, PropertyKind::String, None, |out| {
            write_str(out, &v.to_string());
        });
    }
}

fn write_snapshot_property(out: &mut Vec<u8>, p: &Property) {
    match &p.value {
        PropertyValue::String(s) => {
            write_property(out, &p.name, PropertyKind::String, None, |o| {
                write_str(o, s)
            });
        }
        PropertyValue::Integer(v) => {
            write_property(out, &p.name, PropertyKind::Long, None, |o| {
                quoted_i64(o, *v)
            });
        }
        PropertyValue::Double(v) => write_f64_property(out, &p.name, *v),
        PropertyValue::Boolean(v) => write_property(out, &p.name, PropertyKind::Bool, None, |o| {
            write_str(o, if *v { "true" } else { "false" });
        }),
        // µs since the epoch, jKool's time unit; `value-type` names what the number means
        // (jkool-client-java-api `ValueType.VALUE_TYPE_TIMESTAMP`).
        PropertyValue::Timestamp(ns) => {
            write_property(out, &p.name, PropertyKind::Long, Some("timestamp"), |o| {
                quoted_u64(o, ns / 1000);
            });
        }
        // A variant added to the core later: keep the document valid as text.
        #[allow(unreachable_patterns)]
        other => write_property(out, &p.name, PropertyKind::String, None, |o| {
            write_str(o, &format!("{other:?}"));
        }),
    }
}

/// A field as a property: text → `string`; integers within ±(2⁶³−1) → `long`; larger ones →
/// `string` (decimal text, beyond a Java `long`); finite floats → `double`; NaN/±∞ →
/// `string`; `bool` → `bool`; error values → `string`. Values are JSON strings.
fn write_field_property(out: &mut Vec<u8>, name: &str, v: Value<'_>) {
    let long = |out: &mut Vec<u8>, v: i64| {
        write_property(out, name, PropertyKind::Long, None, |o| quoted_i64(o, v));
    };
    let text = |out: &mut Vec<u8>, v: &dyn std::fmt::Display| {
        write_property(out, name, PropertyKind::String, None, |o| {
            write_display_str(o, v);
        });
    };
    match v {
        Value::Str(s) => write_property(out, name, PropertyKind::String, None, |o| write_str(o, s)),
        Value::I64(v) => long(out, v),
        Value::U64(v) => match i64::try_from(v) {
            Ok(v) => long(out, v),
            Err(_) => text(out, &v),
        },
        Value::I128(v) => match i64::try_from(v) {
            Ok(v) => long(out, v),
            Err(_) => text(out, &v),
        },
        Value::U128(v) => match i64::try_from(v) {
            Ok(v) => long(out, v),
            Err(_) => text(out, &v),
        },
        Value::F64(v) => write_f64_property(out, name, v),
        Value::Bool(v) => write_property(out, name, PropertyKind::Bool, None, |o| {
            write_str(o, if v { "true" } else { "false" });
        }),
        other => text(out, &other),
    }
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

/// The exception text: an `exception` text field, else the first error value.
#[derive(Clone, Copy)]
enum Exception<'a> {
    Text(&'a str),
    Chain(&'a logship_core::ErrorChain),
}

/// Fields whose index is at or beyond this stay properties (the taken ones are a bit mask).
const MAX_SLOT_INDEX: usize = 128;

/// A record's fields split into jKool top-level keys and properties. The fields that went
/// into a key are remembered by their position in [`Record::fields`], so a second field of
/// the same name stays a property.
#[derive(Default)]
struct Fields<'a> {
    taken: u128,
    operation: Option<&'a str>,
    resource: Option<&'a str>,
    user: Option<&'a str>,
    reason_code: Option<Value<'a>>,
    exception: Option<Exception<'a>>,
    // EVENT only: the original `logEvent` parameters (crate::fields).
    msg_text: Option<&'a str>,
    time_usec: Option<u64>,
    start_time_usec: Option<u64>,
    end_time_usec: Option<u64>,
    elapsed_time_usec: Option<u64>,
    wait_time_usec: Option<u64>,
    severity: Option<Severity>,
    comp_code: Option<CompCode>,
    msg_tag: Option<&'a str>,
    msg_size: Option<u64>,
    msg_age: Option<u64>,
    encoding: Option<&'a str>,
    charset: Option<&'a str>,
    mime_type: Option<&'a str>,
    source_url: Option<&'a str>,
    pid: Option<u64>,
    tid: Option<u64>,
    parent_id: Option<&'a str>,
    corr_id: Option<&'a str>,
}

/// A non-negative integer value.
fn unsigned(v: Value<'_>) -> Option<u64> {
    match v {
        Value::U64(v) => Some(v),
        Value::I64(v) => u64::try_from(v).ok(),
        Value::I128(v) => u64::try_from(v).ok(),
        Value::U128(v) => u64::try_from(v).ok(),
        _ => None,
    }
}

/// A time in µs since the epoch between 2000 and 2100 (anything else is most likely in
/// another unit, ms or ns, and stays a property rather than misdate the event).
fn epoch_micros(v: Value<'_>) -> Option<u64> {
    unsigned(v).filter(|t| (MIN_TIME_USEC..MAX_TIME_USEC).contains(t))
}

/// 2000-01-01T00:00:00Z, µs.
const MIN_TIME_USEC: u64 = 946_684_800_000_000;
/// 2100-01-01T00:00:00Z, µs.
const MAX_TIME_USEC: u64 = 4_102_444_800_000_000;

/// Non-blank text.
fn text(v: Value<'_>) -> Option<&str> {
    match v {
        Value::Str(s) if !s.trim().is_empty() => Some(s),
        _ => None,
    }
}

/// Sets `slot` from `parsed` if it is still empty and the value parsed; returns whether the
/// field was taken.
fn fill<T>(slot: &mut Option<T>, parsed: Option<T>) -> bool {
    if slot.is_some() {
        return false;
    }
    match parsed {
        Some(v) => {
            *slot = Some(v);
            true
        }
        None => false,
    }
}

impl<'a> Fields<'a> {
    /// Splits `r`'s fields. `event`: also take the original `logEvent` parameters
    /// ([`crate::fields::EVENT_FIELDS`]); an ACTIVITY takes only the [`SLOT_FIELDS`] and its
    /// first error value.
    fn split(r: &'a Record, event: bool) -> Self {
        use crate::fields as f;
        let mut s = Fields::default();
        let mut error_at = None;
        let mut exception_text_at = None;
        for (i, (name, v)) in r.fields().enumerate().take(MAX_SLOT_INDEX) {
            let taken = match name {
                "operation" => fill(&mut s.operation, text(v)),
                "resource" => fill(&mut s.resource, text(v)),
                "user" => fill(&mut s.user, text(v)),
                "reason_code" => fill(
                    &mut s.reason_code,
                    matches!(v, Value::Str(_) | Value::I64(_)).then_some(v),
                ),
                _ if !event => false,
                f::TIME_USEC => fill(&mut s.time_usec, epoch_micros(v)),
                f::START_TIME_USEC => fill(&mut s.start_time_usec, epoch_micros(v)),
                f::END_TIME_USEC => fill(&mut s.end_time_usec, epoch_micros(v)),
                f::ELAPSED_TIME_USEC => fill(&mut s.elapsed_time_usec, unsigned(v)),
                f::WAIT_TIME_USEC | f::WAIT_TIME_USED => fill(&mut s.wait_time_usec, unsigned(v)),
                f::SEVERITY => fill(
                    &mut s.severity,
                    match v {
                        Value::Str(t) => Severity::parse(t),
                        Value::I64(n) => Severity::from_python_level(n),
                        Value::U64(n) => {
                            i64::try_from(n).ok().and_then(Severity::from_python_level)
                        }
                        _ => None,
                    },
                ),
                f::COMP_CODE => fill(
                    &mut s.comp_code,
                    match v {
                        Value::Str(t) => CompCode::parse(t),
                        _ => None,
                    },
                ),
                f::MSG_TEXT => fill(
                    &mut s.msg_text,
                    match v {
                        Value::Str(t) => Some(t),
                        _ => None,
                    },
                ),
                f::MSG_TAG => fill(&mut s.msg_tag, text(v)),
                f::MSG_SIZE => fill(&mut s.msg_size, unsigned(v)),
                f::MSG_AGE => fill(&mut s.msg_age, unsigned(v)),
                f::ENCODING => fill(&mut s.encoding, text(v)),
                f::CHARSET => fill(&mut s.charset, text(v)),
                f::MIME_TYPE => fill(&mut s.mime_type, text(v)),
                f::SOURCE_URL => fill(&mut s.source_url, text(v)),
                f::PID => fill(&mut s.pid, unsigned(v)),
                f::TID => fill(&mut s.tid, unsigned(v)),
                f::PARENT_TRACKING_ID => fill(&mut s.parent_id, text(v)),
                f::CORR_ID => fill(&mut s.corr_id, text(v).map(str::trim)),
                f::EXCEPTION if exception_text_at.is_none() && text(v).is_some() => {
                    exception_text_at = Some(i);
                    false
                }
                _ => false,
            };
            if taken {
                s.taken |= 1 << i;
            } else if let Value::Error(e) = v
                && error_at.is_none()
            {
                error_at = Some((i, e));
            }
        }
        // An `exception` text field wins; the first error value otherwise.
        if let Some(i) = exception_text_at {
            if let Some((_, Value::Str(t))) = r.fields().nth(i) {
                s.exception = Some(Exception::Text(t));
                s.taken |= 1 << i;
            }
        } else if let Some((i, e)) = error_at {
            s.exception = Some(Exception::Chain(e));
            s.taken |= 1 << i;
        }
        s
    }

    fn properties(&self, r: &'a Record) -> impl Iterator<Item = (&'a str, Value<'a>)> + '_ {
        r.fields()
            .enumerate()
            .filter(move |(i, _)| *i >= MAX_SLOT_INDEX || self.taken & (1 << i) == 0)
            .map(|(_, f)| f)
    }

    fn has_properties(&self, r: &'a Record) -> bool {
        self.properties(r).next().is_some()
    }
}

/// The `string` properties an event or activity gets when the record has OpenTelemetry ids
/// ([`Record::trace_context`]): the trace id (32 lowercase hex digits) and span id (16). jKool
/// and TNT4J have no field of their own for OpenTelemetry ids, so they are properties, named as
/// OpenTelemetry's log data model names them
/// (<https://opentelemetry.io/docs/specs/otel/logs/data-model/#field-traceid>); the trace id
/// is also added to the correlators (`corrid`).
pub const TRACE_PROPERTIES: [&str; 2] = ["trace_id", "span_id"];

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
                r#""tracking-id":"t-1","time-usec":1466662761123456,"corrid":["order-42","cart-7"],"#,
                r#""location":"Atlanta, Ga","user":"alice","reason-code":7,"pid":4242,"tid":{tid},"#,
                r#""exception":"payment declined: card expired","properties":["#,
                r#"{{"name":"order_id","type":"long","value":"42"}},"#,
                r#"{{"name":"total","type":"double","value":"10.0"}},"#,
                r#"{{"name":"express","type":"bool","value":"true"}},"#,
                r#"{{"name":"sku","type":"string","value":"A-1"}},"#,
                r#"{{"name":"big","type":"string","value":"18446744073709551615"}}],"#,
                r#""snapshots":[{{"name":"Payment","type":"SNAPSHOT","category":"Order","#,
                r#""time-usec":1466662761123456,"parent-id":"t-1","properties":["#,
                r#"{{"name":"order-no","type":"string","value":"A1"}},"#,
                r#"{{"name":"order-amount","type":"long","value":"10"}},"#,
                r#"{{"name":"paid-at","type":"long","value-type":"timestamp","value":"1466662761123456"}}]}}]}}"#
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
                    r#""wait-time-usec":50000,"corrid":["order-42"],"pid":4242,"tid":{},"#,
                    r#""properties":[{{"name":"items","type":"long","value":"3"}},"#,
                    r#"{{"name":"ratio","type":"string","value":"NaN"}}]}}"#
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
                r#""properties":[{"name":"free","type":"long","value":"3"}]}"#
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
        assert_eq!(v["properties"][1]["type"], "string");
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

#[cfg(test)]
mod reference_encodings {
    //! The encodings chosen from the references (docs/jkool.md, "Encodings and their
    //! references"): `corrid` arrays, lowercase Java property types with text values, and the
    //! original `logEvent` parameters as top-level keys.
    use std::time::Duration;

    use logship_core::{ErrorChain, FieldValue, Level, Record, Snapshot, Timestamp, TrackingId};
    use serde_json::{Value as Json, json};

    use super::*;

    const T: u64 = 1_466_662_761_123_456_789;
    const T_US: u64 = 1_466_662_761_123_456;

    fn doc(r: &Record) -> Json {
        let mut out = Vec::new();
        Encoder::default()
            .encode_record(r, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}"))
    }

    fn event_with(name: &'static str, v: impl Into<FieldValue>) -> Json {
        doc(&Record::event(Level::INFO, "app")
            .with_timestamp(Timestamp::from_nanos(T))
            .with_message("m")
            .with_field(name, v)
            .build())
    }

    fn property_names(d: &Json) -> Vec<String> {
        d["properties"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn correlators_go_out_as_a_corrid_array() {
        let d = doc(&Record::event(Level::INFO, "app")
            .with_correlator("order-42")
            .with_correlator("cart-7")
            .build());
        assert_eq!(d["corrid"], json!(["order-42", "cart-7"]));
        assert!(d.get("corr-id").is_none(), "{d}");
        // The original's `corr_id` parameter adds one more (not twice).
        let d = doc(&Record::event(Level::INFO, "app")
            .with_correlator("order-42")
            .with_field("corr_id", "pay-9")
            .build());
        assert_eq!(d["corrid"], json!(["order-42", "pay-9"]));
        let d = doc(&Record::event(Level::INFO, "app")
            .with_correlator("order-42")
            .with_field("corr_id", "order-42")
            .build());
        assert_eq!(d["corrid"], json!(["order-42"]));
        assert!(d.get("properties").is_none(), "{d}");
        assert_eq!(event_with("corr_id", "only")["corrid"], json!(["only"]));
    }

    #[test]
    fn properties_carry_lowercase_java_types_and_text_values() {
        let d = doc(&Record::event(Level::INFO, "app")
            .with_field("s", "x")
            .with_field("i", -42_i64)
            .with_field("u", 7_u64)
            .with_field("f", 1.5)
            .with_field("b", false)
            .with_field("inf", f64::INFINITY)
            .with_field("huge", u128::MAX)
            .build());
        assert_eq!(
            d["properties"],
            json!([
                {"name": "s", "type": "string", "value": "x"},
                {"name": "i", "type": "long", "value": "-42"},
                {"name": "u", "type": "long", "value": "7"},
                {"name": "f", "type": "double", "value": "1.5"},
                {"name": "b", "type": "bool", "value": "false"},
                {"name": "inf", "type": "string", "value": "inf"},
                {"name": "huge", "type": "string", "value": u128::MAX.to_string()},
            ])
        );
        let d = doc(&Record::event(Level::INFO, "app")
            .with_timestamp(Timestamp::from_nanos(T))
            .with_snapshot(
                Snapshot::new("s")
                    .with_property("n", 3_i64)
                    .with_property("d", 0.25)
                    .with_property("ok", true)
                    .with_property("at", Timestamp::from_nanos(T)),
            )
            .build());
        assert_eq!(
            d["snapshots"][0]["properties"],
            json!([
                {"name": "n", "type": "long", "value": "3"},
                {"name": "d", "type": "double", "value": "0.25"},
                {"name": "ok", "type": "bool", "value": "true"},
                {"name": "at", "type": "long", "value-type": "timestamp", "value": T_US.to_string()},
            ])
        );
    }

    /// (field, value, key, expected value of the key) for every top-level mapping of
    /// [`crate::fields::EVENT_FIELDS`].
    #[test]
    fn each_logevent_parameter_becomes_its_top_level_key() {
        let t2 = 1_500_000_000_000_000_u64;
        let cases: Vec<(&'static str, FieldValue, &str, Json)> = vec![
            ("time_usec", t2.into(), "time-usec", json!(t2)),
            ("start_time_usec", t2.into(), "start-time-usec", json!(t2)),
            (
                "end_time_usec",
                (t2 + 5).into(),
                "end-time-usec",
                json!(t2 + 5),
            ),
            (
                "elapsed_time_usec",
                1500_i64.into(),
                "elapsed-time-usec",
                json!(1500),
            ),
            ("wait_time_usec", 20_u64.into(), "wait-time-usec", json!(20)),
            ("wait_time_used", 21_i64.into(), "wait-time-usec", json!(21)),
            ("severity", "critical".into(), "severity", json!("CRITICAL")),
            ("severity", 30_i64.into(), "severity", json!("WARNING")),
            ("comp_code", "WARNING".into(), "comp-code", json!("WARNING")),
            (
                "msg_text",
                "given text".into(),
                "msg-text",
                json!("given text"),
            ),
            ("msg_tag", "billing".into(), "msg-tag", json!("billing")),
            ("msg_size", 512_u64.into(), "msg-size", json!(512)),
            ("msg_age", 9_i64.into(), "msg-age", json!(9)),
            ("encoding", "base64".into(), "encoding", json!("base64")),
            ("charset", "UTF-8".into(), "charset", json!("UTF-8")),
            (
                "mime_type",
                "text/plain".into(),
                "mime-type",
                json!("text/plain"),
            ),
            (
                "source_url",
                "https://shop/x".into(),
                "source-url",
                json!("https://shop/x"),
            ),
            ("exception", "boom".into(), "exception", json!("boom")),
            ("pid", 77_u64.into(), "pid", json!(77)),
            ("tid", 88_i64.into(), "tid", json!(88)),
            (
                "parent_tracking_id",
                "act-1".into(),
                "parent-id",
                json!("act-1"),
            ),
            ("corr_id", "c-1".into(), "corrid", json!(["c-1"])),
        ];
        let covered: std::collections::BTreeSet<_> = cases.iter().map(|c| c.0).collect();
        for (field, _) in crate::fields::EVENT_FIELDS {
            assert!(covered.contains(field), "no case for {field}");
        }
        for (field, value, key, expected) in cases {
            let d = event_with(field, value);
            assert_eq!(d[key], expected, "{field}: {d}");
            assert!(
                !property_names(&d).iter().any(|n| n == field),
                "{field} also stayed a property: {d}"
            );
        }
    }

    #[test]
    fn a_severity_or_comp_code_field_overrides_the_level() {
        let d = event_with("severity", "FATAL");
        assert_eq!(
            (&d["severity"], &d["comp-code"]),
            (&json!("FATAL"), &json!("ERROR"))
        );
        let d = doc(&Record::event(Level::ERROR, "app")
            .with_field("comp_code", "warning")
            .build());
        assert_eq!(
            (&d["severity"], &d["comp-code"]),
            (&json!("ERROR"), &json!("WARNING"))
        );
        let d = event_with("time_usec", 1_500_000_000_000_000_u64);
        assert_eq!(d["time-usec"], json!(1_500_000_000_000_000_u64));
    }

    #[test]
    fn a_wrong_typed_parameter_stays_a_property() {
        let cases: Vec<(&'static str, FieldValue)> = vec![
            // milliseconds and nanoseconds are not µs between 2000 and 2100
            ("time_usec", 1_466_662_761_000_i64.into()),
            ("start_time_usec", T.into()),
            ("time_usec", "1466662761000000".into()),
            ("elapsed_time_usec", (-1_i64).into()),
            ("msg_size", 1.5.into()),
            ("severity", "LOUD".into()),
            ("severity", 25_i64.into()),
            ("comp_code", "FAILED".into()),
            ("encoding", 8_i64.into()),
            ("pid", (-3_i64).into()),
            ("parent_tracking_id", "  ".into()),
        ];
        for (field, value) in cases {
            let d = event_with(field, value);
            assert!(
                property_names(&d).iter().any(|n| n == field),
                "{field} should stay a property: {d}"
            );
            assert_eq!(d["time-usec"], json!(T_US), "{field}: {d}");
            assert_eq!(d["severity"], json!("INFO"), "{field}: {d}");
            assert_eq!(d["comp-code"], json!("SUCCESS"), "{field}: {d}");
        }
    }

    #[test]
    fn exception_text_wins_over_an_error_value_and_duplicates_stay_properties() {
        let err = ErrorChain {
            message: "io".into(),
            sources: vec![],
        };
        let d = doc(&Record::event(Level::ERROR, "app")
            .with_field("error", FieldValue::Error(err))
            .with_field("exception", "declined")
            .with_field("msg_tag", "first")
            .with_field("msg_tag", "second")
            .build());
        assert_eq!(d["exception"], "declined");
        assert_eq!(d["msg-tag"], "first");
        assert_eq!(
            d["properties"],
            json!([
                {"name": "error", "type": "string", "value": "io"},
                {"name": "msg_tag", "type": "string", "value": "second"},
            ])
        );
    }

    #[test]
    fn activities_keep_their_own_timing_and_take_no_logevent_parameters() {
        let r = Record::span_timing("s", Timestamp::from_nanos(T), Duration::from_micros(5))
            .with_tracking_id(TrackingId::Custom("s-1".into()))
            .with_field("time_usec", 1_500_000_000_000_000_u64)
            .with_field("severity", "FATAL")
            .build();
        let d = doc(&r);
        assert_eq!(d["time-usec"], json!(T_US));
        assert_eq!(d["severity"], "INFO");
        assert_eq!(property_names(&d), ["time_usec", "severity"]);
    }
}
