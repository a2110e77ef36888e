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

use super::losses::{Loss, Losses};
use super::options::Compression;
use super::window::{Fit, Window};
use crate::sink::spool::{self, Record};
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
    fn lose(&self, i: usize, loss: Loss, losses: &Losses) {
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
    pub(crate) fn lose(&self, loss: Loss, losses: &Losses) {
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
                Fit::Stale => items.lose(i, Loss::Stale, losses),
                Fit::Future => items.lose(i, Loss::Future, losses),
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
            items.lose(i, Loss::TooLarge, losses);
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
        items.lose(range.start, Loss::TooLarge, losses);
    } else {
        let middle = range.start + range.len() / 2;
        emit(kind, compression, items, range.start..middle, limits, losses, out);
        emit(kind, compression, items, middle..range.end, limits, losses, out);
    }
}

/// Compresses `raw`; if that fails (it cannot, writing to memory) the body goes uncompressed.
fn compress(raw: Vec<u8>, compression: Compression) -> (Vec<u8>, Compression) {
    let level = flate2::Compression::new(6);
    let capacity = raw.len() / 4;
    let compressed = match compression {
        Compression::None => return (raw, Compression::None),
        Compression::Deflate => {
            let mut encoder = flate2::write::ZlibEncoder::new(Vec::with_capacity(capacity), level);
            encoder.write_all(&raw).and_then(|()| encoder.finish())
        }
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(capacity), level);
            encoder.write_all(&raw).and_then(|()| encoder.finish())
        }
    };
    match compressed {
        Ok(body) => (body, compression),
        Err(_) => (raw, Compression::None),
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
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::sink::datadog::losses::testing::recording;

    const NOW: i64 = 1_700_000_000;

    /// `n` items of exactly `len` bytes each (a JSON string), all timestamped `NOW`.
    fn items(n: usize, len: usize) -> Items {
        let mut items = Items::default();
        for i in 0..n {
            items.push(NOW, None, |out| {
                let text = format!("{i:0width$}", width = len - 2);
                out.extend_from_slice(format!("\"{text}\"").as_bytes());
            });
        }
        items
    }

    fn raw_items(payload: &Payload) -> Vec<String> {
        let raw = decompress(&payload.body, payload.compression).unwrap();
        let value: serde_json::Value = match payload.kind {
            Kind::Event => {
                serde_json::json!([serde_json::from_slice::<serde_json::Value>(&raw).unwrap()])
            }
            _ => serde_json::from_slice::<serde_json::Value>(&raw).unwrap()["series"].clone(),
        };
        value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    }

    #[test]
    fn frames_and_compresses_by_kind() {
        let items = items(3, 6);
        for compression in [Compression::Deflate, Compression::Gzip, Compression::None] {
            let payload = pack(Kind::Series, compression, &items, 0..3);
            assert_eq!(payload.compression, compression);
            let raw = decompress(&payload.body, compression).unwrap();
            assert_eq!(raw, br#"{"series":["0000","0001","0002"]}"#);
        }
        let deflate = pack(Kind::Series, Compression::Deflate, &items, 0..1).body;
        // zlib format (RFC 1950): CMF 0x78, as `Content-Encoding: deflate` means.
        assert_eq!(deflate[0], 0x78);
        let gzip = pack(Kind::Series, Compression::Gzip, &items, 0..1).body;
        assert_eq!(&gzip[..2], &[0x1f, 0x8b]);
    }

    #[test]
    fn kinds_pick_the_compression_their_endpoint_accepts() {
        assert_eq!(Kind::Series.compression(Compression::Gzip), Compression::Gzip);
        assert_eq!(Kind::Distribution.compression(Compression::Gzip), Compression::Deflate);
        assert_eq!(Kind::Distribution.compression(Compression::None), Compression::None);
        assert_eq!(Kind::Event.compression(Compression::Deflate), Compression::None);
    }

    #[test]
    fn chunks_respect_the_item_count() {
        let (losses, _) = recording();
        let items = items(2500, 10);
        let payloads =
            chunk(Kind::Series, Compression::Deflate, &items, &Kind::Series.limits(), &losses);
        let counts: Vec<u64> = payloads.iter().map(Payload::items).collect();
        assert_eq!(counts, [1000, 1000, 500]);
        let all: Vec<String> = payloads.iter().flat_map(raw_items).collect();
        assert_eq!(all.len(), 2500);
        assert_eq!(all[1234], "00001234");
    }

    #[test]
    fn chunks_respect_the_raw_size() {
        let (losses, _) = recording();
        let limits = Limits { max_items: 1000, max_raw: 100, max_body: 10_000 };
        // 13 + 10 * n + (n - 1) <= 100  =>  n <= 8.
        let payloads = chunk(Kind::Series, Compression::None, &items(20, 10), &limits, &losses);
        let counts: Vec<u64> = payloads.iter().map(Payload::items).collect();
        assert_eq!(counts, [8, 8, 4]);
        assert!(payloads.iter().all(|p| p.body.len() <= 100));
    }

    #[test]
    fn chunks_split_what_compresses_over_the_limit() {
        let (losses, _) = recording();
        // Incompressible items: hex of a hash per item.
        let mut items = Items::default();
        for i in 0..64u64 {
            items.push(NOW, None, |out| {
                let text: String = (0..16)
                    .map(|k| format!("{:016x}", crate::aggregate::hash::mix(i * 131 + k)))
                    .collect();
                out.extend_from_slice(format!("\"{text}\"").as_bytes());
            });
        }
        let limits = Limits { max_items: 1000, max_raw: 1 << 20, max_body: 4000 };
        let payloads = chunk(Kind::Series, Compression::Deflate, &items, &limits, &losses);
        assert!(payloads.len() > 2, "{}", payloads.len());
        assert!(payloads.iter().all(|p| p.body.len() <= 4000));
        assert_eq!(payloads.iter().map(Payload::items).sum::<u64>(), 64);
        assert_eq!(losses.get(Loss::TooLarge), 0);
    }

    #[test]
    fn oversized_single_items_are_dropped_and_counted() {
        let (losses, _) = recording();
        let mut items = items(3, 10);
        items.push(NOW, None, |out| {
            out.extend_from_slice(format!("\"{}\"", "x".repeat(200)).as_bytes())
        });
        items.push(NOW, None, |out| out.extend_from_slice(b"\"last-one\""));
        let limits = Limits { max_items: 1000, max_raw: 100, max_body: 10_000 };
        let payloads = chunk(Kind::Series, Compression::None, &items, &limits, &losses);
        let all: Vec<String> = payloads.iter().flat_map(raw_items).collect();
        assert_eq!(all, ["00000000", "00000001", "00000002", "last-one"]);
        assert_eq!(losses.get(Loss::TooLarge), 1);
    }

    #[test]
    fn events_go_one_per_payload_unframed() {
        let (losses, _) = recording();
        let payloads =
            chunk(Kind::Event, Compression::None, &items(3, 6), &Kind::Event.limits(), &losses);
        assert_eq!(payloads.len(), 3);
        assert_eq!(payloads[1].body, b"\"0001\"");
    }

    #[test]
    fn split_halves_by_item_until_one_is_left() {
        let payload = pack(Kind::Series, Compression::Gzip, &items(5, 6), 0..5);
        let (a, b) = payload.split().unwrap();
        assert_eq!(raw_items(&a), ["0000", "0001"]);
        assert_eq!(raw_items(&b), ["0002", "0003", "0004"]);
        assert_eq!(a.compression, Compression::Gzip);
        let (c, d) = a.split().unwrap();
        assert_eq!((c.items(), d.items()), (1, 1));
        let single = c.split().unwrap_err();
        assert_eq!(raw_items(&single), ["0000"]);
    }

    #[test]
    fn a_payload_survives_the_spool_record_and_bad_records_are_refused() {
        let mut items = Items::default();
        items.push(NOW, Some(Carried::named("requests", 3.0)), |out| {
            out.extend_from_slice(br#""1""#)
        });
        items.push(NOW + 10, None, |out| out.extend_from_slice(br#""2""#));
        items.push(NOW + 20, Some(Carried::named("depth", 1.0)), |out| {
            out.extend_from_slice(br#""3""#)
        });
        for kind in [Kind::Series, Kind::Distribution] {
            for compression in [Compression::Deflate, Compression::Gzip, Compression::None] {
                let payload = pack(kind, compression, &items, 0..3);
                let record = payload.to_record();
                assert_eq!(record.items, 3);
                assert_eq!(format!("{:?}", record.points), "[requests=3, depth=1]");
                let back = Payload::from_record(record).unwrap();
                assert_eq!((back.kind, back.compression), (kind, compression));
                assert_eq!(back.body, payload.body);
                assert_eq!(raw_items(&back), ["1", "2", "3"]);
                let entries: Vec<_> =
                    back.entries.iter().map(|e| (e.start, e.end, e.timestamp)).collect();
                let expected: Vec<_> =
                    payload.entries.iter().map(|e| (e.start, e.end, e.timestamp)).collect();
                assert_eq!(entries, expected);
                assert_eq!(format!("{:?}", back.entries[1].carried), "None");
            }
        }
        let good = pack(Kind::Series, Compression::Deflate, &items, 0..3).to_record();
        let mut bad = good.clone();
        bad.kind = 9;
        assert!(Payload::from_record(bad).is_none());
        let mut bad = good.clone();
        bad.compression = 9;
        assert!(Payload::from_record(bad).is_none());
        let mut bad = good.clone();
        bad.points.pop();
        assert!(Payload::from_record(bad).is_none(), "a point index past the manifest");
        let mut bad = good.clone();
        bad.meta.pop();
        assert!(Payload::from_record(bad).is_none());
        let mut bad = good;
        bad.items = 2;
        assert!(Payload::from_record(bad).is_none());
    }

    #[test]
    fn retain_drops_items_outside_the_window() {
        let (losses, _) = recording();
        let mut items = Items::default();
        for (i, offset) in [0i64, -4000, 30, 3600].into_iter().enumerate() {
            items.push(NOW + offset, None, |out| {
                out.extend_from_slice(format!("\"{i}\"").as_bytes())
            });
        }
        let payload = pack(Kind::Series, Compression::Deflate, &items, 0..4);
        let window = Window::metrics(UNIX_EPOCH + Duration::from_secs(NOW as u64));
        let kept = payload.clone().retain(&window, &losses).unwrap();
        assert_eq!(raw_items(&kept), ["0", "2"]);
        assert_eq!((losses.get(Loss::Stale), losses.get(Loss::Future)), (1, 1));
        // Everything inside: the very same payload comes back.
        let fresh = kept.clone().retain(&window, &losses).unwrap();
        assert_eq!(fresh, kept);
        // Everything outside: nothing comes back.
        let later = Window::metrics(UNIX_EPOCH + Duration::from_secs(NOW as u64 + 7200));
        assert!(payload.retain(&later, &losses).is_none());
    }
}
