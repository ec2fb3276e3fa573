//! The Kusto receiver's query-string / form decoding and queue-message XML.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        logship_testkit::fuzzing::kusto_http_text(s);
    }
});
