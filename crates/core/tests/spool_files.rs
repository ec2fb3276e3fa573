//! The files behind the spool and the dead-letter folder, through the public API: open file
//! descriptors stay bounded under a dead backend, files are private, no symlink is followed,
//! and foreign files in the folders are left alone.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logship_core::spool::{FsyncPolicy, SpoolConfig};
use logship_core::{
    Batch, BreakerConfig, Outcome, PipelineBuilder, RetryPolicy, SendContext, Sink,
};
use tracing_subscriber::prelude::*;

/// The fd test counts the whole process's descriptors: the tests here run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone, Default)]
struct Backend {
    up: Arc<AtomicBool>,
    got: Arc<Mutex<usize>>,
}

impl Sink for Backend {
    fn name(&self) -> &'static str {
        "files"
    }
    async fn send(&mut self, batch: &Batch, _cx: &mut SendContext) -> Outcome {
        if !self.up.load(Ordering::SeqCst) {
            return Outcome::retry("connection refused");
        }
        *self.got.lock().unwrap() += batch.len();
        Outcome::Delivered
    }
}

/// Refuses everything for good, so records go to the dead-letter folder.
struct Refuse;

impl Sink for Refuse {
    fn name(&self) -> &'static str {
        "refuse"
    }
    async fn send(&mut self, _batch: &Batch, _cx: &mut SendContext) -> Outcome {
        Outcome::rejected("no")
    }
}

fn builder() -> PipelineBuilder {
    PipelineBuilder::new()
        .with_linger(Duration::from_millis(5))
        .with_retry(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(1))
                .with_max_delay(Duration::from_millis(20)),
        )
        .with_breaker(
            BreakerConfig::default()
                .with_open_duration(Duration::from_millis(20), Duration::from_millis(50)),
        )
}

fn wait(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[cfg(target_os = "linux")]
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[cfg(target_os = "linux")]
#[test]
fn interval_fsync_with_a_dead_backend_keeps_the_open_fds_bounded() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::default();
    let (layer, guard) = builder()
        .with_max_queue_records(4096)
        .with_max_batch_records(1) // one segment per record: thousands of segments
        .with_spool(
            SpoolConfig::new(dir.path())
                .with_fsync(FsyncPolicy::Interval(Duration::from_secs(3600))),
        )
        .build(backend.clone())
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    let h = guard.handle();
    let before = open_fds();
    let mut most = before;
    let n = 3000_u64;
    for id in 0..n {
        tracing::info!(id, "during the outage");
        if id % 100 == 0 {
            std::thread::sleep(Duration::from_millis(2));
            most = most.max(open_fds());
        }
    }
    assert!(
        wait(|| {
            most = most.max(open_fds());
            let s = h.stats();
            s.emitted() == n && s.in_flight() <= 8
        }),
        "{:?}",
        h.stats()
    );
    let s = h.stats();
    assert!(s.spooled > 1000, "thousands of segments: {s:?}");
    most = most.max(open_fds());
    assert!(
        most <= before + 8,
        "open fds grew from {before} to {most} for {} spooled segments",
        s.spooled
    );
    backend.up.store(true, Ordering::SeqCst);
    assert!(wait(|| h.stats().spool_records == 0), "{:?}", h.stats());
}

#[cfg(unix)]
#[test]
fn spool_and_dead_letter_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let _s = serial();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let spool = root.path().join("new").join("spool");
    let backend = Backend::default();
    let (layer, guard) = builder()
        .with_spool(SpoolConfig::new(&spool).with_fsync(FsyncPolicy::Never))
        .build(backend.clone())
        .unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for id in 0..50_i64 {
            tracing::info!(id, "spooled");
        }
    }
    let r = guard.shutdown(Duration::from_secs(5));
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(mode(&spool), 0o700);
    assert_eq!(mode(&root.path().join("new")), 0o700);
    let segs = names(&spool);
    assert!(!segs.is_empty());
    for n in &segs {
        assert_eq!(mode(&spool.join(n)), 0o600, "{n}");
    }
    assert_eq!(
        mode(root.path()),
        0o755,
        "an existing folder keeps its mode"
    );

    let dead = root.path().join("dead");
    let (layer, guard) = builder().with_dead_letter_dir(&dead).build(Refuse).unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("refused");
    }
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(guard.stats().dead_letter_written, 1);
    assert_eq!(mode(&dead), 0o700);
    let files = names(&dead);
    assert_eq!(files.len(), 1);
    assert_eq!(mode(&dead.join(&files[0])), 0o600);
}

#[test]
fn a_foreign_tmp_file_survives_opening_the_spool() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.tmp"), b"mine").unwrap();
    std::fs::write(dir.path().join("seg-00000000000000000001.tmp"), b"torn").unwrap();
    let (_layer, guard) = builder()
        .with_spool(SpoolConfig::new(dir.path()))
        .build(Backend::default())
        .unwrap();
    assert_eq!(names(dir.path()), ["notes.tmp"]);
    assert_eq!(
        std::fs::read(dir.path().join("notes.tmp")).unwrap(),
        b"mine"
    );
    drop(guard);
}

#[cfg(unix)]
#[test]
fn a_symlink_at_the_first_segment_tmp_name_is_not_followed() {
    let _s = serial();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("spool");
    let target = root.path().join("precious");
    std::fs::write(&target, b"precious").unwrap();
    let backend = Backend::default();
    let (layer, guard) = builder()
        .with_spool(SpoolConfig::new(&dir).with_fsync(FsyncPolicy::EveryBatch))
        .build(backend.clone())
        .unwrap();
    // Planted after the spool opened (opening removes stale `seg-<digits>.tmp` names).
    let tmp = dir.join(format!("seg-{:020}.tmp", 1u64 << 40));
    std::os::unix::fs::symlink(&target, &tmp).unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    for id in 0..20_i64 {
        tracing::info!(id, "during the outage");
    }
    let h = guard.handle();
    assert!(wait(|| h.stats().spooled > 0), "{:?}", h.stats());
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    backend.up.store(true, Ordering::SeqCst);
    assert!(
        wait(|| *backend.got.lock().unwrap() == 20),
        "{:?}",
        h.stats()
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    assert!(
        std::fs::symlink_metadata(&tmp)
            .unwrap()
            .file_type()
            .is_symlink(),
        "left where it was"
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_at_the_dead_letter_file_name_is_not_followed() {
    let _s = serial();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("dead");
    std::fs::create_dir(&dir).unwrap();
    let target = root.path().join("precious");
    std::fs::write(&target, b"precious").unwrap();
    // The predictable first name, for every second the test may run in.
    let now = chrono::Utc::now();
    let mut planted: Vec<PathBuf> = Vec::new();
    for s in -2..30 {
        let t = now + chrono::Duration::seconds(s);
        let p = dir.join(format!(
            "logship-refuse-{}-{}-1.ndjson",
            t.format("%Y%m%dT%H%M%SZ"),
            std::process::id()
        ));
        std::os::unix::fs::symlink(&target, &p).unwrap();
        planted.push(p);
    }
    let (layer, guard) = builder().with_dead_letter_dir(&dir).build(Refuse).unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..3 {
            tracing::info!(i, "refused");
        }
    }
    guard.flush(Duration::from_secs(10)).unwrap();
    let s = guard.stats();
    assert_eq!(s.dead_letter_written, 3, "{s:?}");
    assert_eq!(s.dead_letter_failed, 0, "{s:?}");
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    for p in &planted {
        assert!(
            std::fs::symlink_metadata(p)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}
