//! The command line end to end: the real binary against the testkit receivers.

use std::process::Command;
use std::time::Duration;

use logship_testkit::fluent::FluentReceiver;
use logship_testkit::jkool::JkoolReceiver;

fn logship() -> Command {
    Command::new(env!("CARGO_BIN_EXE_logship"))
}

#[test]
fn send_to_fluent_and_jkool_with_typed_fields() {
    let fluent = FluentReceiver::builder().start().unwrap();
    let jkool = JkoolReceiver::builder().with_token("tok").start().unwrap();
    let out = logship()
        .args([
            "send",
            "order placed",
            "--level",
            "warn",
            "--target",
            "shop::orders",
        ])
        .args([
            "--field",
            "order_id=42",
            "--field",
            "total=9.5",
            "--field",
            "express=true",
            "--field",
            "sku=A-1",
        ])
        .args([
            "--correlator",
            "order-42",
            "--source-fqn",
            "APPL=shop#SERVER=web1",
        ])
        .args([
            "--fluent",
            &fluent.addr().unwrap().to_string(),
            "--tag",
            "app",
        ])
        .args(["--jkool-https", "tok", "--jkool-url", &jkool.url()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(fluent.wait_for_events(1, Duration::from_secs(10)));
    let e = &fluent.events()[0];
    assert_eq!(e.tag, "app.shop.orders");
    let rec = &e.record;
    let get = |k: &str| {
        rec.as_map()
            .unwrap()
            .iter()
            .find(|(kk, _)| kk.as_str() == Some(k))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("order_id").and_then(|v| v.as_i64()), Some(42));
    assert_eq!(get("total").and_then(|v| v.as_f64()), Some(9.5));
    assert_eq!(get("express").and_then(|v| v.as_bool()), Some(true));
    assert_eq!(
        get("source_fqn")
            .and_then(|v| v.as_str().map(String::from))
            .as_deref(),
        Some("APPL=shop#SERVER=web1")
    );
    assert!(jkool.wait_for_events(1, Duration::from_secs(10)));
    assert_eq!(jkool.events()[0]["msg-text"], "order placed");
}

#[test]
fn stdin_lines_become_one_event_each() {
    use std::io::Write;
    let fluent = FluentReceiver::builder().start().unwrap();
    let mut child = logship()
        .args(["send", "-", "--fluent", &fluent.addr().unwrap().to_string()])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\nthree\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(fluent.wait_for_events(3, Duration::from_secs(10)));
    assert_eq!(fluent.event_count(), 3);
}

#[test]
fn a_long_standard_input_is_sent_without_drops() {
    use std::io::Write;
    // 50 000 lines: more than the default queue holds at once (it dropped 16 413 before the
    // CLI flushed every 4 096 lines, as `replay` does).
    let fluent = FluentReceiver::builder().start().unwrap();
    let mut child = logship()
        .args([
            "send",
            "-",
            "--fluent",
            &fluent.addr().unwrap().to_string(),
            "--timeout",
            "60",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for i in 0..50_000 {
        input.push_str(&format!("line {i}\n"));
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert!(fluent.wait_for_events(50_000, Duration::from_secs(60)));
    assert_eq!(fluent.event_count(), 50_000);
}

#[test]
fn a_timeout_too_large_is_a_usage_error_not_a_panic() {
    let out = logship()
        .args([
            "send",
            "x",
            "--fluent",
            "127.0.0.1:1",
            "--timeout",
            "18446744073709551615",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap's usage error, not 101");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--timeout"), "{err}");
}

#[test]
fn delivery_failure_exits_non_zero_with_a_clear_message() {
    let out = logship()
        .args(["send", "x", "--fluent", "127.0.0.1:1", "--timeout", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fluent:") && err.contains("Connection refused"),
        "{err}"
    );
}

#[test]
fn usage_errors_say_what_to_fix() {
    let out = logship().args(["send", "x"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no backend given"));
    let out = logship()
        .args(["send", "x", "--fluent", "127.0.0.1:1", "--field", "novalue"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected KEY=VALUE"));
}

#[test]
fn replay_resends_a_dead_letter_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("logship-x-20260101T000000Z-1-1.ndjson"),
        concat!(
            r#"{"timestamp":"2026-01-01T00:00:00.000000001Z","level":"ERROR","target":"shop","name":"e","message":"lost one","fields":{"n":1}}"#, "\n",
            "not json\n",
            r#"{"timestamp":"2026-01-01T00:00:01Z","level":"INFO","target":"shop","name":"e","message":"lost two"}"#, "\n",
        ),
    )
    .unwrap();
    let fluent = FluentReceiver::builder().start().unwrap();
    let out = logship()
        .args([
            "replay",
            dir.path().to_str().unwrap(),
            "--fluent",
            &fluent.addr().unwrap().to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 records"));
    assert!(fluent.wait_for_events(2, Duration::from_secs(10)));
    assert_eq!(
        fluent.events()[0].time.as_nanos(),
        1_767_225_600_000_000_001
    );
}
