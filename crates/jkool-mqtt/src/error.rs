//! Errors of the jKool MQTT layer, and the password newtype.

use std::fmt;

/// A broker password. Its `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(p: impl Into<String>) -> Self {
        Self(p.into())
    }
    /// The password itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

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
    /// The TLS settings cannot be used.
    #[error("tls settings")]
    Tls(#[from] logship_jkool::tls::TlsError),
    /// A core pipeline setting is wrong.
    #[error("pipeline settings")]
    Pipeline(#[from] logship_core::ConfigError),
}
