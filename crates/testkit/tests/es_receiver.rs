//! The Elasticsearch `_bulk` receiver over real sockets (the Elasticsearch bulk API reference, <https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html>).
#![cfg(feature = "es")]
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine;
use logship_testkit::es::{EsAuth, EsReceiver};
use serde_json::{Value, json};

const NDJSON: &str = "application/x-ndjson";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Answer, ureq::Error> {
    let agent = agent();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let req = req.body(body.to_vec()).unwrap();
    let mut resp = agent.run(req)?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    Ok(Answer {
        status,
        headers,
        text,
    })
}

fn call(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    send(method, url, headers, body).unwrap()
}

fn bulk(es: &EsReceiver, body: &str) -> Answer {
    call(
        "POST",
        &format!("{}/_bulk", es.url()),
        &[("content-type", NDJSON)],
        body.as_bytes(),
    )
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn root_identifies_as_elasticsearch_8() {
    let es = EsReceiver::start().unwrap();
    let a = call("GET", &es.url(), &[], b"");
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-elastic-product"), Some("Elasticsearch"));
    assert_eq!(a.header("content-type"), Some("application/json"));
    let v = a.json();
    assert!(v["version"]["number"].as_str().unwrap().starts_with("8."));
    assert_eq!(v["tagline"], "You Know, for Search");
    let head = call("HEAD", &es.url(), &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.text, "");
    let c = es.counters();
    assert_eq!(c.requests, 2);
    assert_eq!(c.responses(200), 2);
}

#[test]
fn bulk_with_mixed_statuses_has_exact_item_shapes() {
    let es = EsReceiver::start().unwrap();
    let body = concat!(
        "{\"index\":{\"_index\":\"app\",\"_id\":\"1\"}}\n{\"msg\":\"one\"}\n",
        "{\"create\":{\"_index\":\"app\",\"_id\":\"2\"}}\n{\"msg\":\"two\"}\n",
        "{\"create\":{\"_index\":\"app\"}}\n{\"msg\":\"auto\"}\n",
        "{\"index\":{\"_index\":\"Bad\",\"_id\":\"x\"}}\n{\"msg\":\"bad\"}\n",
        "{\"index\":{\"_index\":\"app\",\"_id\":\"3\"}}\n[1,2]\n",
        "{\"update\":{\"_index\":\"app\",\"_id\":\"1\"}}\n{\"doc\":{\"extra\":true}}\n",
        "{\"update\":{\"_index\":\"app\",\"_id\":\"nope\"}}\n{\"doc\":{\"a\":1}}\n",
        "{\"delete\":{\"_index\":\"app\",\"_id\":\"2\"}}\n",
        "{\"delete\":{\"_index\":\"app\",\"_id\":\"missing\"}}\n",
    );
    let a = bulk(&es, body);
    assert_eq!(a.status, 200);
    // The top-level key order is Elasticsearch's.
    assert!(a.text.starts_with("{\"took\":"), "{}", a.text);
    let v = a.json();
    assert_eq!(v["errors"], true);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 9);
    let shards = json!({"total":2,"successful":1,"failed":0});
    assert_eq!(
        items[0],
        json!({"index":{"_index":"app","_id":"1","_version":1,"result":"created","_shards":shards,"_seq_no":0,"_primary_term":1,"status":201}})
    );
    assert_eq!(
        items[1],
        json!({"create":{"_index":"app","_id":"2","_version":1,"result":"created","_shards":shards,"_seq_no":1,"_primary_term":1,"status":201}})
    );
    let auto_id = items[2]["create"]["_id"].as_str().unwrap();
    assert_eq!(auto_id.len(), 20, "ES-style generated id: {auto_id}");
    assert_eq!(items[2]["create"]["status"], 201);
    assert_eq!(
        items[3],
        json!({"index":{"_index":"Bad","_id":"x","status":400,"error":{"type":"invalid_index_name_exception","reason":"Invalid index name [Bad], must be lowercase"}}})
    );
    assert_eq!(items[4]["index"]["status"], 400);
    assert_eq!(
        items[4]["index"]["error"]["type"],
        "document_parsing_exception"
    );
    assert_eq!(
        items[5],
        json!({"update":{"_index":"app","_id":"1","_version":2,"result":"updated","_shards":shards,"_seq_no":3,"_primary_term":1,"status":200}})
    );
    let missing = &items[6]["update"];
    assert_eq!(missing["status"], 404);
    assert_eq!(missing["error"]["type"], "document_missing_exception");
    assert_eq!(missing["error"]["reason"], "[nope]: document missing");
    assert_eq!(missing["error"]["shard"], "0");
    assert_eq!(missing["error"]["index"], "app");
    assert_eq!(
        items[7],
        json!({"delete":{"_index":"app","_id":"2","_version":2,"result":"deleted","_shards":shards,"_seq_no":4,"_primary_term":1,"status":200}})
    );
    assert_eq!(items[8]["delete"]["status"], 404);
    assert_eq!(items[8]["delete"]["result"], "not_found");
    assert!(items[8]["delete"].get("error").is_none());

    let docs = es.documents_in("app");
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].id, "1");
    assert_eq!(docs[0].version, 2);
    assert_eq!(docs[0].source, json!({"msg":"one","extra":true}));
    assert_eq!(docs[1].id, auto_id);
    assert_eq!(es.doc_count(), 2);
    assert_eq!(es.indices(), vec!["app".to_string()]);

    let c = es.counters();
    assert_eq!(c.bulk_requests, 1);
    assert_eq!(c.items("index", 201), 1);
    assert_eq!(c.items("index", 400), 2);
    assert_eq!(c.items("create", 201), 2);
    assert_eq!(c.items("update", 200), 1);
    assert_eq!(c.items("update", 404), 1);
    assert_eq!(c.items("delete", 200), 1);
    assert_eq!(c.items("delete", 404), 1);
    assert_eq!(c.items_total(), 9);
    assert_eq!(c.bytes_received, body.len() as u64);
    assert_eq!(c.bytes_decompressed, body.len() as u64);
}

#[test]
fn all_successful_bulk_reports_no_errors_and_uses_path_index() {
    let es = EsReceiver::start().unwrap();
    let body = "{\"index\":{}}\n{\"a\":1}\n\n{\"index\":{\"_id\":\"k\"}}\n{\"a\":2}\n";
    let a = call(
        "PUT",
        &format!("{}/path-idx/_bulk", es.url()),
        &[("content-type", NDJSON)],
        body.as_bytes(),
    );
    assert_eq!(a.status, 200);
    let v = a.json();
    assert_eq!(v["errors"], false);
    assert_eq!(v["items"][1]["index"]["_index"], "path-idx");
    assert!(es.wait_for_docs(2, Duration::from_secs(5)));
    assert_eq!(es.document("path-idx", "k").unwrap().source, json!({"a":2}));
}

#[test]
fn duplicate_create_is_refused_with_409() {
    let es = EsReceiver::start().unwrap();
    let line = "{\"create\":{\"_index\":\"dedup\",\"_id\":\"abc\"}}\n{\"n\":1}\n";
    assert_eq!(bulk(&es, line).json()["errors"], false);
    let again = bulk(&es, &line.replace("\"n\":1", "\"n\":2")).json();
    assert_eq!(again["errors"], true);
    let item = &again["items"][0]["create"];
    assert_eq!(item["status"], 409);
    assert_eq!(item["_id"], "abc");
    assert_eq!(item["error"]["type"], "version_conflict_engine_exception");
    assert_eq!(
        item["error"]["reason"],
        "[abc]: version conflict, document already exists (current version [1])"
    );
    assert_eq!(es.documents_in("dedup")[0].source, json!({"n":1}));
    let c = es.counters();
    assert_eq!(c.duplicates_refused, 1);
    assert_eq!(c.items("create", 409), 1);
    assert_eq!(c.items("create", 201), 1);
}

#[test]
fn data_streams_take_only_create_with_timestamp() {
    let es = EsReceiver::builder()
        .with_data_stream_pattern("ecs-*")
        .start()
        .unwrap();
    let body = concat!(
        "{\"index\":{\"_index\":\"metrics-app-default\"}}\n{\"@timestamp\":\"2024-01-01T00:00:00Z\"}\n",
        "{\"create\":{\"_index\":\"metrics-app-default\"}}\n{\"metric\":1}\n",
        "{\"create\":{\"_index\":\"metrics-app-default\"}}\n{\"@timestamp\":\"not a date\"}\n",
        "{\"create\":{\"_index\":\"metrics-app-default\"}}\n{\"@timestamp\":\"2020-06-11T10:15:30.123-0400\",\"metric\":2}\n",
        "{\"create\":{\"_index\":\"ecs-x\"}}\n{\"@timestamp\":1700000000000}\n",
        "{\"index\":{\"_index\":\"metrics-nodash\"}}\n{\"plain\":true}\n",
    );
    let v = bulk(&es, body).json();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items[0]["index"]["status"], 400);
    assert_eq!(items[0]["index"]["_index"], "metrics-app-default");
    assert_eq!(
        items[0]["index"]["error"]["type"],
        "illegal_argument_exception"
    );
    assert_eq!(
        items[0]["index"]["error"]["reason"],
        "only write ops with an op_type of create are allowed in data streams"
    );
    assert_eq!(items[1]["create"]["status"], 400);
    assert_eq!(
        items[1]["create"]["error"]["type"],
        "document_parsing_exception"
    );
    assert!(
        items[1]["create"]["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("[@timestamp] is missing")
    );
    assert_eq!(items[2]["create"]["status"], 400);
    assert_eq!(items[3]["create"]["status"], 201);
    let backing = items[3]["create"]["_index"].as_str().unwrap();
    assert!(
        backing.starts_with(".ds-metrics-app-default-") && backing.ends_with("-000001"),
        "{backing}"
    );
    assert_eq!(items[4]["create"]["status"], 201);
    assert_eq!(
        items[5]["index"]["status"], 201,
        "metrics-nodash does not match metrics-*-*"
    );
    assert_eq!(
        es.data_streams(),
        vec!["ecs-x".to_string(), "metrics-app-default".to_string()]
    );
    assert_eq!(es.documents_in("metrics-app-default").len(), 1);
    assert_eq!(es.doc_count(), 3);
}

#[test]
fn index_templates_are_stored_and_make_data_streams() {
    let es = EsReceiver::builder()
        .with_builtin_data_stream_templates(false)
        .start()
        .unwrap();
    let url = format!("{}/_index_template/mylogs", es.url());
    let json_ct = [("content-type", "application/json")];
    assert_eq!(call("HEAD", &url, &[], b"").status, 404);
    let missing = call("GET", &url, &[], b"");
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json()["error"]["root_cause"][0]["type"],
        "resource_not_found_exception"
    );
    let bad = call("PUT", &url, &json_ct, br#"{"priority":1}"#);
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.json()["error"]["reason"],
        "Validation Failed: 1: index patterns are missing;"
    );

    let template = json!({"index_patterns":["mylogs-*"],"data_stream":{},"priority":300});
    let put = call("PUT", &url, &json_ct, template.to_string().as_bytes());
    assert_eq!(put.status, 200);
    assert_eq!(put.json(), json!({"acknowledged":true}));
    assert_eq!(call("HEAD", &url, &[], b"").status, 200);
    assert_eq!(
        call("GET", &url, &[], b"").json(),
        json!({"index_templates":[{"name":"mylogs","index_template":template}]})
    );
    assert_eq!(es.templates().get("mylogs"), Some(&template));

    // Built-ins are off: logs-a-b is a plain index here.
    let v = bulk(
        &es,
        "{\"index\":{\"_index\":\"mylogs-1\"}}\n{\"@timestamp\":\"2024-01-01\"}\n{\"index\":{\"_index\":\"logs-a-b\"}}\n{}\n",
    )
    .json();
    assert_eq!(v["items"][0]["index"]["status"], 400);
    assert_eq!(v["items"][1]["index"]["status"], 201);
    assert_eq!(es.data_streams(), Vec::<String>::new());
    assert_eq!(call("DELETE", &url, &[], b"").status, 200);
    assert_eq!(call("HEAD", &url, &[], b"").status, 404);
}

#[test]
fn gzip_body_is_decompressed_and_both_sizes_counted() {
    let es = EsReceiver::start().unwrap();
    let mut body = String::new();
    for i in 0..50 {
        body.push_str(&format!("{{\"index\":{{\"_index\":\"gz\",\"_id\":\"{i}\"}}}}\n{{\"n\":{i},\"pad\":\"xxxxxxxxxxxxxxxx\"}}\n"));
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(body.as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let a = call(
        "POST",
        &format!("{}/_bulk", es.url()),
        &[("content-type", NDJSON), ("content-encoding", "gzip")],
        &gz,
    );
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["errors"], false);
    assert_eq!(es.doc_count(), 50);
    let c = es.counters();
    assert_eq!(c.compressed_requests, 1);
    assert_eq!(c.bytes_received, gz.len() as u64);
    assert_eq!(c.bytes_decompressed, body.len() as u64);
    assert_eq!(es.last_request().unwrap().body, body.as_bytes());
    assert_eq!(
        es.last_request().unwrap().header("content-encoding"),
        Some("gzip")
    );

    let broken = call(
        "POST",
        &format!("{}/_bulk", es.url()),
        &[("content-type", NDJSON), ("content-encoding", "gzip")],
        b"not gzip",
    );
    assert_eq!(broken.status, 400);
}

#[test]
fn missing_final_newline_is_a_400() {
    let es = EsReceiver::start().unwrap();
    let a = bulk(&es, "{\"index\":{\"_index\":\"a\"}}\n{\"x\":1}");
    assert_eq!(a.status, 400);
    let reason = "The bulk request must be terminated by a newline [\\n]";
    assert_eq!(
        a.json(),
        json!({"error":{"root_cause":[{"type":"illegal_argument_exception","reason":reason}],"type":"illegal_argument_exception","reason":reason},"status":400})
    );
    assert_eq!(es.doc_count(), 0);
    assert_eq!(es.counters().items_total(), 0);
    let unknown = bulk(&es, "{\"upsert\":{\"_index\":\"a\"}}\n{}\n");
    assert_eq!(unknown.status, 400);
    assert_eq!(bulk(&es, "").status, 400);
}

#[test]
fn content_types_follow_es_8() {
    let es = EsReceiver::start().unwrap();
    let body = b"{\"index\":{\"_index\":\"ct\"}}\n{}\n";
    let url = format!("{}/_bulk", es.url());
    let plain = call("POST", &url, &[("content-type", "text/plain")], body);
    assert_eq!(plain.status, 406);
    assert_eq!(
        plain.json(),
        json!({"error":"Content-Type header [text/plain] is not supported","status":406})
    );
    let none = call("POST", &url, &[], body);
    assert_eq!(none.status, 406);
    let json_ct = call("POST", &url, &[("content-type", "application/json")], body);
    assert_eq!(json_ct.status, 200);
    let vendor = call(
        "POST",
        &url,
        &[
            (
                "content-type",
                "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
            ),
            (
                "accept",
                "application/vnd.elasticsearch+json; compatible-with=8",
            ),
        ],
        body,
    );
    assert_eq!(vendor.status, 200);
    assert_eq!(
        vendor.header("content-type"),
        Some("application/vnd.elasticsearch+json;compatible-with=8")
    );
    let v9 = call(
        "POST",
        &url,
        &[(
            "content-type",
            "application/vnd.elasticsearch+x-ndjson; compatible-with=9",
        )],
        body,
    );
    assert_eq!(v9.status, 400);
    assert_eq!(es.doc_count(), 2);
    assert_eq!(es.counters().unsupported_media_type, 2);
}

#[test]
fn auth_modes() {
    let body = b"{\"index\":{\"_index\":\"auth\"}}\n{}\n";
    let ct = ("content-type", NDJSON);

    let es = EsReceiver::builder()
        .with_auth(EsAuth::basic("elastic", "changeme"))
        .start()
        .unwrap();
    let url = format!("{}/_bulk", es.url());
    let good = format!("Basic {}", b64("elastic:changeme"));
    let wrong = format!("Basic {}", b64("elastic:nope"));
    assert_eq!(
        call("POST", &url, &[ct, ("authorization", &good)], body).status,
        200
    );
    let denied = call("POST", &url, &[ct, ("authorization", &wrong)], body);
    assert_eq!(denied.status, 401);
    let v = denied.json();
    assert_eq!(v["status"], 401);
    assert_eq!(v["error"]["type"], "security_exception");
    assert_eq!(
        v["error"]["reason"],
        "unable to authenticate user [elastic] for REST request [/_bulk]"
    );
    assert_eq!(denied.header_all("www-authenticate").len(), 3);
    let anonymous = call("POST", &url, &[ct], body);
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.json()["error"]["root_cause"][0]["reason"],
        "missing authentication credentials for REST request [/_bulk]"
    );
    assert_eq!(call("GET", &es.url(), &[], b"").status, 401);
    assert_eq!(es.counters().auth_failures, 3);
    assert_eq!(es.doc_count(), 1);
    assert_eq!(es.last_request().unwrap().status, 401);

    let es = EsReceiver::builder()
        .with_auth(EsAuth::api_key("kid", "ksecret"))
        .start()
        .unwrap();
    let url = format!("{}/_bulk", es.url());
    let key = format!("ApiKey {}", b64("kid:ksecret"));
    assert_eq!(
        call("POST", &url, &[ct, ("authorization", &key)], body).status,
        200
    );
    let bad_key = format!("ApiKey {}", b64("kid:other"));
    assert_eq!(
        call("POST", &url, &[ct, ("authorization", &bad_key)], body).status,
        401
    );
    assert_eq!(
        call("POST", &url, &[ct, ("authorization", &good)], body).status,
        401
    );
    assert_eq!(es.counters().auth_failures, 2);
    assert_eq!(
        es.last_request().unwrap().header("authorization"),
        Some(good.as_str())
    );

    let es = EsReceiver::builder()
        .with_auth(EsAuth::bearer("tok"))
        .start()
        .unwrap();
    let url = format!("{}/_bulk", es.url());
    assert_eq!(
        call("POST", &url, &[ct, ("authorization", "Bearer tok")], body).status,
        200
    );
    assert_eq!(
        call("POST", &url, &[ct, ("authorization", "Bearer tik")], body).status,
        401
    );
    es.set_auth(EsAuth::None);
    assert_eq!(call("POST", &url, &[ct], body).status, 200);
    assert_eq!(es.counters().auth_failures, 1);
    assert_eq!(es.doc_count(), 2);
}

fn three_items(index: &str) -> String {
    (0..3)
        .map(|i| {
            format!("{{\"create\":{{\"_index\":\"{index}\",\"_id\":\"{i}\"}}}}\n{{\"n\":{i}}}\n")
        })
        .collect()
}

#[test]
fn item_rejection_faults() {
    let es = EsReceiver::start().unwrap();
    es.reject_items(2);
    let v = bulk(&es, &three_items("r")).json();
    assert_eq!(v["errors"], true);
    let first = &v["items"][0]["create"];
    assert_eq!(first["status"], 429);
    assert_eq!(first["_id"], "0");
    assert_eq!(first["error"]["type"], "es_rejected_execution_exception");
    assert_eq!(v["items"][1]["create"]["status"], 429);
    assert_eq!(v["items"][2]["create"]["status"], 201);
    // The retry of the two rejected items succeeds.
    let v = bulk(&es, &three_items("r")[..]).json();
    assert_eq!(v["items"][0]["create"]["status"], 201);
    assert_eq!(v["items"][2]["create"]["status"], 409);

    es.reject_items_for_index("only-this", 1);
    let mut body = three_items("other");
    body.push_str(&three_items("only-this"));
    let v = bulk(&es, &body).json();
    let statuses: Vec<u64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["create"]["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![201, 201, 201, 429, 201, 201]);
    let c = es.counters();
    assert_eq!(c.injected_item_rejections, 3);
    assert_eq!(c.items("create", 429), 3);
    assert_eq!(es.doc_count(), 3 + 3 + 2);
}

#[test]
fn request_level_429_and_5xx_faults() {
    let es = EsReceiver::start().unwrap();
    es.throttle_requests(1, Duration::from_millis(1500));
    let a = bulk(&es, &three_items("t"));
    assert_eq!(a.status, 429);
    assert_eq!(a.header("retry-after"), Some("2"));
    assert_eq!(a.json()["error"]["type"], "es_rejected_execution_exception");
    assert_eq!(a.header("x-elastic-product"), Some("Elasticsearch"));
    assert_eq!(es.doc_count(), 0);
    assert_eq!(bulk(&es, &three_items("t")).status, 200);

    es.fail_requests(2, 503);
    assert_eq!(bulk(&es, &three_items("f")).status, 503);
    // Faults target _bulk only: the root still answers.
    assert_eq!(call("GET", &es.url(), &[], b"").status, 200);
    assert_eq!(bulk(&es, &three_items("f")).status, 503);
    assert_eq!(bulk(&es, &three_items("f")).status, 200);

    es.fail_requests(5, 500);
    es.clear_faults();
    assert_eq!(bulk(&es, &three_items("g")).status, 200);

    let c = es.counters();
    assert_eq!(c.injected_throttles, 1);
    assert_eq!(c.injected_failures, 2);
    assert_eq!(c.responses(429), 1);
    assert_eq!(c.responses(503), 2);
    assert_eq!(c.bulk_requests, 6);
    assert_eq!(es.doc_count(), 9);
}

#[test]
fn body_over_limit_is_413() {
    let es = EsReceiver::builder()
        .with_max_body_bytes(100)
        .start()
        .unwrap();
    let small = "{\"index\":{\"_index\":\"s\"}}\n{}\n";
    assert_eq!(bulk(&es, small).status, 200);
    let big = three_items("big");
    assert!(big.len() > 100);
    assert_eq!(bulk(&es, &big).status, 413);
    // The limit holds for the decompressed size too.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let repetitive = format!(
        "{{\"index\":{{\"_index\":\"s\"}}}}\n{{\"p\":\"{}\"}}\n",
        "a".repeat(500)
    );
    enc.write_all(repetitive.as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    assert!(gz.len() < 100);
    let a = call(
        "POST",
        &format!("{}/_bulk", es.url()),
        &[("content-type", NDJSON), ("content-encoding", "gzip")],
        &gz,
    );
    assert_eq!(a.status, 413);
    es.set_max_body_bytes(None);
    assert_eq!(bulk(&es, &big).status, 200);
    assert_eq!(es.counters().too_large, 2);
    assert_eq!(es.doc_count(), 4);
}

#[test]
fn delay_slows_each_bulk_request() {
    let es = EsReceiver::start().unwrap();
    es.set_delay(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(bulk(&es, &three_items("d")).status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    es.set_delay(Duration::ZERO);
    assert_eq!(es.doc_count(), 3);
}

#[test]
fn hang_and_dropped_responses_never_answer() {
    let es = EsReceiver::start().unwrap();
    let short = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_millis(400)))
        .build();
    let short: ureq::Agent = short.into();
    let url = format!("{}/_bulk", es.url());

    es.hang_requests(1);
    let r = short
        .post(&url)
        .header("content-type", NDJSON)
        .send(three_items("h").as_bytes());
    assert!(r.is_err(), "a hung request must time out");
    assert_eq!(es.doc_count(), 0, "a hung request indexes nothing");

    es.drop_responses(1);
    let r = short
        .post(&url)
        .header("content-type", NDJSON)
        .send(three_items("h").as_bytes());
    assert!(r.is_err(), "a dropped response must time out");
    assert_eq!(es.doc_count(), 3, "a dropped response was indexed");

    assert_eq!(bulk(&es, &three_items("h2")).status, 200);
    let c = es.counters();
    assert_eq!(c.unanswered, 2);
    assert_eq!(c.bulk_requests, 3);
    assert_eq!(es.requests().iter().filter(|r| r.status == 0).count(), 2);
    // Dropping the receiver must not wait for the hung handlers.
    let started = Instant::now();
    drop(es);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "dropping waited for hung handlers"
    );
}

#[test]
fn unknown_paths_and_wrong_methods() {
    let es = EsReceiver::start().unwrap();
    let a = call("GET", &format!("{}/_bulk", es.url()), &[], b"");
    assert_eq!(a.status, 405);
    assert_eq!(
        a.json()["error"],
        "Incorrect HTTP method for uri [/_bulk] and method [GET], allowed: [PUT, POST]"
    );
    let b = call("GET", &format!("{}/a/b/c", es.url()), &[], b"");
    assert_eq!(b.status, 400);
    assert_eq!(
        b.json()["error"],
        "no handler found for uri [/a/b/c] and method [GET]"
    );
}

/// The official Python client (`elasticsearch` 8.x) against the receiver: `info()`,
/// `helpers.bulk` (which retries 429 items), duplicate creates, API-key auth.
#[test]
fn es_official_client() {
    let Some(python) = logship_testkit::peers::python("es_official_client") else {
        return;
    };
    let es = EsReceiver::builder()
        .with_auth(EsAuth::api_key("pyid", "pykey"))
        .start()
        .unwrap();
    es.reject_items(2);
    let script = r#"
import sys
from elasticsearch import Elasticsearch, helpers
es = Elasticsearch(sys.argv[1], api_key=("pyid", "pykey"), request_timeout=10)
info = es.info()
assert info["version"]["number"].startswith("8."), info
actions = [{"_index": "py-logs", "_id": str(i), "_source": {"n": i, "msg": "hello"}} for i in range(5)]
ok, errors = helpers.bulk(es, actions, max_retries=3, initial_backoff=0.01, raise_on_error=False)
assert ok == 5 and not errors, (ok, errors)
ok, errors = helpers.bulk(es, [{"_op_type": "create", "_index": "logs-py-default",
    "_source": {"@timestamp": "2024-01-01T00:00:00Z", "message": "x"}}])
assert ok == 1, ok
try:
    helpers.bulk(es, [{"_op_type": "create", "_index": "py-logs", "_id": "0", "_source": {"n": 0}}])
    raise SystemExit("duplicate create was accepted")
except helpers.BulkIndexError as e:
    assert e.errors[0]["create"]["status"] == 409, e.errors
print("ok")
"#;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(es.url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(es.documents_in("py-logs").len(), 5);
    assert_eq!(es.documents_in("logs-py-default").len(), 1);
    let c = es.counters();
    assert_eq!(c.injected_item_rejections, 2);
    assert_eq!(c.duplicates_refused, 1);
    assert_eq!(c.auth_failures, 0);
    let last = es.last_request().unwrap();
    assert!(
        last.header("content-type")
            .unwrap()
            .contains("vnd.elasticsearch"),
        "{last:?}"
    );
}

#[test]
fn conflict_faults_answer_409_without_indexing() {
    let es = EsReceiver::start().unwrap();
    es.conflict_items(2);
    // An `index` item is not a `create`: the fault leaves it alone.
    let mut body = "{\"index\":{\"_index\":\"c\",\"_id\":\"i\"}}\n{\"n\":9}\n".to_string();
    body.push_str(&three_items("c"));
    let v = bulk(&es, &body).json();
    assert_eq!(v["errors"], true);
    let statuses: Vec<u64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i.as_object().unwrap().values().next().unwrap()["status"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(statuses, vec![201, 409, 409, 201]);
    let first = &v["items"][1]["create"];
    assert_eq!(first["error"]["type"], "version_conflict_engine_exception");
    assert!(
        first["error"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("[0]: version conflict, document already exists")
    );
    assert_eq!(es.doc_count(), 2);
    let c = es.counters();
    assert_eq!(c.injected_conflicts, 2);
    assert_eq!(c.duplicates_refused, 0);
}

#[test]
fn fail_after_storing_indexes_then_answers_the_error() {
    let es = EsReceiver::start().unwrap();
    es.fail_after_storing(1, 503);
    let a = bulk(&es, &three_items("s"));
    assert_eq!(a.status, 503);
    assert_eq!(a.json()["error"]["type"], "status_exception");
    assert_eq!(es.doc_count(), 3, "stored although the reply says 503");
    // The client's retry meets its own copies.
    let v = bulk(&es, &three_items("s")).json();
    assert_eq!(v["items"][0]["create"]["status"], 409);
    let c = es.counters();
    assert_eq!(c.failed_after_storing, 1);
    assert_eq!(c.duplicates_refused, 3);
    assert_eq!(c.responses(503), 1);
}
