//! [`JkoolHttpSink`]: encodes a batch with the shared [`Encoder`], posts each document as
//! its own JSON object (or, with [`BodyShape::Array`], cuts the batch into JSON-array posts per
//! endpoint with [`split_ranges`]), keeps a bounded number of posts in flight, and folds the
//! answers into one [`Outcome`] ([`Fates`]): each post's answer decides the fate of the
//! records it carried.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use logship_core::split::split_ranges;
use logship_core::{Batch, Fates, Outcome, SendContext, Sink, Verdict};
use logship_http::Url;
use logship_jkool::{DocumentKind, EncodedBatch, EncodedDocument, Encoder};

use crate::classify::classify;
use crate::config::BodyShape;
use crate::transport::{Body, Endpoints, PostError, Transport};

/// Bytes of a JSON array around its documents: `[` and `]`.
const ARRAY_OVERHEAD: usize = 2;

/// How long before the core's send deadline the posts still unanswered are given up (and
/// their records returned for retry), so that the outcome of the answered ones is reported.
const DEADLINE_MARGIN: Duration = Duration::from_millis(50);

/// The [`Sink`] behind [`JkoolHttpLayer`](crate::JkoolHttpLayer), built only by
/// [`JkoolHttpBuilder`](crate::JkoolHttpBuilder). See the [crate docs](crate) for what it
/// sends and how answers are judged.
#[derive(Debug)]
pub struct JkoolHttpSink {
    pub(crate) encoder: Encoder,
    pub(crate) transport: Transport,
    pub(crate) endpoints: Endpoints,
    pub(crate) max_in_flight: usize,
    pub(crate) body_shape: BodyShape,
    pub(crate) max_request_records: usize,
    pub(crate) max_request_bytes: usize,
    pub(crate) gzip: bool,
}

/// A post's answer; `None` when it had none by the deadline.
type Answer = Option<Result<logship_http::Reply, PostError>>;

/// How errors name a post of this kind.
fn what(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Event => "jkool event post",
        DocumentKind::Activity => "jkool activity post",
        DocumentKind::Snapshot => "jkool snapshot post",
        _ => "jkool post",
    }
}

/// One planned post: its endpoint and the documents in it.
struct Request<'a> {
    url: &'a Url,
    what: &'static str,
    docs: Vec<&'a EncodedDocument>,
}

impl JkoolHttpSink {
    /// One post per document ([`BodyShape::Object`]), or ([`BodyShape::Array`]) the documents
    /// grouped by endpoint and each group cut into posts of at most `max_request_records`
    /// documents and `max_request_bytes` bytes of JSON array.
    fn plan<'a>(&'a self, enc: &'a EncodedBatch) -> Vec<Request<'a>> {
        let mut out = Vec::new();
        if self.body_shape == BodyShape::Object {
            for d in enc.documents() {
                let Some((_, url)) = self.endpoints.0.iter().find(|(k, _)| *k == d.kind) else {
                    continue;
                };
                out.push(Request {
                    url,
                    what: what(d.kind),
                    docs: vec![d],
                });
            }
            return out;
        }
        for (kind, url) in &self.endpoints.0 {
            let docs: Vec<&EncodedDocument> =
                enc.documents().iter().filter(|d| d.kind == *kind).collect();
            // Each document is followed by a `,` (or the closing `]`).
            let sizes: Vec<usize> = docs.iter().map(|d| d.len() + 1).collect();
            for r in split_ranges(
                &sizes,
                self.max_request_records,
                self.max_request_bytes,
                ARRAY_OVERHEAD,
            ) {
                out.push(Request {
                    url,
                    what: what(*kind),
                    docs: docs[r].to_vec(),
                });
            }
        }
        out
    }

    fn body(&self, enc: &EncodedBatch, req: &Request<'_>) -> Body {
        let json = match (self.body_shape, req.docs.as_slice()) {
            (BodyShape::Object, [doc]) => enc.bytes(doc).to_vec(),
            _ => {
                let mut json = Vec::with_capacity(
                    req.docs.iter().map(|d| d.len() + 1).sum::<usize>() + ARRAY_OVERHEAD,
                );
                enc.write_array(req.docs.iter().copied(), &mut json);
                json
            }
        };
        if self.gzip {
            Body {
                bytes: Bytes::from(logship_core::compress::gzip(&json, 1)),
                gzip: true,
            }
        } else {
            Body {
                bytes: Bytes::from(json),
                gzip: false,
            }
        }
    }
}

impl Sink for JkoolHttpSink {
    fn name(&self) -> &'static str {
        "jkool-http"
    }

    async fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> Outcome {
        let enc = self.encoder.encode_batch(batch.records());
        let mut fates = Fates::new(batch.len());
        for (i, reason) in enc.failed() {
            fates.reject(*i, reason.clone());
        }
        if cx.wants_payload() {
            let mut all = Vec::new();
            enc.write_array(enc.documents(), &mut all);
            cx.set_payload(all);
        }
        if let Err(e) = self.transport.ready() {
            let verdict = e.verdict();
            fates.apply(enc.documents().iter().map(|d| d.record), &verdict);
            return fates.outcome();
        }
        let this = &*self;
        let plan = this.plan(&enc);
        let (enc_ref, plan_ref) = (&enc, &plan);
        // Every post ends by the core's send deadline minus a margin: a post still unanswered
        // then is retried, while the answered ones keep their fate, so a hung post never makes
        // the core resend records that were already delivered (the core would retry the whole
        // batch if it had to abandon the send itself).
        let deadline = cx
            .deadline()
            .checked_sub(DEADLINE_MARGIN)
            .unwrap_or_else(Instant::now);
        // Bodies are made when their post starts, so at most `max_in_flight` exist at once.
        let answers: Vec<(usize, u64, Answer)> = futures_util::stream::iter(0..plan.len())
            .map(|i| async move {
                let req = &plan_ref[i];
                let body = this.body(enc_ref, req);
                let len = body.bytes.len() as u64;
                let post = this.transport.post(req.url, body);
                (
                    i,
                    len,
                    tokio::time::timeout_at(deadline.into(), post).await.ok(),
                )
            })
            .buffer_unordered(this.max_in_flight.max(1))
            .collect()
            .await;
        let sent: u64 = answers.iter().map(|(_, len, _)| len).sum();
        cx.record_bytes_sent(sent);
        for (i, _, answer) in answers {
            let Some(req) = plan.get(i) else { continue };
            let Some(answer) = answer else {
                let verdict =
                    Verdict::retry(format!("{}: no answer within the send timeout", req.what));
                fates.apply(req.docs.iter().map(|d| d.record), &verdict);
                continue;
            };
            let verdict = match answer {
                Ok(reply) => classify(&reply, req.what),
                Err(PostError::Send(e)) => {
                    if e.certificate().is_some() {
                        cx.record_certificate_failure();
                    }
                    e.verdict()
                }
                Err(PostError::Refused(v)) => v,
            };
            fates.apply(req.docs.iter().map(|d| d.record), &verdict);
        }
        fates.outcome()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logship_core::{Level, Record};

    fn sink(max_records: usize, max_bytes: usize) -> JkoolHttpSink {
        array_sink(max_records, max_bytes, BodyShape::Array)
    }

    fn array_sink(max_records: usize, max_bytes: usize, body_shape: BodyShape) -> JkoolHttpSink {
        let url = Url::parse("http://127.0.0.1:1/JESL").unwrap_or_else(|e| panic!("{e}"));
        let http = logship_http::HttpOptions::new("test")
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        JkoolHttpSink {
            encoder: Encoder::default(),
            transport: Transport::Client(crate::transport::ClientTransport::new(
                http,
                (
                    "token",
                    logship_http::reqwest::header::HeaderValue::from_static("t"),
                ),
            )),
            endpoints: Endpoints::new(&url).unwrap_or_else(|e| panic!("{e}")),
            max_in_flight: 4,
            body_shape,
            max_request_records: max_records,
            max_request_bytes: max_bytes,
            gzip: false,
        }
    }

    fn doc_counts(s: &JkoolHttpSink, enc: &EncodedBatch) -> Vec<usize> {
        s.plan(enc).iter().map(|r| r.docs.len()).collect()
    }

    #[test]
    fn by_default_every_document_is_its_own_object_post() {
        let mut records: Vec<Box<Record>> = (0..3)
            .map(|i| Box::new(Record::event(Level::INFO, "t").with_field("i", i).build()))
            .collect();
        records.push(Box::new(
            Record::span_timing("s", logship_core::Timestamp::now(), Default::default()).build(),
        ));
        let enc = Encoder::default().encode_batch(&records);
        // The request limits do not group documents in object mode.
        let s = array_sink(500, 1 << 20, BodyShape::Object);
        let plan = s.plan(&enc);
        assert_eq!(plan.len(), 4);
        assert!(plan.iter().all(|r| r.docs.len() == 1));
        let paths: Vec<_> = plan.iter().map(|r| r.url.path()).collect();
        assert_eq!(
            paths,
            [
                "/JESL/event",
                "/JESL/event",
                "/JESL/event",
                "/JESL/activity"
            ]
        );
        for (req, doc) in plan.iter().zip(enc.documents()) {
            let body = s.body(&enc, req);
            assert_eq!(
                &body.bytes[..],
                enc.bytes(doc),
                "the body is the document itself"
            );
            assert!(body.bytes.starts_with(b"{") && body.bytes.ends_with(b"}"));
        }
    }

    #[test]
    fn posts_are_cut_by_records_and_bytes_per_endpoint() {
        let records: Vec<Box<Record>> = (0..5)
            .map(|i| Box::new(Record::event(Level::INFO, "t").with_field("i", i).build()))
            .collect();
        let enc = Encoder::default().encode_batch(&records);
        let s = sink(2, 1 << 20);
        assert_eq!(doc_counts(&s, &enc), vec![2, 2, 1]);
        assert!(s.plan(&enc).iter().all(|r| r.url.path() == "/JESL/event"));
        // A byte limit that fits exactly one document (and the array brackets) per post.
        let one = enc.documents()[0].len() + 1 + ARRAY_OVERHEAD;
        assert_eq!(doc_counts(&sink(500, one), &enc), vec![1; 5]);
        // Every body is a JSON array of its documents.
        let s = sink(500, 1 << 20);
        let plan = s.plan(&enc);
        assert_eq!(plan.len(), 1);
        let body = s.body(&enc, &plan[0]);
        assert!(body.bytes.starts_with(b"[{") && body.bytes.ends_with(b"}]"));
        assert_eq!(
            body.bytes.len(),
            enc.documents().iter().map(|d| d.len() + 1).sum::<usize>() + 1
        );
    }
}
