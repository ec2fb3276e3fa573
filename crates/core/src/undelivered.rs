//! The undelivered path: what happens to records that will not reach the backend.
//!
//! Records end here when the backend refuses them for good, when retries run out, when
//! shutdown's timeout expires, and (when this path is configured) when the queue drops them.
//! They are always counted ([`Stats`](crate::Stats)); in addition they can go to
//!
//! * a **callback** (`PipelineBuilder::with_undelivered_callback`), called on the worker
//!   thread with the records and, where the backend provides it, the encoded request body
//!   (the Fluent original's `buffer_overflow_handler`); a panic in it is caught and counted;
//! * a **dead-letter folder** (`PipelineBuilder::with_dead_letter_dir`): NDJSON files, one
//!   record per line in the [`Record`] JSON form plus an `undelivered` object with the cause and
//!   reason (the ECS original's `flush_failure_folder`). File names are portable (no `:`):
//!   `logship-<sink>-<YYYYMMDDTHHMMSSZ>-<pid>-<n>.ndjson`; a file rolls over at 16 MiB. The
//!   folder is capped in bytes (the `.ndjson` files already there count); past the cap, records
//!   are counted in `dead_letter_failed` instead of written.
//!
//! **Dead-letter files on disk.** A line is in a file whole or not at all: the lines of a group
//! are written unbuffered, and when a write fails part-way (a full disk) the file is cut back
//! to the end of the last whole line (should even that fail, the file is closed for good, so a
//! torn line can only be the last of its file). `dead_letter_written` counts the lines that are
//! in the file (written to the OS; not `fsync`ed); the rest count in `dead_letter_failed`, and
//! each failed I/O operation (creating a file, a write) in `dead_letter_write_errors`.
//!
//! **Permissions and symlinks (unix).** Files are created with mode `0600` and the folder,
//! when this path creates it (and any missing parent), with `0700` (both still subject to the
//! umask); an existing folder keeps its mode. A file is always created new, with
//! `O_CREAT | O_EXCL | O_NOFOLLOW`: an existing file or symlink at a name is never written to
//! or through; the next `<n>` is used instead.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Record;
use crate::stats::Counters;

/// Why records were not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// Dropped at enqueue: the queue was full (drop-newest policy, or the level's share).
    QueueFull,
    /// Evicted from the queue to make room (drop-oldest policy).
    Evicted,
    /// Dropped at enqueue after the block policy's timeout.
    BlockTimeout,
    /// Refused for good by the backend, or could not be encoded.
    Rejected,
    /// The retry policy's attempts or time ran out.
    RetriesExhausted,
    /// Still queued or in flight when shutdown's timeout expired.
    ShutdownTimeout,
    /// Held by the worker when it died of a panic.
    WorkerPanicked,
}

impl Cause {
    /// A stable snake_case name, e.g. `retries_exhausted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::Evicted => "evicted",
            Self::BlockTimeout => "block_timeout",
            Self::Rejected => "rejected",
            Self::RetriesExhausted => "retries_exhausted",
            Self::ShutdownTimeout => "shutdown_timeout",
            Self::WorkerPanicked => "worker_panicked",
        }
    }
}

/// Records that will not be delivered, handed to the undelivered callback.
#[derive(Debug)]
#[non_exhaustive]
pub struct Undelivered {
    /// Why.
    pub cause: Cause,
    /// The backend's message or the last error, when there is one.
    pub reason: Option<String>,
    /// The records.
    pub records: Vec<Record>,
    /// The encoded request body of the last attempt, when the backend provides it.
    pub payload: Option<Vec<u8>>,
}

/// The undelivered callback's type.
pub type UndeliveredCallback = Arc<dyn Fn(&Undelivered) + Send + Sync>;

/// Default cap of a dead-letter folder: 256 MiB.
pub const DEFAULT_DEAD_LETTER_MAX_BYTES: u64 = 256 * 1024 * 1024;
const FILE_ROLL_BYTES: u64 = 16 * 1024 * 1024;

/// Bytes of lines gathered before they are written.
const CHUNK_BYTES: usize = 64 * 1024;
/// Names tried when the next file name is taken (by a file this path did not create).
const NAME_TRIES: u32 = 64;

/// The file being appended to, and its length (it was created empty).
struct Current {
    file: File,
    len: u64,
}

pub(crate) struct DeadLetter {
    dir: PathBuf,
    sink: &'static str,
    max_bytes: u64,
    used: u64,
    file: Option<Current>,
    seq: u32,
    /// Test hook: bytes the "disk" still takes; a write past them is short, then fails with
    /// `StorageFull`.
    #[cfg(test)]
    disk_left: Option<u64>,
}

impl DeadLetter {
    pub(crate) fn open(dir: &Path, sink: &'static str, max_bytes: u64) -> io::Result<Self> {
        crate::spool::create_private_dir(dir)?;
        let mut used = 0;
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            if e.path().extension().is_some_and(|x| x == "ndjson") {
                used += e.metadata()?.len();
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            sink,
            max_bytes,
            used,
            file: None,
            seq: 0,
            #[cfg(test)]
            disk_left: None,
        })
    }

    /// The file to append to: the current one, or a new one (rolling over at
    /// `FILE_ROLL_BYTES`).
    fn current(&mut self) -> io::Result<&mut Current> {
        if self.file.as_ref().is_some_and(|c| c.len >= FILE_ROLL_BYTES) {
            self.file = None;
        }
        if self.file.is_none() {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
            let mut tries = 0;
            let file = loop {
                self.seq = self.seq.wrapping_add(1);
                let name = format!(
                    "logship-{}-{}-{}-{}.ndjson",
                    self.sink,
                    stamp,
                    std::process::id(),
                    self.seq
                );
                match crate::spool::create_private_file(&self.dir.join(name), true) {
                    Ok(f) => break f,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < NAME_TRIES => {
                        tries += 1;
                    }
                    Err(e) => return Err(e),
                }
            };
            self.file = Some(Current { file, len: 0 });
        }
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("dead-letter file not open"))
    }

    /// One `write` call (the test hook may shorten it or fail it as a full disk would).
    fn write_some(&mut self, buf: &[u8]) -> io::Result<usize> {
        #[cfg(test)]
        let buf = match self.disk_left {
            Some(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "test: no space left on device",
                ));
            }
            Some(left) => &buf[..buf.len().min(usize::try_from(left).unwrap_or(usize::MAX))],
            None => buf,
        };
        // Never `current()` here: a chunk must not roll over to a new file half-way.
        let c = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("dead-letter file not open"))?;
        let n = c.file.write(buf)?;
        c.len += n as u64;
        #[cfg(test)]
        if let Some(left) = self.disk_left.as_mut() {
            *left -= n as u64;
        }
        Ok(n)
    }

    /// Appends `buf`, whose lines end at `ends`. Returns how many of its bytes are in the file
    /// (always the end of a whole line) and the error that stopped it, if one did.
    fn append_lines(&mut self, buf: &[u8], ends: &[usize]) -> (usize, Option<io::Error>) {
        let start = match self.current() {
            Ok(c) => c.len,
            Err(e) => return (0, Some(e)),
        };
        let mut at = 0;
        while at < buf.len() {
            match self.write_some(&buf[at..]) {
                Ok(0) => {
                    return self.cut_back(start, at, ends, io::ErrorKind::WriteZero.into());
                }
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.cut_back(start, at, ends, e),
            }
        }
        (at, None)
    }

    /// After a write failed with `at` bytes of the chunk written: cuts the file back to the
    /// last whole line, or closes it for good when that fails.
    fn cut_back(
        &mut self,
        start: u64,
        at: usize,
        ends: &[usize],
        e: io::Error,
    ) -> (usize, Option<io::Error>) {
        let whole = ends
            .iter()
            .copied()
            .take_while(|&end| end <= at)
            .last()
            .unwrap_or(0);
        if whole < at {
            let keep = start + whole as u64;
            let cut = self.file.as_mut().is_some_and(|c| {
                c.file.set_len(keep).is_ok() && {
                    c.len = keep;
                    true
                }
            });
            if !cut {
                self.file = None;
            }
        }
        (whole, Some(e))
    }

    /// Writes one chunk of lines and counts them.
    fn flush_chunk(&mut self, buf: &mut Vec<u8>, ends: &mut Vec<usize>, counters: &Counters) {
        if ends.is_empty() {
            return;
        }
        let (kept, err) = self.append_lines(buf, ends);
        let written = ends.iter().take_while(|&&end| end <= kept).count();
        self.used += kept as u64;
        Counters::add(&counters.dead_letter_written, written as u64);
        Counters::add(&counters.dead_letter_failed, (ends.len() - written) as u64);
        if err.is_some() {
            Counters::add(&counters.dead_letter_write_errors, 1);
        }
        buf.clear();
        ends.clear();
    }

    pub(crate) fn write(&mut self, u: &Undelivered, counters: &Counters) {
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for r in &u.records {
            let line = crate::json::record_line(r, Some((u.cause, u.reason.as_deref())));
            let len = line.len() as u64;
            if self.used + buf.len() as u64 + len > self.max_bytes {
                Counters::add(&counters.dead_letter_failed, 1);
                continue;
            }
            buf.extend_from_slice(line.as_bytes());
            ends.push(buf.len());
            if buf.len() >= CHUNK_BYTES {
                self.flush_chunk(&mut buf, &mut ends, counters);
            }
        }
        self.flush_chunk(&mut buf, &mut ends, counters);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;
    use tracing_core::Level;

    fn undelivered(n: usize) -> Undelivered {
        let records = (0..n)
            .map(|i| {
                let mut r = Record::event(Level::INFO, "t")
                    .with_message(&format!("m-{i}"))
                    .build();
                let mut inv = 0;
                r.prepare(None, &mut inv);
                r
            })
            .collect();
        Undelivered {
            cause: Cause::Rejected,
            reason: Some("no".into()),
            records,
            payload: None,
        }
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    fn line_len() -> u64 {
        let u = undelivered(1);
        crate::json::record_line(&u.records[0], Some((u.cause, u.reason.as_deref()))).len() as u64
    }

    #[test]
    fn a_full_disk_leaves_whole_lines_and_counts_only_them() {
        let dir = tempfile::tempdir().unwrap();
        let c = Counters::default();
        let mut dl = DeadLetter::open(dir.path(), "t", u64::MAX).unwrap();
        // Room for two and a half lines (the messages `m-0`..`m-4` are the same length).
        dl.disk_left = Some(line_len() * 5 / 2);
        dl.write(&undelivered(5), &c);
        assert_eq!(c.dead_letter_written.load(Relaxed), 2);
        assert_eq!(c.dead_letter_failed.load(Relaxed), 3);
        assert_eq!(c.dead_letter_write_errors.load(Relaxed), 1);
        let f = files(dir.path());
        assert_eq!(f.len(), 1);
        let text = std::fs::read_to_string(&f[0]).unwrap();
        assert!(text.ends_with('\n'), "no torn line: {text:?}");
        assert_eq!(text.lines().count(), 2);
        for l in text.lines() {
            serde_json::from_str::<serde_json::Value>(l).unwrap();
        }
        // Still full: nothing more is counted as written, and nothing torn is left.
        dl.write(&undelivered(1), &c);
        assert_eq!(c.dead_letter_written.load(Relaxed), 2);
        assert_eq!(c.dead_letter_failed.load(Relaxed), 4);
        assert_eq!(c.dead_letter_write_errors.load(Relaxed), 2);
        // Room again: the file carries on with whole lines.
        dl.disk_left = None;
        dl.write(&undelivered(2), &c);
        assert_eq!(c.dead_letter_written.load(Relaxed), 4);
        let text = std::fs::read_to_string(&f[0]).unwrap();
        assert_eq!(text.lines().count(), 4);
        for l in text.lines() {
            serde_json::from_str::<serde_json::Value>(l).unwrap();
        }
    }

    #[test]
    fn the_cap_counts_failed_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let c = Counters::default();
        let mut dl = DeadLetter::open(dir.path(), "t", line_len() * 3).unwrap();
        dl.write(&undelivered(5), &c);
        assert_eq!(c.dead_letter_written.load(Relaxed), 3);
        assert_eq!(c.dead_letter_failed.load(Relaxed), 2);
        assert_eq!(c.dead_letter_write_errors.load(Relaxed), 0);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_file_name_is_not_followed() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("dead");
        let target = root.path().join("precious");
        std::fs::write(&target, b"precious").unwrap();
        let c = Counters::default();
        let mut dl = DeadLetter::open(&dir, "t", u64::MAX).unwrap();
        // Plant the predictable first name for every second the test may run in.
        let now = chrono::Utc::now();
        for s in -2..30 {
            let t = now + chrono::Duration::seconds(s);
            let name = format!(
                "logship-t-{}-{}-1.ndjson",
                t.format("%Y%m%dT%H%M%SZ"),
                std::process::id()
            );
            std::os::unix::fs::symlink(&target, dir.join(name)).unwrap();
        }
        dl.write(&undelivered(3), &c);
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert_eq!(c.dead_letter_written.load(Relaxed), 3);
        let written: Vec<PathBuf> = files(&dir)
            .into_iter()
            .filter(|p| {
                !std::fs::symlink_metadata(p)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            })
            .collect();
        assert_eq!(written.len(), 1);
        assert!(written[0].to_string_lossy().ends_with("-2.ndjson"));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&written[0]), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }
}
