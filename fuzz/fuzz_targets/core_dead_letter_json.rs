//! `logship_core::json::record_from_json` on dead-letter lines: never panics; a rebuilt record
//! can be written as JSON, read back, and spooled.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logship_core::json::{record_from_json, record_to_json};

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(r) = record_from_json(&v) {
        let j = record_to_json(&r);
        let back = record_from_json(&j).expect("a record's own JSON reads back");
        let _ = record_to_json(&back);
        let mut buf = Vec::new();
        logship_core::codec::encode(&r, &mut buf);
        logship_core::codec::decode(&buf).expect("a rebuilt record spools");
    }
});
