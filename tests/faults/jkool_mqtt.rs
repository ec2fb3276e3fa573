//! jKool over MQTT (QoS 1, a record delivered when its PUBACK arrives) against an embedded
//! rumqttd broker. rumqttd cannot be stopped, so the broker sits behind a proxy: a "broker
//! restart" cuts every connection and switches the proxy to a brand-new broker (no sessions,
//! no in-flight state), which is what a client sees when its broker restarts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logship_core::Guard;
use logship_jkool_mqtt::JkoolMqttLayer;
use logship_testkit::wait_until;

use crate::common::*;

/// Starts rumqttd (MQTT 3.1.1) on a free loopback port; it lives until the process ends.
fn start_rumqttd() -> SocketAddr {
    logship_testkit::mqtt::EmbeddedBroker::start(0)
        .expect("embedded broker")
        .addr()
}

/// A QoS-1 subscriber to `#` that keeps the `msg-text` id of every message.
struct Subscriber {
    ids: Arc<Mutex<Vec<u64>>>,
    stop: Arc<AtomicBool>,
}

impl Subscriber {
    fn start(addr: SocketAddr) -> Subscriber {
        use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
        let mut opts = MqttOptions::new(
            format!("faults-sub-{}", free_port()),
            addr.ip().to_string(),
            addr.port(),
        );
        opts.set_max_packet_size(8 * 1024 * 1024, 64 * 1024);
        let (client, mut conn) = Client::new(opts, 1000);
        client.subscribe("#", QoS::AtLeastOnce).unwrap();
        let ids = Arc::new(Mutex::new(Vec::new()));
        let subscribed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s, st) = (ids.clone(), subscribed.clone(), stop.clone());
        std::thread::spawn(move || {
            let _client = client;
            for ev in conn.iter() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                match ev {
                    Ok(Event::Incoming(Packet::SubAck(_))) => s.store(true, Ordering::SeqCst),
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let id = serde_json::from_slice::<serde_json::Value>(&p.payload)
                            .ok()
                            .and_then(|v| v["msg-text"].as_str().and_then(id_of));
                        if let Some(id) = id {
                            m.lock().unwrap().push(id);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(50)), // reconnect pacing
                }
            }
        });
        assert!(
            wait_until(WAIT, || subscribed.load(Ordering::SeqCst)),
            "no SUBACK"
        );
        Subscriber { ids, stop }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A broker behind a proxy, with a subscriber on every broker it has had.
pub struct JkoolMqtt {
    pub proxy: Proxy,
    subs: Vec<Subscriber>,
    pub brokers: Vec<SocketAddr>,
}

impl Rig for JkoolMqtt {
    const NAME: &'static str = "jkool-mqtt";
    const KEEPS_HISTORY: bool = true;

    fn try_start(port: u16) -> std::io::Result<Self> {
        let broker = start_rumqttd();
        let sub = Subscriber::start(broker);
        Ok(Self {
            proxy: Proxy::start_on(port, broker),
            subs: vec![sub],
            brokers: vec![broker],
        })
    }
    fn port(&self) -> u16 {
        self.proxy.port()
    }
    fn ids(&self) -> Vec<u64> {
        self.subs
            .iter()
            .flat_map(|s| s.ids.lock().unwrap().clone())
            .collect()
    }
    fn count(&self) -> u64 {
        self.subs
            .iter()
            .map(|s| s.ids.lock().unwrap().len() as u64)
            .sum()
    }
    fn set_failing(&self, on: bool) {
        if on {
            self.proxy.set_mode(ProxyMode::Refuse);
            self.proxy.cut();
        } else {
            self.proxy.set_mode(ProxyMode::Forward);
        }
    }
    fn build(port: u16, pipeline: Pipeline) -> (BoxLayer, Guard) {
        build_with(port, |b| b, pipeline)
    }
    /// A new broker (and subscriber) behind the same proxy; the old ones keep what they had.
    fn restart(mut self) -> Self {
        self.proxy.set_mode(ProxyMode::Refuse);
        self.proxy.cut();
        let broker = start_rumqttd();
        self.subs.push(Subscriber::start(broker));
        self.brokers.push(broker);
        self.proxy.set_upstream(broker);
        self.proxy.set_mode(ProxyMode::Forward);
        self
    }
}

fn build_with(
    port: u16,
    f: impl FnOnce(logship_jkool_mqtt::JkoolMqttBuilder) -> logship_jkool_mqtt::JkoolMqttBuilder,
    pipeline: Pipeline,
) -> (BoxLayer, Guard) {
    let b = JkoolMqttLayer::builder(format!("mqtt://127.0.0.1:{port}"))
        .with_topic("faults/{target}")
        .with_pipeline(move |p| pipeline(fast(p)));
    let (layer, guard) = f(b).build().unwrap_or_else(|e| panic!("jkool-mqtt: {e}"));
    (Box::new(layer), guard)
}

#[test]
fn broker_restarted_5_times_during_100k_records() {
    restart_five_times::<JkoolMqtt>(100_000, 1_000);
}

#[test]
fn sigkill_mid_stream_then_restart_replays_the_spool() {
    sigkill_with_spool(&JkoolMqtt::start(0), 20_000);
}

#[test]
fn connection_reset_in_the_middle_of_a_batch() {
    reset_mid_batch::<JkoolMqtt>(2_000, 30_000);
}

#[test]
fn broker_that_accepts_and_never_answers_times_out_then_recovers() {
    timeouts_then_recovery::<JkoolMqtt>(500);
}

#[test]
fn shutdown_against_a_hung_broker_is_bounded_and_counted() {
    shutdown_against_blackhole::<JkoolMqtt>(1_000);
}

#[test]
fn broker_restart_between_batches_costs_no_record() {
    // The closed connection is noticed before the next batch is written (a read that does not
    // wait) or, if the close arrives later, by the failed write and a retry: either way every
    // record reaches the restarted broker.
    let rig = JkoolMqtt::start(0);
    let (layer, guard) = JkoolMqtt::build(rig.port(), Box::new(|p| p));
    let d = dispatch(layer);
    emit(&d, 0..1_000);
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let rig = rig.restart();
    emit(&d, 1_000..2_000);
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_accounted(&s, 2_000);
    assert_eq!((s.delivered, s.undelivered()), (2_000, 0), "{s:#?}");
    wait_all(&rig, 0..2_000);
    assert_eq!(rig.brokers.len(), 2);
    shutdown_within(guard, Duration::from_secs(5));
}

#[test]
fn qos0_counts_a_publish_as_delivered_once_written_and_a_reset_loses_it() {
    // At-most-once with QoS 0: a publish counts as delivered once written, so what was written
    // into a connection that is reset before the broker read it is gone, unnoticed.
    let rig = JkoolMqtt::start(0);
    let proxy = Proxy::start(local(rig.port()));
    proxy.cut_next_after(30_000, 1);
    let (layer, guard) = build_with(
        proxy.port(),
        |b| b.with_qos(0),
        Box::new(|p| {
            p.with_max_batch_records(2_000)
                .with_linger(Duration::from_secs(60))
        }),
    );
    let d = dispatch(layer);
    let n = 2_000;
    emit(&d, 0..n);
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    // QoS 0 counts a publish once written: the flush can return before the proxy has carried
    // the 30 000 bytes after which it cuts.
    assert!(
        wait_until(WAIT, || proxy.mid_cuts() == 1),
        "the proxy never cut the connection"
    );
    // A marker batch after the cut: once it is in, the first batch's survivors are in too.
    emit(&d, n..n + 10);
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    wait_all(&rig, n..n + 10);
    let s = guard.stats();
    assert_accounted(&s, n + 10);
    assert_eq!((s.delivered, s.undelivered()), (n + 10, 0), "{s:#?}");
    let got = Tally::of(rig.ids()).present_in(0..n);
    assert!(
        got < n,
        "QoS 0 lost what the reset cut: {got} of {n} arrived"
    );
    eprintln!("jkool-mqtt QoS 0: {got} of {n} records survived a reset, all counted delivered");
    shutdown_within(guard, Duration::from_secs(5));
}
