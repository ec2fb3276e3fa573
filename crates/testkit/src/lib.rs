//! Protocol-faithful receivers for testing logship (and applications that use it).
//!
//! Each receiver binds `127.0.0.1:0` (or a port you choose) on its own named thread with its
//! own tokio runtime, so it works from plain `#[test]` functions, `#[tokio::test]` functions and
//! benchmarks alike. It decodes what arrives with an independent implementation of the protocol
//! (written from the specs in the public protocol specifications, never importing logship's own
//! encoders), keeps what it decoded for assertions, can be scripted to misbehave (faults), and
//! stops when its handle is dropped.
//!
//! | module | protocol | feature |
//! |---|---|---|
//! | [`fluent`] | Fluentd Forward protocol v1 (TCP, TLS, Unix socket) | `fluent` |
//! | [`es`] | Elasticsearch `_bulk`, index templates, data streams | `es` |
//! | [`kusto`] | Azure Data Explorer streaming and queued ingestion, AAD token endpoint | `kusto` |
//! | [`jkool`] | jKool JESL HTTP endpoints | `jkool` |
//! | [`mqtt`] | an embedded MQTT broker (rumqttd) and a recording subscriber | `mqtt` |
#![warn(missing_docs)]

pub mod peers;
pub mod server;

#[cfg(feature = "es")]
pub mod es;
#[cfg(feature = "fluent")]
pub mod fluent;
#[cfg(feature = "jkool")]
pub mod jkool;
#[cfg(feature = "kusto")]
pub mod kusto;
#[cfg(feature = "mqtt")]
pub mod mqtt;

#[doc(hidden)]
pub mod fuzzing;

pub use server::{ServerHandle, wait_until};

/// The peak resident set size of this process so far (`VmHWM` of `/proc/self/status`), in MiB;
/// 0 where it cannot be read (not Linux). Tests that feed hostile replies assert a bound on it.
pub fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}
