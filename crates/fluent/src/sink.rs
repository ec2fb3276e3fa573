//! [`FluentSink`]: the core [`Sink`] for Forward servers: encode, pick a server, (re)connect
//! and authenticate, write, await the acks, and say what happened.
//!
//! * **Connections** are kept open between batches, one per server, opened lazily. Before a
//!   connection is reused, a non-blocking read checks that the peer has not closed it; one that
//!   was interrupted mid-request (the core's send timeout) is never reused.
//! * **Servers**: the first server is preferred; one that fails to connect or authenticate is
//!   skipped for a backoff (250 ms doubling to 30 s) while the next ones take over, and is tried
//!   again when its backoff ends (fail back). With round-robin, consecutive batches go to
//!   consecutive servers.
//! * **Acks**: every request (chunk) carries a `chunk` id; the batch's chunks are written in
//!   order with up to `max_chunks_in_flight` of them awaiting acks, which are read on the
//!   other half of the connection meanwhile. A chunk's records are delivered when its ack comes
//!   back. A missing, late or wrong ack, a failed write or a broken connection closes the
//!   connection and returns [`Outcome::Retry`] (nothing acknowledged) or [`Outcome::Partial`]
//!   (retry only the records of the chunks not acknowledged); the resend carries the same
//!   chunk ids.
//! * **Keep-alive denied**: a server whose HELO says `keepalive: false` gets one request per
//!   connection (write, ack, close, handshake again), as it closes after each request. With
//!   acks, a server that says nothing but closes two connections in a row right after one
//!   ack gets the same treatment from then on.

use std::time::{Duration, Instant};

use logship_core::{Batch, Outcome, SendContext, Sink};

use crate::classify::{self, AckCheck};
use crate::encode::{ChunkIds, Encoder};
use crate::handshake::{self, Credentials};
use crate::transport::{Conn, Endpoint, ReadError, TlsSetup};

/// Settings of the sink, resolved by the builder.
#[derive(Debug, Clone)]
pub(crate) struct SinkSettings {
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) tls: Option<TlsSetup>,
    pub(crate) require_ack: bool,
    pub(crate) ack_timeout: Duration,
    /// Requests are written in units of about this many bytes (one chunk each, or several
    /// small requests together).
    pub(crate) chunk_bytes: usize,
    /// The window: units written and not yet fully acknowledged.
    pub(crate) max_chunks_in_flight: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) round_robin: bool,
    pub(crate) credentials: Option<Credentials>,
}

const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct ServerState {
    conn: Option<Conn>,
    /// Skip this server until then (after a failed connect or handshake).
    down_until: Option<Instant>,
    backoff: Duration,
    /// Connections in a row that the server closed right after acknowledging exactly one of
    /// several requests: what a server denying keep-alive without a handshake (Fluentd
    /// `deny_keepalive` without `<security>`, so no HELO to say so) does.
    closed_after_one_ack: u8,
    /// Learned from [`closed_after_one_ack`](Self::closed_after_one_ack) reaching
    /// [`LEARN_NO_KEEPALIVE_AFTER`]: send one request per connection from now on.
    no_keepalive: bool,
    /// The server greeted a connection with a HELO while no shared key is configured: each new
    /// connection waits for its greeting (up to the connect timeout) before anything is
    /// written, and a HELO fails it.
    requires_handshake: bool,
}

/// How many connections in a row must close right after one ack before the sink sends one
/// request per connection to that server (one such close is also what a restart looks like).
const LEARN_NO_KEEPALIVE_AFTER: u8 = 2;

impl ServerState {
    fn failed(&mut self, now: Instant) {
        self.backoff = if self.backoff.is_zero() {
            BACKOFF_START
        } else {
            (self.backoff * 2).min(BACKOFF_MAX)
        };
        self.down_until = Some(now + self.backoff);
        self.conn = None;
    }
    fn connected(&mut self) {
        self.backoff = Duration::ZERO;
        self.down_until = None;
    }
}

/// The Fluent sink. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct FluentSink {
    enc: Encoder,
    set: SinkSettings,
    servers: Vec<ServerState>,
    next_rr: usize,
    salt: [u8; 16],
    /// Failed certificate checks since `send` last looked (counted into its `SendContext`).
    certificate_failures: u32,
}

impl FluentSink {
    pub(crate) fn new(enc: Encoder, set: SinkSettings) -> Self {
        let servers = set
            .endpoints
            .iter()
            .map(|_| ServerState::default())
            .collect();
        Self {
            enc,
            set,
            servers,
            next_rr: 0,
            salt: rand::random(),
            certificate_failures: 0,
        }
    }

    /// Servers in the order to try them for the next batch.
    fn order(&mut self, now: Instant) -> Vec<usize> {
        let n = self.servers.len();
        let start = if self.set.round_robin {
            let s = self.next_rr % n;
            self.next_rr = (s + 1) % n;
            s
        } else {
            0
        };
        let rotated: Vec<usize> = (0..n).map(|i| (start + i) % n).collect();
        let (up, mut down): (Vec<usize>, Vec<usize>) = rotated
            .into_iter()
            .partition(|&i| self.servers[i].down_until.is_none_or(|t| t <= now));
        // When every server is backing off, still try the one that comes back first (the
        // core's own retry backoff spaces these attempts).
        down.sort_by_key(|&i| self.servers[i].down_until);
        if up.is_empty() {
            down.into_iter().take(1).collect()
        } else {
            up
        }
    }

    /// A usable connection to server `i`: the open one if the peer has not closed it, else a
    /// new one (with the handshake).
    async fn connection(&mut self, i: usize) -> Result<(), String> {
        let state = &mut self.servers[i];
        let stale = match &mut state.conn {
            Some(c) => c.dirty || c.peer_closed().await,
            None => false,
        };
        if stale && let Some(c) = state.conn.take() {
            // Without acks nothing else would tell: a server that requires the handshake
            // greets with a HELO and drops what we wrote as a bad PING.
            let helo = self.set.credentials.is_none()
                && c.stray_reply().is_some_and(|v| classify::is_helo(&v));
            c.close(Duration::from_millis(100)).await;
            if helo {
                state.requires_handshake = true;
                let ep = &self.set.endpoints[i];
                return Err(format!("{ep}: {}", classify::REQUIRES_SHARED_KEY));
            }
        }
        if state.conn.is_some() {
            return Ok(());
        }
        let ep = &self.set.endpoints[i];
        let mut conn =
            match Conn::connect(ep, self.set.tls.as_ref(), self.set.connect_timeout).await {
                Ok(c) => c,
                Err(e) => {
                    // A failed certificate check says which one (and is counted by `send`).
                    return Err(match logship_tls::certificate_failure(&e) {
                        Some(f) => {
                            self.certificate_failures += 1;
                            format!("cannot connect to {ep}: {f}")
                        }
                        None => format!("cannot connect to {ep}: {e}"),
                    });
                }
            };
        if self.set.credentials.is_none() && self.servers[i].requires_handshake {
            // Does it still greet with a HELO? Nothing is written until we know.
            let deadline = Instant::now() + self.set.connect_timeout;
            match conn.read_value(deadline).await {
                Ok(v) if classify::is_helo(&v) => {
                    conn.close(Duration::from_millis(100)).await;
                    return Err(format!("{ep}: {}", classify::REQUIRES_SHARED_KEY));
                }
                Err(ReadError::Timeout) => self.servers[i].requires_handshake = false,
                Ok(v) => return Err(format!("{ep}: unexpected greeting {v}")),
                Err(e) => return Err(format!("{ep}: {e}")),
            }
        }
        if let Some(creds) = &self.set.credentials {
            let deadline = Instant::now() + self.set.connect_timeout;
            let helo = authenticate(&mut conn, creds, deadline)
                .await
                .map_err(|e| format!("handshake with {ep} failed: {e}"))?;
            conn.keepalive = helo.keepalive;
        }
        self.servers[i].conn = Some(conn);
        Ok(())
    }

    /// Writes the requests on server `i` in `units` (consecutive requests written together)
    /// and awaits their acks, keeping up to `max_chunks_in_flight` units written and not yet
    /// acknowledged; returns which requests were done (acknowledged, or written without acks)
    /// and why the others were not.
    async fn exchange(
        &mut self,
        i: usize,
        requests: &[crate::encode::Request],
        units: Vec<(std::ops::Range<usize>, Vec<u8>)>,
        deadline: Instant,
        cx: &mut SendContext,
    ) -> (Vec<bool>, Option<String>) {
        let ep = self.set.endpoints[i].to_string();
        let Some(conn) = self.servers[i].conn.as_mut() else {
            return (
                vec![false; requests.len()],
                Some(format!("no connection to {ep}")),
            );
        };
        conn.dirty = true;
        if !self.set.require_ack {
            // Written is delivered: the units fully written before a failure count.
            let mut done = vec![false; requests.len()];
            for (range, wire) in &units {
                if let Err(e) = conn.write_all(wire).await {
                    self.servers[i].failed(Instant::now());
                    return (done, Some(format!("write to {ep} failed: {e}")));
                }
                cx.record_bytes_sent(wire.len() as u64);
                done[range.clone()].fill(true);
            }
            conn.dirty = false;
            return (done, None);
        }
        let window = self.set.max_chunks_in_flight.max(1);
        let ack_timeout = self.set.ack_timeout;
        let conn_acks_before = conn.acks;
        let pipe = pipeline(conn, requests, &units, window, ack_timeout, deadline, &ep).await;
        cx.record_bytes_sent(pipe.bytes_written);
        conn.acks += pipe.acked as u64;
        // Learning that the server closes after each request (no HELO told us): the close came
        // right after the first ack this connection ever carried.
        let first_ack_only = conn_acks_before == 0 && pipe.acked == 1;
        let write_failed = pipe.write_failed;
        let state = &mut self.servers[i];
        if pipe.greeted && self.set.credentials.is_none() {
            state.requires_handshake = true;
        }
        if requests.len() > 1 {
            if pipe.closed && first_ack_only {
                state.closed_after_one_ack = state.closed_after_one_ack.saturating_add(1);
                if state.closed_after_one_ack >= LEARN_NO_KEEPALIVE_AFTER {
                    state.no_keepalive = true;
                }
            } else if pipe.acked > 1 {
                state.closed_after_one_ack = 0;
            }
        }
        if write_failed {
            // A failed write backs the server off (the core's retry then goes to the next).
            self.servers[i].failed(Instant::now());
        }
        match pipe.failure {
            Some(f) => {
                // The stream may still deliver a late ack: never reuse it.
                if let Some(c) = self.servers[i].conn.take() {
                    c.close(Duration::from_millis(100)).await;
                }
                (pipe.done, Some(f))
            }
            None => {
                if let Some(c) = self.servers[i].conn.as_mut() {
                    c.dirty = false;
                }
                (pipe.done, None)
            }
        }
    }
    /// One request per connection, for a server whose HELO said `keepalive: false` (Fluentd's
    /// `in_forward` with `deny_keepalive true` closes the connection after the first request
    /// and its ack, dropping whatever followed on it): write one request, await its ack when
    /// acks are on, close, and connect and authenticate again for the next. This is how
    /// Fluentd's own `out_forward` talks by default (`keepalive false`: a connection per
    /// chunk; fluent/fluentd `lib/fluent/plugin/out_forward.rb`, and `in_forward.rb` for the
    /// close). Stops at the first failure; the requests done so far count.
    async fn exchange_each(
        &mut self,
        i: usize,
        requests: &[crate::encode::Request],
        deadline: Instant,
        cx: &mut SendContext,
    ) -> (Vec<bool>, Option<String>) {
        let mut done = vec![false; requests.len()];
        for (k, r) in requests.iter().enumerate() {
            if k > 0 {
                if Instant::now() >= deadline {
                    let ep = &self.set.endpoints[i];
                    return (
                        done,
                        Some(format!(
                            "send deadline reached after {k} of {} requests to {ep} \
                             (one request per connection: the server denies keep-alive)",
                            requests.len()
                        )),
                    );
                }
                let connected = self.connection(i).await;
                if std::mem::take(&mut self.certificate_failures) > 0 {
                    cx.record_certificate_failure();
                }
                if let Err(e) = connected {
                    self.servers[i].failed(Instant::now());
                    return (done, Some(e));
                }
            }
            let unit = vec![(0..1, r.bytes.clone())];
            let (one, failure) = self
                .exchange(i, std::slice::from_ref(r), unit, deadline, cx)
                .await;
            done[k] = one.first().copied().unwrap_or(false);
            // The server closes it anyway; closing first never leaves a half-closed stream.
            if let Some(c) = self.servers[i].conn.take() {
                c.close(Duration::from_millis(100)).await;
            }
            if failure.is_some() {
                return (done, failure);
            }
        }
        (done, None)
    }
}

/// The requests' bytes, grouped into write units of at most `chunk_bytes` each (or one
/// larger request): consecutive requests that fit together (Message mode, small tags) are
/// copied into one buffer; a request alone in its unit is moved, not copied. Each
/// unit is one slot of the window. Only the chunk ids of the requests are used from there on.
fn take_units(
    requests: &mut [crate::encode::Request],
    chunk_bytes: usize,
) -> Vec<(std::ops::Range<usize>, Vec<u8>)> {
    let mut units = Vec::new();
    let mut k = 0;
    while k < requests.len() {
        let start = k;
        let mut len = requests[k].bytes.len();
        k += 1;
        while k < requests.len() && len.saturating_add(requests[k].bytes.len()) <= chunk_bytes {
            len += requests[k].bytes.len();
            k += 1;
        }
        let wire = if k - start == 1 {
            std::mem::take(&mut requests[start].bytes)
        } else {
            let mut wire = Vec::with_capacity(len);
            for r in &mut requests[start..k] {
                wire.extend_from_slice(&r.bytes);
                r.bytes = Vec::new();
            }
            wire
        };
        units.push((start..k, wire));
    }
    units
}

/// What [`pipeline`] did.
struct Piped {
    /// Per request: acknowledged.
    done: Vec<bool>,
    /// Acks matched.
    acked: usize,
    bytes_written: u64,
    /// Why not every request was acknowledged.
    failure: Option<String>,
    /// The server closed the connection (or reset it) while acks were awaited.
    closed: bool,
    /// A write failed.
    write_failed: bool,
    /// A reply was a HELO (a server that requires the handshake).
    greeted: bool,
}

/// The shared state of the writing and the reading half of [`pipeline`].
struct Window {
    done: Vec<bool>,
    /// Requests written (or being written) and not acknowledged, in write order.
    outstanding: std::collections::VecDeque<usize>,
    /// Per unit: its requests not yet acknowledged.
    left: Vec<usize>,
    /// Per request: its unit.
    unit_of: Vec<usize>,
    /// Per unit: when its write completed.
    written_at: Vec<Option<Instant>>,
    acked: usize,
    bytes_written: u64,
}

/// Writes `units` on `conn` while reading acks: a unit is written once fewer than `window`
/// units are written and not fully acknowledged, and each ack frees its request (and, with
/// its unit's last request, a slot). Acks are expected in order (Fluentd and Fluent Bit
/// acknowledge the requests of a connection in the order they read them) but accepted in any
/// order, only for chunks written and not yet acknowledged. Each unit must be acknowledged
/// within `ack_timeout` of its write (and everything by `deadline`). The first failure (a
/// write error, a missing or wrong ack, a reply that is not an ack, a closed connection) ends
/// both halves; the requests acknowledged until then are done, the others are not.
async fn pipeline(
    conn: &mut Conn,
    requests: &[crate::encode::Request],
    units: &[(std::ops::Range<usize>, Vec<u8>)],
    window: usize,
    ack_timeout: Duration,
    deadline: Instant,
    ep: &str,
) -> Piped {
    let mut unit_of = vec![0; requests.len()];
    for (u, (range, _)) in units.iter().enumerate() {
        unit_of[range.clone()].fill(u);
    }
    let state = std::cell::RefCell::new(Window {
        done: vec![false; requests.len()],
        outstanding: std::collections::VecDeque::with_capacity(requests.len()),
        left: units.iter().map(|(r, _)| r.len()).collect(),
        unit_of,
        written_at: vec![None; units.len()],
        acked: 0,
        bytes_written: 0,
    });
    let slots = tokio::sync::Semaphore::new(window);
    let (mut replies, mut writes) = conn.halves();
    let writer = async {
        for (u, (range, wire)) in units.iter().enumerate() {
            match slots.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => return Ok(()),
            }
            state.borrow_mut().outstanding.extend(range.clone());
            writes.write_all(wire).await?;
            let mut st = state.borrow_mut();
            st.bytes_written += wire.len() as u64;
            st.written_at[u] = Some(Instant::now());
        }
        Ok::<(), std::io::Error>(())
    };
    let mut closed = false;
    let mut greeted = false;
    let reader = async {
        let mut waiting_since = Instant::now();
        loop {
            let ack_deadline = {
                let st = state.borrow();
                if st.done.iter().all(|d| *d) {
                    return None;
                }
                // The oldest unacknowledged unit's clock (or, while it is still being
                // written, the time we started waiting).
                let since = st
                    .outstanding
                    .front()
                    .and_then(|&k| st.written_at[st.unit_of[k]])
                    .unwrap_or(waiting_since);
                (since + ack_timeout).min(deadline)
            };
            let reply = match replies.read_value(ack_deadline).await {
                Ok(v) => v,
                Err(e) => {
                    // A close (or the reset of a close with our later requests unread).
                    closed = matches!(e, ReadError::Closed | ReadError::Io(_));
                    return Some(match e {
                        ReadError::Timeout => {
                            let st = state.borrow();
                            let since = st
                                .outstanding
                                .front()
                                .and_then(|&k| st.written_at[st.unit_of[k]])
                                .unwrap_or(waiting_since);
                            format!(
                                "no ack from {ep} within {} ms ({} of {} chunks acknowledged)",
                                ack_deadline.saturating_duration_since(since).as_millis(),
                                st.acked,
                                requests.len()
                            )
                        }
                        other => format!("awaiting the ack from {ep}: {other}"),
                    });
                }
            };
            let mut st = state.borrow_mut();
            let mut last = None;
            let mut matched = None;
            for (pos, &k) in st.outstanding.iter().enumerate() {
                let Some(chunk) = &requests[k].chunk else {
                    continue;
                };
                match classify::check_ack(&reply, chunk) {
                    AckCheck::Match => {
                        matched = Some((pos, k));
                        break;
                    }
                    other => last = Some(other),
                }
            }
            let Some((pos, k)) = matched else {
                greeted |= classify::is_helo(&reply);
                return Some(match last {
                    Some(AckCheck::Mismatch(got)) => {
                        format!("ack mismatch from {ep}: got chunk `{got}`")
                    }
                    Some(AckCheck::NotAnAck(why)) => format!("unexpected reply from {ep}: {why}"),
                    _ => format!("unexpected reply from {ep}"),
                });
            };
            st.outstanding.remove(pos);
            st.done[k] = true;
            st.acked += 1;
            let u = st.unit_of[k];
            st.left[u] -= 1;
            if st.left[u] == 0 {
                slots.add_permits(1);
            }
            waiting_since = Instant::now();
        }
    };
    let mut write_failed = false;
    let failure = {
        let mut writer = std::pin::pin!(writer);
        let mut reader = std::pin::pin!(reader);
        let mut writing = true;
        loop {
            tokio::select! {
                biased;
                failure = &mut reader => break failure,
                written = &mut writer, if writing => {
                    writing = false;
                    if let Err(e) = written {
                        write_failed = true;
                        break Some(format!("write to {ep} failed: {e}"));
                    }
                }
            }
        }
    };
    let st = state.into_inner();
    Piped {
        done: st.done,
        acked: st.acked,
        bytes_written: st.bytes_written,
        failure,
        closed,
        write_failed,
        greeted,
    }
}

/// HELO → PING → PONG on a fresh connection.
async fn authenticate(
    conn: &mut Conn,
    creds: &Credentials,
    deadline: Instant,
) -> Result<handshake::Helo, String> {
    let helo = conn
        .read_value(deadline)
        .await
        .map_err(|e| format!("awaiting HELO: {e}"))?;
    let helo = handshake::parse_helo(&helo)?;
    let salt = hex::encode(rand::random::<[u8; 16]>());
    let ping = handshake::encode_ping(&helo, creds, &salt);
    conn.write_all(&ping)
        .await
        .map_err(|e| format!("sending PING: {e}"))?;
    let pong = conn.read_value(deadline).await.map_err(|e| match e {
        // Fluent Bit closes without a PONG on a wrong shared key.
        ReadError::Closed => "the server closed the connection instead of answering PING \
                              (a wrong shared key, for Fluent Bit)"
            .to_string(),
        other => format!("awaiting PONG: {other}"),
    })?;
    handshake::check_pong(&pong, &helo, creds, &salt)?;
    Ok(helo)
}

impl Sink for FluentSink {
    fn name(&self) -> &'static str {
        "fluent"
    }

    async fn start(&mut self) -> Result<(), String> {
        let mut errors = Vec::new();
        let order = self.order(Instant::now());
        // The first batch still goes to the first server with round-robin.
        self.next_rr = 0;
        for i in order {
            match self.connection(i).await {
                Ok(()) => {
                    self.servers[i].connected();
                    return Ok(());
                }
                Err(e) => {
                    self.servers[i].failed(Instant::now());
                    errors.push(e);
                }
            }
        }
        Err(errors.join("; "))
    }

    async fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> Outcome {
        let chunks = self.set.require_ack.then(|| ChunkIds {
            salt: self.salt,
            batch_id: batch.id(),
        });
        let encoded = self.enc.encode_batch(batch.records(), chunks.as_ref());
        let mut requests = encoded.requests;
        let records: Vec<Vec<usize>> = requests.iter().map(|r| r.records.clone()).collect();
        if requests.is_empty() {
            return classify::outcome(&records, &[], encoded.rejected, None);
        }
        if cx.wants_payload() {
            cx.set_payload(
                requests
                    .iter()
                    .flat_map(|r| r.bytes.iter().copied())
                    .collect(),
            );
        }
        // Leave a little of the core's deadline to close things down ourselves.
        let deadline = cx
            .deadline()
            .checked_sub(Duration::from_millis(50))
            .unwrap_or_else(Instant::now);
        let mut errors = Vec::new();
        for i in self.order(Instant::now()) {
            let connected = self.connection(i).await;
            if std::mem::take(&mut self.certificate_failures) > 0 {
                cx.record_certificate_failure();
            }
            if let Err(e) = connected {
                self.servers[i].failed(Instant::now());
                errors.push(e);
                continue;
            }
            self.servers[i].connected();
            let keepalive = !self.servers[i].no_keepalive
                && self.servers[i].conn.as_ref().is_none_or(|c| c.keepalive);
            let (done, failure) = if keepalive {
                let units = take_units(&mut requests, self.set.chunk_bytes);
                self.exchange(i, &requests, units, deadline, cx).await
            } else {
                self.exchange_each(i, &requests, deadline, cx).await
            };
            return classify::outcome(&records, &done, encoded.rejected, failure);
        }
        let done = vec![false; requests.len()];
        let reason = if errors.is_empty() {
            "no server configured".to_string()
        } else {
            errors.join("; ")
        };
        classify::outcome(&records, &done, encoded.rejected, Some(reason))
    }

    async fn shutdown(&mut self) {
        for s in &mut self.servers {
            if let Some(c) = s.conn.take() {
                c.close(Duration::from_millis(500)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Request;

    fn req(len: usize, k: usize) -> Request {
        Request {
            bytes: vec![u8::try_from(k % 256).unwrap_or(0); len],
            chunk: Some(format!("c{k}")),
            records: vec![k],
        }
    }

    #[test]
    fn units_hold_one_large_request_or_small_ones_up_to_the_chunk_size() {
        // Large requests: one unit each, moved.
        let mut large: Vec<Request> = (0..3).map(|k| req(1000, k)).collect();
        let units = take_units(&mut large, 1000);
        let ranges: Vec<_> = units.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(ranges, vec![0..1, 1..2, 2..3]);
        assert!(large.iter().all(|r| r.bytes.is_empty()));
        // Small requests (Message mode): grouped until the unit reaches the size.
        let mut small: Vec<Request> = (0..10).map(|k| req(300, k)).collect();
        let units = take_units(&mut small, 1000);
        let ranges: Vec<_> = units.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(ranges, vec![0..3, 3..6, 6..9, 9..10]);
        assert_eq!(units[0].1.len(), 900);
        assert_eq!(&units[0].1[300..600], &[1u8; 300][..], "requests in order");
        assert_eq!(units[3].1.len(), 300);
        // Just under the size (what the encoder's chunks are): never two in one unit.
        let mut chunks: Vec<Request> = (0..3).map(|k| req(990, k)).collect();
        assert_eq!(take_units(&mut chunks, 1000).len(), 3);
    }
}
