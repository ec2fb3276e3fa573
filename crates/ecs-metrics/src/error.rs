//! Errors: [`EcsError`] from [`EcsBuilder::build`](crate::EcsBuilder::build) and the replay
//! API, and [`Secret`], the wrapper that keeps credentials out of `Debug` and `Display`.
//!
//! Messages are lowercase and describe only their own level; causes are reachable through
//! `source()`. The message text is not part of the API.

use std::path::PathBuf;

pub use logship_core::Secret;

/// Why the layer could not be built, or a replay failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EcsError {
    /// A host URL is not usable.
    #[error("invalid host url `{url}`: {reason}")]
    InvalidHost {
        /// The URL as given (credentials in it are refused, so it holds none).
        url: String,
        /// What to fix.
        reason: String,
    },
    /// No host was given.
    #[error("no elasticsearch host given: pass at least one url such as `http://127.0.0.1:9200`")]
    NoHosts,
    /// An index prefix, dataset or namespace is not a valid Elasticsearch name.
    #[error("invalid {setting} `{value}`: {reason}")]
    InvalidName {
        /// The setter, e.g. `with_index_prefix`.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What to fix.
        reason: &'static str,
    },
    /// A setting's value is out of range or conflicts with another one.
    #[error("invalid {setting}: {reason}")]
    InvalidSetting {
        /// The setter, e.g. `with_max_request_bytes`.
        setting: &'static str,
        /// What to fix.
        reason: String,
    },
    /// The TLS or HTTP settings are unusable: an unreadable or malformed PEM in
    /// [`with_tls`](crate::EcsBuilder::with_tls), a reply cap or timeout out of range. The
    /// message names the setting to fix.
    #[error(transparent)]
    Http(#[from] logship_http::HttpError),
    /// A credential contains characters that cannot go into an HTTP header.
    #[error("the {what} contains characters not allowed in an http header")]
    InvalidCredential {
        /// Which credential (never its value).
        what: &'static str,
    },
    /// The core pipeline refused its settings.
    #[error("invalid pipeline settings")]
    Pipeline(#[from] logship_core::ConfigError),
    /// Reading or rewriting a file of the folder being replayed failed.
    #[error("cannot use failure folder file {path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn messages_are_lowercase_and_name_the_fix() {
        let e = EcsError::InvalidName {
            setting: "with_index_prefix",
            value: "Bad".into(),
            reason: "index names must be lowercase",
        };
        assert_eq!(
            e.to_string(),
            "invalid with_index_prefix `Bad`: index names must be lowercase"
        );
        assert!(
            EcsError::NoHosts
                .to_string()
                .starts_with("no elasticsearch host")
        );
    }
}
