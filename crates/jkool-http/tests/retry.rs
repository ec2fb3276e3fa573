//! Server failures follow the core's retry rules: 5xx and 429 (with `Retry-After`) are
//! retried until delivered; a hung request times out and is retried; nothing is lost or
//! duplicated in the receiver's store.

use std::time::Duration;

use logship_core::RetryPolicy;
use logship_jkool_http::JkoolHttpLayer;
use logship_testkit::jkool::JkoolReceiver;
use tracing_subscriber::prelude::*;

const WAIT: Duration = Duration::from_secs(15);

fn layer_for(jk: &JkoolReceiver) -> (logship_jkool_http::JkoolHttpLayer, logship_core::Guard) {
    JkoolHttpLayer::builder("tok")
        .with_base_url(jk.url())
        .with_pipeline(|p| {
            p.with_retry(
                RetryPolicy::default()
                    .with_initial_delay(Duration::from_millis(10))
                    .with_max_delay(Duration::from_millis(50)),
            )
            .with_send_timeout(Duration::from_secs(1))
            .with_span_timings(false)
        })
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn server_errors_are_retried_until_delivered() {
    let jk = JkoolReceiver::start().unwrap_or_else(|e| panic!("{e}"));
    jk.fail_requests(2, 503);
    let (layer, guard) = layer_for(&jk);
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..5 {
            tracing::info!(i, "e");
        }
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(jk.event_count(), 5);
    let s = guard.stats();
    // One post per record: the two refused posts are retried together, once; the other
    // three were delivered by the first send and are not sent again.
    assert_eq!((s.delivered, s.retries), (5, 1), "{s:?}");
    let c = jk.counters();
    assert_eq!(c.injected_failures, 2);
    assert_eq!(c.requests_to("event"), 7, "{c:?}");
}

#[test]
fn throttling_honours_retry_after() {
    let jk = JkoolReceiver::start().unwrap_or_else(|e| panic!("{e}"));
    jk.throttle_requests(1, Duration::from_secs(1));
    let (layer, guard) = layer_for(&jk);
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("throttled once");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_eq!((s.delivered, s.retries), (1, 1), "{s:?}");
    assert_eq!(jk.counters().injected_throttles, 1);
    assert_eq!(jk.event_count(), 1);
}

#[test]
fn a_hung_request_times_out_and_is_retried() {
    let jk = JkoolReceiver::start().unwrap_or_else(|e| panic!("{e}"));
    jk.hang_requests(1);
    let (layer, guard) = layer_for(&jk);
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("slow");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_eq!((s.delivered, s.retries), (1, 1), "{s:?}");
    assert_eq!(jk.event_count(), 1);
    assert_eq!(jk.counters().unanswered, 1);
}

#[test]
fn hung_posts_among_many_are_retried_alone_without_duplicates() {
    // One post per record: two of twenty posts hang past the send timeout. The sink gives
    // them up just before the core's deadline and reports the other eighteen as delivered, so
    // only the two are resent and the receiver stores every record exactly once.
    let jk = JkoolReceiver::start().unwrap_or_else(|e| panic!("{e}"));
    jk.hang_requests(2);
    let (layer, guard) = JkoolHttpLayer::builder("tok")
        .with_base_url(jk.url())
        .with_pipeline(|p| {
            p.with_retry(RetryPolicy::default().with_initial_delay(Duration::from_millis(10)))
                .with_send_timeout(Duration::from_millis(500))
                .with_linger(Duration::from_secs(60))
                .with_span_timings(false)
        })
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..20 {
            tracing::info!("e{i}");
        }
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered(), s.retries),
        (20, 0, 1),
        "{s:?}"
    );
    assert!(
        s.last_error.unwrap_or_default().contains("2 of 20 records"),
        "{:?}",
        guard.stats()
    );
    let mut texts: Vec<String> = jk
        .events()
        .iter()
        .filter_map(|e| e["msg-text"].as_str().map(String::from))
        .collect();
    texts.sort();
    texts.dedup();
    assert_eq!(
        (jk.event_count(), texts.len()),
        (20, 20),
        "no record stored twice"
    );
    let c = jk.counters();
    assert_eq!((c.unanswered, c.requests_to("event")), (2, 20), "{c:?}");
}

#[test]
fn an_unreachable_endpoint_is_retried_then_given_up() {
    // Bind then drop a listener: the port is (almost surely) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let (layer, guard) = JkoolHttpLayer::builder("tok")
        .with_base_url(format!("http://127.0.0.1:{port}/JESL"))
        .with_pipeline(|p| {
            p.with_retry(
                RetryPolicy::default()
                    .with_initial_delay(Duration::from_millis(5))
                    .with_max_delay(Duration::from_millis(10))
                    .with_max_attempts(Some(3)),
            )
            .with_span_timings(false)
        })
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("nobody listens");
    }
    let _ = guard.flush(WAIT);
    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered_retries_exhausted, s.retries),
        (0, 1, 2),
        "{s:?}"
    );
    let err = s.last_error.unwrap_or_default();
    assert!(err.contains("cannot connect to 127.0.0.1:"), "{err}");
}
