//! Capture: turning `tracing` callbacks into owned [`Record`](crate::Record)s on the caller's
//! thread, cheaply and without I/O.
//!
//! * `visit`: a typed `Visit` that writes the message and fields into a record.
//! * `identity`: the per-event timestamp and sequence number shared by every logship layer.
//! * `span`: the per-span state (fields, tracking id, timings) shared by every logship layer
//!   on one registry.
//! * [`suppress`]: the thread-local switch that keeps the exporters' own telemetry out.

pub(crate) mod identity;
pub(crate) mod span;
pub mod suppress;
pub(crate) mod visit;
