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
//! **Which hosts receive the client secret.** The metadata document is unauthenticated, so
//! whoever answers for the cluster URL could name any login endpoint and collect the secret.
//! A login endpoint taken from the metadata is therefore used only when it is `https` on one
//! of the [`KNOWN_AUTHORITY_HOSTS`] (the documented Microsoft Entra authority hosts), or
//! when it is exactly the authority the user named in `AadAuthorityUri`. An endpoint the user
//! names (`with_login_endpoint`, `AadAuthorityUri`) may be any `https` URL, or plain `http`
//! on a loopback address (local emulators and tests). Anything else is refused before a
//! byte is sent: the send fails with a message naming the endpoint, what was expected and
//! the setting that allows it (it reaches `Stats::last_error` and the undelivered path).
//!
//! **Which audience the token has.** The metadata's `KustoServiceResourceId` is used only when
//! it is `https` and tied to the cluster: its host is the cluster's own, or `kusto.` followed by
//! a parent domain of the cluster host with at least three labels (`https://kusto.kusto.windows.net`
//! for `help.westeurope.kusto.windows.net`). Otherwise the token is asked for the cluster URL
//! itself, which Azure Data Explorer accepts as audience. A hostile metadata document thus
//! cannot obtain a token for another service or for clusters outside its own domain.
//!
//! **No redirects.** Metadata and token requests (and every other request of this crate) do
//! not follow redirects: a 3xx answer fails with an error naming its (redacted) `Location`,
//! so a client secret is never re-posted to a host nobody vetted.
//!
//! Hand-written rather than `azure_identity`: one form POST and a JSON answer do not justify
//! the Azure SDK core's dependency tree on a 2-core build, and it lets tests point the login
//! endpoint at a local receiver over plain HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use logship_http::reqwest::{self, RequestBuilder};
use logship_http::{HttpClient, Reply};

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

/// The Microsoft Entra authority hosts a login endpoint named by a cluster's auth metadata may
/// use (over `https`, default port, no path). The union of:
///
/// * the login endpoints of Azure/azure-kusto-python
///   `azure-kusto-data/azure/kusto/data/wellKnownKustoEndpoints.json` (`AllowedEndpointsByLogin`:
///   public, US Government, China (21Vianet), the two air-gapped US clouds, Bleu (France));
/// * MSAL's `WELL_KNOWN_AUTHORITY_HOSTS` (AzureAD/microsoft-authentication-library-for-python
///   `msal/authority.py`: adds `login-us.microsoftonline.com` and `login.chinacloudapi.cn`),
///   which azure-identity's `AzureAuthorityHosts` (Azure/azure-sdk-for-python
///   `sdk/identity/azure-identity/azure/identity/_constants.py`) also names.
///
/// Azure Germany's `login.microsoftonline.de` (retired in 2021, dropped from current MSAL) is
/// not included. Any other authority must be named by the user.
pub const KNOWN_AUTHORITY_HOSTS: &[&str] = &[
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login-us.microsoftonline.com",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
    "login.microsoftonline.eaglex.ic.gov",
    "login.microsoftonline.microsoft.scloud",
    "login.sovcloud-identity.fr",
];

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

/// Where the login endpoint in use came from; it decides how the endpoint is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginSource {
    /// [`with_login_endpoint`](crate::KustoBuilder::with_login_endpoint): named by the user.
    Builder,
    /// The cluster's `AzureAD.LoginEndpoint`: not trusted by itself.
    Metadata,
    /// The `AadAuthorityUri` environment variable: named by the user.
    Environment,
    /// [`DEFAULT_LOGIN_ENDPOINT`].
    Default,
}

/// Cloud settings read from `/v1/rest/auth/metadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloudInfo {
    /// The login endpoint, without a trailing `/` (checked by [`check_login_endpoint`] before
    /// a secret is sent to it).
    pub(crate) login_endpoint: String,
    pub(crate) login_source: LoginSource,
    /// Why the client secret must not go to `login_endpoint` ([`check_login_endpoint`]),
    /// filled in by `Auth::cloud`.
    pub(crate) login_refused: Option<String>,
    /// The token audience, already tied to the cluster by [`audience`].
    pub(crate) resource: String,
}

/// Parses the metadata document (`None` body = 404: defaults) of `cluster` (the engine URL).
pub(crate) fn cloud_info(body: Option<&[u8]>, env_login: Option<&str>, cluster: &str) -> CloudInfo {
    let (fallback_login, fallback_source) = match env_login.filter(|s| !s.trim().is_empty()) {
        Some(e) => (
            e.trim().trim_end_matches('/').to_string(),
            LoginSource::Environment,
        ),
        None => (DEFAULT_LOGIN_ENDPOINT.to_string(), LoginSource::Default),
    };
    let v: Option<serde_json::Value> = body.and_then(|b| serde_json::from_slice(b).ok());
    let aad = v.as_ref().and_then(|v| v.get("AzureAD"));
    let s = |k: &str| {
        aad.and_then(|a| a.get(k))
            .and_then(|x| x.as_str())
            .filter(|s| !s.is_empty())
    };
    let advertised = s("KustoServiceResourceId").unwrap_or(DEFAULT_RESOURCE_ID);
    let mut resource = audience(cluster, advertised);
    if aad
        .and_then(|a| a.get("LoginMfaRequired"))
        .and_then(serde_json::Value::as_bool)
        == Some(true)
    {
        resource = resource.replace(".kusto.", ".kustomfa.");
    }
    let (login_endpoint, login_source) = match s("LoginEndpoint") {
        Some(l) => (
            l.trim().trim_end_matches('/').to_string(),
            LoginSource::Metadata,
        ),
        None => (fallback_login, fallback_source),
    };
    CloudInfo {
        login_endpoint,
        login_source,
        login_refused: None,
        resource,
    }
}

/// The token audience for `cluster` (the engine URL) when its metadata names `advertised`
/// as `KustoServiceResourceId`.
///
/// The official clients (Azure/azure-kusto-python
/// `azure-kusto-data/azure/kusto/data/_token_providers.py` `CloudInfoTokenProvider._init_resources`,
/// and the Java, Node and Go clients alike) ask for `{KustoServiceResourceId}/.default` as
/// given, and rely on their trusted-endpoints list
/// (`azure-kusto-data/azure/kusto/data/kusto_trusted_endpoints.py`) to refuse clusters outside
/// Microsoft's Kusto domains. This crate talks to any cluster URL (emulators, private
/// front doors), so instead it ties the audience to the cluster: `advertised` is used only when
/// it is an `https` URL without user info, port, path, query or fragment, and its host is
/// either
///
/// * the cluster's own host (`https://help.westeurope.kusto.windows.net`), or
/// * `kusto.` followed by a parent domain of the cluster host with at least three labels
///   (every Kusto DNS suffix has three or more, while `windows.net` or `example.com` are
///   shared by unrelated services): the per-cloud Kusto resource (`https://kusto.kusto.windows.net` for
///   `help.westeurope.kusto.windows.net`, `https://kusto.kusto.usgovcloudapi.net` for
///   `x.kusto.usgovcloudapi.net`).
///
/// Otherwise the audience is the cluster URL itself (scheme, host and port, as
/// [`with_cluster`](crate::KustoBuilder::with_cluster) gave them), which Azure Data Explorer
/// accepts as a token audience. Either way a hostile metadata document cannot choose an
/// audience outside the cluster's own domain.
pub(crate) fn audience(cluster: &str, advertised: &str) -> String {
    let cluster = cluster.trim_end_matches('/');
    let cluster_host = reqwest::Url::parse(cluster)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    let tied = reqwest::Url::parse(advertised.trim()).ok().and_then(|u| {
        let bare = u.scheme() == "https"
            && u.username().is_empty()
            && u.password().is_none()
            && u.port().is_none()
            && matches!(u.path(), "" | "/")
            && u.query().is_none()
            && u.fragment().is_none();
        let host = u.host_str()?.to_ascii_lowercase();
        let ch = cluster_host.as_deref()?;
        let parent_ok = host.strip_prefix("kusto.").is_some_and(|parent| {
            parent.matches('.').count() >= 2
                && ch.len() > parent.len()
                && ch.ends_with(parent)
                && ch.as_bytes()[ch.len() - parent.len() - 1] == b'.'
        });
        (bare && (host == ch || parent_ok)).then(|| format!("https://{host}"))
    });
    tied.unwrap_or_else(|| cluster.to_string())
}

/// Whether `url` is a login endpoint the user may name: an `https` URL, or plain `http` on a
/// loopback address (`127.0.0.0/8`, `::1`, `localhost`), without user info.
pub(crate) fn explicit_login_ok(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url.trim()) else {
        return false;
    };
    if !u.username().is_empty() || u.password().is_some() {
        return false;
    }
    let loopback = |h: &str| {
        h.eq_ignore_ascii_case("localhost")
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    match (u.scheme(), u.host_str()) {
        ("https", Some(_)) => true,
        ("http", Some(h)) => loopback(h),
        _ => false,
    }
}

/// Whether `url` is `https://<one of KNOWN_AUTHORITY_HOSTS>` (default port, no path).
pub(crate) fn known_authority(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url.trim()) else {
        return false;
    };
    u.scheme() == "https"
        && u.username().is_empty()
        && u.password().is_none()
        && u.port().is_none()
        && matches!(u.path(), "" | "/")
        && u.query().is_none()
        && u.fragment().is_none()
        && u.host_str().is_some_and(|h| {
            KNOWN_AUTHORITY_HOSTS
                .iter()
                .any(|k| k.eq_ignore_ascii_case(h))
        })
}

fn same_endpoint(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a.trim()), reqwest::Url::parse(b.trim())) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host() == b.host()
                && a.port_or_known_default() == b.port_or_known_default()
                && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
                && a.username() == b.username()
                && a.password() == b.password()
                && a.query() == b.query()
        }
        _ => false,
    }
}

/// Checks that the client secret may be sent to `endpoint`, which came from `source`;
/// `env` is the value of `AadAuthorityUri`, which also vouches for a metadata endpoint equal
/// to it.
///
/// # Errors
/// Why not: the (redacted) endpoint, who named it, what was expected and which setting
/// allows another authority.
pub(crate) fn check_login_endpoint(
    endpoint: &str,
    source: LoginSource,
    env: Option<&str>,
) -> Result<(), String> {
    let shown = logship_core::redact_url(endpoint);
    let explicit = "an https URL (plain http only on a loopback address, for local emulators)";
    let (ok, named_by, expected, fix) = match source {
        LoginSource::Default => (true, "", "", ""),
        LoginSource::Builder => (
            explicit_login_ok(endpoint),
            "`with_login_endpoint`",
            explicit,
            "correct `with_login_endpoint`",
        ),
        LoginSource::Environment => (
            explicit_login_ok(endpoint),
            "the `AadAuthorityUri` environment variable",
            explicit,
            "correct `AadAuthorityUri`, or name the authority with `with_login_endpoint`",
        ),
        LoginSource::Metadata => (
            known_authority(endpoint)
                || env.is_some_and(|e| explicit_login_ok(e) && same_endpoint(e, endpoint)),
            "the cluster's auth metadata (`AzureAD.LoginEndpoint`)",
            "https on a Microsoft Entra authority host (login.microsoftonline.com, \
             login.microsoftonline.us, login-us.microsoftonline.com, login.chinacloudapi.cn, \
             login.partner.microsoftonline.cn, login.microsoftonline.eaglex.ic.gov, \
             login.microsoftonline.microsoft.scloud, login.sovcloud-identity.fr)",
            "if you trust this authority, name it with `with_login_endpoint` or the \
             `AadAuthorityUri` environment variable",
        ),
    };
    if ok {
        return Ok(());
    }
    Err(format!(
        "refused to send the client secret to login endpoint `{shown}` named by {named_by}: \
         expected {expected}; {fix}"
    ))
}

/// A 3xx answer to a metadata or token request: never followed (the client has no redirect
/// policy), reported with its redacted `Location`.
fn redirect_refused(what: &str, status: u16, location: Option<&str>, fix: &str) -> Verdict {
    let to = location.map_or_else(
        || "no Location".to_string(),
        |l| format!("`{}`", logship_core::redact_url(l)),
    );
    Verdict::Unauthorized {
        reason: format!(
            "{what} answered {status} redirecting to {to}; redirects are not followed for \
             credential and metadata requests, so nothing was sent there: {fix}"
        ),
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

    async fn cloud(&mut self, http: &HttpClient, tele: &Telemetry) -> Result<CloudInfo, Verdict> {
        if let Some(c) = &self.cloud {
            return Ok(c.clone());
        }
        let what = "cannot read the cluster's auth metadata";
        let url = transport::url(&format!("{}/v1/rest/auth/metadata", self.cluster), what)?;
        let reply = transport::send(
            http,
            tele.kusto(http.get(url), "logship.kusto.authMetadata"),
            what,
        )
        .await?;
        let env = std::env::var(AAD_AUTHORITY_ENV).ok();
        let mut info = match reply.status {
            200..=299 if !reply.complete => {
                return Err(Verdict::Transient {
                    reason: format!("{what}: {}", reply.cut_note().unwrap_or_default()),
                });
            }
            200..=299 => cloud_info(Some(&reply.body), env.as_deref(), &self.cluster),
            404 => cloud_info(None, env.as_deref(), &self.cluster),
            s @ 300..=399 => {
                return Err(redirect_refused(
                    "the cluster's auth metadata endpoint",
                    s,
                    reply.location.as_deref(),
                    "give the cluster's final URL to `with_cluster` (or `Data Source`)",
                ));
            }
            _ => {
                return Err(classify::other("the auth metadata endpoint", &reply));
            }
        };
        if let Some(l) = &self.login_override {
            info.login_endpoint = l.trim().trim_end_matches('/').to_string();
            info.login_source = LoginSource::Builder;
        }
        info.login_refused =
            check_login_endpoint(&info.login_endpoint, info.login_source, env.as_deref()).err();
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
        http: &HttpClient,
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
                if let Some(reason) = cloud.login_refused {
                    // Final: every batch would meet the same refusal until the settings change.
                    return Err(Verdict::Unauthorized { reason });
                }
                let what = "the AAD token endpoint";
                let url = transport::url(
                    &format!("{}/{}/oauth2/v2.0/token", cloud.login_endpoint, tenant),
                    what,
                )?;
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
                fetch(
                    http,
                    req,
                    what,
                    "the client secret was not re-sent; if the new location is a trusted \
                     authority, name it with `with_login_endpoint`",
                    now,
                )
                .await?
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
                let what = "the managed identity endpoint";
                let url = transport::url(&format!("{url}?{}", form_encode(&q)), what)?;
                let mut rb = http.get(url);
                rb = match &req {
                    Some(h) => rb.header("x-identity-header", h),
                    None => rb.header("metadata", "true"),
                };
                fetch(http, rb, what, "check `IDENTITY_ENDPOINT`", now).await?
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
    http: &HttpClient,
    req: RequestBuilder,
    what: &str,
    redirect_fix: &str,
    now: SystemTime,
) -> Result<AccessToken, Verdict> {
    let reply = transport::send(http, req, what).await?;
    if (300..400).contains(&reply.status) {
        return Err(redirect_refused(
            what,
            reply.status,
            reply.location.as_deref(),
            redirect_fix,
        ));
    }
    if !reply.is_success() {
        return Err(token_error(what, &reply));
    }
    if let Some(note) = reply.cut_note() {
        return Err(Verdict::Transient {
            reason: format!("{what}: {note}"),
        });
    }
    parse_token(&reply.body, now).map_err(|reason| Verdict::Transient {
        reason: format!("{what}: {reason}"),
    })
}

/// A refused token request: AAD's `error` and `error_description`; bad credentials are
/// `Unauthorized` (final: no request can succeed without a token), throttling and 5xx
/// transient.
pub(crate) fn token_error(what: &str, reply: &Reply) -> Verdict {
    let status = reply.status;
    let v: Option<serde_json::Value> = serde_json::from_slice(&reply.body).ok();
    let s = |k: &str| {
        v.as_ref()
            .and_then(|v| v.get(k))
            .and_then(|x| x.as_str())
            .map(|t| logship_core::excerpt::bounded(t, logship_core::excerpt::MAX_EXCERPT_BYTES))
    };
    let reason = match (s("error"), s("error_description")) {
        (Some(e), Some(d)) => format!("{what} refused the credentials ({status} {e}): {d}"),
        (Some(e), None) => format!("{what} refused the credentials ({status} {e})"),
        _ => return classify::other(what, reply),
    };
    match status {
        429 => Verdict::Throttled {
            after: reply.retry_after,
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
        let cluster = "https://help.westeurope.kusto.windows.net";
        let body = br#"{"AzureAD":{"LoginEndpoint":"https://login.example/","KustoServiceResourceId":"https://kusto.kusto.windows.net","LoginMfaRequired":true}}"#;
        assert_eq!(
            cloud_info(Some(body), None, cluster),
            CloudInfo {
                login_endpoint: "https://login.example".into(),
                login_source: LoginSource::Metadata,
                login_refused: None,
                resource: "https://kusto.kustomfa.windows.net".into()
            }
        );
        assert_eq!(
            cloud_info(None, Some("https://login.sovereign.example/"), cluster),
            CloudInfo {
                login_endpoint: "https://login.sovereign.example".into(),
                login_source: LoginSource::Environment,
                login_refused: None,
                resource: DEFAULT_RESOURCE_ID.into()
            }
        );
        let info = cloud_info(Some(b"not json"), None, cluster);
        assert_eq!(info.login_endpoint, DEFAULT_LOGIN_ENDPOINT);
        assert_eq!(info.login_source, LoginSource::Default);
        // A local cluster: the public resource id is not tied to it, so the audience is the
        // cluster URL.
        assert_eq!(
            cloud_info(None, None, "http://127.0.0.1:8080").resource,
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn the_audience_stays_with_the_cluster() {
        let c = "https://help.westeurope.kusto.windows.net";
        let cases: &[(&str, &str, &str)] = &[
            // The per-cloud resource and the cluster itself are accepted.
            (
                c,
                "https://kusto.kusto.windows.net",
                "https://kusto.kusto.windows.net",
            ),
            (
                c,
                "https://kusto.kusto.windows.net/",
                "https://kusto.kusto.windows.net",
            ),
            (c, "https://help.westeurope.kusto.windows.net", c),
            (c, "HTTPS://Help.WestEurope.Kusto.Windows.Net", c),
            (
                "https://x.kusto.usgovcloudapi.net",
                "https://kusto.kusto.usgovcloudapi.net",
                "https://kusto.kusto.usgovcloudapi.net",
            ),
            // Anything else falls back to the cluster URL.
            (c, "https://management.azure.com", c),
            (c, "https://graph.microsoft.com", c),
            (c, "https://kusto.windows.net", c),
            (c, "http://kusto.kusto.windows.net", c),
            (c, "https://kusto.kusto.windows.net:8443", c),
            (c, "https://kusto.kusto.windows.net/path", c),
            (c, "https://u:p@kusto.kusto.windows.net", c),
            (c, "https://kusto.evil.example", c),
            (c, "https://kusto.net", c),
            (c, "not a url", c),
            (
                "https://evilkusto.windows.net",
                "https://kusto.kusto.windows.net",
                "https://evilkusto.windows.net",
            ),
            (
                "http://127.0.0.1:9000",
                "https://kusto.kusto.windows.net",
                "http://127.0.0.1:9000",
            ),
        ];
        for (cluster, advertised, want) in cases {
            assert_eq!(
                audience(cluster, advertised),
                *want,
                "{cluster} {advertised}"
            );
        }
    }

    #[test]
    fn login_endpoints_from_metadata_must_be_known_authorities() {
        let m = LoginSource::Metadata;
        for ok in [
            "https://login.microsoftonline.com",
            "https://login.microsoftonline.com/",
            "https://LOGIN.microsoftonline.us",
            "https://login.chinacloudapi.cn",
            "https://login.partner.microsoftonline.cn",
            "https://login.sovcloud-identity.fr",
        ] {
            assert_eq!(check_login_endpoint(ok, m, None), Ok(()), "{ok}");
        }
        for bad in [
            "http://login.microsoftonline.com",
            "http://127.0.0.1:9999",
            "https://login.microsoftonline.com.evil.example",
            "https://login.microsoftonline.com:8443",
            "https://login.microsoftonline.com/x",
            "https://user:pw@login.microsoftonline.com",
            "https://login.evil.example",
            "login.microsoftonline.com",
        ] {
            let e = check_login_endpoint(bad, m, None).unwrap_err();
            assert!(e.starts_with("refused to send the client secret"), "{e}");
            assert!(e.contains("AzureAD.LoginEndpoint"), "{e}");
            assert!(
                e.contains("with_login_endpoint") && e.contains("AadAuthorityUri"),
                "{e}"
            );
            assert!(!e.contains("pw@"), "{e}");
        }
        // The user's `AadAuthorityUri` vouches for the same endpoint, and only that one.
        let env = Some("https://login.sovereign.example/");
        assert_eq!(
            check_login_endpoint("https://login.sovereign.example", m, env),
            Ok(())
        );
        assert!(check_login_endpoint("https://login.other.example", m, env).is_err());
        assert!(
            check_login_endpoint(
                "http://login.sovereign.example",
                m,
                Some("http://login.sovereign.example")
            )
            .is_err(),
            "plain http off loopback stays refused"
        );
    }

    #[test]
    fn login_endpoints_the_user_names() {
        for src in [LoginSource::Builder, LoginSource::Environment] {
            for ok in [
                "https://login.sovereign.example",
                "http://127.0.0.1:8080",
                "http://localhost:1",
                "http://[::1]:2",
            ] {
                assert_eq!(check_login_endpoint(ok, src, None), Ok(()), "{ok}");
            }
            for bad in [
                "http://login.example",
                "http://10.0.0.1",
                "ftp://x",
                "",
                "x",
            ] {
                assert!(check_login_endpoint(bad, src, None).is_err(), "{bad}");
            }
        }
        let e = check_login_endpoint("http://login.example", LoginSource::Environment, None)
            .unwrap_err();
        assert!(e.contains("`AadAuthorityUri` environment variable"), "{e}");
    }

    #[test]
    fn redirects_name_the_redacted_location() {
        let v = redirect_refused(
            "the AAD token endpoint",
            307,
            Some("http://u:hunter2@127.0.0.1:9/t/oauth2/v2.0/token?sig=secret"),
            "fix",
        );
        let r = v.reason();
        assert!(matches!(v, Verdict::Unauthorized { .. }));
        assert!(r.contains("307"), "{r}");
        assert!(
            r.contains("`http://***@127.0.0.1:9/t/oauth2/v2.0/token?***`"),
            "{r}"
        );
        assert!(!r.contains("hunter2") && !r.contains("sig=secret"), "{r}");
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
        let reply = |status: u16, body: &[u8]| {
            Reply::from_parts(
                status,
                &reqwest::header::HeaderMap::new(),
                body.to_vec().into(),
                true,
                1 << 20,
            )
        };
        let v = token_error("the AAD token endpoint", &reply(401, body));
        assert_eq!(
            v,
            Verdict::Unauthorized {
                reason: "the AAD token endpoint refused the credentials (401 invalid_client): AADSTS7000215: Invalid client secret provided.".into()
            }
        );
        assert!(token_error("x", &reply(503, b"")).is_retryable());
        let long = format!(
            r#"{{"error":"invalid_client","error_description":"{}"}}"#,
            "d".repeat(100_000)
        );
        let v = token_error("x", &reply(401, long.as_bytes()));
        assert!(v.reason().len() < 700, "{}", v.reason().len());
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
