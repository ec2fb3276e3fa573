//! Conventional field names: how plain `tracing` macros carry logship's event model.
//!
//! logship interprets these fields on events and spans (on the worker thread, never on the
//! caller's) and removes them from the plain field list, so backends map them to their own
//! slots (jKool `source-fqn`, Kusto `Correlators`, Fluent `tracking_id`, …).
//!
//! | field | on an event | on a span | value |
//! |---|---|---|---|
//! | [`SOURCE_FQN`] `source_fqn` | overrides the source FQN | applies to everything inside | `TYPE=name#…` text, see [`SourceFqn`](crate::SourceFqn); an invalid one stays a plain field and counts in `Stats::invalid_fields` |
//! | [`CORRELATOR`] `correlator` | adds correlators | every record inside inherits them | text; several separated by `,` |
//! | [`TRACKING_ID`] `tracking_id` | sets the record's tracking id | — | text (a UUID or any id) |
//! | [`LOCATION`] `location` | sets the location | inherited | text |
//! | [`SNAPSHOT`] `snapshot` | attaches a typed [`Snapshot`](crate::Snapshot) | — | `%snapshot` (its `Display` form) |
//! | `snapshot.<name>.<property>` | adds a property to snapshot `<name>` | — | any value; type inferred |
//!
//! ```
//! use tracing::{info, info_span};
//! use logship_core::fields;
//! let span = info_span!("order", correlator = "order-42", source_fqn = "APPL=shop#SERVER=web1");
//! let _e = span.enter();
//! info!(snapshot.order.total = 99.5, snapshot.order.items = 3_i64, "order placed");
//! # let _ = fields::CORRELATOR;
//! ```

/// `source_fqn`: the source FQN of the event, or of everything inside a span.
pub const SOURCE_FQN: &str = "source_fqn";
/// `correlator`: one or more (`,`-separated) correlators; on a span, inherited by its records.
pub const CORRELATOR: &str = "correlator";
/// `tracking_id`: an explicit tracking id for the event.
pub const TRACKING_ID: &str = "tracking_id";
/// `location`: the event's location (jKool `location`).
pub const LOCATION: &str = "location";
/// `snapshot`: a [`Snapshot`](crate::Snapshot) passed with `%`.
pub const SNAPSHOT: &str = "snapshot";
/// `snapshot.`: the prefix of dotted snapshot-property fields, `snapshot.<name>.<property>`.
pub const SNAPSHOT_PREFIX: &str = "snapshot.";
/// `message`: the field `tracing` uses for the formatted message.
pub const MESSAGE: &str = "message";
