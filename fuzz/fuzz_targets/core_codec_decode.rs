//! `logship_core::codec::decode` (the spool's record codec): never panics on any bytes; a
//! decoded record re-encodes to bytes that decode again to the same encoding (a spooled
//! record replays exactly).
#![no_main]
use libfuzzer_sys::fuzz_target;
use logship_core::codec::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = decode(data) {
        let mut once = Vec::new();
        encode(&r, &mut once);
        let again = decode(&once).expect("a re-encoded record decodes");
        let mut twice = Vec::new();
        encode(&again, &mut twice);
        assert_eq!(once, twice, "encode(decode(encode(r))) is stable");
        let _ = logship_core::json::record_to_json(&r);
    }
});
