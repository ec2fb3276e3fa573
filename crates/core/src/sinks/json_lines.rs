use std::io::Write;

use smallvec::SmallVec;

use crate::json_text;
use crate::record::RecordKind;
use crate::sink::{Batch, Outcome, SendContext, Sink};
use crate::{Record, TrackingId, Value};

/// Writes each record as one line of JSON (the [`json`](crate::json) form) to any writer:
/// standard output, a file. For local debugging; write errors are retryable.
///
/// A batch is encoded into one buffer (kept between batches) and handed to the writer with one
/// `write_all` and one `flush`. Lines are written straight as text with
/// [`json_text`] (escaped strings, `itoa`/`ryu` numbers, RFC 3339 timestamps), with the keys in
/// the alphabetical order and the values of [`json::record_to_json`](crate::json::record_to_json):
/// the same line `serde_json` would print for that value, without building it.
///
/// ```
/// use logship_core::{PipelineBuilder, sinks::JsonLinesSink};
/// let (layer, guard) = PipelineBuilder::new().build(JsonLinesSink::stdout())?;
/// # drop(layer); drop(guard);
/// # Ok::<(), logship_core::ConfigError>(())
/// ```
pub struct JsonLinesSink {
    out: Box<dyn Write + Send>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for JsonLinesSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesSink").finish_non_exhaustive()
    }
}

impl JsonLinesSink {
    /// Writes to `out`.
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self {
            out: Box::new(out),
            buf: Vec::new(),
        }
    }
    /// Writes to standard output.
    pub fn stdout() -> Self {
        Self::new(std::io::stdout())
    }
}

impl Sink for JsonLinesSink {
    fn name(&self) -> &'static str {
        "json-lines"
    }

    async fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> Outcome {
        self.buf.clear();
        for r in batch.records() {
            write_line(&mut self.buf, r);
        }
        match self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush())
        {
            Ok(()) => {
                cx.record_bytes_sent(self.buf.len() as u64);
                Outcome::Delivered
            }
            Err(e) => Outcome::retry(format!("write failed: {e}")),
        }
    }
}

/// Fields of one object, sorted by name, a repeated name keeping its last value (what
/// collecting into `serde_json::Map`, a `BTreeMap`, keeps). Inline up to 16 fields.
type SortedFields<'a> = SmallVec<[(&'a str, Value<'a>); 16]>;

fn sorted_fields<'a>(fields: impl Iterator<Item = (&'a str, Value<'a>)>) -> SortedFields<'a> {
    let mut v: SortedFields<'a> = fields.collect();
    // Stable: equal names keep their order, so the last of a run is the last written.
    v.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = SortedFields::new();
    for (k, val) in v {
        match out.last_mut() {
            Some(last) if last.0 == k => last.1 = val,
            _ => out.push((k, val)),
        }
    }
    out
}

/// `"key":` preceded by a comma unless it is the object's first key.
#[inline]
fn key(out: &mut Vec<u8>, first: &mut bool, k: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn write_object(out: &mut Vec<u8>, fields: &SortedFields<'_>) {
    out.push(b'{');
    let mut first = true;
    for (k, v) in fields {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        json_text::write_str(out, k);
        out.push(b':');
        json_text::write_value(out, *v);
    }
    out.push(b'}');
}

fn write_quoted_time(out: &mut Vec<u8>, t: crate::Timestamp) {
    out.push(b'"');
    json_text::write_rfc3339_nanos(out, t);
    out.push(b'"');
}

fn write_tracking_id(out: &mut Vec<u8>, t: &TrackingId) {
    match t {
        TrackingId::Uuid(u) => {
            let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
            out.push(b'"');
            out.extend_from_slice(u.hyphenated().encode_lower(&mut buf).as_bytes());
            out.push(b'"');
        }
        TrackingId::Custom(s) => json_text::write_str(out, s),
    }
}

/// Appends `r` as one line of JSON with its `\n`: keys in alphabetical order, absent values
/// omitted, the values of [`json::record_to_json`](crate::json::record_to_json).
pub(crate) fn write_line(out: &mut Vec<u8>, r: &Record) {
    let first = &mut true;
    out.push(b'{');
    if !r.correlators().is_empty() {
        key(out, first, "correlators");
        out.push(b'[');
        for (i, c) in r.correlators().iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json_text::write_str(out, c);
        }
        out.push(b']');
    }
    let fields = sorted_fields(r.fields());
    if !fields.is_empty() {
        key(out, first, "fields");
        write_object(out, &fields);
    }
    if let Some(v) = r.file() {
        key(out, first, "file");
        json_text::write_str(out, v);
    }
    key(out, first, "kind");
    out.extend_from_slice(match r.kind() {
        RecordKind::Event => b"\"event\"",
        RecordKind::SpanTiming => b"\"span_timing\"",
    });
    key(out, first, "level");
    json_text::write_str(out, r.level().as_str());
    if let Some(v) = r.line() {
        key(out, first, "line");
        json_text::write_u64(out, u64::from(v));
    }
    if let Some(l) = r.location() {
        key(out, first, "location");
        json_text::write_str(out, l);
    }
    if let Some(msg) = r.message() {
        key(out, first, "message");
        json_text::write_str(out, msg);
    }
    if let Some(v) = r.module_path() {
        key(out, first, "module_path");
        json_text::write_str(out, v);
    }
    key(out, first, "name");
    json_text::write_str(out, r.name());
    if let Some(t) = r.parent_tracking_id() {
        key(out, first, "parent_tracking_id");
        write_tracking_id(out, t);
    }
    if !r.snapshots().is_empty() {
        key(out, first, "snapshots");
        // Rare: through serde_json's value, whose maps sort their keys as the rest of the line.
        let v = serde_json::to_value(r.snapshots()).unwrap_or(serde_json::Value::Null);
        if serde_json::to_writer(&mut *out, &v).is_err() {
            out.extend_from_slice(b"null");
        }
    }
    if let Some(f) = r.source_fqn() {
        key(out, first, "source_fqn");
        json_text::write_str(out, f.as_str());
    }
    let trace = r.trace_context();
    if let Some(t) = trace {
        key(out, first, "span_id");
        json_text::write_str(out, t.span_id_hex().as_str());
    }
    let mut spans = r.spans().peekable();
    if spans.peek().is_some() {
        key(out, first, "spans");
        out.push(b'[');
        for (i, s) in spans.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"fields\":");
            write_object(out, &sorted_fields(s.fields()));
            out.extend_from_slice(b",\"name\":");
            json_text::write_str(out, s.name());
            out.push(b'}');
        }
        out.push(b']');
    }
    key(out, first, "target");
    json_text::write_str(out, r.target());
    key(out, first, "thread");
    out.extend_from_slice(b"{\"id\":");
    json_text::write_u64(out, r.thread().id);
    out.extend_from_slice(b",\"name\":");
    match r.thread().name {
        Some(n) => json_text::write_str(out, n),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    key(out, first, "timestamp");
    write_quoted_time(out, r.timestamp());
    if let Some(t) = r.timing() {
        key(out, first, "timing");
        out.extend_from_slice(b"{\"busy_ns\":");
        json_text::write_u64(out, u64::try_from(t.busy.as_nanos()).unwrap_or(u64::MAX));
        out.extend_from_slice(b",\"duration_ns\":");
        json_text::write_u64(
            out,
            u64::try_from(t.duration.as_nanos()).unwrap_or(u64::MAX),
        );
        out.extend_from_slice(b",\"end\":");
        write_quoted_time(out, t.end);
        out.extend_from_slice(b",\"failed\":");
        out.extend_from_slice(if t.failed { b"true" } else { b"false" });
        out.extend_from_slice(b",\"start\":");
        write_quoted_time(out, t.start);
        out.push(b'}');
    }
    if let Some(t) = trace {
        key(out, first, "trace_id");
        json_text::write_str(out, t.trace_id_hex().as_str());
    }
    if let Some(t) = r.tracking_id() {
        key(out, first, "tracking_id");
        write_tracking_id(out, t);
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tracing_subscriber::prelude::*;

    use super::*;
    use crate::record::ErrorChain;
    use crate::{Level, Snapshot, SourceFqn, Timestamp, TraceContext};

    fn line(r: &Record) -> String {
        let mut out = Vec::new();
        write_line(&mut out, r);
        String::from_utf8(out).unwrap_or_default()
    }

    /// The line is what `serde_json` prints for `json::record_to_json` (byte for byte: same
    /// keys, order, escapes and numbers), so the direct writer changed nothing a reader sees.
    fn assert_same(r: &Record) {
        let want = crate::json::record_line(r, None);
        let got = line(r);
        assert_eq!(got, want);
        let parsed: serde_json::Value = serde_json::from_str(&got).unwrap_or_default();
        assert_eq!(parsed, crate::json::record_to_json(r));
    }

    #[test]
    fn lines_match_the_json_form_for_every_part_of_a_record() {
        let t = Timestamp::from_nanos(1_700_000_000_123_456_789);
        let err = ErrorChain {
            message: "boom \"x\"".into(),
            sources: vec!["io\n".into()],
        };
        let full = Record::event(Level::WARN, "shop::orders")
            .with_timestamp(t)
            .with_message("placed \u{1}\t\"é\"")
            .with_field("zeta", 1_u64)
            .with_field("alpha", "a\\b")
            .with_field("dup", 1_i64)
            .with_field("mid", -2.5)
            .with_field("dup", 2_i64)
            .with_field("nan", f64::NAN)
            .with_field("big", i128::MAX)
            .with_field("flag", false)
            .with_field("err", crate::record::FieldValue::Error(err))
            .with_correlator("c-1")
            .with_correlator("c\"2")
            .with_tracking_id(TrackingId::Custom("order-42".into()))
            .with_location("eu-west")
            .with_source_position("shop::orders", "src/orders.rs", 42)
            .with_snapshot(
                Snapshot::new("cart")
                    .with_category("sales")
                    .with_time(t)
                    .with_property("items", 3_i64)
                    .with_property("total", 9.5),
            )
            .with_trace_context(
                TraceContext::new([0x4b; 16], [0x0f; 8]).unwrap_or_else(|| panic!("ids")),
            );
        let full = match SourceFqn::parse("APPL=shop#SERVER=a") {
            Ok(f) => full.with_source_fqn(f),
            Err(_) => full,
        };
        assert_same(&full.build());
        assert_same(&Record::event(Level::INFO, "t").build());
        assert_same(
            &Record::span_timing("handle", t, Duration::from_micros(1500))
                .with_busy(Duration::from_micros(700), true)
                .with_tracking_id(TrackingId::new())
                .build(),
        );
    }

    #[test]
    fn lines_match_the_json_form_for_captured_events_in_spans() {
        let (sink, received) = crate::testing::MemorySink::new();
        let (layer, guard) = crate::PipelineBuilder::new()
            .with_span_timings(true)
            .build(sink)
            .unwrap_or_else(|e| panic!("{e}"));
        let sub = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(sub, || {
            let outer = tracing::info_span!("outer", tenant = "t1", n = 3_u64);
            let _o = outer.enter();
            let inner = tracing::info_span!("inner", b = 2, a = "x");
            let _i = inner.enter();
            tracing::info!(
                user = "ann",
                order_id = 42_u64,
                total = 99.5,
                express = true,
                items = 3_i64,
                "order placed"
            );
        });
        let _ = guard.flush(Duration::from_secs(10));
        let records = received.records();
        assert!(records.len() >= 3, "{}", records.len());
        for r in &records {
            assert_same(r);
        }
        // Writing a line allocates nothing once the buffer has room (the old path built a
        // `serde_json::Value` per record: a map node per key, a string per value).
        let mut out = Vec::with_capacity(1 << 16);
        for r in &records {
            write_line(&mut out, r);
        }
        out.clear();
        let info = allocation_counter::measure(|| {
            for r in &records {
                write_line(&mut out, r);
            }
        });
        assert_eq!(
            info.count_total,
            0,
            "allocations writing {} lines",
            records.len()
        );
        let old = allocation_counter::measure(|| {
            for r in &records {
                std::hint::black_box(crate::json::record_line(r, None));
            }
        });
        assert!(old.count_total > 0, "the counter counts on this thread");
        assert!(line(&records[0]).contains(r#""spans":[{"fields":{"n":3,"tenant":"t1"},"name":"outer"},{"fields":{"a":"x","b":2},"name":"inner"}]"#), "{}", line(&records[0]));
    }
}
