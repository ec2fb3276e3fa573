//! The fault-injection suite of issue 9: every backend against the faults of its protocol and
//! against real process restarts, with exact accounting from `Guard::stats`.
//!
//! One module per backend; `common` holds the receiver rig trait, a loopback TCP proxy that
//! cuts, refuses or hangs connections, the record stream, the accounting assertions and the
//! scenarios every backend runs (receiver killed and restarted 5 times during a long stream,
//! application SIGKILLed and restarted on its spool, reset mid-batch, a peer that never
//! answers, bounded shutdown). `docs/delivery-guarantees.md` names the test behind each claim.
//!
//! Run: `cargo test -p logship --test faults` (the SIGKILL tests re-execute this binary, see
//! `common::sigkill_child`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ecs;
mod fluent;
mod jkool_http;
mod jkool_mqtt;
mod kusto;

/// The layer builder of the backend named `name` (for the SIGKILL child process).
pub(crate) fn build_fn(name: &str) -> common::BuildFn {
    use common::Rig;
    match name {
        fluent::Fluent::NAME => fluent::Fluent::build,
        jkool_http::JkoolHttp::NAME => jkool_http::JkoolHttp::build,
        jkool_mqtt::JkoolMqtt::NAME => jkool_mqtt::JkoolMqtt::build,
        kusto::Kusto::NAME => kusto::Kusto::build,
        ecs::Ecs::NAME => ecs::Ecs::build,
        other => panic!("unknown backend `{other}`"),
    }
}
