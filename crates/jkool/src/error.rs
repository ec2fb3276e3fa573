//! Errors of the document model.

/// Why a record could not become a jKool document. The sinks report such a record as
/// rejected (it goes to the undelivered path) without failing the rest of its batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded document is larger than the configured limit.
    #[error("encoded jkool document is {size} bytes, above the limit of {limit} bytes")]
    TooLarge {
        /// Size of the encoded document, in bytes.
        size: usize,
        /// The limit ([`Encoder::with_max_document_bytes`](crate::Encoder::with_max_document_bytes)), in bytes.
        limit: usize,
    },
}
