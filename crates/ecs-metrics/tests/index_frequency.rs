//! Index names for every frequency, from each document's own `@timestamp` in UTC, on both
//! sides of day, week, month and year boundaries.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use logship_ecs_metrics::IndexFrequency;
use logship_testkit::es::EsReceiver;

use common::{WAIT, builder};

/// 2023-12-31T23:59:59.999Z (a Sunday) and 2024-01-01T00:00:00Z (a Monday).
fn boundary() -> (SystemTime, SystemTime) {
    let last = SystemTime::UNIX_EPOCH + Duration::from_millis(1_704_067_199_999);
    (last, last + Duration::from_millis(1))
}

fn names(freq: IndexFrequency, prefix: &str) -> Vec<String> {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es)
        .with_index_prefix(prefix)
        .with_index_frequency(freq)
        .build()
        .unwrap();
    let (a, b) = boundary();
    // The first timer ends after midnight: its index follows its start (@timestamp).
    layer.log_time_metric("before", a, Duration::from_secs(5));
    layer.log_time_metric("after", b, Duration::from_millis(1));
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().delivered, 2);
    let mut by_name: Vec<(String, String)> = es
        .documents()
        .into_iter()
        .map(|d| {
            (
                d.source["metrics"]["name"].as_str().unwrap().to_string(),
                d.index,
            )
        })
        .collect();
    by_name.sort();
    // after, before
    vec![by_name[1].1.clone(), by_name[0].1.clone()]
}

#[test]
fn every_frequency_at_the_year_boundary() {
    assert_eq!(
        names(IndexFrequency::Daily, "d"),
        ["d-2023.12.31", "d-2024.01.01"]
    );
    assert_eq!(
        names(IndexFrequency::Weekly, "w"),
        ["w-2023.12.25", "w-2024.01.01"]
    );
    assert_eq!(
        names(IndexFrequency::Monthly, "m"),
        ["m-2023.12", "m-2024.01"]
    );
    assert_eq!(names(IndexFrequency::Yearly, "y"), ["y-2023", "y-2024"]);
    assert_eq!(names(IndexFrequency::Never, "n"), ["n", "n"]);
}
