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
    /// A request asking for an ack: process it (its `events`), then acknowledge `chunk`.
    Ack {
        chunk: Vec<u8>,
        events: usize,
    },
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

/// The bytes read from a connection and not yet handled.
struct Inbound {
    buf: Vec<u8>,
    tmp: Vec<u8>,
    /// Bytes taken so far (for [`super::Faults::close_after_bytes`]).
    received: u64,
    /// The close-after-bytes fault fired: read no more.
    cut: bool,
    /// The peer closed the connection (or reading failed).
    eof: bool,
}

impl Inbound {
    fn new() -> Self {
        Inbound {
            buf: Vec::with_capacity(64 * 1024),
            tmp: vec![0u8; 64 * 1024],
            received: 0,
            cut: false,
            eof: false,
        }
    }

    /// Reads once more (cancel-safe: nothing is lost if the future is dropped while waiting).
    /// Returns whether bytes were taken.
    async fn read_more<S: AsyncRead + Unpin>(&mut self, stream: &mut S, shared: &Shared) -> bool {
        if self.cut || self.eof {
            return false;
        }
        let n = match stream.read(&mut self.tmp).await {
            Ok(0) | Err(_) => {
                self.eof = true;
                return false;
            }
            Ok(n) => n,
        };
        let mut take = n;
        if let Some(limit) = shared.faults().close_after_bytes
            && self.received + n as u64 >= limit
        {
            take = limit.saturating_sub(self.received) as usize;
            self.cut = true;
        }
        self.received += take as u64;
        shared
            .counters
            .bytes_received
            .fetch_add(take as u64, Ordering::Relaxed);
        self.buf.extend_from_slice(&self.tmp[..take]);
        take > 0
    }
}

/// Per connection: what the ack path needs to know.
struct AckState {
    /// When the modelled processing of the previous request ends.
    busy_until: Option<tokio::time::Instant>,
    /// Requests that asked for an ack, handled so far.
    requests: u64,
    acks_written: u64,
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
    let mut inb = Inbound::new();
    let mut framer = Framer::default();
    let mut acks = AckState {
        busy_until: None,
        requests: 0,
        acks_written: 0,
    };
    loop {
        // Take every complete object off the buffer.
        let mut start = 0;
        loop {
            match framer.scan(&inb.buf[start..]) {
                Ok(Some(len)) => {
                    let request = matches!(phase, Phase::Transport);
                    let flow = {
                        let obj = &inb.buf[start..start + len];
                        handle(obj, &mut phase, &mut stream, &shared, id).await
                    };
                    start += len;
                    framer.reset();
                    let flow = match flow {
                        Flow::Ack { chunk, events } => {
                            acks.requests += 1;
                            ack(
                                &chunk,
                                events,
                                &mut acks,
                                &mut inb,
                                start,
                                &mut stream,
                                &shared,
                            )
                            .await
                        }
                        other => other,
                    };
                    if let Flow::Close = flow {
                        close(stream).await;
                        return;
                    }
                    if request && shared.config.deny_keepalive {
                        // Fluentd's `in_forward` with `deny_keepalive`: closed after the first
                        // request (and its ack); what followed on the connection is dropped.
                        let dropped = count_objects(&inb.buf[start..]);
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
        inb.buf.drain(..start);
        if inb.cut {
            shared.counters.fault_closes.fetch_add(1, Ordering::Relaxed);
            close(stream).await;
            return;
        }
        let idle_since = std::time::Instant::now();
        let more = inb.read_more(&mut stream, &shared).await;
        if acks.requests > 0 && !inb.eof {
            // Waiting for the client with nothing to handle (after the first request, so that
            // a connection opened ahead of use does not count).
            shared.counters.idle_ns.fetch_add(
                u64::try_from(idle_since.elapsed().as_nanos()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
        if !more && inb.eof {
            if !inb.buf.is_empty() {
                shared.protocol_error(
                    id,
                    format!(
                        "connection closed with {} bytes of an incomplete request",
                        inb.buf.len()
                    ),
                );
            }
            return;
        }
    }
}

/// How many complete msgpack objects `bytes` holds (a trailing incomplete one not counted).
fn count_complete(bytes: &[u8]) -> u64 {
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
            Ok(None) | Err(_) => break,
        }
    }
    n
}

/// The ack of one request: its modelled processing (reading on meanwhile), the first-ack
/// hold, the counts of requests awaiting acks, the ack faults, and the write.
async fn ack<S: AsyncRead + AsyncWrite + Unpin>(
    chunk: &[u8],
    events: usize,
    st: &mut AckState,
    inb: &mut Inbound,
    handled_to: usize,
    stream: &mut S,
    shared: &Shared,
) -> Flow {
    let c = &shared.counters;
    let cost = shared.config.processing.cost(events);
    if !cost.is_zero() {
        let now = tokio::time::Instant::now();
        let until = st.busy_until.map_or(now, |b| b.max(now)) + cost;
        st.busy_until = Some(until);
        c.processing_ns.fetch_add(
            u64::try_from(cost.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let sleep = tokio::time::sleep_until(until);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                more = inb.read_more(stream, shared) => {
                    if !more && (inb.eof || inb.cut) {
                        (&mut sleep).await;
                        break;
                    }
                }
            }
        }
    }
    // Requests received completely and not yet acknowledged: this one, those handled before
    // it whose ack is still due (none: acks go in order), and those waiting in the buffer.
    let mut waiting = count_complete(&inb.buf[handled_to..]);
    if st.acks_written == 0 {
        while st.requests + waiting < shared.config.first_ack_after
            && inb.read_more(stream, shared).await
        {
            waiting = count_complete(&inb.buf[handled_to..]);
        }
        if st.requests + waiting < shared.config.first_ack_after {
            // The connection ended (or was cut) first: no ack.
            return Flow::Continue;
        }
        c.max_requests_before_first_ack
            .fetch_max(st.requests + waiting, Ordering::Relaxed);
    }
    c.max_requests_awaiting_ack
        .fetch_max(1 + waiting, Ordering::Relaxed);
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
        wrong.extend_from_slice(chunk);
        encode_ack(&wrong)
    } else {
        c.acks_sent.fetch_add(1, Ordering::Relaxed);
        encode_ack(chunk)
    };
    st.acks_written += 1;
    if write(stream, &reply).await {
        Flow::Continue
    } else {
        Flow::Close
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
    let req_events = req.entries.len();
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
    Flow::Ack {
        chunk,
        events: req_events,
    }
}
