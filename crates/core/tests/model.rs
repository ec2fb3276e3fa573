//! Model-based test (as Vector tests its buffers): random records through a sink scripted with
//! random outcomes (deliver, retry, reject, partial), then checks the pipeline against a trivial
//! model: every record is delivered exactly once or reported undelivered exactly once, and the
//! counters add up.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logship_core::testing::{MemorySink, Step};
use logship_core::{BreakerConfig, Outcome, PipelineBuilder, RetryPolicy, Value};
use proptest::prelude::*;
use tracing_subscriber::prelude::*;

#[derive(Debug, Clone)]
enum Act {
    Deliver,
    Retry,
    Reject,
    Partial(Vec<u8>), // per index: 0 delivered, 1 retry, 2 rejected (cycled over the batch)
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        3 => Just(Act::Deliver),
        2 => Just(Act::Retry),
        1 => Just(Act::Reject),
        2 => proptest::collection::vec(0u8..3, 1..5).prop_map(Act::Partial),
    ]
}

fn id(v: Option<Value<'_>>) -> i64 {
    match v {
        Some(Value::I64(i)) => i,
        other => panic!("no id: {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn every_record_is_accounted_for_exactly_once(
        n in 1usize..120,
        batch in 1usize..20,
        acts in proptest::collection::vec(act(), 0..30),
        attempts in 1u32..4,
    ) {
        // Partial outcomes need the batch size at send time; approximate with `batch`,
        // indices beyond the real batch are ignored by the worker.
        let steps: Vec<Step> = acts.iter().map(|a| Step::Answer(match a {
            Act::Deliver => Outcome::Delivered,
            Act::Retry => Outcome::retry("x"),
            Act::Reject => Outcome::rejected("no"),
            Act::Partial(p) => {
                let mut retry = Vec::new();
                let mut rejected = Vec::new();
                for i in 0..batch {
                    match p[i % p.len()] {
                        1 => retry.push(i),
                        2 => rejected.push((i, "bad".to_string())),
                        _ => {}
                    }
                }
                Outcome::Partial { retry, rejected, after: None, reason: "retry".into() }
            }
        })).collect();
        let undelivered: Arc<Mutex<Vec<i64>>> = Arc::default();
        let u2 = undelivered.clone();
        let (sink, rx) = MemorySink::scripted(steps);
        let (layer, guard) = PipelineBuilder::new()
            .with_max_batch_records(batch)
            .with_max_queue_records(1000)
            .with_retry(RetryPolicy::default()
                .with_initial_delay(Duration::from_micros(100))
                .with_max_delay(Duration::from_millis(1))
                .with_max_attempts(Some(attempts)))
            .with_breaker(BreakerConfig::disabled())
            .with_undelivered_callback(move |u| {
                let mut g = u2.lock().unwrap();
                for r in &u.records {
                    g.push(id(r.field("id")));
                }
            })
            .build(sink)
            .unwrap();
        let d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..n as i64 {
            tracing::info!(id = i, "r");
        }
        drop(d);
        guard.flush(Duration::from_secs(20)).unwrap();
        let delivered: Vec<i64> = rx.records().iter().map(|r| id(r.field("id"))).collect();
        let undelivered = undelivered.lock().unwrap().clone();
        // Exactly once: no duplicates, nothing missing.
        let all: BTreeSet<i64> = delivered.iter().chain(undelivered.iter()).copied().collect();
        prop_assert_eq!(all.len(), delivered.len() + undelivered.len(), "a record was reported twice");
        prop_assert_eq!(all, (0..n as i64).collect::<BTreeSet<_>>());
        let s = guard.stats();
        prop_assert_eq!(s.enqueued, n as u64);
        prop_assert_eq!(s.delivered, delivered.len() as u64);
        prop_assert_eq!(s.undelivered(), undelivered.len() as u64);
        prop_assert_eq!(s.in_flight(), 0);
        prop_assert_eq!(s.queue_len, 0);
    }
}
