use std::io::Write;

use crate::sink::{Batch, Outcome, SendContext, Sink};

/// Writes each record as one line of JSON (the [`json`](crate::json) form) to any writer:
/// standard output, a file. For local debugging; write errors are retryable.
///
/// ```
/// use logship_core::{PipelineBuilder, sinks::JsonLinesSink};
/// let (layer, guard) = PipelineBuilder::new().build(JsonLinesSink::stdout())?;
/// # drop(layer); drop(guard);
/// # Ok::<(), logship_core::ConfigError>(())
/// ```
pub struct JsonLinesSink {
    out: Box<dyn Write + Send>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for JsonLinesSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesSink").finish_non_exhaustive()
    }
}

impl JsonLinesSink {
    /// Writes to `out`.
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self {
            out: Box::new(out),
            buf: Vec::new(),
        }
    }
    /// Writes to standard output.
    pub fn stdout() -> Self {
        Self::new(std::io::stdout())
    }
}

impl Sink for JsonLinesSink {
    fn name(&self) -> &'static str {
        "json-lines"
    }

    async fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> Outcome {
        self.buf.clear();
        for r in batch.records() {
            self.buf
                .extend_from_slice(crate::json::record_line(r, None).as_bytes());
        }
        match self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush())
        {
            Ok(()) => {
                cx.record_bytes_sent(self.buf.len() as u64);
                Outcome::Delivered
            }
            Err(e) => Outcome::retry(format!("write failed: {e}")),
        }
    }
}
