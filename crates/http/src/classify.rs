//! [`classify`]: what an HTTP status means for the records of a request, when the backend's
//! protocol has nothing more specific to say.
//!
//! | status | verdict |
//! |---|---|
//! | 2xx | delivered |
//! | 3xx | rejected: redirects are never followed; the reason names the `Location` |
//! | 408 Request Timeout, 429 Too Many Requests | retry, after `Retry-After` when given |
//! | 5xx except 501 Not Implemented and 505 HTTP Version Not Supported | retry, after `Retry-After` when given |
//! | any other status (400, 401, 403, 404, 413, 501, …) | rejected |
//!
//! Backends check their protocol-specific cases first (an Elasticsearch `409` on `create` is a
//! duplicate, a Kusto error with `@permanent: true` is final, a jKool `401` names the token)
//! and fall back to this table, as Vector's `HttpRetryLogic` and OpenTelemetry's
//! `retry_classification.rs` do.

use logship_core::Verdict;

use crate::Reply;

/// The default verdict for `reply`; `what` names the request in the reason (e.g.
/// `"bulk request"`). Reasons carry the status and an excerpt of the body.
///
/// ```
/// # use logship_http::{Reply, classify, reqwest::header::HeaderMap};
/// let reply = Reply::from_parts(503, &HeaderMap::new(), "busy".into(), true, 1024);
/// assert_eq!(classify(&reply, "post").reason(), "post: http 503: busy");
/// ```
pub fn classify(reply: &Reply, what: &str) -> Verdict {
    let status = reply.status;
    match status {
        200..=299 => Verdict::Delivered,
        300..=399 => Verdict::rejected(format!(
            "{what}: the server answered http {status} redirecting to {}; logship never follows redirects (they could carry credentials and records to another host): configure the final URL",
            reply.location.as_deref().unwrap_or("(no Location)")
        )),
        408 | 429 | 500 | 502..=504 | 506..=599 => Verdict::Retry {
            after: reply.retry_after,
            reason: reason(reply, what),
        },
        _ => Verdict::rejected(reason(reply, what)),
    }
}

/// `{what}: http {status}: {excerpt}` (and a note when the body was cut).
fn reason(reply: &Reply, what: &str) -> String {
    let mut s = format!("{what}: http {}", reply.status);
    let e = reply.excerpt();
    if !e.is_empty() {
        s.push_str(": ");
        s.push_str(&e);
    }
    if let Some(note) = reply.cut_note() {
        s.push_str(" (");
        s.push_str(&note);
        s.push(')');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};
    use std::time::Duration;

    fn reply(status: u16, headers: &[(&'static str, &'static str)], body: &str) -> Reply {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_static(v));
        }
        Reply::from_parts(status, &h, body.to_string().into(), true, 1 << 20)
    }

    #[test]
    fn table() {
        assert_eq!(classify(&reply(200, &[], ""), "x"), Verdict::Delivered);
        assert_eq!(classify(&reply(204, &[], ""), "x"), Verdict::Delivered);
        assert_eq!(
            classify(&reply(429, &[("retry-after", "3")], "slow"), "x"),
            Verdict::Retry {
                after: Some(Duration::from_secs(3)),
                reason: "x: http 429: slow".into()
            }
        );
        for s in [408, 500, 502, 503, 504, 507, 599] {
            assert!(
                matches!(classify(&reply(s, &[], ""), "x"), Verdict::Retry { .. }),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 409, 413, 501, 505] {
            assert!(
                matches!(classify(&reply(s, &[], ""), "x"), Verdict::Rejected { .. }),
                "{s}"
            );
        }
        let r = classify(
            &reply(
                307,
                &[("location", "http://user:pw@other:80/x?sig=abc")],
                "",
            ),
            "bulk",
        );
        let text = r.reason();
        assert!(matches!(r, Verdict::Rejected { .. }));
        assert!(
            text.contains("http 307") && text.contains("other:80"),
            "{text}"
        );
        assert!(!text.contains("pw") && !text.contains("abc"), "{text}");
    }

    #[test]
    fn long_bodies_are_excerpted_and_cuts_are_said() {
        let body = "e".repeat(100_000);
        let mut r = reply(400, &[], &body);
        r.complete = false;
        let v = classify(&r, "x");
        assert!(v.reason().len() < 1000, "{}", v.reason().len());
        assert!(v.reason().contains("with_max_reply_bytes"));
    }
}
