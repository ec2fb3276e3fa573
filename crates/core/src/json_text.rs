//! JSON text primitives for the backends' hand-written encoders (Elasticsearch, Kusto, jKool):
//! string literals, numbers and UTC timestamps written straight into a `Vec<u8>`.
//!
//! One implementation for every backend, tuned for the worker's hot path: a string without
//! characters to escape (nearly all of them) is checked eight bytes at a time and copied in one
//! piece; integers go through [`itoa`], floats through [`ryu`]; timestamps are formatted without
//! `fmt`. The output is what RFC 8259 requires and nothing more:
//!
//! * strings (§7): `"` and `\` and the control characters U+0000–U+001F are escaped, with the
//!   two-character forms `\b \f \n \r \t` where they exist and `\u00XX` otherwise; everything
//!   else, including non-ASCII, stays UTF-8 as it is (a `&str` is valid UTF-8, so the output is);
//! * numbers (§6): integers in decimal; floats in their shortest round-trip form (`ryu`), always
//!   with a fraction or an exponent; NaN and ±∞ have no JSON form, so [`write_f64`] refuses them;
//! * timestamps: RFC 3339 `date-time` in UTC (`Z`), with 9 ([`write_rfc3339_nanos`]) or 7
//!   ([`write_rfc3339_ticks`], Kusto's 100 ns `datetime`) fraction digits, years 0000–9999.
//!
//! ```
//! use logship_core::{Timestamp, json_text};
//! let mut out = Vec::new();
//! json_text::write_str(&mut out, "say \"hi\"\n");
//! out.push(b',');
//! json_text::write_u64(&mut out, 42);
//! out.push(b',');
//! json_text::write_rfc3339_nanos(&mut out, Timestamp::from_nanos(1_700_000_000_123_456_789));
//! assert_eq!(out, br#""say \"hi\"\n",42,2023-11-14T22:13:20.123456789Z"#);
//! ```

use crate::{Timestamp, Value};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `s` as a quoted JSON string literal.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_escaped(out, s);
    out.push(b'"');
}

/// Writes the escaped contents of `s` without the surrounding quotes (for a literal assembled
/// from several pieces).
#[inline]
pub fn write_escaped(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(i) = find_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..i]);
        escape_byte(out, bytes[i]);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// The index of the first byte at or after `from` that must be escaped.
#[inline]
fn find_escape(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let rest = bytes.get(from..)?;
    let mut chunks = rest.chunks_exact(8);
    let mut at = from;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let w = u64::from_le_bytes(w);
        // A lane is flagged when its byte is < 0x20, or equals '"' or '\\' (the classic
        // "has zero byte" test on w, w ^ '"' and w ^ '\\'). False positives cannot happen for
        // the < 0x20 test on bytes >= 0x80 because `!w` clears their high bit.
        let ctl = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let q = w ^ (ONES * u64::from(b'"'));
        let q = q.wrapping_sub(ONES) & !q & HIGH;
        let b = w ^ (ONES * u64::from(b'\\'));
        let b = b.wrapping_sub(ONES) & !b & HIGH;
        if ctl | q | b != 0 {
            // The SWAR test may flag a lane after a true hit (borrows), never miss one:
            // find the exact byte in this chunk.
            return c.iter().position(|&x| needs_escape(x)).map(|i| at + i);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&x| needs_escape(x))
        .map(|i| at + i)
}

#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

#[cold]
fn escape_byte(out: &mut Vec<u8>, b: u8) {
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x08 => b'b',
        0x0c => b'f',
        _ => {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

/// Writes a signed integer.
#[inline]
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Writes an unsigned integer.
#[inline]
pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Writes a 128-bit signed integer (as a JSON number; readers that parse numbers as `f64`
/// lose precision beyond ±2⁵³, so encoders usually write such values as strings).
#[inline]
pub fn write_i128(out: &mut Vec<u8>, v: i128) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Writes a 128-bit unsigned integer (see [`write_i128`]).
#[inline]
pub fn write_u128(out: &mut Vec<u8>, v: u128) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Writes a finite float in its shortest round-trip form, always with a fraction or an
/// exponent (`1.0`, not `1`, so it never reads back as an integer). Returns `false` and writes
/// nothing for NaN and ±∞, which JSON cannot represent; the caller picks the substitute.
#[inline]
pub fn write_f64(out: &mut Vec<u8>, v: f64) -> bool {
    if !v.is_finite() {
        return false;
    }
    out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    true
}

/// Writes a field value as JSON, with the rules of [`json::value_to_json`](crate::json::value_to_json)
/// (byte for byte what `serde_json` writes for that value, except floats in `ryu`'s shortest
/// form, e.g. `1e300` for `1e+300`):
/// text as a string; integers as numbers, except 128-bit ones beyond ±2⁵³ (where most JSON
/// readers lose digits) as decimal strings; finite floats as numbers, NaN and ±∞ as the strings
/// `"NaN"`, `"inf"`, `"-inf"`; booleans; an error as `{"message":…,"sources":[…]}`.
pub fn write_value(out: &mut Vec<u8>, v: Value<'_>) {
    const SAFE: i128 = 1 << 53;
    match v {
        Value::Str(s) => write_str(out, s),
        Value::I64(v) => write_i64(out, v),
        Value::U64(v) => write_u64(out, v),
        Value::I128(v) if (-SAFE..=SAFE).contains(&v) => write_i128(out, v),
        Value::U128(v) if v <= SAFE as u128 => write_u128(out, v),
        Value::I128(v) => {
            out.push(b'"');
            write_i128(out, v);
            out.push(b'"');
        }
        Value::U128(v) => {
            out.push(b'"');
            write_u128(out, v);
            out.push(b'"');
        }
        Value::F64(v) => {
            if !write_f64(out, v) {
                write_str(out, &v.to_string());
            }
        }
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Error(e) => {
            out.extend_from_slice(b"{\"message\":");
            write_str(out, &e.message);
            out.extend_from_slice(b",\"sources\":[");
            for (i, s) in e.sources.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, s);
            }
            out.extend_from_slice(b"]}");
        }
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms", `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DDTHH:MM:SS` of `t` into `buf[..19]`.
#[inline]
fn date_time(buf: &mut [u8], t: Timestamp) {
    let secs = t.secs();
    let (y, mo, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(i64::MAX));
    let sod = secs % 86_400;
    put(buf, 0, 4, u64::try_from(y.clamp(0, 9999)).unwrap_or(0));
    buf[4] = b'-';
    put(buf, 5, 2, u64::from(mo));
    buf[7] = b'-';
    put(buf, 8, 2, u64::from(d));
    buf[10] = b'T';
    put(buf, 11, 2, sod / 3600);
    buf[13] = b':';
    put(buf, 14, 2, sod % 3600 / 60);
    buf[16] = b':';
    put(buf, 17, 2, sod % 60);
}

#[inline]
fn put(buf: &mut [u8], at: usize, width: usize, v: u64) {
    if let Some(field) = buf.get_mut(at..at + width) {
        write_digits(field, v);
    }
}

/// Writes the last `buf.len()` decimal digits of `v` into `buf`, zero-padded (fixed-width
/// fields of dates, times and durations).
#[inline]
pub fn write_digits(buf: &mut [u8], mut v: u64) {
    for b in buf.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Writes `t` as RFC 3339 in UTC with nanoseconds, unquoted:
/// `2026-11-21T06:01:02.123456789Z` (30 bytes). Years past 9999 are written as 9999.
#[inline]
pub fn write_rfc3339_nanos(out: &mut Vec<u8>, t: Timestamp) {
    let mut buf = [0u8; 30];
    date_time(&mut buf, t);
    buf[19] = b'.';
    put(&mut buf, 20, 9, u64::from(t.subsec_nanos()));
    buf[29] = b'Z';
    out.extend_from_slice(&buf);
}

/// Writes `t` as RFC 3339 in UTC with 100 ns ticks (7 fraction digits, truncated), unquoted:
/// `2026-11-21T06:01:02.1234567Z` (28 bytes) — the precision of Kusto's `datetime`.
#[inline]
pub fn write_rfc3339_ticks(out: &mut Vec<u8>, t: Timestamp) {
    let mut buf = [0u8; 28];
    date_time(&mut buf, t);
    buf[19] = b'.';
    put(&mut buf, 20, 7, u64::from(t.subsec_nanos() / 100));
    buf[27] = b'Z';
    out.extend_from_slice(&buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lit(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn escapes_what_rfc_8259_requires() {
        assert_eq!(lit("plain"), r#""plain""#);
        assert_eq!(lit("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(lit("\u{8}\u{c}\n\r\t"), r#""\b\f\n\r\t""#);
        assert_eq!(lit("\u{0}\u{1f}"), r#""\u0000\u001f""#);
        assert_eq!(lit("é ✓ \u{7f}"), "\"é ✓ \u{7f}\"");
        assert_eq!(lit("0123456789abcde\""), r#""0123456789abcde\"""#);
    }

    #[test]
    fn numbers() {
        let mut out = Vec::new();
        write_i64(&mut out, -5);
        out.push(b' ');
        write_u128(&mut out, u128::MAX);
        out.push(b' ');
        assert!(write_f64(&mut out, 1.0));
        assert!(!write_f64(&mut out, f64::NAN));
        assert_eq!(out, b"-5 340282366920938463463374607431768211455 1.0");
    }

    #[test]
    fn timestamps() {
        let t = Timestamp::from_nanos(1_700_000_000_123_456_789);
        let mut out = Vec::new();
        write_rfc3339_nanos(&mut out, t);
        out.push(b' ');
        write_rfc3339_ticks(&mut out, t);
        assert_eq!(
            out,
            b"2023-11-14T22:13:20.123456789Z 2023-11-14T22:13:20.1234567Z"
        );
    }

    #[test]
    fn values_match_value_to_json() {
        let err = crate::record::ErrorChain {
            message: "boom \"x\"".into(),
            sources: vec!["a".into(), "b\n".into()],
        };
        let values = [
            Value::Str("t\u{1}"),
            Value::I64(-3),
            Value::U64(u64::MAX),
            Value::I128(1 << 53),
            Value::I128(-(1 << 60)),
            Value::U128(u128::MAX),
            Value::F64(0.5),
            Value::F64(f64::NAN),
            Value::F64(f64::NEG_INFINITY),
            Value::Bool(false),
            Value::Error(&err),
        ];
        for v in values {
            let mut out = Vec::new();
            write_value(&mut out, v);
            let want = serde_json::to_string(&crate::json::value_to_json(v)).unwrap_or_default();
            assert_eq!(String::from_utf8(out).unwrap_or_default(), want, "{v:?}");
        }
    }

    proptest! {
        #[test]
        fn strings_round_trip_through_serde_json(s in any::<String>()) {
            let text = lit(&s);
            let back: String = serde_json::from_str(&text).unwrap_or_default();
            prop_assert_eq!(back, s.clone());
            prop_assert_eq!(text, serde_json::to_string(&s).unwrap_or_default());
        }

        #[test]
        fn timestamps_match_chrono(n in 0u64..u64::MAX) {
            let t = Timestamp::from_nanos(n);
            let mut out = Vec::new();
            write_rfc3339_nanos(&mut out, t);
            prop_assert_eq!(String::from_utf8(out).unwrap_or_default(), t.to_rfc3339());
        }
    }
}
