//! Payloads: encoded items packed into request bodies under the intake's limits, compressed.
//!
//! The encoders produce [`Items`]: JSON values (one series, one distribution series or one
//! event each) back to back, each with its timestamp. [`chunk`] packs them into [`Payload`]s:
//!
//! * at most 1,000 items per body (the serverless tooling's batch size);
//! * at most 90% of the intake's limits: 4,718,592 bytes before compression (of 5,242,880) and
//!   460,800 bytes after (of 512,000), the v2 series limits, also applied to distribution
//!   points (whose own limits are larger);
//! * greedily by count and raw size, then compressed; a body that compresses above its limit is
//!   split in half (recursively). A single item over a limit is dropped (`too_large`).
//!
//! A payload keeps only its compressed body plus, per item, its range in the uncompressed body
//! and its timestamp. That is enough to split it again after a 413, or to drop items that aged
//! out of the intake's window while it waited for a retry, by decompressing it (rare) instead of
//! keeping both forms in memory.

use std::io::{Read, Write};
use std::ops::Range;

use super::losses::{DropCause, Losses};
use super::options::{Compression, DatadogOptions};
use super::window::{Fit, Window};
use crate::batch::Batch;
use crate::sink::http::spool::{self, Record};
use crate::stats::Carried;

/// Upper bound of what the intake takes per request (v2 series: 512,000 compressed, 5,242,880
/// uncompressed), with the 10% margin applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Items per body.
    pub(crate) max_items: usize,
    /// Bytes of the uncompressed body.
    pub(crate) max_raw: usize,
    /// Bytes of the body as sent.
    pub(crate) max_body: usize,
}

/// What a payload holds, which decides where it goes and how it is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Counters, gauges, sets and histogram aggregates: `POST /api/v2/series`.
    Series,
    /// Distribution points: `POST /api/v1/distribution_points`.
    Distribution,
    /// One event: `POST /api/v1/events`.
    Event,
}

impl Kind {
    /// The request path, appended to the base URL.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Kind::Series => "/api/v2/series",
            Kind::Distribution => "/api/v1/distribution_points",
            Kind::Event => "/api/v1/events",
        }
    }

    /// A short name for diagnostics.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Series => "series",
            Kind::Distribution => "distribution points",
            Kind::Event => "event",
        }
    }

    fn prefix(self) -> &'static [u8] {
        match self {
            Kind::Series | Kind::Distribution => br#"{"series":["#,
            Kind::Event => b"",
        }
    }

    fn suffix(self) -> &'static [u8] {
        match self {
            Kind::Series | Kind::Distribution => b"]}",
            Kind::Event => b"",
        }
    }

    /// The limits of one body.
    pub(crate) fn limits(self) -> Limits {
        match self {
            Kind::Series | Kind::Distribution => {
                Limits { max_items: 1000, max_raw: 5_242_880 / 10 * 9, max_body: 512_000 / 10 * 9 }
            }
            // Text is at most 4,000 characters; the rest is small.
            Kind::Event => Limits { max_items: 1, max_raw: 64 * 1024, max_body: 64 * 1024 },
        }
    }

    /// The compression used for this kind when `preferred` is configured: distribution points
    /// accept only deflate, and events are small and sent as they are.
    pub(crate) fn compression(self, preferred: Compression) -> Compression {
        match (self, preferred) {
            (Kind::Series, preferred) => preferred,
            (Kind::Distribution, Compression::None) => Compression::None,
            (Kind::Distribution, _) => Compression::Deflate,
            (Kind::Event, _) => Compression::None,
        }
    }

    /// Whether sending this twice is harmless: a series point sent again overwrites itself,
    /// distribution values and events would be counted twice.
    pub(crate) fn idempotent(self) -> bool {
        self == Kind::Series
    }

    /// The intake's time window for this kind at `now`.
    pub(crate) fn window(self, now: std::time::SystemTime) -> Window {
        match self {
            Kind::Series | Kind::Distribution => Window::metrics(now),
            Kind::Event => Window::events(now),
        }
    }
}

/// An item's place: a byte range and its timestamp, and the metric point it stands for (for
/// the per-metric loss ledger; events and a record's extra aggregate series carry none).
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    start: usize,
    end: usize,
    timestamp: i64,
    carried: Option<Carried>,
}

/// What an encoder reads: a batch, the options, the intake's window for its payload kind, and
/// where to book what it leaves out.
#[derive(Clone, Copy)]
pub(crate) struct Input<'a> {
    pub(crate) batch: &'a Batch,
    pub(crate) options: &'a DatadogOptions,
    pub(crate) window: &'a Window,
    pub(crate) losses: &'a Losses,
}

/// Encoded JSON items, back to back.
#[derive(Debug, Default)]
pub(crate) struct Items {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
}

impl Items {
    /// Appends the item `write` produces, standing for `carried`; an item of zero bytes is
    /// not kept.
    pub(crate) fn push(
        &mut self,
        timestamp: i64,
        carried: Option<Carried>,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let start = self.bytes.len();
        write(&mut self.bytes);
        let end = self.bytes.len();
        if end > start {
            self.entries.push(Entry { start, end, timestamp, carried });
        }
    }

    /// How many items there are.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is none.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `i`th item and its timestamp.
    pub(crate) fn get(&self, i: usize) -> Option<(&[u8], i64)> {
        let entry = self.entries.get(i)?;
        Some((self.bytes.get(entry.start..entry.end)?, entry.timestamp))
    }

    /// The metric point the `i`th item stands for.
    fn carried(&self, i: usize) -> Option<Carried> {
        self.entries.get(i)?.carried.clone()
    }

    /// Counts the `i`th item as lost to `loss`.
    fn lose(&self, i: usize, loss: DropCause, losses: &Losses) {
        let carried = self.entries.get(i).and_then(|e| e.carried.as_ref());
        losses.record_items(loss, 1, carried);
    }
}

/// A request body ready to send.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Payload {
    pub(crate) kind: Kind,
    /// How `body` is compressed.
    pub(crate) compression: Compression,
    /// The body as sent.
    pub(crate) body: Vec<u8>,
    /// Each item's range in the uncompressed body.
    entries: Vec<Entry>,
}

impl Payload {
    /// Items in the payload.
    pub(crate) fn items(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Memory held, for the retry buffer's bound.
    pub(crate) fn size(&self) -> usize {
        self.body.len() + self.entries.len() * std::mem::size_of::<Entry>()
    }

    /// Counts every item as lost to `loss`.
    pub(crate) fn lose(&self, loss: DropCause, losses: &Losses) {
        let carried = self.entries.iter().filter_map(|e| e.carried.as_ref());
        losses.record_items(loss, self.items(), carried);
    }

    /// The items again (decompressing the body).
    fn unpack(&self) -> std::io::Result<Items> {
        let raw = decompress(&self.body, self.compression)?;
        let mut items = Items::default();
        for entry in &self.entries {
            let bytes = raw.get(entry.start..entry.end).ok_or(std::io::ErrorKind::InvalidData)?;
            items.push(entry.timestamp, entry.carried.clone(), |out| out.extend_from_slice(bytes));
        }
        Ok(items)
    }

    /// Splits the payload in two halves by item (after a 413). A payload of one item (or one
    /// that cannot be decompressed, which cannot happen) comes back as `Err`.
    pub(crate) fn split(self) -> Result<(Payload, Payload), Payload> {
        if self.entries.len() < 2 {
            return Err(self);
        }
        let Ok(items) = self.unpack() else { return Err(self) };
        let middle = items.len() / 2;
        Ok((
            pack(self.kind, self.compression, &items, 0..middle),
            pack(self.kind, self.compression, &items, middle..items.len()),
        ))
    }

    /// Keeps only the items still inside `window`, counting the others. `None` when nothing
    /// is left.
    pub(crate) fn retain(self, window: &Window, losses: &Losses) -> Option<Payload> {
        if self.entries.iter().all(|e| window.fit(e.timestamp) == Fit::Inside) {
            return Some(self);
        }
        let Ok(items) = self.unpack() else { return Some(self) };
        let mut kept = Items::default();
        for i in 0..items.len() {
            let Some((bytes, timestamp)) = items.get(i) else { continue };
            match window.fit(timestamp) {
                Fit::Inside => {
                    kept.push(timestamp, items.carried(i), |out| out.extend_from_slice(bytes));
                }
                Fit::Stale => items.lose(i, DropCause::Stale, losses),
                Fit::Future => items.lose(i, DropCause::Future, losses),
            }
        }
        (!kept.is_empty()).then(|| pack(self.kind, self.compression, &kept, 0..kept.len()))
    }
}

// === spooling ===

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Series => 0,
            Kind::Distribution => 1,
            Kind::Event => 2,
        }
    }

    fn from_code(code: u8) -> Option<Kind> {
        [Kind::Series, Kind::Distribution, Kind::Event].into_iter().find(|k| k.code() == code)
    }
}

fn compression_code(compression: Compression) -> u8 {
    match compression {
        Compression::None => 0,
        Compression::Deflate => 1,
        Compression::Gzip => 2,
    }
}

fn compression_from_code(code: u8) -> Option<Compression> {
    [Compression::None, Compression::Deflate, Compression::Gzip]
        .into_iter()
        .find(|c| compression_code(*c) == code)
}

/// Marks an entry that carries no metric point.
const NO_POINT: usize = u32::MAX as usize;

impl Payload {
    /// The payload as a spool record: the metadata lists each item's range, timestamp and the
    /// index of its metric point in the manifest.
    pub(crate) fn to_record(&self) -> Record {
        let mut meta = Vec::with_capacity(4 + self.entries.len() * 28);
        let mut points = Vec::new();
        spool::put_u32(&mut meta, self.entries.len());
        for entry in &self.entries {
            meta.extend_from_slice(&(entry.start as u64).to_le_bytes());
            meta.extend_from_slice(&(entry.end as u64).to_le_bytes());
            meta.extend_from_slice(&entry.timestamp.to_le_bytes());
            match &entry.carried {
                Some(carried) => {
                    spool::put_u32(&mut meta, points.len());
                    points.push(carried.clone());
                }
                None => spool::put_u32(&mut meta, NO_POINT),
            }
        }
        Record {
            kind: self.kind.code(),
            compression: compression_code(self.compression),
            items: self.items(),
            meta,
            points,
            body: self.body.clone(),
        }
    }

    /// The payload a spool record holds; `None` when the record does not make sense.
    pub(crate) fn from_record(record: Record) -> Option<Payload> {
        let kind = Kind::from_code(record.kind)?;
        let compression = compression_from_code(record.compression)?;
        let mut meta = spool::Reader::new(&record.meta);
        let count = meta.u32()?;
        let mut entries = Vec::with_capacity(count.min(record.meta.len() / 28));
        for _ in 0..count {
            let start = usize::try_from(meta.u64()?).ok()?;
            let end = usize::try_from(meta.u64()?).ok()?;
            let timestamp = meta.i64()?;
            let carried = match meta.u32()? {
                NO_POINT => None,
                i => Some(record.points.get(i)?.clone()),
            };
            if start > end {
                return None;
            }
            entries.push(Entry { start, end, timestamp, carried });
        }
        if !meta.rest().is_empty() || count as u64 != record.items {
            return None;
        }
        Some(Payload { kind, compression, body: record.body, entries })
    }
}

/// Packs `items[range]` into one payload, without checking limits.
pub(crate) fn pack(
    kind: Kind,
    compression: Compression,
    items: &Items,
    range: Range<usize>,
) -> Payload {
    let mut raw = Vec::new();
    raw.extend_from_slice(kind.prefix());
    let mut entries = Vec::with_capacity(range.len());
    for i in range {
        let Some((bytes, timestamp)) = items.get(i) else { continue };
        if !entries.is_empty() {
            raw.push(b',');
        }
        let start = raw.len();
        raw.extend_from_slice(bytes);
        entries.push(Entry { start, end: raw.len(), timestamp, carried: items.carried(i) });
    }
    raw.extend_from_slice(kind.suffix());
    let (body, compression) = compress(raw, compression);
    Payload { kind, compression, body, entries }
}

/// Packs every item into payloads under `limits` (see the module docs); items that cannot fit
/// are counted as `too_large`.
pub(crate) fn chunk(
    kind: Kind,
    compression: Compression,
    items: &Items,
    limits: &Limits,
    losses: &Losses,
) -> Vec<Payload> {
    let framing = kind.prefix().len() + kind.suffix().len();
    let mut payloads = Vec::new();
    let mut start = 0;
    let mut raw = framing;
    for i in 0..items.len() {
        let len = items.get(i).map_or(0, |(bytes, _)| bytes.len());
        let count = i - start;
        if framing + len > limits.max_raw {
            emit(kind, compression, items, start..i, limits, losses, &mut payloads);
            items.lose(i, DropCause::TooLarge, losses);
            start = i + 1;
            raw = framing;
            continue;
        }
        if count > 0 && (count == limits.max_items || raw + 1 + len > limits.max_raw) {
            emit(kind, compression, items, start..i, limits, losses, &mut payloads);
            start = i;
            raw = framing;
        }
        raw += len + usize::from(i > start);
    }
    emit(kind, compression, items, start..items.len(), limits, losses, &mut payloads);
    payloads
}

/// Packs `range`, halving it while the compressed body is over the limit.
fn emit(
    kind: Kind,
    compression: Compression,
    items: &Items,
    range: Range<usize>,
    limits: &Limits,
    losses: &Losses,
    out: &mut Vec<Payload>,
) {
    if range.is_empty() {
        return;
    }
    let payload = pack(kind, compression, items, range.clone());
    if payload.body.len() <= limits.max_body {
        out.push(payload);
    } else if range.len() == 1 {
        items.lose(range.start, DropCause::TooLarge, losses);
    } else {
        let middle = range.start + range.len() / 2;
        emit(kind, compression, items, range.start..middle, limits, losses, out);
        emit(kind, compression, items, middle..range.end, limits, losses, out);
    }
}

/// Compresses `raw`; if that fails (it cannot, writing to memory) the body goes uncompressed.
/// gzip is the HTTP stack's; deflate (zlib) is Datadog's own.
fn compress(raw: Vec<u8>, compression: Compression) -> (Vec<u8>, Compression) {
    let compressed = match compression {
        Compression::None => return (raw, Compression::None),
        Compression::Deflate => {
            let level = flate2::Compression::new(6);
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::with_capacity(raw.len() / 4), level);
            encoder.write_all(&raw).and_then(|()| encoder.finish()).ok()
        }
        Compression::Gzip => crate::sink::http::gzip(&raw),
    };
    match compressed {
        Some(body) => (body, compression),
        None => (raw, Compression::None),
    }
}

/// Undoes [`compress`].
pub(crate) fn decompress(body: &[u8], compression: Compression) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(body.len() * 4);
    match compression {
        Compression::None => raw.extend_from_slice(body),
        Compression::Deflate => {
            flate2::read::ZlibDecoder::new(body).read_to_end(&mut raw)?;
        }
        Compression::Gzip => {
            flate2::read::GzDecoder::new(body).read_to_end(&mut raw)?;
        }
    }
    Ok(raw)
}

#[cfg(test)]
mod tests;
