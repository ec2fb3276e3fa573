//! The jKool vocabulary: document kinds, severities, completion codes and activity statuses
//! (the jKool client model, <https://github.com/Nastel/jkool-client-java-api>, the jkool-client-java-api model).

use logship_core::Level;

/// The three jKool document kinds, each with its own JESL endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DocumentKind {
    /// An `EVENT`: one log record. Posted to `{base}/event`.
    Event,
    /// An `ACTIVITY`: one closed span. Posted to `{base}/activity`.
    Activity,
    /// A `SNAPSHOT`: a named group of typed properties. Posted to `{base}/snapshot`.
    Snapshot,
}

impl DocumentKind {
    /// Every kind, in endpoint order.
    pub const ALL: [DocumentKind; 3] = [Self::Event, Self::Activity, Self::Snapshot];

    /// The value of the document's `type` field: `EVENT`, `ACTIVITY` or `SNAPSHOT`.
    pub const fn type_name(self) -> &'static str {
        match self {
            Self::Event => "EVENT",
            Self::Activity => "ACTIVITY",
            Self::Snapshot => "SNAPSHOT",
        }
    }

    /// The JESL endpoint below the base URL: `event`, `activity` or `snapshot`.
    pub const fn endpoint(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Activity => "activity",
            Self::Snapshot => "snapshot",
        }
    }
}

/// jKool's `severity` values (the Java model's list, a superset of Python's level names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Severity {
    /// `NONE`
    None,
    /// `TRACE`
    Trace,
    /// `DEBUG`
    Debug,
    /// `INFO`
    Info,
    /// `NOTICE`
    Notice,
    /// `WARNING`
    Warning,
    /// `ERROR`
    Error,
    /// `FAILURE`
    Failure,
    /// `CRITICAL`
    Critical,
    /// `FATAL`
    Fatal,
    /// `HALT`
    Halt,
}

impl Severity {
    /// The wire name, e.g. `WARNING`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Trace => "TRACE",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Notice => "NOTICE",
            Self::Warning => "WARNING",
            Self::Error => "ERROR",
            Self::Failure => "FAILURE",
            Self::Critical => "CRITICAL",
            Self::Fatal => "FATAL",
            Self::Halt => "HALT",
        }
    }

    /// Every severity, least to most severe.
    pub const ALL: [Severity; 11] = [
        Self::None,
        Self::Trace,
        Self::Debug,
        Self::Info,
        Self::Notice,
        Self::Warning,
        Self::Error,
        Self::Failure,
        Self::Critical,
        Self::Fatal,
        Self::Halt,
    ];

    /// A wire name in any case (`"warning"` → [`Severity::Warning`]); `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// A Python `logging` level number, as the original `logEvent(severity=logging.WARNING)`
    /// took it: 10 → `DEBUG`, 20 → `INFO`, 30 → `WARNING`, 40 → `ERROR`, 50 → `CRITICAL`;
    /// `None` for any other number.
    pub fn from_python_level(level: i64) -> Option<Self> {
        match level {
            10 => Some(Self::Debug),
            20 => Some(Self::Info),
            30 => Some(Self::Warning),
            40 => Some(Self::Error),
            50 => Some(Self::Critical),
            _ => None,
        }
    }

    /// The severity of a `tracing` level: TRACE → `TRACE`, DEBUG → `DEBUG`, INFO → `INFO`,
    /// WARN → `WARNING`, ERROR → `ERROR` (the names Python's `logging` used in the original).
    pub fn from_level(level: Level) -> Self {
        if level == Level::ERROR {
            Self::Error
        } else if level == Level::WARN {
            Self::Warning
        } else if level == Level::INFO {
            Self::Info
        } else if level == Level::DEBUG {
            Self::Debug
        } else {
            Self::Trace
        }
    }
}

/// jKool's `comp-code`: how the operation completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CompCode {
    /// `SUCCESS`
    Success,
    /// `WARNING`
    Warning,
    /// `ERROR`
    Error,
}

impl CompCode {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::Warning => "WARNING",
            Self::Error => "ERROR",
        }
    }

    /// A wire name in any case (`"warning"` → [`CompCode::Warning`]); `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Success, Self::Warning, Self::Error]
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// `ERROR` for `ERROR` and the severities above it (`FAILURE`, `CRITICAL`, `FATAL`,
    /// `HALT`), `WARNING` for `WARNING`, else `SUCCESS`: the same rule as
    /// [`from_level`](Self::from_level), for a severity given as a field.
    pub fn from_severity(severity: Severity) -> Self {
        if severity >= Severity::Error {
            Self::Error
        } else if severity == Severity::Warning {
            Self::Warning
        } else {
            Self::Success
        }
    }

    /// ERROR → `ERROR`, WARN → `WARNING`, anything else → `SUCCESS` (TNT4J's convention).
    pub fn from_level(level: Level) -> Self {
        if level == Level::ERROR {
            Self::Error
        } else if level == Level::WARN {
            Self::Warning
        } else {
            Self::Success
        }
    }
}

/// An activity's `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ActivityStatus {
    /// `END`: the span closed normally.
    End,
    /// `EXCEPTION`: the span recorded an error value or saw an ERROR event.
    Exception,
}

impl ActivityStatus {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::End => "END",
            Self::Exception => "EXCEPTION",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_from_levels() {
        let table = [
            (Level::TRACE, "TRACE", "SUCCESS"),
            (Level::DEBUG, "DEBUG", "SUCCESS"),
            (Level::INFO, "INFO", "SUCCESS"),
            (Level::WARN, "WARNING", "WARNING"),
            (Level::ERROR, "ERROR", "ERROR"),
        ];
        for (level, sev, comp) in table {
            assert_eq!(Severity::from_level(level).as_str(), sev, "{level}");
            assert_eq!(CompCode::from_level(level).as_str(), comp, "{level}");
        }
    }

    #[test]
    fn names_parse_in_any_case_and_python_levels_map() {
        assert_eq!(Severity::parse("critical"), Some(Severity::Critical));
        assert_eq!(Severity::parse(" HALT "), Some(Severity::Halt));
        assert_eq!(Severity::parse("LOUD"), None);
        assert_eq!(Severity::from_python_level(50), Some(Severity::Critical));
        assert_eq!(Severity::from_python_level(30), Some(Severity::Warning));
        assert_eq!(Severity::from_python_level(25), None);
        assert_eq!(CompCode::parse("warning"), Some(CompCode::Warning));
        assert_eq!(CompCode::parse("FAILED"), None);
        assert_eq!(CompCode::from_severity(Severity::Fatal), CompCode::Error);
        assert_eq!(CompCode::from_severity(Severity::Notice), CompCode::Success);
        assert_eq!(
            CompCode::from_severity(Severity::Warning),
            CompCode::Warning
        );
    }

    #[test]
    fn endpoints_and_types() {
        let got: Vec<_> = DocumentKind::ALL
            .iter()
            .map(|k| (k.endpoint(), k.type_name()))
            .collect();
        assert_eq!(
            got,
            [
                ("event", "EVENT"),
                ("activity", "ACTIVITY"),
                ("snapshot", "SNAPSHOT")
            ]
        );
    }
}
