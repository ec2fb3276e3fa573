//! The Fluent receiver's handshake: any msgpack value as the client's PING.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    logship_testkit::fuzzing::fluent_ping(data);
});
