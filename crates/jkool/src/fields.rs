//! Field names that become top-level jKool keys instead of `properties`.
//!
//! The original Python library's `logEvent(logger, msg_text, source_fqn, tracking_id=…,
//! time_usec=…, corr_id=…, …)` took these as keyword arguments and sent each one as its own
//! key (`_` replaced by `-`). A `tracing` event carries them as fields of the same names:
//!
//! ```
//! tracing::warn!(time_usec = 1_466_662_761_000_000_u64, comp_code = "WARNING",
//!     msg_tag = "billing", mime_type = "text/plain", "card retried");
//! ```
//!
//! The table below is [`EVENT_FIELDS`]; the crate docs give the accepted types. A field
//! whose value does not have the expected type (or range) stays a plain property, under its
//! own name, so nothing the caller wrote is lost. Fields interpreted by `logship-core`
//! (`source_fqn`, `correlator`, `tracking_id`, `location`, `snapshot…`) are in
//! `logship_core::fields`; `operation`, `resource`, `user`, `reason_code` are
//! [`SLOT_FIELDS`](crate::SLOT_FIELDS) and apply to activities too.

/// `time_usec`: the event's time, µs since the Unix epoch (`time-usec`).
pub const TIME_USEC: &str = "time_usec";
/// `start_time_usec`: when the operation began, µs since the epoch (`start-time-usec`).
pub const START_TIME_USEC: &str = "start_time_usec";
/// `end_time_usec`: when the operation ended, µs since the epoch (`end-time-usec`).
pub const END_TIME_USEC: &str = "end_time_usec";
/// `elapsed_time_usec`: how long the operation took, µs (`elapsed-time-usec`).
pub const ELAPSED_TIME_USEC: &str = "elapsed_time_usec";
/// `wait_time_usec`: how long the operation waited, µs (`wait-time-usec`).
pub const WAIT_TIME_USEC: &str = "wait_time_usec";
/// `wait_time_used`: the original's spelling of [`WAIT_TIME_USEC`] (same key, `wait-time-usec`).
pub const WAIT_TIME_USED: &str = "wait_time_used";
/// `severity`: one of jKool's severities (`NONE` … `HALT`, any case) or a Python `logging`
/// level number (10, 20, 30, 40, 50), overriding the one derived from the `tracing` level.
pub const SEVERITY: &str = "severity";
/// `comp_code`: `SUCCESS`, `WARNING` or `ERROR` (any case), overriding the derived one.
pub const COMP_CODE: &str = "comp_code";
/// `msg_text`: the message text, overriding the event's formatted message (`msg-text`).
pub const MSG_TEXT: &str = "msg_text";
/// `msg_tag`: a search label for the message (`msg-tag`).
pub const MSG_TAG: &str = "msg_tag";
/// `msg_size`: the message size, bytes (`msg-size`).
pub const MSG_SIZE: &str = "msg_size";
/// `msg_age`: how long the message waited to be processed, µs (`msg-age`).
pub const MSG_AGE: &str = "msg_age";
/// `encoding`: the message encoding (`encoding`).
pub const ENCODING: &str = "encoding";
/// `charset`: the message character set (`charset`).
pub const CHARSET: &str = "charset";
/// `mime_type`: the message MIME type (`mime-type`).
pub const MIME_TYPE: &str = "mime_type";
/// `source_url`: the URL that sourced the event (`source-url`).
pub const SOURCE_URL: &str = "source_url";
/// `exception`: the failure text (`exception`), taking precedence over an error value.
pub const EXCEPTION: &str = "exception";
/// `pid`: a process id, overriding this process's (`pid`).
pub const PID: &str = "pid";
/// `tid`: a thread id, overriding logship's thread number (`tid`).
pub const TID: &str = "tid";
/// `parent_tracking_id`: the parent's tracking id (`parent-id`), overriding the enclosing span's.
pub const PARENT_TRACKING_ID: &str = "parent_tracking_id";
/// `corr_id`: one more correlator, added to the record's `corrid` array.
pub const CORR_ID: &str = "corr_id";

/// Every field of an EVENT that becomes a top-level key: (field name, jKool key).
pub const EVENT_FIELDS: [(&str, &str); 21] = [
    (TIME_USEC, "time-usec"),
    (START_TIME_USEC, "start-time-usec"),
    (END_TIME_USEC, "end-time-usec"),
    (ELAPSED_TIME_USEC, "elapsed-time-usec"),
    (WAIT_TIME_USEC, "wait-time-usec"),
    (WAIT_TIME_USED, "wait-time-usec"),
    (SEVERITY, "severity"),
    (COMP_CODE, "comp-code"),
    (MSG_TEXT, "msg-text"),
    (MSG_TAG, "msg-tag"),
    (MSG_SIZE, "msg-size"),
    (MSG_AGE, "msg-age"),
    (ENCODING, "encoding"),
    (CHARSET, "charset"),
    (MIME_TYPE, "mime-type"),
    (SOURCE_URL, "source-url"),
    (EXCEPTION, "exception"),
    (PID, "pid"),
    (TID, "tid"),
    (PARENT_TRACKING_ID, "parent-id"),
    (CORR_ID, "corrid"),
];
