//! Shared pieces of the throughput examples of the HTTP backends (Elasticsearch, Kusto,
//! jKool HTTP): a light counting HTTP/1.1 receiver and a flat-out caller loop.
//!
//! Included by path (`#[path = "../../http/examples/support/mod.rs"] mod support;`) from each
//! backend crate's `throughput_lite` example; it depends on nothing but `std` (a gzip body is
//! handed to the `gunzip` function the example passes in).
//!
//! The receiver is written from the protocols (HTTP/1.1 framing by `Content-Length`, the
//! `_bulk`, streaming-ingestion and JESL request shapes), not from the logship crates: it does
//! not parse documents, it counts them by a byte scan and answers the smallest response each
//! client takes as full success. It measures a layer's ceiling; the protocol-faithful checks
//! are `logship-testkit`'s receivers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The API the counter stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Elasticsearch `POST /_bulk`: counts action lines (every action of the ECS layer has a
    /// source line); answers `{"errors":false,"items":[{},…]}`.
    EsBulk,
    /// Kusto streaming ingestion: counts non-empty lines; answers 200 with no body (and
    /// `{"Tables":[]}` to a management command).
    Kusto,
    /// jKool JESL: counts the elements of a top-level array, or 1 for an object; answers 202.
    Jkool,
}

/// Turns a gzip body into plain bytes (`false` when it is not valid gzip).
pub type Gunzip = fn(&[u8], &mut Vec<u8>) -> bool;

/// A running counter.
pub struct Counter {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Documents counted so far.
    pub docs: Arc<AtomicU64>,
    /// Requests answered so far.
    pub requests: Arc<AtomicU64>,
}

impl Counter {
    /// Starts listening on a free local port; one thread per connection.
    pub fn start(api: Api, gunzip: Option<Gunzip>) -> Counter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let docs = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(AtomicU64::new(0));
        let (d, r) = (docs.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let (d, r) = (d.clone(), r.clone());
                std::thread::spawn(move || {
                    if let Err(e) = serve(conn, api, gunzip, &d, &r)
                        && e.kind() == std::io::ErrorKind::InvalidData
                    {
                        eprintln!("counter: {e}");
                    }
                });
            }
        });
        Counter {
            addr,
            docs,
            requests,
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn bad(m: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, m.into())
}

fn serve(
    mut conn: TcpStream,
    api: Api,
    gunzip: Option<Gunzip>,
    docs: &AtomicU64,
    requests: &AtomicU64,
) -> std::io::Result<()> {
    let _ = conn.set_nodelay(true);
    let mut buf = vec![0u8; 1 << 16];
    let mut filled = 0;
    let mut plain = Vec::new();
    let mut out = Vec::with_capacity(1 << 16);
    loop {
        let head_end = loop {
            if let Some(e) = find(&buf[..filled], b"\r\n\r\n") {
                break e;
            }
            if filled == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            let k = conn.read(&mut buf[filled..])?;
            if k == 0 {
                return Ok(());
            }
            filled += k;
        };
        let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("head not UTF-8"))?;
        let target = head.split(' ').nth(1).unwrap_or("").to_string();
        let (mut len, mut gzip, mut close) = (0usize, false, false);
        for line in head.split("\r\n").skip(1) {
            let (k, v) = line.split_once(':').ok_or_else(|| bad("bad header"))?;
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse().map_err(|_| bad("bad content-length"))?;
            } else if k.eq_ignore_ascii_case("content-encoding") {
                gzip = v.eq_ignore_ascii_case("gzip");
            } else if k.eq_ignore_ascii_case("connection") {
                close = v.eq_ignore_ascii_case("close");
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                return Err(bad("chunked bodies are not supported"));
            }
        }
        let total = head_end + 4 + len;
        if buf.len() < total {
            buf.resize(total, 0);
        }
        while filled < total {
            let k = conn.read(&mut buf[filled..])?;
            if k == 0 {
                return Ok(());
            }
            filled += k;
        }
        let mut body = &buf[head_end + 4..total];
        if gzip {
            plain.clear();
            let unzip = gunzip.ok_or_else(|| bad("gzip body but no gunzip"))?;
            if !unzip(body, &mut plain) {
                return Err(bad("bad gzip body"));
            }
            body = &plain;
        }
        out.clear();
        let n = match api {
            Api::EsBulk => {
                let n = body
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .count() as u64
                    / 2;
                let len = 25 + (3 * n as usize).saturating_sub(1) + 2;
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n{{\"errors\":false,\"items\":["
                )?;
                for i in 0..n {
                    out.extend_from_slice(if i == 0 { b"{}" } else { b",{}" });
                }
                out.extend_from_slice(b"]}");
                n
            }
            Api::Kusto if target.starts_with("/v1/rest/mgmt") => {
                out.extend_from_slice(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{\"Tables\":[]}",
                );
                0
            }
            Api::Kusto => {
                let n = body
                    .split(|&b| b == b'\n')
                    .filter(|l| l.first() == Some(&b'{'))
                    .count() as u64;
                out.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                n
            }
            Api::Jkool => {
                let n = json_docs(body);
                out.extend_from_slice(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n");
                n
            }
        };
        docs.fetch_add(n, Ordering::Relaxed);
        requests.fetch_add(1, Ordering::Relaxed);
        conn.write_all(&out)?;
        if close {
            return Ok(());
        }
        buf.copy_within(total..filled, 0);
        filled -= total;
    }
}

/// The elements of a top-level JSON array (a byte scan that skips strings), or 1 for an object.
fn json_docs(t: &[u8]) -> u64 {
    let t = t.trim_ascii();
    if t.first() == Some(&b'{') {
        return 1;
    }
    let (mut depth, mut n, mut i) = (0usize, 0u64, 0);
    while i < t.len() {
        match t[i] {
            b'"' => {
                i += 1;
                while i < t.len() && t[i] != b'"' {
                    i += if t[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' => {
                if depth == 1 {
                    n += 1;
                }
                depth += 1;
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    n
}

/// The measured event: 5 typed fields and a message, INFO (the one of `bench/`).
#[inline(never)]
pub fn event() {
    tracing::info!(
        user = "ann",
        order_id = std::hint::black_box(42_u64),
        total = std::hint::black_box(99.5),
        express = true,
        items = std::hint::black_box(3_i64),
        "order placed"
    );
}

/// Emits [`event`] flat out on this thread for `secs` seconds under `dispatch`, then prints
/// the delivered rate read from `delivered` over the emitting window (wall clock), and what the
/// layer counted.
pub fn flat_out(
    name: &str,
    dispatch: &tracing::Dispatch,
    secs: f64,
    delivered: &dyn Fn() -> u64,
    extra: &dyn Fn() -> String,
) {
    // Warm-up: connections, pools, the first batches.
    tracing::dispatcher::with_default(dispatch, || {
        for _ in 0..20_000 {
            event();
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let d0 = delivered();
    let t0 = Instant::now();
    let mut emitted = 0u64;
    let window = Duration::from_secs_f64(secs);
    tracing::dispatcher::with_default(dispatch, || {
        while t0.elapsed() < window {
            for _ in 0..1000 {
                event();
            }
            emitted += 1000;
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    let d = delivered() - d0;
    println!(
        "{name}: delivered {d} in {secs:.2} s = {:.0} k/s (emitted {emitted}, {:.0} k/s; {})",
        d as f64 / secs / 1e3,
        emitted as f64 / secs / 1e3,
        extra()
    );
}
