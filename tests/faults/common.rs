//! The machinery every backend module shares: the [`Rig`] trait (a receiver a test can
//! start, fail, kill and restart), a loopback TCP [`Proxy`] that can cut connections, hold
//! them unanswered or refuse them, the record stream (`id-<n>` messages) and its [`Tally`]
//! at the receiver, the accounting and memory-bound assertions, and the generic scenarios
//! (receiver restarted 5 times during a long stream, application SIGKILLed and restarted with
//! the spool, connection reset mid-batch, a peer that never answers, bounded shutdown).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use logship_core::spool::{FsyncPolicy, SpoolConfig};
use logship_core::{BreakerConfig, Guard, Overflow, PipelineBuilder, RetryPolicy, Stats};
use logship_testkit::wait_until;
use tracing::Dispatch;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{Layer, Registry};

/// Deadline of every wait. Generous (the machine is shared); never what makes a test pass.
pub const WAIT: Duration = Duration::from_secs(60);

/// What `Guard::shutdown` may take beyond its timeout: the core's own 500 ms grace for a
/// sink that ignores cancellation, plus scheduling slack on a loaded 2-core machine.
pub const SHUTDOWN_SLACK: Duration = Duration::from_millis(1_000);

/// A backend layer, boxed so that scenarios are written once for every backend.
pub type BoxLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// A hook adjusting the core pipeline of a backend (`with_pipeline`).
pub type Pipeline = Box<dyn FnOnce(PipelineBuilder) -> PipelineBuilder + Send>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---- the record stream -------------------------------------------------------------------

/// The message of record `id`.
pub fn message(id: u64) -> String {
    format!("id-{id}")
}

/// The id in a message written by [`emit`], if it is one.
pub fn id_of(message: &str) -> Option<u64> {
    message.strip_prefix("id-")?.parse().ok()
}

/// A dispatcher with `layer` alone, usable from any thread.
pub fn dispatch(layer: BoxLayer) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(layer))
}

/// Emits one INFO event `id-<n>` for every `n` in `ids`, through `d`.
pub fn emit(d: &Dispatch, ids: Range<u64>) {
    tracing::dispatcher::with_default(d, || {
        for i in ids {
            tracing::info!(target: "faults", "id-{i}");
        }
    });
}

/// Emits `ids` on a thread of its own.
pub fn emit_in_background(d: &Dispatch, ids: Range<u64>) -> std::thread::JoinHandle<()> {
    let d = d.clone();
    std::thread::Builder::new()
        .name("faults-producer".into())
        .spawn(move || emit(&d, ids))
        .unwrap_or_else(|e| panic!("cannot spawn the producer: {e}"))
}

/// How many times each id arrived at the receiver(s).
#[derive(Debug, Default, Clone)]
pub struct Tally {
    counts: HashMap<u64, u32>,
}

impl Tally {
    /// Counts `ids` (with repeats).
    pub fn add(&mut self, ids: impl IntoIterator<Item = u64>) {
        for id in ids {
            *self.counts.entry(id).or_default() += 1;
        }
    }
    /// A tally of `ids`.
    pub fn of(ids: impl IntoIterator<Item = u64>) -> Self {
        let mut t = Self::default();
        t.add(ids);
        t
    }
    /// Distinct ids.
    pub fn unique(&self) -> u64 {
        self.counts.len() as u64
    }
    /// Arrivals, repeats included.
    pub fn total(&self) -> u64 {
        self.counts.values().map(|c| u64::from(*c)).sum()
    }
    /// Arrivals beyond the first of each id.
    pub fn duplicates(&self) -> u64 {
        self.total() - self.unique()
    }
    /// How many ids in `range` arrived at least once.
    pub fn present_in(&self, range: Range<u64>) -> u64 {
        range.filter(|i| self.counts.contains_key(i)).count() as u64
    }
    /// Ids that arrived, within `range`.
    pub fn ids_in(&self, range: Range<u64>) -> u64 {
        self.counts.keys().filter(|i| range.contains(i)).count() as u64
    }
    /// Asserts every id of `range` arrived at least once (at-least-once delivery).
    pub fn assert_all(&self, range: Range<u64>, what: &str) {
        let missing: Vec<u64> = range
            .clone()
            .filter(|i| !self.counts.contains_key(i))
            .collect();
        assert!(
            missing.is_empty(),
            "{what}: {} of {} ids never arrived (first: {:?})",
            missing.len(),
            range.end - range.start,
            &missing[..missing.len().min(10)]
        );
    }
}

// ---- accounting and bounds -----------------------------------------------------------------

/// Exact accounting once everything is resolved, without a spool: every emitted record is
/// delivered, dropped (by cause) or undelivered (by cause), and nothing is left in flight.
pub fn assert_accounted(s: &Stats, emitted: u64) {
    assert_eq!(s.emitted(), emitted, "emitted: {s:#?}");
    assert_eq!(
        s.delivered + s.dropped() + s.undelivered(),
        emitted,
        "emitted == delivered + dropped + undelivered: {s:#?}"
    );
    assert_eq!(s.in_flight(), 0, "nothing left in flight: {s:#?}");
    assert_eq!(s.queue_len, 0, "{s:#?}");
    assert_eq!(s.queue_bytes, 0, "{s:#?}");
}

/// Exact accounting with a spool (the identity of `logship_core::stats`):
/// `enqueued + spool_replayed == delivered + undelivered + dropped_oldest + spooled`.
pub fn assert_accounted_with_spool(s: &Stats, emitted: u64) {
    assert_eq!(s.emitted(), emitted, "emitted: {s:#?}");
    assert_eq!(
        s.enqueued + s.spool_replayed,
        s.delivered + s.undelivered() + s.dropped_oldest + s.spooled,
        "enqueued + spool_replayed == delivered + undelivered + dropped_oldest + spooled: {s:#?}"
    );
}

/// The queue limits a test configured, checked against every stats sample it takes.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    max_records: u64,
    max_bytes: u64,
    /// Highest queue length seen.
    pub peak_records: u64,
    /// Highest queue bytes seen.
    pub peak_bytes: u64,
    /// Samples taken.
    pub samples: u64,
}

impl Bounds {
    /// Limits of `max_records` records and `max_bytes` estimated bytes.
    pub fn new(max_records: u64, max_bytes: u64) -> Self {
        Self {
            max_records,
            max_bytes,
            peak_records: 0,
            peak_bytes: 0,
            samples: 0,
        }
    }
    /// Samples `s`: asserts the queue is within its limits.
    pub fn check(&mut self, s: &Stats) {
        self.samples += 1;
        self.peak_records = self.peak_records.max(s.queue_len);
        self.peak_bytes = self.peak_bytes.max(s.queue_bytes);
        assert!(
            s.queue_len <= self.max_records && s.queue_bytes <= self.max_bytes,
            "queue over its bounds ({} records, {} bytes): {s:#?}",
            self.max_records,
            self.max_bytes
        );
    }
}

/// Shuts the pipeline down with `timeout`, asserts it returned within the timeout (plus
/// [`SHUTDOWN_SLACK`]), and returns the final stats and how long it took.
pub fn shutdown_within(guard: Guard, timeout: Duration) -> (Stats, Duration) {
    let handle = guard.handle();
    let t0 = Instant::now();
    let result = guard.shutdown(timeout);
    let took = t0.elapsed();
    assert!(
        took <= timeout + SHUTDOWN_SLACK,
        "shutdown took {took:?} with a {timeout:?} timeout: {result:?}"
    );
    (handle.stats(), took)
}

/// Test pipeline settings: short linger, quick retries without limit (a test ends them, not
/// the policy), no circuit breaker, no span timings, a 5 s send timeout.
pub fn fast(p: PipelineBuilder) -> PipelineBuilder {
    p.with_linger(Duration::from_millis(20))
        .with_span_timings(false)
        .with_retry(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(5))
                .with_max_delay(Duration::from_millis(50))
                .with_max_attempts(None)
                .with_max_elapsed(None),
        )
        .with_breaker(BreakerConfig::disabled())
        .with_send_timeout(Duration::from_secs(5))
        .with_shutdown_timeout(Duration::from_secs(5))
}

// ---- the rig: a receiver the scenarios drive ---------------------------------------------------

/// A backend and its receiver, as the scenarios see them.
pub trait Rig: Sized {
    /// The backend's name (also the child-process selector).
    const NAME: &'static str;
    /// Starts a receiver on `127.0.0.1:port` (0: any free port).
    fn try_start(port: u16) -> std::io::Result<Self>;
    /// As [`try_start`](Self::try_start); a port still held by a receiver being stopped is
    /// retried for a while, then a fresh port is used (see [`start_on_same_port`]).
    fn start(port: u16) -> Self {
        if port == 0 {
            return Self::try_start(0).unwrap_or_else(|e| panic!("receiver: {e}"));
        }
        start_on_same_port(port, Self::try_start).0
    }
    /// The port the layer must connect to.
    fn port(&self) -> u16;
    /// Whether [`ids`](Self::ids) still includes what the receivers before a
    /// [`restart`](Self::restart) received (rumqttd brokers cannot be stopped, so their
    /// subscribers stay).
    const KEEPS_HISTORY: bool = false;
    /// The id of every record received so far, repeats included.
    fn ids(&self) -> Vec<u64>;
    /// How many records were received so far, repeats included (cheap; for waiting).
    fn count(&self) -> u64 {
        self.ids().len() as u64
    }
    /// Makes the receiver fail every send retryably (`true`), or accept again (`false`).
    fn set_failing(&self, on: bool);
    /// A layer shipping to `127.0.0.1:port` with the backend's defaults, then [`fast`], then
    /// `pipeline`.
    fn build(port: u16, pipeline: Pipeline) -> (BoxLayer, Guard);
    /// Kills the receiver and starts a new one (same port when possible) that knows nothing
    /// of the old one's data; returns the new rig. Rigs that cannot stop (rumqttd) override it.
    fn restart(self) -> Self {
        let port = self.port();
        drop(self);
        Self::start(port)
    }
}

/// Builds a layer of the backend named `name` (for the child process).
pub type BuildFn = fn(u16, Pipeline) -> (BoxLayer, Guard);

// ---- a loopback TCP proxy --------------------------------------------------------------------

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Pipe bytes both ways to the upstream.
    Forward,
    /// Accept and close at once (a listener that is up but refuses to serve).
    Refuse,
    /// Accept, read and discard everything, never answer (a hung server).
    Blackhole,
}

struct ProxyState {
    upstream: Mutex<SocketAddr>,
    mode: Mutex<ProxyMode>,
    conns: Mutex<Vec<TcpStream>>,
    /// Cut connections once the client has sent this many bytes on them ...
    cut_after: Mutex<u64>,
    /// ... this many more times.
    cuts_left: AtomicU64,
    accepted: AtomicU64,
    mid_cuts: AtomicU64,
    stop: AtomicBool,
}

/// A loopback TCP proxy in front of a receiver, on its own threads. It can cut every open
/// connection ([`cut`](Self::cut)), cut the next connections in the middle of what the client
/// sends ([`cut_next_after`](Self::cut_next_after)), refuse or hang new connections
/// ([`set_mode`](Self::set_mode)), and switch to another upstream.
pub struct Proxy {
    addr: SocketAddr,
    st: Arc<ProxyState>,
}

impl Proxy {
    /// A proxy on a free loopback port forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        Self::start_on(0, upstream)
    }

    /// As [`start`](Self::start) on `port`.
    pub fn start_on(port: u16, upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("proxy cannot bind port {port}: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("proxy address: {e}"));
        let st = Arc::new(ProxyState {
            upstream: Mutex::new(upstream),
            mode: Mutex::new(ProxyMode::Forward),
            conns: Mutex::new(Vec::new()),
            cut_after: Mutex::new(u64::MAX),
            cuts_left: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            mid_cuts: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let s = st.clone();
        std::thread::Builder::new()
            .name("faults-proxy".into())
            .spawn(move || accept_loop(listener, s))
            .unwrap_or_else(|e| panic!("cannot spawn the proxy: {e}"));
        Proxy { addr, st }
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// What new connections meet from now on (open ones are untouched; see [`cut`](Self::cut)).
    pub fn set_mode(&self, mode: ProxyMode) {
        *lock(&self.st.mode) = mode;
    }

    /// Where new connections are forwarded.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *lock(&self.st.upstream) = upstream;
    }

    /// Closes every open connection (both sides); returns how many sockets it closed.
    pub fn cut(&self) -> usize {
        let mut all = lock(&self.st.conns);
        for s in all.iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let n = all.len();
        all.clear();
        n
    }

    /// The next `connections` forwarded connections on which the client sends `bytes` bytes
    /// are closed (both sides) right there: a reset in the middle of a request.
    pub fn cut_next_after(&self, bytes: u64, connections: u64) {
        *lock(&self.st.cut_after) = bytes;
        self.st.cuts_left.store(connections, Ordering::SeqCst);
    }

    /// Connections closed by [`cut_next_after`](Self::cut_next_after) so far.
    pub fn mid_cuts(&self) -> u64 {
        self.st.mid_cuts.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.st.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.st.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        self.cut();
    }
}

fn accept_loop(listener: TcpListener, st: Arc<ProxyState>) {
    for client in listener.incoming() {
        if st.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = client else { continue };
        st.accepted.fetch_add(1, Ordering::SeqCst);
        let _ = client.set_nodelay(true);
        let mode = *lock(&st.mode);
        match mode {
            ProxyMode::Refuse => drop(client),
            ProxyMode::Blackhole => {
                if let Ok(c) = client.try_clone() {
                    lock(&st.conns).push(c);
                }
                std::thread::spawn(move || {
                    let mut client = client;
                    let mut buf = [0u8; 16 * 1024];
                    while matches!(client.read(&mut buf), Ok(n) if n > 0) {}
                });
            }
            ProxyMode::Forward => {
                let upstream = *lock(&st.upstream);
                let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(2))
                else {
                    continue; // upstream down: the client sees its connection closed
                };
                let _ = server.set_nodelay(true);
                let limit = (st.cuts_left.load(Ordering::SeqCst) > 0).then(|| *lock(&st.cut_after));
                let (Ok(c1), Ok(c2), Ok(s1), Ok(s2)) = (
                    client.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                    server.try_clone(),
                ) else {
                    continue;
                };
                lock(&st.conns).extend([c1, s1]);
                pipe(c2, s2, limit, Some(st.clone()));
                pipe(server, client, None, None);
            }
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, limit: Option<u64>, st: Option<Arc<ProxyState>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        let mut sent = 0u64;
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut n = n as u64;
                    // Cut here if this read crosses the limit and the budget allows one more.
                    let cut = limit.is_some_and(|l| sent + n >= l)
                        && st.as_ref().is_some_and(|st| {
                            st.cuts_left
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                                    c.checked_sub(1)
                                })
                                .is_ok()
                        });
                    if cut && let Some(l) = limit {
                        n = n.min(l - sent);
                    }
                    if to.write_all(&buf[..n as usize]).is_err() {
                        break;
                    }
                    sent += n;
                    if cut {
                        if let Some(st) = &st {
                            st.mid_cuts.fetch_add(1, Ordering::SeqCst);
                        }
                        let _ = from.shutdown(Shutdown::Both);
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// The loopback address of `port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Starts a receiver on `port`, retrying the bind for a while (the old listener's thread may
/// still be releasing it); falls back to a fresh port when `port` stays taken. Returns the
/// rig and whether it got the same port.
pub fn start_on_same_port<R>(port: u16, start: impl Fn(u16) -> std::io::Result<R>) -> (R, bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match start(port) {
            Ok(r) => return (r, true),
            Err(e) if Instant::now() >= deadline => {
                eprintln!("port {port} stayed taken ({e}); restarting on a fresh port");
                let r = start(0).unwrap_or_else(|e| panic!("receiver does not start: {e}"));
                return (r, false);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)), // pacing a bind retry
        }
    }
}

/// Waits until every id of `range` arrived at `rig` (some receivers, such as an MQTT
/// subscriber, see a record after the sender got its acknowledgement), asserts it, and returns
/// the tally.
pub fn wait_all<R: Rig>(rig: &R, range: Range<u64>) -> Tally {
    let want = range.end - range.start;
    wait_until(WAIT, || {
        rig.count() >= want && Tally::of(rig.ids()).present_in(range.clone()) == want
    });
    let t = Tally::of(rig.ids());
    t.assert_all(range, R::NAME);
    t
}

// ---- scenario: the receiver killed and restarted 5 times during a long stream -------------------

/// A receiver behind a proxy, so that a restart can first cut the network (every reply the
/// sender saw came from a record already stored), then kill the receiver, read what it stored,
/// and start a new one on the same port.
pub struct Restartable<R: Rig> {
    /// The receiver now running.
    pub rig: Option<R>,
    /// The proxy the layer talks to.
    pub proxy: Proxy,
    /// What the receivers killed so far had received.
    pub tally: Tally,
    /// Restarts that got the same port back.
    pub same_port: u64,
}

impl<R: Rig> Restartable<R> {
    /// A receiver and a proxy in front of it.
    pub fn start() -> Self {
        let rig = R::start(0);
        let proxy = Proxy::start(local(rig.port()));
        Self {
            rig: Some(rig),
            proxy,
            tally: Tally::default(),
            same_port: 0,
        }
    }

    /// The current receiver.
    pub fn rig(&self) -> &R {
        self.rig.as_ref().unwrap_or_else(|| panic!("no receiver"))
    }

    /// Everything received, by the receivers killed so far and the current one.
    pub fn everything(&self) -> Tally {
        let mut t = self.tally.clone();
        t.add(self.rig().ids());
        t
    }

    /// Records received so far, repeats included (cheap).
    pub fn arrivals(&self) -> u64 {
        self.tally.total() + self.rig().count()
    }

    /// Cuts the network, kills the receiver, keeps what it had stored, starts a new one.
    pub fn restart(&mut self) {
        self.proxy.set_mode(ProxyMode::Refuse);
        self.proxy.cut();
        let rig = self.rig.take().unwrap_or_else(|| panic!("no receiver"));
        let port = rig.port();
        if !R::KEEPS_HISTORY {
            self.tally.add(rig.ids());
        }
        let rig = rig.restart();
        if rig.port() == port {
            self.same_port += 1;
        }
        self.proxy.set_upstream(local(rig.port()));
        self.rig = Some(rig);
        self.proxy.set_mode(ProxyMode::Forward);
    }
}

/// Outcome of [`restart_five_times`], for the report.
#[derive(Debug)]
pub struct RestartReport {
    pub stats: Stats,
    pub tally: Tally,
    pub bounds: Bounds,
    pub took: Duration,
}

/// Streams `n` records while the receiver is killed and restarted 5 times (at 1/6 … 5/6 of
/// the stream, as counted at the receivers), with a bounded queue that blocks the producer
/// when full (so nothing is dropped), unlimited quick retries, and no spool. Asserts: every
/// record arrived at least once, exact accounting, the queue never over its bounds, shutdown
/// within its timeout.
pub fn restart_five_times<R: Rig>(n: u64, batch: usize) -> RestartReport {
    const MAX_RECORDS: usize = 10_000;
    const MAX_BYTES: u64 = 8 * 1024 * 1024;
    let t0 = Instant::now();
    let mut net = Restartable::<R>::start();
    let (layer, guard) = R::build(
        net.proxy.port(),
        Box::new(move |p| {
            p.with_max_queue_records(MAX_RECORDS)
                .with_max_queue_bytes(MAX_BYTES)
                .with_overflow(Overflow::Block(Duration::from_secs(30)))
                .with_max_batch_records(batch)
        }),
    );
    let d = dispatch(layer);
    let producer = emit_in_background(&d, 0..n);
    let mut bounds = Bounds::new(MAX_RECORDS as u64, MAX_BYTES);
    for k in 1..=5u64 {
        let threshold = n * k / 6;
        let reached = wait_until(WAIT, || {
            bounds.check(&guard.stats());
            net.arrivals() >= threshold
        });
        assert!(
            reached,
            "{}: stuck before restart {k}: {} of {threshold} records; {:#?}",
            R::NAME,
            net.arrivals(),
            guard.stats()
        );
        net.restart();
    }
    producer
        .join()
        .unwrap_or_else(|_| panic!("the producer panicked"));
    let all = wait_until(WAIT, || {
        bounds.check(&guard.stats());
        // Count first (cheap); tally the ids only once enough records arrived.
        net.arrivals() >= n && net.everything().unique() >= n
    });
    let tally = net.everything();
    assert!(
        all,
        "{}: {} of {n} ids after the restarts; {:#?}",
        R::NAME,
        tally.unique(),
        guard.stats()
    );
    guard
        .flush(WAIT)
        .unwrap_or_else(|e| panic!("{}: flush: {e}", R::NAME));
    let (stats, _) = shutdown_within(guard, Duration::from_secs(5));
    let tally = net.everything();
    tally.assert_all(0..n, R::NAME);
    assert_eq!(
        tally.ids_in(0..n),
        tally.unique(),
        "only ids that were sent"
    );
    assert_accounted(&stats, n);
    assert_eq!(
        (stats.delivered, stats.dropped(), stats.undelivered()),
        (n, 0, 0),
        "{stats:#?}"
    );
    assert!(stats.retries >= 1, "the outages were noticed: {stats:#?}");
    eprintln!(
        "{}: {n} records, 5 restarts ({} on the same port) in {:?}: {} requests, {} retries, \
         {} arrivals ({} duplicates), peak queue {} records / {} bytes",
        R::NAME,
        net.same_port,
        t0.elapsed(),
        stats.requests,
        stats.retries,
        tally.total(),
        tally.duplicates(),
        bounds.peak_records,
        bounds.peak_bytes
    );
    RestartReport {
        stats,
        tally,
        bounds,
        took: t0.elapsed(),
    }
}

// ---- scenario: SIGKILL mid-stream, restart with the spool ---------------------------------------

/// Selects the backend in the child process.
pub const CHILD_ENV: &str = "LOGSHIP_FAULTS_CHILD";
const PORT_ENV: &str = "LOGSHIP_FAULTS_PORT";
const SPOOL_ENV: &str = "LOGSHIP_FAULTS_SPOOL";
const PHASE_ENV: &str = "LOGSHIP_FAULTS_PHASE";
const COUNT_ENV: &str = "LOGSHIP_FAULTS_COUNT";
const LINE: &str = "LOGSHIP-CHILD";
/// Ids of the records a restarted child emits besides the spooled backlog.
pub const FRESH: Range<u64> = 10_000_000..10_000_500;

/// A child process: this test binary running [`sigkill_child`].
pub struct ChildRun {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl ChildRun {
    /// Re-executes this test binary to run the hidden child test for `backend`.
    pub fn spawn(backend: &str, phase: u8, port: u16, spool: &Path, count: u64) -> ChildRun {
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
        let mut child = Command::new(exe)
            .args([
                "--ignored",
                "--exact",
                "common::sigkill_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, backend)
            .env(PORT_ENV, port.to_string())
            .env(SPOOL_ENV, spool)
            .env(PHASE_ENV, phase.to_string())
            .env(COUNT_ENV, count.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the child: {e}"));
        let out = child
            .stdout
            .take()
            .unwrap_or_else(|| panic!("child stdout"));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                // libtest prints `test <name> ... ` without a newline before the test's output.
                if let Some(at) = line.find(LINE) {
                    let _ = tx.send(line[at + LINE.len()..].trim().to_string());
                }
            }
        });
        ChildRun { child, lines }
    }

    /// Waits for the child's line starting with `word`; returns the rest of it.
    pub fn line(&self, word: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if let Some(rest) = l.strip_prefix(word) {
                        return rest.trim().to_string();
                    }
                }
                Err(e) => panic!("no `{word}` line from the child: {e}"),
            }
        }
    }

    /// SIGKILL (`Child::kill`), then reap.
    pub fn kill(mut self) {
        self.child
            .kill()
            .unwrap_or_else(|e| panic!("cannot kill the child: {e}"));
        let _ = self.child.wait();
    }

    /// Waits for the child to exit (killing it at the deadline).
    pub fn wait(mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("the child did not exit");
            }
            std::thread::sleep(Duration::from_millis(10)); // polling a process exit
        }
    }
}

fn env_u64(name: &str) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not set"))
}

fn say(what: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{LINE} {what}");
    let _ = out.flush();
}

/// The child side of [`sigkill_with_spool`]; does nothing unless [`CHILD_ENV`] is set.
///
/// Phase 1 (receiver failing): emit ids `0..count`, wait until all of them are in the spool,
/// say `SPOOLED`, then keep streaming more ids until SIGKILLed. Phase 2 (receiver healthy):
/// start on the same spool, emit [`FRESH`], wait until the spool is replayed and everything
/// is resolved, shut down, and print the stats.
#[test]
#[ignore = "child process of the SIGKILL tests (re-executed by them with LOGSHIP_FAULTS_CHILD)"]
fn sigkill_child() {
    let Ok(backend) = std::env::var(CHILD_ENV) else {
        return;
    };
    let build = crate::build_fn(&backend);
    let port = u16::try_from(env_u64(PORT_ENV)).unwrap_or_else(|e| panic!("{e}"));
    let spool = std::env::var(SPOOL_ENV).unwrap_or_else(|e| panic!("{SPOOL_ENV}: {e}"));
    let count = env_u64(COUNT_ENV);
    match env_u64(PHASE_ENV) {
        1 => {
            let (layer, guard) = build(
                port,
                Box::new(move |p| {
                    p.with_spool(SpoolConfig::new(spool).with_fsync(FsyncPolicy::EveryBatch))
                        .with_retry(
                            RetryPolicy::default()
                                .with_initial_delay(Duration::from_millis(1))
                                .with_max_delay(Duration::from_millis(5))
                                .with_max_attempts(Some(2)),
                        )
                }),
            );
            let d = dispatch(layer);
            emit(&d, 0..count);
            let spooled = wait_until(WAIT, || guard.stats().spooled >= count);
            assert!(spooled, "not all spooled: {:#?}", guard.stats());
            say(&format!("SPOOLED {}", guard.stats().spooled));
            let mut next = count;
            loop {
                emit(&d, next..next + 100);
                next += 100;
            }
        }
        _ => {
            let (layer, guard) = build(
                port,
                Box::new(move |p| p.with_spool(SpoolConfig::new(spool))),
            );
            let d = dispatch(layer);
            emit(&d, FRESH);
            let fresh = FRESH.end - FRESH.start;
            let drained = wait_until(WAIT, || {
                let s = guard.stats();
                s.spool_records == 0 && s.enqueued == fresh && s.in_flight() == 0
            });
            assert!(drained, "spool not drained: {:#?}", guard.stats());
            let (s, _) = shutdown_within(guard, Duration::from_secs(5));
            say(&format!(
                "STATS {} {} {} {} {} {} {} {}",
                s.enqueued,
                s.delivered,
                s.spool_replayed,
                s.spool_corrupt,
                s.undelivered(),
                s.spooled,
                s.spool_records,
                s.dropped()
            ));
        }
    }
}

/// What the restarted child reported.
#[derive(Debug)]
pub struct ChildStats {
    pub enqueued: u64,
    pub delivered: u64,
    pub spool_replayed: u64,
    pub spool_corrupt: u64,
    pub undelivered: u64,
    pub spooled: u64,
    pub spool_records: u64,
    pub dropped: u64,
}

fn parse_stats(line: &str) -> ChildStats {
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    assert_eq!(v.len(), 8, "{line}");
    ChildStats {
        enqueued: v[0],
        delivered: v[1],
        spool_replayed: v[2],
        spool_corrupt: v[3],
        undelivered: v[4],
        spooled: v[5],
        spool_records: v[6],
        dropped: v[7],
    }
}

/// Records in the spool segments under `dir`, read with the on-disk format of
/// `logship_core::spool` (header, then `u32` length, `u32` CRC-32, payload per record):
/// an independent count of what survived the kill.
fn records_on_disk(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
    {
        if !e.file_name().to_string_lossy().ends_with(".lsp") {
            continue;
        }
        let buf = std::fs::read(e.path()).unwrap_or_default();
        let Some(mut rest) = buf.strip_prefix(b"LSPOOL1\n".as_slice()) else {
            continue;
        };
        while rest.len() >= 8 {
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if rest.len() < 8 + len {
                break;
            }
            n += 1;
            rest = &rest[8 + len..];
        }
    }
    n
}

fn segments(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".lsp"))
                .count()
        })
        .unwrap_or(0)
}

/// The application is SIGKILLed mid-stream and restarted on the same spool: every record
/// that reached the spool before the kill arrives (at least once), the restarted process
/// accounts for all of them exactly, and the spool ends empty.
pub fn sigkill_with_spool<R: Rig>(rig: &R, count: u64) -> ChildStats {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    rig.set_failing(true);
    let first = ChildRun::spawn(R::NAME, 1, rig.port(), dir.path(), count);
    let spooled: u64 = first
        .line("SPOOLED")
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(spooled >= count);
    // Mid-stream: the child goes on emitting and spooling a second stream; kill it once
    // part of that is on disk.
    let at_spooled = segments(dir.path());
    assert!(wait_until(WAIT, || segments(dir.path()) > at_spooled));
    first.kill();
    let on_disk = segments(dir.path());
    let records = records_on_disk(dir.path());
    assert!(
        records > count,
        "the spool holds the backlog and part of the second stream"
    );
    assert!(
        rig.ids().is_empty(),
        "the failing receiver stored nothing: {}",
        rig.ids().len()
    );
    rig.set_failing(false);
    let second = ChildRun::spawn(R::NAME, 2, rig.port(), dir.path(), count);
    let s = parse_stats(&second.line("STATS"));
    let status = second.wait();
    assert!(status.success(), "the restarted child failed: {status}");
    let fresh = FRESH.end - FRESH.start;
    // Everything on disk at the kill was replayed: the first `count` ids and whatever of the
    // second stream had been spooled before the SIGKILL.
    assert_eq!(s.spool_replayed, records, "{s:?}");
    assert_eq!(s.enqueued, fresh, "{s:?}");
    assert_eq!(s.delivered, records + fresh, "{s:?}");
    assert_eq!(
        (
            s.undelivered,
            s.dropped,
            s.spooled,
            s.spool_records,
            s.spool_corrupt
        ),
        (0, 0, 0, 0, 0),
        "{s:?}"
    );
    assert_eq!(segments(dir.path()), 0, "the spool ends empty");
    wait_until(WAIT, || Tally::of(rig.ids()).unique() >= records + fresh);
    let tally = Tally::of(rig.ids());
    tally.assert_all(0..count, R::NAME);
    tally.assert_all(FRESH, R::NAME);
    let second_stream = tally.ids_in(count..FRESH.start);
    assert_eq!(
        tally.unique(),
        count + second_stream + fresh,
        "no id that was never sent"
    );
    assert_eq!(
        count + second_stream,
        records,
        "every spooled record arrived once it was replayed"
    );
    eprintln!(
        "{}: SIGKILL with {} spooled ({} segments on disk), restarted: {} replayed, {} fresh, \
         {} arrivals ({} duplicates) in {:?}",
        R::NAME,
        records,
        on_disk,
        s.spool_replayed,
        fresh,
        tally.total(),
        tally.duplicates(),
        t0.elapsed()
    );
    s
}

// ---- scenario: bounded shutdown against a peer that never answers ---------------------------------

/// With the receiver reached through a blackhole proxy (accepts, never answers) and a 2 s send
/// timeout, `n` records are queued and the guard shut down with a 1 s timeout while a send
/// hangs: shutdown returns in time; every record is then counted, undelivered because of the
/// shutdown, once the hung send has timed out (see `shutdown_counts_before_returning` for
/// why not at once).
pub fn shutdown_against_blackhole<R: Rig>(n: u64) {
    let proxy = Proxy::start(local(free_port()));
    proxy.set_mode(ProxyMode::Blackhole);
    let (layer, guard) = R::build(
        proxy.port(),
        Box::new(|p| p.with_send_timeout(Duration::from_secs(2))),
    );
    let handle = guard.handle();
    let d = dispatch(layer);
    emit(&d, 0..n);
    // A send is under way (and hangs) before the shutdown starts.
    assert!(wait_until(WAIT, || proxy.accepted() >= 1));
    let (_, took) = shutdown_within(guard, Duration::from_secs(1));
    assert!(
        wait_until(WAIT, || handle.stats().undelivered_shutdown == n),
        "{}: {:#?}",
        R::NAME,
        handle.stats()
    );
    let s = handle.stats();
    assert_accounted(&s, n);
    assert_eq!(
        (s.delivered, s.undelivered_shutdown),
        (0, n),
        "{}: {s:#?}",
        R::NAME
    );
    eprintln!("{}: shutdown against a hung peer took {took:?}", R::NAME);
}

/// The core's promise, checked when shutdown returns: records still unsent at the shutdown
/// deadline are counted undelivered (and handed to the undelivered path) by then, even when a
/// send is hanging (a 30 s send timeout here).
pub fn shutdown_counts_before_returning<R: Rig>(n: u64) {
    let proxy = Proxy::start(local(free_port()));
    proxy.set_mode(ProxyMode::Blackhole);
    let (layer, guard) = R::build(
        proxy.port(),
        Box::new(|p| p.with_send_timeout(Duration::from_secs(30))),
    );
    let d = dispatch(layer);
    emit(&d, 0..n);
    assert!(wait_until(WAIT, || guard.stats().requests == 0
        && proxy.accepted() >= 1));
    let (s, _) = shutdown_within(guard, Duration::from_secs(1));
    assert_eq!(
        (s.delivered, s.undelivered_shutdown, s.in_flight()),
        (0, n, 0),
        "{}: when shutdown returned: {s:#?}",
        R::NAME
    );
}

/// Sends `n` records through a proxy that holds every connection unanswered until the send
/// timeout (300 ms) has expired twice, then forwards again: the timeouts are retried and
/// everything is delivered.
pub fn timeouts_then_recovery<R: Rig>(n: u64) {
    let rig = R::start(0);
    let proxy = Proxy::start(local(rig.port()));
    proxy.set_mode(ProxyMode::Blackhole);
    let (layer, guard) = R::build(
        proxy.port(),
        Box::new(|p| p.with_send_timeout(Duration::from_millis(300))),
    );
    let d = dispatch(layer);
    emit(&d, 0..n);
    assert!(
        wait_until(WAIT, || guard.stats().requests >= 2),
        "{:#?}",
        guard.stats()
    );
    let last = guard.stats().last_error;
    assert!(last.is_some(), "the timeout is the last error");
    proxy.set_mode(ProxyMode::Forward);
    proxy.cut();
    guard
        .flush(WAIT)
        .unwrap_or_else(|e| panic!("{}: {e}", R::NAME));
    let s = guard.stats();
    assert_accounted(&s, n);
    assert_eq!((s.delivered, s.undelivered()), (n, 0), "{s:#?}");
    assert!(s.retries >= 2, "{s:#?}");
    wait_all(&rig, 0..n);
    shutdown_within(guard, Duration::from_secs(5));
}

/// The next 3 connections are reset after `cut_at` bytes of the request, in the middle of a
/// batch of `n` records: the batch is retried on a new connection and delivered whole.
pub fn reset_mid_batch<R: Rig>(n: u64, cut_at: u64) -> (Stats, Tally) {
    let rig = R::start(0);
    let proxy = Proxy::start(local(rig.port()));
    proxy.cut_next_after(cut_at, 3);
    let (layer, guard) = R::build(
        proxy.port(),
        Box::new(move |p| {
            p.with_max_batch_records(n as usize)
                .with_linger(Duration::from_secs(60))
        }),
    );
    let d = dispatch(layer);
    emit(&d, 0..n);
    guard
        .flush(WAIT)
        .unwrap_or_else(|e| panic!("{}: {e}", R::NAME));
    let s = guard.stats();
    assert_eq!(proxy.mid_cuts(), 3, "three requests were cut: {s:#?}");
    assert_accounted(&s, n);
    assert_eq!((s.delivered, s.undelivered()), (n, 0), "{s:#?}");
    assert!(s.retries >= 1, "{s:#?}");
    let tally = wait_all(&rig, 0..n);
    shutdown_within(guard, Duration::from_secs(5));
    (s, tally)
}
