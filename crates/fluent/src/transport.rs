//! Sockets only: server addresses, TCP / Unix / TLS connections, reading one msgpack reply.
//!
//! A [`Conn`] is one stream to one server. Before each batch the sink asks
//! [`Conn::peer_closed`] whether the server (or a load balancer in between) has closed it, with
//! a non-blocking read, so a dead connection is replaced instead of swallowing a batch (the
//! Python original's issue #77).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Context;
use std::time::{Duration, Instant};

use logship_tls::TlsOptions;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_rustls::TlsConnector;

use crate::error::FluentError;

/// The default Forward port.
pub const DEFAULT_PORT: u16 = 24224;

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// TCP host (name or IP) and port.
    Tcp { host: String, port: u16 },
    /// A Unix stream socket.
    Unix(PathBuf),
}

/// One configured server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) target: Target,
    /// TLS on this server (`tls://` or the builder's TLS setting).
    pub(crate) tls: bool,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Tcp { host, port } => {
                let scheme = if self.tls { "tls://" } else { "" };
                if host.contains(':') {
                    write!(f, "{scheme}[{host}]:{port}")
                } else {
                    write!(f, "{scheme}{host}:{port}")
                }
            }
            Target::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

impl Endpoint {
    /// Parses `host:port`, `host` (port 24224), `[v6]:port`, `tcp://…`, `tls://…` or
    /// `unix:///path`.
    ///
    /// # Errors
    /// [`FluentError::Address`] saying what is wrong.
    pub(crate) fn parse(s: &str) -> Result<Self, FluentError> {
        let bad = |hint| FluentError::Address {
            address: redact_address(s),
            hint,
        };
        if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(bad(
                    "`unix://` needs a path, e.g. `unix:///var/run/fluent.sock`",
                ));
            }
            return Ok(Self {
                target: Target::Unix(PathBuf::from(path)),
                tls: false,
            });
        }
        let (rest, tls) = if let Some(r) = s.strip_prefix("tls://") {
            (r, true)
        } else if let Some(r) = s.strip_prefix("tcp://") {
            (r, false)
        } else if s.contains("://") {
            return Err(bad(
                "use `host:port`, `tcp://host:port`, `tls://host:port` or `unix:///path`",
            ));
        } else {
            (s, false)
        };
        if rest.contains('@') {
            // No host holds an `@`: this is a `user:password@` userinfo, which the Forward
            // protocol has no place for (its credentials travel in the handshake).
            return Err(bad(
                "the address holds credentials (`user:password@`), which a Forward address \
                 cannot carry: remove them and use `with_shared_key` (and `with_credentials`)",
            ));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let Some((host, after)) = v6.split_once(']') else {
                return Err(bad("an IPv6 address needs a closing `]`"));
            };
            match after.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None if after.is_empty() => (host, None),
                None => return Err(bad("expected `:port` after `]`")),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, _)) if h.contains(':') => {
                    return Err(bad("write IPv6 addresses in brackets, e.g. `[::1]:24224`"));
                }
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        if host.contains(['[', ']']) {
            return Err(bad(
                "the host contains `[` or `]`; write an IPv6 address as `[addr]:port`",
            ));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(bad("the port must be a number from 1 to 65535")),
            },
        };
        Ok(Self {
            target: Target::Tcp {
                host: host.to_string(),
                port,
            },
            tls,
        })
    }
}

/// `address` as it may be shown in errors and `Debug` output: a TCP or TLS address through
/// [`logship_core::redact_url`] (a `user:password@` or a query is masked, host and port stay),
/// a `unix://` path as it is (a path holds no credentials, and may hold an `@`).
pub(crate) fn redact_address(address: &str) -> String {
    if address.starts_with("unix://") {
        address.to_string()
    } else {
        logship_core::redact_url(address)
    }
}

/// Any stream the sink can talk through.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[cfg(unix)]
type Probe = Option<std::os::fd::OwnedFd>;
#[cfg(not(unix))]
type Probe = ();

#[cfg(unix)]
fn probe_of(sock: &impl std::os::fd::AsFd) -> Probe {
    rustix::io::dup(sock).ok()
}
#[cfg(not(unix))]
fn probe_of<T>(_sock: &T) -> Probe {}

/// Whether the kernel already holds the peer's FIN (or an error) for the socket: a
/// `MSG_PEEK | MSG_DONTWAIT` receive on the duplicate descriptor that returns 0 bytes. tokio
/// only learns of a FIN when its driver next polls the socket, which a loaded machine may not
/// have done yet when the next batch is written; the kernel knows at once. Pending data (an
/// ack, TLS session tickets) is left for the stream: only end-of-stream counts here.
#[cfg(unix)]
fn kernel_says_closed(probe: &Probe) -> bool {
    let mut byte = [0u8; 1];
    matches!(kernel_peek(probe, &mut byte), Peek::Closed)
}
#[cfg(not(unix))]
fn kernel_says_closed(_probe: &Probe) -> bool {
    false
}

/// Asks the kernel to acknowledge what it received at once (Linux `TCP_QUICKACK`; the flag is
/// not sticky, so it is set again after every read). With several chunks in flight the sink
/// can stop writing while it awaits acks; a server with Nagle's algorithm on then holds its next
/// small ack until our TCP ACK arrives, which Linux delays by up to 40 ms when it has no data to
/// send with it: one such stall per window without this. A no-op elsewhere and on Unix sockets.
fn quickack(probe: &Probe) {
    #[cfg(target_os = "linux")]
    if let Some(fd) = probe {
        let _ = rustix::net::sockopt::set_tcp_quickack(fd, true);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = probe;
}

/// What the kernel holds for the socket, without taking it.
enum Peek {
    /// End of stream or an error.
    Closed,
    /// This many bytes are waiting (copied into the buffer).
    Data(usize),
    /// Nothing yet, or no probe.
    Idle,
}

/// A `MSG_PEEK | MSG_DONTWAIT` receive on the duplicate descriptor: what the kernel already
/// holds, whether or not tokio's driver has noticed it yet.
#[cfg(unix)]
fn kernel_peek(probe: &Probe, buf: &mut [u8]) -> Peek {
    use rustix::net::{RecvFlags, recv};
    let Some(fd) = probe else { return Peek::Idle };
    let len = buf.len();
    match recv(fd, buf, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
        Ok((0, _)) => Peek::Closed,
        Ok((n, _)) => Peek::Data(n.min(len)),
        Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::INTR => Peek::Idle,
        Err(_) => Peek::Closed,
    }
}
#[cfg(not(unix))]
fn kernel_peek(_probe: &Probe, _buf: &mut [u8]) -> Peek {
    Peek::Idle
}

/// One open connection, with a read buffer for replies.
pub(crate) struct Conn {
    io: Box<dyn Io>,
    /// A duplicate of the socket's descriptor, for the kernel-level half of
    /// [`peer_closed`](Self::peer_closed).
    probe: Probe,
    rbuf: Vec<u8>,
    /// Set while a request is being written or its ack awaited: if the send is cancelled (the
    /// core's send timeout drops the future) the stream holds half a request or a late ack,
    /// so it must not be reused.
    pub(crate) dirty: bool,
    /// False when the server's HELO said `keepalive: false` (Fluentd's `in_forward` with
    /// `deny_keepalive true`): it closes the connection after one request (and its ack), so
    /// the sink sends one request per connection.
    pub(crate) keepalive: bool,
    /// Acks read on this connection so far.
    pub(crate) acks: u64,
    /// TLS on this connection: bytes the kernel holds may be TLS records (session tickets)
    /// rather than stray replies.
    tls: bool,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("buffered", &self.rbuf.len())
            .field("dirty", &self.dirty)
            .field("keepalive", &self.keepalive)
            .finish()
    }
}

/// Why reading a reply failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// No complete reply before the deadline.
    Timeout,
    /// The peer closed the connection.
    Closed,
    /// A socket error.
    Io(io::Error),
    /// The bytes are not msgpack, or a reply is unreasonably large.
    Invalid(String),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out waiting for the reply"),
            Self::Closed => f.write_str("the server closed the connection"),
            Self::Io(e) => write!(f, "read failed: {e}"),
            Self::Invalid(s) => write!(f, "invalid reply: {s}"),
        }
    }
}

/// Replies (acks, HELO, PONG) are small; anything bigger is not a Forward server.
pub(crate) const MAX_REPLY_BYTES: usize = 64 * 1024;

/// The deepest reply decoded, in rmpv's count (`rmpv::decode::read_value_with_max_depth`: two
/// per array or map level, three for a str or bin, two for an ext): room for about six levels
/// of nesting, where an ack (`{"ack": chunk}`), a HELO (`["HELO", {"nonce": …}]`) and a PONG
/// are at most two (the Forward protocol v1 specification,
/// <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1>). rmpv's default
/// (1024) recurses deep enough to overflow the worker thread's stack in a debug build.
pub(crate) const MAX_REPLY_DEPTH: usize = 16;

/// Decodes one reply from the start of `buf`: `Ok(Some((value, bytes used)))`, `Ok(None)`
/// when `buf` holds only the beginning of one (read more, within [`MAX_REPLY_BYTES`]).
///
/// # Errors
/// The text of a [`ReadError::Invalid`]: not msgpack, or nested deeper than
/// [`MAX_REPLY_DEPTH`].
pub(crate) fn decode_reply(buf: &[u8]) -> Result<Option<(rmpv::Value, usize)>, String> {
    let mut rd = buf;
    match rmpv::decode::read_value_with_max_depth(&mut rd, MAX_REPLY_DEPTH) {
        Ok(v) => Ok(Some((v, buf.len() - rd.len()))),
        Err(e) if is_eof(&e) => Ok(None),
        Err(rmpv::decode::Error::DepthLimitExceeded) => Err(format!(
            "too deeply nested (msgpack depth limit {MAX_REPLY_DEPTH}; an ack, HELO or PONG \
             nests two arrays or maps at most): is this a Forward server?"
        )),
        Err(e) => Err(e.to_string()),
    }
}

impl Conn {
    fn new(io: Box<dyn Io>, probe: Probe, tls: bool) -> Self {
        Self {
            io,
            probe,
            tls,
            rbuf: Vec::new(),
            dirty: false,
            keepalive: true,
            acks: 0,
        }
    }

    /// Opens a connection to `ep` within `timeout` (TCP connect and TLS handshake together).
    pub(crate) async fn connect(
        ep: &Endpoint,
        tls: Option<&TlsSetup>,
        timeout: Duration,
    ) -> io::Result<Self> {
        let fut = async {
            match &ep.target {
                Target::Unix(path) => {
                    let s = tokio::net::UnixStream::connect(path).await?;
                    let probe = probe_of(&s);
                    Ok(Self::new(Box::new(s), probe, false))
                }
                Target::Tcp { host, port } => {
                    let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                    s.set_nodelay(true)?;
                    let probe = probe_of(&s);
                    if !ep.tls {
                        return Ok(Self::new(Box::new(s), probe, false));
                    }
                    let Some(tls) = tls else {
                        return Err(io::Error::other("tls is not configured"));
                    };
                    let name = match &tls.server_name {
                        Some(n) => n.clone(),
                        None => rustls::pki_types::ServerName::try_from(host.clone())
                            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
                    };
                    let s = tls.connector.connect(name, s).await?;
                    Ok(Self::new(Box::new(s), probe, true))
                }
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect timed out after {} ms", timeout.as_millis()),
            )),
        }
    }

    /// Whether the peer closed the connection (or sent something unexpected), checked with
    /// one non-blocking read. Call it before writing a batch into an idle connection.
    pub(crate) async fn peer_closed(&mut self) -> bool {
        if self.tls {
            if kernel_says_closed(&self.probe) {
                return true;
            }
        } else {
            // Without TLS, any byte on an idle connection is a stray reply (a late ack, the
            // HELO of a server that requires the handshake): seen here even when tokio's
            // driver has not noticed it yet, and kept for `stray_reply`.
            let mut bytes = [0u8; 1024];
            match kernel_peek(&self.probe, &mut bytes) {
                Peek::Closed => return true,
                Peek::Data(n) => {
                    self.rbuf.extend_from_slice(&bytes[..n]);
                    return true;
                }
                Peek::Idle => {}
            }
        }
        // Let the runtime poll the OS first: tokio only learns that a socket became readable
        // (a FIN arrived while we were idle) when its driver runs, and a yield runs it.
        tokio::task::yield_now().await;
        let mut bytes = [0u8; 1024];
        let mut buf = ReadBuf::new(&mut bytes);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        // Ready means EOF, an error, or stray bytes (a late ack of an abandoned request, or the
        // HELO of a server that requires the handshake): either way the stream is not in a
        // state we can trust. Pending means alive and idle. Stray bytes are kept for
        // [`stray_reply`](Self::stray_reply).
        let ready = Pin::new(&mut *self.io)
            .poll_read(&mut cx, &mut buf)
            .is_ready();
        if ready && self.rbuf.len() < MAX_REPLY_BYTES {
            self.rbuf.extend_from_slice(buf.filled());
        }
        ready
    }

    /// The first complete reply among bytes the peer sent unasked (seen by
    /// [`peer_closed`](Self::peer_closed)), if any.
    pub(crate) fn stray_reply(&self) -> Option<rmpv::Value> {
        decode_reply(&self.rbuf).ok().flatten().map(|(v, _)| v)
    }

    /// Writes `bytes` completely and flushes.
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    /// Reads one complete msgpack value, waiting until `deadline`.
    pub(crate) async fn read_value(&mut self, deadline: Instant) -> Result<rmpv::Value, ReadError> {
        read_value_from(&mut self.io, &mut self.rbuf, &self.probe, deadline).await
    }

    /// The connection as a reading half (replies, with the read buffer) and a writing half
    /// (requests), so that the sink can keep writing chunks while it reads acks (the halves
    /// share the stream through `tokio::io::split`; both end when they are dropped).
    pub(crate) fn halves(&mut self) -> (Replies<'_>, Requests<'_>) {
        let (rd, wr) = tokio::io::split(&mut self.io);
        (
            Replies {
                rd,
                rbuf: &mut self.rbuf,
                probe: &self.probe,
            },
            Requests { wr },
        )
    }

    /// Closes the write side politely (TLS close_notify), bounded by `timeout`.
    pub(crate) async fn close(mut self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.io.shutdown()).await;
    }
}

/// The reading half of a [`Conn`] (see [`Conn::halves`]).
pub(crate) struct Replies<'a> {
    rd: tokio::io::ReadHalf<&'a mut Box<dyn Io>>,
    rbuf: &'a mut Vec<u8>,
    probe: &'a Probe,
}

impl Replies<'_> {
    /// As [`Conn::read_value`].
    pub(crate) async fn read_value(&mut self, deadline: Instant) -> Result<rmpv::Value, ReadError> {
        read_value_from(&mut self.rd, self.rbuf, self.probe, deadline).await
    }
}

/// The writing half of a [`Conn`] (see [`Conn::halves`]).
pub(crate) struct Requests<'a> {
    wr: tokio::io::WriteHalf<&'a mut Box<dyn Io>>,
}

impl Requests<'_> {
    /// As [`Conn::write_all`].
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.wr.write_all(bytes).await?;
        self.wr.flush().await
    }
}

/// Reads one complete msgpack value from `rd` (bytes already read but not yet used are in
/// `rbuf`), waiting until `deadline`.
async fn read_value_from<R: AsyncRead + Unpin + ?Sized>(
    rd: &mut R,
    rbuf: &mut Vec<u8>,
    probe: &Probe,
    deadline: Instant,
) -> Result<rmpv::Value, ReadError> {
    {
        loop {
            if !rbuf.is_empty() {
                match decode_reply(rbuf) {
                    Ok(Some((v, used))) => {
                        rbuf.drain(..used);
                        return Ok(v);
                    }
                    Ok(None) => {}
                    Err(e) => return Err(ReadError::Invalid(e)),
                }
                if rbuf.len() > MAX_REPLY_BYTES {
                    return Err(ReadError::Invalid(format!(
                        "reply larger than {MAX_REPLY_BYTES} bytes"
                    )));
                }
            }
            let mut tmp = [0u8; 1024];
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rd.read(&mut tmp)).await {
                Err(_) => return Err(ReadError::Timeout),
                Ok(Ok(0)) => return Err(ReadError::Closed),
                Ok(Ok(n)) => {
                    rbuf.extend_from_slice(&tmp[..n]);
                    quickack(probe);
                }
                Ok(Err(e)) => return Err(ReadError::Io(e)),
            }
        }
    }
}

fn is_eof(e: &rmpv::decode::Error) -> bool {
    use rmpv::decode::Error as E;
    match e {
        E::InvalidMarkerRead(io) | E::InvalidDataRead(io) => {
            io.kind() == io::ErrorKind::UnexpectedEof
        }
        _ => false,
    }
}

/// TLS client settings, resolved by the builder.
#[derive(Clone)]
pub(crate) struct TlsSetup {
    pub(crate) connector: TlsConnector,
    /// Overrides the name checked against the certificate (default: the host).
    pub(crate) server_name: Option<rustls::pki_types::ServerName<'static>>,
}

impl fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSetup")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// The TLS connector for `options` (the shared [`TlsOptions`] policy), built at `build()`.
pub(crate) fn tls_setup(options: &TlsOptions) -> Result<TlsSetup, FluentError> {
    let config = options.client_config("fluent")?;
    let server_name = match options.server_name() {
        None => None,
        Some(n) => Some(
            rustls::pki_types::ServerName::try_from(n.to_string()).map_err(|_| {
                FluentError::Setting {
                    setting: "TlsOptions::with_server_name",
                    value: n.to_string(),
                    hint: "use a DNS name or an IP address",
                }
            })?,
        ),
    };
    Ok(TlsSetup {
        connector: TlsConnector::from(Arc::new(config)),
        server_name,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tcp(host: &str, port: u16, tls: bool) -> Endpoint {
        Endpoint {
            target: Target::Tcp {
                host: host.into(),
                port,
            },
            tls,
        }
    }

    #[test]
    fn parses_addresses() {
        let cases = [
            ("127.0.0.1:24224", tcp("127.0.0.1", 24224, false)),
            ("fluentd", tcp("fluentd", 24224, false)),
            ("tcp://fluentd:1", tcp("fluentd", 1, false)),
            (
                "tls://logs.example.com:24284",
                tcp("logs.example.com", 24284, true),
            ),
            ("[::1]:5", tcp("::1", 5, false)),
            ("[::1]", tcp("::1", 24224, false)),
        ];
        for (s, want) in cases {
            assert_eq!(Endpoint::parse(s).unwrap(), want, "{s}");
        }
        assert_eq!(
            Endpoint::parse("unix:///var/run/fluent.sock")
                .unwrap()
                .target,
            Target::Unix("/var/run/fluent.sock".into())
        );
        assert_eq!(tcp("::1", 5, true).to_string(), "tls://[::1]:5");
    }

    #[test]
    fn fuzz_nested_bracket_is_refused_not_misparsed() {
        // Found by fuzz/fuzz_targets/fluent_address.rs: `[[\x171]` was accepted with the host
        // `[\x171`, whose canonical text `[\x171:24224` no longer parsed (nor named a host).
        let e = Endpoint::parse("[[\u{17}1]").unwrap_err().to_string();
        assert!(e.contains("contains `[` or `]`"), "{e}");
        for ok in ["[::1]:5", "[fe80::1%eth0]", "fluentd:24224"] {
            let ep = Endpoint::parse(ok).unwrap();
            assert_eq!(Endpoint::parse(&ep.to_string()).unwrap(), ep, "{ok}");
        }
    }

    #[test]
    fn rejects_bad_addresses() {
        for (s, hint) in [
            ("host:port", "the port must be a number"),
            ("host:0", "the port must be a number"),
            (":24224", "the host is empty"),
            ("::1:5", "brackets"),
            ("http://x", "use `host:port`"),
            ("unix://", "needs a path"),
            ("[::1", "closing"),
            ("[[::1]", "contains `[` or `]`"),
            ("a]b:5", "contains `[` or `]`"),
            ("user@host:5", "holds credentials"),
            ("tls://u:p@host", "holds credentials"),
        ] {
            let e = Endpoint::parse(s).unwrap_err().to_string();
            assert!(e.contains(hint), "{s}: {e}");
        }
    }

    #[test]
    fn addresses_with_credentials_are_shown_redacted() {
        for (address, shown) in [
            ("tls://user:pw@host:24224", "tls://***@host:24224"),
            ("u:p#w@host:1", "***@host:1"),
            ("unix:///run/a@b.sock", "unix:///run/a@b.sock"),
            ("fluentd:24224", "fluentd:24224"),
        ] {
            assert_eq!(redact_address(address), shown, "{address}");
        }
        let e = Endpoint::parse("tls://user:pre#post@host:24224").unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(!text.contains("pre") && !text.contains("post"), "{text}");
        assert!(text.contains("tls://***@host:24224"), "{text}");
    }

    #[test]
    fn replies_nested_deeper_than_the_limit_are_invalid() {
        // An ack, a HELO: within the limit.
        let ack = [0x81, 0xa3, b'a', b'c', b'k', 0xa1, b'c'];
        assert!(matches!(decode_reply(&ack), Ok(Some((_, 7)))));
        let mut helo = vec![0x92, 0xa4, b'H', b'E', b'L', b'O', 0x81, 0xa5];
        helo.extend_from_slice(b"nonce");
        helo.extend_from_slice(&[0xc4, 1, 7]);
        assert!(matches!(decode_reply(&helo), Ok(Some((_, n))) if n == helo.len()));
        // Six arrays around a str still decode; seven do not, nor any deeper.
        let nested = |levels: usize| {
            let mut b = vec![0x91; levels];
            b.extend_from_slice(&[0xa1, b'x']);
            b
        };
        assert!(matches!(decode_reply(&nested(6)), Ok(Some(_))));
        for levels in [7, 500, 100_000] {
            let e = decode_reply(&nested(levels)).unwrap_err();
            assert!(e.starts_with("too deeply nested"), "{levels}: {e}");
        }
        // Incomplete is not invalid: a 4 GiB str header with a few bytes waits for more.
        assert!(matches!(
            decode_reply(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'x']),
            Ok(None)
        ));
    }
}
