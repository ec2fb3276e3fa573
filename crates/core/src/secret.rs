//! [`Secret`]: a credential that never shows up in logs, errors, `Debug` output or stats.

use std::fmt;

/// A credential (shared key, password, access token, application key, API key). Its `Debug`
/// prints `***` and it has no `Display`, so it cannot leak through `{:?}`, an error message or
/// a log line by accident; [`expose`](Secret::expose) is the one explicit way to read it (to
/// put it on the wire or into a digest). Every backend uses this one type.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The credential itself. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&String> for Secret {
    fn from(s: &String) -> Self {
        Self(s.clone())
    }
}

/// From a string (feature `serde`): a secret in a configuration file. A value of another type
/// (a number, a boolean…) is an error whose message does not repeat the value, as serde's
/// default "invalid type: integer `1234`" would (for self-describing formats: TOML, JSON, YAML…).
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

#[cfg(feature = "serde")]
struct SecretVisitor;

#[cfg(feature = "serde")]
impl SecretVisitor {
    fn not_text<E: serde::de::Error>(&self) -> E {
        E::invalid_type(
            serde::de::Unexpected::Other("a value that is not text"),
            self,
        )
    }
}

#[cfg(feature = "serde")]
impl serde::de::Visitor<'_> for SecretVisitor {
    type Value = Secret;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret as text")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret::new(v))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
        Err(self.not_text())
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
        Err(self.not_text())
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
        Err(self.not_text())
    }
    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<Secret, E> {
        Err(self.not_text())
    }
    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<Secret, E> {
        Err(self.not_text())
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
        Err(self.not_text())
    }
    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        Err(self.not_text())
    }
}

/// `url` as it may be shown in errors and `Debug` output: the userinfo (a password or token)
/// is masked as `***`, and so are the query (a key, a SAS signature) and the fragment; the
/// scheme, host, port and path stay. `https://user:pw@host:1/p?sig=x` →
/// `https://***@host:1/p?***`.
///
/// It works on any string, not only on URLs that parse (RFC 3986 §3 is the shape it assumes),
/// because the URLs shown in errors are mostly the ones that failed to parse:
///
/// * a password may hold unescaped `#`, `?`, `/` or `@`: the userinfo ends at the **last**
///   `@` (a host never holds one), so `https://elastic:pre#post@es:9200/` →
///   `https://***@es:9200/`;
/// * without a scheme (`user:pw@host:1`) everything before that `@` is masked just the same;
///   a text before `://` that is not a scheme (RFC 3986 §3.1: a letter, then letters, digits,
///   `+`, `-`, `.`) is treated as part of the userinfo;
/// * when an `@` after a `?` or `#` makes it unclear whether that `@` ends a userinfo or sits
///   in a query or fragment (`https://h/p?sig=a@b`), the userinfo reading is taken only if
///   the other one has no plausible host (`name`, `name:port`, `[v6]`, `[v6]:port`: `elastic:pre`
///   is not one) and its own host is plausible; otherwise nothing but the scheme is shown
///   (`https://***`), since what one reading shows is a secret in the other.
///
/// Nothing is decoded: percent-encoded text is masked as it is.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = split_scheme(url);
    let head = match scheme {
        Some(s) => &url[..s.len() + 3],
        None => "",
    };
    // Reading A: the authority ends at the first `/`, `?` or `#`; its userinfo at its last `@`.
    let auth_end_a = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at_a = rest[..auth_end_a].rfind('@');
    // Reading B: the userinfo ends at the last `@` of all (a password holding `/`, `?`, `#`).
    let at_b = rest.rfind('@');
    let at = match (at_a, at_b) {
        (_, None) => None,
        (a, Some(b)) if a == Some(b) => a,
        // The last `@` comes after a `/` only (no `?` or `#` before it): a password with a
        // `/`, or a path with an `@`; masking up to it hides what either reading hides.
        (_, Some(b)) if !rest[..b].contains(['?', '#']) => Some(b),
        (a, Some(b)) => {
            let host_a = plausible_host(authority_host(&rest[a.map_or(0, |i| i + 1)..]));
            let host_b = plausible_host(authority_host(&rest[b + 1..]));
            if host_b && !host_a {
                Some(b)
            } else {
                // Both plausible (B's host lies in A's query or fragment, A's host in B's
                // userinfo), or neither: show nothing but the scheme.
                return format!("{head}***");
            }
        }
    };
    let (masked, after) = match at {
        Some(i) => ("***@", &rest[i + 1..]),
        None => ("", rest),
    };
    let end = after.find(['?', '#']).unwrap_or(after.len());
    let (keep, tail) = after.split_at(end);
    let tail = match tail.as_bytes().first() {
        Some(b'?') => "?***",
        Some(_) => "#***",
        None => "",
    };
    format!("{head}{masked}{keep}{tail}")
}

/// `Some(scheme)` and the rest after `://`, when `url` starts with a valid scheme
/// (RFC 3986 §3.1) followed by `://`.
fn split_scheme(url: &str) -> (Option<&str>, &str) {
    if let Some(i) = url.find("://") {
        let s = &url[..i];
        let mut chars = s.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if valid {
            return (Some(s), &url[i + 3..]);
        }
    }
    (None, url)
}

/// The host and port part of `s` (what follows a userinfo): up to the first `/`, `?` or `#`.
fn authority_host(s: &str) -> &str {
    &s[..s.find(['/', '?', '#']).unwrap_or(s.len())]
}

/// Whether `h` looks like `host`, `host:port`, `[v6]` or `[v6]:port` (RFC 3986 §3.2.2,
/// registered names restricted to the unreserved characters and `%`).
fn plausible_host(h: &str) -> bool {
    let port_ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if let Some(v6) = h.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return false;
        };
        let addr_ok = !addr.is_empty()
            && addr
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'%'));
        return addr_ok && (after.is_empty() || after.strip_prefix(':').is_some_and(port_ok));
    }
    let (name, port) = match h.split_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (h, None),
    };
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b'%'))
        && port.is_none_or(port_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        let cases = [
            (
                "https://user:hunter2@host:1/JESL?token=t#f",
                "https://***@host:1/JESL?***",
            ),
            ("tok@host", "***@host"),
            ("mqtt://u:pa/ss@broker:1883/t", "mqtt://***@broker:1883/t"),
            ("http://host/p", "http://host/p"),
            ("http://host:9200", "http://host:9200"),
            ("", ""),
            // Passwords holding `#`, `?`, `@`, `/`, `%`: the port stays (issue 14).
            ("https://elastic:pre#post@es:9200/", "https://***@es:9200/"),
            (
                "https://elastic:pre?post@es:9200/x",
                "https://***@es:9200/x",
            ),
            ("https://elastic:a/b#c@d@es:9200", "https://***@es:9200"),
            ("https://elastic:p%40ss@es:9200", "https://***@es:9200"),
            ("https://u:p@[::1]:9200/x?y", "https://***@[::1]:9200/x?***"),
            (
                "https://u:p#q@[fe80::1%25eth0]:1/",
                "https://***@[fe80::1%25eth0]:1/",
            ),
            // No scheme, or a "scheme" that is part of the userinfo.
            ("elastic:pre#post@es:9200", "***@es:9200"),
            ("u:x://y@host:1", "***@host:1"),
            // Queries and fragments are masked, `@` or not.
            (
                "https://q.example/queue?sv=1&sig=abc%2B",
                "https://q.example/queue?***",
            ),
            ("https://h/p#access_token=x", "https://h/p#***"),
            // Unclear whether the `@` ends a userinfo or sits in the query: scheme only.
            ("https://h/p?sig=a@b", "https://***"),
            ("https://u:1234?x@host", "https://***"),
            ("https://h/p?sig=a@b=c", "https://***"),
            ("https://elastic:a@b/c#d@es:9200", "https://***"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    proptest::proptest! {
        /// A secret (random text full of URL delimiters) as the password, the user, the query
        /// or the fragment of URLs with and without a scheme never shows; with a password the
        /// host and port stay visible unless the output is the scheme alone.
        #[test]
        fn a_secret_never_shows(
            before in "[A-Za-z0-9#?/@:%;=&.~-]{0,8}",
            after in "[A-Za-z0-9#?/@:%;=&.~-]{0,8}",
            scheme in proptest::option::of("(https|http|mqtt|tls)"),
            host in "([a-z][a-z0-9.-]{0,12}|\\[::1\\]|\\[fe80::2\\])",
            port in proptest::option::of(1u16..),
            path in "(/[a-z0-9._-]{0,6}){0,2}",
            place in 0usize..4,
        ) {
            let secret = format!("{before}ZQX{after}");
            let head = scheme.as_ref().map(|s| format!("{s}://")).unwrap_or_default();
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let url = match place {
                0 => format!("{head}elastic:{secret}@{host}{port}{path}"),
                1 => format!("{head}{secret}@{host}{port}{path}"),
                2 => format!("{head}{host}{port}{path}?token={secret}"),
                _ => format!("{head}{host}{port}{path}#{secret}"),
            };
            let shown = redact_url(&url);
            proptest::prop_assert!(!shown.contains("ZQX"), "{url} -> {shown}");
            if place == 0 && head.is_empty() && secret.starts_with("//") {
                // `elastic://…@host` is itself a URL whose scheme is `elastic` and whose
                // user:password is the rest of the secret.
                proptest::prop_assert!(shown.starts_with("elastic://***"), "{} -> {}", url, shown);
            } else if place == 0 && !secret.contains(['?', '#']) {
                proptest::prop_assert_eq!(&shown, &format!("{head}***@{host}{port}{path}"));
            } else if place == 0 {
                proptest::prop_assert!(
                    shown == format!("{head}***@{host}{port}{path}") || shown == format!("{head}***"),
                    "{} -> {}", url, shown
                );
            }
        }

        /// Any string at all: no panic.
        #[test]
        fn any_string_is_handled(s in "\\PC{0,40}") {
            let _ = redact_url(&s);
        }
    }

    #[test]
    fn a_user_that_reads_as_a_scheme_still_hides_the_password() {
        // `elastic` + `://ZQX@a`: a URL with scheme `elastic` (found by the property test).
        assert_eq!(redact_url("elastic://ZQX@a"), "elastic://***@a");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn deserializes_from_text_and_never_repeats_another_value() {
        let s: Secret = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(s.expose(), "hunter2");
        let e = serde_json::from_str::<Secret>("987654")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("987654"), "{e}");
        assert!(e.contains("a secret as text"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }
}
