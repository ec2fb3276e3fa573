//! The shared-key handshake: HELO, PING check, PONG (the Forward protocol v1 specification, <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1> "Handshake").

use rmpv::Value;
use sha2::{Digest, Sha512};

use super::HeloStyle;
use super::wire::put_str;

/// Lowercase hex of SHA-512 over the parts concatenated in order.
pub(crate) fn sha512_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// The HELO: `["HELO", {"nonce": .., "auth": .., "keepalive": keepalive}]` (Fluentd: bin8 and
/// keepalive, `false` with `deny_keepalive`) or `["HELO", {"nonce": .., "auth": ..}]` with str
/// holding raw bytes (Fluent Bit, which has no such setting).
pub(crate) fn encode_helo(style: HeloStyle, nonce: &[u8], auth: &[u8], keepalive: bool) -> Vec<u8> {
    let mut out = vec![0x92];
    put_str(&mut out, b"HELO");
    let bytes = |out: &mut Vec<u8>, b: &[u8]| match style {
        HeloStyle::Fluentd => {
            out.extend_from_slice(&[0xc4, b.len() as u8]);
            out.extend_from_slice(b);
        }
        HeloStyle::FluentBit => put_str(out, b),
    };
    match style {
        HeloStyle::Fluentd => out.push(0x83),
        HeloStyle::FluentBit => out.push(0x82),
    }
    put_str(&mut out, b"nonce");
    bytes(&mut out, nonce);
    put_str(&mut out, b"auth");
    bytes(&mut out, auth);
    if style == HeloStyle::Fluentd {
        put_str(&mut out, b"keepalive");
        out.push(if keepalive { 0xc3 } else { 0xc2 });
    }
    out
}

/// `["PONG", true, "", server_hostname, digest]`, all fields str.
pub(crate) fn encode_pong_ok(server_hostname: &str, digest: &str) -> Vec<u8> {
    let mut out = vec![0x95];
    put_str(&mut out, b"PONG");
    out.push(0xc3);
    put_str(&mut out, b"");
    put_str(&mut out, server_hostname.as_bytes());
    put_str(&mut out, digest.as_bytes());
    out
}

/// `["PONG", false, reason, "", ""]`, as Fluentd sends it.
pub(crate) fn encode_pong_fail(reason: &str) -> Vec<u8> {
    let mut out = vec![0x95];
    put_str(&mut out, b"PONG");
    out.push(0xc2);
    put_str(&mut out, reason.as_bytes());
    put_str(&mut out, b"");
    put_str(&mut out, b"");
    out
}

/// What the server knows when it checks a PING.
pub(crate) struct PingCheck<'a> {
    pub(crate) style: HeloStyle,
    pub(crate) shared_key: &'a [u8],
    pub(crate) self_hostname: &'a str,
    pub(crate) users: &'a [(String, String)],
    pub(crate) nonce: &'a [u8],
    pub(crate) auth: &'a [u8],
}

/// Outcome of a PING check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PingOutcome {
    /// Authenticated: send this PONG and enter the transport phase.
    Ok { pong: Vec<u8> },
    /// Rejected: send `pong` when present, then close.
    Fail {
        reason: String,
        pong: Option<Vec<u8>>,
    },
}

fn fail(reason: impl Into<String>, pong: bool) -> PingOutcome {
    let reason = reason.into();
    let pong = pong.then(|| encode_pong_fail(&reason));
    PingOutcome::Fail { reason, pong }
}

fn str_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::String(s) => Some(s.as_bytes()),
        _ => None,
    }
}

impl PingCheck<'_> {
    /// Checks `["PING", client_hostname, shared_key_salt, shared_key_hexdigest, username,
    /// password_digest]` in Fluentd's order: message shape, hostname, shared key, user.
    pub(crate) fn check(&self, ping: &Value) -> PingOutcome {
        let fluentd = self.style == HeloStyle::Fluentd;
        let Some(items) = ping.as_array() else {
            return fail(format!("expected PING, got {ping}"), false);
        };
        if items.len() != 6 || str_bytes(&items[0]) != Some(b"PING") {
            return fail(format!("expected a 6-element PING, got {ping}"), false);
        }
        let salt = match &items[2] {
            Value::String(s) => s.as_bytes(),
            Value::Binary(_) => {
                return fail("Invalid shared_key_salt type (bin; send it as str)", false);
            }
            other => return fail(format!("invalid shared_key_salt {other}"), false),
        };
        let (Some(hostname), Some(digest), Some(username), Some(password_digest)) = (
            str_bytes(&items[1]),
            str_bytes(&items[3]),
            str_bytes(&items[4]),
            str_bytes(&items[5]),
        ) else {
            return fail(format!("PING fields must be str: {ping}"), false);
        };
        if fluentd && hostname == self.self_hostname.as_bytes() {
            return fail(
                "same hostname between input and output: invalid configuration",
                true,
            );
        }
        let expected = sha512_hex(&[salt, hostname, self.nonce, self.shared_key]);
        if digest != expected.as_bytes() {
            // Fluent Bit closes without a PONG on a bad shared key; Fluentd answers first.
            return fail("shared_key mismatch", fluentd);
        }
        if !self.users.is_empty() {
            let ok = self.users.iter().any(|(u, p)| {
                u.as_bytes() == username
                    && sha512_hex(&[self.auth, u.as_bytes(), p.as_bytes()]).as_bytes()
                        == password_digest
            });
            if !ok {
                return fail("username/password mismatch", true);
            }
        }
        let server_digest = sha512_hex(&[
            salt,
            self.self_hostname.as_bytes(),
            self.nonce,
            self.shared_key,
        ]);
        PingOutcome::Ok {
            pong: encode_pong_ok(self.self_hostname, &server_digest),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn helo_wire_styles() {
        let n = [1u8; 16];
        let a = [2u8; 16];
        let d = encode_helo(HeloStyle::Fluentd, &n, &a, true);
        let v = rmpv::decode::read_value(&mut &d[..]).unwrap();
        assert_eq!(v[1]["nonce"], Value::Binary(n.to_vec()));
        assert_eq!(v[1]["keepalive"], Value::Boolean(true));
        assert_eq!(&d[..7], &[0x92, 0xa4, b'H', b'E', b'L', b'O', 0x83]);
        let denied = encode_helo(HeloStyle::Fluentd, &n, &a, false);
        let v = rmpv::decode::read_value(&mut &denied[..]).unwrap();
        assert_eq!(v[1]["keepalive"], Value::Boolean(false));
        let b = encode_helo(HeloStyle::FluentBit, &[0xff; 16], &a, true);
        let v = rmpv::decode::read_value(&mut &b[..]).unwrap();
        assert_eq!(v[1]["nonce"].as_str(), None, "raw bytes are not UTF-8");
        assert!(matches!(&v[1]["nonce"], Value::String(s) if s.as_bytes() == [0xff; 16]));
        assert_eq!(v[1]["keepalive"], Value::Nil);
    }

    fn ping(salt: Value, host: &str, digest: &str, user: &str, pw: &str) -> Value {
        Value::Array(vec![
            "PING".into(),
            host.into(),
            salt,
            digest.into(),
            user.into(),
            pw.into(),
        ])
    }

    #[test]
    fn ping_checks() {
        let users = vec![("u".to_string(), "p".to_string())];
        let c = PingCheck {
            style: HeloStyle::Fluentd,
            shared_key: b"k",
            self_hostname: "srv",
            users: &users,
            nonce: b"N",
            auth: b"A",
        };
        let good = sha512_hex(&[b"s", b"cli", b"N", b"k"]);
        let pw = sha512_hex(&[b"A", b"u", b"p"]);
        let PingOutcome::Ok { pong } = c.check(&ping("s".into(), "cli", &good, "u", &pw)) else {
            panic!()
        };
        let v = rmpv::decode::read_value(&mut &pong[..]).unwrap();
        assert_eq!(
            v[4].as_str(),
            Some(sha512_hex(&[b"s", b"srv", b"N", b"k"]).as_str())
        );
        assert!(matches!(
            c.check(&ping("s".into(), "cli", &good, "u", "bad")),
            PingOutcome::Fail { ref reason, pong: Some(_) } if reason == "username/password mismatch"
        ));
        assert!(matches!(
            c.check(&ping("s".into(), "cli", "bad", "u", &pw)),
            PingOutcome::Fail { ref reason, pong: Some(_) } if reason == "shared_key mismatch"
        ));
        assert!(matches!(
            c.check(&ping(Value::Binary(b"s".to_vec()), "cli", &good, "u", &pw)),
            PingOutcome::Fail { pong: None, .. }
        ));
        let bit = PingCheck {
            style: HeloStyle::FluentBit,
            ..c
        };
        assert!(matches!(
            bit.check(&ping("s".into(), "cli", "bad", "u", &pw)),
            PingOutcome::Fail { pong: None, .. }
        ));
    }
}
