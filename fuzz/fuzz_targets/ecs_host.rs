//! Elasticsearch host URLs (`EcsBuilder::with_hosts`, checked by `build()`): never panic; an
//! accepted URL is http(s) without credentials and re-parses to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(u) = logship_ecs_metrics::fuzzing::host(s) {
        assert!(u.starts_with("http://") || u.starts_with("https://"), "{u}");
        assert_eq!(
            logship_ecs_metrics::fuzzing::host(&u).as_deref(),
            Ok(u.as_str())
        );
    }
});
