//! [`EcsSink`]: the [`Sink`] that encodes a batch into `_bulk` requests, sends them and turns
//! the answers into one [`Outcome`].
//!
//! One `send` may make several requests, never retrying one: the batch is cut into requests
//! of at most `max_request_bytes` (before compression), and a request answered 413 is halved
//! and the halves sent, down to single documents (a single document still too large is
//! rejected). After a whole-request 429/5xx or a connection failure, the rest of the batch is
//! not tried in this send: the pipeline retries it with backoff.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use logship_core::{Batch, Outcome, SendContext, Sink, Timestamp};

use crate::classify::{ItemFate, Verdict, classify, error_reason};
use crate::encode::{Encoder, EncoderConfig};
use crate::transport::{Transport, TransportSettings};

/// Longest the index template installation in `start` may take.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the sink besides the encoder's and the transport's.
#[derive(Debug, Clone)]
pub(crate) struct SinkSettings {
    pub(crate) max_request_bytes: usize,
    pub(crate) template: Option<(String, serde_json::Value)>,
    pub(crate) resolve_host_ip: bool,
    /// Shared with the failure folder's encoder: the addresses resolved in `start`.
    pub(crate) host_ips: Arc<OnceLock<Vec<String>>>,
}

/// The Elasticsearch / OpenSearch sink. Built by [`EcsBuilder`](crate::EcsBuilder).
#[derive(Debug)]
pub(crate) struct EcsSink {
    encoder: Encoder,
    transport: Transport,
    settings: SinkSettings,
    body: Vec<u8>,
    bounds: Vec<Range<usize>>,
}

impl EcsSink {
    pub(crate) fn new(
        cfg: EncoderConfig,
        transport: TransportSettings,
        settings: SinkSettings,
    ) -> Self {
        Self {
            encoder: Encoder::new(cfg),
            transport: Transport::new(transport),
            settings,
            body: Vec::new(),
            bounds: Vec::new(),
        }
    }

    /// Encodes the batch into `self.body`; `self.bounds[i]` is record `i`'s two lines.
    fn encode(&mut self, batch: &Batch) {
        self.body.clear();
        self.bounds.clear();
        let created = Timestamp::now();
        for r in batch.records() {
            let start = self.body.len();
            self.encoder.encode(r, created, &mut self.body);
            self.bounds.push(start..self.body.len());
        }
    }

    /// Cuts `0..n` into runs of at most `max_request_bytes` (at least one document each).
    fn chunks(&self) -> VecDeque<Range<usize>> {
        let mut out = VecDeque::new();
        let mut start = 0;
        let mut bytes = 0;
        for (i, b) in self.bounds.iter().enumerate() {
            let len = b.len();
            if i > start && bytes + len > self.settings.max_request_bytes {
                out.push_back(start..i);
                start = i;
                bytes = 0;
            }
            bytes += len;
        }
        if start < self.bounds.len() {
            out.push_back(start..self.bounds.len());
        }
        out
    }
}

/// Address strings of this host (what the original's `gethostbyname(gethostname())` gave),
/// non-loopback ones when there are any.
fn resolve_host_ips(host: &str) -> Vec<String> {
    use std::net::ToSocketAddrs;
    let Ok(addrs) = (host, 0).to_socket_addrs() else {
        return Vec::new();
    };
    let mut all: Vec<std::net::IpAddr> = Vec::new();
    for a in addrs {
        if !all.contains(&a.ip()) {
            all.push(a.ip());
        }
    }
    let public: Vec<_> = all.iter().filter(|ip| !ip.is_loopback()).collect();
    if public.is_empty() {
        all.iter().map(ToString::to_string).collect()
    } else {
        public.into_iter().map(ToString::to_string).collect()
    }
}

impl Sink for EcsSink {
    fn name(&self) -> &'static str {
        "ecs"
    }

    async fn start(&mut self) -> Result<(), String> {
        if self.settings.resolve_host_ip
            && let Some(h) = self.encoder.config().host_name.clone()
        {
            let ips = self
                .settings
                .host_ips
                .get_or_init(|| resolve_host_ips(&h))
                .clone();
            self.encoder.set_host_ips(ips);
        }
        self.transport.ensure_client().map_err(|e| e.0)?;
        if let Some((name, body)) = self.settings.template.clone() {
            let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
            // `start` has no deadline of its own: bound the template request here.
            let r = tokio::time::timeout(START_TIMEOUT, self.transport.put_template(&name, bytes))
                .await
                .map_err(|_| {
                    format!(
                        "installing index template `{name}` timed out after {} s",
                        START_TIMEOUT.as_secs()
                    )
                })?
                .map_err(|e| e.0)?;
            if !(200..300).contains(&r.status) {
                return Err(format!(
                    "installing index template `{name}` failed: http {}: {}",
                    r.status,
                    error_reason(&r.body)
                ));
            }
        }
        Ok(())
    }

    async fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> Outcome {
        self.encode(batch);
        if cx.wants_payload() {
            cx.set_payload(self.body.clone());
        }
        let n = batch.len();
        let action = self.encoder.config().action;
        let mut fates: Vec<Option<ItemFate>> = vec![None; n];
        let mut after: Option<Duration> = None;
        let mut work = self.chunks();
        // The requests share the encoded batch (`slice` is a reference count, not a copy); the
        // buffer is taken back for the next batch when the requests have let go of it.
        let body = bytes::Bytes::from(std::mem::take(&mut self.body));
        while let Some(chunk) = work.pop_front() {
            let bytes = self.bounds[chunk.start].start..self.bounds[chunk.end - 1].end;
            let res = self.transport.bulk(body.slice(bytes)).await;
            cx.record_bytes_sent(self.transport.last_wire_bytes);
            let resp = match res {
                Ok(r) => r,
                Err(e) => {
                    // Nothing more can go out in this send: mark the rest for retry.
                    for i in chunk.chain(work.drain(..).flatten()) {
                        fates[i] = Some(ItemFate::Retry(e.0.clone()));
                    }
                    break;
                }
            };
            match classify(
                resp.status,
                resp.retry_after.as_deref(),
                &resp.body,
                chunk.len(),
                action,
                SystemTime::now(),
            ) {
                Verdict::Items(items) => {
                    for (i, f) in chunk.zip(items) {
                        fates[i] = Some(f);
                    }
                }
                Verdict::RetryAll { after: a, reason } => {
                    after = after.max(a);
                    self.transport.rotate();
                    for i in chunk.chain(work.drain(..).flatten()) {
                        fates[i] = Some(ItemFate::Retry(reason.clone()));
                    }
                    break;
                }
                Verdict::RejectAll { reason } => {
                    for i in chunk {
                        fates[i] = Some(ItemFate::Rejected(reason.clone()));
                    }
                }
                Verdict::TooLarge if chunk.len() > 1 => {
                    let mid = chunk.start + chunk.len() / 2;
                    work.push_front(mid..chunk.end);
                    work.push_front(chunk.start..mid);
                }
                Verdict::TooLarge => {
                    fates[chunk.start] = Some(ItemFate::Rejected(format!(
                        "http 413: the document ({} bytes encoded) is larger than the server accepts (http.max_content_length)",
                        self.bounds[chunk.start].len()
                    )));
                }
            }
        }
        self.body = reclaim(body);
        outcome(fates, after, cx)
    }
}

/// The buffer of `body`, emptied, if nothing else holds it; a new one otherwise.
fn reclaim(body: bytes::Bytes) -> Vec<u8> {
    match body.try_into_mut() {
        Ok(b) => {
            let mut v = Vec::from(b);
            v.clear();
            v
        }
        Err(_) => Vec::new(),
    }
}

/// Folds per-document fates into one [`Outcome`].
fn outcome(fates: Vec<Option<ItemFate>>, after: Option<Duration>, cx: &mut SendContext) -> Outcome {
    let n = fates.len();
    let mut retry = Vec::new();
    let mut rejected = Vec::new();
    let mut first_retry_reason = None;
    let mut duplicates = 0u64;
    for (i, f) in fates.into_iter().enumerate() {
        match f.unwrap_or_else(|| ItemFate::Retry("not sent".into())) {
            ItemFate::Delivered => {}
            ItemFate::Duplicate => duplicates += 1,
            ItemFate::Retry(why) => {
                first_retry_reason.get_or_insert(why);
                retry.push(i);
            }
            ItemFate::Rejected(why) => rejected.push((i, why)),
        }
    }
    if duplicates > 0 {
        cx.record_duplicates(duplicates);
    }
    if retry.is_empty() && rejected.is_empty() {
        return Outcome::Delivered;
    }
    if retry.len() == n {
        return Outcome::Retry {
            after,
            reason: first_retry_reason.unwrap_or_default(),
        };
    }
    if rejected.len() == n && rejected.iter().all(|(_, r)| *r == rejected[0].1) {
        return Outcome::Rejected {
            reason: rejected.swap_remove(0).1,
        };
    }
    Outcome::Partial {
        retry,
        rejected,
        after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_buffer_is_reused_when_the_requests_let_go() {
        let mut v = Vec::with_capacity(4096);
        v.extend_from_slice(b"{}\n{}\n");
        let ptr = v.as_ptr();
        let body = bytes::Bytes::from(v);
        let chunk = body.slice(0..3);
        drop(chunk.clone());
        drop(chunk);
        let back = reclaim(body);
        assert_eq!((back.as_ptr(), back.capacity(), back.len()), (ptr, 4096, 0));
        // Still shared: a new buffer, the request keeps its bytes.
        let mut back = back;
        back.extend_from_slice(b"{}\n{}\n");
        let body = bytes::Bytes::from(back);
        let held = body.slice(3..);
        let fresh = reclaim(body);
        assert_eq!(fresh.capacity(), 0);
        drop(held);
    }

    #[test]
    fn outcome_folding() {
        let mut cx = SendContext::for_test();
        use ItemFate::*;
        assert_eq!(
            outcome(vec![Some(Delivered), Some(Duplicate)], None, &mut cx),
            Outcome::Delivered
        );
        assert_eq!(
            outcome(
                vec![Some(Retry("a".into())), Some(Retry("b".into()))],
                None,
                &mut cx
            ),
            Outcome::Retry {
                after: None,
                reason: "a".into()
            }
        );
        assert_eq!(
            outcome(
                vec![Some(Rejected("x".into())), Some(Rejected("x".into()))],
                None,
                &mut cx
            ),
            Outcome::rejected("x")
        );
        assert_eq!(
            outcome(
                vec![
                    Some(Delivered),
                    Some(Retry("r".into())),
                    Some(Rejected("x".into()))
                ],
                Some(Duration::from_secs(1)),
                &mut cx
            ),
            Outcome::Partial {
                retry: vec![1],
                rejected: vec![(2, "x".into())],
                after: Some(Duration::from_secs(1))
            }
        );
    }
}
