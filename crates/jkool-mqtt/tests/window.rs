//! The in-flight window, counted at the broker's side: a small in-test MQTT peer (MQTT 3.1.1
//! and 5, CONNECT/CONNACK/PUBLISH/PUBACK only) that withholds PUBACKs and counts the PUBLISH
//! packets it receives before it acknowledges any.
//!
//! - MQTT 3.1.1 has no Receive Maximum: the window is `with_max_inflight`.
//! - MQTT 5: the window is the CONNACK's Receive Maximum when it is smaller
//!   (<https://docs.oasis-open.org/mqtt/mqtt/v5.0/mqtt-v5.0.html> sections 3.2.2.3.3 and 4.9).
//! - The peer acknowledges part of a window and closes the connection: the records it
//!   acknowledged are delivered once, only the others are published again, and every record
//!   ends up acknowledged exactly once.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logship_core::RetryPolicy;
use logship_jkool_mqtt::{JkoolMqttLayer, MqttProtocol};
use tracing_subscriber::prelude::*;

/// What the peer does on its n-th connection.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// Acknowledge nothing; read until the client closes.
    Withhold,
    /// Acknowledge the first `ack` publishes, and once `cut_at` were received close our side
    /// (FIN after the PUBACKs), then read until the client closes.
    AckThenCut { ack: usize, cut_at: usize },
    /// Acknowledge every publish at once.
    AckAll,
}

/// What one connection saw.
#[derive(Debug, Default, Clone)]
struct ConnLog {
    /// `msg-text` of every PUBLISH received, in order.
    published: Vec<String>,
    /// `msg-text` of every publish this peer acknowledged.
    acked: Vec<String>,
    /// Most publishes received and not yet acknowledged at any moment.
    max_unacked: usize,
}

struct Peer {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<ConnLog>>>,
}

fn read_packet(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 1];
    s.read_exact(&mut h).ok()?;
    let (mut len, mut mult) = (0usize, 1usize);
    loop {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).ok()?;
        len += usize::from(b[0] & 0x7f) * mult;
        mult *= 128;
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((h[0], body))
}

fn msg_text(payload: &[u8]) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(payload).unwrap_or_else(|e| panic!("payload not JSON: {e}"));
    v["msg-text"].as_str().unwrap_or_default().to_string()
}

fn serve(mut s: TcpStream, plan: Plan, receive_maximum: Option<u16>, log: &Mutex<Vec<ConnLog>>) {
    let idx = {
        let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
        l.push(ConnLog::default());
        l.len() - 1
    };
    let Some((0x10, connect)) = read_packet(&mut s) else {
        return;
    };
    // CONNECT variable header: "\0\x04MQTT", then the protocol level (4 or 5).
    let v5 = connect.get(6) == Some(&5);
    let connack: Vec<u8> = match (v5, receive_maximum) {
        (false, _) => vec![0x20, 2, 0, 0],
        (true, None) => vec![0x20, 3, 0, 0, 0],
        (true, Some(rm)) => {
            let [hi, lo] = rm.to_be_bytes();
            // flags, reason 0, properties (3 bytes): Receive Maximum (0x21) u16.
            vec![0x20, 6, 0, 0, 3, 0x21, hi, lo]
        }
    };
    if s.write_all(&connack).is_err() {
        return;
    }
    let mut unacked: Vec<(u16, String)> = Vec::new();
    let mut received = 0usize;
    let mut acked = 0usize;
    let mut cut = false;
    while let Some((header, body)) = read_packet(&mut s) {
        if header >> 4 != 3 || cut {
            continue; // not a PUBLISH (PINGREQ, DISCONNECT), or after our FIN
        }
        let qos = (header >> 1) & 3;
        assert_eq!(qos, 1, "these tests publish at QoS 1");
        let tlen = usize::from(u16::from_be_bytes([body[0], body[1]]));
        let pkid = u16::from_be_bytes([body[2 + tlen], body[3 + tlen]]);
        let mut at = 4 + tlen;
        if v5 {
            assert_eq!(body[at], 0, "no PUBLISH properties expected");
            at += 1;
        }
        let text = msg_text(&body[at..]);
        received += 1;
        unacked.push((pkid, text.clone()));
        {
            let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
            l[idx].published.push(text);
            l[idx].max_unacked = l[idx].max_unacked.max(unacked.len());
        }
        let ack_now = match plan {
            Plan::Withhold => 0,
            Plan::AckAll => unacked.len(),
            Plan::AckThenCut { ack, .. } => unacked.len().min(ack.saturating_sub(acked)),
        };
        for (pkid, text) in unacked.drain(..ack_now) {
            let [hi, lo] = pkid.to_be_bytes();
            if s.write_all(&[0x40, 2, hi, lo]).is_err() {
                return;
            }
            acked += 1;
            log.lock().unwrap_or_else(|e| e.into_inner())[idx]
                .acked
                .push(text);
        }
        if let Plan::AckThenCut { cut_at, .. } = plan
            && received >= cut_at
        {
            // FIN after the PUBACKs already written; keep reading so that nothing unread
            // turns the close into a reset.
            let _ = s.shutdown(Shutdown::Write);
            cut = true;
        }
    }
}

impl Peer {
    /// Serves connections one after the other, following `plans` (the last one repeats).
    fn start(plans: Vec<Plan>, receive_maximum: Option<u16>) -> Peer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for (n, conn) in l.incoming().enumerate() {
                let Ok(s) = conn else { continue };
                let plan = *plans.get(n).or(plans.last()).unwrap_or(&Plan::AckAll);
                serve(s, plan, receive_maximum, &log2);
            }
        });
        Peer { addr, log }
    }

    fn log(&self) -> Vec<ConnLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Emits `n` records as one batch (batch size `n`, long linger) and flushes.
fn run(
    peer: &Peer,
    protocol: MqttProtocol,
    max_inflight: u16,
    n: usize,
    send_timeout: Duration,
) -> logship_core::Stats {
    let (layer, guard) = JkoolMqttLayer::builder(format!("mqtt://{}", peer.addr))
        .with_protocol(protocol)
        .with_max_inflight(max_inflight)
        .with_topic("w/{target}")
        .with_pipeline(move |p| {
            p.with_max_batch_records(n)
                .with_linger(Duration::from_secs(30))
                .with_span_timings(false)
                // A window the peer never acknowledges ends in this timeout.
                .with_send_timeout(send_timeout)
                .with_retry(
                    RetryPolicy::default()
                        .with_initial_delay(Duration::from_millis(10))
                        .with_max_delay(Duration::from_millis(50))
                        .with_max_attempts(None),
                )
        })
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..n {
            tracing::info!("r{i}");
        }
    }
    guard
        .flush(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    guard.stats()
}

/// The send timeout when the peer withholds every PUBACK: the window it got ends in it.
const WITHHELD: Duration = Duration::from_millis(600);

/// Every record acknowledged exactly once over all connections.
fn assert_each_acked_once(log: &[ConnLog], n: usize) {
    let mut acks: BTreeMap<String, usize> = BTreeMap::new();
    for c in log {
        for t in &c.acked {
            *acks.entry(t.clone()).or_default() += 1;
        }
    }
    assert_eq!(acks.len(), n, "records acknowledged: {acks:?}");
    assert!(
        acks.values().all(|&k| k == 1),
        "acknowledged twice: {acks:?}"
    );
}

#[test]
fn v311_window_is_max_inflight() {
    let peer = Peer::start(vec![Plan::Withhold, Plan::AckAll], None);
    let stats = run(&peer, MqttProtocol::V311, 7, 40, WITHHELD);
    assert_eq!(stats.delivered, 40, "{stats:?}");
    let log = peer.log();
    // The first connection got exactly a window: no PUBACK came, and the client sent no more.
    assert_eq!(log[0].published.len(), 7, "{:?}", log[0]);
    assert!(log[0].acked.is_empty());
    for c in &log {
        assert!(c.max_unacked <= 7, "window exceeded: {c:?}");
    }
    assert_each_acked_once(&log, 40);
}

#[test]
fn v5_window_is_the_brokers_receive_maximum() {
    let peer = Peer::start(vec![Plan::Withhold, Plan::AckAll], Some(5));
    let stats = run(&peer, MqttProtocol::V5, 100, 40, WITHHELD);
    assert_eq!(stats.delivered, 40, "{stats:?}");
    let log = peer.log();
    assert_eq!(log[0].published.len(), 5, "{:?}", log[0]);
    for c in &log {
        assert!(c.max_unacked <= 5, "Receive Maximum exceeded: {c:?}");
    }
    assert_each_acked_once(&log, 40);
}

#[test]
fn v5_max_inflight_caps_a_larger_receive_maximum() {
    let peer = Peer::start(vec![Plan::Withhold, Plan::AckAll], Some(1000));
    let stats = run(&peer, MqttProtocol::V5, 6, 30, WITHHELD);
    assert_eq!(stats.delivered, 30, "{stats:?}");
    let log = peer.log();
    assert_eq!(log[0].published.len(), 6, "{:?}", log[0]);
    assert_each_acked_once(&log, 30);
}

#[test]
fn a_broker_closing_mid_window_costs_only_the_unacknowledged_records() {
    for protocol in [MqttProtocol::V311, MqttProtocol::V5] {
        // Window 10: the peer acknowledges 4, then closes once it has 10.
        let peer = Peer::start(
            vec![Plan::AckThenCut { ack: 4, cut_at: 10 }, Plan::AckAll],
            Some(10),
        );
        // A send timeout far beyond the flush's: the close itself must end the send.
        let stats = run(&peer, protocol, 10, 30, Duration::from_secs(600));
        assert_eq!(stats.delivered, 30, "{protocol:?} {stats:?}");
        assert!(stats.retries >= 1, "{protocol:?} {stats:?}");
        let err = stats.last_error.clone().unwrap_or_default();
        assert!(
            err.contains("the broker closed the connection"),
            "{protocol:?} {err}"
        );
        let log = peer.log();
        assert_eq!(log[0].acked.len(), 4, "{protocol:?} {:?}", log[0]);
        // The 4 acknowledged records are delivered and never published again.
        let again: Vec<&String> = log[1..]
            .iter()
            .flat_map(|c| &c.published)
            .filter(|t| log[0].acked.contains(t))
            .collect();
        assert!(again.is_empty(), "{protocol:?}: republished {again:?}");
        assert_eq!(log[1].published.len(), 26, "{protocol:?} {:?}", log[1]);
        assert_each_acked_once(&log, 30);
    }
}
