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
        Self::start_inner(program, user, pass, None)
    }

    /// Also opens a TLS listener with this PEM certificate and key.
    pub fn start_tls(
        program: PathBuf,
        user: &str,
        pass: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> Mosquitto {
        Self::start_inner(program, user, pass, Some((cert_pem, key_pem)))
    }

    fn start_inner(
        program: PathBuf,
        user: &str,
        pass: &str,
        tls: Option<(&str, &str)>,
    ) -> Mosquitto {
        let dir = std::env::temp_dir().join(format!(
            "logship-mosq-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let pw = dir.join("passwd");
        let status = Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&pw)
            .args([user, pass])
            .status()
            .unwrap();
        assert!(status.success(), "mosquitto_passwd failed");
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\npersistence false\nmax_inflight_messages 0\n",
                pw.display()
            ),
        )
        .unwrap();
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
