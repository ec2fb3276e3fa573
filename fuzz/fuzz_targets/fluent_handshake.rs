//! The client side of the Fluent shared-key handshake (`logship_fluent::fuzzing::handshake`:
//! decode and read a HELO, write the PING, decode and check a PONG): never panics, the PING
//! always decodes as six items (the entry point checks it), and a PONG is accepted only with
//! the digest of the shared key.
//! Input: HELO length (2 bytes, little endian), the HELO, then the PONG.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logship_fluent::fuzzing::handshake;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let n = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
    let (helo, pong) = data[2..].split_at(n);
    match handshake(helo, pong, "0123456789abcdef0123456789abcdef") {
        Ok(_) => {}
        Err(e) => assert!(
            !e.starts_with("the PING does not decode"),
            "the PING the client writes must decode: {e}"
        ),
    }
});
