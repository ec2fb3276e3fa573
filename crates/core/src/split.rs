//! [`split_ranges`]: cutting a run of encoded items into requests bounded by count and bytes.

use std::ops::Range;

/// Splits items of the given encoded `sizes` (bytes each, separators included) into
/// consecutive ranges of at most `max_items` items and at most `max_bytes` bytes (plus
/// `overhead` bytes per request, e.g. the `[` `]` of a JSON array). An item larger than
/// `max_bytes` on its own gets a range of its own (the backend then decides whether the
/// server can take it). `max_items` of 0 is treated as 1. Never returns an empty range.
///
/// ```
/// let r = logship_core::split::split_ranges(&[4, 4, 4, 20, 1], 10, 10, 0);
/// assert_eq!(r, vec![0..2, 2..3, 3..4, 4..5]);
/// ```
pub fn split_ranges(
    sizes: &[usize],
    max_items: usize,
    max_bytes: usize,
    overhead: usize,
) -> Vec<Range<usize>> {
    let max_items = max_items.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = overhead;
    for (i, &s) in sizes.iter().enumerate() {
        if i > start && (i - start >= max_items || bytes.saturating_add(s) > max_bytes) {
            out.push(start..i);
            start = i;
            bytes = overhead;
        }
        bytes = bytes.saturating_add(s);
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_hold() {
        assert!(split_ranges(&[], 5, 5, 0).is_empty());
        assert_eq!(split_ranges(&[1, 1, 1], 2, 100, 0), vec![0..2, 2..3]);
        assert_eq!(split_ranges(&[3, 3, 3], 0, 100, 0), vec![0..1, 1..2, 2..3]);
        assert_eq!(split_ranges(&[3, 3], 10, 8, 2), vec![0..2]);
        assert_eq!(split_ranges(&[3, 3], 10, 7, 2), vec![0..1, 1..2]);
    }
}
