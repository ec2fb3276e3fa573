//! jKool MQTT broker URLs (checked by `JkoolMqttBuilder::build()`): never panic; an accepted
//! URL has a non-empty host.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match logship_jkool_mqtt::fuzzing::broker_url(s) {
        Ok((host, _port, _tls)) => assert!(!host.is_empty()),
        Err(e) => assert!(!e.is_empty()),
    }
});
