//! [`gzip`]: the one gzip encoder of every backend (request bodies, Fluent's
//! CompressedPackedForward entries, Kusto's streaming-ingestion bodies).

use std::io::Write as _;

/// `data` as one gzip member (RFC 1952) at `level` (0–9; 1 is the fastest and, on log text
/// and JSON, already shrinks it several times). Writing into memory cannot fail, so neither
/// can this.
pub fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::new(level.min(9)),
    );
    // A Vec writer never fails.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    #[test]
    fn round_trips() {
        let data = b"hello hello hello hello".repeat(100);
        let gz = super::gzip(&data, 1);
        assert!(gz.len() < data.len());
        let mut back = Vec::new();
        let r = flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back);
        assert!(r.is_ok());
        assert_eq!(back, data);
    }
}
