//! Client reports: counting what the SDK dropped, and why, so Sentry can show it (spec
//! `sentry.md` §5.2 and §11.1 item 6).
//!
//! [`ClientReports`] is a lock-free table of `AtomicU64` counters indexed by
//! ([`DiscardReason`], [`Category`]), filled from any thread with [`ClientReports::record`] and
//! drained with an atomic read-and-reset ([`ClientReports::take`], `swap(0)`), so every recorded
//! quantity is reported exactly once. [`encode`] turns the drained entries into the payload of a
//! `client_report` envelope item:
//!
//! ```json
//! {"timestamp":1700000000.123,"discarded_events":[{"reason":"queue_overflow","category":"error","quantity":3}]}
//! ```
//!
//! Relay accepts at most 4 KiB per client report (§4.3). A full table would exceed that, so the
//! encoder keeps the entries with the largest quantities that fit and leaves the smallest out
//! ([`encode_partial`] returns them, so the caller can record them again for the next report).
//!
//! Remember the rule of §5.2: never record anything for a 429 response (Relay counts it).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::ratelimit::{Category, N_CATEGORIES};

/// Number of [`DiscardReason`] variants (the length of [`DiscardReason::ALL`]).
pub(crate) const N_REASONS: usize = 14;

/// Maximum size of one client report payload, in bytes (Relay's limit, spec §4.3).
pub(crate) const MAX_REPORT_BYTES: usize = 4096;

/// Why the SDK discarded data (spec §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum DiscardReason {
    /// `queue_overflow`: the transport queue was full.
    QueueOverflow,
    /// `cache_overflow`: the offline cache was full.
    CacheOverflow,
    /// `ratelimit_backoff`: the category was rate limited by the server.
    RatelimitBackoff,
    /// `network_error`: the request failed at the network level.
    NetworkError,
    /// `sample_rate`: dropped by sampling.
    SampleRate,
    /// `before_send`: dropped by a `before_send` hook.
    BeforeSend,
    /// `event_processor`: dropped by an event processor.
    EventProcessor,
    /// `send_error`: the server answered with an error status (not 429).
    SendError,
    /// `internal_sdk_error`: the SDK failed to process the data.
    InternalSdkError,
    /// `insufficient_data`: not enough data to send (e.g. an empty payload).
    InsufficientData,
    /// `backpressure`: dropped because the system was unhealthy.
    Backpressure,
    /// `buffer_overflow`: a bounded in-memory buffer was full.
    BufferOverflow,
    /// `ignored`: ignored on purpose by configuration.
    Ignored,
    /// `invalid`: the data was invalid.
    Invalid,
}

impl DiscardReason {
    /// Every reason, in declaration order (`ALL[r.index()] == r`).
    pub(crate) const ALL: [DiscardReason; N_REASONS] = [
        DiscardReason::QueueOverflow,
        DiscardReason::CacheOverflow,
        DiscardReason::RatelimitBackoff,
        DiscardReason::NetworkError,
        DiscardReason::SampleRate,
        DiscardReason::BeforeSend,
        DiscardReason::EventProcessor,
        DiscardReason::SendError,
        DiscardReason::InternalSdkError,
        DiscardReason::InsufficientData,
        DiscardReason::Backpressure,
        DiscardReason::BufferOverflow,
        DiscardReason::Ignored,
        DiscardReason::Invalid,
    ];

    /// The wire name, e.g. `"queue_overflow"`.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            DiscardReason::QueueOverflow => "queue_overflow",
            DiscardReason::CacheOverflow => "cache_overflow",
            DiscardReason::RatelimitBackoff => "ratelimit_backoff",
            DiscardReason::NetworkError => "network_error",
            DiscardReason::SampleRate => "sample_rate",
            DiscardReason::BeforeSend => "before_send",
            DiscardReason::EventProcessor => "event_processor",
            DiscardReason::SendError => "send_error",
            DiscardReason::InternalSdkError => "internal_sdk_error",
            DiscardReason::InsufficientData => "insufficient_data",
            DiscardReason::Backpressure => "backpressure",
            DiscardReason::BufferOverflow => "buffer_overflow",
            DiscardReason::Ignored => "ignored",
            DiscardReason::Invalid => "invalid",
        }
    }

    /// Position in [`DiscardReason::ALL`], for per-reason tables.
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// One drained counter: `quantity` items of `category` discarded for `reason`.
pub(crate) type ReportEntry = (DiscardReason, Category, u64);

/// Lock-free discard counters, one per (reason, category).
///
/// Counters use `Relaxed` ordering: each one is an independent tally, and `swap(0)` is a single
/// atomic read-modify-write, so a concurrent `record` lands either in this drain or the next one,
/// never in both and never nowhere.
#[derive(Debug)]
pub(crate) struct ClientReports {
    /// `table[reason.index()][category.index()]`.
    table: [[AtomicU64; N_CATEGORIES]; N_REASONS],
}

impl Default for ClientReports {
    fn default() -> Self {
        ClientReports::new()
    }
}

impl ClientReports {
    /// All counters at zero. `const`, so it can live in a `static`.
    pub(crate) const fn new() -> Self {
        ClientReports { table: [const { [const { AtomicU64::new(0) }; N_CATEGORIES] }; N_REASONS] }
    }

    /// The counter for (`reason`, `category`).
    fn cell(&self, reason: DiscardReason, category: Category) -> Option<&AtomicU64> {
        self.table.get(reason.index())?.get(category.index())
    }

    /// Adds `quantity` discarded items of `category` for `reason`, saturating at `u64::MAX`.
    pub(crate) fn record(&self, reason: DiscardReason, category: Category, quantity: u64) {
        if quantity == 0 {
            return;
        }
        if let Some(cell) = self.cell(reason, category) {
            // The closure always returns `Some`, so this never fails.
            let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |count| {
                Some(count.saturating_add(quantity))
            });
        }
    }

    /// Drains every non-zero counter (atomic `swap(0)`), in (reason, category) order.
    pub(crate) fn take(&self) -> Vec<ReportEntry> {
        let mut entries = Vec::new();
        for (reason, row) in DiscardReason::ALL.into_iter().zip(&self.table) {
            for (category, cell) in Category::ALL.into_iter().zip(row) {
                let quantity = cell.swap(0, Ordering::Relaxed);
                if quantity > 0 {
                    entries.push((reason, category, quantity));
                }
            }
        }
        entries
    }
}

/// Encodes a `client_report` item payload of at most [`MAX_REPORT_BYTES`] bytes.
///
/// Entries with a zero quantity are skipped. If all entries do not fit, the ones with the
/// largest quantities are kept and the rest are dropped; use [`encode_partial`] to get them back.
#[cfg(test)]
pub(crate) fn encode(entries: &[ReportEntry], timestamp: SystemTime) -> Vec<u8> {
    encode_partial(entries, timestamp).0
}

/// Like [`encode`], also returning the entries that did not fit in [`MAX_REPORT_BYTES`].
///
/// Kept entries are written in decreasing quantity order (ties keep their input order). Every
/// non-zero input entry ends up either in the payload or in the returned list.
pub(crate) fn encode_partial(
    entries: &[ReportEntry],
    timestamp: SystemTime,
) -> (Vec<u8>, Vec<ReportEntry>) {
    /// Closes the `discarded_events` array and the object.
    const CLOSING: &str = "]}";

    let mut sorted: Vec<ReportEntry> = entries.iter().copied().filter(|e| e.2 > 0).collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(e.2));

    let since_epoch = timestamp.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut out = String::with_capacity(256);
    let _ = write!(
        out,
        "{{\"timestamp\":{}.{:03},\"discarded_events\":[",
        since_epoch.as_secs(),
        since_epoch.subsec_millis()
    );
    let mut entry = String::with_capacity(96);
    let mut first = true;
    let mut rest = sorted.into_iter();
    for (reason, category, quantity) in rest.by_ref() {
        entry.clear();
        if !first {
            entry.push(',');
        }
        // Names are fixed ASCII identifiers: no JSON escaping needed.
        let _ = write!(
            entry,
            "{{\"reason\":\"{}\",\"category\":\"{}\",\"quantity\":{quantity}}}",
            reason.as_str(),
            category.as_str()
        );
        if out.len() + entry.len() + CLOSING.len() > MAX_REPORT_BYTES {
            let mut dropped = vec![(reason, category, quantity)];
            dropped.extend(rest);
            out.push_str(CLOSING);
            return (out.into_bytes(), dropped);
        }
        out.push_str(&entry);
        first = false;
    }
    out.push_str(CLOSING);
    (out.into_bytes(), Vec::new())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Duration;

    fn parse(payload: &[u8]) -> serde_json::Value {
        serde_json::from_slice(payload).unwrap()
    }

    #[test]
    fn reasons_are_complete_and_ordered() {
        assert_eq!(DiscardReason::ALL.len(), N_REASONS);
        for (i, r) in DiscardReason::ALL.into_iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let names: Vec<_> = DiscardReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names.join(","),
            "queue_overflow,cache_overflow,ratelimit_backoff,network_error,sample_rate,\
             before_send,event_processor,send_error,internal_sdk_error,insufficient_data,\
             backpressure,buffer_overflow,ignored,invalid"
        );
    }

    #[test]
    fn record_and_take() {
        let reports = ClientReports::new();
        assert!(reports.take().is_empty());
        reports.record(DiscardReason::SampleRate, Category::Transaction, 1);
        reports.record(DiscardReason::SampleRate, Category::Span, 5);
        reports.record(DiscardReason::SampleRate, Category::Span, 2);
        reports.record(DiscardReason::QueueOverflow, Category::Error, 0);
        reports.record(DiscardReason::Invalid, Category::Internal, u64::MAX);
        reports.record(DiscardReason::Invalid, Category::Internal, 10);
        assert_eq!(
            reports.take(),
            vec![
                (DiscardReason::SampleRate, Category::Transaction, 1),
                (DiscardReason::SampleRate, Category::Span, 7),
                (DiscardReason::Invalid, Category::Internal, u64::MAX),
            ]
        );
        assert!(reports.take().is_empty());
    }

    #[test]
    fn encode_shape() {
        let ts = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let payload = encode(
            &[
                (DiscardReason::QueueOverflow, Category::Error, 3),
                (DiscardReason::SampleRate, Category::Span, 0),
                (DiscardReason::RatelimitBackoff, Category::TraceMetric, 40),
            ],
            ts,
        );
        assert_eq!(
            std::str::from_utf8(&payload).unwrap(),
            "{\"timestamp\":1700000000.123,\"discarded_events\":[\
             {\"reason\":\"ratelimit_backoff\",\"category\":\"trace_metric\",\"quantity\":40},\
             {\"reason\":\"queue_overflow\",\"category\":\"error\",\"quantity\":3}]}"
        );
        let empty = encode(&[], UNIX_EPOCH + Duration::from_millis(5));
        assert_eq!(empty, b"{\"timestamp\":0.005,\"discarded_events\":[]}");
        assert_eq!(parse(&empty)["timestamp"].as_f64(), Some(0.005));
    }

    #[test]
    fn full_table_is_truncated_to_4k_keeping_largest() {
        let reports = ClientReports::new();
        let mut n = 0;
        for reason in DiscardReason::ALL {
            for category in Category::ALL {
                n += 1;
                reports.record(reason, category, u64::MAX - n);
            }
        }
        let entries = reports.take();
        assert_eq!(entries.len(), N_REASONS * N_CATEGORIES);
        let (payload, dropped) = encode_partial(&entries, SystemTime::now());
        assert!(payload.len() <= MAX_REPORT_BYTES);
        let kept = parse(&payload)["discarded_events"].as_array().unwrap().len();
        assert!(kept > 0 && !dropped.is_empty());
        assert_eq!(kept + dropped.len(), entries.len());
        let min_kept = parse(&payload)["discarded_events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["quantity"].as_u64().unwrap())
            .min()
            .unwrap();
        assert!(dropped.iter().all(|e| e.2 <= min_kept));
    }

    #[test]
    fn concurrent_record_and_take_conserve_totals() {
        const THREADS: u64 = 4;
        const PER_THREAD: u64 = 20_000;
        let reports = Arc::new(ClientReports::new());
        let done = Arc::new(AtomicBool::new(false));
        let drainer = {
            let (reports, done) = (Arc::clone(&reports), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut total = 0u64;
                while !done.load(Ordering::Acquire) {
                    total += reports.take().iter().map(|e| e.2).sum::<u64>();
                    std::thread::yield_now();
                }
                total
            })
        };
        let writers: Vec<_> = (0..THREADS)
            .map(|t| {
                let reports = Arc::clone(&reports);
                std::thread::spawn(move || {
                    for i in 0..PER_THREAD {
                        let reason = DiscardReason::ALL[(i as usize + t as usize) % N_REASONS];
                        let category = Category::ALL[i as usize % N_CATEGORIES];
                        reports.record(reason, category, 1 + i % 3);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Release);
        let drained = drainer.join().unwrap() + reports.take().iter().map(|e| e.2).sum::<u64>();
        let expected: u64 = THREADS * (0..PER_THREAD).map(|i| 1 + i % 3).sum::<u64>();
        assert_eq!(drained, expected);
    }

    fn entry() -> impl Strategy<Value = ReportEntry> {
        (0..N_REASONS, 0..N_CATEGORIES, any::<u64>())
            .prop_map(|(r, c, q)| (DiscardReason::ALL[r], Category::ALL[c], q))
    }

    proptest! {
        #[test]
        fn encoding_is_bounded_valid_and_conserving(
            entries in proptest::collection::vec(entry(), 0..400),
            millis in any::<u64>(),
        ) {
            let ts = UNIX_EPOCH + Duration::from_millis(millis);
            let (payload, dropped) = encode_partial(&entries, ts);
            prop_assert!(payload.len() <= MAX_REPORT_BYTES);
            let value = parse(&payload);
            prop_assert!(value["timestamp"].is_f64());
            let kept = value["discarded_events"].as_array().unwrap();
            let nonzero = entries.iter().filter(|e| e.2 > 0).count();
            prop_assert_eq!(kept.len() + dropped.len(), nonzero);
            let kept_sum: u128 = kept.iter().map(|e| u128::from(e["quantity"].as_u64().unwrap())).sum();
            let dropped_sum: u128 = dropped.iter().map(|e| u128::from(e.2)).sum();
            let total: u128 = entries.iter().map(|e| u128::from(e.2)).sum();
            prop_assert_eq!(kept_sum + dropped_sum, total);
            prop_assert_eq!(encode(&entries, ts), payload);
        }
    }
}
