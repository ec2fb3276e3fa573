//! The disk spool: batches that cannot be delivered now wait on disk, bounded, and are
//! replayed when the backend recovers, including after the process restarts.
//!
//! Opt in with `PipelineBuilder::with_spool`. While the backend is failing (a send failed and
//! has not succeeded since, or the circuit breaker is open), the worker moves queued records
//! into the spool instead of letting the queue overflow; a batch whose retries run out goes to
//! the spool instead of the undelivered path; and at shutdown, what is left is spooled instead
//! of abandoned. The worker replays the spool oldest segment first, alternating with fresh
//! batches so new records keep flowing (order is kept within the backlog and within the fresh
//! stream, not between them); while sends fail, replaying the oldest segment is what probes the
//! backend, paced by the retry backoff and the circuit breaker. Delivery from the spool is
//! at-least-once: a segment is deleted only after its records are resolved, so a crash may
//! replay a segment again.
//!
//! **On disk.** One file per spooled batch, `seg-<20-digit sequence>.lsp`, written to a
//! temporary name and renamed into place: the header `LSPOOL1\n`, then one frame per record —
//! `u32` length, `u32` CRC-32 of the payload (both little-endian), and the record in the
//! [`codec`] form. A torn or corrupt frame ends its segment: the records before
//! it are replayed, the rest is counted in `Stats::spool_corrupt` and skipped, and the worker
//! carries on.
//!
//! **Bounds.** The spool holds at most `max_bytes`; writing past it evicts the oldest segments
//! first (counted in `Stats::spool_evicted`).
//!
//! **Durability** ([`FsyncPolicy`]): `EveryBatch` survives power loss for every spooled batch
//! and costs one `fsync` per batch; `Interval` (default, 1 s) bounds the loss on power failure
//! to the last interval and is what Vector's disk buffer does; `Never` leaves it to the OS (a
//! process crash still loses nothing already written; a power loss may).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Record;
use crate::codec;

const HEADER: &[u8; 8] = b"LSPOOL1\n";
/// First sequence number; segments written in front of the oldest (a batch that was in flight
/// before the spooled backlog) count down from here.
const FIRST_SEQ: u64 = 1 << 40;

/// When spooled data is forced to disk. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// `fsync` every spooled batch before it counts as spooled.
    EveryBatch,
    /// `fsync` what was written at most once per interval (default: 1 s).
    Interval(Duration),
    /// Never `fsync`; the OS writes back when it likes.
    Never,
}

impl Default for FsyncPolicy {
    fn default() -> Self {
        Self::Interval(Duration::from_secs(1))
    }
}

/// Spool settings (see `PipelineBuilder::with_spool`).
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    pub(crate) dir: PathBuf,
    pub(crate) max_bytes: u64,
    pub(crate) fsync: FsyncPolicy,
}

/// Default spool cap: 256 MiB.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 256 * 1024 * 1024;

impl SpoolConfig {
    /// A spool in `dir` (created if missing), 256 MiB, fsync every second.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            fsync: FsyncPolicy::default(),
        }
    }
    /// Most bytes on disk; the oldest segments are evicted past it.
    pub fn with_max_bytes(self, n: u64) -> Self {
        Self {
            max_bytes: n,
            ..self
        }
    }
    /// The fsync policy.
    pub fn with_fsync(self, fsync: FsyncPolicy) -> Self {
        Self { fsync, ..self }
    }
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    bytes: u64,
    records: u64,
}

/// What loading a segment found.
pub(crate) struct Loaded {
    pub(crate) seq: u64,
    pub(crate) records: Vec<Record>,
    /// Frames skipped because they were torn or corrupt (0 or 1 per segment: a bad frame ends
    /// the segment) — and the records after it are lost.
    pub(crate) corrupt: bool,
}

/// Outcome of an append.
pub(crate) struct Appended {
    /// The new segment's sequence number.
    pub(crate) seq: u64,
    /// Records evicted (oldest segments) to stay under the cap.
    pub(crate) evicted: u64,
}

pub(crate) struct Spool {
    cfg: SpoolConfig,
    segments: BTreeMap<u64, Segment>,
    bytes: u64,
    unsynced: Vec<File>,
    last_sync: Instant,
}

impl Spool {
    /// Opens (and creates) the spool folder and indexes the segments already there.
    pub(crate) fn open(cfg: SpoolConfig) -> io::Result<Self> {
        fs::create_dir_all(&cfg.dir)?;
        let mut segments = BTreeMap::new();
        let mut bytes = 0;
        for e in fs::read_dir(&cfg.dir)? {
            let path = e?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path); // an append that never completed
                continue;
            }
            let Some(seq) = name
                .strip_prefix("seg-")
                .and_then(|n| n.strip_suffix(".lsp"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let len = fs::metadata(&path)?.len();
            let records = count_frames(&path).unwrap_or(0);
            bytes += len;
            segments.insert(
                seq,
                Segment {
                    path,
                    bytes: len,
                    records,
                },
            );
        }
        Ok(Self {
            cfg,
            segments,
            bytes,
            unsynced: Vec::new(),
            last_sync: Instant::now(),
        })
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
    pub(crate) fn records(&self) -> u64 {
        self.segments.values().map(|s| s.records).sum()
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.cfg.dir.join(format!("seg-{seq:020}.lsp"))
    }

    /// Writes `records` as one segment, after the newest (`front == false`) or before the
    /// oldest (`front == true`).
    pub(crate) fn append<R: std::borrow::Borrow<Record>>(
        &mut self,
        records: &[R],
        front: bool,
    ) -> io::Result<Appended> {
        let seq = if front {
            self.segments
                .keys()
                .next()
                .map_or(FIRST_SEQ, |s| s.saturating_sub(1))
        } else {
            self.segments
                .keys()
                .next_back()
                .map_or(FIRST_SEQ, |s| s + 1)
        };
        let mut buf = Vec::with_capacity(HEADER.len() + records.len() * 256);
        buf.extend_from_slice(HEADER);
        let mut payload = Vec::with_capacity(512);
        for r in records {
            payload.clear();
            codec::encode(r.borrow(), &mut payload);
            let len =
                u32::try_from(payload.len()).map_err(|_| io::Error::other("record over 4 GiB"))?;
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            buf.extend_from_slice(&payload);
        }
        let path = self.path(seq);
        let tmp = path.with_extension("tmp");
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&buf)?;
        match self.cfg.fsync {
            FsyncPolicy::EveryBatch => f.sync_all()?,
            FsyncPolicy::Interval(_) => self.unsynced.push(f),
            FsyncPolicy::Never => {}
        }
        fs::rename(&tmp, &path)?;
        if self.cfg.fsync == FsyncPolicy::EveryBatch {
            sync_dir(&self.cfg.dir);
        }
        self.maybe_sync();
        let len = buf.len() as u64;
        self.bytes += len;
        self.segments.insert(
            seq,
            Segment {
                path,
                bytes: len,
                records: records.len() as u64,
            },
        );
        // Evict the oldest segments to stay under the cap (never the one just written, unless
        // it alone is over the cap).
        let mut evicted = 0;
        while self.bytes > self.cfg.max_bytes {
            let victim = match self.segments.keys().find(|s| **s != seq) {
                Some(s) => *s,
                None => seq,
            };
            if let Some(s) = self.segments.remove(&victim) {
                self.bytes -= s.bytes;
                evicted += s.records;
                let _ = fs::remove_file(&s.path);
            }
            if victim == seq {
                break;
            }
        }
        Ok(Appended { seq, evicted })
    }

    /// Syncs written segments when the interval has passed.
    pub(crate) fn maybe_sync(&mut self) {
        if let FsyncPolicy::Interval(every) = self.cfg.fsync
            && self.last_sync.elapsed() >= every
            && !self.unsynced.is_empty()
        {
            for f in self.unsynced.drain(..) {
                let _ = f.sync_all();
            }
            sync_dir(&self.cfg.dir);
            self.last_sync = Instant::now();
        }
    }

    /// Reads the oldest segment (it stays on disk until [`remove`](Self::remove)).
    pub(crate) fn oldest(&mut self) -> Option<Loaded> {
        let (&seq, seg) = self.segments.iter().next()?;
        let (records, corrupt) = match read_segment(&seg.path) {
            Ok(x) => x,
            Err(_) => (Vec::new(), true),
        };
        Some(Loaded {
            seq,
            records,
            corrupt,
        })
    }

    /// Deletes a segment whose records are resolved.
    pub(crate) fn remove(&mut self, seq: u64) {
        if let Some(s) = self.segments.remove(&seq) {
            self.bytes -= s.bytes;
            let _ = fs::remove_file(&s.path);
        }
    }

    /// Flushes pending syncs (at shutdown).
    pub(crate) fn sync_now(&mut self) {
        for f in self.unsynced.drain(..) {
            let _ = f.sync_all();
        }
        sync_dir(&self.cfg.dir);
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn frames(buf: &[u8]) -> (Vec<&[u8]>, bool) {
    let mut out = Vec::new();
    if buf.len() < HEADER.len() || &buf[..HEADER.len()] != HEADER {
        return (out, true);
    }
    let mut at = HEADER.len();
    while at < buf.len() {
        let Some(head) = buf.get(at..at + 8) else {
            return (out, true);
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let Some(payload) = buf.get(at + 8..at + 8 + len) else {
            return (out, true);
        };
        if crc32fast::hash(payload) != crc {
            return (out, true);
        }
        out.push(payload);
        at += 8 + len;
    }
    (out, false)
}

fn read_segment(path: &Path) -> io::Result<(Vec<Record>, bool)> {
    let mut buf = Vec::new();
    File::open(path)?.read_to_end(&mut buf)?;
    let (frames, mut corrupt) = frames(&buf);
    let mut records = Vec::with_capacity(frames.len());
    for f in frames {
        match codec::decode(f) {
            Ok(r) => records.push(r),
            Err(_) => {
                corrupt = true;
                break;
            }
        }
    }
    Ok((records, corrupt))
}

fn count_frames(path: &Path) -> io::Result<u64> {
    let mut buf = Vec::new();
    File::open(path)?.read_to_end(&mut buf)?;
    Ok(frames(&buf).0.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_core::Level;

    fn recs(n: usize, tag: &str) -> Vec<Record> {
        (0..n)
            .map(|i| {
                let mut r = Record::event(Level::INFO, "t")
                    .with_message(&format!("{tag}-{i}"))
                    .build();
                let mut inv = 0;
                r.prepare(None, &mut inv);
                r
            })
            .collect()
    }

    fn messages(l: &Loaded) -> Vec<String> {
        l.records
            .iter()
            .map(|r| r.message().unwrap_or("").to_string())
            .collect()
    }

    #[test]
    fn appends_replays_in_order_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s =
            Spool::open(SpoolConfig::new(dir.path()).with_fsync(FsyncPolicy::EveryBatch)).unwrap();
        s.append(&recs(2, "b"), false).unwrap();
        s.append(&recs(1, "c"), false).unwrap();
        s.append(&recs(1, "a"), true).unwrap();
        assert_eq!(s.records(), 4);
        drop(s);
        let mut s = Spool::open(SpoolConfig::new(dir.path())).unwrap();
        assert_eq!(s.records(), 4);
        let mut order = Vec::new();
        while let Some(l) = s.oldest() {
            assert!(!l.corrupt);
            order.extend(messages(&l));
            s.remove(l.seq);
        }
        assert_eq!(order, ["a-0", "b-0", "b-1", "c-0"]);
        assert_eq!(s.bytes(), 0);
    }

    #[test]
    fn torn_segment_keeps_what_is_intact_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(SpoolConfig::new(dir.path())).unwrap();
        s.append(&recs(3, "x"), false).unwrap();
        s.sync_now();
        let path = fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 5)
            .unwrap();
        let mut s = Spool::open(SpoolConfig::new(dir.path())).unwrap();
        let l = s.oldest().unwrap();
        assert!(l.corrupt);
        assert_eq!(messages(&l), ["x-0", "x-1"]);
    }

    #[test]
    fn garbage_segment_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(format!("seg-{:020}.lsp", FIRST_SEQ)),
            b"not a spool",
        )
        .unwrap();
        let mut s = Spool::open(SpoolConfig::new(dir.path())).unwrap();
        let l = s.oldest().unwrap();
        assert!(l.corrupt && l.records.is_empty());
        s.remove(l.seq);
        assert_eq!(s.records(), 0);
    }

    #[test]
    fn cap_evicts_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(SpoolConfig::new(dir.path()).with_max_bytes(1500)).unwrap();
        let mut evicted = 0;
        for i in 0..6 {
            evicted += s.append(&recs(2, &format!("s{i}")), false).unwrap().evicted;
        }
        assert!(s.bytes() <= 1500, "{}", s.bytes());
        assert!(evicted > 0);
        assert_eq!(s.records() + evicted, 12);
        let first = messages(&s.oldest().unwrap());
        assert_ne!(first[0], "s0-0", "the oldest went first");
    }
}
