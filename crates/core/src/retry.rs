//! Retry timing: exponential backoff with full jitter, and a circuit breaker.
//!
//! The schedule is the one Fluent Bit and AWS recommend ("full jitter"): before attempt
//! *n + 1* the worker waits a uniformly random time in `[0, min(max_delay, initial · 2ⁿ)]`.
//! A server-given delay (`Retry-After`) replaces the random one, capped at
//! `max_server_delay`. A batch is given up (undelivered, counted) after `max_attempts` sends or
//! once `max_elapsed` has passed since its first send, whichever comes first.
//!
//! The [`BreakerConfig`] circuit breaker (as Vector's health service) opens after
//! `failure_threshold` failed sends in a row, across batches: nothing is sent until the
//! cool-down passes, then one probe goes out; a success closes it, a failure doubles the
//! cool-down (up to `max_open`). This keeps a down backend from being hammered by every batch.

use std::time::{Duration, Instant};

use rand::Rng;

/// When and how often to retry a batch. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub(crate) initial: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) max_elapsed: Option<Duration>,
    pub(crate) max_server_delay: Duration,
}

impl Default for RetryPolicy {
    /// 100 ms initial, 30 s cap, at most 10 attempts or 120 s, server delays capped at 60 s.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            max_attempts: Some(10),
            max_elapsed: Some(Duration::from_secs(120)),
            max_server_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries: a failed batch is undelivered at once.
    pub fn never() -> Self {
        Self {
            max_attempts: Some(1),
            ..Self::default()
        }
    }
    /// Base of the exponential schedule (default 100 ms).
    pub fn with_initial_delay(self, d: Duration) -> Self {
        Self { initial: d, ..self }
    }
    /// Cap of a single delay (default 30 s).
    pub fn with_max_delay(self, d: Duration) -> Self {
        Self {
            max_delay: d,
            ..self
        }
    }
    /// Total sends per batch including the first; `None` = unlimited (default 10).
    pub fn with_max_attempts(self, n: Option<u32>) -> Self {
        Self {
            max_attempts: n,
            ..self
        }
    }
    /// Give up once this long has passed since the first send; `None` = unlimited (default 120 s).
    pub fn with_max_elapsed(self, d: Option<Duration>) -> Self {
        Self {
            max_elapsed: d,
            ..self
        }
    }
    /// Cap for server-requested delays such as `Retry-After` (default 60 s).
    pub fn with_max_server_delay(self, d: Duration) -> Self {
        Self {
            max_server_delay: d,
            ..self
        }
    }

    /// The delay before the attempt after `attempts_made` sends, given a server hint.
    pub fn delay(
        &self,
        attempts_made: u32,
        server: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        if let Some(s) = server {
            return s.min(self.max_server_delay);
        }
        let exp = attempts_made.saturating_sub(1).min(31);
        let ceiling = self.initial.saturating_mul(1u32 << exp).min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }

    /// Whether another attempt is allowed after `attempts_made` sends that began at `first`.
    pub fn allows(&self, attempts_made: u32, first: Instant, now: Instant) -> bool {
        let by_count = self.max_attempts.is_none_or(|m| attempts_made < m);
        let by_time = self
            .max_elapsed
            .is_none_or(|m| now.duration_since(first) < m);
        by_count && by_time
    }
}

/// Circuit-breaker settings. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub(crate) failure_threshold: u32,
    pub(crate) initial_open: Duration,
    pub(crate) max_open: Duration,
}

impl Default for BreakerConfig {
    /// Opens after 5 failures in a row; cool-down 1 s doubling to 60 s.
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            initial_open: Duration::from_secs(1),
            max_open: Duration::from_secs(60),
        }
    }
}

impl BreakerConfig {
    /// Consecutive failed sends that open the breaker (default 5); 0 disables it.
    pub fn with_failure_threshold(self, n: u32) -> Self {
        Self {
            failure_threshold: n,
            ..self
        }
    }
    /// First cool-down (default 1 s) and its cap (default 60 s).
    pub fn with_open_duration(self, initial: Duration, max: Duration) -> Self {
        Self {
            initial_open: initial,
            max_open: max,
            ..self
        }
    }
    /// A breaker that never opens.
    pub fn disabled() -> Self {
        Self::default().with_failure_threshold(0)
    }
}

#[derive(Debug)]
pub(crate) struct Breaker {
    cfg: BreakerConfig,
    consecutive: u32,
    open_until: Option<Instant>,
    cooldown: Duration,
}

impl Breaker {
    pub(crate) fn new(cfg: BreakerConfig) -> Self {
        Self {
            cfg,
            consecutive: 0,
            open_until: None,
            cooldown: cfg.initial_open,
        }
    }

    /// `None` when a send may go now; otherwise when the next probe may go.
    pub(crate) fn blocked_until(&self, now: Instant) -> Option<Instant> {
        self.open_until.filter(|u| *u > now)
    }

    /// The current cool-down (what the next opening lasts).
    pub(crate) fn cooldown(&self) -> Duration {
        self.cooldown
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open_until.is_some()
    }

    pub(crate) fn consecutive(&self) -> u32 {
        self.consecutive
    }

    pub(crate) fn success(&mut self) {
        self.consecutive = 0;
        self.open_until = None;
        self.cooldown = self.cfg.initial_open;
    }

    pub(crate) fn failure(&mut self, now: Instant) {
        self.consecutive = self.consecutive.saturating_add(1);
        if self.cfg.failure_threshold == 0 {
            return;
        }
        if self.open_until.is_some() {
            // A failed probe: open again for longer.
            self.cooldown = self.cooldown.saturating_mul(2).min(self.cfg.max_open);
            self.open_until = Some(crate::time::after(now, self.cooldown));
        } else if self.consecutive >= self.cfg.failure_threshold {
            self.open_until = Some(crate::time::after(now, self.cooldown));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    proptest! {
        #[test]
        fn delay_within_full_jitter_bounds(attempt in 1u32..64, seed in any::<u64>(),
                                           init_ms in 1u64..1000, cap_ms in 1u64..60_000) {
            let p = RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(init_ms))
                .with_max_delay(Duration::from_millis(cap_ms));
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let d = p.delay(attempt, None, &mut rng);
            let exp = (attempt - 1).min(31);
            let ceiling = Duration::from_millis(init_ms).saturating_mul(1 << exp).min(Duration::from_millis(cap_ms));
            prop_assert!(d <= ceiling);
        }

        #[test]
        fn server_delay_is_capped(secs in 0u64..10_000) {
            let p = RetryPolicy::default();
            let mut rng = rand::rngs::StdRng::seed_from_u64(1);
            let d = p.delay(1, Some(Duration::from_secs(secs)), &mut rng);
            prop_assert_eq!(d, Duration::from_secs(secs.min(60)));
        }
    }

    #[test]
    fn attempts_and_elapsed_limits() {
        let p = RetryPolicy::default()
            .with_max_attempts(Some(3))
            .with_max_elapsed(Some(Duration::from_secs(10)));
        let t0 = Instant::now();
        assert!(p.allows(2, t0, t0));
        assert!(!p.allows(3, t0, t0));
        assert!(!p.allows(1, t0, t0 + Duration::from_secs(11)));
        assert!(!RetryPolicy::never().allows(1, t0, t0));
    }

    #[test]
    fn breaker_opens_probes_and_closes() {
        let mut b = Breaker::new(
            BreakerConfig::default()
                .with_failure_threshold(2)
                .with_open_duration(Duration::from_secs(1), Duration::from_secs(3)),
        );
        let t0 = Instant::now();
        b.failure(t0);
        assert!(b.blocked_until(t0).is_none());
        b.failure(t0);
        assert_eq!(b.blocked_until(t0), Some(t0 + Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(1);
        assert!(
            b.blocked_until(t1).is_none(),
            "probe allowed after cool-down"
        );
        b.failure(t1);
        assert_eq!(b.blocked_until(t1), Some(t1 + Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(2);
        b.failure(t2);
        assert_eq!(
            b.blocked_until(t2),
            Some(t2 + Duration::from_secs(3)),
            "capped"
        );
        b.success();
        assert!(b.blocked_until(t2).is_none());
        assert!(!b.is_open());
    }
}
