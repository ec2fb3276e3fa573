//! Fluent replies as the sink reads them (`logship_fluent::fuzzing::reply` / `ack`: msgpack
//! with a depth limit, then the ack check): never panics; each decoded reply uses at least one
//! byte and no more than it was given, and no strict prefix of it decodes as a reply (msgpack
//! is prefix-free, so a reply split across reads is never taken early).
//! Input: chunk length (1 byte, mod 32), the chunk id, then the reply stream.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logship_fluent::fuzzing::{ack, reply};

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 32).min(rest.len());
    let chunk = String::from_utf8_lossy(&rest[..n]).into_owned();
    let mut stream = &rest[n..];
    // Replies one after another, as a connection delivers acks for several requests.
    while !stream.is_empty() {
        let verdict = ack(stream, &chunk);
        match reply(stream) {
            Ok(Some((_, used))) => {
                assert!(used >= 1 && used <= stream.len(), "used {used} of {}", stream.len());
                assert!(verdict.is_some(), "a whole reply gets an ack verdict");
                for cut in [0, used / 2, used - 1] {
                    assert!(
                        !matches!(reply(&stream[..cut]), Ok(Some(_))),
                        "a strict prefix decoded as a reply"
                    );
                }
                stream = &stream[used..];
            }
            Ok(None) => {
                assert!(verdict.is_none(), "an incomplete reply gets no verdict");
                break;
            }
            Err(_) => {
                assert!(matches!(verdict, Some(Err(_))), "an invalid reply is refused");
                break;
            }
        }
    }
});
