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
