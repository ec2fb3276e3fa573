//! The ECS document encoder: [`Record`] → one `_bulk` action line and one source line.
//!
//! Pure and synchronous: no I/O, no clock (the `event.created` time is a parameter), so the
//! tests below pin exact bytes. The crate docs list the mapping; the Elasticsearch bulk API reference, <https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html> ("Bulk
//! request", "ECS fields") is the specification followed.
//!
//! The JSON is written straight into the request buffer (no intermediate `serde_json::Value`):
//! keys in a fixed order (`@timestamp`, `log.level`, `message`, `ecs.version` first, as
//! ecs-logging recommends), strings escaped per RFC 8259 and numbers, timestamps by
//! [`logship_core::json_text`]. Additional fields configured on the builder are deep-merged
//! into the generated objects as they are written; on a path the encoder itself writes, the
//! encoder's value wins.
//!
//! Cost per document (the worker thread's hot path): what the configuration fixes (`service`,
//! `host`, `process.pid`, `agent`, static labels) is written once per encoder and copied, so
//! is `process.thread` per thread name and `log` per callsite (it depends only on the
//! `tracing` metadata); the action line's prefix is written once per index, the date and time
//! of day of `@timestamp` once per second, `event.created` and the environment-resolved
//! additional fields once per batch; keys are byte literals; the fields are read in one pass;
//! a document without labels from fields allocates nothing. Parts that additional fields merge
//! into are written field by field instead.

use std::borrow::Cow;

use logship_core::{Record, RecordKind, Timestamp, TrackingId, Value, json_text};
use serde_json::{Map, Value as Json};
use tracing::Metadata;

macro_rules! ecs_version {
    () => {
        "8.11.0"
    };
}

/// The ECS version the documents follow (`ecs.version`).
pub const ECS_VERSION: &str = ecs_version!();

/// `agent.type` of every document.
pub const AGENT_TYPE: &str = "logship-ecs-metrics";

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
    /// `host.id`; the sink fills it on the worker thread (the machine id) unless set.
    pub(crate) host_id: Option<String>,
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
            host_id: None,
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

/// Encodes records into `_bulk` NDJSON. Keeps what does not change between documents (the
/// constant parts of every document, the action line of the current index, the `event.created`
/// text and the environment-resolved additional fields of the current batch), so keep one per
/// sink and encode a batch with one `created` time.
#[derive(Debug)]
pub(crate) struct Encoder {
    cfg: EncoderConfig,
    frags: Fragments,
    /// (day number, stream type) → index name and action-line prefix of the last document.
    index_cache: Option<IndexCache>,
    /// `event.created` of the current batch, quoted.
    created: Option<(Timestamp, [u8; 32])>,
    /// The additional fields with the environment overlay, resolved once per `created` time
    /// (`None` inside: no variable set, the static fields apply).
    env: Option<(Timestamp, Option<Map<String, Json>>)>,
    /// `tracing.fields` of the document being written.
    fields: Vec<u8>,
    /// The thread name of the last document and what follows `process.pid` for it:
    /// `,"thread":{"name":…}}` and the agent fragment.
    thread_tail: Option<(Option<&'static str>, Vec<u8>)>,
    /// `"YYYY-MM-DDTHH:MM:SS` of the last `@timestamp` second.
    second: Option<(u64, [u8; 20])>,
    log_cache: LogCache,
    span_errors: SpanErrors,
}

#[derive(Debug)]
struct IndexCache {
    day: u64,
    ty: &'static str,
    name: String,
    /// `{"<action>":{"_index":"<name>"`.
    action_prefix: Vec<u8>,
}

/// The parts of a document fixed by the configuration, written once per encoder: used when no
/// additional field applies to them.
#[derive(Debug, Default)]
struct Fragments {
    /// `,"service":{…},"host":{…},"process":{"pid":N` (service and host when configured).
    service_host_pid: Vec<u8>,
    /// `,"agent":{…}`.
    agent: Vec<u8>,
    /// `,"labels":{…}` of the static labels (empty without labels).
    labels: Vec<u8>,
}

impl Fragments {
    fn new(cfg: &EncoderConfig) -> Self {
        let mut f = Self::default();
        let mut doc = Obj::continued(&mut f.service_host_pid);
        write_service_host(&mut doc, cfg);
        doc.k(key!("process"));
        doc.out.extend_from_slice(br#"{"pid":"#);
        json_text::write_u64(doc.out, u64::from(cfg.pid));
        let mut doc = Obj::continued(&mut f.agent);
        write_agent(&mut doc, cfg);
        if !cfg.labels.is_empty() {
            let mut doc = Obj::continued(&mut f.labels);
            doc.obj(key!("labels"), |l| {
                for (k, v) in &cfg.labels {
                    l.str_dyn(k, v);
                }
            });
        }
        f
    }
}

impl Encoder {
    pub(crate) fn new(cfg: EncoderConfig) -> Self {
        Self {
            frags: Fragments::new(&cfg),
            cfg,
            index_cache: None,
            created: None,
            env: None,
            fields: Vec::new(),
            thread_tail: None,
            second: None,
            log_cache: LogCache::new(),
            span_errors: SpanErrors::default(),
        }
    }

    pub(crate) fn config(&self) -> &EncoderConfig {
        &self.cfg
    }

    /// Sets `host.ip` (resolved by the sink on the worker thread) and, unless the builder set
    /// one, `host.id`.
    pub(crate) fn set_host(&mut self, ips: Vec<String>, id: Option<String>) {
        self.cfg.host_ips = ips;
        if self.cfg.host_id.is_none() {
            self.cfg.host_id = id;
        }
        self.frags = Fragments::new(&self.cfg);
        self.thread_tail = None;
    }

    /// Appends the action line and the source line (each ending in `\n`) for `r`.
    /// `created` is the `event.created` time (when the batch is encoded); encode a batch with
    /// one `created` time: the environment variables named by the additional fields are read
    /// once per `created` time.
    pub(crate) fn encode(&mut self, r: &Record, created: Timestamp, out: &mut Vec<u8>) -> DocId {
        let when = doc_timestamp(r);
        self.index_name(r.kind(), when);
        if let Some(c) = &self.index_cache {
            out.extend_from_slice(&c.action_prefix);
        }
        let id = doc_id(r);
        out.extend_from_slice(br#","_id":""#);
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        out.extend_from_slice(id.0.hyphenated().encode_lower(&mut buf).as_bytes());
        out.extend_from_slice(b"\"}}\n");
        self.span_errors.observe(r);
        let span_error = match r.kind() {
            RecordKind::SpanTiming => r
                .tracking_id()
                .and_then(|t| self.span_errors.get(t))
                .cloned(),
            _ => None,
        };
        // Source line.
        let timestamp = self.quoted_time(when);
        if self.created.is_none_or(|(t, _)| t != created) {
            self.created = Some((created, quoted_rfc3339(created)));
        }
        let created_json: &[u8] = match &self.created {
            Some((_, q)) => q,
            None => b"null",
        };
        if !self.cfg.env_fields.is_empty() && self.env.as_ref().is_none_or(|(t, _)| *t != created) {
            let merged = resolve_env(&self.cfg.env_fields).map(|overlay| {
                let mut m = self.cfg.extra.clone();
                deep_merge(&mut m, overlay);
                m
            });
            self.env = Some((created, merged));
        }
        let extra = match &self.env {
            Some((_, Some(m))) if !self.cfg.env_fields.is_empty() => m,
            _ => &self.cfg.extra,
        };
        let extra = if extra.is_empty() { None } else { Some(extra) };
        let thread = r.thread().name;
        if self.thread_tail.as_ref().is_none_or(|(t, _)| *t != thread) {
            let mut tail = Vec::new();
            if let Some(name) = thread {
                tail.extend_from_slice(br#","thread":{"name":"#);
                json_text::write_str(&mut tail, name);
                tail.push(b'}');
            }
            tail.push(b'}');
            tail.extend_from_slice(&self.frags.agent);
            self.thread_tail = Some((thread, tail));
        }
        let cx = DocContext {
            timestamp: &timestamp,
            cfg: &self.cfg,
            frags: &self.frags,
            created: created_json,
            process_tail: self.thread_tail.as_ref().map_or(&[], |(_, t)| t),
            log: self.log_cache.get(r),
            span_error: span_error.as_ref(),
        };
        write_document(&cx, r, extra, &mut self.fields, out);
        out.push(b'\n');
        id
    }

    /// `t` as a quoted RFC 3339 string in UTC with nanoseconds; the date and time of day are
    /// formatted once per second.
    fn quoted_time(&mut self, t: Timestamp) -> [u8; 32] {
        let secs = t.secs();
        match self.second {
            Some((s, prefix)) if s == secs => {
                let mut q = [0u8; 32];
                q[..20].copy_from_slice(&prefix);
                q[20] = b'.';
                json_text::write_digits(&mut q[21..30], u64::from(t.subsec_nanos()));
                q[30] = b'Z';
                q[31] = b'"';
                q
            }
            _ => {
                let q = quoted_rfc3339(t);
                let mut prefix = [0u8; 20];
                prefix.copy_from_slice(&q[..20]);
                self.second = Some((secs, prefix));
                q
            }
        }
    }

    /// The index (or data stream) a record goes to.
    pub(crate) fn index_name(&mut self, kind: RecordKind, when: Timestamp) -> &str {
        let day = when.secs() / 86_400;
        let ty = EncoderConfig::stream_type(kind);
        let hit = matches!(&self.index_cache, Some(c) if c.day == day && c.ty == ty);
        if !hit {
            let name = index_for_day(&self.cfg, ty, day);
            let mut action_prefix = Vec::with_capacity(name.len() + 24);
            action_prefix.extend_from_slice(b"{\"");
            action_prefix.extend_from_slice(self.cfg.action.as_str().as_bytes());
            action_prefix.extend_from_slice(b"\":{\"_index\":");
            json_text::write_str(&mut action_prefix, &name);
            self.index_cache = Some(IndexCache {
                day,
                ty,
                name,
                action_prefix,
            });
        }
        match &self.index_cache {
            Some(c) => &c.name,
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

/// The `_id` of a record's document: a UUID version 8 (RFC 9562 §5.8, "custom": here the
/// first 128 bits of a SHA-256, as in its Appendix B.2) over the record's own identity — its
/// kind, capture time (ns), tracking id, level, target, the first 256 bytes of its message and,
/// for a timer, its duration.
///
/// Unique per record: the core gives each `tracing` event a tracking id derived from its
/// thread and per-thread sequence number, and each span a random one, so two records share an
/// `_id` only if they share a caller-supplied `tracking_id`, the nanosecond, level, target and
/// message. Stable across retries, the disk spool and every dead-letter replay (the record's
/// JSON keeps all of these). The caller's `tracking_id` field alone never decides it: three
/// events with `tracking_id = "order-42"` are three documents. The same idea as Filebeat's
/// `fingerprint` processor feeding `@metadata._id`
/// (<https://www.elastic.co/guide/en/beats/filebeat/current/filebeat-deduplication.html>).
pub(crate) fn doc_id(r: &Record) -> DocId {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"logship-ecs _id v1\0");
    h.update([match r.kind() {
        RecordKind::Event => b'e',
        _ => b't',
    }]);
    h.update(r.timestamp().as_nanos().to_le_bytes());
    let duration = r.timing().map_or(0, |t| nanos(t.duration));
    h.update(duration.to_le_bytes());
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let tracking: &str = match r.tracking_id() {
        None => "",
        Some(TrackingId::Uuid(u)) => u.hyphenated().encode_lower(&mut buf),
        Some(TrackingId::Custom(s)) => s,
    };
    let mut text = |t: &[u8]| {
        h.update((t.len() as u64).to_le_bytes());
        h.update(t);
    };
    text(tracking.as_bytes());
    text(r.level().as_str().as_bytes());
    text(r.target().as_bytes());
    let message = r.message().unwrap_or("").as_bytes();
    text(&message[..message.len().min(256)]);
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    DocId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

/// A document's `_id` (see [`doc_id`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DocId(pub(crate) uuid::Uuid);

impl std::fmt::Display for DocId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// The error of a failed span, taken from an ERROR event inside it (`#[instrument(err)]`'s):
/// `error.message` and `error.type` for the span's timer document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SpanError {
    message: String,
    ty: Option<String>,
}

/// The errors of ERROR events seen inside spans, by span tracking id, for the spans' timer
/// documents (which are encoded after them: the event is queued before its span closes). Only
/// events this layer ships are seen (`with_log_events(true)`). Bounded: the last
/// [`SpanErrors::MAX`] spans, messages cut at [`SpanErrors::MAX_MESSAGE`] bytes; entries stay
/// until evicted, so a retried timer is encoded with the same error.
#[derive(Debug, Default)]
pub(crate) struct SpanErrors {
    map: std::collections::HashMap<TrackingId, SpanError>,
    order: std::collections::VecDeque<TrackingId>,
}

impl SpanErrors {
    const MAX: usize = 1024;
    const MAX_MESSAGE: usize = 4096;

    /// Remembers the error of `r` if it is an ERROR event with an error inside a span (the
    /// last such event of a span wins: the one nearest its failure).
    fn observe(&mut self, r: &Record) {
        if r.kind() != RecordKind::Event || r.level() != logship_core::Level::ERROR {
            return;
        }
        let Some(span) = r.parent_tracking_id() else {
            return;
        };
        let Some(found) = find_error(r) else { return };
        let mut message = found.message();
        if message.len() > Self::MAX_MESSAGE {
            let mut end = Self::MAX_MESSAGE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let e = SpanError {
            message,
            ty: found.ty.map(|t| t.to_string()),
        };
        if self.map.insert(span.clone(), e).is_none() {
            self.order.push_back(span.clone());
            if self.order.len() > Self::MAX
                && let Some(old) = self.order.pop_front()
            {
                self.map.remove(&old);
            }
        }
    }

    fn get(&self, span: &TrackingId) -> Option<&SpanError> {
        self.map.get(span)
    }
}

/// The error a record carries: the first field named `error` (what `#[instrument(err)]`
/// records, as text) or holding a `&dyn Error`, and the first `error.type` field.
struct FoundError<'a> {
    value: Value<'a>,
    ty: Option<Value<'a>>,
}

impl FoundError<'_> {
    /// `error.message`: the error's own message, or the field's text.
    fn message(&self) -> String {
        match self.value {
            Value::Error(e) => e.message.clone(),
            Value::Str(s) => s.to_string(),
            other => other.to_string(),
        }
    }
}

/// The name of the field that becomes `error.message` (besides any `&dyn Error` value).
pub(crate) const ERROR_FIELD: &str = "error";
/// The name of the field that becomes `error.type`.
pub(crate) const ERROR_TYPE_FIELD: &str = "error.type";

/// Whether field `k` = `v` is the record's error: a `&dyn Error` value, or a field named
/// `error` holding anything but a boolean or empty text (`error = false` is a flag, not an
/// error).
fn is_error_field(k: &str, v: &Value<'_>) -> bool {
    match v {
        Value::Error(_) => true,
        Value::Bool(_) | Value::Str("") => false,
        _ => k == ERROR_FIELD,
    }
}

fn find_error(r: &Record) -> Option<FoundError<'_>> {
    let mut value = None;
    let mut ty = None;
    for (k, v) in r.fields() {
        if value.is_none() && is_error_field(k, &v) {
            value = Some(v);
        } else if ty.is_none() && k == ERROR_TYPE_FIELD {
            ty = Some(v);
        }
    }
    value.map(|value| FoundError { value, ty })
}

/// A tracking id as a JSON string literal (a UUID hyphenated, lower case).
fn write_tracking_id(out: &mut Vec<u8>, t: &TrackingId) {
    match t {
        TrackingId::Uuid(u) => {
            let mut buf = [b'"'; 38];
            u.hyphenated().encode_lower(&mut buf[1..37]);
            out.extend_from_slice(&buf);
        }
        TrackingId::Custom(s) => json_text::write_str(out, s),
    }
}

fn index_for_day(cfg: &EncoderConfig, ty: &str, day: u64) -> String {
    match &cfg.naming {
        IndexNaming::DataStream { namespace } => format!("{ty}-{}-{namespace}", cfg.dataset),
        IndexNaming::Dated { prefix, frequency } => {
            let day = i64::try_from(day).unwrap_or(i64::MAX);
            let (y, m, d) = json_text::civil_from_days(day);
            match frequency {
                IndexFrequency::Daily => format!("{prefix}-{y:04}.{m:02}.{d:02}"),
                IndexFrequency::Weekly => {
                    // 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Mondays.
                    let (y, m, d) = json_text::civil_from_days(day - (day + 3).rem_euclid(7));
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

/// `t` as a quoted RFC 3339 string in UTC with nanoseconds (32 bytes).
fn quoted_rfc3339(t: Timestamp) -> [u8; 32] {
    let mut text = Vec::with_capacity(32);
    text.push(b'"');
    json_text::write_rfc3339_nanos(&mut text, t);
    text.push(b'"');
    let mut q = [b'"'; 32];
    if let Some(src) = text.get(..32) {
        q.copy_from_slice(src);
    }
    q
}

/// A timestamp as a quoted RFC 3339 string in UTC with nanoseconds (32 bytes).
#[inline]
fn write_time(out: &mut Vec<u8>, t: Timestamp) {
    out.reserve(32);
    out.push(b'"');
    json_text::write_rfc3339_nanos(out, t);
    out.push(b'"');
}

/// A field value: integers stay integers (128-bit ones outside ±2⁵³ and non-finite floats
/// become text, as in `logship_core::json`), errors become their full chain as text.
fn write_value(out: &mut Vec<u8>, v: Value<'_>) {
    match v {
        Value::Error(e) => {
            // `ErrorChain`'s `Display`: the message, then ": <source>" for each source.
            out.push(b'"');
            json_text::write_escaped(out, &e.message);
            for s in &e.sources {
                out.extend_from_slice(b": ");
                json_text::write_escaped(out, s);
            }
            out.push(b'"');
        }
        other => json_text::write_value(out, other),
    }
}

/// A key the encoder itself writes: its name, and its JSON form `,"name":` (the names need
/// no escaping).
#[derive(Clone, Copy)]
struct Key {
    name: &'static str,
    json: &'static [u8],
}

macro_rules! key {
    ($name:literal) => {
        Key {
            name: $name,
            json: concat!(",\"", $name, "\":").as_bytes(),
        }
    };
}
use key;

/// One JSON object being written; merges the matching part of the additional fields on close.
struct Obj<'o, 'e> {
    out: &'o mut Vec<u8>,
    first: bool,
    extra: Option<&'e Map<String, Json>>,
    /// Keys written, kept only when there are additional fields to merge.
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

    /// Continues an object whose `{` and first member are already written (for fragments).
    fn continued(out: &'o mut Vec<u8>) -> Self {
        Self {
            out,
            first: false,
            extra: None,
            seen: Vec::new(),
        }
    }

    /// Writes a key the encoder defines.
    #[inline(always)]
    fn k(&mut self, key: Key) {
        let json = if self.first { &key.json[1..] } else { key.json };
        self.first = false;
        self.out.extend_from_slice(json);
        if self.extra.is_some() {
            self.seen.push(key.name.to_string());
        }
    }

    /// Writes a key from the record or the configuration (escaped).
    fn key_dyn(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        json_text::write_str(self.out, k);
        self.out.push(b':');
        if self.extra.is_some() {
            self.seen.push(k.to_string());
        }
    }

    #[inline(always)]
    fn str(&mut self, k: Key, v: &str) {
        self.k(k);
        json_text::write_str(self.out, v);
    }

    fn str_dyn(&mut self, k: &str, v: &str) {
        self.key_dyn(k);
        json_text::write_str(self.out, v);
    }

    /// Writes `k` and an already valid JSON value.
    #[inline(always)]
    fn lit(&mut self, k: Key, json: &[u8]) {
        self.k(k);
        self.out.extend_from_slice(json);
    }

    #[inline(always)]
    fn u64(&mut self, k: Key, v: u64) {
        self.k(k);
        json_text::write_u64(self.out, v);
    }

    #[inline(always)]
    fn time(&mut self, k: Key, t: Timestamp) {
        self.k(k);
        write_time(self.out, t);
    }

    fn value_dyn(&mut self, k: &str, v: Value<'_>) {
        self.key_dyn(k);
        write_value(self.out, v);
    }

    fn obj(&mut self, k: Key, f: impl FnOnce(&mut Obj<'_, 'e>)) {
        let extra = self
            .extra
            .and_then(|m| m.get(k.name))
            .and_then(Json::as_object);
        self.k(k);
        let mut child = Obj::open(self.out, extra);
        f(&mut child);
        child.close();
    }

    /// Writes a raw, already valid JSON value.
    fn raw(&mut self, k: Key, f: impl FnOnce(&mut Vec<u8>)) {
        self.k(k);
        f(self.out);
    }

    #[inline(always)]
    fn close(self) {
        if self.extra.is_none() {
            self.out.push(b'}');
        } else {
            self.close_merging();
        }
    }

    /// Appends the additional fields not written, then `}`.
    fn close_merging(self) {
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
                json_text::write_str(self.out, k);
                self.out.push(b':');
                let _ = serde_json::to_writer(&mut *self.out, v);
            }
        }
        self.out.push(b'}');
    }
}

/// Names already written in one object (the first occurrence of a field name wins), without
/// allocating for the first 16.
struct Names<'a> {
    small: [&'a str; 16],
    len: usize,
    more: Vec<&'a str>,
}

impl<'a> Names<'a> {
    fn new() -> Self {
        Self {
            small: [""; 16],
            len: 0,
            more: Vec::new(),
        }
    }

    fn contains(&self, k: &str) -> bool {
        self.small[..self.len].contains(&k) || self.more.contains(&k)
    }

    /// Adds `k`; false if it was already there.
    fn insert(&mut self, k: &'a str) -> bool {
        if self.contains(k) {
            return false;
        }
        if self.len < self.small.len() {
            self.small[self.len] = k;
            self.len += 1;
        } else {
            self.more.push(k);
        }
        true
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

/// What a document is written with besides the record.
struct DocContext<'a> {
    cfg: &'a EncoderConfig,
    frags: &'a Fragments,
    /// `@timestamp`, quoted.
    timestamp: &'a [u8],
    /// `event.created`, quoted.
    created: &'a [u8],
    /// What follows `process.pid` for this record's thread, up to the end of `agent`.
    process_tail: &'a [u8],
    /// `,"log":{…}` of the record's callsite, when known.
    log: Option<&'a [u8]>,
    /// For a timer: the error of an ERROR event inside the span, if one was seen.
    span_error: Option<&'a SpanError>,
}

/// `service` and `host` (when configured).
fn write_service_host(doc: &mut Obj<'_, '_>, cfg: &EncoderConfig) {
    let svc = &cfg.service;
    if svc.name.is_some() || svc.version.is_some() || svc.environment.is_some() {
        doc.obj(key!("service"), |s| {
            if let Some(v) = &svc.name {
                s.str(key!("name"), v);
            }
            if let Some(v) = &svc.version {
                s.str(key!("version"), v);
            }
            if let Some(v) = &svc.environment {
                s.str(key!("environment"), v);
            }
        });
    }
    if cfg.host_name.is_some() || cfg.host_id.is_some() || !cfg.host_ips.is_empty() {
        doc.obj(key!("host"), |h| {
            if let Some(n) = &cfg.host_name {
                h.str(key!("name"), n);
                h.str(key!("hostname"), n);
            }
            if let Some(id) = &cfg.host_id {
                h.str(key!("id"), id);
            }
            if !cfg.host_ips.is_empty() {
                h.raw(key!("ip"), |out| {
                    out.push(b'[');
                    for (i, ip) in cfg.host_ips.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        json_text::write_str(out, ip);
                    }
                    out.push(b']');
                });
            }
        });
    }
}

/// `agent`.
fn write_agent(doc: &mut Obj<'_, '_>, cfg: &EncoderConfig) {
    doc.obj(key!("agent"), |a| {
        a.str(key!("type"), AGENT_TYPE);
        a.str(key!("version"), env!("CARGO_PKG_VERSION"));
        if !cfg.agent_ephemeral_id.is_empty() {
            a.str(key!("ephemeral_id"), &cfg.agent_ephemeral_id);
        }
    });
}

/// `service`, `host`, `process` and `agent`: from the fragments when no additional field
/// merges into them.
fn write_static_blocks(doc: &mut Obj<'_, '_>, cx: &DocContext<'_>, r: &Record) {
    const BLOCKS: [&str; 4] = ["service", "host", "process", "agent"];
    let merged = doc
        .extra
        .is_some_and(|m| BLOCKS.iter().any(|k| m.contains_key(*k)));
    if !merged {
        // `first` is false here (`@timestamp` came first), as the fragments assume.
        doc.out.extend_from_slice(&cx.frags.service_host_pid);
        doc.out.extend_from_slice(cx.process_tail);
        return;
    }
    write_service_host(doc, cx.cfg);
    doc.obj(key!("process"), |p| {
        p.u64(key!("pid"), u64::from(cx.cfg.pid));
        if let Some(name) = r.thread().name {
            p.obj(key!("thread"), |t| t.str(key!("name"), name));
        }
    });
    write_agent(doc, cx.cfg);
}

/// `log`: the logger (target) and the callsite.
fn write_log(doc: &mut Obj<'_, '_>, r: &Record) {
    let is_metric = r.kind() == RecordKind::SpanTiming;
    doc.obj(key!("log"), |l| {
        l.str(key!("logger"), r.target());
        let file = r.file();
        if file.is_some() || is_metric {
            l.obj(key!("origin"), |o| {
                if let Some(f) = file {
                    o.obj(key!("file"), |fo| {
                        fo.str(key!("name"), f);
                        if let Some(line) = r.line() {
                            fo.u64(key!("line"), u64::from(line));
                        }
                    });
                }
                if is_metric {
                    o.str(key!("function"), r.name());
                }
            });
        }
    });
}

/// The `log` block of recent callsites: `,"log":{…}` depends only on the callsite's
/// metadata and the record kind. Direct-mapped on the metadata's address.
#[derive(Debug)]
struct LogCache {
    slots: Vec<Option<LogEntry>>,
}

#[derive(Debug)]
struct LogEntry {
    meta: &'static Metadata<'static>,
    kind: RecordKind,
    json: Vec<u8>,
}

impl LogCache {
    const SLOTS: usize = 64;

    fn new() -> Self {
        Self {
            slots: (0..Self::SLOTS).map(|_| None).collect(),
        }
    }

    /// `,"log":{…}` of `r`, when it came from a callsite.
    fn get(&mut self, r: &Record) -> Option<&[u8]> {
        let meta = r.metadata()?;
        let kind = r.kind();
        let i = (std::ptr::from_ref(meta).addr() >> 4) % Self::SLOTS;
        let slot = self.slots.get_mut(i)?;
        let hit = matches!(slot, Some(e) if std::ptr::eq(e.meta, meta) && e.kind == kind);
        if !hit {
            let mut json = Vec::new();
            write_log(&mut Obj::continued(&mut json), r);
            *slot = Some(LogEntry { meta, kind, json });
        }
        slot.as_ref().map(|e| e.json.as_slice())
    }
}

/// `"<name> took <ms>.<µs> ms"`.
fn write_timer_message(out: &mut Vec<u8>, name: &str, us: u64) {
    out.push(b'"');
    json_text::write_escaped(out, name);
    out.extend_from_slice(b" took ");
    json_text::write_u64(out, us / 1000);
    let frac = us % 1000;
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
    out.extend_from_slice(b" ms\"");
}

/// Writes the source line (without its `\n`).
fn write_document(
    cx: &DocContext<'_>,
    r: &Record,
    extra: Option<&Map<String, Json>>,
    fields: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    let cfg = cx.cfg;
    let timing = r.timing();
    let is_metric = r.kind() == RecordKind::SpanTiming;
    let mut doc = Obj::open(out, extra);
    doc.lit(key!("@timestamp"), cx.timestamp);
    doc.lit(key!("log.level"), level_json(&r.level()));
    match (r.message(), timing) {
        (Some(m), _) => doc.str(key!("message"), m),
        (None, Some(t)) => {
            doc.k(key!("message"));
            write_timer_message(doc.out, r.name(), micros(t.duration));
        }
        (None, None) => {}
    }
    doc.lit(
        key!("ecs.version"),
        concat!("\"", ecs_version!(), "\"").as_bytes(),
    );
    if doc.extra.is_some() {
        doc.seen.push("ecs".into());
    }
    doc.obj(key!("event"), |e| {
        e.lit(
            key!("kind"),
            if is_metric {
                b"\"metric\""
            } else {
                b"\"event\""
            },
        );
        // The record's tracking id (the caller's `tracking_id`, else the core's): ECS
        // `event.id`, "unique ID to describe the event"; not the `_id` (see `doc_id`).
        match r.tracking_id() {
            Some(TrackingId::Custom(s)) if s.is_empty() => {}
            Some(t) => {
                e.k(key!("id"));
                write_tracking_id(e.out, t);
            }
            None => {}
        }
        e.str(key!("dataset"), &cfg.dataset);
        if let Some(t) = timing {
            e.time(key!("start"), t.start);
            e.time(key!("end"), t.end);
            e.u64(key!("duration"), nanos(t.duration));
        }
        e.lit(key!("created"), cx.created);
        if let Some(t) = timing {
            let failed = t.failed
                || cx.span_error.is_some()
                || r.fields().any(|(k, v)| is_error_field(k, &v));
            e.lit(
                key!("outcome"),
                if failed {
                    b"\"failure\""
                } else {
                    b"\"success\""
                },
            );
        }
    });
    if let Some(t) = timing {
        doc.obj(key!("metrics"), |m| {
            m.str(key!("name"), r.name());
            m.obj(key!("duration"), |d| d.u64(key!("us"), micros(t.duration)));
            m.obj(key!("busy"), |d| d.u64(key!("us"), micros(t.busy)));
        });
    }
    if let IndexNaming::DataStream { namespace } = &cfg.naming {
        doc.obj(key!("data_stream"), |d| {
            d.str(key!("type"), EncoderConfig::stream_type(r.kind()));
            d.str(key!("dataset"), &cfg.dataset);
            d.str(key!("namespace"), namespace);
        });
    }
    match cx.log {
        Some(block) if doc.extra.is_none_or(|m| !m.contains_key("log")) => {
            doc.out.extend_from_slice(block);
            if doc.extra.is_some() {
                doc.seen.push("log".into());
            }
        }
        _ => write_log(&mut doc, r),
    }
    write_static_blocks(&mut doc, cx, r);
    // One pass over the fields: whether some are labels, the first error (it goes to
    // `error`), and `tracing.fields` written into `fields` for later (after labels and error):
    // the first field of a name wins, labels and the first error not repeated.
    let tracing_extra = doc
        .extra
        .and_then(|m| m.get("tracing"))
        .and_then(Json::as_object);
    let fields_extra = tracing_extra
        .and_then(|m| m.get("fields"))
        .and_then(Json::as_object);
    fields.clear();
    // The error: the first field named `error` or holding a `&dyn Error`, and the first
    // `error.type`; neither is repeated in `tracing.fields`.
    let mut error: Option<Value<'_>> = None;
    let mut error_type: Option<Value<'_>> = None;
    let mut plain = 0usize;
    let mut own_labels = false;
    {
        let mut f = Obj::open(fields, fields_extra);
        let mut names = Names::new();
        // `for_each` (the chain's `fold`), not `for`: no per-item state checks of the
        // chained iterator.
        r.fields().for_each(|(k, v)| {
            if is_label(k).is_some() {
                own_labels = true;
                return;
            }
            if error.is_none() && is_error_field(k, &v) {
                error = Some(v);
                return;
            }
            if error_type.is_none() && k == ERROR_TYPE_FIELD {
                error_type = Some(v);
                return;
            }
            plain += 1;
            if names.insert(k) {
                f.value_dyn(k, v);
            }
        });
        f.close();
    }
    let has_spans = r.spans().next().is_some();
    let span_labels = has_spans
        && r.spans()
            .any(|s| s.fields().any(|(k, _)| is_label(k).is_some()));
    if !own_labels && !span_labels && doc.extra.is_none_or(|m| !m.contains_key("labels")) {
        // Only the static labels (or none).
        if !cx.frags.labels.is_empty() {
            doc.out.extend_from_slice(&cx.frags.labels);
            if doc.extra.is_some() {
                doc.seen.push("labels".into());
            }
        }
    } else {
        write_labels(&mut doc, cfg, r);
    }
    let span_error = if error.is_none() { cx.span_error } else { None };
    if error.is_some() || error_type.is_some() || span_error.is_some() {
        doc.obj(key!("error"), |eo| {
            match error {
                Some(Value::Error(e)) => {
                    eo.str(key!("message"), &e.message);
                    if !e.sources.is_empty() {
                        eo.k(key!("stack_trace"));
                        eo.out.push(b'"');
                        json_text::write_escaped(eo.out, &e.message);
                        for s in &e.sources {
                            eo.out.extend_from_slice(b"\\ncaused by: ");
                            json_text::write_escaped(eo.out, s);
                        }
                        eo.out.push(b'"');
                    }
                }
                Some(Value::Str(text)) => eo.str(key!("message"), text),
                Some(other) => eo.str(key!("message"), &other.to_string()),
                None => {
                    if let Some(se) = span_error {
                        eo.str(key!("message"), &se.message);
                    }
                }
            }
            match (error_type, span_error) {
                (Some(Value::Str(t)), _) => eo.str(key!("type"), t),
                (Some(t), _) => eo.str(key!("type"), &t.to_string()),
                (None, Some(SpanError { ty: Some(t), .. })) => eo.str(key!("type"), t),
                _ => {}
            }
        });
    }
    // OpenTelemetry ids (feature `opentelemetry`): ECS tracing fields `trace.id` and `span.id`,
    // https://www.elastic.co/guide/en/ecs/current/ecs-tracing.html (their OTel mapping:
    // `trace_id`, `span_id`). No `transaction.id`: ECS marks it not applicable to OTel, and a
    // span's local root is not known here.
    if let Some(tc) = r.trace_context() {
        doc.obj(key!("trace"), |t| {
            t.str(key!("id"), tc.trace_id_hex().as_str())
        });
        doc.obj(key!("span"), |t| {
            t.str(key!("id"), tc.span_id_hex().as_str())
        });
    }
    let parent = r.parent_tracking_id();
    if plain > 0 || has_spans || parent.is_some() || !r.correlators().is_empty() {
        doc.obj(key!("tracing"), |t| {
            if let Some(p) = parent {
                t.k(key!("parent_id"));
                write_tracking_id(t.out, p);
            }
            if !r.correlators().is_empty() {
                t.raw(key!("correlators"), |out| {
                    out.push(b'[');
                    for (i, c) in r.correlators().iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        json_text::write_str(out, c);
                    }
                    out.push(b']');
                });
            }
            if plain > 0 {
                t.k(key!("fields"));
                t.out.extend_from_slice(fields);
            }
            if has_spans {
                t.raw(key!("spans"), |out| {
                    out.push(b'[');
                    for (i, s) in r.spans().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        let mut so = Obj::open(out, None);
                        so.str(key!("name"), s.name());
                        let mut fields =
                            s.fields().filter(|(k, _)| is_label(k).is_none()).peekable();
                        if fields.peek().is_some() {
                            so.obj(key!("fields"), |f| {
                                let mut names = Names::new();
                                for (k, v) in fields {
                                    if names.insert(k) {
                                        f.value_dyn(k, v);
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

/// `labels`: static ones, then `labels.*` fields of enclosing spans (outermost first), then
/// the record's own; a later value replaces an earlier one with the same key.
fn write_labels(doc: &mut Obj<'_, '_>, cfg: &EncoderConfig, r: &Record) {
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
    for (k, v) in r.fields() {
        if let Some(k) = is_label(k) {
            add_label(k, v, &mut labels);
        }
    }
    if !labels.is_empty() {
        doc.obj(key!("labels"), |l| {
            for (k, v) in &labels {
                l.str_dyn(k, v);
            }
        });
    }
}

/// The `log.level` value, quoted.
fn level_json(l: &logship_core::Level) -> &'static [u8] {
    match *l {
        logship_core::Level::ERROR => b"\"error\"",
        logship_core::Level::WARN => b"\"warn\"",
        logship_core::Level::INFO => b"\"info\"",
        logship_core::Level::DEBUG => b"\"debug\"",
        _ => b"\"trace\"",
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
        let r = timer();
        let got = encode(dated(), &r);
        let id = doc_id(&r);
        let thread = std::thread::current()
            .name()
            .map(str::to_string)
            .unwrap_or_default();
        let want = format!(
            concat!(
                r#"{{"create":{{"_index":"metrics-2023.11.14","_id":"{}"}}}}"#,
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
            id,
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
            format!(
                r#"{{"create":{{"_index":"metrics-2023.11.14","_id":"{}"}}}}"#,
                doc_id(&r)
            )
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
        // No tracking id (a record not prepared by a pipeline): still an `_id`, no `event.id`.
        assert!(
            got.starts_with(r#"{"create":{"_index":"metrics-2023.11.14","_id":""#),
            "{got}"
        );
        assert!(!got.contains(r#""event":{"kind":"metric","id""#), "{got}");
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
    fn timestamps_match_chrono_within_and_across_seconds() {
        let mut enc = Encoder::new(dated());
        let mut t = 0u64;
        while t < 16_000_000_000_000_000_000 {
            // The second's text is reused for the next instants of the same second.
            for n in [t, t + 1, t + 999, t.saturating_add(1_000_000_000)] {
                let ts = Timestamp::from_nanos(n);
                let want = format!("\"{}\"", ts.to_rfc3339());
                assert_eq!(String::from_utf8_lossy(&enc.quoted_time(ts)), want);
                assert_eq!(String::from_utf8_lossy(&quoted_rfc3339(ts)), want);
            }
            t = t.saturating_mul(3).saturating_add(86_399_999_999_999);
        }
    }

    /// Records from `tracing` callsites, as the pipeline hands them over.
    fn captured(emit: impl FnOnce()) -> Vec<Record> {
        use logship_core::{Batch, Outcome, PipelineBuilder, SendContext, Sink};
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::prelude::*;
        struct Grab(Arc<Mutex<Vec<Record>>>);
        impl Sink for Grab {
            fn name(&self) -> &'static str {
                "grab"
            }
            async fn send(&mut self, batch: &Batch, _cx: &mut SendContext) -> Outcome {
                if let Ok(mut v) = self.0.lock() {
                    v.extend(batch.records().iter().map(|r| (**r).clone()));
                }
                Outcome::Delivered
            }
        }
        let got = Arc::new(Mutex::new(Vec::new()));
        let Ok((layer, guard)) = PipelineBuilder::new().build(Grab(got.clone())) else {
            return Vec::new();
        };
        {
            let _d = tracing_subscriber::registry().with(layer).set_default();
            emit();
        }
        let _ = guard.flush(Duration::from_secs(10));
        got.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The `log` block kept per callsite is what writing it gives (an empty `log` in the
    /// additional fields changes nothing but turns the cache off).
    #[test]
    fn callsite_log_blocks_match_the_written_ones() {
        let records = captured(|| {
            for i in 0..3 {
                tracing::info!(n = i, "a");
                tracing::warn!(target: "other::target", "b \"q\"");
                let s = tracing::info_span!("timed", i);
                drop(s);
            }
        });
        assert_eq!(records.len(), 9);
        let mut plain = Encoder::new(dated());
        let mut uncached = {
            let mut cfg = dated();
            cfg.extra = serde_json::json!({"log": {}})
                .as_object()
                .cloned()
                .unwrap_or_default();
            Encoder::new(cfg)
        };
        let created = Timestamp::from_nanos(T0);
        for r in &records {
            assert!(r.metadata().is_some());
            let (mut a, mut b) = (Vec::new(), Vec::new());
            plain.encode(r, created, &mut a);
            uncached.encode(r, created, &mut b);
            assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
        }
        let text = {
            let mut out = Vec::new();
            plain.encode(&records[1], created, &mut out);
            String::from_utf8(out).unwrap_or_default()
        };
        assert!(
            text.contains(r#""log":{"logger":"other::target","origin":{"file":{"name":"#),
            "{text}"
        );
    }

    fn event_with(tracking: &str, nanos: u64) -> Record {
        Record::event(Level::INFO, "shop")
            .with_timestamp(Timestamp::from_nanos(nanos))
            .with_message("placed")
            .with_tracking_id(TrackingId::Custom(tracking.into()))
            .build()
    }

    fn action_and_doc(line_pair: &str) -> (Json, Json) {
        let mut lines = line_pair.lines();
        let a = serde_json::from_str(lines.next().unwrap_or_default()).unwrap_or_default();
        let d = serde_json::from_str(lines.next().unwrap_or_default()).unwrap_or_default();
        (a, d)
    }

    #[test]
    fn ids_name_records_not_tracking_ids() {
        // Three events sharing the caller's tracking id: three `_id`s, one `event.id`.
        let records: Vec<Record> = (0..3).map(|i| event_with("order-42", T0 + i)).collect();
        let mut ids = std::collections::HashSet::new();
        for r in &records {
            let (action, doc) = action_and_doc(&encode(dated(), r));
            assert_eq!(doc["event"]["id"], "order-42");
            let id = action["create"]["_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert_ne!(id, "order-42");
            let u = uuid::Uuid::parse_str(&id).unwrap_or_default();
            assert_eq!(u.get_version_num(), 8, "{id}");
            ids.insert(id);
        }
        assert_eq!(ids.len(), 3);
        // The same record keeps its id, also read back from its dead-letter JSON.
        let r = &records[0];
        assert_eq!(doc_id(r), doc_id(r));
        let back = logship_core::json::record_from_json(&logship_core::json::record_to_json(r));
        assert_eq!(back.map(|b| doc_id(&b)).ok(), Some(doc_id(r)));
        assert_eq!(doc_id(r).to_string().len(), 36);
    }

    #[test]
    fn empty_and_long_tracking_ids_still_make_valid_documents() {
        let (action, doc) = action_and_doc(&encode(dated(), &event_with("", T0)));
        assert_eq!(action["create"]["_id"].as_str().map(str::len), Some(36));
        assert!(doc["event"].get("id").is_none(), "{doc}");
        let long = "x".repeat(600);
        let (action, doc) = action_and_doc(&encode(dated(), &event_with(&long, T0)));
        assert_eq!(action["create"]["_id"].as_str().map(str::len), Some(36));
        assert_eq!(doc["event"]["id"], long.as_str());
    }

    #[test]
    fn error_text_and_type_fields_fill_ecs_error() {
        // What `#[instrument(err)]` records: `error` as text (Display or Debug).
        let r = Record::event(Level::ERROR, "shop")
            .with_field("error", "disk full")
            .with_field("error.type", "std::io::Error")
            .with_field("order_id", 7_u64)
            .build();
        let (_, doc) = action_and_doc(&encode(dated(), &r));
        assert_eq!(doc["error"]["message"], "disk full");
        assert_eq!(doc["error"]["type"], "std::io::Error");
        assert!(doc["tracing"]["fields"].get("error").is_none(), "{doc}");
        assert!(
            doc["tracing"]["fields"].get("error.type").is_none(),
            "{doc}"
        );
        assert_eq!(doc["tracing"]["fields"]["order_id"], 7);
        // A timer whose span recorded an `error` field fails with that message.
        let t = Record::span_timing("f", Timestamp::from_nanos(T0), Duration::from_nanos(10))
            .with_field("error", "timed out")
            .build();
        let (_, doc) = action_and_doc(&encode(dated(), &t));
        assert_eq!(doc["error"]["message"], "timed out");
        assert_eq!(doc["event"]["outcome"], "failure");
        assert!(doc["error"].get("type").is_none());
        // A boolean or empty `error` field is no error.
        for v in [
            logship_core::FieldValue::Bool(false),
            logship_core::FieldValue::Str(String::new()),
        ] {
            let t = Record::span_timing("g", Timestamp::from_nanos(T0), Duration::from_nanos(1))
                .with_field("error", v)
                .build();
            let (_, doc) = action_and_doc(&encode(dated(), &t));
            assert!(doc.get("error").is_none(), "{doc}");
            assert_eq!(doc["event"]["outcome"], "success");
            assert!(doc["tracing"]["fields"].get("error").is_some(), "{doc}");
        }
    }

    #[test]
    fn an_error_event_inside_a_span_names_the_spans_error() {
        let captured = captured(|| {
            {
                let s = tracing::info_span!("load");
                let _e = s.enter();
                tracing::warn!(error = "retrying", "handled");
                tracing::error!(error = "first", "failed once");
                tracing::error!(error = "no route to host", error.type = "Io", "failed");
            }
            let _ok = tracing::info_span!("fine").entered();
        });
        // Events and timers through one encoder, in capture order.
        let mut enc = Encoder::new(dated());
        let docs: Vec<Json> = captured
            .iter()
            .map(|r| {
                let mut out = Vec::new();
                enc.encode(r, Timestamp::from_nanos(T0), &mut out);
                action_and_doc(&String::from_utf8(out).unwrap_or_default()).1
            })
            .collect();
        let timer = |name: &str| {
            docs.iter()
                .find(|d| d["metrics"]["name"] == name)
                .cloned()
                .unwrap_or_default()
        };
        let load = timer("load");
        assert_eq!(load["error"]["message"], "no route to host", "{load}");
        assert_eq!(load["error"]["type"], "Io");
        assert_eq!(load["event"]["outcome"], "failure");
        let fine = timer("fine");
        assert!(fine.get("error").is_none(), "{fine}");
        assert_eq!(fine["event"]["outcome"], "success");
        // The WARN event keeps its own error, and does not mark the span.
        let warn = docs
            .iter()
            .find(|d| d["log.level"] == "warn")
            .cloned()
            .unwrap_or_default();
        assert_eq!(warn["error"]["message"], "retrying");
    }

    #[test]
    fn host_id_is_written_with_the_host() {
        let mut cfg = dated();
        cfg.host_name = Some("web1".into());
        let mut enc = Encoder::new(cfg);
        enc.set_host(vec!["10.0.0.5".into()], Some("4c4c4544004c4c".into()));
        let mut out = Vec::new();
        enc.encode(&event_with("a", T0), Timestamp::from_nanos(T0), &mut out);
        let (_, doc) = action_and_doc(&String::from_utf8(out).unwrap_or_default());
        assert_eq!(doc["host"]["id"], "4c4c4544004c4c");
        assert_eq!(doc["host"]["name"], "web1");
        assert_eq!(doc["host"]["ip"][0], "10.0.0.5");
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
