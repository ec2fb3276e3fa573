//! Typed field capture (the OpenTelemetry bridge's approach: keep types, format nothing but
//! `Debug` values, and write text into the record's one buffer).

use std::borrow::Cow;
use std::fmt;

use tracing_core::field::{Field, Visit};

use crate::record::{ErrorChain, FieldValue, Record, SpanContext, Stored};
use crate::{SourceFqn, fields};

/// Writes an event's fields into a [`Record`].
pub(crate) struct EventVisitor<'a> {
    pub(crate) record: &'a mut Record,
}

impl Visit for EventVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == fields::MESSAGE {
            self.record.set_message_debug(value);
        } else {
            self.record
                .push_debug_field(Cow::Borrowed(field.name()), value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == fields::MESSAGE {
            self.record.set_message_str(value);
        } else {
            self.record
                .push_str_field(Cow::Borrowed(field.name()), value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record
            .push_stored(Cow::Borrowed(field.name()), Stored::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record
            .push_stored(Cow::Borrowed(field.name()), Stored::U64(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.record
            .push_value(Cow::Borrowed(field.name()), FieldValue::I128(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.record
            .push_value(Cow::Borrowed(field.name()), FieldValue::U128(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.record
            .push_stored(Cow::Borrowed(field.name()), Stored::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record
            .push_stored(Cow::Borrowed(field.name()), Stored::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record.push_value(
            Cow::Borrowed(field.name()),
            FieldValue::Error(ErrorChain::capture(value)),
        );
    }
}

/// An [`EventVisitor`] for events from the `log` crate (through `tracing-log`): skips the
/// `log.target`, `log.module_path`, `log.file` and `log.line` fields, which the record carries
/// as its metadata instead.
pub(crate) struct LogEventVisitor<'a>(pub(crate) EventVisitor<'a>);

impl LogEventVisitor<'_> {
    fn skip(field: &Field) -> bool {
        matches!(
            field.name(),
            "log.target" | "log.module_path" | "log.file" | "log.line"
        )
    }
}

macro_rules! forward_unless_log {
    ($($m:ident($t:ty)),* $(,)?) => {$(
        fn $m(&mut self, field: &Field, value: $t) {
            if !Self::skip(field) {
                self.0.$m(field, value);
            }
        }
    )*};
}

impl Visit for LogEventVisitor<'_> {
    forward_unless_log!(
        record_debug(&dyn fmt::Debug),
        record_str(&str),
        record_i64(i64),
        record_u64(u64),
        record_i128(i128),
        record_u128(u128),
        record_f64(f64),
        record_bool(bool),
        record_error(&(dyn std::error::Error + 'static)),
    );
}

/// Writes a span's fields into its [`SpanContext`], interpreting conventional fields.
pub(crate) struct SpanVisitor<'a> {
    pub(crate) ctx: &'a mut SpanContext,
    /// Set when an error value was recorded.
    pub(crate) failed: bool,
}

impl SpanVisitor<'_> {
    fn put(&mut self, field: &Field, value: FieldValue) {
        let name = field.name();
        if let FieldValue::Str(text) = &value {
            match name {
                fields::SOURCE_FQN => {
                    if let Ok(fqn) = SourceFqn::parse(text) {
                        self.ctx.source_fqn = Some(fqn);
                        return;
                    }
                }
                fields::CORRELATOR => {
                    for c in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                        if !self.ctx.correlators.iter().any(|x| x == c) {
                            self.ctx.correlators.push(c.to_string());
                        }
                    }
                    return;
                }
                fields::LOCATION => {
                    self.ctx.location = Some(text.clone());
                    return;
                }
                _ => {}
            }
        }
        if matches!(value, FieldValue::Error(_)) {
            self.failed = true;
        }
        // A re-recorded field replaces the earlier value (tracing's `Span::record` semantics).
        if let Some(slot) = self.ctx.fields.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = value;
        } else {
            self.ctx.fields.push((Cow::Borrowed(name), value));
        }
    }
}

impl Visit for SpanVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, FieldValue::Str(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, FieldValue::Str(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, FieldValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, FieldValue::U64(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.put(field, FieldValue::I128(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.put(field, FieldValue::U128(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, FieldValue::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, FieldValue::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, FieldValue::Error(ErrorChain::capture(value)));
    }
}
