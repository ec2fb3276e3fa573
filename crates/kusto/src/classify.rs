//! What a Kusto answer means: pure functions from status, `Retry-After` and body to a
//! verdict, table-tested below. The sink turns verdicts into core `Outcome`s; it never
//! retries on its own except to refresh a token once after a 401/403.
//!
//! Kusto's own cases come first; every other status falls back on the shared table of
//! [`logship_http::classify`] (which also turns a redirect into a refusal naming its
//! `Location`: nothing is ever followed). Reply bodies arrive capped by the shared transport
//! and reasons quote at most [`MAX_EXCERPT_BYTES`](logship_core::excerpt::MAX_EXCERPT_BYTES)
//! of them.
//!
//! Streaming ingestion (the Azure Data Explorer REST API documentation, <https://learn.microsoft.com/azure/data-explorer/kusto/api/rest/> "Errors and their classification"):
//!
//! | answer | verdict | what happens |
//! |---|---|---|
//! | 2xx | delivered | |
//! | 429 | throttled (with `Retry-After`, seconds or HTTP-date) | retried by the core with backoff; managed mode falls back to queued ingestion after repeated throttling |
//! | 401, 403 | unauthorized | the token is refreshed and the request sent once more; a second refusal is undelivered with a clear message |
//! | 404 | streaming disabled | undelivered: "streaming ingestion is not enabled on the cluster" (managed mode: queued instead) |
//! | 400 | permanent | undelivered with the service's `@message` |
//! | OneApi `@permanent: true` | permanent | undelivered with the service's message |
//! | OneApi `@permanent: false` | transient | retried by the core (managed mode: queued after repeated failures) |
//! | anything else | the shared table ([`logship_http::classify`]): 3xx permanent (redirects are never followed), 408 and 5xx (but 501, 505) transient, other 4xx permanent | |
//!
//! Control commands, Azure Storage and the token endpoints use the same rules without the
//! 404 case. A request that got no answer at all is transient; one whose server certificate
//! failed a check is retried and counted in
//! `Stats::certificate_failures`.

use std::time::Duration;

use logship_core::excerpt::{bounded, excerpt};
use logship_http::{Reply, SendError};

/// The meaning of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Accepted.
    Delivered,
    /// 429: try later (`after` from `Retry-After`).
    Throttled {
        after: Option<Duration>,
        reason: String,
    },
    /// Try again later.
    Transient { reason: String },
    /// The server's certificate failed a check (the reason says which): try again later (it
    /// may be renewed), and count it.
    Certificate { reason: String },
    /// 401/403: the token was refused.
    Unauthorized { reason: String },
    /// 404 on the streaming endpoint: the cluster has streaming ingestion off.
    StreamingDisabled { reason: String },
    /// Refused for good.
    Permanent { reason: String },
}

impl Verdict {
    /// A request of `what` that got no answer (`e` names the host and the cause, never the
    /// URL: a query may hold a SAS signature).
    pub(crate) fn from_send_error(what: &str, e: &SendError) -> Self {
        let reason = format!("{what}: {e}");
        if e.certificate().is_some() {
            Self::Certificate { reason }
        } else {
            Self::Transient { reason }
        }
    }
    /// Whether trying the same data again may succeed.
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. } | Self::Transient { .. } | Self::Certificate { .. }
        )
    }
    /// Adds `more` to the reason (nothing for `Delivered`).
    pub(crate) fn append_to_reason(&mut self, more: &str) {
        match self {
            Self::Delivered => {}
            Self::Throttled { reason, .. }
            | Self::Transient { reason }
            | Self::Certificate { reason }
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
            | Self::Certificate { reason }
            | Self::Unauthorized { reason }
            | Self::StreamingDisabled { reason }
            | Self::Permanent { reason } => reason,
        }
    }
    /// The core's verdict for the records of the request: retry (throttled, transient,
    /// certificate) or rejected (the rest).
    pub(crate) fn to_core(&self) -> logship_core::Verdict {
        match self {
            Self::Delivered => logship_core::Verdict::Delivered,
            Self::Throttled { after, reason } => logship_core::Verdict::Retry {
                after: *after,
                reason: reason.clone(),
            },
            Self::Transient { reason } | Self::Certificate { reason } => {
                logship_core::Verdict::retry(reason.clone())
            }
            Self::Unauthorized { reason }
            | Self::StreamingDisabled { reason }
            | Self::Permanent { reason } => logship_core::Verdict::rejected(reason.clone()),
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

/// A short, single-line summary of a non-JSON body: Azure Storage's
/// `<Code>…</Code><Message>…</Message>` as `Code: Message`, anything else (HTML from a proxy)
/// as the shared [`excerpt`].
fn summary(body: &[u8]) -> String {
    let head = &body[..body.len().min(4 * logship_core::excerpt::MAX_EXCERPT_BYTES)];
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}');
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{t}>"))? + start;
        Some(text[start..end].lines().next().unwrap_or("").to_string())
    };
    if let Some(code) = tag("Code") {
        let s = match tag("Message") {
            Some(m) => format!("{code}: {m}"),
            None => code,
        };
        return bounded(&s, logship_core::excerpt::MAX_EXCERPT_BYTES);
    }
    excerpt(body)
}

/// `{what} answered {status} …` with the service's code and message (bounded), and whether
/// the OneApi body says the error is permanent.
fn describe(what: &str, reply: &Reply) -> (String, Option<bool>) {
    let status = reply.status;
    let (mut reason, permanent) = match one_api(&reply.body) {
        Some(e) => {
            let code = e.code.unwrap_or_else(|| "error".into());
            let msg = e.message.unwrap_or_default();
            let text = bounded(
                &format!("{code}: {msg}"),
                logship_core::excerpt::MAX_EXCERPT_BYTES,
            );
            (format!("{what} answered {status} {text}"), e.permanent)
        }
        None if reply.body.is_empty() => (format!("{what} answered {status}"), None),
        None => (
            format!("{what} answered {status}: {}", summary(&reply.body)),
            None,
        ),
    };
    if let Some(note) = reply.cut_note() {
        reason.push_str(" (");
        reason.push_str(&note);
        reason.push(')');
    }
    (reason, permanent)
}

/// Classifies an answer to a streaming ingestion request.
pub(crate) fn streaming(reply: &Reply) -> Verdict {
    if reply.is_success() {
        return Verdict::Delivered;
    }
    let what = "streaming ingestion";
    let (reason, permanent) = describe(what, reply);
    match reply.status {
        404 => Verdict::StreamingDisabled {
            reason: format!(
                "streaming ingestion is not enabled on the cluster (404): enable the streaming ingestion \
                 policy on the database or table, or use IngestionMode::Queued ({reason})"
            ),
        },
        _ => general(what, reply, reason, permanent),
    }
}

/// Classifies an answer of a control command, the token endpoint or Azure Storage; `what`
/// names the request in the reason.
pub(crate) fn other(what: &str, reply: &Reply) -> Verdict {
    if reply.is_success() {
        return Verdict::Delivered;
    }
    let (reason, permanent) = describe(what, reply);
    general(what, reply, reason, permanent)
}

/// Kusto's cases, then the shared table (whose verdict kind is kept, with Kusto's reason, or
/// the shared reason for a redirect: it names the `Location`).
fn general(what: &str, reply: &Reply, reason: String, permanent: Option<bool>) -> Verdict {
    match reply.status {
        429 => Verdict::Throttled {
            after: reply.retry_after,
            reason,
        },
        401 | 403 => Verdict::Unauthorized { reason },
        400 => Verdict::Permanent { reason },
        300..=399 => Verdict::Permanent {
            reason: logship_http::classify(reply, what).reason().to_string(),
        },
        _ => match permanent {
            Some(true) => Verdict::Permanent { reason },
            Some(false) => Verdict::Transient { reason },
            None => match logship_http::classify(reply, what) {
                logship_core::Verdict::Delivered => Verdict::Delivered,
                logship_core::Verdict::Retry { .. } => Verdict::Transient { reason },
                _ => Verdict::Permanent { reason },
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logship_http::reqwest::header::{HeaderMap, HeaderValue};

    fn oneapi(code: &str, msg: &str, permanent: bool) -> Vec<u8> {
        serde_json::json!({"error": {"code": code, "message": "summary", "@message": msg, "@permanent": permanent}})
            .to_string()
            .into_bytes()
    }

    fn reply(status: u16, headers: &[(&'static str, &str)], body: &[u8]) -> Reply {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.insert(*k, v);
            }
        }
        Reply::from_parts(status, &h, body.to_vec().into(), true, 1 << 20)
    }

    fn kind(v: &Verdict) -> &'static str {
        match v {
            Verdict::Delivered => "delivered",
            Verdict::Throttled { .. } => "throttled",
            Verdict::Transient { .. } => "transient",
            Verdict::Certificate { .. } => "certificate",
            Verdict::Unauthorized { .. } => "unauthorized",
            Verdict::StreamingDisabled { .. } => "disabled",
            Verdict::Permanent { .. } => "permanent",
        }
    }

    #[test]
    fn streaming_table() {
        let perm = oneapi("BadRequest_X", "bad row", true);
        let trans = oneapi("ServiceUnavailable", "try later", false);
        type Case<'a> = (u16, &'a [(&'static str, &'a str)], &'a [u8], &'a str);
        let cases: Vec<Case<'_>> = vec![
            (200, &[], b"{}", "delivered"),
            (204, &[], b"", "delivered"),
            (429, &[("retry-after", "7")], &trans, "throttled"),
            (429, &[], b"", "throttled"),
            (401, &[], b"", "unauthorized"),
            (403, &[], &perm, "unauthorized"),
            (404, &[], b"", "disabled"),
            (400, &[], &perm, "permanent"),
            (400, &[], &trans, "permanent"),
            // OneApi `@permanent` decides over the status.
            (500, &[], &trans, "transient"),
            (500, &[], &perm, "permanent"),
            (503, &[], &perm, "permanent"),
            (409, &[], &trans, "transient"),
            (409, &[], &perm, "permanent"),
            // The shared table for the rest.
            (503, &[], b"<html>down</html>", "transient"),
            (500, &[], b"", "transient"),
            (408, &[], b"", "transient"),
            (413, &[], b"", "permanent"),
            (501, &[], b"", "permanent"),
            (505, &[], b"", "permanent"),
            (
                307,
                &[("location", "https://elsewhere.example/")],
                b"",
                "permanent",
            ),
            (301, &[], b"", "permanent"),
        ];
        for (status, headers, body, want) in cases {
            let got = streaming(&reply(status, headers, body));
            assert_eq!(kind(&got), want, "status {status}: {got:?}");
        }
    }

    #[test]
    fn other_endpoints_have_no_streaming_disabled_case() {
        assert_eq!(
            kind(&other("the queue message", &reply(404, &[], b""))),
            "permanent"
        );
        assert!(other("the queue message", &reply(500, &[], b"")).is_retryable());
        assert_eq!(
            kind(&other(
                "the control command endpoint",
                &reply(500, &[], &oneapi("X", "no", true))
            )),
            "permanent"
        );
    }

    #[test]
    fn reasons_carry_the_service_message() {
        let v = streaming(&reply(
            400,
            &[],
            &oneapi("BadRequest_ScriptedPermanentFailure", "do not retry", true),
        ));
        assert_eq!(
            v.reason(),
            "streaming ingestion answered 400 BadRequest_ScriptedPermanentFailure: do not retry"
        );
        let v = streaming(&reply(404, &[], b""));
        assert!(
            v.reason()
                .starts_with("streaming ingestion is not enabled on the cluster (404)")
        );
        let v = streaming(&reply(429, &[("retry-after", "3")], b""));
        assert_eq!(
            v,
            Verdict::Throttled {
                after: Some(Duration::from_secs(3)),
                reason: "streaming ingestion answered 429".into()
            }
        );
    }

    #[test]
    fn retry_after_comes_from_the_shared_parser() {
        // The HTTP-date form, which the crate's old parser ignored (a date in the past: 0 s).
        let v = streaming(&reply(
            429,
            &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")],
            b"",
        ));
        assert_eq!(
            v,
            Verdict::Throttled {
                after: Some(Duration::ZERO),
                reason: "streaming ingestion answered 429".into()
            }
        );
        let v = streaming(&reply(429, &[("retry-after", "soon")], b""));
        assert!(matches!(v, Verdict::Throttled { after: None, .. }), "{v:?}");
    }

    #[test]
    fn redirects_name_the_redacted_location() {
        let v = streaming(&reply(
            307,
            &[("location", "http://u:hunter2@other.example:81/x?sig=KEY")],
            b"",
        ));
        let r = v.reason();
        assert!(matches!(v, Verdict::Permanent { .. }));
        assert!(r.contains("307") && r.contains("other.example:81"), "{r}");
        assert!(!r.contains("hunter2") && !r.contains("KEY"), "{r}");
    }

    #[test]
    fn long_and_cut_bodies_are_bounded() {
        let huge = "m".repeat(100_000);
        let v = streaming(&reply(500, &[], &oneapi("E", &huge, true)));
        assert!(matches!(v, Verdict::Permanent { .. }));
        assert!(v.reason().len() < 700, "{}", v.reason().len());
        let mut r = reply(500, &[], &[b'x'; 4096]);
        r.complete = false;
        let v = streaming(&r);
        assert!(v.is_retryable());
        assert!(v.reason().len() < 1200, "{}", v.reason().len());
        assert!(v.reason().contains("byte cap"), "{}", v.reason());
        // Binary garbage (say, a compressed body) is one printable line.
        let v = streaming(&reply(500, &[], &[0x1f, 0x8b, 8, 0, 0xff, 0x00, b'\n']));
        assert!(!v.reason().contains('\n') && !v.reason().contains('\0'));
    }

    #[test]
    fn storage_xml_errors_are_summarised() {
        let body = "\u{feff}<?xml version=\"1.0\"?><Error><Code>AuthenticationFailed</Code><Message>Server failed\nRequestId:1</Message></Error>";
        let v = other("blob upload", &reply(403, &[], body.as_bytes()));
        assert_eq!(
            v,
            Verdict::Unauthorized {
                reason: "blob upload answered 403: AuthenticationFailed: Server failed".into()
            }
        );
    }

    #[test]
    fn core_verdicts() {
        assert_eq!(
            Verdict::Delivered.to_core(),
            logship_core::Verdict::Delivered
        );
        let c = Verdict::Certificate {
            reason: "unknown issuer".into(),
        };
        assert!(c.is_retryable());
        assert_eq!(c.to_core(), logship_core::Verdict::retry("unknown issuer"));
        let u = Verdict::Unauthorized {
            reason: "no".into(),
        };
        assert_eq!(u.to_core(), logship_core::Verdict::rejected("no"));
    }
}
