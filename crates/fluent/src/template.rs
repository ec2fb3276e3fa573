//! Record-formatter templates: the `FluentRecordFormatter` of the Python original
//! (the Python aiofluent sender this crate succeeds), checked when the layer is built instead of failing per record.
//!
//! A template is text with placeholders in braces; `{{` and `}}` are literal braces.
//!
//! | placeholder | value |
//! |---|---|
//! | `{hostname}` | this host's name (looked up once, when the layer is built) |
//! | `{target}` | the record's target, e.g. `shop::orders` |
//! | `{module}` | the module path, e.g. `shop::orders` (empty when unknown) |
//! | `{file}` | the source file (empty when unknown) |
//! | `{line}` | the source line (empty when unknown) |
//! | `{level}` | `TRACE` … `ERROR` |
//! | `{thread}` | the thread's name, else its logship thread number |
//! | `{thread_id}` | logship's thread number (see `ThreadInfo::id`) |
//! | `{name}` | the callsite name (`event file:line`, or the span's name) |
//!
//! A template that is exactly `{line}` or `{thread_id}` is sent as an integer; a template that is
//! exactly one placeholder whose value is unknown (`{file}` of a record built by hand) is left out
//! of the record rather than sent empty.

use std::fmt::Write as _;

use logship_core::Record;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Hostname,
    Target,
    Module,
    File,
    Line,
    Level,
    Thread,
    ThreadId,
    Name,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub(crate) pieces: Vec<Piece>,
}

/// What a template renders to for one record.
#[derive(Debug, PartialEq)]
pub(crate) enum Rendered<'a> {
    /// Leave the key out.
    Missing,
    /// An integer.
    Int(u64),
    /// Text borrowed from the record or the settings.
    Borrowed(&'a str),
    /// Text built for this record.
    Owned(String),
}

impl Template {
    /// Parses `src`.
    ///
    /// # Errors
    /// A message naming the unknown placeholder or the unbalanced brace.
    pub(crate) fn parse(src: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = src.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => return Err("unmatched `}` (write `}}` for a literal brace)".into()),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => {
                                return Err("unclosed `{` (write `{{` for a literal brace)".into());
                            }
                        }
                    }
                    let piece = match name.as_str() {
                        "hostname" => Piece::Hostname,
                        "target" => Piece::Target,
                        "module" => Piece::Module,
                        "file" => Piece::File,
                        "line" => Piece::Line,
                        "level" => Piece::Level,
                        "thread" => Piece::Thread,
                        "thread_id" => Piece::ThreadId,
                        "name" => Piece::Name,
                        other => {
                            return Err(format!(
                                "unknown placeholder `{{{other}}}`; use one of {{hostname}}, {{target}}, \
                                 {{module}}, {{file}}, {{line}}, {{level}}, {{thread}}, {{thread_id}}, {{name}}"
                            ));
                        }
                    };
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(piece);
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() || pieces.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Self { pieces })
    }

    /// Renders the template for `r`.
    pub(crate) fn render<'a>(&'a self, r: &'a Record, hostname: &'a str) -> Rendered<'a> {
        if let [only] = self.pieces.as_slice() {
            return match only {
                Piece::Text(t) => Rendered::Borrowed(t),
                Piece::Hostname => Rendered::Borrowed(hostname),
                Piece::Target => Rendered::Borrowed(r.target()),
                Piece::Module => r
                    .module_path()
                    .map_or(Rendered::Missing, Rendered::Borrowed),
                Piece::File => r.file().map_or(Rendered::Missing, Rendered::Borrowed),
                Piece::Line => r
                    .line()
                    .map_or(Rendered::Missing, |l| Rendered::Int(u64::from(l))),
                Piece::Level => Rendered::Borrowed(r.level().as_str()),
                Piece::Thread => match &r.thread().name {
                    Some(n) => Rendered::Borrowed(n),
                    None => Rendered::Owned(r.thread().id.to_string()),
                },
                Piece::ThreadId => Rendered::Int(r.thread().id),
                Piece::Name => Rendered::Borrowed(r.name()),
            };
        }
        let mut s = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => s.push_str(t),
                Piece::Hostname => s.push_str(hostname),
                Piece::Target => s.push_str(r.target()),
                Piece::Module => s.push_str(r.module_path().unwrap_or("")),
                Piece::File => s.push_str(r.file().unwrap_or("")),
                Piece::Line => {
                    if let Some(l) = r.line() {
                        let _ = write!(s, "{l}");
                    }
                }
                Piece::Level => s.push_str(r.level().as_str()),
                Piece::Thread => match &r.thread().name {
                    Some(n) => s.push_str(n),
                    None => {
                        let _ = write!(s, "{}", r.thread().id);
                    }
                },
                Piece::ThreadId => {
                    let _ = write!(s, "{}", r.thread().id);
                }
                Piece::Name => s.push_str(r.name()),
            }
        }
        Rendered::Owned(s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use logship_core::Level;

    fn rec() -> Record {
        Record::event(Level::WARN, "shop::orders")
            .with_source_position("shop::orders", "src/orders.rs", 42)
            .build()
    }

    #[test]
    fn renders_placeholders_and_escapes() {
        let t = Template::parse("{module}.{{x}}:{line} on {hostname} [{level}]").unwrap();
        assert_eq!(
            t.render(&rec(), "web1"),
            Rendered::Owned("shop::orders.{x}:42 on web1 [WARN]".into())
        );
    }

    #[test]
    fn single_placeholders_keep_their_type() {
        let r = rec();
        assert_eq!(
            Template::parse("{line}").unwrap().render(&r, "h"),
            Rendered::Int(42)
        );
        assert_eq!(
            Template::parse("{target}").unwrap().render(&r, "h"),
            Rendered::Borrowed("shop::orders")
        );
        assert_eq!(
            Template::parse("").unwrap().render(&r, "h"),
            Rendered::Borrowed("")
        );
        let bare = Record::event(Level::INFO, "t").build();
        assert_eq!(
            Template::parse("{file}").unwrap().render(&bare, "h"),
            Rendered::Missing
        );
        assert_eq!(
            Template::parse("at {file}").unwrap().render(&bare, "h"),
            Rendered::Owned("at ".into())
        );
    }

    #[test]
    fn rejects_bad_templates() {
        assert!(
            Template::parse("{nope}")
                .unwrap_err()
                .contains("unknown placeholder `{nope}`")
        );
        assert!(Template::parse("{line").unwrap_err().contains("unclosed"));
        assert!(Template::parse("a}b").unwrap_err().contains("unmatched"));
    }
}
