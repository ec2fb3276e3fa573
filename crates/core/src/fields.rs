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
//!
//! # Repeated and reserved field names
//!
//! One rule, applied in the core so that every backend writes **each key once**:
//!
//! 1. **A repeated name keeps its last value**, at the position of its first occurrence:
//!    `info!(a = 1, a = "two")` ships `a = "two"`. The worker applies it when it prepares the
//!    record (never on the application's thread), so [`Record::fields`](crate::Record::fields)
//!    yields each name once; the properties of a snapshot likewise (one property per name). This
//!    is what every reader of a map with a repeated key keeps: `serde_json` (its `Map` inserts
//!    each entry in turn: serde-rs/json `src/value/de.rs`), a Python `dict`, a Ruby `Hash`
//!    (Fluentd's msgpack unpacker); `tracing-subscriber`'s JSON formatter writes both keys of
//!    an event (tokio-rs/tracing `tracing-subscriber/src/fmt/format/json.rs`, through
//!    `tracing_serde::SerdeMapVisitor`), so its readers see the later value too, and it keeps
//!    the later value of a span field outright (its `JsonVisitor` is a `BTreeMap`). Span
//!    fields already follow it: a re-recorded span field replaces the earlier value.
//! 2. **A field never shadows a key the backend writes itself, nor is shadowed by it.** When a
//!    field's name is one of a backend's own keys (Fluent: `message`, `level`, `target`,
//!    `spans`, `correlators`, `tracking_id`, …), the backend writes its key as usual and the
//!    field under [`renamed_key`]: the name with [`RENAMED_PREFIX`] (`_`) in front, repeated
//!    until the key is free (`level` → `_level`, or `__level` if a field `_level` exists too).
//!    Logstash does the same with a `@timestamp` it cannot use (renamed `_@timestamp`;
//!    logstash-plugins/logstash-filter-json `lib/logstash/filters/json.rb`) and with a `tags`
//!    field that is not a list (`_tags`), and GELF marks every user field with a leading `_`.
//!    A backend asks for the fields this way with
//!    [`Record::fields_beside`](crate::Record::fields_beside) and its own list of keys; which
//!    keys each backend reserves is in its documentation.
//!
//! Neither case is counted: the first is fixed at the call site (a macro that repeats a name
//! repeats it on every event), and the second loses nothing.

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

/// `_`: put in front of a field's name when a backend writes a key of that name itself (see
/// [the rule](self#repeated-and-reserved-field-names)).
pub const RENAMED_PREFIX: char = '_';

/// The key for a field named `name` that collides with a backend's own key: `name` with
/// [`RENAMED_PREFIX`] in front, as many times as needed for `taken` (the backend's own keys and
/// the record's field names) to say the key is free. Gives up after 16 prefixes (only a
/// `taken` that claims every such key gets there) and returns the last candidate.
///
/// ```
/// use logship_core::fields::renamed_key;
/// assert_eq!(renamed_key("level", |k| k == "level"), "_level");
/// assert_eq!(renamed_key("level", |k| k == "level" || k == "_level"), "__level");
/// ```
pub fn renamed_key(name: &str, taken: impl Fn(&str) -> bool) -> std::borrow::Cow<'static, str> {
    let mut key = String::with_capacity(name.len() + 1);
    key.push(RENAMED_PREFIX);
    key.push_str(name);
    for _ in 0..16 {
        if !taken(&key) {
            break;
        }
        key.insert(0, RENAMED_PREFIX);
    }
    std::borrow::Cow::Owned(key)
}
