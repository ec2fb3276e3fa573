//! What a `_bulk` response means: pure functions from a [`Reply`] to a verdict, following the
//! Elasticsearch bulk API reference, <https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html>
//! "Bulk response and retry rules". Only the Elasticsearch-specific cases are decided here;
//! every other status falls back to the shared table, [`logship_http::classify`].
//!
//! | response | verdict |
//! |---|---|
//! | 2xx | parse `items` (in request order): 2xx delivered; 409 on `create` a conflict, which the sink resolves (a duplicate of its own earlier attempt, or a rejection); 429 and 5xx retried alone; other statuses rejected with the item's `error.type: reason` (at most 512 bytes) |
//! | 2xx whose body is not a bulk response, or was cut at the reply cap | retry the whole request (the `_id`s make that safe) |
//! | 413 | split the request (the sink halves it until it fits) |
//! | anything else | [`logship_http::classify`]: 3xx rejected naming the `Location` (never followed); 408, 429, 5xx but 501/505 retried after `Retry-After`; other 4xx rejected; reasons carry the server's `error.type: reason` |

use logship_core::Verdict;
use logship_core::excerpt::{MAX_EXCERPT_BYTES, bounded, excerpt};
use logship_http::Reply;
use serde::Deserialize;

use crate::encode::BulkAction;

/// What the requests are called in reasons.
const WHAT: &str = "bulk request";

/// The fate of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ItemFate {
    Delivered,
    /// 409 on `create`: a document with this `_id` is already there. The sink decides what it
    /// means: our own earlier attempt that landed (delivered, a duplicate) if this document
    /// was sent before, else a conflict with another writer (rejected with this reason).
    Conflict(String),
    /// A [`Conflict`](Self::Conflict) known to be our own earlier attempt.
    Duplicate,
    Retry(String),
    Rejected(String),
}

/// The verdict on one `_bulk` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BulkVerdict {
    /// One fate per document sent, in order.
    Items(Vec<ItemFate>),
    /// The same verdict for every document of the request (a whole-request retry or
    /// refusal).
    Whole(Verdict),
    /// 413: the body is larger than the server accepts.
    TooLarge,
}

impl ItemFate {
    /// The shared verdict (a duplicate is delivered).
    pub(crate) fn verdict(&self) -> Verdict {
        match self {
            ItemFate::Delivered | ItemFate::Duplicate => Verdict::Delivered,
            // Not expected here: the sink resolves conflicts first. Refused, not lost.
            ItemFate::Conflict(why) => Verdict::rejected(why.clone()),
            ItemFate::Retry(why) => Verdict::retry(why.clone()),
            ItemFate::Rejected(why) => Verdict::rejected(why.clone()),
        }
    }
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

/// Classifies the reply to a `_bulk` request that carried `docs` documents with `action`.
pub(crate) fn classify(reply: &Reply, docs: usize, action: BulkAction) -> BulkVerdict {
    match reply.status {
        200..=299 if !reply.complete => BulkVerdict::Whole(Verdict::retry(format!(
            "{WHAT}: http {}: {}",
            reply.status,
            reply.cut_note().unwrap_or_default()
        ))),
        200..=299 => classify_items(&reply.body, docs, action),
        413 => BulkVerdict::TooLarge,
        300..=399 => BulkVerdict::Whole(logship_http::classify(reply, WHAT)),
        _ => BulkVerdict::Whole(match logship_http::classify(reply, WHAT) {
            Verdict::Retry { after, .. } => Verdict::Retry {
                after,
                reason: reply_reason(reply),
            },
            Verdict::Rejected { .. } => Verdict::rejected(reply_reason(reply)),
            // Not reached (2xx is handled above); the shared verdict stands.
            other => other,
        }),
    }
}

/// `bulk request: http {status}: {error.type: reason}` (with the cap note when cut).
fn reply_reason(reply: &Reply) -> String {
    let mut s = format!(
        "{WHAT}: http {}: {}",
        reply.status,
        error_reason(&reply.body)
    );
    if let Some(note) = reply.cut_note() {
        s.push_str(" (");
        s.push_str(&note);
        s.push(')');
    }
    s
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

fn classify_items(body: &[u8], docs: usize, action: BulkAction) -> BulkVerdict {
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
        return BulkVerdict::Items(fates);
    }
    classify_items_full(body, docs, action)
}

/// Reads every item (a response with errors, or one the summary could not read).
fn classify_items_full(body: &[u8], docs: usize, action: BulkAction) -> BulkVerdict {
    let parsed: BulkResponse = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => {
            return BulkVerdict::Whole(Verdict::retry(format!(
                "{WHAT}: unreadable bulk response: {}",
                bounded(&e.to_string(), MAX_EXCERPT_BYTES)
            )));
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
    BulkVerdict::Items(fates)
}

fn item_fate(r: ItemResult, action: BulkAction) -> ItemFate {
    match r.status {
        200..=299 => ItemFate::Delivered,
        409 if action == BulkAction::Create => {
            ItemFate::Conflict(item_reason(r.status, r.error.as_ref()))
        }
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

/// `type: reason` of an Elasticsearch error object (or the string itself), as one line of at
/// most [`MAX_EXCERPT_BYTES`] (a server may put anything, of any size, in `reason`).
fn describe_error(e: &serde_json::Value) -> String {
    let text = match e {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => {
            let ty = o.get("type").and_then(|v| v.as_str()).unwrap_or("error");
            match o.get("reason").and_then(|v| v.as_str()) {
                Some(r) => format!("{ty}: {r}"),
                None => ty.to_string(),
            }
        }
        other => other.to_string(),
    };
    bounded(&text, MAX_EXCERPT_BYTES)
}

/// The reason in an error response body (`error.type: reason`), or an excerpt of the body;
/// at most [`MAX_EXCERPT_BYTES`] either way.
pub(crate) fn error_reason(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(e) = v.get("error")
    {
        return describe_error(e);
    }
    let text = excerpt(body);
    if text.is_empty() {
        "(empty body)".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use logship_http::reqwest::header::{HeaderMap, HeaderValue};
    use std::time::Duration;

    fn reply(status: u16, headers: &[(&'static str, &'static str)], body: &str) -> Reply {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_static(v));
        }
        Reply::from_parts(status, &h, body.to_string().into(), true, 1 << 20)
    }

    fn c(status: u16, body: &str, docs: usize) -> BulkVerdict {
        classify(&reply(status, &[], body), docs, BulkAction::Create)
    }

    #[test]
    fn all_ok() {
        let body = r#"{"took":3,"errors":false,"items":[{"create":{"_index":"a","_id":"1","status":201,"result":"created"}},{"create":{"_index":"a","_id":"2","status":201}}]}"#;
        assert_eq!(
            c(200, body, 2),
            BulkVerdict::Items(vec![ItemFate::Delivered, ItemFate::Delivered])
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
        let BulkVerdict::Items(f) = c(200, &body, 7) else {
            panic!("not items")
        };
        assert_eq!(
            f,
            vec![
                ItemFate::Delivered,
                ItemFate::Delivered,
                ItemFate::Conflict("item 409: version_conflict_engine_exception: why".into()),
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
        let v = classify(&reply(200, &[], body), 1, BulkAction::Index);
        assert!(
            matches!(&v, BulkVerdict::Items(f) if matches!(f[0], ItemFate::Rejected(_))),
            "{v:?}"
        );
    }

    #[test]
    fn missing_items_are_retried_and_garbage_retries_all() {
        let body = r#"{"errors":false,"items":[{"create":{"status":201}}]}"#;
        let BulkVerdict::Items(f) = c(200, body, 3) else {
            panic!("not items")
        };
        assert_eq!(f[0], ItemFate::Delivered);
        assert!(matches!(f[1], ItemFate::Retry(_)) && matches!(f[2], ItemFate::Retry(_)));
        assert!(matches!(
            c(200, "<html>proxy</html>", 1),
            BulkVerdict::Whole(Verdict::Retry { after: None, .. })
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
                assert!(matches!(fast, BulkVerdict::Items(_)), "{body}");
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
            (501, "", "reject"),
            (301, "", "reject"),
            (307, "", "reject"),
        ] {
            let got = match c(status, body, 1) {
                BulkVerdict::Whole(Verdict::Retry { .. }) => "retry",
                BulkVerdict::TooLarge => "split",
                BulkVerdict::Whole(Verdict::Rejected { .. }) => "reject",
                other => panic!("status {status}: {other:?}"),
            };
            assert_eq!(got, want, "status {status}");
        }
        assert_eq!(
            c(401, es_err, 1),
            BulkVerdict::Whole(Verdict::rejected(
                "bulk request: http 401: security_exception: missing authentication credentials"
            ))
        );
        assert_eq!(
            c(502, "bad gateway", 1),
            BulkVerdict::Whole(Verdict::retry("bulk request: http 502: bad gateway"))
        );
    }

    #[test]
    fn redirects_name_the_location_without_credentials() {
        let v = classify(
            &reply(
                307,
                &[("location", "http://elastic:pw@evil:8080/_bulk")],
                "",
            ),
            1,
            BulkAction::Create,
        );
        let BulkVerdict::Whole(Verdict::Rejected { reason }) = v else {
            panic!("{v:?}")
        };
        assert!(reason.contains("evil:8080"), "{reason}");
        assert!(!reason.contains("pw"), "{reason}");
    }

    #[test]
    fn retry_after_is_kept() {
        let v = classify(
            &reply(429, &[("retry-after", "2")], ""),
            1,
            BulkAction::Create,
        );
        assert!(
            matches!(v, BulkVerdict::Whole(Verdict::Retry { after: Some(d), .. }) if d == Duration::from_secs(2)),
            "{v:?}"
        );
    }

    #[test]
    fn server_text_is_bounded() {
        let huge = "r".repeat(100_000);
        let body = format!(
            r#"{{"errors":true,"items":[{{"create":{{"status":400,"error":{{"type":"t","reason":"{huge}"}}}}}}]}}"#
        );
        let BulkVerdict::Items(f) = c(200, &body, 1) else {
            panic!("not items")
        };
        let ItemFate::Rejected(why) = &f[0] else {
            panic!("{f:?}")
        };
        assert!(why.len() <= MAX_EXCERPT_BYTES + 16, "{}", why.len());
        let whole = c(
            400,
            &format!(r#"{{"error":{{"type":"t","reason":"{huge}"}}}}"#),
            1,
        );
        let BulkVerdict::Whole(v) = whole else {
            panic!("{whole:?}")
        };
        assert!(
            v.reason().len() <= MAX_EXCERPT_BYTES + 64,
            "{}",
            v.reason().len()
        );
        // A 2xx cut at the cap is retried, saying why.
        let mut r = reply(200, &[], "{\"errors\":false,\"items\":[");
        r.complete = false;
        let v = classify(&r, 1, BulkAction::Create);
        assert!(
            matches!(&v, BulkVerdict::Whole(Verdict::Retry { reason, .. }) if reason.contains("with_max_reply_bytes")),
            "{v:?}"
        );
    }
}
