//! The one TLS client policy of every logship backend.
//!
//! Fluent's TCP transport, the HTTP transport of the Elasticsearch, Kusto and jKool layers
//! (`logship-http`) and the MQTT client all take a [`TlsOptions`] and build their
//! [`rustls::ClientConfig`] here, so the same words mean the same thing everywhere:
//!
//! | setting | meaning |
//! |---|---|
//! | default | the server's certificate chain must lead to a root of the **OS trust store** (rustls-platform-verifier: `/etc/ssl/certs` and friends on Linux, the system verifier on macOS, Windows and Android). When the OS has no root certificates at all (a minimal container without `ca-certificates`), the **bundled Mozilla roots** (`webpki-roots`) are used instead. |
//! | [`with_ca_pem`](TlsOptions::with_ca_pem) / [`with_ca_file`](TlsOptions::with_ca_file) | **adds** CA certificates to those roots (a corporate or self-signed CA) |
//! | [`with_only_custom_roots`](TlsOptions::with_only_custom_roots) | trusts **only** the added CAs (pinning a private PKI) |
//! | [`with_client_cert_pem`](TlsOptions::with_client_cert_pem) / [`with_client_cert_file`](TlsOptions::with_client_cert_file) | mutual TLS |
//! | [`danger_accept_invalid_certs`](TlsOptions::danger_accept_invalid_certs) | no certificate verification (tests only); building such a configuration emits a `WARN` diagnostic under the `logship` target |
//!
//! Protocol versions are rustls's safe defaults (TLS 1.2 and 1.3) on the *ring* provider.
//!
//! When a connection fails, [`certificate_failure`] tells whether a certificate check was the
//! cause and which one, so a backend can count it apart from outages
//! (`Stats::certificate_failures`) and say in `last_error` what to fix.
//!
//! ```
//! use logship_tls::TlsOptions;
//!
//! // Trust the OS store plus a private CA, and present a client certificate.
//! let ca = "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n";
//! let tls = TlsOptions::new()
//!     .with_ca_pem(ca)
//!     .with_client_cert_file("/etc/app/client.pem", "/etc/app/client.key");
//! // Backends call `client_config` at `build()`, so a bad PEM fails there:
//! assert!(tls.client_config("example").is_err());
//! ```

mod error;
mod failure;
mod options;
mod verify;

pub use error::TlsError;
pub use failure::{CertificateFailure, certificate_failure};
pub use options::TlsOptions;
