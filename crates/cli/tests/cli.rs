//! The command line end to end: the real binary against the testkit receivers.

use std::process::Command;
use std::time::Duration;

use logship_testkit::es::{EsAuth, EsReceiver};
use logship_testkit::fluent::FluentReceiver;
use logship_testkit::jkool::JkoolReceiver;

/// Every variable a secret option reads: cleared for each run, so a developer's own
/// (`LOGSHIP_KUSTO` for the tour, say) cannot add a backend to a test.
const SECRET_VARS: [&str; 10] = [
    "LOGSHIP_FLUENT_SHARED_KEY",
    "LOGSHIP_FLUENT_PASSWORD",
    "LOGSHIP_JKOOL_TOKEN",
    "LOGSHIP_MQTT_PASSWORD",
    "LOGSHIP_ES_PASSWORD",
    "LOGSHIP_ES_API_KEY",
    "LOGSHIP_ES_ENCODED_API_KEY",
    "LOGSHIP_ES_BEARER_TOKEN",
    "LOGSHIP_KUSTO",
    "LOGSHIP_KUSTO_APP_KEY",
];

fn logship() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_logship"));
    for v in SECRET_VARS {
        c.env_remove(v);
    }
    c
}

/// A file holding `content`, in a directory removed with the returned guard.
fn secret_file(content: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, content).unwrap();
    let path = path.to_str().unwrap().to_string();
    (dir, path)
}

fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "status {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
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

/// A Fluentd behind TLS with a shared key, reached with the CLI's TLS, mode and ack options.
#[test]
fn a_secured_fluentd_is_reached_with_a_ca_file_a_mode_and_without_acks() {
    use logship_testkit::fluent::{Mode, TlsIdentity};
    let identity = TlsIdentity::self_signed().unwrap();
    let fluent = FluentReceiver::builder()
        .with_tls(identity.clone())
        .with_shared_key("sh4red")
        .start()
        .unwrap();
    let (_dir, ca) = secret_file(identity.ca_pem());
    let addr = format!("tls://127.0.0.1:{}", fluent.port());
    let send = |extra: &[&str]| {
        logship()
            .args(["send", "over tls", "--fluent", &addr, "--timeout", "5"])
            .args(extra)
            .env("LOGSHIP_FLUENT_SHARED_KEY", "sh4red")
            .output()
            .unwrap()
    };
    // Without the CA the OS trust store refuses the self-signed certificate, and says why.
    let out = send(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate"), "{err}");
    assert_eq!(fluent.event_count(), 0);

    let out = send(&[
        "--tls-ca",
        &ca,
        "--fluent-mode",
        "message",
        "--fluent-no-ack",
    ]);
    assert_success(&out);
    assert!(fluent.wait_for_events(1, Duration::from_secs(10)));
    let e = &fluent.events()[0];
    assert_eq!(e.mode, Mode::Message);
    assert_eq!(e.chunk, None, "--fluent-no-ack sends no chunk option");
    assert_eq!(fluent.stats().acks_sent, 0);

    // The default asks for acks.
    let out = send(&["--tls-ca", &ca]);
    assert_success(&out);
    assert!(fluent.wait_for_events(2, Duration::from_secs(10)));
    let e = &fluent.events()[1];
    assert_eq!(e.mode, Mode::PackedForward);
    assert!(e.chunk.is_some());
}

#[test]
fn tls_options_that_do_not_fit_together_are_usage_errors() {
    for args in [
        &["--tls-client-cert", "c.pem"][..],
        &["--tls-client-key", "k.pem"][..],
        &["--tls-only-custom-roots"][..],
        &["--fluent-mode", "bogus"][..],
    ] {
        let out = logship()
            .args(["send", "x", "--fluent", "127.0.0.1:1"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--"), "{args:?}: {err}");
    }
    // A CA file that cannot be read fails at build, naming the file.
    let out = logship()
        .args(["send", "x", "--fluent", "tls://127.0.0.1:1"])
        .args(["--tls-ca", "/nonexistent/ca.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
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
    assert_eq!(out.status.code(), Some(2), "a usage error");
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

/// Replaying a folder twice to Elasticsearch: the second run meets the documents of the first
/// (same `_id`), and a replay takes those 409s as "already there", not as conflicts.
#[test]
fn replaying_twice_to_elasticsearch_stores_each_record_once_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("logship-x-20260101T000000Z-1-1.ndjson"),
        concat!(
            r#"{"timestamp":"2026-01-01T00:00:00.000000001Z","level":"ERROR","target":"shop","name":"e","message":"lost one","tracking_id":"t-1"}"#, "\n",
            r#"{"timestamp":"2026-01-01T00:00:01Z","level":"INFO","target":"shop","name":"e","message":"lost two","tracking_id":"t-2"}"#, "\n",
        ),
    )
    .unwrap();
    let es = EsReceiver::builder().start().unwrap();
    let replay = || {
        logship()
            .args(["replay", dir.path().to_str().unwrap(), "--es", &es.url()])
            .output()
            .unwrap()
    };
    assert_success(&replay());
    assert!(es.wait_for_docs(2, Duration::from_secs(10)));
    let out = replay();
    assert_success(&out);
    assert_eq!(es.doc_count(), 2, "each record stored once");
    assert_eq!(
        es.counters().items("create", 409),
        2,
        "the second run met both documents"
    );
}

#[test]
fn an_es_bearer_token_from_a_file_reaches_the_receiver() {
    let es = EsReceiver::builder()
        .with_auth(EsAuth::bearer("file-t0ken"))
        .start()
        .unwrap();
    let (_dir, path) = secret_file("file-t0ken\n");
    let out = logship()
        .args(["send", "hello", "--es", &es.url()])
        .args(["--es-bearer-token-file", &path])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(es.wait_for_docs(1, Duration::from_secs(10)));
    let bulk = es
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/_bulk"))
        .expect("a _bulk request");
    assert_eq!(bulk.header("authorization"), Some("Bearer file-t0ken"));
    assert_eq!(es.counters().auth_failures, 0);
}

#[test]
fn es_basic_and_api_key_credentials_from_the_environment_reach_the_receiver() {
    let es = EsReceiver::builder()
        .with_auth(EsAuth::basic("shipper", "env-pa55"))
        .start()
        .unwrap();
    let out = logship()
        .args(["send", "basic", "--es", &es.url(), "--es-user", "shipper"])
        .env("LOGSHIP_ES_PASSWORD", "env-pa55")
        .output()
        .unwrap();
    assert_success(&out);
    assert!(es.wait_for_docs(1, Duration::from_secs(10)));

    es.set_auth(EsAuth::api_key("key-id", "env-k3y"));
    let out = logship()
        .args([
            "send",
            "apikey",
            "--es",
            &es.url(),
            "--es-api-key-id",
            "key-id",
        ])
        .env("LOGSHIP_ES_API_KEY", "env-k3y")
        .output()
        .unwrap();
    assert_success(&out);
    assert!(es.wait_for_docs(2, Duration::from_secs(10)));
    assert_eq!(es.counters().auth_failures, 0);
}

#[test]
fn a_fluent_shared_key_from_the_environment_and_a_password_file_pass_the_handshake() {
    let fluent = FluentReceiver::builder()
        .with_shared_key("sh4red")
        .with_user("bob", "f1le-pass")
        .start()
        .unwrap();
    let (_dir, path) = secret_file("f1le-pass\r\n");
    let out = logship()
        .args([
            "send",
            "hello",
            "--fluent",
            &fluent.addr().unwrap().to_string(),
        ])
        .args(["--fluent-username", "bob", "--fluent-password-file", &path])
        .args(["--fluent-self-hostname", "cli-test"])
        .env("LOGSHIP_FLUENT_SHARED_KEY", "sh4red")
        .output()
        .unwrap();
    assert_success(&out);
    assert!(fluent.wait_for_events(1, Duration::from_secs(10)));
    let stats = fluent.stats();
    assert!(stats.handshakes_ok >= 1, "{stats:?}");
    assert_eq!(stats.handshake_failures, 0, "{stats:?}");
}

#[test]
fn a_wrong_shared_key_fails_delivery_without_printing_the_key() {
    let fluent = FluentReceiver::builder()
        .with_shared_key("the-right-key")
        .start()
        .unwrap();
    let out = logship()
        .args(["send", "x", "--fluent", &fluent.addr().unwrap().to_string()])
        .args(["--timeout", "2"])
        .env("LOGSHIP_FLUENT_SHARED_KEY", "wr0ng-k3y-value")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fluent:"), "{err}");
    assert!(!err.contains("wr0ng-k3y-value"), "{err}");
    assert!(fluent.stats().handshake_failures >= 1);
    assert_eq!(fluent.event_count(), 0);
}

#[test]
fn a_jkool_token_from_the_environment_selects_the_backend_and_a_file_beats_it() {
    let jkool = JkoolReceiver::builder()
        .with_token("env-tok")
        .start()
        .unwrap();
    let out = logship()
        .args(["send", "from env", "--jkool-url", &jkool.url()])
        .env("LOGSHIP_JKOOL_TOKEN", "env-tok")
        .output()
        .unwrap();
    assert_success(&out);
    assert!(jkool.wait_for_events(1, Duration::from_secs(10)));

    // The file wins over the variable: a wrong token in the environment does not matter.
    let jkool = JkoolReceiver::builder()
        .with_token("file-tok")
        .start()
        .unwrap();
    let (_dir, path) = secret_file("file-tok\n");
    let out = logship()
        .args(["send", "from file", "--jkool-url", &jkool.url()])
        .args(["--jkool-token-file", &path])
        .env("LOGSHIP_JKOOL_TOKEN", "stale-tok")
        .output()
        .unwrap();
    assert_success(&out);
    assert!(jkool.wait_for_events(1, Duration::from_secs(10)));
    assert_eq!(jkool.events()[0]["msg-text"], "from file");
}

/// The point of the environment and file forms: the secret is not in the running process's
/// argument list (what `ps` and `/proc/PID/cmdline` show to every local user).
#[cfg(target_os = "linux")]
#[test]
fn a_secret_from_a_file_or_the_environment_is_not_in_the_process_arguments() {
    use std::io::Write;
    let es = EsReceiver::builder()
        .with_auth(EsAuth::bearer("argv-s3cret"))
        .start()
        .unwrap();
    let (_dir, path) = secret_file("argv-s3cret");
    for from_file in [true, false] {
        let mut cmd = logship();
        cmd.args(["send", "-", "--es", &es.url()]);
        if from_file {
            cmd.args(["--es-bearer-token-file", &path]);
        } else {
            cmd.env("LOGSHIP_ES_BEARER_TOKEN", "argv-s3cret");
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The child blocks reading standard input: its arguments can be read meanwhile. Right
        // after a vfork-style spawn returns, the kernel may still be setting the new image up
        // and show an empty argument list: look again until it is there.
        let mut cmdline = Vec::new();
        for _ in 0..1000 {
            cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
            if !cmdline.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(cmdline.contains("send - --es"), "{cmdline}");
        assert!(!cmdline.contains("argv-s3cret"), "{cmdline}");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"one line\n").unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert_success(&out);
    }
    assert!(es.wait_for_docs(2, Duration::from_secs(10)));
    assert_eq!(es.counters().auth_failures, 0);
}

#[test]
fn an_unreadable_secret_file_is_a_usage_error_naming_the_file() {
    let out = logship()
        .args(["send", "x", "--es", "http://127.0.0.1:1"])
        .args(["--es-bearer-token-file", "/nonexistent/logship-token"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--es-bearer-token-file"), "{err}");
    assert!(
        err.contains("cannot read /nonexistent/logship-token"),
        "{err}"
    );
}

#[test]
fn secret_options_that_do_not_fit_together_are_usage_errors_without_the_secret() {
    let (_dir, path) = secret_file("f1le-s3cret");
    /// Arguments, environment, the expected message ("" for "`--x` and `--x-file` both
    /// typed", the file option added by the loop).
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 5] = [
        (
            &[
                "--es",
                "http://127.0.0.1:1",
                "--es-bearer-token",
                "typed-s3cret",
            ],
            &[],
            "",
        ),
        (
            &["--es", "http://127.0.0.1:1", "--es-user", "bob"],
            &[],
            "--es-user needs a password",
        ),
        (
            &[
                "--es",
                "http://127.0.0.1:1",
                "--es-encoded-api-key",
                "typed-s3cret",
            ],
            &[("LOGSHIP_ES_BEARER_TOKEN", "env-s3cret")],
            "give one Elasticsearch credential",
        ),
        (
            &[
                "--fluent",
                "127.0.0.1:1",
                "--fluent-shared-key",
                "typed-s3cret",
            ],
            &[],
            "",
        ),
        (
            &["--es-password", "typed-s3cret", "--fluent", "127.0.0.1:1"],
            &[],
            "--es-password needs --es",
        ),
    ];
    for (i, (args, envs, want)) in cases.into_iter().enumerate() {
        let mut cmd = logship();
        cmd.args(["send", "x", "--timeout", "1"]).args(args);
        if want.is_empty() {
            // The `--x` and `--x-file` pair, both typed.
            let file_flag = if args.contains(&"--es") {
                "--es-bearer-token-file"
            } else {
                "--fluent-shared-key-file"
            };
            cmd.args([file_flag, &path]);
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {i}: {err}");
        let want = if want.is_empty() { "both given" } else { want };
        assert!(err.contains(want), "case {i}: {err}");
        for secret in ["typed-s3cret", "env-s3cret", "f1le-s3cret"] {
            assert!(!err.contains(secret), "case {i}: {err}");
        }
    }
}

#[test]
fn a_secret_variable_for_a_backend_not_given_is_ignored() {
    let fluent = FluentReceiver::builder().start().unwrap();
    let out = logship()
        .args(["send", "x", "--fluent", &fluent.addr().unwrap().to_string()])
        .env("LOGSHIP_ES_PASSWORD", "unused")
        .env("LOGSHIP_MQTT_PASSWORD", "unused")
        .output()
        .unwrap();
    assert_success(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fluent: delivered 1") && !err.contains("es:"),
        "{err}"
    );
}

#[test]
fn help_names_the_variables_but_never_their_values() {
    let out = logship()
        .args(["send", "--help"])
        .env("LOGSHIP_ES_BEARER_TOKEN", "h3lp-s3cret")
        .env("LOGSHIP_JKOOL_TOKEN", "h3lp-s3cret")
        .env(
            "LOGSHIP_KUSTO",
            "Data Source=https://x;AppToken=h3lp-s3cret",
        )
        .output()
        .unwrap();
    assert_success(&out);
    let help = String::from_utf8_lossy(&out.stdout);
    for var in SECRET_VARS {
        assert!(help.contains(var), "{var} missing from --help:\n{help}");
    }
    assert!(help.contains("--es-bearer-token-file <PATH>"), "{help}");
    assert!(!help.contains("h3lp-s3cret"), "{help}");
}

/// Without a terminal on standard error (as here, and in scripts and CI), `send -` and `replay`
/// draw no progress: standard error holds the report lines and nothing else (no carriage
/// returns, no escape sequences, no extra lines).
#[test]
fn no_progress_output_without_a_terminal() {
    use std::io::Write;

    let fluent = FluentReceiver::builder().start().unwrap();
    let addr = fluent.addr().unwrap().to_string();
    let mut child = logship()
        .args(["send", "-", "--fluent", &addr])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..1500 {
        writeln!(stdin, "line {i}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_success(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "fluent: delivered 1500\n"
    );
    assert!(out.stdout.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("logship-x-20260101T000000Z-1-1.ndjson");
    let mut lines = String::new();
    for i in 0..1500 {
        lines.push_str(&format!(
            r#"{{"timestamp":"2026-01-01T00:00:00Z","level":"INFO","target":"shop","name":"e","message":"m{i}"}}"#
        ));
        lines.push('\n');
    }
    lines.push_str("not json\n");
    std::fs::write(&file, lines).unwrap();
    let out = logship()
        .args(["replay", dir.path().to_str().unwrap(), "--fluent", &addr])
        .output()
        .unwrap();
    assert_success(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].starts_with(&format!("skipped {}:1501: ", file.display())),
        "{err}"
    );
    assert_eq!(
        lines[1],
        format!(
            "replaying 1500 records from {} (1 lines skipped)",
            dir.path().display()
        )
    );
    assert_eq!(lines[2], "fluent: delivered 1500");
    assert!(!err.contains(['\r', '\x1b']), "{err:?}");
    assert!(out.stdout.is_empty());
}
