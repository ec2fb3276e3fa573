//! logship umbrella (in progress)
pub use logship_core as core;
