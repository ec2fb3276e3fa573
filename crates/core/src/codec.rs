//! A compact, versioned binary form of a [`Record`], used by the disk spool.
//!
//! Unlike the JSON form it keeps every type (i64 vs u64, 128-bit integers, errors with their
//! chain, span chains with tracking ids), so a spooled record replays exactly as it was
//! captured. Decoding never panics: a truncated or garbled input is a [`CodecError`].
//!
//! Layout (little-endian): version byte `1`, then the record's parts in a fixed order; strings
//! and lists are length-prefixed (`u32`). Callsite metadata is stored as text. A record with
//! OpenTelemetry ids ([`Record::trace_context`]) ends with an optional section: tag `1`, the
//! 16-byte trace id, the 8-byte span id; a record without them is encoded exactly as before
//! the section existed, and older files (without it) decode unchanged.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use smallvec::SmallVec;
use tracing_core::Level;

use crate::record::{
    ErrorChain, Extra, Field, FieldValue, Origin, OwnedMeta, Record, RecordKind, SpanContext,
    SpanFields, SpanTiming, TextBuf, ThreadInfo, TraceContext, TrackingId, intern_thread_name,
};
use crate::{Snapshot, SourceFqn, Timestamp};

const VERSION: u8 = 1;

/// Why bytes could not be decoded into a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended early.
    #[error("record bytes end early (needed {needed} more at offset {at})")]
    Truncated {
        /// Offset of the read that failed.
        at: usize,
        /// Bytes that were missing.
        needed: usize,
    },
    /// A tag or version is not one this version writes.
    #[error("unknown {what} tag {tag} at offset {at}")]
    BadTag {
        /// What was being read.
        what: &'static str,
        /// The tag found.
        tag: u8,
        /// Where.
        at: usize,
    },
    /// Text that is not UTF-8, or an embedded value that does not parse.
    #[error("invalid {what} at offset {at}")]
    Invalid {
        /// What was being read.
        what: &'static str,
        /// Where.
        at: usize,
    },
}

struct W<'a>(&'a mut Vec<u8>);

impl W<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
    fn value(&mut self, v: crate::Value<'_>) {
        use crate::Value as V;
        match v {
            V::Str(s) => {
                self.u8(0);
                self.str(s);
            }
            V::I64(x) => {
                self.u8(1);
                self.u64(x as u64);
            }
            V::U64(x) => {
                self.u8(2);
                self.u64(x);
            }
            V::I128(x) => {
                self.u8(3);
                self.u128(x as u128);
            }
            V::U128(x) => {
                self.u8(4);
                self.u128(x);
            }
            V::F64(x) => {
                self.u8(5);
                self.u64(x.to_bits());
            }
            V::Bool(x) => {
                self.u8(6);
                self.u8(u8::from(x));
            }
            V::Error(e) => {
                self.u8(7);
                self.str(&e.message);
                self.len(e.sources.len());
                for s in &e.sources {
                    self.str(s);
                }
            }
        }
    }
    fn tracking_id(&mut self, t: Option<&TrackingId>) {
        match t {
            None => self.u8(0),
            Some(TrackingId::Uuid(u)) => {
                self.u8(1);
                self.u128(u.as_u128());
            }
            Some(TrackingId::Custom(s)) => {
                self.u8(2);
                self.str(s);
            }
        }
    }
    fn strings(&mut self, v: &[String]) {
        self.len(v.len());
        for s in v {
            self.str(s);
        }
    }
}

/// Appends the binary form of `r` to `out`.
pub fn encode(r: &Record, out: &mut Vec<u8>) {
    let mut w = W(out);
    w.u8(VERSION);
    w.u8(match r.kind() {
        RecordKind::Event => 0,
        RecordKind::SpanTiming => 1,
    });
    w.u64(r.timestamp().as_nanos());
    w.u8(level_tag(r.level()));
    w.str(r.target());
    w.str(r.name());
    w.opt_str(r.module_path());
    w.opt_str(r.file());
    match r.line() {
        Some(l) => {
            w.u8(1);
            w.u32(l);
        }
        None => w.u8(0),
    }
    w.u64(r.thread().id);
    w.opt_str(r.thread().name);
    w.opt_str(r.message());
    w.len(r.fields.len());
    for f in &r.fields {
        w.str(&f.name);
        w.value(r.stored_value(&f.value));
    }
    // The span chain, outermost first.
    let mut chain: Vec<&SpanContext> =
        std::iter::successors(r.span.as_deref(), |s| s.parent.as_deref()).collect();
    chain.reverse();
    w.len(chain.len());
    for s in chain {
        w.str(&s.name);
        w.str(&s.target);
        w.len(s.fields.len());
        for (n, v) in &s.fields {
            w.str(n);
            w.value(v.as_value());
        }
        w.tracking_id(Some(s.tracking_id()));
        w.opt_str(s.source_fqn.as_ref().map(SourceFqn::as_str));
        w.strings(&s.correlators);
        w.opt_str(s.location.as_deref());
    }
    w.u8(match r.span_fields {
        SpanFields::None => 0,
        SpanFields::Leaf => 1,
        SpanFields::All => 2,
    });
    w.tracking_id(r.tracking_id());
    match r.timing() {
        Some(t) => {
            w.u8(1);
            w.u64(t.start.as_nanos());
            w.u64(t.end.as_nanos());
            w.u64(u64::try_from(t.duration.as_nanos()).unwrap_or(u64::MAX));
            w.u64(u64::try_from(t.busy.as_nanos()).unwrap_or(u64::MAX));
            w.u8(u8::from(t.failed));
        }
        None => w.u8(0),
    }
    w.opt_str(r.source_fqn().map(SourceFqn::as_str));
    w.strings(r.correlators());
    let snaps = if r.snapshots().is_empty() {
        String::new()
    } else {
        serde_json::to_string(r.snapshots()).unwrap_or_default()
    };
    w.str(&snaps);
    w.opt_str(r.location());
    if let Some(t) = r.trace_context() {
        w.u8(1);
        w.0.extend_from_slice(&t.trace_id());
        w.0.extend_from_slice(&t.span_id());
    }
}

fn level_tag(l: Level) -> u8 {
    match l {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        Level::DEBUG => 3,
        _ => 4,
    }
}

struct R<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or(CodecError::Truncated {
                at: self.at,
                needed: n.saturating_sub(self.b.len().saturating_sub(self.at)),
            })?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, CodecError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn u128(&mut self) -> Result<u128, CodecError> {
        let mut a = [0u8; 16];
        a.copy_from_slice(self.take(16)?);
        Ok(u128::from_le_bytes(a))
    }
    fn len(&mut self) -> Result<usize, CodecError> {
        let n = self.u32()? as usize;
        // Every element takes at least one byte: a length beyond the input is corrupt.
        if n > self.b.len().saturating_sub(self.at) {
            return Err(CodecError::Invalid {
                what: "length",
                at: self.at,
            });
        }
        Ok(n)
    }
    fn str(&mut self) -> Result<&'a str, CodecError> {
        let n = self.len()?;
        let at = self.at;
        std::str::from_utf8(self.take(n)?).map_err(|_| CodecError::Invalid { what: "text", at })
    }
    fn opt_str(&mut self) -> Result<Option<&'a str>, CodecError> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            tag => Err(CodecError::BadTag {
                what: "option",
                tag,
                at: self.at - 1,
            }),
        }
    }
    fn value(&mut self) -> Result<FieldValue, CodecError> {
        let at = self.at;
        Ok(match self.u8()? {
            0 => FieldValue::Str(self.str()?.to_string()),
            1 => FieldValue::I64(self.u64()? as i64),
            2 => FieldValue::U64(self.u64()?),
            3 => FieldValue::I128(self.u128()? as i128),
            4 => FieldValue::U128(self.u128()?),
            5 => FieldValue::F64(f64::from_bits(self.u64()?)),
            6 => FieldValue::Bool(self.u8()? != 0),
            7 => {
                let message = self.str()?.to_string();
                let n = self.len()?;
                let mut sources = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    sources.push(self.str()?.to_string());
                }
                FieldValue::Error(ErrorChain { message, sources })
            }
            tag => {
                return Err(CodecError::BadTag {
                    what: "value",
                    tag,
                    at,
                });
            }
        })
    }
    fn tracking_id(&mut self) -> Result<Option<TrackingId>, CodecError> {
        let at = self.at;
        Ok(match self.u8()? {
            0 => None,
            1 => Some(TrackingId::Uuid(uuid::Uuid::from_u128(self.u128()?))),
            2 => Some(TrackingId::Custom(self.str()?.into())),
            tag => {
                return Err(CodecError::BadTag {
                    what: "tracking id",
                    tag,
                    at,
                });
            }
        })
    }
    fn strings(&mut self) -> Result<Vec<String>, CodecError> {
        let n = self.len()?;
        let mut v = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            v.push(self.str()?.to_string());
        }
        Ok(v)
    }
    fn fqn(&mut self) -> Result<Option<SourceFqn>, CodecError> {
        let at = self.at;
        match self.opt_str()? {
            Some(s) => SourceFqn::parse(s)
                .map(Some)
                .map_err(|_| CodecError::Invalid {
                    what: "source FQN",
                    at,
                }),
            None => Ok(None),
        }
    }
}

/// Decodes one record written by [`encode`].
///
/// # Errors
/// [`CodecError`] when the bytes are truncated, carry an unknown tag or version, or hold
/// invalid text.
pub fn decode(bytes: &[u8]) -> Result<Record, CodecError> {
    let mut r = R { b: bytes, at: 0 };
    let v = r.u8()?;
    if v != VERSION {
        return Err(CodecError::BadTag {
            what: "version",
            tag: v,
            at: 0,
        });
    }
    let kind = match r.u8()? {
        0 => RecordKind::Event,
        1 => RecordKind::SpanTiming,
        tag => {
            return Err(CodecError::BadTag {
                what: "kind",
                tag,
                at: 1,
            });
        }
    };
    let timestamp = Timestamp::from_nanos(r.u64()?);
    let at = r.at;
    let level = match r.u8()? {
        0 => Level::ERROR,
        1 => Level::WARN,
        2 => Level::INFO,
        3 => Level::DEBUG,
        4 => Level::TRACE,
        tag => {
            return Err(CodecError::BadTag {
                what: "level",
                tag,
                at,
            });
        }
    };
    let target = r.str()?.to_string();
    let name = r.str()?.to_string();
    let module_path = r.opt_str()?.map(str::to_string);
    let file = r.opt_str()?.map(str::to_string);
    let line = match r.u8()? {
        0 => None,
        _ => Some(r.u32()?),
    };
    let thread = ThreadInfo {
        id: r.u64()?,
        name: r.opt_str()?.and_then(intern_thread_name),
    };
    let mut rec = Record::blank();
    rec.kind = kind;
    rec.timestamp = timestamp;
    rec.level = level;
    rec.origin = Origin::Owned(Arc::new(OwnedMeta::new(
        target,
        name,
        module_path,
        file,
        line,
    )));
    rec.thread = thread;
    rec.text = TextBuf::default();
    if let Some(m) = r.opt_str()? {
        rec.set_message_str(m);
    }
    let n = r.len()?;
    let mut fields: SmallVec<[Field; 6]> = SmallVec::new();
    for _ in 0..n {
        let name = r.str()?.to_string();
        let value = r.value()?;
        let value = rec.store(value);
        fields.push(Field {
            name: Cow::Owned(name),
            value,
        });
    }
    rec.fields = fields;
    let spans = r.len()?;
    let mut parent: Option<Arc<SpanContext>> = None;
    for _ in 0..spans {
        let name = r.str()?.to_string();
        let target = r.str()?.to_string();
        let nf = r.len()?;
        let mut fields = Vec::with_capacity(nf.min(64));
        for _ in 0..nf {
            let n = r.str()?.to_string();
            fields.push((Cow::Owned(n), r.value()?));
        }
        let at = r.at;
        let tracking_id = r.tracking_id()?.ok_or(CodecError::Invalid {
            what: "span tracking id",
            at,
        })?;
        let source_fqn = r.fqn()?;
        let correlators = r.strings()?;
        let location = r.opt_str()?.map(str::to_string);
        parent = Some(Arc::new(SpanContext {
            meta: None,
            name: Cow::Owned(name),
            target: Cow::Owned(target),
            fields: fields.into(),
            tracking_id: tracking_id.into(),
            parent: parent.take(),
            source_fqn,
            correlators,
            location,
            trace: std::sync::OnceLock::new(),
        }));
    }
    rec.span = parent;
    let at = r.at;
    rec.span_fields = match r.u8()? {
        0 => SpanFields::None,
        1 => SpanFields::Leaf,
        2 => SpanFields::All,
        tag => {
            return Err(CodecError::BadTag {
                what: "span fields",
                tag,
                at,
            });
        }
    };
    rec.tracking_id = r.tracking_id()?;
    let mut extra = Extra::default();
    if r.u8()? == 1 {
        rec.timing = Some(SpanTiming {
            start: Timestamp::from_nanos(r.u64()?),
            end: Timestamp::from_nanos(r.u64()?),
            duration: Duration::from_nanos(r.u64()?),
            busy: Duration::from_nanos(r.u64()?),
            failed: r.u8()? != 0,
        });
    }
    rec.source_fqn = r.fqn()?;
    extra.correlators = r.strings()?;
    let at = r.at;
    let snaps = r.str()?;
    if !snaps.is_empty() {
        extra.snapshots =
            serde_json::from_str::<Vec<Snapshot>>(snaps).map_err(|_| CodecError::Invalid {
                what: "snapshots",
                at,
            })?;
    }
    extra.location = r.opt_str()?.map(str::to_string);
    if r.at < bytes.len() {
        let at = r.at;
        match r.u8()? {
            1 => {
                let trace_id: [u8; 16] = r.take(16)?.try_into().unwrap_or_default();
                let span_id: [u8; 8] = r.take(8)?.try_into().unwrap_or_default();
                extra.trace = Some(TraceContext::new(trace_id, span_id).ok_or(
                    CodecError::Invalid {
                        what: "trace context",
                        at,
                    },
                )?);
            }
            tag => {
                return Err(CodecError::BadTag {
                    what: "trailing section",
                    tag,
                    at,
                });
            }
        }
    }
    rec.extra = Some(Box::new(extra)).filter(|e| {
        !e.correlators.is_empty()
            || !e.snapshots.is_empty()
            || e.location.is_some()
            || e.trace.is_some()
    });
    if r.at != bytes.len() {
        return Err(CodecError::Invalid {
            what: "trailing bytes",
            at: r.at,
        });
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    fn sample() -> Record {
        let span = Arc::new(SpanContext {
            meta: None,
            name: "outer".into(),
            target: "t".into(),
            fields: smallvec::smallvec![("user".into(), FieldValue::Str("ann".into()))],
            tracking_id: TrackingId::new().into(),
            parent: None,
            source_fqn: SourceFqn::parse("APPL=a#SERVER=b").ok(),
            correlators: vec!["c1".into()],
            location: Some("here".into()),
            trace: std::sync::OnceLock::new(),
        });
        let mut r = Record::event(Level::WARN, "shop::orders")
            .with_message("hello")
            .with_field("i", -5_i64)
            .with_field("u", 7_u64)
            .with_field("big", u128::MAX)
            .with_field("neg", i128::MIN)
            .with_field("f", 1.5)
            .with_field("b", true)
            .with_field("s", "text")
            .with_field(
                "e",
                FieldValue::Error(ErrorChain {
                    message: "m".into(),
                    sources: vec!["s1".into()],
                }),
            )
            .with_snapshot(Snapshot::new("order").with_property("total", 9.5))
            .with_source_position("shop::orders", "src/orders.rs", 42)
            .build();
        r.span = Some(span);
        let mut invalid = 0;
        r.prepare(None, &mut invalid);
        r
    }

    #[test]
    fn round_trip_keeps_every_type() {
        let r = sample();
        let mut buf = Vec::new();
        encode(&r, &mut buf);
        let d = decode(&buf).unwrap();
        assert_eq!(d.message(), Some("hello"));
        assert_eq!(d.level(), Level::WARN);
        assert_eq!(d.target(), "shop::orders");
        assert_eq!(d.line(), Some(42));
        let a: Vec<(String, String)> = r
            .fields()
            .map(|(n, v)| (n.to_string(), format!("{v:?}")))
            .collect();
        let b: Vec<(String, String)> = d
            .fields()
            .map(|(n, v)| (n.to_string(), format!("{v:?}")))
            .collect();
        assert_eq!(a, b);
        assert_eq!(d.field("big"), Some(Value::U128(u128::MAX)));
        assert_eq!(d.tracking_id(), r.tracking_id());
        assert_eq!(d.parent_tracking_id(), r.parent_tracking_id());
        assert_eq!(d.correlators(), r.correlators());
        assert_eq!(d.source_fqn(), r.source_fqn());
        assert_eq!(d.snapshots(), r.snapshots());
        assert_eq!(d.spans().count(), 1);
        let mut again = Vec::new();
        encode(&d, &mut again);
        assert_eq!(again, buf, "encode(decode(x)) == x");
    }

    #[test]
    fn trace_context_round_trips_and_records_without_one_keep_the_old_layout() {
        let t = TraceContext::new([0xab; 16], [0x01, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let mut plain = Vec::new();
        encode(&sample(), &mut plain);
        // The span's ids (as the layer sets them) are what the record carries.
        let r = sample();
        let span = r.span.clone().unwrap();
        span.trace.set(Some(t)).unwrap();
        let mut buf = Vec::new();
        encode(&r, &mut buf);
        assert_eq!(buf.len(), plain.len() + 1 + 16 + 8, "one trailing section");
        let d = decode(&buf).unwrap();
        assert_eq!(d.trace_context(), Some(&t));
        let mut again = Vec::new();
        encode(&d, &mut again);
        assert_eq!(again, buf, "encode(decode(x)) == x");
        // A record spooled before the section existed (no trailer) decodes without ids.
        let mut old = buf[..plain.len()].to_vec();
        assert_eq!(decode(&old).unwrap().trace_context(), None);
        // An unknown trailing tag, a short section, all-zero ids: errors, not panics.
        old.push(9);
        assert!(decode(&old).is_err());
        assert!(decode(&buf[..buf.len() - 1]).is_err());
        let mut zero = buf[..plain.len() + 1].to_vec();
        zero.extend_from_slice(&[0; 24]);
        assert!(decode(&zero).is_err());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        encode(&sample(), &mut buf);
        for n in 0..buf.len() {
            assert!(decode(&buf[..n]).is_err(), "prefix of {n} bytes decoded");
        }
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }
    }
}
