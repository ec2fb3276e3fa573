//! `logship`: the command line.
//!
//! * `logship send MESSAGE --fluent ADDR …` ships one event (or one per line of standard input
//!   with `-`) to any backends given, and exits non-zero when delivery fails. The generalised
//!   form of the jKool original's `streaming.py "message" --https TOKEN` /
//!   `--mqtt BROKER USER PASSWORD --topic T`.
//! * `logship receive fluent|es|kusto|jkool|mqtt [--port N]` runs a local receiver (the
//!   testkit's protocol-faithful ones, or an embedded MQTT broker) and prints every record as
//!   it arrives: a development sink that needs no backend.
//! * `logship replay FOLDER --fluent ADDR …` re-sends a dead-letter folder.
//!
//! `send -` and `replay` show their progress (records, rate, delivered and failed so far) on
//! standard error when it is a terminal, and nothing extra otherwise (see `progress`).
//!
//! Every secret (tokens, keys, passwords, the Kusto connection string) can also come from a
//! `LOGSHIP_…` environment variable or a `--…-file PATH`, so it need not appear in the process
//! arguments (see `secret`). Usage errors exit with status 2, delivery failures with 1.

mod backends;
mod progress;
mod receive;
mod secret;

use std::io::BufRead;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use logship_core::{Level, Record};

#[derive(Parser, Debug)]
#[command(
    name = "logship",
    version,
    about = "Ship events to Fluentd, Elasticsearch, Azure Data Explorer and jKool; run local receivers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send MESSAGE (or, with `-`, each line of standard input) as an event to the backends given.
    #[command(after_help = backends::SECRETS_HELP)]
    Send {
        /// The message; `-` reads one event per line from standard input.
        message: String,
        /// Level: trace, debug, info, warn or error.
        #[arg(long, default_value = "info")]
        level: String,
        /// The event's target.
        #[arg(long, default_value = "logship")]
        target: String,
        /// A field `key=value` (repeatable); integers (any size), finite decimal numbers and
        /// true/false keep their type; `007`, `nan` and other text stay text.
        #[arg(long = "field", value_name = "KEY=VALUE")]
        fields: Vec<String>,
        /// The source FQN, e.g. `APPL=shop#SERVER=web1`.
        #[arg(long)]
        source_fqn: Option<String>,
        /// A correlator (repeatable).
        #[arg(long = "correlator")]
        correlators: Vec<String>,
        #[command(flatten)]
        to: backends::Targets,
    },
    /// Run a local receiver and print every record as it arrives (Ctrl-C to stop).
    Receive {
        /// Which protocol: fluent, es, kusto, jkool or mqtt.
        #[arg(value_enum)]
        kind: receive::Kind,
        /// The port (default: the protocol's usual one: 24224, 9200, 8080, 6580, 1883).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Re-send the records of a dead-letter folder (the NDJSON files `with_dead_letter_dir` and
    /// the ECS `with_failure_folder` write; `_bulk` files of earlier ECS versions are replayed
    /// by `EcsBuilder::replay_failure_folder`). The files are left in place.
    #[command(after_help = backends::SECRETS_HELP)]
    Replay {
        /// The folder.
        folder: std::path::PathBuf,
        #[command(flatten)]
        to: backends::Targets,
    },
}

/// Exit status of a usage error (clap's own and ours).
const USAGE: u8 = 2;

fn main() -> ExitCode {
    // Parsed in two steps to keep the matches: they tell a secret typed on the command line
    // from one taken from the environment (see `secret`).
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let Some((_, sub)) = matches.subcommand() else {
        // clap requires a subcommand before we get here.
        return ExitCode::from(USAGE);
    };
    let result = match cli.command {
        Command::Send {
            message,
            level,
            target,
            fields,
            source_fqn,
            correlators,
            to,
        } => send(
            &message,
            &level,
            &target,
            &fields,
            source_fqn.as_deref(),
            &correlators,
            backends::To {
                targets: &to,
                matches: sub,
                replaying: false,
            },
        ),
        Command::Receive { kind, port } => receive::run(kind, port).map_err(Failure::Run),
        Command::Replay { folder, to } => replay(
            &folder,
            backends::To {
                targets: &to,
                matches: sub,
                replaying: true,
            },
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("logship: {e}");
            ExitCode::from(USAGE)
        }
        Err(Failure::Run(e)) => {
            eprintln!("logship: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why a command failed: a usage error (exit status 2) or a failure to run or deliver (1).
enum Failure {
    Usage(String),
    Run(String),
}

impl From<backends::BuildError> for Failure {
    fn from(e: backends::BuildError) -> Self {
        match e {
            backends::BuildError::Usage(m) => Failure::Usage(m),
            backends::BuildError::Backend(m) => Failure::Run(m),
        }
    }
}

fn parse_level(s: &str) -> Result<Level, String> {
    match s.to_ascii_lowercase().as_str() {
        "trace" => Ok(Level::TRACE),
        "debug" => Ok(Level::DEBUG),
        "info" => Ok(Level::INFO),
        "warn" | "warning" => Ok(Level::WARN),
        "error" => Ok(Level::ERROR),
        other => Err(format!(
            "unknown level `{other}`; use trace, debug, info, warn or error"
        )),
    }
}

/// The typed value of `--field KEY=VALUE`: an integer written in canonical decimal keeps its
/// type (`i64`, else `u64`, else 128-bit), a finite decimal number is a float, `true`/`false`
/// a boolean; everything else stays text — so `007` (a leading zero: a code, not a number),
/// `nan`, `inf` and `1e400` arrive exactly as written.
fn field_value(v: &str) -> logship_core::FieldValue {
    use logship_core::FieldValue as F;
    let digits = v.strip_prefix('-').unwrap_or(v);
    let canonical_int = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && v != "-0";
    if canonical_int {
        if let Ok(i) = v.parse::<i64>() {
            return F::I64(i);
        }
        if let Ok(u) = v.parse::<u64>() {
            return F::U64(u);
        }
        if let Ok(i) = v.parse::<i128>() {
            return F::I128(i);
        }
        if let Ok(u) = v.parse::<u128>() {
            return F::U128(u);
        }
        return F::Str(v.to_string());
    }
    let numeric_text = !digits.starts_with('0') || digits.starts_with("0.") || digits == "0";
    let looks_decimal = v.bytes().any(|b| b.is_ascii_digit())
        && v.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if looks_decimal
        && numeric_text
        && v != "-0"
        && let Ok(f) = v.parse::<f64>()
        && f.is_finite()
    {
        return F::F64(f);
    }
    match v {
        "true" => F::Bool(true),
        "false" => F::Bool(false),
        _ => F::Str(v.to_string()),
    }
}

fn send(
    message: &str,
    level: &str,
    target: &str,
    fields: &[String],
    source_fqn: Option<&str>,
    correlators: &[String],
    to: backends::To<'_>,
) -> Result<(), Failure> {
    let level = parse_level(level).map_err(Failure::Usage)?;
    let fqn = source_fqn
        .map(logship_core::SourceFqn::parse)
        .transpose()
        .map_err(|e| Failure::Usage(format!("--source-fqn: {e}")))?;
    let mut parsed = Vec::new();
    for f in fields {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| Failure::Usage(format!("--field `{f}`: expected KEY=VALUE")))?;
        parsed.push((k.to_string(), field_value(v)));
    }
    let messages: Vec<String> = if message == "-" {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<Result<_, _>>()
            .map_err(|e| Failure::Run(format!("reading standard input: {e}")))?
    } else {
        vec![message.to_string()]
    };
    let set = backends::build(to)?;
    // Progress only for standard input (one message needs none), and only on a terminal.
    let mut progress = if message == "-" {
        progress::Progress::new("sending", Some(messages.len() as u64))
    } else {
        progress::Progress::off()
    };
    for (i, m) in messages.iter().enumerate() {
        if i > 0 && (i as u64).is_multiple_of(REPLAY_CHUNK) {
            // As `replay`: keep the queue from overflowing on a long standard input (50 000
            // lines submitted at once dropped a third of them).
            set.flush();
            progress.counts(|| set.counts());
        }
        let mut b = Record::event(level, target).with_message(m);
        for (k, v) in &parsed {
            b = b.with_field(k.clone(), v.clone());
        }
        if let Some(f) = &fqn {
            b = b.with_source_fqn(f.clone());
        }
        for c in correlators {
            b = b.with_correlator(c.clone());
        }
        set.submit(&b.build());
        progress.record(|| set.counts());
    }
    progress.finish();
    set.finish(messages.len() as u64).map_err(Failure::Run)
}

/// Records submitted between flushes while sending standard input or replaying (well under the
/// default queue size).
const REPLAY_CHUNK: u64 = 4096;

fn replay(folder: &std::path::Path, to: backends::To<'_>) -> Result<(), Failure> {
    let read = logship_core::json::read_dead_letters(folder)
        .map_err(|e| Failure::Run(format!("cannot read {}: {e}", folder.display())))?;
    let set = backends::build(to)?;
    let mut progress = progress::Progress::new("replaying", None);
    let mut n = 0u64;
    let mut bad = 0u64;
    for r in read {
        match r {
            Ok(rec) => {
                set.submit(&rec);
                n += 1;
                progress.record(|| set.counts());
                if n.is_multiple_of(REPLAY_CHUNK) {
                    // Keep the queue from overflowing on a large folder.
                    set.flush();
                    progress.counts(|| set.counts());
                }
            }
            Err((file, line, e)) => {
                bad += 1;
                progress.eprintln(&format!("skipped {}:{line}: {e}", file.display()));
            }
        }
    }
    progress.finish();
    eprintln!(
        "replaying {n} records from {} ({bad} lines skipped)",
        folder.display()
    );
    set.finish(n).map_err(Failure::Run)
}

#[cfg(test)]
mod tests {
    use super::field_value;
    use logship_core::FieldValue as F;

    #[test]
    fn field_values_keep_their_type_and_text_stays_text() {
        assert_eq!(field_value("42"), F::I64(42));
        assert_eq!(field_value("-7"), F::I64(-7));
        assert_eq!(
            field_value("12345678901234567890"),
            F::U64(12_345_678_901_234_567_890)
        );
        assert_eq!(
            field_value("123456789012345678901234567890"),
            F::I128(123_456_789_012_345_678_901_234_567_890)
        );
        assert_eq!(field_value("9.5"), F::F64(9.5));
        assert_eq!(field_value("0.25"), F::F64(0.25));
        assert_eq!(field_value("true"), F::Bool(true));
        for text in [
            "007", "nan", "NaN", "inf", "-inf", "1e400", "-0", "abc", "", "1.2.3", "0x10",
        ] {
            assert_eq!(field_value(text), F::Str(text.to_string()), "{text}");
        }
    }
}
