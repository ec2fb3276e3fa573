//! Pure encoding of records into Forward protocol requests (the Forward protocol v1 specification, <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1> "Event modes").
//!
//! A batch becomes one request per tag (records keep their order within a tag), or one
//! request per record in [`Mode::Message`]. Each request carries its own `chunk` id when acks
//! are on. Nothing here does I/O, so every byte is pinned by the golden tests below.

use std::borrow::Borrow;

use base64::Engine as _;
use logship_core::{PropertyValue, Record, RecordKind, Timestamp, TrackingId, Value};
use sha2::{Digest, Sha256};

use crate::msgpack as mp;
use crate::template::{Rendered, Template};

/// The Forward protocol mode (the Forward protocol v1 specification, <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1> "Event modes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Mode {
    /// `[tag, time, record, option?]`: one request per record (what the Python original sends).
    Message,
    /// `[tag, [[time, record], …], option]`: one request per tag, entries as an array.
    Forward,
    /// `[tag, bin, option]`: entries concatenated into one `bin` blob (the default; the spec's
    /// recommended form, and the cheapest for the server to decode).
    #[default]
    PackedForward,
    /// As PackedForward with the blob gzipped (one gzip member) and `compressed: "gzip"` in
    /// the option map. Fewer bytes on the wire for more CPU on both sides.
    CompressedPackedForward,
}

/// How event times go on the wire (the Forward protocol v1 specification, <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1> "EventTime").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TimeFormat {
    /// EventTime (ext type 0, `fixext8`): seconds and nanoseconds (default).
    #[default]
    EventTime,
    /// Integer seconds since the Unix epoch, for Fluentd 0.12 and older servers (Fluent Bit's
    /// `time_as_integer`).
    Integer,
}

/// Where the label of the tag `prefix.label` comes from (as the original's
/// `FluentSender(prefix).emit(label, …)`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TagLabel {
    /// The record's target with `::` turned into `.` (`shop::orders` → `app.shop.orders`), so
    /// Fluentd `<match app.shop.**>` patterns route by module (default).
    #[default]
    Target,
    /// The callsite name: the span's name for span timings, `event <file>:<line>` for events.
    Name,
    /// The value of this field (as text); the field is then not repeated in the record. A
    /// record without it falls back to [`TagLabel::Target`]. Since the value is event data,
    /// only Fluentd's tag characters pass (letters, digits, `_`, `-`, `.` between non-empty
    /// parts; anything else becomes `_`; at most 128 bytes), so an event cannot steer routing
    /// with `*`, `{…}` or empty parts.
    Field(String),
    /// No label: the tag is the prefix alone.
    None,
}

/// How the fields of enclosing spans appear in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SpanStyle {
    /// `"spans": [{"name": "order", "order_id": 42}, …]`, outermost first (default).
    #[default]
    Nested,
    /// One top-level key per span field, `"<span>.<field>"`, e.g. `"order.order_id": 42`.
    Flattened,
}

/// Everything the encoder needs; built and validated by the builder.
#[derive(Debug, Clone)]
pub(crate) struct EncodeSettings {
    pub(crate) tag_prefix: String,
    pub(crate) label: TagLabel,
    pub(crate) time: TimeFormat,
    pub(crate) spans: SpanStyle,
    pub(crate) templates: Vec<(String, Template)>,
    pub(crate) exclude: Vec<String>,
    pub(crate) hostname: String,
    pub(crate) max_record_bytes: usize,
    /// CompressedPackedForward: most uncompressed entry bytes per request.
    pub(crate) max_compressed_request_bytes: usize,
    /// Forward, PackedForward and CompressedPackedForward: the target of entry bytes per
    /// request (chunk); a tag's entries beyond it go in further requests.
    pub(crate) chunk_bytes: usize,
    pub(crate) mode: Mode,
}

impl Default for EncodeSettings {
    fn default() -> Self {
        Self {
            tag_prefix: String::new(),
            label: TagLabel::Target,
            time: TimeFormat::EventTime,
            spans: SpanStyle::Nested,
            templates: Vec::new(),
            exclude: Vec::new(),
            hostname: String::new(),
            max_record_bytes: usize::MAX,
            max_compressed_request_bytes: usize::MAX,
            chunk_bytes: usize::MAX,
            mode: Mode::PackedForward,
        }
    }
}

/// One request ready for the wire.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    /// The msgpack bytes of the request.
    pub(crate) bytes: Vec<u8>,
    /// The `chunk` option, when acks are on.
    pub(crate) chunk: Option<String>,
    /// Indices (into the batch) of the records it carries.
    pub(crate) records: Vec<usize>,
}

/// A batch, encoded.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    pub(crate) requests: Vec<Request>,
    /// Records that could not be encoded, with the reason.
    pub(crate) rejected: Vec<(usize, String)>,
}

/// Chunk ids: `base64(SHA-256(salt ‖ batch id ‖ request identity)[..16])`, 24 characters. The
/// same batch encodes to the same chunk ids on every attempt; a random per-process salt keeps
/// them unique across processes and restarts.
#[derive(Debug, Clone)]
pub(crate) struct ChunkIds {
    pub(crate) salt: [u8; 16],
    pub(crate) batch_id: u64,
}

/// Keys the encoder writes itself. A field with one of these names (or a template key's, or,
/// with [`SpanStyle::Flattened`], a `"<span>.<field>"` key the record has) is written under
/// [`logship_core::fields::renamed_key`] instead (`level` → `_level`): the core's rule
/// (`logship_core::fields`, "Repeated and reserved field names").
const K_MESSAGE: &str = "message";
const K_LEVEL: &str = "level";
const K_TARGET: &str = "target";
pub(crate) const RESERVED_KEYS: [&str; 16] = [
    K_MESSAGE,
    K_LEVEL,
    K_TARGET,
    "spans",
    "source_fqn",
    "correlators",
    "tracking_id",
    "parent_tracking_id",
    "location",
    "snapshots",
    "kind",
    "span",
    "duration_ns",
    "busy_ns",
    "start_ns",
    "failed",
];

/// Keys the encoder writes for a record with OpenTelemetry ids ([`Record::trace_context`]):
/// reserved only then, so that without the `opentelemetry` feature (or outside a traced span)
/// an application's own `trace_id` field keeps its name. Named as OpenTelemetry's log data
/// model names them (`TraceId`/`SpanId`, written `trace_id`/`span_id` in the OTLP JSON and in
/// Fluent Bit's OpenTelemetry output):
/// <https://opentelemetry.io/docs/specs/otel/logs/data-model/#field-traceid>.
pub(crate) const TRACE_KEYS: [&str; 2] = ["trace_id", "span_id"];

/// Whether `key` is the flattened key `"<span>.<field>"` of span `s`'s field `field`.
fn is_flat_key(key: &str, s: &logship_core::SpanContext, field: &str) -> bool {
    key.strip_prefix(s.name())
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|rest| rest == field)
}

/// The encoder.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    pub(crate) s: EncodeSettings,
}

impl Encoder {
    pub(crate) fn new(s: EncodeSettings) -> Self {
        Self { s }
    }

    /// The tag of `r`: `prefix.label`, or the one that is not empty (`logship` if both are).
    pub(crate) fn tag(&self, r: &Record, out: &mut String) {
        use std::fmt::Write as _;
        let push_target = |out: &mut String| {
            for (k, part) in r.target().split("::").enumerate() {
                if k > 0 {
                    out.push('.');
                }
                out.push_str(part);
            }
        };
        out.clear();
        out.push_str(&self.s.tag_prefix);
        let mark = out.len();
        if !self.s.tag_prefix.is_empty() {
            out.push('.');
        }
        let label_start = out.len();
        match &self.s.label {
            TagLabel::Target => push_target(out),
            TagLabel::Name => out.push_str(r.name()),
            TagLabel::Field(f) => match r.field(f) {
                Some(v) => {
                    // Event data steers routing here: only Fluentd's tag characters pass.
                    let mut text = String::new();
                    match v {
                        Value::Str(s) => text.push_str(s),
                        v => {
                            let _ = write!(text, "{v}");
                        }
                    }
                    push_tag_part(&text, out);
                    if out.len() == label_start {
                        push_target(out);
                    }
                }
                None => push_target(out),
            },
            TagLabel::None => {}
        }
        if out.len() == label_start {
            out.truncate(mark);
        }
        if out.is_empty() {
            out.push_str("logship");
        }
    }

    /// Appends the entry time.
    pub(crate) fn write_time(&self, ts: Timestamp, out: &mut Vec<u8>) {
        let secs = u32::try_from(ts.secs()).unwrap_or(u32::MAX);
        match self.s.time {
            TimeFormat::EventTime => mp::event_time(out, secs, ts.subsec_nanos()),
            TimeFormat::Integer => mp::uint(out, u64::from(secs)),
        }
    }

    fn excluded(&self, key: &str) -> bool {
        !self.s.exclude.is_empty() && self.s.exclude.iter().any(|k| k == key)
    }

    /// Whether `key` is one the encoder writes itself for `r` (see [`RESERVED_KEYS`]).
    fn is_reserved(&self, r: &Record, key: &str) -> bool {
        RESERVED_KEYS.contains(&key)
            || (TRACE_KEYS.contains(&key) && r.trace_context().is_some())
            || self.s.templates.iter().any(|(k, _)| k == key)
            || (self.s.spans == SpanStyle::Flattened
                && key.contains('.')
                && r.spans()
                    .any(|s| s.fields().any(|(f, _)| is_flat_key(key, s, f))))
    }

    /// Appends the record map of `r`.
    pub(crate) fn write_record(&self, r: &Record, out: &mut Vec<u8>) {
        let at = mp::begin_map(out);
        let mut n = 0usize;
        let mut kv = |out: &mut Vec<u8>, k: &str, f: &mut dyn FnMut(&mut Vec<u8>)| {
            mp::str(out, k);
            f(out);
            n += 1;
        };
        if let Some(m) = r.message()
            && !self.excluded(K_MESSAGE)
        {
            kv(out, K_MESSAGE, &mut |o| mp::str(o, m));
        }
        if !self.excluded(K_LEVEL) {
            kv(out, K_LEVEL, &mut |o| mp::str(o, r.level().as_str()));
        }
        if !self.excluded(K_TARGET) {
            kv(out, K_TARGET, &mut |o| mp::str(o, r.target()));
        }
        for (key, t) in &self.s.templates {
            if self.excluded(key) {
                continue;
            }
            match t.render(r, &self.s.hostname) {
                Rendered::Missing => {}
                Rendered::Int(v) => kv(out, key, &mut |o| mp::uint(o, v)),
                Rendered::Borrowed(s) => kv(out, key, &mut |o| mp::str(o, s)),
                Rendered::Owned(s) => kv(out, key, &mut |o| mp::str(o, &s)),
            }
        }
        let label_field = match &self.s.label {
            TagLabel::Field(f) => Some(f.as_str()),
            _ => None,
        };
        let reserved = |k: &str| self.is_reserved(r, k);
        for ((k, v), (name, _)) in r.fields_beside(&reserved).zip(r.fields()) {
            // Exclusion and the tag label go by the field's own name.
            if Some(name) == label_field || self.excluded(name) {
                continue;
            }
            kv(out, &k, &mut |o| write_value(o, v));
        }
        let spans_on = r.spans().next().is_some();
        if spans_on {
            match self.s.spans {
                SpanStyle::Nested => {
                    if !self.excluded("spans") {
                        kv(out, "spans", &mut |o| {
                            mp::array_header(o, r.spans().count());
                            for s in r.spans() {
                                let at = mp::begin_map(o);
                                let mut m = 1;
                                mp::str(o, "name");
                                mp::str(o, s.name());
                                for (k, v) in s.fields() {
                                    // A span field called `name` does not hide the span's name.
                                    if k == "name" {
                                        let key = logship_core::fields::renamed_key(k, |x| {
                                            x == "name" || s.fields().any(|(f, _)| f == x)
                                        });
                                        mp::str(o, &key);
                                    } else {
                                        mp::str(o, k);
                                    }
                                    write_value(o, v);
                                    m += 1;
                                }
                                mp::end_map(o, at, m);
                            }
                        });
                    }
                }
                SpanStyle::Flattened => {
                    let spans: Vec<_> = r.spans().collect();
                    let mut key = String::new();
                    for (j, s) in spans.iter().enumerate() {
                        for (k, v) in s.fields() {
                            key.clear();
                            key.push_str(s.name());
                            key.push('.');
                            key.push_str(k);
                            // The same key from an inner span (a later one) wins.
                            let repeated = spans[j + 1..].iter().any(|inner| {
                                inner.fields().any(|(f, _)| is_flat_key(&key, inner, f))
                            });
                            if !repeated && !self.excluded(&key) {
                                kv(out, &key, &mut |o| write_value(o, v));
                            }
                        }
                    }
                }
            }
        }
        if let Some(f) = r.source_fqn()
            && !self.excluded("source_fqn")
        {
            kv(out, "source_fqn", &mut |o| mp::str(o, f.as_str()));
        }
        if !r.correlators().is_empty() && !self.excluded("correlators") {
            kv(out, "correlators", &mut |o| {
                mp::array_header(o, r.correlators().len());
                for c in r.correlators() {
                    mp::str(o, c);
                }
            });
        }
        if let Some(t) = r.tracking_id()
            && !self.excluded("tracking_id")
        {
            kv(out, "tracking_id", &mut |o| write_tracking_id(o, t));
        }
        if let Some(t) = r.parent_tracking_id()
            && !self.excluded("parent_tracking_id")
        {
            kv(out, "parent_tracking_id", &mut |o| write_tracking_id(o, t));
        }
        if let Some(t) = r.trace_context() {
            if !self.excluded(TRACE_KEYS[0]) {
                kv(out, TRACE_KEYS[0], &mut |o| {
                    mp::str(o, t.trace_id_hex().as_str())
                });
            }
            if !self.excluded(TRACE_KEYS[1]) {
                kv(out, TRACE_KEYS[1], &mut |o| {
                    mp::str(o, t.span_id_hex().as_str())
                });
            }
        }
        if let Some(l) = r.location()
            && !self.excluded("location")
        {
            kv(out, "location", &mut |o| mp::str(o, l));
        }
        if !r.snapshots().is_empty() && !self.excluded("snapshots") {
            kv(out, "snapshots", &mut |o| write_snapshots(o, r));
        }
        if r.kind() == RecordKind::SpanTiming
            && let Some(t) = r.timing()
        {
            let ns = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
            if !self.excluded("kind") {
                kv(out, "kind", &mut |o| mp::str(o, "span_timing"));
            }
            if !self.excluded("span") {
                kv(out, "span", &mut |o| mp::str(o, r.name()));
            }
            if !self.excluded("duration_ns") {
                kv(out, "duration_ns", &mut |o| mp::uint(o, ns(t.duration)));
            }
            if !self.excluded("busy_ns") {
                kv(out, "busy_ns", &mut |o| mp::uint(o, ns(t.busy)));
            }
            if !self.excluded("start_ns") {
                kv(out, "start_ns", &mut |o| mp::uint(o, t.start.as_nanos()));
            }
            if !self.excluded("failed") {
                kv(out, "failed", &mut |o| mp::bool(o, t.failed));
            }
        }
        mp::end_map(out, at, n);
    }

    /// Appends one `[time, record]` entry.
    pub(crate) fn write_entry(&self, r: &Record, out: &mut Vec<u8>) {
        out.push(0x92);
        self.write_time(r.timestamp(), out);
        self.write_record(r, out);
    }

    /// Encodes a batch into requests (see the [module docs](self)). `chunks` is `Some` when
    /// acks are on.
    pub(crate) fn encode_batch<R: Borrow<Record>>(
        &self,
        records: &[R],
        chunks: Option<&ChunkIds>,
    ) -> Encoded {
        let mut enc = Encoded::default();
        let mut tag = String::new();
        if self.s.mode == Mode::Message {
            let mut entry = Vec::with_capacity(256);
            for (i, r) in records.iter().map(Borrow::borrow).enumerate() {
                self.tag(r, &mut tag);
                entry.clear();
                self.write_record(r, &mut entry);
                if entry.len() > self.s.max_record_bytes {
                    enc.rejected.push((i, self.too_large(entry.len())));
                    continue;
                }
                let chunk = chunks.map(|c| chunk_id_refs(c, &tag, &[r]));
                let mut b = Vec::with_capacity(entry.len() + tag.len() + 48);
                mp::array_header(&mut b, if chunk.is_some() { 4 } else { 3 });
                mp::str(&mut b, &tag);
                self.write_time(r.timestamp(), &mut b);
                b.extend_from_slice(&entry);
                if let Some(c) = &chunk {
                    mp::map_header(&mut b, 1);
                    mp::str(&mut b, "chunk");
                    mp::str(&mut b, c);
                }
                enc.requests.push(Request {
                    bytes: b,
                    chunk,
                    records: vec![i],
                });
            }
            return enc;
        }
        // Group by tag, in order of first appearance. A group whose entries pass the chunk
        // size target (for a compressed one: also the request limit, uncompressed) is closed
        // and a new one opened for the same tag. The split is greedy from a tag's first
        // record, so re-encoding the records of a tag's last chunks alone (a partial resend)
        // cuts them at the same places and gives them the same chunk ids.
        let split_at = if self.s.mode == Mode::CompressedPackedForward {
            self.s.max_compressed_request_bytes.min(self.s.chunk_bytes)
        } else {
            self.s.chunk_bytes
        };
        let mut closed: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
        let mut groups: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
        for (i, r) in records.iter().map(Borrow::borrow).enumerate() {
            self.tag(r, &mut tag);
            let g = match groups.iter().position(|(t, _, _)| *t == tag) {
                Some(g) => g,
                None => {
                    groups.push((
                        tag.clone(),
                        Vec::with_capacity(
                            (records.len() * 160).min(split_at.saturating_add(4096)),
                        ),
                        Vec::new(),
                    ));
                    groups.len() - 1
                }
            };
            let (group_tag, buf, idx) = &mut groups[g];
            let before = buf.len();
            self.write_entry(r, buf);
            let len = buf.len() - before;
            if len > self.s.max_record_bytes {
                buf.truncate(before);
                enc.rejected.push((i, self.too_large(len)));
                continue;
            }
            if buf.len() > split_at && !idx.is_empty() {
                let entry = buf.split_off(before);
                let full = std::mem::replace(buf, entry);
                closed.push((group_tag.clone(), full, std::mem::take(idx)));
            }
            idx.push(i);
        }
        // Closed parts of a tag come before its open part: records keep their order.
        for (tag, entries, idx) in closed.into_iter().chain(groups) {
            if idx.is_empty() {
                continue;
            }
            let chunk = chunks.map(|c| {
                let group: Vec<&Record> = idx.iter().map(|&i| records[i].borrow()).collect();
                chunk_id_refs(c, &tag, &group)
            });
            let bytes = self.request(&tag, entries, idx.len(), chunk.as_deref());
            enc.requests.push(Request {
                bytes,
                chunk,
                records: idx,
            });
        }
        enc
    }

    fn too_large(&self, len: usize) -> String {
        format!(
            "record encodes to {len} bytes, above the {} bytes allowed by `with_max_record_bytes`",
            self.s.max_record_bytes
        )
    }

    /// Frames the entries of one tag as a Forward, PackedForward or CompressedPackedForward
    /// request with its option map.
    fn request(&self, tag: &str, entries: Vec<u8>, count: usize, chunk: Option<&str>) -> Vec<u8> {
        let compressed = self.s.mode == Mode::CompressedPackedForward;
        let body = if compressed { gzip(&entries) } else { entries };
        let mut b = Vec::with_capacity(body.len() + tag.len() + 64);
        mp::array_header(&mut b, 3);
        mp::str(&mut b, tag);
        match self.s.mode {
            Mode::Forward => mp::array_header(&mut b, count),
            _ => mp::bin_header(&mut b, body.len()),
        }
        b.extend_from_slice(&body);
        mp::map_header(
            &mut b,
            1 + usize::from(chunk.is_some()) + usize::from(compressed),
        );
        mp::str(&mut b, "size");
        mp::uint(&mut b, count as u64);
        if let Some(c) = chunk {
            mp::str(&mut b, "chunk");
            mp::str(&mut b, c);
        }
        if compressed {
            mp::str(&mut b, "compressed");
            mp::str(&mut b, "gzip");
        }
        b
    }
}

/// One gzip member (level 1: the blob is mostly repetitive keys, which even the fastest level
/// shrinks well).
fn gzip(data: &[u8]) -> Vec<u8> {
    logship_core::compress::gzip(data, 1)
}

fn write_tracking_id(out: &mut Vec<u8>, t: &TrackingId) {
    match t {
        TrackingId::Uuid(u) => {
            let mut buf = uuid_buf();
            mp::str(out, u.hyphenated().encode_lower(&mut buf));
        }
        TrackingId::Custom(s) => mp::str(out, s),
    }
}

fn uuid_buf() -> [u8; 36] {
    [0; 36]
}

/// A typed field value: integers stay integers, 128-bit ones outside 64 bits become text,
/// errors become `{"message": …, "sources": […]}`.
pub(crate) fn write_value(out: &mut Vec<u8>, v: Value<'_>) {
    match v {
        Value::Str(s) => mp::str(out, s),
        Value::I64(v) => mp::int(out, v),
        Value::U64(v) => mp::uint(out, v),
        Value::I128(v) => match i64::try_from(v) {
            Ok(v) => mp::int(out, v),
            Err(_) => match u64::try_from(v) {
                Ok(v) => mp::uint(out, v),
                Err(_) => mp::str(out, &v.to_string()),
            },
        },
        Value::U128(v) => match u64::try_from(v) {
            Ok(v) => mp::uint(out, v),
            Err(_) => mp::str(out, &v.to_string()),
        },
        Value::F64(v) => mp::f64(out, v),
        Value::Bool(v) => mp::bool(out, v),
        Value::Error(e) => {
            mp::map_header(out, 2);
            mp::str(out, "message");
            mp::str(out, &e.message);
            mp::str(out, "sources");
            mp::array_header(out, e.sources.len());
            for s in &e.sources {
                mp::str(out, s);
            }
        }
        other => mp::str(out, &other.to_string()),
    }
}

/// `[{"name": …, "category"?: …, "time_ns"?: …, "properties": {name: value}}]`.
fn write_snapshots(out: &mut Vec<u8>, r: &Record) {
    mp::array_header(out, r.snapshots().len());
    for s in r.snapshots() {
        mp::map_header(
            out,
            2 + usize::from(s.category.is_some()) + usize::from(s.time.is_some()),
        );
        mp::str(out, "name");
        mp::str(out, &s.name);
        if let Some(c) = &s.category {
            mp::str(out, "category");
            mp::str(out, c);
        }
        if let Some(t) = s.time {
            mp::str(out, "time_ns");
            mp::uint(out, t.as_nanos());
        }
        mp::str(out, "properties");
        mp::map_header(out, s.properties.len());
        for p in &s.properties {
            mp::str(out, &p.name);
            match &p.value {
                PropertyValue::String(v) => mp::str(out, v),
                PropertyValue::Integer(v) => mp::int(out, *v),
                PropertyValue::Double(v) => mp::f64(out, *v),
                PropertyValue::Boolean(v) => mp::bool(out, *v),
                PropertyValue::Timestamp(v) => mp::uint(out, *v),
                other => mp::str(out, &format!("{other:?}")),
            }
        }
    }
}

/// See [`ChunkIds`]: the request identity is its tag, record count, and the tracking ids (or
/// timestamps) of its first and last record, so a partial resend gets a fresh id.
fn chunk_id_refs(c: &ChunkIds, tag: &str, records: &[&Record]) -> String {
    let mut h = Sha256::new();
    h.update(c.salt);
    h.update(c.batch_id.to_be_bytes());
    h.update((tag.len() as u64).to_be_bytes());
    h.update(tag.as_bytes());
    h.update((records.len() as u64).to_be_bytes());
    for r in [records.first(), records.last()].into_iter().flatten() {
        h.update(r.timestamp().as_nanos().to_be_bytes());
        match r.tracking_id() {
            Some(TrackingId::Uuid(u)) => h.update(u.as_bytes()),
            Some(TrackingId::Custom(s)) => h.update(s.as_bytes()),
            None => {}
        }
    }
    let digest = h.finalize();
    base64::engine::general_purpose::STANDARD.encode(&digest[..16])
}

/// Longest tag label taken from a field value, in bytes.
const MAX_FIELD_LABEL: usize = 128;

/// Appends `value` as tag parts: letters, digits, `_` and `-` kept, `.` kept as the part
/// separator (no empty parts, none leading or trailing), anything else turned into `_`, at
/// most [`MAX_FIELD_LABEL`] bytes. Fluentd's own tags use these characters
/// (<https://docs.fluentd.org/configuration/config-file#how-do-the-match-patterns-work>); a
/// value with `*`, `{`, spaces or control characters could otherwise act on `<match>` patterns
/// or the tag's display.
fn push_tag_part(value: &str, out: &mut String) {
    let start = out.len();
    let mut last_dot = true;
    for c in value.chars() {
        if out.len() - start >= MAX_FIELD_LABEL {
            break;
        }
        match c {
            '.' if last_dot => {}
            '.' => {
                out.push('.');
                last_dot = true;
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => {
                out.push(c);
                last_dot = false;
            }
            _ => {
                out.push('_');
                last_dot = false;
            }
        }
    }
    if out.len() > start && out.ends_with('.') {
        out.pop();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use logship_core::{Level, Snapshot, SourceFqn};
    use rmpv::Value as V;
    use std::collections::BTreeSet;

    const T0: u64 = 1_700_000_000_123_456_789;

    fn enc(mode: Mode) -> Encoder {
        Encoder::new(EncodeSettings {
            tag_prefix: "app".into(),
            mode,
            ..EncodeSettings::default()
        })
    }

    fn simple() -> Record {
        Record::event(Level::INFO, "web")
            .with_timestamp(Timestamp::from_nanos(T0))
            .with_message("hi")
            .with_field("n", 7_i64)
            .build()
    }

    fn decode(b: &[u8]) -> V {
        let mut rd = b;
        let v = rmpv::decode::read_value(&mut rd).unwrap();
        assert!(rd.is_empty(), "trailing bytes");
        v
    }

    /// `[time, {"message":"hi","level":"INFO","target":"web","n":7}]`, byte for byte.
    const ENTRY: &[u8] = b"\x92\xd7\x00\x65\x53\xf1\x00\x07\x5b\xcd\x15\x84\xa7message\xa2hi\xa5level\xa4INFO\xa6target\xa3web\xa1n\x07";

    /// Records of two tags, interleaved, each a little over 100 bytes encoded.
    fn two_tags(n: u64) -> Vec<Record> {
        (0..n)
            .map(|i| {
                Record::event(Level::INFO, if i % 3 == 0 { "a" } else { "b" })
                    .with_timestamp(Timestamp::from_nanos(T0 + i))
                    .with_message(&"x".repeat(60 + (i % 7) as usize))
                    .with_field("i", i)
                    .build()
            })
            .collect()
    }

    #[test]
    fn chunks_stay_under_the_target_and_a_partial_resend_keeps_their_ids() {
        let mut e = enc(Mode::PackedForward);
        e.s.chunk_bytes = 4096;
        let records = two_tags(600);
        let ids = ChunkIds {
            salt: [3; 16],
            batch_id: 9,
        };
        let all = e.encode_batch(&records, Some(&ids));
        assert!(all.requests.len() > 10, "{}", all.requests.len());
        let mut seen: Vec<usize> = Vec::new();
        for r in &all.requests {
            // Framing adds a few bytes to the entries; the entries keep under the target.
            assert!(r.bytes.len() < 4096 + 64, "{}", r.bytes.len());
            seen.extend(&r.records);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..600).collect::<Vec<_>>(), "every record once");
        // Every suffix of the requests (what in-order acks leave unacknowledged), encoded
        // again alone, gives the same requests and chunk ids.
        for from in [1, all.requests.len() / 2, all.requests.len() - 1] {
            let mut idx: Vec<usize> = all.requests[from..]
                .iter()
                .flat_map(|r| r.records.iter().copied())
                .collect();
            idx.sort_unstable();
            let subset: Vec<&Record> = idx.iter().map(|&i| &records[i]).collect();
            let again = e.encode_batch(&subset, Some(&ids));
            let want: BTreeSet<&str> = all.requests[from..]
                .iter()
                .map(|r| r.chunk.as_deref().unwrap())
                .collect();
            let got: BTreeSet<&str> = again
                .requests
                .iter()
                .map(|r| r.chunk.as_deref().unwrap())
                .collect();
            assert_eq!(got, want, "resend of the requests from {from} on");
        }
        // Without a target: one request per tag.
        e.s.chunk_bytes = usize::MAX;
        assert_eq!(e.encode_batch(&records, Some(&ids)).requests.len(), 2);
    }

    #[test]
    fn golden_entry() {
        let mut out = Vec::new();
        enc(Mode::PackedForward).write_entry(&simple(), &mut out);
        assert_eq!(out, ENTRY);
    }

    #[test]
    fn golden_integer_time() {
        let e = Encoder::new(EncodeSettings {
            time: TimeFormat::Integer,
            ..EncodeSettings::default()
        });
        let mut out = Vec::new();
        e.write_time(Timestamp::from_nanos(T0), &mut out);
        assert_eq!(out, b"\xce\x65\x53\xf1\x00");
    }

    #[test]
    fn golden_packed_forward() {
        let e = enc(Mode::PackedForward).encode_batch(&[simple()], None);
        let mut want = b"\x93\xa7app.web\xc4".to_vec();
        want.push(ENTRY.len() as u8);
        want.extend_from_slice(ENTRY);
        want.extend_from_slice(b"\x81\xa4size\x01");
        assert_eq!(e.requests.len(), 1);
        assert_eq!(e.requests[0].bytes, want);
        assert_eq!(e.requests[0].records, [0]);
    }

    #[test]
    fn golden_forward() {
        let e = enc(Mode::Forward).encode_batch(&[simple(), simple()], None);
        let mut want = b"\x93\xa7app.web\x92".to_vec();
        want.extend_from_slice(ENTRY);
        want.extend_from_slice(ENTRY);
        want.extend_from_slice(b"\x81\xa4size\x02");
        assert_eq!(e.requests[0].bytes, want);
    }

    #[test]
    fn golden_message_with_chunk() {
        let ids = ChunkIds {
            salt: [7; 16],
            batch_id: 1,
        };
        let e = enc(Mode::Message).encode_batch(&[simple()], Some(&ids));
        let r = &e.requests[0];
        let chunk = r.chunk.clone().unwrap();
        assert_eq!(chunk.len(), 24);
        let mut want = b"\x94\xa7app.web".to_vec();
        want.extend_from_slice(&ENTRY[1..]);
        want.extend_from_slice(b"\x81\xa5chunk\xb8");
        want.extend_from_slice(chunk.as_bytes());
        assert_eq!(r.bytes, want);
        // Stable across attempts, different for another batch.
        let again = enc(Mode::Message).encode_batch(&[simple()], Some(&ids));
        assert_eq!(again.requests[0].chunk.as_deref(), Some(chunk.as_str()));
        let other =
            enc(Mode::Message).encode_batch(&[simple()], Some(&ChunkIds { batch_id: 2, ..ids }));
        assert_ne!(other.requests[0].chunk.as_deref(), Some(chunk.as_str()));
    }

    #[test]
    fn compressed_packed_forward_round_trips() {
        let ids = ChunkIds {
            salt: [1; 16],
            batch_id: 9,
        };
        let e = enc(Mode::CompressedPackedForward).encode_batch(&[simple(), simple()], Some(&ids));
        let v = decode(&e.requests[0].bytes);
        assert_eq!(v[0].as_str(), Some("app.web"));
        let V::Binary(blob) = &v[1] else {
            panic!("blob must be bin")
        };
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut plain)
            .unwrap();
        assert_eq!(plain, [ENTRY, ENTRY].concat());
        assert_eq!(v[2]["size"].as_u64(), Some(2));
        assert_eq!(v[2]["compressed"].as_str(), Some("gzip"));
        assert!(v[2]["chunk"].is_str(), "chunk must be str, never bin");
    }

    #[test]
    fn groups_by_tag_in_order() {
        let a = simple();
        let b = Record::event(Level::INFO, "db::pool")
            .with_message("x")
            .build();
        let e = enc(Mode::PackedForward).encode_batch(&[a.clone(), b, a], None);
        assert_eq!(e.requests.len(), 2);
        assert_eq!(decode(&e.requests[0].bytes)[0].as_str(), Some("app.web"));
        assert_eq!(e.requests[0].records, [0, 2]);
        assert_eq!(
            decode(&e.requests[1].bytes)[0].as_str(),
            Some("app.db.pool")
        );
        assert_eq!(e.requests[1].records, [1]);
    }

    #[test]
    fn tag_composition_follows_the_original() {
        let r = Record::event(Level::INFO, "follow")
            .with_field("route", "x.y")
            .build();
        let tag = |prefix: &str, label: TagLabel| {
            let e = Encoder::new(EncodeSettings {
                tag_prefix: prefix.into(),
                label,
                ..EncodeSettings::default()
            });
            let mut s = String::new();
            e.tag(&r, &mut s);
            s
        };
        assert_eq!(tag("app", TagLabel::Target), "app.follow");
        assert_eq!(tag("", TagLabel::Target), "follow");
        assert_eq!(tag("app", TagLabel::None), "app");
        assert_eq!(tag("app", TagLabel::Field("route".into())), "app.x.y");
        assert_eq!(tag("app", TagLabel::Field("absent".into())), "app.follow");
        let steer = |v: &str| {
            let r = Record::event(Level::INFO, "follow")
                .with_field("route", v)
                .build();
            let e = Encoder::new(EncodeSettings {
                tag_prefix: "app".into(),
                label: TagLabel::Field("route".into()),
                ..EncodeSettings::default()
            });
            let mut s = String::new();
            e.tag(&r, &mut s);
            s
        };
        assert_eq!(steer("a.**"), "app.a.__", "no glob characters");
        assert_eq!(steer("..x..y.."), "app.x.y", "no empty parts");
        assert_eq!(steer("x y\n{z}"), "app.x_y__z_");
        assert_eq!(steer("..."), "app.follow", "nothing left: the target");
        assert_eq!(steer(&"a".repeat(1000)).len(), "app.".len() + 128);
        assert_eq!(tag("app", TagLabel::Name), "app.event follow");
        assert_eq!(tag("", TagLabel::None), "logship");
    }

    #[test]
    fn typed_values_and_collisions() {
        let err = logship_core::ErrorChain {
            message: "boom".into(),
            sources: vec!["io".into()],
        };
        let r = Record::event(Level::WARN, "t")
            .with_message("m")
            .with_field("level", "custom")
            .with_field("neg", -5_i64)
            .with_field("big", u128::MAX)
            .with_field("mid", 1_i128 << 40)
            .with_field("f", 0.5_f64)
            .with_field("ok", true)
            .with_field("err", logship_core::FieldValue::Error(err))
            .build();
        let mut out = Vec::new();
        enc(Mode::PackedForward).write_record(&r, &mut out);
        let v = decode(&out);
        let m = v.as_map().unwrap();
        let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_str().unwrap()).collect();
        // A field named like a built-in key sits beside it, renamed (it used to replace it).
        assert_eq!(
            keys,
            [
                "message", "level", "target", "_level", "neg", "big", "mid", "f", "ok", "err"
            ]
        );
        assert_eq!(v["level"].as_str(), Some("WARN"));
        assert_eq!(v["_level"].as_str(), Some("custom"));
        assert_eq!(v["neg"].as_i64(), Some(-5));
        assert_eq!(v["big"].as_str(), Some(u128::MAX.to_string().as_str()));
        assert_eq!(v["mid"].as_i64(), Some(1 << 40));
        assert_eq!(v["f"].as_f64(), Some(0.5));
        assert_eq!(v["ok"].as_bool(), Some(true));
        assert_eq!(v["err"]["message"].as_str(), Some("boom"));
        assert_eq!(v["err"]["sources"][0].as_str(), Some("io"));
    }

    #[test]
    fn exclusion_goes_by_the_fields_own_name() {
        // `with_exclude(["level"])` leaves out the built-in key and a field of that name (not
        // renamed to `_level` and kept); a template key taken by a field renames the field.
        let e = Encoder::new(EncodeSettings {
            templates: vec![("sys_host".into(), Template::parse("{hostname}").unwrap())],
            exclude: vec!["level".into()],
            hostname: "web1".into(),
            ..EncodeSettings::default()
        });
        let r = Record::event(Level::INFO, "shop")
            .with_field("level", "gold")
            .with_field("sys_host", "theirs")
            .build();
        let mut out = Vec::new();
        e.write_record(&r, &mut out);
        let v = decode(&out);
        let keys: Vec<&str> = v
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str().unwrap())
            .collect();
        assert_eq!(keys, ["target", "sys_host", "_sys_host"]);
        assert_eq!(v["sys_host"].as_str(), Some("web1"));
        assert_eq!(v["_sys_host"].as_str(), Some("theirs"));
    }

    #[test]
    fn templates_exclude_and_conventional_fields() {
        let e = Encoder::new(EncodeSettings {
            templates: vec![
                ("sys_host".into(), Template::parse("{hostname}").unwrap()),
                ("where".into(), Template::parse("{module}:{line}").unwrap()),
            ],
            exclude: vec!["target".into(), "secret".into()],
            hostname: "web1".into(),
            ..EncodeSettings::default()
        });
        let r = Record::event(Level::INFO, "shop")
            .with_source_position("shop::cart", "src/cart.rs", 9)
            .with_field("secret", "x")
            .with_source_fqn(SourceFqn::parse("APPL=shop#SERVER=web1").unwrap())
            .with_correlator("order-1")
            .with_location("eu")
            .with_snapshot(
                Snapshot::new("order")
                    .with_category("sales")
                    .with_property("total", 9.5),
            )
            .build();
        let mut out = Vec::new();
        e.write_record(&r, &mut out);
        let v = decode(&out);
        assert_eq!(v["sys_host"].as_str(), Some("web1"));
        assert_eq!(v["where"].as_str(), Some("shop::cart:9"));
        assert!(v["target"].is_nil() && v["secret"].is_nil());
        assert_eq!(v["source_fqn"].as_str(), Some("APPL=shop#SERVER=web1"));
        assert_eq!(v["correlators"][0].as_str(), Some("order-1"));
        assert_eq!(v["location"].as_str(), Some("eu"));
        assert_eq!(v["snapshots"][0]["name"].as_str(), Some("order"));
        assert_eq!(v["snapshots"][0]["category"].as_str(), Some("sales"));
        assert_eq!(v["snapshots"][0]["properties"]["total"].as_f64(), Some(9.5));
    }

    #[test]
    fn span_timing_record() {
        let r = Record::span_timing(
            "checkout",
            Timestamp::from_nanos(T0),
            std::time::Duration::from_micros(1500),
        )
        .with_busy(std::time::Duration::from_micros(1000), true)
        .build();
        let mut out = Vec::new();
        enc(Mode::PackedForward).write_entry(&r, &mut out);
        let v = decode(&out);
        assert_eq!(v[1]["kind"].as_str(), Some("span_timing"));
        assert_eq!(v[1]["span"].as_str(), Some("checkout"));
        assert_eq!(v[1]["duration_ns"].as_u64(), Some(1_500_000));
        assert_eq!(v[1]["busy_ns"].as_u64(), Some(1_000_000));
        assert_eq!(v[1]["start_ns"].as_u64(), Some(T0));
        assert_eq!(v[1]["failed"].as_bool(), Some(true));
    }

    #[test]
    fn oversized_records_are_rejected_alone() {
        let e = Encoder::new(EncodeSettings {
            max_record_bytes: 64,
            ..EncodeSettings::default()
        });
        let big = Record::event(Level::INFO, "web")
            .with_message(&"x".repeat(100))
            .build();
        let out = e.encode_batch(&[simple(), big, simple()], None);
        assert_eq!(out.rejected.len(), 1);
        assert_eq!(out.rejected[0].0, 1);
        assert!(out.rejected[0].1.contains("with_max_record_bytes"));
        assert_eq!(out.requests[0].records, [0, 2]);
        let v = decode(&out.requests[0].bytes);
        assert_eq!(v[2]["size"].as_u64(), Some(2));
    }
}
