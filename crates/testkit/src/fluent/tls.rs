//! TLS for the receiver: a server identity in PEM, and a self-signed one for tests.

use std::io;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

/// A TLS server identity: certificate chain and private key, both PEM.
///
/// [`TlsIdentity::self_signed`] makes one for `localhost` and `127.0.0.1`; a client trusts it by
/// adding [`TlsIdentity::ca_pem`] to its root store.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate chain, PEM (`-----BEGIN CERTIFICATE-----`), leaf first.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl TlsIdentity {
    /// An identity from PEM text.
    pub fn from_pem(cert_pem: impl Into<String>, key_pem: impl Into<String>) -> Self {
        TlsIdentity {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
        }
    }

    /// Generates a fresh self-signed certificate (rcgen, ECDSA P-256) whose subject
    /// alternative names are the DNS name `localhost` and the IP address `127.0.0.1`.
    ///
    /// # Errors
    /// An `io::Error` of kind `Other` wrapping the rcgen error.
    pub fn self_signed() -> io::Result<Self> {
        let ck = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .map_err(io::Error::other)?;
        Ok(TlsIdentity {
            cert_pem: ck.cert.pem(),
            key_pem: ck.signing_key.serialize_pem(),
        })
    }

    /// The PEM a client should trust: for a self-signed identity, the certificate itself.
    pub fn ca_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Builds the acceptor (rustls with the ring provider, TLS 1.2 and 1.3).
    pub(crate) fn acceptor(&self) -> io::Result<TlsAcceptor> {
        let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
        use rustls::pki_types::pem::PemObject as _;
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("tls certificate PEM: {e}")))?;
        if certs.is_empty() {
            return Err(invalid("tls certificate PEM holds no certificate".into()));
        }
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| invalid(format!("tls key PEM: {e}")))?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("tls config: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(format!("tls certificate/key: {e}")))?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}
