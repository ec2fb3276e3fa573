//! Rows: one JSON object per record, one per line (`multijson`), with named, stable columns.
//!
//! The original handler sent positional CSV whose columns shifted whenever a record carried
//! an extra attribute (the Python `KustoHandler` this crate succeeds). Here every row has the same keys in the same
//! order, named after the table's columns, so a JSON ingestion mapping (or Kusto's identity
//! mapping, by column name) places every value in its column whatever the record holds.
//!
//! | column | Kusto type | from the record | absent |
//! |---|---|---|---|
//! | `Timestamp` | `datetime` | event time (span timings: close time), UTC, 100 ns ticks: `2026-01-02T03:04:05.1234567Z` | — |
//! | `Level` | `string` | `TRACE` … `ERROR` (Python names with [`LevelNames::Python`]: `WARNING`) | — |
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
//! Then, opt-in: `LevelNo` ([`LEVEL_NO_COLUMN`], with [`LevelNames::Python`]) and the
//! [`CALL_SITE_COLUMNS`] (`File`, `Line`, `Module`, `ProcessId`, `ThreadName`, `ThreadId`);
//! with the `opentelemetry` feature, the [`TRACE_COLUMNS`] (`TraceId`, `SpanId`) last;
//! [`TableLayout`] lists a layout's columns and gives its commands.
//!
//! Field values keep their JSON type: integers stay integers (128-bit values outside ±2⁵³ and
//! non-finite floats become text), booleans stay booleans, errors become
//! `{"message","sources"}`.

use std::borrow::Borrow;

use flate2::{Compress, Compression, FlushCompress, Status};
use logship_core::{Record, RecordKind, TrackingId, Value, json_text};

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

/// The opt-in call-site columns ([`KustoBuilder::with_call_site_columns`](crate::KustoBuilder::with_call_site_columns)),
/// in row order after [`COLUMNS`]: what the original Python `KustoHandler`'s table held as
/// `pathname`, `lineno`, `module`, `process`, `threadName` and `thread`.
///
/// | column | Kusto type | value | absent |
/// |---|---|---|---|
/// | `File` | `string` | the callsite's source file as the compiler named it (`tracing::Metadata::file`), e.g. `src/orders.rs` | `null` |
/// | `Line` | `int` | the callsite's line (`tracing::Metadata::line`) | `null` |
/// | `Module` | `string` | the callsite's module path (`tracing::Metadata::module_path`), e.g. `shop::orders` | `null` |
/// | `ProcessId` | `long` | this process's id (`std::process::id`) | — |
/// | `ThreadName` | `string` | the thread's name | `null` |
/// | `ThreadId` | `long` | logship's number for the thread (unique in the process, from 1; **not** the OS thread id, which logship does not capture) | — |
///
/// There is no function-name column: `tracing` does not record the function of a callsite.
pub const CALL_SITE_COLUMNS: [(&str, &str); 6] = [
    ("File", "string"),
    ("Line", "int"),
    ("Module", "string"),
    ("ProcessId", "long"),
    ("ThreadName", "string"),
    ("ThreadId", "long"),
];

/// The OpenTelemetry columns, last in a row, written by default with the `opentelemetry`
/// feature ([`TableLayout::with_trace_columns`]): the W3C trace id (32 lowercase hex digits)
/// and span id (16) of the `tracing-opentelemetry` span the record belongs to
/// ([`Record::trace_context`]), `null` outside a traced span. Named as the OpenTelemetry log
/// data model names the fields (`TraceId`, `SpanId`:
/// <https://opentelemetry.io/docs/specs/otel/logs/data-model/#field-traceid>), in the
/// table's PascalCase (the OpenTelemetry Collector's Azure Data Explorer exporter spells them
/// `TraceID`/`SpanID` in its `OTELLogs` table, open-telemetry/opentelemetry-collector-contrib
/// `exporter/azuredataexplorerexporter`; a mapping can join the two).
///
/// | column | Kusto type | value | absent |
/// |---|---|---|---|
/// | `TraceId` | `string` | e.g. `4bf92f3577b34da6a3ce929d0e0e4736` | `null` |
/// | `SpanId` | `string` | e.g. `00f067aa0ba902b7` | `null` |
pub const TRACE_COLUMNS: [(&str, &str); 2] = [("TraceId", "string"), ("SpanId", "string")];

/// The column added by [`LevelNames::Python`], after [`COLUMNS`]: the Python `logging` level
/// number (`int`: 5 TRACE, 10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR), the original's `levelno`.
pub const LEVEL_NO_COLUMN: (&str, &str) = ("LevelNo", "int");

/// How the `Level` column names levels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LevelNames {
    /// `tracing`'s names: `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` (default).
    #[default]
    Tracing,
    /// Python `logging`'s names, as the original `KustoHandler` wrote them (`levelname`):
    /// `DEBUG`, `INFO`, `WARNING`, `ERROR`; `TRACE` (below Python's lowest standard level,
    /// number 5) stays `TRACE`, and `CRITICAL` never appears (`tracing` has no level above
    /// ERROR). Adds the [`LEVEL_NO_COLUMN`] (`LevelNo`). Names and numbers: the Python
    /// documentation, <https://docs.python.org/3/library/logging.html#logging-levels>.
    Python,
}

impl LevelNames {
    fn name(self, level: logship_core::Level) -> &'static str {
        use logship_core::Level;
        match (self, level) {
            (LevelNames::Python, l) if l == Level::WARN => "WARNING",
            (_, l) => l.as_str(),
        }
    }
}

/// The Python `logging` number of a level (see [`LEVEL_NO_COLUMN`]).
fn python_level_no(level: logship_core::Level) -> u64 {
    use logship_core::Level;
    match level {
        Level::TRACE => 5,
        Level::DEBUG => 10,
        Level::INFO => 20,
        Level::WARN => 30,
        _ => 40,
    }
}

/// Which columns a row has: [`COLUMNS`], then [`LEVEL_NO_COLUMN`] with
/// [`LevelNames::Python`], then [`CALL_SITE_COLUMNS`] when enabled. Built from the same
/// settings as the layer ([`KustoBuilder::with_call_site_columns`](crate::KustoBuilder::with_call_site_columns),
/// [`KustoBuilder::with_level_names`](crate::KustoBuilder::with_level_names)); gives the
/// table and mapping commands for that layout. With the `opentelemetry` feature the
/// [`TRACE_COLUMNS`] come last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableLayout {
    call_site: bool,
    level_names: LevelNames,
    trace: bool,
}

impl Default for TableLayout {
    fn default() -> Self {
        Self::new()
    }
}

impl TableLayout {
    /// The default layout: the 15 [`COLUMNS`], `tracing` level names; and the
    /// [`TRACE_COLUMNS`] when built with the `opentelemetry` feature.
    pub const fn new() -> Self {
        Self {
            call_site: false,
            level_names: LevelNames::Tracing,
            trace: cfg!(feature = "opentelemetry"),
        }
    }
    /// With (or without) the [`TRACE_COLUMNS`] (default: on with the `opentelemetry`
    /// feature). Without the feature records carry no ids, so the columns stay `null`.
    pub const fn with_trace_columns(self, on: bool) -> Self {
        Self { trace: on, ..self }
    }
    /// Whether the [`TRACE_COLUMNS`] are written.
    pub const fn trace_columns(&self) -> bool {
        self.trace
    }
    /// With (or without) the [`CALL_SITE_COLUMNS`].
    pub const fn with_call_site_columns(self, on: bool) -> Self {
        Self {
            call_site: on,
            ..self
        }
    }
    /// With these level names (Python adds [`LEVEL_NO_COLUMN`]).
    pub const fn with_level_names(self, names: LevelNames) -> Self {
        Self {
            level_names: names,
            ..self
        }
    }
    /// Whether the call-site columns are written.
    pub const fn call_site_columns(&self) -> bool {
        self.call_site
    }
    /// The level names of the `Level` column.
    pub const fn level_names(&self) -> LevelNames {
        self.level_names
    }
    /// The table schema, `(column, Kusto type)` in row order.
    pub fn columns(&self) -> Vec<(&'static str, &'static str)> {
        let mut cols = COLUMNS.to_vec();
        if self.level_names == LevelNames::Python {
            cols.push(LEVEL_NO_COLUMN);
        }
        if self.call_site {
            cols.extend_from_slice(&CALL_SITE_COLUMNS);
        }
        if self.trace {
            cols.extend_from_slice(&TRACE_COLUMNS);
        }
        cols
    }
    /// `.create-merge table ['T'] (Timestamp:datetime, …)`: creates the table, or adds the
    /// missing columns (at the end) to an existing one. Command:
    /// <https://learn.microsoft.com/kusto/management/create-merge-table-command>.
    pub fn create_table_command(&self, table: &str) -> String {
        let cols: Vec<String> = self
            .columns()
            .iter()
            .map(|(c, t)| format!("{c}:{t}"))
            .collect();
        format!(".create-merge table ['{table}'] ({})", cols.join(", "))
    }
    /// `.create-or-alter table ['T'] ingestion json mapping "m" '[…]'`, each column from the
    /// property of the same name. Command:
    /// <https://learn.microsoft.com/kusto/management/create-or-alter-ingestion-mapping-command>.
    pub fn create_mapping_command(&self, table: &str, mapping: &str) -> String {
        let items: Vec<String> = self
            .columns()
            .iter()
            .map(|(c, t)| format!(r#"{{"column":"{c}","path":"$.{c}","datatype":"{t}"}}"#))
            .collect();
        format!(
            ".create-or-alter table ['{table}'] ingestion json mapping \"{mapping}\" '[{}]'",
            items.join(",")
        )
    }
}

/// The columns of the table the original Python `KustoHandler` asked its users to create, in
/// its order, and the logship property each is filled from (`None`: nothing logship sends
/// fills it; the column stays empty).
pub const KUSTO_HANDLER_COLUMNS: [(&str, &str, Option<&str>); 23] = [
    ("name", "string", Some("Target")),
    ("msg", "string", Some("Message")),
    ("args", "string", None),
    ("levelname", "string", Some("Level")),
    ("levelno", "int", Some("LevelNo")),
    ("pathname", "string", Some("File")),
    ("filename", "string", None),
    ("module", "string", Some("Module")),
    ("exc_info", "string", None),
    ("exc_text", "string", None),
    ("stack_info", "string", None),
    ("lineno", "int", Some("Line")),
    ("funcName", "string", None),
    ("created", "datetime", Some("Timestamp")),
    ("msecs", "real", None),
    ("relativeCreated", "datetime", None),
    ("thread", "long", Some("ThreadId")),
    ("threadName", "string", Some("ThreadName")),
    ("processName", "string", None),
    ("process", "long", Some("ProcessId")),
    ("message", "string", Some("Message")),
    ("asctime", "datetime", None),
    ("extra", "dynamic", Some("Fields")),
];

/// The JSON ingestion mapping that writes logship's rows into the table of the original
/// Python `KustoHandler` (its columns: [`KUSTO_HANDLER_COLUMNS`]), so a user of it keeps their
/// table: `.create-or-alter table ['T'] ingestion json mapping "m" '[{"column":"name","path":"$.Target"},…]'`.
/// Use it with [`LevelNames::Python`] and the call-site columns on, and
/// [`with_mapping_name`](crate::KustoBuilder::with_mapping_name)`(m)`. Columns nothing fills
/// (`args`, `filename`, `exc_info`, `exc_text`, `stack_info`, `funcName`, `msecs`,
/// `relativeCreated`, `processName`, `asctime`) are left out of the mapping and stay empty.
/// Leave [`with_create_table`](crate::KustoBuilder::with_create_table) off with it: that would
/// add logship's columns to the old table and replace this mapping with logship's own.
pub fn kusto_handler_mapping_command(table: &str, mapping: &str) -> String {
    let items: Vec<String> = KUSTO_HANDLER_COLUMNS
        .iter()
        .filter_map(|(c, _, from)| from.map(|p| format!(r#"{{"column":"{c}","path":"$.{p}"}}"#)))
        .collect();
    format!(
        ".create-or-alter table ['{table}'] ingestion json mapping \"{mapping}\" '[{}]'",
        items.join(",")
    )
}

/// The control command that creates the table, or adds missing columns to an existing one:
/// `.create-merge table ['T'] (Timestamp:datetime, …)` (the default [`TableLayout`]).
pub fn create_table_command(table: &str) -> String {
    TableLayout::new().create_table_command(table)
}

/// The control command that creates (or replaces) the JSON ingestion mapping `mapping` of
/// `table`, mapping each column from the property of the same name (the default
/// [`TableLayout`]):
/// `.create-or-alter table ['T'] ingestion json mapping "m" '[{"column":"Timestamp","path":"$.Timestamp","datatype":"datetime"},…]'`.
pub fn create_mapping_command(table: &str, mapping: &str) -> String {
    TableLayout::new().create_mapping_command(table, mapping)
}

/// Writes rows (what the layer's worker does for every record; public for benchmarks and
/// for tools that want the same rows). Host and service are fixed and kept pre-escaped.
#[derive(Debug, Clone)]
pub struct RowEncoder {
    host: Vec<u8>,
    service: Vec<u8>,
    layout: TableLayout,
    process_id: u32,
}

impl RowEncoder {
    /// An encoder writing `host` and `service` in every row.
    pub fn new(host: &str, service: Option<&str>) -> Self {
        let mut h = Vec::new();
        json_text::write_str(&mut h, host);
        let mut s = Vec::new();
        match service {
            Some(v) => json_text::write_str(&mut s, v),
            None => s.extend_from_slice(b"null"),
        }
        Self {
            host: h,
            service: s,
            layout: TableLayout::new(),
            process_id: std::process::id(),
        }
    }

    /// The same encoder writing the columns of `layout` (default: [`TableLayout::new`]).
    pub fn with_layout(self, layout: TableLayout) -> Self {
        Self { layout, ..self }
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
        json_text::write_rfc3339_ticks(out, r.timestamp());
        out.extend_from_slice(b"\",\"Level\":\"");
        out.extend_from_slice(self.layout.level_names.name(r.level()).as_bytes());
        out.extend_from_slice(b"\",\"Target\":");
        json_text::write_str(out, r.target());
        out.extend_from_slice(b",\"Message\":");
        opt_str(out, r.message());
        out.extend_from_slice(b",\"Fields\":{");
        let mut first = true;
        for (k, v) in r.fields() {
            field(out, &mut first, k, v);
        }
        // Outermost first; empty (no allocation) for a record outside any span.
        let spans: Vec<_> = r.spans().collect();
        // Innermost span first; a name already written (or skipped as a repeat) wins.
        for (j, s) in spans.iter().enumerate().rev() {
            for (p, (k, v)) in s.fields().enumerate() {
                let repeat = r.fields().any(|(n, _)| n == k)
                    || spans[j + 1..]
                        .iter()
                        .any(|inner| inner.fields().any(|(n, _)| n == k))
                    || s.fields().take(p).any(|(n, _)| n == k);
                if !repeat {
                    field(out, &mut first, k, v);
                }
            }
        }
        out.extend_from_slice(b"},\"SpanName\":");
        let (span_name, duration) = match r.kind() {
            RecordKind::SpanTiming => (
                Some(r.timed_span().map_or_else(|| r.name(), |s| s.name())),
                r.timing().map(|t| t.duration),
            ),
            _ => (spans.last().map(|s| s.name()), None),
        };
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
            json_text::write_str(out, c);
        }
        out.extend_from_slice(b"],\"TrackingId\":");
        opt_tracking_id(out, r.tracking_id());
        out.extend_from_slice(b",\"ParentTrackingId\":");
        opt_tracking_id(out, r.parent_tracking_id());
        out.extend_from_slice(b",\"Snapshots\":");
        if r.snapshots().is_empty() {
            out.extend_from_slice(b"[]");
        } else {
            serde_json::to_writer(&mut *out, r.snapshots())
                .map_err(|e| format!("cannot encode the snapshots: {e}"))?;
        }
        out.extend_from_slice(b",\"Host\":");
        out.extend_from_slice(&self.host);
        out.extend_from_slice(b",\"Service\":");
        out.extend_from_slice(&self.service);
        out.extend_from_slice(b",\"Thread\":\"");
        let t = r.thread();
        if let Some(n) = t.name {
            json_text::write_escaped(out, n);
        }
        out.push(b'#');
        json_text::write_u64(out, t.id);
        out.push(b'"');
        if self.layout.level_names == LevelNames::Python {
            out.extend_from_slice(b",\"LevelNo\":");
            json_text::write_u64(out, python_level_no(r.level()));
        }
        if self.layout.call_site {
            out.extend_from_slice(b",\"File\":");
            opt_str(out, r.file());
            out.extend_from_slice(b",\"Line\":");
            match r.line() {
                Some(l) => json_text::write_u64(out, u64::from(l)),
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b",\"Module\":");
            opt_str(out, r.module_path());
            out.extend_from_slice(b",\"ProcessId\":");
            json_text::write_u64(out, u64::from(self.process_id));
            out.extend_from_slice(b",\"ThreadName\":");
            opt_str(out, t.name);
            out.extend_from_slice(b",\"ThreadId\":");
            json_text::write_u64(out, t.id);
        }
        if self.layout.trace {
            let tc = r.trace_context();
            out.extend_from_slice(b",\"TraceId\":");
            opt_str(
                out,
                tc.map(|t| t.trace_id_hex()).as_ref().map(|h| h.as_str()),
            );
            out.extend_from_slice(b",\"SpanId\":");
            opt_str(
                out,
                tc.map(|t| t.span_id_hex()).as_ref().map(|h| h.as_str()),
            );
        }
        out.extend_from_slice(b"}\n");
        Ok(())
    }
}

/// One streaming request's body: the gzip (RFC 1952) of whole rows, in record order.
#[derive(Debug)]
pub struct Request {
    /// The gzip member: header, deflate stream, CRC-32 and size trailer.
    pub gzip: Vec<u8>,
    /// The uncompressed size of the rows, in bytes (at most the `max_bytes` given to
    /// [`BatchEncoder::encode`]).
    pub raw_len: usize,
    /// The indices (into the batch) of the records whose rows it holds, ascending.
    pub records: Vec<usize>,
}

/// A batch's rows, split into requests.
#[derive(Debug, Default)]
pub struct EncodedBatch {
    /// Request bodies, in record order.
    pub requests: Vec<Request>,
    /// Records whose own row is larger than `max_bytes`, with the row (uncompressed).
    pub oversized: Vec<(usize, Vec<u8>)>,
    /// Records that could not be encoded (or, should the compressor fail, compressed),
    /// with the reason.
    pub failed: Vec<(usize, String)>,
}

/// gzip's default compression level: `fast` (the request limit is on the uncompressed size,
/// and the worker's time matters more than a few percent of wire bytes); see
/// [`KustoBuilder::with_gzip_level`](crate::KustoBuilder::with_gzip_level).
pub(crate) const GZIP_LEVEL: u32 = 1;

/// The gzip member header at `level`: deflate, no name or time, XFL = 4 ("fastest") at levels
/// 0 and 1, 2 ("maximum compression") at 9, else 0; OS = unknown — what `flate2::GzEncoder`
/// writes (RFC 1952 §2.3.1).
const fn gzip_header(level: u32) -> [u8; 10] {
    let xfl = match level {
        0..=1 => 4,
        9.. => 2,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// The header at the default level.
#[cfg(test)]
const GZIP_HEADER: [u8; 10] = gzip_header(GZIP_LEVEL);

/// Rows are written into a staging buffer of about this size (it stays in the CPU's cache)
/// and compressed from there, so the uncompressed batch never exists as a whole.
const STAGE_BYTES: usize = 64 * 1024;

/// Output room kept free before each call into the compressor.
const MIN_SPARE: usize = 16 * 1024;

/// Encodes batches into gzip request bodies, compressing while it encodes; keeps its
/// compressor and staging buffer from one batch to the next (what the layer's worker does;
/// public for benchmarks).
pub struct BatchEncoder {
    z: Compress,
    /// The deflate level (0 ..= 9).
    level: u32,
    staging: Vec<u8>,
    /// Compressed / uncompressed size of the last request, in 1/1024ths (to size the next
    /// request's buffer).
    ratio: usize,
}

impl std::fmt::Debug for BatchEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchEncoder")
            .field("staging_capacity", &self.staging.capacity())
            .finish_non_exhaustive()
    }
}

impl Default for BatchEncoder {
    fn default() -> Self {
        Self::new()
    }
}

/// The request being filled.
struct Open {
    /// Initialised (zeroed) ahead of the compressor: `flate2`'s `compress_vec` would zero all
    /// of a `Vec`'s spare capacity on every call with the zlib-rs backend.
    gzip: Vec<u8>,
    /// The end of the compressed bytes in `gzip`.
    pos: usize,
    /// The CRC-32 of the rows (gzip's trailer): `crc32fast`, which uses the CPU's carry-less
    /// multiply when it has one; `flate2::Crc` on the zlib-rs backend took the portable
    /// byte-table path here (a fifth of the worker's time in the profile).
    crc: crc32fast::Hasher,
    raw_len: usize,
    records: Vec<usize>,
    error: Option<String>,
}

impl BatchEncoder {
    /// A new encoder (gzip level 1, `fast`).
    pub fn new() -> Self {
        Self::with_level(GZIP_LEVEL)
    }

    /// A new encoder compressing at `level` (0 = stored ..= 9 = smallest; larger values are
    /// taken as 9).
    pub fn with_level(level: u32) -> Self {
        let level = level.min(9);
        Self {
            z: Compress::new(Compression::new(level), false),
            level,
            staging: Vec::with_capacity(2 * STAGE_BYTES),
            ratio: 256,
        }
    }

    /// Encodes `records` with `rows` into gzip requests of at most `max_bytes` of rows each
    /// (uncompressed); a row that would take a request past `max_bytes` starts the next one.
    /// A row longer than `max_bytes` on its own is set aside uncompressed
    /// ([`EncodedBatch::oversized`]); a record that cannot be encoded is listed in
    /// [`EncodedBatch::failed`] and the others go on. With `raw`, the uncompressed bodies of
    /// the requests are appended to it, in order.
    pub fn encode(
        &mut self,
        rows: &RowEncoder,
        records: &[impl Borrow<Record>],
        max_bytes: usize,
        mut raw: Option<&mut Vec<u8>>,
    ) -> EncodedBatch {
        let mut out = EncodedBatch::default();
        let mut open: Option<Open> = None;
        self.staging.clear();
        for (i, r) in records.iter().map(Borrow::borrow).enumerate() {
            let start = self.staging.len();
            if let Err(e) = rows.encode(r, &mut self.staging) {
                out.failed.push((i, e));
                continue;
            }
            let len = self.staging.len() - start;
            if len > max_bytes {
                out.oversized.push((i, self.staging[start..].to_vec()));
                self.staging.truncate(start);
                continue;
            }
            let fits = open.as_ref().is_some_and(|o| o.raw_len + len <= max_bytes);
            if !fits {
                if let Some(mut o) = open.take() {
                    self.deflate(&mut o, ..start, raw.as_deref_mut());
                    self.finish(o, &mut out);
                    self.staging.drain(..start);
                }
                let guess = (records.len() - i).saturating_mul(len).min(max_bytes);
                open = Some(self.begin(guess));
            }
            if let Some(o) = open.as_mut() {
                o.raw_len += len;
                o.records.push(i);
                if self.staging.len() >= STAGE_BYTES {
                    self.deflate(o, .., raw.as_deref_mut());
                    self.staging.clear();
                }
            }
        }
        if let Some(mut o) = open.take() {
            self.deflate(&mut o, .., raw);
            self.finish(o, &mut out);
        }
        self.staging.clear();
        if self.staging.capacity() > 4 * STAGE_BYTES {
            // A huge row passed through: do not keep its memory for the layer's lifetime.
            self.staging.shrink_to(2 * STAGE_BYTES);
        }
        out
    }

    /// Starts a request expected to hold about `raw_guess` bytes of rows.
    fn begin(&mut self, raw_guess: usize) -> Open {
        self.z.reset();
        let cap = raw_guess / 1024 * self.ratio.clamp(16, 1024) + raw_guess / 16 + MIN_SPARE;
        // Zeroed by the allocator (large buffers come as fresh pages, with no writes).
        let mut gzip = vec![0; cap];
        let header = gzip_header(self.level);
        gzip[..header.len()].copy_from_slice(&header);
        Open {
            gzip,
            pos: header.len(),
            crc: crc32fast::Hasher::new(),
            raw_len: 0,
            records: Vec::new(),
            error: None,
        }
    }

    /// Compresses the staged bytes in `range` into `o`.
    fn deflate(
        &mut self,
        o: &mut Open,
        range: impl std::slice::SliceIndex<[u8], Output = [u8]>,
        raw: Option<&mut Vec<u8>>,
    ) {
        let Some(data) = self.staging.get(range) else {
            return;
        };
        if let Some(raw) = raw {
            raw.extend_from_slice(data);
        }
        o.crc.update(data);
        run(&mut self.z, o, data, FlushCompress::None);
    }

    /// Ends the deflate stream, appends the trailer and hands the request to `out`.
    fn finish(&mut self, mut o: Open, out: &mut EncodedBatch) {
        run(&mut self.z, &mut o, &[], FlushCompress::Finish);
        match o.error {
            None => {
                o.gzip.truncate(o.pos);
                // ISIZE: the uncompressed size modulo 2^32 (RFC 1952 §2.3.1).
                let isize = (o.raw_len & 0xffff_ffff) as u32;
                o.gzip
                    .extend_from_slice(&o.crc.clone().finalize().to_le_bytes());
                o.gzip.extend_from_slice(&isize.to_le_bytes());
                if let Some(r) = o.gzip.len().saturating_mul(1024).checked_div(o.raw_len) {
                    self.ratio = r.max(1);
                }
                out.requests.push(Request {
                    gzip: o.gzip,
                    raw_len: o.raw_len,
                    records: o.records,
                });
            }
            Some(reason) => {
                // A new stream for the next request: this one is in an unknown state.
                self.z = Compress::new(Compression::new(self.level), false);
                out.failed
                    .extend(o.records.into_iter().map(|i| (i, reason.clone())));
            }
        }
    }
}

/// Feeds `data` to the compressor (and with `Finish`, ends the stream), growing `o.gzip` as
/// needed. A compressor error, or a call that makes no progress with room to spare, is
/// recorded in `o.error` (the request is then not sent).
fn run(z: &mut Compress, o: &mut Open, mut data: &[u8], flush: FlushCompress) {
    if o.error.is_some() {
        return;
    }
    loop {
        if o.gzip.len() - o.pos < MIN_SPARE {
            o.gzip
                .resize(o.gzip.len() + o.gzip.len().max(4 * MIN_SPARE), 0);
        }
        let (in_before, out_before) = (z.total_in(), z.total_out());
        let res = z.compress(data, &mut o.gzip[o.pos..], flush);
        let used = usize::try_from(z.total_in() - in_before).unwrap_or(usize::MAX);
        let produced = usize::try_from(z.total_out() - out_before).unwrap_or(usize::MAX);
        o.pos = o.pos.saturating_add(produced).min(o.gzip.len());
        let progress = used > 0 || produced > 0;
        data = data.get(used..).unwrap_or_default();
        match res {
            Ok(Status::StreamEnd) => return,
            Ok(_) if flush == FlushCompress::None && data.is_empty() => return,
            Ok(_) if progress => {}
            Ok(_) => {
                o.error = Some("gzip: the compressor made no progress".into());
                return;
            }
            Err(e) => {
                o.error = Some(format!("gzip: {e}"));
                return;
            }
        }
    }
}

fn field(out: &mut Vec<u8>, first: &mut bool, k: &str, v: Value<'_>) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    json_text::write_str(out, k);
    out.push(b':');
    value(out, v);
}

/// A field value: the core's JSON form of a value (`json_text::write_value`: 128-bit integers
/// beyond ±2⁵³ and non-finite floats as text, errors as `{"message","sources"}`).
fn value(out: &mut Vec<u8>, v: Value<'_>) {
    json_text::write_value(out, v);
}

fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_text::write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// A tracking id as a JSON string (a UUID in its lowercase hyphenated form), or `null`.
fn opt_tracking_id(out: &mut Vec<u8>, t: Option<&TrackingId>) {
    match t {
        Some(TrackingId::Uuid(u)) => {
            let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
            out.push(b'"');
            out.extend_from_slice(u.hyphenated().encode_lower(&mut buf).as_bytes());
            out.push(b'"');
        }
        Some(TrackingId::Custom(s)) => json_text::write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// Kusto `timespan` text: `[d.]hh:mm:ss.fffffff` (100 ns ticks, truncated).
pub(crate) fn write_timespan(out: &mut Vec<u8>, d: std::time::Duration) {
    let secs = d.as_secs();
    let days = secs / 86_400;
    let sod = secs % 86_400;
    if days > 0 {
        json_text::write_u64(out, days);
        out.push(b'.');
    }
    let mut buf = *b"00:00:00.0000000";
    json_text::write_digits(&mut buf[0..2], sod / 3600);
    json_text::write_digits(&mut buf[3..5], sod / 60 % 60);
    json_text::write_digits(&mut buf[6..8], sod % 60);
    json_text::write_digits(&mut buf[9..16], u64::from(d.subsec_nanos() / 100));
    out.extend_from_slice(&buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use logship_core::{ErrorChain, Level, Snapshot, Timestamp, TrackingId};
    use std::time::Duration;

    /// The 15-column layout, whatever the features (the trace columns have their own tests).
    fn enc() -> RowEncoder {
        RowEncoder::new("web-1", Some("shop"))
            .with_layout(TableLayout::new().with_trace_columns(false))
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
    fn opt_in_columns_follow_the_layout() {
        let r = Record::event(Level::WARN, "shop::orders")
            .with_timestamp(Timestamp::from_nanos(T))
            .with_source_position("shop::orders", "src/orders.rs", 7)
            .build();
        for call_site in [false, true] {
            for names in [LevelNames::Tracing, LevelNames::Python] {
                let layout = TableLayout::new()
                    .with_call_site_columns(call_site)
                    .with_level_names(names);
                let mut out = Vec::new();
                enc().with_layout(layout).encode(&r, &mut out).unwrap();
                let text = String::from_utf8(out).unwrap();
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                let obj = v.as_object().unwrap();
                let want: Vec<&str> = layout.columns().iter().map(|(c, _)| *c).collect();
                assert_eq!(obj.len(), want.len(), "{text}");
                // Keys in the schema's order.
                let mut at = 0;
                for c in &want {
                    let i = text[at..]
                        .find(&format!("\"{c}\":"))
                        .unwrap_or_else(|| panic!("{c} missing or out of order: {text}"));
                    at += i;
                }
                let level = if names == LevelNames::Python {
                    "WARNING"
                } else {
                    "WARN"
                };
                assert_eq!(v["Level"], level);
                assert_eq!(obj.contains_key("LevelNo"), names == LevelNames::Python);
                if names == LevelNames::Python {
                    assert_eq!(v["LevelNo"], 30);
                }
                if call_site {
                    assert_eq!(v["File"], "src/orders.rs");
                    assert_eq!(v["Line"], 7);
                    assert_eq!(v["Module"], "shop::orders");
                    assert_eq!(v["ProcessId"], std::process::id());
                    assert_eq!(v["ThreadId"], r.thread().id);
                }
            }
        }
        // A record without a callsite: the call-site columns are null.
        let bare = Record::event(Level::ERROR, "t").build();
        let mut out = Vec::new();
        enc()
            .with_layout(TableLayout::new().with_call_site_columns(true))
            .encode(&bare, &mut out)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (&v["File"], &v["Line"], &v["Module"]),
            (
                &serde_json::Value::Null,
                &serde_json::Value::Null,
                &serde_json::Value::Null
            )
        );
    }

    #[test]
    fn python_level_names_and_numbers() {
        for (level, name, no) in [
            (Level::TRACE, "TRACE", 5),
            (Level::DEBUG, "DEBUG", 10),
            (Level::INFO, "INFO", 20),
            (Level::WARN, "WARNING", 30),
            (Level::ERROR, "ERROR", 40),
        ] {
            assert_eq!(LevelNames::Python.name(level), name);
            assert_eq!(python_level_no(level), no);
            assert_eq!(LevelNames::Tracing.name(level), level.as_str());
        }
    }

    #[test]
    fn commands_follow_the_layout() {
        let l = TableLayout::new()
            .with_call_site_columns(true)
            .with_level_names(LevelNames::Python)
            .with_trace_columns(false);
        let t = l.create_table_command("T");
        assert!(
            t.ends_with("Thread:string, LevelNo:int, File:string, Line:int, Module:string, ProcessId:long, ThreadName:string, ThreadId:long)"),
            "{t}"
        );
        assert_eq!(
            create_table_command("T"),
            TableLayout::new().create_table_command("T")
        );
        let m = l.create_mapping_command("T", "m");
        assert!(
            m.contains(r#"{"column":"ThreadId","path":"$.ThreadId","datatype":"long"}]'"#),
            "{m}"
        );
        let k = kusto_handler_mapping_command("PythonLogs", "kh");
        assert!(k.starts_with(r#".create-or-alter table ['PythonLogs'] ingestion json mapping "kh" '[{"column":"name","path":"$.Target"},"#), "{k}");
        assert!(!k.contains("funcName"), "{k}");
        // Every property the mapping reads is a column of the full layout.
        let cols: Vec<&str> = l.columns().iter().map(|(c, _)| *c).collect();
        for (_, _, from) in KUSTO_HANDLER_COLUMNS {
            if let Some(p) = from {
                assert!(cols.contains(&p), "{p}");
            }
        }
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
            json_text::write_rfc3339_ticks(&mut out, Timestamp::from_nanos(nanos));
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
        assert_eq!(
            f(Duration::new(123 * 86_400 + 86_399, 999_999_999)),
            "123.23:59:59.9999999"
        );
    }

    fn gunzip(z: &[u8]) -> Vec<u8> {
        use std::io::Read as _;
        let mut back = Vec::new();
        // `GzDecoder` checks the CRC-32 and size trailer.
        flate2::read::GzDecoder::new(z)
            .read_to_end(&mut back)
            .unwrap();
        back
    }

    fn encode_batch(records: &[Record], max_bytes: usize) -> (EncodedBatch, Vec<u8>) {
        let mut raw = Vec::new();
        let b = BatchEncoder::new().encode(&enc(), records, max_bytes, Some(&mut raw));
        (b, raw)
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
        let (c, raw) = encode_batch(&records, limit);
        assert!(c.oversized.is_empty() && c.failed.is_empty());
        assert!(c.requests.len() > 1);
        let mut seen = Vec::new();
        let mut all = Vec::new();
        for q in &c.requests {
            let body = gunzip(&q.gzip);
            assert_eq!(body.len(), q.raw_len);
            assert!(body.len() <= limit, "{} > {limit}", body.len());
            assert_eq!(
                body.iter().filter(|b| **b == b'\n').count(),
                q.records.len()
            );
            seen.extend_from_slice(&q.records);
            all.extend_from_slice(&body);
        }
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        assert_eq!(all, raw);
    }

    #[test]
    fn requests_hold_exactly_the_rows_and_split_where_the_next_row_would_overflow() {
        // Enough rows to pass through the staging buffer many times per request.
        let records: Vec<Record> = (0..3_000_u64)
            .map(|i| {
                Record::event(Level::INFO, "shop::orders")
                    .with_timestamp(Timestamp::from_nanos(T + i))
                    .with_message(&format!("order {i} placed"))
                    .with_field("order_id", i)
                    .with_field("note", "x".repeat((i % 97) as usize).as_str())
                    .build()
            })
            .collect();
        let rows: Vec<Vec<u8>> = records
            .iter()
            .map(|r| {
                let mut o = Vec::new();
                enc().encode(r, &mut o).unwrap();
                o
            })
            .collect();
        let limit = 150_000;
        // The reference split: greedy, a row that would overflow starts the next request.
        let mut want: Vec<Vec<usize>> = vec![Vec::new()];
        let mut size = 0;
        for (i, row) in rows.iter().enumerate() {
            if size + row.len() > limit {
                want.push(Vec::new());
                size = 0;
            }
            size += row.len();
            want.last_mut().unwrap().push(i);
        }
        let mut be = BatchEncoder::new();
        for _ in 0..2 {
            // Twice: the second batch reuses the compressor and the staging buffer.
            let c = be.encode(&enc(), &records, limit, None);
            let got: Vec<Vec<usize>> = c.requests.iter().map(|q| q.records.clone()).collect();
            assert_eq!(got, want);
            for q in &c.requests {
                let expected: Vec<u8> = q.records.iter().flat_map(|&i| rows[i].clone()).collect();
                assert_eq!(gunzip(&q.gzip), expected);
                assert_eq!(q.raw_len, expected.len());
                assert_eq!(&q.gzip[..10], &GZIP_HEADER);
            }
        }
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
        let (c, raw) = encode_batch(&records, 1000);
        assert_eq!(c.oversized.len(), 1);
        assert_eq!(c.oversized[0].0, 1);
        let mut big = Vec::new();
        enc().encode(&records[1], &mut big).unwrap();
        assert_eq!(c.oversized[0].1, big);
        assert_eq!(c.requests.len(), 1);
        assert_eq!(c.requests[0].records, vec![0, 2]);
        assert_eq!(gunzip(&c.requests[0].gzip), raw);
    }

    #[test]
    fn an_empty_batch_has_no_request() {
        let (c, raw) = encode_batch(&[], 1000);
        assert!(c.requests.is_empty() && c.oversized.is_empty() && c.failed.is_empty());
        assert!(raw.is_empty());
    }

    #[test]
    fn the_shared_gzip_writes_the_same_header() {
        // Oversized rows are compressed by `logship_core::compress::gzip` at the same level:
        // both kinds of bodies look alike to the service.
        let data = b"{\"a\":1}\n".repeat(1000);
        let z = logship_core::compress::gzip(&data, GZIP_LEVEL);
        assert_eq!(&z[..10], &GZIP_HEADER);
        assert_eq!(gunzip(&z), data);
    }

    #[test]
    fn the_gzip_level_is_honoured() {
        let records: Vec<Record> = (0..2000)
            .map(|i| {
                Record::event(Level::INFO, "shop::orders")
                    .with_message("order placed")
                    .with_field("order_id", i)
                    .build()
            })
            .collect();
        let mut sizes = Vec::new();
        for level in [0, 1, 9] {
            let mut raw = Vec::new();
            let c =
                BatchEncoder::with_level(level).encode(&enc(), &records, 1 << 22, Some(&mut raw));
            assert_eq!(c.requests.len(), 1);
            let q = &c.requests[0];
            assert_eq!(&q.gzip[..10], &gzip_header(level), "level {level}");
            assert_eq!(gunzip(&q.gzip), raw, "level {level}");
            // The shared gzip at the same level writes the same header (oversized rows).
            let z = logship_core::compress::gzip(&raw, level);
            assert_eq!(&z[..10], &gzip_header(level), "level {level}");
            sizes.push(q.gzip.len());
        }
        // Stored (0) is larger than the input; 9 is smaller than 1.
        assert!(sizes[0] > sizes[1] && sizes[1] > sizes[2], "{sizes:?}");
    }

    #[test]
    fn strings_escape_like_serde_json() {
        let r = Record::event(Level::INFO, "t")
            .with_message("\u{8}\u{c}\u{1f}\"\\é")
            .build();
        let s = row(&r);
        let want = serde_json::to_string("\u{8}\u{c}\u{1f}\"\\é").unwrap();
        assert!(s.contains(&format!(",\"Message\":{want},")), "{s}");
    }

    #[test]
    fn uuid_tracking_ids_are_lowercase_hyphenated() {
        let id = TrackingId::new();
        let r = Record::event(Level::INFO, "t")
            .with_tracking_id(id.clone())
            .build();
        assert!(row(&r).contains(&format!(",\"TrackingId\":\"{id}\",")));
    }

    #[test]
    fn trace_columns_come_last_and_default_to_the_feature() {
        assert_eq!(
            TableLayout::new().trace_columns(),
            cfg!(feature = "opentelemetry")
        );
        assert_eq!(TableLayout::default(), TableLayout::new());
        let l = TableLayout::new()
            .with_call_site_columns(true)
            .with_trace_columns(true);
        assert!(
            l.create_table_command("T")
                .ends_with("ThreadId:long, TraceId:string, SpanId:string)")
        );
        assert!(l.create_mapping_command("T", "m").ends_with(
            r#"{"column":"TraceId","path":"$.TraceId","datatype":"string"},{"column":"SpanId","path":"$.SpanId","datatype":"string"}]'"#
        ));
        let t = logship_core::TraceContext::from_hex(
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "00f067aa0ba902b7",
        )
        .unwrap();
        let on = RowEncoder::new("web-1", None).with_layout(l);
        let mut out = Vec::new();
        let r = Record::event(Level::INFO, "t")
            .with_trace_context(t)
            .build();
        on.encode(&r, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.ends_with(
                ",\"TraceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"SpanId\":\"00f067aa0ba902b7\"}\n"
            ),
            "{s}"
        );
        let mut out = Vec::new();
        on.encode(&Record::event(Level::INFO, "t").build(), &mut out)
            .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.ends_with(",\"TraceId\":null,\"SpanId\":null}\n"), "{s}");
    }

    #[test]
    fn commands_golden() {
        let suffix = if cfg!(feature = "opentelemetry") {
            ", TraceId:string, SpanId:string)"
        } else {
            ")"
        };
        assert_eq!(
            create_table_command("Logs"),
            TableLayout::new()
                .with_trace_columns(false)
                .create_table_command("Logs")
                .replace("Thread:string)", &format!("Thread:string{suffix}"))
        );
        assert_eq!(
            TableLayout::new()
                .with_trace_columns(false)
                .create_table_command("Logs"),
            ".create-merge table ['Logs'] (Timestamp:datetime, Level:string, Target:string, Message:string, \
             Fields:dynamic, SpanName:string, Duration:timespan, SourceFqn:string, Correlators:dynamic, \
             TrackingId:string, ParentTrackingId:string, Snapshots:dynamic, Host:string, Service:string, \
             Thread:string)"
        );
        let m = TableLayout::new()
            .with_trace_columns(false)
            .create_mapping_command("Logs", "logship_v1");
        assert!(m.starts_with(
            r#".create-or-alter table ['Logs'] ingestion json mapping "logship_v1" '[{"column":"Timestamp","path":"$.Timestamp","datatype":"datetime"},{"column":"Level""#
        ));
        assert!(m.ends_with(r#"{"column":"Thread","path":"$.Thread","datatype":"string"}]'"#));
    }
}
