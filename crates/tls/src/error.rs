//! [`TlsError`]: why a [`TlsOptions`](crate::TlsOptions) cannot become a client configuration.

use std::path::PathBuf;

/// Why the TLS settings cannot be used; returned by
/// [`TlsOptions::client_config`](crate::TlsOptions::client_config), which backends call at
/// `build()`. Each message names the file or setting and what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read the {what} file `{path}`")]
    Read {
        /// What the file should hold (`CA certificate`, `client certificate`, `client key`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// PEM text holds no usable block of the expected kind, or a block is malformed.
    #[error(
        "the {what} in {origin} is not usable: {reason} (expected PEM text with a `-----BEGIN {label}-----` block)"
    )]
    Pem {
        /// What was expected (`CA certificate`, `client certificate`, `client key`).
        what: &'static str,
        /// Where it came from: a file path, or `with_ca_pem #N` for in-memory PEM.
        origin: String,
        /// What is wrong.
        reason: String,
        /// The PEM label expected (`CERTIFICATE`, `PRIVATE KEY`).
        label: &'static str,
    },
    /// [`with_only_custom_roots`](crate::TlsOptions::with_only_custom_roots) without any CA.
    #[error(
        "with_only_custom_roots(true) needs at least one CA: add it with with_ca_pem or with_ca_file"
    )]
    NoCustomRoots,
    /// rustls refused the configuration (an unusable CA certificate, a private key that does
    /// not match the client certificate).
    #[error("rustls refused the TLS configuration: {0}")]
    Rustls(#[source] rustls::Error),
}
