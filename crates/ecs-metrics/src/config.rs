//! [`EcsBuilder`]: every setting of the layer, validated by [`build`](EcsBuilder::build).
//!
//! The builder; its doc lists every setting with its default.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use logship_core::{Guard, Handle, PipelineBuilder, Record};
use logship_http::{DEFAULT_MAX_REPLY_BYTES, HttpOptions};
use logship_tls::TlsOptions;
use serde_json::{Map, Value as Json};

use crate::EcsLayer;
use crate::encode::{
    BulkAction, EncoderConfig, IndexFrequency, IndexNaming, ServiceInfo, sanitize_label_key,
};
use crate::error::{EcsError, Secret};
use crate::sink::{EcsSink, SinkSettings};
use crate::transport::{EcsAuth, TransportSettings, parse_host};

/// Default index prefix.
pub const DEFAULT_INDEX_PREFIX: &str = "logship-metrics";
/// Default largest request body, in bytes before compression (10 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default records per batch (the original's `buffer_size`).
pub const DEFAULT_MAX_BATCH_RECORDS: usize = 1000;

/// One or several Elasticsearch URLs: `"http://127.0.0.1:9200"`, a `Vec`, a slice or an
/// array of them.
pub trait IntoHosts {
    /// The URLs, in failover order.
    fn into_hosts(self) -> Vec<String>;
}

impl IntoHosts for &str {
    fn into_hosts(self) -> Vec<String> {
        vec![self.to_string()]
    }
}
impl IntoHosts for String {
    fn into_hosts(self) -> Vec<String> {
        vec![self]
    }
}
impl IntoHosts for &String {
    fn into_hosts(self) -> Vec<String> {
        vec![self.clone()]
    }
}
impl<S: AsRef<str>> IntoHosts for Vec<S> {
    fn into_hosts(self) -> Vec<String> {
        self.iter().map(|s| s.as_ref().to_string()).collect()
    }
}
impl<S: AsRef<str>> IntoHosts for &[S] {
    fn into_hosts(self) -> Vec<String> {
        self.iter().map(|s| s.as_ref().to_string()).collect()
    }
}
impl<S: AsRef<str>, const N: usize> IntoHosts for [S; N] {
    fn into_hosts(self) -> Vec<String> {
        self.iter().map(|s| s.as_ref().to_string()).collect()
    }
}

/// Builds an [`EcsLayer`]. Setters never fail: a bad value is kept and reported by
/// [`build`](Self::build), which says what to fix.
///
/// | setting | default | original parameter |
/// |---|---|---|
/// | hosts ([`EcsLayer::builder`]) | required | `hosts` (failover in order) |
/// | [`with_credentials`](EcsBuilder::with_credentials), [`with_api_key`](EcsBuilder::with_api_key), [`with_encoded_api_key`](EcsBuilder::with_encoded_api_key), [`with_bearer_token`](EcsBuilder::with_bearer_token), `with_aws_sigv4` (feature `aws-sigv4`) | no auth | `auth_type`, `auth_details` |
/// | [`with_index_prefix`](EcsBuilder::with_index_prefix) | `logship-metrics` | `es_index_name` |
/// | [`with_index_frequency`](EcsBuilder::with_index_frequency) | daily, from each document's `@timestamp` (UTC) | `index_name_frequency` |
/// | [`with_data_stream`](EcsBuilder::with_data_stream) | off (dated indices) | — |
/// | [`with_dataset`](EcsBuilder::with_dataset) | the service name, sanitised, else `generic` | — |
/// | [`with_bulk_action`](EcsBuilder::with_bulk_action) | `create` | (`index`) |
/// | [`with_service_name`](EcsBuilder::with_service_name) / [`_version`](EcsBuilder::with_service_version) / [`with_environment`](EcsBuilder::with_environment) | unset | — |
/// | [`with_label`](EcsBuilder::with_label) | none | — |
/// | [`with_additional_fields`](EcsBuilder::with_additional_fields) | none | `es_additional_fields` |
/// | [`with_additional_fields_from_env`](EcsBuilder::with_additional_fields_from_env) | none | `es_additional_fields_in_env` |
/// | [`with_host_fields`](EcsBuilder::with_host_fields) | on (`host.name`, `host.hostname`, `host.id`, `host.ip`) | — |
/// | [`with_host_id`](EcsBuilder::with_host_id) | the machine id, else the host name | — |
/// | [`with_gzip`](EcsBuilder::with_gzip) | off | — |
/// | [`with_tls`](EcsBuilder::with_tls) ([`TlsOptions`]: `with_ca_pem`/`with_ca_file` add a CA, `with_only_custom_roots`, `with_client_cert_pem`/`_file`, `danger_accept_invalid_certs`) | the OS trust store (bundled Mozilla roots as fallback), certificates verified | `verify_ssl` |
/// | [`with_max_request_bytes`](EcsBuilder::with_max_request_bytes) | 10 MiB, before compression | — |
/// | [`with_max_reply_bytes`](EcsBuilder::with_max_reply_bytes) | 1 MiB | — |
/// | [`with_connect_timeout`](EcsBuilder::with_connect_timeout) | 10 s | — |
/// | [`with_install_template`](EcsBuilder::with_install_template) | off | (README: install it yourself) |
/// | [`with_log_events`](EcsBuilder::with_log_events) | off: only span timers are shipped | — |
/// | [`with_failure_folder`](EcsBuilder::with_failure_folder) (= the core dead-letter folder) | off | `flush_failure_folder` |
/// | [`with_pipeline`](EcsBuilder::with_pipeline) | core defaults, except 1 000 records per batch (`buffer_size`), 1 s linger (`flush_frequency_in_sec`), span timers on, events off | — |
#[must_use]
pub struct EcsBuilder {
    hosts: Vec<String>,
    auth: EcsAuth,
    prefix: String,
    frequency: IndexFrequency,
    data_stream: Option<String>,
    dataset: Option<String>,
    action: BulkAction,
    service: ServiceInfo,
    labels: Vec<(String, String)>,
    extra: Map<String, Json>,
    env_fields: Map<String, Json>,
    host_fields: bool,
    host_id: Option<String>,
    conflicts_as_duplicates: bool,
    gzip: bool,
    tls: TlsOptions,
    max_request_bytes: usize,
    max_reply_bytes: usize,
    connect_timeout: Duration,
    install_template: bool,
    pipeline: PipelineBuilder,
    error: Option<EcsError>,
}

impl std::fmt::Debug for EcsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcsBuilder")
            .field(
                "hosts",
                &self
                    .hosts
                    .iter()
                    .map(|h| crate::transport::redact_url(h))
                    .collect::<Vec<_>>(),
            )
            .field("auth", &self.auth)
            .field("prefix", &self.prefix)
            .field("frequency", &self.frequency)
            .field("data_stream", &self.data_stream)
            .field("dataset", &self.dataset)
            .field("action", &self.action)
            .field("service", &self.service)
            .field("host_fields", &self.host_fields)
            .field("gzip", &self.gzip)
            .field("tls", &self.tls)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_reply_bytes", &self.max_reply_bytes)
            .field("connect_timeout", &self.connect_timeout)
            .field("install_template", &self.install_template)
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

impl EcsLayer {
    /// Starts building a layer that ships to `hosts` (one URL or several, tried in order when
    /// a connection fails), e.g. `"http://127.0.0.1:9200"`.
    pub fn builder(hosts: impl IntoHosts) -> EcsBuilder {
        EcsBuilder {
            hosts: hosts.into_hosts(),
            auth: EcsAuth::None,
            prefix: DEFAULT_INDEX_PREFIX.into(),
            frequency: IndexFrequency::Daily,
            data_stream: None,
            dataset: None,
            action: BulkAction::Create,
            service: ServiceInfo::default(),
            labels: Vec::new(),
            extra: Map::new(),
            env_fields: Map::new(),
            host_fields: true,
            host_id: None,
            conflicts_as_duplicates: false,
            gzip: false,
            tls: TlsOptions::default(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            install_template: false,
            pipeline: PipelineBuilder::new()
                .with_events(false)
                .with_span_timings(true)
                .with_max_batch_records(DEFAULT_MAX_BATCH_RECORDS)
                .with_linger(Duration::from_secs(1)),
            error: None,
        }
    }

    /// Ships one timer document now: `name` started at `start` and lasted `duration` (the
    /// original's `log_time_metric`). Never blocks; see [`log_time_metric`](crate::log_time_metric()).
    pub fn log_time_metric(&self, name: &str, start: SystemTime, duration: Duration) {
        crate::log_time_metric(&self.handle(), name, start, duration);
    }
}

/// Ships one timer document through the layer behind `handle`: `name` started at `start`
/// (wall clock) and lasted `duration` (the original's `log_time_metric(metric_name,
/// start_datetime, time_us)`). It becomes the same document as a closed span named `name`.
/// Never blocks; a full queue drops it (counted in the stats).
pub fn log_time_metric(handle: &Handle, name: &str, start: SystemTime, duration: Duration) {
    handle.submit(Record::span_timing(name, start, duration).build());
}

impl EcsBuilder {
    pub(crate) fn fail(mut self, e: EcsError) -> Self {
        if self.error.is_none() {
            self.error = Some(e);
        }
        self
    }

    /// Records `e` ahead of any error recorded before (the environment's problems are the
    /// ones to fix first: they explain the others).
    pub(crate) fn fail_first(mut self, e: EcsError) -> Self {
        self.error = Some(e);
        self
    }

    /// HTTP basic authentication: `Authorization: Basic base64(username:password)` (RFC 7617)
    /// on every request. `build()` fails if either contains characters not allowed in a
    /// header. Replaces any other authentication set before.
    pub fn with_credentials(
        self,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Self {
        Self {
            auth: EcsAuth::Basic {
                username: username.into(),
                password: password.into(),
            },
            ..self
        }
    }

    /// `Authorization: ApiKey base64(id:key)`.
    pub fn with_api_key(self, id: impl Into<String>, key: impl Into<Secret>) -> Self {
        Self {
            auth: EcsAuth::ApiKey {
                id: id.into(),
                key: key.into(),
            },
            ..self
        }
    }

    /// `Authorization: ApiKey <encoded>` with the key as Elasticsearch encodes it.
    pub fn with_encoded_api_key(self, encoded: impl Into<Secret>) -> Self {
        Self {
            auth: EcsAuth::EncodedApiKey(encoded.into()),
            ..self
        }
    }

    /// `Authorization: Bearer <token>`.
    pub fn with_bearer_token(self, token: impl Into<Secret>) -> Self {
        Self {
            auth: EcsAuth::Bearer(token.into()),
            ..self
        }
    }

    /// Signs every request with AWS Signature Version 4 for an Amazon OpenSearch Service
    /// domain in `region` (signing name `es`; for OpenSearch Serverless use
    /// `with_auth(EcsAuth::AwsSigV4(AwsSigV4::new(..).with_service("aoss")))`). Cargo feature
    /// `aws-sigv4`.
    #[cfg(feature = "aws-sigv4")]
    pub fn with_aws_sigv4(
        self,
        region: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<Secret>,
    ) -> Self {
        Self {
            auth: EcsAuth::AwsSigV4(crate::sigv4::AwsSigV4::new(
                region,
                access_key_id,
                secret_access_key,
            )),
            ..self
        }
    }

    /// Any [`EcsAuth`].
    pub fn with_auth(self, auth: EcsAuth) -> Self {
        Self { auth, ..self }
    }

    /// The index name prefix (default `logship-metrics`). Checked by `build()` against
    /// Elasticsearch's index-name rules (lowercase; none of `\ / * ? " < > | , # :` or space;
    /// not starting with `-`, `_` or `+`).
    pub fn with_index_prefix(self, prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            ..self
        }
    }

    /// How the date part of the index name changes (default daily). The date comes from each
    /// document's `@timestamp` in UTC, so a document always lands in the index of its own day.
    pub fn with_index_frequency(self, frequency: IndexFrequency) -> Self {
        Self { frequency, ..self }
    }

    /// Writes to data streams instead of dated indices: timers to
    /// `metrics-<dataset>-<namespace>`, log events to `logs-<dataset>-<namespace>`, always
    /// with `create`, and adds `data_stream.*` to each document. `namespace` follows the data
    /// stream naming rules (lowercase, no `-`, at most 100 bytes), e.g. `default`.
    pub fn with_data_stream(self, namespace: impl Into<String>) -> Self {
        Self {
            data_stream: Some(namespace.into()),
            ..self
        }
    }

    /// `event.dataset` (and the data stream's dataset): lowercase, no `-`, at most 100 bytes
    /// (default: the service name made to follow those rules, else `generic`).
    pub fn with_dataset(self, dataset: impl Into<String>) -> Self {
        Self {
            dataset: Some(dataset.into()),
            ..self
        }
    }

    /// The bulk action (default [`BulkAction::Create`]; data streams require it).
    pub fn with_bulk_action(self, action: BulkAction) -> Self {
        Self { action, ..self }
    }

    /// `service.name`.
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service.name = Some(name.into());
        self
    }

    /// `service.version`.
    pub fn with_service_version(mut self, version: impl Into<String>) -> Self {
        self.service.version = Some(version.into());
        self
    }

    /// `service.environment`, e.g. `production`.
    pub fn with_environment(mut self, environment: impl Into<String>) -> Self {
        self.service.environment = Some(environment.into());
        self
    }

    /// Adds `labels.<key> = value` to every document (`.`, `*`, `\` in the key become `_`).
    /// Per event, fields named `labels.<key>` do the same.
    pub fn with_label(mut self, key: impl AsRef<str>, value: impl Into<String>) -> Self {
        let k = sanitize_label_key(key.as_ref()).into_owned();
        let v = value.into();
        match self.labels.iter_mut().find(|(x, _)| *x == k) {
            Some(slot) => slot.1 = v,
            None => self.labels.push((k, v)),
        }
        self
    }

    /// A JSON object deep-merged into every document (the original's `es_additional_fields`),
    /// e.g. `json!({"App": "shop", "service": {"node": {"name": "web1"}}})`. Where it names a
    /// field the layer writes itself, the layer's value wins. `build()` fails if `fields` is
    /// not an object.
    pub fn with_additional_fields(self, fields: Json) -> Self {
        match fields {
            Json::Object(m) => Self { extra: m, ..self },
            other => self.fail(EcsError::InvalidSetting {
                setting: "with_additional_fields",
                reason: format!("expected a json object, got `{other}`"),
            }),
        }
    }

    /// A JSON object whose leaves name environment variables (the original's
    /// `es_additional_fields_in_env`), e.g. `json!({"App": "APP_NAME", "Nested": {"One":
    /// "ENV_ONE"}})`. The variables are read for every batch, when it is encoded (a change
    /// applies from the next batch); a set variable's value (text) goes to that path,
    /// overriding [`with_additional_fields`](Self::with_additional_fields); an unset one leaves
    /// the static value, if any. `build()` fails if a leaf is not a string.
    pub fn with_additional_fields_from_env(self, fields: Json) -> Self {
        fn check(m: &Map<String, Json>) -> bool {
            m.values().all(|v| match v {
                Json::String(_) => true,
                Json::Object(o) => check(o),
                _ => false,
            })
        }
        match fields {
            Json::Object(m) if check(&m) => Self {
                env_fields: m,
                ..self
            },
            other => self.fail(EcsError::InvalidSetting {
                setting: "with_additional_fields_from_env",
                reason: format!(
                    "expected a json object whose leaves are variable names, got `{other}`"
                ),
            }),
        }
    }

    /// Whether documents carry `host.name`, `host.hostname`, `host.id` and `host.ip` (default
    /// true). The addresses and the machine id are read once, on the worker thread when it
    /// starts; `host.id` is the machine id of `/etc/machine-id` (or `/var/lib/dbus/machine-id`),
    /// what OpenTelemetry's `host.id` names for non-containerized systems
    /// (<https://opentelemetry.io/docs/specs/semconv/resource/host/>), else the host name (what
    /// the original Python library wrote). ECS `host.id` ("unique host id. As hostname is not
    /// always unique, use values that are meaningful in your environment"):
    /// <https://www.elastic.co/guide/en/ecs/current/ecs-host.html#field-host-id>.
    pub fn with_host_fields(self, on: bool) -> Self {
        Self {
            host_fields: on,
            ..self
        }
    }

    /// Sets `host.id` instead of the machine id (for example a cloud instance id); written even
    /// with [`with_host_fields(false)`](Self::with_host_fields). Leading and trailing white
    /// space is removed.
    ///
    /// # Errors
    /// `build()` refuses an id that is empty or longer than 1024 bytes (the template's
    /// `ignore_above`).
    pub fn with_host_id(mut self, id: impl Into<String>) -> Self {
        let id = id.into().trim().to_string();
        if id.is_empty() || id.len() > 1024 {
            self.error.get_or_insert(EcsError::InvalidSetting {
                setting: "with_host_id",
                reason: "use a non-empty id of at most 1024 bytes, e.g. the instance id".into(),
            });
        } else {
            self.host_id = Some(id);
        }
        self
    }

    /// Whether every 409 on `create` counts as delivered and as a duplicate (default false).
    ///
    /// By default a 409 is a duplicate only for a document this layer sent before (its own
    /// retry, whose earlier attempt landed); a 409 on a document it never sent means another
    /// writer stored a document under the same `_id`, and is undelivered (rejected) with a
    /// reason naming the `_id`. Turn this on for a layer that re-sends records another layer
    /// already tried, such as one replaying a dead-letter folder (`logship replay`), where a
    /// 409 is the copy that landed before.
    pub fn with_conflicts_as_duplicates(self, on: bool) -> Self {
        Self {
            conflicts_as_duplicates: on,
            ..self
        }
    }

    /// Compresses request bodies with gzip (`Content-Encoding: gzip`; default off).
    pub fn with_gzip(self, on: bool) -> Self {
        Self { gzip: on, ..self }
    }

    /// TLS for `https` hosts (default: certificates verified against the OS trust store, with
    /// the bundled Mozilla roots as fallback). For a private CA:
    /// `with_tls(TlsOptions::new().with_ca_file("/etc/es/ca.pem"))` (added to the trusted
    /// roots); `with_only_custom_roots(true)` trusts only yours; client certificates (mTLS)
    /// with `with_client_cert_file`; `danger_accept_invalid_certs(true)` switches verification
    /// off (test clusters only; a warning diagnostic is emitted at `build()`). PEM files are
    /// read by `build()`, whose error names the setting and the file.
    pub fn with_tls(self, tls: TlsOptions) -> Self {
        Self { tls, ..self }
    }

    /// Largest request body in bytes, before compression (default 10 MiB); a batch is cut into
    /// several `_bulk` requests to stay under it. A single larger document is still sent alone.
    pub fn with_max_request_bytes(self, bytes: usize) -> Self {
        Self {
            max_request_bytes: bytes,
            ..self
        }
    }

    /// Cap on each reply body, in bytes (default 1 MiB; 1 KiB to 1 GiB). A reply announcing
    /// more is not read, an endless one is cut at the cap; a `_bulk` answer cut that way is
    /// retried, with a `last_error` saying so. Requests carry at most `max_reply_bytes / 512`
    /// documents, so that their bulk answer fits.
    pub fn with_max_reply_bytes(self, bytes: usize) -> Self {
        Self {
            max_reply_bytes: bytes,
            ..self
        }
    }

    /// How long connecting to one host (TCP and TLS handshake) may take before trying the
    /// next (default 10 s; 1 ms to 10 min).
    pub fn with_connect_timeout(self, d: Duration) -> Self {
        Self {
            connect_timeout: d,
            ..self
        }
    }

    /// Installs the [`index_template`](Self::index_template) with `PUT _index_template/<name>`
    /// when the worker starts (default off). A failure is counted in the stats
    /// (`last_error`) and sending goes on.
    pub fn with_install_template(self, on: bool) -> Self {
        Self {
            install_template: on,
            ..self
        }
    }

    /// Also ships log events as ECS log documents (`event.kind: event`; default off: only span
    /// timers). Same as `with_pipeline(|p| p.with_events(on))`: the later call wins.
    pub fn with_log_events(self, on: bool) -> Self {
        self.with_pipeline(|p| p.with_events(on))
    }

    /// Writes undelivered records to the dead-letter folder `dir` (the original's
    /// `flush_failure_folder`): an alias of `with_pipeline(|p| p.with_dead_letter_dir(dir))`,
    /// the one dead-letter format of every backend (one record per line in the core's record
    /// JSON, files `logship-ecs-<YYYYMMDDTHHMMSSZ>-<pid>-<n>.ndjson`, mode 0600, the folder
    /// capped at 256 MiB; see `logship_core::undelivered`). Replay it with
    /// [`replay_failure_folder`](Self::replay_failure_folder) or `logship replay`. `build()`
    /// creates the folder.
    ///
    /// Earlier versions wrote `_bulk` bodies here instead;
    /// [`replay_failure_folder`](Self::replay_failure_folder) still reads those.
    pub fn with_failure_folder(self, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        self.with_pipeline(|p| p.with_dead_letter_dir(dir))
    }

    /// Adjusts the core pipeline (queue, batching, retry, breaker, dead letters, shutdown
    /// timeout…), e.g. `.with_pipeline(|p| p.with_linger(Duration::from_millis(200)))`.
    /// `f` is applied at once to the stored [`PipelineBuilder`], which starts from this
    /// crate's defaults (see the table above); may be called several times. Invalid pipeline
    /// settings are reported by [`build`](Self::build).
    pub fn with_pipeline(self, f: impl FnOnce(PipelineBuilder) -> PipelineBuilder) -> Self {
        Self {
            pipeline: f(self.pipeline),
            ..self
        }
    }

    /// The index template (name, body) for the current settings, to install yourself.
    ///
    /// # Errors
    /// As [`build`](Self::build), for the naming settings.
    pub fn index_template(&self) -> Result<(String, Json), EcsError> {
        let cfg = self.encoder_config()?;
        Ok(crate::template::index_template(&cfg))
    }

    fn encoder_config(&self) -> Result<EncoderConfig, EcsError> {
        let dataset = match &self.dataset {
            Some(d) => {
                check_stream_part("with_dataset", d)?;
                d.clone()
            }
            None => self
                .service
                .name
                .as_deref()
                .map(sanitize_dataset)
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "generic".into()),
        };
        let naming = match &self.data_stream {
            Some(ns) => {
                check_stream_part("with_data_stream", ns)?;
                if self.action != BulkAction::Create {
                    return Err(EcsError::InvalidSetting {
                        setting: "with_bulk_action",
                        reason: "data streams accept only `create`: remove with_bulk_action(BulkAction::Index)".into(),
                    });
                }
                IndexNaming::DataStream {
                    namespace: ns.clone(),
                }
            }
            None => {
                check_index_prefix(&self.prefix)?;
                IndexNaming::Dated {
                    prefix: self.prefix.clone(),
                    frequency: self.frequency,
                }
            }
        };
        let host_name = if self.host_fields {
            hostname::get().ok().and_then(|h| h.into_string().ok())
        } else {
            None
        };
        Ok(EncoderConfig {
            naming,
            action: self.action,
            dataset,
            service: self.service.clone(),
            host_name,
            host_id: self.host_id.clone(),
            host_ips: Vec::new(),
            pid: std::process::id(),
            agent_ephemeral_id: uuid::Uuid::new_v4().to_string(),
            labels: self.labels.clone(),
            extra: self.extra.clone(),
            env_fields: self.env_fields.clone(),
        })
    }

    pub(crate) fn transport_settings(&self) -> Result<TransportSettings, EcsError> {
        if self.hosts.is_empty() {
            return Err(EcsError::NoHosts);
        }
        let hosts = self
            .hosts
            .iter()
            .map(|h| parse_host(h))
            .collect::<Result<Vec<_>, _>>()?;
        let http = HttpOptions::new("ecs")
            .with_tls(self.tls.clone())
            .with_connect_timeout(self.connect_timeout)
            .with_max_reply_bytes(self.max_reply_bytes)
            .build()?;
        Ok(TransportSettings {
            hosts,
            auth: self.auth.header()?,
            gzip: self.gzip,
            http,
            #[cfg(feature = "aws-sigv4")]
            sigv4: match &self.auth {
                EcsAuth::AwsSigV4(s) => Some(s.clone()),
                _ => None,
            },
        })
    }

    fn check_sizes(&self) -> Result<(), EcsError> {
        if self.max_request_bytes == 0 {
            return Err(EcsError::InvalidSetting {
                setting: "with_max_request_bytes",
                reason: "use a size above zero, e.g. 10 MiB".into(),
            });
        }
        Ok(())
    }

    /// Validates everything, starts the worker thread, and returns the layer to add to a
    /// `tracing_subscriber::registry()` and the guard that flushes it on drop.
    ///
    /// # Errors
    /// [`EcsError`] naming the setting and what to fix: no or invalid host URLs, an invalid
    /// index prefix, dataset or namespace, `index` with data streams, unusable TLS settings
    /// (an unreadable or malformed PEM, named with its file), credentials that cannot be sent in
    /// a header, a request size, reply cap or timeout out of range, a failure folder that
    /// cannot be created, or invalid pipeline settings.
    pub fn build(mut self) -> Result<(EcsLayer, Guard), EcsError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.check_sizes()?;
        let transport = self.transport_settings()?;
        let cfg = self.encoder_config()?;
        let settings = SinkSettings {
            max_request_bytes: self.max_request_bytes,
            template: self
                .install_template
                .then(|| crate::template::index_template(&cfg)),
            host_fields: self.host_fields,
            conflicts_as_duplicates: self.conflicts_as_duplicates,
        };
        let sink = EcsSink::new(cfg, transport, settings);
        Ok(self.pipeline.build_layer::<EcsLayer, _>(sink)?)
    }

    /// Sends the undelivered documents in `dir` to this builder's hosts, with its
    /// authentication, TLS, compression, request size and naming settings: the core
    /// dead-letter files [`with_failure_folder`](Self::with_failure_folder) writes, and the
    /// `_bulk` files earlier versions wrote (see the table in the `failure` module:
    /// <https://docs.rs/logship-ecs-metrics> "failure folder"). A file is deleted only when
    /// every one of its lines was delivered (or was already there); otherwise it is rewritten
    /// with the lines still undelivered, for a later try. A line that cannot be sent (an
    /// action line without its document line) is kept in its file and counted in
    /// [`ReplayReport::unsent_lines`](crate::ReplayReport::unsent_lines), never dropped.
    /// Replay a folder no running layer is writing into (a file that grows meanwhile is left
    /// whole). Blocks the calling thread (the work runs on a thread of its own, so it is safe
    /// to call from async code too, though it blocks that task).
    ///
    /// # Errors
    /// [`EcsError`] for invalid connection settings or an unreadable folder; documents that
    /// fail are counted in the report instead.
    pub fn replay_failure_folder(
        self,
        dir: impl AsRef<Path>,
    ) -> Result<crate::ReplayReport, EcsError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.check_sizes()?;
        let mut encoder = self.encoder_config()?;
        let settings = crate::failure::ReplaySettings {
            transport: self.transport_settings()?,
            action: self.action,
            max_request_bytes: self.max_request_bytes,
            encoder: {
                encoder.host_ips = Vec::new();
                encoder
            },
        };
        let host_fields = self.host_fields;
        let dir = dir.as_ref().to_path_buf();
        std::thread::Builder::new()
            .name("logship-ecs-replay".into())
            .spawn(move || {
                let mut settings = settings;
                if host_fields {
                    let ips = match settings.encoder.host_name.clone() {
                        Some(h) => crate::sink::resolve_host_ips(&h),
                        None => Vec::new(),
                    };
                    let id =
                        crate::sink::machine_id().or_else(|| settings.encoder.host_name.clone());
                    settings.encoder.host_ips = ips;
                    if settings.encoder.host_id.is_none() {
                        settings.encoder.host_id = id;
                    }
                }
                crate::failure::replay(&dir, settings)
            })
            .map_err(|source| EcsError::Io {
                path: PathBuf::from("<replay thread>"),
                source,
            })?
            .join()
            .unwrap_or_else(|_| {
                Err(EcsError::Io {
                    path: PathBuf::from("<replay thread>"),
                    source: std::io::Error::other("the replay thread panicked"),
                })
            })
    }
}

/// Elasticsearch index-name rules for the prefix.
fn check_index_prefix(p: &str) -> Result<(), EcsError> {
    let bad = |reason| {
        Err(EcsError::InvalidName {
            setting: "with_index_prefix",
            value: p.to_string(),
            reason,
        })
    };
    if p.is_empty() || p == "." || p == ".." {
        return bad("use a non-empty name such as `app-metrics`");
    }
    if p.len() > 200 {
        return bad("use at most 200 bytes (the date suffix needs room within 255)");
    }
    if p.chars().any(|c| c.is_uppercase()) {
        return bad("index names must be lowercase");
    }
    if p.starts_with(['-', '_', '+']) {
        return bad("index names must not start with `-`, `_` or `+`");
    }
    if p.contains(['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':']) {
        return bad("index names must not contain `\\ / * ? \" < > | , # :` or spaces");
    }
    Ok(())
}

/// Data stream naming rules for a dataset or namespace.
fn check_stream_part(setting: &'static str, s: &str) -> Result<(), EcsError> {
    let bad = |reason| {
        Err(EcsError::InvalidName {
            setting,
            value: s.to_string(),
            reason,
        })
    };
    if s.is_empty() || s.len() > 100 {
        return bad("use 1 to 100 bytes");
    }
    if s.chars().any(|c| c.is_uppercase()) {
        return bad("must be lowercase");
    }
    if s.contains([
        '\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':', '-',
    ]) {
        return bad("must not contain `-`, `\\ / * ? \" < > | , # :` or spaces");
    }
    Ok(())
}

/// ecs-logging's rule for `event.dataset`: lowercase, `\ / * ? " < > | space , # : -` → `_`,
/// at most 100 bytes.
fn sanitize_dataset(s: &str) -> String {
    let mut out: String = s
        .to_lowercase()
        .chars()
        .map(|c| {
            if matches!(
                c,
                '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':' | '-'
            ) {
                '_'
            } else {
                c
            }
        })
        .collect();
    while out.len() > 100 {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(b: EcsBuilder) -> String {
        match b.build() {
            Ok(_) => String::from("built"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn build_errors_name_the_fix() {
        let url = "http://127.0.0.1:9";
        assert!(err(EcsLayer::builder(Vec::<String>::new())).contains("no elasticsearch host"));
        assert!(err(EcsLayer::builder("nope")).contains("invalid host url"));
        assert!(err(EcsLayer::builder(url).with_index_prefix("Metrics")).contains("lowercase"));
        assert!(err(EcsLayer::builder(url).with_index_prefix("_x")).contains("must not start"));
        assert!(err(EcsLayer::builder(url).with_data_stream("a-b")).contains("with_data_stream"));
        assert!(
            err(EcsLayer::builder(url)
                .with_data_stream("x")
                .with_bulk_action(BulkAction::Index))
            .contains("only `create`")
        );
        assert!(
            err(EcsLayer::builder(url).with_additional_fields(serde_json::json!([1])))
                .contains("json object")
        );
        assert!(err(EcsLayer::builder(url).with_additional_fields_from_env(serde_json::json!({"a": 1}))).contains("variable names"));
        assert!(
            err(EcsLayer::builder(url).with_max_request_bytes(0))
                .contains("with_max_request_bytes")
        );
        assert!(
            err(EcsLayer::builder(url).with_tls(TlsOptions::new().with_ca_pem("not pem")))
                .contains("with_ca_pem")
        );
        assert!(
            err(EcsLayer::builder(url)
                .with_tls(TlsOptions::new().with_ca_file("/nonexistent/ca.pem")))
            .contains("/nonexistent/ca.pem")
        );
        assert!(
            err(EcsLayer::builder(url).with_max_reply_bytes(10)).contains("with_max_reply_bytes")
        );
        assert!(
            err(EcsLayer::builder(url).with_connect_timeout(Duration::ZERO))
                .contains("with_connect_timeout")
        );
        assert!(err(EcsLayer::builder("http://u:pw@es:9200")).contains("with_credentials"));
        assert!(
            err(EcsLayer::builder(url).with_pipeline(|p| p.with_max_batch_records(0)))
                .contains("pipeline")
        );
    }

    #[test]
    fn dataset_defaults_from_service() {
        assert_eq!(sanitize_dataset("My-Shop:API"), "my_shop_api");
        let b = EcsLayer::builder("http://127.0.0.1:9").with_service_name("Web-Shop");
        assert_eq!(
            b.encoder_config().map(|c| c.dataset).ok(),
            Some("web_shop".into())
        );
    }

    #[test]
    fn hosts_forms() {
        assert_eq!("http://a:1".into_hosts(), vec!["http://a:1"]);
        assert_eq!(["http://a:1", "http://b:1"].into_hosts().len(), 2);
        assert_eq!(vec![String::from("http://a:1")].into_hosts().len(), 1);
    }
}
