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
//! * **Acks**: every request carries a `chunk`; the batch counts as delivered only when every
//!   request's ack has come back. A missing, late or wrong ack, or a broken connection, closes
//!   the connection and returns [`Outcome::Retry`] (or [`Outcome::Partial`] for the requests
//!   that were not acknowledged); the resend carries the same chunk ids.
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

    /// Writes the requests on server `i` and awaits their acks; returns which were done.
    async fn exchange(
        &mut self,
        i: usize,
        requests: &[crate::encode::Request],
        wire: &[u8],
        deadline: Instant,
        cx: &mut SendContext,
    ) -> (Vec<bool>, Option<String>) {
        let ep = self.set.endpoints[i].to_string();
        let require_ack = self.set.require_ack;
        let ack_timeout = self.set.ack_timeout;
        let Some(conn) = self.servers[i].conn.as_mut() else {
            return (
                vec![false; requests.len()],
                Some(format!("no connection to {ep}")),
            );
        };
        conn.dirty = true;
        if let Err(e) = conn.write_all(wire).await {
            self.servers[i].failed(Instant::now());
            return (
                vec![false; requests.len()],
                Some(format!("write to {ep} failed: {e}")),
            );
        }
        cx.record_bytes_sent(wire.len() as u64);
        if !require_ack {
            conn.dirty = false;
            return (vec![true; requests.len()], None);
        }
        let mut done = vec![false; requests.len()];
        let started = Instant::now();
        let ack_deadline = (started + ack_timeout).min(deadline);
        let mut failure = None;
        let mut acked = 0usize;
        let mut closed = false;
        let mut greeted = false;
        while done.iter().any(|d| !*d) {
            let reply = match conn.read_value(ack_deadline).await {
                Ok(v) => v,
                Err(e) => {
                    // A close (or the reset of a close with our later requests unread).
                    closed = matches!(e, ReadError::Closed | ReadError::Io(_));
                    let what = match e {
                        ReadError::Timeout => format!(
                            "no ack from {ep} within {} ms",
                            ack_deadline.saturating_duration_since(started).as_millis()
                        ),
                        other => format!("awaiting the ack from {ep}: {other}"),
                    };
                    failure = Some(what);
                    break;
                }
            };
            // Acks normally come in order; accept them in any order, but only for our chunks.
            let mut matched = false;
            let mut last = None;
            for (k, r) in requests.iter().enumerate() {
                if done[k] {
                    continue;
                }
                let Some(chunk) = &r.chunk else { continue };
                match classify::check_ack(&reply, chunk) {
                    AckCheck::Match => {
                        done[k] = true;
                        acked += 1;
                        conn.acks += 1;
                        matched = true;
                        break;
                    }
                    other => last = Some(other),
                }
            }
            if !matched {
                greeted |= classify::is_helo(&reply);
                failure = Some(match last {
                    Some(AckCheck::Mismatch(got)) => {
                        format!("ack mismatch from {ep}: got chunk `{got}`")
                    }
                    Some(AckCheck::NotAnAck(why)) => format!("unexpected reply from {ep}: {why}"),
                    _ => format!("unexpected reply from {ep}"),
                });
                break;
            }
        }
        // Learning that the server closes after each request (no HELO told us): the close came
        // right after the first ack this connection ever carried.
        let first_ack_only = conn.acks == 1;
        let state = &mut self.servers[i];
        if greeted && self.set.credentials.is_none() {
            state.requires_handshake = true;
        }
        if requests.len() > 1 {
            if closed && acked == 1 && first_ack_only {
                state.closed_after_one_ack = state.closed_after_one_ack.saturating_add(1);
                if state.closed_after_one_ack >= LEARN_NO_KEEPALIVE_AFTER {
                    state.no_keepalive = true;
                }
            } else if acked > 1 {
                state.closed_after_one_ack = 0;
            }
        }
        match failure {
            Some(f) => {
                // The stream may still deliver a late ack: never reuse it.
                if let Some(c) = self.servers[i].conn.take() {
                    c.close(Duration::from_millis(100)).await;
                }
                (done, Some(f))
            }
            None => {
                if let Some(c) = self.servers[i].conn.as_mut() {
                    c.dirty = false;
                }
                (done, None)
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
            let (one, failure) = self
                .exchange(i, std::slice::from_ref(r), &r.bytes, deadline, cx)
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

/// The requests' bytes, moved into one buffer written back to back (their chunk ids are all
/// that is used from there on): no copy for one request, one `memcpy` per request for several.
fn take_wire(requests: &mut [crate::encode::Request]) -> Vec<u8> {
    if let [only] = requests {
        return std::mem::take(&mut only.bytes);
    }
    let mut wire = Vec::with_capacity(requests.iter().map(|r| r.bytes.len()).sum());
    for r in requests {
        wire.extend_from_slice(&r.bytes);
        r.bytes = Vec::new();
    }
    wire
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
                let wire = take_wire(&mut requests);
                self.exchange(i, &requests, &wire, deadline, cx).await
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
