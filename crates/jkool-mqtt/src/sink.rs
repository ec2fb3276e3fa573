//! The MQTT sink: publishes, tracks PUBACKs, reports per record (see [`JkoolMqttSink`]).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use logship_core::{Batch, Outcome, SendContext, Sink};
use logship_jkool::{DocumentKind, Encoder};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Outgoing,
    Packet, QoS,
};

use crate::topic::TopicTemplate;

/// Maps pkids to documents in publish order. Pure; see [`JkoolMqttSink`].
#[derive(Debug, Default)]
pub(crate) struct AckTracker {
    queued: VecDeque<usize>,
    in_flight: HashMap<u16, usize>,
    acked: Vec<bool>,
    remaining: usize,
}

impl AckTracker {
    pub(crate) fn new(docs: usize) -> Self {
        Self {
            queued: VecDeque::with_capacity(docs),
            in_flight: HashMap::with_capacity(docs.min(1024)),
            acked: vec![false; docs],
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
            self.ack_doc(doc);
        } else {
            self.in_flight.insert(pkid, doc);
        }
    }

    /// A PUBACK / PUBCOMP for `pkid` arrived.
    pub(crate) fn acked(&mut self, pkid: u16) {
        if let Some(doc) = self.in_flight.remove(&pkid) {
            self.ack_doc(doc);
        }
    }

    fn ack_doc(&mut self, doc: usize) {
        if let Some(a) = self.acked.get_mut(doc)
            && !*a
        {
            *a = true;
            self.remaining -= 1;
        }
    }

    pub(crate) fn all_acked(&self) -> bool {
        self.remaining == 0
    }

    pub(crate) fn is_acked(&self, doc: usize) -> bool {
        self.acked.get(doc).copied().unwrap_or(false)
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
/// The sink therefore drives the [`EventLoop`](rumqttc::EventLoop) itself, inside `send`, on the worker's thread:
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
    pub(crate) options: MqttOptions,
    pub(crate) encoder: Encoder,
    pub(crate) topic: TopicTemplate,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    pub(crate) conn: Option<(AsyncClient, EventLoop)>,
    pub(crate) last_used: Instant,
}

impl std::fmt::Debug for JkoolMqttSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JkoolMqttSink")
            .field("broker", &self.options.broker_address())
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

/// Capacity of the request channel between the client and its event loop.
const CHANNEL: usize = 1024;

/// How the connection failed: permanent (refused credentials) or worth retrying.
fn connection_failure(e: &ConnectionError) -> (bool, String) {
    match e {
        ConnectionError::ConnectionRefused(
            code @ (ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized),
        ) => (
            true,
            format!("the mqtt broker refused the credentials ({code:?}); check with_credentials"),
        ),
        other => (false, format!("mqtt connection failed: {other}")),
    }
}

impl JkoolMqttSink {
    fn connection(&mut self) -> &mut (AsyncClient, EventLoop) {
        // A connection idle past the keep-alive was probably closed by the broker: start
        // fresh rather than fail the first publish on it.
        let ka = self.options.keep_alive();
        if !ka.is_zero() && self.last_used.elapsed() > ka {
            self.conn = None;
        }
        self.conn
            .get_or_insert_with(|| AsyncClient::new(self.options.clone(), CHANNEL))
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
            let (client, eventloop) = self.connection();
            while !(next == publishes.len() && tracker.all_acked()) {
                while let Some((topic, payload)) = publishes.get(next) {
                    match client.try_publish(topic.as_str(), qos, retain, payload.clone()) {
                        Ok(()) => {
                            tracker.queued(next);
                            next += 1;
                        }
                        Err(_) => break, // channel full: let the event loop drain it
                    }
                }
                let event = tokio::time::timeout_at(deadline.into(), eventloop.poll()).await;
                match event {
                    Err(_) => {
                        failure =
                            Some((false, "timed out waiting for mqtt acknowledgements".into()));
                        break;
                    }
                    Ok(Err(e)) => {
                        failure = Some(connection_failure(&e));
                        break;
                    }
                    Ok(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => {
                        if let Some(doc) = tracker.queued.front()
                            && let Some((_, p)) = publishes.get(*doc)
                            && !tracker.in_flight.contains_key(&pkid)
                        {
                            sent_bytes += p.len() as u64;
                        }
                        tracker.published(pkid);
                    }
                    Ok(Ok(Event::Incoming(Packet::PubAck(ack)))) => tracker.acked(ack.pkid),
                    Ok(Ok(Event::Incoming(Packet::PubComp(comp)))) => tracker.acked(comp.pkid),
                    Ok(Ok(_)) => {}
                }
            }
        }
        self.last_used = Instant::now();
        cx.record_bytes_sent(sent_bytes);
        if failure.is_some() {
            // Drop the connection and its state: unacknowledged publishes are resent by the
            // core's retry on a fresh connection, never twice by rumqttc behind its back.
            self.conn = None;
        }
        let n = batch.len();
        let mut delivered = vec![true; n];
        for (i, d) in docs.iter().enumerate() {
            if !tracker.is_acked(i)
                && let Some(x) = delivered.get_mut(d.record)
            {
                *x = false;
            }
        }
        let rejected: Vec<(usize, String)> = enc.failed().to_vec();
        for (i, _) in &rejected {
            if let Some(x) = delivered.get_mut(*i) {
                *x = true; // not retried: reported as rejected below
            }
        }
        let retry: Vec<usize> = (0..n).filter(|&i| !delivered[i]).collect();
        match failure {
            None if retry.is_empty() && rejected.is_empty() => Outcome::Delivered,
            Some((true, reason)) if retry.len() + rejected.len() == n => {
                Outcome::Rejected { reason }
            }
            Some((_, reason)) if retry.len() == n => Outcome::Retry {
                after: None,
                reason,
            },
            _ => Outcome::Partial {
                retry,
                rejected,
                after: None,
            },
        }
    }

    async fn shutdown(&mut self) {
        if let Some((client, mut eventloop)) = self.conn.take() {
            if client.try_disconnect().is_err() {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await;
        }
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
        assert!(!t.all_acked());
        t.acked(1);
        assert!(t.all_acked());
        assert!((0..4).all(|d| t.is_acked(d)));
    }

    #[test]
    fn qos0_counts_when_written_and_unknown_acks_are_ignored() {
        let mut t = AckTracker::new(2);
        t.queued(0);
        t.queued(1);
        t.acked(9);
        t.published(0);
        assert!(t.is_acked(0) && !t.all_acked());
        t.published(0);
        assert!(t.all_acked());
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
}
