//! Topic templates: the MQTT topic of each record, computed per record (the original stuck
//! to the first logger's name).
//!
//! A template is literal text with placeholders: `{target}` (the record's target with `::`
//! turned into `/`, e.g. `shop/orders`), `{level}` (`trace` … `error`), `{kind}` (`event`,
//! `activity`, `snapshot`). A template without placeholders is a fixed topic. Wildcards
//! (`+`, `#`) are refused in the template and replaced by `_` in inserted values, so a record
//! can never publish to a wildcard topic.

use logship_core::Record;
use logship_jkool::DocumentKind;

/// The default template: the record's target as a topic path.
pub const DEFAULT_TOPIC_TEMPLATE: &str = "{target}";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Target,
    Level,
    Kind,
}

/// A parsed topic template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TopicTemplate {
    parts: Vec<Part>,
}

impl TopicTemplate {
    /// Parses `s`; `Err` says what is wrong.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("the topic is empty".into());
        }
        if s.contains(['+', '#']) {
            return Err("a publish topic cannot contain the wildcards `+` or `#`".into());
        }
        if s.contains('\0') {
            return Err("a topic cannot contain NUL".into());
        }
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or("a `{` is not closed")?;
            parts.push(match &after[..close] {
                "target" => Part::Target,
                "level" => Part::Level,
                "kind" => Part::Kind,
                other => {
                    return Err(format!(
                        "unknown placeholder `{{{other}}}`; use {{target}}, {{level}} or {{kind}}"
                    ));
                }
            });
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err("a `}` has no `{`".into());
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        Ok(Self { parts })
    }

    /// The topic for `record`'s document of `kind`.
    pub(crate) fn render(&self, record: &Record, kind: DocumentKind) -> String {
        let mut out = String::with_capacity(64);
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Target => {
                    let t = record.target();
                    if t.is_empty() {
                        out.push_str("logship");
                    } else {
                        out.extend(t.replace("::", "/").chars().map(|c| match c {
                            '+' | '#' | '\0' => '_',
                            c => c,
                        }));
                    }
                }
                Part::Level => out.push_str(&record.level().as_str().to_ascii_lowercase()),
                Part::Kind => out.push_str(kind.endpoint()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use logship_core::Level;

    use super::*;

    fn rec(target: &str) -> Record {
        Record::event(Level::WARN, target).build()
    }

    #[test]
    fn renders_per_record() {
        let t = TopicTemplate::parse(DEFAULT_TOPIC_TEMPLATE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.render(&rec("shop::orders"), DocumentKind::Event),
            "shop/orders"
        );
        assert_eq!(t.render(&rec("billing"), DocumentKind::Event), "billing");
        assert_eq!(t.render(&rec("we+ird#"), DocumentKind::Event), "we_ird_");
        let t =
            TopicTemplate::parse("jkool/{kind}/{level}/{target}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.render(&rec("a::b"), DocumentKind::Activity),
            "jkool/activity/warn/a/b"
        );
        let fixed = TopicTemplate::parse("python/streams").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            fixed.render(&rec("x"), DocumentKind::Event),
            "python/streams"
        );
    }

    #[test]
    fn refuses_what_cannot_work() {
        for (t, want) in [
            ("", "empty"),
            ("a/#", "wildcards"),
            ("a/+/b", "wildcards"),
            ("a/{nope}", "unknown placeholder `{nope}`"),
            ("a/{target", "not closed"),
            ("a}", "has no `{`"),
        ] {
            let e = TopicTemplate::parse(t).err().unwrap_or_default();
            assert!(e.contains(want), "{t}: {e}");
        }
    }
}
