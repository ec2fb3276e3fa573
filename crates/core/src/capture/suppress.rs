//! Feedback-loop suppression.
//!
//! Every logship worker thread (and every thread its runtime starts) is marked
//! *suppressed*: events and spans created on it are ignored by all logship layers, in
//! `on_event`/`on_new_span`, never in `enabled` (so other layers, such as a console `fmt` layer,
//! still see them). This keeps what the exporters' dependencies (reqwest, hyper, h2, rustls,
//! rumqttc, tokio) emit from being shipped by the very pipeline that is shipping, which would
//! otherwise loop. Suppressed events are not application events, so they are not counted as
//! drops.

use std::cell::Cell;

thread_local! {
    static SUPPRESSED: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is suppressed (a logship worker, or inside [`suppressed`]).
pub fn is_suppressed() -> bool {
    SUPPRESSED.try_with(Cell::get).unwrap_or(true)
}

/// Marks the current thread suppressed for the rest of its life (used on worker threads).
pub(crate) fn suppress_current_thread() {
    let _ = SUPPRESSED.try_with(|s| s.set(true));
}

/// Runs `f` with the current thread suppressed: nothing it emits reaches a logship layer.
///
/// For an application's own exporter-like code (for example a health check that talks to the
/// same backend).
pub fn suppressed<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            let prev = self.0;
            let _ = SUPPRESSED.try_with(|s| s.set(prev));
        }
    }
    let prev = SUPPRESSED.try_with(|s| s.replace(true)).unwrap_or(true);
    let _reset = Reset(prev);
    f()
}
