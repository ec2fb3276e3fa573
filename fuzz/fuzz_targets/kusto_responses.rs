//! What the Kusto sink reads from the service: OneApi / Azure Storage error bodies with any
//! status and `Retry-After`, AAD and managed-identity token answers, cloud metadata. Never
//! panics. Input: status (2 bytes), now (1 byte), `retry-after \0 body`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
    let now = 1_700_000_000 + u64::from(data[2]) * 1_000_000;
    let rest = &data[3..];
    let (retry_after, body) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (std::str::from_utf8(&rest[..i]).ok(), &rest[i + 1..]),
        None => (None, rest),
    };
    let _ = logship_kusto::fuzzing::classify(status, retry_after, body);
    let _ = logship_kusto::fuzzing::auth_answers(body, now);
});
