//! [`excerpt`]: a server's reply as it may appear in an error, `last_error` or a dead letter.

/// Longest excerpt of a server reply kept in an error, in bytes (plus a trailing `…`).
pub const MAX_EXCERPT_BYTES: usize = 512;

/// At most [`MAX_EXCERPT_BYTES`] of `body` as one line of text: invalid UTF-8 replaced
/// (`U+FFFD`), control characters and line breaks shown as spaces, runs of whitespace
/// collapsed, trimmed, and `…` appended when cut. Never fails, whatever the bytes.
///
/// ```
/// assert_eq!(logship_core::excerpt::excerpt(b"  bad\r\n  request\xff "), "bad request\u{fffd}");
/// assert!(logship_core::excerpt::excerpt(&[b'x'; 10_000]).len() <= 515);
/// ```
pub fn excerpt(body: &[u8]) -> String {
    bounded(
        &String::from_utf8_lossy(&body[..body.len().min(4 * MAX_EXCERPT_BYTES)]),
        MAX_EXCERPT_BYTES,
    )
}

/// `text` as one line of at most `max` bytes (plus `…` when cut), as [`excerpt`] does.
pub fn bounded(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 3);
    let mut space = false;
    let mut cut = false;
    for c in text.trim().chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if space {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        if out.len() + c.len_utf8() > max {
            cut = true;
            break;
        }
        out.push(c);
    }
    if cut {
        let t = out.trim_end().len();
        out.truncate(t);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_single_lines() {
        assert_eq!(excerpt(b""), "");
        assert_eq!(excerpt(b"a\n\n\tb"), "a b");
        let long = "é".repeat(1000);
        let e = excerpt(long.as_bytes());
        assert!(
            e.len() <= MAX_EXCERPT_BYTES + '…'.len_utf8() && e.ends_with('…'),
            "{e}"
        );
        assert_eq!(bounded("abcdef", 3), "abc…");
    }
}
