//! [`Guard`] and [`Handle`]: flushing, shutting down, and reading the stats.
//!
//! `build()` returns a `#[must_use]` [`Guard`]. Keep it alive as long as the application
//! logs (bind it to a named variable in `main`: `let _guard = …`; `let _ = …` drops it at once).
//! When it is dropped it shuts the pipeline down: it stops accepting records, sends what is
//! queued, and waits at most the shutdown timeout (default 5 s), so a dead backend can never
//! hang the exit. Records still unsent then go to the undelivered path and are counted.
//!
//! A [`Handle`] is a cheap clone for flushing and reading stats from anywhere. Both the blocking
//! [`Handle::flush`] and the async [`Handle::flush_async`] are safe on every runtime flavour
//! (including a `current_thread` runtime), because the work happens on the layer's own
//! thread; the blocking one does block the calling thread, for at most its timeout.
//!
//! **Timeouts are the caller's.** Every `flush`/`shutdown` (blocking or async) returns by its
//! timeout, measured on the caller's side, whatever the worker is doing (even inside a sink
//! that blocks its thread), and every [`FlushReport::waited`] and [`FlushError::Timeout`]
//! states the caller's own measured wait. A flush never shortens or cancels a send in progress:
//! it waits for it, as OpenTelemetry's `ForceFlush` waits for the export; only a shutdown
//! brings the send's deadline forward. A shutdown stops sending at its timeout and then takes at
//! most 250 ms more to count (or spool) what it abandons, so its counts are final when it
//! returns. A timeout above about 100 years means no limit.
//!
//! **Several pipelines.** Dropping guards one after another costs up to one shutdown timeout
//! each. [`shutdown_all`] shuts several down in parallel: one timeout for all of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use tracing_core::Level;

use crate::Record;
use crate::error::FlushError;
use crate::queue::Queue;
use crate::stats::{Counters, QUEUE_BYTES_BITS, QUEUE_BYTES_MASK, Stats};
use crate::worker::{Control, FlushReport, Nudge};

/// How long a shutdown waits past its timeout for the worker to count what it abandons (it
/// stops sending at the timeout, then spools or counts the rest and answers).
const SHUTDOWN_GRACE: Duration = Duration::from_millis(250);

pub(crate) struct Shared {
    pub(crate) queue: Arc<Queue>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) ctl: Sender<Control>,
    /// Wakes a send in progress so it sees a flush or shutdown deadline.
    pub(crate) interrupt: Arc<tokio::sync::Notify>,
    pub(crate) nudge: Arc<Nudge>,
    pub(crate) batch_records: u64,
    pub(crate) batch_bytes: u64,
    pub(crate) flush_level: Option<Level>,
    pub(crate) shut_down: AtomicBool,
    /// The sink's name, for the stderr line about records emitted after shutdown.
    pub(crate) name: &'static str,
    /// Whether that line was printed.
    pub(crate) warned_closed: AtomicBool,
}

impl Shared {
    /// The caller's path: queue the record, nudge the worker if a batch is ready.
    ///
    /// A batch is ready when the records queued **plus those the worker already took for its
    /// next batch** reach the batch's record or byte bound. The worker's records left the
    /// queue word when it took them, so the word alone would miss a batch the worker started
    /// (it would wait for the linger timer); the worker publishes what it holds in
    /// [`Queue::staged`], and this adds it.
    ///
    /// Why a second word rather than leaving taken records in the queue word until their batch
    /// is sent (which would cost the caller nothing at all; this costs one `Relaxed` load of a
    /// line the worker writes a few times per batch): held records counted in the queue word
    /// would take room from the queue while the worker holds a partial batch, so a burst would
    /// be dropped where it is queued now (a queue may be as small as one batch), and
    /// `Stats::queue_len`/`queue_bytes`, the drop-oldest eviction and the final drain would all
    /// have to count records that are no longer in the queue.
    #[inline]
    pub(crate) fn push(&self, rec: Box<Record>) {
        let urgent = self.flush_level.is_some_and(|fl| rec.level <= fl);
        match self.queue.push(rec) {
            Some(state) => {
                if urgent || self.batch_ready(state, self.queue.staged()) {
                    self.nudge.wake();
                }
            }
            None => self.dropped(),
        }
    }

    /// Caller side, before capturing a record of `level`: `true` when the queue is certainly
    /// full for it (the drop is counted; see [`Queue::refuse_before_capture`]).
    #[inline]
    pub(crate) fn refuse_before_capture(&self, level: Level) -> bool {
        if self.queue.refuse_before_capture(level) {
            self.dropped();
            return true;
        }
        false
    }

    /// Whether `queued` (the queue word after a push, without the closed bit) and `staged`
    /// (what the worker holds, [`Queue::staged`]) make a full batch, by records or by bytes.
    #[inline]
    fn batch_ready(&self, queued: u64, staged: u64) -> bool {
        (queued >> QUEUE_BYTES_BITS) + (staged >> QUEUE_BYTES_BITS) >= self.batch_records
            || (queued & QUEUE_BYTES_MASK) + (staged & QUEUE_BYTES_MASK) >= self.batch_bytes
    }

    /// A record was dropped (the cold path): the first record emitted after shutdown says so
    /// on stderr, once — the usual cause is a guard dropped at once (`let (layer, _) = …`).
    #[cold]
    fn dropped(&self) {
        if self.queue.is_closed()
            && !self.warned_closed.load(Ordering::Relaxed)
            && !self.warned_closed.swap(true, Ordering::AcqRel)
        {
            eprintln!(
                "logship: a record was emitted after the `{}` pipeline shut down and is dropped \
                 (counted in Stats::dropped_closed); was its Guard dropped early? Keep it: \
                 `let _guard = …`, not `let _ = …`",
                self.name
            );
        }
    }

    fn request(
        &self,
        timeout: Duration,
        shutdown: bool,
    ) -> Result<oneshot::Receiver<Result<FlushReport, FlushError>>, FlushError> {
        if self.shut_down.load(Ordering::Acquire) {
            return Err(FlushError::AlreadyShutdown);
        }
        if shutdown {
            self.shut_down.store(true, Ordering::Release);
            self.queue.close();
        }
        let (tx, rx) = oneshot::channel();
        self.ctl
            .send(Control::Flush {
                deadline: crate::time::after(Instant::now(), timeout),
                reply: Some(tx),
                shutdown,
            })
            .map_err(|_| self.gone())?;
        self.interrupt.notify_one();
        Ok(rx)
    }

    /// The worker's answer with the caller's own measured wait, or the caller's timeout.
    fn settle(
        &self,
        answer: Option<Result<Result<FlushReport, FlushError>, ()>>,
        started: Instant,
    ) -> Result<FlushReport, FlushError> {
        let waited = started.elapsed();
        match answer {
            Some(Ok(Ok(mut report))) => {
                report.waited = waited;
                Ok(report)
            }
            Some(Ok(Err(FlushError::Timeout { remaining, .. }))) => {
                Err(FlushError::Timeout { waited, remaining })
            }
            Some(Ok(Err(e))) => Err(e),
            // The worker dropped the request: it is gone (it answers every request otherwise).
            Some(Err(())) => Err(self.gone()),
            None => Err(FlushError::Timeout {
                waited,
                remaining: self.counters.snapshot().in_flight(),
            }),
        }
    }

    fn gone(&self) -> FlushError {
        let panic = self
            .counters
            .worker_panic
            .lock()
            .ok()
            .and_then(|g| g.clone());
        match panic {
            Some(reason) => FlushError::WorkerPanicked { reason },
            None => FlushError::WorkerGone,
        }
    }

    /// Blocks until the worker answers or `timeout` (from `started`) passes.
    fn wait(
        &self,
        rx: oneshot::Receiver<Result<FlushReport, FlushError>>,
        timeout: Duration,
        started: Instant,
    ) -> Result<FlushReport, FlushError> {
        let answer = match rx.recv_deadline(crate::time::after(started, timeout)) {
            Ok(r) => Some(Ok(r)),
            Err(oneshot::RecvTimeoutError::Timeout) => None,
            Err(oneshot::RecvTimeoutError::Disconnected) => Some(Err(())),
        };
        self.settle(answer, started)
    }

    /// The async twin of [`wait`](Self::wait): the timeout runs on logship's timer thread, so
    /// no particular runtime is needed and a worker stuck in a blocking sink cannot delay it.
    async fn wait_async(
        &self,
        rx: oneshot::Receiver<Result<FlushReport, FlushError>>,
        timeout: Duration,
        started: Instant,
    ) -> Result<FlushReport, FlushError> {
        let deadline = crate::timer::Deadline::new(crate::time::after(started, timeout));
        let answer = crate::timer::race(rx, deadline)
            .await
            .map(|r| r.map_err(|_| ()));
        self.settle(answer, started)
    }
}

/// A cheap, cloneable handle to a pipeline: flush it and read its stats from anywhere.
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Handle {
    /// The layer's counters now (see [`Stats`]).
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Sends everything enqueued before this call and waits until it is delivered or resolved
    /// otherwise (undelivered, spooled, evicted), for at most `timeout` measured on this thread.
    /// A send in progress is waited for, never cancelled. Blocks the calling thread; from async
    /// code prefer [`flush_async`](Self::flush_async).
    ///
    /// # Errors
    /// [`FlushError::Timeout`] when records are still in flight at the deadline (they stay
    /// queued and keep being retried; `waited` is this call's own wait),
    /// [`FlushError::AlreadyShutdown`], [`FlushError::WorkerGone`], or
    /// [`FlushError::WorkerPanicked`].
    pub fn flush(&self, timeout: Duration) -> Result<FlushReport, FlushError> {
        let started = Instant::now();
        let rx = self.shared.request(timeout, false)?;
        self.shared.wait(rx, timeout, started)
    }

    /// The async twin of [`flush`](Self::flush); needs no particular runtime, and returns by
    /// `timeout` even while the worker is stuck in a sink that blocks its thread.
    ///
    /// # Errors
    /// As [`flush`](Self::flush).
    pub async fn flush_async(&self, timeout: Duration) -> Result<FlushReport, FlushError> {
        let started = Instant::now();
        let rx = self.shared.request(timeout, false)?;
        self.shared.wait_async(rx, timeout, started).await
    }

    /// Queues a record built without `tracing` (e.g. with [`Record::span_timing`]), as if a
    /// layer had captured it. Same rules as the layer: never blocks (unless the overflow policy
    /// says so), counted when dropped.
    pub fn submit(&self, record: Record) {
        self.shared.push(Box::new(record));
    }
}

/// Flushes and stops the pipeline when dropped. See the [module docs](self).
#[must_use = "dropping the guard shuts the pipeline down at once; bind it: `let _guard = …`"]
pub struct Guard {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Guard {
    pub(crate) fn new(
        shared: Arc<Shared>,
        thread: JoinHandle<()>,
        shutdown_timeout: Duration,
    ) -> Self {
        Self {
            handle: Handle { shared },
            thread: Some(thread),
            shutdown_timeout,
        }
    }

    /// A cloneable [`Handle`].
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The layer's counters now.
    pub fn stats(&self) -> Stats {
        self.handle.stats()
    }

    /// See [`Handle::flush`].
    ///
    /// # Errors
    /// As [`Handle::flush`].
    pub fn flush(&self, timeout: Duration) -> Result<FlushReport, FlushError> {
        self.handle.flush(timeout)
    }

    /// See [`Handle::flush_async`].
    ///
    /// # Errors
    /// As [`Handle::flush`].
    pub async fn flush_async(&self, timeout: Duration) -> Result<FlushReport, FlushError> {
        self.handle.flush_async(timeout).await
    }

    /// Stops accepting records, sends what is queued, waits at most `timeout`, and stops the
    /// worker. Records not delivered by then go to the undelivered path.
    ///
    /// # Errors
    /// [`FlushError::Timeout`] when records were left undelivered,
    /// [`FlushError::AlreadyShutdown`], [`FlushError::WorkerGone`].
    pub fn shutdown(mut self, timeout: Duration) -> Result<FlushReport, FlushError> {
        self.shutdown_inner(timeout)
    }

    /// The async twin of [`shutdown`](Self::shutdown). It does not join the worker thread
    /// (the thread exits by itself right after answering).
    ///
    /// # Errors
    /// As [`shutdown`](Self::shutdown).
    pub async fn shutdown_async(mut self, timeout: Duration) -> Result<FlushReport, FlushError> {
        self.thread.take();
        let started = Instant::now();
        let rx = self.handle.shared.request(timeout, true)?;
        self.handle
            .shared
            .wait_async(rx, timeout.saturating_add(SHUTDOWN_GRACE), started)
            .await
    }

    fn shutdown_inner(&mut self, timeout: Duration) -> Result<FlushReport, FlushError> {
        let started = Instant::now();
        let result = self.handle.shared.request(timeout, true).and_then(|rx| {
            self.handle
                .shared
                .wait(rx, timeout.saturating_add(SHUTDOWN_GRACE), started)
        });
        self.join_after(&result);
        result
    }

    /// Joins the worker after it answered a shutdown (never after a timeout: a sink that
    /// ignores cancellation must not hang the caller).
    fn join_after(&mut self, result: &Result<FlushReport, FlushError>) {
        if let Some(t) = self.thread.take()
            && !matches!(
                result,
                Err(FlushError::Timeout { .. }) | Err(FlushError::AlreadyShutdown)
            )
        {
            // The worker has answered and is exiting; joining takes moments.
            let _ = t.join();
        }
    }
}

/// Shuts several pipelines down in parallel, waiting at most `timeout` for all of them
/// together (dropping guards one after another costs up to one shutdown timeout each: five
/// layers with dead backends would hold the exit 25 s with the default 5 s).
///
/// Every pipeline is asked to shut down first, then each answer is awaited until the common
/// deadline. Returns one result per guard, in the order given, each as
/// [`Guard::shutdown`] would return it.
///
/// ```
/// use std::time::Duration;
/// use logship_core::{PipelineBuilder, testing::MemorySink};
///
/// let (_l1, g1) = PipelineBuilder::new().build(MemorySink::new().0)?;
/// let (_l2, g2) = PipelineBuilder::new().build(MemorySink::new().0)?;
/// for r in logship_core::shutdown_all([g1, g2], Duration::from_secs(5)) {
///     r?;
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn shutdown_all(
    guards: impl IntoIterator<Item = Guard>,
    timeout: Duration,
) -> Vec<Result<FlushReport, FlushError>> {
    let started = Instant::now();
    let asked: Vec<_> = guards
        .into_iter()
        .map(|g| {
            let rx = g.handle.shared.request(timeout, true);
            (g, rx)
        })
        .collect();
    asked
        .into_iter()
        .map(|(mut g, rx)| {
            let result = rx.and_then(|rx| {
                g.handle
                    .shared
                    .wait(rx, timeout.saturating_add(SHUTDOWN_GRACE), started)
            });
            g.join_after(&result);
            result
        })
        .collect()
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.handle.shared.shut_down.load(Ordering::Acquire) {
            let _ = self.shutdown_inner(self.shutdown_timeout);
        }
    }
}
