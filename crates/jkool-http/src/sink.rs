//! [`JkoolHttpSink`]: encodes a batch with the shared [`Encoder`], splits it into JSON-array
//! posts per endpoint ([`split_ranges`]), sends them with bounded concurrency, and folds the
//! answers into one [`Outcome`] ([`Fates`]).

use bytes::Bytes;
use futures_util::StreamExt as _;
use logship_core::split::split_ranges;
use logship_core::{Batch, Fates, Outcome, SendContext, Sink};
use logship_http::Url;
use logship_jkool::{EncodedBatch, EncodedDocument, Encoder};

use crate::classify::classify;
use crate::transport::{Body, Endpoints, PostError, Transport};

/// Bytes of a JSON array around its documents: `[` and `]`.
const ARRAY_OVERHEAD: usize = 2;

/// The [`Sink`] behind [`JkoolHttpLayer`](crate::JkoolHttpLayer), built only by
/// [`JkoolHttpBuilder`](crate::JkoolHttpBuilder). See the [crate docs](crate) for what it
/// sends and how answers are judged.
#[derive(Debug)]
pub struct JkoolHttpSink {
    pub(crate) encoder: Encoder,
    pub(crate) transport: Transport,
    pub(crate) endpoints: Endpoints,
    pub(crate) max_concurrent: usize,
    pub(crate) max_request_records: usize,
    pub(crate) max_request_bytes: usize,
    pub(crate) gzip: bool,
}

/// One planned post: its endpoint and the documents in it.
struct Request<'a> {
    url: &'a Url,
    what: String,
    docs: Vec<&'a EncodedDocument>,
}

impl JkoolHttpSink {
    /// Groups the documents by endpoint and cuts each group into posts of at most
    /// `max_request_records` documents and `max_request_bytes` bytes of JSON array.
    fn plan<'a>(&'a self, enc: &'a EncodedBatch) -> Vec<Request<'a>> {
        let mut out = Vec::new();
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
                    what: format!("jkool {} post", kind.endpoint()),
                    docs: docs[r].to_vec(),
                });
            }
        }
        out
    }

    fn body(&self, enc: &EncodedBatch, req: &Request<'_>) -> Body {
        let mut json = Vec::with_capacity(
            req.docs.iter().map(|d| d.len() + 1).sum::<usize>() + ARRAY_OVERHEAD,
        );
        enc.write_array(req.docs.iter().copied(), &mut json);
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
        let plan = self.plan(&enc);
        let bodies: Vec<(usize, Body)> = plan
            .iter()
            .enumerate()
            .map(|(i, r)| (i, self.body(&enc, r)))
            .collect();
        let sent: u64 = bodies.iter().map(|(_, b)| b.bytes.len() as u64).sum();
        let transport = &self.transport;
        let plan_ref = &plan;
        let answers: Vec<(usize, Result<logship_http::Reply, PostError>)> =
            futures_util::stream::iter(bodies)
                .map(|(i, body)| async move { (i, transport.post(plan_ref[i].url, body).await) })
                .buffer_unordered(self.max_concurrent.max(1))
                .collect()
                .await;
        cx.record_bytes_sent(sent);
        for (i, answer) in answers {
            let Some(req) = plan.get(i) else { continue };
            let verdict = match answer {
                Ok(reply) => classify(&reply, &req.what),
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
            max_concurrent: 4,
            max_request_records: max_records,
            max_request_bytes: max_bytes,
            gzip: false,
        }
    }

    fn doc_counts(s: &JkoolHttpSink, enc: &EncodedBatch) -> Vec<usize> {
        s.plan(enc).iter().map(|r| r.docs.len()).collect()
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
