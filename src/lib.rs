//! # logship
//!
//! `tracing-subscriber` layers that ship an application's events and span timings to remote
//! log and metric backends, without blocking the application, with bounded memory, and with
//! every loss counted.
//!
//! This umbrella crate re-exports the core and, behind features, each backend:
//!
//! | feature | crate | backend |
//! |---|---|---|
//! | (always) | [`core`] (`logship-core`) | the event model and the delivery pipeline |
//!
//! ```toml
//! [dependencies]
//! logship = "0.1"
//! ```
#![warn(missing_docs)]

pub use logship_core as core;

/// The names most applications need.
pub mod prelude {
    pub use logship_core::{Guard, Handle, PipelineBuilder, Snapshot, SourceFqn, Stats};
}
