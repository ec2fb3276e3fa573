//! Ready-made sinks: [`JsonLinesSink`] for local debugging. Test sinks are in
//! [`testing`](crate::testing).

mod json_lines;

pub use json_lines::JsonLinesSink;
