//! Elasticsearch `_bulk` response classification: never panics; per-document fates come
//! only from a 2xx answer, exactly one per document sent, whatever the body's `items` hold.
//! Input: status (2 bytes), docs (1 byte), action (1 byte), `retry-after \0 body`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logship_ecs_metrics::BulkAction;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
    let docs = usize::from(data[2]);
    let action = if data[3] & 1 == 0 {
        BulkAction::Create
    } else {
        BulkAction::Index
    };
    let rest = &data[4..];
    let (retry_after, body) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (std::str::from_utf8(&rest[..i]).ok(), &rest[i + 1..]),
        None => (None, rest),
    };
    let (fates, _after) =
        logship_ecs_metrics::fuzzing::bulk_response(status, retry_after, body, docs, action);
    if let Some(n) = fates {
        assert!((200..300).contains(&status));
        assert_eq!(n, docs, "one fate per document");
    }
});
