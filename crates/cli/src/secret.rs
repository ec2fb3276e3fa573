//! Secret options: each one can be given on the command line, in an environment variable
//! (clap's `env`, value hidden from `--help`), or read from a file (`--…-file PATH`), so that a
//! secret need not sit in the process's argument list (`/proc/PID/cmdline`, `ps`, shell
//! history).
//!
//! Precedence: `--x VALUE` and `--x-file PATH` together on the command line are a usage error;
//! otherwise the file wins over the environment variable, and the variable is used when
//! neither option is given.

use clap::ArgMatches;
use clap::parser::ValueSource;

/// A secret's text. Its `Debug` never shows it, so neither a derived `Debug` of the options
/// nor an error message can leak it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretArg(String);

impl SecretArg {
    /// The secret itself, for handing to a builder.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretArg {
    fn from(s: String) -> Self {
        SecretArg(s)
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretArg(<redacted>)")
    }
}

/// clap value parser for `--…-file PATH`: the file's text, without its trailing line break
/// (`\n` or `\r\n`, as `echo` or an editor leaves it).
///
/// # Errors
/// The file cannot be read (the message names it and the OS error), is not UTF-8, or holds
/// nothing but a line break. clap reports it as a usage error (exit status 2), naming the
/// option and the path, never the content.
pub(crate) fn read_file(path: &str) -> Result<SecretArg, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidData {
            format!("cannot read {path}: not UTF-8 text")
        } else {
            format!("cannot read {path}: {e}")
        }
    })?;
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(format!("{path} is empty"));
    }
    Ok(SecretArg(trimmed.to_string()))
}

/// One secret option and its `-file` twin, as parsed.
pub(crate) struct Pair<'a> {
    /// The value option's clap id (the field name, e.g. `es_password`).
    pub(crate) id: &'static str,
    /// Its long flag, for messages (`--es-password`).
    pub(crate) flag: &'static str,
    /// The `-file` twin's long flag (`--es-password-file`).
    pub(crate) file_flag: &'static str,
    /// Its environment variable, for messages.
    pub(crate) env: &'static str,
    /// The value option: from the command line or the environment.
    pub(crate) value: &'a Option<SecretArg>,
    /// The `-file` option (command line only).
    pub(crate) file: &'a Option<SecretArg>,
}

impl Pair<'_> {
    /// The secret this pair yields, following the module's precedence.
    ///
    /// # Errors
    /// Both `--x` and `--x-file` were typed on the command line.
    pub(crate) fn resolve(&self, m: &ArgMatches) -> Result<Option<SecretArg>, String> {
        match (self.value, self.file) {
            (Some(_), Some(_)) if m.value_source(self.id) == Some(ValueSource::CommandLine) => {
                Err(format!(
                    "{} and {} both given: give one of them",
                    self.flag, self.file_flag
                ))
            }
            (_, Some(f)) => Ok(Some(f.clone())),
            (v, None) => Ok(v.clone()),
        }
    }

    /// How to give this secret, for messages: `--x, --x-file or ENV`.
    pub(crate) fn ways(&self) -> String {
        format!("{}, {} or {}", self.flag, self.file_flag, self.env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_loses_its_trailing_line_break_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        for (content, want) in [
            ("tok\n", "tok"),
            ("tok\r\n", "tok"),
            ("tok", "tok"),
            (" tok \n", " tok "),
        ] {
            std::fs::write(&p, content).unwrap();
            assert_eq!(read_file(p.to_str().unwrap()).unwrap().expose(), want);
        }
        std::fs::write(&p, "\n").unwrap();
        assert!(
            read_file(p.to_str().unwrap())
                .unwrap_err()
                .contains("is empty")
        );
    }

    #[test]
    fn an_unreadable_file_is_named_and_debug_hides_the_secret() {
        let err = read_file("/nonexistent/logship-secret").unwrap_err();
        assert!(
            err.starts_with("cannot read /nonexistent/logship-secret:"),
            "{err}"
        );
        let s = SecretArg::from("hunter2".to_string());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
