//! Configuration without code: the `LOGSHIP_*` environment variables and the value syntax
//! shared by every backend's `from_env()` and by the `serde` configuration structs.
//!
//! ## Naming
//! Each backend reads `LOGSHIP_<BACKEND>` (its address: URL, connection string…) and
//! `LOGSHIP_<BACKEND>_<SETTING>`, with `BACKEND` one of `FLUENT`, `ES`, `KUSTO`, `JKOOL`,
//! `MQTT`. The pipeline settings (queue, batch, linger, retry, spool… see
//! [`PipelineBuilder::apply_env`](crate::PipelineBuilder::apply_env)) are read from
//! `LOGSHIP_PIPELINE_<SETTING>`, shared by every backend of the process, and a backend's own
//! `LOGSHIP_<BACKEND>_<SETTING>` overrides it — the model of OpenTelemetry's batch processor
//! variables (`OTEL_BSP_*`, `OTEL_BLRP_*`,
//! <https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/>).
//!
//! ## Values
//! | type | syntax | examples |
//! |---|---|---|
//! | duration | an unsigned integer and a unit: `ms`, `s`, `m`, `h` (a bare number is refused: the unit is not guessed) | `250ms`, `5s`, `2m`, `1h` |
//! | bytes | an unsigned integer, optionally followed by `KiB`, `MiB`, `GiB` (× 1024ⁿ) or `KB`, `MB`, `GB` (× 1000ⁿ) | `4194304`, `4MiB`, `512KiB` |
//! | count | an unsigned integer | `1024` |
//! | boolean | `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` (any case) | `true` |
//! | level | `trace`, `debug`, `info`, `warn`, `error` (any case); `off` where the setting allows none | `warn` |
//!
//! Leading and trailing spaces are ignored, and an empty variable counts as unset (as the
//! OpenTelemetry specification asks). The environment is read once, when `from_env()` is
//! called.
//!
//! ## Errors
//! A malformed value, a required variable that is missing, or a variable that starts with a
//! backend's prefix but is not one it reads (a typo such as `LOGSHIP_ES_PASWORD`) is an
//! [`EnvError`], reported by the backend's `build()`; it names every such variable and what
//! is expected. The value of a secret (password, key, token, connection string) is never
//! shown; other malformed values are.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use tracing_core::Level;

use crate::Secret;

/// Prefix of every variable logship reads.
pub const PREFIX: &str = "LOGSHIP_";
/// Prefix of the pipeline variables shared by every backend.
pub const PIPELINE_PREFIX: &str = "LOGSHIP_PIPELINE_";

/// One problem with one environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvProblem {
    /// The variable's name, e.g. `LOGSHIP_ES_GZIP`.
    pub variable: String,
    /// What is wrong and what is expected (never a secret's value).
    pub problem: String,
}

/// The problems found in the `LOGSHIP_*` variables by a `from_env()`; every one is listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvError {
    problems: Vec<EnvProblem>,
}

impl EnvError {
    /// Each variable at fault, in the order found.
    pub fn problems(&self) -> &[EnvProblem] {
        &self.problems
    }
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("environment: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} {}", p.variable, p.problem)?;
        }
        Ok(())
    }
}

impl std::error::Error for EnvError {}

impl From<EnvError> for crate::ConfigError {
    fn from(e: EnvError) -> Self {
        crate::ConfigError::Backend(e.to_string())
    }
}

/// The `LOGSHIP_<BACKEND>…` and `LOGSHIP_PIPELINE_*` variables, read once, and the reader a
/// backend's `from_env()` uses: every lookup marks its variable as known, and
/// [`finish`](Self::finish) reports the malformed values, the missing required variables and
/// the variables under the backend's prefix that no lookup asked for.
///
/// Its `Debug` shows the variable names only, never a value.
pub struct EnvVars {
    backend: &'static str,
    vars: BTreeMap<String, Result<String, ()>>,
    known: BTreeSet<String>,
    problems: Vec<EnvProblem>,
}

impl fmt::Debug for EnvVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvVars")
            .field("backend", &self.backend)
            .field("variables", &self.vars.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl EnvVars {
    /// The process environment's variables for `backend` (`"ES"`, `"FLUENT"`…; `"PIPELINE"`
    /// for the shared pipeline variables alone).
    pub fn from_process(backend: &'static str) -> Self {
        Self::from_pairs(backend, std::env::vars_os())
    }

    /// The variables for `backend` among `pairs` (name, value), e.g. `std::env::vars_os()`
    /// or a test's table; others are ignored. A value that is not UTF-8 is a problem.
    pub fn from_pairs<K, V>(backend: &'static str, pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let exact = format!("{PREFIX}{backend}");
        let own = format!("{exact}_");
        let mut vars = BTreeMap::new();
        for (k, v) in pairs {
            let Ok(k) = k.into().into_string() else {
                continue;
            };
            if k == exact || k.starts_with(&own) || k.starts_with(PIPELINE_PREFIX) {
                vars.insert(k, v.into().into_string().map_err(|_| ()));
            }
        }
        Self {
            backend,
            vars,
            known: BTreeSet::new(),
            problems: Vec::new(),
        }
    }

    /// The backend part of the names, e.g. `ES`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// `LOGSHIP_<BACKEND>_<setting>`, or `LOGSHIP_<BACKEND>` for an empty `setting`.
    pub fn name(&self, setting: &str) -> String {
        if setting.is_empty() {
            format!("{PREFIX}{}", self.backend)
        } else {
            format!("{PREFIX}{}_{setting}", self.backend)
        }
    }

    /// Records a problem with `variable` (reported by [`finish`](Self::finish)).
    pub fn problem(&mut self, variable: impl Into<String>, problem: impl Into<String>) {
        self.problems.push(EnvProblem {
            variable: variable.into(),
            problem: problem.into(),
        });
    }

    /// The raw value of the variable `name` (full name), trimmed; `None` when unset or empty.
    fn raw(&mut self, name: &str) -> Option<String> {
        self.known.insert(name.to_string());
        match self.vars.get(name)? {
            Ok(v) if v.trim().is_empty() => None,
            Ok(v) => Some(v.trim().to_string()),
            Err(()) => {
                self.problem(name, "is not valid UTF-8");
                None
            }
        }
    }

    /// The text of `LOGSHIP_<BACKEND>_<setting>` (not a secret: use [`secret`](Self::secret)).
    pub fn text(&mut self, setting: &str) -> Option<String> {
        let name = self.name(setting);
        self.raw(&name)
    }

    /// As [`text`](Self::text), recording "is not set; `expected`" when it is missing.
    pub fn required_text(&mut self, setting: &str, expected: &str) -> Option<String> {
        let v = self.text(setting);
        if v.is_none() {
            let name = self.name(setting);
            self.problem(name, format!("is not set; {expected}"));
        }
        v
    }

    /// A secret (password, key, token), never shown in a problem.
    pub fn secret(&mut self, setting: &str) -> Option<Secret> {
        self.text(setting).map(Secret::new)
    }

    /// `LOGSHIP_<BACKEND>_<setting>` parsed by `parse`; a failure is recorded as
    /// "is `<value>`: expected `<what parse returned>`" and gives `None`.
    pub fn parsed<T>(
        &mut self,
        setting: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let name = self.name(setting);
        self.parse_named(&name, parse)
    }

    fn parse_named<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let v = self.raw(name)?;
        match parse(&v) {
            Ok(t) => Some(t),
            Err(expected) => {
                self.problem(name, format!("is `{v}`: expected {expected}"));
                None
            }
        }
    }

    /// A [boolean](self#values).
    pub fn bool(&mut self, setting: &str) -> Option<bool> {
        self.parsed(setting, parse_bool)
    }
    /// A [duration](self#values).
    pub fn duration(&mut self, setting: &str) -> Option<Duration> {
        self.parsed(setting, parse_duration)
    }
    /// A [byte size](self#values), as `usize`.
    pub fn bytes(&mut self, setting: &str) -> Option<usize> {
        self.parsed(setting, |s| {
            parse_bytes(s).and_then(|n| usize::try_from(n).map_err(|_| "a smaller size".into()))
        })
    }
    /// An unsigned integer.
    pub fn count<T: std::str::FromStr>(&mut self, setting: &str) -> Option<T> {
        self.parsed(setting, |s| {
            s.parse::<T>()
                .map_err(|_| "an unsigned integer in range".into())
        })
    }
    /// A path.
    pub fn path(&mut self, setting: &str) -> Option<PathBuf> {
        self.text(setting).map(PathBuf::from)
    }

    /// A pipeline setting: `LOGSHIP_<BACKEND>_<setting>` if set, else
    /// `LOGSHIP_PIPELINE_<setting>`.
    pub fn pipeline_parsed<T>(
        &mut self,
        setting: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let own = self.name(setting);
        let shared = format!("{PIPELINE_PREFIX}{setting}");
        if self.raw(&own).is_some() {
            self.known.insert(shared);
            return self.parse_named(&own, parse);
        }
        self.parse_named(&shared, parse)
    }

    /// The problems found, plus one for every variable under the backend's prefix (or
    /// `LOGSHIP_PIPELINE_`) that no lookup asked for.
    ///
    /// # Errors
    /// [`EnvError`] listing every problem.
    pub fn finish(mut self) -> Result<(), EnvError> {
        let unknown: Vec<String> = self
            .vars
            .keys()
            .filter(|k| !self.known.contains(*k))
            .cloned()
            .collect();
        for k in unknown {
            let own_prefix = if k.starts_with(PIPELINE_PREFIX) {
                PIPELINE_PREFIX.to_string()
            } else {
                format!("{}_", self.name(""))
            };
            let known: Vec<&str> = self
                .known
                .iter()
                .filter(|n| n.starts_with(&own_prefix))
                .map(String::as_str)
                .collect();
            let nearest = known
                .iter()
                .map(|n| (edit_distance(&k, n), *n))
                .min()
                .filter(|(d, _)| *d <= 3);
            let problem = match nearest {
                Some((_, n)) => {
                    format!("is not a variable logship reads; did you mean {n}?")
                }
                None => format!(
                    "is not a variable logship reads (a typo?); known: {}",
                    known.join(", ")
                ),
            };
            self.problem(k, problem);
        }
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(EnvError {
                problems: self.problems,
            })
        }
    }
}

/// Levenshtein distance (for "did you mean").
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Parses a [duration](self#values): `250ms`, `5s`, `2m`, `1h`.
///
/// # Errors
/// What is expected, for a message.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "a whole number with a unit ms, s, m or h, e.g. 500ms or 5s";
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| EXPECTED.to_string())?;
    let secs = |mult: u64| n.checked_mul(mult).map(Duration::from_secs);
    match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => secs(1),
        "m" | "min" => secs(60),
        "h" => secs(3600),
        _ => None,
    }
    .ok_or_else(|| EXPECTED.to_string())
}

/// Parses a [byte size](self#values): `4194304`, `4MiB`, `512KiB`, `10MB`.
///
/// # Errors
/// What is expected, for a message.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    const EXPECTED: &str = "a whole number of bytes, optionally with KiB, MiB, GiB, KB, MB or GB";
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| EXPECTED.to_string())?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(EXPECTED.into()),
    };
    n.checked_mul(mult).ok_or_else(|| EXPECTED.to_string())
}

/// Parses a [boolean](self#values).
///
/// # Errors
/// What is expected, for a message.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("true or false".into()),
    }
}

/// Parses a [level](self#values): `trace` … `error`.
///
/// # Errors
/// What is expected, for a message.
pub fn parse_level(s: &str) -> Result<Level, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "trace" => Ok(Level::TRACE),
        "debug" => Ok(Level::DEBUG),
        "info" => Ok(Level::INFO),
        "warn" | "warning" => Ok(Level::WARN),
        "error" => Ok(Level::ERROR),
        _ => Err("one of trace, debug, info, warn, error".into()),
    }
}

/// Parses a level or `off` (`None`), for settings such as the flush level.
///
/// # Errors
/// What is expected, for a message.
pub fn parse_level_or_off(s: &str) -> Result<Option<Level>, String> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    parse_level(s)
        .map(Some)
        .map_err(|_| "one of trace, debug, info, warn, error, off".into())
}

/// Parses an overflow policy: `drop_newest`, `drop_oldest` or `block:<duration>` (e.g.
/// `block:10ms`; see [`Overflow`](crate::Overflow)).
///
/// # Errors
/// What is expected, for a message.
pub fn parse_overflow(s: &str) -> Result<crate::Overflow, String> {
    const EXPECTED: &str = "drop_newest, drop_oldest or block:<duration> (e.g. block:10ms)";
    let s = s.trim().to_ascii_lowercase();
    match s.as_str() {
        "drop_newest" => Ok(crate::Overflow::DropNewest),
        "drop_oldest" => Ok(crate::Overflow::DropOldest),
        _ => match s.strip_prefix("block:") {
            Some(d) => parse_duration(d)
                .map(crate::Overflow::Block)
                .map_err(|_| EXPECTED.into()),
            None => Err(EXPECTED.into()),
        },
    }
}

/// Serde helpers: the same value syntax in configuration files (feature `serde`).
#[cfg(feature = "serde")]
pub mod de {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, de::Error};

    /// An optional value given as text and read by `parse` (one of this module's `parse_*`
    /// functions or a backend's own), whose `Err` says what is expected. The shared body of
    /// every text-valued `deserialize_with` of the settings structs.
    ///
    /// # Errors
    /// The deserializer's error: "`TEXT`: expected …" with what `parse` said is expected.
    pub fn parsed<'de, D: Deserializer<'de>, T>(
        d: D,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s)
            .map(Some)
            .map_err(|e| D::Error::custom(format!("`{s}`: expected {e}")))
    }

    /// A size: a number of bytes, or text such as `"4MiB"`.
    struct BytesVisitor;

    impl serde::de::Visitor<'_> for BytesVisitor {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number of bytes or text such as \"4MiB\"")
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("`{v}`: expected a size of 0 or more")))
        }
        fn visit_str<E: Error>(self, s: &str) -> Result<u64, E> {
            super::parse_bytes(s).map_err(|e| E::custom(format!("`{s}`: expected {e}")))
        }
    }

    /// An optional [duration](super#values) given as text (`"5s"`).
    ///
    /// # Errors
    /// The deserializer's error, saying what is expected.
    pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        parsed(d, super::parse_duration)
    }

    /// An optional [byte size](super#values), a number or text (`4194304`, `"4MiB"`).
    ///
    /// # Errors
    /// The deserializer's error, saying what is expected.
    pub fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_any(BytesVisitor).map(Some)
    }

    /// As [`bytes`], as `usize`.
    ///
    /// # Errors
    /// The deserializer's error, saying what is expected.
    pub fn bytes_usize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        match bytes(d)? {
            Some(n) => usize::try_from(n)
                .map(Some)
                .map_err(|_| D::Error::custom("size too large for this platform")),
            None => Ok(None),
        }
    }

    /// An optional [level](super#values).
    ///
    /// # Errors
    /// The deserializer's error, saying what is expected.
    pub fn level<'de, D: Deserializer<'de>>(d: D) -> Result<Option<tracing_core::Level>, D::Error> {
        parsed(d, super::parse_level)
    }

    /// An optional level or `off`: `None` unset, `Some(None)` off.
    ///
    /// # Errors
    /// The deserializer's error, saying what is expected.
    pub fn level_or_off<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<tracing_core::Level>>, D::Error> {
        parsed(d, super::parse_level_or_off)
    }

    /// An optional [overflow policy](super::parse_overflow).
    ///
    /// # Errors
    /// The deserializer's error, saying what is expected.
    pub fn overflow<'de, D: Deserializer<'de>>(d: D) -> Result<Option<crate::Overflow>, D::Error> {
        parsed(d, super::parse_overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 5s "), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
        assert_eq!(parse_bytes("4MiB"), Ok(4 << 20));
        assert_eq!(parse_bytes("10MB"), Ok(10_000_000));
        assert_eq!(parse_bytes("17"), Ok(17));
        assert!(parse_bytes("4 furlongs").is_err());
        assert!(parse_bytes("99999999999GiB").is_err());
        assert_eq!(parse_bool("ON"), Ok(true));
        assert_eq!(parse_bool("0"), Ok(false));
        assert!(parse_bool("maybe").is_err());
        assert_eq!(parse_level("WARN"), Ok(Level::WARN));
        assert_eq!(parse_level_or_off("off"), Ok(None));
        assert_eq!(
            parse_overflow("block:10ms"),
            Ok(crate::Overflow::Block(Duration::from_millis(10)))
        );
        assert!(parse_overflow("block").is_err());
    }

    #[test]
    fn unknown_variables_and_bad_values_are_named_and_secrets_are_not_shown() {
        let mut env = EnvVars::from_pairs(
            "ES",
            [
                ("LOGSHIP_ES", "http://h:9200"),
                ("LOGSHIP_ES_GZIP", "maybe"),
                ("LOGSHIP_ES_PASWORD", "hunter2"),
                ("LOGSHIP_ES_COLOUR", "blue"),
                ("LOGSHIP_ESX", "ignored"),
                ("LOGSHIP_FLUENT", "ignored"),
                ("PATH", "/bin"),
            ],
        );
        assert_eq!(env.text(""), Some("http://h:9200".into()));
        assert_eq!(env.bool("GZIP"), None);
        let _ = env.secret("PASSWORD");
        let e = env.finish().unwrap_err();
        let vars: Vec<_> = e.problems().iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(
            vars,
            ["LOGSHIP_ES_GZIP", "LOGSHIP_ES_COLOUR", "LOGSHIP_ES_PASWORD"]
        );
        assert!(
            msg_of(&e).contains("LOGSHIP_ES_COLOUR is not a variable logship reads (a typo?); known: LOGSHIP_ES_GZIP, LOGSHIP_ES_PASSWORD"),
            "{e}"
        );
        let msg = e.to_string();
        assert!(msg.contains("`maybe`: expected true or false"), "{msg}");
        assert!(
            msg.contains("known: LOGSHIP_ES_GZIP, LOGSHIP_ES_PASSWORD"),
            "{msg}"
        );
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    fn msg_of(e: &EnvError) -> String {
        e.to_string()
    }

    #[test]
    fn backend_variable_overrides_the_shared_one() {
        let mut env = EnvVars::from_pairs(
            "KUSTO",
            [
                ("LOGSHIP_PIPELINE_LINGER", "5s"),
                ("LOGSHIP_KUSTO_LINGER", "200ms"),
                ("LOGSHIP_PIPELINE_SEND_TIMEOUT", "7s"),
            ],
        );
        assert_eq!(
            env.pipeline_parsed("LINGER", parse_duration),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            env.pipeline_parsed("SEND_TIMEOUT", parse_duration),
            Some(Duration::from_secs(7))
        );
        env.finish().unwrap();
    }

    #[test]
    fn debug_shows_names_not_values() {
        let env = EnvVars::from_pairs("ES", [("LOGSHIP_ES_PASSWORD", "hunter2")]);
        let shown = format!("{env:?}");
        assert!(shown.contains("LOGSHIP_ES_PASSWORD"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn empty_counts_as_unset() {
        let mut env = EnvVars::from_pairs("MQTT", [("LOGSHIP_MQTT_QOS", "  ")]);
        assert_eq!(env.count::<u8>("QOS"), None);
        env.finish().unwrap();
    }
}
