//! The failure folder (the original's `flush_failure_folder`) and its replay.
//!
//! Undelivered documents are written as complete `_bulk` bodies: an action line (with the
//! document's deterministic `_id`) and a source line per document, every line ending in `\n`.
//! Replaying a file is therefore just posting it again; with the default `create` action a
//! document that did arrive earlier is answered 409 and counted as a duplicate, never indexed
//! twice. Files are first written as `*.ndjson.tmp` and renamed when complete, so a replay
//! never reads half a file. Names are portable (no `:`):
//! `<prefix>-<YYYYMMDDTHHMMSSZ>-<pid>-<n>.ndjson`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use logship_core::{Timestamp, Undelivered};

use crate::classify::{ItemFate, Verdict, classify};
use crate::encode::{BulkAction, Encoder, EncoderConfig, IndexNaming};
use crate::error::EcsError;
use crate::transport::{Transport, TransportSettings};

/// Writes undelivered records into the folder (runs on the worker thread, from the
/// pipeline's undelivered callback).
pub(crate) struct FailureFolder {
    dir: PathBuf,
    prefix: String,
    encoder: Mutex<Encoder>,
    host_ips: Arc<OnceLock<Vec<String>>>,
    seq: AtomicU64,
    /// Documents that could not be written (visible in `Debug` only; the core counts them as
    /// undelivered in any case).
    failed: AtomicU64,
}

impl std::fmt::Debug for FailureFolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailureFolder")
            .field("dir", &self.dir)
            .field("failed", &self.failed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl FailureFolder {
    pub(crate) fn open(
        dir: &Path,
        cfg: EncoderConfig,
        host_ips: Arc<OnceLock<Vec<String>>>,
    ) -> Result<Self, EcsError> {
        std::fs::create_dir_all(dir).map_err(|source| EcsError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let prefix = match &cfg.naming {
            IndexNaming::Dated { prefix, .. } => prefix.clone(),
            IndexNaming::DataStream { namespace } => format!("{}-{namespace}", cfg.dataset),
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            prefix,
            encoder: Mutex::new(Encoder::new(cfg)),
            host_ips,
            seq: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    pub(crate) fn write(&self, u: &Undelivered) {
        if u.records.is_empty() {
            return;
        }
        let mut body = Vec::new();
        if let Ok(mut enc) = self.encoder.lock() {
            if enc.config().host_ips.is_empty()
                && let Some(ips) = self.host_ips.get()
            {
                enc.set_host_ips(ips.clone());
            }
            let created = Timestamp::now();
            for r in &u.records {
                enc.encode(r, created, &mut body);
            }
        }
        let n = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let name = format!(
            "{}-{}-{}-{n}.ndjson",
            self.prefix,
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
            std::process::id()
        );
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let ok = std::fs::File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(&body)?;
                f.sync_all()
            })
            .and_then(|_| std::fs::rename(&tmp, &path));
        if ok.is_err() {
            let _ = std::fs::remove_file(&tmp);
            self.failed
                .fetch_add(u.records.len() as u64, Ordering::Relaxed);
        }
    }
}

/// What [`EcsBuilder::replay_failure_folder`](crate::EcsBuilder::replay_failure_folder) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayReport {
    /// `.ndjson` files read.
    pub files: u64,
    /// Files whose documents were all delivered, and so deleted.
    pub files_deleted: u64,
    /// Documents delivered (duplicates included).
    pub delivered: u64,
    /// Of those, documents the cluster already had (409 on `create`).
    pub duplicates: u64,
    /// Documents not delivered (retryable or refused), kept in their file.
    pub failed: u64,
    /// The last error seen, if any.
    pub last_error: Option<String>,
}

/// Replays every complete `.ndjson` file in `dir`, oldest name first.
pub(crate) fn replay(
    dir: &Path,
    settings: TransportSettings,
    action: BulkAction,
) -> Result<ReplayReport, EcsError> {
    let io = |source| EcsError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io)?;
    let mut transport = Transport::new(settings);
    let mut report = ReplayReport::default();
    for path in files {
        report.files += 1;
        let data = std::fs::read(&path).map_err(|source| EcsError::Io {
            path: path.clone(),
            source,
        })?;
        // Pairs of lines: action, source.
        let lines: Vec<&[u8]> = data
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let pairs: Vec<(&[u8], &[u8])> = lines.chunks_exact(2).map(|c| (c[0], c[1])).collect();
        if pairs.is_empty() {
            let _ = std::fs::remove_file(&path);
            report.files_deleted += 1;
            continue;
        }
        let body = bytes::Bytes::copy_from_slice(&data);
        let fates: Vec<ItemFate> = match rt.block_on(transport.bulk(body)) {
            Err(e) => vec![ItemFate::Retry(e.0); pairs.len()],
            Ok(resp) => match classify(
                resp.status,
                resp.retry_after.as_deref(),
                &resp.body,
                pairs.len(),
                action,
                SystemTime::now(),
            ) {
                Verdict::Items(f) => f,
                Verdict::RetryAll { reason, .. } | Verdict::RejectAll { reason } => {
                    vec![ItemFate::Retry(reason); pairs.len()]
                }
                Verdict::TooLarge => vec![
                    ItemFate::Retry(
                        "http 413: the file is larger than the server accepts".into()
                    );
                    pairs.len()
                ],
            },
        };
        let mut keep = Vec::new();
        for ((a, s), f) in pairs.iter().zip(fates) {
            match f {
                ItemFate::Delivered => report.delivered += 1,
                ItemFate::Duplicate => {
                    report.delivered += 1;
                    report.duplicates += 1;
                }
                ItemFate::Retry(why) | ItemFate::Rejected(why) => {
                    report.failed += 1;
                    report.last_error = Some(why);
                    keep.extend_from_slice(a);
                    keep.push(b'\n');
                    keep.extend_from_slice(s);
                    keep.push(b'\n');
                }
            }
        }
        if keep.is_empty() {
            std::fs::remove_file(&path).map_err(|source| EcsError::Io {
                path: path.clone(),
                source,
            })?;
            report.files_deleted += 1;
        } else {
            let tmp = path.with_extension("ndjson.tmp");
            std::fs::write(&tmp, &keep)
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|source| EcsError::Io {
                    path: path.clone(),
                    source,
                })?;
        }
    }
    Ok(report)
}
