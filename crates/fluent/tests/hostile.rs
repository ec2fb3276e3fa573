//! Hostile Forward servers (issue 14): replies that would exhaust the worker's stack or memory
//! are refused as invalid and the batch is retried; the process never aborts. Servers here are
//! raw TCP listeners on 127.0.0.1 that answer the first request with the hostile bytes and
//! acknowledge later ones properly. Also: the reply parsers behind the fuzz targets on random
//! and mutated bytes, and server addresses carrying credentials.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{WAIT, fast};
use logship_fluent::FluentLayer;
use rmpv::Value;
use tracing_subscriber::prelude::*;

/// Reads one whole msgpack value (a Forward request) from `s`.
fn read_request(s: &mut TcpStream) -> Value {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Ok(v) = rmpv::decode::read_value(&mut &buf[..]) {
            return v;
        }
        let n = s.read(&mut tmp).unwrap();
        assert!(n > 0, "the client closed before sending a whole request");
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// `{"ack": chunk}` for a Forward request (its last item is the option map).
fn ack_for(request: &Value) -> Vec<u8> {
    let options = request
        .as_array()
        .and_then(|a| a.last())
        .and_then(Value::as_map)
        .unwrap();
    let chunk = options
        .iter()
        .find(|(k, _)| k.as_str() == Some("chunk"))
        .map(|(_, v)| v.clone())
        .unwrap();
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &Value::Map(vec![("ack".into(), chunk)])).unwrap();
    out
}

/// A server for exactly two connections: the first gets `hostile` once its request has
/// arrived, the second an honest ack. Returns its address, the number of connections accepted
/// and the thread (joined by the test, so a panic in it fails the test).
fn two_connection_server(
    hostile: impl FnOnce(&mut TcpStream) + Send + 'static,
) -> (String, Arc<AtomicU64>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    let t = std::thread::spawn(move || {
        let (mut first, _) = listener.accept().unwrap();
        count.fetch_add(1, Ordering::SeqCst);
        let _ = read_request(&mut first);
        hostile(&mut first);
        let (mut second, _) = listener.accept().unwrap();
        count.fetch_add(1, Ordering::SeqCst);
        let request = read_request(&mut second);
        second.write_all(&ack_for(&request)).unwrap();
        // Hold the connection until the client is done with it.
        let _ = second.read(&mut [0u8; 1]);
    });
    (addr, accepted, t)
}

/// Sends one event through a Fluent layer to `addr`, flushes, and returns the stats.
fn ship_one(addr: &str) -> logship_core::Stats {
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr)
        .with_pipeline(fast)
        .build()
        .unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!(n = 1, "event");
    }
    guard.flush(WAIT).unwrap();
    let s = guard.stats();
    guard.shutdown(Duration::from_secs(5)).unwrap();
    s
}

#[test]
fn a_deeply_nested_reply_is_refused_not_a_stack_overflow() {
    // Debug test builds recurse with large frames: rmpv's default depth (1024) aborted the
    // process with a stack overflow on the worker thread at a few hundred levels.
    for depth in [10_000usize, 100_000] {
        let (addr, accepted, server) = two_connection_server(move |s| {
            let mut nested = vec![0x91u8; depth]; // fixarray of one element, `depth` times
            nested.push(0xc0); // nil, innermost
            // The client drops the connection after the first bytes: later writes may fail.
            let _ = s.write_all(&nested);
        });
        let s = ship_one(&addr);
        server.join().unwrap();
        assert_eq!(
            (s.delivered, s.undelivered(), s.retries, s.requests),
            (1, 0, 1, 2),
            "depth {depth}: retried once, then delivered: {s:#?}"
        );
        let last = s.last_error.unwrap_or_default();
        assert!(
            last.contains("invalid reply: too deeply nested"),
            "depth {depth}: {last}"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }
}

#[test]
fn an_endless_reply_stops_at_the_64_kib_cap() {
    // A str32 header announcing 4 GiB, then bytes trickling in 512-byte pieces: the client
    // must give up at its 64 KiB reply cap (not wait for, or buffer, the 4 GiB).
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    let (addr, accepted, server) = two_connection_server(move |s| {
        let _ = s.write_all(&[0xdb, 0xff, 0xff, 0xff, 0xff]);
        let piece = [b'x'; 512];
        // Stop at 16 MiB in case the client never gives up (the assertions then fail).
        while w.load(Ordering::SeqCst) < 16 << 20 {
            if s.write_all(&piece).is_err() {
                break;
            }
            w.fetch_add(piece.len() as u64, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let s = ship_one(&addr);
    server.join().unwrap();
    assert_eq!(
        (s.delivered, s.undelivered(), s.retries, s.requests),
        (1, 0, 1, 2),
        "{s:#?}"
    );
    let last = s.last_error.unwrap_or_default();
    assert!(
        last.contains(&format!(
            "invalid reply: reply larger than {} bytes",
            logship_fluent::fuzzing::MAX_REPLY_BYTES
        )),
        "{last}"
    );
    assert_eq!(logship_fluent::fuzzing::MAX_REPLY_BYTES, 64 * 1024);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    // The server stopped because the client closed, long before 16 MiB (socket buffers take
    // some after the client's 64 KiB).
    assert!(written.load(Ordering::SeqCst) < 16 << 20);
}

#[test]
fn a_deeply_nested_helo_fails_the_handshake_not_the_process() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = stop.clone();
    let server = std::thread::spawn(move || {
        // Every connection gets a 100 000-deep HELO, until the test says stop.
        let mut served = 0u64;
        while let Ok((mut s, _)) = listener.accept() {
            if stopping.load(Ordering::SeqCst) {
                break;
            }
            served += 1;
            let mut nested = vec![0x91u8; 100_000];
            nested.push(0xc0);
            let _ = s.write_all(&nested);
        }
        served
    });
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr.as_str())
        .with_shared_key("key")
        .with_pipeline(|p| {
            fast(p).with_retry(
                logship_core::RetryPolicy::default()
                    .with_initial_delay(Duration::from_millis(5))
                    .with_max_attempts(Some(2)),
            )
        })
        .build()
        .unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("event");
    }
    let _ = guard.flush(WAIT);
    let s = guard.stats();
    guard.shutdown(Duration::from_secs(5)).unwrap();
    stop.store(true, Ordering::SeqCst);
    drop(TcpStream::connect(&addr).unwrap());
    let served = server.join().unwrap();
    assert!(served >= 2, "one connection per attempt: {served}");
    assert_eq!(
        (s.delivered, s.undelivered_retries_exhausted),
        (0, 1),
        "{s:#?}"
    );
    let last = s.last_error.unwrap_or_default();
    assert!(last.contains("awaiting HELO"), "{last}");
    assert!(last.contains("too deeply nested"), "{last}");
}

// ---- the parsers behind the fuzz targets, on random and mutated bytes -------------------------

/// xorshift64*: deterministic, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// `base` with a few bytes changed, inserted, removed, or cut short; or random bytes.
    fn input(&mut self, seeds: &[Vec<u8>]) -> Vec<u8> {
        if self.below(4) == 0 {
            let len = self.below(48);
            return (0..len).map(|_| self.next() as u8).collect();
        }
        let mut b = seeds[self.below(seeds.len())].clone();
        for _ in 0..=self.below(4) {
            let at = if b.is_empty() { 0 } else { self.below(b.len()) };
            match self.below(4) {
                0 if !b.is_empty() => b[at] = self.next() as u8,
                1 => b.insert(at, self.next() as u8),
                2 if !b.is_empty() => {
                    b.remove(at);
                }
                _ => b.truncate(at),
            }
        }
        b
    }
}

fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).unwrap();
    out
}

fn reply_seeds() -> Vec<Vec<u8>> {
    let helo = |nonce: Value| {
        encode(&Value::Array(vec![
            "HELO".into(),
            Value::Map(vec![
                ("nonce".into(), nonce),
                ("auth".into(), Value::Binary(vec![])),
                ("keepalive".into(), true.into()),
            ]),
        ]))
    };
    let mut nested = vec![0x91u8; 40];
    nested.push(0xc0);
    vec![
        encode(&Value::Map(vec![("ack".into(), "chunk-1".into())])),
        encode(&Value::Map(vec![(
            "ack".into(),
            Value::Binary(b"chunk-1".to_vec()),
        )])),
        helo(Value::Binary(vec![7; 16])),
        helo("nonce".into()),
        encode(&Value::Array(vec![
            "PONG".into(),
            true.into(),
            "".into(),
            "server".into(),
            logship_fluent::fuzzing::pong_digest("salt", b"server", &[7; 16]).into(),
        ])),
        nested,
        vec![0xdb, 0xff, 0xff, 0xff, 0xff, b'x', b'y'],
        vec![0xdf, 0xff, 0xff, 0xff, 0xff],
    ]
}

#[test]
fn reply_parsers_take_random_bytes_without_panicking() {
    use logship_fluent::fuzzing::{ack, handshake, reply};
    let seeds = reply_seeds();
    // The seeds themselves: an ack matches, the handshake with a correct PONG succeeds, the
    // nested one is refused for its depth, the 4 GiB headers are incomplete.
    assert_eq!(ack(&seeds[0], "chunk-1"), Some(Ok(())));
    assert_eq!(ack(&seeds[1], "chunk-1"), Some(Ok(())));
    assert!(matches!(ack(&seeds[0], "chunk-2"), Some(Err(e)) if e.contains("mismatch")));
    assert_eq!(
        handshake(&seeds[2], &seeds[4], "salt").as_deref(),
        Ok("server")
    );
    assert!(
        handshake(&seeds[3], &seeds[4], "salt").is_err(),
        "other nonce"
    );
    assert!(matches!(reply(&seeds[5]), Err(e) if e.contains("too deeply nested")));
    assert_eq!(reply(&seeds[6]), Ok(None));
    assert_eq!(reply(&seeds[7]), Ok(None));

    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let (mut decoded, mut refused) = (0u32, 0u32);
    for _ in 0..20_000 {
        let input = rng.input(&seeds);
        match reply(&input) {
            Ok(Some((_, used))) => {
                decoded += 1;
                assert!(used >= 1 && used <= input.len(), "{input:?}");
                // A prefix of a whole reply is never taken for a different reply.
                let cut = rng.below(used);
                assert!(
                    !matches!(reply(&input[..cut]), Ok(Some(_))),
                    "{input:?} cut at {cut}"
                );
            }
            Ok(None) => {}
            Err(_) => refused += 1,
        }
        let _ = ack(&input, "chunk-1");
        let other = rng.input(&seeds);
        let _ = handshake(&input, &other, "salt");
        let _ = handshake(&seeds[2], &input, "salt");
    }
    // The mix reached both outcomes (not only "incomplete").
    assert!(decoded > 1_000 && refused > 100, "{decoded} {refused}");
}

// ---- addresses with credentials ------------------------------------------------------------------

#[test]
fn an_address_with_credentials_is_refused_and_never_shown() {
    for address in [
        "tls://user:hunter2@127.0.0.1:24224",
        "user:hunter2@127.0.0.1:24224",
        "tcp://user:pre#hunter2@fluentd:24224",
        "tls://user:hun@ter2@[::1]:24224",
    ] {
        let b = FluentLayer::builder("app").with_server(address);
        let debug = format!("{b:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        let e = b.build().expect_err("refused");
        let text = format!("{e} / {e:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("with_shared_key"), "{text}");
        if address.ends_with(":24224") {
            assert!(text.contains(":24224"), "the port stays: {text}");
        }
    }
}
