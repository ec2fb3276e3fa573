//! jKool MQTT topic templates: parsing never panics, and no record (whatever its target) can
//! make an accepted template render a topic with a wildcard (`+`, `#`) or NUL.
//! Input: `template \0 target`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logship_core::{Level, Record};
use logship_jkool::DocumentKind;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (template, target) = s.split_once('\0').unwrap_or((s, "shop::orders"));
    let r = Record::event(Level::WARN, target).build();
    for kind in [
        DocumentKind::Event,
        DocumentKind::Activity,
        DocumentKind::Snapshot,
    ] {
        if let Ok(topic) = logship_jkool_mqtt::fuzzing::topic(template, &r, kind) {
            assert!(
                !topic.contains(['+', '#', '\0']),
                "template {template:?} rendered the wildcard topic {topic:?}"
            );
            assert!(
                !topic.is_empty(),
                "template {template:?} rendered an empty topic"
            );
        }
    }
});
