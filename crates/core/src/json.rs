//! The JSON form of a [`Record`], used by the JSON-lines sink and the dead-letter folder.
//!
//! One object per record (keys are written in alphabetical order; absent values are omitted): `timestamp` (RFC 3339
//! UTC, ns), `kind` (`event`/`span_timing`), `level`, `target`, `name`, `message`, `fields`
//! (typed: integers stay integers; 128-bit integers outside ±2⁵³ and non-finite floats as
//! text; errors as `{"message","sources"}`), `spans` (`[{"name","fields"}]`, outermost first),
//! `source_fqn`, `correlators`, `tracking_id`, `parent_tracking_id`, `location`, `snapshots`,
//! `timing` (`start`, `end`, `duration_ns`, `busy_ns`, `failed`), `thread` (`id`, `name`),
//! `module_path`, `file`, `line`.

use serde_json::{Map, Value as Json, json};

use crate::record::RecordKind;
use crate::undelivered::Cause;
use crate::{Record, Value};

/// A field value as JSON.
pub fn value_to_json(v: Value<'_>) -> Json {
    const SAFE: i128 = 1 << 53;
    match v {
        Value::Str(s) => Json::String(s.to_string()),
        Value::I64(v) => json!(v),
        Value::U64(v) => json!(v),
        Value::I128(v) if (-SAFE..=SAFE).contains(&v) => json!(v as i64),
        Value::I128(v) => Json::String(v.to_string()),
        Value::U128(v) if v <= SAFE as u128 => json!(v as u64),
        Value::U128(v) => Json::String(v.to_string()),
        Value::F64(v) if v.is_finite() => json!(v),
        Value::F64(v) => Json::String(v.to_string()),
        Value::Bool(v) => json!(v),
        Value::Error(e) => json!({"message": e.message, "sources": e.sources}),
    }
}

/// The record as a JSON object (see the [module docs](self)).
pub fn record_to_json(r: &Record) -> Json {
    let mut m = Map::new();
    m.insert("timestamp".into(), json!(r.timestamp().to_rfc3339()));
    m.insert(
        "kind".into(),
        json!(match r.kind() {
            RecordKind::Event => "event",
            RecordKind::SpanTiming => "span_timing",
        }),
    );
    m.insert("level".into(), json!(r.level().as_str()));
    m.insert("target".into(), json!(r.target()));
    m.insert("name".into(), json!(r.name()));
    if let Some(msg) = r.message() {
        m.insert("message".into(), json!(msg));
    }
    let fields: Map<String, Json> = r
        .fields()
        .map(|(k, v)| (k.to_string(), value_to_json(v)))
        .collect();
    if !fields.is_empty() {
        m.insert("fields".into(), Json::Object(fields));
    }
    let spans: Vec<Json> = r
        .spans()
        .map(|s| {
            let f: Map<String, Json> = s
                .fields()
                .map(|(k, v)| (k.to_string(), value_to_json(v)))
                .collect();
            json!({"name": s.name(), "fields": f})
        })
        .collect();
    if !spans.is_empty() {
        m.insert("spans".into(), Json::Array(spans));
    }
    if let Some(f) = r.source_fqn() {
        m.insert("source_fqn".into(), json!(f.as_str()));
    }
    if !r.correlators().is_empty() {
        m.insert("correlators".into(), json!(r.correlators()));
    }
    if let Some(t) = r.tracking_id() {
        m.insert("tracking_id".into(), json!(t.to_string()));
    }
    if let Some(t) = r.parent_tracking_id() {
        m.insert("parent_tracking_id".into(), json!(t.to_string()));
    }
    if let Some(l) = r.location() {
        m.insert("location".into(), json!(l));
    }
    if !r.snapshots().is_empty() {
        m.insert(
            "snapshots".into(),
            serde_json::to_value(r.snapshots()).unwrap_or(Json::Null),
        );
    }
    if let Some(t) = r.timing() {
        m.insert(
            "timing".into(),
            json!({
                "start": t.start.to_rfc3339(),
                "end": t.end.to_rfc3339(),
                "duration_ns": u64::try_from(t.duration.as_nanos()).unwrap_or(u64::MAX),
                "busy_ns": u64::try_from(t.busy.as_nanos()).unwrap_or(u64::MAX),
                "failed": t.failed,
            }),
        );
    }
    m.insert(
        "thread".into(),
        json!({"id": r.thread().id, "name": r.thread().name}),
    );
    if let Some(v) = r.module_path() {
        m.insert("module_path".into(), json!(v));
    }
    if let Some(v) = r.file() {
        m.insert("file".into(), json!(v));
    }
    if let Some(v) = r.line() {
        m.insert("line".into(), json!(v));
    }
    Json::Object(m)
}

/// One NDJSON line (with the trailing newline), optionally with an `undelivered` object.
pub(crate) fn record_line(r: &Record, undelivered: Option<(Cause, Option<&str>)>) -> String {
    let mut j = record_to_json(r);
    if let (Some((cause, reason)), Json::Object(m)) = (undelivered, &mut j) {
        m.insert(
            "undelivered".into(),
            json!({"cause": cause.as_str(), "reason": reason}),
        );
    }
    let mut s = j.to_string();
    s.push('\n');
    s
}
