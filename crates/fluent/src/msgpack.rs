//! The few MessagePack writers the encoder needs, always in the shortest form the msgpack
//! spec allows (fixstr/str8/16/32, positive fixint/uint8…, fixmap/map16/32, …).
//!
//! Written by hand on a `Vec<u8>` because every event of the hot path goes through them:
//! no `Result` to unwrap (a `Vec` cannot fail to grow short of aborting), no trait dispatch.
//! Lengths above `u32::MAX` cannot be represented in msgpack; callers never produce them
//! (requests are bounded far below), and the writers saturate rather than panic.

/// `u32::try_from(len)` saturating; msgpack lengths are u32.
#[inline]
fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// A str header for `len` bytes.
#[inline]
pub(crate) fn str_header(out: &mut Vec<u8>, len: usize) {
    let len = len32(len);
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// A str (raw bytes, UTF-8 by the caller's contract).
#[inline]
pub(crate) fn str(out: &mut Vec<u8>, s: &str) {
    str_header(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// A bin header for `len` bytes.
#[inline]
pub(crate) fn bin_header(out: &mut Vec<u8>, len: usize) {
    let len = len32(len);
    if len <= 0xff {
        out.extend_from_slice(&[0xc4, len as u8]);
    } else if len <= 0xffff {
        out.push(0xc5);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// An array header for `n` elements.
#[inline]
pub(crate) fn array_header(out: &mut Vec<u8>, n: usize) {
    let n = len32(n);
    if n < 16 {
        out.push(0x90 | n as u8);
    } else if n <= 0xffff {
        out.push(0xdc);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A map header for `n` pairs.
#[inline]
pub(crate) fn map_header(out: &mut Vec<u8>, n: usize) {
    let n = len32(n);
    if n < 16 {
        out.push(0x80 | n as u8);
    } else if n <= 0xffff {
        out.push(0xde);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdf);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Starts a map whose size is not known yet; finish it with [`end_map`].
#[inline]
pub(crate) fn begin_map(out: &mut Vec<u8>) -> usize {
    out.push(0x80);
    out.len() - 1
}

/// Writes the real header of a map started with [`begin_map`] at `at` (a fixmap in place
/// for up to 15 pairs; otherwise the header grows and the pairs move right).
#[inline]
pub(crate) fn end_map(out: &mut Vec<u8>, at: usize, n: usize) {
    if n < 16 {
        out[at] = 0x80 | n as u8;
    } else {
        // map16 / map32: the header grows from 1 to 3 or 5 bytes; shift the pairs once.
        // (Same bytes as `map_header`, without a heap buffer per record.)
        let n = len32(n);
        let hdr: &[u8] = &if n <= 0xffff {
            let b = (n as u16).to_be_bytes();
            [0xde, b[0], b[1], 0, 0]
        } else {
            let b = n.to_be_bytes();
            [0xdf, b[0], b[1], b[2], b[3]]
        };
        let hdr = if n <= 0xffff { &hdr[..3] } else { hdr };
        out.splice(at..at + 1, hdr.iter().copied());
    }
}

/// An unsigned integer.
#[inline]
pub(crate) fn uint(out: &mut Vec<u8>, v: u64) {
    if v < 128 {
        out.push(v as u8);
    } else if v <= 0xff {
        out.extend_from_slice(&[0xcc, v as u8]);
    } else if v <= 0xffff {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= 0xffff_ffff {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// A signed integer (non-negative values use the unsigned forms, as msgpack encoders do).
#[inline]
pub(crate) fn int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        uint(out, v as u64);
    } else if v >= -32 {
        out.push(v as i8 as u8);
    } else if v >= i64::from(i8::MIN) {
        out.extend_from_slice(&[0xd0, v as i8 as u8]);
    } else if v >= i64::from(i16::MIN) {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// A float64.
#[inline]
pub(crate) fn f64(out: &mut Vec<u8>, v: f64) {
    out.push(0xcb);
    out.extend_from_slice(&v.to_be_bytes());
}

/// A boolean.
#[inline]
pub(crate) fn bool(out: &mut Vec<u8>, v: bool) {
    out.push(if v { 0xc3 } else { 0xc2 });
}

/// A Fluent EventTime: ext type 0 as `fixext8` (`D7 00`, then big-endian u32 seconds and
/// u32 nanoseconds), the Forward protocol v1 specification, <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1> "EventTime".
#[inline]
pub(crate) fn event_time(out: &mut Vec<u8>, secs: u32, nanos: u32) {
    out.extend_from_slice(&[0xd7, 0x00]);
    out.extend_from_slice(&secs.to_be_bytes());
    out.extend_from_slice(&nanos.to_be_bytes());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn with(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut v = Vec::new();
        f(&mut v);
        v
    }

    /// Cross-checked against rmp's own writers (an independent implementation).
    fn rmp_bytes(f: impl FnOnce(&mut Vec<u8>) -> Result<(), std::io::Error>) -> Vec<u8> {
        let mut v = Vec::new();
        f(&mut v).unwrap();
        v
    }

    #[test]
    fn integers_match_rmp() {
        for v in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            4_294_967_295,
            4_294_967_296,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            -2_147_483_648,
            -2_147_483_649,
            i64::MIN,
            i64::MAX,
        ] {
            let ours = with(|o| int(o, v));
            let theirs = rmp_bytes(|w| {
                rmp::encode::write_sint(w, v)
                    .map(|_| ())
                    .map_err(std::io::Error::other)
            });
            assert_eq!(ours, theirs, "{v}");
        }
        for v in [
            0u64,
            127,
            128,
            255,
            256,
            65535,
            65536,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let ours = with(|o| uint(o, v));
            let theirs = rmp_bytes(|w| {
                rmp::encode::write_uint(w, v)
                    .map(|_| ())
                    .map_err(std::io::Error::other)
            });
            assert_eq!(ours, theirs, "{v}");
        }
    }

    #[test]
    fn headers_match_rmp() {
        for n in [0usize, 15, 16, 31, 32, 255, 256, 65535, 65536] {
            let s = "x".repeat(n);
            assert_eq!(
                with(|o| str(o, &s)),
                rmp_bytes(|w| rmp::encode::write_str(w, &s).map_err(std::io::Error::other)),
                "str {n}"
            );
            assert_eq!(
                with(|o| bin_header(o, n)),
                rmp_bytes(|w| rmp::encode::write_bin_len(w, n as u32)
                    .map(|_| ())
                    .map_err(std::io::Error::other)),
                "bin {n}"
            );
            assert_eq!(
                with(|o| array_header(o, n)),
                rmp_bytes(|w| rmp::encode::write_array_len(w, n as u32)
                    .map(|_| ())
                    .map_err(std::io::Error::other)),
                "array {n}"
            );
            assert_eq!(
                with(|o| map_header(o, n)),
                rmp_bytes(|w| rmp::encode::write_map_len(w, n as u32)
                    .map(|_| ())
                    .map_err(std::io::Error::other)),
                "map {n}"
            );
        }
    }

    #[test]
    fn late_map_header_is_minimal() {
        let mut out = vec![0x91];
        let at = begin_map(&mut out);
        for i in 0..3u64 {
            uint(&mut out, i);
            uint(&mut out, i);
        }
        end_map(&mut out, at, 3);
        assert_eq!(out, [0x91, 0x83, 0, 0, 1, 1, 2, 2]);
        let mut out = Vec::new();
        let at = begin_map(&mut out);
        for i in 0..16u64 {
            uint(&mut out, i);
            bool(&mut out, true);
        }
        end_map(&mut out, at, 16);
        assert_eq!(&out[..4], &[0xde, 0x00, 0x10, 0x00]);
        assert_eq!(out.len(), 3 + 32);
    }

    #[test]
    fn event_time_is_fixext8() {
        let out = with(|o| event_time(o, 0x5f00_0000, 123_456_789));
        assert_eq!(
            out,
            [0xd7, 0x00, 0x5f, 0x00, 0x00, 0x00, 0x07, 0x5b, 0xcd, 0x15]
        );
        assert_eq!(with(|o| f64(o, 1.5)), [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
    }
}
