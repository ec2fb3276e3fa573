//! Kusto connection strings (`KustoBuilder::from_connection_string`) and the cluster URL
//! checks of `build()` (engine / `ingest-` endpoints): never panic, and the builder's Debug
//! form never shows the application key or token.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logship_kusto::KustoBuilder;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match KustoBuilder::from_connection_string(s) {
        Ok(b) => {
            let _ = format!("{b:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let _ = logship_kusto::fuzzing::endpoints(s);
    // A connection string whose key is a marker: Debug must not show it.
    let key = "K3yMarker_9f8e7d";
    let cs = format!(
        "Data Source={s};Initial Catalog=db;AAD Federated Security=True;Application Client Id=c;Application Key={key};Authority Id=t"
    );
    if let Ok(b) = KustoBuilder::from_connection_string(&cs) {
        assert!(!format!("{b:?}").contains(key), "Debug shows the key");
    }
});
