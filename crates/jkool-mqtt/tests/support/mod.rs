//! Shared test helpers: an embedded rumqttd broker, a subscriber that records what arrives,
//! a loopback TCP proxy that can cut connections (a broker restart as the client sees it),
//! and a mosquitto runner.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logship_testkit::wait_until;

pub const WAIT: Duration = Duration::from_secs(20);

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn connectable(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Starts the testkit's embedded rumqttd (MQTT 3.1.1) on a free loopback port; it lives until
/// the test process ends (rumqttd has no stop).
pub fn start_rumqttd() -> SocketAddr {
    logship_testkit::mqtt::EmbeddedBroker::start(0)
        .unwrap()
        .addr()
}

/// A subscriber to `filter` that records (topic, payload) of every message.
pub struct Subscriber(logship_testkit::mqtt::MqttSubscriber);

impl Subscriber {
    pub fn start(addr: SocketAddr, filter: &str, credentials: Option<(&str, &str)>) -> Subscriber {
        Subscriber(
            logship_testkit::mqtt::MqttSubscriber::start_with(addr, filter, credentials, true)
                .unwrap(),
        )
    }

    pub fn count(&self) -> usize {
        self.0.count() as usize
    }

    pub fn json(&self) -> Vec<(String, serde_json::Value)> {
        self.0
            .messages()
            .into_iter()
            .map(|m| (m.topic, serde_json::from_slice(&m.payload).unwrap()))
            .collect()
    }
}

/// (topic, payload) of every message received.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// An MQTT 5 subscriber (rumqttc's v5 client) to `filter` that records (topic, payload) of
/// every message; stops when dropped.
pub struct Subscriber5 {
    messages: Received,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Subscriber5 {
    pub fn start(addr: SocketAddr, filter: &str) -> Subscriber5 {
        use rumqttc::v5::mqttbytes::QoS;
        use rumqttc::v5::mqttbytes::v5::Packet;
        use rumqttc::v5::{Client, Event, MqttOptions};
        use std::sync::atomic::{AtomicBool, Ordering};
        let mut opts = MqttOptions::new(
            format!("logship-test-sub5-{}", free_port()),
            addr.ip().to_string(),
            addr.port(),
        );
        opts.set_max_packet_size(Some(8 * 1024 * 1024));
        let (client, mut conn) = Client::new(opts, 100);
        client.subscribe(filter, QoS::AtLeastOnce).unwrap();
        let messages: Received = Arc::default();
        let subscribed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s, st) = (messages.clone(), subscribed.clone(), stop.clone());
        std::thread::spawn(move || {
            let _client = client;
            for ev in conn.iter() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                match ev {
                    Ok(Event::Incoming(Packet::SubAck(_))) => s.store(true, Ordering::SeqCst),
                    Ok(Event::Incoming(Packet::Publish(p))) => m.lock().unwrap().push((
                        String::from_utf8_lossy(&p.topic).into_owned(),
                        p.payload.to_vec(),
                    )),
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        assert!(
            wait_until(WAIT, || subscribed.load(Ordering::SeqCst)),
            "no SUBACK"
        );
        Subscriber5 { messages, stop }
    }

    pub fn count(&self) -> usize {
        self.messages.lock().unwrap().len()
    }

    pub fn json(&self) -> Vec<(String, serde_json::Value)> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .map(|(t, p)| (t.clone(), serde_json::from_slice(p).unwrap()))
            .collect()
    }
}

impl Drop for Subscriber5 {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A loopback TCP proxy to `upstream`; [`Proxy::cut`] closes every open connection (what a
/// client sees when its broker restarts).
pub struct Proxy {
    pub addr: SocketAddr,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let c = conns.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                {
                    let mut all = c.lock().unwrap();
                    all.push(client.try_clone().unwrap());
                    all.push(server.try_clone().unwrap());
                }
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Proxy { addr, conns }
    }

    /// Closes every connection open through the proxy; returns how many pairs were cut.
    pub fn cut(&self) -> usize {
        let mut all = self.conns.lock().unwrap();
        for s in all.iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let n = all.len() / 2;
        all.clear();
        n
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// A mosquitto broker on a free loopback port with a password file; stopped on drop.
pub struct Mosquitto {
    pub addr: SocketAddr,
    /// The TLS listener, when started with [`Mosquitto::start_tls`].
    pub tls_addr: Option<SocketAddr>,
    child: Option<Child>,
    program: PathBuf,
    dir: PathBuf,
}

impl Mosquitto {
    pub fn start(program: PathBuf, user: &str, pass: &str) -> Mosquitto {
        Self::start_inner(program, Some((user, pass)), None, None)
    }

    /// Anonymous access (`allow_anonymous true`), optionally restricted by an ACL file with
    /// these lines (mosquitto speaks MQTT 3.1.1 and 5 on the same listener).
    pub fn start_anonymous(program: PathBuf, acl: Option<&str>) -> Mosquitto {
        Self::start_inner(program, None, None, acl)
    }

    /// Also opens a TLS listener with this PEM certificate and key.
    pub fn start_tls(
        program: PathBuf,
        user: &str,
        pass: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> Mosquitto {
        Self::start_inner(program, Some((user, pass)), Some((cert_pem, key_pem)), None)
    }

    fn start_inner(
        program: PathBuf,
        auth: Option<(&str, &str)>,
        tls: Option<(&str, &str)>,
        acl: Option<&str>,
    ) -> Mosquitto {
        let dir = std::env::temp_dir().join(format!(
            "logship-mosq-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let mut conf_text =
            format!("listener {port} 127.0.0.1\npersistence false\nmax_inflight_messages 0\n");
        match auth {
            Some((user, pass)) => {
                let pw = dir.join("passwd");
                let status = Command::new("mosquitto_passwd")
                    .args(["-b", "-c"])
                    .arg(&pw)
                    .args([user, pass])
                    .status()
                    .unwrap();
                assert!(status.success(), "mosquitto_passwd failed");
                conf_text.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    pw.display()
                ));
            }
            None => conf_text.push_str("allow_anonymous true\n"),
        }
        if let Some(lines) = acl {
            let acl_file = dir.join("acl");
            std::fs::write(&acl_file, lines).unwrap();
            conf_text.push_str(&format!("acl_file {}\n", acl_file.display()));
        }
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, conf_text).unwrap();
        let tls_addr = tls.map(|(cert, key)| {
            let tls_port = free_port();
            std::fs::write(dir.join("server.pem"), cert).unwrap();
            std::fs::write(dir.join("server.key"), key).unwrap();
            let mut conf_text = std::fs::read_to_string(&conf).unwrap();
            conf_text.push_str(&format!(
                "listener {tls_port} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
                dir.join("server.pem").display(),
                dir.join("server.key").display()
            ));
            std::fs::write(&conf, conf_text).unwrap();
            format!("127.0.0.1:{tls_port}")
                .parse::<SocketAddr>()
                .unwrap()
        });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut m = Mosquitto {
            addr,
            tls_addr,
            child: None,
            program,
            dir,
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.program)
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let addr = self.addr;
        assert!(
            wait_until(WAIT, || connectable(addr)),
            "mosquitto did not start"
        );
        if let Some(tls) = self.tls_addr {
            assert!(
                wait_until(WAIT, || connectable(tls)),
                "mosquitto tls listener did not start"
            );
        }
    }

    /// Kills the broker and starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let addr = self.addr;
        assert!(wait_until(WAIT, || !connectable(addr)));
        self.spawn();
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
