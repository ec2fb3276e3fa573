//! One process-wide timer thread for the async `flush_async`/`shutdown_async` timeouts.
//!
//! They must return by their timeout whatever runtime the caller uses (tokio, async-std, a
//! bare executor) and whatever the worker is doing, so the timeout cannot be the worker's job
//! or a runtime's timer. The thread (`logship-timer`, started on first use, suppressed like the
//! workers) sleeps until the earliest deadline and wakes the futures due. Entries of futures
//! dropped before their deadline are pruned once they are many, so memory stays bounded by the
//! number of calls waiting now.

use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

struct Entry {
    at: Instant,
    waker: Waker,
    done: Arc<AtomicBool>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Earliest first in a max-heap.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.cmp(&self.at)
    }
}

struct Timer {
    heap: Mutex<BinaryHeap<Entry>>,
    cv: Condvar,
}

/// Entries past which dropped ones are pruned.
const PRUNE_AT: usize = 1024;

fn timer() -> Option<&'static Timer> {
    static TIMER: OnceLock<Option<&'static Timer>> = OnceLock::new();
    *TIMER.get_or_init(|| {
        let t: &'static Timer = Box::leak(Box::new(Timer {
            heap: Mutex::new(BinaryHeap::new()),
            cv: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("logship-timer".into())
            .spawn(move || {
                crate::capture::suppress::suppress_current_thread();
                run(t);
            })
            .ok()
            .map(|_| t)
    })
}

fn run(t: &'static Timer) {
    let Ok(mut heap) = t.heap.lock() else { return };
    loop {
        let now = Instant::now();
        while heap.peek().is_some_and(|e| e.at <= now) {
            if let Some(e) = heap.pop() {
                e.waker.wake();
            }
        }
        heap = match heap.peek().map(|e| e.at) {
            Some(at) => match t.cv.wait_timeout(heap, at.saturating_duration_since(now)) {
                Ok((g, _)) => g,
                Err(_) => return,
            },
            None => match t.cv.wait(heap) {
                Ok(g) => g,
                Err(_) => return,
            },
        };
    }
}

/// A future that is ready at `at`.
pub(crate) struct Deadline {
    at: Instant,
    done: Arc<AtomicBool>,
    /// The waker registered with the timer thread, if any.
    registered: Option<Waker>,
}

impl Deadline {
    pub(crate) fn new(at: Instant) -> Self {
        Self {
            at,
            done: Arc::new(AtomicBool::new(false)),
            registered: None,
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
    }
}

impl Future for Deadline {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        // Register once per waker (a new waker registers again; the stale entry wakes a task
        // that polls and finds nothing to do).
        if self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        let Some(t) = timer() else {
            // No timer thread could be started: degrade to no timeout (the worker answers at
            // the deadline in every case but a sink blocking its thread).
            return Poll::Pending;
        };
        if let Ok(mut heap) = t.heap.lock() {
            if heap.len() >= PRUNE_AT {
                heap.retain(|e| !e.done.load(Ordering::Acquire));
            }
            heap.push(Entry {
                at: self.at,
                waker: cx.waker().clone(),
                done: self.done.clone(),
            });
            t.cv.notify_one();
        }
        self.registered = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Whichever comes first: `rx`'s value (`Some`), or the deadline (`None`).
pub(crate) async fn race<T>(
    rx: oneshot::Receiver<T>,
    deadline: Deadline,
) -> Option<Result<T, oneshot::RecvError>> {
    Race {
        rx: std::future::IntoFuture::into_future(rx),
        deadline,
    }
    .await
}

struct Race<T> {
    rx: oneshot::AsyncReceiver<T>,
    deadline: Deadline,
}

impl<T> Future for Race<T> {
    type Output = Option<Result<T, oneshot::RecvError>>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(r) = Pin::new(&mut self.rx).poll(cx) {
            return Poll::Ready(Some(r));
        }
        match Pin::new(&mut self.deadline).poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}
