//! Ingestion data formats, ingestion mappings and the conversion of records into table rows.
//!
//! Follows the Kusto ingestion semantics (the Azure Data Explorer REST API documentation, <https://learn.microsoft.com/azure/data-explorer/kusto/api/rest/>, Kusto docs "data formats" and
//! "ingestion mappings"): `json` is one record per line, `multijson` any sequence of records
//! (whitespace separated, or arrays of records), the delimited formats are RFC 4180 style.
//! Without a mapping the *identity mapping* applies: JSON properties by column name, CSV
//! fields by column order. Values are converted to the column type the way Kusto does: a
//! value that does not convert becomes `null`; anything stored in a `string` column is text.

use serde_json::{Map, Value};

/// A streaming/queued ingestion data format this receiver can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataFormat {
    /// `json`: one JSON record per line.
    Json,
    /// `multijson` / `singlejson`: records in sequence, possibly pretty-printed, or arrays.
    MultiJson,
    /// A delimited text format with its delimiter byte (`csv`, `tsv`, `tsve`, `scsv`, `psv`, `sohsv`).
    Delimited(u8),
}

impl DataFormat {
    /// Parses the lowercase Kusto format name (`streamFormat`, `AdditionalProperties.format`).
    ///
    /// # Errors
    /// The unsupported name.
    pub(crate) fn parse(name: &str) -> Result<DataFormat, String> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "json" => DataFormat::Json,
            "multijson" | "singlejson" => DataFormat::MultiJson,
            "csv" => DataFormat::Delimited(b','),
            "tsv" | "tsve" => DataFormat::Delimited(b'\t'),
            "scsv" => DataFormat::Delimited(b';'),
            "psv" => DataFormat::Delimited(b'|'),
            "sohsv" => DataFormat::Delimited(0x01),
            other => {
                return Err(format!(
                    "format '{other}' is not supported by this receiver"
                ));
            }
        })
    }

    /// The mapping kind this format uses (`json` or `csv`).
    pub(crate) fn mapping_kind(self) -> &'static str {
        match self {
            DataFormat::Json | DataFormat::MultiJson => "json",
            DataFormat::Delimited(_) => "csv",
        }
    }
}

/// One parsed input record.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    /// A JSON record.
    Json(Value),
    /// The fields of a delimited record.
    Fields(Vec<String>),
}

/// Splits `data` (already decompressed) into records.
///
/// # Errors
/// A description of the first malformed record.
pub(crate) fn records(format: DataFormat, data: &[u8]) -> Result<Vec<Record>, String> {
    let text = std::str::from_utf8(data).map_err(|e| format!("input is not UTF-8: {e}"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        DataFormat::Json => {
            let mut out = Vec::new();
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let v: Value = serde_json::from_str(line)
                    .map_err(|e| format!("json record on line {} is malformed: {e}", n + 1))?;
                out.push(Record::Json(v));
            }
            Ok(out)
        }
        DataFormat::MultiJson => {
            let mut out = Vec::new();
            for v in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
                match v.map_err(|e| format!("multijson input is malformed: {e}"))? {
                    Value::Array(items) => out.extend(items.into_iter().map(Record::Json)),
                    other => out.push(Record::Json(other)),
                }
            }
            Ok(out)
        }
        DataFormat::Delimited(delim) => delimited(text, delim as char),
    }
}

fn delimited(text: &str, delim: char) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let mut line_has_content = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                in_quotes = true;
                line_has_content = true;
            }
            c if c == delim => {
                fields.push(std::mem::take(&mut field));
                line_has_content = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if line_has_content {
                    fields.push(std::mem::take(&mut field));
                    out.push(Record::Fields(std::mem::take(&mut fields)));
                }
                line_has_content = false;
            }
            other => {
                field.push(other);
                line_has_content = true;
            }
        }
    }
    if in_quotes {
        return Err("Stream_ClosingQuoteMissing: a quoted field is not closed".into());
    }
    if line_has_content {
        fields.push(field);
        out.push(Record::Fields(fields));
    }
    Ok(out)
}

/// One column of an ingestion mapping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MappingColumn {
    /// Target column.
    pub(crate) column: String,
    /// JSON path (json mappings).
    pub(crate) path: Option<String>,
    /// Field ordinal, 0-based (csv mappings).
    pub(crate) ordinal: Option<usize>,
    /// A constant value instead of a path or ordinal.
    pub(crate) const_value: Option<String>,
}

/// A parsed ingestion mapping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mapping {
    /// `json` or `csv`.
    pub(crate) kind: String,
    /// Column rules in declaration order.
    pub(crate) columns: Vec<MappingColumn>,
    /// The mapping text as given.
    pub(crate) text: String,
}

fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses a mapping of `kind` (`json` or `csv`) from its JSON text. Accepts the current
/// form (`{"column","path","datatype","transform"}`, `{"column","ordinal"}`) and the
/// `Properties` form (`{"Column","Properties":{"Path"|"Ordinal"|"ConstValue"}}`).
///
/// # Errors
/// Why the mapping is invalid (`BadRequest_InvalidMapping` on the service).
pub(crate) fn parse_mapping(kind: &str, text: &str) -> Result<Mapping, String> {
    let kind = kind.to_ascii_lowercase();
    if kind != "json" && kind != "csv" {
        return Err(format!(
            "mapping kind '{kind}' is not supported by this receiver"
        ));
    }
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("mapping is not valid JSON: {e}"))?;
    let items = v
        .as_array()
        .ok_or_else(|| "mapping must be a JSON array".to_string())?;
    let mut columns = Vec::new();
    for item in items {
        let obj = item
            .as_object()
            .ok_or_else(|| "mapping items must be objects".to_string())?;
        let props = get_ci(obj, "Properties").and_then(Value::as_object);
        let field = |name: &str| {
            get_ci(obj, name)
                .or_else(|| props.and_then(|p| get_ci(p, name)))
                .and_then(as_text)
        };
        let column = field("column").ok_or_else(|| "mapping item without 'column'".to_string())?;
        let path = field("path");
        let const_value = field("ConstValue");
        let ordinal = match field("ordinal") {
            Some(o) => Some(
                o.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("ordinal '{o}' of column '{column}' is not a number"))?,
            ),
            None => None,
        };
        if kind == "json" {
            if let Some(p) = &path {
                JsonPath::parse(p)?;
            } else if const_value.is_none() {
                return Err(format!("json mapping column '{column}' has no path"));
            }
        } else if ordinal.is_none() && const_value.is_none() {
            return Err(format!("csv mapping column '{column}' has no ordinal"));
        }
        columns.push(MappingColumn {
            column,
            path,
            ordinal,
            const_value,
        });
    }
    Ok(Mapping {
        kind,
        columns,
        text: text.to_string(),
    })
}

/// A parsed JSON path: `$`, `$.a.b`, `$['a b']`, `$.a[0]`.
#[derive(Debug, Clone, PartialEq)]
struct JsonPath(Vec<Step>);

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

impl JsonPath {
    fn parse(p: &str) -> Result<JsonPath, String> {
        let chars: Vec<char> = p.trim().chars().collect();
        if chars.first() != Some(&'$') {
            return Err(format!("json path '{p}' must start with '$'"));
        }
        let mut steps = Vec::new();
        let mut i = 1;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    let start = i + 1;
                    let mut j = start;
                    while j < chars.len() && chars[j] != '.' && chars[j] != '[' {
                        j += 1;
                    }
                    if j == start {
                        return Err(format!("json path '{p}' has an empty property name"));
                    }
                    steps.push(Step::Key(chars[start..j].iter().collect()));
                    i = j;
                }
                '[' => {
                    let close = chars[i..]
                        .iter()
                        .position(|&c| c == ']')
                        .map(|o| i + o)
                        .ok_or_else(|| format!("json path '{p}' has an unclosed '['"))?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    let inner = inner.trim();
                    if let Some(q) = inner
                        .strip_prefix('\'')
                        .and_then(|s| s.strip_suffix('\''))
                        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                    {
                        steps.push(Step::Key(q.to_string()));
                    } else {
                        let n = inner
                            .parse::<usize>()
                            .map_err(|_| format!("json path '{p}' has a bad index '{inner}'"))?;
                        steps.push(Step::Index(n));
                    }
                    i = close + 1;
                }
                other => return Err(format!("json path '{p}' has an unexpected '{other}'")),
            }
        }
        Ok(JsonPath(steps))
    }

    fn eval<'a>(&self, mut v: &'a Value) -> Option<&'a Value> {
        for step in &self.0 {
            v = match step {
                Step::Key(k) => v.as_object()?.get(k)?,
                Step::Index(n) => v.as_array()?.get(*n)?,
            };
        }
        Some(v)
    }
}

/// Converts a value to a canonical Kusto column type; what does not convert becomes `null`.
pub(crate) fn coerce(v: Value, ty: &str) -> Value {
    match ty {
        "string" | "datetime" | "timespan" | "guid" => match v {
            Value::Null => Value::Null,
            Value::String(s) => Value::String(s),
            other => Value::String(other.to_string()),
        },
        "long" | "int" => match v {
            Value::Number(ref n) if n.is_i64() || n.is_u64() => v,
            Value::Number(n) => n
                .as_f64()
                .map(|f| Value::from(f.trunc() as i64))
                .unwrap_or(Value::Null),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or(Value::Null),
            Value::Bool(b) => Value::from(i64::from(b)),
            _ => Value::Null,
        },
        "real" | "decimal" => match v {
            Value::Number(n) => n.as_f64().map(Value::from).unwrap_or(Value::Null),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .map(Value::from)
                .unwrap_or(Value::Null),
            _ => Value::Null,
        },
        "bool" => match v {
            Value::Bool(_) => v,
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => Value::Null,
            },
            Value::Number(n) => n
                .as_i64()
                .map(|i| Value::Bool(i != 0))
                .unwrap_or(Value::Null),
            _ => Value::Null,
        },
        // dynamic: JSON as is; a CSV field holding JSON is parsed.
        _ => v,
    }
}

fn field_value(s: &str, ty: &str) -> Value {
    if s.is_empty() && ty != "string" {
        return Value::Null;
    }
    if ty == "dynamic" {
        return serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()));
    }
    coerce(Value::String(s.to_string()), ty)
}

/// Turns one record into a row (a JSON object keyed by column name).
///
/// `columns` is the table schema (`(name, canonical type)`); an empty schema keeps JSON
/// records as they came and names delimited fields `Column1`, `Column2`, … .
///
/// # Errors
/// Why the record does not fit (non-object JSON record without a mapping, too many fields).
pub(crate) fn to_row(
    record: Record,
    mapping: Option<&Mapping>,
    columns: &[(String, String)],
) -> Result<Value, String> {
    let ty_of = |col: &str| {
        columns
            .iter()
            .find(|(c, _)| c == col)
            .map(|(_, t)| t.as_str())
            .unwrap_or("dynamic")
    };
    let mut row = Map::new();
    match (record, mapping) {
        (record, Some(m)) => {
            for mc in &m.columns {
                let raw = if let Some(c) = &mc.const_value {
                    Value::String(c.clone())
                } else {
                    match &record {
                        Record::Json(v) => match &mc.path {
                            Some(p) => JsonPath::parse(p)?.eval(v).cloned().unwrap_or(Value::Null),
                            None => Value::Null,
                        },
                        Record::Fields(f) => match mc.ordinal.and_then(|o| f.get(o)) {
                            Some(s) => {
                                row.insert(mc.column.clone(), field_value(s, ty_of(&mc.column)));
                                continue;
                            }
                            None => Value::Null,
                        },
                    }
                };
                row.insert(mc.column.clone(), coerce(raw, ty_of(&mc.column)));
            }
        }
        (Record::Json(v), None) => {
            let Value::Object(obj) = v else {
                return Err("a json record without a mapping must be an object".into());
            };
            if columns.is_empty() {
                return Ok(Value::Object(obj));
            }
            for (col, ty) in columns {
                let val = obj.get(col).cloned().unwrap_or(Value::Null);
                row.insert(col.clone(), coerce(val, ty));
            }
        }
        (Record::Fields(fields), None) => {
            if columns.is_empty() {
                for (i, f) in fields.iter().enumerate() {
                    row.insert(format!("Column{}", i + 1), Value::String(f.clone()));
                }
                return Ok(Value::Object(row));
            }
            if fields.len() > columns.len() {
                return Err(format!(
                    "Stream_WrongNumberOfFields: record has {} fields, table has {} columns",
                    fields.len(),
                    columns.len()
                ));
            }
            for (i, (col, ty)) in columns.iter().enumerate() {
                let val = fields
                    .get(i)
                    .map(|s| field_value(s, ty))
                    .unwrap_or(Value::Null);
                row.insert(col.clone(), val);
            }
        }
    }
    Ok(Value::Object(row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn multijson_accepts_sequences_and_arrays() {
        let recs = records(
            DataFormat::MultiJson,
            b"{\"a\":1}\n{\n \"a\": 2\n} [{\"a\":3},{\"a\":4}]",
        );
        assert_eq!(recs.map(|r| r.len()), Ok(4));
        assert!(records(DataFormat::Json, b"{\"a\":1}\n{\n").is_err());
    }

    #[test]
    fn csv_quotes_and_crlf() {
        let recs =
            records(DataFormat::Delimited(b','), b"a,\"b,\"\"c\"\"\"\r\n1,2\n").unwrap_or_default();
        let fields: Vec<Vec<String>> = recs
            .into_iter()
            .filter_map(|r| match r {
                Record::Fields(f) => Some(f),
                Record::Json(_) => None,
            })
            .collect();
        assert_eq!(
            fields,
            vec![
                vec!["a".to_string(), "b,\"c\"".to_string()],
                vec!["1".into(), "2".into()]
            ]
        );
    }

    #[test]
    fn json_mapping_paths_and_types() {
        let m = parse_mapping(
            "json",
            r#"[{"column":"Msg","path":"$.fields.message","datatype":"string"},
                {"column":"N","Properties":{"Path":"$['n x']"}},
                {"column":"First","path":"$.list[0]"}]"#,
        );
        let m = match m {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        };
        let cols = vec![
            ("Msg".to_string(), "string".to_string()),
            ("N".to_string(), "long".to_string()),
            ("First".to_string(), "string".to_string()),
        ];
        let row = to_row(
            Record::Json(json!({"fields":{"message":"hi"},"n x":"42","list":[7]})),
            Some(&m),
            &cols,
        );
        assert_eq!(row, Ok(json!({"Msg":"hi","N":42,"First":"7"})));
        assert!(parse_mapping("json", r#"[{"column":"a","path":"a.b"}]"#).is_err());
    }

    #[test]
    fn identity_mapping_drops_unknown_properties() {
        let cols = vec![
            ("a".to_string(), "long".to_string()),
            ("b".to_string(), "string".to_string()),
        ];
        let row = to_row(Record::Json(json!({"a":"x","c":1})), None, &cols);
        assert_eq!(row, Ok(json!({"a":null,"b":null})));
    }
}
