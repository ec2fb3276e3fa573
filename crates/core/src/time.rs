//! [`Timestamp`]: a UTC instant with nanosecond precision.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds on `clock`, read through the vDSO (`clock_gettime`); negative readings clamp to 0.
#[cfg(unix)]
#[inline]
fn clock_nanos(clock: rustix::time::ClockId) -> u64 {
    let t = rustix::time::clock_gettime(clock);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// Nanoseconds on the monotonic clock (`CLOCK_MONOTONIC`), for durations only: read straight
/// from the vDSO on Unix (cheaper than `Instant::now`, which span enter/exit/close call four
/// times per span); elsewhere measured from a process-wide `Instant`.
#[inline]
pub(crate) fn mono_nanos() -> u64 {
    #[cfg(unix)]
    {
        clock_nanos(rustix::time::ClockId::Monotonic)
    }
    #[cfg(not(unix))]
    {
        static T0: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        u64::try_from(T0.get_or_init(std::time::Instant::now).elapsed().as_nanos())
            .unwrap_or(u64::MAX)
    }
}

/// The farthest the pipeline ever looks ahead: about 100 years. Deadlines and wake-ups further
/// out are clamped to it, so no duration a user passes (`Duration::MAX` included) can overflow
/// `Instant` arithmetic.
pub(crate) const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + d`, clamped to [`FAR_FUTURE`]: never panics.
#[inline]
pub(crate) fn after(now: std::time::Instant, d: Duration) -> std::time::Instant {
    let d = d.min(FAR_FUTURE);
    now.checked_add(d).unwrap_or(now)
}

/// A UTC instant: nanoseconds since the Unix epoch (1970-01-01T00:00:00Z), leap seconds not
/// counted (the same scale as [`SystemTime`]). Instants before the epoch clamp to it.
///
/// Every backend derives its wire form from this one value: Fluent's EventTime (seconds +
/// nanoseconds), jKool's `time-usec` (µs), ECS `@timestamp` and Kusto `datetime` (RFC 3339).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The current wall-clock time (`CLOCK_REALTIME`).
    #[inline]
    pub fn now() -> Self {
        #[cfg(unix)]
        {
            // Straight from the vDSO: `SystemTime::now` plus `duration_since(UNIX_EPOCH)` cost
            // as much again as the clock read itself on the caller's hot path.
            Self(clock_nanos(rustix::time::ClockId::Realtime))
        }
        #[cfg(not(unix))]
        {
            Self::from_system_time(SystemTime::now())
        }
    }

    /// From a [`SystemTime`]; times before the epoch clamp to the epoch, times after
    /// 2554-07-21 saturate.
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            Err(_) => Self(0),
        }
    }

    /// From nanoseconds since the Unix epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Microseconds since the Unix epoch (truncated), as jKool's `time-usec`.
    pub const fn as_micros(self) -> u64 {
        self.0 / 1_000
    }

    /// Whole seconds since the Unix epoch.
    pub const fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }

    /// The nanoseconds within the second (0..1e9).
    pub const fn subsec_nanos(self) -> u32 {
        (self.0 % 1_000_000_000) as u32
    }

    /// As a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.0)
    }

    /// This instant plus `d` (saturating).
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }

    /// RFC 3339 in UTC with nanoseconds, e.g. `2026-11-21T06:01:02.123456789Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_chrono()
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    }

    /// As a chrono `DateTime<Utc>`.
    pub fn to_chrono(self) -> chrono::DateTime<chrono::Utc> {
        let secs = i64::try_from(self.secs()).unwrap_or(i64::MAX);
        chrono::DateTime::from_timestamp(secs, self.subsec_nanos()).unwrap_or_default()
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        Self::from_system_time(t)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_rfc3339() {
        let t = Timestamp::from_nanos(1_700_000_000_123_456_789);
        assert_eq!(t.secs(), 1_700_000_000);
        assert_eq!(t.subsec_nanos(), 123_456_789);
        assert_eq!(t.as_micros(), 1_700_000_000_123_456);
        assert_eq!(t.to_rfc3339(), "2023-11-14T22:13:20.123456789Z");
    }

    #[test]
    fn before_epoch_clamps() {
        let t = Timestamp::from_system_time(UNIX_EPOCH - Duration::from_secs(5));
        assert_eq!(t.as_nanos(), 0);
    }
}
