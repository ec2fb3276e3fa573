//! jKool HTTP answer classification (`logship_jkool_http::fuzzing::response`, posts and the
//! access request): never panics; 2xx and only 2xx is delivered; a server delay only comes
//! with a retry; a reason quotes at most `MAX_REASON_BYTES` of the body.
//! Input: status (2 bytes), flags (1 byte: bit 0 = access request), `retry-after \0 body`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logship_jkool_http::fuzzing::{MAX_REASON_BYTES, response};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
    let handshake = data[2] & 1 == 1;
    let rest = &data[3..];
    let (retry_after, body) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (std::str::from_utf8(&rest[..i]).ok(), &rest[i + 1..]),
        None => (None, rest),
    };
    let (kind, after, reason) = response(status, retry_after, body, handshake);
    assert_eq!(kind == "delivered", (200..300).contains(&status), "{status}");
    assert!(after.is_none() || kind == "retry");
    // The fixed words of the longest reason stay under 200 bytes; a body is cut to the cap
    // (a replacement character for invalid UTF-8 is 3 bytes, so allow for one cut inside).
    assert!(reason.len() <= MAX_REASON_BYTES + 200, "{} bytes", reason.len());
});
