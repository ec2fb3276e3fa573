//! What a JESL answer means for the records of one request (pure; table-tested).
//!
//! jKool's own cases come first; every other status falls back to the shared table of
//! [`logship_http::classify`]:
//!
//! | answer | verdict |
//! |---|---|
//! | 2xx (202 event/snapshot, 200 activity) | delivered |
//! | 401, 403 | rejected: "invalid access token" (retrying cannot fix a token) |
//! | 3xx | rejected, naming the (redacted) `Location`: redirects are never followed, so the token never travels to another host |
//! | 408, 429, 5xx except 501 and 505 | retry, after `Retry-After` (seconds or HTTP-date) when given |
//! | 400, 404, 405, 413, 501, 505, other 4xx | rejected with the server's reason (at most 512 bytes of it) |
//! | connection refused/reset, timeout | retry (not classified here: a [`logship_http::SendError`]) |
//! | TLS certificate check failed | retry, counted in `Stats::certificate_failures` |
//! | access-request handshake refused with 401/403 | rejected: "invalid access token" |

use logship_core::Verdict;
use logship_http::Reply;

/// Classifies the answer to a data post; `what` names the request in reasons
/// (e.g. `"jkool event post"`).
pub(crate) fn classify(reply: &Reply, what: &str) -> Verdict {
    match reply.status {
        status @ (401 | 403) => Verdict::rejected(with_excerpt(
            format!(
                "{what}: invalid access token (http {status}); check the token given to JkoolHttpLayer::builder and the auth mode"
            ),
            reply,
        )),
        _ => logship_http::classify(reply, what),
    }
}

/// Classifies the answer to an access request (handshake mode) that was not a 2xx.
pub(crate) fn classify_handshake(reply: &Reply) -> Verdict {
    match reply.status {
        status @ (401 | 403) => Verdict::rejected(format!(
            "invalid access token: the access request was refused (http {status}); check the token given to JkoolHttpLayer::builder"
        )),
        _ => classify(reply, "jkool access request"),
    }
}

fn with_excerpt(mut s: String, reply: &Reply) -> String {
    let e = reply.excerpt();
    if !e.is_empty() {
        s.push_str(": ");
        s.push_str(&e);
    }
    s
}

#[doc(hidden)]
pub mod fuzzing {
    //! Entry points for the fuzz targets in `fuzz/` (see `docs/fuzzing.md`); not API.
    use std::time::Duration;

    use bytes::Bytes;
    use logship_core::Verdict;
    use logship_http::Reply;
    use logship_http::reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    /// The longest server text quoted in a reason, in bytes.
    pub const MAX_REASON_BYTES: usize = logship_core::excerpt::MAX_EXCERPT_BYTES;

    /// Classifies an answer to a post (`handshake == false`) or to the access request
    /// (`true`) as the sink does (the body complete, under the default 1 MiB cap). Returns
    /// `"delivered"`, `"retry"` or `"rejected"`, the server's delay for a retry, and the
    /// reason.
    pub fn response(
        status: u16,
        retry_after: Option<&str>,
        body: &[u8],
        handshake: bool,
    ) -> (&'static str, Option<Duration>, String) {
        let mut headers = HeaderMap::new();
        if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(RETRY_AFTER, v);
        }
        let reply = Reply::from_parts(
            status,
            &headers,
            Bytes::copy_from_slice(body),
            true,
            logship_http::DEFAULT_MAX_REPLY_BYTES,
        );
        let verdict = if handshake {
            super::classify_handshake(&reply)
        } else {
            super::classify(&reply, "jkool event post")
        };
        match verdict {
            Verdict::Delivered => ("delivered", None, String::new()),
            Verdict::Retry { after, reason } => ("retry", after, reason),
            Verdict::Rejected { reason } => ("rejected", None, reason),
            _ => ("unknown", None, String::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logship_http::reqwest::header::{HeaderMap, HeaderValue};
    use std::time::Duration;

    type Headers = &'static [(&'static str, &'static str)];

    fn reply(status: u16, headers: Headers, body: &str) -> Reply {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_static(v));
        }
        Reply::from_parts(status, &h, body.to_string().into(), true, 1 << 20)
    }

    /// The fuzz target's entry point on random statuses, `Retry-After` values and bodies
    /// (deterministic xorshift, so a failure replays): no panic, 2xx and only 2xx delivered,
    /// reasons quote at most `MAX_REASON_BYTES` of the body.
    #[test]
    fn fuzz_entry_point_takes_random_answers() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let pieces: [&[u8]; 8] = [
            b"slow down",
            "é".as_bytes(),
            b"\xff\xfe",
            b" ",
            b"{\"error\":\"x\"}",
            b"\0",
            b"\xe2\x82",
            b"invalid event: missing required field [tracking-id]",
        ];
        let afters = [
            None,
            Some("3"),
            Some(" 1 "),
            Some("-1"),
            Some("99999999999999999999"),
            Some("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(""),
        ];
        for _ in 0..20_000 {
            let status = 100 + (next() % 500) as u16;
            let mut body = Vec::new();
            for _ in 0..(next() % 80) {
                body.extend_from_slice(pieces[(next() % 8) as usize]);
            }
            let retry_after = afters[(next() % afters.len() as u64) as usize];
            let handshake = next() % 4 == 0;
            let (kind, after, reason) = fuzzing::response(status, retry_after, &body, handshake);
            let success = (200..300).contains(&status);
            assert_eq!(kind == "delivered", success, "{status} {handshake}");
            assert!(after.is_none() || kind == "retry");
            // The fixed text of the longest reason (a redirect without a Location) is under
            // 200 bytes, as the fuzz target asserts; the rest is quoted.
            assert!(
                reason.len() <= fuzzing::MAX_REASON_BYTES + 200,
                "{status}: {} bytes: {reason}",
                reason.len()
            );
        }
    }

    #[test]
    fn table() {
        let d = |s| Some(Duration::from_secs(s));
        let cases: &[(u16, Headers, &str, Verdict)] = &[
            (200, &[], "", Verdict::Delivered),
            (202, &[], "", Verdict::Delivered),
            (
                429,
                &[("retry-after", "3")],
                "slow down",
                Verdict::Retry {
                    after: d(3),
                    reason: "p: http 429: slow down".into(),
                },
            ),
            (
                503,
                &[],
                "",
                Verdict::Retry {
                    after: None,
                    reason: "p: http 503".into(),
                },
            ),
            (
                500,
                &[("retry-after", " 1 ")],
                "",
                Verdict::Retry {
                    after: d(1),
                    reason: "p: http 500".into(),
                },
            ),
            (
                408,
                &[],
                "",
                Verdict::Retry {
                    after: None,
                    reason: "p: http 408".into(),
                },
            ),
            (501, &[], "", Verdict::rejected("p: http 501")),
            (
                400,
                &[],
                "invalid event: missing required field [tracking-id]",
                Verdict::rejected(
                    "p: http 400: invalid event: missing required field [tracking-id]",
                ),
            ),
            (404, &[], "", Verdict::rejected("p: http 404")),
        ];
        for (status, headers, body, want) in cases {
            assert_eq!(
                &classify(&reply(*status, headers, body), "p"),
                want,
                "{status}"
            );
        }
        // An HTTP-date Retry-After in the past is "now" (the shared parser understands it).
        let v = classify(
            &reply(429, &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")], ""),
            "p",
        );
        assert!(matches!(v, Verdict::Retry { .. }), "{v:?}");
    }

    #[test]
    fn auth_failures_are_permanent_and_say_so() {
        for status in [401, 403] {
            let v = classify(&reply(status, &[], "access denied"), "p");
            assert!(matches!(v, Verdict::Rejected { .. }), "{v:?}");
            assert!(v.reason().contains("invalid access token"), "{v:?}");
            assert!(v.reason().ends_with("access denied"), "{v:?}");
            let h = classify_handshake(&reply(status, &[], ""));
            assert!(
                matches!(&h, Verdict::Rejected { reason } if reason.starts_with("invalid access token")),
                "{h:?}"
            );
        }
        assert!(matches!(
            classify_handshake(&reply(503, &[], "")),
            Verdict::Retry { .. }
        ));
    }

    #[test]
    fn redirects_are_rejected_naming_the_location_without_credentials() {
        for status in [301, 302, 307, 308] {
            for v in [
                classify(
                    &reply(
                        status,
                        &[("location", "http://u:tok@evil.example:8080/JESL?k=sig")],
                        "",
                    ),
                    "p",
                ),
                classify_handshake(&reply(
                    status,
                    &[("location", "http://u:tok@evil.example:8080/JESL?k=sig")],
                    "",
                )),
            ] {
                assert!(matches!(v, Verdict::Rejected { .. }), "{v:?}");
                let r = v.reason();
                assert!(r.contains("evil.example:8080"), "{r}");
                assert!(!r.contains("tok") && !r.contains("sig"), "{r}");
            }
        }
    }

    #[test]
    fn long_bodies_are_excerpted() {
        let body = "é".repeat(4000);
        for status in [400, 401] {
            let v = classify(&reply(status, &[], &body), "p");
            assert!(matches!(v, Verdict::Rejected { .. }), "{v:?}");
            assert!(v.reason().len() < 800, "{}", v.reason().len());
        }
    }
}
