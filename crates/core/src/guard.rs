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
}

impl Shared {
    /// The caller's path: queue the record, nudge the worker if a batch is ready.
    #[inline]
    pub(crate) fn push(&self, rec: Box<Record>) {
        let urgent = self.flush_level.is_some_and(|fl| rec.level <= fl);
        if let Some(state) = self.queue.push(rec)
            && (urgent
                || state >> QUEUE_BYTES_BITS >= self.batch_records
                || state & QUEUE_BYTES_MASK >= self.batch_bytes)
        {
            self.nudge.wake();
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
                deadline: Instant::now() + timeout,
                reply: Some(tx),
                shutdown,
            })
            .map_err(|_| FlushError::WorkerGone)?;
        self.interrupt.notify_one();
        Ok(rx)
    }

    fn wait(
        &self,
        rx: oneshot::Receiver<Result<FlushReport, FlushError>>,
        timeout: Duration,
    ) -> Result<FlushReport, FlushError> {
        // The worker answers by the deadline; the grace covers a worker stuck in a sink that
        // ignores cancellation.
        let started = Instant::now();
        match rx.recv_timeout(timeout + Duration::from_millis(500)) {
            Ok(r) => r,
            Err(oneshot::RecvTimeoutError::Timeout) => Err(FlushError::Timeout {
                waited: started.elapsed(),
                remaining: self.counters.snapshot().in_flight(),
            }),
            Err(oneshot::RecvTimeoutError::Disconnected) => Err(FlushError::WorkerGone),
        }
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

    /// Sends everything enqueued before this call and waits until it is delivered or given up,
    /// for at most `timeout`. Blocks the calling thread; from async code prefer
    /// [`flush_async`](Self::flush_async).
    ///
    /// # Errors
    /// [`FlushError::Timeout`] when records are still in flight at the deadline (they stay
    /// queued and keep being retried), [`FlushError::AlreadyShutdown`], or
    /// [`FlushError::WorkerGone`].
    pub fn flush(&self, timeout: Duration) -> Result<FlushReport, FlushError> {
        let rx = self.shared.request(timeout, false)?;
        self.shared.wait(rx, timeout)
    }

    /// The async twin of [`flush`](Self::flush); needs no particular runtime (the worker
    /// answers by the deadline).
    ///
    /// # Errors
    /// As [`flush`](Self::flush).
    pub async fn flush_async(&self, timeout: Duration) -> Result<FlushReport, FlushError> {
        let rx = self.shared.request(timeout, false)?;
        rx.await.map_err(|_| FlushError::WorkerGone)?
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
        let rx = self.handle.shared.request(timeout, true)?;
        rx.await.map_err(|_| FlushError::WorkerGone)?
    }

    fn shutdown_inner(&mut self, timeout: Duration) -> Result<FlushReport, FlushError> {
        let result = self
            .handle
            .shared
            .request(timeout, true)
            .and_then(|rx| self.handle.shared.wait(rx, timeout));
        if let Some(t) = self.thread.take()
            && !matches!(
                result,
                Err(FlushError::Timeout { .. }) | Err(FlushError::AlreadyShutdown)
            )
        {
            // The worker has answered and is exiting; joining takes moments. Never join after a
            // timeout: a sink that ignores cancellation must not hang the caller.
            let _ = t.join();
        }
        result
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.handle.shared.shut_down.load(Ordering::Acquire) {
            let _ = self.shutdown_inner(self.shutdown_timeout);
        }
    }
}
