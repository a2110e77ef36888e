//! What the Sentry sink sends: envelopes of items, each knowing what it counts for in rate
//! limits and client reports, and where their losses are booked.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::client_report::{ClientReports, DiscardReason};
use super::ratelimit::Category;
use crate::sink::SinkContext;
use crate::stats::{Carried, DropReason};

/// What an item is, on the wire. (Item and content types read back from the spool must be in
/// [`WIRE_NAMES`].)
#[derive(Debug)]
pub(crate) enum ItemBody {
    Plain {
        item_type: &'static str,
        payload: Vec<u8>,
    },
    Container {
        item_type: &'static str,
        content_type: &'static str,
        count: usize,
        payload: Vec<u8>,
    },
}

/// An item waiting to be sent, with what it counts for in rate limits and client reports.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) category: Category,
    pub(crate) quantity: u64,
    /// Further categories the item counts in when dropped (a transaction: its spans).
    pub(crate) also: Option<(Category, u64)>,
    /// The metric points the item stands for (`None`: not metrics, one record).
    pub(crate) carried: Option<Vec<Carried>>,
    pub(crate) body: ItemBody,
}

impl Item {
    /// An item of `quantity` in `category`, counting in no further category, not metrics.
    pub(crate) fn new(category: Category, quantity: u64, body: ItemBody) -> Item {
        Item { category, quantity, also: None, carried: None, body }
    }

    /// Pipeline records the item stands for.
    pub(crate) fn records(&self) -> u64 {
        self.carried.as_ref().map_or(1, |carried| carried.len() as u64)
    }
}

/// An envelope before serialization: `sent_at` is added when it is sent.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) header: Map<String, Value>,
    pub(crate) items: Vec<Item>,
}

/// Where the sink books what it gives up: Sentry's client reports, and the pipeline's drop
/// counters and per-metric ledger (through the sink's context, once it has one).
#[derive(Clone)]
pub(crate) struct Accounts {
    pub(crate) reports: Arc<ClientReports>,
    pipeline: Option<SinkContext>,
}

impl Accounts {
    /// Books into `reports` and, when given, into the pipeline's statistics.
    pub(crate) fn new(reports: Arc<ClientReports>, pipeline: Option<SinkContext>) -> Accounts {
        Accounts { reports, pipeline }
    }

    /// Books `item` as lost: reported to Sentry for `reason` when there is one (Relay counts
    /// what it refused with a 429 itself), counted in the pipeline's statistics either way.
    pub(crate) fn lose(&self, item: &Item, reason: Option<DiscardReason>) {
        let (reason, dropped) = reasons(reason, None);
        self.book(item, reason, dropped);
    }

    /// Books a spool file that could not be read back: what it held cannot be known.
    pub(super) fn lose_unreadable(&self) {
        if let Some(cx) = &self.pipeline {
            cx.lose(DropReason::SpoolCorrupt, 1);
        }
    }

    /// Books `item` as lost: reported to Sentry for `reason`, counted as `dropped`.
    pub(super) fn book(&self, item: &Item, reason: Option<DiscardReason>, dropped: DropReason) {
        if let Some(reason) = reason {
            self.reports.record(reason, item.category, item.quantity);
            if let Some((category, quantity)) = item.also {
                self.reports.record(reason, category, quantity);
            }
        }
        if let Some(cx) = &self.pipeline {
            cx.lose(dropped, item.records());
            if let Some(carried) = &item.carried {
                cx.lose_carried(carried);
            }
        }
    }

    pub(crate) fn lose_all(&self, outgoing: &Outgoing, reason: Option<DiscardReason>) {
        for item in &outgoing.items {
            self.lose(item, reason);
        }
    }
}

/// The one place the two vocabularies meet: for what the sink gives up, Sentry's client-report
/// reason (`None`: not reported, Relay counted it) and the pipeline's [`DropReason`].
///
/// | given up | client report | pipeline |
/// |---|---|---|
/// | deleted by the spool (`spool` is its reason) | `cache_overflow`, as Sentry's SDKs report their offline cache | `spool_full`, `spool_expired`, `spool_corrupt` |
/// | refused by the lane (`queue_overflow`) | `queue_overflow` | `sink_queue_full` |
/// | anything else, for `reason` | `reason` | `sink_error` |
pub(super) fn reasons(
    reason: Option<DiscardReason>,
    spool: Option<DropReason>,
) -> (Option<DiscardReason>, DropReason) {
    match (reason, spool) {
        (_, Some(spool)) => (Some(DiscardReason::CacheOverflow), spool),
        (Some(DiscardReason::QueueOverflow), None) => (reason, DropReason::SinkQueueFull),
        (reason, None) => (reason, DropReason::SinkError),
    }
}
