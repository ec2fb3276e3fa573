//! The JSON form of a [`Record`], used by the JSON-lines sink and the dead-letter folder.
//!
//! One object per record (keys are written in alphabetical order; absent values are omitted): `timestamp` (RFC 3339
//! UTC, ns), `kind` (`event`/`span_timing`), `level`, `target`, `name`, `message`, `fields`
//! (typed: integers stay integers; 128-bit integers outside ±2⁵³ and non-finite floats as
//! text; errors as `{"message","sources"}`), `spans` (`[{"name","fields"}]`, outermost first),
//! `source_fqn`, `correlators`, `tracking_id`, `parent_tracking_id`, `trace_id` and `span_id`
//! (OpenTelemetry, lowercase hex; see [`Record::trace_context`]), `location`, `snapshots`,
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
    if let Some(t) = r.trace_context() {
        m.insert("trace_id".into(), json!(t.trace_id_hex().as_str()));
        m.insert("span_id".into(), json!(t.span_id_hex().as_str()));
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

/// Why a JSON value is not a record in the [module's](self) form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a logship JSON record: {0}")]
pub struct JsonRecordError(String);

/// Rebuilds a record from its JSON form (as written by the JSON-lines sink and the dead-letter
/// folder), for replaying dead letters. JSON loses some types: integers come back as i64 (or
/// u64 above `i64::MAX`), 128-bit integers written as text come back as text, and spans keep
/// their names and fields (the innermost one gets the record's `parent_tracking_id`).
///
/// # Errors
/// [`JsonRecordError`] when `v` is not an object, or `timestamp`, `level` or `target` is
/// missing or malformed.
pub fn record_from_json(v: &Json) -> Result<Record, JsonRecordError> {
    use std::borrow::Cow;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::record::{ErrorChain, FieldValue, SpanContext, TrackingId};
    use crate::{Snapshot, SourceFqn, Timestamp};

    let err = |m: &str| JsonRecordError(m.to_string());
    let o = v.as_object().ok_or_else(|| err("expected an object"))?;
    let ts = o
        .get("timestamp")
        .and_then(Json::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .ok_or_else(|| err("`timestamp` is missing or not RFC 3339"))?;
    let ts =
        Timestamp::from_nanos(u64::try_from(ts.timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0));
    let level = match o.get("level").and_then(Json::as_str) {
        Some("ERROR") => tracing_core::Level::ERROR,
        Some("WARN") => tracing_core::Level::WARN,
        Some("INFO") => tracing_core::Level::INFO,
        Some("DEBUG") => tracing_core::Level::DEBUG,
        Some("TRACE") => tracing_core::Level::TRACE,
        _ => return Err(err("`level` is missing or not TRACE..ERROR")),
    };
    let target = o
        .get("target")
        .and_then(Json::as_str)
        .ok_or_else(|| err("`target` is missing"))?;
    let to_value = |v: &Json| -> FieldValue {
        match v {
            Json::Bool(b) => FieldValue::Bool(*b),
            Json::Number(n) => n
                .as_i64()
                .map(FieldValue::I64)
                .or_else(|| n.as_u64().map(FieldValue::U64))
                .unwrap_or_else(|| FieldValue::F64(n.as_f64().unwrap_or(0.0))),
            Json::String(s) => FieldValue::Str(s.clone()),
            Json::Object(e) if e.contains_key("message") && e.contains_key("sources") => {
                FieldValue::Error(ErrorChain {
                    message: e
                        .get("message")
                        .and_then(Json::as_str)
                        .unwrap_or("")
                        .to_string(),
                    sources: e
                        .get("sources")
                        .and_then(Json::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|s| s.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            }
            other => FieldValue::Str(other.to_string()),
        }
    };
    let timing = o.get("timing").and_then(Json::as_object);
    let mut b = match timing {
        Some(t) => {
            let start = t
                .get("start")
                .and_then(Json::as_str)
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .and_then(|d| d.timestamp_nanos_opt())
                .map_or(ts, |n| Timestamp::from_nanos(u64::try_from(n).unwrap_or(0)));
            let dur =
                Duration::from_nanos(t.get("duration_ns").and_then(Json::as_u64).unwrap_or(0));
            let busy = Duration::from_nanos(t.get("busy_ns").and_then(Json::as_u64).unwrap_or(0));
            let name = o.get("name").and_then(Json::as_str).unwrap_or(target);
            Record::span_timing(name, start, dur).with_busy(
                busy,
                t.get("failed").and_then(Json::as_bool).unwrap_or(false),
            )
        }
        None => Record::event(level, target),
    };
    b = b.with_timestamp(ts);
    if let Some(m) = o.get("message").and_then(Json::as_str) {
        b = b.with_message(m);
    }
    if let Some(f) = o.get("fields").and_then(Json::as_object) {
        for (k, v) in f {
            b = b.with_field(Cow::Owned(k.clone()), to_value(v));
        }
    }
    if let Some(f) = o
        .get("source_fqn")
        .and_then(Json::as_str)
        .and_then(|s| SourceFqn::parse(s).ok())
    {
        b = b.with_source_fqn(f);
    }
    for c in o
        .get("correlators")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(c) = c.as_str() {
            b = b.with_correlator(c);
        }
    }
    if let Some(t) = o.get("tracking_id").and_then(Json::as_str) {
        b = b.with_tracking_id(match uuid::Uuid::parse_str(t) {
            Ok(u) => TrackingId::Uuid(u),
            Err(_) => TrackingId::Custom(t.into()),
        });
    }
    if let Some(t) = o
        .get("trace_id")
        .and_then(Json::as_str)
        .zip(o.get("span_id").and_then(Json::as_str))
        .and_then(|(t, s)| crate::TraceContext::from_hex(t, s))
    {
        b = b.with_trace_context(t);
    }
    if let Some(l) = o.get("location").and_then(Json::as_str) {
        b = b.with_location(l);
    }
    if let Some(s) = o.get("snapshots") {
        for snap in serde_json::from_value::<Vec<Snapshot>>(s.clone()).unwrap_or_default() {
            b = b.with_snapshot(snap);
        }
    }
    if let (Some(m), Some(f), Some(l)) = (
        o.get("module_path").and_then(Json::as_str),
        o.get("file").and_then(Json::as_str),
        o.get("line").and_then(Json::as_u64),
    ) {
        b = b.with_source_position(m, f, u32::try_from(l).unwrap_or(0));
    }
    let mut rec = b.build();
    if rec.level != level {
        rec.level = level;
    }
    let spans: Vec<&Json> = o
        .get("spans")
        .and_then(Json::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let parent_id = o.get("parent_tracking_id").and_then(Json::as_str);
    let mut parent: Option<Arc<SpanContext>> = None;
    for (i, s) in spans.iter().enumerate() {
        let name = s
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        let fields = s
            .get("fields")
            .and_then(Json::as_object)
            .map(|f| {
                f.iter()
                    .map(|(k, v)| (Cow::Owned(k.clone()), to_value(v)))
                    .collect()
            })
            .unwrap_or_default();
        let tracking_id = match (i + 1 == spans.len(), parent_id) {
            (true, Some(p)) => match uuid::Uuid::parse_str(p) {
                Ok(u) => TrackingId::Uuid(u),
                Err(_) => TrackingId::Custom(p.into()),
            },
            _ => TrackingId::new(),
        };
        parent = Some(Arc::new(SpanContext {
            meta: None,
            name: Cow::Owned(name),
            target: Cow::Owned(target.to_string()),
            fields,
            tracking_id: tracking_id.into(),
            parent: parent.take(),
            source_fqn: None,
            correlators: Vec::new(),
            location: None,
            trace: std::sync::OnceLock::new(),
        }));
    }
    if rec.kind == RecordKind::Event {
        rec.span = parent;
    }
    Ok(rec)
}

/// One line of a dead-letter folder: the record, or where it was and why it is not one.
pub type DeadLetterLine = Result<Record, (std::path::PathBuf, usize, JsonRecordError)>;

/// Reads every record of a dead-letter folder (`*.ndjson` files, oldest name first). Lines
/// that are not records are returned as errors with their file and line number.
///
/// # Errors
/// The I/O error when the folder cannot be read.
pub fn read_dead_letters(dir: &std::path::Path) -> std::io::Result<Vec<DeadLetterLine>> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let r = serde_json::from_str::<Json>(line)
                .map_err(|e| JsonRecordError(e.to_string()))
                .and_then(|v| record_from_json(&v));
            out.push(r.map_err(|e| (f.clone(), i + 1, e)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_what_json_can_carry() {
        let r = Record::event(tracing_core::Level::WARN, "shop")
            .with_message("m")
            .with_field("n", 5_i64)
            .with_field("s", "x")
            .with_correlator("c")
            .with_source_fqn(
                crate::SourceFqn::parse("APPL=a#SERVER=b").unwrap_or_else(|e| panic!("{e}")),
            )
            .build();
        let j = record_to_json(&r);
        let back = record_from_json(&j).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(record_to_json(&back)["fields"], j["fields"]);
        assert_eq!(back.message(), Some("m"));
        assert_eq!(back.level(), tracing_core::Level::WARN);
        assert_eq!(back.correlators(), ["c"]);
        assert!(record_from_json(&json!({"level": "INFO"})).is_err());
    }

    #[test]
    fn trace_ids_are_lowercase_hex_and_round_trip() {
        let t = crate::TraceContext::new(
            [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36,
            ],
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
        )
        .unwrap_or_else(|| panic!("valid ids"));
        let r = Record::event(tracing_core::Level::INFO, "shop")
            .with_trace_context(t)
            .build();
        let j = record_to_json(&r);
        // The W3C spec's own example ids.
        assert_eq!(j["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(j["span_id"], "00f067aa0ba902b7");
        let back = record_from_json(&j).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.trace_context(), Some(&t));
        let none = record_to_json(&Record::event(tracing_core::Level::INFO, "shop").build());
        assert!(none.get("trace_id").is_none() && none.get("span_id").is_none());
        assert_eq!(
            crate::TraceContext::from_hex("4BF92F3577B34DA6A3CE929D0E0E4736", "00F067AA0BA902B7"),
            Some(t)
        );
        assert_eq!(
            crate::TraceContext::from_hex("0".repeat(32).as_str(), "00f067aa0ba902b7"),
            None
        );
        assert_eq!(
            crate::TraceContext::from_hex("4bf9", "00f067aa0ba902b7"),
            None
        );
        assert_eq!(
            crate::TraceContext::from_hex("zz".repeat(16).as_str(), "00f067aa0ba902b7"),
            None
        );
    }
}
