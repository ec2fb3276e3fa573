//! The Kusto receiver over real sockets: AAD token flow and expiry, streaming ingestion
//! (gzip, formats, mappings, the 4 MiB limit), every scripted fault, control commands,
//! queued ingestion by hand (blob PUT + queue message), and the official Python client.
#![cfg(feature = "kusto")]

use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine as _;
use logship_testkit::kusto::{
    KustoReceiver, READY_QUEUE, SizeBasis, StreamingFault, TEMP_CONTAINER,
};
use logship_testkit::peers;
use serde_json::{Value, json};

const DB: &str = "logs";
const WAIT: Duration = Duration::from_secs(10);

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The OneApi error object, checked for the documented shape.
    fn oneapi(&self) -> Value {
        let v = self.json();
        let e = v.get("error").cloned().unwrap_or(Value::Null);
        for key in ["code", "message", "@type", "@message", "@permanent"] {
            assert!(
                e.get(key).is_some(),
                "OneApi error without {key}: {}",
                self.body
            );
        }
        e
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Resp {
    let a = agent();
    let mut resp = match (method, body) {
        ("GET", _) => {
            let mut r = a.get(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        (m, body) => {
            let mut r = if m == "PUT" { a.put(url) } else { a.post(url) };
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.send(body.unwrap_or(&[]))
        }
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

fn fetch_token(r: &KustoReceiver, id: &str, secret: &str, scope: &str) -> Resp {
    let form = format!(
        "client_id={id}&grant_type=client_credentials&client_secret={secret}&scope={}&client_info=1",
        scope.replace(':', "%3A").replace('/', "%2F")
    );
    request(
        "POST",
        &r.token_url("tenant-1"),
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(form.as_bytes()),
    )
}

/// Streams `body` (gzip when `compress`) with all telemetry headers and `token`.
fn stream(
    r: &KustoReceiver,
    token: &str,
    table: &str,
    query: &str,
    body: &[u8],
    compress: bool,
) -> Resp {
    let url = format!("{}/v1/rest/ingest/{DB}/{table}?{query}", r.url());
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        (
            "x-ms-client-request-id",
            "KPC.executeStreamingIngest;7f0c1e9a-0000-4000-8000-000000000001",
        ),
        ("x-ms-app", "kusto_receiver_test"),
        ("x-ms-user", "tester"),
        ("x-ms-client-version", "Kusto.Rust.Test:{0.1.0}"),
        ("x-ms-version", "2024-12-12"),
        ("accept", "application/json"),
    ];
    let data;
    let body = if compress {
        headers.push(("content-encoding", "gzip"));
        data = gzip(body);
        &data[..]
    } else {
        body
    };
    request("POST", &url, &headers, Some(body))
}

fn mgmt(r: &KustoReceiver, token: &str, db: &str, csl: &str) -> Resp {
    let body = json!({"db": db, "csl": csl}).to_string();
    let auth = format!("Bearer {token}");
    request(
        "POST",
        &format!("{}/v1/rest/mgmt", r.url()),
        &[
            ("authorization", &auth),
            ("content-type", "application/json; charset=utf-8"),
            ("x-ms-client-request-id", "KPC.execute;1"),
        ],
        Some(body.as_bytes()),
    )
}

/// Rows of the first table of a v1 dataset as objects keyed by column name.
fn v1_rows(v: &Value) -> Vec<Value> {
    let t = &v["Tables"][0];
    let cols: Vec<String> = t["Columns"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| c["ColumnName"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    t["Rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    let mut o = serde_json::Map::new();
                    for (i, c) in cols.iter().enumerate() {
                        o.insert(c.clone(), row[i].clone());
                    }
                    Value::Object(o)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn events_receiver() -> KustoReceiver {
    events_builder().start().expect("start receiver")
}

/// `events_builder` reading JSON without a mapping by the identity mapping (the receiver
/// refuses it by default, as the streaming ingestion REST documentation says).
fn events_identity_receiver() -> KustoReceiver {
    events_builder()
        .with_streaming_identity_mapping(true)
        .start()
        .expect("start receiver")
}

/// A receiver builder that streams JSON without a mapping (identity mapping), for the tests
/// about something else.
fn identity_builder() -> logship_testkit::kusto::KustoReceiverBuilder {
    KustoReceiver::builder().with_streaming_identity_mapping(true)
}

fn events_builder() -> logship_testkit::kusto::KustoReceiverBuilder {
    KustoReceiver::builder()
        .with_table(DB, "Events", &[("Level", "string"), ("Message", "string"), ("Count", "long")])
        .with_command(
            DB,
            r#".create-or-alter table Events ingestion json mapping "events_json" '[{"column":"Level","path":"$.level","datatype":"string"},{"column":"Message","path":"$.fields.message"},{"column":"Count","path":"$.n","datatype":"long"}]'"#,
        )
}

#[test]
fn auth_metadata_advertises_the_receiver_as_login_endpoint() {
    let r = identity_builder()
        .with_service_resource_id("https://kusto.example.invalid")
        .start()
        .expect("start");
    let m = request(
        "GET",
        &format!("{}/v1/rest/auth/metadata", r.url()),
        &[],
        None,
    );
    assert_eq!(m.status, 200);
    let aad = &m.json()["AzureAD"];
    assert_eq!(aad["LoginEndpoint"], json!(r.url()));
    assert_eq!(aad["LoginMfaRequired"], json!(false));
    assert_eq!(
        aad["KustoServiceResourceId"],
        json!("https://kusto.example.invalid")
    );
    assert!(aad["KustoClientAppId"].is_string() && aad["FirstPartyAuthorityUrl"].is_string());

    let off = identity_builder()
        .with_auth_metadata(false)
        .start()
        .expect("start");
    assert_eq!(
        request(
            "GET",
            &format!("{}/v1/rest/auth/metadata", off.url()),
            &[],
            None
        )
        .status,
        404
    );
}

#[test]
fn client_credentials_token_flow_and_refusals() {
    let r = identity_builder()
        .with_client_credentials("app-1", "s3cret")
        .with_token_lifetime(Duration::from_secs(120))
        .with_auto_create(true)
        .start()
        .expect("start");

    let ok = fetch_token(
        &r,
        "app-1",
        "s3cret",
        "https://kusto.kusto.windows.net/.default",
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let t = ok.json();
    assert_eq!(t["token_type"], json!("Bearer"));
    assert_eq!(t["expires_in"], json!(120));
    let token = t["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    // The cluster URL is accepted as resource too.
    assert_eq!(
        fetch_token(&r, "app-1", "s3cret", &format!("{}/.default", r.url())).status,
        200
    );

    let bad_secret = fetch_token(
        &r,
        "app-1",
        "wrong",
        "https://kusto.kusto.windows.net/.default",
    );
    assert_eq!(bad_secret.status, 401);
    assert_eq!(bad_secret.json()["error"], json!("invalid_client"));
    assert_eq!(bad_secret.json()["error_codes"], json!([7000215]));
    let bad_id = fetch_token(
        &r,
        "nobody",
        "s3cret",
        "https://kusto.kusto.windows.net/.default",
    );
    assert_eq!(bad_id.status, 400);
    assert_eq!(bad_id.json()["error"], json!("unauthorized_client"));
    let bad_scope = fetch_token(&r, "app-1", "s3cret", "https://kusto.kusto.windows.net");
    assert_eq!(bad_scope.status, 400);
    assert_eq!(bad_scope.json()["error"], json!("invalid_scope"));

    assert_eq!(
        stream(&r, &token, "T", "streamFormat=json", b"{\"a\":1}\n", true).status,
        200
    );
    let no_token = stream(
        &r,
        "not-issued-here",
        "T",
        "streamFormat=json",
        b"{\"a\":1}\n",
        true,
    );
    assert_eq!(no_token.status, 401);
    assert!(
        no_token
            .header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer"))
    );

    let s = r.stats();
    assert_eq!(
        (s.tokens_issued, s.token_failures, s.auth_failures),
        (2, 3, 1)
    );
    assert_eq!(r.row_count("T"), 1);
}

#[test]
fn issued_tokens_expire_after_their_lifetime() {
    // Every bound is measured from `requested`, taken before the token request: the receiver
    // starts the lifetime when it issues the token, which is later. (The clock used to start
    // after the token came back, so a slow response made a correct expiry look early.) On a
    // loaded machine the first use may come after the lifetime; such a try proves nothing
    // about acceptance, so the next one uses a longer lifetime.
    for lifetime in [300, 1_000, 3_000, 10_000].map(Duration::from_millis) {
        let r = identity_builder()
            .with_token_lifetime(lifetime)
            .with_auto_create(true)
            .start()
            .expect("start");
        let requested = Instant::now();
        let t = fetch_token(
            &r,
            "logship-test-app",
            "logship-test-secret",
            "https://kusto.kusto.windows.net/.default",
        );
        let token = t.json()["access_token"]
            .as_str()
            .expect("token")
            .to_string();
        let first = stream(&r, &token, "T", "streamFormat=json", b"{\"a\":1}", false);
        if first.status != 200 {
            // Refused at first use: only allowed once its lifetime has passed.
            assert_eq!(first.status, 401, "{}", first.body);
            assert!(
                requested.elapsed() >= lifetime,
                "token refused before its lifetime ({lifetime:?}): {}",
                first.body
            );
            continue;
        }
        // Poll (with a deadline past the lifetime) until the token is refused as expired; it
        // must not be before its lifetime.
        let mut last = None;
        let expired = logship_testkit::wait_until(lifetime + WAIT, || {
            let resp = stream(&r, &token, "T", "streamFormat=json", b"{\"a\":1}", false);
            let refused = resp.status == 401;
            last = Some(resp);
            refused
        });
        let refused_at = requested.elapsed();
        let last = last.expect("polled at least once");
        assert!(expired, "token still accepted, last status {}", last.status);
        assert!(
            last.body.contains("expired"),
            "refused, but not as expired: {}",
            last.body
        );
        assert!(
            refused_at >= lifetime,
            "token refused after {refused_at:?}, before its lifetime ({lifetime:?})"
        );
        let fresh = r.mint_token();
        assert_eq!(
            stream(&r, &fresh, "T", "streamFormat=json", b"{\"a\":1}", false).status,
            200
        );
        return;
    }
    panic!(
        "every try took longer than the token's lifetime (10 s at most) from issue to first use"
    );
}

#[test]
fn expire_all_tokens_and_scripted_401s() {
    let r = identity_builder()
        .with_static_token("static-tok")
        .with_auto_create(true)
        .start()
        .expect("start");
    let minted = r.mint_token();
    assert_eq!(
        stream(&r, &minted, "T", "streamFormat=json", b"{\"a\":1}", true).status,
        200
    );
    assert_eq!(
        stream(
            &r,
            "static-tok",
            "T",
            "streamFormat=json",
            b"{\"a\":1}",
            true
        )
        .status,
        200
    );

    r.unauthorized_next(2);
    assert_eq!(
        stream(&r, &minted, "T", "streamFormat=json", b"{\"a\":1}", true).status,
        401
    );
    assert_eq!(mgmt(&r, &minted, DB, ".show tables").status, 401);
    assert_eq!(
        stream(&r, &minted, "T", "streamFormat=json", b"{\"a\":1}", true).status,
        200
    );

    r.expire_all_tokens();
    for tok in [minted.as_str(), "static-tok"] {
        let resp = stream(&r, tok, "T", "streamFormat=json", b"{\"a\":1}", true);
        assert_eq!(resp.status, 401);
        assert!(
            resp.oneapi()["@message"]
                .as_str()
                .is_some_and(|m| m.contains("expired"))
        );
    }
    let again = r.mint_token();
    assert_eq!(
        stream(&r, &again, "T", "streamFormat=json", b"{\"a\":1}", true).status,
        200
    );
    assert_eq!(r.stats().auth_failures, 4);
    assert_eq!(r.row_count("T"), 4);
}

#[test]
fn streaming_gzip_multijson_with_a_mapping_fills_named_columns() {
    let r = events_receiver();
    let token = r.mint_token();
    let body = concat!(
        "{\"level\":\"INFO\",\"fields\":{\"message\":\"hello\"},\"n\":1,\"extra\":true}\n",
        "{\n  \"level\": \"WARN\",\n  \"fields\": {\"message\": \"multi\\nline\"},\n  \"n\": \"2\"\n}\n",
        "{\"level\":\"ERROR\",\"fields\":{},\"n\":3.9}"
    );
    let resp = stream(
        &r,
        &token,
        "Events",
        "streamFormat=multijson&mappingName=events_json",
        body.as_bytes(),
        true,
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(v1_rows(&resp.json())[0]["ConsumedRecordsCount"], json!(3));
    assert!(r.wait_for_rows("Events", 3, WAIT));
    assert_eq!(
        r.rows("Events"),
        vec![
            json!({"Level":"INFO","Message":"hello","Count":1}),
            json!({"Level":"WARN","Message":"multi\nline","Count":2}),
            json!({"Level":"ERROR","Message":null,"Count":3}),
        ]
    );
    let req = r.last_streaming_request().expect("recorded");
    assert_eq!((req.database.as_str(), req.table.as_str()), (DB, "Events"));
    assert_eq!(req.stream_format.as_deref(), Some("multijson"));
    assert_eq!(req.mapping_name.as_deref(), Some("events_json"));
    assert_eq!(req.header("x-ms-app"), Some("kusto_receiver_test"));
    assert_eq!(req.header("content-encoding"), Some("gzip"));
    assert_eq!(req.uncompressed_bytes, body.len());
    assert_eq!(req.status, 200);
    let s = r.stats();
    assert_eq!(
        (s.streaming_requests, s.streaming_accepted, s.streaming_rows),
        (1, 1, 3)
    );
    assert_eq!(s.bytes_uncompressed, body.len() as u64);
    assert_eq!(s.bytes_wire, req.wire_bytes as u64);
    assert_ne!(req.wire_bytes, body.len());
}

#[test]
fn streaming_json_without_a_mapping_is_refused_as_the_rest_doc_says() {
    // https://learn.microsoft.com/kusto/api/rest/streaming-ingest: `mappingName` is
    // "Optional, but Required if streamFormat is one of JSON, MultiJSON, or Avro".
    let r = events_receiver();
    let token = r.mint_token();
    for format in ["json", "multijson", "singlejson", "MultiJSON"] {
        let resp = stream(
            &r,
            &token,
            "Events",
            &format!("streamFormat={format}"),
            b"{\"Level\":\"INFO\"}\n",
            true,
        );
        assert_eq!(resp.status, 400, "{format}: {}", resp.body);
        let e = resp.oneapi();
        assert_eq!(
            e["code"],
            json!("BadRequest_MappingReferenceRequired"),
            "{format}"
        );
        assert_eq!(e["@permanent"], json!(true));
        assert!(
            e["@message"].as_str().unwrap_or("").contains("mappingName"),
            "{e}"
        );
    }
    // CSV needs no mapping (ordinals by column order).
    assert_eq!(
        stream(
            &r,
            &token,
            "Events",
            "streamFormat=csv",
            b"INFO,a,1\n",
            true
        )
        .status,
        200
    );
    assert_eq!(r.row_count("Events"), 1);
    assert_eq!(r.stats().streaming_rows, 1);
}

#[test]
fn identity_mapping_json_lines_and_csv_without_compression() {
    // The service as its clients report it: JSON without a mapping by the identity mapping.
    let r = events_builder()
        .with_streaming_identity_mapping(true)
        .start()
        .expect("start receiver");
    let token = r.mint_token();
    let lines = b"{\"Level\":\"INFO\",\"Message\":\"a\",\"Count\":1,\"Unknown\":1}\n\n{\"Level\":\"DEBUG\",\"Count\":\"x\"}\n";
    assert_eq!(
        stream(&r, &token, "Events", "streamFormat=json", lines, false).status,
        200
    );
    let csv = b"WARN,\"quoted, \"\"text\"\"\",7\r\nINFO,,\n";
    assert_eq!(
        stream(&r, &token, "Events", "streamFormat=csv", csv, true).status,
        200
    );
    assert_eq!(
        r.rows_in(DB, "Events"),
        vec![
            json!({"Level":"INFO","Message":"a","Count":1}),
            json!({"Level":"DEBUG","Message":null,"Count":null}),
            json!({"Level":"WARN","Message":"quoted, \"text\"","Count":7}),
            json!({"Level":"INFO","Message":"","Count":null}),
        ]
    );
    // A json record that is not even JSON: rejected whole, nothing stored.
    let bad = stream(
        &r,
        &token,
        "Events",
        "streamFormat=json",
        b"{\"Level\":\"x\"}\nnot json\n",
        false,
    );
    assert_eq!(bad.status, 400);
    assert_eq!(bad.oneapi()["@permanent"], json!(true));
    assert_eq!(r.row_count("Events"), 4);
}

#[test]
fn mapping_references_are_checked() {
    let r = events_receiver();
    let token = r.mint_token();
    let unknown = stream(
        &r,
        &token,
        "Events",
        "streamFormat=multijson&mappingName=nope",
        b"{}",
        true,
    );
    assert_eq!(unknown.status, 400);
    let e = unknown.oneapi();
    assert_eq!(e["code"], json!("BadRequest_InvalidMappingReference"));
    assert_eq!(e["@permanent"], json!(true));
    // A json mapping cannot be used for csv data.
    let kind = stream(
        &r,
        &token,
        "Events",
        "streamFormat=csv&mappingName=events_json",
        b"a,b,1",
        true,
    );
    assert_eq!(kind.status, 400);
    assert_eq!(
        kind.oneapi()["code"],
        json!("BadRequest_InvalidMappingReference")
    );
    assert_eq!(
        r.mappings(DB, "Events"),
        vec![("json".to_string(), "events_json".to_string())]
    );
    assert_eq!(r.row_count("Events"), 0);
}

#[test]
fn request_checks_format_headers_entities_and_encoding() {
    let r = events_identity_receiver();
    let token = r.mint_token();
    let no_format = stream(&r, &token, "Events", "", b"{}", true);
    assert_eq!(
        (no_format.status, no_format.oneapi()["code"].clone()),
        (400, json!("BadRequest_MissingStreamFormat"))
    );
    let avro = stream(&r, &token, "Events", "streamFormat=avro", b"{}", true);
    assert_eq!(
        avro.oneapi()["code"],
        json!("BadRequest_FormatNotSupported")
    );
    let missing_table = stream(&r, &token, "Nope", "streamFormat=json", b"{}", true);
    assert_eq!(missing_table.status, 400);
    assert_eq!(
        missing_table.oneapi()["code"],
        json!("BadRequest_EntityNotFound")
    );

    let not_gzip = request(
        "POST",
        &format!("{}/v1/rest/ingest/{DB}/Events?streamFormat=json", r.url()),
        &[
            ("authorization", &format!("Bearer {token}")),
            ("content-encoding", "gzip"),
            ("x-ms-client-request-id", "id"),
            ("x-ms-app", "a"),
            ("x-ms-user", "u"),
            ("x-ms-client-version", "v"),
            ("x-ms-version", "2024-12-12"),
        ],
        Some(b"{\"Level\":\"x\"}"),
    );
    assert_eq!(
        (not_gzip.status, not_gzip.oneapi()["code"].clone()),
        (400, json!("BadRequest_InvalidArchive"))
    );

    let bare = request(
        "POST",
        &format!("{}/v1/rest/ingest/{DB}/Events?streamFormat=json", r.url()),
        &[("authorization", &format!("Bearer {token}"))],
        Some(b"{\"Level\":\"x\"}"),
    );
    assert_eq!(bare.status, 400);
    let msg = bare.oneapi()["@message"].as_str().unwrap_or("").to_string();
    for h in [
        "x-ms-client-request-id",
        "x-ms-app",
        "x-ms-user",
        "x-ms-client-version",
        "x-ms-version",
    ] {
        assert!(msg.contains(h), "{msg}");
    }
    let lenient = identity_builder()
        .with_strict_client_headers(false)
        .with_require_auth(false)
        .with_auto_create(true)
        .start()
        .expect("start");
    let ok = request(
        "POST",
        &format!(
            "{}/v1/rest/ingest/{DB}/Auto?streamFormat=json",
            lenient.url()
        ),
        &[],
        Some(b"{\"any\":\"thing\"}"),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(lenient.rows("Auto"), vec![json!({"any":"thing"})]);
    assert_eq!(r.row_count("Events"), 0);
    assert_eq!(r.stats().streaming_requests, 5);
}

/// JSON lines of exactly `n` × 1024 bytes.
fn kib_lines(n: usize) -> Vec<u8> {
    let line = format!("{{\"Message\":\"{}\"}}\n", "x".repeat(1024 - 15));
    assert_eq!(line.len(), 1024);
    line.repeat(n).into_bytes()
}

#[test]
fn four_mib_limit_on_the_uncompressed_body() {
    let r = identity_builder()
        .with_table(DB, "Big", &[("Message", "string")])
        .start()
        .expect("start");
    let token = r.mint_token();
    let exact = kib_lines(4096);
    assert_eq!(exact.len(), 4 * 1024 * 1024);
    let ok = stream(&r, &token, "Big", "streamFormat=json", &exact, true);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let mut over = exact.clone();
    over.push(b'\n');
    let too_big = stream(&r, &token, "Big", "streamFormat=json", &over, true);
    assert_eq!(too_big.status, 400);
    let e = too_big.oneapi();
    assert_eq!(
        e["code"],
        json!("BadRequest_StreamingIngestionRequestSizeLimitExceeded")
    );
    assert_eq!(e["@permanent"], json!(true));
    assert_eq!(r.row_count("Big"), 4096);

    // Measured on the wire instead, the same (well-compressing) body passes.
    let wire = identity_builder()
        .with_table(DB, "Big", &[("Message", "string")])
        .with_max_streaming_bytes(64 * 1024, SizeBasis::Wire)
        .start()
        .expect("start");
    let token = wire.mint_token();
    assert_eq!(
        stream(&wire, &token, "Big", "streamFormat=json", &over, true).status,
        200
    );
    let refused = stream(
        &wire,
        &token,
        "Big",
        "streamFormat=json",
        &kib_lines(65),
        false,
    );
    assert_eq!(refused.status, 400);
    assert_eq!(wire.row_count("Big"), 4096);
}

#[test]
fn scripted_faults_then_recovery() {
    let r = events_identity_receiver();
    let token = r.mint_token();
    let body = b"{\"Level\":\"INFO\"}";
    let send = || stream(&r, &token, "Events", "streamFormat=json", body, true);

    r.throttle_next(2, Duration::from_millis(1500));
    for _ in 0..2 {
        let t = send();
        assert_eq!(t.status, 429);
        assert_eq!(t.header("retry-after"), Some("2"));
        assert_eq!(t.oneapi()["@permanent"], json!(false));
    }
    r.fail_next_streaming(1, StreamingFault::Transient { status: 503 });
    let transient = send();
    assert_eq!(
        (transient.status, transient.oneapi()["@permanent"].clone()),
        (503, json!(false))
    );
    r.fail_next_streaming(1, StreamingFault::Permanent);
    let permanent = send();
    assert_eq!(
        (permanent.status, permanent.oneapi()["@permanent"].clone()),
        (400, json!(true))
    );
    r.fail_next_streaming(1, StreamingFault::Unauthorized);
    assert_eq!(send().status, 401);
    assert_eq!(send().status, 200);

    r.set_streaming_enabled(false);
    let disabled = send();
    assert_eq!(disabled.status, 404);
    assert!(
        disabled.oneapi()["@message"]
            .as_str()
            .is_some_and(|m| m.contains("streaming ingestion is not enabled"))
    );
    r.set_streaming_enabled(true);

    r.set_delay(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(send().status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    r.throttle_next(5, Duration::from_secs(1));
    r.clear_faults();
    assert_eq!(send().status, 200);

    let s = r.stats();
    assert_eq!(
        (
            s.throttled,
            s.auth_failures,
            s.streaming_requests,
            s.streaming_accepted
        ),
        (2, 1, 9, 3)
    );
    assert_eq!(r.row_count("Events"), 3);
    let statuses: Vec<u16> = r.streaming_requests().iter().map(|q| q.status).collect();
    assert_eq!(statuses, [429, 429, 503, 400, 401, 200, 404, 200, 200]);
}

#[test]
fn control_commands() {
    let r = identity_builder().with_database(DB).start().expect("start");
    let token = r.mint_token();
    let created = mgmt(
        &r,
        &token,
        DB,
        ".create-merge table ['App Logs'] (Timestamp:datetime, Level:string)",
    );
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(v1_rows(&created.json())[0]["TableName"], json!("App Logs"));
    assert_eq!(
        mgmt(
            &r,
            &token,
            DB,
            ".create-merge table ['App Logs'] (Level:string, Count:long)"
        )
        .status,
        200
    );
    assert_eq!(
        r.columns(DB, "App Logs"),
        Some(vec![
            ("Timestamp".to_string(), "datetime".to_string()),
            ("Level".to_string(), "string".to_string()),
            ("Count".to_string(), "long".to_string()),
        ])
    );
    let clash = mgmt(
        &r,
        &token,
        DB,
        ".create-merge table ['App Logs'] (Level:long)",
    );
    assert_eq!(clash.status, 400);
    let mapping = mgmt(
        &r,
        &token,
        DB,
        ".create-or-alter table ['App Logs'] ingestion json mapping \"m\" ```[{\"column\":\"Level\",\"Properties\":{\"Path\":\"$.lvl\"}}]```",
    );
    assert_eq!(mapping.status, 200, "{}", mapping.body);
    assert_eq!(v1_rows(&mapping.json())[0]["Kind"], json!("Json"));
    let bad_mapping = mgmt(
        &r,
        &token,
        DB,
        ".create-or-alter table ['App Logs'] ingestion json mapping 'x' '[{\"column\":\"Level\"}]'",
    );
    assert_eq!(
        bad_mapping.oneapi()["code"],
        json!("BadRequest_InvalidMapping")
    );

    let tables = v1_rows(&mgmt(&r, &token, DB, ".show tables").json());
    assert_eq!(tables.len(), 1);
    assert_eq!(
        tables[0]["Schema"],
        json!("Timestamp:datetime, Level:string, Count:long")
    );

    let res = mgmt(&r, &token, "NetDefaultDB", ".get ingestion resources").json();
    assert_eq!(
        res["Tables"][0]["Columns"][0]["ColumnName"],
        json!("ResourceTypeName")
    );
    let rows = v1_rows(&res);
    let kinds: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["ResourceTypeName"].as_str())
        .collect();
    for k in [
        "SecuredReadyForAggregationQueue",
        "TempStorage",
        "FailedIngestionsQueue",
        "SuccessfulIngestionsQueue",
        "IngestionsStatusTable",
    ] {
        assert!(kinds.contains(&k), "{k} missing in {kinds:?}");
    }
    for row in &rows {
        let root = row["StorageRoot"].as_str().unwrap_or("");
        assert!(
            root.starts_with(r.url()) && root.contains(&format!("sig={}", r.sas_signature())),
            "{root}"
        );
    }
    let ident = v1_rows(&mgmt(&r, &token, "NetDefaultDB", ".get kusto identity token").json());
    assert_eq!(
        ident[0]["AuthorizationContext"],
        json!(r.authorization_context())
    );

    let syntax = mgmt(&r, &token, DB, ".frobnicate all the things");
    assert_eq!(
        (syntax.status, syntax.oneapi()["@permanent"].clone()),
        (400, json!(true))
    );
    let missing_db = mgmt(&r, &token, "nodb", ".show tables");
    assert_eq!(
        missing_db.oneapi()["code"],
        json!("BadRequest_EntityNotFound")
    );
    assert_eq!(mgmt(&r, "bogus", DB, ".show tables").status, 401);

    let cmds = r.mgmt_commands();
    assert_eq!(cmds.len(), 11);
    assert_eq!(
        cmds[0].csl,
        ".create-merge table ['App Logs'] (Timestamp:datetime, Level:string)"
    );
    assert_eq!(cmds[0].client_request_id.as_deref(), Some("KPC.execute;1"));
    assert_eq!(cmds.iter().filter(|c| c.status == 200).count(), 6);
    assert_eq!(r.stats().mgmt_commands, 11);
}

#[test]
fn query_reads_back_rows() {
    let r = events_identity_receiver();
    let token = r.mint_token();
    stream(
        &r,
        &token,
        "Events",
        "streamFormat=json",
        b"{\"Level\":\"A\"}\n{\"Level\":\"B\"}",
        true,
    );
    let body = json!({"db": DB, "csl": "Events | count"}).to_string();
    let auth = format!("Bearer {token}");
    let count = request(
        "POST",
        &format!("{}/v1/rest/query", r.url()),
        &[("authorization", &auth)],
        Some(body.as_bytes()),
    );
    assert_eq!(v1_rows(&count.json())[0]["Count"], json!(2));
    let body = json!({"db": DB, "csl": "Events | take 1"}).to_string();
    let take = request(
        "POST",
        &format!("{}/v1/rest/query", r.url()),
        &[("authorization", &auth)],
        Some(body.as_bytes()),
    );
    assert_eq!(
        v1_rows(&take.json()),
        vec![json!({"Level":"A","Message":null,"Count":null})]
    );
}

/// Storage roots from `.get ingestion resources`, by resource type.
fn storage_root(r: &KustoReceiver, token: &str, kind: &str) -> String {
    let res = mgmt(r, token, "NetDefaultDB", ".get ingestion resources").json();
    v1_rows(&res)
        .iter()
        .find(|row| row["ResourceTypeName"] == json!(kind))
        .and_then(|row| row["StorageRoot"].as_str().map(str::to_string))
        .expect("resource present")
}

fn enqueue(queue_root: &str, message: &Value) -> Resp {
    let (base, sas) = queue_root.split_once('?').expect("SAS query");
    let text = base64::engine::general_purpose::STANDARD.encode(message.to_string());
    let xml = format!(
        "<?xml version='1.0' encoding='utf-8'?>\n<QueueMessage><MessageText>{text}</MessageText></QueueMessage>"
    );
    request(
        "POST",
        &format!("{base}/messages?{sas}"),
        &[
            ("content-type", "application/xml"),
            ("x-ms-version", "2025-05-05"),
        ],
        Some(xml.as_bytes()),
    )
}

#[test]
fn queued_ingestion_by_hand() {
    let r = events_receiver();
    let token = r.mint_token();
    let container = storage_root(&r, &token, "TempStorage");
    let queue = storage_root(&r, &token, "SecuredReadyForAggregationQueue");
    assert!(container.contains(&format!("/blob/{TEMP_CONTAINER}?")));
    assert!(queue.contains(&format!("/queue/{READY_QUEUE}?")));
    let (cbase, csas) = container.split_once('?').expect("SAS");
    let blob_url = format!("{cbase}/{DB}__Events__0b9c__stream.gz?{csas}");
    let data = b"{\"level\":\"INFO\",\"fields\":{\"message\":\"queued\"},\"n\":5}\n{\"level\":\"WARN\",\"n\":6}\n";
    let blob_headers = [
        ("x-ms-blob-type", "BlockBlob"),
        ("x-ms-version", "2025-05-05"),
        ("content-type", "application/octet-stream"),
    ];

    let no_type = request("PUT", &blob_url, &blob_headers[1..], Some(&gzip(data)));
    assert_eq!(no_type.status, 400);
    assert!(no_type.body.contains("<Code>MissingRequiredHeader</Code>"));
    let bad_sig = request(
        "PUT",
        &blob_url.replace("sig=", "sig=x"),
        &blob_headers,
        Some(&gzip(data)),
    );
    assert_eq!(bad_sig.status, 403);
    let put = request("PUT", &blob_url, &blob_headers, Some(&gzip(data)));
    assert_eq!(put.status, 201, "{}", put.body);
    assert!(put.header("etag").is_some() && put.header("last-modified").is_some());
    assert_eq!(
        r.blobs()
            .get(&format!("{TEMP_CONTAINER}/{DB}__Events__0b9c__stream.gz")),
        Some(&gzip(data).len())
    );

    let message = json!({
        "BlobPath": blob_url,
        "DatabaseName": DB,
        "TableName": "Events",
        "RetainBlobOnSuccess": true,
        "FlushImmediately": false,
        "IgnoreSizeLimit": false,
        "ReportLevel": 1,
        "ReportMethod": 0,
        "SourceMessageCreationTime": "2026-01-01T00:00:00",
        "Id": "0b9c",
        "ApplicationForTracing": "test",
        "ClientVersionForTracing": "test",
        "AdditionalProperties": {
            "authorizationContext": r.authorization_context(),
            "ingestionMappingReference": "events_json",
            "ingestionMappingType": "Json",
            "format": "multijson"
        }
    });
    let queued = enqueue(&queue, &message);
    assert_eq!(queued.status, 201, "{}", queued.body);
    assert!(
        queued
            .body
            .contains("<QueueMessagesList><QueueMessage><MessageId>")
    );
    assert!(r.wait_for_rows("Events", 2, WAIT));
    assert_eq!(
        r.rows("Events"),
        vec![
            json!({"Level":"INFO","Message":"queued","Count":5}),
            json!({"Level":"WARN","Message":null,"Count":6}),
        ]
    );

    // A message the service cannot act on is accepted by the queue and fails later.
    let mut forged = message.clone();
    forged["AdditionalProperties"]["authorizationContext"] = json!("forged");
    assert_eq!(enqueue(&queue, &forged).status, 201);
    let mut missing = message.clone();
    missing["BlobPath"] = json!(blob_url.replace("0b9c", "none"));
    assert_eq!(enqueue(&queue, &missing).status, 201);

    let q = r.queued_ingestions();
    assert_eq!(q.len(), 3);
    assert_eq!(q[0].outcome, Ok(2));
    assert!(
        q[1].outcome
            .as_ref()
            .is_err_and(|e| e.contains("authorizationContext"))
    );
    assert!(
        q[2].outcome
            .as_ref()
            .is_err_and(|e| e.contains("BlobNotFound"))
    );
    let s = r.stats();
    assert_eq!(
        (
            s.queued_ingestions,
            s.queued_failures,
            s.queued_rows,
            s.blobs_uploaded
        ),
        (1, 2, 2, 1)
    );
    assert_eq!(r.row_count("Events"), 2);
}

const OFFICIAL_CLIENT_SCRIPT: &str = r#"
import io, json, sys
from azure.kusto.data import KustoConnectionStringBuilder
from azure.kusto.data.data_format import DataFormat
from azure.kusto.data.exceptions import KustoApiError
from azure.kusto.ingest import (IngestionProperties, KustoStreamingIngestClient,
                                QueuedIngestClient, ManagedStreamingIngestClient)

mode, url, db, table, token = sys.argv[1:6]
kcsb = KustoConnectionStringBuilder.with_token_provider(url, lambda: token)
props = IngestionProperties(database=db, table=table, data_format=DataFormat.MULTIJSON,
                            ingestion_mapping_reference="events_json")

def lines(prefix, n):
    return "\n".join(json.dumps({"level": "INFO", "fields": {"message": f"{prefix} {i}"}, "n": i})
                     for i in range(n)).encode()

if mode == "basic":
    with KustoStreamingIngestClient(kcsb) as client:
        client.ingest_from_stream(io.BytesIO(lines("streamed", 3)), props)
    with QueuedIngestClient(kcsb) as client:
        print("queued:", client.ingest_from_stream(io.BytesIO(lines("queued", 2)), props).status)
else:
    client = ManagedStreamingIngestClient(kcsb, kcsb)
    client._set_retry_settings(max_seconds_per_retry=0.05)
    try:
        print("managed:", client.ingest_from_stream(io.BytesIO(lines("managed", 2)), props).status)
    except KustoApiError as e:
        print("permanent:", e.get_api_error().permanent)
        sys.exit(3)
print("OK")
"#;

fn run_official(
    python: &std::path::Path,
    mode: &str,
    r: &KustoReceiver,
    token: &str,
) -> std::process::Output {
    std::process::Command::new(python)
        .arg("-c")
        .arg(OFFICIAL_CLIENT_SCRIPT)
        .args([mode, r.url(), DB, "Events", token])
        .output()
        .expect("run python")
}

#[test]
fn official_python_client_streams_and_queues() {
    let Some(python) = peers::python("kusto_official_client") else {
        return;
    };
    let r = events_receiver();
    let t = fetch_token(
        &r,
        "logship-test-app",
        "logship-test-secret",
        "https://kusto.kusto.windows.net/.default",
    );
    let token = t.json()["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let out = run_official(&python, "basic", &r, &token);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "official client failed\nstdout: {stdout}\nstderr: {stderr}\nrequests: {:#?}\nqueued: {:#?}",
        r.streaming_requests(),
        r.queued_ingestions()
    );
    assert!(
        r.wait_for_rows("Events", 5, WAIT),
        "rows: {:?}",
        r.rows("Events")
    );
    let messages: Vec<String> = r
        .rows("Events")
        .iter()
        .map(|row| row["Message"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        messages,
        [
            "streamed 0",
            "streamed 1",
            "streamed 2",
            "queued 0",
            "queued 1"
        ]
    );

    let req = r.last_streaming_request().expect("streaming request");
    assert_eq!(req.status, 200);
    assert_eq!(req.stream_format.as_deref(), Some("multijson"));
    assert_eq!(req.header("content-encoding"), Some("gzip"));
    assert!(
        req.header("x-ms-client-request-id")
            .is_some_and(|v| v.starts_with("KPC.executeStreamingIngest;"))
    );
    assert!(
        req.header("x-ms-client-version")
            .is_some_and(|v| v.starts_with("Kusto.Python.Client"))
    );
    let q = r.queued_ingestions();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].outcome, Ok(2));
    assert_eq!(
        q[0].message["AdditionalProperties"]["format"],
        json!("multijson")
    );
    let csls: Vec<String> = r.mgmt_commands().into_iter().map(|c| c.csl).collect();
    assert!(
        csls.contains(&".get ingestion resources".to_string()),
        "{csls:?}"
    );
    assert!(
        csls.contains(&".get kusto identity token".to_string()),
        "{csls:?}"
    );
    assert_eq!(r.stats().blobs_uploaded, 1);
}

#[test]
fn official_managed_client_falls_back_to_queued_on_throttling_only() {
    let Some(python) = peers::python("kusto_official_client") else {
        return;
    };
    let r = events_receiver();
    let token = r.mint_token();
    // 429 on all three streaming attempts: the managed client falls back to queued ingestion.
    r.throttle_next(3, Duration::from_secs(1));
    let out = run_official(&python, "managed", &r, &token);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(r.wait_for_rows("Events", 2, WAIT));
    let ids: Vec<String> = r
        .streaming_requests()
        .iter()
        .map(|q| q.header("x-ms-client-request-id").unwrap_or("").to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    for (attempt, id) in ids.iter().enumerate() {
        assert!(
            id.starts_with("KPC.executeManagedStreamingIngest;")
                && id.ends_with(&format!(";{attempt}")),
            "{id}"
        );
    }
    assert_eq!(r.stats().throttled, 3);
    assert_eq!(r.queued_ingestions().len(), 1);
    assert_eq!(r.row_count("Events"), 2);

    // @permanent:true: three attempts, then the error is raised, no fallback.
    r.fail_next_streaming(3, StreamingFault::Permanent);
    let out = run_official(&python, "managed", &r, &token);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("permanent: True"));
    assert_eq!(r.streaming_requests().len(), 6);
    assert_eq!(r.queued_ingestions().len(), 1);
    assert_eq!(r.row_count("Events"), 2);
}
