//! Against a real mosquitto (when installed): username/password auth, a refused password,
//! and a broker restarted mid-stream.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use logship_core::RetryPolicy;
use logship_jkool_mqtt::{JkoolMqttLayer, TlsOptions};
use logship_testkit::peers;
use logship_testkit::wait_until;
use support::{Mosquitto, Subscriber, WAIT};
use tracing_subscriber::prelude::*;

fn retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(200))
        .with_max_attempts(None)
}

#[test]
fn auth_and_a_restart_mid_stream() {
    let Some(program) = peers::require("auth_and_a_restart_mid_stream", "mosquitto") else {
        return;
    };
    let mut mq = Mosquitto::start(program, "logship", "pw-1");
    let sub = Subscriber::start(mq.addr, "mq/#", Some(("logship", "pw-1")));
    let (layer, guard) = JkoolMqttLayer::builder(format!("mqtt://{}", mq.addr))
        .with_credentials("logship", "pw-1")
        .with_topic("mq/{target}")
        .with_pipeline(|p| {
            p.with_retry(retry())
                .with_span_timings(false)
                .with_linger(Duration::from_millis(20))
        })
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let _d = tracing_subscriber::registry().with(layer).set_default();
    for i in 0..50 {
        tracing::info!("a{i}");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert!(wait_until(WAIT, || sub.count() >= 50));
    drop(sub);

    mq.restart();
    // A fresh subscriber (the restarted broker kept no sessions).
    let sub = Subscriber::start(mq.addr, "mq/#", Some(("logship", "pw-1")));
    for i in 0..50 {
        tracing::info!("b{i}");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_eq!(s.delivered, 100, "{s:?}");
    // The restart is noticed before the next batch is written (the closed connection reads
    // end of file) or by a failed write and a retry; either way nothing is lost.
    let distinct = || -> BTreeSet<String> {
        sub.json()
            .iter()
            .filter_map(|(_, v)| v["msg-text"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        wait_until(WAIT, || distinct().len() == 50),
        "{:?}",
        distinct()
    );
}

#[test]
fn a_wrong_password_is_rejected_not_retried() {
    let Some(program) = peers::require("a_wrong_password_is_rejected_not_retried", "mosquitto")
    else {
        return;
    };
    let mq = Mosquitto::start(program, "logship", "pw-1");
    let (layer, guard) = JkoolMqttLayer::builder(format!("mqtt://{}", mq.addr))
        .with_credentials("logship", "wrong")
        .with_pipeline(|p| p.with_retry(retry()).with_span_timings(false))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("x");
        tracing::info!("y");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered_rejected, s.retries),
        (0, 2, 0),
        "{s:?}"
    );
    let err = s.last_error.unwrap_or_default();
    assert!(
        err.contains("refused the credentials") && !err.contains("wrong"),
        "{err}"
    );
}

#[test]
fn tls_with_a_custom_ca_and_verification_on() {
    let Some(program) = peers::require("tls_with_a_custom_ca_and_verification_on", "mosquitto")
    else {
        return;
    };
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap_or_else(|e| panic!("{e}"));
    let cert = ck.cert.pem();
    let mq = Mosquitto::start_tls(
        program,
        "logship",
        "pw-1",
        &cert,
        &ck.signing_key.serialize_pem(),
    );
    let tls_addr = mq.tls_addr.unwrap_or_else(|| panic!("no tls listener"));
    let sub = Subscriber::start(mq.addr, "tls/#", Some(("logship", "pw-1")));

    let (layer, guard) = JkoolMqttLayer::builder(format!("mqtts://{tls_addr}"))
        .with_credentials("logship", "pw-1")
        .with_tls(
            TlsOptions::default()
                .with_ca_pem(cert.as_bytes())
                .with_only_custom_roots(true),
        )
        .with_topic("tls/{level}")
        .with_pipeline(|p| p.with_span_timings(false))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("over tls");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(guard.stats().delivered, 1, "{:?}", guard.stats());
    assert!(wait_until(WAIT, || sub.count() == 1));
    assert_eq!(sub.json()[0].0, "tls/info");

    // Verification is on by default: the OS trust store does not know this certificate; the
    // failure is counted apart and names the check.
    let (layer, guard) = JkoolMqttLayer::builder(format!("mqtts://{tls_addr}"))
        .with_credentials("logship", "pw-1")
        .with_pipeline(|p| {
            p.with_span_timings(false).with_retry(
                RetryPolicy::default()
                    .with_initial_delay(Duration::from_millis(5))
                    .with_max_attempts(Some(2)),
            )
        })
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("refused");
    }
    let _ = guard.flush(WAIT);
    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered_retries_exhausted),
        (0, 1),
        "{s:?}"
    );
    assert!(s.certificate_failures > 0, "{s:?}");
    let err = s.last_error.unwrap_or_default();
    assert!(
        err.contains("TLS certificate check failed") && err.contains("unknown issuer"),
        "{err}"
    );
}
