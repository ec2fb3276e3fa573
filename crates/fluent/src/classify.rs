//! What a server's replies mean for a batch, as pure functions (the Forward protocol v1 specification, <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1> "Ack
//! response"): an ack must be the one-entry map `{"ack": <chunk>}` holding the chunk byte for
//! byte; anything else (a missing, late, different or malformed ack, a broken connection)
//! means "not delivered, retry", as Fluent Bit's out_forward decides.

use logship_core::Outcome;
use rmpv::Value;

/// What one reply says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AckCheck {
    /// `{"ack": chunk}` with our chunk.
    Match,
    /// An ack for another chunk.
    Mismatch(String),
    /// Not an ack at all.
    NotAnAck(String),
}

/// Whether `reply` is a handshake greeting (`["HELO", {…}]`, Forward protocol v1 "Handshake
/// Messages"), which a server that requires a shared key sends first on every connection.
/// What a HELO on a connection without `with_shared_key` means.
pub(crate) const REQUIRES_SHARED_KEY: &str = "this server requires shared-key authentication \
     (it greeted with a HELO): configure the same key with `with_shared_key` (and \
     `with_credentials` if it checks users)";

pub(crate) fn is_helo(reply: &Value) -> bool {
    reply.as_array().is_some_and(|a| {
        a.first().is_some_and(|v| match v {
            Value::String(s) => s.as_bytes() == b"HELO",
            Value::Binary(b) => b == b"HELO",
            _ => false,
        })
    })
}

/// Checks `reply` against the chunk we sent.
pub(crate) fn check_ack(reply: &Value, chunk: &str) -> AckCheck {
    if is_helo(reply) {
        return AckCheck::NotAnAck(REQUIRES_SHARED_KEY.into());
    }
    let Some(map) = reply.as_map() else {
        return AckCheck::NotAnAck(format!("expected an ack map, got {reply}"));
    };
    let ack = map.iter().find(|(k, _)| match k {
        Value::String(s) => s.as_bytes() == b"ack",
        Value::Binary(b) => b == b"ack",
        _ => false,
    });
    let got: &[u8] = match ack.map(|(_, v)| v) {
        Some(Value::String(s)) => s.as_bytes(),
        Some(Value::Binary(b)) => b,
        Some(other) => return AckCheck::NotAnAck(format!("ack value is not a string: {other}")),
        None => return AckCheck::NotAnAck(format!("reply has no `ack` key: {reply}")),
    };
    if got == chunk.as_bytes() {
        AckCheck::Match
    } else {
        AckCheck::Mismatch(String::from_utf8_lossy(got).into_owned())
    }
}

/// The outcome of a batch whose requests carried `records` (indices per request), of which
/// those with `done[i]` were acknowledged (or, without acks, written); `rejected` records could
/// not be encoded; `failure` says why the rest was not.
pub(crate) fn outcome(
    records: &[Vec<usize>],
    done: &[bool],
    rejected: Vec<(usize, String)>,
    failure: Option<String>,
) -> Outcome {
    let any_done = done.iter().any(|d| *d);
    let all_done = records.len() == done.iter().filter(|d| **d).count();
    if all_done {
        return if rejected.is_empty() {
            Outcome::Delivered
        } else {
            Outcome::Partial {
                retry: Vec::new(),
                rejected,
                after: None,
                reason: String::new(),
            }
        };
    }
    let reason = failure.unwrap_or_else(|| "the batch was not acknowledged".into());
    if !any_done {
        // Nothing got through: a plain retry (it counts as a failure for the breaker); records
        // that cannot be encoded are refused again on the next attempt.
        return Outcome::Retry {
            after: None,
            reason,
        };
    }
    let mut retry: Vec<usize> = records
        .iter()
        .zip(done)
        .filter(|(_, d)| !**d)
        .flat_map(|(r, _)| r.iter().copied())
        .collect();
    retry.sort_unstable();
    Outcome::Partial {
        retry,
        rejected,
        after: None,
        reason,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_helo_instead_of_an_ack_says_the_server_wants_a_shared_key() {
        let helo = Value::Array(vec![
            Value::String("HELO".into()),
            Value::Map(vec![(
                Value::String("nonce".into()),
                Value::Binary(b"n".to_vec()),
            )]),
        ]);
        match check_ack(&helo, "c") {
            AckCheck::NotAnAck(why) => {
                assert!(why.contains("requires shared-key authentication"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    use super::*;

    fn ack(v: Value) -> Value {
        Value::Map(vec![("ack".into(), v)])
    }

    #[test]
    fn ack_table() {
        let cases: [(Value, AckCheck); 6] = [
            (ack("c1".into()), AckCheck::Match),
            (ack(Value::Binary(b"c1".to_vec())), AckCheck::Match),
            (ack("c1\n".into()), AckCheck::Mismatch("c1\n".into())),
            (
                ack("garbled-c1".into()),
                AckCheck::Mismatch("garbled-c1".into()),
            ),
            (
                ack(1.into()),
                AckCheck::NotAnAck("ack value is not a string: 1".into()),
            ),
            (
                Value::Nil,
                AckCheck::NotAnAck("expected an ack map, got nil".into()),
            ),
        ];
        for (reply, want) in cases {
            assert_eq!(check_ack(&reply, "c1"), want, "{reply}");
        }
        assert!(matches!(
            check_ack(&Value::Map(vec![("chunk".into(), "c1".into())]), "c1"),
            AckCheck::NotAnAck(_)
        ));
    }

    #[test]
    fn outcome_table() {
        let reqs = vec![vec![0, 2], vec![1], vec![3]];
        assert_eq!(
            outcome(&reqs, &[true, true, true], vec![], None),
            Outcome::Delivered
        );
        assert_eq!(
            outcome(
                &reqs,
                &[true, true, true],
                vec![(4, "too big".into())],
                None
            ),
            Outcome::Partial {
                retry: vec![],
                rejected: vec![(4, "too big".into())],
                after: None,
                reason: String::new(),
            }
        );
        assert_eq!(
            outcome(
                &reqs,
                &[false, false, false],
                vec![],
                Some("ack timed out".into())
            ),
            Outcome::retry("ack timed out")
        );
        assert_eq!(
            outcome(&reqs, &[true, false, false], vec![], Some("x".into())),
            Outcome::Partial {
                retry: vec![1, 3],
                rejected: vec![],
                after: None,
                reason: "x".into(),
            }
        );
        // Every record refused at encoding: nothing to send, all rejected.
        assert_eq!(
            outcome(&[], &[], vec![(0, "too big".into())], None),
            Outcome::Partial {
                retry: vec![],
                rejected: vec![(0, "too big".into())],
                after: None,
                reason: String::new(),
            }
        );
    }
}
