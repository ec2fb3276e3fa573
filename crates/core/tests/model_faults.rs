//! Model-based test with faults (as Vector tests its buffers): random sequences of pushes at
//! random levels and sizes, flushes with random timeouts, and a sink scripted to succeed, fail,
//! reject, hang, answer slowly, answer partially or panic, over random queue sizes, overflow
//! policies, batch sizes, lingers, breakers, with and without a spool, ending with a shutdown
//! (sometimes with another thread still pushing).
//!
//! Checked against a trivial model, using only public API and documented behaviour:
//!
//! * **while running** (a monitor thread samples `stats()` all along, and the test checks after
//!   every step): the queue stays within both caps; counters never decrease; a flush that
//!   returns `Ok` leaves nothing in flight (nothing was pushed meanwhile); the worker never
//!   disappears;
//! * **no send cancelled by a flush**: when the only slow sink steps answer well within the send
//!   timeout (no hang, no stall), `Received::cancelled_sends()` is 0 before the shutdown;
//! * **after shutdown** (which returns, `Ok` or `Err(Timeout)`): the records the test emitted
//!   equal `Stats::emitted()`; the identity in `stats.rs` holds
//!   (`enqueued + spool_replayed == delivered + undelivered + dropped_oldest + spooled`) and
//!   nothing is in flight; nothing vanished from the spool; every record id reached the sink at
//!   most once, the sink and the undelivered callback never both have it, and no more ids are
//!   found in neither than were dropped after close or unreported (plus, with a spool, left on
//!   disk);
//! * **the ERROR reserve**: with `DropNewest` or `DropOldest`, when the test pushes no more
//!   ERROR records than the reserve holds, none of them is lost to the queue (dropped as full
//!   or evicted).
//!
//! `PROPTEST_CASES` sets the number of cases (default 32).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logship_core::spool::{FsyncPolicy, SpoolConfig};
use logship_core::testing::{Fate, MemorySink, Received, Step};
use logship_core::{
    BreakerConfig, Cause, FlushError, Level, Outcome, Overflow, PipelineBuilder, Record,
    RetryPolicy, Stats, Value,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// The worker's send timeout: `Hang` and `Stall` steps end by it.
const SEND_TIMEOUT: Duration = Duration::from_millis(200);
/// Longest `Delay` step: well within the send timeout, so a send answering this slowly must
/// never be cancelled.
const MAX_DELAY_MS: u64 = 40;
/// `Stall` steps wait this long: past the send timeout, which cancels them on purpose.
const STALL: Duration = Duration::from_millis(300);
/// Ids of the records pushed by the racing thread at shutdown start here.
const RACE_ID_BASE: i64 = 1_000_000;

// ----- the operations ----------------------------------------------------------------------

/// One scripted sink answer.
#[derive(Debug, Clone)]
enum S {
    Ok,
    Retry,
    Reject,
    Split(Vec<Fate>),
    /// Deliver after this many ms (< `MAX_DELAY_MS`).
    Delay(u64),
    /// Retryable failure after this many ms.
    SlowRetry(u64),
    /// Never answers (the send timeout cancels it).
    Hang,
    /// Answers after the send timeout (the timeout cancels it).
    Stall,
    Panic,
}

impl S {
    fn step(&self) -> Step {
        match self {
            S::Ok => Step::Answer(Outcome::Delivered),
            S::Retry => Step::Answer(Outcome::retry("scripted failure")),
            S::Reject => Step::Answer(Outcome::rejected("scripted rejection")),
            S::Split(p) => Step::Split(p.clone()),
            S::Delay(ms) => Step::Delay(Duration::from_millis(*ms)),
            S::SlowRetry(ms) => {
                Step::DelayThen(Duration::from_millis(*ms), Outcome::retry("slow failure"))
            }
            S::Hang => Step::Hang,
            S::Stall => Step::Delay(STALL),
            S::Panic => Step::Panic,
        }
    }
    /// Whether the worker's send timeout cancels this step on purpose.
    fn times_out(&self) -> bool {
        matches!(self, S::Hang | S::Stall)
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Push `n` records at `level` (0 = ERROR … 4 = TRACE) with `pad` bytes of message.
    Push { level: u8, n: u8, pad: u16 },
    /// `guard.flush(ms)`.
    Flush(u64),
    /// Append these answers to the sink's script.
    Script(Vec<S>),
    /// Let the worker run for this many ms.
    Sleep(u64),
}

#[derive(Debug, Clone, Copy)]
enum Policy {
    DropNewest,
    DropOldest,
    Block(u64),
}

#[derive(Debug, Clone)]
struct Config {
    queue_records: usize,
    /// Queue byte cap as a percentage of `queue_records` plain records' size (under 100: the
    /// byte cap binds first).
    bytes_pct: u64,
    batch: usize,
    linger_ms: u64,
    policy: Policy,
    /// Breaker threshold and first open duration (ms); `None`: disabled.
    breaker: Option<(u32, u64)>,
    spool: bool,
    /// Another thread pushes while the shutdown starts.
    race_shutdown: bool,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![3 => Just(Fate::Deliver), 2 => Just(Fate::Retry), 1 => Just(Fate::Reject)]
}

fn answer() -> impl Strategy<Value = S> {
    prop_oneof![
        4 => Just(S::Ok),
        3 => Just(S::Retry),
        1 => Just(S::Reject),
        2 => proptest::collection::vec(fate(), 1..5).prop_map(S::Split),
        3 => (1..MAX_DELAY_MS).prop_map(S::Delay),
        1 => (1..MAX_DELAY_MS).prop_map(S::SlowRetry),
        1 => Just(S::Hang),
        1 => Just(S::Stall),
        1 => Just(S::Panic),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..5, 1u8..60, prop_oneof![Just(0u16), 1u16..400])
            .prop_map(|(level, n, pad)| Op::Push { level, n, pad }),
        // ERROR records come in small groups, so the reserve test has something to check.
        2 => (1u8..3).prop_map(|n| Op::Push { level: 0, n, pad: 0 }),
        3 => (1u64..300).prop_map(Op::Flush),
        3 => proptest::collection::vec(answer(), 1..4).prop_map(Op::Script),
        1 => (0u64..30).prop_map(Op::Sleep),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        20usize..200,
        prop_oneof![Just(1000u64), 30u64..100],
        1usize..20,
        5u64..50,
        prop_oneof![
            2 => Just(Policy::DropNewest),
            2 => Just(Policy::DropOldest),
            1 => (1u64..5).prop_map(Policy::Block),
        ],
        prop_oneof![Just(None), (1u32..4, 5u64..30).prop_map(Some)],
        any::<bool>(),
        prop_oneof![3 => Just(false), 1 => Just(true)],
    )
        .prop_map(
            |(queue_records, bytes_pct, batch, linger_ms, policy, breaker, spool, race)| Config {
                queue_records,
                bytes_pct,
                batch,
                linger_ms,
                policy,
                breaker,
                spool,
                race_shutdown: race,
            },
        )
}

// ----- the records -------------------------------------------------------------------------

const LEVELS: [Level; 5] = [
    Level::ERROR,
    Level::WARN,
    Level::INFO,
    Level::DEBUG,
    Level::TRACE,
];

fn record(level: Level, id: i64, pad: u16) -> Record {
    let b = Record::event(level, "t").with_field("i", id);
    if pad == 0 {
        b.build()
    } else {
        b.with_message(&"x".repeat(usize::from(pad))).build()
    }
}

fn id_of(r: &Record) -> i64 {
    match r.field("i") {
        Some(Value::I64(i)) => i,
        other => panic!("record without id: {other:?}"),
    }
}

// ----- checks --------------------------------------------------------------------------------

/// The counters (all but the gauges), by name.
fn counters(s: &Stats) -> [(&'static str, u64); 21] {
    [
        ("enqueued", s.enqueued),
        ("dropped_queue_full", s.dropped_queue_full),
        ("dropped_oldest", s.dropped_oldest),
        ("dropped_block_timeout", s.dropped_block_timeout),
        ("dropped_closed", s.dropped_closed),
        ("dropped_unreported", s.dropped_unreported),
        ("delivered", s.delivered),
        ("duplicates", s.duplicates),
        ("undelivered_rejected", s.undelivered_rejected),
        (
            "undelivered_retries_exhausted",
            s.undelivered_retries_exhausted,
        ),
        ("undelivered_shutdown", s.undelivered_shutdown),
        ("retries", s.retries),
        ("requests", s.requests),
        ("batches_delivered", s.batches_delivered),
        ("bytes_sent", s.bytes_sent),
        ("callback_panics", s.callback_panics),
        ("spooled", s.spooled),
        ("spool_replayed", s.spool_replayed),
        ("spool_evicted", s.spool_evicted),
        ("spool_corrupt", s.spool_corrupt),
        ("spool_write_errors", s.spool_write_errors),
    ]
}

/// Checks one snapshot against the caps and the previous snapshot; describes the first breach.
fn breach(prev: &Stats, s: &Stats, max_records: u64, max_bytes: u64) -> Option<String> {
    if s.queue_len > max_records {
        return Some(format!("queue_len {} > cap {max_records}", s.queue_len));
    }
    if s.queue_bytes > max_bytes {
        return Some(format!("queue_bytes {} > cap {max_bytes}", s.queue_bytes));
    }
    for ((name, before), (_, now)) in counters(prev).iter().zip(counters(s).iter()) {
        if now < before {
            return Some(format!("counter {name} decreased: {before} -> {now}"));
        }
    }
    None
}

/// Samples the stats all along, from another thread, and keeps the first breach.
struct Monitor {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Option<String>>,
}

impl Monitor {
    fn start(handle: logship_core::Handle, max_records: u64, max_bytes: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut prev = handle.stats();
            while !s2.load(Ordering::Acquire) {
                let s = handle.stats();
                if let Some(b) = breach(&prev, &s, max_records, max_bytes) {
                    return Some(b);
                }
                prev = s;
                std::thread::sleep(Duration::from_micros(500));
            }
            None
        });
        Self { stop, thread }
    }
    fn finish(self) -> Option<String> {
        self.stop.store(true, Ordering::Release);
        self.thread
            .join()
            .unwrap_or(Some("monitor panicked".into()))
    }
}

/// What the undelivered callback saw: id -> causes.
type Reported = Arc<Mutex<BTreeMap<i64, Vec<Cause>>>>;

/// Keeps `Step::Panic`'s message out of the test output (other panics print as usual).
fn quiet_scripted_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let scripted = info
                .payload()
                .downcast_ref::<&str>()
                .is_some_and(|m| m.contains("MemorySink: scripted panic"));
            if !scripted {
                previous(info);
            }
        }));
    });
}

fn run(cfg: Config, ops: Vec<Op>) -> Result<(), TestCaseError> {
    quiet_scripted_panics();
    // Sizes: the queue's byte cap relative to a plain record's estimated size.
    let plain = record(Level::INFO, 0, 0).estimated_size() as u64;
    let error_size = record(Level::ERROR, 0, 0).estimated_size() as u64;
    let max_records = cfg.queue_records as u64;
    let max_bytes = (max_records * plain * cfg.bytes_pct / 100).max(plain);
    // The reserve (default: ERROR, 10 % of records and of bytes), in plain ERROR records;
    // rounded down, so that any reasonable rounding of the 10 % keeps at least this much.
    let reserve = (max_records / 10).min((max_bytes / 10).saturating_sub(64) / error_size);

    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let reported: Reported = Arc::default();
    let r2 = reported.clone();
    let (sink, rx) = MemorySink::new();
    let mut b = PipelineBuilder::new()
        .with_max_queue_records(cfg.queue_records)
        .with_max_queue_bytes(max_bytes)
        .with_max_batch_records(cfg.batch)
        .with_linger(Duration::from_millis(cfg.linger_ms))
        .with_send_timeout(SEND_TIMEOUT)
        .with_overflow(match cfg.policy {
            Policy::DropNewest => Overflow::DropNewest,
            Policy::DropOldest => Overflow::DropOldest,
            Policy::Block(ms) => Overflow::Block(Duration::from_millis(ms)),
        })
        .with_retry(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(1))
                .with_max_delay(Duration::from_millis(20))
                .with_max_attempts(Some(3)),
        )
        .with_breaker(match cfg.breaker {
            None => BreakerConfig::disabled(),
            Some((n, ms)) => BreakerConfig::default()
                .with_failure_threshold(n)
                .with_open_duration(Duration::from_millis(ms), Duration::from_millis(ms * 2)),
        })
        .with_undelivered_callback(move |u| {
            let mut g = r2.lock().unwrap();
            for r in &u.records {
                g.entry(id_of(r)).or_default().push(u.cause);
            }
        });
    if cfg.spool {
        b = b.with_spool(SpoolConfig::new(dir.path()).with_fsync(FsyncPolicy::Never));
    }
    let (_layer, guard) = b
        .build(sink)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let handle = guard.handle();
    let monitor = Monitor::start(guard.handle(), max_records, max_bytes);

    let mut next_id = 0i64;
    let mut errors_pushed = 0u64;
    let mut error_ids = BTreeSet::new();
    let mut only_prompt_steps = true;
    let mut prev = guard.stats();
    let mut outcome = Ok(());
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Push { level, n, pad } => {
                let level = LEVELS[usize::from(*level)];
                for _ in 0..*n {
                    let pad = if level == Level::ERROR { 0 } else { *pad };
                    if level == Level::ERROR {
                        errors_pushed += 1;
                        error_ids.insert(next_id);
                    }
                    handle.submit(record(level, next_id, pad));
                    next_id += 1;
                }
            }
            Op::Flush(ms) => {
                let r = guard.flush(Duration::from_millis(*ms));
                match r {
                    Ok(report) => {
                        // Nothing was pushed during the flush: everything enqueued before it is
                        // resolved.
                        if report.stats.in_flight() != 0 {
                            outcome = Err(format!(
                                "step {step}: flush returned Ok with {} records in flight",
                                report.stats.in_flight()
                            ));
                        }
                    }
                    Err(FlushError::Timeout { .. }) => {}
                    Err(e) => outcome = Err(format!("step {step}: flush failed: {e}")),
                }
            }
            Op::Script(answers) => {
                only_prompt_steps &= !answers.iter().any(S::times_out);
                rx.script(answers.iter().map(S::step));
            }
            Op::Sleep(ms) => std::thread::sleep(Duration::from_millis(*ms)),
        }
        let s = guard.stats();
        if let Some(b) = breach(&prev, &s, max_records, max_bytes) {
            outcome = Err(format!("step {step} ({op:?}): {b}"));
        }
        prev = s;
        if outcome.is_err() {
            break;
        }
    }
    let cancelled_before_shutdown = rx.cancelled_sends();

    // Shutdown, possibly with another thread still pushing.
    let stop = Arc::new(AtomicBool::new(false));
    let raced = Arc::new(AtomicU64::new(0));
    let racer = cfg.race_shutdown.then(|| {
        let (h, stop, raced) = (guard.handle(), stop.clone(), raced.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Acquire) && i < 400 {
                h.submit(record(Level::INFO, RACE_ID_BASE + i, 0));
                raced.fetch_add(1, Ordering::AcqRel);
                i += 1;
                if i % 8 == 0 {
                    std::thread::yield_now();
                }
            }
        })
    });
    if racer.is_some() {
        // Let the racer get going.
        std::thread::sleep(Duration::from_millis(1));
    }
    let shut = guard.shutdown(Duration::from_secs(10));
    stop.store(true, Ordering::Release);
    if let Some(t) = racer {
        t.join()
            .map_err(|_| TestCaseError::fail("racing pusher panicked"))?;
    }
    let raced = raced.load(Ordering::Acquire) as i64;
    let monitored = monitor.finish();

    if let Err(e) = outcome {
        return Err(TestCaseError::fail(e));
    }
    if let Some(b) = monitored {
        return Err(TestCaseError::fail(format!("monitor: {b}")));
    }
    match &shut {
        Ok(_) | Err(FlushError::Timeout { .. }) => {}
        Err(e) => return Err(TestCaseError::fail(format!("shutdown failed: {e}"))),
    }
    if only_prompt_steps {
        prop_assert_eq!(
            cancelled_before_shutdown,
            0,
            "a send that would have answered within the send timeout was cancelled (by a flush?)"
        );
    }
    final_checks(
        &handle,
        &rx,
        &reported,
        next_id,
        raced,
        cfg.spool,
        match cfg.policy {
            Policy::Block(_) => None,
            _ => Some((errors_pushed, reserve, error_ids)),
        },
    )
}

fn final_checks(
    handle: &logship_core::Handle,
    rx: &Received,
    reported: &Reported,
    pushed: i64,
    raced: i64,
    spool: bool,
    reserve: Option<(u64, u64, BTreeSet<i64>)>,
) -> Result<(), TestCaseError> {
    // The worker answered the shutdown after resolving everything it will; a timed-out answer
    // from the guard (a stuck worker) would show as records in flight.
    let end = Instant::now() + Duration::from_secs(2);
    let mut s = handle.stats();
    while s.in_flight() != 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
        s = handle.stats();
    }
    let emitted = (pushed + raced) as u64;
    prop_assert_eq!(s.emitted(), emitted, "emitted != records pushed; {:?}", s);
    prop_assert_eq!(
        s.enqueued + s.spool_replayed,
        s.delivered + s.undelivered() + s.dropped_oldest + s.spooled,
        "accounting identity (enqueued + spool_replayed == delivered + undelivered + \
         dropped_oldest + spooled) fails after shutdown: {} in flight; {:?}",
        s.in_flight(),
        s
    );
    prop_assert!(
        s.spool_replayed + s.spool_evicted + s.spool_records >= s.spooled,
        "records vanished from the spool: {:?}",
        s
    );

    // By id.
    let delivered: Vec<i64> = rx.records().iter().map(id_of).collect();
    let unique: BTreeSet<i64> = delivered.iter().copied().collect();
    if s.duplicates == 0 {
        prop_assert_eq!(
            unique.len(),
            delivered.len(),
            "a record was delivered twice: {:?}",
            dup_ids(&delivered)
        );
    }
    prop_assert_eq!(
        s.delivered,
        delivered.len() as u64,
        "delivered counter vs sink"
    );
    let reported = reported.lock().unwrap().clone();
    for (id, causes) in &reported {
        prop_assert_eq!(
            causes.len(),
            1,
            "id {} reported undelivered {:?}",
            id,
            causes
        );
        prop_assert!(
            !unique.contains(id),
            "id {} delivered and reported {:?}",
            id,
            causes
        );
    }
    let known =
        |id: &i64| (0..pushed).contains(id) || (RACE_ID_BASE..RACE_ID_BASE + raced).contains(id);
    prop_assert!(unique.iter().all(known), "the sink got an id never pushed");
    prop_assert!(
        reported.keys().all(known),
        "the callback got an id never pushed"
    );
    // Records dropped after close or unreported (lane full) are counted but not handed to the
    // callback; spooled records left on disk at shutdown are neither delivered nor reported.
    // Nothing else may vanish.
    let missing = emitted - unique.len() as u64 - reported.len() as u64;
    let silent = s.dropped_closed + s.dropped_unreported;
    let on_disk = if spool { s.spool_records } else { 0 };
    prop_assert!(
        missing <= silent + on_disk,
        "{} records neither delivered, reported, dropped after close, unreported nor on disk; {:?}",
        missing - (silent + on_disk).min(missing),
        s
    );

    // The ERROR reserve.
    if let Some((errors, reserve, error_ids)) = reserve
        && errors <= reserve
    {
        let lost: Vec<(i64, Cause)> = error_ids
            .iter()
            .filter_map(|id| {
                reported.get(id).and_then(|c| {
                    c.iter()
                        .find(|c| matches!(c, Cause::QueueFull | Cause::Evicted))
                        .map(|c| (*id, *c))
                })
            })
            .collect();
        prop_assert!(
            lost.is_empty(),
            "{} ERROR records pushed (reserve {}), yet the queue dropped {:?}",
            errors,
            reserve,
            lost
        );
    }
    Ok(())
}

fn dup_ids(ids: &[i64]) -> Vec<i64> {
    let mut seen = BTreeSet::new();
    ids.iter().copied().filter(|i| !seen.insert(*i)).collect()
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // Each shrink step reruns a timing-dependent case: keep shrinking bounded.
        max_shrink_iters: 200,
        // Timing-dependent failures do not replay reliably from a seed; report, don't persist.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    #[test]
    fn pipeline_under_faults_matches_the_model(
        cfg in config(),
        ops in proptest::collection::vec(op(), 1..14),
    ) {
        run(cfg, ops)?;
    }
}
