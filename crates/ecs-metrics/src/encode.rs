//! The ECS document encoder: [`Record`] → one `_bulk` action line and one source line.
//!
//! Pure and synchronous: no I/O, no clock (the `event.created` time is a parameter), so the
//! tests below pin exact bytes. The crate docs list the mapping; protocols.md §3 ("Bulk
//! request", "ECS fields") is the specification followed.
//!
//! The JSON is written straight into the request buffer (no intermediate `serde_json::Value`):
//! keys in a fixed order (`@timestamp`, `log.level`, `message`, `ecs.version` first, as
//! ecs-logging recommends), strings escaped per RFC 8259, numbers as JSON numbers. Additional
//! fields configured on the builder are deep-merged into the generated objects as they are
//! written; on a path the encoder itself writes, the encoder's value wins.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;

use logship_core::{Record, RecordKind, Timestamp, Value};
use serde_json::{Map, Value as Json};

/// The ECS version the documents follow (`ecs.version`).
pub const ECS_VERSION: &str = "8.11.0";

/// `agent.type` of every document.
pub const AGENT_TYPE: &str = "logship-ecs-metrics";

/// Elasticsearch's limit on `_id` length, in bytes.
const MAX_ID_BYTES: usize = 512;

/// How often the dated index name changes (the original's `IndexNameFrequency`). The date is
/// taken from each document's own `@timestamp`, in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum IndexFrequency {
    /// `<prefix>-%Y.%m.%d`, e.g. `logship-metrics-2026.11.21` (default).
    #[default]
    Daily,
    /// `<prefix>-%Y.%m.%d` of that week's Monday.
    Weekly,
    /// `<prefix>-%Y.%m`.
    Monthly,
    /// `<prefix>-%Y`.
    Yearly,
    /// `<prefix>` alone (no dash, no date).
    Never,
}

/// The `_bulk` action written for each document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum BulkAction {
    /// `create` (default): a retried document whose first attempt did land is answered 409 and
    /// counted as a duplicate, never written twice. The only action data streams accept.
    #[default]
    Create,
    /// `index`: a retried document overwrites itself (same `_id`, `_version` 2).
    Index,
}

impl BulkAction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Index => "index",
        }
    }
}

/// Where documents go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IndexNaming {
    /// A prefix plus a date from the document's `@timestamp`.
    Dated {
        prefix: String,
        frequency: IndexFrequency,
    },
    /// Data streams `metrics-<dataset>-<namespace>` (timers) and `logs-<dataset>-<namespace>`
    /// (log events).
    DataStream { namespace: String },
}

/// `service.*` fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ServiceInfo {
    pub(crate) name: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) environment: Option<String>,
}

/// Everything the encoder writes besides the record itself; fixed at build time except the
/// host addresses, which the sink resolves on the worker thread.
#[derive(Clone, Debug)]
pub(crate) struct EncoderConfig {
    pub(crate) naming: IndexNaming,
    pub(crate) action: BulkAction,
    pub(crate) dataset: String,
    pub(crate) service: ServiceInfo,
    pub(crate) host_name: Option<String>,
    pub(crate) host_ips: Vec<String>,
    pub(crate) pid: u32,
    pub(crate) agent_ephemeral_id: String,
    /// Sanitised keys.
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) extra: Map<String, Json>,
    /// Leaves are environment variable names.
    pub(crate) env_fields: Map<String, Json>,
}

impl EncoderConfig {
    /// A configuration with no host, service, labels or extra fields (tests, benches).
    pub(crate) fn minimal(naming: IndexNaming) -> Self {
        Self {
            naming,
            action: BulkAction::Create,
            dataset: "generic".into(),
            service: ServiceInfo::default(),
            host_name: None,
            host_ips: Vec::new(),
            pid: 0,
            agent_ephemeral_id: String::new(),
            labels: Vec::new(),
            extra: Map::new(),
            env_fields: Map::new(),
        }
    }

    /// The data-stream type for a record kind.
    fn stream_type(kind: RecordKind) -> &'static str {
        match kind {
            RecordKind::Event => "logs",
            _ => "metrics",
        }
    }
}

/// Encodes records into `_bulk` NDJSON; keeps small caches, so keep one per sink.
#[derive(Debug)]
pub(crate) struct Encoder {
    cfg: EncoderConfig,
    /// (day number, stream type) → index name of the last document.
    index_cache: Option<(u64, &'static str, String)>,
    scratch: String,
}

impl Encoder {
    pub(crate) fn new(cfg: EncoderConfig) -> Self {
        Self {
            cfg,
            index_cache: None,
            scratch: String::new(),
        }
    }

    pub(crate) fn config(&self) -> &EncoderConfig {
        &self.cfg
    }

    pub(crate) fn config_mut(&mut self) -> &mut EncoderConfig {
        &mut self.cfg
    }

    /// Appends the action line and the source line (each ending in `\n`) for `r`.
    /// `created` is the `event.created` time (when the batch is encoded).
    pub(crate) fn encode(&mut self, r: &Record, created: Timestamp, out: &mut Vec<u8>) {
        let when = doc_timestamp(r);
        // Action line.
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(self.cfg.action.as_str().as_bytes());
        out.extend_from_slice(b"\":{\"_index\":");
        let index = self.index_name(r.kind(), when);
        write_str(out, index);
        self.scratch.clear();
        let has_id = doc_id(r, &mut self.scratch);
        if has_id {
            out.extend_from_slice(b",\"_id\":");
            write_str(out, &self.scratch);
        }
        out.extend_from_slice(b"}}\n");
        // Source line.
        let env = resolve_env(&self.cfg.env_fields);
        let extra: Cow<'_, Map<String, Json>> = match env {
            Some(overlay) => {
                let mut m = self.cfg.extra.clone();
                deep_merge(&mut m, overlay);
                Cow::Owned(m)
            }
            None => Cow::Borrowed(&self.cfg.extra),
        };
        let extra = if extra.is_empty() {
            None
        } else {
            Some(&*extra)
        };
        let id = if has_id {
            Some(self.scratch.as_str())
        } else {
            None
        };
        write_document(&self.cfg, r, when, created, id, extra, out);
        out.push(b'\n');
    }

    /// The index (or data stream) a record goes to.
    pub(crate) fn index_name(&mut self, kind: RecordKind, when: Timestamp) -> &str {
        let day = when.secs() / 86_400;
        let ty = EncoderConfig::stream_type(kind);
        let hit = matches!(&self.index_cache, Some((d, t, _)) if *d == day && *t == ty);
        if !hit {
            let name = index_for_day(&self.cfg, ty, day);
            self.index_cache = Some((day, ty, name));
        }
        match &self.index_cache {
            Some((_, _, name)) => name,
            None => "",
        }
    }
}

/// The document's `@timestamp`: a timer's start (as the original), an event's time.
pub(crate) fn doc_timestamp(r: &Record) -> Timestamp {
    match r.timing() {
        Some(t) => t.start,
        None => r.timestamp(),
    }
}

/// Writes the `_id` into `out`: the record's tracking id (a UUID in its hyphenated form, or the
/// caller's own `tracking_id` text); ids longer than 512 bytes become the hex SHA-256 of the
/// id. Returns false when the record has no tracking id (only records built by hand and not yet
/// prepared by the pipeline), in which case Elasticsearch generates one.
pub(crate) fn doc_id(r: &Record, out: &mut String) -> bool {
    let Some(t) = r.tracking_id() else {
        return false;
    };
    let _ = write!(out, "{t}");
    if out.len() > MAX_ID_BYTES {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(out.as_bytes());
        out.clear();
        for b in digest {
            let _ = write!(out, "{b:02x}");
        }
    }
    true
}

fn index_for_day(cfg: &EncoderConfig, ty: &str, day: u64) -> String {
    match &cfg.naming {
        IndexNaming::DataStream { namespace } => format!("{ty}-{}-{namespace}", cfg.dataset),
        IndexNaming::Dated { prefix, frequency } => {
            let (y, m, d) = civil_from_days(day as i64);
            match frequency {
                IndexFrequency::Daily => format!("{prefix}-{y:04}.{m:02}.{d:02}"),
                IndexFrequency::Weekly => {
                    // 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Mondays.
                    let day = day as i64;
                    let (y, m, d) = civil_from_days(day - (day + 3).rem_euclid(7));
                    format!("{prefix}-{y:04}.{m:02}.{d:02}")
                }
                IndexFrequency::Monthly => format!("{prefix}-{y:04}.{m:02}"),
                IndexFrequency::Yearly => format!("{prefix}-{y:04}"),
                IndexFrequency::Never => prefix.clone(),
            }
        }
    }
}

/// The index name for a dated or data-stream configuration at `when`.
#[cfg(test)]
pub(crate) fn index_name_at(cfg: &EncoderConfig, kind: RecordKind, when: Timestamp) -> String {
    index_for_day(cfg, EncoderConfig::stream_type(kind), when.secs() / 86_400)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// RFC 3339 in UTC with nanoseconds: `2026-11-21T06:01:02.123456789Z` (30 bytes, quoted).
pub(crate) fn write_timestamp(out: &mut Vec<u8>, t: Timestamp) {
    let secs = t.secs();
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    let (h, mi, s) = (sod / 3600, sod % 3600 / 60, sod % 60);
    // "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"
    let mut buf = *b"\"0000-00-00T00:00:00.000000000Z\"";
    fn put(buf: &mut [u8], at: usize, width: usize, mut v: u64) {
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    put(&mut buf, 1, 4, y.clamp(0, 9999) as u64);
    put(&mut buf, 6, 2, u64::from(mo));
    put(&mut buf, 9, 2, u64::from(d));
    put(&mut buf, 12, 2, h);
    put(&mut buf, 15, 2, mi);
    put(&mut buf, 18, 2, s);
    put(&mut buf, 21, 9, u64::from(t.subsec_nanos()));
    out.extend_from_slice(&buf);
}

/// A JSON string literal (RFC 8259 escaping; non-ASCII kept as UTF-8).
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// A field value: integers stay integers (128-bit ones outside ±2⁵³ and non-finite floats
/// become text, as in `logship_core::json`), errors become their full chain as text.
fn write_value(out: &mut Vec<u8>, v: Value<'_>) {
    match v {
        Value::Str(s) => write_str(out, s),
        Value::I64(v) => {
            let _ = write!(out, "{v}");
        }
        Value::U64(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Bool(v) => out.extend_from_slice(if v { b"true" } else { b"false" }),
        Value::Error(e) => write_str(out, &e.to_string()),
        other => {
            let j = logship_core::json::value_to_json(other);
            let _ = serde_json::to_writer(&mut *out, &j);
        }
    }
}

/// One JSON object being written; merges the matching part of the additional fields on close.
struct Obj<'o, 'e> {
    out: &'o mut Vec<u8>,
    first: bool,
    extra: Option<&'e Map<String, Json>>,
    seen: Vec<String>,
}

impl<'o, 'e> Obj<'o, 'e> {
    fn open(out: &'o mut Vec<u8>, extra: Option<&'e Map<String, Json>>) -> Self {
        out.push(b'{');
        Self {
            out,
            first: true,
            extra,
            seen: Vec::new(),
        }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, k);
        self.out.push(b':');
        if self.extra.is_some() {
            self.seen.push(k.to_string());
        }
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        write_str(self.out, v);
    }

    fn u64(&mut self, k: &str, v: u64) {
        self.key(k);
        let _ = write!(self.out, "{v}");
    }

    fn time(&mut self, k: &str, t: Timestamp) {
        self.key(k);
        write_timestamp(self.out, t);
    }

    fn value(&mut self, k: &str, v: Value<'_>) {
        self.key(k);
        write_value(self.out, v);
    }

    fn obj(&mut self, k: &str, f: impl FnOnce(&mut Obj<'_, 'e>)) {
        let extra = self.extra.and_then(|m| m.get(k)).and_then(Json::as_object);
        self.key(k);
        let mut child = Obj::open(self.out, extra);
        f(&mut child);
        child.close();
    }

    /// Writes a raw, already valid JSON value.
    fn raw(&mut self, k: &str, f: impl FnOnce(&mut Vec<u8>)) {
        self.key(k);
        f(self.out);
    }

    fn close(self) {
        if let Some(extra) = self.extra {
            let mut first = self.first;
            for (k, v) in extra {
                if self.seen.iter().any(|s| s == k) {
                    continue;
                }
                if !first {
                    self.out.push(b',');
                }
                first = false;
                write_str(self.out, k);
                self.out.push(b':');
                let _ = serde_json::to_writer(&mut *self.out, v);
            }
        }
        self.out.push(b'}');
    }
}

/// Replaces `.`, `*` and `\` in a label key with `_` (ecs-logging's rule for `labels`).
pub(crate) fn sanitize_label_key(k: &str) -> Cow<'_, str> {
    if k.contains(['.', '*', '\\']) {
        Cow::Owned(k.replace(['.', '*', '\\'], "_"))
    } else {
        Cow::Borrowed(k)
    }
}

/// The prefix of `tracing` fields that go to `labels` instead of `tracing.fields`.
pub(crate) const LABEL_PREFIX: &str = "labels.";

fn is_label(name: &str) -> Option<&str> {
    name.strip_prefix(LABEL_PREFIX).filter(|k| !k.is_empty())
}

fn write_document(
    cfg: &EncoderConfig,
    r: &Record,
    when: Timestamp,
    created: Timestamp,
    id: Option<&str>,
    extra: Option<&Map<String, Json>>,
    out: &mut Vec<u8>,
) {
    let timing = r.timing();
    let is_metric = r.kind() == RecordKind::SpanTiming;
    let mut doc = Obj::open(out, extra);
    doc.time("@timestamp", when);
    doc.key("log.level");
    let level = r.level();
    write_str(doc.out, level_str(&level));
    match (r.message(), timing) {
        (Some(m), _) => doc.str("message", m),
        (None, Some(t)) => {
            let us = micros(t.duration);
            doc.key("message");
            let msg = format!("{} took {}.{:03} ms", r.name(), us / 1000, us % 1000);
            write_str(doc.out, &msg);
        }
        (None, None) => {}
    }
    doc.str("ecs.version", ECS_VERSION);
    if doc.extra.is_some() {
        doc.seen.push("ecs".into());
    }
    doc.obj("event", |e| {
        e.str("kind", if is_metric { "metric" } else { "event" });
        if let Some(id) = id {
            e.str("id", id);
        }
        e.str("dataset", &cfg.dataset);
        if let Some(t) = timing {
            e.time("start", t.start);
            e.time("end", t.end);
            e.u64("duration", nanos(t.duration));
        }
        e.time("created", created);
        if let Some(t) = timing {
            e.str("outcome", if t.failed { "failure" } else { "success" });
        }
    });
    if let Some(t) = timing {
        doc.obj("metrics", |m| {
            m.str("name", r.name());
            m.obj("duration", |d| d.u64("us", micros(t.duration)));
            m.obj("busy", |d| d.u64("us", micros(t.busy)));
        });
    }
    if let IndexNaming::DataStream { namespace } = &cfg.naming {
        doc.obj("data_stream", |d| {
            d.str("type", EncoderConfig::stream_type(r.kind()));
            d.str("dataset", &cfg.dataset);
            d.str("namespace", namespace);
        });
    }
    doc.obj("log", |l| {
        l.str("logger", r.target());
        let file = r.file();
        if file.is_some() || is_metric {
            l.obj("origin", |o| {
                if let Some(f) = file {
                    o.obj("file", |fo| {
                        fo.str("name", f);
                        if let Some(line) = r.line() {
                            fo.u64("line", u64::from(line));
                        }
                    });
                }
                if is_metric {
                    o.str("function", r.name());
                }
            });
        }
    });
    let svc = &cfg.service;
    if svc.name.is_some() || svc.version.is_some() || svc.environment.is_some() {
        doc.obj("service", |s| {
            if let Some(v) = &svc.name {
                s.str("name", v);
            }
            if let Some(v) = &svc.version {
                s.str("version", v);
            }
            if let Some(v) = &svc.environment {
                s.str("environment", v);
            }
        });
    }
    if cfg.host_name.is_some() || !cfg.host_ips.is_empty() {
        doc.obj("host", |h| {
            if let Some(n) = &cfg.host_name {
                h.str("name", n);
                h.str("hostname", n);
            }
            if !cfg.host_ips.is_empty() {
                h.raw("ip", |out| {
                    out.push(b'[');
                    for (i, ip) in cfg.host_ips.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        write_str(out, ip);
                    }
                    out.push(b']');
                });
            }
        });
    }
    doc.obj("process", |p| {
        p.u64("pid", u64::from(cfg.pid));
        if let Some(name) = &r.thread().name {
            p.obj("thread", |t| t.str("name", name));
        }
    });
    doc.obj("agent", |a| {
        a.str("type", AGENT_TYPE);
        a.str("version", env!("CARGO_PKG_VERSION"));
        if !cfg.agent_ephemeral_id.is_empty() {
            a.str("ephemeral_id", &cfg.agent_ephemeral_id);
        }
    });
    // Labels: static ones, then `labels.*` fields of enclosing spans (outermost first), then
    // the record's own; a later value replaces an earlier one with the same key.
    let mut labels: Vec<(Cow<'_, str>, Cow<'_, str>)> = cfg
        .labels
        .iter()
        .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str())))
        .collect();
    let add_label = |k: &str, v: Value<'_>, labels: &mut Vec<(Cow<'_, str>, Cow<'_, str>)>| {
        let k = sanitize_label_key(k).into_owned();
        let v = v.to_string();
        match labels.iter_mut().find(|(x, _)| *x == k) {
            Some(slot) => slot.1 = Cow::Owned(v),
            None => labels.push((Cow::Owned(k), Cow::Owned(v))),
        }
    };
    for s in r.spans() {
        for (k, v) in s.fields() {
            if let Some(k) = is_label(k) {
                add_label(k, v, &mut labels);
            }
        }
    }
    let mut error = None;
    let mut plain = 0usize;
    for (k, v) in r.fields() {
        if let Some(k) = is_label(k) {
            add_label(k, v, &mut labels);
        } else if let (Value::Error(e), None) = (v, error) {
            error = Some(e);
        } else {
            plain += 1;
        }
    }
    if !labels.is_empty() {
        doc.obj("labels", |l| {
            for (k, v) in &labels {
                l.str(k, v);
            }
        });
    }
    if let Some(e) = error {
        doc.obj("error", |eo| {
            eo.str("message", &e.message);
            if !e.sources.is_empty() {
                let mut trace = e.message.clone();
                for s in &e.sources {
                    trace.push_str("\ncaused by: ");
                    trace.push_str(s);
                }
                eo.str("stack_trace", &trace);
            }
        });
    }
    let spans: Vec<_> = r.spans().collect();
    let parent = r.parent_tracking_id();
    if plain > 0 || !spans.is_empty() || parent.is_some() || !r.correlators().is_empty() {
        doc.obj("tracing", |t| {
            if let Some(p) = parent {
                t.key("parent_id");
                let p = p.to_string();
                write_str(t.out, &p);
            }
            if !r.correlators().is_empty() {
                t.raw("correlators", |out| {
                    out.push(b'[');
                    for (i, c) in r.correlators().iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        write_str(out, c);
                    }
                    out.push(b']');
                });
            }
            if plain > 0 {
                let mut skipped_error = false;
                t.obj("fields", |f| {
                    let mut names: Vec<&str> = Vec::new();
                    for (k, v) in r.fields() {
                        if is_label(k).is_some() || names.contains(&k) {
                            continue;
                        }
                        if matches!(v, Value::Error(_)) && !skipped_error {
                            skipped_error = true;
                            continue;
                        }
                        names.push(k);
                        f.value(k, v);
                    }
                });
            }
            if !spans.is_empty() {
                t.raw("spans", |out| {
                    out.push(b'[');
                    for (i, s) in spans.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        let mut so = Obj::open(out, None);
                        so.str("name", s.name());
                        let mut fields =
                            s.fields().filter(|(k, _)| is_label(k).is_none()).peekable();
                        if fields.peek().is_some() {
                            so.obj("fields", |f| {
                                let mut names: Vec<&str> = Vec::new();
                                for (k, v) in fields {
                                    if !names.contains(&k) {
                                        names.push(k);
                                        f.value(k, v);
                                    }
                                }
                            });
                        }
                        so.close();
                    }
                    out.push(b']');
                });
            }
        });
    }
    doc.close();
}

fn level_str(l: &logship_core::Level) -> &'static str {
    match *l {
        logship_core::Level::ERROR => "error",
        logship_core::Level::WARN => "warn",
        logship_core::Level::INFO => "info",
        logship_core::Level::DEBUG => "debug",
        _ => "trace",
    }
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Reads the environment variables named by the leaves of `spec`; `None` when none is set.
/// A leaf that is not a string, or names a variable that is unset or not UTF-8, contributes
/// nothing (the static value at that path, if any, stays).
pub(crate) fn resolve_env(spec: &Map<String, Json>) -> Option<Map<String, Json>> {
    if spec.is_empty() {
        return None;
    }
    let mut out = Map::new();
    for (k, v) in spec {
        match v {
            Json::String(var) => {
                if let Ok(val) = std::env::var(var) {
                    out.insert(k.clone(), Json::String(val));
                }
            }
            Json::Object(inner) => {
                if let Some(m) = resolve_env(inner) {
                    out.insert(k.clone(), Json::Object(m));
                }
            }
            _ => {}
        }
    }
    if out.is_empty() { None } else { Some(out) }
}

/// Merges `overlay` into `base`: objects merge recursively, anything else replaces.
pub(crate) fn deep_merge(base: &mut Map<String, Json>, overlay: Map<String, Json>) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(Json::Object(b)), Json::Object(o)) => deep_merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logship_core::{Level, TrackingId};
    use std::time::Duration;

    const T0: u64 = 1_700_000_000_123_456_789; // 2023-11-14T22:13:20.123456789Z, a Tuesday

    fn id() -> TrackingId {
        TrackingId::Custom("0b1c2d3e-0000-4000-8000-000000000001".into())
    }

    fn dated() -> EncoderConfig {
        EncoderConfig::minimal(IndexNaming::Dated {
            prefix: "metrics".into(),
            frequency: IndexFrequency::Daily,
        })
    }

    fn encode(cfg: EncoderConfig, r: &Record) -> String {
        let mut out = Vec::new();
        Encoder::new(cfg).encode(r, Timestamp::from_nanos(T0 + 5_000_000_000), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    fn timer() -> Record {
        Record::span_timing(
            "fetch",
            Timestamp::from_nanos(T0),
            Duration::from_micros(1_500_250),
        )
        .with_tracking_id(id())
        .build()
    }

    #[test]
    fn timer_golden() {
        let got = encode(dated(), &timer());
        let thread = std::thread::current()
            .name()
            .map(str::to_string)
            .unwrap_or_default();
        let want = format!(
            concat!(
                r#"{{"create":{{"_index":"metrics-2023.11.14","_id":"0b1c2d3e-0000-4000-8000-000000000001"}}}}"#,
                "\n",
                r#"{{"@timestamp":"2023-11-14T22:13:20.123456789Z","log.level":"info","message":"fetch took 1500.250 ms","#,
                r#""ecs.version":"8.11.0","event":{{"kind":"metric","id":"0b1c2d3e-0000-4000-8000-000000000001","#,
                r#""dataset":"generic","start":"2023-11-14T22:13:20.123456789Z","end":"2023-11-14T22:13:21.623706789Z","#,
                r#""duration":1500250000,"created":"2023-11-14T22:13:25.123456789Z","outcome":"success"}},"#,
                r#""metrics":{{"name":"fetch","duration":{{"us":1500250}},"busy":{{"us":1500250}}}},"#,
                r#""log":{{"logger":"fetch","origin":{{"function":"fetch"}}}},"#,
                r#""process":{{"pid":0,"thread":{{"name":"{}"}}}},"agent":{{"type":"logship-ecs-metrics","version":"{}"}}}}"#,
                "\n"
            ),
            thread,
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(got, want);
    }

    #[test]
    fn event_golden_with_fields_labels_error_and_escaping() {
        let err = std::io::Error::other("disk \"full\"");
        let r = Record::event(Level::WARN, "shop::orders")
            .with_timestamp(Timestamp::from_nanos(T0))
            .with_message("line1\nline2\t\u{1}é")
            .with_field("order_id", 42_u64)
            .with_field("ratio", 0.5)
            .with_field("ok", false)
            .with_field("labels.tenant.id", "acme")
            .with_field("big", u128::MAX)
            .with_field(
                "err",
                logship_core::FieldValue::Error(logship_core::ErrorChain {
                    message: err.to_string(),
                    sources: vec!["io".into()],
                }),
            )
            .with_source_position("shop::orders", "src/orders.rs", 7)
            .with_tracking_id(TrackingId::Custom("e1".into()))
            .build();
        let mut cfg = dated();
        cfg.service = ServiceInfo {
            name: Some("shop".into()),
            version: Some("1.2.3".into()),
            environment: Some("prod".into()),
        };
        cfg.host_name = Some("web1".into());
        cfg.host_ips = vec!["10.0.0.5".into()];
        cfg.pid = 4242;
        cfg.agent_ephemeral_id = "eph".into();
        cfg.labels = vec![("team".into(), "core".into())];
        let got = encode(cfg, &r);
        let (action, doc) = got.split_once('\n').unwrap_or_default();
        assert_eq!(
            action,
            r#"{"create":{"_index":"metrics-2023.11.14","_id":"e1"}}"#
        );
        let thread = std::thread::current()
            .name()
            .map(str::to_string)
            .unwrap_or_default();
        let want = format!(
            concat!(
                r#"{{"@timestamp":"2023-11-14T22:13:20.123456789Z","log.level":"warn","message":"line1\nline2\t\u0001é","#,
                r#""ecs.version":"8.11.0","event":{{"kind":"event","id":"e1","dataset":"generic","created":"2023-11-14T22:13:25.123456789Z"}},"#,
                r#""log":{{"logger":"shop::orders","origin":{{"file":{{"name":"src/orders.rs","line":7}}}}}},"#,
                r#""service":{{"name":"shop","version":"1.2.3","environment":"prod"}},"#,
                r#""host":{{"name":"web1","hostname":"web1","ip":["10.0.0.5"]}},"#,
                r#""process":{{"pid":4242,"thread":{{"name":"{}"}}}},"#,
                r#""agent":{{"type":"logship-ecs-metrics","version":"{}","ephemeral_id":"eph"}},"#,
                r#""labels":{{"team":"core","tenant_id":"acme"}},"#,
                r#""error":{{"message":"disk \"full\"","stack_trace":"disk \"full\"\ncaused by: io"}},"#,
                r#""tracing":{{"fields":{{"order_id":42,"ratio":0.5,"ok":false,"big":"340282366920938463463374607431768211455"}}}}}}"#,
                "\n"
            ),
            thread,
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(doc, want);
        // Every line parses as JSON.
        for line in got.lines() {
            assert!(serde_json::from_str::<Json>(line).is_ok(), "{line}");
        }
    }

    #[test]
    fn failed_timer_has_failure_outcome() {
        let r = Record::span_timing("f", Timestamp::from_nanos(T0), Duration::from_nanos(10))
            .with_busy(Duration::from_nanos(4), true)
            .build();
        let got = encode(dated(), &r);
        assert!(got.contains(r#""outcome":"failure""#), "{got}");
        assert!(got.contains(r#""duration":10,"#), "{got}");
        // no tracking id: no _id (Elasticsearch generates one)
        assert!(
            got.starts_with(r#"{"create":{"_index":"metrics-2023.11.14"}}"#),
            "{got}"
        );
    }

    #[test]
    fn additional_fields_merge_deeply_and_generated_wins() {
        let mut cfg = dated();
        cfg.extra = serde_json::json!({
            "App": "Test",
            "event": {"kind": "ignored", "module": "shop"},
            "ecs": {"version": "1.4.0"},
            "labels": {"from_extra": "x"},
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        let got = encode(cfg, &timer());
        let doc: Json = serde_json::from_str(got.lines().nth(1).unwrap_or("")).unwrap_or_default();
        assert_eq!(doc["App"], "Test");
        assert_eq!(doc["event"]["kind"], "metric");
        assert_eq!(doc["event"]["module"], "shop");
        assert_eq!(doc["ecs.version"], "8.11.0");
        assert!(doc.get("ecs").is_none(), "{doc}");
        assert_eq!(doc["labels"]["from_extra"], "x");
    }

    #[test]
    fn env_fields_override_static_and_missing_keep_static() {
        // `set_var` needs `unsafe` in edition 2024 (forbidden here), so read PATH, which is
        // always set, and a name nobody sets.
        let missing = "LOGSHIP_ECS_TEST_ENV_MISSING_7F3A";
        let spec = serde_json::json!({"App": "PATH", "Nested": {"One": missing, "Two": "PATH"}});
        let static_ = serde_json::json!({"App": "static", "Nested": {"One": "keep"}});
        let mut m = static_.as_object().cloned().unwrap_or_default();
        let overlay = resolve_env(spec.as_object().unwrap_or(&Map::new()));
        let path = std::env::var("PATH").unwrap_or_default();
        if let Some(o) = overlay {
            deep_merge(&mut m, o);
        }
        assert_eq!(m["App"], Json::String(path.clone()));
        assert_eq!(m["Nested"]["One"], "keep");
        assert_eq!(m["Nested"]["Two"], Json::String(path));
        assert!(
            resolve_env(
                &serde_json::json!({"A": missing})
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            )
            .is_none()
        );
    }

    fn name_at(freq: IndexFrequency, nanos: u64) -> String {
        let cfg = EncoderConfig::minimal(IndexNaming::Dated {
            prefix: "p".into(),
            frequency: freq,
        });
        index_name_at(&cfg, RecordKind::SpanTiming, Timestamp::from_nanos(nanos))
    }

    #[test]
    fn index_names_at_date_boundaries() {
        use IndexFrequency::*;
        let s = 1_000_000_000u64;
        // 2023-12-31T23:59:59.999999999Z (a Sunday) and one nanosecond later.
        let last = 1_704_067_199 * s + 999_999_999;
        let first = last + 1;
        assert_eq!(name_at(Daily, last), "p-2023.12.31");
        assert_eq!(name_at(Daily, first), "p-2024.01.01");
        assert_eq!(name_at(Weekly, last), "p-2023.12.25");
        assert_eq!(name_at(Weekly, first), "p-2024.01.01"); // a Monday
        assert_eq!(name_at(Monthly, last), "p-2023.12");
        assert_eq!(name_at(Monthly, first), "p-2024.01");
        assert_eq!(name_at(Yearly, last), "p-2023");
        assert_eq!(name_at(Yearly, first), "p-2024");
        assert_eq!(name_at(Never, first), "p");
        // Leap day, epoch, and a week that spans a month boundary.
        assert_eq!(name_at(Daily, 1_709_164_800 * s), "p-2024.02.29");
        assert_eq!(name_at(Daily, 0), "p-1970.01.01");
        assert_eq!(name_at(Weekly, 0), "p-1969.12.29");
        assert_eq!(name_at(Weekly, 1_709_337_600 * s), "p-2024.02.26"); // Sat 2024-03-02
    }

    #[test]
    fn data_stream_names() {
        let mut cfg = EncoderConfig::minimal(IndexNaming::DataStream {
            namespace: "prod".into(),
        });
        cfg.dataset = "shop".into();
        assert_eq!(
            index_name_at(&cfg, RecordKind::SpanTiming, Timestamp::from_nanos(T0)),
            "metrics-shop-prod"
        );
        assert_eq!(
            index_name_at(&cfg, RecordKind::Event, Timestamp::from_nanos(T0)),
            "logs-shop-prod"
        );
        let got = encode(cfg, &timer());
        assert!(
            got.contains(r#""data_stream":{"type":"metrics","dataset":"shop","namespace":"prod"}"#)
        );
    }

    #[test]
    fn timestamps_match_chrono_for_many_instants() {
        let mut t = 0u64;
        while t < 16_000_000_000_000_000_000 {
            let mut out = Vec::new();
            write_timestamp(&mut out, Timestamp::from_nanos(t));
            let want = format!("\"{}\"", Timestamp::from_nanos(t).to_rfc3339());
            assert_eq!(String::from_utf8_lossy(&out), want);
            t = t.saturating_mul(3).saturating_add(86_399_999_999_999);
        }
    }

    #[test]
    fn long_custom_ids_are_hashed() {
        let long = "x".repeat(600);
        let r = Record::event(Level::INFO, "t")
            .with_tracking_id(TrackingId::Custom(long.as_str().into()))
            .build();
        let mut s = String::new();
        assert!(doc_id(&r, &mut s));
        assert_eq!(s.len(), 64);
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn label_keys_are_sanitised() {
        assert_eq!(sanitize_label_key("a.b*c\\d"), "a_b_c_d");
        assert!(matches!(
            sanitize_label_key("plain"),
            Cow::Borrowed("plain")
        ));
    }
}
