//! Promises under faults: a worker that sleeps while the breaker is open, flushes that never
//! cancel a send, timeouts enforced on the caller's side, durations that cannot panic, a worker
//! death that loses nothing silently, a spool that catches hung and failing backends (also
//! across a SIGKILL), and a parallel shutdown of several pipelines.
//!
//! Behaviour over time is asserted with counts and the worker thread's CPU time, never with
//! tight wall-clock bounds (the CI machine has 2 shared cores).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use logship_core::spool::SpoolConfig;
use logship_core::testing::{MemorySink, Received, Step};
use logship_core::{
    Batch, BreakerConfig, ConfigError, FlushError, Level, Outcome, PipelineBuilder, Record,
    RetryPolicy, SendContext, Sink, Value,
};

const T: Duration = Duration::from_secs(20);

fn rec(i: i64) -> Record {
    Record::event(Level::INFO, "t").with_field("i", i).build()
}

fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + T;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// A [`MemorySink`] under another name, so its worker thread (`logship-<name>`) can be found.
struct Named(MemorySink, &'static str);

impl Sink for Named {
    fn name(&self) -> &'static str {
        self.1
    }
    async fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> Outcome {
        self.0.send(batch, cx).await
    }
}

/// CPU time (user + system) of this process's thread named `comm`, from /proc (Linux).
fn thread_cpu(comm: &str) -> Option<Duration> {
    let tick = 100u64; // USER_HZ: 100 on every Linux ABI
    for e in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = e.ok()?.path();
        let name = std::fs::read_to_string(dir.join("comm")).ok()?;
        if name.trim_end() != comm {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        let after = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = after.split(' ').collect();
        let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        return Some(Duration::from_millis(ticks * 1000 / tick));
    }
    None
}

#[test]
#[cfg(target_os = "linux")]
fn the_worker_sleeps_while_the_breaker_is_open() {
    // Every send fails: the breaker opens after 5 failures and stays open (1 s, 2 s, 4 s …).
    let (sink, _rx) =
        MemorySink::scripted((0..100_000).map(|_| Step::Answer(Outcome::retry("down"))));
    let (_layer, guard) = PipelineBuilder::new()
        .with_max_batch_records(10)
        .with_linger(Duration::from_millis(20))
        .with_retry(
            RetryPolicy::default()
                .with_max_attempts(None)
                .with_max_elapsed(None),
        )
        .build(Named(sink, "sleepy"))
        .unwrap();
    let h = guard.handle();
    for i in 0..5 {
        h.submit(rec(i));
    }
    assert!(wait_until(|| h.stats().breaker_open), "{:?}", h.stats());
    let before = thread_cpu("logship-sleepy").expect("worker thread");
    // Six seconds of outage with records arriving (a full batch waits behind the breaker: the
    // second path that used to spin).
    let end = Instant::now() + Duration::from_secs(6);
    let mut i = 5;
    while Instant::now() < end {
        h.submit(rec(i));
        i += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    let used = thread_cpu("logship-sleepy").expect("worker thread") - before;
    // Before the fix the worker spun for most of those 6 s (≈ 4–6 s of CPU).
    assert!(
        used < Duration::from_millis(500),
        "worker used {used:?} of CPU"
    );
    assert!(h.stats().breaker_open);
}

#[test]
fn a_flush_never_cancels_a_send() {
    // Every send takes 100 ms; flushes of 5 ms come every 20 ms.
    let (sink, rx) =
        MemorySink::scripted((0..1000).map(|_| Step::Delay(Duration::from_millis(100))));
    let (_layer, guard) = PipelineBuilder::new().build(sink).unwrap();
    let h = guard.handle();
    let mut timeouts = 0;
    for i in 0..40 {
        h.submit(rec(i));
        match h.flush(Duration::from_millis(5)) {
            Ok(_) => {}
            Err(FlushError::Timeout { waited, .. }) => {
                timeouts += 1;
                assert!(waited >= Duration::from_millis(5), "{waited:?}");
            }
            Err(e) => panic!("{e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    guard.flush(T).unwrap();
    let s = guard.stats();
    assert!(timeouts > 0, "the flushes did time out");
    assert_eq!(s.delivered, 40, "{s:?}");
    assert_eq!(s.retries, 0, "no send was cancelled and retried: {s:?}");
    assert_eq!(s.consecutive_failures, 0);
    assert_eq!(rx.len(), 40);
    assert_eq!(
        s.requests,
        rx.batch_sizes().len() as u64,
        "every send completed"
    );
}

/// A sink that blocks its thread (no `.await`): the worker cannot answer while it runs.
struct Blocking {
    done: Arc<AtomicBool>,
}

impl Sink for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }
    async fn send(&mut self, _batch: &Batch, _cx: &mut SendContext) -> Outcome {
        std::thread::sleep(Duration::from_secs(3));
        self.done.store(true, Ordering::SeqCst);
        Outcome::Delivered
    }
}

#[test]
fn flush_async_returns_by_its_own_timeout_even_when_the_sink_blocks_its_thread() {
    let done = Arc::new(AtomicBool::new(false));
    let (_layer, guard) = PipelineBuilder::new()
        .build(Blocking { done: done.clone() })
        .unwrap();
    guard.handle().submit(rec(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t0 = Instant::now();
    let r = rt.block_on(guard.flush_async(Duration::from_millis(100)));
    let measured = t0.elapsed();
    assert!(
        !done.load(Ordering::SeqCst),
        "flush_async returned before the blocking send ended"
    );
    match r {
        Err(FlushError::Timeout { waited, remaining }) => {
            assert!(waited >= Duration::from_millis(100), "{waited:?}");
            assert!(
                waited <= measured,
                "the caller's own wait: {waited:?} vs {measured:?}"
            );
            assert_eq!(remaining, 1);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // The blocking flush reports the caller's wait too.
    let t0 = Instant::now();
    match guard.flush(Duration::from_millis(50)) {
        Err(FlushError::Timeout { waited, .. }) => {
            assert!(waited >= Duration::from_millis(50) && waited <= t0.elapsed())
        }
        Ok(r) => assert!(r.waited <= t0.elapsed()),
        Err(e) => panic!("{e}"),
    }
    guard.flush(T).unwrap();
    assert!(done.load(Ordering::SeqCst));
}

#[test]
fn shutdown_reports_the_callers_own_wait() {
    let (sink, _rx) = MemorySink::scripted((0..100).map(|_| Step::Hang));
    let (_layer, guard) = PipelineBuilder::new().build(sink).unwrap();
    let h = guard.handle();
    h.submit(rec(1));
    assert!(wait_until(|| h.stats().queue_len == 0));
    let t0 = Instant::now();
    match guard.shutdown(Duration::from_millis(300)) {
        Err(FlushError::Timeout { waited, remaining }) => {
            assert!(waited >= Duration::from_millis(300), "{waited:?}");
            assert!(waited <= t0.elapsed());
            assert_eq!(remaining, 1);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(h.stats().undelivered_shutdown, 1);
}

#[test]
fn extreme_durations_fail_at_build_naming_the_setting() {
    let max = Duration::MAX;
    let cases: Vec<(&str, PipelineBuilder)> = vec![
        ("with_linger", PipelineBuilder::new().with_linger(max)),
        (
            "with_send_timeout",
            PipelineBuilder::new().with_send_timeout(max),
        ),
        (
            "with_shutdown_timeout",
            PipelineBuilder::new().with_shutdown_timeout(max),
        ),
        (
            "with_stall_threshold",
            PipelineBuilder::new().with_stall_threshold(max),
        ),
        (
            "BreakerConfig::with_open_duration",
            PipelineBuilder::new()
                .with_breaker(BreakerConfig::default().with_open_duration(max, max)),
        ),
        (
            "RetryPolicy::with_initial_delay",
            PipelineBuilder::new().with_retry(RetryPolicy::default().with_initial_delay(max)),
        ),
        (
            "RetryPolicy::with_max_delay",
            PipelineBuilder::new().with_retry(RetryPolicy::default().with_max_delay(max)),
        ),
        (
            "RetryPolicy::with_max_server_delay",
            PipelineBuilder::new().with_retry(RetryPolicy::default().with_max_server_delay(max)),
        ),
        (
            "RetryPolicy::with_max_elapsed",
            PipelineBuilder::new().with_retry(RetryPolicy::default().with_max_elapsed(Some(max))),
        ),
    ];
    for (setting, b) in cases {
        match b.build(MemorySink::new().0) {
            Err(e @ ConfigError::OutOfRange { .. }) => {
                assert!(e.to_string().contains(setting), "{setting}: {e}")
            }
            other => panic!("{setting}: expected OutOfRange, got {other:?}"),
        }
    }
}

#[test]
fn the_largest_allowed_durations_work_and_timeouts_may_be_unbounded() {
    let (sink, rx) = MemorySink::new();
    let (_layer, guard) = PipelineBuilder::new()
        .with_linger(Duration::from_secs(3600))
        .with_send_timeout(Duration::from_secs(600))
        .with_stall_threshold(Duration::from_secs(600))
        .with_shutdown_timeout(Duration::from_secs(600))
        .with_breaker(
            BreakerConfig::default()
                .with_open_duration(Duration::from_secs(3600), Duration::from_secs(3600)),
        )
        .with_retry(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_secs(3600))
                .with_max_delay(Duration::from_secs(3600))
                .with_max_elapsed(Some(Duration::from_secs(30 * 24 * 3600))),
        )
        .build(sink)
        .unwrap();
    guard.handle().submit(rec(1));
    guard.flush(Duration::MAX).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    guard.handle().submit(rec(2));
    rt.block_on(guard.flush_async(Duration::MAX)).unwrap();
    assert_eq!(rx.len(), 2);
    guard.shutdown(Duration::MAX).unwrap();
}

/// A sink whose `send` panics, and whose `name` panics once the worker runs: the worker's own
/// code then panics while handling the send's panic — a worker death.
struct Doomed {
    calls: Arc<AtomicU64>,
}

impl Sink for Doomed {
    fn name(&self) -> &'static str {
        if self.calls.fetch_add(1, Ordering::SeqCst) > 0 {
            panic!("name() broke");
        }
        "doomed"
    }
    async fn send(&mut self, _batch: &Batch, _cx: &mut SendContext) -> Outcome {
        panic!("send() broke")
    }
}

#[test]
fn a_dead_worker_counts_everything_and_says_so() {
    let calls = Arc::new(AtomicU64::new(0));
    let (_layer, guard) = PipelineBuilder::new()
        .with_loss_summary(false)
        .with_max_batch_records(5)
        .build(Doomed {
            calls: calls.clone(),
        })
        .unwrap();
    let h = guard.handle();
    for i in 0..20 {
        h.submit(rec(i));
    }
    let r = h.flush(T);
    assert!(
        matches!(
            r,
            Err(FlushError::WorkerPanicked { .. }) | Err(FlushError::WorkerGone)
        ),
        "{r:?}"
    );
    assert!(
        wait_until(|| {
            let s = h.stats();
            s.enqueued == 20 && s.undelivered_worker_panicked + s.undelivered_rejected == 20
        }),
        "{:?}",
        h.stats()
    );
    // Records emitted afterwards are counted, not lost in no counter.
    h.submit(rec(99));
    let s = h.stats();
    assert_eq!(s.dropped_closed, 1);
    assert_eq!(s.emitted(), 21);
    assert_eq!(s.in_flight(), 0);
    assert!(s.last_error.unwrap_or_default().contains("panicked"));
    match h.flush(T) {
        Err(FlushError::WorkerPanicked { reason }) => assert!(reason.contains("name() broke")),
        other => panic!("a later flush says the worker panicked: {other:?}"),
    }
}

#[test]
fn shutdown_all_costs_one_timeout_for_many_pipelines() {
    let mut guards = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..5 {
        let (sink, _rx) = MemorySink::scripted((0..100).map(|_| Step::Hang));
        let (_l, g) = PipelineBuilder::new()
            .with_loss_summary(false)
            .build(sink)
            .unwrap();
        g.handle().submit(rec(1));
        handles.push(g.handle());
        guards.push(g);
    }
    assert!(wait_until(|| handles
        .iter()
        .all(|h| h.stats().queue_len == 0)));
    let t0 = Instant::now();
    let results = logship_core::shutdown_all(guards, Duration::from_secs(2));
    let took = t0.elapsed();
    assert_eq!(results.len(), 5);
    for r in &results {
        assert!(matches!(r, Err(FlushError::Timeout { .. })), "{r:?}");
    }
    for h in &handles {
        assert_eq!(h.stats().undelivered_shutdown, 1);
    }
    // One after another this takes 5 × 2 s; in parallel one timeout (plus the grace).
    assert!(took < Duration::from_secs(6), "took {took:?}");
}

#[test]
fn an_urgent_record_never_waits_a_linger() {
    // Linger of an hour: only the nudge of an ERROR record (or a flush) makes a batch go. Each
    // ERROR must be delivered on its own nudge; a lost nudge would wait the hour (and fail).
    let (sink, rx) = MemorySink::new();
    let (_layer, guard) = PipelineBuilder::new()
        .with_linger(Duration::from_secs(3600))
        .build(sink)
        .unwrap();
    let h = guard.handle();
    for i in 0..300 {
        h.submit(
            Record::event(Level::ERROR, "t")
                .with_field("i", i as i64)
                .build(),
        );
        assert!(
            rx.wait_for(i + 1, T),
            "ERROR record {i} waited for the linger: {:?}",
            h.stats()
        );
    }
}

fn spool_child_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("LOGSHIP_FAULTS_CHILD_SPOOL").map(Into::into)
}

/// Run as a child process by the SIGKILL tests: spools against a hung or failing backend, says
/// "ready" once every record is on disk, then waits to be killed.
#[test]
fn child_spool_then_wait_for_sigkill() {
    let Some(dir) = spool_child_dir() else {
        return; // only meaningful as the child of the tests below
    };
    let hung = std::env::var("LOGSHIP_FAULTS_CHILD_MODE").as_deref() == Ok("hung");
    let step = if hung {
        Step::Hang
    } else {
        Step::Answer(Outcome::retry("down"))
    };
    let (sink, _rx) = MemorySink::scripted((0..100_000).map(|_| step.clone()));
    let (_layer, guard) = PipelineBuilder::new()
        .with_spool(SpoolConfig::new(&dir))
        .with_max_batch_records(100)
        .with_linger(Duration::from_millis(20))
        .with_send_timeout(Duration::from_secs(600))
        .with_stall_threshold(Duration::from_millis(300))
        .with_retry(
            RetryPolicy::default()
                .with_max_attempts(None)
                .with_max_elapsed(None),
        )
        .build(sink)
        .unwrap();
    let h = guard.handle();
    for i in 0..1000 {
        h.submit(rec(i));
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(
        wait_until(|| h.stats().spool_records == 1000),
        "{:?}",
        h.stats()
    );
    let s = h.stats();
    if hung {
        assert!(
            s.last_error.as_deref().unwrap_or("").contains("stalled"),
            "a hung send is reported: {s:?}"
        );
    }
    println!("LOGSHIP-CHILD-READY");
    std::thread::sleep(Duration::from_secs(60));
    std::mem::forget(guard);
}

#[cfg(unix)]
fn sigkill_then_replay(mode: &str) {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_spool_then_wait_for_sigkill",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LOGSHIP_FAULTS_CHILD_SPOOL", dir.path())
        .env("LOGSHIP_FAULTS_CHILD_MODE", mode)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut ready = false;
    for line in BufReader::new(out).lines() {
        if line.unwrap().contains("LOGSHIP-CHILD-READY") {
            ready = true;
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    assert!(ready, "the child spooled every record");
    // A new run replays what the killed one left on disk.
    let (sink, rx): (MemorySink, Received) = MemorySink::new();
    let (_layer, guard) = PipelineBuilder::new()
        .with_spool(SpoolConfig::new(dir.path()))
        .build(sink)
        .unwrap();
    assert!(rx.wait_for(1000, T), "replayed {} of 1000", rx.len());
    guard.flush(T).unwrap();
    let mut ids: Vec<i64> = rx
        .records()
        .iter()
        .map(|r| match r.field("i") {
            Some(Value::I64(i)) => i,
            other => panic!("{other:?}"),
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1000, "every record survived the SIGKILL");
}

#[test]
#[cfg(unix)]
fn sigkill_during_a_hung_send_loses_nothing_with_the_spool() {
    sigkill_then_replay("hung");
}

#[test]
#[cfg(unix)]
fn sigkill_while_a_batch_waits_for_its_retry_loses_nothing_with_the_spool() {
    sigkill_then_replay("failing");
}

#[test]
fn a_partial_retry_sets_last_error() {
    // Two of three records come back retryable once, then everything is delivered.
    let (sink, rx) = MemorySink::scripted([Step::Answer(Outcome::Partial {
        retry: vec![0, 2],
        rejected: Vec::new(),
        after: None,
        reason: "http 503: busy".into(),
    })]);
    // An hour of linger: the three records form one batch, sent by the flush.
    let (_layer, guard) = PipelineBuilder::new()
        .with_linger(Duration::from_secs(3600))
        .with_retry(RetryPolicy::default().with_initial_delay(Duration::from_millis(1)))
        .build(sink)
        .unwrap();
    let h = guard.handle();
    for i in 0..3 {
        h.submit(rec(i));
    }
    guard.flush(T).unwrap();
    assert_eq!(rx.len(), 3);
    let e = guard.stats().last_error;
    assert!(
        e.as_deref()
            .unwrap_or("")
            .contains("partial failure: 2 of 3 records to retry: http 503: busy"),
        "last_error: {e:?}"
    );
}
