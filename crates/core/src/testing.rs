//! Sinks for tests (yours and ours): [`MemorySink`] keeps what it receives, and can be scripted
//! to fail, stall, or answer partially, so retry, breaker and shutdown behaviour can be tested
//! without a network.

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
}

#[derive(Default)]
struct State {
    records: Vec<Record>,
    batches: Vec<usize>,
    script: VecDeque<Step>,
    sends: u64,
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
            Some(Step::Hang) => std::future::pending().await,
            None => Outcome::Delivered,
        };
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
