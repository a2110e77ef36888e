//! Envelopes on disk: the Sentry sink's spool records.
//!
//! The metadata holds the envelope header (JSON), then per item its category, quantity, further
//! category, range of metric points in the manifest, type and payload length; the body holds
//! the payloads back to back. Item and content types read back must be ones the sink sends.

use serde_json::Value;

use super::item::{reasons, Accounts, Item, ItemBody, Outgoing};
use super::ratelimit::Category;
use crate::sink::http::spool::{self, Record, SpoolLedger};
use crate::stats::DropReason;

/// Every item and content type the sink sends, for envelopes read back from the spool.
const WIRE_NAMES: [&str; 7] = [
    "event",
    "transaction",
    "session",
    "sessions",
    "statsd",
    "trace_metric",
    "application/vnd.sentry.items.trace-metric+json",
];

fn wire_name(name: &str) -> Option<&'static str> {
    WIRE_NAMES.into_iter().find(|known| *known == name)
}

/// An envelope as a spool record. The metadata holds the envelope header (JSON), then per item
/// its category, quantity, further category, range of metric points in the manifest, type and
/// payload length; the body holds the payloads back to back.
pub(crate) fn to_record(outgoing: &Outgoing) -> Record {
    let mut meta = Vec::new();
    let mut points = Vec::new();
    let mut body = Vec::new();
    let header = serde_json::to_vec(&outgoing.header).unwrap_or_else(|_| b"{}".to_vec());
    spool::put_bytes(&mut meta, &header);
    spool::put_u32(&mut meta, outgoing.items.len());
    for item in &outgoing.items {
        spool::put_bytes(&mut meta, item.category.as_str().as_bytes());
        meta.extend_from_slice(&item.quantity.to_le_bytes());
        match item.also {
            Some((category, quantity)) => {
                meta.push(1);
                spool::put_bytes(&mut meta, category.as_str().as_bytes());
                meta.extend_from_slice(&quantity.to_le_bytes());
            }
            None => meta.push(0),
        }
        match &item.carried {
            Some(carried) => {
                meta.push(1);
                spool::put_u32(&mut meta, points.len());
                spool::put_u32(&mut meta, carried.len());
                points.extend(carried.iter().cloned());
            }
            None => meta.push(0),
        }
        let payload = match &item.body {
            ItemBody::Plain { item_type, payload } => {
                meta.push(0);
                spool::put_bytes(&mut meta, item_type.as_bytes());
                payload
            }
            ItemBody::Container { item_type, content_type, count, payload } => {
                meta.push(1);
                spool::put_bytes(&mut meta, item_type.as_bytes());
                spool::put_bytes(&mut meta, content_type.as_bytes());
                spool::put_u32(&mut meta, *count);
                payload
            }
        };
        spool::put_u32(&mut meta, payload.len());
        body.extend_from_slice(payload);
    }
    let items = outgoing.items.iter().map(Item::records).sum();
    Record { kind: 0, compression: 0, items, meta, points, body }
}

/// The envelope a spool record holds; `None` when the record does not make sense.
pub(crate) fn from_record(record: &Record) -> Option<Outgoing> {
    if record.kind != 0 || record.compression != 0 {
        return None;
    }
    let mut meta = spool::Reader::new(&record.meta);
    let mut body = spool::Reader::new(&record.body);
    let header = match serde_json::from_slice::<Value>(meta.bytes()?).ok()? {
        Value::Object(header) => header,
        _ => return None,
    };
    let category = |meta: &mut spool::Reader<'_>| Category::from_name(meta.str()?);
    let count = meta.u32()?;
    let mut items = Vec::with_capacity(count.min(record.meta.len()));
    for _ in 0..count {
        let item_category = category(&mut meta)?;
        let quantity = meta.u64()?;
        let also = match meta.u8()? {
            0 => None,
            1 => Some((category(&mut meta)?, meta.u64()?)),
            _ => return None,
        };
        let carried = match meta.u8()? {
            0 => None,
            1 => {
                let start = meta.u32()?;
                let len = meta.u32()?;
                Some(record.points.get(start..start.checked_add(len)?)?.to_vec())
            }
            _ => return None,
        };
        let tag = meta.u8()?;
        let item_type = wire_name(meta.str()?)?;
        let container = match tag {
            0 => None,
            1 => Some((wire_name(meta.str()?)?, meta.u32()?)),
            _ => return None,
        };
        let payload = body.take(meta.u32()?)?.to_vec();
        let body = match container {
            None => ItemBody::Plain { item_type, payload },
            Some((content_type, count)) => {
                ItemBody::Container { item_type, content_type, count, payload }
            }
        };
        items.push(Item { category: item_category, quantity, also, carried, body });
    }
    if !meta.rest().is_empty() || !body.rest().is_empty() {
        return None;
    }
    Some(Outgoing { header, items })
}

impl SpoolLedger for Accounts {
    /// Books what the spool deletes unsent: each item of an envelope that could be read back,
    /// or the file.
    fn discarded(&self, reason: DropReason, record: Option<&Record>) {
        let (report, dropped) = reasons(None, Some(reason));
        let outgoing = record.filter(|_| dropped != DropReason::SpoolCorrupt).and_then(from_record);
        match outgoing {
            Some(outgoing) => {
                for item in &outgoing.items {
                    self.book(item, report, dropped);
                }
            }
            None => self.lose_unreadable(),
        }
    }
}
