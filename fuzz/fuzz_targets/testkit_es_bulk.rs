//! The Elasticsearch receiver's `_bulk` NDJSON parsing and item application.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    logship_testkit::fuzzing::es_bulk(data);
});
