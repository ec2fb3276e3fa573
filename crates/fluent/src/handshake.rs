//! The shared-key handshake (the Forward protocol v1 specification, <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1> "Handshake"), as pure functions: read a HELO,
//! write a PING, check a PONG. The sink drives them over a connection.
//!
//! ```text
//! server → ["HELO", {"nonce": n, "auth": a, "keepalive": true}]
//! client → ["PING", self_hostname, salt, hex(sha512(salt ‖ self_hostname ‖ n ‖ key)),
//!           username, hex(sha512(a ‖ username ‖ password)) or ""]
//! server → ["PONG", ok, reason, server_hostname, hex(sha512(salt ‖ server_hostname ‖ n ‖ key))]
//! ```
//!
//! Both wire styles of HELO are read (Fluentd: `nonce`/`auth` as bin; Fluent Bit: as str
//! holding raw bytes). The salt is sent as a 32-character hex str (Fluent Bit refuses a bin
//! salt), and the PONG digest is verified, so a server that does not know the key is refused.

use rmpv::Value;
use sha2::{Digest, Sha512};

use crate::msgpack as mp;

/// What the server's HELO said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Helo {
    pub(crate) nonce: Vec<u8>,
    pub(crate) auth: Vec<u8>,
    pub(crate) keepalive: bool,
}

/// The client's credentials.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    pub(crate) self_hostname: String,
    pub(crate) shared_key: crate::Secret,
    pub(crate) user: Option<(String, crate::Secret)>,
}

/// Lowercase hex of SHA-512 over `parts` concatenated.
pub(crate) fn sha512_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn raw(v: &Value) -> Option<&[u8]> {
    match v {
        Value::Binary(b) => Some(b),
        Value::String(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn entry<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| raw(k) == Some(key.as_bytes()))
        .map(|(_, v)| v)
}

/// Reads `["HELO", {...}]`.
///
/// # Errors
/// A description of what the message was instead.
pub(crate) fn parse_helo(v: &Value) -> Result<Helo, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("expected HELO, got {v}"))?;
    if items.len() != 2 || raw(&items[0]) != Some(b"HELO") {
        return Err(format!("expected HELO, got {v}"));
    }
    let map = items[1]
        .as_map()
        .ok_or_else(|| "HELO options are not a map".to_string())?;
    let nonce = entry(map, "nonce")
        .and_then(raw)
        .ok_or_else(|| "HELO has no nonce".to_string())?
        .to_vec();
    let auth = entry(map, "auth")
        .and_then(raw)
        .unwrap_or_default()
        .to_vec();
    let keepalive = entry(map, "keepalive")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    Ok(Helo {
        nonce,
        auth,
        keepalive,
    })
}

/// Encodes the PING for `helo` with `salt` (sent as a str).
pub(crate) fn encode_ping(helo: &Helo, creds: &Credentials, salt: &str) -> Vec<u8> {
    let digest = sha512_hex(&[
        salt.as_bytes(),
        creds.self_hostname.as_bytes(),
        &helo.nonce,
        creds.shared_key.expose().as_bytes(),
    ]);
    let (user, password_digest) = match &creds.user {
        Some((u, p)) => (
            u.as_str(),
            sha512_hex(&[&helo.auth, u.as_bytes(), p.expose().as_bytes()]),
        ),
        None => ("", String::new()),
    };
    let mut out = Vec::with_capacity(320);
    mp::array_header(&mut out, 6);
    mp::str(&mut out, "PING");
    mp::str(&mut out, &creds.self_hostname);
    mp::str(&mut out, salt);
    mp::str(&mut out, &digest);
    mp::str(&mut out, user);
    mp::str(&mut out, &password_digest);
    out
}

/// Checks `["PONG", ok, reason, server_hostname, digest]`; returns the server's hostname.
///
/// # Errors
/// The server's reason when it refused us, or why its PONG is not acceptable (a wrong digest
/// means the server does not know the shared key).
pub(crate) fn check_pong(
    v: &Value,
    helo: &Helo,
    creds: &Credentials,
    salt: &str,
) -> Result<String, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("expected PONG, got {v}"))?;
    if items.len() != 5 || raw(&items[0]) != Some(b"PONG") {
        return Err(format!("expected PONG, got {v}"));
    }
    let reason = raw(&items[2])
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    match items[1].as_bool() {
        Some(true) => {}
        Some(false) => return Err(format!("the server refused the handshake: {reason}")),
        None => return Err("PONG `ok` is not a boolean".into()),
    }
    let host = raw(&items[3]).ok_or_else(|| "PONG server hostname is not a string".to_string())?;
    let digest = raw(&items[4]).ok_or_else(|| "PONG digest is not a string".to_string())?;
    let want = sha512_hex(&[
        salt.as_bytes(),
        host,
        &helo.nonce,
        creds.shared_key.expose().as_bytes(),
    ]);
    if digest != want.as_bytes() {
        return Err(
            "the server's PONG digest does not match the shared key (is it the right server?)"
                .into(),
        );
    }
    Ok(String::from_utf8_lossy(host).into_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn creds(user: bool) -> Credentials {
        Credentials {
            self_hostname: "cli".into(),
            shared_key: "k".into(),
            user: user.then(|| ("u".to_string(), "p".into())),
        }
    }

    fn decode(b: &[u8]) -> Value {
        rmpv::decode::read_value(&mut &b[..]).unwrap()
    }

    #[test]
    fn reads_both_helo_styles() {
        let fluentd = Value::Array(vec![
            "HELO".into(),
            Value::Map(vec![
                ("nonce".into(), Value::Binary(vec![1; 16])),
                ("auth".into(), Value::Binary(vec![])),
                ("keepalive".into(), true.into()),
            ]),
        ]);
        let h = parse_helo(&fluentd).unwrap();
        assert_eq!(h.nonce, vec![1; 16]);
        assert!(h.auth.is_empty() && h.keepalive);
        // Fluent Bit: str holding raw (non UTF-8) bytes, no keepalive.
        let bytes = [0xc4u8 - 0x24, 0x92];
        let mut wire = vec![0x92, 0xa4, b'H', b'E', b'L', b'O', 0x82, 0xa5];
        wire.extend_from_slice(b"nonce");
        wire.push(0xa2);
        wire.extend_from_slice(&[0xff, 0xfe]);
        wire.push(0xa4);
        wire.extend_from_slice(b"auth");
        wire.push(0xa2);
        wire.extend_from_slice(&bytes);
        let h = parse_helo(&decode(&wire)).unwrap();
        assert_eq!(h.nonce, [0xff, 0xfe]);
        assert_eq!(h.auth, bytes);
        assert!(h.keepalive);
        assert!(parse_helo(&Value::from("PONG")).is_err());
    }

    #[test]
    fn ping_matches_the_spec_digests() {
        let helo = Helo {
            nonce: b"N".to_vec(),
            auth: b"A".to_vec(),
            keepalive: true,
        };
        let v = decode(&encode_ping(&helo, &creds(true), "s"));
        assert_eq!(v[0].as_str(), Some("PING"));
        assert_eq!(v[1].as_str(), Some("cli"));
        assert!(v[2].is_str(), "salt must be str");
        assert_eq!(
            v[3].as_str(),
            Some(sha512_hex(&[b"s", b"cli", b"N", b"k"]).as_str())
        );
        assert_eq!(v[4].as_str(), Some("u"));
        assert_eq!(
            v[5].as_str(),
            Some(sha512_hex(&[b"A", b"u", b"p"]).as_str())
        );
        assert_eq!(v[3].as_str().unwrap().len(), 128);
        let v = decode(&encode_ping(&helo, &creds(false), "s"));
        assert_eq!((v[4].as_str(), v[5].as_str()), (Some(""), Some("")));
    }

    #[test]
    fn pong_is_verified() {
        let helo = Helo {
            nonce: b"N".to_vec(),
            auth: vec![],
            keepalive: true,
        };
        let good = sha512_hex(&[b"s", b"srv", b"N", b"k"]);
        let pong = |ok: bool, reason: &str, digest: &str| {
            Value::Array(vec![
                "PONG".into(),
                ok.into(),
                reason.into(),
                "srv".into(),
                digest.into(),
            ])
        };
        assert_eq!(
            check_pong(&pong(true, "", &good), &helo, &creds(false), "s").unwrap(),
            "srv"
        );
        let e = check_pong(&pong(true, "", "00"), &helo, &creds(false), "s").unwrap_err();
        assert!(e.contains("digest does not match"), "{e}");
        let e = check_pong(
            &pong(false, "shared_key mismatch", ""),
            &helo,
            &creds(false),
            "s",
        )
        .unwrap_err();
        assert_eq!(e, "the server refused the handshake: shared_key mismatch");
    }
}
