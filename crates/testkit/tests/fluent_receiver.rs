//! The Forward receiver against hand-built bytes (rmp/rmpv only, never logship code) over real
//! sockets, and against the official Python sender `fluent-logger` when it is available.
#![cfg(feature = "fluent")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use logship_testkit::fluent::{
    Faults, FluentReceiver, HeloStyle, Mode, NilPolicy, TimeEncoding, Times, TlsIdentity,
};
use logship_testkit::{peers, wait_until};
use rmpv::Value;
use sha2::{Digest, Sha512};

const WAIT: Duration = Duration::from_secs(10);

// ---------- byte builders (independent of the receiver's code) ----------

fn enc(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).unwrap();
    out
}

fn rec(i: i64) -> Value {
    Value::Map(vec![
        (Value::from("msg"), Value::from(format!("event {i}"))),
        (Value::from("n"), Value::from(i)),
    ])
}

/// EventTime as fixext8: D7 00 + secs u32 BE + nanos u32 BE.
fn fixext8(secs: u32, nanos: u32) -> Vec<u8> {
    let mut b = vec![0xd7, 0x00];
    b.extend_from_slice(&secs.to_be_bytes());
    b.extend_from_slice(&nanos.to_be_bytes());
    b
}

/// EventTime as ext8: C7 08 00 + secs u32 BE + nanos u32 BE.
fn ext8(secs: u32, nanos: u32) -> Vec<u8> {
    let mut b = vec![0xc7, 0x08, 0x00];
    b.extend_from_slice(&secs.to_be_bytes());
    b.extend_from_slice(&nanos.to_be_bytes());
    b
}

fn str_bytes(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    rmp::encode::write_str_len(&mut out, s.len() as u32).unwrap();
    out.extend_from_slice(s);
    out
}

/// str32 (0xdb) header, as Fluentd's out_forward sends blobs.
fn str32(s: &[u8]) -> Vec<u8> {
    let mut out = vec![0xdb];
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
    out
}

fn bin(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    rmp::encode::write_bin_len(&mut out, s.len() as u32).unwrap();
    out.extend_from_slice(s);
    out
}

fn chunk_opt(chunk: &str) -> Value {
    Value::Map(vec![(Value::from("chunk"), Value::from(chunk))])
}

/// `[tag, time(raw bytes), record, option?]`
fn message(tag: &str, time: &[u8], record: &Value, option: Option<&Value>) -> Vec<u8> {
    let mut out = vec![if option.is_some() { 0x94 } else { 0x93 }];
    out.extend(str_bytes(tag.as_bytes()));
    out.extend_from_slice(time);
    out.extend(enc(record));
    if let Some(o) = option {
        out.extend(enc(o));
    }
    out
}

fn message_chunk(tag: &str, i: i64, chunk: &str) -> Vec<u8> {
    enc(&Value::Array(vec![
        Value::from(tag),
        Value::from(1_700_000_000 + i),
        rec(i),
        chunk_opt(chunk),
    ]))
}

/// The ack `{"ack": chunk}` as the spec says: fixmap 1, fixstr "ack", chunk as str.
fn expected_ack(chunk: &str) -> Vec<u8> {
    let mut out = vec![0x81, 0xa3, b'a', b'c', b'k'];
    out.extend(str_bytes(chunk.as_bytes()));
    out
}

fn sha512_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    hex::encode(h.finalize())
}

// ---------- socket helpers ----------

fn connect(r: &FluentReceiver) -> TcpStream {
    let s = TcpStream::connect(r.addr().unwrap()).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn read_exact_n(s: &mut impl Read, n: usize) -> Vec<u8> {
    let mut b = vec![0; n];
    s.read_exact(&mut b).unwrap();
    b
}

fn read_value(s: &mut impl Read) -> Value {
    rmpv::decode::read_value(s).unwrap()
}

/// The peer closed: a read returns EOF (or a reset) before the timeout.
fn assert_closed(s: &mut impl Read) {
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => {}
        Ok(n) => panic!("expected close, got {n} bytes: {:?}", &b[..n]),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ),
            "expected close, got {e}"
        ),
    }
}

// ---------- modes ----------

#[test]
fn message_mode_with_integer_time() {
    let r = FluentReceiver::builder().start().unwrap();
    let mut c = connect(&r);
    c.write_all(&message(
        "app.a",
        &enc(&Value::from(1_700_000_000u32)),
        &rec(1),
        None,
    ))
    .unwrap();
    assert!(r.wait_for_events(1, WAIT));
    let e = &r.events()[0];
    assert_eq!(e.tag, "app.a");
    assert_eq!(e.mode, Mode::Message);
    assert_eq!((e.time.secs, e.time.nanos), (1_700_000_000, 0));
    assert_eq!(e.time.encoding, TimeEncoding::Integer);
    assert_eq!(e.record, rec(1));
    assert_eq!(e.field("msg").and_then(Value::as_str), Some("event 1"));
    assert_eq!(e.chunk, None);
    let s = r.stats();
    assert_eq!(
        (
            s.connections,
            s.requests_message,
            s.requests_total(),
            s.events
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(s.protocol_errors, 0);
}

#[test]
fn events_since_returns_only_what_arrived_after_an_index() {
    let r = FluentReceiver::builder().start().unwrap();
    let mut c = connect(&r);
    for i in 0..3 {
        c.write_all(&message("app.a", &enc(&Value::from(1u32)), &rec(i), None))
            .unwrap();
    }
    assert!(r.wait_for_events(3, WAIT));
    let later = r.events_since(1);
    assert_eq!(later.len(), 2);
    assert_eq!(later[0].record, rec(1));
    assert!(r.events_since(3).is_empty());
    assert!(r.events_since(99).is_empty());
}

#[test]
fn event_time_fixext8_and_ext8() {
    let r = FluentReceiver::builder().start().unwrap();
    let mut c = connect(&r);
    let mut bytes = message("t", &fixext8(1_700_000_001, 123_456_789), &rec(1), None);
    bytes.extend(message(
        "t",
        &ext8(1_700_000_002, 999_999_999),
        &rec(2),
        None,
    ));
    c.write_all(&bytes).unwrap();
    assert!(r.wait_for_events(2, WAIT));
    let ev = r.events();
    assert_eq!(ev.len(), 2);
    assert_eq!(
        (ev[0].time.secs, ev[0].time.nanos),
        (1_700_000_001, 123_456_789)
    );
    assert_eq!(ev[0].time.encoding, TimeEncoding::FixExt8);
    assert_eq!(
        (ev[1].time.secs, ev[1].time.nanos),
        (1_700_000_002, 999_999_999)
    );
    assert_eq!(ev[1].time.encoding, TimeEncoding::Ext8);
    assert_eq!(ev[1].time.as_nanos(), 1_700_000_002_999_999_999);
}

#[test]
fn forward_mode() {
    let r = FluentReceiver::builder().start().unwrap();
    let mut c = connect(&r);
    // [tag, [[time, record] x3], {"size": 3}] with mixed time encodings
    let mut bytes = vec![0x93];
    bytes.extend(str_bytes(b"app.fwd"));
    bytes.push(0x93);
    for (i, t) in [fixext8(10, 1), ext8(11, 2), enc(&Value::from(12))]
        .iter()
        .enumerate()
    {
        bytes.push(0x92);
        bytes.extend_from_slice(t);
        bytes.extend(enc(&rec(i as i64)));
    }
    bytes.extend(enc(&Value::Map(vec![(
        Value::from("size"),
        Value::from(3),
    )])));
    c.write_all(&bytes).unwrap();
    assert!(r.wait_for_events(3, WAIT));
    let ev = r.events();
    assert_eq!(ev.len(), 3);
    for (i, e) in ev.iter().enumerate() {
        assert_eq!(e.tag, "app.fwd");
        assert_eq!(e.mode, Mode::Forward);
        assert_eq!(e.record, rec(i as i64));
        assert_eq!(e.time.secs, 10 + i as u64);
    }
    assert_eq!(
        [
            ev[0].time.encoding,
            ev[1].time.encoding,
            ev[2].time.encoding
        ],
        [
            TimeEncoding::FixExt8,
            TimeEncoding::Ext8,
            TimeEncoding::Integer
        ]
    );
    assert_eq!(r.stats().requests_forward, 1);
}

fn packed_entries(n: i64) -> Vec<u8> {
    let mut blob = Vec::new();
    for i in 0..n {
        blob.push(0x92);
        blob.extend(fixext8(100 + i as u32, i as u32));
        blob.extend(enc(&rec(i)));
    }
    blob
}

#[test]
fn packed_forward_with_str_blob_and_bin_blob() {
    let r = FluentReceiver::builder().start().unwrap();
    let mut c = connect(&r);
    let blob = packed_entries(3);
    // str32 blob like Fluentd's out_forward
    let mut a = vec![0x92];
    a.extend(str_bytes(b"p.str"));
    a.extend(str32(&blob));
    // bin blob like the spec recommends, with options
    let mut b = vec![0x93];
    b.extend(str_bytes(b"p.bin"));
    b.extend(bin(&blob));
    b.extend(enc(&Value::Map(vec![(
        Value::from("size"),
        Value::from(3),
    )])));
    c.write_all(&[a, b].concat()).unwrap();
    assert!(r.wait_for_events(6, WAIT));
    let ev = r.events();
    assert_eq!(ev.len(), 6);
    for (k, e) in ev.iter().enumerate() {
        assert_eq!(e.tag, if k < 3 { "p.str" } else { "p.bin" });
        assert_eq!(e.mode, Mode::PackedForward);
        assert_eq!(e.record, rec(k as i64 % 3));
        assert_eq!(e.time.nanos, k as u32 % 3);
    }
    assert_eq!(r.stats().requests_packed_forward, 2);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut g = GzEncoder::new(Vec::new(), Compression::default());
    g.write_all(data).unwrap();
    g.finish().unwrap()
}

#[test]
fn compressed_packed_forward_multi_member_gzip() {
    let r = FluentReceiver::builder().start().unwrap();
    let mut c = connect(&r);
    let gz_opt = Value::Map(vec![
        (Value::from("size"), Value::from(4)),
        (Value::from("compressed"), Value::from("gzip")),
    ]);
    // Fluentd style: one gzip member per event, blob as str32.
    let mut members = Vec::new();
    for i in 0..4 {
        let mut one = vec![0x92];
        one.extend(ext8(200 + i as u32, 7));
        one.extend(enc(&rec(i)));
        members.extend(gzip(&one));
    }
    let mut a = vec![0x93];
    a.extend(str_bytes(b"gz.fluentd"));
    a.extend(str32(&members));
    a.extend(enc(&gz_opt));
    // Fluent Bit style: one member, blob as bin.
    let mut b = vec![0x93];
    b.extend(str_bytes(b"gz.bit"));
    b.extend(bin(&gzip(&packed_entries(4))));
    b.extend(enc(&gz_opt));
    c.write_all(&[a, b].concat()).unwrap();
    assert!(r.wait_for_events(8, WAIT));
    let ev = r.events();
    assert_eq!(ev.len(), 8);
    assert!(ev.iter().all(|e| e.mode == Mode::CompressedPackedForward));
    assert_eq!(
        ev.iter().map(|e| e.record.clone()).collect::<Vec<_>>(),
        (0..8).map(|i| rec(i % 4)).collect::<Vec<_>>()
    );
    assert_eq!(ev[3].time.secs, 203);
    assert_eq!(ev[3].time.encoding, TimeEncoding::Ext8);
    assert_eq!(ev[7].tag, "gz.bit");
    assert_eq!(r.stats().requests_compressed_packed_forward, 2);
    assert_eq!(r.stats().protocol_errors, 0);
}

#[test]
fn request_split_across_many_small_writes_and_back_to_back() {
    let r = FluentReceiver::builder().start().unwrap();
    let mut c = connect(&r);
    let mut bytes = Vec::new();
    for i in 0..20 {
        bytes.extend(message("split", &fixext8(1, i as u32), &rec(i), None));
    }
    let mut blob_req = vec![0x92];
    blob_req.extend(str_bytes(b"split"));
    blob_req.extend(bin(&packed_entries(30)));
    bytes.extend(blob_req);
    // 1-3 bytes per write, each flushed on its own (nodelay).
    let mut pos = 0;
    let mut step = 1;
    while pos < bytes.len() {
        let end = (pos + step).min(bytes.len());
        c.write_all(&bytes[pos..end]).unwrap();
        c.flush().unwrap();
        pos = end;
        step = step % 3 + 1;
    }
    assert!(r.wait_for_events(50, WAIT));
    let ev = r.events();
    assert_eq!(ev.len(), 50);
    assert_eq!(ev[19].record, rec(19));
    assert_eq!(ev[49].record, rec(29));
    let s = r.stats();
    assert_eq!(
        (
            s.requests_message,
            s.requests_packed_forward,
            s.protocol_errors
        ),
        (20, 1, 0)
    );
    assert_eq!(s.bytes_received, bytes.len() as u64);
}

// ---------- acks ----------

#[test]
fn ack_echoes_chunk_byte_for_byte() {
    let r = FluentReceiver::builder().start().unwrap();
    let mut c = connect(&r);
    // Fluentd's Ruby base64 chunk with its trailing newline; then Fluent Bit's 24 chars,
    // then a 40-char one (str8). A request without chunk gets no reply at all.
    let chunks = [
        "Zgwn+poVgPbzGc7YwZyuMQ==\n",
        "q83vEjRWeJq83vEjRWeJqw==",
        "0123456789abcdef0123456789abcdef01234567",
    ];
    c.write_all(&message("a", &enc(&Value::from(1)), &rec(0), None))
        .unwrap();
    for (i, ch) in chunks.iter().enumerate() {
        c.write_all(&message_chunk("a", i as i64, ch)).unwrap();
        let want = expected_ack(ch);
        assert_eq!(read_exact_n(&mut c, want.len()), want, "chunk {ch:?}");
    }
    assert_eq!(expected_ack(chunks[0])[5], 0xb9, "fixstr of 25 bytes");
    assert_eq!(expected_ack(chunks[2])[5..7], [0xd9, 40]);
    let ev = r.events();
    assert_eq!(ev.len(), 4);
    assert_eq!(ev[1].chunk.as_deref(), Some(chunks[0]));
    let s = r.stats();
    assert_eq!((s.acks_sent, s.duplicate_chunks), (3, 0));
}

#[test]
fn chunk_as_bin_is_dropped_and_closes_like_fluent_bit() {
    let r = FluentReceiver::builder().start().unwrap();
    let mut c = connect(&r);
    let req = enc(&Value::Array(vec![
        Value::from("a"),
        Value::from(1),
        rec(0),
        Value::Map(vec![(Value::from("chunk"), Value::Binary(b"abc".to_vec()))]),
    ]));
    c.write_all(&req).unwrap();
    assert_closed(&mut c);
    assert!(r.wait_for_stats(WAIT, |s| s.protocol_errors == 1));
    assert_eq!(r.event_count(), 0);
    assert_eq!(r.stats().acks_sent, 0);
    assert!(r.errors()[0].contains("bin"), "{:?}", r.errors());
}

#[test]
fn withheld_then_recovered_acks_and_duplicates() {
    let r = FluentReceiver::builder()
        .with_faults(Faults::none().with_withhold_acks(Times::Next(2)))
        .start()
        .unwrap();
    let mut c = connect(&r);
    for (i, ch) in ["c1", "c2", "c3"].iter().enumerate() {
        c.write_all(&message_chunk("w", i as i64, ch)).unwrap();
    }
    // The first reply on the wire is the ack of c3: c1 and c2 were withheld.
    assert_eq!(
        read_exact_n(&mut c, expected_ack("c3").len()),
        expected_ack("c3")
    );
    assert_eq!(r.faults().withhold_acks, Times::Never);
    // The sender resends c1: acked now, counted as a duplicate.
    c.write_all(&message_chunk("w", 0, "c1")).unwrap();
    assert_eq!(
        read_exact_n(&mut c, expected_ack("c1").len()),
        expected_ack("c1")
    );
    let s = r.stats();
    assert_eq!(
        (s.acks_withheld, s.acks_sent, s.duplicate_chunks),
        (2, 2, 1)
    );
    let ev = r.events();
    assert_eq!(ev.len(), 4);
    assert_eq!(ev.iter().filter(|e| e.duplicate).count(), 1);
    assert!(ev[3].duplicate && ev[3].chunk.as_deref() == Some("c1"));

    // Withhold until cleared, changed while running.
    r.update_faults(|f| f.withhold_acks = Times::Always);
    c.write_all(&message_chunk("w", 4, "c4")).unwrap();
    assert!(r.wait_for_stats(WAIT, |s| s.acks_withheld == 3));
    r.set_faults(Faults::none());
    c.write_all(&message_chunk("w", 4, "c4")).unwrap();
    assert_eq!(
        read_exact_n(&mut c, expected_ack("c4").len()),
        expected_ack("c4")
    );
    assert_eq!(r.stats().duplicate_chunks, 2);
}

#[test]
fn garbled_and_delayed_acks() {
    let r = FluentReceiver::builder()
        .with_faults(Faults::none().with_garble_acks(Times::Next(1)))
        .start()
        .unwrap();
    let mut c = connect(&r);
    c.write_all(&message_chunk("g", 0, "abc")).unwrap();
    let reply = read_value(&mut c);
    assert_eq!(reply["ack"].as_str(), Some("garbled-abc"));
    r.update_faults(|f| f.ack_delay = Duration::from_millis(200));
    let t0 = Instant::now();
    c.write_all(&message_chunk("g", 1, "def")).unwrap();
    assert_eq!(
        read_exact_n(&mut c, expected_ack("def").len()),
        expected_ack("def")
    );
    assert!(t0.elapsed() >= Duration::from_millis(200));
    let s = r.stats();
    assert_eq!((s.acks_garbled, s.acks_sent), (1, 1));
}

// ---------- keep-alive nil, errors, faults ----------

#[test]
fn nil_keepalive_like_fluentd() {
    let r = FluentReceiver::builder().start().unwrap();
    let mut c = connect(&r);
    let mut bytes = vec![0xc0, 0xc0];
    bytes.extend(message_chunk("n", 0, "k1"));
    c.write_all(&bytes).unwrap();
    assert_eq!(
        read_exact_n(&mut c, expected_ack("k1").len()),
        expected_ack("k1")
    );
    let s = r.stats();
    assert_eq!((s.nil_keepalives, s.events, s.protocol_errors), (2, 1, 0));
}

#[test]
fn nil_closes_like_fluent_bit() {
    let r = FluentReceiver::builder()
        .with_nil_policy(NilPolicy::Close)
        .start()
        .unwrap();
    let mut c = connect(&r);
    let mut bytes = vec![0xc0];
    bytes.extend(message_chunk("n", 0, "k1"));
    c.write_all(&bytes).unwrap();
    assert_closed(&mut c);
    assert!(r.wait_for_stats(WAIT, |s| s.nil_keepalives == 1));
    assert_eq!(r.event_count(), 0);
}

#[test]
fn garbage_is_a_protocol_error_and_the_server_survives() {
    let r = FluentReceiver::builder().start().unwrap();
    for garbage in [
        &[0xc1u8][..],
        &[0x81, 0xa1, b'a', 0x01],
        &[0x92, 0x01, 0x02],
        &[0x93, 0xa1, b't', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0x80],
    ] {
        let mut c = connect(&r);
        c.write_all(garbage).unwrap();
        assert_closed(&mut c);
    }
    assert!(r.wait_for_stats(WAIT, |s| s.protocol_errors == 4));
    let mut c = connect(&r);
    c.write_all(&message_chunk("ok", 0, "x")).unwrap();
    assert_eq!(
        read_exact_n(&mut c, expected_ack("x").len()),
        expected_ack("x")
    );
    assert_eq!(r.errors().len(), 4);
    r.clear();
    assert_eq!(r.stats(), Default::default());
    assert_eq!(r.event_count(), 0);
}

#[test]
fn close_after_bytes_and_refused_connections() {
    let first = message_chunk("cut", 0, "a1");
    let second = message_chunk("cut", 1, "a2");
    let r = FluentReceiver::builder()
        .with_faults(Faults::none().with_close_after_bytes(Some(first.len() as u64 + 3)))
        .start()
        .unwrap();
    let mut c = connect(&r);
    c.write_all(&[first.clone(), second.clone()].concat())
        .unwrap();
    assert_eq!(
        read_exact_n(&mut c, expected_ack("a1").len()),
        expected_ack("a1")
    );
    assert_closed(&mut c);
    assert!(r.wait_for_stats(WAIT, |s| s.fault_closes == 1));
    assert_eq!(r.event_count(), 1);
    assert_eq!(r.stats().protocol_errors, 0);

    r.set_faults(Faults::none().with_refuse_connections(true));
    let mut c = connect(&r);
    assert_closed(&mut c);
    assert!(r.wait_for_stats(WAIT, |s| s.refused_connections == 1));
    r.set_faults(Faults::none());
    let mut c = connect(&r);
    c.write_all(&second).unwrap();
    assert_eq!(
        read_exact_n(&mut c, expected_ack("a2").len()),
        expected_ack("a2")
    );
    let s = r.stats();
    assert_eq!((s.connections, s.refused_connections, s.events), (2, 1, 2));
    assert_eq!(r.events()[1].connection, 2);
}

// ---------- handshake ----------

struct Helo {
    nonce: Vec<u8>,
    auth: Vec<u8>,
    value: Value,
}

fn read_helo(c: &mut impl Read) -> Helo {
    let v = read_value(c);
    assert_eq!(v[0].as_str(), Some("HELO"), "{v}");
    let raw = |x: &Value| match x {
        Value::Binary(b) => b.clone(),
        Value::String(s) => s.as_bytes().to_vec(),
        other => panic!("nonce/auth must be bin or str, got {other}"),
    };
    Helo {
        nonce: raw(&v[1]["nonce"]),
        auth: raw(&v[1]["auth"]),
        value: v,
    }
}

fn ping(helo: &Helo, host: &str, salt: &str, key: &str, user: &str, pass: &str) -> Vec<u8> {
    let digest = sha512_hex(&[
        salt.as_bytes(),
        host.as_bytes(),
        &helo.nonce,
        key.as_bytes(),
    ]);
    let pw = if user.is_empty() {
        String::new()
    } else {
        sha512_hex(&[&helo.auth, user.as_bytes(), pass.as_bytes()])
    };
    enc(&Value::Array(vec![
        "PING".into(),
        host.into(),
        salt.into(),
        digest.into(),
        user.into(),
        pw.into(),
    ]))
}

#[test]
fn handshake_success_fluentd_style_with_user() {
    let r = FluentReceiver::builder()
        .with_shared_key("s3cret")
        .with_self_hostname("receiver.test")
        .with_user("alice", "pw1")
        .start()
        .unwrap();
    let mut c = connect(&r);
    let helo = read_helo(&mut c);
    // Fluentd wire style: bin8 nonce/auth of 16 bytes and keepalive true.
    assert!(matches!(&helo.value[1]["nonce"], Value::Binary(b) if b.len() == 16));
    assert!(matches!(&helo.value[1]["auth"], Value::Binary(b) if b.len() == 16));
    assert_eq!(helo.value[1]["keepalive"], Value::Boolean(true));
    let salt = "0123456789abcdef0123456789abcdef";
    c.write_all(&ping(&helo, "client.test", salt, "s3cret", "alice", "pw1"))
        .unwrap();
    let pong = read_value(&mut c);
    assert_eq!(pong.as_array().unwrap().len(), 5);
    assert_eq!(pong[0].as_str(), Some("PONG"));
    assert_eq!(pong[1], Value::Boolean(true));
    assert_eq!(pong[2].as_str(), Some(""));
    assert_eq!(pong[3].as_str(), Some("receiver.test"));
    let want = sha512_hex(&[salt.as_bytes(), b"receiver.test", &helo.nonce, b"s3cret"]);
    assert_eq!(
        pong[4].as_str(),
        Some(want.as_str()),
        "server digest (mutual auth)"
    );
    c.write_all(&message_chunk("hs", 0, "h1")).unwrap();
    assert_eq!(
        read_exact_n(&mut c, expected_ack("h1").len()),
        expected_ack("h1")
    );
    let s = r.stats();
    assert_eq!((s.handshakes_ok, s.handshake_failures, s.events), (1, 0, 1));
}

#[test]
fn handshake_wrong_shared_key() {
    let r = FluentReceiver::builder()
        .with_shared_key("right")
        .start()
        .unwrap();
    let mut c = connect(&r);
    let helo = read_helo(&mut c);
    let mut bytes = ping(&helo, "cli", "salt", "wrong", "", "");
    bytes.extend(message("after", &enc(&Value::from(1)), &rec(0), None));
    c.write_all(&bytes).unwrap();
    let pong = read_value(&mut c);
    assert_eq!(pong[1], Value::Boolean(false));
    assert_eq!(pong[2].as_str(), Some("shared_key mismatch"));
    assert_closed(&mut c);
    assert!(r.wait_for_stats(WAIT, |s| s.handshake_failures == 1));
    assert_eq!(
        r.event_count(),
        0,
        "no data accepted after a failed handshake"
    );
}

#[test]
fn handshake_wrong_password() {
    let r = FluentReceiver::builder()
        .with_shared_key("k")
        .with_user("alice", "pw1")
        .start()
        .unwrap();
    let mut c = connect(&r);
    let helo = read_helo(&mut c);
    c.write_all(&ping(&helo, "cli", "salt", "k", "alice", "nope"))
        .unwrap();
    let pong = read_value(&mut c);
    assert_eq!(pong[1], Value::Boolean(false));
    assert_eq!(pong[2].as_str(), Some("username/password mismatch"));
    assert_closed(&mut c);
    assert!(r.wait_for_stats(WAIT, |s| s.handshake_failures == 1 && s.handshakes_ok == 0));
}

#[test]
fn handshake_fluent_bit_style_and_rejections() {
    let r = FluentReceiver::builder()
        .with_shared_key("k")
        .with_helo_style(HeloStyle::FluentBit)
        .start()
        .unwrap();
    // HELO: str holding raw bytes, no keepalive.
    let mut c = connect(&r);
    let helo = read_helo(&mut c);
    assert!(matches!(&helo.value[1]["nonce"], Value::String(s) if s.as_bytes().len() == 16));
    assert_eq!(helo.value[1]["keepalive"], Value::Nil);
    assert_eq!(helo.value[1].as_map().unwrap().len(), 2);
    c.write_all(&ping(&helo, "cli", "salt", "k", "", ""))
        .unwrap();
    assert_eq!(read_value(&mut c)[1], Value::Boolean(true));
    // A bad shared key: Fluent Bit closes without a PONG.
    let mut c = connect(&r);
    let helo = read_helo(&mut c);
    c.write_all(&ping(&helo, "cli", "salt", "bad", "", ""))
        .unwrap();
    assert_closed(&mut c);
    // A bin salt is rejected.
    let mut c = connect(&r);
    let helo = read_helo(&mut c);
    let digest = sha512_hex(&[b"salt", b"cli", &helo.nonce, b"k"]);
    let bin_salt = enc(&Value::Array(vec![
        "PING".into(),
        "cli".into(),
        Value::Binary(b"salt".to_vec()),
        digest.into(),
        "".into(),
        "".into(),
    ]));
    c.write_all(&bin_salt).unwrap();
    assert_closed(&mut c);
    // Data before the handshake is refused.
    let mut c = connect(&r);
    let _ = read_helo(&mut c);
    c.write_all(&message("early", &enc(&Value::from(1)), &rec(0), None))
        .unwrap();
    assert_closed(&mut c);
    assert!(r.wait_for_stats(WAIT, |s| s.handshake_failures == 3));
    assert_eq!((r.stats().handshakes_ok, r.event_count()), (1, 0));
}

// ---------- transports ----------

#[test]
fn tls_round_trip_with_self_signed_cert() {
    let id = TlsIdentity::self_signed().unwrap();
    let r = FluentReceiver::builder()
        .with_tls(id.clone())
        .start()
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        <rustls::pki_types::CertificateDer as rustls::pki_types::pem::PemObject>::pem_slice_iter(
            id.ca_pem().as_bytes(),
        )
    {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    for name in ["localhost", "127.0.0.1"] {
        let conn = rustls::ClientConnection::new(
            Arc::new(config.clone()),
            name.to_string().try_into().unwrap(),
        )
        .unwrap();
        let mut tls = rustls::StreamOwned::new(conn, connect(&r));
        tls.write_all(&message_chunk("tls", 0, name)).unwrap();
        tls.flush().unwrap();
        assert_eq!(
            read_exact_n(&mut tls, expected_ack(name).len()),
            expected_ack(name)
        );
    }
    // A plaintext client is a TLS failure, not an event.
    let mut plain = connect(&r);
    plain.write_all(&message_chunk("tls", 9, "p")).unwrap();
    assert!(r.wait_for_stats(WAIT, |s| s.tls_failures == 1));
    assert_eq!(r.event_count(), 2);
    assert!(r.events().iter().all(|e| e.tag == "tls"));
}

#[test]
fn unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fluent.sock");
    let r = FluentReceiver::builder()
        .with_unix_socket(&path)
        .start()
        .unwrap();
    assert_eq!(r.unix_path(), Some(path.as_path()));
    assert_eq!((r.addr(), r.port()), (None, 0));
    let mut c = std::os::unix::net::UnixStream::connect(&path).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.write_all(&message_chunk("unix", 0, "u1")).unwrap();
    assert_eq!(
        read_exact_n(&mut c, expected_ack("u1").len()),
        expected_ack("u1")
    );
    assert_eq!(r.events()[0].tag, "unix");
    drop(r);
    assert!(!path.exists(), "socket file removed on stop");
}

// ---------- the official Python sender ----------

#[test]
fn fluent_official_client() {
    let Some(python) = peers::python("fluent_official_client") else {
        return;
    };
    let r = FluentReceiver::builder().start().unwrap();
    let script = format!(
        r#"
import sys
from fluent import sender
s = sender.FluentSender('app', host='127.0.0.1', port={port})
ok = [s.emit('follow', {{'i': i, 'msg': 'plain %d' % i}}) for i in range(3)]
ok.append(s.emit_with_time('follow', 1700000000, {{'i': 3, 'msg': 'fixed'}}))
s.close()
n = sender.FluentSender('app', host='127.0.0.1', port={port}, nanosecond_precision=True)
ok += [n.emit('follow', {{'i': 4 + i, 'nested': {{'a': [1, 2.5, None, True]}}}}) for i in range(2)]
ok.append(n.emit_with_time('follow', 1700000001.25, {{'i': 6}}))
n.close()
if not all(ok):
    sys.exit('emit failed: %r %r %r' % (ok, s.last_error, n.last_error))
"#,
        port = r.port()
    );
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(r.wait_for_events(7, WAIT), "errors: {:?}", r.errors());
    // Each FluentSender used one connection (no reconnects).
    assert!(
        wait_until(WAIT, || r.stats().connections == 2),
        "one connection per sender"
    );
    let mut ev = r.events();
    assert_eq!(ev.len(), 7, "{ev:#?}");
    let index = |e: &logship_testkit::fluent::FluentEvent| {
        e.record
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some("i")))
            .and_then(|(_, v)| v.as_i64())
            .unwrap_or(-1)
    };
    // Within one connection, events arrive in the order they were sent; which of the two
    // connections the receiver numbered first depends on when its tasks ran, so the whole list
    // is compared in emission order.
    let connections: std::collections::BTreeSet<u64> = ev.iter().map(|e| e.connection).collect();
    assert_eq!(connections.len(), 2, "{ev:#?}");
    for c in connections {
        let seq: Vec<i64> = ev.iter().filter(|e| e.connection == c).map(index).collect();
        assert!(seq.windows(2).all(|w| w[0] < w[1]), "{seq:?}");
    }
    ev.sort_by_key(index);
    let s = r.stats();
    assert_eq!(
        (s.requests_message, s.requests_total(), s.protocol_errors),
        (7, 7, 0)
    );
    let map = |pairs: Vec<(&str, Value)>| {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
        )
    };
    let nested = map(vec![(
        "a",
        Value::Array(vec![
            Value::from(1),
            Value::from(2.5),
            Value::Nil,
            Value::from(true),
        ]),
    )]);
    let want = vec![
        map(vec![("i", 0.into()), ("msg", "plain 0".into())]),
        map(vec![("i", 1.into()), ("msg", "plain 1".into())]),
        map(vec![("i", 2.into()), ("msg", "plain 2".into())]),
        map(vec![("i", 3.into()), ("msg", "fixed".into())]),
        map(vec![("i", 4.into()), ("nested", nested.clone())]),
        map(vec![("i", 5.into()), ("nested", nested)]),
        map(vec![("i", 6.into())]),
    ];
    assert_eq!(
        ev.iter().map(|e| e.record.clone()).collect::<Vec<_>>(),
        want
    );
    for e in &ev {
        assert_eq!(e.tag, "app.follow");
        assert_eq!(e.mode, Mode::Message);
        assert_eq!(e.chunk, None, "fluent-logger never asks for acks");
    }
    for e in &ev[..4] {
        assert_eq!(e.time.encoding, TimeEncoding::Integer);
    }
    assert_eq!(ev[3].time.secs, 1_700_000_000);
    for e in &ev[4..] {
        assert_eq!(
            e.time.encoding,
            TimeEncoding::FixExt8,
            "msgpack-python packs EventTime as fixext8"
        );
    }
    assert_eq!(ev[6].time.secs, 1_700_000_001);
    assert_eq!(
        ev[6].time.nanos, 250_000_000,
        ".25 is exact in binary floating point"
    );
}

#[test]
fn deny_keepalive_says_so_in_helo_and_closes_after_one_request() {
    // Fluentd `in_forward` with `deny_keepalive true` (fluent/fluentd
    // `lib/fluent/plugin/in_forward.rb`): HELO `keepalive: false`, the connection closed after
    // the first request's ack; what was written after it is dropped.
    let r = FluentReceiver::builder()
        .with_shared_key("s3cret")
        .with_deny_keepalive(true)
        .start()
        .unwrap();
    let mut c = connect(&r);
    let helo = read_helo(&mut c);
    assert_eq!(helo.value[1]["keepalive"], Value::Boolean(false));
    let salt = "0123456789abcdef0123456789abcdef";
    c.write_all(&ping(&helo, "client.test", salt, "s3cret", "", ""))
        .unwrap();
    assert_eq!(read_value(&mut c)[1], Value::Boolean(true), "PONG ok");
    // Two requests in one write: the first is acked, then the connection closes.
    let mut two = message_chunk("ka", 0, "k1");
    two.extend(message_chunk("ka", 1, "k2"));
    c.write_all(&two).unwrap();
    assert_eq!(
        read_exact_n(&mut c, expected_ack("k1").len()),
        expected_ack("k1")
    );
    assert_closed(&mut c);
    let s = r.stats();
    assert_eq!((s.events, s.acks_sent), (1, 1), "{s:?}");
    assert_eq!(s.keepalive_closes, 1);
    // 1 when both requests came in one read (as usual on loopback), 0 when the second was
    // still unread: either way it was not recorded.
    assert!(s.dropped_after_keepalive_close <= 1, "{s:?}");
    // Without an ack asked for, the close comes right after the request; without a shared key
    // there is no HELO, and the close happens all the same.
    let plain = FluentReceiver::builder()
        .with_deny_keepalive(true)
        .start()
        .unwrap();
    let mut c = connect(&plain);
    c.write_all(&message("ka", &enc(&Value::from(1)), &rec(0), None))
        .unwrap();
    assert_closed(&mut c);
    assert!(plain.wait_for_stats(WAIT, |s| s.keepalive_closes == 1 && s.events == 1));
}

#[test]
fn a_record_holding_a_key_twice_is_recorded_as_sent_and_counted() {
    let r = FluentReceiver::builder().start().unwrap();
    let mut c = connect(&r);
    let twice = Value::Map(vec![
        ("a".into(), Value::from(1)),
        ("b".into(), Value::from(2)),
        ("a".into(), Value::from("two")),
    ]);
    c.write_all(&message("dup", &enc(&Value::from(1)), &twice, None))
        .unwrap();
    c.write_all(&message("dup", &enc(&Value::from(2)), &rec(0), None))
        .unwrap();
    assert!(r.wait_for_events(2, WAIT));
    let s = r.stats();
    assert_eq!((s.events, s.records_with_repeated_keys), (2, 1), "{s:?}");
    assert_eq!(r.events()[0].record.as_map().unwrap().len(), 3);
}
