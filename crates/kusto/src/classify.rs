//! What a Kusto answer means: pure functions from status, `Retry-After` and body to a
//! verdict, table-tested below. The sink turns verdicts into core `Outcome`s; it never
//! retries on its own except to refresh a token once after a 401/403.
//!
//! Streaming ingestion (the Azure Data Explorer REST API documentation, <https://learn.microsoft.com/azure/data-explorer/kusto/api/rest/> "Errors and their classification"):
//!
//! | answer | verdict | what happens |
//! |---|---|---|
//! | 2xx | delivered | |
//! | 429 | throttled (with `Retry-After`) | retried by the core with backoff; managed mode falls back to queued ingestion after repeated throttling |
//! | 401, 403 | unauthorized | the token is refreshed and the request sent once more; a second refusal is undelivered with a clear message |
//! | 404 | streaming disabled | undelivered: "streaming ingestion is not enabled on the cluster" (managed mode: queued instead) |
//! | 400 | permanent | undelivered with the service's `@message` |
//! | OneApi `@permanent: true` | permanent | undelivered with the service's message |
//! | OneApi `@permanent: false`, 5xx, 408 | transient | retried by the core (managed mode: queued after repeated failures) |
//! | other 4xx | permanent | undelivered |

use std::time::Duration;

/// The meaning of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Accepted.
    Delivered,
    /// 429: try later (`after` from `Retry-After`, whole seconds).
    Throttled {
        after: Option<Duration>,
        reason: String,
    },
    /// Try again later.
    Transient { reason: String },
    /// 401/403: the token was refused.
    Unauthorized { reason: String },
    /// 404 on the streaming endpoint: the cluster has streaming ingestion off.
    StreamingDisabled { reason: String },
    /// Refused for good.
    Permanent { reason: String },
}

impl Verdict {
    /// Whether trying the same data again may succeed.
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Transient { .. })
    }
    /// Adds `more` to the reason (nothing for `Delivered`).
    pub(crate) fn append_to_reason(&mut self, more: &str) {
        match self {
            Self::Delivered => {}
            Self::Throttled { reason, .. }
            | Self::Transient { reason }
            | Self::Unauthorized { reason }
            | Self::StreamingDisabled { reason }
            | Self::Permanent { reason } => reason.push_str(more),
        }
    }
    /// The reason text (empty for `Delivered`).
    pub(crate) fn reason(&self) -> &str {
        match self {
            Self::Delivered => "",
            Self::Throttled { reason, .. }
            | Self::Transient { reason }
            | Self::Unauthorized { reason }
            | Self::StreamingDisabled { reason }
            | Self::Permanent { reason } => reason,
        }
    }
}

/// The parts of a OneApi error body that matter.
#[derive(Debug, Default, PartialEq, Eq)]
struct OneApi {
    code: Option<String>,
    message: Option<String>,
    permanent: Option<bool>,
}

fn one_api(body: &[u8]) -> Option<OneApi> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error")?;
    let s = |k: &str| e.get(k).and_then(|x| x.as_str()).map(str::to_string);
    Some(OneApi {
        code: s("code"),
        // `@message` is the detailed one; `message` a generic summary.
        message: s("@message").or_else(|| s("message")),
        permanent: e.get("@permanent").and_then(serde_json::Value::as_bool),
    })
}

/// A short, single-line excerpt of a non-JSON body (Azure Storage XML, HTML from a proxy).
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim_start_matches('\u{feff}');
    // Azure Storage: <Code>…</Code><Message>…</Message>
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{t}>"))? + start;
        Some(text[start..end].lines().next().unwrap_or("").to_string())
    };
    if let Some(code) = tag("Code") {
        return match tag("Message") {
            Some(m) => format!("{code}: {m}"),
            None => code,
        };
    }
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one.chars().take(300).collect()
}

fn describe(what: &str, status: u16, body: &[u8]) -> (String, Option<bool>) {
    match one_api(body) {
        Some(e) => {
            let code = e.code.unwrap_or_else(|| "error".into());
            let msg = e.message.unwrap_or_default();
            (
                format!("{what} answered {status} {code}: {msg}"),
                e.permanent,
            )
        }
        None if body.is_empty() => (format!("{what} answered {status}"), None),
        None => (format!("{what} answered {status}: {}", excerpt(body)), None),
    }
}

/// `Retry-After` in whole seconds (the HTTP-date form is ignored: the core's backoff applies).
pub(crate) fn retry_after(header: Option<&str>) -> Option<Duration> {
    header?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Classifies an answer to a streaming ingestion request.
pub(crate) fn streaming(status: u16, retry_after_header: Option<&str>, body: &[u8]) -> Verdict {
    if (200..300).contains(&status) {
        return Verdict::Delivered;
    }
    let (reason, permanent) = describe("streaming ingestion", status, body);
    match status {
        404 => Verdict::StreamingDisabled {
            reason: format!(
                "streaming ingestion is not enabled on the cluster (404): enable the streaming ingestion \
                 policy on the database or table, or use IngestionMode::Queued ({reason})"
            ),
        },
        _ => general(status, retry_after_header, reason, permanent),
    }
}

/// Classifies an answer of a control command, the token endpoint or Azure Storage.
pub(crate) fn other(
    what: &str,
    status: u16,
    retry_after_header: Option<&str>,
    body: &[u8],
) -> Verdict {
    if (200..300).contains(&status) {
        return Verdict::Delivered;
    }
    let (reason, permanent) = describe(what, status, body);
    general(status, retry_after_header, reason, permanent)
}

fn general(
    status: u16,
    retry_after_header: Option<&str>,
    reason: String,
    permanent: Option<bool>,
) -> Verdict {
    match status {
        429 => Verdict::Throttled {
            after: retry_after(retry_after_header),
            reason,
        },
        401 | 403 => Verdict::Unauthorized { reason },
        400 => Verdict::Permanent { reason },
        _ => match permanent {
            Some(true) => Verdict::Permanent { reason },
            Some(false) => Verdict::Transient { reason },
            None if status >= 500 || status == 408 => Verdict::Transient { reason },
            None => Verdict::Permanent { reason },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oneapi(code: &str, msg: &str, permanent: bool) -> Vec<u8> {
        serde_json::json!({"error": {"code": code, "message": "summary", "@message": msg, "@permanent": permanent}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn streaming_table() {
        let perm = oneapi("BadRequest_X", "bad row", true);
        let trans = oneapi("ServiceUnavailable", "try later", false);
        let cases: Vec<(u16, Option<&str>, &[u8], &str)> = vec![
            (200, None, b"{}", "delivered"),
            (429, Some("7"), &trans, "throttled"),
            (429, None, b"", "throttled"),
            (401, None, b"", "unauthorized"),
            (403, None, &perm, "unauthorized"),
            (404, None, b"", "disabled"),
            (400, None, &perm, "permanent"),
            (400, None, &trans, "permanent"),
            (500, None, &trans, "transient"),
            (503, None, b"<html>down</html>", "transient"),
            (500, None, &perm, "permanent"),
            (409, None, &trans, "transient"),
            (413, None, b"", "permanent"),
            (408, None, b"", "transient"),
        ];
        for (status, ra, body, want) in cases {
            let got = match streaming(status, ra, body) {
                Verdict::Delivered => "delivered",
                Verdict::Throttled { .. } => "throttled",
                Verdict::Transient { .. } => "transient",
                Verdict::Unauthorized { .. } => "unauthorized",
                Verdict::StreamingDisabled { .. } => "disabled",
                Verdict::Permanent { .. } => "permanent",
            };
            assert_eq!(got, want, "status {status}");
        }
    }

    #[test]
    fn reasons_carry_the_service_message() {
        let v = streaming(
            400,
            None,
            &oneapi("BadRequest_ScriptedPermanentFailure", "do not retry", true),
        );
        assert_eq!(
            v.reason(),
            "streaming ingestion answered 400 BadRequest_ScriptedPermanentFailure: do not retry"
        );
        let v = streaming(404, None, b"");
        assert!(
            v.reason()
                .starts_with("streaming ingestion is not enabled on the cluster (404)")
        );
        let v = streaming(429, Some("3"), b"");
        assert_eq!(
            v,
            Verdict::Throttled {
                after: Some(Duration::from_secs(3)),
                reason: "streaming ingestion answered 429".into()
            }
        );
    }

    #[test]
    fn storage_xml_errors_are_summarised() {
        let body = "\u{feff}<?xml version=\"1.0\"?><Error><Code>AuthenticationFailed</Code><Message>Server failed\nRequestId:1</Message></Error>";
        let v = other("blob upload", 403, None, body.as_bytes());
        assert_eq!(
            v,
            Verdict::Unauthorized {
                reason: "blob upload answered 403: AuthenticationFailed: Server failed".into()
            }
        );
        assert!(other("queue", 500, None, b"").is_retryable());
        assert!(!other("queue", 404, None, b"").is_retryable());
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(retry_after(Some(" 2 ")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(None), None);
    }
}
