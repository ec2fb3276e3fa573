//! Replaying a failure folder ([`EcsBuilder::replay_failure_folder`](crate::EcsBuilder::replay_failure_folder)).
//!
//! Undelivered documents are written by the core dead-letter folder
//! (`PipelineBuilder::with_dead_letter_dir`, which [`with_failure_folder`](crate::EcsBuilder::with_failure_folder)
//! sets): one record per line in the core's record JSON, in files named
//! `logship-ecs-<YYYYMMDDTHHMMSSZ>-<pid>-<n>.ndjson`. `logship replay` re-sends those to any
//! backend. Earlier versions of this crate wrote `_bulk` bodies instead (an action line with the
//! document's `_id` and a source line per document, files named
//! `<prefix>-<YYYYMMDDTHHMMSSZ>-<pid>-<n>.ndjson`); a replay reads both, line by line:
//!
//! | line | sent as |
//! |---|---|
//! | `{"create":{…}}` or `{"index":{…}}` followed by a line that is not an action | that pair, as it is |
//! | a core dead-letter record | encoded as this builder encodes it (the same `_id` the live layer sent: computed from the record's identity, which the line keeps) |
//! | an action line without its document line, or anything else | not sent: kept in the file and counted in [`ReplayReport::unsent_lines`] |
//!
//! Lines go out in `_bulk` requests of at most `max_request_bytes` each. A file is deleted only
//! when every one of its lines was delivered; otherwise it is rewritten (through a `.tmp` file
//! and a rename) with the lines still undelivered, or left as it is when none was. With the
//! default `create` action a document that did arrive earlier is answered 409 and counted as a
//! duplicate, never indexed twice, so a replay can be repeated safely: every line of a failure
//! folder was handed to a layer before, so a 409 here is taken as an earlier copy (the live
//! layer, which knows what it sent, refuses a 409 on a document it never sent).

use std::path::{Path, PathBuf};

use logship_core::Timestamp;
use logship_core::split::split_ranges;

use crate::classify::{BulkVerdict, ItemFate, classify};
use crate::encode::{BulkAction, Encoder, EncoderConfig};
use crate::error::EcsError;
use crate::sink::max_items_per_request;
use crate::transport::{Transport, TransportSettings};

/// What [`EcsBuilder::replay_failure_folder`](crate::EcsBuilder::replay_failure_folder) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayReport {
    /// `.ndjson` files read.
    pub files: u64,
    /// Files all of whose lines were delivered, and so deleted.
    pub files_deleted: u64,
    /// Documents delivered (duplicates included).
    pub delivered: u64,
    /// Of those, documents the cluster already had (409 on `create`).
    pub duplicates: u64,
    /// Documents not delivered (retryable or refused), kept in their file.
    pub failed: u64,
    /// Lines that could not be sent and were kept in their file: an action line without its
    /// document line (a torn write), or a line that is neither a `_bulk` pair nor a
    /// dead-letter record.
    pub unsent_lines: u64,
    /// The last error seen, if any (file and line for a line that was not sent).
    pub last_error: Option<String>,
}

/// One thing to send: the `_bulk` lines, and the file lines it came from.
struct Unit {
    /// Action and source lines, each ending in `\n`.
    bulk: Vec<u8>,
    /// Indices of the file lines it came from.
    lines: Vec<usize>,
}

/// Whether `v` is a `_bulk` action line this crate writes (`create` or `index`).
fn is_action(v: Option<&serde_json::Value>) -> bool {
    v.and_then(|v| v.as_object()).is_some_and(|o| {
        o.len() == 1
            && o.iter()
                .all(|(k, v)| matches!(k.as_str(), "create" | "index") && v.is_object())
    })
}

/// Splits one file into units to send and the indices of lines that cannot be sent.
fn units(lines: &[&[u8]], encoder: &mut Encoder) -> (Vec<Unit>, Vec<usize>) {
    let parsed: Vec<Option<serde_json::Value>> = lines
        .iter()
        .map(|l| serde_json::from_slice(l).ok())
        .collect();
    let mut units = Vec::new();
    let mut unsent = Vec::new();
    let created = Timestamp::now();
    let mut i = 0;
    while i < lines.len() {
        if is_action(parsed[i].as_ref()) {
            if i + 1 < lines.len() && !is_action(parsed[i + 1].as_ref()) {
                let mut bulk = Vec::with_capacity(lines[i].len() + lines[i + 1].len() + 2);
                for l in [lines[i], lines[i + 1]] {
                    bulk.extend_from_slice(l);
                    bulk.push(b'\n');
                }
                units.push(Unit {
                    bulk,
                    lines: vec![i, i + 1],
                });
                i += 2;
            } else {
                unsent.push(i);
                i += 1;
            }
            continue;
        }
        match parsed[i].as_ref().map(logship_core::json::record_from_json) {
            Some(Ok(record)) => {
                let mut bulk = Vec::new();
                encoder.encode(&record, created, &mut bulk);
                units.push(Unit {
                    bulk,
                    lines: vec![i],
                });
            }
            _ => unsent.push(i),
        }
        i += 1;
    }
    (units, unsent)
}

/// What the replay needs besides the folder.
pub(crate) struct ReplaySettings {
    pub(crate) transport: TransportSettings,
    pub(crate) encoder: EncoderConfig,
    pub(crate) action: BulkAction,
    pub(crate) max_request_bytes: usize,
}

/// Replays every complete `.ndjson` file in `dir`, oldest name first.
pub(crate) fn replay(dir: &Path, s: ReplaySettings) -> Result<ReplayReport, EcsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EcsError::Io { path, source }
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io(dir))?;
    let max_items = max_items_per_request(s.transport.http.max_reply_bytes());
    let mut transport = Transport::new(s.transport);
    let mut encoder = Encoder::new(s.encoder);
    let mut report = ReplayReport::default();
    for path in files {
        report.files += 1;
        let data = std::fs::read(&path).map_err(io(&path))?;
        let lines: Vec<&[u8]> = data
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .collect();
        let (units, unsent) = units(&lines, &mut encoder);
        for &i in &unsent {
            report.unsent_lines += 1;
            report.last_error = Some(format!(
                "{} line {}: not a `_bulk` action and document pair nor a dead-letter record (an action line without its document line is a torn write); kept in the file",
                path.display(),
                i + 1
            ));
        }
        // Lines to keep: the unsent ones and those of undelivered units.
        let mut keep = vec![false; lines.len()];
        for &i in &unsent {
            keep[i] = true;
        }
        let mut delivered_any = false;
        let sizes: Vec<usize> = units.iter().map(|u| u.bulk.len()).collect();
        let mut stop: Option<String> = None;
        for chunk in split_ranges(&sizes, max_items, s.max_request_bytes, 0) {
            let fates: Vec<ItemFate> = match &stop {
                Some(why) => vec![ItemFate::Retry(why.clone()); chunk.len()],
                None => {
                    let body: Vec<u8> = units[chunk.clone()]
                        .iter()
                        .flat_map(|u| u.bulk.iter().copied())
                        .collect();
                    match rt.block_on(transport.bulk(bytes::Bytes::from(body))) {
                        Err(e) => {
                            let why = e.to_string();
                            stop = Some(why.clone());
                            vec![ItemFate::Retry(why); chunk.len()]
                        }
                        Ok(reply) => match classify(&reply, chunk.len(), s.action) {
                            BulkVerdict::Items(f) => f,
                            BulkVerdict::Whole(v) => {
                                let why = v.reason().to_string();
                                if matches!(v, logship_core::Verdict::Retry { .. }) {
                                    stop = Some(why.clone());
                                }
                                vec![ItemFate::Retry(why); chunk.len()]
                            }
                            BulkVerdict::TooLarge => vec![
                                ItemFate::Retry(
                                    "bulk request: http 413: larger than the server accepts (lower with_max_request_bytes)".into()
                                );
                                chunk.len()
                            ],
                        },
                    }
                }
            };
            for (u, f) in units[chunk].iter().zip(fates) {
                match f {
                    ItemFate::Delivered => report.delivered += 1,
                    ItemFate::Duplicate | ItemFate::Conflict(_) => {
                        report.delivered += 1;
                        report.duplicates += 1;
                    }
                    ItemFate::Retry(why) | ItemFate::Rejected(why) => {
                        report.failed += 1;
                        report.last_error = Some(why);
                        for &i in &u.lines {
                            keep[i] = true;
                        }
                        continue;
                    }
                }
                delivered_any = true;
            }
        }
        // A file that grew while it was read (a layer still writing into it) is left as it
        // is: what was delivered from it goes again next time, as a duplicate.
        let meta = std::fs::metadata(&path).map_err(io(&path))?;
        if meta.len() != data.len() as u64 {
            continue;
        }
        if keep.iter().all(|k| !k) {
            std::fs::remove_file(&path).map_err(io(&path))?;
            report.files_deleted += 1;
        } else if delivered_any {
            let mut rest = Vec::new();
            for (l, _) in lines.iter().zip(&keep).filter(|(_, k)| **k) {
                rest.extend_from_slice(l);
                rest.push(b'\n');
            }
            let tmp = path.with_extension("ndjson.tmp");
            // The rewritten file keeps the original's permissions (0600 for dead letters).
            std::fs::write(&tmp, &rest)
                .and_then(|_| std::fs::set_permissions(&tmp, meta.permissions()))
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(io(&path))?;
        }
    }
    Ok(report)
}
