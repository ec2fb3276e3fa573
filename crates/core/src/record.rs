//! The owned [`Record`] that travels from the caller's thread to the worker.
//!
//! A record is either an **event** (a `tracing` event, or one built with [`Record::event`]) or
//! a **span timing** (a closed span, with [`SpanTiming`]). It owns everything a backend needs to
//! encode it later on the worker thread: metadata, the message, typed fields in call order, the
//! enclosing spans, the source FQN, correlators, tracking ids and snapshots.
//!
//! Capture is built for the hot path: the message and all text field values share one
//! buffer (one heap allocation for a typical event), up to six fields are stored inline,
//! spans are shared (`Arc`) rather than copied, and everything derived (tracking id, snapshots
//! parsed from fields, the resolved source FQN) is computed later on the worker thread.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::Duration;

use smallvec::SmallVec;
use tracing_core::{Level, Metadata};

use crate::{Snapshot, SourceFqn, Timestamp};

/// Whether a record is an event or a span timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordKind {
    /// A log event.
    Event,
    /// A closed span's timing; see [`Record::timing`].
    SpanTiming,
}

/// How many enclosing spans a record carries for encoding (per layer; see [`Record::spans`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SpanFields {
    /// No span names or fields (correlators and the source FQN are still inherited).
    None,
    /// Only the innermost span.
    Leaf,
    /// All enclosing spans, outermost first (default).
    #[default]
    All,
}

/// The W3C Trace Context ids of the OpenTelemetry span a record belongs to: the 16-byte
/// trace id and the 8-byte span id, as in the `traceparent` header
/// (<https://www.w3.org/TR/trace-context/#traceparent-header>).
///
/// Captured by the layer when the `opentelemetry` feature is on and a span (or an ancestor)
/// carries an OpenTelemetry context set by `tracing-opentelemetry`; see
/// [`Record::trace_context`] and docs/opentelemetry.md. Backends write the ids as lowercase hex:
/// [`trace_id_hex`](Self::trace_id_hex) (32 characters) and [`span_id_hex`](Self::span_id_hex)
/// (16 characters).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
}

impl TraceContext {
    /// Ids from their bytes (big-endian, as OpenTelemetry's `TraceId::to_bytes` and
    /// `SpanId::to_bytes` give them). `None` when either is all zeros: the W3C spec makes an
    /// all-zero trace id or parent id invalid.
    pub fn new(trace_id: [u8; 16], span_id: [u8; 8]) -> Option<Self> {
        (trace_id != [0; 16] && span_id != [0; 8]).then_some(Self { trace_id, span_id })
    }
    /// Ids from their lowercase or uppercase hex forms (32 and 16 hex digits), e.g. as decoded
    /// from a spooled or dead-lettered record. `None` when malformed or all zeros.
    pub fn from_hex(trace_id: &str, span_id: &str) -> Option<Self> {
        fn parse<const N: usize>(s: &str) -> Option<[u8; N]> {
            let b = s.as_bytes();
            if b.len() != 2 * N {
                return None;
            }
            let mut out = [0u8; N];
            for (i, o) in out.iter_mut().enumerate() {
                let hi = (b[2 * i] as char).to_digit(16)?;
                let lo = (b[2 * i + 1] as char).to_digit(16)?;
                *o = u8::try_from(hi * 16 + lo).ok()?;
            }
            Some(out)
        }
        Self::new(parse(trace_id)?, parse(span_id)?)
    }
    /// The trace id's 16 bytes.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }
    /// The span id's 8 bytes.
    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }
    /// The trace id as 32 lowercase hex digits (no allocation).
    pub fn trace_id_hex(&self) -> HexId<32> {
        HexId::of(&self.trace_id)
    }
    /// The span id as 16 lowercase hex digits (no allocation).
    pub fn span_id_hex(&self) -> HexId<16> {
        HexId::of(&self.span_id)
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContext")
            .field("trace_id", &self.trace_id_hex().as_str())
            .field("span_id", &self.span_id_hex().as_str())
            .finish()
    }
}

/// An id written as `N` lowercase hex digits on the stack; see [`TraceContext::trace_id_hex`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HexId<const N: usize>([u8; N]);

impl<const N: usize> HexId<N> {
    fn of(bytes: &[u8]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'0'; N];
        for (i, b) in bytes.iter().enumerate().take(N / 2) {
            out[2 * i] = DIGITS[usize::from(b >> 4)];
            out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
        }
        Self(out)
    }
    /// The hex digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl<const N: usize> fmt::Display for HexId<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> fmt::Debug for HexId<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A tracking id: the unique id of one record (jKool `tracking-id`).
///
/// Set on the worker thread for every record (a UUID v4), unless the event set one with the
/// [`fields::TRACKING_ID`](crate::fields::TRACKING_ID) field. For a `tracing` event it is derived
/// from the event's identity (its thread and per-thread sequence number, taken once on the
/// caller's thread) with a keyed 128-bit mix whose key is random per process, so every logship
/// layer gives one event the same id; records built with [`Record::event`] get a random one.
/// Spans get one when created; events inside a span carry it as their parent tracking id.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum TrackingId {
    /// A generated UUID.
    Uuid(uuid::Uuid),
    /// A caller-supplied id.
    Custom(Arc<str>),
}

impl TrackingId {
    /// A fresh random (v4) id.
    pub fn new() -> Self {
        Self::Uuid(uuid::Uuid::new_v4())
    }

    /// The id of the `seq`th event captured on the thread numbered `thread`: a UUID with the
    /// v4 layout whose 122 free bits come from a keyed 128-bit mix of `(thread, seq)`, with a
    /// key drawn at random once per process. The same in every layer and worker of the
    /// process; distinct for distinct `(thread, seq)` (the mix is a bijection, so two ids can
    /// only meet in the 6 bits the v4 layout fixes: as unlikely as for random v4s); and, the key
    /// being random, unrelated between processes like random v4s. About 5 ns, against 12 for
    /// a random v4 and 46 for two SipHash calls (worker-side cost per record).
    pub(crate) fn derived(thread: u64, seq: u64) -> Self {
        // Odd multipliers (PCG's 128-bit LCG multiplier and increment, forced odd): each step
        // (xor with a key, multiply by an odd constant, add a key, xor-shift) is invertible.
        const M1: u128 = 0x2360_ed05_1fc6_5da4_4385_df64_9fcc_f645;
        const M2: u128 = 0x5851_f42d_4c95_7f2d_1405_7b7e_f767_814f;
        static KEY: std::sync::OnceLock<(u128, u128)> = std::sync::OnceLock::new();
        let (k0, k1) = *KEY.get_or_init(|| (rand::random(), rand::random()));
        let mut x = ((u128::from(thread) << 64) | u128::from(seq)) ^ k0;
        x = x.wrapping_mul(M1);
        x ^= x >> 67;
        x = x.wrapping_add(k1).wrapping_mul(M2);
        x ^= x >> 59;
        x = x.wrapping_mul(M1);
        x ^= x >> 64;
        Self::Uuid(uuid::Builder::from_random_bytes(x.to_be_bytes()).into_uuid())
    }
}

impl Default for TrackingId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TrackingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uuid(u) => fmt::Display::fmt(&u.hyphenated(), f),
            Self::Custom(s) => f.write_str(s),
        }
    }
}

impl fmt::Debug for TrackingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrackingId({self})")
    }
}

/// The thread a record was captured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadInfo {
    /// logship's number for the thread: unique within the process, stable for the thread's life,
    /// starting at 1 (not the OS thread id).
    pub id: u64,
    /// The thread's name, if it has one. Names are interned once per distinct name (so copying
    /// this costs nothing on the caller's path); past [`MAX_INTERNED_THREAD_NAMES`] distinct
    /// names, new ones are reported as `None`.
    pub name: Option<&'static str>,
}

/// How many distinct thread names are interned (the memory this takes is bounded by it).
pub const MAX_INTERNED_THREAD_NAMES: usize = 4096;

pub(crate) fn intern_thread_name(name: &str) -> Option<&'static str> {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = NAMES.get_or_init(Default::default).lock().ok()?;
    if let Some(n) = set.get(name) {
        return Some(n);
    }
    if set.len() >= MAX_INTERNED_THREAD_NAMES {
        return None;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    set.insert(leaked);
    Some(leaked)
}

impl ThreadInfo {
    /// The calling thread's info (computed once per thread).
    pub fn current() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        thread_local! {
            static CURRENT: ThreadInfo = ThreadInfo {
                id: NEXT.fetch_add(1, Ordering::Relaxed),
                name: std::thread::current().name().and_then(intern_thread_name),
            };
        }
        CURRENT
            .try_with(|t| *t)
            .unwrap_or(ThreadInfo { id: 0, name: None })
    }
}

/// An error value with its source chain, captured from `&dyn Error` fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorChain {
    /// The error's `Display` text.
    pub message: String,
    /// The `Display` text of each `source()`, outermost first.
    pub sources: Vec<String>,
}

impl ErrorChain {
    /// Captures `err` and its whole source chain.
    pub fn capture(err: &(dyn std::error::Error + 'static)) -> Self {
        let mut sources = Vec::new();
        let mut cur = err.source();
        while let Some(e) = cur {
            if sources.len() >= 32 {
                break;
            }
            sources.push(e.to_string());
            cur = e.source();
        }
        Self {
            message: err.to_string(),
            sources,
        }
    }
}

impl fmt::Display for ErrorChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for s in &self.sources {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

/// A typed field value, borrowed from a [`Record`] or a [`SpanContext`].
///
/// `Debug`-formatted values (`?x`, `%x` and `format_args!`) arrive as [`Value::Str`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value<'a> {
    /// Text.
    Str(&'a str),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A signed 128-bit integer.
    I128(i128),
    /// An unsigned 128-bit integer.
    U128(u128),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// An error with its source chain.
    Error(&'a ErrorChain),
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::I64(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::I128(v) => write!(f, "{v}"),
            Value::U128(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Error(e) => write!(f, "{e}"),
        }
    }
}

/// An owned field value, for building records and span fields.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum FieldValue {
    /// Text.
    Str(String),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A signed 128-bit integer.
    I128(i128),
    /// An unsigned 128-bit integer.
    U128(u128),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// An error with its source chain.
    Error(ErrorChain),
}

impl FieldValue {
    /// Borrows as a [`Value`].
    pub fn as_value(&self) -> Value<'_> {
        match self {
            Self::Str(s) => Value::Str(s),
            Self::I64(v) => Value::I64(*v),
            Self::U64(v) => Value::U64(*v),
            Self::I128(v) => Value::I128(*v),
            Self::U128(v) => Value::U128(*v),
            Self::F64(v) => Value::F64(*v),
            Self::Bool(v) => Value::Bool(*v),
            Self::Error(e) => Value::Error(e),
        }
    }
}

macro_rules! field_from {
    ($($t:ty => $v:ident via $conv:expr),* $(,)?) => {$(
        impl From<$t> for FieldValue {
            fn from(v: $t) -> Self { FieldValue::$v($conv(v)) }
        }
    )*};
}
field_from!(
    i8 => I64 via i64::from, i16 => I64 via i64::from, i32 => I64 via i64::from, i64 => I64 via i64::from,
    u8 => U64 via u64::from, u16 => U64 via u64::from, u32 => U64 via u64::from, u64 => U64 via u64::from,
    i128 => I128 via i128::from, u128 => U128 via u128::from,
    f32 => F64 via f64::from, f64 => F64 via f64::from, bool => Bool via bool::from,
    String => Str via String::from, &str => Str via String::from,
);

/// Bytes of text (message and text field values) a record stores inline, without a heap
/// allocation; longer text spills to the heap.
pub(crate) const TEXT_INLINE: usize = 192;

/// A record's text: UTF-8 written only from `&str` and `fmt` output, inline up to
/// [`TEXT_INLINE`] bytes.
#[derive(Clone, Debug, Default)]
pub(crate) struct TextBuf(SmallVec<[u8; TEXT_INLINE]>);

impl TextBuf {
    pub(crate) fn push_str(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
    /// Heap bytes held (0 while inline).
    pub(crate) fn heap_capacity(&self) -> usize {
        if self.0.spilled() {
            self.0.capacity()
        } else {
            0
        }
    }
    /// Drops a large heap buffer (before recycling).
    pub(crate) fn shrink_if_larger(&mut self, max: usize) {
        if self.heap_capacity() > max {
            self.0 = SmallVec::new();
        }
    }
    fn get(&self, start: usize, end: usize) -> &str {
        self.0
            .get(start..end)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

impl fmt::Write for TextBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

/// Text stored in a record's shared buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TextRange {
    start: u32,
    len: u32,
}

impl TextRange {
    fn get(self, text: &TextBuf) -> &str {
        let start = self.start as usize;
        text.get(start, start + self.len as usize)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Stored {
    Str(TextRange),
    I64(i64),
    U64(u64),
    /// Rare, boxed so that every field slot stays 16 bytes.
    I128(Box<i128>),
    /// Rare, boxed so that every field slot stays 16 bytes.
    U128(Box<u128>),
    F64(f64),
    Bool(bool),
    Error(Box<ErrorChain>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Field {
    pub(crate) name: Cow<'static, str>,
    pub(crate) value: Stored,
}

/// Metadata of a record not built from a `tracing` callsite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OwnedMeta {
    target: String,
    name: String,
    module_path: Option<String>,
    file: Option<String>,
    line: Option<u32>,
}

impl OwnedMeta {
    pub(crate) fn new(
        target: String,
        name: String,
        module_path: Option<String>,
        file: Option<String>,
        line: Option<u32>,
    ) -> Self {
        Self {
            target,
            name,
            module_path,
            file,
            line,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Origin {
    Callsite(&'static Metadata<'static>),
    Owned(Arc<OwnedMeta>),
    /// A recycled record waiting in the pool.
    Blank,
}

/// The timing of a closed span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanTiming {
    /// When the span was created (UTC): `end` minus `duration`, so the two never disagree even
    /// if the wall clock is adjusted while the span is open.
    pub start: Timestamp,
    /// When the span closed (UTC).
    pub end: Timestamp,
    /// Wall-clock duration from creation to close, measured on a monotonic clock.
    pub duration: Duration,
    /// Busy duration: the sum of the intervals during which the span was entered, measured on a
    /// monotonic clock. At most `duration`.
    pub busy: Duration,
    /// Whether the span failed: it recorded an error value, or an ERROR event happened in it.
    pub failed: bool,
}

/// A span as records see it: name, fields, tracking id, and its own correlators and source
/// FQN. Shared (`Arc`) between the span and every record captured inside it.
#[derive(Debug)]
pub struct SpanContext {
    pub(crate) meta: Option<&'static Metadata<'static>>,
    pub(crate) name: Cow<'static, str>,
    pub(crate) target: Cow<'static, str>,
    /// Inline for up to two fields: a span with few fields costs no allocation of its own.
    pub(crate) fields: SmallVec<[(Cow<'static, str>, FieldValue); 2]>,
    /// Generated on first use (on a worker thread, not the caller's), once: see
    /// [`tracking_id`](Self::tracking_id).
    pub(crate) tracking_id: std::sync::OnceLock<TrackingId>,
    pub(crate) parent: Option<Arc<SpanContext>>,
    pub(crate) source_fqn: Option<SourceFqn>,
    pub(crate) correlators: Vec<String>,
    pub(crate) location: Option<String>,
    /// The OpenTelemetry ids (its own, else the nearest ancestor's), looked up once by the
    /// layer (feature `opentelemetry`): unset until then, `None` when no span in the chain
    /// has an OpenTelemetry context.
    pub(crate) trace: std::sync::OnceLock<Option<TraceContext>>,
}

impl Clone for SpanContext {
    fn clone(&self) -> Self {
        Self {
            meta: self.meta,
            name: self.name.clone(),
            target: self.target.clone(),
            fields: self.fields.clone(),
            // Fixed before copying, so the copy (a copy-on-write update of the span) and the
            // records still holding the original agree on the span's id.
            tracking_id: std::sync::OnceLock::from(self.tracking_id().clone()),
            parent: self.parent.clone(),
            source_fqn: self.source_fqn.clone(),
            correlators: self.correlators.clone(),
            location: self.location.clone(),
            trace: self.trace.clone(),
        }
    }
}

impl SpanContext {
    /// An empty context, to be filled in place (see `capture::span::blank_ctx`).
    pub(crate) fn blank() -> Self {
        Self {
            meta: None,
            name: Cow::Borrowed(""),
            target: Cow::Borrowed(""),
            fields: SmallVec::new(),
            tracking_id: std::sync::OnceLock::new(),
            parent: None,
            source_fqn: None,
            correlators: Vec::new(),
            location: None,
            trace: std::sync::OnceLock::new(),
        }
    }

    /// Clears the context for reuse, keeping the correlators' capacity; returns the parent it
    /// held (for the caller to recycle or drop).
    pub(crate) fn clear_for_reuse(&mut self) -> Option<Arc<SpanContext>> {
        self.meta = None;
        self.name = Cow::Borrowed("");
        self.target = Cow::Borrowed("");
        self.fields.clear();
        self.tracking_id = std::sync::OnceLock::new();
        self.source_fqn = None;
        self.correlators.clear();
        self.location = None;
        self.trace = std::sync::OnceLock::new();
        self.parent.take()
    }

    /// The span's name (for `#[instrument]`, the function's name).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The span's target.
    pub fn target(&self) -> &str {
        &self.target
    }
    /// The span's `tracing` metadata, when it came from a callsite.
    pub fn metadata(&self) -> Option<&'static Metadata<'static>> {
        self.meta
    }
    /// The span's fields (conventional fields such as the source FQN and correlators are not
    /// repeated here), in the order they were recorded.
    pub fn fields(&self) -> impl Iterator<Item = (&str, Value<'_>)> {
        self.fields.iter().map(|(n, v)| (&**n, v.as_value()))
    }
    /// The span's tracking id: a random UUID v4, generated the first time any thread asks
    /// (the span's own records, its children's) and the same for every one of them.
    pub fn tracking_id(&self) -> &TrackingId {
        self.tracking_id.get_or_init(TrackingId::new)
    }
    /// The enclosing span.
    pub fn parent(&self) -> Option<&SpanContext> {
        self.parent.as_deref()
    }
    /// The source FQN set on this span, if any (not inherited).
    pub fn source_fqn(&self) -> Option<&SourceFqn> {
        self.source_fqn.as_ref()
    }
    /// The correlators set on this span (not inherited).
    pub fn correlators(&self) -> &[String] {
        &self.correlators
    }
    /// The OpenTelemetry trace and span ids of this span, or of its nearest ancestor that has
    /// them (feature `opentelemetry`; `None` without it, or while the layer has not looked
    /// them up yet).
    pub fn trace_context(&self) -> Option<&TraceContext> {
        self.trace.get().and_then(Option::as_ref)
    }
    /// Chain from this span outwards.
    fn chain(&self) -> impl Iterator<Item = &SpanContext> {
        std::iter::successors(Some(self), |s| s.parent.as_deref())
    }
}

/// The rarely-set parts of a record.
#[derive(Clone, Debug, Default)]
pub(crate) struct Extra {
    pub(crate) correlators: Vec<String>,
    pub(crate) snapshots: Vec<Snapshot>,
    pub(crate) location: Option<String>,
    /// Set by a builder or a decoder; otherwise the span chain's is used.
    pub(crate) trace: Option<TraceContext>,
}

impl Extra {
    fn is_empty(&self) -> bool {
        self.correlators.is_empty()
            && self.snapshots.is_empty()
            && self.location.is_none()
            && self.trace.is_none()
    }
}

/// One record on its way to a backend. See the [module docs](self).
//
// Field order is the memory layout (`repr(C)`), chosen for the hot path: what the caller writes
// for every event comes first and is contiguous (header, then the field slots, then the start of
// the text), and what only the worker writes (tracking id, resolved source FQN, derived parts)
// comes last, so a recycled record's caller-side cache lines are few and not dirtied by the
// worker.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct Record {
    pub(crate) origin: Origin,
    pub(crate) timestamp: Timestamp,
    pub(crate) level: Level,
    pub(crate) thread: ThreadInfo,
    /// Events: the enclosing span. Timings: the closed span itself.
    pub(crate) span: Option<Arc<SpanContext>>,
    pub(crate) message: Option<TextRange>,
    /// Size estimate taken at enqueue, released at dequeue (bytes).
    pub(crate) est_size: u32,
    pub(crate) kind: RecordKind,
    pub(crate) span_fields: SpanFields,
    /// `tracing` events: the event's number on its thread (from 1), from which the worker
    /// derives the tracking id; 0 for other records (which get a random one). After the
    /// header so the fields every record writes keep their offsets.
    pub(crate) event_seq: u64,
    pub(crate) fields: SmallVec<[Field; 6]>,
    pub(crate) text: TextBuf,
    /// Span timings only (inline: a span close allocates nothing for it).
    pub(crate) timing: Option<SpanTiming>,
    /// Set by the worker (or a builder): inline, as every record has one.
    pub(crate) tracking_id: Option<TrackingId>,
    /// Resolved by the worker (or set by a builder): inline, as most records have one.
    pub(crate) source_fqn: Option<SourceFqn>,
    /// What the worker derives, and what builders set: boxed, so that the record the caller
    /// moves into the queue stays small (a typical event has none of it until the worker).
    pub(crate) extra: Option<Box<Extra>>,
}

impl Record {
    /// An empty record, as kept in the recycling pool.
    pub(crate) fn blank() -> Self {
        Self {
            kind: RecordKind::Event,
            timestamp: Timestamp::from_nanos(0),
            level: Level::INFO,
            origin: Origin::Blank,
            thread: ThreadInfo { id: 0, name: None },
            event_seq: 0,
            text: TextBuf::default(),
            message: None,
            fields: SmallVec::new(),
            span: None,
            span_fields: SpanFields::All,
            timing: None,
            tracking_id: None,
            source_fqn: None,
            extra: None,
            est_size: 0,
        }
    }

    /// Clears a finished record for reuse, keeping its text buffer's capacity (worker side,
    /// so the caller only writes the new values).
    pub(crate) fn clear_for_reuse(&mut self) {
        self.origin = Origin::Blank;
        self.timing = None;
        self.tracking_id = None;
        self.source_fqn = None;
        self.text.clear();
        self.message = None;
        self.fields.clear();
        self.span = None;
        self.extra = None;
    }

    /// Starts a record for a callsite in a (recycled or fresh) blank record, at `timestamp`,
    /// with the event sequence number `event_seq` (0: none; see [`TrackingId::derived`]).
    #[inline]
    pub(crate) fn begin(
        &mut self,
        meta: &'static Metadata<'static>,
        kind: RecordKind,
        timestamp: Timestamp,
        event_seq: u64,
    ) {
        self.kind = kind;
        self.timestamp = timestamp;
        self.event_seq = event_seq;
        self.level = *meta.level();
        self.origin = Origin::Callsite(meta);
        self.thread = ThreadInfo::current();
    }

    /// Starts building an event record without `tracing` (for tests, replays, and helpers such
    /// as a `log_time_metric` function). Timestamp defaults to now, thread to the caller's.
    pub fn event(level: Level, target: impl Into<String>) -> RecordBuilder {
        let target = target.into();
        RecordBuilder {
            record: Record {
                kind: RecordKind::Event,
                timestamp: Timestamp::now(),
                level,
                origin: Origin::Owned(Arc::new(OwnedMeta {
                    name: format!("event {target}"),
                    target,
                    module_path: None,
                    file: None,
                    line: None,
                })),
                thread: ThreadInfo::current(),
                event_seq: 0,
                text: TextBuf::default(),
                message: None,
                fields: SmallVec::new(),
                span: None,
                span_fields: SpanFields::All,
                timing: None,
                tracking_id: None,
                source_fqn: None,
                extra: None,
                est_size: 0,
            },
        }
    }

    /// Starts building a span-timing record named `name` that started at `start` and lasted
    /// `duration` (wall time; busy time defaults to the same), at INFO level.
    pub fn span_timing(
        name: impl Into<String>,
        start: impl Into<Timestamp>,
        duration: Duration,
    ) -> RecordBuilder {
        let start = start.into();
        let name = name.into();
        let mut b = Record::event(Level::INFO, name.clone());
        b.record.kind = RecordKind::SpanTiming;
        b.record.timestamp = start.saturating_add(duration);
        b.record.origin = Origin::Owned(Arc::new(OwnedMeta {
            target: name.clone(),
            name,
            module_path: None,
            file: None,
            line: None,
        }));
        b.record.timing = Some(SpanTiming {
            start,
            end: start.saturating_add(duration),
            duration,
            busy: duration,
            failed: false,
        });
        b
    }

    /// Event or span timing.
    pub fn kind(&self) -> RecordKind {
        self.kind
    }
    /// When the event happened (for a span timing: when the span closed), UTC.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }
    /// The level.
    pub fn level(&self) -> Level {
        self.level
    }
    /// The target (by default the module path of the code that emitted it).
    pub fn target(&self) -> &str {
        match &self.origin {
            Origin::Callsite(m) => m.target(),
            Origin::Owned(m) => &m.target,
            Origin::Blank => "",
        }
    }
    /// The callsite name: for events `event <file>:<line>`, for span timings the span's name.
    pub fn name(&self) -> &str {
        match &self.origin {
            Origin::Callsite(m) => m.name(),
            Origin::Owned(m) => &m.name,
            Origin::Blank => "",
        }
    }
    /// The module path of the callsite.
    pub fn module_path(&self) -> Option<&str> {
        match &self.origin {
            Origin::Callsite(m) => m.module_path(),
            Origin::Owned(m) => m.module_path.as_deref(),
            Origin::Blank => None,
        }
    }
    /// The source file of the callsite.
    pub fn file(&self) -> Option<&str> {
        match &self.origin {
            Origin::Callsite(m) => m.file(),
            Origin::Owned(m) => m.file.as_deref(),
            Origin::Blank => None,
        }
    }
    /// The line of the callsite.
    pub fn line(&self) -> Option<u32> {
        match &self.origin {
            Origin::Callsite(m) => m.line(),
            Origin::Owned(m) => m.line,
            Origin::Blank => None,
        }
    }
    /// The `tracing` metadata, when the record came from a callsite.
    pub fn metadata(&self) -> Option<&'static Metadata<'static>> {
        match &self.origin {
            Origin::Callsite(m) => Some(m),
            Origin::Owned(_) | Origin::Blank => None,
        }
    }
    /// The thread the record was captured on.
    pub fn thread(&self) -> &ThreadInfo {
        &self.thread
    }
    /// The message (the `message` field, usually the format string's output).
    pub fn message(&self) -> Option<&str> {
        self.message.map(|r| r.get(&self.text))
    }

    /// The typed fields in call order, without the message and without the conventional
    /// fields logship interprets (see [`fields`](crate::fields)). For a span timing: the
    /// span's own fields.
    ///
    /// Once the worker has prepared the record (before any backend sees it), each name
    /// appears once: a repeated name keeps its last value at its first position (the
    /// [repeated-name rule](crate::fields#repeated-and-reserved-field-names)). A backend that
    /// writes fields next to keys of its own uses [`fields_beside`](Self::fields_beside).
    pub fn fields(&self) -> impl Iterator<Item = (&str, Value<'_>)> {
        let own = self
            .fields
            .iter()
            .map(|f| (&*f.name, self.stored(&f.value)));
        let span = match (self.kind, &self.span) {
            (RecordKind::SpanTiming, Some(s)) => Some(s.fields()),
            _ => None,
        };
        own.chain(span.into_iter().flatten())
    }

    /// The value of the field named `name` (the first one, before the worker has applied the
    /// [repeated-name rule](crate::fields#repeated-and-reserved-field-names); the only one
    /// after).
    pub fn field(&self, name: &str) -> Option<Value<'_>> {
        self.fields().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The fields as a backend writes them **next to keys of its own** (`level`, `spans`,
    /// `correlators`, …): each field under its name, except one whose name `reserved` claims,
    /// which is written under [`fields::renamed_key`](crate::fields::renamed_key) (`_level`),
    /// never shadowing the backend's key nor shadowed by it. See the
    /// [rule](crate::fields#repeated-and-reserved-field-names). Allocates only for a renamed
    /// field.
    ///
    /// ```
    /// use logship_core::{Level, Record};
    /// let r = Record::event(Level::INFO, "shop")
    ///     .with_field("level", "gold")
    ///     .with_field("order_id", 42_u64)
    ///     .build();
    /// let reserved = |k: &str| matches!(k, "level" | "message" | "target");
    /// let keys: Vec<String> = r.fields_beside(&reserved).map(|(k, _)| k.into_owned()).collect();
    /// assert_eq!(keys, ["_level", "order_id"]);
    /// ```
    pub fn fields_beside<'a>(
        &'a self,
        reserved: &'a dyn Fn(&str) -> bool,
    ) -> impl Iterator<Item = (Cow<'a, str>, Value<'a>)> + 'a {
        // Keys already given to renamed fields, so two renames never meet (only when the
        // backend also reserves an `_<name>` key).
        let mut renamed: Vec<String> = Vec::new();
        self.fields().map(move |(name, v)| {
            let key = if reserved(name) {
                let key = crate::fields::renamed_key(name, |k| {
                    reserved(k)
                        || self.fields().any(|(n, _)| n == k)
                        || renamed.iter().any(|r| r == k)
                });
                renamed.push(key.to_string());
                key
            } else {
                Cow::Borrowed(name)
            };
            (key, v)
        })
    }

    /// The number of fields [`fields`](Self::fields) yields.
    pub fn field_count(&self) -> usize {
        self.fields().count()
    }

    pub(crate) fn stored_value<'a>(&'a self, v: &'a Stored) -> Value<'a> {
        self.stored(v)
    }

    fn stored<'a>(&'a self, v: &'a Stored) -> Value<'a> {
        match v {
            Stored::Str(r) => Value::Str(r.get(&self.text)),
            Stored::I64(v) => Value::I64(*v),
            Stored::U64(v) => Value::U64(*v),
            Stored::I128(v) => Value::I128(**v),
            Stored::U128(v) => Value::U128(**v),
            Stored::F64(v) => Value::F64(*v),
            Stored::Bool(v) => Value::Bool(*v),
            Stored::Error(e) => Value::Error(e),
        }
    }

    /// The enclosing spans, outermost first, as the layer's [`SpanFields`] setting selects
    /// (for a span timing: the spans enclosing the closed span).
    pub fn spans(&self) -> impl Iterator<Item = &SpanContext> {
        let leaf = match self.kind {
            RecordKind::Event => self.span.as_deref(),
            RecordKind::SpanTiming => self.span.as_deref().and_then(|s| s.parent.as_deref()),
        };
        let mut chain: SmallVec<[&SpanContext; 8]> = match self.span_fields {
            SpanFields::None => SmallVec::new(),
            SpanFields::Leaf => leaf.into_iter().collect(),
            SpanFields::All => leaf.map(|l| l.chain().collect()).unwrap_or_default(),
        };
        chain.reverse();
        chain.into_iter()
    }

    /// For a span timing: the closed span itself.
    pub fn timed_span(&self) -> Option<&SpanContext> {
        match self.kind {
            RecordKind::SpanTiming => self.span.as_deref(),
            RecordKind::Event => None,
        }
    }

    /// The source FQN: the event's own, else the innermost span's, else the layer's default.
    /// Resolved on the worker thread before the backend sees the record.
    pub fn source_fqn(&self) -> Option<&SourceFqn> {
        self.source_fqn.as_ref()
    }

    /// The correlators: the record's own, then those of every enclosing span (innermost first),
    /// without duplicates. Resolved on the worker thread.
    pub fn correlators(&self) -> &[String] {
        self.extra.as_ref().map_or(&[], |e| &e.correlators)
    }

    /// This record's tracking id (set on the worker thread before encoding; for a span timing,
    /// the span's tracking id).
    pub fn tracking_id(&self) -> Option<&TrackingId> {
        self.tracking_id.as_ref()
    }

    /// The tracking id of the enclosing span (for a span timing: of the span's parent).
    pub fn parent_tracking_id(&self) -> Option<&TrackingId> {
        match self.kind {
            RecordKind::Event => self.span.as_deref().map(SpanContext::tracking_id),
            RecordKind::SpanTiming => self
                .span
                .as_deref()
                .and_then(|s| s.parent.as_deref())
                .map(SpanContext::tracking_id),
        }
    }

    /// Snapshots attached to the record (parsed on the worker thread from `snapshot` and
    /// `snapshot.<name>.<property>` fields, or added with [`RecordBuilder::with_snapshot`]).
    pub fn snapshots(&self) -> &[Snapshot] {
        self.extra.as_ref().map_or(&[], |e| &e.snapshots)
    }

    /// The location (jKool `location`, e.g. a geographic or logical place), from the
    /// [`fields::LOCATION`](crate::fields::LOCATION) field of the event or a span.
    pub fn location(&self) -> Option<&str> {
        self.extra.as_ref()?.location.as_deref()
    }

    /// The OpenTelemetry trace and span ids: the record's own (set with
    /// [`RecordBuilder::with_trace_context`], or replayed from the spool), else those of the
    /// innermost span that has them (for a span timing: the closed span's own). Events outside
    /// any traced span have none. Captured with the `opentelemetry` feature; see
    /// [`TraceContext`].
    pub fn trace_context(&self) -> Option<&TraceContext> {
        if let Some(t) = self.extra.as_ref().and_then(|e| e.trace.as_ref()) {
            return Some(t);
        }
        self.span
            .as_deref()?
            .chain()
            .find_map(SpanContext::trace_context)
    }

    /// For span timings: start, end, wall and busy durations.
    pub fn timing(&self) -> Option<&SpanTiming> {
        self.timing.as_ref()
    }

    pub(crate) fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// An estimate of the memory this record holds, in bytes (the queue's byte bound uses it).
    pub fn estimated_size(&self) -> usize {
        let mut n = std::mem::size_of::<Self>() + self.text.heap_capacity();
        if let Origin::Owned(m) = &self.origin {
            n += std::mem::size_of::<OwnedMeta>()
                + m.target.len()
                + m.name.len()
                + m.module_path.as_ref().map_or(0, String::len)
                + m.file.as_ref().map_or(0, String::len);
        }
        if self.fields.spilled() {
            n += self.fields.capacity() * std::mem::size_of::<Field>();
        }
        for f in &self.fields {
            if let Stored::Error(e) = &f.value {
                n += e.message.len() + e.sources.iter().map(|s| s.len() + 24).sum::<usize>() + 64;
            }
            if let Cow::Owned(s) = &f.name {
                n += s.capacity();
            }
        }
        if let Some(e) = &self.extra {
            n += std::mem::size_of::<Extra>();
            n += e
                .correlators
                .iter()
                .map(|c| c.capacity() + 24)
                .sum::<usize>();
            n += e.snapshots.len() * 128;
        }
        n
    }

    // ----- capture helpers (crate-private) -----

    pub(crate) fn push_text(&mut self, f: impl FnOnce(&mut TextBuf)) -> TextRange {
        let start = self.text.len();
        f(&mut self.text);
        let end = self.text.len();
        TextRange {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            len: u32::try_from(end - start).unwrap_or(0),
        }
    }

    pub(crate) fn push_str_field(&mut self, name: Cow<'static, str>, value: &str) {
        let r = self.push_text(|t| t.push_str(value));
        self.fields.push(Field {
            name,
            value: Stored::Str(r),
        });
    }

    pub(crate) fn push_debug_field(&mut self, name: Cow<'static, str>, value: &dyn fmt::Debug) {
        let r = self.push_text(|t| {
            let _ = write!(t, "{value:?}");
        });
        self.fields.push(Field {
            name,
            value: Stored::Str(r),
        });
    }

    /// Pushes a value that needs no conversion (numbers, booleans): the visitors' fast path.
    #[inline]
    pub(crate) fn push_stored(&mut self, name: Cow<'static, str>, value: Stored) {
        self.fields.push(Field { name, value });
    }

    pub(crate) fn push_value(&mut self, name: Cow<'static, str>, value: FieldValue) {
        let value = self.store(value);
        self.fields.push(Field { name, value });
    }

    /// Converts an owned value to its stored form (text goes into the record's buffer).
    pub(crate) fn store(&mut self, value: FieldValue) -> Stored {
        match value {
            FieldValue::Str(s) => Stored::Str(self.push_text(|t| t.push_str(&s))),
            FieldValue::I64(v) => Stored::I64(v),
            FieldValue::U64(v) => Stored::U64(v),
            FieldValue::I128(v) => Stored::I128(Box::new(v)),
            FieldValue::U128(v) => Stored::U128(Box::new(v)),
            FieldValue::F64(v) => Stored::F64(v),
            FieldValue::Bool(v) => Stored::Bool(v),
            FieldValue::Error(e) => Stored::Error(Box::new(e)),
        }
    }

    pub(crate) fn set_message_debug(&mut self, value: &dyn fmt::Debug) {
        let r = self.push_text(|t| {
            let _ = write!(t, "{value:?}");
        });
        self.message = Some(r);
    }

    pub(crate) fn set_message_str(&mut self, value: &str) {
        let r = self.push_text(|t| t.push_str(value));
        self.message = Some(r);
    }

    /// Removes the fields logship interprets (source FQN, correlators, tracking id, location,
    /// snapshots) and fills the derived parts; called once on the worker thread.
    pub(crate) fn prepare(&mut self, default_fqn: Option<&SourceFqn>, invalid: &mut u64) {
        use crate::fields as f;
        // On the stack; boxed at the end only if the record has any of it.
        let mut extra: Extra = self.extra.take().map(|b| *b).unwrap_or_default();
        let mut own_fqn: Option<SourceFqn> = None;
        let mut i = 0;
        while i < self.fields.len() {
            let name = self.fields[i].name.clone();
            let consumed = match &*name {
                f::SOURCE_FQN => {
                    let text = self.stored(&self.fields[i].value).to_string();
                    match SourceFqn::parse(&text) {
                        Ok(fqn) => {
                            own_fqn = Some(fqn);
                            true
                        }
                        Err(_) => {
                            *invalid += 1;
                            false
                        }
                    }
                }
                f::CORRELATOR => {
                    let text = self.stored(&self.fields[i].value).to_string();
                    for c in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                        if !extra.correlators.iter().any(|x| x == c) {
                            extra.correlators.push(c.to_string());
                        }
                    }
                    true
                }
                f::TRACKING_ID => {
                    let text = self.stored(&self.fields[i].value).to_string();
                    self.tracking_id = Some(match uuid::Uuid::parse_str(&text) {
                        Ok(u) => TrackingId::Uuid(u),
                        Err(_) => TrackingId::Custom(text.into()),
                    });
                    true
                }
                f::LOCATION => {
                    extra.location = Some(self.stored(&self.fields[i].value).to_string());
                    true
                }
                f::SNAPSHOT => {
                    let text = self.stored(&self.fields[i].value).to_string();
                    match Snapshot::parse(&text) {
                        Ok(s) => {
                            extra.snapshots.push(s);
                            true
                        }
                        Err(_) => {
                            *invalid += 1;
                            false
                        }
                    }
                }
                n if n.starts_with(f::SNAPSHOT_PREFIX) => {
                    let rest = &n[f::SNAPSHOT_PREFIX.len()..];
                    match rest.split_once('.') {
                        Some((snap, prop)) if !snap.is_empty() && !prop.is_empty() => {
                            let value = self.property_value(&self.fields[i].value);
                            let idx = match extra.snapshots.iter().position(|s| s.name == snap) {
                                Some(idx) => idx,
                                None => {
                                    extra.snapshots.push(Snapshot::new(snap));
                                    extra.snapshots.len() - 1
                                }
                            };
                            extra.snapshots[idx]
                                .properties
                                .push(crate::Property::new(prop, value));
                            true
                        }
                        _ => {
                            *invalid += 1;
                            false
                        }
                    }
                }
                _ => false,
            };
            if consumed {
                self.fields.remove(i);
            } else {
                i += 1;
            }
        }
        self.dedupe_fields();
        // Inherit from spans (for a timing record, its own span comes first).
        if let Some(span) = self.span.clone() {
            for s in span.chain() {
                if own_fqn.is_none() {
                    own_fqn = s.source_fqn.clone();
                }
                if extra.location.is_none() {
                    extra.location = s.location.clone();
                }
                for c in &s.correlators {
                    if !extra.correlators.iter().any(|x| x == c) {
                        extra.correlators.push(c.clone());
                    }
                }
            }
            if self.kind == RecordKind::SpanTiming {
                self.tracking_id = Some(span.tracking_id().clone());
            }
        }
        if self.source_fqn.is_none() {
            self.source_fqn = own_fqn.or_else(|| default_fqn.cloned());
        }
        if self.tracking_id.is_none() {
            self.tracking_id = Some(if self.event_seq != 0 && self.thread.id != 0 {
                TrackingId::derived(self.thread.id, self.event_seq)
            } else {
                TrackingId::new()
            });
        }
        for snapshot in &mut extra.snapshots {
            dedupe_properties(&mut snapshot.properties);
        }
        self.extra = (!extra.is_empty()).then(|| Box::new(extra));
    }

    /// Applies the [repeated-name rule](crate::fields#repeated-and-reserved-field-names) to
    /// the record's own fields: of several fields with one name, the **last** value is kept, at
    /// the position of the **first** (what a JSON object, a Python dict or a Ruby Hash built
    /// from the pairs in order holds). Returns how many fields were dropped. Worker side, no
    /// allocation up to 32 fields (a quadratic scan: 15 comparisons for a 6-field event).
    pub(crate) fn dedupe_fields(&mut self) -> usize {
        let n = self.fields.len();
        if n < 2 {
            return 0;
        }
        let mut dropped = 0;
        if n <= 32 {
            let mut i = 1;
            while i < self.fields.len() {
                let name = &self.fields[i].name;
                match self.fields[..i].iter().position(|f| f.name == *name) {
                    Some(first) => {
                        let later = self.fields.remove(i);
                        self.fields[first].value = later.value;
                        dropped += 1;
                    }
                    None => i += 1,
                }
            }
        } else {
            let mut at: std::collections::HashMap<Cow<'static, str>, usize> =
                std::collections::HashMap::with_capacity(n);
            let all = std::mem::take(&mut self.fields);
            for f in all {
                match at.get(&f.name) {
                    Some(&first) => {
                        self.fields[first].value = f.value;
                        dropped += 1;
                    }
                    None => {
                        at.insert(f.name.clone(), self.fields.len());
                        self.fields.push(f);
                    }
                }
            }
        }
        dropped
    }

    fn property_value(&self, v: &Stored) -> crate::PropertyValue {
        use crate::PropertyValue as P;
        match v {
            Stored::Str(r) => P::String(r.get(&self.text).to_string()),
            Stored::I64(v) => P::Integer(*v),
            Stored::U64(v) => P::from(*v),
            Stored::I128(v) => {
                i64::try_from(**v).map_or_else(|_| P::String(v.to_string()), P::Integer)
            }
            Stored::U128(v) => {
                i64::try_from(**v).map_or_else(|_| P::String(v.to_string()), P::Integer)
            }
            Stored::F64(v) => P::Double(*v),
            Stored::Bool(v) => P::Boolean(*v),
            Stored::Error(e) => P::String(e.to_string()),
        }
    }
}

/// The repeated-name rule for a snapshot's properties: one property per name, the last value
/// at the first position (see [`Record::dedupe_fields`]).
fn dedupe_properties(props: &mut Vec<crate::Property>) {
    let mut i = 1;
    while i < props.len() {
        match props[..i].iter().position(|p| p.name == props[i].name) {
            Some(first) => {
                let later = props.remove(i);
                props[first].value = later.value;
            }
            None => i += 1,
        }
    }
}

/// Builds a [`Record`] without `tracing`; see [`Record::event`] and [`Record::span_timing`].
#[derive(Debug)]
#[must_use]
pub struct RecordBuilder {
    record: Record,
}

impl RecordBuilder {
    /// Sets the timestamp (default: now).
    pub fn with_timestamp(mut self, t: impl Into<Timestamp>) -> Self {
        self.record.timestamp = t.into();
        self
    }
    /// Sets the target (default: the one given to [`Record::event`], or the span timing's name).
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        if let Origin::Owned(m) = &mut self.record.origin {
            Arc::make_mut(m).target = target.into();
        }
        self
    }
    /// Sets the level (default: the one given to [`Record::event`]; INFO for span timings).
    pub fn with_level(mut self, level: Level) -> Self {
        self.record.level = level;
        self
    }
    /// Sets the message.
    pub fn with_message(mut self, message: &str) -> Self {
        self.record.set_message_str(message);
        self
    }
    /// Appends a typed field. Conventional names (see [`fields`](crate::fields)) are
    /// interpreted as they are for `tracing` events.
    pub fn with_field(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<FieldValue>,
    ) -> Self {
        self.record.push_value(name.into(), value.into());
        self
    }
    /// Sets the source FQN.
    pub fn with_source_fqn(mut self, fqn: SourceFqn) -> Self {
        self.record.source_fqn = Some(fqn);
        self
    }
    /// Adds a correlator.
    pub fn with_correlator(mut self, c: impl Into<String>) -> Self {
        self.record.extra_mut().correlators.push(c.into());
        self
    }
    /// Sets the tracking id (default: a fresh one).
    pub fn with_tracking_id(mut self, id: TrackingId) -> Self {
        self.record.tracking_id = Some(id);
        self
    }
    /// Attaches a snapshot.
    pub fn with_snapshot(mut self, s: Snapshot) -> Self {
        self.record.extra_mut().snapshots.push(s);
        self
    }
    /// Sets the OpenTelemetry trace and span ids (default: none).
    pub fn with_trace_context(mut self, t: TraceContext) -> Self {
        self.record.extra_mut().trace = Some(t);
        self
    }
    /// Sets the location.
    pub fn with_location(mut self, l: impl Into<String>) -> Self {
        self.record.extra_mut().location = Some(l.into());
        self
    }
    /// Sets the source position.
    pub fn with_source_position(mut self, module_path: &str, file: &str, line: u32) -> Self {
        if let Origin::Owned(m) = &mut self.record.origin {
            let m = Arc::make_mut(m);
            m.module_path = Some(module_path.to_string());
            m.file = Some(file.to_string());
            m.line = Some(line);
        }
        self
    }
    /// For span timings: sets the busy duration (default: the wall duration) and failure.
    pub fn with_busy(mut self, busy: Duration, failed: bool) -> Self {
        if let Some(t) = self.record.timing.as_mut() {
            t.busy = busy.min(t.duration);
            t.failed = failed;
        }
        self
    }
    /// Finishes the record.
    pub fn build(self) -> Record {
        self.record
    }
}

#[cfg(test)]
mod tracking_id_tests {
    use super::TrackingId;

    #[test]
    fn derived_ids_are_stable_distinct_and_v4_shaped() {
        let a = TrackingId::derived(1, 1);
        assert_eq!(a, TrackingId::derived(1, 1));
        let others = [
            TrackingId::derived(1, 2),
            TrackingId::derived(2, 1),
            TrackingId::derived(0, 1),
        ];
        for o in &others {
            assert_ne!(&a, o);
        }
        // Consecutive events on one thread: all distinct, and not alike (about half of the
        // 122 free bits differ between neighbours).
        let ids: Vec<u128> = (1..=100_000)
            .map(|seq| match TrackingId::derived(7, seq) {
                TrackingId::Uuid(u) => u.as_u128(),
                TrackingId::Custom(_) => unreachable!(),
            })
            .collect();
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        let flips: u32 = ids.windows(2).map(|w| (w[0] ^ w[1]).count_ones()).sum();
        let mean = f64::from(flips) / (ids.len() - 1) as f64;
        assert!((55.0..67.0).contains(&mean), "mean bit flips {mean}");
        for id in std::iter::once(&a).chain(&others) {
            let TrackingId::Uuid(u) = id else {
                panic!("not a UUID")
            };
            assert_eq!(u.get_version_num(), 4);
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
        }
    }
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn print_sizes() {
        eprintln!(
            "Record {} Field {} Stored {} SpanTiming {} TrackingId {} ThreadInfo {} Origin {}",
            std::mem::size_of::<super::Record>(),
            std::mem::size_of::<super::Field>(),
            std::mem::size_of::<super::Stored>(),
            std::mem::size_of::<super::SpanTiming>(),
            std::mem::size_of::<super::TrackingId>(),
            std::mem::size_of::<super::ThreadInfo>(),
            std::mem::size_of::<super::Origin>(),
        );
    }
}
