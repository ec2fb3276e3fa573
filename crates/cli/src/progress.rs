//! Progress of `logship send -` and `logship replay` on a terminal: records submitted, their
//! rate, and what the backends report delivered and failed so far, drawn on standard error
//! with [`indicatif`](https://docs.rs/indicatif).
//!
//! Only when standard error is a terminal ([`std::io::IsTerminal`]): piped or redirected (a
//! script, CI, a log file) nothing extra is written, so the output stays the final report
//! lines alone — as `git`, `cargo` and `curl` do.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the backends' counters are read (every this many records): a `Stats` snapshot
/// is cheap, but not free.
const STATS_EVERY: u64 = 512;

/// A progress display that is nothing at all when standard error is not a terminal.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    submitted: u64,
}

impl Progress {
    /// Progress of `verb` (e.g. "sending"), with `total` records when known in advance.
    pub(crate) fn new(verb: &'static str, total: Option<u64>) -> Self {
        Self::for_terminal(std::io::stderr().is_terminal(), verb, total)
    }

    /// No progress display (a single message).
    pub(crate) fn off() -> Self {
        Self {
            bar: None,
            submitted: 0,
        }
    }

    /// As [`new`](Self::new), with the terminal test's answer given.
    fn for_terminal(terminal: bool, verb: &'static str, total: Option<u64>) -> Self {
        let bar = terminal.then(|| {
            let template = match total {
                Some(_) => "{prefix} {wide_bar} {pos}/{len} records ({per_sec}, {elapsed}) {msg}",
                None => "{prefix} {spinner} {pos} records ({per_sec}, {elapsed}) {msg}",
            };
            let style = ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr())
                .with_style(style)
                .with_prefix(verb);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self { bar, submitted: 0 }
    }

    /// One more record submitted; every [`STATS_EVERY`] records, `counts` is asked for
    /// (delivered, failed) so far.
    pub(crate) fn record(&mut self, counts: impl FnOnce() -> (u64, u64)) {
        self.submitted += 1;
        if let Some(bar) = &self.bar {
            bar.inc(1);
            if self.submitted.is_multiple_of(STATS_EVERY) {
                Self::show(bar, counts());
            }
        }
    }

    /// Shows (delivered, failed) now (after a flush, say).
    pub(crate) fn counts(&self, counts: impl FnOnce() -> (u64, u64)) {
        if let Some(bar) = &self.bar {
            Self::show(bar, counts());
        }
    }

    fn show(bar: &ProgressBar, (delivered, failed): (u64, u64)) {
        bar.set_message(format!("delivered {delivered}, failed {failed}"));
    }

    /// Prints a line on standard error without breaking the bar.
    pub(crate) fn eprintln(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Removes the bar (the final report follows).
    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Progress;

    #[test]
    fn no_bar_without_a_terminal_and_one_with() {
        let mut quiet = Progress::for_terminal(false, "sending", Some(10));
        assert!(quiet.bar.is_none());
        quiet.record(|| unreachable!("no counts are read without a terminal"));
        quiet.finish();

        let mut shown = Progress::for_terminal(true, "replaying", None);
        assert!(shown.bar.is_some());
        for _ in 0..3 {
            shown.record(|| (0, 0));
        }
        assert_eq!(shown.bar.as_ref().map(|b| b.position()), Some(3));
        shown.finish();
    }
}
