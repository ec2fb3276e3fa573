//! [`Fates`]: folding what a backend learnt about each record of a batch into one [`Outcome`].
//!
//! A send often ends in several answers: one per request when a batch is split by size, one per
//! bulk item, one per MQTT publish. Each answer is a [`Verdict`] for some records; [`Fates`]
//! keeps the worst verdict per record (rejected beats retry beats delivered) and
//! [`Fates::outcome`] turns the lot into the [`Outcome`] the worker expects:
//!
//! | per-record fates | outcome |
//! |---|---|
//! | all delivered | [`Outcome::Delivered`] |
//! | all retry | [`Outcome::Retry`] with the first retry reason and the longest server delay |
//! | all rejected for one reason | [`Outcome::Rejected`] |
//! | anything else | [`Outcome::Partial`] |
//!
//! ```
//! use logship_core::fates::{Fates, Verdict};
//! use logship_core::Outcome;
//!
//! let mut f = Fates::new(3);
//! f.apply(0..2, &Verdict::Delivered);
//! f.apply([2], &Verdict::retry("http 503"));
//! assert!(matches!(f.outcome(), Outcome::Partial { retry, .. } if retry == vec![2]));
//! ```

use std::time::Duration;

use crate::Outcome;

/// What one answer (a request's status, a bulk item, a PUBACK) means for the records it
/// covers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Delivered (accepted, acknowledged).
    Delivered,
    /// Not delivered; trying again may succeed. `after` is a server-given delay.
    Retry {
        /// Server-requested delay (Retry-After), if any.
        after: Option<Duration>,
        /// What went wrong.
        reason: String,
    },
    /// Refused for good: retrying cannot help.
    Rejected {
        /// Why.
        reason: String,
    },
}

impl Verdict {
    /// A retry without a server-given delay.
    pub fn retry(reason: impl Into<String>) -> Self {
        Self::Retry {
            after: None,
            reason: reason.into(),
        }
    }
    /// A permanent refusal.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self::Rejected {
            reason: reason.into(),
        }
    }
    /// The reason, empty for [`Verdict::Delivered`].
    pub fn reason(&self) -> &str {
        match self {
            Self::Delivered => "",
            Self::Retry { reason, .. } | Self::Rejected { reason } => reason,
        }
    }
}

impl From<Verdict> for Outcome {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Delivered => Outcome::Delivered,
            Verdict::Retry { after, reason } => Outcome::Retry { after, reason },
            Verdict::Rejected { reason } => Outcome::Rejected { reason },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fate {
    Delivered,
    Retry,
    Rejected(String),
}

/// Per-record fates of one send; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Fates {
    fate: Vec<Fate>,
    after: Option<Duration>,
    retry_reason: Option<String>,
}

impl Fates {
    /// `n` records, all delivered until told otherwise.
    pub fn new(n: usize) -> Self {
        Self {
            fate: vec![Fate::Delivered; n],
            after: None,
            retry_reason: None,
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.fate.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.fate.is_empty()
    }

    /// Applies `verdict` to the records at `indices` (indices into the batch; out-of-range
    /// ones are ignored), keeping the worse fate of each record.
    pub fn apply(&mut self, indices: impl IntoIterator<Item = usize>, verdict: &Verdict) {
        match verdict {
            Verdict::Delivered => {}
            Verdict::Retry { after, reason } => {
                let mut any = false;
                for i in indices {
                    if let Some(f) = self.fate.get_mut(i) {
                        any = true;
                        if *f == Fate::Delivered {
                            *f = Fate::Retry;
                        }
                    }
                }
                if any {
                    self.after = self.after.max(*after);
                    if self.retry_reason.is_none() {
                        self.retry_reason = Some(reason.clone());
                    }
                }
            }
            Verdict::Rejected { reason } => {
                for i in indices {
                    if let Some(f) = self.fate.get_mut(i)
                        && !matches!(f, Fate::Rejected(_))
                    {
                        *f = Fate::Rejected(reason.clone());
                    }
                }
            }
        }
    }

    /// Marks one record rejected (a record that could not be encoded).
    pub fn reject(&mut self, index: usize, reason: impl Into<String>) {
        self.apply([index], &Verdict::rejected(reason));
    }

    /// Whether any record is not (yet) delivered.
    pub fn any_undelivered(&self) -> bool {
        self.fate.iter().any(|f| *f != Fate::Delivered)
    }

    /// The outcome of the send (see the table in the [module docs](self)).
    pub fn outcome(self) -> Outcome {
        let n = self.fate.len();
        let mut retry = Vec::new();
        let mut rejected = Vec::new();
        for (i, f) in self.fate.into_iter().enumerate() {
            match f {
                Fate::Delivered => {}
                Fate::Retry => retry.push(i),
                Fate::Rejected(r) => rejected.push((i, r)),
            }
        }
        if retry.is_empty() && rejected.is_empty() {
            Outcome::Delivered
        } else if retry.len() == n {
            Outcome::Retry {
                after: self.after,
                reason: self
                    .retry_reason
                    .unwrap_or_else(|| "not delivered".to_string()),
            }
        } else if rejected.len() == n && rejected.iter().all(|(_, r)| *r == rejected[0].1) {
            Outcome::Rejected {
                reason: rejected.swap_remove(0).1,
            }
        } else {
            Outcome::Partial {
                reason: if retry.is_empty() {
                    String::new()
                } else {
                    self.retry_reason.unwrap_or_default()
                },
                retry,
                rejected,
                after: self.after,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_fate_wins_per_record() {
        let retry = || Verdict::Retry {
            after: Some(Duration::from_secs(2)),
            reason: "http 503".into(),
        };
        let mut f = Fates::new(3);
        f.apply([0, 1], &Verdict::Delivered);
        f.apply([1, 2], &Verdict::Delivered);
        assert_eq!(f.clone().outcome(), Outcome::Delivered);
        f.apply([1, 2], &retry());
        f.apply([0, 1], &retry());
        assert_eq!(
            f.clone().outcome(),
            Outcome::Retry {
                after: Some(Duration::from_secs(2)),
                reason: "http 503".into()
            }
        );
        let mut g = Fates::new(3);
        g.apply([0, 1], &Verdict::rejected("http 400"));
        g.apply([1, 2], &retry());
        assert_eq!(
            g.outcome(),
            Outcome::Partial {
                retry: vec![2],
                rejected: vec![(0, "http 400".into()), (1, "http 400".into())],
                after: Some(Duration::from_secs(2)),
                reason: "http 503".into(),
            }
        );
        let mut h = Fates::new(2);
        h.apply(0..2, &Verdict::rejected("bad"));
        h.apply([7], &retry());
        assert_eq!(h.outcome(), Outcome::rejected("bad"));
        let mut k = Fates::new(2);
        k.reject(0, "a");
        k.reject(1, "b");
        assert!(matches!(k.outcome(), Outcome::Partial { rejected, .. } if rejected.len() == 2));
    }
}
