//! The MQTT sink: publishes, tracks PUBACKs, reports per record (see [`JkoolMqttSink`]).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use logship_core::{Batch, Outcome, SendContext, Sink};
use logship_jkool::{DocumentKind, Encoder};
use rumqttc::v5::mqttbytes::v5::{PubAckReason, PubCompReason, PubRecReason};

use crate::topic::TopicTemplate;
use crate::wire::{Ack, Proto, Wire, WireFailure, WireOptions};

/// Why the broker refused one publish (an MQTT 5 reason code other than success), and what
/// that means for the record that publish carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Worth trying again on a fresh connection (e.g. 0x97 quota exceeded).
    Retry(String),
    /// Permanent for this record (e.g. 0x87 not authorized, 0x99 payload format invalid).
    Reject(String),
}

/// Classifies an MQTT 5 PUBACK / PUBREC / PUBCOMP reason code: `None` when the publish was
/// accepted, otherwise what to do with its record. The table is in the crate docs
/// ([MQTT 5 reason codes](crate#mqtt-5-reason-codes)); `detail` is the broker's reason string.
pub(crate) fn classify_reason(code: u8, detail: Option<&str>) -> Option<Refusal> {
    let name = match code {
        0x00 | 0x10 => return None, // Success, No matching subscribers
        0x80 => "unspecified error",
        0x83 => "implementation specific error",
        0x87 => "not authorized",
        0x90 => "topic name invalid",
        0x91 => "packet identifier in use",
        0x92 => "packet identifier not found",
        0x97 => "quota exceeded",
        0x99 => "payload format invalid",
        _ => "unknown reason code",
    };
    let reason = match detail {
        Some(d) if !d.is_empty() => {
            format!("the mqtt broker refused the publish: {name} (0x{code:02x}): {d}")
        }
        _ => format!("the mqtt broker refused the publish: {name} (0x{code:02x})"),
    };
    Some(match code {
        // Transient, or a packet-id mix-up that a fresh connection resolves.
        0x91 | 0x92 | 0x97 => Refusal::Retry(reason),
        _ => Refusal::Reject(reason),
    })
}

pub(crate) fn puback_code(r: &PubAckReason) -> u8 {
    match r {
        PubAckReason::Success => 0x00,
        PubAckReason::NoMatchingSubscribers => 0x10,
        PubAckReason::UnspecifiedError => 0x80,
        PubAckReason::ImplementationSpecificError => 0x83,
        PubAckReason::NotAuthorized => 0x87,
        PubAckReason::TopicNameInvalid => 0x90,
        PubAckReason::PacketIdentifierInUse => 0x91,
        PubAckReason::QuotaExceeded => 0x97,
        PubAckReason::PayloadFormatInvalid => 0x99,
    }
}

pub(crate) fn pubrec_code(r: &PubRecReason) -> u8 {
    match r {
        PubRecReason::Success => 0x00,
        PubRecReason::NoMatchingSubscribers => 0x10,
        PubRecReason::UnspecifiedError => 0x80,
        PubRecReason::ImplementationSpecificError => 0x83,
        PubRecReason::NotAuthorized => 0x87,
        PubRecReason::TopicNameInvalid => 0x90,
        PubRecReason::PacketIdentifierInUse => 0x91,
        PubRecReason::QuotaExceeded => 0x97,
        PubRecReason::PayloadFormatInvalid => 0x99,
    }
}

pub(crate) fn pubcomp_code(r: &PubCompReason) -> u8 {
    match r {
        PubCompReason::Success => 0x00,
        PubCompReason::PacketIdentifierNotFound => 0x92,
    }
}

/// Maps pkids to documents in publish order. Pure; see [`JkoolMqttSink`].
#[derive(Debug, Default)]
pub(crate) struct AckTracker {
    queued: VecDeque<usize>,
    in_flight: HashMap<u16, usize>,
    acked: Vec<bool>,
    refused: HashMap<usize, Refusal>,
    remaining: usize,
}

impl AckTracker {
    pub(crate) fn new(docs: usize) -> Self {
        Self {
            queued: VecDeque::with_capacity(docs),
            in_flight: HashMap::with_capacity(docs.min(1024)),
            acked: vec![false; docs],
            refused: HashMap::new(),
            remaining: docs,
        }
    }

    /// Document `doc` was handed to the client.
    pub(crate) fn queued(&mut self, doc: usize) {
        self.queued.push_back(doc);
    }

    /// The event loop wrote a PUBLISH with `pkid` (0 for QoS 0, which needs no ack).
    pub(crate) fn published(&mut self, pkid: u16) {
        if pkid != 0 && self.in_flight.contains_key(&pkid) {
            return; // a retransmission of a publish already filed
        }
        let Some(doc) = self.queued.pop_front() else {
            return; // not ours (cannot happen on a connection used by one sink)
        };
        if pkid == 0 {
            self.settle(doc, None);
        } else {
            self.in_flight.insert(pkid, doc);
        }
    }

    /// Document `doc` was refused before it was published (never queued).
    pub(crate) fn rejected(&mut self, doc: usize, why: Refusal) {
        self.settle(doc, Some(why));
    }

    /// A PUBACK / PUBCOMP for `pkid` arrived.
    pub(crate) fn acked(&mut self, pkid: u16) {
        if let Some(doc) = self.in_flight.remove(&pkid) {
            self.settle(doc, None);
        }
    }

    /// The broker answered `pkid` with a failure reason code (MQTT 5).
    pub(crate) fn refused(&mut self, pkid: u16, why: Refusal) {
        if let Some(doc) = self.in_flight.remove(&pkid) {
            self.settle(doc, Some(why));
        }
    }

    fn settle(&mut self, doc: usize, refusal: Option<Refusal>) {
        if let Some(a) = self.acked.get_mut(doc)
            && !*a
            && !self.refused.contains_key(&doc)
        {
            match refusal {
                None => *a = true,
                Some(r) => {
                    self.refused.insert(doc, r);
                }
            }
            self.remaining -= 1;
        }
    }

    /// Every document was acknowledged or refused.
    pub(crate) fn all_settled(&self) -> bool {
        self.remaining == 0
    }

    pub(crate) fn is_acked(&self, doc: usize) -> bool {
        self.acked.get(doc).copied().unwrap_or(false)
    }

    /// The broker's refusal of document `doc`, if it refused it.
    pub(crate) fn refusal(&self, doc: usize) -> Option<&Refusal> {
        self.refused.get(&doc)
    }
}

/// The jKool MQTT sink, built by [`JkoolMqttBuilder`](crate::JkoolMqttBuilder).
/// This sink publishes each document of a batch and counts a record as delivered
/// only when the broker acknowledged every publish carrying it.
///
/// ## Batched writes and the in-flight window
/// The sink owns its connection (TCP or TLS, MQTT 3.1.1 or 5; packets encoded with rumqttc's
/// codec, `rumqttc::mqttbytes`, except PUBLISH, written straight into the buffer). Inside `send`,
/// on the worker's thread, it:
///
/// 1. writes as many PUBLISH packets as the **window** allows into one buffer and that buffer
///    in **one socket write** (up to 128 KiB per write), each with its own packet identifier;
/// 2. reads what the broker sent back and files every PUBACK (QoS 1) or PUBCOMP (QoS 2;
///    a successful PUBREC is answered with PUBREL) under its packet identifier: that publish's
///    document is acknowledged and its slot in the window is free;
/// 3. refills the window and writes again, until every document is acknowledged, the connection
///    fails, or the core's send deadline minus 50 ms is reached.
///
/// The window is the number of QoS 1/2 publishes awaiting acknowledgement: at most
/// `with_max_inflight`, and with MQTT 5 at most the broker's **Receive Maximum** (CONNACK
/// property, [MQTT 5 section 3.2.2.3.3](https://docs.oasis-open.org/mqtt/mqtt/v5.0/mqtt-v5.0.html),
/// flow control in section 4.9). Records whose documents were all acknowledged are delivered;
/// the rest are returned as `Outcome::Partial { retry }` (or `Outcome::Retry` when none was
/// acknowledged), and the connection is dropped, so nothing stale is resent behind the core's
/// back. The core's retry then republishes exactly those records on a fresh connection: **every
/// record is delivered at least once** (a PUBACK lost in a crash means the broker may see a
/// record twice).
///
/// With QoS 0 there is no acknowledgement: a record counts as delivered once its PUBLISH was
/// written to the socket.
pub struct JkoolMqttSink {
    pub(crate) options: WireOptions,
    pub(crate) encoder: Encoder,
    pub(crate) topic: TopicTemplate,
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    pub(crate) conn: Option<Wire>,
    pub(crate) last_used: Instant,
}

impl std::fmt::Debug for JkoolMqttSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JkoolMqttSink")
            .field("broker", &(&self.options.host, self.options.port))
            .field(
                "protocol",
                &match self.options.proto {
                    Proto::V311 => "3.1.1",
                    Proto::V5 => "5",
                },
            )
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

/// Most bytes of PUBLISH packets put in one socket write before reading acknowledgements.
const WRITE_CHUNK: usize = 128 * 1024;

/// Publishes `docs` (document `i` on `topics[i]`, payload `payload(i)`) on `wire`, filing
/// every acknowledgement in `tracker`; `sent` counts the payload bytes written. Returns when
/// every document is settled or the connection failed.
#[allow(clippy::too_many_arguments)]
async fn publish_all<'p>(
    wire: &mut Wire,
    topics: &[String],
    payload: impl Fn(usize) -> &'p [u8],
    qos: u8,
    retain: bool,
    tracker: &mut AckTracker,
    sent: &mut u64,
) -> Result<(), WireFailure> {
    let n = topics.len();
    let mut next = 0;
    loop {
        let window = usize::from(wire.window);
        let mut qos0 = 0;
        let mut bytes = 0u64;
        while next < n
            && (qos == 0 || tracker.in_flight.len() < window)
            && wire.wbuf.len() < WRITE_CHUNK
        {
            let body = payload(next);
            let pkid = if qos > 0 {
                wire.next_pkid(|p| tracker.in_flight.contains_key(&p))
            } else {
                0
            };
            if wire.put_publish(&topics[next], qos, retain, pkid, body) {
                tracker.queued(next);
                if qos > 0 {
                    tracker.published(pkid);
                } else {
                    qos0 += 1;
                }
                bytes += body.len() as u64;
            } else {
                tracker.rejected(
                    next,
                    Refusal::Reject(format!(
                        "the publish ({} payload bytes on {:?}) exceeds the largest packet the \
                         mqtt broker accepts ({} bytes, its Maximum Packet Size or \
                         with_max_document_bytes)",
                        body.len(),
                        topics[next],
                        wire.max_packet
                    )),
                );
            }
            next += 1;
        }
        wire.flush_wbuf().await?;
        *sent += bytes;
        for _ in 0..qos0 {
            tracker.published(0); // QoS 0: delivered once written
        }
        if next == n && tracker.all_settled() {
            return Ok(());
        }
        if tracker.in_flight.is_empty() {
            continue; // nothing to wait for: write the next documents
        }
        // Waiting for acknowledgements without writing for half the keep-alive: a PINGREQ
        // keeps the broker from closing the connection (reading is cancel-safe).
        let probe = (wire.keep_alive / 2).saturating_sub(wire.last_write.elapsed());
        match tokio::time::timeout(probe, wire.fill()).await {
            Err(_) => {
                wire.put_pingreq();
                continue;
            }
            Ok(read) => read?,
        }
        while let Some(ack) = wire.next_ack()? {
            match ack {
                Ack::Done(pkid) => tracker.acked(pkid),
                Ack::Received(pkid) => {
                    if tracker.in_flight.contains_key(&pkid) {
                        wire.put_pubrel(pkid);
                    }
                }
                Ack::Failed(pkid, code, why) => match classify_reason(code, why.as_deref()) {
                    Some(r) => tracker.refused(pkid, r),
                    None => tracker.acked(pkid),
                },
                Ack::Other => {}
            }
        }
    }
}

impl Sink for JkoolMqttSink {
    fn name(&self) -> &'static str {
        "jkool-mqtt"
    }

    async fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> Outcome {
        let enc = self.encoder.encode_batch(batch.records());
        let docs = enc.documents();
        let topics: Vec<String> = docs
            .iter()
            .map(|d| self.topic.render(&batch.records()[d.record], d.kind))
            .collect();
        if cx.wants_payload() {
            let mut all = Vec::new();
            enc.write_array(docs, &mut all);
            cx.set_payload(all);
        }
        // Leave a little of the core's budget to report what was acknowledged.
        let deadline = cx
            .deadline()
            .checked_sub(Duration::from_millis(50))
            .unwrap_or_else(Instant::now);
        let mut tracker = AckTracker::new(docs.len());
        let mut failure: Option<WireFailure> = None;
        let mut sent_bytes = 0u64;
        // A connection idle past the keep-alive was probably closed by the broker: start
        // fresh rather than fail the first publish on it.
        if self.last_used.elapsed() > self.options.keep_alive {
            self.conn = None;
        }
        // A connection the broker (or the network) closed since the last batch: with QoS 0
        // nothing is read after CONNACK, so only a read can tell, and writing into it would
        // count as delivered publishes that no broker reads. One read attempt that does not
        // wait (bytes it finds stay buffered for the acknowledgement reader).
        if let Some(wire) = self.conn.as_mut()
            && let Ok(Err(_)) = tokio::time::timeout(Duration::ZERO, wire.fill()).await
        {
            self.conn = None;
        }
        if self.conn.is_none() {
            match tokio::time::timeout_at(deadline.into(), Wire::connect(&self.options)).await {
                Err(_) => {
                    failure = Some(WireFailure::retry(
                        "mqtt connection failed: timed out connecting to the broker".into(),
                    ));
                }
                Ok(Err(f)) => failure = Some(f),
                Ok(Ok(w)) => self.conn = Some(w),
            }
        }
        if failure.is_none()
            && let Some(wire) = self.conn.as_mut()
        {
            let run = publish_all(
                wire,
                &topics,
                |i| enc.bytes(&docs[i]),
                self.qos,
                self.retain,
                &mut tracker,
                &mut sent_bytes,
            );
            match tokio::time::timeout_at(deadline.into(), run).await {
                Err(_) => {
                    failure = Some(WireFailure::retry(
                        "timed out waiting for mqtt acknowledgements".into(),
                    ));
                }
                Ok(Err(f)) => failure = Some(f),
                Ok(Ok(())) => {}
            }
        }
        self.last_used = Instant::now();
        cx.record_bytes_sent(sent_bytes);
        if let Some(f) = &failure
            && f.certificate
        {
            cx.record_certificate_failure();
        }
        if failure.is_some() || !tracker.refused.is_empty() {
            // Drop the connection and its state: unacknowledged publishes are resent by the
            // core's retry on a fresh connection, never twice behind its back.
            self.conn = None;
        }
        batch_outcome(
            batch.len(),
            docs.iter().map(|d| d.record),
            &tracker,
            enc.failed(),
            failure.map(|f| (f.permanent, f.reason)),
        )
    }

    async fn shutdown(&mut self) {
        if let Some(mut wire) = self.conn.take() {
            wire.put_disconnect();
            let _ = tokio::time::timeout(Duration::from_secs(1), wire.flush_wbuf()).await;
        }
    }
}

/// The batch's outcome: `doc_records` gives each document's record, `encode_failed` the records
/// the encoder refused, `failure` how the connection failed (`(permanent, reason)`).
///
/// A record is rejected when the encoder or the broker (a permanent MQTT 5 reason code)
/// refused one of its documents, retried when one of its documents was neither acknowledged
/// nor rejected, delivered otherwise.
fn batch_outcome(
    n: usize,
    doc_records: impl Iterator<Item = usize>,
    tracker: &AckTracker,
    encode_failed: &[(usize, String)],
    failure: Option<(bool, String)>,
) -> Outcome {
    let mut rejected_reason: Vec<Option<String>> = vec![None; n];
    for (i, why) in encode_failed {
        if let Some(x) = rejected_reason.get_mut(*i) {
            *x = Some(why.clone());
        }
    }
    let mut retry_flag = vec![false; n];
    let mut retry_reason: Option<String> = None;
    for (doc, record) in doc_records.enumerate() {
        if tracker.is_acked(doc) || record >= n {
            continue;
        }
        match tracker.refusal(doc) {
            Some(Refusal::Reject(why)) => {
                rejected_reason[record].get_or_insert_with(|| why.clone());
            }
            Some(Refusal::Retry(why)) => {
                retry_reason.get_or_insert_with(|| why.clone());
                retry_flag[record] = true;
            }
            None => retry_flag[record] = true,
        }
    }
    let rejected: Vec<(usize, String)> = rejected_reason
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.map(|r| (i, r)))
        .collect();
    let retry: Vec<usize> = (0..n)
        .filter(|&i| retry_flag[i] && !rejected.iter().any(|(r, _)| *r == i))
        .collect();
    match failure {
        None if retry.is_empty() && rejected.is_empty() => Outcome::Delivered,
        Some((true, reason)) if retry.len() + rejected.len() == n => Outcome::Rejected { reason },
        failure if retry.len() == n => Outcome::Retry {
            after: None,
            reason: failure
                .map(|(_, reason)| reason)
                .or(retry_reason)
                .unwrap_or_else(|| "mqtt publishes were not acknowledged".into()),
        },
        failure => Outcome::Partial {
            reason: if retry.is_empty() {
                String::new()
            } else {
                failure
                    .map(|(_, reason)| reason)
                    .or(retry_reason)
                    .unwrap_or_else(|| "mqtt publishes were not acknowledged".into())
            },
            retry,
            rejected,
            after: None,
        },
    }
}

// Keep `DocumentKind` referenced for docs linking.
const _: Option<DocumentKind> = None;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_publish_is_nth_queued_and_retransmissions_do_not_shift() {
        let mut t = AckTracker::new(4);
        for d in 0..4 {
            t.queued(d);
        }
        t.published(1); // doc 0
        t.published(2); // doc 1
        t.published(1); // retransmission of doc 0 after a reconnect
        t.acked(2);
        assert!(t.is_acked(1) && !t.is_acked(0));
        t.published(3); // doc 2
        t.acked(1);
        t.acked(3);
        t.published(1); // pkid 1 reused (freed) -> doc 3
        assert!(!t.all_settled());
        t.acked(1);
        assert!(t.all_settled());
        assert!((0..4).all(|d| t.is_acked(d)));
    }

    #[test]
    fn qos0_counts_when_written_and_unknown_acks_are_ignored() {
        let mut t = AckTracker::new(2);
        t.queued(0);
        t.queued(1);
        t.acked(9);
        t.published(0);
        assert!(t.is_acked(0) && !t.all_settled());
        t.published(0);
        assert!(t.all_settled());
    }

    #[test]
    fn certificate_failures_are_told_apart_and_retried() {
        let e = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let f = crate::wire::WireFailure::from_io(&e);
        assert!(f.certificate && !f.permanent, "{f:?}");
        assert!(f.reason.contains("unknown issuer"), "{}", f.reason);
        let io = std::io::Error::other("refused");
        let f = crate::wire::WireFailure::from_io(&io);
        assert!(!f.certificate && !f.permanent, "{f:?}");
    }

    #[test]
    fn refused_credentials_are_permanent() {
        use rumqttc::mqttbytes::v4::ConnectReturnCode;
        let f = crate::wire::refused_connection(ConnectReturnCode::NotAuthorized, true);
        assert!(
            f.permanent && f.reason.contains("refused the credentials"),
            "{f:?}"
        );
        let f = crate::wire::refused_connection(ConnectReturnCode::ServiceUnavailable, false);
        assert!(!f.permanent);
    }

    /// A peer that acknowledges every PUBLISH (MQTT 3.1.1) and reports how many it got.
    async fn acking_peer() -> (std::net::SocketAddr, tokio::task::JoinHandle<usize>) {
        use rumqttc::mqttbytes::v4;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap_or_else(|e| panic!("{e}"));
            let mut buf = bytes::BytesMut::new();
            let mut publishes = 0;
            loop {
                match v4::Packet::read(&mut buf, 1 << 20) {
                    Ok(v4::Packet::Connect(_)) => {
                        let _ = s.write_all(&[0x20, 2, 0, 0]).await;
                    }
                    Ok(v4::Packet::Publish(p)) => {
                        publishes += 1;
                        let [hi, lo] = p.pkid.to_be_bytes();
                        let _ = s.write_all(&[0x40, 2, hi, lo]).await;
                    }
                    Ok(_) => {}
                    Err(_) => match s.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return publishes,
                        Ok(_) => {}
                    },
                }
            }
        });
        (addr, task)
    }

    fn options(addr: std::net::SocketAddr, max_inflight: u16) -> WireOptions {
        WireOptions {
            host: addr.ip().to_string(),
            port: addr.port(),
            proto: Proto::V311,
            client_id: "t".into(),
            clean_session: true,
            keep_alive: Duration::from_secs(60),
            credentials: None,
            max_inflight,
            max_outgoing: 1 << 20,
            max_incoming: 1 << 16,
            tls: None,
        }
    }

    #[tokio::test]
    async fn a_window_of_publishes_goes_out_in_one_write() {
        let (addr, peer) = acking_peer().await;
        let mut wire = Wire::connect(&options(addr, 100))
            .await
            .unwrap_or_else(|f| panic!("{f:?}"));
        let connect_writes = wire.writes;
        let topics: Vec<String> = (0..60).map(|i| format!("t/{i}")).collect();
        let mut tracker = AckTracker::new(60);
        let mut sent = 0;
        let payload = |_i: usize| -> &'static [u8] { b"{\"msg-text\":\"x\"}" };
        publish_all(
            &mut wire,
            &topics,
            payload,
            1,
            false,
            &mut tracker,
            &mut sent,
        )
        .await
        .unwrap_or_else(|f| panic!("{f:?}"));
        assert!(tracker.all_settled() && (0..60).all(|d| tracker.is_acked(d)));
        // 60 publishes within a window of 100: one socket write (rumqttc wrote one per publish).
        assert_eq!(wire.writes - connect_writes, 1);
        drop(wire);
        assert_eq!(peer.await.unwrap_or_else(|e| panic!("{e}")), 60);
    }

    #[tokio::test]
    async fn the_window_bounds_each_write() {
        let (addr, peer) = acking_peer().await;
        let mut wire = Wire::connect(&options(addr, 10))
            .await
            .unwrap_or_else(|f| panic!("{f:?}"));
        let connect_writes = wire.writes;
        let topics: Vec<String> = (0..60).map(|i| format!("t/{i}")).collect();
        let mut tracker = AckTracker::new(60);
        let mut sent = 0;
        let payload = |_i: usize| -> &'static [u8] { b"{}" };
        publish_all(
            &mut wire,
            &topics,
            payload,
            1,
            false,
            &mut tracker,
            &mut sent,
        )
        .await
        .unwrap_or_else(|f| panic!("{f:?}"));
        assert!(tracker.all_settled());
        // At most 10 unacknowledged at a time: at least 6 writes for 60 publishes.
        assert!(wire.writes - connect_writes >= 6, "{}", wire.writes);
        drop(wire);
        assert_eq!(peer.await.unwrap_or_else(|e| panic!("{e}")), 60);
    }

    #[test]
    fn v5_reason_codes_deliver_retry_or_reject() {
        assert_eq!(classify_reason(0x00, None), None);
        assert_eq!(classify_reason(0x10, Some("nobody listens")), None);
        for code in [0x91, 0x92, 0x97] {
            assert!(
                matches!(classify_reason(code, None), Some(Refusal::Retry(_))),
                "{code:#x}"
            );
        }
        for code in [0x80, 0x83, 0x87, 0x90, 0x99, 0x42] {
            assert!(
                matches!(classify_reason(code, None), Some(Refusal::Reject(_))),
                "{code:#x}"
            );
        }
        assert_eq!(
            classify_reason(0x97, Some("slow down")),
            Some(Refusal::Retry(
                "the mqtt broker refused the publish: quota exceeded (0x97): slow down".into()
            ))
        );
        let Some(Refusal::Reject(why)) = classify_reason(0x87, None) else {
            panic!("0x87 is permanent");
        };
        assert!(why.contains("not authorized (0x87)"), "{why}");
        // Every rumqttc reason maps to its wire code.
        assert_eq!(puback_code(&PubAckReason::QuotaExceeded), 0x97);
        assert_eq!(puback_code(&PubAckReason::PayloadFormatInvalid), 0x99);
        assert_eq!(pubrec_code(&PubRecReason::NotAuthorized), 0x87);
        assert_eq!(pubrec_code(&PubRecReason::NoMatchingSubscribers), 0x10);
        assert_eq!(pubcomp_code(&PubCompReason::PacketIdentifierNotFound), 0x92);
    }

    #[test]
    fn v5_refusals_reject_or_retry_only_their_records() {
        // Records 0..4, one document each; record 1 rejected (0x87), record 2 over quota.
        let mut t = AckTracker::new(4);
        for d in 0..4 {
            t.queued(d);
            t.published(d as u16 + 1);
        }
        t.acked(1);
        t.refused(2, classify_reason(0x87, None).unwrap_or_else(|| panic!()));
        t.refused(3, classify_reason(0x97, None).unwrap_or_else(|| panic!()));
        t.acked(4);
        t.acked(2); // a late duplicate changes nothing
        assert!(t.all_settled() && !t.is_acked(1));
        match batch_outcome(4, 0..4, &t, &[], None) {
            Outcome::Partial {
                retry,
                rejected,
                after: None,
                ..
            } => {
                assert_eq!(retry, vec![2]);
                assert_eq!(rejected.len(), 1);
                assert_eq!(rejected[0].0, 1);
                assert!(rejected[0].1.contains("0x87"), "{rejected:?}");
            }
            other => panic!("{other:?}"),
        }
        // Only quota refusals: a plain retry that says why.
        let mut t = AckTracker::new(1);
        t.queued(0);
        t.published(7);
        t.refused(7, classify_reason(0x97, None).unwrap_or_else(|| panic!()));
        match batch_outcome(1, 0..1, &t, &[], None) {
            Outcome::Retry { reason, .. } => assert!(reason.contains("quota"), "{reason}"),
            other => panic!("{other:?}"),
        }
        // Two documents of one record (event + snapshot): one rejected rejects the record.
        let mut t = AckTracker::new(2);
        t.queued(0);
        t.queued(1);
        t.published(1);
        t.published(2);
        t.acked(1);
        t.refused(2, classify_reason(0x99, None).unwrap_or_else(|| panic!()));
        assert!(matches!(
            batch_outcome(1, [0, 0].into_iter(), &t, &[], None),
            Outcome::Partial { ref retry, ref rejected, .. } if retry.is_empty() && rejected.len() == 1
        ));
    }
}
