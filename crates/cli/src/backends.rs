//! Building the backends named on the command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgGroup, ArgMatches, Args, ValueEnum};
use logship_core::{Guard, Handle, Record};
use logship_tls::TlsOptions;

use crate::secret::{self, Pair, SecretArg};

/// Environment variables read by the secret options (each also has a `--…-file` twin; see
/// [`crate::secret`]). The jKool and Kusto names are the tour's (`examples/tour`).
mod env {
    pub(super) const FLUENT_SHARED_KEY: &str = "LOGSHIP_FLUENT_SHARED_KEY";
    pub(super) const FLUENT_PASSWORD: &str = "LOGSHIP_FLUENT_PASSWORD";
    pub(super) const JKOOL_TOKEN: &str = "LOGSHIP_JKOOL_TOKEN";
    pub(super) const MQTT_PASSWORD: &str = "LOGSHIP_MQTT_PASSWORD";
    pub(super) const ES_PASSWORD: &str = "LOGSHIP_ES_PASSWORD";
    pub(super) const ES_API_KEY: &str = "LOGSHIP_ES_API_KEY";
    pub(super) const ES_ENCODED_API_KEY: &str = "LOGSHIP_ES_ENCODED_API_KEY";
    pub(super) const ES_BEARER_TOKEN: &str = "LOGSHIP_ES_BEARER_TOKEN";
    pub(super) const KUSTO: &str = "LOGSHIP_KUSTO";
    pub(super) const KUSTO_APP_KEY: &str = "LOGSHIP_KUSTO_APP_KEY";
}

/// The `--help` epilogue of the commands that send.
pub(crate) const SECRETS_HELP: &str = "\
Secrets (options marked \"secret\") can also come from the environment variable shown or from \
a file (the option's -file twin; a trailing line break is dropped), which keeps them out of \
the process arguments that `ps` shows. Typing an option and its -file twin is an error; a file \
wins over the variable. LOGSHIP_JKOOL_TOKEN and LOGSHIP_KUSTO select their backend as the \
option would; the other variables are ignored unless their backend is given.";

/// Where to send (at least one).
///
/// Secret options (marked "secret") can also come from their environment variable or a
/// `--…-file PATH` (trailing line break dropped); `--x` and `--x-file` together are an error,
/// a file wins over the variable. Setting `LOGSHIP_JKOOL_TOKEN` or `LOGSHIP_KUSTO` selects that
/// backend as the option would; the other variables are ignored unless their backend is given.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("jkool").args(["jkool_https", "jkool_token_file"]).multiple(true)))]
#[command(group(ArgGroup::new("kusto_cs").args(["kusto", "kusto_file"]).multiple(true)))]
pub(crate) struct Targets {
    /// Fluentd / Fluent Bit forward address: `host:port`, `unix:///path` or `tls://host:port`.
    #[arg(long, value_name = "ADDR", help_heading = "Fluentd")]
    fluent: Option<String>,
    /// Fluent tag prefix (the tag is `<prefix>.<target>`).
    #[arg(
        long,
        default_value = "logship",
        requires = "fluent",
        help_heading = "Fluentd"
    )]
    tag: String,
    /// Shared key for the forward handshake (server `<security> shared_key`); secret.
    #[arg(long, value_name = "KEY", env = env::FLUENT_SHARED_KEY, hide_env_values = true, help_heading = "Fluentd")]
    fluent_shared_key: Option<SecretArg>,
    /// Read the shared key from this file.
    #[arg(long, value_name = "PATH", value_parser = secret::read_file, requires = "fluent", help_heading = "Fluentd")]
    fluent_shared_key_file: Option<SecretArg>,
    /// Forward protocol mode of each request.
    #[arg(
        long,
        value_enum,
        default_value = "packed-forward",
        requires = "fluent",
        help_heading = "Fluentd"
    )]
    fluent_mode: FluentMode,
    /// Do not ask the server for acks (`chunk`/`ack`): at-most-once, a record counts as
    /// delivered once written to the socket. By default every request waits for its ack.
    #[arg(long, requires = "fluent", help_heading = "Fluentd")]
    fluent_no_ack: bool,
    /// Client hostname sent in the handshake's PING (default: this host's name).
    #[arg(
        long,
        value_name = "NAME",
        requires = "fluent",
        help_heading = "Fluentd"
    )]
    fluent_self_hostname: Option<String>,
    /// User name for the handshake (server `<user>`; needs the shared key and a password).
    #[arg(
        long,
        value_name = "USER",
        requires = "fluent",
        help_heading = "Fluentd"
    )]
    fluent_username: Option<String>,
    /// Password for `--fluent-username`; secret.
    #[arg(long, value_name = "PASSWORD", env = env::FLUENT_PASSWORD, hide_env_values = true, help_heading = "Fluentd")]
    fluent_password: Option<SecretArg>,
    /// Read the Fluent password from this file.
    #[arg(long, value_name = "PATH", value_parser = secret::read_file, requires = "fluent", help_heading = "Fluentd")]
    fluent_password_file: Option<SecretArg>,
    /// jKool access token for the HTTPS endpoint; secret.
    #[arg(long, value_name = "TOKEN", env = env::JKOOL_TOKEN, hide_env_values = true, help_heading = "jKool")]
    jkool_https: Option<SecretArg>,
    /// Read the jKool access token from this file (selects the HTTPS endpoint).
    #[arg(long, value_name = "PATH", value_parser = secret::read_file, help_heading = "jKool")]
    jkool_token_file: Option<SecretArg>,
    /// jKool base URL.
    #[arg(
        long,
        default_value = "https://data.jkoolcloud.com/JESL",
        requires = "jkool",
        help_heading = "jKool"
    )]
    jkool_url: String,
    /// MQTT broker URL (`mqtt://host:port`, `mqtts://…`) for jKool documents.
    #[arg(long, value_name = "URL", help_heading = "MQTT")]
    mqtt: Option<String>,
    /// MQTT user name (needs a password).
    #[arg(long, requires = "mqtt", help_heading = "MQTT")]
    username: Option<String>,
    /// MQTT password; secret.
    #[arg(long, env = env::MQTT_PASSWORD, hide_env_values = true, help_heading = "MQTT")]
    password: Option<SecretArg>,
    /// Read the MQTT password from this file.
    #[arg(long, value_name = "PATH", value_parser = secret::read_file, requires = "mqtt", help_heading = "MQTT")]
    password_file: Option<SecretArg>,
    /// MQTT topic (a template: `{target}`, `{level}`, `{kind}`).
    #[arg(long, requires = "mqtt", help_heading = "MQTT")]
    topic: Option<String>,
    /// Elasticsearch / OpenSearch URL.
    #[arg(long, value_name = "URL", help_heading = "Elasticsearch")]
    es: Option<String>,
    /// Index prefix.
    #[arg(
        long,
        default_value = "logship",
        requires = "es",
        help_heading = "Elasticsearch"
    )]
    index: String,
    /// User for basic authentication (`Authorization: Basic`; needs a password).
    #[arg(
        long,
        value_name = "USER",
        requires = "es",
        help_heading = "Elasticsearch"
    )]
    es_user: Option<String>,
    /// Password for `--es-user`; secret.
    #[arg(long, value_name = "PASSWORD", env = env::ES_PASSWORD, hide_env_values = true, help_heading = "Elasticsearch")]
    es_password: Option<SecretArg>,
    /// Read the Elasticsearch password from this file.
    #[arg(long, value_name = "PATH", value_parser = secret::read_file, requires = "es", help_heading = "Elasticsearch")]
    es_password_file: Option<SecretArg>,
    /// API key id (`Authorization: ApiKey base64(id:key)`; needs the key).
    #[arg(
        long,
        value_name = "ID",
        requires = "es",
        help_heading = "Elasticsearch"
    )]
    es_api_key_id: Option<String>,
    /// API key secret for `--es-api-key-id`; secret.
    #[arg(long, value_name = "KEY", env = env::ES_API_KEY, hide_env_values = true, help_heading = "Elasticsearch")]
    es_api_key: Option<SecretArg>,
    /// Read the API key secret from this file.
    #[arg(long, value_name = "PATH", value_parser = secret::read_file, requires = "es", help_heading = "Elasticsearch")]
    es_api_key_file: Option<SecretArg>,
    /// Encoded API key, as Elasticsearch hands it out (`Authorization: ApiKey <encoded>`); secret.
    #[arg(long, value_name = "ENCODED", env = env::ES_ENCODED_API_KEY, hide_env_values = true, help_heading = "Elasticsearch")]
    es_encoded_api_key: Option<SecretArg>,
    /// Read the encoded API key from this file.
    #[arg(long, value_name = "PATH", value_parser = secret::read_file, requires = "es", help_heading = "Elasticsearch")]
    es_encoded_api_key_file: Option<SecretArg>,
    /// Bearer token (`Authorization: Bearer`; Elastic Cloud, service accounts); secret.
    #[arg(long, value_name = "TOKEN", env = env::ES_BEARER_TOKEN, hide_env_values = true, help_heading = "Elasticsearch")]
    es_bearer_token: Option<SecretArg>,
    /// Read the bearer token from this file.
    #[arg(long, value_name = "PATH", value_parser = secret::read_file, requires = "es", help_heading = "Elasticsearch")]
    es_bearer_token_file: Option<SecretArg>,
    /// Kusto connection string (`Data Source=…;Initial Catalog=…;…`); secret (it may hold
    /// `Application Key` or `Application Token`).
    #[arg(long, value_name = "CONNECTION_STRING", env = env::KUSTO, hide_env_values = true, help_heading = "Kusto")]
    kusto: Option<SecretArg>,
    /// Read the Kusto connection string from this file.
    #[arg(long, value_name = "PATH", value_parser = secret::read_file, help_heading = "Kusto")]
    kusto_file: Option<SecretArg>,
    /// The AAD application key, added to the connection string as `Application Key` (which
    /// then names `Application Client Id` and `Authority Id` but no key); secret.
    #[arg(long, value_name = "KEY", env = env::KUSTO_APP_KEY, hide_env_values = true, help_heading = "Kusto")]
    kusto_app_key: Option<SecretArg>,
    /// Read the Kusto application key from this file.
    #[arg(long, value_name = "PATH", value_parser = secret::read_file, requires = "kusto_cs", help_heading = "Kusto")]
    kusto_app_key_file: Option<SecretArg>,
    /// Kusto table.
    #[arg(
        long,
        default_value = "Logs",
        requires = "kusto_cs",
        help_heading = "Kusto"
    )]
    table: String,
    /// Run `.create-merge table` and create the JSON ingestion mapping first (needs table admin
    /// rights on a real cluster).
    #[arg(long, requires = "kusto_cs", help_heading = "Kusto")]
    create_table: bool,
    /// A CA certificate (PEM file) trusted in addition to the OS trust store by every TLS
    /// connection (`tls://` Fluent, `mqtts://`, `https://`); repeat for several.
    #[arg(
        long = "tls-ca",
        value_name = "PATH",
        help_heading = "TLS (every backend)"
    )]
    tls_ca: Vec<PathBuf>,
    /// Trust only the `--tls-ca` certificates, not the OS trust store.
    #[arg(long, requires = "tls_ca", help_heading = "TLS (every backend)")]
    tls_only_custom_roots: bool,
    /// Client certificate chain (PEM file, leaf first) for mutual TLS; needs `--tls-client-key`.
    #[arg(
        long,
        value_name = "PATH",
        requires = "tls_client_key",
        help_heading = "TLS (every backend)"
    )]
    tls_client_cert: Option<PathBuf>,
    /// Private key (PEM file: PKCS#8, PKCS#1 or SEC1) of `--tls-client-cert`.
    #[arg(
        long,
        value_name = "PATH",
        requires = "tls_client_cert",
        help_heading = "TLS (every backend)"
    )]
    tls_client_key: Option<PathBuf>,
    /// Accept any server certificate. For tests against self-signed servers only: the traffic
    /// is encrypted, but anyone on the path can read and change it. A warning is printed.
    #[arg(long, help_heading = "TLS (every backend)")]
    tls_danger_accept_invalid_certs: bool,
    /// How long to wait for delivery, in seconds (at most 86 400: one day).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    timeout: u64,
}

/// `--fluent-mode`: the Forward protocol's event modes
/// (<https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1>).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum FluentMode {
    /// `[tag, time, record, option]`: one request per record.
    Message,
    /// `[tag, [[time, record], …], option]`.
    Forward,
    /// `[tag, bin, option]`: entries packed into one binary blob.
    PackedForward,
    /// PackedForward gzipped (`compressed: "gzip"`).
    CompressedPackedForward,
}

impl From<FluentMode> for logship_fluent::Mode {
    fn from(m: FluentMode) -> Self {
        match m {
            FluentMode::Message => logship_fluent::Mode::Message,
            FluentMode::Forward => logship_fluent::Mode::Forward,
            FluentMode::PackedForward => logship_fluent::Mode::PackedForward,
            FluentMode::CompressedPackedForward => logship_fluent::Mode::CompressedPackedForward,
        }
    }
}

/// Why [`build`] failed.
#[derive(Debug)]
pub(crate) enum BuildError {
    /// The options do not fit together (exit status 2, as clap's own usage errors).
    Usage(String),
    /// A backend refused its configuration.
    Backend(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Usage(m) | BuildError::Backend(m) => f.write_str(m),
        }
    }
}

pub(crate) struct Set {
    backends: Vec<(&'static str, Handle, Guard)>,
    timeout: Duration,
}

fn err(name: &str, e: impl std::fmt::Display) -> BuildError {
    BuildError::Backend(format!("{name}: {e}"))
}

/// A secret option typed on the command line for a backend that was not given.
fn typed_without_backend(
    m: &ArgMatches,
    id: &str,
    flag: &str,
    backend: &str,
    given: bool,
) -> Result<(), BuildError> {
    if !given && m.value_source(id) == Some(ValueSource::CommandLine) {
        return Err(BuildError::Usage(format!("{flag} needs {backend}")));
    }
    Ok(())
}

/// `user` and `password` come together or not at all.
fn user_and_password<'a>(
    user: &'a Option<String>,
    user_flag: &str,
    password: &'a Option<SecretArg>,
    password_ways: &str,
) -> Result<Option<(&'a str, &'a SecretArg)>, BuildError> {
    match (user, password) {
        (Some(u), Some(p)) => Ok(Some((u, p))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(BuildError::Usage(format!(
            "{user_flag} needs a password: give {password_ways}"
        ))),
        (None, Some(_)) => Err(BuildError::Usage(format!(
            "a password was given ({password_ways}) but no {user_flag}"
        ))),
    }
}

/// The resolved secrets (see [`crate::secret`] for the precedence).
struct Secrets {
    fluent_shared_key: Option<SecretArg>,
    fluent_password: Option<SecretArg>,
    jkool_token: Option<SecretArg>,
    mqtt_password: Option<SecretArg>,
    es_password: Option<SecretArg>,
    es_api_key: Option<SecretArg>,
    es_encoded_api_key: Option<SecretArg>,
    es_bearer_token: Option<SecretArg>,
    kusto: Option<SecretArg>,
    kusto_app_key: Option<SecretArg>,
}

impl Targets {
    /// The TLS options typed (`None` when no `--tls-*` option was given: each backend then
    /// uses its default, the OS trust store). Files are read by the backends' `build()`, whose
    /// error names the file.
    fn tls(&self) -> Option<TlsOptions> {
        let typed = !self.tls_ca.is_empty()
            || self.tls_client_cert.is_some()
            || self.tls_danger_accept_invalid_certs;
        if !typed {
            return None;
        }
        let mut tls = TlsOptions::new();
        for ca in &self.tls_ca {
            tls = tls.with_ca_file(ca.clone());
        }
        tls = tls.with_only_custom_roots(self.tls_only_custom_roots);
        if let (Some(cert), Some(key)) = (&self.tls_client_cert, &self.tls_client_key) {
            tls = tls.with_client_cert_file(cert.clone(), key.clone());
        }
        Some(tls.danger_accept_invalid_certs(self.tls_danger_accept_invalid_certs))
    }

    fn pairs(&self) -> [Pair<'_>; 10] {
        let p = |id, flag, file_flag, env, value, file| Pair {
            id,
            flag,
            file_flag,
            env,
            value,
            file,
        };
        [
            p(
                "fluent_shared_key",
                "--fluent-shared-key",
                "--fluent-shared-key-file",
                env::FLUENT_SHARED_KEY,
                &self.fluent_shared_key,
                &self.fluent_shared_key_file,
            ),
            p(
                "fluent_password",
                "--fluent-password",
                "--fluent-password-file",
                env::FLUENT_PASSWORD,
                &self.fluent_password,
                &self.fluent_password_file,
            ),
            p(
                "jkool_https",
                "--jkool-https",
                "--jkool-token-file",
                env::JKOOL_TOKEN,
                &self.jkool_https,
                &self.jkool_token_file,
            ),
            p(
                "password",
                "--password",
                "--password-file",
                env::MQTT_PASSWORD,
                &self.password,
                &self.password_file,
            ),
            p(
                "es_password",
                "--es-password",
                "--es-password-file",
                env::ES_PASSWORD,
                &self.es_password,
                &self.es_password_file,
            ),
            p(
                "es_api_key",
                "--es-api-key",
                "--es-api-key-file",
                env::ES_API_KEY,
                &self.es_api_key,
                &self.es_api_key_file,
            ),
            p(
                "es_encoded_api_key",
                "--es-encoded-api-key",
                "--es-encoded-api-key-file",
                env::ES_ENCODED_API_KEY,
                &self.es_encoded_api_key,
                &self.es_encoded_api_key_file,
            ),
            p(
                "es_bearer_token",
                "--es-bearer-token",
                "--es-bearer-token-file",
                env::ES_BEARER_TOKEN,
                &self.es_bearer_token,
                &self.es_bearer_token_file,
            ),
            p(
                "kusto",
                "--kusto",
                "--kusto-file",
                env::KUSTO,
                &self.kusto,
                &self.kusto_file,
            ),
            p(
                "kusto_app_key",
                "--kusto-app-key",
                "--kusto-app-key-file",
                env::KUSTO_APP_KEY,
                &self.kusto_app_key,
                &self.kusto_app_key_file,
            ),
        ]
    }

    /// Resolves every secret and checks that none was typed for a backend not given.
    fn secrets(&self, m: &ArgMatches) -> Result<Secrets, BuildError> {
        let pairs = self.pairs();
        let mut got: Vec<Option<SecretArg>> = Vec::with_capacity(pairs.len());
        for p in &pairs {
            got.push(p.resolve(m).map_err(BuildError::Usage)?);
        }
        let mut it = got.into_iter();
        let mut next = || it.next().flatten();
        let s = Secrets {
            fluent_shared_key: next(),
            fluent_password: next(),
            jkool_token: next(),
            mqtt_password: next(),
            es_password: next(),
            es_api_key: next(),
            es_encoded_api_key: next(),
            es_bearer_token: next(),
            kusto: next(),
            kusto_app_key: next(),
        };
        let fluent = self.fluent.is_some();
        let es = self.es.is_some();
        for (id, flag, backend, given) in [
            (
                "fluent_shared_key",
                "--fluent-shared-key",
                "--fluent",
                fluent,
            ),
            ("fluent_password", "--fluent-password", "--fluent", fluent),
            ("password", "--password", "--mqtt", self.mqtt.is_some()),
            ("es_password", "--es-password", "--es", es),
            ("es_api_key", "--es-api-key", "--es", es),
            ("es_encoded_api_key", "--es-encoded-api-key", "--es", es),
            ("es_bearer_token", "--es-bearer-token", "--es", es),
            (
                "kusto_app_key",
                "--kusto-app-key",
                "--kusto or --kusto-file",
                s.kusto.is_some(),
            ),
        ] {
            typed_without_backend(m, id, flag, backend, given)?;
        }
        Ok(s)
    }

    /// How to give the secret with clap id `id`, for messages.
    fn ways(&self, id: &str) -> String {
        self.pairs()
            .iter()
            .find(|p| p.id == id)
            .map(Pair::ways)
            .unwrap_or_default()
    }
}

/// The parsed options and the subcommand's matches they came from (which tell a secret typed
/// on the command line from one taken from the environment).
#[derive(Clone, Copy)]
pub(crate) struct To<'a> {
    pub(crate) targets: &'a Targets,
    pub(crate) matches: &'a ArgMatches,
    /// `logship replay`: the records may have landed before they were dead-lettered, so an
    /// Elasticsearch `409` on `create` (the same `_id`) means "already there", not a conflict.
    pub(crate) replaying: bool,
}

/// Builds every backend the options name.
///
/// # Errors
/// [`BuildError::Usage`] when options do not fit together (no backend, a user without its
/// password, two Elasticsearch credentials, `--x` with `--x-file`); [`BuildError::Backend`]
/// when a builder refuses its settings. Messages name options and variables, never a secret.
pub(crate) fn build(to: To<'_>) -> Result<Set, BuildError> {
    let t = to.targets;
    let s = t.secrets(to.matches)?;
    let tls = t.tls();
    let mut backends = Vec::new();
    if let Some(addr) = &t.fluent {
        let mut b = logship_fluent::FluentLayer::builder(&t.tag)
            .with_server(addr.clone())
            .with_mode(t.fluent_mode.into())
            .with_require_ack(!t.fluent_no_ack);
        if let Some(tls) = &tls {
            b = b.with_tls(tls.clone());
        }
        if let Some(k) = &s.fluent_shared_key {
            b = b.with_shared_key(k.expose());
        }
        if let Some(h) = &t.fluent_self_hostname {
            b = b.with_self_hostname(h.clone());
        }
        if let Some((u, p)) = user_and_password(
            &t.fluent_username,
            "--fluent-username",
            &s.fluent_password,
            &t.ways("fluent_password"),
        )? {
            b = b.with_credentials(u, p.expose());
        }
        let (l, g) = b.build().map_err(|e| err("fluent", e))?;
        backends.push(("fluent", l.handle(), g));
    }
    if let Some(token) = &s.jkool_token {
        let mut b = logship_jkool_http::JkoolHttpLayer::builder(token.expose())
            .with_base_url(t.jkool_url.clone());
        if let Some(tls) = &tls {
            b = b.with_tls(tls.clone());
        }
        let (l, g) = b.build().map_err(|e| err("jkool-https", e))?;
        backends.push(("jkool-https", l.handle(), g));
    }
    if let Some(url) = &t.mqtt {
        let mut b = logship_jkool_mqtt::JkoolMqttLayer::builder(url.clone());
        if let Some(tls) = &tls {
            b = b.with_tls(tls.clone());
        }
        if let Some((u, p)) = user_and_password(
            &t.username,
            "--username",
            &s.mqtt_password,
            &t.ways("password"),
        )? {
            b = b.with_credentials(u, p.expose());
        }
        if let Some(topic) = &t.topic {
            b = b.with_topic(topic.clone());
        }
        let (l, g) = b.build().map_err(|e| err("mqtt", e))?;
        backends.push(("mqtt", l.handle(), g));
    }
    if let Some(url) = &t.es {
        let mut b = logship_ecs_metrics::EcsLayer::builder(url.as_str())
            .with_index_prefix(t.index.clone())
            .with_log_events(true)
            .with_conflicts_as_duplicates(to.replaying);
        if let Some(tls) = &tls {
            b = b.with_tls(tls.clone());
        }
        let mut chosen: Vec<&str> = Vec::new();
        if let Some((u, p)) = user_and_password(
            &t.es_user,
            "--es-user",
            &s.es_password,
            &t.ways("es_password"),
        )? {
            b = b.with_credentials(u, p.expose());
            chosen.push("basic (--es-user)");
        }
        if let Some((id, k)) = user_and_password(
            &t.es_api_key_id,
            "--es-api-key-id",
            &s.es_api_key,
            &t.ways("es_api_key"),
        )? {
            b = b.with_api_key(id, k.expose());
            chosen.push("API key (--es-api-key-id)");
        }
        if let Some(k) = &s.es_encoded_api_key {
            b = b.with_encoded_api_key(k.expose());
            chosen.push("encoded API key");
        }
        if let Some(tok) = &s.es_bearer_token {
            b = b.with_bearer_token(tok.expose());
            chosen.push("bearer token");
        }
        if chosen.len() > 1 {
            return Err(BuildError::Usage(format!(
                "give one Elasticsearch credential, not {} (check the LOGSHIP_ES_* variables too)",
                chosen.join(" and ")
            )));
        }
        let (l, g) = b.build().map_err(|e| err("es", e))?;
        backends.push(("es", l.handle(), g));
    }
    if let Some(cs) = &s.kusto {
        let cs = match &s.kusto_app_key {
            Some(k) => with_application_key(cs.expose(), k.expose()),
            None => cs.expose().to_string(),
        };
        let mut b = logship_kusto::KustoLayer::from_connection_string(&cs)
            .map_err(|e| err("kusto", e))?
            .with_table(t.table.clone())
            .with_create_table(t.create_table);
        if let Some(tls) = &tls {
            b = b.with_tls(tls.clone());
        }
        let (l, g) = b.build().map_err(|e| err("kusto", e))?;
        backends.push(("kusto", l.handle(), g));
    }
    if backends.is_empty() {
        return Err(BuildError::Usage(
            "no backend given: use --fluent, --jkool-https, --mqtt, --es or --kusto".into(),
        ));
    }
    Ok(Set {
        backends,
        timeout: Duration::from_secs(t.timeout),
    })
}

/// `cs` with `Application Key=key` appended, the key quoted (a `"` inside doubled), as the
/// connection-string grammar of `logship_kusto::connection_string` reads it.
fn with_application_key(cs: &str, key: &str) -> String {
    let base = cs.trim_end().trim_end_matches(';');
    format!("{base};Application Key=\"{}\"", key.replace('"', "\"\""))
}

impl Set {
    pub(crate) fn submit(&self, r: &Record) {
        for (_, h, _) in &self.backends {
            h.submit(r.clone());
        }
    }

    /// Records (delivered, failed: undelivered or dropped) so far, over every backend: what the
    /// progress display shows.
    pub(crate) fn counts(&self) -> (u64, u64) {
        self.backends.iter().fold((0, 0), |(d, f), (_, h, _)| {
            let s = h.stats();
            (d + s.delivered, f + s.undelivered() + s.dropped())
        })
    }

    /// Waits until everything submitted so far is delivered (bounded by the timeout).
    pub(crate) fn flush(&self) {
        for (_, _, guard) in &self.backends {
            let _ = guard.flush(self.timeout);
        }
    }

    /// Shuts every backend down and reports; an error when any record was not delivered.
    pub(crate) fn finish(self, expected: u64) -> Result<(), String> {
        let mut failures = Vec::new();
        for (name, handle, guard) in self.backends {
            let result = guard.shutdown(self.timeout);
            let stats = handle.stats();
            match result {
                Ok(_)
                    if stats.delivered >= expected
                        && stats.undelivered() == 0
                        && stats.dropped() == 0 =>
                {
                    eprintln!("{name}: delivered {}", stats.delivered);
                }
                Ok(_) => failures.push(format!(
                    "{name}: delivered {} of {expected}, undelivered {}, dropped {}{}",
                    stats.delivered,
                    stats.undelivered(),
                    stats.dropped(),
                    stats
                        .last_error
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                )),
                Err(e) => failures.push(format!(
                    "{name}: {e}{}",
                    stats
                        .last_error
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                )),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_application_key;

    #[test]
    fn an_application_key_is_appended_quoted_and_parses() {
        let cs = with_application_key(
            "Data Source=https://k.example;Fed=True;AppClientId=a;Authority Id=t; ",
            "a;b\"c",
        );
        assert_eq!(
            cs,
            "Data Source=https://k.example;Fed=True;AppClientId=a;Authority Id=t;\
             Application Key=\"a;b\"\"c\""
        );
        assert!(logship_kusto::KustoLayer::from_connection_string(&cs).is_ok());
        // Without the key the string is refused: the appended key is what completes it.
        assert!(
            logship_kusto::KustoLayer::from_connection_string(
                "Data Source=https://k.example;Fed=True;AppClientId=a;Authority Id=t"
            )
            .is_err()
        );
    }
}
