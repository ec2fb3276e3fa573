//! Sinks for tests (yours and ours): [`MemorySink`] keeps what it receives, and can be scripted
//! to fail, stall, answer slowly or partially, or panic, so retry, breaker and shutdown
//! behaviour can be tested without a network.
//!
//! Besides what it delivered, a [`Received`] tells how many sends were **cancelled**: started
//! (polled at least once) and then dropped by the worker before they answered
//! ([`Received::cancelled_sends`]). The worker's send timeout cancels a send on purpose (a
//! [`Step::Hang`], or a [`Step::Delay`] longer than the timeout); anything else that cancels a
//! send that would have answered in time (a flush, say) loses the answer of a request the
//! backend may already have acted on.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Record;
use crate::sink::{Batch, Outcome, SendContext, Sink};

/// What a scripted [`MemorySink`] does on one send.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Step {
    /// Answer with this outcome (records are stored only for `Delivered`, and the delivered
    /// part of `Partial`).
    Answer(Outcome),
    /// Wait this long, then deliver.
    Delay(Duration),
    /// Never answer (the worker's timeout cancels the send).
    Hang,
    /// Wait this long, then answer with this outcome (a slow failure, a slow partial answer).
    DelayThen(Duration, Outcome),
    /// Decide each record's fate at send time, cycling this pattern over the batch (record `i`
    /// gets `pattern[i % pattern.len()]`), so a script need not know batch sizes in advance.
    /// Answers [`Outcome::Delivered`] when every fate is [`Fate::Deliver`], else
    /// [`Outcome::Partial`]. An empty pattern delivers everything.
    Split(Vec<Fate>),
    /// Panic inside `send`, as a buggy third-party sink might. Counted in
    /// [`Received::panics`], not in [`Received::cancelled_sends`].
    Panic,
}

/// One record's fate in a [`Step::Split`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fate {
    /// Delivered (stored).
    Deliver,
    /// Listed in `Outcome::Partial::retry`.
    Retry,
    /// Listed in `Outcome::Partial::rejected`.
    Reject,
}

#[derive(Default)]
struct State {
    records: Vec<Record>,
    batches: Vec<usize>,
    script: VecDeque<Step>,
    sends: u64,
    cancelled: u64,
    panics: u64,
}

/// Lives inside one `send` future: counts the send as cancelled if the future is dropped
/// before it answers.
struct InProgress {
    state: Arc<Mutex<State>>,
    answered: bool,
}

impl Drop for InProgress {
    fn drop(&mut self) {
        if !self.answered
            && let Ok(mut s) = self.state.lock()
        {
            s.cancelled += 1;
        }
    }
}

/// Reads what a [`MemorySink`] received; cheap to clone.
#[derive(Clone, Default)]
pub struct Received {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("records", &self.len())
            .finish()
    }
}

impl Received {
    /// Copies of the delivered records, in delivery order.
    pub fn records(&self) -> Vec<Record> {
        self.state
            .lock()
            .map(|s| s.records.clone())
            .unwrap_or_default()
    }
    /// Number of delivered records.
    pub fn len(&self) -> usize {
        self.state.lock().map(|s| s.records.len()).unwrap_or(0)
    }
    /// Whether nothing was delivered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Sizes of the delivered batches, in order.
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.state
            .lock()
            .map(|s| s.batches.clone())
            .unwrap_or_default()
    }
    /// Number of `send` calls (attempts) so far.
    pub fn sends(&self) -> u64 {
        self.state.lock().map(|s| s.sends).unwrap_or(0)
    }
    /// Number of sends that started (were polled) and whose future was then dropped before it
    /// answered: cancelled by the worker's send timeout, a flush or shutdown deadline, or
    /// anything else. A [`Step::Panic`] is not counted here (see [`panics`](Self::panics)).
    pub fn cancelled_sends(&self) -> u64 {
        self.state.lock().map(|s| s.cancelled).unwrap_or(0)
    }
    /// Number of sends that panicked ([`Step::Panic`]).
    pub fn panics(&self) -> u64 {
        self.state.lock().map(|s| s.panics).unwrap_or(0)
    }
    /// Appends steps to the script (consumed one per send; afterwards every send delivers).
    pub fn script(&self, steps: impl IntoIterator<Item = Step>) {
        if let Ok(mut s) = self.state.lock() {
            s.script.extend(steps);
        }
    }
    /// Waits until at least `n` records were delivered or `timeout` passed; returns whether
    /// they were.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.len() >= n {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// An in-memory sink. See the [module docs](self).
#[derive(Debug)]
pub struct MemorySink {
    received: Received,
}

impl MemorySink {
    /// A sink and the reader of what it receives.
    pub fn new() -> (MemorySink, Received) {
        let received = Received::default();
        (
            MemorySink {
                received: received.clone(),
            },
            received,
        )
    }

    /// A sink that plays `steps` first (one per send), then delivers.
    pub fn scripted(steps: impl IntoIterator<Item = Step>) -> (MemorySink, Received) {
        let (s, r) = Self::new();
        r.script(steps);
        (s, r)
    }
}

impl Sink for MemorySink {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> Outcome {
        let mut progress = InProgress {
            state: self.received.state.clone(),
            answered: false,
        };
        let step = match self.received.state.lock() {
            Ok(mut s) => {
                s.sends += 1;
                s.script.pop_front()
            }
            Err(_) => None,
        };
        let outcome = match step {
            Some(Step::Answer(o)) => o,
            Some(Step::Delay(d)) => {
                tokio::time::sleep(d).await;
                Outcome::Delivered
            }
            Some(Step::DelayThen(d, o)) => {
                tokio::time::sleep(d).await;
                o
            }
            Some(Step::Hang) => std::future::pending().await,
            Some(Step::Split(pattern)) => split(&pattern, batch.len()),
            Some(Step::Panic) => {
                progress.answered = true;
                if let Ok(mut s) = self.received.state.lock() {
                    s.panics += 1;
                }
                panic!("MemorySink: scripted panic");
            }
            None => Outcome::Delivered,
        };
        progress.answered = true;
        let keep: Vec<usize> = match &outcome {
            Outcome::Delivered => (0..batch.len()).collect(),
            Outcome::Partial {
                retry, rejected, ..
            } => (0..batch.len())
                .filter(|i| !retry.contains(i) && !rejected.iter().any(|(j, _)| j == i))
                .collect(),
            _ => Vec::new(),
        };
        if !keep.is_empty()
            && let Ok(mut s) = self.received.state.lock()
        {
            s.batches.push(keep.len());
            for i in keep {
                s.records.push((*batch.records()[i]).clone());
            }
        }
        cx.record_bytes_sent(batch.len() as u64);
        outcome
    }
}

fn split(pattern: &[Fate], n: usize) -> Outcome {
    if pattern.is_empty() {
        return Outcome::Delivered;
    }
    let mut retry = Vec::new();
    let mut rejected = Vec::new();
    for i in 0..n {
        match pattern[i % pattern.len()] {
            Fate::Deliver => {}
            Fate::Retry => retry.push(i),
            Fate::Reject => rejected.push((i, "rejected by script".to_string())),
        }
    }
    if retry.is_empty() && rejected.is_empty() {
        Outcome::Delivered
    } else {
        Outcome::Partial {
            reason: if retry.is_empty() {
                String::new()
            } else {
                "retry by script".to_string()
            },
            retry,
            rejected,
            after: None,
        }
    }
}

/// A sink that delivers instantly and keeps nothing: for benchmarks of the caller's path.
#[derive(Debug, Default)]
pub struct NullSink;

impl Sink for NullSink {
    fn name(&self) -> &'static str {
        "null"
    }

    async fn send(&mut self, _batch: &Batch, _cx: &mut SendContext) -> Outcome {
        Outcome::Delivered
    }
}
