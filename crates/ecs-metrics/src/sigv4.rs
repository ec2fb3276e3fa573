//! AWS Signature Version 4 request signing for Amazon OpenSearch Service (cargo feature
//! `aws-sigv4`), with the `aws-sigv4` crate of the AWS SDK for Rust.
//!
//! Every request (each host attempt) is signed with the current time; the payload hash is
//! sent as `x-amz-content-sha256` (required by OpenSearch Serverless, accepted by the managed
//! service) and covers the body as sent, after gzip.

use std::time::SystemTime;

use logship_http::reqwest;
use logship_http::reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::error::Secret;

/// Credentials and scope for SigV4 signing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AwsSigV4 {
    /// The region, e.g. `eu-west-1`.
    pub region: String,
    /// The signing name: `es` for Amazon OpenSearch Service domains (default), `aoss` for
    /// OpenSearch Serverless.
    pub service: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// A session token, for temporary credentials.
    pub session_token: Option<Secret>,
}

impl AwsSigV4 {
    /// Signing for an Amazon OpenSearch Service domain (`es`) in `region`.
    pub fn new(
        region: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<Secret>,
    ) -> Self {
        Self {
            region: region.into(),
            service: "es".into(),
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// Sets the signing name (`aoss` for OpenSearch Serverless).
    pub fn with_service(self, service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            ..self
        }
    }

    /// Adds a session token (temporary credentials).
    pub fn with_session_token(self, token: impl Into<Secret>) -> Self {
        Self {
            session_token: Some(token.into()),
            ..self
        }
    }

    /// Adds `authorization`, `x-amz-date`, `x-amz-content-sha256` (and
    /// `x-amz-security-token`) to `headers` for this request.
    pub(crate) fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &mut HeaderMap,
        body: &[u8],
        time: SystemTime,
    ) -> Result<(), String> {
        use aws_sigv4::http_request::{
            PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
        };
        let creds = aws_credential_types::Credentials::new(
            &self.access_key_id,
            self.secret_access_key.expose(),
            self.session_token.as_ref().map(|t| t.expose().to_string()),
            None,
            "logship-ecs-metrics",
        );
        let identity = creds.into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| format!("sigv4 parameters: {e}"))?
            .into();
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
            .collect();
        let request =
            SignableRequest::new(method, url, pairs.into_iter(), SignableBody::Bytes(body))
                .map_err(|e| format!("sigv4 request: {e}"))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|e| format!("sigv4 signing failed: {e}"))?
            .into_parts();
        let mut add = Vec::new();
        for (name, value) in instructions.headers() {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| format!("sigv4 header: {e}"))?;
            let mut v = HeaderValue::from_str(value).map_err(|e| format!("sigv4 header: {e}"))?;
            if n == reqwest::header::AUTHORIZATION || n.as_str() == "x-amz-security-token" {
                v.set_sensitive(true);
            }
            add.push((n, v));
        }
        for (n, v) in add {
            headers.insert(n, v);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn signs_with_scope_and_payload_hash() {
        let s = AwsSigV4::new(
            "eu-west-1",
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
        .with_session_token("tok");
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            HeaderValue::from_static("application/x-ndjson"),
        );
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160); // 2015-08-30T12:36:00Z
        let r = s.sign(
            "POST",
            "https://search-d.eu-west-1.es.amazonaws.com/_bulk",
            &mut h,
            b"{}\n",
            t,
        );
        assert!(r.is_ok(), "{r:?}");
        let get = |n: &str| {
            h.get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(get("x-amz-date"), "20150830T123600Z");
        assert_eq!(get("x-amz-security-token"), "tok");
        let digest = <sha2::Sha256 as sha2::Digest>::digest(b"{}\n");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(get("x-amz-content-sha256"), hex);
        let auth = get("authorization");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/es/aws4_request, SignedHeaders="),
            "{auth}"
        );
        assert!(
            auth.contains("x-amz-content-sha256") && auth.contains("host"),
            "{auth}"
        );
        assert!(format!("{s:?}").contains("***") && !format!("{s:?}").contains("wJalr"));
    }
}
