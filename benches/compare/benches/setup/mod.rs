//! The peers of `peers.rs` (criterion, scoped dispatch) and `scale.rs` (one process per peer,
//! global dispatch), set up once here so that both measure the same thing. Setups follow
//! `specs/peer-bench.md`:
//!
//! - `atomic`: no pipeline; the workload does a relaxed `fetch_add` on a static (the floor).
//! - `registry`: `tracing_subscriber::registry()` with no layer (the dispatch floor).
//! - `span-timer`: registry + the least a layer can do to time spans while composing with other
//!   layers (the floor of W2 for any span-timing layer): [`SpanTimer`] behind a per-layer
//!   `LevelFilter::INFO`, keeping the open time (TSC) in the span's extensions and adding the
//!   duration to two static atomics on close.
//! - `otel-metrics`: registry + `tracing_opentelemetry::MetricsLayer` over an `SdkMeterProvider`
//!   with a `ManualReader` (never collected while measuring); default cardinality limit (2,000).
//!   `otel-metrics-200k`: the same with a View raising the limit to 200,000.
//! - `otel-full`: registry + `MetricsLayer` + `tracing_opentelemetry::layer()` (its defaults:
//!   location, thread and inactivity tracking) with the tracer of an `SdkTracerProvider`,
//!   `Sampler::AlwaysOn`, default `BatchSpanProcessor` into a span exporter that only counts.
//! - `metrics-prom`, `metrics-prom-handle`: `PrometheusBuilder::new().build_recorder()` (no
//!   listener) and an upkeep thread calling `run_upkeep` every 5 s. The workloads install the
//!   recorder (scoped with `metrics::with_local_recorder`, or global) and either call the macro
//!   every time or increment a handle registered beforehand.
//! - `cadence-nop`: `StatsdClient` over `NopMetricSink`; `cadence-queue-nop`: over
//!   `QueuingMetricSink::from(NopMetricSink)` (an unbounded channel to a consumer thread).
//! - `sentry`, `sentry-sampled` (`traces_sample_rate` 1.0), `sentry-unsampled` (0.0):
//!   `sentry::init` with a DSN, the default integrations and a transport that drops the
//!   envelopes; registry + `SpanLayer` (INFO) + `ErrorLayer` (ERROR), as the 0.49 docs show.
//! - `tally-*`: registry + tracing-tally, built like `benches/layer.rs` (no host tag, 1 s roll-up
//!   and flush, no error rate limit, error queue of 65,536), exporting to: `Discard`
//!   (`tally-discard`), a JSON-lines temporary file (`tally-jsonl`), the DogStatsD sink at a closed
//!   UDP port of 127.0.0.1 (`tally-dogstatsd`), the Sentry sink at a closed TCP port of 127.0.0.1
//!   (`tally-sentry`); `tally-traced` is `tally-discard` with every trace sampled (transaction
//!   queue of 65,536), `tally-200k` is `tally-discard` with both series limits at 200,000.
//! - `fmt-only`, `fmt+tally`, `fmt+otel-metrics`, `fmt+sentry`: a `fmt` layer (DEBUG, no colours,
//!   writing to `std::io::sink`) on the registry, alone or after the peer's layers.

// Shared by two programs, each using part of it; a failed set-up is a failed run.
#![allow(dead_code, clippy::expect_used)]

use std::any::Any;
use std::hint::black_box;
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    Instrument, InstrumentKind, ManualReader, Pipeline as OtelPipeline, SdkMeterProvider, Stream,
    Temporality,
};
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use tracing::{Dispatch, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{prelude::*, Layer};
use tracing_tally::sink::statsd::StatsdOptions;
use tracing_tally::{Builder, FlushGuard, Tally};

use crate::support::Discard;

/// The counter of the `atomic` peer (and the count of its W2 timings).
pub static ATOMIC: AtomicU64 = AtomicU64::new(0);
/// The sum of the `atomic` peer's W2 timings, in nanoseconds.
pub static ATOMIC_SUM: AtomicU64 = AtomicU64::new(0);

/// What a workload drives.
pub enum Pipeline {
    /// A tracing subscriber: the workload emits tracing events and spans.
    Tracing(Dispatch),
    /// The static counters above.
    Atomic,
    /// The Prometheus recorder, with or without handles registered before the loop.
    Prometheus { recorder: PrometheusRecorder, handle: PrometheusHandle, pre_registered: bool },
    /// A cadence client.
    Cadence(cadence::StatsdClient),
}

/// A peer, set up. Fields drop in order: the pipeline first, then what it exports through.
pub struct Installed {
    pub pipeline: Pipeline,
    /// tracing-tally's guard, for the peers that are tally.
    pub tally: Option<FlushGuard>,
    /// The OpenTelemetry metric reader, to count the series kept.
    pub otel_reader: Option<SharedReader>,
    _keep: Vec<Box<dyn Any>>,
}

impl Installed {
    /// Sets up the peer called `name`, or `None` for an unknown name.
    pub fn new(name: &str) -> Option<Installed> {
        let mut installed =
            Installed { pipeline: Pipeline::Atomic, tally: None, otel_reader: None, _keep: vec![] };
        let (fmt, peer) = match name.strip_prefix("fmt+") {
            Some(peer) => (true, peer),
            None => (false, name),
        };
        let dispatch = match peer {
            "atomic" if !fmt => return Some(installed),
            "registry" if !fmt => Dispatch::new(tracing_subscriber::registry()),
            "span-timer" if !fmt => Dispatch::new(
                tracing_subscriber::registry().with(SpanTimer.with_filter(LevelFilter::INFO)),
            ),
            "fmt-only" if !fmt => dispatch(tracing_subscriber::registry(), true),
            "metrics-prom" | "metrics-prom-handle" if !fmt => {
                let recorder = PrometheusBuilder::new().build_recorder();
                let handle = recorder.handle();
                installed._keep.push(Box::new(Upkeep::start(handle.clone())));
                let pre_registered = peer == "metrics-prom-handle";
                installed.pipeline = Pipeline::Prometheus { recorder, handle, pre_registered };
                return Some(installed);
            }
            "cadence-nop" if !fmt => {
                let client = cadence::StatsdClient::builder("app", cadence::NopMetricSink).build();
                installed.pipeline = Pipeline::Cadence(client);
                return Some(installed);
            }
            "cadence-queue-nop" if !fmt => {
                let sink = cadence::QueuingMetricSink::from(cadence::NopMetricSink);
                installed.pipeline =
                    Pipeline::Cadence(cadence::StatsdClient::builder("app", sink).build());
                return Some(installed);
            }
            "otel-metrics" | "otel-metrics-200k" | "otel-full" => {
                let reader = SharedReader(Arc::new(ManualReader::builder().build()));
                let mut meters = SdkMeterProvider::builder().with_reader(reader.clone());
                if peer == "otel-metrics-200k" {
                    meters = meters.with_view(|_: &Instrument| {
                        Stream::builder().with_cardinality_limit(200_000).build().ok()
                    });
                }
                let meters = meters.build();
                installed.otel_reader = Some(reader);
                installed._keep.push(Box::new(meters.clone()));
                let metrics = tracing_opentelemetry::MetricsLayer::new(meters);
                if peer == "otel-full" {
                    let processor = BatchSpanProcessor::builder(CountSpans::default()).build();
                    let tracer_provider = SdkTracerProvider::builder()
                        .with_sampler(Sampler::AlwaysOn)
                        .with_span_processor(processor)
                        .build();
                    let tracer = tracer_provider.tracer("tally-compare");
                    installed._keep.push(Box::new(tracer_provider));
                    let traces = tracing_opentelemetry::layer().with_tracer(tracer);
                    dispatch(tracing_subscriber::registry().with(metrics).with(traces), fmt)
                } else {
                    dispatch(tracing_subscriber::registry().with(metrics), fmt)
                }
            }
            "sentry" | "sentry-sampled" | "sentry-unsampled" => {
                let rate = if peer == "sentry-unsampled" { 0.0 } else { 1.0 };
                let options = sentry::ClientOptions::new()
                    .dsn("https://public@o1.ingest.sentry.io/42")
                    .traces_sample_rate(rate)
                    .transport(Arc::new(DropEnvelopes));
                installed._keep.push(Box::new(sentry::init(options)));
                let spans = sentry_tracing::SpanLayer::new().with_filter(LevelFilter::INFO);
                let errors = sentry_tracing::ErrorLayer::new().with_filter(LevelFilter::ERROR);
                dispatch(tracing_subscriber::registry().with(spans).with(errors), fmt)
            }
            "tally" if fmt => tally(tally_builder().sink(Discard), &mut installed, true),
            "tally-discard" => tally(tally_builder().sink(Discard), &mut installed, fmt),
            "tally-traced" => {
                let builder = tally_builder()
                    .sink(Discard)
                    .traces_sample_rate(1.0)
                    .transaction_queue(1 << 16);
                tally(builder, &mut installed, fmt)
            }
            "tally-200k" => {
                let builder = tally_builder()
                    .sink(Discard)
                    .max_series(200_000)
                    .max_series_per_metric(200_000);
                tally(builder, &mut installed, fmt)
            }
            "tally-jsonl" => {
                let file = TempFile::new("jsonl");
                let builder = tally_builder().jsonl_path(&file.0);
                installed._keep.push(Box::new(file));
                tally(builder, &mut installed, fmt)
            }
            "tally-dogstatsd" => {
                let address = format!("127.0.0.1:{}", closed_udp_port());
                let options = StatsdOptions::dogstatsd_at(&address)
                    .expect("DogStatsD address")
                    .origin_detection(false);
                tally(tally_builder().statsd(options), &mut installed, fmt)
            }
            "tally-sentry" => {
                let dsn = format!("http://public@127.0.0.1:{}/42", closed_tcp_port());
                tally(tally_builder().sentry(&dsn).expect("DSN"), &mut installed, fmt)
            }
            _ => return None,
        };
        installed.pipeline = Pipeline::Tracing(dispatch);
        Some(installed)
    }
}

/// The floor of span timing for a layer: the open time in the span's extensions, the duration
/// into [`ATOMIC`] (count) and [`ATOMIC_SUM`] (nanoseconds) on close. No tags, no series.
pub struct SpanTimer;

/// What [`SpanTimer`] keeps in a span's extensions: the open time, from the TSC (`quanta`, the
/// clock tally reads too; cheaper than the OS clock).
struct Opened(quanta::Instant);

impl<S> Layer<S> for SpanTimer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        _: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Opened(quanta::Instant::now()));
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            if let Some(Opened(at)) = span.extensions().get::<Opened>() {
                ATOMIC.fetch_add(1, Ordering::Relaxed);
                ATOMIC_SUM.fetch_add(at.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
        }
    }
}

/// tracing-tally as `benches/layer.rs` builds it, before choosing the sink.
fn tally_builder() -> Builder {
    Tally::builder()
        .host(None)
        .rollup_interval(Duration::from_secs(1))
        .flush_interval(Duration::from_secs(1))
        .error_rate_limit(u32::MAX, u32::MAX)
        .error_queue(1 << 16)
}

fn tally(builder: Builder, installed: &mut Installed, fmt: bool) -> Dispatch {
    let (layer, guard) = builder.build().expect("build tracing-tally");
    installed.tally = Some(guard);
    dispatch(tracing_subscriber::registry().with(layer), fmt)
}

/// The peer's subscriber, with the `fmt` layer after its layers if asked.
fn dispatch<S>(subscriber: S, fmt: bool) -> Dispatch
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static,
{
    if fmt {
        Dispatch::new(subscriber.with(fmt_layer()))
    } else {
        Dispatch::new(subscriber)
    }
}

/// The other layer of W6: formats every event at DEBUG or above, and writes it nowhere.
fn fmt_layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::sink)
        .with_ansi(false)
        .with_filter(LevelFilter::DEBUG)
}

/// A UDP port of 127.0.0.1 nobody listens on (datagrams sent to it are discarded).
fn closed_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
    socket.local_addr().expect("UDP address").port()
}

/// A TCP port of 127.0.0.1 nobody listens on (connections are refused).
fn closed_tcp_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind TCP");
    listener.local_addr().expect("TCP address").port()
}

/// A file in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(extension: &str) -> TempFile {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("tally-compare-{}-{n}.{extension}", std::process::id());
        TempFile(std::env::temp_dir().join(name))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Calls `run_upkeep` every 5 s, as the Prometheus exporter's own upkeep thread would.
struct Upkeep {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Upkeep {
    fn start(handle: PrometheusHandle) -> Upkeep {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("prom-upkeep".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::park_timeout(Duration::from_secs(5));
                    handle.run_upkeep();
                }
            })
            .expect("spawn the upkeep thread");
        Upkeep { stop, thread: Some(thread) }
    }
}

impl Drop for Upkeep {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// The envelope transport of the Sentry peers: drops every envelope (after touching it).
struct DropEnvelopes;

impl sentry::Transport for DropEnvelopes {
    fn send_envelope(&self, envelope: sentry::Envelope) {
        black_box(&envelope);
    }
}

/// The span exporter of `otel-full`: counts the spans, exports nothing.
#[derive(Debug, Default)]
struct CountSpans(AtomicU64);

impl SpanExporter for CountSpans {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        std::future::ready(Ok(()))
    }
}

/// A `ManualReader` the provider and the benchmark share: the benchmark collects once, after
/// measuring, to count the series kept.
#[derive(Debug, Clone)]
pub struct SharedReader(Arc<ManualReader>);

impl SharedReader {
    /// Data points of every metric collected now (one per series).
    pub fn series(&self) -> usize {
        let mut collected = ResourceMetrics::default();
        if self.0.collect(&mut collected).is_err() {
            return 0;
        }
        let mut series = 0;
        for scope in collected.scope_metrics() {
            for metric in scope.metrics() {
                series += match metric.data() {
                    AggregatedMetrics::U64(MetricData::Sum(sum)) => sum.data_points().count(),
                    AggregatedMetrics::F64(MetricData::Sum(sum)) => sum.data_points().count(),
                    AggregatedMetrics::I64(MetricData::Sum(sum)) => sum.data_points().count(),
                    _ => 0,
                };
            }
        }
        series
    }
}

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<OtelPipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}
