//! The Fluent receiver's wire decoding: a connection's bytes, cut into reads of varying size,
//! through the resumable msgpack framer and the Forward request decoder (all four modes,
//! EventTime, options, gzip). Input: 1 byte of cut sizes seed, then the stream.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8).min(rest.len());
    let (cuts, stream) = rest.split_at(n);
    logship_testkit::fuzzing::fluent_stream(cuts, stream);
});
