//! What a `_bulk` response means: pure functions from (status, headers, body) to a verdict,
//! following the Elasticsearch bulk API reference, <https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html> "Bulk response and retry rules".
//!
//! | response | verdict |
//! |---|---|
//! | 2xx | parse `items` (in request order): 2xx delivered; 409 on `create` delivered as a duplicate; 429 and 5xx retried alone; other statuses rejected with the item's `error.type: reason` |
//! | 2xx whose body is not a bulk response | retry the whole request (the `_id`s make that safe) |
//! | 408, 429, 5xx | retry the whole request; `Retry-After` (seconds or HTTP date) is the delay |
//! | 413 | split the request (the sink halves it until it fits) |
//! | other 4xx, 3xx, 1xx | reject the whole request with the status and the server's reason |

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::encode::BulkAction;

/// The fate of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ItemFate {
    Delivered,
    /// 409 on `create`: it was already there (an earlier attempt landed).
    Duplicate,
    Retry(String),
    Rejected(String),
}

/// The verdict on one `_bulk` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// One fate per document sent, in order.
    Items(Vec<ItemFate>),
    /// Nothing was indexed; try again (after the server's delay, if given).
    RetryAll {
        after: Option<Duration>,
        reason: String,
    },
    /// Refused for good.
    RejectAll { reason: String },
    /// 413: the body is larger than the server accepts.
    TooLarge,
}

#[derive(Deserialize)]
struct BulkResponse {
    #[serde(default)]
    errors: bool,
    items: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct ItemResult {
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Classifies a response to a `_bulk` request that carried `docs` documents with `action`.
pub(crate) fn classify(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    docs: usize,
    action: BulkAction,
    now: SystemTime,
) -> Verdict {
    match status {
        200..=299 => classify_items(body, docs, action),
        408 | 429 | 500..=599 => Verdict::RetryAll {
            after: retry_after.and_then(|v| parse_retry_after(v, now)),
            reason: format!("http {status}: {}", error_reason(body)),
        },
        413 => Verdict::TooLarge,
        _ => Verdict::RejectAll {
            reason: format!("http {status}: {}", error_reason(body)),
        },
    }
}

/// A `_bulk` response read without building its items: whether any failed, and how many
/// there are (each checked to be an object, as [`BulkResponse`] requires).
#[derive(Deserialize)]
struct BulkSummary {
    #[serde(default)]
    errors: bool,
    items: Vec<AnyObject>,
}

/// A JSON object, skipped.
struct AnyObject;

impl<'de> Deserialize<'de> for AnyObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = AnyObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<AnyObject, A::Error> {
                while m
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(AnyObject)
            }
        }
        d.deserialize_map(V)
    }
}

fn classify_items(body: &[u8], docs: usize, action: BulkAction) -> Verdict {
    // The usual answer, `"errors":false`: every item delivered; its contents (some 150 bytes
    // each from Elasticsearch) need not be built. Anything else is read in full below.
    if let Ok(summary) = serde_json::from_slice::<BulkSummary>(body)
        && !summary.errors
    {
        let n = summary.items.len().min(docs);
        let mut fates = Vec::with_capacity(docs);
        fates.resize(n, ItemFate::Delivered);
        fates.resize(
            docs,
            ItemFate::Retry("no item for this document in the bulk response".into()),
        );
        return Verdict::Items(fates);
    }
    classify_items_full(body, docs, action)
}

/// Reads every item (a response with errors, or one the summary could not read).
fn classify_items_full(body: &[u8], docs: usize, action: BulkAction) -> Verdict {
    let parsed: BulkResponse = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => {
            return Verdict::RetryAll {
                after: None,
                reason: format!("unreadable bulk response: {e}"),
            };
        }
    };
    let mut fates = Vec::with_capacity(docs);
    for item in parsed.items.into_iter().take(docs) {
        if !parsed.errors {
            fates.push(ItemFate::Delivered);
            continue;
        }
        let Some((_, result)) = item.into_iter().next() else {
            fates.push(ItemFate::Retry("empty bulk item in the response".into()));
            continue;
        };
        let fate = match serde_json::from_value::<ItemResult>(result) {
            Ok(r) => item_fate(r, action),
            Err(e) => ItemFate::Retry(format!("unreadable bulk item: {e}")),
        };
        fates.push(fate);
    }
    while fates.len() < docs {
        fates.push(ItemFate::Retry(
            "no item for this document in the bulk response".into(),
        ));
    }
    Verdict::Items(fates)
}

fn item_fate(r: ItemResult, action: BulkAction) -> ItemFate {
    match r.status {
        200..=299 => ItemFate::Delivered,
        409 if action == BulkAction::Create => ItemFate::Duplicate,
        429 | 500..=599 => ItemFate::Retry(item_reason(r.status, r.error.as_ref())),
        s => ItemFate::Rejected(item_reason(s, r.error.as_ref())),
    }
}

fn item_reason(status: u16, error: Option<&serde_json::Value>) -> String {
    match error {
        Some(e) => format!("item {status}: {}", describe_error(e)),
        None => format!("item {status}"),
    }
}

/// `type: reason` of an Elasticsearch error object (or the string itself).
fn describe_error(e: &serde_json::Value) -> String {
    match e {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => {
            let ty = o.get("type").and_then(|v| v.as_str()).unwrap_or("error");
            match o.get("reason").and_then(|v| v.as_str()) {
                Some(r) => format!("{ty}: {r}"),
                None => ty.to_string(),
            }
        }
        other => other.to_string(),
    }
}

/// The reason in an error response body, or the start of the body.
pub(crate) fn error_reason(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(e) = v.get("error")
    {
        return describe_error(e);
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3). A date in the past is
/// no delay; anything unreadable is ignored.
pub(crate) fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let when = SystemTime::from(when.with_timezone(&chrono::Utc));
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480) // Wed, 21 Oct 2015 07:28:00 GMT
    }

    fn c(status: u16, body: &str, docs: usize) -> Verdict {
        classify(
            status,
            None,
            body.as_bytes(),
            docs,
            BulkAction::Create,
            now(),
        )
    }

    #[test]
    fn all_ok() {
        let body = r#"{"took":3,"errors":false,"items":[{"create":{"_index":"a","_id":"1","status":201,"result":"created"}},{"create":{"_index":"a","_id":"2","status":201}}]}"#;
        assert_eq!(
            c(200, body, 2),
            Verdict::Items(vec![ItemFate::Delivered, ItemFate::Delivered])
        );
    }

    #[test]
    fn item_table() {
        let item = |status: u16, err: &str| {
            format!(r#"{{"create":{{"_index":"a","_id":"x","status":{status}{err}}}}}"#)
        };
        let e = |t: &str| format!(r#","error":{{"type":"{t}","reason":"why"}}"#);
        let items = [
            item(201, ""),
            item(200, ""),
            item(409, &e("version_conflict_engine_exception")),
            item(429, &e("es_rejected_execution_exception")),
            item(503, &e("unavailable_shards_exception")),
            item(400, &e("mapper_parsing_exception")),
            item(404, &e("index_not_found_exception")),
        ];
        let body = format!(
            r#"{{"took":1,"errors":true,"items":[{}]}}"#,
            items.join(",")
        );
        let Verdict::Items(f) = c(200, &body, 7) else {
            panic!("not items")
        };
        assert_eq!(
            f,
            vec![
                ItemFate::Delivered,
                ItemFate::Delivered,
                ItemFate::Duplicate,
                ItemFate::Retry("item 429: es_rejected_execution_exception: why".into()),
                ItemFate::Retry("item 503: unavailable_shards_exception: why".into()),
                ItemFate::Rejected("item 400: mapper_parsing_exception: why".into()),
                ItemFate::Rejected("item 404: index_not_found_exception: why".into()),
            ]
        );
    }

    #[test]
    fn conflict_on_index_is_rejected() {
        let body = r#"{"errors":true,"items":[{"index":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"r"}}}]}"#;
        let v = classify(200, None, body.as_bytes(), 1, BulkAction::Index, now());
        assert!(
            matches!(&v, Verdict::Items(f) if matches!(f[0], ItemFate::Rejected(_))),
            "{v:?}"
        );
    }

    #[test]
    fn missing_items_are_retried_and_garbage_retries_all() {
        let body = r#"{"errors":false,"items":[{"create":{"status":201}}]}"#;
        let Verdict::Items(f) = c(200, body, 3) else {
            panic!("not items")
        };
        assert_eq!(f[0], ItemFate::Delivered);
        assert!(matches!(f[1], ItemFate::Retry(_)) && matches!(f[2], ItemFate::Retry(_)));
        assert!(matches!(
            c(200, "<html>proxy</html>", 1),
            Verdict::RetryAll { after: None, .. }
        ));
    }

    /// The summary path gives what reading every item gives.
    #[test]
    fn summary_agrees_with_the_full_read() {
        let es_item = r#"{"create":{"_index":"logs-2026.11.21","_id":"0b1c2d3e-0000-4000-8000-000000000001","_version":1,"result":"created","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":7,"_primary_term":1,"status":201}}"#;
        let many = format!(
            r#"{{"took":30,"errors":false,"items":[{}]}}"#,
            vec![es_item; 50].join(",")
        );
        for (body, docs) in [
            (many.as_str(), 50),
            (many.as_str(), 60),
            (many.as_str(), 10),
            (r#"{"items":[{},{}],"errors":false}"#, 2),
            (r#"{"items":[{}]}"#, 1),
            (r#"{"errors":false,"items":[{},1]}"#, 2),
            (r#"{"errors":false,"items":[[]]}"#, 1),
            (r#"{"errors":false,"items":{}}"#, 1),
            (r#"{"errors":false}"#, 1),
            (r#"{"errors":"no","items":[]}"#, 1),
            (r#"{"errors":false,"items":[{"a":1e400}]}"#, 1),
            (r#"{"errors":false,"items":[{}],"errors":false}"#, 1),
            (r#"{"errors":false,"items":[{}]"#, 1),
            ("[]", 1),
            ("", 1),
        ] {
            let fast = c(200, body, docs);
            let full = classify_items_full(body.as_bytes(), docs, BulkAction::Create);
            // Only numbers beyond f64 are read differently (skipped, not rejected).
            if body.contains("1e400") {
                assert!(matches!(fast, Verdict::Items(_)), "{body}");
                continue;
            }
            assert_eq!(fast, full, "{body}");
        }
    }

    #[test]
    fn whole_request_table() {
        let es_err = r#"{"error":{"root_cause":[],"type":"security_exception","reason":"missing authentication credentials"},"status":401}"#;
        for (status, body, want) in [
            (429, "", "retry"),
            (500, "", "retry"),
            (502, "bad gateway", "retry"),
            (503, "", "retry"),
            (408, "", "retry"),
            (413, "", "split"),
            (
                400,
                r#"{"error":{"type":"illegal_argument_exception","reason":"The bulk request must be terminated by a newline [\n]"},"status":400}"#,
                "reject",
            ),
            (401, es_err, "reject"),
            (403, "", "reject"),
            (404, "", "reject"),
            (406, "", "reject"),
            (301, "", "reject"),
        ] {
            let got = match c(status, body, 1) {
                Verdict::RetryAll { .. } => "retry",
                Verdict::TooLarge => "split",
                Verdict::RejectAll { .. } => "reject",
                Verdict::Items(_) => "items",
            };
            assert_eq!(got, want, "status {status}");
        }
        assert_eq!(
            c(401, es_err, 1),
            Verdict::RejectAll {
                reason: "http 401: security_exception: missing authentication credentials".into()
            }
        );
        assert_eq!(
            c(502, "bad gateway", 1),
            Verdict::RetryAll {
                after: None,
                reason: "http 502: bad gateway".into()
            }
        );
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7", now()), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now()), None);
        let v = classify(429, Some("2"), b"", 1, BulkAction::Create, now());
        assert!(
            matches!(v, Verdict::RetryAll { after: Some(d), .. } if d == Duration::from_secs(2))
        );
    }
}
