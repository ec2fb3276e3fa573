//! The jKool JESL receiver over real sockets (the jKool client model, <https://github.com/Nastel/jkool-client-java-api>).
#![cfg(feature = "jkool")]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use logship_testkit::jkool::{JkoolAuthMethod, JkoolReceiver};
use serde_json::{Value, json};

const T0: i64 = 1_466_662_761_000_000;

fn event(n: u32) -> Value {
    json!({
        "operation": "orders", "type": "EVENT", "msg-text": format!("Order {n} processed"),
        "severity": "INFO", "source-fqn": "APPL=Shop#SERVER=web1#DATACENTER=DC1",
        "tracking-id": format!("00000000-0000-4000-8000-{n:012}"), "time-usec": T0 + i64::from(n),
        "corrid": ["order-42"], "elapsed-time-usec": 1500,
        "properties": [{"name": "order-amount", "type": "long", "value": "10"}],
        "snapshots": [{"name": "Payment", "time-usec": T0, "type": "SNAPSHOT", "category": "Order",
            "properties": [{"name": "order-no", "value": "A1", "type": "string"}]}]
    })
}

fn activity() -> Value {
    json!({"type": "ACTIVITY", "operation": "checkout", "tracking-id": "act-1", "status": "END",
        "source-fqn": "APPL=Shop", "time-usec": T0, "start-time-usec": T0, "end-time-usec": T0 + 10})
}

fn snapshot() -> Value {
    json!({"name": "Queue", "type": "SNAPSHOT", "time-usec": T0, "parent-id": "act-1",
        "properties": [{"name": "depth", "type": "long", "value": "3"}]})
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    text: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One keep-alive HTTP/1.1 connection, written by hand so the tests control which requests share
/// a TCP connection (the handshake authorises a connection, not a client).
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn open(jk: &JkoolReceiver) -> Conn {
        let stream = TcpStream::connect(jk.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Conn {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        self.writer.write_all(head.as_bytes()).unwrap();
        self.writer.write_all(body).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').unwrap();
            if n.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap();
            }
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        Answer {
            status,
            headers,
            text: String::from_utf8(body).unwrap(),
        }
    }

    fn post_json(&mut self, path: &str, headers: &[(&str, &str)], doc: &Value) -> Answer {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        self.request("POST", path, &all, doc.to_string().as_bytes())
    }

    fn handshake(&mut self, path: &str, token: &str) -> Answer {
        let body = format!("<access-request><token>{token}</token></access-request>");
        self.request(
            "POST",
            path,
            &[("Content-Type", "text/plain")],
            body.as_bytes(),
        )
    }
}

/// A fresh connection per call.
fn post(jk: &JkoolReceiver, endpoint: &str, headers: &[(&str, &str)], doc: &Value) -> Answer {
    Conn::open(jk).post_json(&format!("/JESL/{endpoint}"), headers, doc)
}

#[test]
fn one_object_per_request_and_arrays_refused_by_default() {
    let jk = JkoolReceiver::start().unwrap();
    assert_eq!(post(&jk, "event", &[], &event(1)).status, 202);
    assert_eq!(post(&jk, "activity", &[], &activity()).status, 200);
    assert_eq!(post(&jk, "snapshot", &[], &snapshot()).status, 202);
    for (endpoint, body) in [
        ("event", json!([event(2)])),
        ("event", json!([event(3), event(4)])),
        ("snapshot", json!([snapshot()])),
        ("event", json!([])),
    ] {
        let a = post(&jk, endpoint, &[], &body);
        assert_eq!(a.status, 400, "{endpoint} {body}");
        assert!(
            a.text.contains("a JSON array is not accepted"),
            "{}",
            a.text
        );
    }
    assert_eq!(jk.doc_count(), 3, "nothing of a refused array is stored");
    let c = jk.counters();
    assert_eq!(c.arrays_refused, 4);
    assert_eq!(c.invalid_documents, 0);
    assert_eq!(c.invalid_requests, 4);
    assert_eq!(c.responses_to("event", 400), 3);
}

#[test]
fn single_and_batched_posts_to_each_endpoint() {
    let jk = JkoolReceiver::builder()
        .with_accept_arrays(true)
        .start()
        .unwrap();
    assert!(jk.url().ends_with("/JESL") && jk.url().starts_with("http://127.0.0.1:"));
    assert_eq!(post(&jk, "event", &[], &event(1)).status, 202);
    assert_eq!(
        post(&jk, "event", &[], &json!([event(2), event(3), event(4)])).status,
        202
    );
    assert_eq!(post(&jk, "activity", &[], &activity()).status, 200);
    assert_eq!(
        post(&jk, "snapshot", &[], &json!([snapshot(), snapshot()])).status,
        202
    );
    assert!(jk.wait_for(7, Duration::from_secs(5)));
    assert!(jk.wait_for_events(4, Duration::from_secs(5)));
    let events = jk.events();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0], event(1));
    assert_eq!(events[3]["msg-text"], "Order 4 processed");
    assert_eq!(jk.activities(), vec![activity()]);
    assert_eq!(jk.snapshots().len(), 2);
    assert_eq!(
        (
            jk.event_count(),
            jk.activity_count(),
            jk.snapshot_count(),
            jk.doc_count()
        ),
        (4, 1, 2, 7)
    );
    let c = jk.counters();
    assert_eq!(c.requests, 4);
    assert_eq!(c.connections, 4);
    assert_eq!(c.documents, 7);
    assert_eq!(c.responses_to("event", 202), 2);
    assert_eq!(c.responses_to("activity", 200), 1);
    assert_eq!(c.responses_to("snapshot", 202), 1);
    assert_eq!(c.authorized_by.get("none"), Some(&4));
    assert_eq!(c.invalid_documents, 0);
}

#[test]
fn gzip_bodies_and_pings() {
    let jk = JkoolReceiver::start().unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(event(1).to_string().as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let mut conn = Conn::open(&jk);
    let a = conn.request(
        "POST",
        "/JESL/event",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &gz,
    );
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(jk.event_count(), 1);
    assert_eq!(
        conn.request("POST", "/JESL/event", &[("Pragma", "ping")], b"")
            .status,
        200
    );
    let c = jk.counters();
    assert_eq!(c.pings, 1);
    assert_eq!(c.bytes_received, gz.len() as u64);
}

#[test]
fn token_and_api_key_headers() {
    let jk = JkoolReceiver::builder()
        .with_token("tok-1")
        .start()
        .unwrap();
    assert_eq!(
        post(&jk, "event", &[("token", "tok-1")], &event(1)).status,
        202
    );
    assert_eq!(
        post(&jk, "event", &[("X-API-Key", "tok-1")], &event(2)).status,
        202
    );
    let wrong = post(&jk, "event", &[("token", "nope")], &event(3));
    assert_eq!(wrong.status, 401);
    assert!(wrong.text.contains("invalid token"), "{}", wrong.text);
    let none = post(&jk, "event", &[], &event(4));
    assert_eq!(none.status, 401);
    assert_eq!(jk.event_count(), 2);
    let c = jk.counters();
    assert_eq!(c.auth_failures, 2);
    assert_eq!(c.authorized(JkoolAuthMethod::TokenHeader), 1);
    assert_eq!(c.authorized(JkoolAuthMethod::ApiKeyHeader), 1);
    assert_eq!(c.responses_to("event", 401), 2);
    assert_eq!(jk.last_request().unwrap().status, 401);
}

#[test]
fn auth_methods_and_failure_status_are_configurable() {
    let jk = JkoolReceiver::builder()
        .with_token("t")
        .with_auth_methods(&[JkoolAuthMethod::ApiKeyHeader])
        .with_auth_failure_status(403)
        .start()
        .unwrap();
    assert_eq!(post(&jk, "event", &[("token", "t")], &event(1)).status, 403);
    assert_eq!(
        post(&jk, "event", &[("X-API-Key", "t")], &event(1)).status,
        202
    );
    let mut conn = Conn::open(&jk);
    assert_eq!(
        conn.handshake("/", "t").status,
        403,
        "handshake switched off"
    );
    assert_eq!(conn.post_json("/JESL/event", &[], &event(2)).status, 403);
    let c = jk.counters();
    assert_eq!(c.auth_failures, 3);
    assert_eq!(c.handshakes, 0);
    assert_eq!(jk.event_count(), 1);
}

#[test]
fn handshake_authorises_only_its_connection() {
    let jk = JkoolReceiver::builder()
        .with_token("secret")
        .start()
        .unwrap();
    let mut a = Conn::open(&jk);
    let ok = a.handshake("/", "secret");
    assert_eq!(ok.status, 200);
    assert_eq!(a.post_json("/JESL/event", &[], &event(1)).status, 202);
    assert_eq!(a.post_json("/JESL/activity", &[], &activity()).status, 200);

    let mut b = Conn::open(&jk);
    assert_eq!(
        b.post_json("/JESL/event", &[], &event(2)).status,
        401,
        "other connection, no handshake"
    );
    assert_eq!(b.handshake("/JESL/event", "wrong").status, 401);
    assert_eq!(b.post_json("/JESL/event", &[], &event(2)).status, 401);
    assert_eq!(b.handshake("/JESL", "secret").status, 200);
    assert_eq!(b.post_json("/JESL/event", &[], &event(2)).status, 202);

    // A failed re-handshake de-authorises the connection.
    assert_eq!(a.handshake("/", "wrong").status, 401);
    assert_eq!(a.post_json("/JESL/event", &[], &event(3)).status, 401);

    let bad_body = a.request("POST", "/", &[("Content-Type", "text/plain")], b"hello");
    assert_eq!(bad_body.status, 400);

    assert_eq!(jk.event_count(), 2);
    let reqs = jk.requests();
    assert_eq!(reqs[0].connection, reqs[1].connection);
    assert_ne!(reqs[0].connection, reqs[3].connection);
    assert_eq!(
        reqs[0].body,
        b"<access-request><token>secret</token></access-request>"
    );
    let c = jk.counters();
    assert_eq!(c.connections, 2);
    assert_eq!(c.handshakes, 2);
    assert_eq!(c.authorized(JkoolAuthMethod::Handshake), 3);
    assert_eq!(c.auth_failures, 5);
    assert_eq!(c.responses_to("handshake", 200), 2);
    assert_eq!(c.responses_to("handshake", 401), 2);
    assert_eq!(c.responses_to("handshake", 400), 1);
}

#[test]
fn revoking_a_token_takes_effect_at_once() {
    let jk = JkoolReceiver::builder().with_token("old").start().unwrap();
    let mut conn = Conn::open(&jk);
    assert_eq!(conn.handshake("/", "old").status, 200);
    assert_eq!(conn.post_json("/JESL/event", &[], &event(1)).status, 202);
    jk.add_token("new");
    jk.revoke_token("old");
    let revoked = conn.post_json("/JESL/event", &[], &event(2));
    assert_eq!(revoked.status, 401);
    assert!(revoked.text.contains("revoked"), "{}", revoked.text);
    assert_eq!(
        post(&jk, "event", &[("token", "old")], &event(2)).status,
        401
    );
    assert_eq!(
        post(&jk, "event", &[("token", "new")], &event(2)).status,
        202
    );
    jk.revoke_token("new");
    assert_eq!(
        post(&jk, "event", &[("token", "new")], &event(3)).status,
        401,
        "no token left: still closed"
    );
    assert_eq!(post(&jk, "event", &[], &event(3)).status, 401);
    assert_eq!(jk.event_count(), 2);
    assert_eq!(jk.counters().auth_failures, 4);
}

#[test]
fn invalid_documents_are_refused_with_a_reason() {
    let jk = JkoolReceiver::builder()
        .with_accept_arrays(true)
        .start()
        .unwrap();
    let mut no_tracking = event(1);
    no_tracking.as_object_mut().unwrap().remove("tracking-id");
    let mut ms_time = event(1);
    ms_time["time-usec"] = json!(1_466_662_761_000_i64);
    let mut string_time = event(1);
    string_time["time-usec"] = json!("2016-06-23T06:19:21Z");
    let mut bad_severity = event(1);
    bad_severity["severity"] = json!("LOUD");
    let mut bad_property = event(1);
    bad_property["properties"] = json!([{"name": "x", "type": "string"}]);
    let mut bad_fqn = event(1);
    bad_fqn["source-fqn"] = json!("shop");
    let mut upper_type = event(1);
    upper_type["properties"] = json!([{"name": "x", "type": "INTEGER", "value": 3}]);
    let mut corr_id_array = event(1);
    corr_id_array["corr-id"] = json!(["order-42"]);
    let mut wrong_type = snapshot();
    wrong_type["type"] = json!("EVENT");
    let cases: Vec<(&str, Value, &str)> = vec![
        ("event", no_tracking, "missing required field [tracking-id]"),
        ("event", ms_time, "field [time-usec]"),
        ("event", string_time, "must be an integer (microseconds"),
        ("event", bad_severity, "field [severity]"),
        ("event", bad_property, "property without [value]"),
        ("event", bad_fqn, "field [source-fqn]"),
        ("event", upper_type, "not a reference type name"),
        ("event", corr_id_array, "field [corr-id]: must be a string"),
        ("snapshot", wrong_type, "must be \"SNAPSHOT\""),
        (
            "activity",
            json!({"tracking-id": "a", "source-fqn": "APPL=x", "time-usec": T0, "status": "DONE"}),
            "field [status]",
        ),
        (
            "event",
            json!([event(1), {"msg-text": "x"}, event(2)]),
            "[1]: missing required field",
        ),
        ("event", json!("just a string"), "must be a JSON object"),
        ("event", json!([]), "empty JSON array"),
    ];
    for (endpoint, doc, expect) in &cases {
        let a = post(&jk, endpoint, &[], doc);
        assert_eq!(a.status, 400, "{endpoint} {doc}");
        assert!(
            a.text.contains(expect),
            "expected {expect:?} in {:?}",
            a.text
        );
    }
    let not_json = Conn::open(&jk).request(
        "POST",
        "/JESL/event",
        &[("Content-Type", "application/json")],
        b"{oops",
    );
    assert_eq!(not_json.status, 400);
    let wrong_ct = Conn::open(&jk).request(
        "POST",
        "/JESL/event",
        &[("Content-Type", "application/xml")],
        event(1).to_string().as_bytes(),
    );
    assert_eq!(wrong_ct.status, 400);
    assert_eq!(
        jk.doc_count(),
        0,
        "a batch with one invalid element stores nothing"
    );
    let c = jk.counters();
    assert_eq!(c.invalid_requests, cases.len() as u64 + 2);
    assert_eq!(c.invalid_documents, 12);
    assert_eq!(jk.rejections().len(), cases.len() + 2);
}

#[test]
fn routing_errors() {
    let jk = JkoolReceiver::start().unwrap();
    let mut conn = Conn::open(&jk);
    assert_eq!(conn.request("GET", "/JESL/event", &[], b"").status, 405);
    assert_eq!(conn.post_json("/JESL/metrics", &[], &event(1)).status, 404);
    assert_eq!(conn.post_json("/event", &[], &event(1)).status, 404);
    let root = JkoolReceiver::builder().with_base_path("").start().unwrap();
    assert_eq!(
        Conn::open(&root).post_json("/event", &[], &event(1)).status,
        202
    );
    assert!(root.url().ends_with(&root.addr().port().to_string()));
}

#[test]
fn failure_and_throttle_faults() {
    let jk = JkoolReceiver::builder().with_token("t").start().unwrap();
    let mut conn = Conn::open(&jk);
    jk.fail_requests(2, 500);
    jk.throttle_requests(1, Duration::from_millis(2500));
    // The handshake is never faulted.
    assert_eq!(conn.handshake("/", "t").status, 200);
    assert_eq!(conn.post_json("/JESL/event", &[], &event(1)).status, 500);
    assert_eq!(conn.post_json("/JESL/event", &[], &event(1)).status, 500);
    let throttled = conn.post_json("/JESL/event", &[], &event(1));
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after"), Some("3"));
    assert_eq!(conn.post_json("/JESL/event", &[], &event(1)).status, 202);
    jk.fail_requests(3, 503);
    jk.clear_faults();
    assert_eq!(conn.post_json("/JESL/event", &[], &event(2)).status, 202);
    assert_eq!(jk.event_count(), 2);
    let c = jk.counters();
    assert_eq!(c.injected_failures, 2);
    assert_eq!(c.injected_throttles, 1);
    assert_eq!(c.responses_to("event", 500), 2);
    assert_eq!(c.responses_to("event", 429), 1);
    assert_eq!(c.requests_to("event"), 5);
}

#[test]
fn delay_and_hang_faults() {
    let jk = JkoolReceiver::start().unwrap();
    jk.set_delay(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(post(&jk, "event", &[], &event(1)).status, 202);
    assert!(started.elapsed() >= Duration::from_millis(300));
    jk.set_delay(Duration::ZERO);

    jk.hang_requests(1);
    let stream = TcpStream::connect(jk.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let mut hung = Conn {
        reader: BufReader::new(stream.try_clone().unwrap()),
        writer: stream,
    };
    let body = event(2).to_string();
    let head = format!(
        "POST /JESL/event HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    hung.writer.write_all(head.as_bytes()).unwrap();
    hung.writer.write_all(body.as_bytes()).unwrap();
    let mut line = String::new();
    assert!(
        hung.reader.read_line(&mut line).is_err(),
        "a hung request gets no answer: {line:?}"
    );
    assert_eq!(jk.event_count(), 1, "a hung request stores nothing");
    assert_eq!(post(&jk, "event", &[], &event(3)).status, 202);
    assert_eq!(jk.counters().unanswered, 1);
    let started = Instant::now();
    drop(jk);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "dropping waited for hung handlers"
    );
}
