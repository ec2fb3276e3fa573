//! What a JESL answer means for the records of one request (pure; table-tested).
//!
//! | answer | verdict |
//! |---|---|
//! | 2xx (202 event/snapshot, 200 activity) | delivered |
//! | 401, 403 | rejected: "invalid access token" (retrying cannot fix a token) |
//! | 408, 429, 500, 502, 503, 504 and other 5xx except 501 | retry, after `Retry-After` when given |
//! | 400, 404, 405, 413, 501, other 4xx | rejected with the server's reason |
//! | connection refused/reset, timeout, TLS failure | retry |
//! | access-request handshake refused with 401/403 | rejected: "invalid access token" |

use std::time::Duration;

/// The verdict for one request's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Delivered,
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    Rejected {
        reason: String,
    },
}

/// Longest reply text quoted in a reason, in bytes.
const MAX_REASON: usize = 300;

/// Classifies an HTTP answer.
pub(crate) fn classify(status: u16, retry_after: Option<&str>, body: &str) -> Verdict {
    let text = short(body);
    let with_text = |what: String| {
        if text.is_empty() {
            what
        } else {
            format!("{what}: {text}")
        }
    };
    match status {
        200..=299 => Verdict::Delivered,
        401 | 403 => Verdict::Rejected {
            reason: with_text(format!(
                "invalid access token (http {status}); check the token given to JkoolHttpLayer::builder and the auth mode"
            )),
        },
        408 | 429 | 500 | 502..=599 => Verdict::Retry {
            after: retry_after.and_then(parse_retry_after),
            reason: with_text(format!("http {status}")),
        },
        _ => Verdict::Rejected {
            reason: with_text(format!("http {status}")),
        },
    }
}

/// A refused access-request handshake.
pub(crate) fn classify_handshake(status: u16, body: &str) -> Verdict {
    match status {
        401 | 403 => Verdict::Rejected {
            reason: format!("invalid access token: the access request was refused (http {status})"),
        },
        _ => classify(status, None, body),
    }
}

/// `Retry-After` as delay-seconds (RFC 9110 §10.2.3). HTTP-date values are ignored (the
/// core's backoff applies instead).
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn short(body: &str) -> String {
    let t = body.trim();
    if t.len() <= MAX_REASON {
        return t.to_string();
    }
    let mut cut = MAX_REASON;
    while !t.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &t[..cut])
}

#[doc(hidden)]
pub mod fuzzing {
    //! Entry points for the fuzz targets in `fuzz/` (see `docs/fuzzing.md`); not API.
    use std::time::Duration;

    /// The longest server text quoted in a reason, in bytes (before the `…` that marks a cut).
    pub const MAX_REASON_BYTES: usize = super::MAX_REASON;

    /// Classifies an answer to a post (`handshake == false`) or to the access request
    /// (`true`) as the sink does; the body is read as the transport reads it (UTF-8, invalid
    /// sequences replaced). Returns `"delivered"`, `"retry"` or `"rejected"`, the server's
    /// delay for a retry, and the reason.
    pub fn response(
        status: u16,
        retry_after: Option<&str>,
        body: &[u8],
        handshake: bool,
    ) -> (&'static str, Option<Duration>, String) {
        use super::Verdict;
        let body = String::from_utf8_lossy(body);
        let verdict = if handshake {
            super::classify_handshake(status, &body)
        } else {
            super::classify(status, retry_after, &body)
        };
        match verdict {
            Verdict::Delivered => ("delivered", None, String::new()),
            Verdict::Retry { after, reason } => ("retry", after, reason),
            Verdict::Rejected { reason } => ("rejected", None, reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz target's entry point on random statuses, `Retry-After` values and bodies
    /// (deterministic xorshift, so a failure replays): no panic, 2xx and only 2xx delivered,
    /// reasons quote at most `MAX_REASON` bytes of the body.
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
            // The fixed text of the longest reason is under 200 bytes; the rest is quoted.
            assert!(
                reason.len() <= fuzzing::MAX_REASON_BYTES + 200,
                "{status}: {} bytes",
                reason.len()
            );
        }
    }

    #[test]
    fn table() {
        let d = |s| Some(Duration::from_secs(s));
        let cases: &[(u16, Option<&str>, &str, Verdict)] = &[
            (200, None, "", Verdict::Delivered),
            (202, None, "", Verdict::Delivered),
            (
                429,
                Some("3"),
                "slow down",
                Verdict::Retry {
                    after: d(3),
                    reason: "http 429: slow down".into(),
                },
            ),
            (
                429,
                Some("Wed, 21 Oct 2015 07:28:00 GMT"),
                "",
                Verdict::Retry {
                    after: None,
                    reason: "http 429".into(),
                },
            ),
            (
                503,
                None,
                "",
                Verdict::Retry {
                    after: None,
                    reason: "http 503".into(),
                },
            ),
            (
                500,
                Some(" 1 "),
                "",
                Verdict::Retry {
                    after: d(1),
                    reason: "http 500".into(),
                },
            ),
            (
                408,
                None,
                "",
                Verdict::Retry {
                    after: None,
                    reason: "http 408".into(),
                },
            ),
            (
                501,
                None,
                "",
                Verdict::Rejected {
                    reason: "http 501".into(),
                },
            ),
            (
                400,
                None,
                "invalid event: missing required field [tracking-id]",
                Verdict::Rejected {
                    reason: "http 400: invalid event: missing required field [tracking-id]".into(),
                },
            ),
            (
                404,
                None,
                "",
                Verdict::Rejected {
                    reason: "http 404".into(),
                },
            ),
        ];
        for (status, ra, body, want) in cases {
            assert_eq!(&classify(*status, *ra, body), want, "{status}");
        }
    }

    #[test]
    fn auth_failures_are_permanent_and_say_so() {
        for status in [401, 403] {
            match classify(status, None, "access denied") {
                Verdict::Rejected { reason } => {
                    assert!(reason.starts_with("invalid access token"), "{reason}");
                    assert!(reason.ends_with("access denied"), "{reason}");
                }
                other => panic!("{other:?}"),
            }
            assert!(
                matches!(classify_handshake(status, ""), Verdict::Rejected { reason } if reason.starts_with("invalid access token"))
            );
        }
        assert!(matches!(classify_handshake(503, ""), Verdict::Retry { .. }));
    }

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary() {
        let body = "é".repeat(400);
        let Verdict::Rejected { reason } = classify(400, None, &body) else {
            panic!("not rejected");
        };
        assert!(reason.len() < 330, "{}", reason.len());
        assert!(reason.ends_with('…'));
    }
}
