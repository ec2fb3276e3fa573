//! [`EcsSink`]: the [`Sink`] that encodes a batch into `_bulk` requests, sends them and turns
//! the answers into one [`Outcome`].
//!
//! One `send` may make several requests, never retrying one: the batch is cut into requests
//! of at most `max_request_bytes` (before compression) and at most
//! [`max_items_per_request`] documents (so that the bulk response fits under the reply cap),
//! with the shared [`split_ranges`]; a request answered 413 is halved and the halves sent,
//! down to single documents (a single document still too large is rejected). After a
//! whole-request retry (408/429/5xx, a connection or certificate failure), the rest of the
//! batch is not tried in this send: the pipeline retries it with backoff. The per-document
//! verdicts are folded by the shared [`Fates`].

use std::collections::VecDeque;
use std::ops::Range;
use std::time::Duration;

use logship_core::split::split_ranges;
use logship_core::{Batch, Fates, Outcome, SendContext, Sink, Timestamp, Verdict};

use crate::classify::{BulkVerdict, ItemFate, classify, error_reason};
use crate::encode::{DocId, Encoder, EncoderConfig};
use crate::transport::{Transport, TransportSettings};

/// Bytes of bulk response allowed per document when sizing requests: an Elasticsearch item
/// answer is some 150–250 bytes (more with an error), so `max_reply_bytes / 512` documents per
/// request keep a whole answer under the reply cap.
const REPLY_BYTES_PER_ITEM: usize = 512;

/// Most documents in one `_bulk` request for a reply cap of `max_reply_bytes` (at least 1).
pub(crate) fn max_items_per_request(max_reply_bytes: usize) -> usize {
    (max_reply_bytes / REPLY_BYTES_PER_ITEM).max(1)
}

/// Longest the index template installation in `start` may take.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the sink besides the encoder's and the transport's.
#[derive(Debug, Clone)]
pub(crate) struct SinkSettings {
    pub(crate) max_request_bytes: usize,
    pub(crate) template: Option<(String, serde_json::Value)>,
    /// Fill `host.ip` and `host.id` on the worker thread when it starts.
    pub(crate) host_fields: bool,
    /// Every 409 on `create` is an earlier copy (replaying dead letters).
    pub(crate) conflicts_as_duplicates: bool,
}

/// The Elasticsearch / OpenSearch sink. Built by [`EcsBuilder`](crate::EcsBuilder).
#[derive(Debug)]
pub(crate) struct EcsSink {
    encoder: Encoder,
    transport: Transport,
    settings: SinkSettings,
    body: Vec<u8>,
    bounds: Vec<Range<usize>>,
    /// `ids[i]` is record `i`'s `_id`.
    ids: Vec<DocId>,
    sent: SentIds,
}

/// The `_id`s this sink has put on the wire whose fate is not known yet (sent, then the
/// request timed out, the reply was lost or the item was answered 429/5xx): a 409 on one of
/// them is our own earlier attempt that landed. Bounded to [`SentIds::MAX`] ids (16 bytes
/// each), the oldest forgotten first; an id leaves when its document is delivered or refused.
#[derive(Debug, Default)]
pub(crate) struct SentIds {
    set: std::collections::HashSet<DocId>,
    order: VecDeque<DocId>,
}

impl SentIds {
    /// Ids remembered at most: more than a default queue (32 768 records) holds.
    pub(crate) const MAX: usize = 1 << 16;

    /// Remembers `id` as sent (before the request goes out: a send cut short by the
    /// pipeline's timeout never reaches the code after it).
    pub(crate) fn insert(&mut self, id: DocId) {
        if self.set.insert(id) {
            self.order.push_back(id);
            while self.order.len() > Self::MAX {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
        // Keep the queue from growing with ids already forgotten from the set.
        if self.order.len() > 2 * self.set.len() + 1024 {
            let set = &self.set;
            self.order.retain(|id| set.contains(id));
        }
    }

    /// Forgets `id` (its fate is known).
    pub(crate) fn remove(&mut self, id: &DocId) {
        self.set.remove(id);
    }

    /// Whether `id` was sent before and its fate is not known.
    pub(crate) fn contains(&self, id: &DocId) -> bool {
        self.set.contains(id)
    }
}

/// Resolves a 409 on `create`: a duplicate when this document was sent before (a copy landed),
/// else a conflict with a document some other writer stored under the same `_id`.
pub(crate) fn resolve_conflict(fate: ItemFate, id: DocId, sent_before: bool) -> ItemFate {
    match fate {
        ItemFate::Conflict(_) if sent_before => ItemFate::Duplicate,
        ItemFate::Conflict(why) => ItemFate::Rejected(format!(
            "{why} (`_id` {id} already exists, but this document had not been sent before: another writer stored a document under the same `_id`)"
        )),
        other => other,
    }
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
            ids: Vec::new(),
            sent: SentIds::default(),
        }
    }

    /// Encodes the batch into `self.body`; `self.bounds[i]` is record `i`'s two lines.
    fn encode(&mut self, batch: &Batch) {
        self.body.clear();
        self.bounds.clear();
        self.ids.clear();
        let created = Timestamp::now();
        for r in batch.records() {
            let start = self.body.len();
            let id = self.encoder.encode(r, created, &mut self.body);
            self.bounds.push(start..self.body.len());
            self.ids.push(id);
        }
    }

    /// Cuts `0..n` into requests of at most `max_request_bytes` and
    /// [`max_items_per_request`] documents (at least one document each).
    fn chunks(&self) -> VecDeque<Range<usize>> {
        let sizes: Vec<usize> = self.bounds.iter().map(|b| b.len()).collect();
        split_ranges(
            &sizes,
            max_items_per_request(self.transport.max_reply_bytes()),
            self.settings.max_request_bytes,
            0,
        )
        .into()
    }
}

/// Address strings of this host (what the original's `gethostbyname(gethostname())` gave),
/// non-loopback ones when there are any.
pub(crate) fn resolve_host_ips(host: &str) -> Vec<String> {
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

/// This machine's id for `host.id`: the first line of `/etc/machine-id` (systemd, machine-id(5))
/// or `/var/lib/dbus/machine-id`, the value OpenTelemetry's `host.id` convention names for
/// non-containerized systems (<https://opentelemetry.io/docs/specs/semconv/resource/host/>);
/// `None` where neither exists (not Linux, a minimal container). Read on the worker thread.
pub(crate) fn machine_id() -> Option<String> {
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|p| parse_machine_id(&std::fs::read(p).ok()?))
}

/// The id in a machine-id file: 32 hex digits on the first line (anything else: `None`).
pub(crate) fn parse_machine_id(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes.get(..bytes.len().min(64))?).ok()?;
    let id = text.lines().next()?.trim();
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_ascii_lowercase())
}

impl Sink for EcsSink {
    fn name(&self) -> &'static str {
        "ecs"
    }

    async fn start(&mut self) -> Result<(), String> {
        if self.settings.host_fields {
            let ips = match self.encoder.config().host_name.clone() {
                Some(h) => resolve_host_ips(&h),
                None => Vec::new(),
            };
            let id = machine_id().or_else(|| self.encoder.config().host_name.clone());
            self.encoder.set_host(ips, id);
        }
        self.transport.ensure_client().map_err(|e| e.to_string())?;
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
                .map_err(|e| e.to_string())?;
            if !r.is_success() {
                let mut why = format!(
                    "installing index template `{name}` failed: http {}: {}",
                    r.status,
                    error_reason(&r.body)
                );
                if let Some(to) = &r.location {
                    why.push_str(&format!(" (redirect to {to}, not followed)"));
                }
                return Err(why);
            }
        }
        Ok(())
    }

    async fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> Outcome {
        self.encode(batch);
        if cx.wants_payload() {
            cx.set_payload(self.body.clone());
        }
        let action = self.encoder.config().action;
        let mut fates = Fates::new(batch.len());
        let mut duplicates = 0u64;
        let mut work = self.chunks();
        // The requests share the encoded batch (`slice` is a reference count, not a copy); the
        // buffer is taken back for the next batch when the requests have let go of it.
        let body = bytes::Bytes::from(std::mem::take(&mut self.body));
        while let Some(chunk) = work.pop_front() {
            let bytes = self.bounds[chunk.start].start..self.bounds[chunk.end - 1].end;
            // Whether each document went out before; then mark all as sent, before the
            // request (the pipeline may drop this future at its send timeout).
            let before: Vec<bool> = self.ids[chunk.clone()]
                .iter()
                .map(|id| self.sent.contains(id))
                .collect();
            for id in &self.ids[chunk.clone()] {
                self.sent.insert(*id);
            }
            let res = self.transport.bulk(body.slice(bytes)).await;
            cx.record_bytes_sent(self.transport.last_wire_bytes);
            let reply = match res {
                Ok(r) => r,
                Err(e) => {
                    if e.certificate().is_some() {
                        cx.record_certificate_failure();
                    }
                    // Nothing more can go out in this send: the rest is retried.
                    fates.apply(chunk.chain(work.drain(..).flatten()), &e.verdict());
                    break;
                }
            };
            match classify(&reply, chunk.len(), action) {
                BulkVerdict::Items(items) => {
                    for ((i, f), was_sent) in chunk.clone().zip(items).zip(before) {
                        let id = self.ids[i];
                        let f = resolve_conflict(
                            f,
                            id,
                            was_sent || self.settings.conflicts_as_duplicates,
                        );
                        match f {
                            ItemFate::Retry(_) => {}
                            ItemFate::Duplicate => {
                                duplicates += 1;
                                self.sent.remove(&id);
                            }
                            _ => self.sent.remove(&id),
                        }
                        fates.apply([i], &f.verdict());
                    }
                }
                BulkVerdict::Whole(v @ Verdict::Retry { .. }) => {
                    self.transport.rotate();
                    fates.apply(chunk.chain(work.drain(..).flatten()), &v);
                    break;
                }
                BulkVerdict::Whole(v) => {
                    // Refused as a whole: nothing of it was stored.
                    for id in &self.ids[chunk.clone()] {
                        self.sent.remove(id);
                    }
                    fates.apply(chunk, &v);
                }
                BulkVerdict::TooLarge if chunk.len() > 1 => {
                    // Refused unread: what this request marked as sent was not.
                    for (id, was_sent) in self.ids[chunk.clone()].iter().zip(&before) {
                        if !was_sent {
                            self.sent.remove(id);
                        }
                    }
                    let mid = chunk.start + chunk.len() / 2;
                    work.push_front(mid..chunk.end);
                    work.push_front(chunk.start..mid);
                }
                BulkVerdict::TooLarge => fates.reject(
                    chunk.start,
                    format!(
                        "bulk request: http 413: the document ({} bytes encoded) is larger than the server accepts (http.max_content_length)",
                        self.bounds[chunk.start].len()
                    ),
                ),
            }
        }
        self.body = reclaim(body);
        if duplicates > 0 {
            cx.record_duplicates(duplicates);
        }
        fates.outcome()
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

    fn id(n: u128) -> DocId {
        DocId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn sent_ids_are_bounded_and_forget_settled_documents() {
        let mut s = SentIds::default();
        for n in 0..(SentIds::MAX as u128 + 10) {
            s.insert(id(n));
        }
        assert!(!s.contains(&id(0)) && !s.contains(&id(9)));
        assert!(s.contains(&id(10)) && s.contains(&id(SentIds::MAX as u128 + 9)));
        assert_eq!(s.set.len(), SentIds::MAX);
        assert!(s.order.len() <= 2 * SentIds::MAX + 1024);
        s.remove(&id(10));
        assert!(!s.contains(&id(10)));
        // Removed ids do not pile up in the eviction order.
        for n in 0..200_000u128 {
            s.insert(id(1 << 100 | n));
            s.remove(&id(1 << 100 | n));
        }
        assert!(s.order.len() <= 2 * s.set.len() + 1024, "{}", s.order.len());
    }

    #[test]
    fn a_conflict_is_a_duplicate_only_for_a_document_sent_before() {
        let why = || ItemFate::Conflict("item 409: version_conflict_engine_exception: x".into());
        assert_eq!(resolve_conflict(why(), id(1), true), ItemFate::Duplicate);
        let ItemFate::Rejected(r) = resolve_conflict(why(), id(1), false) else {
            panic!("not rejected")
        };
        assert!(r.starts_with("item 409: version_conflict_engine_exception: x (`_id` 00000000-0000-0000-0000-000000000001 already exists"), "{r}");
        assert_eq!(
            resolve_conflict(ItemFate::Delivered, id(1), false),
            ItemFate::Delivered
        );
    }

    #[test]
    fn machine_ids_are_32_hex_digits() {
        assert_eq!(
            parse_machine_id(b"0123456789ABCDEF0123456789abcdef\n").as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(parse_machine_id(b""), None);
        assert_eq!(parse_machine_id(b"uninitialized\n"), None);
        assert_eq!(parse_machine_id(&[0xff; 40]), None);
    }

    #[test]
    fn requests_fit_the_reply_cap() {
        assert_eq!(max_items_per_request(1 << 20), 2048);
        assert_eq!(max_items_per_request(1024), 2);
        assert_eq!(max_items_per_request(10), 1);
    }
}
