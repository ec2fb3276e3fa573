//! [`certificate_failure`]: was a connection refused because a certificate check failed?

use std::error::Error;
use std::fmt;

use rustls::{AlertDescription, CertificateError};

/// A connection failure caused by a certificate check: which check, and what to fix.
/// `Display` gives one line for `Stats::last_error`, e.g. `TLS certificate check failed: the
/// server's certificate is signed by an unknown issuer (add its CA with TlsOptions::with_ca_pem
/// or with_ca_file)`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateFailure {
    /// Which check failed, e.g. `the server's certificate has expired`.
    pub check: String,
    /// What usually fixes it.
    pub hint: &'static str,
}

impl fmt::Display for CertificateFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS certificate check failed: {}", self.check)?;
        if !self.hint.is_empty() {
            write!(f, " ({})", self.hint)?;
        }
        Ok(())
    }
}

const ADD_CA: &str = "add its CA with TlsOptions::with_ca_pem or with_ca_file";

/// Looks through `err` and its `source()` chain (including the error inside an
/// [`std::io::Error`], where tokio-rustls, hyper and reqwest put it) for a rustls certificate
/// error, or a TLS alert by which the server refused *our* certificate. `None` for any other
/// failure (refused connection, timeout, protocol error).
pub fn certificate_failure(err: &(dyn Error + 'static)) -> Option<CertificateFailure> {
    let mut cur: Option<&(dyn Error + 'static)> = Some(err);
    let mut depth = 0;
    while let Some(e) = cur {
        if let Some(f) = from_rustls(e) {
            return Some(f);
        }
        depth += 1;
        if depth > 32 {
            break;
        }
        // An io::Error's `source()` skips the error it wraps (it returns that error's source),
        // and TLS stacks nest io::Errors: descend into the wrapped error itself.
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn Error + 'static)),
            None => e.source(),
        };
    }
    None
}

fn from_rustls(e: &(dyn Error + 'static)) -> Option<CertificateFailure> {
    let e = e.downcast_ref::<rustls::Error>()?;
    let (check, hint): (String, &'static str) = match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => (
                "the server's certificate is signed by an unknown issuer".into(),
                ADD_CA,
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => (
                "the server's certificate has expired".into(),
                "renew the server's certificate",
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
                "the server's certificate is not valid yet".into(),
                "check the clocks of both machines",
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                (
                    "the server's certificate is not valid for the host name connected to".into(),
                    "connect by a name the certificate lists, or set TlsOptions::with_server_name",
                )
            }
            CertificateError::Revoked => ("the server's certificate is revoked".into(), ""),
            CertificateError::BadSignature => {
                ("the server's certificate has a bad signature".into(), "")
            }
            other => (
                format!("the server's certificate is invalid: {other:?}"),
                "",
            ),
        },
        rustls::Error::AlertReceived(a) => match a {
            AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateRequired => (
                format!("the server refused our client certificate (alert {a:?})"),
                "check TlsOptions::with_client_cert_pem / with_client_cert_file",
            ),
            _ => return None,
        },
        _ => return None,
    };
    Some(CertificateFailure { check, hint })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_certificate_errors_inside_io_errors_and_chains() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("request failed")
            }
        }
        impl Error for Outer {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let io = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        ));
        let f = certificate_failure(&Outer(io));
        assert!(
            f.as_ref()
                .is_some_and(|f| f.to_string().contains("unknown issuer")
                    && f.to_string().contains("with_ca_pem")),
            "{f:?}"
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(certificate_failure(&Outer(refused)), None);
        let alert = rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        assert!(
            certificate_failure(&alert).is_some_and(|f| f.check.contains("client certificate"))
        );
        let other = rustls::Error::AlertReceived(AlertDescription::HandshakeFailure);
        assert_eq!(certificate_failure(&other), None);
    }
}
