//! The MQTT sink: publishes, tracks PUBACKs, reports per record (see [`JkoolMqttSink`]).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use logship_core::{Batch, Outcome, SendContext, Sink};
use logship_jkool::{DocumentKind, Encoder};
use rumqttc::v5 as mqtt5;
use rumqttc::v5::mqttbytes::v5::{PubAckReason, PubCompReason, PubRecReason};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Outgoing,
    Packet, QoS,
};

use crate::topic::TopicTemplate;

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

fn puback_code(r: &PubAckReason) -> u8 {
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

fn pubrec_code(r: &PubRecReason) -> u8 {
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

fn pubcomp_code(r: &PubCompReason) -> u8 {
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

/// The client options of either protocol, built by
/// [`JkoolMqttBuilder`](crate::JkoolMqttBuilder).
#[derive(Clone)]
pub(crate) enum Options {
    V311(Box<MqttOptions>),
    V5(Box<mqtt5::MqttOptions>),
}

impl Options {
    fn keep_alive(&self) -> Duration {
        match self {
            Options::V311(o) => o.keep_alive(),
            Options::V5(o) => o.keep_alive(),
        }
    }

    fn broker_address(&self) -> (String, u16) {
        match self {
            Options::V311(o) => o.broker_address(),
            Options::V5(o) => o.broker_address(),
        }
    }

    fn protocol(&self) -> &'static str {
        match self {
            Options::V311(_) => "3.1.1",
            Options::V5(_) => "5",
        }
    }

    fn connect(&self) -> Conn {
        match self {
            Options::V311(o) => {
                let (c, e) = AsyncClient::new((**o).clone(), CHANNEL);
                Conn::V311(c, Box::new(e))
            }
            Options::V5(o) => {
                let (c, e) = mqtt5::AsyncClient::new((**o).clone(), CHANNEL);
                Conn::V5(c, Box::new(e))
            }
        }
    }
}

/// One client and its event loop, of either protocol.
pub(crate) enum Conn {
    V311(AsyncClient, Box<EventLoop>),
    V5(mqtt5::AsyncClient, Box<mqtt5::EventLoop>),
}

/// What the sink needs to know of one event-loop event, whatever the protocol.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A new or retransmitted PUBLISH with this pkid was written.
    Published(u16),
    /// The publish with this pkid was acknowledged (PUBACK, or PUBCOMP for QoS 2).
    Acked(u16),
    /// The broker answered this pkid with a failure reason code (MQTT 5 only).
    Refused(u16, Refusal),
    /// The DISCONNECT was written.
    Disconnected,
    /// Anything else.
    Other,
}

impl Conn {
    /// Queues a publish without waiting; false when the request channel is full.
    fn try_publish(&self, topic: &str, qos: QoS, retain: bool, payload: Vec<u8>) -> bool {
        match self {
            Conn::V311(c, _) => c.try_publish(topic, qos, retain, payload).is_ok(),
            Conn::V5(c, _) => {
                let qos = match qos {
                    QoS::AtMostOnce => mqtt5::mqttbytes::QoS::AtMostOnce,
                    QoS::AtLeastOnce => mqtt5::mqttbytes::QoS::AtLeastOnce,
                    QoS::ExactlyOnce => mqtt5::mqttbytes::QoS::ExactlyOnce,
                };
                c.try_publish(topic, qos, retain, payload).is_ok()
            }
        }
    }

    fn try_disconnect(&self) -> bool {
        match self {
            Conn::V311(c, _) => c.try_disconnect().is_ok(),
            Conn::V5(c, _) => c.try_disconnect().is_ok(),
        }
    }

    /// The next event, or how the connection failed.
    async fn poll(&mut self) -> Result<Step, ConnFailure> {
        match self {
            Conn::V311(_, e) => match e.poll().await {
                Err(e) => {
                    Err(certificate_failure(&e).unwrap_or_else(|| connection_failure(&e).into()))
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Ok(Step::Published(pkid)),
                Ok(Event::Outgoing(Outgoing::Disconnect)) => Ok(Step::Disconnected),
                Ok(Event::Incoming(Packet::PubAck(ack))) => Ok(Step::Acked(ack.pkid)),
                Ok(Event::Incoming(Packet::PubComp(comp))) => Ok(Step::Acked(comp.pkid)),
                Ok(_) => Ok(Step::Other),
            },
            Conn::V5(_, e) => {
                use mqtt5::mqttbytes::v5::Packet as P5;
                use mqtt5::{ConnectionError as E5, Event as Ev5};
                match e.poll().await {
                    Err(E5::ConnectionRefused(code)) => Err(refused_connection(
                        code,
                        matches!(
                            code,
                            mqtt5::mqttbytes::v5::ConnectReturnCode::BadUserNamePassword
                                | mqtt5::mqttbytes::v5::ConnectReturnCode::NotAuthorized
                        ),
                    )
                    .into()),
                    Err(other) => Err(certificate_failure(&other).unwrap_or_else(|| {
                        (false, format!("mqtt connection failed: {other}")).into()
                    })),
                    Ok(Ev5::Outgoing(Outgoing::Publish(pkid))) => Ok(Step::Published(pkid)),
                    Ok(Ev5::Outgoing(Outgoing::Disconnect)) => Ok(Step::Disconnected),
                    Ok(Ev5::Incoming(P5::PubAck(ack))) => {
                        let detail = ack
                            .properties
                            .as_ref()
                            .and_then(|p| p.reason_string.as_deref());
                        Ok(verdict(
                            ack.pkid,
                            classify_reason(puback_code(&ack.reason), detail),
                        ))
                    }
                    // QoS 2: a failed PUBREC ends the exchange (no PUBCOMP follows).
                    Ok(Ev5::Incoming(P5::PubRec(rec))) => {
                        let detail = rec
                            .properties
                            .as_ref()
                            .and_then(|p| p.reason_string.as_deref());
                        match classify_reason(pubrec_code(&rec.reason), detail) {
                            Some(r) => Ok(Step::Refused(rec.pkid, r)),
                            None => Ok(Step::Other),
                        }
                    }
                    Ok(Ev5::Incoming(P5::PubComp(comp))) => {
                        let detail = comp
                            .properties
                            .as_ref()
                            .and_then(|p| p.reason_string.as_deref());
                        Ok(verdict(
                            comp.pkid,
                            classify_reason(pubcomp_code(&comp.reason), detail),
                        ))
                    }
                    Ok(_) => Ok(Step::Other),
                }
            }
        }
    }
}

fn verdict(pkid: u16, refusal: Option<Refusal>) -> Step {
    match refusal {
        None => Step::Acked(pkid),
        Some(r) => Step::Refused(pkid, r),
    }
}

/// The jKool MQTT sink, built by [`JkoolMqttBuilder`](crate::JkoolMqttBuilder).
/// This sink publishes each document of a batch and counts a record as delivered
/// only when the broker acknowledged every publish carrying it.
///
/// ## How PUBACKs are tied to records
/// `rumqttc::AsyncClient::publish` only queues a request; the packet id is chosen later, when
/// the event loop writes the PUBLISH, and reported as `Outgoing::Publish(pkid)`; the broker's
/// answer arrives as `Incoming::PubAck(pkid)` (QoS 1) or `Incoming::PubComp(pkid)` (QoS 2).
/// The sink therefore drives the [`rumqttc::EventLoop`] itself, inside `send`, on the worker's thread:
///
/// 1. it queues the batch's publishes in document order on its single client;
/// 2. the event loop writes requests in the order they were queued, so the *n*-th new
///    `Outgoing::Publish` is the *n*-th queued publish: the tracker pops the next
///    document and files it under that pkid (a pkid already in flight is a retransmission,
///    not a new publish);
/// 3. each PUBACK/PUBCOMP marks its document acknowledged and frees the pkid;
/// 4. it polls until every document is acknowledged, the connection fails, or the core's send
///    deadline is near. Records whose documents were all acknowledged are delivered; the rest
///    are returned as `Outcome::Partial { retry }` (or `Outcome::Retry` when none was
///    acknowledged), and the connection is dropped, so nothing stale is retransmitted behind
///    the core's back. The core's retry then republishes exactly those records on a fresh
///    connection: **every record is delivered at least once** (a PUBACK lost in a crash
///    means the broker may see a record twice).
///
/// With QoS 0 there is no acknowledgement: a record counts as delivered once its PUBLISH was
/// written to the socket.
pub struct JkoolMqttSink {
    pub(crate) options: Options,
    pub(crate) encoder: Encoder,
    pub(crate) topic: TopicTemplate,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    pub(crate) conn: Option<Conn>,
    pub(crate) last_used: Instant,
}

impl std::fmt::Debug for JkoolMqttSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JkoolMqttSink")
            .field("broker", &self.options.broker_address())
            .field("protocol", &self.options.protocol())
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

/// Capacity of the request channel between the client and its event loop.
const CHANNEL: usize = 1024;

/// How a connection failed.
#[derive(Debug)]
struct ConnFailure {
    /// Whether retrying cannot help (refused credentials).
    permanent: bool,
    /// For `Stats::last_error`.
    reason: String,
    /// A TLS certificate check failed (counted in `Stats::certificate_failures`).
    certificate: bool,
}

impl From<(bool, String)> for ConnFailure {
    fn from((permanent, reason): (bool, String)) -> Self {
        Self {
            permanent,
            reason,
            certificate: false,
        }
    }
}

/// A connection refused by a TLS certificate check (worth retrying: a certificate may be
/// renewed or a CA added), with a reason naming the check; `None` for any other failure.
fn certificate_failure(e: &(dyn std::error::Error + 'static)) -> Option<ConnFailure> {
    logship_tls::certificate_failure(e).map(|f| ConnFailure {
        permanent: false,
        reason: format!("mqtt connection failed: {f}"),
        certificate: true,
    })
}

/// How the connection failed: permanent (refused credentials) or worth retrying.
fn connection_failure(e: &ConnectionError) -> (bool, String) {
    match e {
        ConnectionError::ConnectionRefused(code) => refused_connection(
            code,
            matches!(
                code,
                ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized
            ),
        ),
        other => (false, format!("mqtt connection failed: {other}")),
    }
}

/// A CONNACK refusal (either protocol): permanent when it refused the credentials.
fn refused_connection(code: impl std::fmt::Debug, credentials: bool) -> (bool, String) {
    if credentials {
        (
            true,
            format!("the mqtt broker refused the credentials ({code:?}); check with_credentials"),
        )
    } else {
        (
            false,
            format!("mqtt connection failed: Connection refused, return code: `{code:?}`"),
        )
    }
}

impl JkoolMqttSink {
    fn connection(&mut self) -> &mut Conn {
        // A connection idle past the keep-alive was probably closed by the broker: start
        // fresh rather than fail the first publish on it.
        let ka = self.options.keep_alive();
        if !ka.is_zero() && self.last_used.elapsed() > ka {
            self.conn = None;
        }
        self.conn.get_or_insert_with(|| self.options.connect())
    }
}

impl Sink for JkoolMqttSink {
    fn name(&self) -> &'static str {
        "jkool-mqtt"
    }

    async fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> Outcome {
        let enc = self.encoder.encode_batch(batch.records());
        let docs = enc.documents();
        let publishes: Vec<(String, Vec<u8>)> = docs
            .iter()
            .map(|d| {
                let record = &batch.records()[d.record];
                (self.topic.render(record, d.kind), enc.bytes(d).to_vec())
            })
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
        let (qos, retain) = (self.qos, self.retain);
        let mut tracker = AckTracker::new(publishes.len());
        let mut next = 0;
        let mut failure: Option<(bool, String)> = None;
        let mut sent_bytes = 0u64;
        {
            let conn = self.connection();
            while !(next == publishes.len() && tracker.all_settled()) {
                while let Some((topic, payload)) = publishes.get(next) {
                    if !conn.try_publish(topic, qos, retain, payload.clone()) {
                        break; // channel full: let the event loop drain it
                    }
                    tracker.queued(next);
                    next += 1;
                }
                match tokio::time::timeout_at(deadline.into(), conn.poll()).await {
                    Err(_) => {
                        failure =
                            Some((false, "timed out waiting for mqtt acknowledgements".into()));
                        break;
                    }
                    Ok(Err(f)) => {
                        if f.certificate {
                            cx.record_certificate_failure();
                        }
                        failure = Some((f.permanent, f.reason));
                        break;
                    }
                    Ok(Ok(Step::Published(pkid))) => {
                        if let Some(doc) = tracker.queued.front()
                            && let Some((_, p)) = publishes.get(*doc)
                            && !tracker.in_flight.contains_key(&pkid)
                        {
                            sent_bytes += p.len() as u64;
                        }
                        tracker.published(pkid);
                    }
                    Ok(Ok(Step::Acked(pkid))) => tracker.acked(pkid),
                    Ok(Ok(Step::Refused(pkid, why))) => tracker.refused(pkid, why),
                    Ok(Ok(Step::Disconnected | Step::Other)) => {}
                }
            }
        }
        self.last_used = Instant::now();
        cx.record_bytes_sent(sent_bytes);
        if failure.is_some() || !tracker.refused.is_empty() {
            // Drop the connection and its state: unacknowledged publishes are resent by the
            // core's retry on a fresh connection, never twice by rumqttc behind its back (and
            // a refused QoS 2 publish leaves rumqttc's inflight count behind).
            self.conn = None;
        }
        batch_outcome(
            batch.len(),
            docs.iter().map(|d| d.record),
            &tracker,
            enc.failed(),
            failure,
        )
    }

    async fn shutdown(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            if !conn.try_disconnect() {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                loop {
                    match conn.poll().await {
                        Ok(Step::Disconnected) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await;
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
        let e = ConnectionError::Tls(rumqttc::TlsError::TLS(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        )));
        let f = certificate_failure(&e).unwrap_or_else(|| panic!("not a certificate failure"));
        assert!(f.certificate && !f.permanent, "{f:?}");
        assert!(f.reason.contains("unknown issuer"), "{}", f.reason);
        let io = ConnectionError::Io(std::io::Error::other("refused"));
        assert!(certificate_failure(&io).is_none());
    }

    #[test]
    fn refused_credentials_are_permanent() {
        let (perm, why) = connection_failure(&ConnectionError::ConnectionRefused(
            ConnectReturnCode::NotAuthorized,
        ));
        assert!(perm && why.contains("refused the credentials"), "{why}");
        let (perm, _) = connection_failure(&ConnectionError::ConnectionRefused(
            ConnectReturnCode::ServiceUnavailable,
        ));
        assert!(!perm);
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
