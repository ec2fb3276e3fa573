//! The Kusto receiver's ingestion formats (json, multijson, csv/tsv/…), mappings and row
//! conversion. Input: `format \0 mapping \0 payload`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    logship_testkit::fuzzing::kusto_ingest(data);
});
