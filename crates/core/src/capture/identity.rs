//! One identity (timestamp and event sequence number) per `tracing` event, shared by every
//! logship layer on the registry.
//!
//! tracing-core dispatches an event in two phases: `Subscriber::event_enabled` (which reaches
//! every layer's `Layer::event_enabled`, outermost first, through `Layered` and `Filtered`),
//! then `Subscriber::event` (every layer's `on_event`). A thread-local *current event* slot is
//! emptied in the first phase ([`begin_dispatch`]) and, in the second, filled by the first
//! logship layer that captures the event and reused by the others ([`of`]).
//!
//! The slot is keyed by the `&Event` address and its metadata, so a nested dispatch (another
//! event captured while one is in flight) cannot hand one event's identity to another: a
//! mismatch takes a fresh identity. It also remembers which layers took it: a layer that sees
//! the slot it already took is looking at a new event (a layer sees each event once), so even a
//! wrapper that does not forward `event_enabled` can never give two events one identity.
//!
//! The identity is `(timestamp, seq)`: `seq` counts this thread's events (from 1; 0 means "no
//! identity"), and with the record's [`ThreadInfo::id`](crate::ThreadInfo::id) (unique per
//! thread in the process) names the event uniquely. The worker derives the tracking id from
//! it with a keyed mix (`TrackingId::derived`), so each layer's worker computes the
//! same id independently. Costs on the caller: thread-local reads and writes, one clock read
//! per event (not per layer); no atomic read-modify-write, no lock, no allocation.
//!
//! # One capture per event
//!
//! `begin_dispatch` also counts the logship layers whose `event_enabled` saw the dispatch. When
//! more than one will capture it, the first keeps a copy of its record in a per-thread slot
//! ([`share`]) and the others take it from there ([`reuse`]) instead of visiting the event's
//! fields again (no second `Debug` formatting of the message, no second span lookup): a copy of
//! the record's inline parts, and the last layer takes the kept record itself. The count is a
//! hint: a layer that finds no copy for its event (a per-layer filter that skipped the first
//! layer, a wrapper that does not forward `event_enabled`, a nested dispatch in between)
//! captures the event itself, so the records are the same either way.

use std::cell::{Cell, RefCell};

use tracing_core::{Event, Metadata};

use crate::{Record, Timestamp};

#[derive(Clone, Copy)]
struct Current {
    /// Address of the `Event` being dispatched (0: none).
    event: usize,
    /// Address of its metadata.
    meta: usize,
    /// Which layers (bit `layer id % 64`) took this identity.
    taken: u64,
    timestamp: Timestamp,
    /// The event's number (0: not taken yet).
    seq: u64,
    /// How many logship layers' `event_enabled` saw this dispatch (0: unknown, e.g. behind a
    /// wrapper that does not forward `event_enabled`). A hint only: it decides whether the
    /// first layer keeps a copy of its capture for the others.
    expected: u32,
}

impl Current {
    const NONE: Self = Self {
        event: 0,
        meta: 0,
        taken: 0,
        timestamp: Timestamp::from_nanos(0),
        seq: 0,
        expected: 0,
    };
}

struct ThreadState {
    current: Cell<Current>,
    /// The next event sequence number on this thread (starts at 1).
    next_seq: Cell<u64>,
}

thread_local! {
    static STATE: ThreadState = const {
        ThreadState {
            current: Cell::new(Current::NONE),
            next_seq: Cell::new(1),
        }
    };
    /// The first logship layer's capture of the event being dispatched, for the other logship
    /// layers of the dispatch to copy instead of visiting the event again (see [`share`]).
    /// With the id of the span the first layer saw the event in (a per-layer filter can make
    /// another layer see a different one).
    static CAPTURED: RefCell<(Option<Box<Record>>, Option<u64>)> =
        const { RefCell::new((None, None)) };
}

fn addresses(event: &Event<'_>) -> (usize, usize) {
    (
        std::ptr::from_ref(event).addr(),
        std::ptr::from_ref::<Metadata<'_>>(event.metadata()).addr(),
    )
}

/// Called from `Layer::event_enabled`: `event` is being dispatched on this thread. The first
/// logship layer to see it starts a fresh slot; each one counts itself in.
#[inline]
pub(crate) fn begin_dispatch(event: &Event<'_>) {
    let (key, meta) = addresses(event);
    let _ = STATE.try_with(|s| {
        let c = s.current.get();
        if c.event == key && c.meta == meta && c.taken == 0 && c.expected > 0 {
            s.current.set(Current {
                expected: c.expected.saturating_add(1),
                ..c
            });
        } else {
            s.current.set(Current {
                event: key,
                meta,
                expected: 1,
                ..Current::NONE
            });
        }
    });
}

/// An event's identity as one layer sees it; see [`of`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Identity {
    pub(crate) timestamp: Timestamp,
    pub(crate) seq: u64,
    /// This layer is the first to take it (it captures the event).
    pub(crate) first: bool,
    /// Logship layers expected in this dispatch (0: unknown).
    pub(crate) expected: u32,
    /// Logship layers that took it so far, this one included.
    pub(crate) taken: u32,
}

/// The identity of `event` for the layer numbered `layer`: the same timestamp and `seq` for
/// every logship layer that captures this dispatch of `event`.
#[inline]
pub(crate) fn of(event: &Event<'_>, layer: u64) -> Identity {
    let (key, meta) = addresses(event);
    let bit = 1_u64 << (layer % 64);
    STATE
        .try_with(|s| {
            let mut c = s.current.get();
            if c.event != key || c.meta != meta || c.taken & bit != 0 {
                c = Current {
                    event: key,
                    meta,
                    ..Current::NONE
                };
            }
            let first = c.seq == 0;
            if first {
                let seq = s.next_seq.get();
                s.next_seq.set(seq.wrapping_add(1).max(1));
                c.seq = seq;
                c.timestamp = Timestamp::now();
            }
            c.taken |= bit;
            s.current.set(c);
            Identity {
                timestamp: c.timestamp,
                seq: c.seq,
                first,
                expected: c.expected,
                taken: c.taken.count_ones(),
            }
        })
        .unwrap_or_else(|_| Identity {
            timestamp: Timestamp::now(),
            seq: 0,
            first: true,
            expected: 0,
            taken: 1,
        })
}

/// The first layer of a dispatch that more logship layers will capture: keeps a copy of its
/// capture `rec` (of event number `rec.event_seq`, inside span `span`, as that layer saw it)
/// for them. The copy goes into a record kept per thread (reused from event to event: no
/// allocation once its text fits).
pub(crate) fn share(rec: &Record, span: Option<u64>) {
    let _ = CAPTURED.try_with(|t| {
        if let Ok(mut t) = t.try_borrow_mut() {
            match &mut t.0 {
                Some(kept) => (**kept).clone_from(rec),
                None => t.0 = Some(Box::new(rec.clone())),
            }
            t.1 = span;
        }
    });
}

/// A later layer of the dispatch: makes `rec` the first layer's capture of event `id.seq`, if
/// it was kept ([`share`]), and returns the id of the span the first layer saw the event in
/// (the caller replaces `rec.span` if it sees another one); `None` (and `rec` untouched)
/// otherwise, and the layer captures the event itself. The last expected layer takes the kept
/// record itself (the boxes are swapped: `rec`'s blank record is kept for the next event), the
/// others copy it.
pub(crate) fn reuse(id: &Identity, rec: &mut Box<Record>) -> Option<Option<u64>> {
    if id.first || id.seq == 0 {
        return None;
    }
    CAPTURED
        .try_with(|t| {
            let mut t = t.try_borrow_mut().ok()?;
            let span = t.1;
            match &mut t.0 {
                Some(kept) if kept.event_seq == id.seq => {
                    if id.taken >= id.expected {
                        std::mem::swap(kept, rec);
                        kept.event_seq = 0; // spent
                    } else {
                        (**rec).clone_from(kept);
                    }
                    Some(span)
                }
                _ => None,
            }
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tracing_core::span::{Attributes, Id, Record};
    use tracing_core::{Event, Metadata, Subscriber};

    use super::{begin_dispatch, of};

    /// Calls [`of`] as layers would, recording what each call returned; `reset` says whether
    /// it sees the `event_enabled` phase.
    struct Probe {
        reset: bool,
        calls: &'static [u64],
        seen: Mutex<Vec<(u64, u64)>>,
    }

    impl Subscriber for Probe {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event_enabled(&self, e: &Event<'_>) -> bool {
            if self.reset {
                begin_dispatch(e);
            }
            true
        }
        fn event(&self, e: &Event<'_>) {
            let mut seen = self.seen.lock().unwrap();
            for &layer in self.calls {
                seen.push((layer, of(e, layer).seq));
            }
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    fn run(reset: bool, calls: &'static [u64]) -> Vec<(u64, u64)> {
        let probe = std::sync::Arc::new(Probe {
            reset,
            calls,
            seen: Mutex::new(Vec::new()),
        });
        let dispatch = tracing_core::Dispatch::from(probe.clone());
        tracing_core::dispatcher::with_default(&dispatch, || {
            for _ in 0..3 {
                tracing::info!("same callsite, likely the same address");
            }
        });
        probe.seen.lock().unwrap().clone()
    }

    #[test]
    fn layers_share_one_dispatch_and_events_never_share() {
        for reset in [true, false] {
            // Without the reset (a wrapper that does not forward `event_enabled`), a layer
            // that sees the slot it already took knows a new event has started.
            let seen = run(reset, &[1, 2, 3]);
            assert_eq!(seen.len(), 9);
            for ev in seen.chunks(3) {
                assert!(ev.iter().all(|&(_, s)| s == ev[0].1 && s != 0), "{seen:?}");
            }
            let mut seqs: Vec<u64> = seen.chunks(3).map(|ev| ev[0].1).collect();
            seqs.dedup();
            assert_eq!(seqs.len(), 3, "reset {reset}: {seen:?}");
        }
    }

    #[test]
    fn a_layer_asking_twice_gets_a_new_identity() {
        // Layer ids 1 and 65 share a bit: a false "already taken" only ever splits, never merges.
        let seen = run(true, &[1, 1, 65]);
        assert_ne!(seen[0].1, seen[1].1);
        assert_ne!(seen[1].1, seen[2].1);
    }
}
