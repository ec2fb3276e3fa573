//! [`PipelineBuilder`]: every setting of the shared pipeline, validated by `build()`.
//!
//! | setting | default | what it bounds |
//! |---|---|---|
//! | [`with_max_queue_records`](PipelineBuilder::with_max_queue_records) | 32 768 | records waiting in the queue |
//! | [`with_max_queue_bytes`](PipelineBuilder::with_max_queue_bytes) | 32 MiB | estimated bytes waiting in the queue |
//! | [`with_reserved`](PipelineBuilder::with_reserved) | ERROR, 10 % | queue share only levels at or above ERROR may use |
//! | [`with_overflow`](PipelineBuilder::with_overflow) | drop newest | what a full queue does |
//! | [`with_max_batch_records`](PipelineBuilder::with_max_batch_records) | 1 024 | records per batch (the Kusto original's `capacity`) |
//! | [`with_max_batch_bytes`](PipelineBuilder::with_max_batch_bytes) | 4 MiB | estimated bytes per batch (before encoding) |
//! | [`with_linger`](PipelineBuilder::with_linger) | 1 s (0 < t ≤ 1 h) | longest a record waits for its batch to fill |
//! | [`with_flush_level`](PipelineBuilder::with_flush_level) | ERROR | a record at or above it is sent at once (the Kusto original's `flushLevel`) |
//! | [`with_send_timeout`](PipelineBuilder::with_send_timeout) | 30 s (0 < t ≤ 10 min) | one send attempt |
//! | [`with_stall_threshold`](PipelineBuilder::with_stall_threshold) | 5 s (≤ send timeout) | an unanswered send counts as failing (spool takes over) |
//! | [`with_retry`](PipelineBuilder::with_retry) | 10 attempts / 120 s, 100 ms–30 s full jitter | see [`RetryPolicy`]; delays ≤ 1 h, elapsed ≤ 30 days |
//! | [`with_breaker`](PipelineBuilder::with_breaker) | opens after 5 failures, 1–60 s | see [`BreakerConfig`]; cool-downs ≤ 1 h |
//! | [`with_shutdown_timeout`](PipelineBuilder::with_shutdown_timeout) | 5 s (≤ 10 min) | the flush when the guard is dropped |
//! | [`with_loss_summary`](PipelineBuilder::with_loss_summary) | on | one stderr line at shutdown if records were lost |
//! | [`with_events`](PipelineBuilder::with_events) / [`with_span_timings`](PipelineBuilder::with_span_timings) | both on | which records the layer captures |
//! | [`with_span_fields`](PipelineBuilder::with_span_fields) | all | enclosing spans carried by each record |
//! | [`with_default_source_fqn`](PipelineBuilder::with_default_source_fqn) | none | source FQN of records that set none |
//!
//! Every duration is checked by `build()` against the range in brackets; a value outside it is
//! a [`ConfigError::OutOfRange`] naming the setting, so no setting (`Duration::MAX` included)
//! can panic the caller or stop the worker. Timeouts passed to `flush`/`shutdown` need no
//! range: anything past about 100 years means "no limit".

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tracing_core::{Level, Metadata};

use crate::env::EnvVars;
use crate::error::ConfigError;
use crate::guard::{Guard, Shared};
use crate::layer::{CaptureConfig, ShipLayer};
use crate::queue::{Overflow, Queue, QueueLimits};
use crate::retry::{BreakerConfig, RetryPolicy};
use crate::sink::Sink;
use crate::stats::Counters;
use crate::undelivered::{
    DEFAULT_DEAD_LETTER_MAX_BYTES, DeadLetter, Undelivered, UndeliveredCallback,
};
use crate::worker::{Nudge, Worker, WorkerChannels, WorkerSettings};
use crate::{SourceFqn, SpanFields};

/// A filter deciding which spans produce timing records.
pub type SpanTimingFilter = Arc<dyn Fn(&Metadata<'_>) -> bool + Send + Sync>;

/// Builds a pipeline: a [`ShipLayer`] plus its worker and [`Guard`]. Backends wrap it; see the
/// [module docs](self) for every setting and its default.
#[must_use]
pub struct PipelineBuilder {
    max_queue_records: usize,
    max_queue_bytes: u64,
    reserved_level: Level,
    reserved_percent: u8,
    overflow: Overflow,
    max_batch_records: usize,
    max_batch_bytes: u64,
    linger: Duration,
    flush_level: Option<Level>,
    send_timeout: Duration,
    stall_threshold: Option<Duration>,
    loss_summary: bool,
    retry: RetryPolicy,
    breaker: BreakerConfig,
    shutdown_timeout: Duration,
    callbacks: Vec<UndeliveredCallback>,
    dead_letter: Option<(PathBuf, u64)>,
    events: bool,
    span_timings: bool,
    timing_filter: Option<SpanTimingFilter>,
    span_fields: SpanFields,
    default_fqn: Option<Result<SourceFqn, crate::FqnError>>,
    drop_lane_records: usize,
    spool: Option<crate::spool::SpoolConfig>,
    /// A problem found by `from_env`/`apply_env`/`apply_config`, reported by `build()`.
    deferred: Option<String>,
}

impl Default for PipelineBuilder {
    fn default() -> Self {
        Self {
            max_queue_records: 32_768,
            max_queue_bytes: 32 * 1024 * 1024,
            reserved_level: Level::ERROR,
            reserved_percent: 10,
            overflow: Overflow::DropNewest,
            max_batch_records: 1024,
            max_batch_bytes: 4 * 1024 * 1024,
            linger: Duration::from_secs(1),
            flush_level: Some(Level::ERROR),
            send_timeout: Duration::from_secs(30),
            stall_threshold: None,
            loss_summary: true,
            retry: RetryPolicy::default(),
            breaker: BreakerConfig::default(),
            shutdown_timeout: Duration::from_secs(5),
            callbacks: Vec::new(),
            dead_letter: None,
            events: true,
            span_timings: true,
            timing_filter: None,
            span_fields: SpanFields::All,
            default_fqn: None,
            drop_lane_records: 1024,
            spool: None,
            deferred: None,
        }
    }
}

impl std::fmt::Debug for PipelineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineBuilder")
            .field("max_queue_records", &self.max_queue_records)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("overflow", &self.overflow)
            .field("max_batch_records", &self.max_batch_records)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .field("linger", &self.linger)
            .field("flush_level", &self.flush_level)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("send_timeout", &self.send_timeout)
            .field("stall_threshold", &self.stall_threshold)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("loss_summary", &self.loss_summary)
            .field("events", &self.events)
            .field("span_timings", &self.span_timings)
            .field("default_source_fqn", &self.default_fqn)
            .field("dead_letter", &self.dead_letter)
            .field("spool", &self.spool)
            .finish_non_exhaustive()
    }
}

impl PipelineBuilder {
    /// A builder with the defaults in the [module docs](self).
    pub fn new() -> Self {
        Self::default()
    }

    /// Most records waiting in the queue (default 32 768).
    ///
    /// Records are recycled, never freed on the worker: up to this many (and no more than fit
    /// in [`with_max_queue_bytes`](Self::with_max_queue_bytes)) stay allocated for reuse after
    /// a burst, so the caller's thread allocates nothing once the pool is warm. The memory a
    /// full queue takes (≈ 650 bytes a record plus text beyond 192 bytes, up to 1 KiB) is
    /// therefore kept after the burst, as a `Vec` keeps its capacity.
    pub fn with_max_queue_records(self, n: usize) -> Self {
        Self {
            max_queue_records: n,
            ..self
        }
    }
    /// Most estimated bytes waiting in the queue (default 32 MiB). A single record larger than
    /// this is dropped (counted) rather than queued.
    pub fn with_max_queue_bytes(self, n: u64) -> Self {
        Self {
            max_queue_bytes: n,
            ..self
        }
    }
    /// Records at or above `level` may use the last `percent` % of the queue (by records and
    /// bytes); lower levels may not (default ERROR, 10 %; 0 disables the reserve).
    pub fn with_reserved(self, level: Level, percent: u8) -> Self {
        Self {
            reserved_level: level,
            reserved_percent: percent,
            ..self
        }
    }
    /// What a full queue does (default [`Overflow::DropNewest`]).
    pub fn with_overflow(self, overflow: Overflow) -> Self {
        Self { overflow, ..self }
    }
    /// Most records per batch (default 1 024).
    pub fn with_max_batch_records(self, n: usize) -> Self {
        Self {
            max_batch_records: n,
            ..self
        }
    }
    /// Most estimated bytes per batch, before encoding (default 4 MiB). Backends with a hard
    /// request limit split further when encoding.
    pub fn with_max_batch_bytes(self, n: u64) -> Self {
        Self {
            max_batch_bytes: n,
            ..self
        }
    }
    /// Longest time a record waits for its batch to fill before it is sent (default 1 s).
    pub fn with_linger(self, d: Duration) -> Self {
        Self { linger: d, ..self }
    }
    /// A record at or above `level` makes its batch go at once (default `Some(ERROR)`).
    pub fn with_flush_level(self, level: Option<Level>) -> Self {
        Self {
            flush_level: level,
            ..self
        }
    }
    /// Longest a single send may take before it counts as failed and retryable (default 30 s).
    pub fn with_send_timeout(self, d: Duration) -> Self {
        Self {
            send_timeout: d,
            ..self
        }
    }
    /// How long a send may go unanswered before the backend counts as failing while the send
    /// is still running (default: 5 s, or the send timeout if that is shorter; at most the send
    /// timeout). A hung backend (it accepted the connection and never answers) then gets the
    /// same treatment as a refusing one: with a [spool](crate::spool), the batch in flight and
    /// the records arriving meanwhile are written to disk while the send goes on, instead of
    /// waiting in memory for the send timeout; `Stats::last_error` says the send stalled.
    pub fn with_stall_threshold(self, d: Duration) -> Self {
        Self {
            stall_threshold: Some(d),
            ..self
        }
    }
    /// Whether the worker prints one summary line on standard error at shutdown when records
    /// were lost (dropped or undelivered), naming the counts by cause (default true).
    pub fn with_loss_summary(self, on: bool) -> Self {
        Self {
            loss_summary: on,
            ..self
        }
    }
    fn stall_threshold(&self) -> Duration {
        self.stall_threshold
            .unwrap_or_else(|| Duration::from_secs(5).min(self.send_timeout))
    }
    /// The retry policy (default [`RetryPolicy::default`]).
    pub fn with_retry(self, retry: RetryPolicy) -> Self {
        Self { retry, ..self }
    }
    /// The circuit breaker (default [`BreakerConfig::default`]).
    pub fn with_breaker(self, breaker: BreakerConfig) -> Self {
        Self { breaker, ..self }
    }
    /// How long dropping the [`Guard`] waits for the final flush (default 5 s).
    pub fn with_shutdown_timeout(self, d: Duration) -> Self {
        Self {
            shutdown_timeout: d,
            ..self
        }
    }
    /// Calls `f` on the worker thread with every group of undelivered records (see
    /// [`undelivered`](crate::undelivered)). Panics in `f` are caught and counted. Callbacks
    /// add up: each one given is called, in the order given (a backend may add its own, such as
    /// the ECS failure folder, next to yours).
    pub fn with_undelivered_callback(
        mut self,
        f: impl Fn(&Undelivered) + Send + Sync + 'static,
    ) -> Self {
        self.callbacks.push(Arc::new(f));
        self
    }
    /// Writes undelivered records as NDJSON files under `dir`, at most
    /// [`DEFAULT_DEAD_LETTER_MAX_BYTES`] in all (see [`undelivered`](crate::undelivered)).
    pub fn with_dead_letter_dir(self, dir: impl Into<PathBuf>) -> Self {
        Self {
            dead_letter: Some((dir.into(), DEFAULT_DEAD_LETTER_MAX_BYTES)),
            ..self
        }
    }
    /// As [`with_dead_letter_dir`](Self::with_dead_letter_dir) with a size cap in bytes.
    pub fn with_dead_letter_dir_capped(self, dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        Self {
            dead_letter: Some((dir.into(), max_bytes)),
            ..self
        }
    }
    /// Keeps batches that cannot be delivered now in an on-disk spool and replays them when
    /// the backend recovers, also after a restart (see [`spool`](crate::spool)). Off by default.
    pub fn with_spool(self, spool: crate::spool::SpoolConfig) -> Self {
        Self {
            spool: Some(spool),
            ..self
        }
    }
    /// Whether the layer captures events (default true).
    pub fn with_events(self, on: bool) -> Self {
        Self { events: on, ..self }
    }
    /// Whether the layer produces a timing record when a span closes (default true).
    pub fn with_span_timings(self, on: bool) -> Self {
        Self {
            span_timings: on,
            ..self
        }
    }
    /// Only spans for which `f` returns true produce timing records (on top of the layer's
    /// own filter).
    pub fn with_span_timing_filter(
        self,
        f: impl Fn(&Metadata<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            timing_filter: Some(Arc::new(f)),
            ..self
        }
    }
    /// Which enclosing spans each record carries (default [`SpanFields::All`]).
    pub fn with_span_fields(self, s: SpanFields) -> Self {
        Self {
            span_fields: s,
            ..self
        }
    }
    /// The source FQN of records that set none, e.g. `APPL=shop#SERVER=web1`. Checked by
    /// `build()`.
    pub fn with_default_source_fqn(self, fqn: &str) -> Self {
        Self {
            default_fqn: Some(SourceFqn::parse(fqn)),
            ..self
        }
    }
    /// Sets the default source FQN to `APPL=<service>#SERVER=<this host's name>`.
    pub fn with_service_name(self, service: &str) -> Self {
        let host = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        Self {
            default_fqn: Some(SourceFqn::for_service(service, &host)),
            ..self
        }
    }

    /// A builder with the defaults, then the shared `LOGSHIP_PIPELINE_*` variables of the
    /// process environment (read once, now): see [`apply_env`](Self::apply_env) for the
    /// variables and [`env`](crate::env) for the value syntax. A malformed value or an unknown
    /// `LOGSHIP_PIPELINE_*` variable is reported by `build()` as a
    /// [`ConfigError::Backend`] naming the variable and what is expected.
    pub fn from_env() -> Self {
        Self::from_env_vars(std::env::vars_os())
    }

    /// As [`from_env`](Self::from_env), reading `pairs` (name, value) instead of the process
    /// environment (for tests, or variables loaded from elsewhere).
    pub fn from_env_vars<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<std::ffi::OsString>,
        V: Into<std::ffi::OsString>,
    {
        let mut env = EnvVars::from_pairs("PIPELINE", pairs);
        let p = Self::new().apply_env(&mut env);
        match env.finish() {
            Ok(()) => p,
            Err(e) => p.defer(e.to_string()),
        }
    }

    fn defer(mut self, problem: String) -> Self {
        if self.deferred.is_none() {
            self.deferred = Some(problem);
        }
        self
    }

    /// Applies the pipeline variables of `env` on top of the current settings: for each
    /// `SETTING` below, `LOGSHIP_<BACKEND>_<SETTING>` if set, else the shared
    /// `LOGSHIP_PIPELINE_<SETTING>` (the backend's own variable wins, as OpenTelemetry's
    /// `OTEL_BSP_*`/`OTEL_BLRP_*` batch processor variables are per signal:
    /// <https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/>).
    /// Problems are recorded in `env` (reported by [`EnvVars::finish`]).
    ///
    /// | `SETTING` | setting | value |
    /// |---|---|---|
    /// | `QUEUE_RECORDS` | [`with_max_queue_records`](Self::with_max_queue_records) | count |
    /// | `QUEUE_BYTES` | [`with_max_queue_bytes`](Self::with_max_queue_bytes) | bytes |
    /// | `BATCH_RECORDS` | [`with_max_batch_records`](Self::with_max_batch_records) | count |
    /// | `BATCH_BYTES` | [`with_max_batch_bytes`](Self::with_max_batch_bytes) | bytes |
    /// | `LINGER` | [`with_linger`](Self::with_linger) | duration |
    /// | `FLUSH_LEVEL` | [`with_flush_level`](Self::with_flush_level) | level or `off` |
    /// | `OVERFLOW` | [`with_overflow`](Self::with_overflow) | `drop_newest`, `drop_oldest`, `block:<duration>` |
    /// | `SEND_TIMEOUT` | [`with_send_timeout`](Self::with_send_timeout) | duration |
    /// | `STALL_THRESHOLD` | [`with_stall_threshold`](Self::with_stall_threshold) | duration |
    /// | `SHUTDOWN_TIMEOUT` | [`with_shutdown_timeout`](Self::with_shutdown_timeout) | duration |
    /// | `RETRY_MAX_ATTEMPTS` | [`RetryPolicy::with_max_attempts`] | count, the first try included; `0` = no limit |
    /// | `RETRY_MAX_ELAPSED` | [`RetryPolicy::with_max_elapsed`] | duration; `0s` = no limit |
    /// | `RETRY_INITIAL_DELAY` | [`RetryPolicy::with_initial_delay`] | duration |
    /// | `RETRY_MAX_DELAY` | [`RetryPolicy::with_max_delay`] | duration |
    /// | `SPOOL_DIR` | [`with_spool`](Self::with_spool) | path |
    /// | `SPOOL_MAX_BYTES` | `SpoolConfig::with_max_bytes` (needs `SPOOL_DIR`) | bytes |
    /// | `DEAD_LETTER_DIR` | [`with_dead_letter_dir`](Self::with_dead_letter_dir) | path |
    /// | `DEAD_LETTER_MAX_BYTES` | [`with_dead_letter_dir_capped`](Self::with_dead_letter_dir_capped) (needs `DEAD_LETTER_DIR`) | bytes |
    /// | `EVENTS` | [`with_events`](Self::with_events) | boolean |
    /// | `SPAN_TIMINGS` | [`with_span_timings`](Self::with_span_timings) | boolean |
    /// | `SOURCE_FQN` | [`with_default_source_fqn`](Self::with_default_source_fqn) | text, e.g. `APPL=shop#SERVER=web1` |
    /// | `LOSS_SUMMARY` | [`with_loss_summary`](Self::with_loss_summary) | boolean |
    pub fn apply_env(self, env: &mut EnvVars) -> Self {
        let cfg = PipelineConfig::from_env(env);
        self.apply_config(cfg)
    }

    /// Applies the settings `cfg` gives (those left `None` keep their current value). A
    /// size cap without its folder is reported by `build()`.
    pub fn apply_config(mut self, cfg: PipelineConfig) -> Self {
        macro_rules! set {
            ($field:ident, $method:ident) => {
                if let Some(v) = cfg.$field {
                    self = self.$method(v);
                }
            };
        }
        set!(queue_records, with_max_queue_records);
        set!(queue_bytes, with_max_queue_bytes);
        set!(batch_records, with_max_batch_records);
        set!(batch_bytes, with_max_batch_bytes);
        set!(linger, with_linger);
        set!(flush_level, with_flush_level);
        set!(overflow, with_overflow);
        set!(send_timeout, with_send_timeout);
        set!(stall_threshold, with_stall_threshold);
        set!(shutdown_timeout, with_shutdown_timeout);
        set!(events, with_events);
        set!(span_timings, with_span_timings);
        set!(loss_summary, with_loss_summary);
        if let Some(n) = cfg.retry_max_attempts {
            self.retry = self.retry.with_max_attempts((n > 0).then_some(n));
        }
        if let Some(d) = cfg.retry_max_elapsed {
            self.retry = self.retry.with_max_elapsed((!d.is_zero()).then_some(d));
        }
        if let Some(d) = cfg.retry_initial_delay {
            self.retry = self.retry.with_initial_delay(d);
        }
        if let Some(d) = cfg.retry_max_delay {
            self.retry = self.retry.with_max_delay(d);
        }
        if let Some(dir) = cfg.spool_dir {
            self.spool = Some(crate::spool::SpoolConfig::new(dir));
        }
        if let Some(n) = cfg.spool_max_bytes {
            match self.spool.take() {
                Some(s) => self.spool = Some(s.with_max_bytes(n)),
                None => {
                    self = self.defer(
                        "`spool_max_bytes` (LOGSHIP_*_SPOOL_MAX_BYTES) is set without a spool: \
                         set `spool_dir` (LOGSHIP_*_SPOOL_DIR) too"
                            .into(),
                    );
                }
            }
        }
        if let Some(dir) = cfg.dead_letter_dir {
            self.dead_letter = Some((dir, DEFAULT_DEAD_LETTER_MAX_BYTES));
        }
        if let Some(n) = cfg.dead_letter_max_bytes {
            match &mut self.dead_letter {
                Some((_, max)) => *max = n,
                None => {
                    self = self.defer(
                        "`dead_letter_max_bytes` (LOGSHIP_*_DEAD_LETTER_MAX_BYTES) is set without \
                         a folder: set `dead_letter_dir` (LOGSHIP_*_DEAD_LETTER_DIR) too"
                            .into(),
                    );
                }
            }
        }
        if let Some(fqn) = cfg.source_fqn {
            self = self.with_default_source_fqn(&fqn);
        }
        self
    }

    /// The linger setting (for backends that derive their own timeouts from it).
    pub fn linger(&self) -> Duration {
        self.linger
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(problem) = &self.deferred {
            return Err(ConfigError::Backend(problem.clone()));
        }
        for (setting, v) in [
            ("with_max_queue_records", self.max_queue_records as u64),
            ("with_max_queue_bytes", self.max_queue_bytes),
            ("with_max_batch_records", self.max_batch_records as u64),
            ("with_max_batch_bytes", self.max_batch_bytes),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero { setting });
            }
        }
        if self.max_queue_records as u64 > crate::queue::MAX_QUEUE_RECORDS {
            return Err(ConfigError::OutOfRange {
                setting: "with_max_queue_records",
                value: self.max_queue_records.to_string(),
                hint: "the queue holds at most 8 388 607 records",
            });
        }
        if self.max_queue_bytes > crate::queue::MAX_QUEUE_BYTES {
            return Err(ConfigError::OutOfRange {
                setting: "with_max_queue_bytes",
                value: self.max_queue_bytes.to_string(),
                hint: "the queue holds at most 1 TiB - 1 bytes",
            });
        }
        if self.max_batch_records > self.max_queue_records {
            return Err(ConfigError::BatchLargerThanQueue {
                batch: self.max_batch_records,
                queue: self.max_queue_records,
            });
        }
        if self.reserved_percent > 90 {
            return Err(ConfigError::OutOfRange {
                setting: "with_reserved",
                value: format!("{} %", self.reserved_percent),
                hint: "reserve at most 90 % of the queue for high levels",
            });
        }
        self.validate_durations()?;
        if let Overflow::Block(t) = self.overflow
            && t > Duration::from_secs(60)
        {
            return Err(ConfigError::OutOfRange {
                setting: "with_overflow",
                value: format!("Block({t:?})"),
                hint: "blocking the caller longer than 60 s per record is not allowed",
            });
        }
        Ok(())
    }

    /// Every duration against its documented range (the module docs' table): no configured
    /// value can make the worker's time arithmetic overflow.
    fn validate_durations(&self) -> Result<(), ConfigError> {
        const HOUR: Duration = Duration::from_secs(3600);
        const TEN_MIN: Duration = Duration::from_secs(600);
        let r = &self.retry;
        let b = &self.breaker;
        // (setting, value, may be zero, max, hint)
        let checks: [(&'static str, Duration, bool, Duration, &'static str); 9] = [
            (
                "with_linger",
                self.linger,
                false,
                HOUR,
                "use a linger above 0 and at most 1 h",
            ),
            (
                "with_send_timeout",
                self.send_timeout,
                false,
                TEN_MIN,
                "use a send timeout above 0 and at most 10 min",
            ),
            (
                "with_stall_threshold",
                self.stall_threshold(),
                false,
                TEN_MIN,
                "use a stall threshold above 0 and at most 10 min",
            ),
            (
                "with_shutdown_timeout",
                self.shutdown_timeout,
                true,
                TEN_MIN,
                "use a shutdown timeout of at most 10 min",
            ),
            (
                "RetryPolicy::with_initial_delay",
                r.initial,
                true,
                HOUR,
                "use an initial retry delay of at most 1 h",
            ),
            (
                "RetryPolicy::with_max_delay",
                r.max_delay,
                true,
                HOUR,
                "use a maximum retry delay of at most 1 h",
            ),
            (
                "RetryPolicy::with_max_server_delay",
                r.max_server_delay,
                true,
                HOUR,
                "cap server-requested delays at 1 h or less",
            ),
            (
                "BreakerConfig::with_open_duration (initial)",
                b.initial_open,
                b.failure_threshold == 0,
                HOUR,
                "use a cool-down above 0 and at most 1 h",
            ),
            (
                "BreakerConfig::with_open_duration (max)",
                b.max_open,
                b.failure_threshold == 0,
                HOUR,
                "use a cool-down cap above 0 and at most 1 h",
            ),
        ];
        for (setting, d, zero_ok, max, hint) in checks {
            if (d.is_zero() && !zero_ok) || d > max {
                return Err(ConfigError::OutOfRange {
                    setting,
                    value: format!("{d:?}"),
                    hint,
                });
            }
        }
        if let Some(e) = r.max_elapsed
            && e > Duration::from_secs(30 * 24 * 3600)
        {
            return Err(ConfigError::OutOfRange {
                setting: "RetryPolicy::with_max_elapsed",
                value: format!("{e:?}"),
                hint: "use at most 30 days, or None for no time limit",
            });
        }
        if b.initial_open > b.max_open {
            return Err(ConfigError::OutOfRange {
                setting: "BreakerConfig::with_open_duration",
                value: format!("initial {:?} > max {:?}", b.initial_open, b.max_open),
                hint: "the first cool-down must not exceed the cap",
            });
        }
        if self.stall_threshold() > self.send_timeout {
            return Err(ConfigError::OutOfRange {
                setting: "with_stall_threshold",
                value: format!(
                    "{:?} (send timeout {:?})",
                    self.stall_threshold(),
                    self.send_timeout
                ),
                hint: "the stall threshold must not exceed the send timeout",
            });
        }
        Ok(())
    }

    /// Validates the settings, starts the worker thread for `sink`, and returns the layer to
    /// add to a `tracing_subscriber::registry()` — as the backend's named layer type `L` (one
    /// declared with [`define_layer!`](crate::define_layer)) — and the guard that flushes it.
    /// Every backend's `build()` ends here.
    ///
    /// Safe to call with or without a tokio runtime, and from inside async code: the worker
    /// owns its own runtime on its own thread.
    ///
    /// # Errors
    /// [`ConfigError`] for invalid settings (naming the setting), an unusable dead-letter
    /// folder, or a failure to start the worker thread.
    pub fn build_layer<L, S>(self, sink: S) -> Result<(L, Guard), ConfigError>
    where
        L: From<ShipLayer>,
        S: Sink,
    {
        self.build(sink)
            .map(|(layer, guard)| (L::from(layer), guard))
    }

    /// As [`build_layer`](Self::build_layer), returning the core [`ShipLayer`] itself.
    ///
    /// # Errors
    /// As [`build_layer`](Self::build_layer).
    pub fn build<S: Sink>(self, sink: S) -> Result<(ShipLayer, Guard), ConfigError> {
        self.validate()?;
        let stall_threshold = self.stall_threshold();
        let default_fqn = self
            .default_fqn
            .transpose()
            .map_err(ConfigError::SourceFqn)?;
        let dead_letter = match &self.dead_letter {
            Some((dir, max)) => {
                Some(DeadLetter::open(dir, sink.name(), *max).map_err(|source| {
                    ConfigError::DeadLetterDir {
                        path: dir.clone(),
                        source,
                    }
                })?)
            }
            None => None,
        };
        let spool = match &self.spool {
            Some(cfg) => Some(crate::spool::Spool::open(cfg.clone()).map_err(|source| {
                ConfigError::Spool {
                    path: cfg.dir.clone(),
                    source,
                }
            })?),
            None => None,
        };
        let counters = Arc::new(Counters::default());
        if let Some(sp) = &spool {
            // Readable at once, before the worker thread runs.
            counters
                .spool_bytes
                .store(sp.bytes(), std::sync::atomic::Ordering::Relaxed);
            counters
                .spool_records
                .store(sp.records(), std::sync::atomic::Ordering::Relaxed);
        }
        let reporting = !self.callbacks.is_empty() || dead_letter.is_some();
        let (lane_tx, lane_rx) = if reporting {
            let (t, r) = crossbeam_channel::bounded(self.drop_lane_records);
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        let keep = 100 - u64::from(self.reserved_percent);
        let limits = QueueLimits {
            max_records: self.max_queue_records as u64,
            max_bytes: self.max_queue_bytes,
            low_records: (self.max_queue_records as u64 * keep / 100).max(1),
            low_bytes: (self.max_queue_bytes / 100 * keep).max(1),
            reserved_level: self.reserved_level,
            overflow: self.overflow,
        };
        let queue = Queue::new(limits, counters.clone(), lane_tx);
        let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
        let interrupt = Arc::new(tokio::sync::Notify::new());
        let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
        let nudge = Arc::new(Nudge {
            flag: AtomicBool::new(false),
            tx: wake_tx,
        });
        let name = sink.name();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name(format!("logship-{name}-io"))
            .on_thread_start(crate::capture::suppress::suppress_current_thread)
            .build()
            .map_err(ConfigError::Spawn)?;
        let worker = Worker::new(
            sink,
            WorkerSettings {
                max_batch_records: self.max_batch_records,
                max_batch_bytes: self.max_batch_bytes,
                linger: self.linger,
                flush_level: self.flush_level,
                send_timeout: self.send_timeout,
                stall_threshold,
                loss_summary: self.loss_summary,
                name,
                retry: self.retry,
                breaker: self.breaker,
                default_fqn,
                callbacks: self.callbacks.clone(),
                dead_letter,
                spool,
            },
            WorkerChannels {
                ctl: ctl_rx,
                interrupt: interrupt.clone(),
                wake: wake_rx,
                lane: lane_rx,
            },
            queue.clone(),
            nudge.clone(),
            counters.clone(),
            rt,
        );
        let thread = std::thread::Builder::new()
            .name(format!("logship-{name}"))
            .spawn(move || worker.run())
            .map_err(ConfigError::Spawn)?;
        let shared = Arc::new(Shared {
            queue,
            counters,
            ctl: ctl_tx,
            interrupt,
            nudge,
            batch_records: self.max_batch_records as u64,
            batch_bytes: self.max_batch_bytes,
            flush_level: self.flush_level,
            shut_down: AtomicBool::new(false),
            name,
            warned_closed: AtomicBool::new(false),
        });
        let layer = ShipLayer::new(
            shared.clone(),
            CaptureConfig {
                events: self.events,
                span_timings: self.span_timings,
                timing_filter: self.timing_filter,
                span_fields: self.span_fields,
            },
        );
        Ok((layer, Guard::new(shared, thread, self.shutdown_timeout)))
    }
}

/// The pipeline settings of a configuration file or of the environment: each `Some` is applied
/// by [`PipelineBuilder::apply_config`], each `None` keeps the backend's default. Field names
/// are the lowercase `SETTING`s of [`PipelineBuilder::apply_env`]; with the feature `serde`
/// it deserializes (unknown keys refused), durations as text with a unit (`"5s"`, `"250ms"`),
/// sizes as a number of bytes or text (`"4MiB"`), levels as text (`"warn"`, `"off"`), the
/// overflow policy as `"drop_newest"`, `"drop_oldest"` or `"block:10ms"` (see
/// [`env`](crate::env) for the syntax).
///
/// ```toml
/// batch_records = 500
/// linger = "200ms"
/// flush_level = "warn"
/// queue_bytes = "16MiB"
/// spool_dir = "/var/lib/myapp/spool"
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
#[non_exhaustive]
pub struct PipelineConfig {
    /// Records in the queue.
    pub queue_records: Option<usize>,
    /// Bytes in the queue.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "crate::env::de::bytes"))]
    pub queue_bytes: Option<u64>,
    /// Records per batch.
    pub batch_records: Option<usize>,
    /// Bytes per batch.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "crate::env::de::bytes"))]
    pub batch_bytes: Option<u64>,
    /// Longest wait for a batch to fill.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::env::de::duration")
    )]
    pub linger: Option<Duration>,
    /// Level that sends its batch at once (`Some(None)`: off).
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::env::de::level_or_off")
    )]
    pub flush_level: Option<Option<Level>>,
    /// What a full queue does.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::env::de::overflow")
    )]
    pub overflow: Option<Overflow>,
    /// One send attempt.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::env::de::duration")
    )]
    pub send_timeout: Option<Duration>,
    /// Unanswered send counted as failing.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::env::de::duration")
    )]
    pub stall_threshold: Option<Duration>,
    /// Final flush when the guard is dropped.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::env::de::duration")
    )]
    pub shutdown_timeout: Option<Duration>,
    /// Attempts per batch, the first included; 0 = no limit.
    pub retry_max_attempts: Option<u32>,
    /// Time a batch may be retried; zero = no limit.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::env::de::duration")
    )]
    pub retry_max_elapsed: Option<Duration>,
    /// First retry delay.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::env::de::duration")
    )]
    pub retry_initial_delay: Option<Duration>,
    /// Longest retry delay.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::env::de::duration")
    )]
    pub retry_max_delay: Option<Duration>,
    /// Spool folder.
    pub spool_dir: Option<PathBuf>,
    /// Spool cap in bytes (needs `spool_dir`).
    #[cfg_attr(feature = "serde", serde(deserialize_with = "crate::env::de::bytes"))]
    pub spool_max_bytes: Option<u64>,
    /// Dead-letter folder.
    pub dead_letter_dir: Option<PathBuf>,
    /// Dead-letter cap in bytes (needs `dead_letter_dir`).
    #[cfg_attr(feature = "serde", serde(deserialize_with = "crate::env::de::bytes"))]
    pub dead_letter_max_bytes: Option<u64>,
    /// Capture events.
    pub events: Option<bool>,
    /// Capture span timings.
    pub span_timings: Option<bool>,
    /// Default source FQN.
    pub source_fqn: Option<String>,
    /// The shutdown loss summary line.
    pub loss_summary: Option<bool>,
}

impl PipelineConfig {
    /// Reads the pipeline variables (see [`PipelineBuilder::apply_env`]) from `env`,
    /// recording malformed values there.
    pub fn from_env(env: &mut EnvVars) -> Self {
        use crate::env::{
            parse_bool, parse_bytes, parse_duration, parse_level_or_off, parse_overflow,
        };
        let count = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| "an unsigned integer".to_string())
        };
        let usize_count = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| "an unsigned integer".to_string())
        };
        let path = |s: &str| Ok::<_, String>(PathBuf::from(s));
        let text = |s: &str| Ok::<_, String>(s.to_string());
        Self {
            queue_records: env.pipeline_parsed("QUEUE_RECORDS", usize_count),
            queue_bytes: env.pipeline_parsed("QUEUE_BYTES", parse_bytes),
            batch_records: env.pipeline_parsed("BATCH_RECORDS", usize_count),
            batch_bytes: env.pipeline_parsed("BATCH_BYTES", parse_bytes),
            linger: env.pipeline_parsed("LINGER", parse_duration),
            flush_level: env.pipeline_parsed("FLUSH_LEVEL", parse_level_or_off),
            overflow: env.pipeline_parsed("OVERFLOW", parse_overflow),
            send_timeout: env.pipeline_parsed("SEND_TIMEOUT", parse_duration),
            stall_threshold: env.pipeline_parsed("STALL_THRESHOLD", parse_duration),
            shutdown_timeout: env.pipeline_parsed("SHUTDOWN_TIMEOUT", parse_duration),
            retry_max_attempts: env.pipeline_parsed("RETRY_MAX_ATTEMPTS", |s| {
                count(s).and_then(|n| u32::try_from(n).map_err(|_| "a smaller count".into()))
            }),
            retry_max_elapsed: env.pipeline_parsed("RETRY_MAX_ELAPSED", parse_duration),
            retry_initial_delay: env.pipeline_parsed("RETRY_INITIAL_DELAY", parse_duration),
            retry_max_delay: env.pipeline_parsed("RETRY_MAX_DELAY", parse_duration),
            spool_dir: env.pipeline_parsed("SPOOL_DIR", path),
            spool_max_bytes: env.pipeline_parsed("SPOOL_MAX_BYTES", parse_bytes),
            dead_letter_dir: env.pipeline_parsed("DEAD_LETTER_DIR", path),
            dead_letter_max_bytes: env.pipeline_parsed("DEAD_LETTER_MAX_BYTES", parse_bytes),
            events: env.pipeline_parsed("EVENTS", parse_bool),
            span_timings: env.pipeline_parsed("SPAN_TIMINGS", parse_bool),
            source_fqn: env.pipeline_parsed("SOURCE_FQN", text),
            loss_summary: env.pipeline_parsed("LOSS_SUMMARY", parse_bool),
        }
    }

    /// A [`PipelineBuilder`] with the defaults and these settings.
    pub fn into_builder(self) -> PipelineBuilder {
        PipelineBuilder::new().apply_config(self)
    }
}
