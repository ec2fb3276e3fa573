//! [`HttpError`] (settings that cannot work) and [`SendError`] (a request without an answer).

use logship_core::Verdict;
use logship_tls::CertificateFailure;

/// Why [`HttpOptions::build`](crate::HttpOptions::build) refused the settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The TLS settings are unusable (an unreadable or malformed PEM, …).
    #[error(transparent)]
    Tls(#[from] logship_tls::TlsError),
    /// A setting is out of range or not supported by HTTP backends.
    #[error("{setting}: {reason}")]
    Setting {
        /// The builder setting.
        setting: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
}

/// A request that got no (usable) answer. Every variant is worth retrying: the server may come
/// back, a certificate may be renewed. [`verdict`](Self::verdict) says so with the reason.
/// Texts never contain URLs (a query may hold a SAS signature).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No connection could be made (refused, unreachable, DNS): the request did not reach the
    /// server, so trying another host is safe.
    #[error("cannot connect to {host}: {detail}")]
    Connect {
        /// `host:port`.
        host: String,
        /// The error chain.
        detail: String,
    },
    /// The TLS handshake failed a certificate check.
    #[error("cannot connect to {host}: {failure}")]
    Certificate {
        /// `host:port`.
        host: String,
        /// Which check failed, and what fixes it.
        failure: CertificateFailure,
    },
    /// The request or the reply timed out.
    #[error("request to {host} timed out")]
    Timeout {
        /// `host:port`.
        host: String,
    },
    /// The request failed after the connection was made (reset, closed): it may have reached
    /// the server.
    #[error("request to {host} failed: {detail}")]
    Request {
        /// `host:port`.
        host: String,
        /// The error chain.
        detail: String,
    },
    /// The HTTP client could not be created.
    #[error("cannot create the http client: {0}")]
    Client(String),
}

impl SendError {
    /// Whether the request surely did not reach the server (a connection or certificate
    /// failure): a backend with several hosts may try the next one.
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect { .. } | Self::Certificate { .. })
    }

    /// The certificate check that failed, if that was the cause.
    pub fn certificate(&self) -> Option<&CertificateFailure> {
        match self {
            Self::Certificate { failure, .. } => Some(failure),
            _ => None,
        }
    }

    /// A retry, with this error as the reason.
    pub fn verdict(&self) -> Verdict {
        Verdict::retry(self.to_string())
    }
}
