//! Errors of the Fluent layer, and the [`Secret`] wrapper that keeps keys out of logs.
//!
//! Messages are lowercase and describe this level only; causes are reachable through
//! `source()`. Shared keys and passwords never appear in `Debug` or `Display` output.

pub use logship_core::Secret;

/// Why [`FluentBuilder::build`](crate::FluentBuilder::build) refused the configuration. Each
/// message names the setting, the bad value and what to do instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FluentError {
    /// A server address does not parse.
    #[error("invalid server address `{address}`: {hint}")]
    Address {
        /// The address as given, with a `user:password@` (or a query) masked as `***`.
        address: String,
        /// What is wrong and what is expected.
        hint: &'static str,
    },
    /// `LOGSHIP_FLUENT*` / `LOGSHIP_PIPELINE_*` variables read by
    /// [`FluentBuilder::from_env`](crate::FluentBuilder::from_env) are malformed, unknown or
    /// missing; the message names each variable (never a secret's value).
    #[error("environment: {0}")]
    Environment(String),
    /// A setting is out of range or inconsistent with another one.
    #[error("`{setting}` is {value}; {hint}")]
    Setting {
        /// The builder method.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        hint: &'static str,
    },
    /// A record-formatter template does not parse.
    #[error("record template for key `{key}` is invalid: {hint}")]
    Template {
        /// The record key the template is for.
        key: String,
        /// What is wrong.
        hint: String,
    },
    /// The TLS settings are unusable (an unreadable or malformed PEM, a key that does not
    /// match its certificate); the message names the file or setting.
    #[error(transparent)]
    Tls(#[from] logship_tls::TlsError),
    /// A core pipeline setting is invalid, or the worker could not start.
    #[error("pipeline configuration")]
    Pipeline(#[from] logship_core::ConfigError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn messages_are_lowercase_and_name_the_setting() {
        let e = FluentError::Setting {
            setting: "with_ack_timeout",
            value: "0 s".into(),
            hint: "use a duration above zero",
        };
        assert_eq!(
            e.to_string(),
            "`with_ack_timeout` is 0 s; use a duration above zero"
        );
        let e = FluentError::Address {
            address: "x:y".into(),
            hint: "the port must be a number",
        };
        assert_eq!(
            e.to_string(),
            "invalid server address `x:y`: the port must be a number"
        );
    }
}
