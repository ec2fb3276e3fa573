//! One client connection: optional TLS, optional handshake, then the transport phase.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::handshake::{PingCheck, PingOutcome, encode_helo};
use super::wire::{Frame, Framer, decode_frame, encode_ack};
use super::{FluentEvent, Mode, NilPolicy, Shared};

/// What to do after one top-level object.
enum Flow {
    Continue,
    Close,
}

enum Phase {
    AwaitPing { nonce: [u8; 16], auth: [u8; 16] },
    Transport,
}

/// Accepts a fresh connection: applies the refuse fault, counts it, wraps TLS, serves it.
pub(crate) async fn accept<S>(stream: S, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if shared.faults().refuse_connections {
        shared
            .counters
            .refused_connections
            .fetch_add(1, Ordering::Relaxed);
        drop(stream);
        return;
    }
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed) + 1;
    shared.counters.connections.fetch_add(1, Ordering::Relaxed);
    match &shared.tls {
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(tls) => serve(tls, shared, id).await,
            Err(e) => {
                shared.counters.tls_failures.fetch_add(1, Ordering::Relaxed);
                shared.error(id, format!("tls handshake failed: {e}"));
            }
        },
        None => serve(stream, shared, id).await,
    }
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> bool {
    stream.write_all(bytes).await.is_ok() && stream.flush().await.is_ok()
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, shared: Arc<Shared>, id: u64) {
    let mut phase = Phase::Transport;
    if let Some(hs) = &shared.config.handshake {
        let nonce: [u8; 16] = rand::random();
        let auth: [u8; 16] = rand::random();
        let helo = encode_helo(hs.style, &nonce, &auth, !shared.config.deny_keepalive);
        if !write(&mut stream, &helo).await {
            return;
        }
        phase = Phase::AwaitPing { nonce, auth };
    }
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut tmp = vec![0u8; 64 * 1024];
    let mut framer = Framer::default();
    let mut received: u64 = 0;
    let mut cut = false;
    loop {
        // Take every complete object off the buffer.
        let mut start = 0;
        loop {
            match framer.scan(&buf[start..]) {
                Ok(Some(len)) => {
                    let obj = &buf[start..start + len];
                    start += len;
                    framer.reset();
                    let request = matches!(phase, Phase::Transport);
                    if let Flow::Close = handle(obj, &mut phase, &mut stream, &shared, id).await {
                        close(stream).await;
                        return;
                    }
                    if request && shared.config.deny_keepalive {
                        // Fluentd's `in_forward` with `deny_keepalive`: closed after the first
                        // request (and its ack); what followed on the connection is dropped.
                        let dropped = count_objects(&buf[start..]);
                        let c = &shared.counters;
                        c.keepalive_closes.fetch_add(1, Ordering::Relaxed);
                        c.dropped_after_keepalive_close
                            .fetch_add(dropped, Ordering::Relaxed);
                        close(stream).await;
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    shared.protocol_error(id, e.0);
                    close(stream).await;
                    return;
                }
            }
        }
        buf.drain(..start);
        if cut {
            shared.counters.fault_closes.fetch_add(1, Ordering::Relaxed);
            close(stream).await;
            return;
        }
        let n = match stream.read(&mut tmp).await {
            Ok(0) | Err(_) => {
                if !buf.is_empty() {
                    shared.protocol_error(
                        id,
                        format!(
                            "connection closed with {} bytes of an incomplete request",
                            buf.len()
                        ),
                    );
                }
                return;
            }
            Ok(n) => n,
        };
        let mut take = n;
        if let Some(limit) = shared.faults().close_after_bytes
            && received + n as u64 >= limit
        {
            take = limit.saturating_sub(received) as usize;
            cut = true;
        }
        received += take as u64;
        shared
            .counters
            .bytes_received
            .fetch_add(take as u64, Ordering::Relaxed);
        buf.extend_from_slice(&tmp[..take]);
    }
}

/// Whether the record map holds a key twice (Fluentd's Ruby `Hash` keeps the later value;
/// Fluent Bit passes both on, and Elasticsearch refuses a document with a repeated field).
fn has_repeated_key(record: &rmpv::Value) -> bool {
    let Some(map) = record.as_map() else {
        return false;
    };
    let mut seen = std::collections::HashSet::with_capacity(map.len());
    map.iter()
        .any(|(k, _)| !seen.insert(k.as_str().unwrap_or_default()))
}

/// How many msgpack objects `bytes` holds (a trailing incomplete or undecodable one counts as
/// one).
fn count_objects(bytes: &[u8]) -> u64 {
    let mut framer = Framer::default();
    let mut n = 0;
    let mut start = 0;
    while start < bytes.len() {
        match framer.scan(&bytes[start..]) {
            Ok(Some(len)) => {
                n += 1;
                start += len;
                framer.reset();
            }
            Ok(None) | Err(_) => return n + 1,
        }
    }
    n
}

async fn close<S: AsyncWrite + Unpin>(mut stream: S) {
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    obj: &[u8],
    phase: &mut Phase,
    stream: &mut S,
    shared: &Shared,
    id: u64,
) -> Flow {
    if let Phase::AwaitPing { nonce, auth } = phase {
        let Some(hs) = &shared.config.handshake else {
            return Flow::Close;
        };
        let ping = match rmpv::decode::read_value(&mut &obj[..]) {
            Ok(v) => v,
            Err(e) => {
                shared.handshake_failure(id, format!("undecodable PING: {e}"));
                return Flow::Close;
            }
        };
        let check = PingCheck {
            style: hs.style,
            shared_key: hs.shared_key.as_bytes(),
            self_hostname: &hs.self_hostname,
            users: &hs.users,
            nonce: &nonce[..],
            auth: &auth[..],
        };
        return match check.check(&ping) {
            PingOutcome::Ok { pong } => {
                shared
                    .counters
                    .handshakes_ok
                    .fetch_add(1, Ordering::Relaxed);
                *phase = Phase::Transport;
                if write(stream, &pong).await {
                    Flow::Continue
                } else {
                    Flow::Close
                }
            }
            PingOutcome::Fail { reason, pong } => {
                shared.handshake_failure(id, reason);
                if let Some(pong) = pong {
                    let _ = write(stream, &pong).await;
                }
                Flow::Close
            }
        };
    }
    let req = match decode_frame(obj) {
        Ok(Frame::Nil) => {
            shared
                .counters
                .nil_keepalives
                .fetch_add(1, Ordering::Relaxed);
            return match shared.config.nil_policy {
                NilPolicy::KeepAlive => Flow::Continue,
                NilPolicy::Close => Flow::Close,
            };
        }
        Ok(Frame::Request(r)) => r,
        Err(e) => {
            shared.protocol_error(id, e.0);
            return Flow::Close;
        }
    };
    let c = &shared.counters;
    let mut req = req;
    if req.mode == Mode::CompressedPackedForward
        && let Some(limit) = shared.config.compressed_chunk_limit
    {
        // Fluent Bit: only the entries inside the first decompressed piece survive.
        let keep = req
            .entry_ends
            .iter()
            .take_while(|end| **end <= limit)
            .count();
        let lost = req.entries.len() - keep;
        if lost > 0 {
            req.entries.truncate(keep);
            c.entries_past_chunk_limit
                .fetch_add(lost as u64, Ordering::Relaxed);
        }
    }
    match req.mode {
        Mode::Message => &c.requests_message,
        Mode::Forward => &c.requests_forward,
        Mode::PackedForward => &c.requests_packed_forward,
        Mode::CompressedPackedForward => &c.requests_compressed_packed_forward,
    }
    .fetch_add(1, Ordering::Relaxed);
    let duplicate = match &req.chunk {
        Some(chunk) => {
            let fresh = shared.lock_seen().insert(chunk.clone());
            if !fresh {
                c.duplicate_chunks.fetch_add(1, Ordering::Relaxed);
            }
            !fresh
        }
        None => false,
    };
    let repeated = req
        .entries
        .iter()
        .filter(|(_, record)| has_repeated_key(record))
        .count();
    if repeated > 0 {
        c.records_with_repeated_keys
            .fetch_add(repeated as u64, Ordering::Relaxed);
    }
    if !shared.config.keep_events {
        c.events_not_kept
            .fetch_add(req.entries.len() as u64, Ordering::Relaxed);
    } else {
        let chunk = req
            .chunk
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned());
        let mut events = shared.lock_events();
        for (time, record) in req.entries {
            events.push(FluentEvent {
                tag: req.tag.clone(),
                time,
                record,
                mode: req.mode,
                chunk: chunk.clone(),
                duplicate,
                connection: id,
            });
        }
    }
    let Some(chunk) = req.chunk else {
        return Flow::Continue;
    };
    let (withhold, garble, delay) = {
        let mut f = shared.lock_faults();
        let withhold = f.withhold_acks.take_one();
        let garble = !withhold && f.garble_acks.take_one();
        (withhold, garble, f.ack_delay)
    };
    if withhold {
        c.acks_withheld.fetch_add(1, Ordering::Relaxed);
        return Flow::Continue;
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    // Counted before the write, so a client that has read the reply sees the count.
    let reply = if garble {
        c.acks_garbled.fetch_add(1, Ordering::Relaxed);
        let mut wrong = b"garbled-".to_vec();
        wrong.extend_from_slice(&chunk);
        encode_ack(&wrong)
    } else {
        c.acks_sent.fetch_add(1, Ordering::Relaxed);
        encode_ack(&chunk)
    };
    if write(stream, &reply).await {
        Flow::Continue
    } else {
        Flow::Close
    }
}
