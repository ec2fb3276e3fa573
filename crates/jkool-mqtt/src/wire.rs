//! The sink's own connection: one TCP (or TLS) stream to the broker, MQTT 3.1.1 or 5, on which
//! it writes many PUBLISH packets per socket write and reads their PUBACKs in bulk.
//!
//! rumqttc 0.25's event loop writes and flushes one request at a time (one `write` per
//! PUBLISH, `rumqttc-0.25.1/src/eventloop.rs`, `select`), and its `max_request_batch` option is
//! parsed but unused; this module keeps rumqttc's packet codec (`rumqttc::mqttbytes`,
//! `rumqttc::v5::mqttbytes`) for CONNECT, CONNACK, the acknowledgements, PUBREL, PINGREQ and
//! DISCONNECT, encodes PUBLISH itself straight into the write buffer (MQTT 3.1.1 section
//! 3.3, MQTT 5 section 3.3), and owns the socket so that a whole window of publishes goes out in
//! one write.
//!
//! Flow control follows MQTT 5 section 4.9 (<https://docs.oasis-open.org/mqtt/mqtt/v5.0/mqtt-v5.0.html>):
//! the number of QoS 1 and QoS 2 publishes awaiting their PUBACK / PUBCOMP never exceeds the
//! broker's Receive Maximum (CONNACK property, section 3.2.2.3.3; 65 535 when absent) nor
//! `with_max_inflight`; MQTT 3.1.1 has no such property and uses `with_max_inflight` alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5 as p5;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The MQTT protocol spoken on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    V311,
    V5,
}

/// Everything needed to open a connection, checked by the builder.
#[derive(Clone)]
pub(crate) struct WireOptions {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) proto: Proto,
    pub(crate) client_id: String,
    pub(crate) clean_session: bool,
    pub(crate) keep_alive: Duration,
    pub(crate) credentials: Option<(String, String)>,
    /// `with_max_inflight`: the window's upper limit.
    pub(crate) max_inflight: u16,
    /// Largest PUBLISH packet this client writes (MQTT 5: lowered by the broker's Maximum
    /// Packet Size).
    pub(crate) max_outgoing: usize,
    /// Largest packet accepted from the broker (acknowledgements only).
    pub(crate) max_incoming: usize,
    /// TLS client configuration and the name to verify, when TLS is on.
    pub(crate) tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
}

/// The byte stream: plain TCP or TLS over TCP.
enum Io {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Io {
    fn tcp(&self) -> &TcpStream {
        match self {
            Io::Tcp(t) => t,
            Io::Tls(t) => t.get_ref().0,
        }
    }

    async fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Io::Tcp(t) => t.write_all(b).await,
            Io::Tls(t) => {
                t.write_all(b).await?;
                t.flush().await
            }
        }
    }

    async fn read_buf(&mut self, b: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            Io::Tcp(t) => t.read_buf(b).await,
            Io::Tls(t) => t.read_buf(b).await,
        }
    }

    /// Asks the kernel to acknowledge received segments at once (Linux `TCP_QUICKACK`; the
    /// flag is not sticky, so it is set again after every read). A broker with Nagle's
    /// algorithm on (mosquitto's default, `set_tcp_nodelay false`) holds back its next small
    /// PUBACKs until our ACK arrives, and Linux delays that ACK by up to 40 ms when it has no
    /// data to send with it: without this, every wait for the last acknowledgements of a
    /// window costs those 40 ms.
    fn quickack(&self) {
        #[cfg(target_os = "linux")]
        {
            let _ = socket2::SockRef::from(self.tcp()).set_tcp_quickack(true);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = self.tcp();
    }
}

/// How a connection failed.
#[derive(Debug)]
pub(crate) struct WireFailure {
    /// Whether retrying cannot help (refused credentials).
    pub(crate) permanent: bool,
    /// For `Stats::last_error`.
    pub(crate) reason: String,
    /// A TLS certificate check failed (counted in `Stats::certificate_failures`).
    pub(crate) certificate: bool,
}

impl WireFailure {
    pub(crate) fn retry(reason: String) -> Self {
        Self {
            permanent: false,
            reason,
            certificate: false,
        }
    }

    pub(crate) fn from_io(e: &std::io::Error) -> Self {
        match logship_tls::certificate_failure(e) {
            Some(f) => Self {
                permanent: false,
                reason: format!("mqtt connection failed: {f}"),
                certificate: true,
            },
            None => Self::retry(format!("mqtt connection failed: {e}")),
        }
    }
}

/// A CONNACK refusal (either protocol): permanent when it refused the credentials.
pub(crate) fn refused_connection(code: impl std::fmt::Debug, credentials: bool) -> WireFailure {
    if credentials {
        WireFailure {
            permanent: true,
            reason: format!(
                "the mqtt broker refused the credentials ({code:?}); check with_credentials"
            ),
            certificate: false,
        }
    } else {
        WireFailure::retry(format!(
            "mqtt connection failed: Connection refused, return code: `{code:?}`"
        ))
    }
}

/// One acknowledgement-related packet from the broker, whatever the protocol.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ack {
    /// PUBACK (QoS 1) or PUBCOMP (QoS 2) with a success code (or no code: MQTT 3.1.1).
    Done(u16),
    /// PUBREC with a success code: answer with PUBREL, wait for PUBCOMP.
    Received(u16),
    /// PUBACK / PUBREC / PUBCOMP with a failure reason code (MQTT 5): code and reason string.
    Failed(u16, u8, Option<String>),
    /// PINGRESP or anything else that needs no action.
    Other,
}

/// An open MQTT connection.
pub(crate) struct Wire {
    stream: Io,
    proto: Proto,
    /// Most QoS 1/2 publishes awaiting acknowledgement: `min(with_max_inflight, Receive Maximum)`.
    pub(crate) window: u16,
    /// Largest PUBLISH packet written (bytes, whole packet).
    pub(crate) max_packet: usize,
    max_incoming: usize,
    rbuf: BytesMut,
    pub(crate) wbuf: BytesMut,
    last_pkid: u16,
    /// When the last bytes were written (for the keep-alive).
    pub(crate) last_write: Instant,
    /// The keep-alive announced in CONNECT: the broker may close the connection after 1.5×
    /// this without a packet from us (MQTT 3.1.1 section 3.1.2.10, MQTT 5 section 3.1.2.10).
    pub(crate) keep_alive: Duration,
    /// Socket writes so far (each `flush_wbuf` with something to write).
    pub(crate) writes: u64,
}

impl Wire {
    /// TCP (and TLS) connect, CONNECT, CONNACK.
    pub(crate) async fn connect(o: &WireOptions) -> Result<Wire, WireFailure> {
        let tcp = TcpStream::connect((o.host.as_str(), o.port))
            .await
            .map_err(|e| WireFailure::from_io(&e))?;
        // Batches are written whole: the tail of each write must not wait for an ACK.
        let _ = tcp.set_nodelay(true);
        let stream = match &o.tls {
            None => Io::Tcp(tcp),
            Some((cfg, name)) => {
                let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| WireFailure::from_io(&e))?;
                Io::Tls(Box::new(tls))
            }
        };
        let mut w = Wire {
            stream,
            proto: o.proto,
            window: o.max_inflight,
            max_packet: o.max_outgoing,
            max_incoming: o.max_incoming,
            rbuf: BytesMut::with_capacity(64 * 1024),
            wbuf: BytesMut::with_capacity(64 * 1024),
            last_pkid: 0,
            last_write: Instant::now(),
            keep_alive: o.keep_alive,
            writes: 0,
        };
        let keep_alive = u16::try_from(o.keep_alive.as_secs()).unwrap_or(u16::MAX);
        let encoded = match o.proto {
            Proto::V311 => {
                let mut c = v4::Connect::new(o.client_id.clone());
                c.keep_alive = keep_alive;
                c.clean_session = o.clean_session;
                c.login = o
                    .credentials
                    .as_ref()
                    .map(|(u, p)| v4::Login::new(u.clone(), p.clone()));
                v4::Packet::Connect(c)
                    .write(&mut w.wbuf, usize::MAX)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            Proto::V5 => {
                let mut props = p5::ConnectProperties::new();
                // MQTT 3.1.1's persistent session: one that never expires.
                props.session_expiry_interval = (!o.clean_session).then_some(u32::MAX);
                props.max_packet_size = u32::try_from(o.max_incoming).ok();
                let c = p5::Connect {
                    keep_alive,
                    client_id: o.client_id.clone(),
                    clean_start: o.clean_session,
                    properties: Some(props),
                };
                let login = o
                    .credentials
                    .as_ref()
                    .map(|(u, p)| p5::Login::new(u.clone(), p.clone()));
                p5::Packet::Connect(c, None, login)
                    .write(&mut w.wbuf, None)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        };
        encoded.map_err(|e| WireFailure::retry(format!("mqtt CONNECT not encoded: {e}")))?;
        w.flush_wbuf().await?;
        loop {
            w.fill().await?;
            match w.proto {
                Proto::V311 => match v4::Packet::read(&mut w.rbuf, w.max_incoming) {
                    Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => continue,
                    Err(e) => return Err(protocol_error(&e)),
                    Ok(v4::Packet::ConnAck(ack)) => {
                        return match ack.code {
                            v4::ConnectReturnCode::Success => Ok(w),
                            code => Err(refused_connection(
                                code,
                                matches!(
                                    code,
                                    v4::ConnectReturnCode::BadUserNamePassword
                                        | v4::ConnectReturnCode::NotAuthorized
                                ),
                            )),
                        };
                    }
                    Ok(other) => {
                        return Err(WireFailure::retry(format!(
                            "mqtt connection failed: expected CONNACK, received {other:?}"
                        )));
                    }
                },
                Proto::V5 => match p5::Packet::read(&mut w.rbuf, Some(w.max_incoming as u32)) {
                    Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => continue,
                    Err(e) => return Err(protocol_error(&e)),
                    Ok(p5::Packet::ConnAck(ack)) => {
                        if ack.code != p5::ConnectReturnCode::Success {
                            return Err(refused_connection(
                                ack.code,
                                matches!(
                                    ack.code,
                                    p5::ConnectReturnCode::BadUserNamePassword
                                        | p5::ConnectReturnCode::NotAuthorized
                                ),
                            ));
                        }
                        if let Some(p) = &ack.properties {
                            // Section 3.2.2.3.3: the server's Receive Maximum caps the
                            // publishes awaiting acknowledgement (absent: 65 535).
                            if let Some(rm) = p.receive_max.filter(|&rm| rm > 0) {
                                w.window = w.window.min(rm);
                            }
                            // Section 3.2.2.3.6: never send a larger packet.
                            if let Some(mp) = p.max_packet_size {
                                w.max_packet = w.max_packet.min(mp as usize);
                            }
                        }
                        return Ok(w);
                    }
                    Ok(other) => {
                        return Err(WireFailure::retry(format!(
                            "mqtt connection failed: expected CONNACK, received {other:?}"
                        )));
                    }
                },
            }
        }
    }

    /// A free packet identifier (1–65 535), skipping those `in_use`.
    pub(crate) fn next_pkid(&mut self, in_use: impl Fn(u16) -> bool) -> u16 {
        loop {
            self.last_pkid = self.last_pkid.checked_add(1).unwrap_or(1);
            if !in_use(self.last_pkid) {
                return self.last_pkid;
            }
        }
    }

    /// Appends one PUBLISH to the write buffer; false (nothing appended) when the packet would
    /// exceed the largest packet allowed.
    pub(crate) fn put_publish(
        &mut self,
        topic: &str,
        qos: u8,
        retain: bool,
        pkid: u16,
        payload: &[u8],
    ) -> bool {
        let v5 = self.proto == Proto::V5;
        // Variable header: topic, packet id (QoS > 0), property length 0 (MQTT 5).
        let remaining =
            2 + topic.len() + if qos > 0 { 2 } else { 0 } + usize::from(v5) + payload.len();
        let total = 1 + varint_len(remaining) + remaining;
        if total > self.max_packet || remaining > 268_435_455 || topic.len() > 65_535 {
            return false;
        }
        let b = &mut self.wbuf;
        b.reserve(total);
        b.put_u8(0x30 | (qos << 1) | u8::from(retain));
        let mut x = remaining;
        loop {
            let byte = (x % 128) as u8;
            x /= 128;
            if x > 0 {
                b.put_u8(byte | 0x80);
            } else {
                b.put_u8(byte);
                break;
            }
        }
        b.put_u16(topic.len() as u16);
        b.put_slice(topic.as_bytes());
        if qos > 0 {
            b.put_u16(pkid);
        }
        if v5 {
            b.put_u8(0);
        }
        b.put_slice(payload);
        true
    }

    /// Appends a PUBREL for `pkid` (QoS 2, after a successful PUBREC).
    pub(crate) fn put_pubrel(&mut self, pkid: u16) {
        // Neither encoding can fail (a fixed 4-byte packet, MQTT 5 with no properties).
        match self.proto {
            Proto::V311 => {
                let _ = v4::PubRel::new(pkid).write(&mut self.wbuf);
            }
            Proto::V5 => {
                let _ = p5::PubRel::new(pkid, None).write(&mut self.wbuf);
            }
        }
    }

    /// Appends a PINGREQ.
    pub(crate) fn put_pingreq(&mut self) {
        // Both protocols: 0xC0 0x00.
        self.wbuf.put_slice(&[0xC0, 0x00]);
    }

    /// Appends a DISCONNECT (normal disconnection).
    pub(crate) fn put_disconnect(&mut self) {
        // MQTT 3.1.1 3.14 and MQTT 5 3.14.2.1 (remaining length 0 means reason 0x00).
        self.wbuf.put_slice(&[0xE0, 0x00]);
    }

    /// Writes the whole write buffer in one go (one `write` for many packets unless the
    /// socket's send buffer is full) and flushes it.
    pub(crate) async fn flush_wbuf(&mut self) -> Result<usize, WireFailure> {
        let n = self.wbuf.len();
        if n == 0 {
            return Ok(0);
        }
        self.stream
            .write_all(&self.wbuf)
            .await
            .map_err(|e| WireFailure::from_io(&e))?;
        self.wbuf.clear();
        self.last_write = Instant::now();
        self.writes += 1;
        Ok(n)
    }

    /// Reads what the socket has (at least one byte) into the read buffer.
    pub(crate) async fn fill(&mut self) -> Result<(), WireFailure> {
        if self.rbuf.capacity() - self.rbuf.len() < 4096 {
            self.rbuf.reserve(64 * 1024);
        }
        match self.stream.read_buf(&mut self.rbuf).await {
            Ok(0) => Err(WireFailure::retry(
                "mqtt connection failed: the broker closed the connection".into(),
            )),
            Ok(_) => {
                self.stream.quickack();
                Ok(())
            }
            Err(e) => Err(WireFailure::from_io(&e)),
        }
    }

    /// The next complete packet of the read buffer, `None` when more bytes are needed.
    pub(crate) fn next_ack(&mut self) -> Result<Option<Ack>, WireFailure> {
        match self.proto {
            Proto::V311 => match v4::Packet::read(&mut self.rbuf, self.max_incoming) {
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
                Err(e) => Err(protocol_error(&e)),
                Ok(v4::Packet::PubAck(a)) => Ok(Some(Ack::Done(a.pkid))),
                Ok(v4::Packet::PubRec(r)) => Ok(Some(Ack::Received(r.pkid))),
                Ok(v4::Packet::PubComp(c)) => Ok(Some(Ack::Done(c.pkid))),
                Ok(v4::Packet::PingResp) => Ok(Some(Ack::Other)),
                Ok(other) => Err(WireFailure::retry(format!(
                    "mqtt protocol error: unexpected {other:?} from the broker"
                ))),
            },
            Proto::V5 => {
                let reason = |p: Option<&String>| p.cloned();
                match p5::Packet::read(&mut self.rbuf, Some(self.max_incoming as u32)) {
                    Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
                    Err(e) => Err(protocol_error(&e)),
                    Ok(p5::Packet::PubAck(a)) => {
                        let code = crate::sink::puback_code(&a.reason);
                        Ok(Some(if code < 0x80 {
                            Ack::Done(a.pkid)
                        } else {
                            Ack::Failed(
                                a.pkid,
                                code,
                                reason(
                                    a.properties.as_ref().and_then(|p| p.reason_string.as_ref()),
                                ),
                            )
                        }))
                    }
                    Ok(p5::Packet::PubRec(r)) => {
                        let code = crate::sink::pubrec_code(&r.reason);
                        Ok(Some(if code < 0x80 {
                            Ack::Received(r.pkid)
                        } else {
                            Ack::Failed(
                                r.pkid,
                                code,
                                reason(
                                    r.properties.as_ref().and_then(|p| p.reason_string.as_ref()),
                                ),
                            )
                        }))
                    }
                    Ok(p5::Packet::PubComp(c)) => {
                        let code = crate::sink::pubcomp_code(&c.reason);
                        Ok(Some(if code < 0x80 {
                            Ack::Done(c.pkid)
                        } else {
                            Ack::Failed(
                                c.pkid,
                                code,
                                reason(
                                    c.properties.as_ref().and_then(|p| p.reason_string.as_ref()),
                                ),
                            )
                        }))
                    }
                    Ok(p5::Packet::PingResp(_)) => Ok(Some(Ack::Other)),
                    Ok(p5::Packet::Disconnect(d)) => {
                        let why = d
                            .properties
                            .as_ref()
                            .and_then(|p| p.reason_string.clone())
                            .map(|s| format!(": {s}"))
                            .unwrap_or_default();
                        Err(WireFailure::retry(format!(
                            "mqtt connection failed: the broker disconnected ({:?}){why}",
                            d.reason_code
                        )))
                    }
                    Ok(other) => Err(WireFailure::retry(format!(
                        "mqtt protocol error: unexpected {other:?} from the broker"
                    ))),
                }
            }
        }
    }
}

fn protocol_error(e: &dyn std::fmt::Display) -> WireFailure {
    WireFailure::retry(format!("mqtt protocol error: {e}"))
}

/// Bytes of the Variable Byte Integer encoding `x` (MQTT 5 section 1.5.5).
fn varint_len(x: usize) -> usize {
    match x {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn wire(proto: Proto) -> Wire {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let tcp = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Wire {
            stream: Io::Tcp(tcp),
            proto,
            window: 10,
            max_packet: 1 << 20,
            max_incoming: 1 << 16,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            last_pkid: 0,
            last_write: Instant::now(),
            keep_alive: Duration::from_secs(60),
            writes: 0,
        }
    }

    #[tokio::test]
    async fn publish_encoding_matches_rumqttc_codec() {
        for (qos, payload_len) in [(0u8, 3usize), (1, 200), (2, 20_000), (1, 0)] {
            let payload = vec![b'x'; payload_len];
            let mut w = wire(Proto::V311).await;
            assert!(w.put_publish("a/b", qos, true, 7, &payload));
            let mut p = v4::Publish::new(
                "a/b",
                rumqttc::mqttbytes::qos(qos).unwrap_or_else(|e| panic!("{e}")),
                payload.clone(),
            );
            p.retain = true;
            p.pkid = if qos > 0 { 7 } else { 0 };
            let mut want = BytesMut::new();
            v4::Packet::Publish(p)
                .write(&mut want, usize::MAX)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(w.wbuf, want, "v4 qos {qos} len {payload_len}");

            let mut w = wire(Proto::V5).await;
            assert!(w.put_publish("a/b", qos, false, 9, &payload));
            let q5 = rumqttc::v5::mqttbytes::qos(qos).unwrap_or_else(|| panic!());
            let mut p = p5::Publish::new("a/b", q5, payload.clone(), None);
            p.pkid = if qos > 0 { 9 } else { 0 };
            let mut want = BytesMut::new();
            p5::Packet::Publish(p)
                .write(&mut want, None)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(w.wbuf, want, "v5 qos {qos} len {payload_len}");
        }
    }

    #[tokio::test]
    async fn too_large_publishes_are_refused_and_pkids_skip_those_in_use() {
        let mut w = wire(Proto::V5).await;
        w.max_packet = 100;
        assert!(!w.put_publish("t", 1, false, 1, &[0; 100]));
        assert!(w.wbuf.is_empty());
        assert!(w.put_publish("t", 1, false, 1, &[0; 50]));
        w.last_pkid = 65_534;
        assert_eq!(w.next_pkid(|p| p == 65_535 || p == 1), 2);
    }
}
