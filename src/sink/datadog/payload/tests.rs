//! Payload packing, splitting, windows and the spool record round trip.

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
    assert_eq!(losses.get(DropCause::TooLarge), 0);
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
    assert_eq!(losses.get(DropCause::TooLarge), 1);
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
    items.push(NOW, Some(Carried::named("requests", 3.0)), |out| out.extend_from_slice(br#""1""#));
    items.push(NOW + 10, None, |out| out.extend_from_slice(br#""2""#));
    items
        .push(NOW + 20, Some(Carried::named("depth", 1.0)), |out| out.extend_from_slice(br#""3""#));
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
        items.push(NOW + offset, None, |out| out.extend_from_slice(format!("\"{i}\"").as_bytes()));
    }
    let payload = pack(Kind::Series, Compression::Deflate, &items, 0..4);
    let window = Window::metrics(UNIX_EPOCH + Duration::from_secs(NOW as u64));
    let kept = payload.clone().retain(&window, &losses).unwrap();
    assert_eq!(raw_items(&kept), ["0", "2"]);
    assert_eq!((losses.get(DropCause::Stale), losses.get(DropCause::Future)), (1, 1));
    // Everything inside: the very same payload comes back.
    let fresh = kept.clone().retain(&window, &losses).unwrap();
    assert_eq!(fresh, kept);
    // Everything outside: nothing comes back.
    let later = Window::metrics(UNIX_EPOCH + Duration::from_secs(NOW as u64 + 7200));
    assert!(payload.retain(&later, &losses).is_none());
}
