//! HTTP only: the reqwest client (rustls on `ring`, HTTP/1.1), TLS verification choices, the
//! telemetry headers every Kusto request carries, and one `execute` that turns a request into
//! status + `Retry-After` + body, or a transport error text.
//!
//! Error texts never contain URLs: SAS query strings are credentials (`reqwest::Error::without_url`).

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::KustoError;

/// `x-ms-version` sent to Kusto (the Python client 6.x sends the same).
pub(crate) const KUSTO_API_VERSION: &str = "2024-12-12";
/// `x-ms-version` sent to Azure Storage.
pub(crate) const STORAGE_API_VERSION: &str = "2024-11-04";

/// How server certificates are checked.
#[derive(Clone, Default)]
pub(crate) enum TlsVerify {
    /// The platform's trust store (default).
    #[default]
    Platform,
    /// Only these roots.
    Roots(Vec<CertificateDer<'static>>),
    /// No verification at all (explicit opt-out).
    Insecure,
}

impl std::fmt::Debug for TlsVerify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Platform => f.write_str("Platform"),
            Self::Roots(r) => write!(f, "Roots({} certificates)", r.len()),
            Self::Insecure => f.write_str("Insecure"),
        }
    }
}

/// Parses PEM certificates.
pub(crate) fn parse_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, KustoError> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<_, _>>()
        .map_err(KustoError::CaCertificate)?;
    if certs.is_empty() {
        return Err(KustoError::CaCertificate(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no CERTIFICATE block found in the PEM data",
        )));
    }
    Ok(certs)
}

/// The rustls configuration for `verify` (built at `build()` so errors surface early).
pub(crate) fn tls_config(verify: &TlsVerify) -> Result<rustls::ClientConfig, KustoError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(KustoError::Tls)?;
    let mut config = match verify {
        TlsVerify::Platform => {
            let v = rustls_platform_verifier::Verifier::new(provider).map_err(KustoError::Tls)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(v))
                .with_no_client_auth()
        }
        TlsVerify::Roots(certs) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs {
                roots.add(c.clone()).map_err(KustoError::Tls)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsVerify::Insecure => {
            logship_core::diag::insecure_tls("kusto");
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
                .with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Builds the HTTP client (on the worker thread).
pub(crate) fn client(
    tls: rustls::ClientConfig,
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        .no_proxy()
        // Never follow a redirect: a 307 from a token endpoint would re-post the client
        // secret, and a 3xx elsewhere would carry a bearer token or data to a host nobody
        // chose. A 3xx is answered to the caller (`Reply::location`).
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", e.without_url()))
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
    pub(crate) fn kusto(
        &self,
        req: reqwest::RequestBuilder,
        activity: &str,
    ) -> reqwest::RequestBuilder {
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

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    /// The `Location` header (3xx answers; redirects are never followed).
    pub(crate) location: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// Sends `req`; a transport failure (connect, timeout, reset) is returned as text, URL-free.
pub(crate) async fn execute(req: reqwest::RequestBuilder) -> Result<Reply, String> {
    let resp = req.send().await.map_err(describe)?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.bytes().await.map_err(describe)?.to_vec();
    Ok(Reply {
        status,
        retry_after,
        location,
        body,
    })
}

fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut msg = format!("{kind}: {e}");
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
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
    fn tls_configs_build() {
        assert!(tls_config(&TlsVerify::Insecure).is_ok());
        assert!(tls_config(&TlsVerify::Roots(Vec::new())).is_ok());
        assert!(parse_pem(b"not pem").is_err());
    }
}
