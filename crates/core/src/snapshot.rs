//! Snapshots: named groups of typed properties attached to an event.
//!
//! A snapshot records the state of something at the time of an event: an order's total and
//! item count, a pool's free connections. It has a name, an optional category, and typed
//! [`Property`] values (jKool's `SNAPSHOT` object, the Python jKool streaming libraries (jKool PythonStreaming, TNT4PY)).
//!
//! Two ways to attach one from plain `tracing` macros:
//!
//! * **Dotted fields** (types inferred from the Rust value):
//!   `info!(snapshot.order.total = 99.5, snapshot.order.items = 3_i64, "order placed")`
//!   gives a snapshot `order` with a DOUBLE `total` and an INTEGER `items`.
//! * **The typed helper**, for a category or TIMESTAMP properties, passed with `%`:
//!
//! ```
//! use logship_core::{Snapshot, fields};
//! let snap = Snapshot::new("order")
//!     .with_category("sales")
//!     .with_property("total", 99.5)
//!     .with_property("express", true);
//! tracing::info!(snapshot = %snap, "order placed");
//! # assert_eq!(fields::SNAPSHOT, "snapshot");
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The type of a [`Property`] as backends name it (jKool's `type`, upper case on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum PropertyType {
    /// Text.
    String,
    /// A signed 64-bit integer (unsigned values above `i64::MAX` are sent as text).
    Integer,
    /// A 64-bit float.
    Double,
    /// `true` / `false`.
    Boolean,
    /// A UTC instant ([`Timestamp`]); on the wire as µs since the epoch for jKool.
    Timestamp,
}

impl PropertyType {
    /// The upper-case name, e.g. `INTEGER`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::String => "STRING",
            Self::Integer => "INTEGER",
            Self::Double => "DOUBLE",
            Self::Boolean => "BOOLEAN",
            Self::Timestamp => "TIMESTAMP",
        }
    }
}

/// A property's value; its [`PropertyType`] follows from the variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum PropertyValue {
    /// Text.
    String(String),
    /// A signed integer.
    Integer(i64),
    /// A float.
    Double(f64),
    /// A boolean.
    Boolean(bool),
    /// A UTC instant, in nanoseconds since the epoch.
    Timestamp(u64),
}

impl PropertyValue {
    /// The type of this value.
    pub fn property_type(&self) -> PropertyType {
        match self {
            Self::String(_) => PropertyType::String,
            Self::Integer(_) => PropertyType::Integer,
            Self::Double(_) => PropertyType::Double,
            Self::Boolean(_) => PropertyType::Boolean,
            Self::Timestamp(_) => PropertyType::Timestamp,
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for PropertyValue {
            fn from(v: $t) -> Self { Self::Integer(i64::from(v)) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for PropertyValue {
    fn from(v: u64) -> Self {
        i64::try_from(v).map_or_else(|_| Self::String(v.to_string()), Self::Integer)
    }
}
impl From<f64> for PropertyValue {
    fn from(v: f64) -> Self {
        Self::Double(v)
    }
}
impl From<f32> for PropertyValue {
    fn from(v: f32) -> Self {
        Self::Double(f64::from(v))
    }
}
impl From<bool> for PropertyValue {
    fn from(v: bool) -> Self {
        Self::Boolean(v)
    }
}
impl From<&str> for PropertyValue {
    fn from(v: &str) -> Self {
        Self::String(v.to_string())
    }
}
impl From<String> for PropertyValue {
    fn from(v: String) -> Self {
        Self::String(v)
    }
}
impl From<Timestamp> for PropertyValue {
    fn from(v: Timestamp) -> Self {
        Self::Timestamp(v.as_nanos())
    }
}
impl From<std::time::SystemTime> for PropertyValue {
    fn from(v: std::time::SystemTime) -> Self {
        Self::Timestamp(Timestamp::from(v).as_nanos())
    }
}

/// A named, typed value inside a [`Snapshot`] (or on an activity).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Property {
    /// The property's name.
    pub name: String,
    /// Its typed value.
    #[serde(flatten)]
    pub value: PropertyValue,
}

impl Property {
    /// A property; the type is inferred from `value`.
    pub fn new(name: impl Into<String>, value: impl Into<PropertyValue>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A named group of typed properties, with an optional category (see the [module docs](self)).
///
/// Its `Display` form is compact JSON, which is how it travels through a `tracing` field
/// (`snapshot = %snap`); the worker thread parses it back, off the caller's path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The snapshot's name, e.g. `order`.
    pub name: String,
    /// An optional category, e.g. `sales`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// When the state was observed; `None` means the event's own timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Timestamp>,
    /// The properties, in insertion order.
    #[serde(default)]
    pub properties: Vec<Property>,
}

impl Snapshot {
    /// An empty snapshot named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            category: None,
            time: None,
            properties: Vec::new(),
        }
    }

    /// Sets the category.
    pub fn with_category(mut self, category: impl Into<String>) -> Self {
        self.category = Some(category.into());
        self
    }

    /// Sets the observation time (default: the event's timestamp).
    pub fn with_time(mut self, time: impl Into<Timestamp>) -> Self {
        self.time = Some(time.into());
        self
    }

    /// Adds a property; the type is inferred from `value` (`i64` → INTEGER, `f64` → DOUBLE,
    /// `bool` → BOOLEAN, text → STRING, [`Timestamp`]/`SystemTime` → TIMESTAMP).
    pub fn with_property(
        mut self,
        name: impl Into<String>,
        value: impl Into<PropertyValue>,
    ) -> Self {
        self.properties.push(Property::new(name, value));
        self
    }

    /// Parses the `Display` form back.
    ///
    /// # Errors
    /// When `s` is not the JSON this type writes.
    pub fn parse(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.as_nanos())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u64::deserialize(d).map(Timestamp::from_nanos)
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips_with_types() {
        let s = Snapshot::new("order")
            .with_category("sales")
            .with_property("total", 99.5)
            .with_property("items", 3_i64)
            .with_property("express", true)
            .with_property("sku", "A-1")
            .with_property("at", Timestamp::from_nanos(5));
        let text = s.to_string();
        assert_eq!(Snapshot::parse(&text).unwrap(), s);
        let types: Vec<_> = s
            .properties
            .iter()
            .map(|p| p.value.property_type())
            .collect();
        assert_eq!(
            types,
            [
                PropertyType::Double,
                PropertyType::Integer,
                PropertyType::Boolean,
                PropertyType::String,
                PropertyType::Timestamp
            ]
        );
    }

    #[test]
    fn huge_u64_becomes_text() {
        assert_eq!(
            PropertyValue::from(u64::MAX).property_type(),
            PropertyType::String
        );
    }
}
