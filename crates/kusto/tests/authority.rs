//! Which hosts receive the client secret, and which audience the token has, when the cluster's
//! unauthenticated `/v1/rest/auth/metadata` (or the token endpoint) is hostile. Every "nothing
//! was sent" is a count of accepted TCP connections on a real listener.

mod support;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use logship_kusto::{IngestionMode, KustoBuilder, KustoLayer};
use logship_testkit::kusto::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use support::hostile::{Answer, Hostile, form_value};
use support::*;
use tracing_subscriber::prelude::*;

/// A hostile cluster: its metadata names `login_endpoint` and `resource`; streaming ingestion
/// is answered 200 (so a send that got a token is delivered).
fn hostile_cluster(login_endpoint: String, resource: &'static str) -> Hostile {
    let login = Arc::new(OnceLock::new());
    let _ = login.set(login_endpoint);
    hostile_cluster_naming(login, resource)
}

/// [`hostile_cluster`], with a login endpoint known only after the server started.
fn hostile_cluster_naming(
    login_endpoint: Arc<OnceLock<String>>,
    resource: &'static str,
) -> Hostile {
    Hostile::start(move |req| {
        if req.target.starts_with("/v1/rest/auth/metadata") {
            Answer::json(
                200,
                serde_json::json!({"AzureAD": {
                    "LoginEndpoint": login_endpoint.get(),
                    "LoginMfaRequired": false,
                    "KustoClientAppId": "db662dc1-0cfe-4e1c-a843-19a68e65be58",
                    "KustoServiceResourceId": resource,
                }})
                .to_string(),
            )
        } else {
            Answer::json(200, "{}")
        }
    })
}

/// Client credentials against `cluster`, streaming only, fast retries.
fn layer_for(cluster: &str) -> KustoBuilder {
    KustoLayer::builder()
        .with_cluster(cluster)
        .with_database(DB)
        .with_table(TABLE)
        .with_application_key(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, "contoso")
        .with_ingestion_mode(IngestionMode::Streaming)
        .with_pipeline(|p| p.with_linger(Duration::from_millis(50)))
}

/// Sends one event through `b`; returns the guard's stats after the flush.
fn send_one(b: KustoBuilder) -> logship_core::Stats {
    let (layer, guard) = b.build().expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("one");
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    guard.stats()
}

#[test]
fn metadata_naming_a_plain_http_login_endpoint_receives_no_secret() {
    let thief = Hostile::counting();
    let cluster = hostile_cluster(thief.url(), "https://kusto.kusto.windows.net");
    let s = send_one(layer_for(&cluster.url()));
    assert_eq!(
        thief.accepted(),
        0,
        "nothing may reach the advertised endpoint"
    );
    assert_eq!((s.delivered, s.undelivered_rejected), (0, 1));
    let e = s.last_error.unwrap_or_default();
    assert!(
        e.contains(&format!(
            "refused to send the client secret to login endpoint `{}`",
            thief.url()
        )),
        "{e}"
    );
    assert!(e.contains("AzureAD.LoginEndpoint"), "{e}");
    assert!(e.contains("with_login_endpoint"), "{e}");
    assert!(!e.contains(DEFAULT_CLIENT_SECRET), "{e}");
    // The cluster saw the metadata request only: no ingestion without a token.
    assert!(
        cluster
            .requests()
            .iter()
            .all(|r| r.target.starts_with("/v1/rest/auth/metadata")),
        "{:?}",
        cluster.requests()
    );
}

#[test]
fn metadata_naming_an_https_authority_that_is_not_microsoft_is_refused() {
    let thief = Hostile::counting();
    let advertised = format!("https://localhost:{}", thief.port());
    let cluster = hostile_cluster(advertised.clone(), "https://kusto.kusto.windows.net");
    let s = send_one(layer_for(&cluster.url()));
    assert_eq!(thief.accepted(), 0);
    assert_eq!(s.undelivered_rejected, 1);
    let e = s.last_error.unwrap_or_default();
    assert!(e.contains(&format!("`{advertised}`")), "{e}");
    assert!(e.contains("Microsoft Entra authority host"), "{e}");
}

#[test]
fn a_login_endpoint_the_user_names_is_used_even_when_the_metadata_names_it_too() {
    // The metadata names a non-Microsoft authority (the receiver, over plain http): refused
    // by default, used once the user names the same endpoint. The receiver issues tokens for
    // the cluster's URL, the audience a local cluster gets.
    let login = Arc::new(OnceLock::new());
    let cluster = hostile_cluster_naming(login.clone(), "https://kusto.kusto.windows.net");
    let r = receiver_builder()
        .with_service_resource_id(&cluster.url())
        .start()
        .expect("receiver starts");
    let _ = login.set(r.url().to_string());
    let s = send_one(layer_for(&cluster.url()));
    assert_eq!(s.undelivered_rejected, 1);
    let k = r.stats();
    assert_eq!(
        (k.tokens_issued, k.token_failures),
        (0, 0),
        "no token request"
    );

    let s = send_one(layer_for(&cluster.url()).with_login_endpoint(r.url()));
    assert_eq!((s.delivered, s.undelivered_rejected), (1, 0));
    assert_eq!(r.stats().tokens_issued, 1);
}

#[test]
fn a_redirect_from_the_token_endpoint_is_not_followed() {
    let second = Hostile::counting();
    let location = format!(
        "{}/contoso/oauth2/v2.0/token?sig=do-not-print",
        second.url()
    );
    let to = location.clone();
    let token_endpoint = Hostile::start(move |_| Answer::redirect(307, &to));
    let r = receiver();
    let lost = Lost::default();
    let (layer, guard) = lost
        .install(
            builder(&r)
                .with_login_endpoint(token_endpoint.url())
                .with_ingestion_mode(IngestionMode::Streaming),
        )
        .build()
        .expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("one");
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert_eq!(second.accepted(), 0, "the secret was re-posted");
    let posts = token_endpoint.requests();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(
        form_value(&posts[0].body, "client_secret").as_deref(),
        Some(DEFAULT_CLIENT_SECRET)
    );
    let s = guard.stats();
    assert_eq!((s.delivered, s.undelivered_rejected), (0, 1));
    let e = s.last_error.unwrap_or_default();
    assert!(e.contains("the AAD token endpoint answered 307"), "{e}");
    assert!(
        e.contains(&format!("`{}/contoso/oauth2/v2.0/token?***`", second.url())),
        "{e}"
    );
    assert!(!e.contains("do-not-print"), "{e}");
    assert_eq!(lost.get()[0].1.as_deref(), Some(e.as_str()));
    assert_eq!(r.row_count(TABLE), 0);
}

#[test]
fn a_redirect_from_the_metadata_endpoint_is_not_followed() {
    for status in [301, 307] {
        let second = Hostile::counting();
        let to = format!("{}/v1/rest/auth/metadata", second.url());
        let cluster = Hostile::start(move |_| Answer::redirect(status, &to));
        let s = send_one(layer_for(&cluster.url()));
        assert_eq!(second.accepted(), 0, "{status}");
        assert_eq!(cluster.requests().len(), 1, "{status}");
        assert_eq!(s.undelivered_rejected, 1);
        let e = s.last_error.unwrap_or_default();
        assert!(
            e.contains(&format!(
                "the cluster's auth metadata endpoint answered {status} redirecting to"
            )) && e.contains(&second.url()),
            "{e}"
        );
        assert!(!e.contains(DEFAULT_CLIENT_SECRET), "{e}");
    }
}

#[test]
fn a_hostile_resource_id_does_not_choose_the_token_audience() {
    // The receiver advertises another service as its resource id; tokens come from a recorder.
    let r = receiver_builder()
        .with_service_resource_id("https://management.azure.com")
        .with_require_auth(false)
        .start()
        .expect("receiver starts");
    let tokens = Hostile::start(|_| {
        Answer::json(
            200,
            r#"{"token_type":"Bearer","expires_in":3600,"access_token":"recorded"}"#,
        )
    });
    let s = send_one(
        builder(&r)
            .with_login_endpoint(tokens.url())
            .with_ingestion_mode(IngestionMode::Streaming),
    );
    assert_eq!(s.delivered, 1);
    let posts = tokens.requests();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(
        form_value(&posts[0].body, "scope"),
        Some(format!("{}/.default", r.url())),
        "the audience is the cluster"
    );
    assert!(!posts[0].body.contains("management.azure.com"));
}
