//! Composition with other layers, per-layer filtering, re-entrancy and panics inside fields.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_tally::{DropReason, Tally};

use crate::support::{Capture, OwnFlush};

/// How late a re-entrant flush may return past its timeout on a loaded machine.
const SLACK: Duration = Duration::from_millis(500);

/// Counts the events it is given.
#[derive(Clone, Default)]
struct Counting(Arc<AtomicUsize>);

impl<S: Subscriber> Layer<S> for Counting {
    fn on_event(&self, _event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn other_layers_still_see_events_tally_ignores() {
    let capture = Capture::default();
    let counting = Counting::default();
    let (tally, guard) =
        Tally::builder().manual().host(None).sink(capture.clone()).build().unwrap();
    let subscriber = tracing_subscriber::registry().with(tally).with(counting.clone());
    tracing::subscriber::with_default(subscriber, || {
        debug!("not for tally"); // below the breadcrumb level, no metric
        info!(monotonic_counter.hits = 1);
        debug!(monotonic_counter.debug_hits = 1); // metric events count at any level
    });
    assert!(guard.flush(Duration::from_secs(1)));
    assert_eq!(counting.0.load(Ordering::SeqCst), 3, "the other layer saw every event");
    assert_eq!(capture.counter("hits", &[]), 1.0);
    assert_eq!(capture.counter("debug_hits", &[]), 1.0);
}

#[test]
fn tally_composes_with_fmt_and_a_filtered_layer() {
    let capture = Capture::default();
    let (tally, guard) =
        Tally::builder().manual().host(None).sink(capture.clone()).build().unwrap();
    let counting = Counting::default();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
        .with(counting.clone().with_filter(tracing_subscriber::filter::LevelFilter::WARN))
        .with(tally);
    tracing::subscriber::with_default(subscriber, || {
        info!(monotonic_counter.a = 1, route = "/x");
        tracing::warn!("a warning");
        debug!("debug");
    });
    assert!(guard.flush(Duration::from_secs(1)));
    assert_eq!(capture.counter("a", &[("route", "/x")]), 1.0);
    assert_eq!(counting.0.load(Ordering::SeqCst), 1);
}

#[test]
fn the_layer_downcasts_to_itself_and_exposes_its_filter() {
    // Layered finds per-layer filters through `downcast_raw`; the forwarding must work both for
    // the layer's own type and for what it wraps.
    let (tally, guard) =
        Tally::builder().manual().host(None).sink(Capture::default()).build().unwrap();
    let subscriber = tracing_subscriber::registry().with(tally);
    let dispatch = tracing::Dispatch::new(subscriber);
    assert!(dispatch
        .downcast_ref::<tracing_tally::TallyLayer<tracing_subscriber::Registry>>()
        .is_some());
    assert!(dispatch.downcast_ref::<tracing_subscriber::Registry>().is_some());
    drop(guard);
}

/// A `Debug` implementation that emits an event, as logging-heavy code sometimes does.
struct Chatty;

impl fmt::Debug for Chatty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        info!(monotonic_counter.inner = 1, "formatting a field");
        f.write_str("chatty")
    }
}

/// A `Debug` implementation that panics.
struct Exploding;

impl fmt::Debug for Exploding {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Debug exploded");
    }
}

#[test]
fn an_event_emitted_while_the_layer_formats_a_field_is_ignored_not_recursed() {
    let capture = Capture::default();
    let (tally, guard) =
        Tally::builder().manual().host(None).sink(capture.clone()).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(tally), || {
        info!(monotonic_counter.outer = 1, value = ?Chatty);
    });
    assert!(guard.flush(Duration::from_secs(1)));
    assert_eq!(capture.counter("outer", &[("value", "chatty")]), 1.0);
    // With a scoped dispatcher, tracing itself drops the nested event; with a global one the
    // layer's own guard does (tested in `tests/global`).
    assert_eq!(capture.counter("inner", &[]), 0.0);
}

#[test]
fn a_panicking_debug_implementation_does_not_escape_the_layer() {
    let capture = Capture::default();
    let (tally, guard) =
        Tally::builder().manual().host(None).sink(capture.clone()).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(tally), || {
        info!(monotonic_counter.x = 1, value = ?Exploding);
        tracing::error!(value = ?Exploding, "error with an exploding field");
        tracing::info_span!("span", value = ?Exploding).in_scope(|| {});
        info!(monotonic_counter.after = 1);
    });
    assert!(guard.flush(Duration::from_secs(1)));
    assert_eq!(capture.counter("after", &[]), 1.0, "the layer keeps working");
    assert_eq!(guard.stats().dropped(DropReason::Panic), 3);
}

#[test]
fn flushing_from_inside_a_tracing_callback_does_not_deadlock() {
    struct FlushOnEvent(OwnFlush);
    impl<S: Subscriber> Layer<S> for FlushOnEvent {
        fn on_event(&self, _event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
            let _ = self.0.flush(Duration::from_millis(500));
        }
    }
    for manual in [false, true] {
        let capture = Capture::default();
        let mut builder = Tally::builder().host(None).sink(capture.clone());
        if manual {
            builder = builder.manual();
        }
        let (tally, guard) = builder.build().unwrap();
        let own = OwnFlush::default();
        let guard = own.attach(guard);
        let started = std::time::Instant::now();
        tracing::subscriber::with_default(
            tracing_subscriber::registry().with(tally).with(FlushOnEvent(own.clone())),
            || {
                info!(monotonic_counter.x = 1);
            },
        );
        assert!(started.elapsed() < Duration::from_millis(500) + SLACK, "manual={manual}");
        assert_eq!(own.calls(), 1, "manual={manual}: the layer flushed the pipeline");
        assert!(guard.flush(Duration::from_secs(2)));
        assert_eq!(capture.counter("x", &[]), 1.0);
        drop(own.detach(guard));
    }
}
