//! A minimal, allocation-free JSON object writer with a fixed key order.
//!
//! The documents are written by hand (rather than through `serde_json::Value`) so that the key
//! order is stable, which makes golden tests exact, and so that encoding a record costs no
//! intermediate tree.

/// Writes `s` as a JSON string (quoted, escaped per RFC 8259 §7).
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// An open JSON object; keys are written in call order. Close it with [`Obj::end`].
pub(crate) struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    pub(crate) fn begin(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }

    /// Writes `"key":` (with the separating comma) and returns the buffer for the value.
    pub(crate) fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, key);
        self.out.push(b':');
        self.out
    }

    pub(crate) fn str(&mut self, key: &str, v: &str) {
        let out = self.key(key);
        write_str(out, v);
    }

    pub(crate) fn opt_str(&mut self, key: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(key, v);
        }
    }

    pub(crate) fn i64(&mut self, key: &str, v: i64) {
        let out = self.key(key);
        write_i64(out, v);
    }

    pub(crate) fn u64(&mut self, key: &str, v: u64) {
        let out = self.key(key);
        write_u64(out, v);
    }

    pub(crate) fn end(self) {
        self.out.push(b'}');
    }
}

pub(crate) fn write_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

pub(crate) fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// A finite float in its shortest round-tripping form, always with a fraction or exponent
/// (`1.0`, not `1`), so a DOUBLE never reads back as an integer.
pub(crate) fn write_finite_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
}

/// Writes `[a,b,…]` with `each` writing one element.
pub(crate) fn write_array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut each: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, item);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, v);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn escapes_like_rfc_8259() {
        assert_eq!(s("plain"), r#""plain""#);
        assert_eq!(s("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(s("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
        assert_eq!(s("\u{0}\u{1f}\u{8}\u{c}"), r#""\u0000\u001f\b\f""#);
        assert_eq!(s("déjà vu ✓"), "\"déjà vu ✓\"");
        assert_eq!(s("</script>"), "\"</script>\"");
    }

    #[test]
    fn escaped_strings_parse_back() {
        let nasty = "q\"\\\u{0}\u{7f}\n€𝄞";
        let parsed: String = serde_json::from_str(&s(nasty)).unwrap_or_default();
        assert_eq!(parsed, nasty);
    }

    #[test]
    fn objects_keep_key_order_and_floats_keep_a_fraction() {
        let mut out = Vec::new();
        let mut o = Obj::begin(&mut out);
        o.str("z", "1");
        o.i64("a", -5);
        o.u64("m", u64::MAX);
        write_finite_f64(o.key("f"), 1.0);
        o.end();
        assert_eq!(
            String::from_utf8(out).unwrap_or_default(),
            r#"{"z":"1","a":-5,"m":18446744073709551615,"f":1.0}"#
        );
    }
}
