//! AAD tokens: client credentials (one form POST, hand-written), managed identity (the Azure
//! instance metadata service, or App Service's `IDENTITY_ENDPOINT`), a fixed token, or a
//! user-supplied [`TokenProvider`]. Tokens are cached and refreshed before they expire
//! (5 minutes before, or half-way through lifetimes under 10 minutes), and after a 401/403.
//!
//! **Where the token comes from** (the Azure Data Explorer REST API documentation, <https://learn.microsoft.com/azure/data-explorer/kusto/api/rest/> "AAD token"): the sink first reads
//! `GET {cluster}/v1/rest/auth/metadata` (no auth). Its `AzureAD.KustoServiceResourceId` gives
//! the scope `{resource}/.default` (`.kusto.` becomes `.kustomfa.` when `LoginMfaRequired`);
//! a 404 means public-cloud defaults (`https://kusto.kusto.windows.net`). The login endpoint is,
//! first match wins: [`with_login_endpoint`](crate::KustoBuilder::with_login_endpoint),
//! the metadata's `AzureAD.LoginEndpoint`, the environment variable [`AAD_AUTHORITY_ENV`]
//! (`AadAuthorityUri`, as the official clients), `https://login.microsoftonline.com`.
//! The token request is `POST {login}/{tenant}/oauth2/v2.0/token` with
//! `grant_type=client_credentials`, `client_id`, `client_secret`, `scope`.
//!
//! Hand-written rather than `azure_identity`: one form POST and a JSON answer do not justify
//! the Azure SDK core's dependency tree on a 2-core build, and it lets tests point the login
//! endpoint at a local receiver over plain HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::classify::{self, Verdict};
use crate::error::Secret;
use crate::transport::{self, Telemetry};

/// The environment variable naming the AAD login endpoint when the cluster's metadata does
/// not (the official clients read the same one).
pub const AAD_AUTHORITY_ENV: &str = "AadAuthorityUri";
/// The public-cloud AAD login endpoint.
pub const DEFAULT_LOGIN_ENDPOINT: &str = "https://login.microsoftonline.com";
/// The public-cloud Kusto resource id (scope `{id}/.default`).
pub const DEFAULT_RESOURCE_ID: &str = "https://kusto.kusto.windows.net";
const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// An access token and when it expires.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The bearer token.
    pub token: Secret,
    /// When it expires (UTC); `None` = unknown, used until the service refuses it.
    pub expires_at: Option<SystemTime>,
}

impl AccessToken {
    /// A token with a known expiry.
    pub fn new(token: impl Into<Secret>, expires_at: Option<SystemTime>) -> Self {
        Self {
            token: token.into(),
            expires_at,
        }
    }
}

/// Supplies tokens, for authentication this crate does not implement (a certificate, a
/// workload identity federation, a token broker…).
///
/// `token` is called on the layer's worker thread when no valid token is cached and after
/// the service refused one, with the scope to ask for (e.g.
/// `https://kusto.kusto.windows.net/.default`). It may block briefly (it delays sending, not
/// the application). Closures `Fn(&str) -> Result<AccessToken, String>` implement it.
pub trait TokenProvider: Send + Sync + 'static {
    /// A token for `scope`.
    ///
    /// # Errors
    /// A description of the failure (kept in `Stats::last_error`; the batch is retried).
    fn token(&self, scope: &str) -> Result<AccessToken, String>;
}

impl<F> TokenProvider for F
where
    F: Fn(&str) -> Result<AccessToken, String> + Send + Sync + 'static,
{
    fn token(&self, scope: &str) -> Result<AccessToken, String> {
        self(scope)
    }
}

/// How the layer authenticates.
#[derive(Clone, Default)]
pub(crate) enum Credentials {
    /// Not chosen yet (an error at `build()`).
    #[default]
    Unset,
    /// No `Authorization` header (local emulators).
    None,
    /// Client credentials.
    ApplicationKey {
        client_id: String,
        key: Secret,
        tenant: String,
    },
    /// Managed identity (system-assigned, or user-assigned by client id).
    ManagedIdentity {
        client_id: Option<String>,
        endpoint: Option<String>,
    },
    /// A fixed token.
    Static(Secret),
    /// The user's provider.
    Provider(Arc<dyn TokenProvider>),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unset => f.write_str("Unset"),
            Self::None => f.write_str("None"),
            Self::ApplicationKey {
                client_id, tenant, ..
            } => f
                .debug_struct("ApplicationKey")
                .field("client_id", client_id)
                .field("key", &"***")
                .field("tenant", tenant)
                .finish(),
            Self::ManagedIdentity {
                client_id,
                endpoint,
            } => f
                .debug_struct("ManagedIdentity")
                .field("client_id", client_id)
                .field("endpoint", endpoint)
                .finish(),
            Self::Static(_) => f.write_str("Static(***)"),
            Self::Provider(_) => f.write_str("Provider(..)"),
        }
    }
}

/// Cloud settings read from `/v1/rest/auth/metadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloudInfo {
    pub(crate) login_endpoint: String,
    pub(crate) resource: String,
}

/// Parses the metadata document (`None` body = 404: defaults).
pub(crate) fn cloud_info(body: Option<&[u8]>, env_login: Option<&str>) -> CloudInfo {
    let fallback_login = env_login
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(DEFAULT_LOGIN_ENDPOINT)
        .trim_end_matches('/')
        .to_string();
    let v: Option<serde_json::Value> = body.and_then(|b| serde_json::from_slice(b).ok());
    let aad = v.as_ref().and_then(|v| v.get("AzureAD"));
    let s = |k: &str| {
        aad.and_then(|a| a.get(k))
            .and_then(|x| x.as_str())
            .filter(|s| !s.is_empty())
    };
    let mut resource = s("KustoServiceResourceId")
        .unwrap_or(DEFAULT_RESOURCE_ID)
        .trim_end_matches('/')
        .to_string();
    if aad
        .and_then(|a| a.get("LoginMfaRequired"))
        .and_then(serde_json::Value::as_bool)
        == Some(true)
    {
        resource = resource.replace(".kusto.", ".kustomfa.");
    }
    CloudInfo {
        login_endpoint: s("LoginEndpoint")
            .map_or(fallback_login, |l| l.trim_end_matches('/').to_string()),
        resource,
    }
}

/// Parses a token endpoint answer (AAD `expires_in` seconds as a number or text; managed
/// identity `expires_on` epoch seconds as text).
pub(crate) fn parse_token(body: &[u8], now: SystemTime) -> Result<AccessToken, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the token answer is not JSON: {e}"))?;
    let token = v
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or("the token answer has no access_token")?;
    let num = |k: &str| {
        v.get(k).and_then(|x| {
            x.as_u64()
                .or_else(|| x.as_str().and_then(|s| s.trim().parse().ok()))
        })
    };
    // An expiry past what `SystemTime` can hold is no expiry (used until refused).
    let expires_at = match (num("expires_in"), num("expires_on")) {
        (Some(secs), _) => now.checked_add(Duration::from_secs(secs)),
        (None, Some(epoch)) => SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(epoch)),
        (None, None) => None,
    };
    Ok(AccessToken::new(token, expires_at))
}

/// When to refresh a token that is valid for `lifetime`: 5 min before expiry, or half-way for
/// lifetimes under 10 min.
pub(crate) fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 2).min(Duration::from_secs(300))
}

#[derive(Debug)]
struct Cached {
    token: Secret,
    refresh_at: Option<Instant>,
}

/// The token cache and its sources (owned by the sink, used on the worker thread).
#[derive(Debug)]
pub(crate) struct Auth {
    creds: Credentials,
    cluster: String,
    login_override: Option<String>,
    cloud: Option<CloudInfo>,
    cached: Option<Cached>,
}

impl Auth {
    pub(crate) fn new(creds: Credentials, cluster: String, login_override: Option<String>) -> Self {
        Self {
            creds,
            cluster,
            login_override,
            cloud: None,
            cached: None,
        }
    }

    /// Forgets the cached token (after a 401/403).
    pub(crate) fn invalidate(&mut self) {
        self.cached = None;
    }

    /// The scope asked for (after the metadata was read).
    pub(crate) fn scope(&self) -> Option<String> {
        self.cloud
            .as_ref()
            .map(|c| format!("{}/.default", c.resource))
    }

    async fn cloud(
        &mut self,
        http: &reqwest::Client,
        tele: &Telemetry,
    ) -> Result<CloudInfo, Verdict> {
        if let Some(c) = &self.cloud {
            return Ok(c.clone());
        }
        let url = format!("{}/v1/rest/auth/metadata", self.cluster);
        let reply = transport::execute(tele.kusto(http.get(url), "logship.kusto.authMetadata"))
            .await
            .map_err(|reason| Verdict::Transient {
                reason: format!("cannot read the cluster's auth metadata: {reason}"),
            })?;
        let env = std::env::var(AAD_AUTHORITY_ENV).ok();
        let mut info = match reply.status {
            200..=299 => cloud_info(Some(&reply.body), env.as_deref()),
            404 => cloud_info(None, env.as_deref()),
            s => {
                return Err(classify::other(
                    "the auth metadata endpoint",
                    s,
                    reply.retry_after.as_deref(),
                    &reply.body,
                ));
            }
        };
        if let Some(l) = &self.login_override {
            info.login_endpoint = l.trim_end_matches('/').to_string();
        }
        self.cloud = Some(info.clone());
        Ok(info)
    }

    /// A valid token (`None` when the layer sends no `Authorization`).
    ///
    /// # Errors
    /// The verdict of the failed token request: transient (retried) or permanent (bad
    /// credentials, reported with the identity provider's message).
    pub(crate) async fn token(
        &mut self,
        http: &reqwest::Client,
        tele: &Telemetry,
    ) -> Result<Option<Secret>, Verdict> {
        match &self.creds {
            Credentials::None | Credentials::Unset => return Ok(None),
            Credentials::Static(t) => return Ok(Some(t.clone())),
            _ => {}
        }
        if let Some(c) = &self.cached
            && c.refresh_at.is_none_or(|r| Instant::now() < r)
        {
            return Ok(Some(c.token.clone()));
        }
        let cloud = self.cloud(http, tele).await?;
        let scope = format!("{}/.default", cloud.resource);
        let now = SystemTime::now();
        let token = match &self.creds {
            Credentials::ApplicationKey {
                client_id,
                key,
                tenant,
            } => {
                let url = format!("{}/{}/oauth2/v2.0/token", cloud.login_endpoint, tenant);
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", key.expose()),
                    ("scope", scope.as_str()),
                ];
                let body = form_encode(&form);
                let req = http
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("accept", "application/json")
                    .body(body);
                fetch(req, "the AAD token endpoint", now).await?
            }
            Credentials::ManagedIdentity {
                client_id,
                endpoint,
            } => {
                let (url, req) = match (
                    std::env::var("IDENTITY_ENDPOINT"),
                    std::env::var("IDENTITY_HEADER"),
                    endpoint,
                ) {
                    (_, _, Some(ep)) => (ep.clone(), None),
                    (Ok(ep), Ok(h), None) => (ep, Some(h)),
                    _ => (IMDS_ENDPOINT.to_string(), None),
                };
                let api = if req.is_some() {
                    "2019-08-01"
                } else {
                    "2018-02-01"
                };
                let mut q: Vec<(&str, &str)> =
                    vec![("api-version", api), ("resource", cloud.resource.as_str())];
                if let Some(id) = client_id {
                    q.push(("client_id", id.as_str()));
                }
                let mut rb = http.get(format!("{url}?{}", form_encode(&q)));
                rb = match &req {
                    Some(h) => rb.header("x-identity-header", h),
                    None => rb.header("metadata", "true"),
                };
                fetch(rb, "the managed identity endpoint", now).await?
            }
            Credentials::Provider(p) => p.token(&scope).map_err(|e| Verdict::Transient {
                reason: format!("the token provider failed: {e}"),
            })?,
            Credentials::None | Credentials::Unset | Credentials::Static(_) => return Ok(None),
        };
        let refresh_at = token.expires_at.map(|exp| {
            let lifetime = exp.duration_since(now).unwrap_or_default();
            Instant::now() + lifetime.saturating_sub(refresh_margin(lifetime))
        });
        let secret = token.token.clone();
        self.cached = Some(Cached {
            token: token.token,
            refresh_at,
        });
        Ok(Some(secret))
    }
}

async fn fetch(
    req: reqwest::RequestBuilder,
    what: &str,
    now: SystemTime,
) -> Result<AccessToken, Verdict> {
    let reply = transport::execute(req)
        .await
        .map_err(|reason| Verdict::Transient {
            reason: format!("{what}: {reason}"),
        })?;
    if !(200..300).contains(&reply.status) {
        return Err(token_error(
            what,
            reply.status,
            reply.retry_after.as_deref(),
            &reply.body,
        ));
    }
    parse_token(&reply.body, now).map_err(|reason| Verdict::Transient {
        reason: format!("{what}: {reason}"),
    })
}

/// A refused token request: AAD's `error` and `error_description`; bad credentials are
/// `Unauthorized` (final: no request can succeed without a token), throttling and 5xx
/// transient.
pub(crate) fn token_error(
    what: &str,
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
) -> Verdict {
    let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let s = |k: &str| {
        v.as_ref()
            .and_then(|v| v.get(k))
            .and_then(|x| x.as_str())
            .map(str::to_string)
    };
    let reason = match (s("error"), s("error_description")) {
        (Some(e), Some(d)) => format!("{what} refused the credentials ({status} {e}): {d}"),
        (Some(e), None) => format!("{what} refused the credentials ({status} {e})"),
        _ => return classify::other(what, status, retry_after, body),
    };
    match status {
        429 => Verdict::Throttled {
            after: classify::retry_after(retry_after),
            reason,
        },
        s if s >= 500 => Verdict::Transient { reason },
        _ => Verdict::Unauthorized { reason },
    }
}

/// `application/x-www-form-urlencoded` (also used for query strings).
pub(crate) fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(&mut out, k);
        out.push('=');
        enc(&mut out, v);
    }
    out
}

fn enc(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_parsing_and_fallbacks() {
        let body = br#"{"AzureAD":{"LoginEndpoint":"https://login.example/","KustoServiceResourceId":"https://kusto.kusto.windows.net","LoginMfaRequired":true}}"#;
        assert_eq!(
            cloud_info(Some(body), None),
            CloudInfo {
                login_endpoint: "https://login.example".into(),
                resource: "https://kusto.kustomfa.windows.net".into()
            }
        );
        assert_eq!(
            cloud_info(None, Some("https://login.sovereign.example/")),
            CloudInfo {
                login_endpoint: "https://login.sovereign.example".into(),
                resource: DEFAULT_RESOURCE_ID.into()
            }
        );
        assert_eq!(
            cloud_info(Some(b"not json"), None).login_endpoint,
            DEFAULT_LOGIN_ENDPOINT
        );
    }

    #[test]
    fn token_answers() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let t = parse_token(
            br#"{"token_type":"Bearer","expires_in":3599,"access_token":"abc"}"#,
            now,
        )
        .unwrap();
        assert_eq!(t.token.expose(), "abc");
        assert_eq!(t.expires_at, Some(now + Duration::from_secs(3599)));
        let t = parse_token(br#"{"access_token":"x","expires_in":"60"}"#, now).unwrap();
        assert_eq!(t.expires_at, Some(now + Duration::from_secs(60)));
        let t = parse_token(br#"{"access_token":"x","expires_on":"2000"}"#, now).unwrap();
        assert_eq!(
            t.expires_at,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(2000))
        );
        assert!(parse_token(br#"{"token_type":"Bearer"}"#, now).is_err());
        assert_eq!(format!("{t:?}").matches("***").count(), 1);
    }

    #[test]
    fn fuzz_token_expiry_beyond_system_time_is_no_expiry_not_a_panic() {
        // Found by fuzz/fuzz_targets/kusto_responses.rs: an `expires_in` / `expires_on` past
        // what `SystemTime` holds panicked ("overflow when adding duration to instant") on the
        // worker thread while it read the token answer.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for body in [
            br#"{"access_token":"x","expires_in":18446744073709551615}"#.as_slice(),
            br#"{"access_token":"x","expires_on":"18446744073709551615"}"#.as_slice(),
            br#"{"access_token":"x","expires_in":"9223372036854775807"}"#.as_slice(),
        ] {
            let t = parse_token(body, now).unwrap();
            assert_eq!(t.token.expose(), "x");
            assert_eq!(t.expires_at, None, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn refresh_margins() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(300)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn aad_errors_are_final_with_the_description() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#;
        let v = token_error("the AAD token endpoint", 401, None, body);
        assert_eq!(
            v,
            Verdict::Unauthorized {
                reason: "the AAD token endpoint refused the credentials (401 invalid_client): AADSTS7000215: Invalid client secret provided.".into()
            }
        );
        assert!(token_error("x", 503, None, b"").is_retryable());
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_encode(&[
                ("scope", "https://k.x/.default"),
                ("client_secret", "a b&c")
            ]),
            "scope=https%3A%2F%2Fk.x%2F.default&client_secret=a%20b%26c"
        );
    }

    #[test]
    fn credentials_debug_redacts() {
        let c = Credentials::ApplicationKey {
            client_id: "app".into(),
            key: Secret::new("hunter2"),
            tenant: "t".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credentials::Static(Secret::new("tok"))).contains("tok"));
    }
}
