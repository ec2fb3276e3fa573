//! `Snapshot::parse` (the `snapshot = %snap` field form): never panics; its `Display` form
//! parses back to the same snapshot.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logship_core::Snapshot;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(snap) = Snapshot::parse(s) {
        let text = snap.to_string();
        let back = Snapshot::parse(&text).expect("Display form parses");
        assert_eq!(back.to_string(), text);
    }
});
