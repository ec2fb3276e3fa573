//! [`parse_retry_after`]: the one `Retry-After` parser.

use std::time::{Duration, SystemTime};

/// The longest delay a server may ask for: 1 hour, the longest retry delay the core's
/// [`RetryPolicy`](logship_core::RetryPolicy) accepts. Longer values are cut to it (the retry
/// policy may cut further).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The delay a `Retry-After` header value asks for (RFC 9110 §10.2.3): `delay-seconds`
/// (`120`) or an HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`, also the obsolete RFC 850 and
/// asctime forms), measured from `now` (a date in the past is zero). At most
/// [`MAX_RETRY_AFTER`]. `None` for anything else (negative, fractional, garbage).
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use logship_http::parse_retry_after;
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_445_412_470); // 07:27:50 GMT
/// assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
/// assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(Duration::from_secs(10)));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: an overflow is "very long", i.e. the cap.
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn forms() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        let p = |v| parse_retry_after(v, now);
        assert_eq!(p(" 0 "), Some(Duration::ZERO));
        assert_eq!(p("99999999999999999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(p("7200"), Some(MAX_RETRY_AFTER));
        assert_eq!(p("-1"), None);
        assert_eq!(p("1.5"), None);
        assert_eq!(p(""), None);
        assert_eq!(
            p("Wednesday, 21-Oct-15 07:28:00 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(p("Wed Oct 21 07:28:00 2015"), Some(Duration::from_secs(10)));
        assert_eq!(p("Tue, 20 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(p("Sun, 21 Oct 2035 07:28:00 GMT"), Some(MAX_RETRY_AFTER));
    }
}
