//! gzip of request bodies.

use std::io::Write as _;

/// Gzips `body` (level 6); `None` if that fails (it cannot, writing to memory).
pub(crate) fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 3),
        flate2::Compression::new(6),
    );
    encoder.write_all(body).and_then(|()| encoder.finish()).ok()
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    #[test]
    fn gzip_round_trips() {
        let body = b"{\"a\":1}".repeat(100);
        let packed = super::gzip(&body).unwrap();
        assert!(packed.len() < body.len());
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(&packed[..]).read_to_end(&mut unpacked).unwrap();
        assert_eq!(unpacked, body);
    }
}
