//! Every keyword and alias of a Kusto connection string, from its two public sources:
//!
//! * the Kusto connection-string documentation,
//!   <https://learn.microsoft.com/kusto/api/connection-strings/kusto> (source:
//!   `MicrosoftDocs/dataexplorer-docs`, `data-explorer/kusto/api/connection-strings/kusto.md`:
//!   "General properties", "User authentication properties", "Application authentication
//!   properties", "Client communication properties");
//! * the official Python SDK's keyword list, `Azure/azure-kusto-python`,
//!   `azure-kusto-data/azure/kusto/data/kcsb.json` (read by `kcsb.py`: `ValidKeywords` are the
//!   ones it supports, every other entry and its aliases are "not supported in this SDK").
//!
//! Each keyword is either accepted, and the test checks on the wire (at the testkit Kusto
//! receiver) that its value landed in the right setting; accepted and ignored, and the test
//! checks the string still ships (and that a boolean still has to be a boolean); or refused,
//! and the test checks the reason.

mod support;

use std::time::Duration;

use logship_kusto::{ConnectionStringError, IngestionMode, KustoLayer};
use logship_testkit::kusto::{KustoReceiver, StreamingRequest};
use support::*;
use tracing_subscriber::prelude::*;

/// What a keyword must do.
#[derive(Clone, Copy, Debug)]
enum Expect {
    DataSource,
    Database,
    Federated,
    ClientId,
    AppKey,
    Authority,
    /// A fixed bearer token (`Application Token` and `User Token`).
    Token,
    AppName,
    UserName,
    /// Accepted and ignored; `true` when its value must still be a boolean.
    Ignored(bool),
    /// Refused; the reason contains this text.
    Refused(&'static str),
}

use Expect::*;

const USER: &str =
    "user sign-in (a prompt, a password or a login hint) is not possible in a background exporter";
const MFA: &str = "multi-factor authentication needs a user at a prompt";
const CERT: &str = "certificate authentication is not supported";

/// Every keyword and alias of both sources, as they spell them.
const KEYWORDS: &[(&str, Expect)] = &[
    // General properties (documentation); `Data Source` and `Initial Catalog` (Python).
    ("Data Source", DataSource),
    ("Addr", DataSource),
    ("Address", DataSource),
    ("Network Address", DataSource),
    ("networkaddress", DataSource),
    ("Server", DataSource),
    ("Initial Catalog", Database),
    ("Database", Database),
    ("Query Consistency", Ignored(false)),
    ("QueryConsistency", Ignored(false)),
    ("Client Version for Tracing", Ignored(false)),
    ("TraceClientVersion", Ignored(false)),
    // User authentication properties.
    ("AAD Federated Security", Federated),
    ("Federated Security", Federated),
    ("federatedsecurity", Federated),
    ("Federated", Federated),
    ("Fed", Federated),
    ("AADFed", Federated),
    ("Authority Id", Authority),
    ("Authority ID", Authority),
    ("TenantId", Authority),
    ("Tid", Authority),
    ("Tenant", Authority),
    ("Authority", Authority),
    // Python: `domainhint` is an alias of `Authority Id`.
    ("Domain Hint", Authority),
    ("DomainHint", Authority),
    ("Enforce MFA", Refused(MFA)),
    ("EnforceMFA", Refused(MFA)),
    ("MFA", Refused(MFA)),
    ("User ID", Refused(USER)),
    ("UID", Refused(USER)),
    ("User", Refused(USER)),
    ("AAD User ID", Refused(USER)),
    ("loginhint", Refused(USER)),
    ("User Name for Tracing", UserName),
    ("TraceUserName", UserName),
    ("Trace User Name", UserName),
    ("User Token", Token),
    ("UsrToken", Token),
    ("UserToken", Token),
    ("Password", Refused(USER)),
    ("PWD", Refused(USER)),
    // Application authentication properties.
    ("Application Certificate SendX5c", Refused(CERT)),
    (
        "Application Certificate Send Public Certificate",
        Refused(CERT),
    ),
    ("SendX5c", Refused(CERT)),
    ("applicationcertificatex5c", Refused(CERT)),
    ("sendcertificatechain", Refused(CERT)),
    ("Application Certificate Thumbprint", Refused(CERT)),
    ("AppCert", Refused(CERT)),
    ("Application Client Id", ClientId),
    ("Application Client ID", ClientId),
    ("AppClientId", ClientId),
    ("Application Key", AppKey),
    ("AppKey", AppKey),
    ("Application Name for Tracing", AppName),
    ("TraceAppName", AppName),
    ("Trace App Name", AppName),
    ("Application Token", Token),
    ("AppToken", Token),
    (
        "Azure Region",
        Refused("a regional token endpoint serves certificate"),
    ),
    (
        "AzureRegion",
        Refused("a regional token endpoint serves certificate"),
    ),
    (
        "Region",
        Refused("a regional token endpoint serves certificate"),
    ),
    (
        "ManagedServiceIdentity",
        Refused("a managed identity cannot be set by a connection string"),
    ),
    (
        "Application Certificate Subject Distinguished Name",
        Refused(CERT),
    ),
    ("Application Certificate Subject", Refused(CERT)),
    (
        "Application Certificate Issuer Distinguished Name",
        Refused(CERT),
    ),
    ("Application Certificate Issuer", Refused(CERT)),
    // Python only.
    ("Application Certificate Blob", Refused(CERT)),
    (
        "dSTS Federated Security",
        Refused("dSTS authentication is not supported"),
    ),
    ("dstsfed", Refused("dSTS authentication is not supported")),
    (
        "dststokentype",
        Refused("dSTS authentication is not supported"),
    ),
    (
        "Data Source Uri",
        Refused("give the cluster URL as `Data Source`"),
    ),
    (
        "serveruri",
        Refused("give the cluster URL as `Data Source`"),
    ),
    (
        "clusteruri",
        Refused("give the cluster URL as `Data Source`"),
    ),
    ("Namespace", Refused("is not supported")),
    ("ns", Refused("is not supported")),
    // Client communication properties.
    ("Accept", Ignored(true)),
    ("Streaming", Ignored(true)),
    ("Uncompressed", Ignored(true)),
];

const CLIENT_ID: &str = "kw-client";
const CLIENT_SECRET: &str = "kw-secret";
const TENANT: &str = "kw-tenant";
const TOKEN: &str = "kw-token";

/// The logship table, client credentials only for `kw-client`/`kw-secret` in tenant
/// `kw-tenant`, and the static token `kw-token`.
fn keyword_receiver() -> KustoReceiver {
    receiver_builder()
        .with_client_credentials(CLIENT_ID, CLIENT_SECRET)
        .with_tenant(TENANT)
        .with_static_token(TOKEN)
        .start()
        .expect("receiver starts")
}

/// Builds a layer from `cs`, ships one event, and returns the streaming request that carried
/// it (panics with `what` when it was not delivered).
fn ship(r: &KustoReceiver, cs: &str, what: &str) -> StreamingRequest {
    let before = r.row_count(TABLE);
    let (layer, guard) = KustoLayer::from_connection_string(cs)
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .with_table(TABLE)
        .with_login_endpoint(r.url())
        .with_ingestion_mode(IngestionMode::Streaming)
        .with_pipeline(|p| p.with_linger(Duration::from_millis(20)))
        .build()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("keyword test");
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    let s = guard.stats();
    assert_eq!(s.delivered, 1, "{what}: {:?}", s.last_error);
    assert!(r.wait_for_rows(TABLE, before + 1, WAIT), "{what}");
    r.last_streaming_request().expect("a streaming request")
}

fn creds() -> String {
    format!(
        "AAD Federated Security=True;Application Client Id={CLIENT_ID};Application Key={CLIENT_SECRET};Authority Id={TENANT}"
    )
}

#[test]
fn every_accepted_keyword_lands_in_its_setting() {
    let r = keyword_receiver();
    let url = r.url().to_string();
    let base = format!("Data Source={url};Initial Catalog={DB}");
    for &(k, expect) in KEYWORDS {
        let what = format!("`{k}` ({expect:?})");
        match expect {
            DataSource => {
                ship(
                    &r,
                    &format!("{k}={url};Initial Catalog={DB};{}", creds()),
                    &what,
                );
            }
            Database => {
                // The receiver has only this database: another one is refused (EntityNotFound).
                let req = ship(
                    &r,
                    &format!("Data Source={url};{k}={DB};{}", creds()),
                    &what,
                );
                assert_eq!(req.database, DB, "{what}");
            }
            ClientId => {
                let tokens = r.stats().tokens_issued;
                ship(
                    &r,
                    &format!(
                        "{base};Fed=True;{k}={CLIENT_ID};Application Key={CLIENT_SECRET};Authority Id={TENANT}"
                    ),
                    &what,
                );
                assert_eq!(r.stats().tokens_issued, tokens + 1, "{what}");
            }
            AppKey => {
                let tokens = r.stats().tokens_issued;
                ship(
                    &r,
                    &format!(
                        "{base};Fed=True;Application Client Id={CLIENT_ID};{k}={CLIENT_SECRET};Authority Id={TENANT}"
                    ),
                    &what,
                );
                assert_eq!(r.stats().tokens_issued, tokens + 1, "{what}");
            }
            Authority => {
                // The token endpoint only answers for tenant `kw-tenant`.
                let tokens = r.stats().tokens_issued;
                ship(
                    &r,
                    &format!(
                        "{base};Fed=True;Application Client Id={CLIENT_ID};Application Key={CLIENT_SECRET};{k}={TENANT}"
                    ),
                    &what,
                );
                assert_eq!(r.stats().tokens_issued, tokens + 1, "{what}");
            }
            Token => {
                let tokens = r.stats().tokens_issued;
                let req = ship(&r, &format!("{base};Fed=True;{k}={TOKEN}"), &what);
                assert_eq!(
                    req.header("authorization"),
                    Some(format!("Bearer {TOKEN}").as_str()),
                    "{what}"
                );
                assert_eq!(
                    r.stats().tokens_issued,
                    tokens,
                    "{what}: no token was fetched"
                );
            }
            AppName => {
                let req = ship(&r, &format!("{base};{};{k}=kw-app", creds()), &what);
                assert_eq!(req.header("x-ms-app"), Some("kw-app"), "{what}");
            }
            UserName => {
                let req = ship(&r, &format!("{base};{};{k}=kw-user", creds()), &what);
                assert_eq!(req.header("x-ms-user"), Some("kw-user"), "{what}");
            }
            Federated => {
                ship(
                    &r,
                    &format!(
                        "{base};{k}=True;Application Client Id={CLIENT_ID};Application Key={CLIENT_SECRET};Authority Id={TENANT}"
                    ),
                    &what,
                );
                // False together with credentials, and True without any, both name the setting.
                let e = KustoLayer::from_connection_string(&format!(
                    "{base};{k}=False;AppToken={TOKEN}"
                ))
                .expect_err(&what);
                assert!(
                    e.to_string().contains("AAD Federated Security"),
                    "{what}: {e}"
                );
                let e = KustoLayer::from_connection_string(&format!("{base};{k}=True"))
                    .expect(&what)
                    .with_table(TABLE)
                    .build()
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                assert!(
                    e.contains("`AAD Federated Security` is True but no credentials"),
                    "{what}: {e}"
                );
            }
            Ignored(boolean) => {
                let value = if boolean { "true" } else { "weakconsistency" };
                ship(&r, &format!("{base};{};{k}={value}", creds()), &what);
                if boolean {
                    let e = KustoLayer::from_connection_string(&format!("{base};{k}=perhaps"))
                        .expect_err(&what);
                    assert_eq!(
                        e,
                        ConnectionStringError::InvalidValue {
                            keyword: k.to_string(),
                            value: "perhaps".into(),
                            expected: "expected true or false",
                        },
                        "{what}"
                    );
                }
            }
            Refused(_) => {}
        }
    }
}

#[test]
fn every_refused_keyword_says_why() {
    for &(k, expect) in KEYWORDS {
        let Refused(reason) = expect else { continue };
        let e = KustoLayer::from_connection_string(&format!(
            "Data Source=https://c.kusto.windows.net;Initial Catalog=db;{k}=x"
        ))
        .expect_err(k);
        match &e {
            ConnectionStringError::Unsupported { keyword, hint } => {
                assert_eq!(keyword, k);
                assert!(hint.contains(reason), "`{k}`: {hint}");
            }
            other => panic!("`{k}`: {other:?}"),
        }
        let msg = e.to_string();
        assert!(msg.contains(&format!("`{k}`")), "{msg}");
        assert!(!msg.contains("=x"), "the value is not shown: {msg}");
    }
}

#[test]
fn the_unknown_keyword_error_lists_only_accepted_keywords() {
    let e = KustoLayer::from_connection_string("Data Source=https://x;Bogus=1").expect_err("bogus");
    let msg = e.to_string();
    let accepted = msg
        .split_once("accepted: ")
        .map(|(_, list)| list.to_string())
        .unwrap_or_default();
    for name in [
        "Data Source",
        "Initial Catalog",
        "AAD Federated Security",
        "Application Client Id",
        "Application Key",
        "Authority Id",
        "Application Token",
        "User Token",
        "Application Name for Tracing",
        "User Name for Tracing",
    ] {
        assert!(accepted.contains(name), "{name} missing: {msg}");
    }
    // Every keyword the message lists is accepted, and none of the refused ones is listed.
    let listed: Vec<&str> = accepted
        .split([',', ';'])
        .map(|s| s.trim().trim_start_matches("ignored:").trim())
        .filter(|s| !s.is_empty())
        .collect();
    assert!(listed.len() >= 10, "{listed:?}");
    for &(k, expect) in KEYWORDS {
        if let Refused(_) = expect {
            assert!(
                !listed.iter().any(|l| l.eq_ignore_ascii_case(k)),
                "refused `{k}` is listed: {msg}"
            );
        }
    }
    for name in listed {
        let cs = format!(
            "Data Source=https://c.kusto.windows.net;Initial Catalog=db;{name}={}",
            if [
                "Accept",
                "Streaming",
                "Uncompressed",
                "AAD Federated Security"
            ]
            .contains(&name)
            {
                "true"
            } else {
                "v"
            }
        );
        match KustoLayer::from_connection_string(&cs) {
            Ok(_)
            | Err(ConnectionStringError::Missing { .. })
            | Err(ConnectionStringError::Duplicate { .. }) => {}
            Err(e) => panic!("listed `{name}` is not accepted: {e}"),
        }
    }
}

#[test]
fn the_leading_uri_form_names_data_source_and_database() {
    let r = keyword_receiver();
    // `https://help.kusto.windows.net/Samples; Fed=true` in the documentation's own words.
    let req = ship(
        &r,
        &format!("{}/{DB}; Fed=true; Accept=true; AppToken={TOKEN}", r.url()),
        "leading URI",
    );
    assert_eq!(req.database, DB);
    // `Initial Catalog` wins over the path.
    let req = ship(
        &r,
        &format!("{}/Other; Initial Catalog={DB}; AppToken={TOKEN}", r.url()),
        "leading URI with Initial Catalog",
    );
    assert_eq!(req.database, DB);
}
