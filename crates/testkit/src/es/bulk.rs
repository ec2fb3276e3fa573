//! The `_bulk` body: NDJSON parsing (the Elasticsearch bulk API reference, <https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html> "Bulk request") and its application to the
//! in-memory store, producing items in the exact shape Elasticsearch answers with (§3 "Bulk
//! response").
//!
//! Everything here is pure and synchronous, so the unit tests at the bottom pin the parser's
//! verdicts without a socket.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;

/// A bulk action (`index`, `create`, `update`, `delete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Index,
    Create,
    Update,
    Delete,
}

impl Op {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Index => "index",
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// The source line of an item, as far as it could be parsed.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// `delete` has none.
    None,
    /// A JSON object.
    Doc(Value),
    /// Not a JSON object; the reason becomes an item-level `document_parsing_exception`
    /// (Elasticsearch parses sources on the shard, so one bad source fails only its item).
    Invalid(String),
}

/// One parsed action (and its source line).
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) op: Op,
    pub(crate) index: String,
    pub(crate) id: Option<String>,
    pub(crate) source: Source,
}

/// A whole-request failure: HTTP status, error type and reason, answered in the ES error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestError {
    pub(crate) status: u16,
    pub(crate) kind: &'static str,
    pub(crate) reason: String,
}

impl RequestError {
    pub(crate) fn bad_request(kind: &'static str, reason: impl Into<String>) -> Self {
        RequestError {
            status: 400,
            kind,
            reason: reason.into(),
        }
    }
}

/// Metadata keys Elasticsearch accepts on an action line; anything else fails the request.
const KNOWN_PARAMS: &[&str] = &[
    "_index",
    "_id",
    "routing",
    "pipeline",
    "require_alias",
    "require_data_stream",
    "if_seq_no",
    "if_primary_term",
    "version",
    "version_type",
    "retry_on_conflict",
    "dynamic_templates",
    "_source",
    "list_executed_pipelines",
];

/// Parses a `_bulk` body. `default_index` is the `{target}` of `POST /{target}/_bulk`.
///
/// Rules (as Elasticsearch): every line, the last included, ends in `\n`; blank action lines are
/// skipped; `index`/`create`/`update` take the next line as source; an unknown action or
/// metadata key, a missing index or a missing `_id` on `update`/`delete` fails the request.
pub(crate) fn parse(body: &[u8], default_index: Option<&str>) -> Result<Vec<Item>, RequestError> {
    if body.is_empty() {
        return Err(RequestError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: no requests added;",
        ));
    }
    if body.last() != Some(&b'\n') {
        return Err(RequestError::bad_request(
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]",
        ));
    }
    let lines: Vec<&[u8]> = body[..body.len() - 1].split(|b| *b == b'\n').collect();
    let mut items = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let line = lines[i];
        i += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (op, meta) = parse_action(line, line_no)?;
        let index = match meta.get("_index") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(RequestError::bad_request(
                    "illegal_argument_exception",
                    format!(
                        "Action/metadata line [{line_no}]: [_index] must be a string, found {other}"
                    ),
                ));
            }
            None => default_index.map(str::to_string),
        };
        let id = match meta.get("_id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(other) => {
                return Err(RequestError::bad_request(
                    "illegal_argument_exception",
                    format!(
                        "Action/metadata line [{line_no}]: [_id] must be a string, found {other}"
                    ),
                ));
            }
        };
        let Some(index) = index else {
            return Err(RequestError::bad_request(
                "action_request_validation_exception",
                "Validation Failed: 1: index is missing;",
            ));
        };
        if matches!(op, Op::Update | Op::Delete) && id.is_none() {
            return Err(RequestError::bad_request(
                "action_request_validation_exception",
                "Validation Failed: 1: id is missing;",
            ));
        }
        let source = if op == Op::Delete {
            Source::None
        } else {
            let Some(src) = lines.get(i) else {
                return Err(RequestError::bad_request(
                    "illegal_argument_exception",
                    format!("Malformed bulk request: action line [{line_no}] has no source line"),
                ));
            };
            i += 1;
            match serde_json::from_slice::<Value>(src) {
                Ok(v @ Value::Object(_)) => Source::Doc(v),
                Ok(other) => Source::Invalid(format!(
                    "[1:1] failed to parse: source must be a JSON object, found {other}"
                )),
                Err(e) => Source::Invalid(format!(
                    "[{}:{}] failed to parse: {e}",
                    e.line(),
                    e.column()
                )),
            }
        };
        if op == Op::Update {
            match &source {
                Source::Doc(v) => {
                    let has_body = ["doc", "upsert", "script"]
                        .iter()
                        .any(|k| v.get(k).is_some());
                    if !has_body {
                        return Err(RequestError::bad_request(
                            "action_request_validation_exception",
                            "Validation Failed: 1: script or doc is missing;",
                        ));
                    }
                }
                Source::Invalid(reason) => {
                    return Err(RequestError::bad_request(
                        "x_content_parse_exception",
                        format!("line [{}]: {reason}", line_no + 1),
                    ));
                }
                Source::None => {}
            }
        }
        items.push(Item {
            op,
            index,
            id,
            source,
        });
    }
    if items.is_empty() {
        return Err(RequestError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: no requests added;",
        ));
    }
    Ok(items)
}

fn parse_action(
    line: &[u8],
    line_no: usize,
) -> Result<(Op, serde_json::Map<String, Value>), RequestError> {
    let malformed = |found: String| {
        RequestError::bad_request(
            "illegal_argument_exception",
            format!(
                "Malformed action/metadata line [{line_no}], expected START_OBJECT but found [{found}]"
            ),
        )
    };
    let value: Value = serde_json::from_slice(line).map_err(|e| malformed(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(malformed(value.to_string()));
    };
    let mut entries = obj.into_iter();
    let Some((action, meta)) = entries.next() else {
        return Err(malformed("END_OBJECT".into()));
    };
    if entries.next().is_some() {
        return Err(RequestError::bad_request(
            "illegal_argument_exception",
            format!(
                "Malformed action/metadata line [{line_no}], expected END_OBJECT but found [FIELD_NAME]"
            ),
        ));
    }
    let op = match action.as_str() {
        "index" => Op::Index,
        "create" => Op::Create,
        "update" => Op::Update,
        "delete" => Op::Delete,
        other => {
            return Err(RequestError::bad_request(
                "illegal_argument_exception",
                format!(
                    "Malformed action/metadata line [{line_no}], expected field [create], [delete], [index] or [update] but found [{other}]"
                ),
            ));
        }
    };
    let Value::Object(meta) = meta else {
        return Err(malformed(meta.to_string()));
    };
    if let Some(unknown) = meta.keys().find(|k| !KNOWN_PARAMS.contains(&k.as_str())) {
        return Err(RequestError::bad_request(
            "illegal_argument_exception",
            format!("Action/metadata line [{line_no}] contains an unknown parameter [{unknown}]"),
        ));
    }
    Ok((op, meta))
}

/// `{"type","reason",...}` of a failed item, in Elasticsearch's key order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ItemError {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) index_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) shard: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) index: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Shards {
    total: u32,
    successful: u32,
    failed: u32,
}

/// The body of one response item, in Elasticsearch's key order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ItemBody {
    #[serde(rename = "_index")]
    pub(crate) index: String,
    #[serde(rename = "_id")]
    pub(crate) id: Option<String>,
    #[serde(rename = "_version", skip_serializing_if = "Option::is_none")]
    pub(crate) version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<&'static str>,
    #[serde(rename = "_shards", skip_serializing_if = "Option::is_none")]
    pub(crate) shards: Option<Shards>,
    #[serde(rename = "_seq_no", skip_serializing_if = "Option::is_none")]
    pub(crate) seq_no: Option<u64>,
    #[serde(rename = "_primary_term", skip_serializing_if = "Option::is_none")]
    pub(crate) primary_term: Option<u64>,
    pub(crate) status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<ItemError>,
}

impl ItemBody {
    pub(crate) fn failed(index: &str, id: Option<String>, status: u16, error: ItemError) -> Self {
        ItemBody {
            index: index.to_string(),
            id,
            version: None,
            result: None,
            shards: None,
            seq_no: None,
            primary_term: None,
            status,
            error: Some(error),
        }
    }

    pub(crate) fn is_failure(&self) -> bool {
        self.error.is_some()
    }
}

/// One response item: `{"<op>": body}`.
#[derive(Debug, Clone)]
pub(crate) struct ResponseItem {
    pub(crate) op: Op,
    pub(crate) body: ItemBody,
}

impl Serialize for ResponseItem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(self.op.name(), &self.body)?;
        map.end()
    }
}

/// `{"took","errors","items"}`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BulkResponse {
    pub(crate) took: u64,
    pub(crate) errors: bool,
    pub(crate) items: Vec<ResponseItem>,
}

/// A stored index template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub(crate) body: Value,
    pub(crate) patterns: Vec<String>,
    pub(crate) priority: i64,
    pub(crate) data_stream: bool,
    pub(crate) builtin: bool,
}

impl Template {
    /// Validates a `PUT /_index_template/{name}` body.
    pub(crate) fn from_body(body: Value) -> Result<Template, RequestError> {
        let Value::Object(obj) = &body else {
            return Err(RequestError::bad_request(
                "parse_exception",
                "request body is required and must be a JSON object",
            ));
        };
        let patterns = match obj.get("index_patterns") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) if !a.is_empty() => {
                let mut out = Vec::new();
                for p in a {
                    match p {
                        Value::String(s) => out.push(s.clone()),
                        other => {
                            return Err(RequestError::bad_request(
                                "x_content_parse_exception",
                                format!("[index_patterns] must contain strings, found {other}"),
                            ));
                        }
                    }
                }
                out
            }
            _ => {
                return Err(RequestError::bad_request(
                    "action_request_validation_exception",
                    "Validation Failed: 1: index patterns are missing;",
                ));
            }
        };
        let priority = match obj.get("priority") {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_i64().filter(|p| *p >= 0).ok_or_else(|| {
                RequestError::bad_request(
                    "x_content_parse_exception",
                    format!("[priority] must be a non-negative integer, found {v}"),
                )
            })?,
        };
        let data_stream = match obj.get("data_stream") {
            None | Some(Value::Null) => false,
            Some(Value::Object(_)) => true,
            Some(other) => {
                return Err(RequestError::bad_request(
                    "x_content_parse_exception",
                    format!("[data_stream] must be an object, found {other}"),
                ));
            }
        };
        Ok(Template {
            body,
            patterns,
            priority,
            data_stream,
            builtin: false,
        })
    }

    pub(crate) fn builtin(pattern: &str) -> Template {
        Template {
            body: serde_json::json!({
                "index_patterns": [pattern],
                "data_stream": {},
                "priority": 100,
                "_meta": {"managed": true, "description": "built-in (logship-testkit)"},
            }),
            patterns: vec![pattern.to_string()],
            priority: 100,
            data_stream: true,
            builtin: true,
        }
    }
}

/// Elasticsearch's simple wildcard match: `*` matches any run of characters.
pub(crate) fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p = pattern.as_bytes();
    let n = name.as_bytes();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|b| *b == b'*')
}

/// One stored document slot (a deleted document keeps its slot and version, as ES tombstones).
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) id: String,
    pub(crate) version: u64,
    pub(crate) seq_no: u64,
    pub(crate) source: Option<Value>,
}

/// One index or data stream.
#[derive(Debug, Clone)]
pub(crate) struct IndexState {
    pub(crate) uuid: String,
    /// For a data stream, its backing index `.ds-<stream>-<yyyy.mm.dd>-000001`.
    pub(crate) backing: Option<String>,
    next_seq_no: u64,
    pub(crate) slots: Vec<Slot>,
    by_id: HashMap<String, usize>,
}

impl IndexState {
    pub(crate) fn live(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().filter(|s| s.source.is_some())
    }
}

/// Indices, data streams and templates.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) indices: BTreeMap<String, IndexState>,
    pub(crate) templates: BTreeMap<String, Template>,
    /// Keep ids and versions but replace each stored `_source` by `null`
    /// (`EsReceiverBuilder::with_keep_sources(false)`).
    pub(crate) drop_sources: bool,
}

/// What one applied item did, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Done,
    Duplicate,
    Failed,
}

fn random_id(len_bytes: usize) -> String {
    use base64::Engine;
    let bytes: Vec<u8> = (0..len_bytes).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `name` is a valid index name (lowercase, no `\ / * ? " < > | space , #`, not
/// starting with `_ - +`, not `.`/`..`, at most 255 bytes).
pub(crate) fn index_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name != name.to_lowercase() {
        return Some("must be lowercase".into());
    }
    if name.starts_with(['_', '-', '+']) {
        return Some("must not start with '_', '-', or '+'".into());
    }
    if name == "." || name == ".." {
        return Some("must not be '.' or '..'".into());
    }
    if let Some(c) = name.chars().find(|c| {
        matches!(
            c,
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':'
        )
    }) {
        return Some(format!("must not contain the following characters [{c}]"));
    }
    if name.len() > 255 {
        return Some("index name is too long".into());
    }
    None
}

/// Whether a value is accepted by a `date` field with the default format
/// `strict_date_optional_time||epoch_millis`.
pub(crate) fn is_es_date(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_i64() || n.is_u64(),
        Value::String(s) => {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                || is_strict_date_optional_time(s)
        }
        _ => false,
    }
}

fn is_strict_date_optional_time(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |from: usize, len: usize, lo: u32, hi: u32| -> bool {
        b.get(from..from + len)
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .and_then(|d| std::str::from_utf8(d).ok()?.parse::<u32>().ok())
            .is_some_and(|v| (lo..=hi).contains(&v))
    };
    if !(num(0, 4, 0, 9999) && b.get(4) == Some(&b'-') && num(5, 2, 1, 12)) {
        return false;
    }
    if b.len() == 7 {
        return true;
    }
    if !(b.get(7) == Some(&b'-') && num(8, 2, 1, 31)) {
        return false;
    }
    let mut i = 10;
    if i == b.len() {
        return true;
    }
    if b[i] != b'T' {
        return false;
    }
    i += 1;
    if !num(i, 2, 0, 23) {
        return false;
    }
    i += 2;
    for (sep, hi) in [(b':', 59), (b':', 59)] {
        if b.get(i) == Some(&sep) {
            if !num(i + 1, 2, 0, hi) {
                return false;
            }
            i += 3;
        } else {
            break;
        }
    }
    if matches!(b.get(i), Some(b'.') | Some(b',')) {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start || i - start > 9 {
            return false;
        }
    }
    match b.get(i) {
        None => true,
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+') | Some(b'-') => {
            let z = &b[i + 1..];
            match z.len() {
                2 => num(i + 1, 2, 0, 18),
                4 => num(i + 1, 2, 0, 18) && num(i + 3, 2, 0, 59),
                5 => num(i + 1, 2, 0, 18) && z[2] == b':' && num(i + 4, 2, 0, 59),
                _ => false,
            }
        }
        _ => false,
    }
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing @ Value::Object(_)) if v.is_object() => merge(existing, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn shards() -> Option<Shards> {
    Some(Shards {
        total: 2,
        successful: 1,
        failed: 0,
    })
}

impl Store {
    /// The highest-priority template whose patterns match `name`.
    pub(crate) fn matching_template(&self, name: &str) -> Option<(&String, &Template)> {
        self.templates
            .iter()
            .filter(|(_, t)| t.patterns.iter().any(|p| wildcard_match(p, name)))
            .max_by_key(|(_, t)| t.priority)
    }

    /// Whether writes to `name` go to a data stream (an existing one, or one a matching
    /// template with `data_stream` would create).
    pub(crate) fn is_data_stream(&self, name: &str) -> bool {
        match self.indices.get(name) {
            Some(state) => state.backing.is_some(),
            None => self
                .matching_template(name)
                .is_some_and(|(_, t)| t.data_stream),
        }
    }

    fn index_mut(&mut self, name: &str) -> &mut IndexState {
        let data_stream = self.is_data_stream(name);
        self.indices
            .entry(name.to_string())
            .or_insert_with(|| IndexState {
                uuid: random_id(16),
                backing: data_stream.then(|| {
                    format!(
                        ".ds-{name}-{}-000001",
                        chrono::Utc::now().format("%Y.%m.%d")
                    )
                }),
                next_seq_no: 0,
                slots: Vec::new(),
                by_id: HashMap::new(),
            })
    }

    /// Applies one item; returns its response body and outcome.
    pub(crate) fn apply(&mut self, item: &Item) -> (ItemBody, Outcome) {
        let name = item.index.as_str();
        let id = match (&item.id, item.op) {
            (Some(id), _) => Some(id.clone()),
            (None, Op::Index | Op::Create) => Some(random_id(15)),
            (None, _) => None,
        };
        let fail = |status: u16, kind: &'static str, reason: String| {
            (
                ItemBody::failed(
                    name,
                    id.clone(),
                    status,
                    ItemError {
                        kind,
                        reason,
                        index_uuid: None,
                        shard: None,
                        index: None,
                    },
                ),
                Outcome::Failed,
            )
        };
        if let Some(problem) = index_name_problem(name) {
            return fail(
                400,
                "invalid_index_name_exception",
                format!("Invalid index name [{name}], {problem}"),
            );
        }
        let data_stream = self.is_data_stream(name);
        if data_stream && item.op != Op::Create {
            return fail(
                400,
                "illegal_argument_exception",
                "only write ops with an op_type of create are allowed in data streams".into(),
            );
        }
        let source = match &item.source {
            Source::Invalid(reason) => {
                return fail(400, "document_parsing_exception", reason.clone());
            }
            Source::Doc(v) => Some(v),
            Source::None => None,
        };
        if data_stream {
            match source.and_then(|s| s.get("@timestamp")) {
                None => {
                    return fail(
                        400,
                        "document_parsing_exception",
                        "[1:1] failed to parse: data stream timestamp field [@timestamp] is missing".into(),
                    );
                }
                Some(ts) if !is_es_date(ts) => {
                    return fail(
                        400,
                        "document_parsing_exception",
                        format!(
                            "[1:1] failed to parse field [@timestamp] of type [date] in document with id '{}'. Preview of field's value: '{}'",
                            id.clone().unwrap_or_default(),
                            ts
                        ),
                    );
                }
                Some(_) => {}
            }
        }
        let Some(id) = id else {
            return fail(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: id is missing;".into(),
            );
        };
        let drop_sources = self.drop_sources;
        let state = self.index_mut(name);
        let shown_index = state.backing.clone().unwrap_or_else(|| name.to_string());
        let existing = state.by_id.get(&id).copied();
        let live = existing.filter(|&pos| state.slots[pos].source.is_some());
        let shard_error = |state: &IndexState, status: u16, kind: &'static str, reason: String| {
            (
                ItemBody::failed(
                    &shown_index,
                    Some(id.clone()),
                    status,
                    ItemError {
                        kind,
                        reason,
                        index_uuid: Some(state.uuid.clone()),
                        shard: Some("0"),
                        index: Some(shown_index.clone()),
                    },
                ),
                if status == 409 {
                    Outcome::Duplicate
                } else {
                    Outcome::Failed
                },
            )
        };
        // What to write (None = delete), and whether the result is a creation.
        let (new_source, created): (Option<Value>, bool) = match item.op {
            Op::Create => {
                if let Some(pos) = live {
                    let current = state.slots[pos].version;
                    return shard_error(
                        state,
                        409,
                        "version_conflict_engine_exception",
                        format!(
                            "[{id}]: version conflict, document already exists (current version [{current}])"
                        ),
                    );
                }
                (source.cloned(), true)
            }
            Op::Index => (source.cloned(), live.is_none()),
            Op::Delete => {
                if live.is_none() {
                    let body = ItemBody {
                        index: shown_index.clone(),
                        id: Some(id.clone()),
                        version: Some(existing.map_or(1, |p| state.slots[p].version + 1)),
                        result: Some("not_found"),
                        shards: shards(),
                        seq_no: Some(state.next_seq_no),
                        primary_term: Some(1),
                        status: 404,
                        error: None,
                    };
                    state.next_seq_no += 1;
                    return (body, Outcome::Done);
                }
                (None, false)
            }
            Op::Update => {
                let Some(body) = source else {
                    return shard_error(
                        state,
                        400,
                        "illegal_argument_exception",
                        "update without body".into(),
                    );
                };
                if body.get("script").is_some() {
                    return shard_error(
                        state,
                        400,
                        "illegal_argument_exception",
                        "scripted updates are not supported by logship-testkit".into(),
                    );
                }
                match live {
                    Some(pos) => {
                        let mut merged = state.slots[pos].source.clone().unwrap_or(Value::Null);
                        if let Some(doc) = body.get("doc") {
                            merge(&mut merged, doc);
                        }
                        if Some(&merged) == state.slots[pos].source.as_ref() {
                            let slot = &state.slots[pos];
                            let body = ItemBody {
                                index: shown_index.clone(),
                                id: Some(id.clone()),
                                version: Some(slot.version),
                                result: Some("noop"),
                                shards: Some(Shards {
                                    total: 0,
                                    successful: 0,
                                    failed: 0,
                                }),
                                seq_no: Some(slot.seq_no),
                                primary_term: Some(1),
                                status: 200,
                                error: None,
                            };
                            return (body, Outcome::Done);
                        }
                        (Some(merged), false)
                    }
                    None => {
                        let upsert = if body.get("doc_as_upsert") == Some(&Value::Bool(true)) {
                            body.get("doc")
                        } else {
                            body.get("upsert")
                        };
                        match upsert {
                            Some(doc) => (Some(doc.clone()), true),
                            None => {
                                return shard_error(
                                    state,
                                    404,
                                    "document_missing_exception",
                                    format!("[{id}]: document missing"),
                                );
                            }
                        }
                    }
                }
            }
        };
        let new_source = if drop_sources {
            new_source.map(|_| Value::Null)
        } else {
            new_source
        };
        let seq_no = state.next_seq_no;
        state.next_seq_no += 1;
        let deleted = new_source.is_none();
        let version = match existing {
            Some(pos) => {
                let slot = &mut state.slots[pos];
                slot.version += 1;
                slot.seq_no = seq_no;
                slot.source = new_source;
                slot.version
            }
            None => {
                state.by_id.insert(id.clone(), state.slots.len());
                state.slots.push(Slot {
                    id: id.clone(),
                    version: 1,
                    seq_no,
                    source: new_source,
                });
                1
            }
        };
        let (result, status) = if deleted {
            ("deleted", 200)
        } else if created {
            ("created", 201)
        } else {
            ("updated", 200)
        };
        let body = ItemBody {
            index: shown_index,
            id: Some(id),
            version: Some(version),
            result: Some(result),
            shards: shards(),
            seq_no: Some(seq_no),
            primary_term: Some(1),
            status,
            error: None,
        };
        (body, Outcome::Done)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_missing_final_newline() {
        let err = parse(b"{\"index\":{\"_index\":\"a\"}}\n{}", None).unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(
            err.reason,
            "The bulk request must be terminated by a newline [\\n]"
        );
    }

    #[test]
    fn parse_uses_path_index_and_skips_blank_lines() {
        let items = parse(
            b"\n{\"create\":{}}\n{\"a\":1}\n{\"delete\":{\"_id\":\"x\",\"_index\":\"b\"}}\n",
            Some("p"),
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].index, "p");
        assert_eq!(items[0].op, Op::Create);
        assert_eq!(items[1].index, "b");
        assert!(matches!(items[1].source, Source::None));
    }

    #[test]
    fn parse_rejects_unknown_action_and_parameter() {
        let e = parse(b"{\"upsert\":{\"_index\":\"a\"}}\n{}\n", None).unwrap_err();
        assert!(
            e.reason.contains(
                "expected field [create], [delete], [index] or [update] but found [upsert]"
            )
        );
        let e = parse(
            b"{\"index\":{\"_index\":\"a\",\"_type\":\"doc\"}}\n{}\n",
            None,
        )
        .unwrap_err();
        assert!(e.reason.contains("unknown parameter [_type]"));
        let e = parse(b"{\"index\":{}}\n{}\n", None).unwrap_err();
        assert_eq!(e.reason, "Validation Failed: 1: index is missing;");
    }

    #[test]
    fn invalid_source_fails_only_its_item() {
        let items = parse(b"{\"index\":{\"_index\":\"a\"}}\n{nope\n", None).unwrap();
        assert!(matches!(items[0].source, Source::Invalid(_)));
    }

    #[test]
    fn wildcard() {
        assert!(wildcard_match("metrics-*-*", "metrics-app-default"));
        assert!(!wildcard_match("metrics-*-*", "metrics-app"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b", "aXXbY"));
    }

    #[test]
    fn dates() {
        for ok in [
            "2024-01-02",
            "2024-01",
            "2024-01-02T03:04:05Z",
            "2024-01-02T03:04:05.123456789Z",
            "2020-06-11T10:15:30.123-0400",
            "2020-06-11T10:15:30.123+04:00",
            "2020-06-11T10:15",
            "1700000000000",
        ] {
            assert!(is_es_date(&Value::String(ok.into())), "{ok}");
        }
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-01-02 03:04:05",
            "2024-01-02T03:04:05.Z",
        ] {
            assert!(!is_es_date(&Value::String(bad.into())), "{bad}");
        }
        assert!(is_es_date(&serde_json::json!(1_700_000_000_000_i64)));
        assert!(!is_es_date(&serde_json::json!(1.5)));
    }

    #[test]
    fn response_item_key_order() {
        let mut store = Store::default();
        let items = parse(
            b"{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":1}\n",
            None,
        )
        .unwrap();
        let (body, _) = store.apply(&items[0]);
        let text = serde_json::to_string(&ResponseItem {
            op: Op::Index,
            body,
        })
        .unwrap();
        assert_eq!(
            text,
            "{\"index\":{\"_index\":\"a\",\"_id\":\"1\",\"_version\":1,\"result\":\"created\",\"_shards\":{\"total\":2,\"successful\":1,\"failed\":0},\"_seq_no\":0,\"_primary_term\":1,\"status\":201}}"
        );
    }
}
