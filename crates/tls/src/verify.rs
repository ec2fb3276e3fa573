//! The server-certificate verifiers behind [`TlsOptions`](crate::TlsOptions).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::TlsError;

type Verifier = Arc<dyn ServerCertVerifier>;

/// The OS trust store plus `extra`; the bundled Mozilla roots (plus `extra`) when the OS
/// store has no certificate at all.
pub(crate) fn os_store_and(
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
) -> Result<Verifier, TlsError> {
    match rustls_platform_verifier::Verifier::new(provider.clone()) {
        Ok(v) if extra.is_empty() => Ok(Arc::new(v)),
        Ok(_) => rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
            .map(|v| Arc::new(v) as Verifier)
            .map_err(TlsError::Rustls),
        Err(_) => {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            add(&mut roots, extra)?;
            webpki(roots, provider)
        }
    }
}

/// Only `extra` (non-empty).
pub(crate) fn only(
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
) -> Result<Verifier, TlsError> {
    let mut roots = RootCertStore::empty();
    add(&mut roots, extra)?;
    webpki(roots, provider)
}

fn add(roots: &mut RootCertStore, certs: Vec<CertificateDer<'static>>) -> Result<(), TlsError> {
    for c in certs {
        roots.add(c).map_err(TlsError::Rustls)?;
    }
    Ok(())
}

fn webpki(roots: RootCertStore, provider: Arc<CryptoProvider>) -> Result<Verifier, TlsError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map(|v| v as Verifier)
        .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))
}

/// The verifier behind `danger_accept_invalid_certs`: accepts any certificate, but still
/// checks the handshake signatures so the connection itself is sound.
#[derive(Debug)]
pub(crate) struct AcceptAny(Arc<CryptoProvider>);

impl AcceptAny {
    pub(crate) fn new(provider: Arc<CryptoProvider>) -> Self {
        Self(provider)
    }
}

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
