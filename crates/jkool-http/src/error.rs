//! Errors of the jKool HTTPS layer, and the access-token newtype that keeps the token out of
//! `Debug` and `Display`.

/// A jKool access token (the core's [`Secret`](logship_core::Secret): `Debug` prints `***`).
pub type AccessToken = logship_core::Secret;

/// Why [`JkoolHttpBuilder::build`](crate::JkoolHttpBuilder::build) failed. Each message names
/// the setting and what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JkoolHttpError {
    /// The access token is empty.
    #[error(
        "the jkool access token is empty; pass the token from your jkool account to `JkoolHttpLayer::builder`"
    )]
    EmptyToken,
    /// The access token cannot go into an HTTP header (control characters, non-ASCII).
    #[error("the jkool access token contains characters that cannot be sent in an http header")]
    TokenNotHeaderSafe,
    /// The base URL does not parse or is not `http`/`https`.
    #[error("`with_base_url` {url:?} is not usable: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A numeric setting is out of range.
    #[error("`{setting}` is {value}; {hint}")]
    OutOfRange {
        /// The builder method.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        hint: &'static str,
    },
    /// The HTTP or TLS settings cannot be used (a reply cap or timeout out of range, an
    /// unreadable or malformed PEM, a TLS server-name override); the message names the
    /// setting.
    #[error(transparent)]
    Http(#[from] logship_http::HttpError),
    /// A core pipeline setting is wrong; the message names it.
    #[error(transparent)]
    Pipeline(#[from] logship_core::ConfigError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_redacted() {
        let t = AccessToken::new("s3cr3t");
        assert_eq!(format!("{t:?}"), "***");
        assert_eq!(t.expose(), "s3cr3t");
        let e = JkoolHttpError::EmptyToken.to_string();
        assert!(e.starts_with("the jkool access token is empty"), "{e}");
    }
}
