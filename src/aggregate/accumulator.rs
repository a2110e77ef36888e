//! Accumulators: the flusher's side of a cell, one series' values merged over one interval.

use super::set::SetState;
use super::sketch::Sketch;
use crate::fields::MetricKind;

/// The flusher's merged value of one series over one interval.
#[derive(Debug, Clone)]
pub(crate) enum Accumulator {
    Counter(CounterAcc),
    Gauge(GaugeAcc),
    Distribution(DistributionAcc),
    Set(SetState),
}

impl Accumulator {
    pub(crate) fn new(kind: MetricKind) -> Self {
        match kind {
            MetricKind::Counter => Accumulator::Counter(CounterAcc::default()),
            MetricKind::Gauge => Accumulator::Gauge(GaugeAcc::default()),
            MetricKind::Distribution => Accumulator::Distribution(DistributionAcc::default()),
            MetricKind::Set => Accumulator::Set(SetState::default()),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CounterAcc {
    pub(crate) integer: i128,
    pub(crate) float: f64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct GaugeAcc {
    pub(crate) last: f64,
    pub(crate) sequence: u64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) sum: f64,
    pub(crate) count: u64,
}

impl Default for GaugeAcc {
    fn default() -> Self {
        GaugeAcc {
            last: 0.0,
            sequence: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            count: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct DistributionAcc {
    pub(crate) count: u64,
    pub(crate) unbucketed: u64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) sketch: Sketch,
}

impl Default for DistributionAcc {
    fn default() -> Self {
        DistributionAcc {
            count: 0,
            unbucketed: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sketch: Sketch::new(),
        }
    }
}
