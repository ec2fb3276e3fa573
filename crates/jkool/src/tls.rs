//! rustls client settings shared by `logship-jkool-http` and `logship-jkool-mqtt` (feature
//! `tls`): one place that builds a [`rustls::ClientConfig`] with the *ring* provider.
//!
//! Verification is on by default against the Mozilla roots (`webpki-roots`); a custom CA adds
//! to them (or, with [`TlsOptions::with_only_custom_roots`], replaces them); a client
//! certificate and key enable mutual TLS; [`TlsOptions::danger_accept_invalid_certs`] turns
//! verification off and says so in its name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Why the TLS settings cannot be used. The message names the file and what is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read {what} file `{path}`")]
    Read {
        /// What the file should hold (CA certificate, client certificate, client key).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{what} file `{path}` holds no PEM {what}")]
    Empty {
        /// What was expected.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the configuration (a bad CA certificate, a key that does not match).
    #[error("invalid tls configuration")]
    Rustls(#[source] rustls::Error),
}

/// TLS client options; the defaults verify the server against the Mozilla roots.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct TlsOptions {
    ca_files: Vec<PathBuf>,
    ca_pem: Vec<Vec<u8>>,
    only_custom_roots: bool,
    client_auth: Option<(PathBuf, PathBuf)>,
    accept_invalid_certs: bool,
    alpn: Vec<Vec<u8>>,
}

impl TlsOptions {
    /// Trusts the CA certificates in this PEM file as well.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// Trusts these PEM-encoded CA certificates as well.
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem.push(pem.into());
        self
    }

    /// Trusts only the custom CAs, not the Mozilla roots.
    pub fn with_only_custom_roots(self, only: bool) -> Self {
        Self {
            only_custom_roots: only,
            ..self
        }
    }

    /// Presents this client certificate chain and private key (PEM files) for mutual TLS.
    pub fn with_client_cert(self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            client_auth: Some((cert.into(), key.into())),
            ..self
        }
    }

    /// Turns certificate verification OFF: any server certificate is accepted. Only for tests
    /// against self-signed endpoints; anyone on the path can then read and change the traffic.
    pub fn danger_accept_invalid_certs(self, accept: bool) -> Self {
        Self {
            accept_invalid_certs: accept,
            ..self
        }
    }

    /// ALPN protocols to offer (e.g. `http/1.1`).
    pub fn with_alpn(self, protocols: &[&[u8]]) -> Self {
        Self {
            alpn: protocols.iter().map(|p| p.to_vec()).collect(),
            ..self
        }
    }

    /// Whether verification is off.
    pub fn accepts_invalid_certs(&self) -> bool {
        self.accept_invalid_certs
    }

    /// Builds the rustls configuration (reads the PEM files).
    ///
    /// # Errors
    /// [`TlsError`] naming the unreadable or empty file, or rustls's complaint.
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?;
        let builder = if self.accept_invalid_certs {
            logship_core::diag::insecure_tls("jkool");
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        } else {
            let mut roots = RootCertStore::empty();
            if !self.only_custom_roots {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            for path in &self.ca_files {
                let pem = read(path, "CA certificate")?;
                add_certs(&mut roots, &pem, path)?;
            }
            for pem in &self.ca_pem {
                add_certs(&mut roots, pem, Path::new("<in memory>"))?;
            }
            builder.with_root_certificates(roots)
        };
        let mut config = match &self.client_auth {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certs(
                    &read(cert, "client certificate")?,
                    cert,
                    "client certificate",
                )?;
                let key_pem = read(key, "client key")?;
                let key_der = rustls_pemfile::private_key(&mut &key_pem[..])
                    .ok()
                    .flatten()
                    .ok_or_else(|| TlsError::Empty {
                        what: "client key",
                        path: key.clone(),
                    })?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(TlsError::Rustls)?
            }
        };
        config.alpn_protocols.clone_from(&self.alpn);
        Ok(config)
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn certs(
    pem: &[u8],
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &pem[..])
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn add_certs(roots: &mut RootCertStore, pem: &[u8], path: &Path) -> Result<(), TlsError> {
    for c in certs(pem, path, "CA certificate")? {
        roots.add(c).map_err(TlsError::Rustls)?;
    }
    Ok(())
}

/// The verifier behind [`TlsOptions::danger_accept_invalid_certs`]: accepts any certificate,
/// but still checks handshake signatures so the connection itself is sound.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_verify_and_custom_ca_loads() {
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        let dir = std::env::temp_dir().join(format!("logship-jkool-tls-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let ca_path = dir.join("ca.pem");
        std::fs::write(&ca_path, ca.cert.pem()).unwrap_or_else(|e| panic!("{e}"));
        assert!(TlsOptions::default().client_config().is_ok());
        assert!(
            TlsOptions::default()
                .with_ca_file(&ca_path)
                .with_only_custom_roots(true)
                .client_config()
                .is_ok()
        );
        let missing = TlsOptions::default()
            .with_ca_file(dir.join("nope.pem"))
            .client_config();
        assert!(matches!(missing, Err(TlsError::Read { .. })), "{missing:?}");
        let empty_path = dir.join("empty.pem");
        std::fs::write(&empty_path, "not pem").unwrap_or_else(|e| panic!("{e}"));
        let empty = TlsOptions::default()
            .with_ca_file(&empty_path)
            .client_config();
        assert!(
            empty
                .as_ref()
                .is_err_and(|e| e.to_string().contains("holds no PEM CA certificate")),
            "{empty:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
