//! The Kusto side of HTTP: the telemetry headers every Kusto request carries, the API
//! versions, and [`send`], which sends a request with the shared [`HttpClient`] (no
//! redirects, capped reply bodies, no `Accept-Encoding`: see [`logship_http`]) and turns a
//! request without an answer into a [`Verdict`].
//!
//! Error texts never contain URLs: SAS query strings are credentials.

use logship_http::reqwest::{self, RequestBuilder};
use logship_http::{HttpClient, Reply};

use crate::classify::Verdict;

/// `x-ms-version` sent to Kusto (the Python client 6.x sends the same).
pub(crate) const KUSTO_API_VERSION: &str = "2024-12-12";
/// `x-ms-version` sent to Azure Storage.
pub(crate) const STORAGE_API_VERSION: &str = "2024-11-04";

/// Sends `req` (`what` names it in errors).
///
/// # Errors
/// No answer: [`Verdict::Certificate`] when the server's certificate failed a check,
/// [`Verdict::Transient`] otherwise (connection, timeout, reset).
pub(crate) async fn send(
    http: &HttpClient,
    req: RequestBuilder,
    what: &str,
) -> Result<Reply, Verdict> {
    http.send(req)
        .await
        .map_err(|e| Verdict::from_send_error(what, &e))
}

/// Parses a URL the crate built (from settings checked by `build()` or from the service's
/// answers); `what` names it in the error.
///
/// # Errors
/// [`Verdict::Permanent`] (the same URL would fail again), without the URL's text.
pub(crate) fn url(s: &str, what: &str) -> Result<reqwest::Url, Verdict> {
    reqwest::Url::parse(s).map_err(|e| Verdict::Permanent {
        reason: format!("{what}: the URL is invalid ({e})"),
    })
}

/// The telemetry headers (`x-ms-app`, `x-ms-user`, `x-ms-client-version`), ASCII-only.
#[derive(Debug, Clone)]
pub(crate) struct Telemetry {
    pub(crate) app: String,
    pub(crate) user: String,
    pub(crate) client_version: String,
}

impl Telemetry {
    pub(crate) fn new(app: &str, user: &str) -> Self {
        Self {
            app: ascii(app),
            user: ascii(user),
            client_version: format!("Kusto.Logship.Rust:{{{}}}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Adds the Kusto headers to `req`, with `x-ms-client-request-id` = `{activity};{uuid}`.
    pub(crate) fn kusto(&self, req: RequestBuilder, activity: &str) -> RequestBuilder {
        req.header(
            "x-ms-client-request-id",
            format!("{activity};{}", uuid::Uuid::new_v4()),
        )
        .header("x-ms-app", &self.app)
        .header("x-ms-user", &self.user)
        .header("x-ms-client-version", &self.client_version)
        .header("x-ms-version", KUSTO_API_VERSION)
        .header("accept", "application/json")
    }
}

/// Non-ASCII and control characters become `?` (as the official client does for headers).
pub(crate) fn ascii(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if out.trim().is_empty() {
        "[none]".into()
    } else {
        out
    }
}

/// RFC 1123 date for `x-ms-date`.
pub(crate) fn http_date() -> String {
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_ascii() {
        assert_eq!(ascii("café\napp"), "caf??app");
        assert_eq!(ascii(""), "[none]");
    }

    #[test]
    fn bad_urls_are_permanent_and_not_echoed() {
        let v = url("not a url?sig=KEY", "the blob upload");
        assert!(matches!(&v, Err(Verdict::Permanent { reason }) if !reason.contains("KEY")));
    }
}
