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

/// `url` as it may be shown in errors and `Debug` output: the userinfo (a password or token)
/// and the query (a key, a SAS signature) are masked as `***`, since users sometimes paste
/// credentials into URLs. `https://user:pw@host:1/p?sig=x` → `https://***@host:1/p?***`.
pub fn redact_url(url: &str) -> String {
    let at = url.find("://").map_or(0, |i| i + 3);
    let (head, rest) = url.split_at(at);
    // The authority ends at the first `/`, `?` or `#` after the userinfo, whose own end is the
    // last `@` before any query or fragment (a password may hold an unescaped `/`).
    let before_query = rest.find(['?', '#']).unwrap_or(rest.len());
    let userinfo_end = rest[..before_query].rfind('@').map_or(0, |i| i + 1);
    let end = rest[userinfo_end..]
        .find(['/', '?', '#'])
        .map_or(rest.len(), |i| userinfo_end + i);
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rfind('@') {
        Some(i) => format!("***{}", &authority[i..]),
        None => authority.to_string(),
    };
    let tail = match tail.find('?') {
        Some(q) => format!("{}?***", &tail[..q]),
        None => tail.to_string(),
    };
    format!("{head}{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("https://user:hunter2@host:1/JESL?token=t#f"),
            "https://***@host:1/JESL?***"
        );
        assert_eq!(redact_url("tok@host"), "***@host");
        assert_eq!(
            redact_url("mqtt://u:pa/ss@broker:1883/t"),
            "mqtt://***@broker:1883/t"
        );
        assert_eq!(redact_url("http://host/p"), "http://host/p");
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }
}
