//! Capture: turning `tracing` callbacks into owned [`Record`](crate::Record)s on the caller's
//! thread, cheaply and without I/O.
//!
//! * `visit`: a typed `Visit` that writes the message and fields into a record.
//! * `span`: the per-span state (fields, tracking id, timings) shared by every logship layer
//!   on one registry.
//! * [`suppress`]: the thread-local switch that keeps the exporters' own telemetry out.

pub(crate) mod span;
pub mod suppress;
pub(crate) mod visit;
