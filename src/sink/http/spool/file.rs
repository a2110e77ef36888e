//! The spool's file format: a versioned, checksummed header, the sink's metadata, a manifest of
//! the metric points carried, and the body (see [`SpoolOptions`](super::SpoolOptions)).

use super::Owner;
use crate::stats::Carried;

/// One payload as spooled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    /// The sink's payload kind.
    pub(crate) kind: u8,
    /// The body's compression (0 none, 1 deflate, 2 gzip).
    pub(crate) compression: u8,
    /// Records the payload stands for.
    pub(crate) items: u64,
    /// The sink's metadata.
    pub(crate) meta: Vec<u8>,
    /// The metric points carried.
    pub(crate) points: Vec<Carried>,
    /// The body.
    pub(crate) body: Vec<u8>,
}

pub(super) const MAGIC: &[u8; 8] = b"TALLYSPL";
pub(super) const VERSION: u16 = 1;
pub(super) const HEADER: usize = 56;

/// FNV-1a, 64 bits: cheap, and enough to tell a damaged file from a whole one.
fn checksum(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

pub(super) fn encode(record: &Record, owner: Owner, created: u64) -> Vec<u8> {
    let mut manifest = Vec::new();
    put_u32(&mut manifest, record.points.len());
    for point in &record.points {
        put_bytes(&mut manifest, point.name().as_bytes());
        manifest.extend_from_slice(&point.values().to_le_bytes());
    }
    let mut out =
        Vec::with_capacity(HEADER + record.meta.len() + manifest.len() + record.body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&[owner as u8, record.kind, record.compression, 0, 0, 0]);
    out.extend_from_slice(&created.to_le_bytes());
    out.extend_from_slice(&record.items.to_le_bytes());
    put_u32(&mut out, record.meta.len());
    put_u32(&mut out, manifest.len());
    out.extend_from_slice(&(record.body.len() as u64).to_le_bytes());
    let sum = checksum(&[&out, &record.meta, &manifest, &record.body]);
    out.extend_from_slice(&sum.to_le_bytes());
    out.extend_from_slice(&record.meta);
    out.extend_from_slice(&manifest);
    out.extend_from_slice(&record.body);
    out
}

/// Why a file cannot be read back.
pub(super) fn decode(bytes: &[u8], owner: Owner) -> Result<Record, &'static str> {
    let mut header = Reader::new(bytes);
    let truncated = "truncated";
    if header.take(8) != Some(MAGIC.as_slice()) {
        return Err(if bytes.len() < MAGIC.len() { truncated } else { "not a spool file" });
    }
    if header.u16().ok_or(truncated)? != VERSION {
        return Err("unknown format version");
    }
    if header.u8().ok_or(truncated)? != owner as u8 {
        return Err("written by another sink");
    }
    let kind = header.u8().ok_or(truncated)?;
    let compression = header.u8().ok_or(truncated)?;
    header.take(3).ok_or(truncated)?;
    let _created = header.u64().ok_or(truncated)?;
    let items = header.u64().ok_or(truncated)?;
    let meta_len = header.u32().ok_or(truncated)?;
    let manifest_len = header.u32().ok_or(truncated)?;
    let body_len = header.u64().ok_or(truncated)?;
    let sum = header.u64().ok_or(truncated)?;
    let expected = (HEADER as u64)
        .saturating_add(meta_len as u64)
        .saturating_add(manifest_len as u64)
        .saturating_add(body_len);
    match (bytes.len() as u64).cmp(&expected) {
        std::cmp::Ordering::Less => return Err(truncated),
        std::cmp::Ordering::Greater => return Err("trailing bytes"),
        std::cmp::Ordering::Equal => {}
    }
    let meta = header.take(meta_len).ok_or(truncated)?;
    let manifest = header.take(manifest_len).ok_or(truncated)?;
    let body = header.rest();
    let fixed = bytes.get(..48).ok_or(truncated)?;
    if checksum(&[fixed, meta, manifest, body]) != sum {
        return Err("checksum mismatch");
    }
    let mut reader = Reader::new(manifest);
    let count = reader.u32().ok_or("bad manifest")?;
    let mut points = Vec::with_capacity(count.min(manifest_len / 12));
    for _ in 0..count {
        let name = reader.str().ok_or("bad manifest")?;
        let values = reader.f64().ok_or("bad manifest")?;
        points.push(Carried::named(name, values));
    }
    if !reader.rest().is_empty() {
        return Err("bad manifest");
    }
    Ok(Record { kind, compression, items, meta: meta.to_vec(), points, body: body.to_vec() })
}

/// Appends a length as 4 bytes (saturating: the lengths written are far below 4 GiB).
pub(crate) fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

/// Appends bytes after their length.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Reads what [`put_u32`], [`put_bytes`] and `to_le_bytes` wrote; `None` past the end.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    pub(crate) fn take(&mut self, n: impl TryInto<usize>) -> Option<&'a [u8]> {
        let n = n.try_into().ok()?;
        let (head, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    /// A length written by [`put_u32`].
    pub(crate) fn u32(&mut self) -> Option<usize> {
        self.array().map(u32::from_le_bytes).and_then(|n| usize::try_from(n).ok())
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    #[cfg_attr(not(feature = "datadog"), allow(dead_code))]
    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_le_bytes)
    }

    pub(crate) fn f64(&mut self) -> Option<f64> {
        self.array().map(f64::from_le_bytes)
    }

    /// Bytes written by [`put_bytes`].
    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()?;
        self.take(n)
    }

    /// Text written by [`put_bytes`].
    pub(crate) fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}
