//! [`JkoolHttpSink`]: encodes a batch with the shared [`Encoder`], splits it into JSON-array
//! posts per endpoint, sends them over kept-alive connections with bounded concurrency, and
//! folds the answers into one [`Outcome`].

use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use logship_core::{Batch, Outcome, SendContext, Sink};
use logship_jkool::{DocumentKind, EncodedBatch, EncodedDocument, Encoder};

use crate::classify::{Verdict, classify};
use crate::transport::{Body, Transport};

/// The [`Sink`] behind [`JkoolHttpLayer`](crate::JkoolHttpLayer), built only by
/// [`JkoolHttpBuilder`](crate::JkoolHttpBuilder). See the [crate docs](crate) for what it
/// sends and how answers are judged.
#[derive(Debug)]
pub struct JkoolHttpSink {
    pub(crate) encoder: Encoder,
    pub(crate) transport: Transport,
    pub(crate) max_concurrent: usize,
    pub(crate) max_request_records: usize,
    pub(crate) max_request_bytes: usize,
    pub(crate) gzip: bool,
}

/// One planned post: its endpoint, body and the documents in it.
struct Request<'a> {
    kind: DocumentKind,
    docs: Vec<&'a EncodedDocument>,
}

/// Per-record state while folding answers; worst wins.
#[derive(Clone, Debug, PartialEq)]
enum Fate {
    Delivered,
    Retry,
    Rejected(String),
}

impl JkoolHttpSink {
    fn plan<'a>(&self, enc: &'a EncodedBatch) -> Vec<Request<'a>> {
        let mut out = Vec::new();
        for kind in DocumentKind::ALL {
            let mut cur: Vec<&EncodedDocument> = Vec::new();
            let mut bytes = 2;
            for d in enc.documents().iter().filter(|d| d.kind == kind) {
                if !cur.is_empty()
                    && (cur.len() >= self.max_request_records
                        || bytes + d.len() + 1 > self.max_request_bytes)
                {
                    out.push(Request {
                        kind,
                        docs: std::mem::take(&mut cur),
                    });
                    bytes = 2;
                }
                bytes += d.len() + 1;
                cur.push(d);
            }
            if !cur.is_empty() {
                out.push(Request { kind, docs: cur });
            }
        }
        out
    }

    fn body(&self, enc: &EncodedBatch, req: &Request<'_>) -> Body {
        let mut json = Vec::with_capacity(req.docs.iter().map(|d| d.len() + 1).sum::<usize>() + 2);
        enc.write_array(req.docs.iter().copied(), &mut json);
        if self.gzip {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(json.len() / 4),
                flate2::Compression::fast(),
            );
            if gz.write_all(&json).is_ok()
                && let Ok(bytes) = gz.finish()
            {
                return Body {
                    bytes: Bytes::from(bytes),
                    gzip: true,
                };
            }
        }
        Body {
            bytes: Bytes::from(json),
            gzip: false,
        }
    }
}

impl Sink for JkoolHttpSink {
    fn name(&self) -> &'static str {
        "jkool-http"
    }

    async fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> Outcome {
        let enc = self.encoder.encode_batch(batch.records());
        let mut fate = vec![Fate::Delivered; batch.len()];
        for (i, reason) in enc.failed() {
            if let Some(f) = fate.get_mut(*i) {
                *f = Fate::Rejected(reason.clone());
            }
        }
        let plan = self.plan(&enc);
        if cx.wants_payload() {
            let mut all = Vec::new();
            enc.write_array(enc.documents(), &mut all);
            cx.set_payload(all);
        }
        let bodies: Vec<(usize, &'static str, Body)> = plan
            .iter()
            .enumerate()
            .map(|(i, r)| (i, r.kind.endpoint(), self.body(&enc, r)))
            .collect();
        let sent: u64 = bodies.iter().map(|(_, _, b)| b.bytes.len() as u64).sum();
        let transport = &self.transport;
        let answers: Vec<(usize, Verdict)> = futures_util::stream::iter(bodies)
            .map(|(i, endpoint, body)| async move {
                let verdict = match transport.post(endpoint, body).await {
                    Ok(reply) => classify(reply.status, reply.retry_after.as_deref(), &reply.body),
                    Err(v) => v,
                };
                (i, verdict)
            })
            .buffer_unordered(self.max_concurrent.max(1))
            .collect()
            .await;
        cx.record_bytes_sent(sent);
        fold(&plan, answers, fate)
    }
}

fn fold(plan: &[Request<'_>], answers: Vec<(usize, Verdict)>, mut fate: Vec<Fate>) -> Outcome {
    let mut after: Option<Duration> = None;
    let mut retry_reason: Option<String> = None;
    for (i, verdict) in answers {
        let Some(req) = plan.get(i) else { continue };
        let new = match verdict {
            Verdict::Delivered => continue,
            Verdict::Retry { after: a, reason } => {
                after = after.max(a);
                retry_reason.get_or_insert(reason);
                Fate::Retry
            }
            Verdict::Rejected { reason } => Fate::Rejected(reason),
        };
        for d in &req.docs {
            if let Some(f) = fate.get_mut(d.record) {
                // Rejected beats retry beats delivered.
                match (&*f, &new) {
                    (Fate::Rejected(_), _) | (Fate::Retry, Fate::Retry) => {}
                    _ => *f = new.clone(),
                }
            }
        }
    }
    let retry: Vec<usize> = (0..fate.len())
        .filter(|&i| fate[i] == Fate::Retry)
        .collect();
    let rejected: Vec<(usize, String)> = fate
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match f {
            Fate::Rejected(r) => Some((i, r.clone())),
            _ => None,
        })
        .collect();
    let n = fate.len();
    if retry.is_empty() && rejected.is_empty() {
        Outcome::Delivered
    } else if retry.len() == n {
        Outcome::Retry {
            after,
            reason: retry_reason.unwrap_or_else(|| "jkool did not accept the batch".into()),
        }
    } else if rejected.len() == n && rejected.iter().all(|(_, r)| *r == rejected[0].1) {
        Outcome::Rejected {
            reason: rejected[0].1.clone(),
        }
    } else {
        Outcome::Partial {
            retry,
            rejected,
            after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_keeps_the_worst_fate_per_record() {
        // Documents of records 0,1 in request 0 and records 1,2 in request 1 (a record with a
        // separate snapshot lands in two requests).
        let docs = logship_jkool::Encoder::default().encode_batch(&[
            logship_core::Record::event(logship_core::Level::INFO, "a").build(),
            logship_core::Record::event(logship_core::Level::INFO, "b").build(),
            logship_core::Record::event(logship_core::Level::INFO, "c").build(),
        ]);
        let d = docs.documents();
        let plan = vec![
            Request {
                kind: DocumentKind::Event,
                docs: vec![&d[0], &d[1]],
            },
            Request {
                kind: DocumentKind::Event,
                docs: vec![&d[1], &d[2]],
            },
        ];
        let retry = || Verdict::Retry {
            after: Some(Duration::from_secs(2)),
            reason: "http 503".into(),
        };
        let all_ok = fold(
            &plan,
            vec![(0, Verdict::Delivered), (1, Verdict::Delivered)],
            vec![Fate::Delivered; 3],
        );
        assert_eq!(all_ok, Outcome::Delivered);
        let all_retry = fold(
            &plan,
            vec![(1, retry()), (0, retry())],
            vec![Fate::Delivered; 3],
        );
        assert_eq!(
            all_retry,
            Outcome::Retry {
                after: Some(Duration::from_secs(2)),
                reason: "http 503".into()
            }
        );
        let mixed = fold(
            &plan,
            vec![(0, Verdict::Delivered), (1, retry())],
            vec![Fate::Delivered; 3],
        );
        assert_eq!(
            mixed,
            Outcome::Partial {
                retry: vec![1, 2],
                rejected: vec![],
                after: Some(Duration::from_secs(2))
            }
        );
        let rej = fold(
            &plan,
            vec![
                (
                    0,
                    Verdict::Rejected {
                        reason: "http 400".into(),
                    },
                ),
                (1, retry()),
            ],
            vec![Fate::Delivered; 3],
        );
        assert_eq!(
            rej,
            Outcome::Partial {
                retry: vec![2],
                rejected: vec![(0, "http 400".into()), (1, "http 400".into())],
                after: Some(Duration::from_secs(2))
            }
        );
    }
}
