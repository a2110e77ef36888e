//! Thread-local state: each thread's plan cache, series cells and breadcrumbs.
//!
//! Borrowing this state is also the layer's re-entrancy guard: while a callback runs, the state is
//! borrowed, so an event emitted from inside it (say, by a field's `Debug` implementation) finds it
//! busy and is ignored instead of recursing. Threads doing the pipeline's own work (flusher, sink
//! senders, a manual flush) are ignored through [`crate::reentry`].

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tracing_core::Metadata;

use super::breadcrumbs::Breadcrumbs;
use super::plan::{callsite_key, Plan, Plans};
use crate::aggregate::cell::{Cell as SeriesCell, CellRef};
use crate::aggregate::hash::BuildPassThrough;
use crate::aggregate::registry::overflow_hash;
use crate::aggregate::series::{ByHash, MetricDesc, SeriesTags};

use crate::pipeline::{Shared, CLOSED};
use crate::stats::DropReason;

thread_local! {
    /// This thread's state for every pipeline it has recorded into (almost always one).
    static THREADS: RefCell<Vec<ThreadState>> = const { RefCell::new(Vec::new()) };
}

const PLAN_CACHE_LEN: usize = 64;

/// A direct-mapped cache of plans by callsite address.
pub(crate) struct PlanCache {
    slots: Box<[(usize, Option<Arc<Plan>>); PLAN_CACHE_LEN]>,
}

impl PlanCache {
    fn new() -> Self {
        PlanCache { slots: Box::new([const { (0, None) }; PLAN_CACHE_LEN]) }
    }

    /// The plan of `meta`, from the cache or the pipeline's table.
    #[inline]
    pub(crate) fn get(&mut self, meta: &Metadata<'_>, plans: &Plans) -> &Plan {
        let key = callsite_key(meta);
        let slot = &mut self.slots[((key >> 4) ^ (key >> 11)) % PLAN_CACHE_LEN];
        if slot.0 != key || slot.1.is_none() {
            *slot = (key, Some(plans.get(meta)));
        }
        match &slot.1 {
            Some(plan) => plan,
            None => &Plan::Ignored,
        }
    }
}

/// The most rejected series a thread keeps on its fast path: 1,024 entries of a hash and a
/// cell reference, under 64 KiB per thread however many distinct tag values go over the limits.
/// Past it, a rejected series costs a registry lookup (one shard lock, no allocation).
const MAX_ALIASES: usize = 1024;

/// One thread's series cells for one pipeline.
#[derive(Default)]
pub(crate) struct Series {
    /// The cell of every series this thread writes, found by series hash.
    cells: HashSet<ByHash<CellRef>, BuildPassThrough>,
    /// Series rejected by a limit, by hash: their metric's overflow cell, until the next epoch.
    aliases: HashMap<u64, CellRef, BuildPassThrough>,
}

impl Series {
    /// Runs `f` on the cell of series `hash`, created through the registry on first sight.
    #[inline]
    pub(crate) fn with_cell<R>(
        &mut self,
        shared: &Shared,
        epoch: u64,
        hash: u64,
        metric: &Arc<MetricDesc>,
        tags: impl FnOnce() -> SeriesTags,
        f: impl FnOnce(&CellRef) -> R,
    ) -> R {
        if let Some(ByHash(cell)) = self.cells.get(&hash) {
            if !cell.entry().is_retired() {
                return f(cell);
            }
        } else if let Some(cell) = self.aliases.get(&hash) {
            if !cell.entry().is_retired() {
                return f(cell);
            }
        }
        let cell = self.resolve(shared, epoch, hash, metric, tags);
        f(&cell)
    }

    #[cold]
    #[inline(never)]
    fn resolve(
        &mut self,
        shared: &Shared,
        epoch: u64,
        hash: u64,
        metric: &Arc<MetricDesc>,
        tags: impl FnOnce() -> SeriesTags,
    ) -> CellRef {
        self.cells.remove(&hash);
        let resolution = match shared.registry.find_or_admit(hash, metric, epoch, tags) {
            Some(resolution) => resolution,
            None => {
                // Over a limit: the metric's overflow series, whose cell this thread usually
                // holds already (no registry lock, no reference count touched).
                if let Some(ByHash(cell)) = self.cells.get(&overflow_hash(metric)) {
                    if !cell.entry().is_retired() {
                        let cell = cell.clone();
                        self.alias(hash, &cell);
                        return cell;
                    }
                }
                shared.registry.overflow(metric, epoch)
            }
        };
        let entry = resolution.entry;
        // An overflow series is shared by every rejected series of its metric: its cell is
        // indexed under each rejected hash too (in `aliases`), so later values of that series
        // stay on the fast path until the next epoch's sweep forgets the alias.
        let cell = match self.cells.get(&entry.hash) {
            Some(ByHash(cell)) if !cell.entry().is_retired() => cell.clone(),
            _ => {
                // The flusher finds home cells through the registry; a cell of this thread's
                // own is announced to it.
                let cell = if resolution.home {
                    CellRef::home(entry.clone())
                } else {
                    let cell = Arc::new(SeriesCell::new(entry.clone()));
                    shared.announce(cell.clone());
                    CellRef::own(cell)
                };
                self.cells.replace(ByHash(cell.clone()));
                cell
            }
        };
        if entry.hash != hash {
            self.alias(hash, &cell);
        }
        cell
    }

    /// Remembers that series `hash` goes to the overflow cell `cell`. The table holds at most
    /// [`MAX_ALIASES`] series and starts over when full: rejected series are by definition
    /// the unbounded ones, and their number must not set this thread's memory.
    fn alias(&mut self, hash: u64, cell: &CellRef) {
        if self.aliases.len() >= MAX_ALIASES {
            self.aliases.clear();
        }
        self.aliases.insert(hash, cell.clone());
    }

    /// Forgets retired cells and the aliases of rejected series.
    fn sweep(&mut self) {
        self.cells.retain(|ByHash(cell)| !cell.entry().is_retired());
        self.aliases.clear();
    }
}

/// Everything one thread keeps for one pipeline.
pub(crate) struct ThreadState {
    pub(crate) shared: Arc<Shared>,
    epoch: u64,
    pub(crate) plans: PlanCache,
    pub(crate) series: Series,
    pub(crate) breadcrumbs: Breadcrumbs,
    rng: u64,
}

impl ThreadState {
    fn new(shared: Arc<Shared>) -> Self {
        let breadcrumbs = Breadcrumbs::new(shared.config.breadcrumbs);
        let seed = crate::aggregate::hash::mix(
            (&breadcrumbs as *const Breadcrumbs as u64) ^ crate::pipeline::clock().raw(),
        );
        ThreadState {
            epoch: shared.epoch(),
            shared,
            plans: PlanCache::new(),
            series: Series::default(),
            breadcrumbs,
            rng: seed | 1,
        }
    }

    /// The current roll-up epoch as this thread last saw it.
    #[inline]
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// A pseudo-random 64-bit number (xorshift; for span ids, not for secrets).
    #[inline]
    pub(crate) fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// Runs `f` with this thread's state for `shared`'s pipeline.
///
/// Returns `None`, and counts why, when the state is already borrowed (a re-entrant event), when
/// the pipeline has shut down, or when the thread is exiting.
#[inline]
pub(crate) fn with_thread<R>(
    shared: &Arc<Shared>,
    f: impl FnOnce(&mut ThreadState) -> R,
) -> Option<R> {
    let result = THREADS.try_with(|threads| {
        let Ok(mut threads) = threads.try_borrow_mut() else {
            shared.counters.dropped(DropReason::Reentrant, 1);
            return None;
        };
        if crate::reentry::is_suppressed() {
            // The pipeline's own work: not telemetry the application asked for.
            return None;
        }
        let epoch = shared.epoch();
        let index = match threads.iter().position(|t| t.shared.id == shared.id) {
            Some(index) => index,
            None if epoch == CLOSED => {
                shared.counters.dropped(DropReason::Closed, 1);
                return None;
            }
            None => {
                threads.retain(|t| !t.shared.is_closed());
                threads.push(ThreadState::new(shared.clone()));
                threads.len() - 1
            }
        };
        let state = threads.get_mut(index)?;
        if state.epoch != epoch {
            if epoch == CLOSED {
                threads.swap_remove(index);
                shared.counters.dropped(DropReason::Closed, 1);
                return None;
            }
            state.epoch = epoch;
            state.series.sweep();
        }
        Some(f(state))
    });
    match result {
        Ok(result) => result,
        Err(_) => {
            shared.counters.dropped(DropReason::Closed, 1);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::MetricKind;

    #[test]
    fn rejected_series_keep_a_bounded_table_and_reach_the_overflow_series() {
        let config = crate::Tally::builder().max_series(4).validate().unwrap();
        let (shared, _inbox) = Shared::new(config);
        let metric = shared.registry.metric("requests", MetricKind::Counter, true, None);
        let mut series = Series::default();
        let mut overflowed = 0;
        for hash in 1..=100_000u64 {
            let overflow = series.with_cell(&shared, 0, hash, &metric, SeriesTags::new, |cell| {
                cell.entry().is_overflow
            });
            overflowed += u64::from(overflow);
            assert!(series.aliases.len() <= MAX_ALIASES);
        }
        assert_eq!(overflowed, 100_000 - 4);
        assert_eq!(shared.registry.live(), 4);
        // Four admitted series and the overflow series.
        assert_eq!(series.cells.len(), 5);
        // A rejected series seen lately stays on the fast path.
        assert!(series.aliases.contains_key(&100_000));
    }
}
