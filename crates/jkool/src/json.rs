//! A minimal, allocation-free JSON object writer with a fixed key order, on top of the core's
//! JSON text primitives ([`logship_core::json_text`]: strings, integers, floats).
//!
//! The documents are written by hand (rather than through `serde_json::Value`) so that the key
//! order is stable, which makes golden tests exact, and so that encoding a record costs no
//! intermediate tree.

pub(crate) use logship_core::json_text::{write_i64, write_str, write_u64};

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
    /// Keys are the document model's own names (literals that need no escaping), so they are
    /// copied as they are.
    pub(crate) fn key(&mut self, key: &'static str) -> &mut Vec<u8> {
        debug_assert!(
            !key.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'),
            "{key:?} needs escaping"
        );
        self.out.reserve(key.len() + 4);
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    pub(crate) fn str(&mut self, key: &'static str, v: &str) {
        let out = self.key(key);
        write_str(out, v);
    }

    /// A value from the document model's own vocabulary (`"EVENT"`, `"INFO"`, …): a literal
    /// that needs no escaping, copied as it is.
    pub(crate) fn name(&mut self, key: &'static str, v: &'static str) {
        let out = self.key(key);
        debug_assert!(
            !v.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'),
            "{v:?} needs escaping"
        );
        out.reserve(v.len() + 2);
        out.push(b'"');
        out.extend_from_slice(v.as_bytes());
        out.push(b'"');
    }

    pub(crate) fn opt_str(&mut self, key: &'static str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(key, v);
        }
    }

    pub(crate) fn i64(&mut self, key: &'static str, v: i64) {
        let out = self.key(key);
        write_i64(out, v);
    }

    pub(crate) fn u64(&mut self, key: &'static str, v: u64) {
        let out = self.key(key);
        write_u64(out, v);
    }

    pub(crate) fn opt_u64(&mut self, key: &'static str, v: Option<u64>) {
        if let Some(v) = v {
            self.u64(key, v);
        }
    }

    pub(crate) fn end(self) {
        self.out.push(b'}');
    }
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
        o.name("t", "EVENT");
        o.i64("a", -5);
        o.u64("m", u64::MAX);
        assert!(logship_core::json_text::write_f64(o.key("f"), 1.0));
        o.end();
        assert_eq!(
            String::from_utf8(out).unwrap_or_default(),
            r#"{"z":"1","t":"EVENT","a":-5,"m":18446744073709551615,"f":1.0}"#
        );
    }
}
