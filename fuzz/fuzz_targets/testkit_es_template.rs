//! The Elasticsearch receiver's index-template bodies, then a bulk body under that template.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    logship_testkit::fuzzing::es_template(data);
});
