//! [`FluentBuilder`]: the settings of the Fluent layer and their defaults.

use std::time::Duration;

use logship_core::{Guard, PipelineBuilder};
use logship_tls::TlsOptions;

use crate::FluentLayer;
use crate::encode::{EncodeSettings, Encoder, Mode, SpanStyle, TagLabel, TimeFormat};
use crate::error::{FluentError, Secret};
use crate::handshake::Credentials;
use crate::sink::{FluentSink, SinkSettings};
use crate::template::Template;
use crate::transport::{Endpoint, tls_setup};

/// Builds a [`FluentLayer`]: every setting of the layer, checked by [`build`](Self::build).
///
/// | setting | default | notes |
/// |---|---|---|
/// | tag prefix | (argument of [`FluentLayer::builder`]) | tag = `prefix.label` |
/// | [`with_tag_label`](FluentBuilder::with_tag_label) | [`TagLabel::Target`] | `shop::orders` → `prefix.shop.orders` |
/// | [`with_server`](FluentBuilder::with_server) | `127.0.0.1:24224` | repeat for failover; `unix:///path`, `tls://host:port` |
/// | [`with_round_robin`](FluentBuilder::with_round_robin) | off (failover, first server preferred) | |
/// | [`with_mode`](FluentBuilder::with_mode) | [`Mode::PackedForward`] | |
/// | [`with_time_format`](FluentBuilder::with_time_format) | [`TimeFormat::EventTime`] (ns) | |
/// | [`with_require_ack`](FluentBuilder::with_require_ack) | **on** (at-least-once) | off: at-most-once |
/// | [`with_ack_timeout`](FluentBuilder::with_ack_timeout) | 30 s | per chunk, from its write |
/// | [`with_chunk_bytes`](FluentBuilder::with_chunk_bytes) | 256 KiB ([`DEFAULT_CHUNK_BYTES`]) | entry bytes per request (chunk) target |
/// | [`with_max_chunks_in_flight`](FluentBuilder::with_max_chunks_in_flight) | 4 ([`DEFAULT_MAX_CHUNKS_IN_FLIGHT`]) | chunks written and awaiting their acks; 1: write, await the ack, then the next |
/// | [`with_connect_timeout`](FluentBuilder::with_connect_timeout) | 5 s | TCP + TLS + handshake |
/// | [`with_shared_key`](FluentBuilder::with_shared_key) | none (no handshake) | |
/// | [`with_self_hostname`](FluentBuilder::with_self_hostname) | this host's name | sent in PING |
/// | [`with_credentials`](FluentBuilder::with_credentials) | none | user authentication in the handshake |
/// | [`with_tls`](FluentBuilder::with_tls) | off | see [`TlsOptions`]: OS trust store by default |
/// | [`with_span_style`](FluentBuilder::with_span_style) | [`SpanStyle::Nested`] | |
/// | [`with_record_template`](FluentBuilder::with_record_template) | none | see [`template`](crate::template) |
/// | [`with_exclude`](FluentBuilder::with_exclude) | none | keys left out of every record |
/// | [`with_max_record_bytes`](FluentBuilder::with_max_record_bytes) | 4 MiB | larger records are refused alone |
/// | [`with_max_compressed_request_bytes`](FluentBuilder::with_max_compressed_request_bytes) | 1 000 000 | uncompressed bytes per CompressedPackedForward request (Fluent Bit drops past its `Buffer_Chunk_Size`) |
///
/// Core pipeline defaults chosen for Fluent (change them with
/// [`with_pipeline`](FluentBuilder::with_pipeline)): batches of up to 4 096 records or 4 MiB
/// (estimated, before encoding: below Fluent Bit's 6 MB `Buffer_Max_Size`), linger 1 s, send
/// timeout 60 s (above the ack timeout), everything else as in
/// [`PipelineBuilder`](logship_core::PipelineBuilder).
///
/// Setters never fail: a bad value is remembered and [`build`](Self::build) reports the first
/// one.
#[must_use]
pub struct FluentBuilder {
    tag_prefix: String,
    label: TagLabel,
    servers: Vec<String>,
    round_robin: bool,
    mode: Mode,
    time: TimeFormat,
    require_ack: bool,
    ack_timeout: Duration,
    connect_timeout: Duration,
    shared_key: Option<Secret>,
    self_hostname: Option<String>,
    user: Option<(String, Secret)>,
    tls: Option<TlsOptions>,
    spans: SpanStyle,
    templates: Vec<(String, String)>,
    exclude: Vec<String>,
    hostname: Option<String>,
    max_record_bytes: usize,
    max_compressed_request_bytes: usize,
    chunk_bytes: usize,
    max_chunks_in_flight: usize,
    pipeline: PipelineBuilder,
    /// A problem found by `from_env` or a `FluentConfig`, reported first by `build()`.
    deferred: Option<FluentError>,
}

impl std::fmt::Debug for FluentBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FluentBuilder")
            .field("tag_prefix", &self.tag_prefix)
            .field("label", &self.label)
            .field(
                "servers",
                &self
                    .servers
                    .iter()
                    .map(|s| crate::transport::redact_address(s))
                    .collect::<Vec<_>>(),
            )
            .field("round_robin", &self.round_robin)
            .field("mode", &self.mode)
            .field("time", &self.time)
            .field("require_ack", &self.require_ack)
            .field("ack_timeout", &self.ack_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("shared_key", &self.shared_key)
            .field("self_hostname", &self.self_hostname)
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .field("tls", &self.tls)
            .field("spans", &self.spans)
            .field("exclude", &self.exclude)
            .field("hostname", &self.hostname)
            .field("max_record_bytes", &self.max_record_bytes)
            .field(
                "max_compressed_request_bytes",
                &self.max_compressed_request_bytes,
            )
            .field("chunk_bytes", &self.chunk_bytes)
            .field("max_chunks_in_flight", &self.max_chunks_in_flight)
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

/// Default per-record limit: 4 MiB encoded.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 4 * 1024 * 1024;
/// Default most uncompressed bytes per CompressedPackedForward request: 1 000 000, under
/// Fluent Bit's default `Buffer_Chunk_Size` of 1 024 000 (see
/// [`FluentBuilder::with_max_compressed_request_bytes`]).
pub const DEFAULT_MAX_COMPRESSED_REQUEST_BYTES: usize = 1_000_000;
/// Default chunk size target: 256 KiB of entries per request (see
/// [`FluentBuilder::with_chunk_bytes`]).
pub const DEFAULT_CHUNK_BYTES: usize = 256 * 1024;
/// Default window: 4 chunks written and awaiting their acks (see
/// [`FluentBuilder::with_max_chunks_in_flight`]).
pub const DEFAULT_MAX_CHUNKS_IN_FLIGHT: usize = 4;
/// Smallest chunk size target `build()` accepts.
const MIN_CHUNK_BYTES: usize = 1024;
/// Largest window `build()` accepts.
const MAX_CHUNKS_IN_FLIGHT: usize = 1024;

impl FluentBuilder {
    pub(crate) fn new(tag_prefix: &str) -> Self {
        Self {
            tag_prefix: tag_prefix.to_string(),
            label: TagLabel::Target,
            servers: Vec::new(),
            round_robin: false,
            mode: Mode::PackedForward,
            time: TimeFormat::EventTime,
            require_ack: true,
            ack_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            shared_key: None,
            self_hostname: None,
            user: None,
            tls: None,
            spans: SpanStyle::Nested,
            templates: Vec::new(),
            exclude: Vec::new(),
            hostname: None,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            max_compressed_request_bytes: DEFAULT_MAX_COMPRESSED_REQUEST_BYTES,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            max_chunks_in_flight: DEFAULT_MAX_CHUNKS_IN_FLIGHT,
            pipeline: PipelineBuilder::new()
                .with_max_batch_records(4096)
                .with_max_batch_bytes(4 * 1024 * 1024)
                .with_linger(Duration::from_secs(1))
                .with_send_timeout(Duration::from_secs(60)),
            deferred: None,
        }
    }

    /// Keeps the first problem for `build()`.
    pub(crate) fn defer(mut self, e: FluentError) -> Self {
        if self.deferred.is_none() {
            self.deferred = Some(e);
        }
        self
    }

    /// Puts `e` ahead of any problem kept before (the environment's problems explain the
    /// others).
    pub(crate) fn defer_first(mut self, e: FluentError) -> Self {
        self.deferred = Some(e);
        self
    }

    /// Where the label of the tag comes from (default [`TagLabel::Target`]).
    pub fn with_tag_label(self, label: TagLabel) -> Self {
        Self { label, ..self }
    }
    /// Adds a server: `host:port`, `host` (port 24224), `[v6]:port`, `tcp://…`, `tls://…` or
    /// `unix:///path`. The first call replaces the default `127.0.0.1:24224`; further calls
    /// add failover servers, tried in order (see [`with_round_robin`](Self::with_round_robin)).
    /// Checked by `build()`.
    pub fn with_server(mut self, address: impl Into<String>) -> Self {
        self.servers.push(address.into());
        self
    }
    /// Spreads consecutive batches over all servers instead of preferring the first one.
    pub fn with_round_robin(self, on: bool) -> Self {
        Self {
            round_robin: on,
            ..self
        }
    }
    /// The Forward mode (default [`Mode::PackedForward`]).
    pub fn with_mode(self, mode: Mode) -> Self {
        Self { mode, ..self }
    }
    /// How times are sent (default [`TimeFormat::EventTime`], nanoseconds).
    pub fn with_time_format(self, time: TimeFormat) -> Self {
        Self { time, ..self }
    }
    /// Whether each batch must be acknowledged (default **true**: at-least-once delivery,
    /// duplicates possible after a lost ack). `false` gives at-most-once delivery: a batch
    /// counts as delivered once written to the socket, and a server that dies before reading
    /// it loses it silently.
    pub fn with_require_ack(self, on: bool) -> Self {
        Self {
            require_ack: on,
            ..self
        }
    }
    /// How long to wait for a chunk's ack after writing it (default 30 s; Fluentd's own
    /// out_forward waits 190 s, its `ack_response_timeout`,
    /// <https://docs.fluentd.org/output/forward>): the clock of the oldest chunk not yet
    /// acknowledged runs. Keep it below the pipeline's send timeout (60 s), which bounds the
    /// whole batch.
    pub fn with_ack_timeout(self, d: Duration) -> Self {
        Self {
            ack_timeout: d,
            ..self
        }
    }
    /// How long connecting may take: TCP, TLS and the handshake together (default 5 s).
    pub fn with_connect_timeout(self, d: Duration) -> Self {
        Self {
            connect_timeout: d,
            ..self
        }
    }
    /// Turns on the shared-key handshake (server `<security> shared_key`, Fluent Bit
    /// `Shared_Key`). The key never appears in `Debug` output or errors.
    pub fn with_shared_key(self, key: impl Into<Secret>) -> Self {
        Self {
            shared_key: Some(key.into()),
            ..self
        }
    }
    /// The client hostname sent in PING and hashed into its digest (default: this host's
    /// name). Fluentd refuses a PING carrying its own hostname.
    pub fn with_self_hostname(self, name: impl Into<String>) -> Self {
        Self {
            self_hostname: Some(name.into()),
            ..self
        }
    }
    /// User authentication: the `username` and `password` the handshake's PING carries
    /// (Forward protocol v1, "Handshake Messages"; Fluentd's `<security><user>` sections).
    /// Needs a shared key ([`with_shared_key`](Self::with_shared_key)).
    pub fn with_credentials(
        self,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Self {
        Self {
            user: Some((username.into(), password.into())),
            ..self
        }
    }
    /// Turns TLS on for every TCP server (`tls://` addresses use it too) with these settings:
    /// the server's certificate is verified against the OS trust store unless `tls` says
    /// otherwise (see [`TlsOptions`]; [`TlsOptions::with_server_name`] sets the name checked
    /// when it differs from the address's host). Checked at `build()`.
    pub fn with_tls(self, tls: TlsOptions) -> Self {
        Self {
            tls: Some(tls),
            ..self
        }
    }
    /// How enclosing spans' fields appear (default [`SpanStyle::Nested`]). Which spans are
    /// carried is a core setting: `with_pipeline(|p| p.with_span_fields(..))`.
    pub fn with_span_style(self, spans: SpanStyle) -> Self {
        Self { spans, ..self }
    }
    /// Adds a record key rendered from a template (the original's `FluentRecordFormatter`
    /// `fmt` dict), e.g. `("where", "{module}:{line}")`; see [`template`](crate::template).
    /// Event fields of the same name win. Checked by `build()`.
    pub fn with_record_template(
        mut self,
        key: impl Into<String>,
        template: impl Into<String>,
    ) -> Self {
        self.templates.push((key.into(), template.into()));
        self
    }
    /// Adds the Python formatter's default keys: `sys_host` = `{hostname}`, `sys_name` =
    /// `{target}`, `sys_module` = `{module}`.
    pub fn with_python_formatter_keys(self) -> Self {
        self.with_record_template("sys_host", "{hostname}")
            .with_record_template("sys_name", "{target}")
            .with_record_template("sys_module", "{module}")
    }
    /// Leaves these keys out of every record (the original's `exclude_attrs`): built-in keys
    /// (`level`, `target`, `tracking_id`, …), template keys or field names.
    pub fn with_exclude<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.exclude.extend(keys.into_iter().map(Into::into));
        self
    }
    /// This machine's name as records show it, i.e. what the `{hostname}` template placeholder
    /// renders to (default: the OS host name). The same setting as the other backends'
    /// `with_host_name`.
    pub fn with_host_name(self, name: impl Into<String>) -> Self {
        Self {
            hostname: Some(name.into()),
            ..self
        }
    }
    /// Largest encoded record in bytes (default 4 MiB); a larger one is refused alone (it goes
    /// to the undelivered path as rejected) and the rest of its batch is sent.
    pub fn with_max_record_bytes(self, n: usize) -> Self {
        Self {
            max_record_bytes: n,
            ..self
        }
    }
    /// Most uncompressed entry bytes in one CompressedPackedForward request (default
    /// [`DEFAULT_MAX_COMPRESSED_REQUEST_BYTES`], 1 000 000): a tag's entries beyond it go in
    /// further requests. Fluent Bit's `in_forward` decompresses in `Buffer_Chunk_Size` pieces
    /// (default 1 024 000 bytes) and **silently drops the entries past the first piece while
    /// acknowledging the request**; keep this at or below that setting. Other modes are not
    /// split (Fluentd takes any size).
    pub fn with_max_compressed_request_bytes(self, n: usize) -> Self {
        Self {
            max_compressed_request_bytes: n,
            ..self
        }
    }
    /// The chunk size target, in bytes of encoded `[time, record]` entries per request
    /// (default [`DEFAULT_CHUNK_BYTES`], 256 KiB; at least 1 024). In Forward, PackedForward
    /// and CompressedPackedForward a tag's entries beyond it go in further requests, each with
    /// its own `chunk` id and ack, so that several can be in flight (see
    /// [`with_max_chunks_in_flight`](Self::with_max_chunks_in_flight)); a request holds at
    /// least one record, so one record larger than this is a request of its own. In Message
    /// mode (one request per record) consecutive requests are written together up to this
    /// size and count as one chunk of the window. CompressedPackedForward also keeps to
    /// [`with_max_compressed_request_bytes`](Self::with_max_compressed_request_bytes).
    /// `usize::MAX` gives one request per tag per batch (the behaviour before chunking).
    pub fn with_chunk_bytes(self, n: usize) -> Self {
        Self {
            chunk_bytes: n,
            ..self
        }
    }
    /// How many chunks may be written and awaiting their acks at once on a connection
    /// (default [`DEFAULT_MAX_CHUNKS_IN_FLIGHT`], 4; from 1 to 1 024). The sink keeps writing
    /// a batch's next chunks while it reads the acks of the earlier ones, so a server never
    /// waits for the client between chunks; with `1` it writes a chunk, awaits its ack, then
    /// writes the next. Each chunk's records count as delivered when its ack arrives; a
    /// missing, late or wrong ack, or a broken connection, fails only the chunks not yet
    /// acknowledged, and only their records are sent again (with the same chunk ids). Bytes
    /// in flight stay under about this × [`with_chunk_bytes`](Self::with_chunk_bytes).
    /// Without acks it has no effect. Fluentd's `in_forward` reads and acknowledges the
    /// requests of a connection in order, so a window costs it nothing; its own
    /// `out_forward` with `require_ack_response` likewise sends further chunks before the
    /// earlier ones are acknowledged (<https://docs.fluentd.org/output/forward>).
    pub fn with_max_chunks_in_flight(self, n: usize) -> Self {
        Self {
            max_chunks_in_flight: n,
            ..self
        }
    }
    /// Changes core pipeline settings (queue, batching, retry, breaker, undelivered callback,
    /// source FQN, …) on top of the Fluent defaults in the [builder docs](FluentBuilder).
    pub fn with_pipeline(self, f: impl FnOnce(PipelineBuilder) -> PipelineBuilder) -> Self {
        Self {
            pipeline: f(self.pipeline),
            ..self
        }
    }

    /// Checks every setting, starts the worker thread, and returns the layer and its guard.
    ///
    /// No connection is made on the caller's thread: the worker connects in the background
    /// (an unreachable server shows in `Stats::last_error` and delays nothing).
    ///
    /// # Errors
    /// [`FluentError`] naming the first bad setting: an unparsable address, a template with an
    /// unknown placeholder, zero timeouts, a user without a shared key, unusable TLS material,
    /// `tls://` with a Unix socket, or an invalid core setting ([`FluentError::Pipeline`]).
    pub fn build(self) -> Result<(FluentLayer, Guard), FluentError> {
        if let Some(e) = self.deferred {
            return Err(e);
        }
        let servers = if self.servers.is_empty() {
            vec!["127.0.0.1:24224".to_string()]
        } else {
            self.servers
        };
        let mut endpoints = servers
            .iter()
            .map(|s| Endpoint::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        if self.tls.is_some() {
            for ep in &mut endpoints {
                if matches!(ep.target, crate::transport::Target::Tcp { .. }) {
                    ep.tls = true;
                }
            }
        }
        for (setting, d) in [
            ("with_ack_timeout", self.ack_timeout),
            ("with_connect_timeout", self.connect_timeout),
        ] {
            if d.is_zero() || d > Duration::from_secs(600) {
                return Err(FluentError::Setting {
                    setting,
                    value: format!("{d:?}"),
                    hint: "use a duration above zero and at most 10 min",
                });
            }
        }
        if self.max_compressed_request_bytes < 1024 {
            return Err(FluentError::Setting {
                setting: "with_max_compressed_request_bytes",
                value: self.max_compressed_request_bytes.to_string(),
                hint: "allow at least 1 024 bytes per compressed request",
            });
        }
        if self.chunk_bytes < MIN_CHUNK_BYTES {
            return Err(FluentError::Setting {
                setting: "with_chunk_bytes",
                value: self.chunk_bytes.to_string(),
                hint: "allow at least 1 024 bytes per chunk (256 KiB to 1 MiB suits Fluentd \
                       and Fluent Bit)",
            });
        }
        if self.max_chunks_in_flight == 0 || self.max_chunks_in_flight > MAX_CHUNKS_IN_FLIGHT {
            return Err(FluentError::Setting {
                setting: "with_max_chunks_in_flight",
                value: self.max_chunks_in_flight.to_string(),
                hint: "use 1 (one chunk at a time) to 1 024",
            });
        }
        if self.max_record_bytes == 0 {
            return Err(FluentError::Setting {
                setting: "with_max_record_bytes",
                value: "0".into(),
                hint: "allow at least 1 byte",
            });
        }
        if self.user.is_some() && self.shared_key.is_none() {
            return Err(FluentError::Setting {
                setting: "with_credentials",
                value: "a user without a shared key".into(),
                hint: "user authentication is part of the handshake: add `with_shared_key`",
            });
        }
        if self.tag_prefix.is_empty() && self.label == TagLabel::None {
            return Err(FluentError::Setting {
                setting: "with_tag_label",
                value: "TagLabel::None with an empty tag prefix".into(),
                hint: "give a tag prefix or a label source: every Forward request needs a tag",
            });
        }
        if self.mode == Mode::CompressedPackedForward && self.time == TimeFormat::Integer {
            return Err(FluentError::Setting {
                setting: "with_time_format",
                value: "TimeFormat::Integer with Mode::CompressedPackedForward".into(),
                hint: "servers old enough to need integer time do not take compressed requests \
                       (Fluent Bit refuses this pair too): use EventTime or another mode",
            });
        }
        let mut templates = Vec::with_capacity(self.templates.len());
        for (key, src) in self.templates {
            match Template::parse(&src) {
                Ok(t) => templates.push((key, t)),
                Err(hint) => return Err(FluentError::Template { key, hint }),
            }
        }
        let tls = if endpoints.iter().any(|e| e.tls) {
            Some(tls_setup(&self.tls.unwrap_or_default())?)
        } else {
            None
        };
        let this_host = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        let credentials = self.shared_key.map(|shared_key| Credentials {
            self_hostname: self
                .self_hostname
                .clone()
                .unwrap_or_else(|| this_host.clone()),
            shared_key,
            user: self.user,
        });
        let encoder = Encoder::new(EncodeSettings {
            tag_prefix: self.tag_prefix,
            label: self.label,
            time: self.time,
            spans: self.spans,
            templates,
            exclude: self.exclude,
            hostname: self.hostname.unwrap_or(this_host),
            max_record_bytes: self.max_record_bytes,
            max_compressed_request_bytes: self.max_compressed_request_bytes,
            chunk_bytes: self.chunk_bytes,
            mode: self.mode,
        });
        let sink = FluentSink::new(
            encoder,
            SinkSettings {
                endpoints,
                tls,
                require_ack: self.require_ack,
                ack_timeout: self.ack_timeout,
                chunk_bytes: self.chunk_bytes,
                max_chunks_in_flight: self.max_chunks_in_flight,
                connect_timeout: self.connect_timeout,
                round_robin: self.round_robin,
                credentials,
            },
        );
        let (layer, guard) = self.pipeline.build(sink)?;
        Ok((FluentLayer::from(layer), guard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(b: FluentBuilder) -> String {
        match b.build() {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn build_reports_what_to_fix() {
        let b = || FluentLayer::builder("app").with_server("127.0.0.1:1");
        assert!(err(b().with_server("nope:x")).contains("invalid server address `nope:x`"));
        assert!(err(b().with_ack_timeout(Duration::ZERO)).contains("`with_ack_timeout` is 0ns"));
        assert!(err(b().with_connect_timeout(Duration::MAX)).contains("at most 10 min"));
        assert!(err(b().with_chunk_bytes(100)).contains("`with_chunk_bytes` is 100"));
        for n in [0, 1025] {
            assert!(
                err(b().with_max_chunks_in_flight(n))
                    .contains(&format!("`with_max_chunks_in_flight` is {n}; use 1"))
            );
        }
        assert!(err(b().with_credentials("u", "p")).contains("add `with_shared_key`"));
        assert!(
            err(b().with_record_template("k", "{bogus}")).contains("unknown placeholder `{bogus}`")
        );
        assert!(
            err(FluentLayer::builder("").with_tag_label(TagLabel::None)).contains("needs a tag")
        );
        assert!(
            err(b()
                .with_mode(Mode::CompressedPackedForward)
                .with_time_format(TimeFormat::Integer))
            .contains("with_time_format")
        );
        assert!(
            err(b().with_tls(TlsOptions::new().with_ca_pem("junk"))).contains("with_ca_pem #1")
        );
        assert!(err(b().with_pipeline(|p| p.with_max_batch_records(0))).contains("pipeline"));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let b = FluentLayer::builder("app")
            .with_shared_key("s3cret-key")
            .with_credentials("bob", "pa55word")
            .with_tls(TlsOptions::new().with_client_cert_pem("c", "PRIVATE KEY"));
        let d = format!("{b:?}");
        assert!(
            !d.contains("s3cret") && !d.contains("pa55") && !d.contains("PRIVATE"),
            "{d}"
        );
        assert!(d.contains("***"));
    }
}
