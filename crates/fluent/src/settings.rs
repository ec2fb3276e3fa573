//! Configuration without code: [`FluentBuilder::from_env`] (`LOGSHIP_FLUENT*` variables) and
//! [`FluentConfig`] (a configuration file, feature `serde`). Both give the same settings; see
//! docs/configuration.md for the table.

use std::path::PathBuf;
use std::time::Duration;

use logship_core::env::{EnvVars, parse_bool, parse_duration};
use logship_core::{PipelineConfig, Secret};
use logship_tls::TlsOptions;

use crate::{FluentBuilder, FluentError, FluentLayer, Mode, SpanStyle, TagLabel, TimeFormat};

/// The tag prefix when none is given (the CLI's default).
pub const DEFAULT_TAG_PREFIX: &str = "logship";

/// Every setting of a [`FluentBuilder`] that text can give: what [`FluentBuilder::from_env`]
/// reads from `LOGSHIP_FLUENT*` variables and, with the feature `serde`, what a configuration
/// file holds (unknown keys are refused; durations are text with a unit, `"30s"`; sizes a
/// number of bytes or text, `"4MiB"`; secrets are [`Secret`]s, never shown by `Debug`).
///
/// | key | variable | setting |
/// |---|---|---|
/// | `servers` (list) | `LOGSHIP_FLUENT` (comma-separated) | [`with_server`](FluentBuilder::with_server) each (default `127.0.0.1:24224`) |
/// | `tag` | `LOGSHIP_FLUENT_TAG` | the tag prefix of [`FluentLayer::builder`] (default `logship`) |
/// | `tag_label` | `LOGSHIP_FLUENT_TAG_LABEL` | [`with_tag_label`](FluentBuilder::with_tag_label): `target`, `name`, `none`, `field:<name>` |
/// | `round_robin` | `LOGSHIP_FLUENT_ROUND_ROBIN` | [`with_round_robin`](FluentBuilder::with_round_robin) |
/// | `mode` | `LOGSHIP_FLUENT_MODE` | [`with_mode`](FluentBuilder::with_mode): `message`, `forward`, `packed_forward`, `compressed_packed_forward` |
/// | `time_format` | `LOGSHIP_FLUENT_TIME_FORMAT` | [`with_time_format`](FluentBuilder::with_time_format): `event_time`, `integer` |
/// | `require_ack` | `LOGSHIP_FLUENT_REQUIRE_ACK` | [`with_require_ack`](FluentBuilder::with_require_ack) |
/// | `ack_timeout`, `connect_timeout` | `LOGSHIP_FLUENT_ACK_TIMEOUT`, `…_CONNECT_TIMEOUT` | [`with_ack_timeout`](FluentBuilder::with_ack_timeout)… |
/// | `shared_key` | `LOGSHIP_FLUENT_SHARED_KEY` | [`with_shared_key`](FluentBuilder::with_shared_key) |
/// | `self_hostname` | `LOGSHIP_FLUENT_SELF_HOSTNAME` | [`with_self_hostname`](FluentBuilder::with_self_hostname) |
/// | `username`, `password` | `LOGSHIP_FLUENT_USERNAME`, `LOGSHIP_FLUENT_PASSWORD` | [`with_credentials`](FluentBuilder::with_credentials) (both or neither) |
/// | `tls` | `LOGSHIP_FLUENT_TLS` | [`with_tls`](FluentBuilder::with_tls)`(TlsOptions::new())` |
/// | `tls_ca` | `LOGSHIP_FLUENT_TLS_CA` | [`with_tls`](FluentBuilder::with_tls)`(TlsOptions::new().with_ca_file(path))` (turns TLS on) |
/// | `span_style` | `LOGSHIP_FLUENT_SPAN_STYLE` | [`with_span_style`](FluentBuilder::with_span_style): `nested`, `flattened` |
/// | `exclude` (list) | `LOGSHIP_FLUENT_EXCLUDE` (comma-separated) | [`with_exclude`](FluentBuilder::with_exclude) |
/// | `host_name` | `LOGSHIP_FLUENT_HOST_NAME` | [`with_host_name`](FluentBuilder::with_host_name) |
/// | `max_record_bytes`, `max_compressed_request_bytes` | `LOGSHIP_FLUENT_MAX_RECORD_BYTES`, `…_MAX_COMPRESSED_REQUEST_BYTES` | [`with_max_record_bytes`](FluentBuilder::with_max_record_bytes)… |
/// | `chunk_bytes` | `LOGSHIP_FLUENT_CHUNK_BYTES` | [`with_chunk_bytes`](FluentBuilder::with_chunk_bytes) |
/// | `max_chunks_in_flight` | `LOGSHIP_FLUENT_MAX_CHUNKS_IN_FLIGHT` | [`with_max_chunks_in_flight`](FluentBuilder::with_max_chunks_in_flight) |
/// | `[pipeline]` | `LOGSHIP_FLUENT_<SETTING>`, else `LOGSHIP_PIPELINE_<SETTING>` | [`PipelineConfig`] |
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
#[non_exhaustive]
pub struct FluentConfig {
    /// Server addresses, in failover order.
    pub servers: Vec<String>,
    /// Tag prefix.
    pub tag: Option<String>,
    /// Tag label.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de::tag_label"))]
    pub tag_label: Option<TagLabel>,
    /// Round robin over the servers.
    pub round_robin: Option<bool>,
    /// Forward mode.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de::mode"))]
    pub mode: Option<Mode>,
    /// Time format.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de::time_format"))]
    pub time_format: Option<TimeFormat>,
    /// Ask for acks.
    pub require_ack: Option<bool>,
    /// Ack timeout.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::duration")
    )]
    pub ack_timeout: Option<Duration>,
    /// Connect timeout.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::duration")
    )]
    pub connect_timeout: Option<Duration>,
    /// Shared key.
    pub shared_key: Option<Secret>,
    /// Client hostname in PING.
    pub self_hostname: Option<String>,
    /// Handshake user name.
    pub username: Option<String>,
    /// Handshake password.
    pub password: Option<Secret>,
    /// TLS on.
    pub tls: Option<bool>,
    /// A CA certificate file (PEM) added to the trusted roots (turns TLS on).
    pub tls_ca: Option<PathBuf>,
    /// Span style.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de::span_style"))]
    pub span_style: Option<SpanStyle>,
    /// Keys left out.
    pub exclude: Vec<String>,
    /// `{hostname}`.
    pub host_name: Option<String>,
    /// Largest record.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::bytes_usize")
    )]
    pub max_record_bytes: Option<usize>,
    /// Uncompressed bytes per CompressedPackedForward request.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::bytes_usize")
    )]
    pub max_compressed_request_bytes: Option<usize>,
    /// Chunk size target.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "logship_core::env::de::bytes_usize")
    )]
    pub chunk_bytes: Option<usize>,
    /// Chunks awaiting their acks at once.
    pub max_chunks_in_flight: Option<usize>,
    /// The pipeline settings.
    pub pipeline: PipelineConfig,
}

fn parse_tag_label(s: &str) -> Result<TagLabel, String> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "target" => Ok(TagLabel::Target),
        "name" => Ok(TagLabel::Name),
        "none" => Ok(TagLabel::None),
        _ => match t.strip_prefix("field:") {
            Some(f) if !f.is_empty() => Ok(TagLabel::Field(f.to_string())),
            _ => Err("target, name, none or field:<name>".into()),
        },
    }
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "message" => Ok(Mode::Message),
        "forward" => Ok(Mode::Forward),
        "packed_forward" => Ok(Mode::PackedForward),
        "compressed_packed_forward" => Ok(Mode::CompressedPackedForward),
        _ => Err("message, forward, packed_forward or compressed_packed_forward".into()),
    }
}

fn parse_time_format(s: &str) -> Result<TimeFormat, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "event_time" => Ok(TimeFormat::EventTime),
        "integer" => Ok(TimeFormat::Integer),
        _ => Err("event_time or integer".into()),
    }
}

fn parse_span_style(s: &str) -> Result<SpanStyle, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "nested" => Ok(SpanStyle::Nested),
        "flattened" => Ok(SpanStyle::Flattened),
        _ => Err("nested or flattened".into()),
    }
}

#[cfg(feature = "serde")]
mod de {
    use logship_core::env::de::parsed;
    use serde::Deserializer;

    pub(super) fn tag_label<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<crate::TagLabel>, D::Error> {
        parsed(d, super::parse_tag_label)
    }
    pub(super) fn mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<crate::Mode>, D::Error> {
        parsed(d, super::parse_mode)
    }
    pub(super) fn time_format<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<crate::TimeFormat>, D::Error> {
        parsed(d, super::parse_time_format)
    }
    pub(super) fn span_style<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<crate::SpanStyle>, D::Error> {
        parsed(d, super::parse_span_style)
    }
}

fn list(s: Option<String>) -> Vec<String> {
    s.map(|s| {
        s.split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

impl FluentConfig {
    /// Reads the `LOGSHIP_FLUENT*` and `LOGSHIP_PIPELINE_*` variables of `env` (see the
    /// table), recording malformed values there.
    pub fn from_env(env: &mut EnvVars) -> Self {
        Self {
            servers: list(env.text("")),
            tag: env.text("TAG"),
            tag_label: env.parsed("TAG_LABEL", parse_tag_label),
            round_robin: env.parsed("ROUND_ROBIN", parse_bool),
            mode: env.parsed("MODE", parse_mode),
            time_format: env.parsed("TIME_FORMAT", parse_time_format),
            require_ack: env.parsed("REQUIRE_ACK", parse_bool),
            ack_timeout: env.parsed("ACK_TIMEOUT", parse_duration),
            connect_timeout: env.parsed("CONNECT_TIMEOUT", parse_duration),
            shared_key: env.secret("SHARED_KEY"),
            self_hostname: env.text("SELF_HOSTNAME"),
            username: env.text("USERNAME"),
            password: env.secret("PASSWORD"),
            tls: env.parsed("TLS", parse_bool),
            tls_ca: env.path("TLS_CA"),
            span_style: env.parsed("SPAN_STYLE", parse_span_style),
            exclude: list(env.text("EXCLUDE")),
            host_name: env.text("HOST_NAME"),
            max_record_bytes: env.bytes("MAX_RECORD_BYTES"),
            max_compressed_request_bytes: env.bytes("MAX_COMPRESSED_REQUEST_BYTES"),
            chunk_bytes: env.bytes("CHUNK_BYTES"),
            max_chunks_in_flight: env.count("MAX_CHUNKS_IN_FLIGHT"),
            pipeline: PipelineConfig::from_env(env),
        }
    }

    /// The builder with these settings on top of the crate's defaults; it can be configured
    /// further. A user name without a password (or the reverse), or `tls = false` with a
    /// `tls_ca`, is reported by [`build`](FluentBuilder::build).
    pub fn into_builder(self) -> FluentBuilder {
        let mut b = FluentLayer::builder(self.tag.as_deref().unwrap_or(DEFAULT_TAG_PREFIX));
        for s in self.servers {
            b = b.with_server(s);
        }
        macro_rules! set {
            ($field:ident, $method:ident) => {
                if let Some(v) = self.$field {
                    b = b.$method(v);
                }
            };
        }
        set!(tag_label, with_tag_label);
        set!(round_robin, with_round_robin);
        set!(mode, with_mode);
        set!(time_format, with_time_format);
        set!(require_ack, with_require_ack);
        set!(ack_timeout, with_ack_timeout);
        set!(connect_timeout, with_connect_timeout);
        set!(shared_key, with_shared_key);
        set!(self_hostname, with_self_hostname);
        set!(span_style, with_span_style);
        set!(host_name, with_host_name);
        set!(max_record_bytes, with_max_record_bytes);
        set!(
            max_compressed_request_bytes,
            with_max_compressed_request_bytes
        );
        set!(chunk_bytes, with_chunk_bytes);
        set!(max_chunks_in_flight, with_max_chunks_in_flight);
        if !self.exclude.is_empty() {
            b = b.with_exclude(self.exclude);
        }
        match (self.username, self.password) {
            (Some(u), Some(p)) => b = b.with_credentials(u, p),
            (None, None) => {}
            _ => {
                b = b.defer(FluentError::Setting {
                    setting: "with_credentials",
                    value: "half given".into(),
                    hint: "username (LOGSHIP_FLUENT_USERNAME) and password \
                           (LOGSHIP_FLUENT_PASSWORD) go together: set both",
                });
            }
        }
        match (self.tls, self.tls_ca) {
            (Some(false), Some(_)) => {
                b = b.defer(FluentError::Setting {
                    setting: "with_tls",
                    value: "off with a CA file".into(),
                    hint: "tls_ca (LOGSHIP_FLUENT_TLS_CA) needs TLS: drop tls = false",
                });
            }
            (_, Some(ca)) => b = b.with_tls(TlsOptions::new().with_ca_file(ca)),
            (Some(true), None) => b = b.with_tls(TlsOptions::new()),
            (_, None) => {}
        }
        let pipeline = self.pipeline;
        b.with_pipeline(|p| p.apply_config(pipeline))
    }

    /// `into_builder().build()`.
    ///
    /// # Errors
    /// As [`FluentBuilder::build`].
    pub fn build(self) -> Result<(FluentLayer, logship_core::Guard), FluentError> {
        self.into_builder().build()
    }
}

impl FluentBuilder {
    /// A builder configured by the process environment, read once, now: `LOGSHIP_FLUENT`
    /// (the address, or several separated by commas; default `127.0.0.1:24224`),
    /// `LOGSHIP_FLUENT_TAG` (default `logship`), the other `LOGSHIP_FLUENT_*` settings and the
    /// pipeline's `LOGSHIP_FLUENT_<SETTING>` / `LOGSHIP_PIPELINE_<SETTING>` (table at
    /// [`FluentConfig`]; value syntax in `logship_core::env`). Keep configuring it as any
    /// builder. A malformed value or an unknown `LOGSHIP_FLUENT_*` variable is reported by
    /// [`build`](Self::build), naming each variable and what is expected (never a secret's
    /// value).
    pub fn from_env() -> Self {
        Self::from_env_vars(std::env::vars_os())
    }

    /// As [`from_env`](Self::from_env), reading `pairs` (name, value) instead of the process
    /// environment.
    pub fn from_env_vars<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<std::ffi::OsString>,
        V: Into<std::ffi::OsString>,
    {
        let mut env = EnvVars::from_pairs("FLUENT", pairs);
        let b = FluentConfig::from_env(&mut env).into_builder();
        match env.finish() {
            Ok(()) => b,
            Err(e) => b.defer_first(FluentError::Environment(e.to_string())),
        }
    }
}
