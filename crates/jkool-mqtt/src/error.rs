//! Errors of the jKool MQTT layer, and the password newtype.

/// An MQTT password (the core's [`Secret`](logship_core::Secret): `Debug` prints `***`).
pub type Password = logship_core::Secret;

/// Why [`JkoolMqttBuilder::build`](crate::JkoolMqttBuilder::build) failed; each message
/// names the setting and what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JkoolMqttError {
    /// The broker URL is not usable.
    #[error("broker url {url:?} is not usable: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The topic template is not usable.
    #[error("topic {topic:?} is not usable: {reason}")]
    InvalidTopic {
        /// The template given.
        topic: String,
        /// What is wrong.
        reason: String,
    },
    /// A setting is out of range.
    #[error("`{setting}` is {value}; {hint}")]
    OutOfRange {
        /// The builder method.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        hint: &'static str,
    },
    /// The TLS settings cannot be used (an unreadable or malformed PEM, a key that does not
    /// match its certificate, …); the message names the setting or file.
    #[error(transparent)]
    Tls(#[from] logship_tls::TlsError),
    /// `TlsOptions::with_server_name` was set: the layer verifies the certificate against the
    /// host it connects to.
    #[error(
        "TlsOptions::with_server_name is not supported by the MQTT layer: the broker's certificate is verified against the host in the url; put the certificate's name in the url"
    )]
    TlsServerName,
    /// A core pipeline setting is wrong; the message names it.
    #[error(transparent)]
    Pipeline(#[from] logship_core::ConfigError),
}
