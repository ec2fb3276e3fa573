//! A loose parser for the handful of Kusto control commands (CSL) the receiver understands.
//!
//! Only what a log shipper and the official ingest client send is recognised; anything else
//! is reported as a syntax error, as the service would for a command it cannot parse. String
//! literals follow the Kusto rules: `"…"` and `'…'` with backslash escapes, `@"…"`/`@'…'`
//! verbatim (the quote doubled), and ```` ```…``` ```` multi-line.

/// A recognised control command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// `.create table T (c:t, …)` (`merge` false) or `.create-merge table T (…)` (`merge` true).
    CreateTable {
        table: String,
        columns: Vec<(String, String)>,
        merge: bool,
    },
    /// `.create[-or-alter] table T ingestion KIND mapping "name" 'json'`.
    CreateMapping {
        table: String,
        kind: String,
        name: String,
        mapping: String,
    },
    /// `.show tables`.
    ShowTables,
    /// `.show table T ingestion KIND mappings` / `.show ingestion mappings`.
    ShowMappings { table: Option<String> },
    /// `.show version`.
    ShowVersion,
    /// `.get ingestion resources`.
    GetIngestionResources,
    /// `.get kusto identity token`.
    GetIdentityToken,
    /// `.drop table T [ifexists]`.
    DropTable { table: String, if_exists: bool },
    /// `.alter[-merge] … policy …` (accepted and ignored: every table accepts streaming here).
    AlterPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Str(String),
    Punct(char),
}

fn lex(input: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '`' && chars.get(i + 1) == Some(&'`') && chars.get(i + 2) == Some(&'`') {
            let start = i + 3;
            let mut j = start;
            loop {
                if j >= chars.len() {
                    return Err("unterminated ``` string literal".into());
                }
                if chars[j] == '`'
                    && chars.get(j + 1) == Some(&'`')
                    && chars.get(j + 2) == Some(&'`')
                {
                    break;
                }
                j += 1;
            }
            out.push(Token::Str(chars[start..j].iter().collect()));
            i = j + 3;
        } else if c == '@' && matches!(chars.get(i + 1), Some('"') | Some('\'')) {
            let quote = chars[i + 1];
            let mut s = String::new();
            let mut j = i + 2;
            loop {
                match chars.get(j) {
                    None => return Err("unterminated verbatim string literal".into()),
                    Some(&q) if q == quote => {
                        if chars.get(j + 1) == Some(&quote) {
                            s.push(quote);
                            j += 2;
                        } else {
                            j += 1;
                            break;
                        }
                    }
                    Some(&other) => {
                        s.push(other);
                        j += 1;
                    }
                }
            }
            out.push(Token::Str(s));
            i = j;
        } else if c == '"' || c == '\'' {
            let (s, next) = quoted(&chars, i)?;
            out.push(Token::Str(s));
            i = next;
        } else if c == '[' {
            // Bracketed identifier: ['name'] or ["name"].
            let mut j = i + 1;
            while chars.get(j).is_some_and(|c| c.is_whitespace()) {
                j += 1;
            }
            match chars.get(j) {
                Some('"') | Some('\'') => {
                    let (s, mut next) = quoted(&chars, j)?;
                    while chars.get(next).is_some_and(|c| c.is_whitespace()) {
                        next += 1;
                    }
                    if chars.get(next) != Some(&']') {
                        return Err("expected ']' after bracketed name".into());
                    }
                    out.push(Token::Word(s));
                    i = next + 1;
                }
                _ => {
                    out.push(Token::Punct('['));
                    i += 1;
                }
            }
        } else if is_word_char(c) {
            let start = i;
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    Ok(out)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '$')
}

/// Reads a `"…"` or `'…'` literal with backslash escapes starting at `start` (the quote).
fn quoted(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let quote = chars[start];
    let mut s = String::new();
    let mut j = start + 1;
    loop {
        match chars.get(j) {
            None => return Err("unterminated string literal".into()),
            Some(&q) if q == quote => return Ok((s, j + 1)),
            Some('\\') => {
                let esc = chars
                    .get(j + 1)
                    .ok_or_else(|| "unterminated escape in string literal".to_string())?;
                s.push(match esc {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    other => *other,
                });
                j += 2;
            }
            Some(&other) => {
                s.push(other);
                j += 1;
            }
        }
    }
}

struct Cursor {
    tokens: Vec<Token>,
    pos: usize,
}

impl Cursor {
    fn peek_word(&self) -> Option<String> {
        match self.tokens.get(self.pos) {
            Some(Token::Word(w)) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if self.peek_word().as_deref() == Some(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), String> {
        if self.keyword(kw) {
            Ok(())
        } else {
            Err(format!("expected '{kw}'"))
        }
    }

    fn name(&mut self) -> Result<String, String> {
        match self.tokens.get(self.pos) {
            Some(Token::Word(w)) => {
                self.pos += 1;
                Ok(w.clone())
            }
            _ => Err("expected a name".into()),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        match self.tokens.get(self.pos) {
            Some(Token::Str(s)) => {
                self.pos += 1;
                Ok(s.clone())
            }
            _ => Err("expected a string literal".into()),
        }
    }

    fn punct(&mut self, p: char) -> bool {
        if self.tokens.get(self.pos) == Some(&Token::Punct(p)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
}

/// Parses one control command.
///
/// # Errors
/// A message naming what could not be parsed or is not supported.
pub(crate) fn parse(csl: &str) -> Result<Command, String> {
    let tokens = lex(csl.trim())?;
    let mut c = Cursor { tokens, pos: 0 };
    let head = c
        .name()
        .map_err(|_| "a control command starts with '.'".to_string())?;
    match head.to_ascii_lowercase().as_str() {
        ".create" | ".create-merge" | ".create-or-alter" => {
            let merge = head.eq_ignore_ascii_case(".create-merge");
            c.expect_keyword("table")?;
            let table = c.name()?;
            if c.keyword("ingestion") {
                let kind = c.name()?.to_ascii_lowercase();
                c.expect_keyword("mapping")?;
                let name = c.string()?;
                let mapping = c.string()?;
                return Ok(Command::CreateMapping {
                    table,
                    kind,
                    name,
                    mapping,
                });
            }
            if head.eq_ignore_ascii_case(".create-or-alter") {
                return Err(".create-or-alter table supports only ingestion mappings here".into());
            }
            if !c.punct('(') {
                return Err("expected '(' and a column list".into());
            }
            let mut columns = Vec::new();
            loop {
                if c.punct(')') {
                    break;
                }
                let col = c.name()?;
                if !c.punct(':') {
                    return Err(format!("expected ':' and a type after column '{col}'"));
                }
                let ty = c.name()?.to_ascii_lowercase();
                columns.push((col, canonical_type(&ty)?.to_string()));
                if c.punct(',') {
                    continue;
                }
                if c.punct(')') {
                    break;
                }
                return Err("expected ',' or ')' in the column list".into());
            }
            Ok(Command::CreateTable {
                table,
                columns,
                merge,
            })
        }
        ".show" => {
            if c.keyword("tables") {
                return Ok(Command::ShowTables);
            }
            if c.keyword("version") {
                return Ok(Command::ShowVersion);
            }
            if c.keyword("ingestion") {
                c.expect_keyword("mappings")?;
                return Ok(Command::ShowMappings { table: None });
            }
            c.expect_keyword("table")?;
            let table = c.name()?;
            c.expect_keyword("ingestion")?;
            let _kind = c.name()?;
            c.expect_keyword("mappings")?;
            Ok(Command::ShowMappings { table: Some(table) })
        }
        ".get" => {
            if c.keyword("ingestion") {
                c.expect_keyword("resources")?;
                return Ok(Command::GetIngestionResources);
            }
            c.expect_keyword("kusto")?;
            c.expect_keyword("identity")?;
            c.expect_keyword("token")?;
            Ok(Command::GetIdentityToken)
        }
        ".drop" => {
            c.expect_keyword("table")?;
            let table = c.name()?;
            let if_exists = c.keyword("ifexists");
            Ok(Command::DropTable { table, if_exists })
        }
        ".alter" | ".alter-merge" => {
            if c.tokens
                .iter()
                .any(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case("policy")))
            {
                Ok(Command::AlterPolicy)
            } else {
                Err("only '.alter … policy …' is supported here".into())
            }
        }
        other => Err(format!("unsupported control command '{other}'")),
    }
}

/// Maps a Kusto scalar type name (or alias) to its canonical name.
///
/// # Errors
/// The unknown type name.
pub(crate) fn canonical_type(ty: &str) -> Result<&'static str, String> {
    Ok(match ty {
        "string" => "string",
        "long" | "int64" => "long",
        "int" | "int32" => "int",
        "real" | "double" => "real",
        "bool" | "boolean" => "bool",
        "datetime" | "date" => "datetime",
        "timespan" | "time" => "timespan",
        "dynamic" => "dynamic",
        "guid" | "uuid" | "uniqueid" => "guid",
        "decimal" => "decimal",
        other => return Err(format!("unknown scalar type '{other}'")),
    })
}

/// The .NET type name Kusto reports as `DataType` for a canonical scalar type.
pub(crate) fn data_type(ty: &str) -> &'static str {
    match ty {
        "long" => "Int64",
        "int" => "Int32",
        "real" => "Double",
        "bool" => "Boolean",
        "datetime" => "DateTime",
        "timespan" => "TimeSpan",
        "dynamic" => "Object",
        "guid" => "Guid",
        "decimal" => "Decimal",
        _ => "String",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_merge_table() {
        let cmd =
            parse(".create-merge table ['Logs'] (Timestamp:datetime, Level: string, ['n x']:long)");
        assert_eq!(
            cmd,
            Ok(Command::CreateTable {
                table: "Logs".into(),
                columns: vec![
                    ("Timestamp".into(), "datetime".into()),
                    ("Level".into(), "string".into()),
                    ("n x".into(), "long".into()),
                ],
                merge: true,
            })
        );
    }

    #[test]
    fn create_mapping_in_all_literal_styles() {
        for csl in [
            r#".create-or-alter table Logs ingestion json mapping "m1" '[{"column":"a","path":"$.a"}]'"#,
            r#".create table Logs ingestion json mapping 'm1' @'[{"column":"a","path":"$.a"}]'"#,
            ".create-or-alter table Logs ingestion json mapping \"m1\" ```[{\"column\":\"a\",\"path\":\"$.a\"}]```",
            r#".create-or-alter table Logs ingestion Json mapping "m1" "[{\"column\":\"a\",\"path\":\"$.a\"}]""#,
        ] {
            assert_eq!(
                parse(csl),
                Ok(Command::CreateMapping {
                    table: "Logs".into(),
                    kind: "json".into(),
                    name: "m1".into(),
                    mapping: r#"[{"column":"a","path":"$.a"}]"#.into(),
                }),
                "{csl}"
            );
        }
    }

    #[test]
    fn resource_commands() {
        assert_eq!(
            parse(".get ingestion resources"),
            Ok(Command::GetIngestionResources)
        );
        assert_eq!(
            parse(".get kusto identity token"),
            Ok(Command::GetIdentityToken)
        );
        assert_eq!(parse(".show tables"), Ok(Command::ShowTables));
        assert!(parse("Logs | take 1").is_err());
        assert!(parse(".create-merge table T (a:nosuchtype)").is_err());
    }
}
