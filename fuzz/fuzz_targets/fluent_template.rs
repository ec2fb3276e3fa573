//! Fluent record templates (`FluentBuilder::with_record_template`, the `template` module):
//! parsing never panics, and rendering an accepted template for any record does not either.
//! Input: `template \0 target \0 module \0 file \0 hostname`, line from the file's length.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logship_core::{Level, Record};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut p = s.split('\0');
    let template = p.next().unwrap_or("");
    let target = p.next().unwrap_or("t");
    let module = p.next();
    let file = p.next().unwrap_or("f.rs");
    let host = p.next().unwrap_or("h");
    let mut b = Record::event(Level::INFO, target).with_message(template);
    if let Some(m) = module {
        b = b.with_source_position(m, file, file.len() as u32);
    }
    let r = b.build();
    if let Some(out) = logship_fluent::fuzzing::template(template, &r, host) {
        // A template without placeholders renders to its text (braces unescaped).
        if !template.contains('{') && !template.contains('}') {
            assert_eq!(out.as_deref(), Some(template));
        }
    }
});
