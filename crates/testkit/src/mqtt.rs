//! An embedded MQTT broker and a recording subscriber, for tests, the tour and
//! `logship receive mqtt`.
//!
//! The broker is [rumqttd](https://crates.io/crates/rumqttd), a real MQTT 3.1.1 (or, with
//! [`EmbeddedBroker::start_v5`], MQTT 5) broker running in this process (not an oracle of
//! ours; there is nothing to check it against but itself). It accepts any credentials. rumqttd cannot be stopped: the broker lives until the process
//! ends, so start one per test binary or per port.
//!
//! ```
//! use std::time::Duration;
//! use logship_testkit::mqtt::{EmbeddedBroker, MqttSubscriber};
//!
//! let broker = EmbeddedBroker::start(0)?;
//! let sub = MqttSubscriber::start(broker.addr(), "#")?;
//! # let _ = sub.count();
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::server::wait_until;

/// A running embedded broker (MQTT 3.1.1, or 5 with [`start_v5`](Self::start_v5), on
/// `127.0.0.1`).
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl EmbeddedBroker {
    /// Starts rumqttd on `127.0.0.1:port` (0 = a free port) and waits until it accepts
    /// connections (at most 10 s).
    ///
    /// # Errors
    /// When no free port can be found, the broker thread cannot start, or it does not accept
    /// connections in time.
    pub fn start(port: u16) -> io::Result<EmbeddedBroker> {
        Self::start_protocol(port, false)
    }

    /// As [`start`](Self::start), with an MQTT 5 listener instead of the MQTT 3.1.1 one
    /// (rumqttd's v5 support: publish, subscribe and their acknowledgements, enough for a
    /// client's tests; a 3.1.1 client cannot connect to it).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_v5(port: u16) -> io::Result<EmbeddedBroker> {
        Self::start_protocol(port, true)
    }

    fn start_protocol(port: u16, v5: bool) -> io::Result<EmbeddedBroker> {
        use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
        let port = if port == 0 {
            free_port()?
        } else {
            // rumqttd reports a failed bind only on its own thread, and the readiness check
            // below would then connect to whatever already listens there (another broker):
            // find out first, and say so.
            drop(TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot listen on 127.0.0.1:{port} (is another broker running?): {e}"),
                )
            })?);
            port
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let server = ServerSettings {
            name: if v5 { "v5" } else { "v4" }.into(),
            listen: addr,
            tls: None,
            next_connection_delay_ms: 1,
            connections: ConnectionSettings {
                connection_timeout_ms: 60_000,
                max_payload_size: 16 * 1024 * 1024,
                max_inflight_count: 1000,
                auth: None,
                external_auth: None,
                dynamic_filters: true,
            },
        };
        let mut config = Config {
            id: 0,
            router: RouterConfig {
                max_connections: 1000,
                max_outgoing_packet_count: 1000,
                max_segment_size: 64 * 1024 * 1024,
                max_segment_count: 10,
                ..RouterConfig::default()
            },
            ..Config::default()
        };
        let servers = Some(HashMap::from([(server.name.clone(), server)]));
        if v5 {
            config.v5 = servers;
        } else {
            config.v4 = servers;
        }
        std::thread::Builder::new()
            .name(format!("rumqttd-{port}"))
            .spawn(move || {
                let mut broker = Broker::new(config);
                let _ = broker.start();
            })?;
        let up = wait_until(Duration::from_secs(10), || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        if !up {
            return Err(io::Error::other(format!("rumqttd did not start on {addr}")));
        }
        Ok(EmbeddedBroker { addr })
    }

    /// The broker's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }
}

/// One received PUBLISH.
#[derive(Debug, Clone)]
pub struct MqttMessage {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// A subscriber (QoS 1) that records every message it receives; stops when dropped.
#[derive(Debug)]
pub struct MqttSubscriber {
    messages: Arc<Mutex<Vec<MqttMessage>>>,
    count: Arc<AtomicU64>,
    keep: bool,
    stop: Arc<AtomicBool>,
}

impl MqttSubscriber {
    /// Subscribes to `filter` on the broker at `addr` and waits for the SUBACK (at most 10 s).
    ///
    /// # Errors
    /// When the subscription is not acknowledged in time.
    pub fn start(addr: SocketAddr, filter: &str) -> io::Result<MqttSubscriber> {
        Self::start_with(addr, filter, None, true)
    }

    /// As [`start`](Self::start), with credentials, and `keep = false` to only count
    /// messages (for long or large streams).
    ///
    /// # Errors
    /// When the subscription is not acknowledged in time.
    pub fn start_with(
        addr: SocketAddr,
        filter: &str,
        credentials: Option<(&str, &str)>,
        keep: bool,
    ) -> io::Result<MqttSubscriber> {
        use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
        let mut opts = MqttOptions::new(
            format!("logship-testkit-sub-{}", free_port()?),
            addr.ip().to_string(),
            addr.port(),
        );
        opts.set_max_packet_size(8 * 1024 * 1024, 64 * 1024);
        if let Some((u, p)) = credentials {
            opts.set_credentials(u, p);
        }
        let (client, mut conn) = Client::new(opts, 100);
        client
            .subscribe(filter, QoS::AtLeastOnce)
            .map_err(io::Error::other)?;
        let messages: Arc<Mutex<Vec<MqttMessage>>> = Arc::default();
        let count = Arc::new(AtomicU64::new(0));
        let subscribed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, c, s, st) = (
            messages.clone(),
            count.clone(),
            subscribed.clone(),
            stop.clone(),
        );
        std::thread::Builder::new()
            .name("logship-testkit-mqtt-sub".into())
            .spawn(move || {
                let _client = client;
                for ev in conn.iter() {
                    if st.load(Ordering::Relaxed) {
                        break;
                    }
                    match ev {
                        Ok(Event::Incoming(Packet::SubAck(_))) => s.store(true, Ordering::SeqCst),
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            c.fetch_add(1, Ordering::SeqCst);
                            if keep {
                                m.lock().unwrap_or_else(PoisonError::into_inner).push(
                                    MqttMessage {
                                        topic: p.topic.clone(),
                                        payload: p.payload.to_vec(),
                                    },
                                );
                            }
                        }
                        Ok(_) => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })?;
        if !wait_until(Duration::from_secs(10), || {
            subscribed.load(Ordering::SeqCst)
        }) {
            return Err(io::Error::other("no SUBACK from the broker"));
        }
        Ok(MqttSubscriber {
            messages,
            count,
            keep,
            stop,
        })
    }

    /// Messages received so far (empty when started with `keep = false`).
    pub fn messages(&self) -> Vec<MqttMessage> {
        if !self.keep {
            return Vec::new();
        }
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Number of messages received so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` messages arrived or `timeout` passed.
    pub fn wait_for(&self, n: u64, timeout: Duration) -> bool {
        wait_until(timeout, || self.count() >= n)
    }
}

impl Drop for MqttSubscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_port_is_an_error_not_someone_elses_broker() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = taken.local_addr().expect("bound").port();
        match EmbeddedBroker::start(port) {
            Ok(_) => panic!("started on a port that is taken"),
            Err(err) => assert!(
                err.to_string().contains("is another broker running?"),
                "{err}"
            ),
        }
    }
}
