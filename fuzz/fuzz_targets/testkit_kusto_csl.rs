//! The Kusto receiver's control-command (CSL) lexer and parser, and inline mappings.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        logship_testkit::fuzzing::kusto_csl(s);
    }
});
