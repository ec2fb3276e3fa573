//! [`TlsOptions`]: what a backend's TLS connections trust and present.

use std::path::PathBuf;
use std::sync::Arc;

use logship_core::Secret;
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::TlsError;
use crate::verify;

/// Where PEM text comes from.
#[derive(Clone)]
enum Pem {
    Text { text: Vec<u8>, origin: String },
    File(PathBuf),
}

impl Pem {
    fn load(&self, what: &'static str) -> Result<(Vec<u8>, String), TlsError> {
        match self {
            Pem::Text { text, origin } => Ok((text.clone(), origin.clone())),
            Pem::File(path) => std::fs::read(path)
                .map(|b| (b, format!("`{}`", path.display())))
                .map_err(|source| TlsError::Read {
                    what,
                    path: path.clone(),
                    source,
                }),
        }
    }
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pem::Text { origin, .. } => f.write_str(origin),
            Pem::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A client certificate chain and its private key.
#[derive(Clone)]
enum ClientAuth {
    Pem { chain: Vec<u8>, key: Secret },
    Files { chain: PathBuf, key: PathBuf },
}

/// TLS client options shared by every backend (`with_tls(TlsOptions)` on each builder). The
/// default verifies the server against the OS trust store; see the [crate docs](crate) for
/// the whole policy. Nothing is read or checked until
/// [`client_config`](Self::client_config), which backends call at `build()`.
#[derive(Clone, Default)]
#[must_use]
pub struct TlsOptions {
    cas: Vec<Pem>,
    only_custom_roots: bool,
    client: Option<ClientAuth>,
    accept_invalid_certs: bool,
    server_name: Option<String>,
    alpn: Vec<Vec<u8>>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("cas", &self.cas)
            .field("only_custom_roots", &self.only_custom_roots)
            .field(
                "client_cert",
                &match &self.client {
                    None => "none".to_string(),
                    Some(ClientAuth::Pem { .. }) => "in memory (key ***)".to_string(),
                    Some(ClientAuth::Files { chain, .. }) => {
                        format!("{} (key ***)", chain.display())
                    }
                },
            )
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TlsOptions {
    /// Verification against the OS trust store (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// **Adds** the CA certificate(s) in `pem` (PEM text, one or more `CERTIFICATE` blocks) to
    /// the trusted roots; may be called several times. Checked at `build()`.
    pub fn with_ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        let origin = format!("with_ca_pem #{}", self.cas.len() + 1);
        self.cas.push(Pem::Text {
            text: pem.as_ref().to_vec(),
            origin,
        });
        self
    }

    /// As [`with_ca_pem`](Self::with_ca_pem), reading the PEM file at `build()`.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cas.push(Pem::File(path.into()));
        self
    }

    /// With `true`, trusts **only** the CAs given with [`with_ca_pem`](Self::with_ca_pem) /
    /// [`with_ca_file`](Self::with_ca_file), not the OS store (at least one is then required).
    pub fn with_only_custom_roots(mut self, only: bool) -> Self {
        self.only_custom_roots = only;
        self
    }

    /// Presents a client certificate for mutual TLS: `chain_pem` holds the certificate chain
    /// (leaf first), `key_pem` its private key (PKCS#8, PKCS#1 or SEC1 PEM; kept as a
    /// [`Secret`]).
    pub fn with_client_cert_pem(
        mut self,
        chain_pem: impl AsRef<[u8]>,
        key_pem: impl Into<Secret>,
    ) -> Self {
        self.client = Some(ClientAuth::Pem {
            chain: chain_pem.as_ref().to_vec(),
            key: key_pem.into(),
        });
        self
    }

    /// As [`with_client_cert_pem`](Self::with_client_cert_pem), reading both PEM files at
    /// `build()`.
    pub fn with_client_cert_file(
        mut self,
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.client = Some(ClientAuth::Files {
            chain: chain.into(),
            key: key.into(),
        });
        self
    }

    /// The name checked against the server's certificate and sent as SNI, when it differs
    /// from the host the backend connects to. Honoured by the Fluent transport; the HTTP
    /// backends and MQTT refuse it at `build()` (they verify the host they connect to).
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// **Turns certificate verification off** with `true`: any certificate is accepted, so the
    /// connection is encrypted but anyone in the middle can read and change it. For tests
    /// against self-signed endpoints only; building such a configuration emits a `WARN`
    /// diagnostic (target `logship`) naming the backend.
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// ALPN protocols to offer, most preferred first (e.g. `b"http/1.1"`). Backends set this.
    pub fn with_alpn(mut self, protocols: &[&[u8]]) -> Self {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// Whether certificate verification is off.
    pub fn accepts_invalid_certs(&self) -> bool {
        self.accept_invalid_certs
    }

    /// The server-name override, if any.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// Builds the rustls configuration: reads and parses every PEM, loads the OS roots. Call it
    /// at `build()`, never on an application thread per event. `backend` names the backend in
    /// the insecure-mode diagnostic.
    ///
    /// # Errors
    /// [`TlsError::Read`] for an unreadable file, [`TlsError::Pem`] for PEM without the
    /// expected block, [`TlsError::NoCustomRoots`], or [`TlsError::Rustls`] when rustls refuses
    /// a certificate or a key that does not match its certificate.
    pub fn client_config(&self, backend: &'static str) -> Result<ClientConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?;
        // Parse the CAs even in insecure mode: a bad PEM is a configuration error either way.
        let mut extra = Vec::new();
        for ca in &self.cas {
            extra.extend(certificates(ca, "CA certificate")?);
        }
        let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> =
            if self.accept_invalid_certs {
                logship_core::diag::insecure_tls(backend);
                Arc::new(verify::AcceptAny::new(provider.clone()))
            } else if self.only_custom_roots {
                if extra.is_empty() {
                    return Err(TlsError::NoCustomRoots);
                }
                verify::only(extra, provider.clone())?
            } else {
                verify::os_store_and(extra, provider.clone())?
            };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &self.client {
            None => builder.with_no_client_auth(),
            Some(auth) => {
                let (chain, key) = client_identity(auth)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(TlsError::Rustls)?
            }
        };
        config.alpn_protocols.clone_from(&self.alpn);
        Ok(config)
    }
}

fn certificates(pem: &Pem, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let (text, origin) = pem.load(what)?;
    let bad = |reason: String| TlsError::Pem {
        what,
        origin: origin.clone(),
        reason,
        label: "CERTIFICATE",
    };
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate found".into()));
    }
    Ok(certs)
}

fn client_identity(
    auth: &ClientAuth,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let (chain, key_text, key_origin) = match auth {
        ClientAuth::Pem { chain, key } => (
            certificates(
                &Pem::Text {
                    text: chain.clone(),
                    origin: "with_client_cert_pem".into(),
                },
                "client certificate",
            )?,
            key.expose().as_bytes().to_vec(),
            "with_client_cert_pem".to_string(),
        ),
        ClientAuth::Files { chain, key } => {
            let certs = certificates(&Pem::File(chain.clone()), "client certificate")?;
            let (text, origin) = Pem::File(key.clone()).load("client key")?;
            (certs, text, origin)
        }
    };
    // The error of a key parse may quote the input: keep only its kind.
    let key = PrivateKeyDer::from_pem_slice(&key_text).map_err(|e| TlsError::Pem {
        what: "client key",
        origin: key_origin,
        reason: match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no private key found".into(),
            _ => "the PEM is malformed".into(),
        },
        label: "PRIVATE KEY",
    })?;
    Ok((chain, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> String {
        rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .map(|c| c.cert.pem())
            .unwrap_or_default()
    }

    #[test]
    fn defaults_verify_and_custom_cas_load() {
        assert!(TlsOptions::new().client_config("test").is_ok());
        assert!(
            TlsOptions::new()
                .with_ca_pem(ca())
                .client_config("test")
                .is_ok()
        );
        assert!(
            TlsOptions::new()
                .with_ca_pem(ca())
                .with_only_custom_roots(true)
                .client_config("test")
                .is_ok()
        );
    }

    #[test]
    fn errors_name_what_to_fix() {
        let err = |o: TlsOptions| {
            o.client_config("test")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let missing = dir.path().join("nope.pem");
        let e = err(TlsOptions::new().with_ca_file(&missing));
        assert!(
            e.contains("cannot read the CA certificate file") && e.contains("nope.pem"),
            "{e}"
        );
        let e = err(TlsOptions::new().with_ca_pem("junk"));
        assert!(
            e.contains("with_ca_pem #1") && e.contains("BEGIN CERTIFICATE"),
            "{e}"
        );
        let e = err(TlsOptions::new().with_only_custom_roots(true));
        assert!(e.contains("with_ca_pem or with_ca_file"), "{e}");
        let e = err(TlsOptions::new().with_client_cert_pem(ca(), "-----BEGIN SECRET-KEY-----"));
        assert!(e.contains("client key") && e.contains("PRIVATE KEY"), "{e}");
        assert!(!e.contains("SECRET-KEY"), "{e}");
        let e = err(TlsOptions::new().with_client_cert_file(dir.path().join("c.pem"), &missing));
        assert!(e.contains("client certificate file"), "{e}");
    }

    #[test]
    fn debug_shows_no_key() {
        let o = TlsOptions::new().with_client_cert_pem("chain", "THE-KEY");
        let d = format!("{o:?}");
        assert!(!d.contains("THE-KEY") && d.contains("***"), "{d}");
    }
}
