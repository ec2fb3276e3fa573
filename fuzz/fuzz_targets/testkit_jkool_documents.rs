//! The jKool receiver's document validation (events, activities, snapshots, source FQNs) and
//! the handshake's access-request body.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    logship_testkit::fuzzing::jkool_documents(data);
});
