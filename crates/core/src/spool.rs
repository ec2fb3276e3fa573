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
//! temporary name `seg-<20-digit sequence>.tmp` and renamed into place: the header
//! `LSPOOL1\n`, then one frame per record — `u32` length, `u32` CRC-32 of the payload (both
//! little-endian), and the record in the [`codec`] form. A failed write removes its temporary
//! file; a temporary file left by a crash is removed by the next start. Nothing else in the
//! folder is touched: only `seg-<digits>.tmp` names are ever deleted at start, and files that
//! are not regular `seg-<digits>.lsp` files (other names, symlinks, folders) are ignored.
//!
//! **Permissions and symlinks (unix).** Segment files are created with mode `0600` and the
//! folder, when the spool creates it (and any missing parent), with `0700` (both still subject
//! to the umask); an existing folder keeps its mode. No symlink is followed: files are created
//! with `O_CREAT | O_EXCL | O_NOFOLLOW` (an existing file or symlink at the name is never
//! truncated or written through: the next sequence number is used instead), and segments are
//! opened for reading or syncing with `O_NOFOLLOW`.
//!
//! **Corruption.** A torn or corrupt frame (bad length, CRC, or record encoding) ends its
//! segment: the records before it are replayed, and the segment is counted in
//! `Stats::spool_corrupt`. The records behind the bad frame are lost; their number is an
//! **estimate**, counted in `Stats::spool_corrupt_records`: the segment's record count as known
//! when it was written (exact) or found at startup (the frame headers that can still be walked,
//! a torn last frame included), minus the records recovered, and at least 1. Once counted, the
//! segment is cut back to its intact frames, so the same damage is not counted again (not even
//! after a restart), and the worker carries on.
//!
//! **Bounds.** The spool holds at most `max_bytes`; writing past it evicts the oldest segments
//! first (counted in `Stats::spool_evicted`). The spool keeps no file open between calls: each
//! append opens, writes and closes its segment, so at most one spool file is open at a time,
//! whatever the rate (a segment waiting for an `Interval` sync is remembered by its sequence
//! number, not by an open file).
//!
//! **Durability** ([`FsyncPolicy`]): `EveryBatch` survives power loss for every spooled batch
//! and costs one `fsync` per batch; `Interval` (default, 1 s) bounds the loss on power failure
//! to the last interval and is what Vector's disk buffer does (each segment written since the
//! last sync is reopened and `fsync`ed, then the folder); `Never` leaves it to the OS (a
//! process crash still loses nothing already written; a power loss may).

use std::collections::{BTreeMap, BTreeSet};
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
/// Names tried when the one for the next sequence number is taken (by a file the spool did not
/// write there).
const NAME_TRIES: u32 = 16;

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
    /// A spool in `dir` (created if missing, mode `0700` on unix), 256 MiB, fsync every second.
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

// ---- private files: shared with the dead-letter folder ----------------------------------------

/// Creates `dir` and its missing parents; on unix the folders created here get mode `0700`
/// (an existing folder is left as it is).
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Adds "never follow a symlink" (unix `O_NOFOLLOW`) to `o`.
fn no_follow(o: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits().cast_signed());
    }
    o
}

/// Creates a new file at `path`, mode `0600` on unix, for writing (`append`: in append mode).
/// Fails with `AlreadyExists` when anything (a file, a symlink, a folder) is at `path`: nothing
/// existing is ever truncated or written through.
pub(crate) fn create_private_file(path: &Path, append: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    if append {
        o.append(true);
    } else {
        o.write(true);
    }
    o.create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    no_follow(&mut o).open(path)
}

/// Opens an existing file without following a symlink.
fn open_existing(path: &Path, write: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    if write {
        o.write(true);
    } else {
        o.read(true);
    }
    no_follow(&mut o).open(path)
}

/// Whether `name` is `seg-<digits>.<ext>`; returns the sequence number.
fn seg_seq(name: &str, ext: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(ext)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    bytes: u64,
    /// Records in the segment: exact when written by this run; at startup, the frames that can
    /// be walked (an estimate when the segment is damaged).
    records: u64,
}

/// What loading a segment found.
pub(crate) struct Loaded {
    pub(crate) seq: u64,
    pub(crate) records: Vec<Record>,
    /// The segment was torn or corrupt: a bad frame ended it, and the records after it are
    /// lost. (Once reported, the segment is cut back to its intact frames, so a later load of
    /// the same segment normally finds it clean.)
    pub(crate) corrupt: bool,
    /// An **estimate** of the records lost behind the bad frame (0 when not `corrupt`; at least
    /// 1 the first time a damaged segment is loaded): see the [module docs](self). Reported once
    /// per damaged segment, so the caller can add it to `spool_corrupt_records` on every load.
    pub(crate) lost_records: u64,
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
    /// Segments written (or cut back) since the last sync under `FsyncPolicy::Interval`: by
    /// sequence number, never as open files (see the module docs' bound on open files).
    unsynced: BTreeSet<u64>,
    /// Segments whose damage was already reported (when cutting one back failed).
    reported: BTreeSet<u64>,
    last_sync: Instant,
    /// Test hook: a write of the segment stops after this many bytes with a "disk full" error.
    #[cfg(test)]
    fail_write_after: Option<usize>,
}

impl Spool {
    /// Opens (and creates) the spool folder and indexes the segments already there.
    pub(crate) fn open(cfg: SpoolConfig) -> io::Result<Self> {
        create_private_dir(&cfg.dir)?;
        let mut segments = BTreeMap::new();
        let mut bytes = 0;
        for e in fs::read_dir(&cfg.dir)? {
            let e = e?;
            let path = e.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            // Only regular files are ours (the file type of a symlink is "symlink").
            if !e.file_type()?.is_file() {
                continue;
            }
            if seg_seq(name, ".tmp").is_some() {
                let _ = fs::remove_file(&path); // an append that never completed
                continue;
            }
            let Some(seq) = seg_seq(name, ".lsp") else {
                continue;
            };
            let len = e.metadata()?.len();
            let records = read_all(&path).map_or(0, |b| scan(&b).walked);
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
            unsynced: BTreeSet::new(),
            reported: BTreeSet::new(),
            last_sync: Instant::now(),
            #[cfg(test)]
            fail_write_after: None,
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

    /// Picks the sequence number of a new segment and creates its temporary file.
    fn create_tmp(&self, front: bool) -> io::Result<(u64, PathBuf, PathBuf, File)> {
        let mut seq = if front {
            self.segments
                .keys()
                .next()
                .map_or(Some(FIRST_SEQ), |s| s.checked_sub(1))
        } else {
            self.segments
                .keys()
                .next_back()
                .map_or(Some(FIRST_SEQ), |s| s.checked_add(1))
        };
        for _ in 0..NAME_TRIES {
            let Some(s) = seq else { break };
            let path = self.path(s);
            let tmp = path.with_extension("tmp");
            // A name taken by something the spool did not write (it was not there at open):
            // leave it alone and use the next number.
            let free = !self.segments.contains_key(&s)
                && matches!(fs::symlink_metadata(&path), Err(e) if e.kind() == io::ErrorKind::NotFound);
            if free {
                match create_private_file(&tmp, false) {
                    Ok(f) => return Ok((s, tmp, path, f)),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
            }
            seq = if front {
                s.checked_sub(1)
            } else {
                s.checked_add(1)
            };
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free spool segment name (the next names are taken by other files)",
        ))
    }

    fn write_data(&self, f: &mut File, buf: &[u8]) -> io::Result<()> {
        #[cfg(test)]
        if let Some(n) = self.fail_write_after {
            f.write_all(&buf[..n.min(buf.len())])?;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "test: no space left on device",
            ));
        }
        f.write_all(buf)
    }

    /// Writes the temporary file, syncs it as the policy says, closes it and renames it into
    /// place.
    fn write_segment(&self, mut f: File, buf: &[u8], tmp: &Path, path: &Path) -> io::Result<()> {
        self.write_data(&mut f, buf)?;
        if self.cfg.fsync == FsyncPolicy::EveryBatch {
            f.sync_all()?;
        }
        drop(f);
        fs::rename(tmp, path)
    }

    /// Writes `records` as one segment, after the newest (`front == false`) or before the
    /// oldest (`front == true`).
    pub(crate) fn append<R: std::borrow::Borrow<Record>>(
        &mut self,
        records: &[R],
        front: bool,
    ) -> io::Result<Appended> {
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
        let (seq, tmp, path, f) = self.create_tmp(front)?;
        if let Err(e) = self.write_segment(f, &buf, &tmp, &path) {
            // The temporary file is ours (created new): never leave it behind.
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        match self.cfg.fsync {
            FsyncPolicy::EveryBatch => sync_dir(&self.cfg.dir),
            FsyncPolicy::Interval(_) => {
                self.unsynced.insert(seq);
            }
            FsyncPolicy::Never => {}
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
            if let Some(s) = self.forget(victim) {
                evicted += s.records;
                let _ = fs::remove_file(&s.path);
            }
            if victim == seq {
                break;
            }
        }
        Ok(Appended { seq, evicted })
    }

    /// Drops a segment from the index (not from the disk).
    fn forget(&mut self, seq: u64) -> Option<Segment> {
        let s = self.segments.remove(&seq)?;
        self.bytes -= s.bytes;
        self.unsynced.remove(&seq);
        self.reported.remove(&seq);
        Some(s)
    }

    /// Syncs written segments when the interval has passed.
    pub(crate) fn maybe_sync(&mut self) {
        if let FsyncPolicy::Interval(every) = self.cfg.fsync
            && self.last_sync.elapsed() >= every
            && !self.unsynced.is_empty()
        {
            self.sync_now();
        }
    }

    /// Reads the oldest segment (it stays on disk until [`remove`](Self::remove)).
    pub(crate) fn oldest(&mut self) -> Option<Loaded> {
        let (&seq, seg) = self.segments.iter().next()?;
        let known = seg.records;
        let path = seg.path.clone();
        let (records, corrupt, walked, intact_len) = match read_all(&path) {
            Ok(buf) => {
                let sc = scan(&buf);
                let (records, decode_failed_at) = decode_frames(&buf, &sc.frames);
                let intact_len = match decode_failed_at {
                    Some(i) => sc.frames[i].0 - 8,
                    None => sc.intact_len,
                };
                (
                    records,
                    sc.corrupt || decode_failed_at.is_some(),
                    sc.walked,
                    intact_len,
                )
            }
            Err(_) => (Vec::new(), true, 0, 0),
        };
        let mut lost_records = 0;
        if corrupt && !self.reported.contains(&seq) {
            let recovered = records.len() as u64;
            lost_records = known.max(walked).saturating_sub(recovered).max(1);
            self.cut_back(seq, &path, intact_len as u64, recovered);
        }
        Some(Loaded {
            seq,
            records,
            corrupt,
            lost_records,
        })
    }

    /// After reporting a damaged segment: cuts it back to its intact frames (so the damage is
    /// not reported again, even after a restart), or, when that fails, remembers it was
    /// reported.
    fn cut_back(&mut self, seq: u64, path: &Path, intact_len: u64, recovered: u64) {
        let cut = recovered > 0
            && open_existing(path, true)
                .and_then(|f| {
                    f.set_len(intact_len)?;
                    if self.cfg.fsync == FsyncPolicy::EveryBatch {
                        f.sync_all()?;
                    }
                    Ok(())
                })
                .is_ok();
        if !cut {
            self.reported.insert(seq);
        } else if let FsyncPolicy::Interval(_) = self.cfg.fsync {
            self.unsynced.insert(seq);
        }
        if let Some(s) = self.segments.get_mut(&seq) {
            s.records = recovered;
            if cut {
                self.bytes = self.bytes - s.bytes + intact_len;
                s.bytes = intact_len;
            }
        }
    }

    /// Deletes a segment whose records are resolved.
    pub(crate) fn remove(&mut self, seq: u64) {
        if let Some(s) = self.forget(seq) {
            let _ = fs::remove_file(&s.path);
        }
    }

    /// Syncs the segments written since the last sync, then the folder (also at shutdown).
    /// Each is reopened for the sync, so no file stays open in between; a segment already
    /// deleted is skipped.
    pub(crate) fn sync_now(&mut self) {
        for seq in std::mem::take(&mut self.unsynced) {
            if let Some(s) = self.segments.get(&seq)
                && let Ok(f) = open_existing(&s.path, true)
            {
                let _ = f.sync_all();
            }
        }
        sync_dir(&self.cfg.dir);
        self.last_sync = Instant::now();
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn read_all(path: &Path) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    open_existing(path, false)?.read_to_end(&mut buf)?;
    Ok(buf)
}

/// What walking a segment's frames found.
struct Scan {
    /// `(start, end)` of each intact payload, up to the first bad frame.
    frames: Vec<(usize, usize)>,
    /// A bad header, or a torn or corrupt frame.
    corrupt: bool,
    /// Bytes of the header and the intact frames.
    intact_len: usize,
    /// Frame headers that can be walked, past a CRC mismatch too (a torn last frame counts):
    /// the segment's record count, an estimate when it is damaged.
    walked: u64,
}

fn scan(buf: &[u8]) -> Scan {
    let mut sc = Scan {
        frames: Vec::new(),
        corrupt: false,
        intact_len: 0,
        walked: 0,
    };
    if buf.len() < HEADER.len() || &buf[..HEADER.len()] != HEADER {
        sc.corrupt = true;
        return sc;
    }
    sc.intact_len = HEADER.len();
    let mut at = HEADER.len();
    while at < buf.len() {
        sc.walked += 1;
        let Some(head) = buf.get(at..at + 8) else {
            sc.corrupt = true;
            break;
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let Some(payload) = buf.get(at + 8..at + 8 + len) else {
            sc.corrupt = true;
            break;
        };
        if !sc.corrupt {
            if crc32fast::hash(payload) == crc {
                sc.frames.push((at + 8, at + 8 + len));
                sc.intact_len = at + 8 + len;
            } else {
                sc.corrupt = true;
            }
        }
        at += 8 + len;
    }
    sc
}

/// Decodes the intact frames; stops at the first that does not decode (its index is returned).
fn decode_frames(buf: &[u8], frames: &[(usize, usize)]) -> (Vec<Record>, Option<usize>) {
    let mut records = Vec::with_capacity(frames.len());
    for (i, &(start, end)) in frames.iter().enumerate() {
        match codec::decode(&buf[start..end]) {
            Ok(r) => records.push(r),
            Err(_) => return (records, Some(i)),
        }
    }
    (records, None)
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
        assert_eq!(l.lost_records, 1, "the torn last frame");
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
        assert_eq!(l.lost_records, 1, "nothing can be walked: at least one");
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

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Open file descriptors of this process that point into `dir` (other tests run in
    /// parallel threads, so the process-wide count is noisy; `tests/spool_files.rs` checks it).
    #[cfg(target_os = "linux")]
    fn fds_into(dir: &Path) -> usize {
        let dir = dir.canonicalize().unwrap();
        fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
            .filter(|t| t.starts_with(&dir))
            .count()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn interval_fsync_keeps_no_segment_open_whatever_the_rate() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SpoolConfig::new(dir.path())
            .with_fsync(FsyncPolicy::Interval(Duration::from_secs(3600)));
        let mut s = Spool::open(cfg).unwrap();
        let one = recs(1, "r");
        let mut most = 0;
        for i in 0..3000 {
            s.append(&one, false).unwrap();
            if i % 100 == 0 {
                most = most.max(fds_into(dir.path()));
            }
        }
        most = most.max(fds_into(dir.path()));
        assert!(most <= 1, "{most} spool files open");
        assert_eq!(s.unsynced.len(), 3000, "all still waiting for the interval");
        // Segments replayed before their sync are forgotten (and keep the test fast: each
        // remaining one costs a real fsync).
        for seq in FIRST_SEQ..FIRST_SEQ + 2990 {
            s.remove(seq);
        }
        assert_eq!(s.unsynced.len(), 10);
        s.sync_now();
        assert!(s.unsynced.is_empty());
        assert_eq!(fds_into(dir.path()), 0);
        assert_eq!(s.records(), 10);
    }

    /// Flips a byte in the payload of frame `k` (0-based) of the segment at `path`.
    fn damage_frame(path: &Path, k: usize) {
        let mut b = fs::read(path).unwrap();
        let mut at = HEADER.len();
        for _ in 0..k {
            let len = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
            at += 8 + len;
        }
        b[at + 8] ^= 0xff;
        fs::write(path, b).unwrap();
    }

    #[test]
    fn a_bad_frame_counts_the_records_behind_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(SpoolConfig::new(dir.path())).unwrap();
        s.append(&recs(5, "x"), false).unwrap();
        damage_frame(&s.path(FIRST_SEQ), 1);
        let l = s.oldest().unwrap();
        assert!(l.corrupt);
        assert_eq!(messages(&l), ["x-0"]);
        assert_eq!(l.lost_records, 4, "known count 5 - 1 recovered");
        assert_eq!(
            s.records(),
            1,
            "the gauge no longer counts the lost records"
        );
        // Cut back to the intact frame: a second load (a replay that failed) finds it clean.
        let l = s.oldest().unwrap();
        assert!(!l.corrupt);
        assert_eq!(l.lost_records, 0);
        assert_eq!(messages(&l), ["x-0"]);
        assert_eq!(s.bytes(), fs::metadata(s.path(FIRST_SEQ)).unwrap().len());
        // And after a restart too.
        drop(s);
        let mut s = Spool::open(SpoolConfig::new(dir.path())).unwrap();
        assert_eq!(s.records(), 1);
        let l = s.oldest().unwrap();
        assert!(!l.corrupt && l.lost_records == 0);
    }

    #[test]
    fn a_bad_frame_found_at_startup_is_estimated_from_the_frames_behind_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(SpoolConfig::new(dir.path())).unwrap();
        s.append(&recs(6, "x"), false).unwrap();
        drop(s);
        damage_frame(&dir.path().join(format!("seg-{FIRST_SEQ:020}.lsp")), 2);
        let mut s = Spool::open(SpoolConfig::new(dir.path())).unwrap();
        assert_eq!(s.records(), 6, "frame headers walked past the bad CRC");
        let l = s.oldest().unwrap();
        assert!(l.corrupt);
        assert_eq!(messages(&l), ["x-0", "x-1"]);
        assert_eq!(l.lost_records, 4);
    }

    #[test]
    fn a_failed_append_leaves_no_tmp_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(SpoolConfig::new(dir.path())).unwrap();
        s.append(&recs(1, "a"), false).unwrap();
        s.fail_write_after = Some(20); // a full disk, part-way through the segment
        let e = s.append(&recs(3, "b"), false).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert!(s.append(&recs(3, "c"), true).is_err());
        assert_eq!(names(dir.path()), [format!("seg-{FIRST_SEQ:020}.lsp")]);
        assert_eq!(s.records(), 1);
        s.fail_write_after = None;
        s.append(&recs(1, "d"), false).unwrap();
        assert_eq!(s.records(), 2);
        assert!(names(dir.path()).iter().all(|n| n.ends_with(".lsp")));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_tmp_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("precious");
        fs::write(&target, b"precious").unwrap();
        let mut s = Spool::open(SpoolConfig::new(dir.path())).unwrap();
        let tmp = dir.path().join(format!("seg-{FIRST_SEQ:020}.tmp"));
        std::os::unix::fs::symlink(&target, &tmp).unwrap();
        s.append(&recs(2, "a"), false).unwrap();
        s.sync_now();
        assert_eq!(fs::read(&target).unwrap(), b"precious");
        assert!(
            fs::symlink_metadata(&tmp).unwrap().file_type().is_symlink(),
            "left alone"
        );
        let l = s.oldest().unwrap();
        assert_eq!(l.seq, FIRST_SEQ + 1, "the next name");
        assert_eq!(messages(&l), ["a-0", "a-1"]);
        // A symlink at a segment name is never indexed nor read.
        let lsp = dir.path().join(format!("seg-{:020}.lsp", FIRST_SEQ - 5));
        std::os::unix::fs::symlink(&target, &lsp).unwrap();
        drop(s);
        let mut s = Spool::open(SpoolConfig::new(dir.path())).unwrap();
        assert_eq!(s.oldest().unwrap().seq, FIRST_SEQ + 1);
        assert_eq!(fs::read(&target).unwrap(), b"precious");
    }

    #[test]
    fn open_deletes_only_its_own_tmp_names() {
        let dir = tempfile::tempdir().unwrap();
        let ours = format!("seg-{:020}.tmp", 7);
        let foreign = [
            "notes.tmp",
            "seg-.tmp",
            "seg-12a.tmp",
            "seg-12.tmp.bak",
            "xseg-1.tmp",
        ];
        for n in foreign.iter().copied().chain([ours.as_str()]) {
            fs::write(dir.path().join(n), b"x").unwrap();
        }
        let s = Spool::open(SpoolConfig::new(dir.path())).unwrap();
        assert_eq!(s.records(), 0);
        let mut want: Vec<String> = foreign.iter().map(|n| n.to_string()).collect();
        want.sort();
        assert_eq!(names(dir.path()), want);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_0600_and_created_folders_0700() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let root = tempfile::tempdir().unwrap();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let dir = root.path().join("a").join("spool");
        let mut s =
            Spool::open(SpoolConfig::new(&dir).with_fsync(FsyncPolicy::EveryBatch)).unwrap();
        s.append(&recs(1, "a"), false).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&s.path(FIRST_SEQ)), 0o600);
        assert_eq!(
            mode(root.path()),
            0o755,
            "an existing folder keeps its mode"
        );
        drop(s);
        Spool::open(SpoolConfig::new(root.path())).unwrap();
        assert_eq!(mode(root.path()), 0o755);
    }
}
