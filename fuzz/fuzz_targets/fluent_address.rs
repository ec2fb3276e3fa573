//! Fluent server addresses (`FluentBuilder::with_server`, checked by `build()`): never panic;
//! an accepted address's canonical text parses back to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logship_fluent::fuzzing::address;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(canonical) = address(s) {
        assert_eq!(
            address(&canonical).as_deref(),
            Ok(canonical.as_str()),
            "canonical form of {s:?} does not re-parse to itself"
        );
    }
});
