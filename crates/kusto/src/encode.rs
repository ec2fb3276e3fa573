//! Rows: one JSON object per record, one per line (`multijson`), with named, stable columns.
//!
//! The original handler sent positional CSV whose columns shifted whenever a record carried
//! an extra attribute (`originals.md` §1.2). Here every row has the same keys in the same
//! order, named after the table's columns, so a JSON ingestion mapping (or Kusto's identity
//! mapping, by column name) places every value in its column whatever the record holds.
//!
//! | column | Kusto type | from the record | absent |
//! |---|---|---|---|
//! | `Timestamp` | `datetime` | event time (span timings: close time), UTC, 100 ns ticks: `2026-01-02T03:04:05.1234567Z` | — |
//! | `Level` | `string` | `TRACE` … `ERROR` | — |
//! | `Target` | `string` | the target (module path by default) | — |
//! | `Message` | `string` | the message | `null` |
//! | `Fields` | `dynamic` | typed fields as an object; then the enclosing spans' fields, innermost first, a name already present winning | `{}` |
//! | `SpanName` | `string` | span timings: the closed span; events: the innermost enclosing span | `null` |
//! | `Duration` | `timespan` | span timings: wall time, `[d.]hh:mm:ss.fffffff` | `null` |
//! | `SourceFqn` | `string` | the resolved source FQN | `null` |
//! | `Correlators` | `dynamic` | array of strings | `[]` |
//! | `TrackingId` | `string` | the record's tracking id | `null` |
//! | `ParentTrackingId` | `string` | the enclosing span's tracking id | `null` |
//! | `Snapshots` | `dynamic` | `[{"name","category","time","properties":[{"name","type","value"}]}]`, `time` in ns since the epoch | `[]` |
//! | `Host` | `string` | this machine's host name | — |
//! | `Service` | `string` | [`with_service_name`](crate::KustoBuilder::with_service_name) | `null` |
//! | `Thread` | `string` | `name#n` (`#n` for unnamed threads; `n` is logship's thread number) | — |
//!
//! Field values keep their JSON type: integers stay integers (128-bit values outside ±2⁵³ and
//! non-finite floats become text), booleans stay booleans, errors become
//! `{"message","sources"}`.

use std::borrow::Borrow;
use std::io::Write as _;
use std::ops::Range;

use logship_core::{Record, RecordKind, Value};

/// The table schema: `(column, Kusto type)` in row order.
pub const COLUMNS: [(&str, &str); 15] = [
    ("Timestamp", "datetime"),
    ("Level", "string"),
    ("Target", "string"),
    ("Message", "string"),
    ("Fields", "dynamic"),
    ("SpanName", "string"),
    ("Duration", "timespan"),
    ("SourceFqn", "string"),
    ("Correlators", "dynamic"),
    ("TrackingId", "string"),
    ("ParentTrackingId", "string"),
    ("Snapshots", "dynamic"),
    ("Host", "string"),
    ("Service", "string"),
    ("Thread", "string"),
];

/// The control command that creates the table, or adds missing columns to an existing one:
/// `.create-merge table ['T'] (Timestamp:datetime, …)`.
pub fn create_table_command(table: &str) -> String {
    let cols: Vec<String> = COLUMNS.iter().map(|(c, t)| format!("{c}:{t}")).collect();
    format!(".create-merge table ['{table}'] ({})", cols.join(", "))
}

/// The control command that creates (or replaces) the JSON ingestion mapping `mapping` of
/// `table`, mapping each column from the property of the same name:
/// `.create-or-alter table ['T'] ingestion json mapping "m" '[{"column":"Timestamp","path":"$.Timestamp","datatype":"datetime"},…]'`.
pub fn create_mapping_command(table: &str, mapping: &str) -> String {
    let items: Vec<String> = COLUMNS
        .iter()
        .map(|(c, t)| format!(r#"{{"column":"{c}","path":"$.{c}","datatype":"{t}"}}"#))
        .collect();
    format!(
        ".create-or-alter table ['{table}'] ingestion json mapping \"{mapping}\" '[{}]'",
        items.join(",")
    )
}

/// Writes rows (what the layer's worker does for every record; public for benchmarks and
/// for tools that want the same rows). Host and service are fixed and kept pre-escaped.
#[derive(Debug, Clone)]
pub struct RowEncoder {
    host: Vec<u8>,
    service: Vec<u8>,
}

impl RowEncoder {
    /// An encoder writing `host` and `service` in every row.
    pub fn new(host: &str, service: Option<&str>) -> Self {
        let mut h = Vec::new();
        json_str(&mut h, host);
        let mut s = Vec::new();
        match service {
            Some(v) => json_str(&mut s, v),
            None => s.extend_from_slice(b"null"),
        }
        Self {
            host: h,
            service: s,
        }
    }

    /// Appends the row of `r` and a `\n` to `out`.
    ///
    /// # Errors
    /// Only if the snapshots cannot be serialised (then `out` is left as it was).
    pub fn encode(&self, r: &Record, out: &mut Vec<u8>) -> Result<(), String> {
        let start = out.len();
        let res = self.encode_inner(r, out);
        if res.is_err() {
            out.truncate(start);
        }
        res
    }

    fn encode_inner(&self, r: &Record, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(b"{\"Timestamp\":\"");
        write_datetime(out, r.timestamp().as_nanos());
        out.extend_from_slice(b"\",\"Level\":\"");
        out.extend_from_slice(r.level().as_str().as_bytes());
        out.extend_from_slice(b"\",\"Target\":");
        json_str(out, r.target());
        out.extend_from_slice(b",\"Message\":");
        opt_str(out, r.message());
        out.extend_from_slice(b",\"Fields\":{");
        let mut first = true;
        for (k, v) in r.fields() {
            field(out, &mut first, k, v);
        }
        let mut span_name = None;
        let spans: Vec<_> = r.spans().collect();
        if !spans.is_empty() {
            // Innermost span first; a name already written wins.
            let mut seen: Vec<&str> = r.fields().map(|(k, _)| k).collect();
            for s in spans.iter().rev() {
                for (k, v) in s.fields() {
                    if !seen.contains(&k) {
                        field(out, &mut first, k, v);
                        seen.push(k);
                    }
                }
            }
        }
        out.extend_from_slice(b"},\"SpanName\":");
        let mut duration = None;
        match r.kind() {
            RecordKind::SpanTiming => {
                span_name = Some(r.timed_span().map_or_else(|| r.name(), |s| s.name()));
                duration = r.timing().map(|t| t.duration);
            }
            _ => {
                if let Some(s) = spans.last() {
                    span_name = Some(s.name());
                }
            }
        }
        opt_str(out, span_name);
        out.extend_from_slice(b",\"Duration\":");
        match duration {
            Some(d) => {
                out.push(b'"');
                write_timespan(out, d);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"SourceFqn\":");
        opt_str(out, r.source_fqn().map(|f| f.as_str()));
        out.extend_from_slice(b",\"Correlators\":[");
        for (i, c) in r.correlators().iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json_str(out, c);
        }
        out.extend_from_slice(b"],\"TrackingId\":");
        match r.tracking_id() {
            Some(t) => json_display(out, t),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"ParentTrackingId\":");
        match r.parent_tracking_id() {
            Some(t) => json_display(out, t),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"Snapshots\":");
        serde_json::to_writer(&mut *out, r.snapshots())
            .map_err(|e| format!("cannot encode the snapshots: {e}"))?;
        out.extend_from_slice(b",\"Host\":");
        out.extend_from_slice(&self.host);
        out.extend_from_slice(b",\"Service\":");
        out.extend_from_slice(&self.service);
        out.extend_from_slice(b",\"Thread\":\"");
        let t = r.thread();
        if let Some(n) = t.name {
            escape_into(out, n);
        }
        let _ = writeln!(out, "#{}\"}}", t.id);
        Ok(())
    }
}

/// Rows of a batch split into request bodies of at most `max_bytes` (uncompressed).
#[derive(Debug, Default)]
pub(crate) struct Chunks {
    /// Uncompressed bodies, with the record indices each holds (in order).
    pub(crate) chunks: Vec<(Vec<u8>, Vec<usize>)>,
    /// Records whose own row is larger than `max_bytes`, with the row.
    pub(crate) oversized: Vec<(usize, Vec<u8>)>,
    /// Records that could not be encoded, with the reason.
    pub(crate) failed: Vec<(usize, String)>,
}

/// Encodes `records` (indices into the batch) into chunks of at most `max_bytes` each.
pub(crate) fn encode_chunks(
    enc: &RowEncoder,
    records: &[impl Borrow<Record>],
    indices: impl IntoIterator<Item = usize>,
    max_bytes: usize,
) -> Chunks {
    let mut out = Chunks::default();
    let mut cur: Vec<u8> = Vec::with_capacity(max_bytes.min(1 << 20));
    let mut cur_idx: Vec<usize> = Vec::new();
    for i in indices {
        let Some(r) = records.get(i).map(Borrow::borrow) else {
            continue;
        };
        let start = cur.len();
        if let Err(e) = enc.encode(r, &mut cur) {
            out.failed.push((i, e));
            continue;
        }
        let len = cur.len() - start;
        if len > max_bytes {
            let row = cur.split_off(start);
            out.oversized.push((i, row));
        } else if cur.len() > max_bytes {
            let row = cur.split_off(start);
            out.chunks.push((
                std::mem::replace(&mut cur, row),
                std::mem::take(&mut cur_idx),
            ));
            cur_idx.push(i);
        } else {
            cur_idx.push(i);
        }
    }
    if !cur_idx.is_empty() {
        out.chunks.push((cur, cur_idx));
    }
    out
}

/// gzip-compresses `data` (fast level: the request limit is on the uncompressed size, and the
/// worker's time matters more than a few percent of wire bytes).
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// A range helper for tests and the sink: all indices of a batch.
pub(crate) fn all(n: usize) -> Range<usize> {
    0..n
}

fn field(out: &mut Vec<u8>, first: &mut bool, k: &str, v: Value<'_>) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    json_str(out, k);
    out.push(b':');
    value(out, v);
}

fn value(out: &mut Vec<u8>, v: Value<'_>) {
    const SAFE: i128 = 1 << 53;
    match v {
        Value::Str(s) => json_str(out, s),
        Value::I64(v) => {
            let _ = write!(out, "{v}");
        }
        Value::U64(v) => {
            let _ = write!(out, "{v}");
        }
        Value::I128(v) if (-SAFE..=SAFE).contains(&v) => {
            let _ = write!(out, "{v}");
        }
        Value::U128(v) if v <= SAFE as u128 => {
            let _ = write!(out, "{v}");
        }
        Value::I128(v) => json_display(out, &v),
        Value::U128(v) => json_display(out, &v),
        Value::F64(v) if v.is_finite() => {
            let _ = serde_json::to_writer(&mut *out, &v);
        }
        Value::F64(v) => json_display(out, &v),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Error(e) => {
            out.extend_from_slice(b"{\"message\":");
            json_str(out, &e.message);
            out.extend_from_slice(b",\"sources\":[");
            for (i, s) in e.sources.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_str(out, s);
            }
            out.extend_from_slice(b"]}");
        }
        // `Value` is non-exhaustive: anything new becomes text through the core's JSON form.
        #[allow(unreachable_patterns)]
        other => {
            let _ = serde_json::to_writer(&mut *out, &logship_core::json::value_to_json(other));
        }
    }
}

fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn json_display(out: &mut Vec<u8>, v: &dyn std::fmt::Display) {
    json_str(out, &v.to_string());
}

/// Writes `s` as a JSON string, quotes included.
pub(crate) fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

/// Writes `s` JSON-escaped, without quotes.
fn escape_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// `YYYY-MM-DDThh:mm:ss.fffffffZ` (UTC, 100 ns ticks, Kusto's `datetime` precision).
pub(crate) fn write_datetime(out: &mut Vec<u8>, nanos: u64) {
    let secs = nanos / 1_000_000_000;
    let ticks = (nanos % 1_000_000_000) / 100;
    let days = secs / 86_400;
    let sod = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ticks:07}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
}

/// Kusto `timespan` text: `[d.]hh:mm:ss.fffffff`.
pub(crate) fn write_timespan(out: &mut Vec<u8>, d: std::time::Duration) {
    let secs = d.as_secs();
    let ticks = d.subsec_nanos() / 100;
    let days = secs / 86_400;
    let sod = secs % 86_400;
    if days > 0 {
        let _ = write!(out, "{days}.");
    }
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}.{ticks:07}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use logship_core::{ErrorChain, Level, Snapshot, Timestamp, TrackingId};
    use std::time::Duration;

    fn enc() -> RowEncoder {
        RowEncoder::new("web-1", Some("shop"))
    }

    fn row(r: &Record) -> String {
        let mut out = Vec::new();
        enc().encode(r, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    const T: u64 = 1_700_000_000_123_456_789;

    #[test]
    fn golden_event_row() {
        let r = Record::event(Level::WARN, "shop::orders")
            .with_timestamp(Timestamp::from_nanos(T))
            .with_message("order \"42\" placed\n")
            .with_field("order_id", 42_u64)
            .with_field("total", 99.5)
            .with_field("neg", -7_i64)
            .with_field("express", true)
            .with_field("note", "a\tb\u{1}")
            .with_correlator("order-42")
            .with_tracking_id(TrackingId::Custom("t-1".into()))
            .build();
        let thread = r.thread();
        let tname = thread.name.unwrap_or_default();
        let expected = format!(
            concat!(
                r#"{{"Timestamp":"2023-11-14T22:13:20.1234567Z","Level":"WARN","Target":"shop::orders","#,
                r#""Message":"order \"42\" placed\n","#,
                r#""Fields":{{"order_id":42,"total":99.5,"neg":-7,"express":true,"note":"a\tb\u0001"}},"#,
                r#""SpanName":null,"Duration":null,"SourceFqn":null,"Correlators":["order-42"],"#,
                r#""TrackingId":"t-1","ParentTrackingId":null,"Snapshots":[],"Host":"web-1","#,
                r#""Service":"shop","Thread":"{}#{}"}}"#,
                "\n"
            ),
            tname, thread.id
        );
        assert_eq!(row(&r), expected);
    }

    #[test]
    fn golden_span_timing_row() {
        let r = Record::span_timing(
            "checkout",
            Timestamp::from_nanos(T),
            Duration::from_micros(1_500_250),
        )
        .with_field("user", "ann")
        .build();
        let s = row(&r);
        assert!(
            s.starts_with(r#"{"Timestamp":"2023-11-14T22:13:21.6237067Z","Level":"INFO","Target":"checkout","Message":null,"Fields":{"user":"ann"},"SpanName":"checkout","Duration":"00:00:01.5002500","#),
            "{s}"
        );
    }

    #[test]
    fn snapshots_errors_and_big_numbers() {
        let chain = ErrorChain {
            message: "db down".into(),
            sources: vec!["io: refused".into()],
        };
        let r = Record::event(Level::ERROR, "t")
            .with_timestamp(Timestamp::from_nanos(0))
            .with_field("err", logship_core::FieldValue::Error(chain))
            .with_field("big", u128::MAX)
            .with_field("nan", f64::NAN)
            .with_snapshot(Snapshot::new("order").with_property("items", 3_i64))
            .build();
        let s = row(&r);
        assert!(
            s.contains(r#""Timestamp":"1970-01-01T00:00:00.0000000Z""#),
            "{s}"
        );
        assert!(
            s.contains(r#""Fields":{"err":{"message":"db down","sources":["io: refused"]},"big":"340282366920938463463374607431768211455","nan":"NaN"}"#),
            "{s}"
        );
        assert!(
            s.contains(r#""Snapshots":[{"name":"order","properties":[{"name":"items","type":"INTEGER","value":3}]}]"#),
            "{s}"
        );
        // Every row is one line of valid JSON with all 15 columns, in order.
        let v: serde_json::Value = serde_json::from_str(s.trim_end()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
        let mut got = keys.clone();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(s.matches('\n').count(), 1);
    }

    #[test]
    fn datetime_matches_chrono_over_centuries() {
        for nanos in [
            0,
            951_782_400_000_000_000,
            4_107_542_400_999_999_999,
            T,
            1_709_164_800_000_000_100,
        ] {
            let mut out = Vec::new();
            write_datetime(&mut out, nanos);
            let full = Timestamp::from_nanos(nanos)
                .to_chrono()
                .format("%Y-%m-%dT%H:%M:%S%.9f")
                .to_string();
            let want = format!("{}Z", &full[..full.len() - 2]);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn timespans() {
        let f = |d| {
            let mut o = Vec::new();
            write_timespan(&mut o, d);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(f(Duration::ZERO), "00:00:00.0000000");
        assert_eq!(f(Duration::from_nanos(199)), "00:00:00.0000001");
        assert_eq!(f(Duration::from_secs(3_723)), "01:02:03.0000000");
        assert_eq!(f(Duration::from_secs(2 * 86_400 + 1)), "2.00:00:01.0000000");
    }

    #[test]
    fn chunks_respect_the_limit_and_keep_order() {
        let records: Vec<Record> = (0..100)
            .map(|i| {
                Record::event(Level::INFO, "t")
                    .with_message(&"x".repeat(i * 10))
                    .build()
            })
            .collect();
        let mut one = Vec::new();
        enc().encode(&records[99], &mut one).unwrap();
        let limit = 4 * one.len();
        let c = encode_chunks(&enc(), &records, all(records.len()), limit);
        assert!(c.oversized.is_empty() && c.failed.is_empty());
        assert!(c.chunks.len() > 1);
        let mut seen = Vec::new();
        for (body, idx) in &c.chunks {
            assert!(body.len() <= limit, "{} > {limit}", body.len());
            assert_eq!(body.iter().filter(|b| **b == b'\n').count(), idx.len());
            seen.extend_from_slice(idx);
        }
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn oversized_rows_are_set_aside() {
        let records = vec![
            Record::event(Level::INFO, "t")
                .with_message("small")
                .build(),
            Record::event(Level::INFO, "t")
                .with_message(&"x".repeat(5000))
                .build(),
            Record::event(Level::INFO, "t")
                .with_message("small")
                .build(),
        ];
        let c = encode_chunks(&enc(), &records, all(3), 1000);
        assert_eq!(c.oversized.len(), 1);
        assert_eq!(c.oversized[0].0, 1);
        assert_eq!(c.chunks.len(), 1);
        assert_eq!(c.chunks[0].1, vec![0, 2]);
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read as _;
        let data = b"{\"a\":1}\n".repeat(1000);
        let z = gzip(&data);
        assert_eq!(&z[..2], &[0x1f, 0x8b]);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn commands_golden() {
        assert_eq!(
            create_table_command("Logs"),
            ".create-merge table ['Logs'] (Timestamp:datetime, Level:string, Target:string, Message:string, \
             Fields:dynamic, SpanName:string, Duration:timespan, SourceFqn:string, Correlators:dynamic, \
             TrackingId:string, ParentTrackingId:string, Snapshots:dynamic, Host:string, Service:string, \
             Thread:string)"
        );
        let m = create_mapping_command("Logs", "logship_v1");
        assert!(m.starts_with(
            r#".create-or-alter table ['Logs'] ingestion json mapping "logship_v1" '[{"column":"Timestamp","path":"$.Timestamp","datatype":"datetime"},{"column":"Level""#
        ));
        assert!(m.ends_with(r#"{"column":"Thread","path":"$.Thread","datatype":"string"}]'"#));
    }
}
