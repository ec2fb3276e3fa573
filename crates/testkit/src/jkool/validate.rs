//! Validation of jKool JSON documents against the references: the jKool client model,
//! <https://github.com/Nastel/jkool-client-java-api> (`model/Trackable.java`, `Event.java`,
//! `Property.java`, `src/swagger/jKoolSwagger.yaml`), TNT4J's JSON formatter
//! (<https://github.com/Nastel/TNT4J>, `format/JSONFormatter.java`, `JSONLabels.java`,
//! `core/Property.java`) and the original Python library (`logEvent`, `metrics.Property`).
//! Pure functions; the unit tests at the bottom pin the verdicts.

use serde_json::Value;

/// Which JESL endpoint a document was posted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Event,
    Activity,
    Snapshot,
}

impl Kind {
    fn type_name(self) -> &'static str {
        match self {
            Kind::Event => "EVENT",
            Kind::Activity => "ACTIVITY",
            Kind::Snapshot => "SNAPSHOT",
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            Kind::Event | Kind::Activity => &["tracking-id", "source-fqn", "time-usec"],
            Kind::Snapshot => &["name", "type", "time-usec"],
        }
    }
}

/// Severities of the Java model (a superset of Python's level names).
pub(crate) const SEVERITIES: &[&str] = &[
    "NONE", "TRACE", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "FAILURE", "CRITICAL", "FATAL",
    "HALT",
];

/// Source-FQN element types.
pub(crate) const FQN_TYPES: &[&str] = &[
    "USER",
    "APPL",
    "PROCESS",
    "APPSERVER",
    "SERVER",
    "RUNTIME",
    "VIRTUAL",
    "NETWORK",
    "DEVICE",
    "NETADDR",
    "GEOADDR",
    "DATACENTER",
    "DATASTORE",
    "CACHE",
    "SERVICE",
    "QUEUE",
];

/// 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z in microseconds: a `*-time-usec` outside
/// this range is almost surely in the wrong unit (ms or ns).
pub(crate) const MIN_TIME_USEC: i64 = 946_684_800_000_000;
/// See [`MIN_TIME_USEC`].
pub(crate) const MAX_TIME_USEC: i64 = 4_102_444_800_000_000;

const TIMESTAMPS: &[&str] = &["time-usec", "start-time-usec", "end-time-usec"];
/// Non-negative integers: µs (`msg-age` in Java `Event`, `msg-age-usec` in TNT4J) or bytes.
const DURATIONS: &[&str] = &[
    "elapsed-time-usec",
    "wait-time-usec",
    "msg-age",
    "msg-age-usec",
    "msg-size",
];
const INTEGERS: &[&str] = &["pid", "tid"];
const STRINGS: &[&str] = &[
    "operation",
    "msg-text",
    "exception",
    "resource",
    "location",
    "user",
    "parent-id",
    "parent-tracking-id",
    "encoding",
    "charset",
    "mime-type",
    "source-url",
    "category",
];

/// Property `type` names of the Java model (`Property.getDataType` in jkool-client-java-api
/// and TNT4J) and the original Python library's `"integer"`.
pub(crate) const PROPERTY_TYPES: &[&str] = &[
    "string", "long", "int", "short", "byte", "double", "float", "bool", "char", "date", "none",
    "integer",
];

/// Upper-case spellings no reference writes (`"STRING"`, `"INTEGER"`, `"BOOLEAN"` …): refused.
const NOT_REFERENCE_TYPES: &[&str] = &["boolean", "timestamp", "decimal", "number"];

/// Validates one document posted to `kind`'s endpoint; `Err` is the reason (naming the field).
pub(crate) fn validate(kind: Kind, doc: &Value) -> Result<(), String> {
    let Value::Object(obj) = doc else {
        return Err(format!(
            "document must be a JSON object, found {}",
            short(doc)
        ));
    };
    for field in kind.required() {
        if !obj.contains_key(*field) {
            return Err(format!("missing required field [{field}]"));
        }
    }
    for (key, value) in obj {
        check_field(kind, key, value).map_err(|e| format!("field [{key}]: {e}"))?;
    }
    Ok(())
}

fn check_field(kind: Kind, key: &str, value: &Value) -> Result<(), String> {
    let k = key;
    if TIMESTAMPS.contains(&k) {
        let t = value.as_i64().ok_or_else(|| {
            format!(
                "must be an integer (microseconds since the epoch), found {}",
                short(value)
            )
        })?;
        if !(MIN_TIME_USEC..MAX_TIME_USEC).contains(&t) {
            return Err(format!(
                "{t} is not microseconds since the epoch between 2000 and 2100 (milliseconds or nanoseconds?)"
            ));
        }
        return Ok(());
    }
    if DURATIONS.contains(&k) {
        return match value.as_i64() {
            Some(d) if d >= 0 => Ok(()),
            _ => Err(format!(
                "must be a non-negative integer (microseconds), found {}",
                short(value)
            )),
        };
    }
    if INTEGERS.contains(&k) {
        return match value.as_i64() {
            Some(_) => Ok(()),
            None => Err(format!("must be an integer, found {}", short(value))),
        };
    }
    if STRINGS.contains(&k) {
        return string(value).map(|_| ());
    }
    match k {
        "type" => {
            let t = string(value)?;
            if t != kind.type_name() {
                return Err(format!("must be \"{}\", found \"{t}\"", kind.type_name()));
            }
        }
        "tracking-id" | "name" => non_empty(value)?,
        "source-fqn" => check_fqn(string(value)?)?,
        "severity" => one_of(value, SEVERITIES)?,
        "comp-code" => one_of(value, &["SUCCESS", "WARNING", "ERROR"])?,
        "status" if kind == Kind::Activity => one_of(value, &["UNKNOWN", "END", "EXCEPTION"])?,
        "reason-code" => match value {
            Value::String(_) => {}
            Value::Number(n) if n.is_i64() => {}
            other => {
                return Err(format!(
                    "must be an integer or a string, found {}",
                    short(other)
                ));
            }
        },
        // Java `Trackable.getCorrId` (List<String>), TNT4J JSONFormatter (array), RUM (string).
        "corrid" | "msg-tag" => match value {
            Value::String(_) => {}
            Value::Array(items) if items.iter().all(Value::is_string) => {}
            other => {
                return Err(format!(
                    "must be a string or an array of strings, found {}",
                    short(other)
                ));
            }
        },
        // The original Python library and the swagger: one string.
        "corr-id" => match value {
            Value::String(_) => {}
            other => {
                return Err(format!(
                    "must be a string (the original library and the swagger send one correlator; several go in [corrid] as an array), found {}",
                    short(other)
                ));
            }
        },
        "properties" => {
            let Value::Array(props) = value else {
                return Err(format!("must be an array, found {}", short(value)));
            };
            for (i, p) in props.iter().enumerate() {
                check_property(p).map_err(|e| format!("[{i}]: {e}"))?;
            }
        }
        "snapshots" => {
            let Value::Array(snaps) = value else {
                return Err(format!("must be an array, found {}", short(value)));
            };
            for (i, s) in snaps.iter().enumerate() {
                validate(Kind::Snapshot, s).map_err(|e| format!("[{i}]: {e}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_property(p: &Value) -> Result<(), String> {
    let Value::Object(obj) = p else {
        return Err(format!(
            "property must be an object {{name,type,value}}, found {}",
            short(p)
        ));
    };
    let name = obj.get("name").ok_or("property without [name]")?;
    if string(name)
        .map_err(|e| format!("property [name] {e}"))?
        .is_empty()
    {
        return Err("property [name] must not be empty".into());
    }
    let ty = obj.get("type").ok_or("property without [type]")?;
    let ty = string(ty).map_err(|e| format!("property [type] {e}"))?;
    if ty.is_empty() {
        return Err("property [type] must not be empty".into());
    }
    let lower = ty.to_ascii_lowercase();
    if lower != ty
        && (PROPERTY_TYPES.contains(&lower.as_str())
            || NOT_REFERENCE_TYPES.contains(&lower.as_str()))
    {
        return Err(format!(
            "property [type] \"{ty}\" is not a reference type name; the Java model writes lowercase {}",
            PROPERTY_TYPES.join("|")
        ));
    }
    if let Some(vt) = obj.get("value-type") {
        string(vt).map_err(|e| format!("property [value-type] {e}"))?;
    }
    let value = obj.get("value").ok_or("property without [value]")?;
    // The Java model and TNT4J send the value as text (`Property.getValue()` is a String, the
    // swagger's `value` is `type: string`); the original sent the Python value itself.
    let consistent = match (ty, value) {
        (_, Value::Null | Value::Array(_) | Value::Object(_)) => false,
        ("long" | "int" | "short" | "byte" | "integer", Value::String(t)) => {
            t.parse::<i64>().is_ok()
        }
        ("long" | "int" | "short" | "byte" | "integer", v) => v.is_i64() || v.is_u64(),
        ("double" | "float", Value::String(t)) => {
            t.parse::<f64>().is_ok_and(f64::is_finite)
                || matches!(t.as_str(), "NaN" | "Infinity" | "-Infinity")
        }
        ("double" | "float", v) => v.is_number(),
        ("bool", Value::String(t)) => matches!(t.as_str(), "true" | "false"),
        ("bool", v) => v.is_boolean(),
        ("string" | "char", v) => v.is_string(),
        _ => true,
    };
    if !consistent {
        return Err(format!(
            "property value {} does not match its type [{ty}]",
            short(value)
        ));
    }
    Ok(())
}

/// `TYPE=name#TYPE=name...`, each TYPE from [`FQN_TYPES`], each name non-empty.
pub(crate) fn check_fqn(fqn: &str) -> Result<(), String> {
    if fqn.is_empty() {
        return Err("must not be empty".into());
    }
    for part in fqn.split('#') {
        let Some((ty, name)) = part.split_once('=') else {
            return Err(format!("element [{part}] is not TYPE=name"));
        };
        if !FQN_TYPES.contains(&ty) {
            return Err(format!("unknown source type [{ty}] in [{part}]"));
        }
        if name.is_empty() {
            return Err(format!("element [{part}] has an empty name"));
        }
    }
    Ok(())
}

fn string(v: &Value) -> Result<&str, String> {
    v.as_str()
        .ok_or_else(|| format!("must be a string, found {}", short(v)))
}

fn non_empty(v: &Value) -> Result<(), String> {
    if string(v)?.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(())
    }
}

fn one_of(v: &Value, allowed: &[&str]) -> Result<(), String> {
    let s = string(v)?;
    if allowed.contains(&s) {
        Ok(())
    } else {
        Err(format!("\"{s}\" is not one of {}", allowed.join("|")))
    }
}

fn short(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 60 {
        let mut cut = 60;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "operation": "orders", "type": "EVENT", "msg-text": "Order processed", "severity": "INFO",
            "source-fqn": "APPL=Shop#SERVER=web1#GEOADDR=33.7,-84.4", "tracking-id": "7d1b",
            "time-usec": 1_466_662_761_000_000_i64, "corrid": ["order-42"],
            "properties": [{"name": "n", "type": "long", "value": "3"}],
            "snapshots": [{"name": "Payment", "time-usec": 1_466_662_761_000_000_i64, "type": "SNAPSHOT",
                "properties": [{"name": "order-no", "value": "A1", "type": "string"}]}]
        })
    }

    #[test]
    fn the_illustrative_event_is_valid() {
        validate(Kind::Event, &event()).unwrap();
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases: &[(&str, Value, &str)] = &[
            (
                "tracking-id",
                Value::Null,
                "missing required field [tracking-id]",
            ),
            (
                "time-usec",
                json!("2016-06-23T06:19:21Z"),
                "field [time-usec]: must be an integer",
            ),
            (
                "time-usec",
                json!(1_466_662_761_000_i64),
                "milliseconds or nanoseconds",
            ),
            ("severity", json!("info"), "field [severity]"),
            ("source-fqn", json!("APP=Shop"), "unknown source type [APP]"),
            ("type", json!("ACTIVITY"), "must be \"EVENT\""),
            (
                "properties",
                json!([{"name": "x", "type": "string"}]),
                "property without [value]",
            ),
            (
                "properties",
                json!([{"name": "x", "type": "long", "value": "3.5"}]),
                "does not match",
            ),
            (
                "properties",
                json!([{"name": "x", "type": "INTEGER", "value": 3}]),
                "not a reference type name",
            ),
            (
                "properties",
                json!([{"name": "x", "type": "STRING", "value": "a"}]),
                "not a reference type name",
            ),
            (
                "properties",
                json!([{"name": "x", "type": "bool", "value": "yes"}]),
                "does not match",
            ),
            (
                "corr-id",
                json!(["order-42"]),
                "field [corr-id]: must be a string",
            ),
            ("corrid", json!([1]), "field [corrid]"),
            ("msg-size", json!(-1), "non-negative"),
            ("elapsed-time-usec", json!(-1), "non-negative"),
            (
                "snapshots",
                json!([{"name": "s", "time-usec": 1_466_662_761_000_000_i64}]),
                "[snapshots]: [0]: missing required field [type]",
            ),
        ];
        for (field, value, expect) in cases {
            let mut doc = event();
            if value.is_null() {
                doc.as_object_mut().unwrap().remove(*field);
            } else {
                doc[*field] = value.clone();
            }
            let err = validate(Kind::Event, &doc).unwrap_err();
            assert!(err.contains(expect), "{field}: {err}");
        }
    }

    #[test]
    fn every_reference_shape_is_valid() {
        let cases = [
            // jkool-client-java-api / TNT4J: values as text, lowercase Java types.
            json!([{"name": "a", "type": "string", "value": "x"},
                   {"name": "b", "type": "long", "value": "-42"},
                   {"name": "c", "type": "double", "value": "1.5E-7"},
                   {"name": "d", "type": "bool", "value": "true", "value-type": "flag"},
                   {"name": "e", "type": "long", "value-type": "timestamp", "value": "1466662761000000"},
                   {"name": "f", "type": "BigDecimal", "value": "1.0"}]),
            // The original Python library: its own type names, native values.
            json!([{"name": "order-no", "type": "string", "value": "A1"},
                   {"name": "order-amount", "type": "integer", "value": 10}]),
        ];
        for props in cases {
            let mut doc = event();
            doc["properties"] = props;
            validate(Kind::Event, &doc).unwrap();
        }
        let mut seed = event();
        seed.as_object_mut().unwrap().remove("corrid");
        seed["corr-id"] = json!("order-42");
        seed["msg-tag"] = json!("billing");
        validate(Kind::Event, &seed).unwrap();
        let mut tnt4j = event();
        tnt4j["msg-tag"] = json!(["a", "b"]);
        tnt4j["msg-age-usec"] = json!(12);
        tnt4j["corrid"] = json!("rum-string");
        validate(Kind::Event, &tnt4j).unwrap();
    }

    #[test]
    fn snapshot_shape() {
        let snap = json!({"name": "Payment", "time-usec": 1_466_662_761_000_000_i64, "type": "SNAPSHOT", "category": "Order", "parent-id": "x"});
        validate(Kind::Snapshot, &snap).unwrap();
        let err = validate(
            Kind::Snapshot,
            &json!({"name": "p", "time-usec": 1_466_662_761_000_000_i64, "type": "EVENT"}),
        )
        .unwrap_err();
        assert!(err.contains("must be \"SNAPSHOT\""), "{err}");
    }
}
