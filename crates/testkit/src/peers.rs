//! Finding the third-party peers (official Python clients, mosquitto, osmem-server) that some
//! tests talk to.
//!
//! The README's test command must pass on a fresh machine without them, so a test that needs a
//! peer asks [`python`] (or [`require`]) first: when the peer is missing it prints one line saying
//! what was skipped and how to run it, and the test returns early. `.ci/run` installs the peers
//! and sets `LOGSHIP_REQUIRE_PEERS=1`, which turns a missing peer into a test failure.
//!
//! | variable | meaning |
//! |---|---|
//! | `LOGSHIP_PYTHON` | a `python3` whose environment has the official clients (`fluent-logger`, `msgpack`, `azure-kusto-data`, `azure-kusto-ingest`, `elasticsearch`) |
//! | `LOGSHIP_REQUIRE_PEERS` | `1`: a missing peer fails the test instead of skipping it |

use std::path::PathBuf;

/// Whether missing peers must fail tests (`LOGSHIP_REQUIRE_PEERS=1`, set by `.ci/run`).
pub fn required() -> bool {
    std::env::var("LOGSHIP_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Reports a missing peer: panics when peers are [`required`], otherwise prints a skip line
/// (to stderr, shown by `cargo test -- --nocapture` and in the test summary of `.ci/run`).
pub fn missing(test: &str, what: &str) {
    let line = format!(
        "SKIPPED {test}: {what} not available; run `bash .ci/run` or set LOGSHIP_PYTHON (see README)"
    );
    if required() {
        panic!("{line} (LOGSHIP_REQUIRE_PEERS=1)");
    }
    eprintln!("{line}");
}

/// The python interpreter named by `LOGSHIP_PYTHON`, if it exists; otherwise reports the
/// test as skipped via [`missing`] and returns `None`.
pub fn python(test: &str) -> Option<PathBuf> {
    match std::env::var_os("LOGSHIP_PYTHON").map(PathBuf::from) {
        Some(p) if p.exists() => Some(p),
        _ => {
            missing(test, "LOGSHIP_PYTHON (a python3 with the official clients)");
            None
        }
    }
}

/// Looks `program` up on `PATH`; reports the test as skipped via [`missing`] when absent.
pub fn require(test: &str, program: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        missing(test, program);
    }
    found
}
