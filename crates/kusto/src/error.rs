//! Error types. Messages are lowercase, describe their own level only (causes are reachable
//! through `source()`), and never contain secrets: application keys and tokens live in
//! [`Secret`], whose `Debug` prints `***` and which has no `Display`.

pub use logship_core::Secret;

/// Why a Kusto connection string was refused by
/// [`KustoBuilder::from_connection_string`](crate::KustoBuilder::from_connection_string).
///
/// Every variant names the keyword at fault as the connection string spelled it; values of
/// secret keywords (`Application Key`, `Application Token`, `Password`) are never repeated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionStringError {
    /// A `keyword=value` pair without `=`.
    #[error("connection string part {index} ({part}) is not `keyword=value`")]
    NotAPair {
        /// 1-based position of the part.
        index: usize,
        /// What the part looks like: never its text, which may be (the end of) a secret such
        /// as an application key containing `;`.
        part: String,
    },
    /// A quoted value whose closing quote is missing.
    #[error("the value of `{keyword}` opens a quote that is never closed")]
    UnclosedQuote {
        /// The keyword.
        keyword: String,
    },
    /// A keyword this crate does not know.
    #[error(
        "unknown keyword `{keyword}`; accepted: {}",
        crate::connection_string::accepted_keywords()
    )]
    UnknownKeyword {
        /// The keyword as written.
        keyword: String,
    },
    /// A keyword that is valid for Kusto but an authentication method this crate does not offer.
    #[error("keyword `{keyword}` is not supported: {hint}")]
    Unsupported {
        /// The keyword as written.
        keyword: String,
        /// What to use instead.
        hint: &'static str,
    },
    /// A keyword whose value is invalid.
    #[error("keyword `{keyword}` has an invalid value `{value}`: {expected}")]
    InvalidValue {
        /// The keyword as written.
        keyword: String,
        /// The value (never for secret keywords).
        value: String,
        /// What is expected.
        expected: &'static str,
    },
    /// A keyword appears twice (possibly through an alias).
    #[error("keyword `{keyword}` is given twice (aliases count as the same keyword)")]
    Duplicate {
        /// The keyword as written the second time.
        keyword: String,
    },
    /// A required keyword is missing.
    #[error("keyword `{keyword}` is missing: {hint}")]
    Missing {
        /// The canonical keyword name.
        keyword: &'static str,
        /// Why it is needed.
        hint: &'static str,
    },
    /// A part after the value of a secret keyword is wrong. Its text is not shown: when the
    /// secret holds an unquoted `;`, that part is the end of the secret.
    #[error(
        "connection string part {index}, after the value of `{secret_keyword}`, {problem} (not \
         shown, in case it is the end of that value: quote a value holding `;`, e.g. \
         {secret_keyword}=\"…\")"
    )]
    AfterSecret {
        /// 1-based position of the part.
        index: usize,
        /// The first secret keyword of the string (`Application Key`, `Application Token`,
        /// `Password`, …) as written.
        secret_keyword: String,
        /// What is wrong with the part.
        problem: &'static str,
    },
}

/// Why [`KustoBuilder::build`](crate::KustoBuilder::build) refused the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KustoError {
    /// The connection string is invalid.
    #[error("invalid connection string")]
    ConnectionString(#[from] ConnectionStringError),
    /// A setting is missing or out of range; the message names the setter and the fix.
    #[error("`{setting}` {problem}")]
    Invalid {
        /// The builder method (or connection-string keyword) at fault.
        setting: &'static str,
        /// What is wrong and what to do.
        problem: String,
    },
    /// An HTTP or TLS setting is unusable ([`with_tls`](crate::KustoBuilder::with_tls),
    /// [`with_max_reply_bytes`](crate::KustoBuilder::with_max_reply_bytes),
    /// [`with_connect_timeout`](crate::KustoBuilder::with_connect_timeout),
    /// [`with_request_timeout`](crate::KustoBuilder::with_request_timeout)); the message names
    /// the setting and the fix (an unreadable CA file, a malformed PEM, a value out of range).
    #[error(transparent)]
    Http(#[from] logship_http::HttpError),
    /// A core pipeline setting is invalid (see [`with_pipeline`](crate::KustoBuilder::with_pipeline)).
    #[error("invalid pipeline setting")]
    Pipeline(#[from] logship_core::ConfigError),
}

impl KustoError {
    pub(crate) fn invalid(setting: &'static str, problem: impl Into<String>) -> Self {
        Self::Invalid {
            setting,
            problem: problem.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn messages_are_lowercase_and_name_the_keyword() {
        let e = ConnectionStringError::UnknownKeyword {
            keyword: "Data Sauce".into(),
        };
        let m = e.to_string();
        assert!(m.starts_with("unknown keyword `Data Sauce`"), "{m}");
        let e = KustoError::invalid("with_table", "is empty; name the target table");
        assert_eq!(
            e.to_string(),
            "`with_table` is empty; name the target table"
        );
    }
}
