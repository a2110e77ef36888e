//! Per-thread cells: where the hot path writes.
//!
//! Each thread that records a series gets a cell of its own for it, so no cache line is written
//! by two application threads: the thread that admitted the series writes the home cell inside
//! the series' entry, every other thread a [`Cell`] of its own ([`CellRef`] is either). What a
//! cell holds, and how it is written and drained, is [`super::value`].

use std::sync::Arc;

use super::series::SeriesEntry;
use super::value::{CellValue, Number};

/// A thread's cell for a series that another thread admitted: written by that thread only,
/// drained by the flusher only. (The admitting thread writes the series' home cell, inside its
/// [`SeriesEntry`].)
#[derive(Debug)]
pub(crate) struct Cell {
    pub(crate) entry: Arc<SeriesEntry>,
    pub(crate) value: CellValue,
}

impl Cell {
    pub(crate) fn new(entry: Arc<SeriesEntry>) -> Self {
        Cell { value: CellValue::new(entry.metric.kind()), entry }
    }
}

/// A thread's handle on the cell it writes for one series: the series' home cell when this
/// thread admitted the series, a cell of its own otherwise.
#[derive(Debug, Clone)]
pub(crate) struct CellRef {
    entry: Arc<SeriesEntry>,
    own: Option<Arc<Cell>>,
}

impl CellRef {
    /// The home cell of `entry` (only for the thread that admitted the series).
    pub(crate) fn home(entry: Arc<SeriesEntry>) -> Self {
        CellRef { entry, own: None }
    }

    /// A cell of this thread's own.
    pub(crate) fn own(cell: Arc<Cell>) -> Self {
        CellRef { entry: cell.entry.clone(), own: Some(cell) }
    }

    #[inline]
    pub(crate) fn entry(&self) -> &SeriesEntry {
        &self.entry
    }

    #[inline]
    fn value(&self) -> &CellValue {
        match &self.own {
            Some(cell) => &cell.value,
            None => &self.entry.home,
        }
    }

    /// Records a numeric observation. Sets take members through [`CellRef::insert_member`].
    #[inline]
    pub(crate) fn record(&self, number: Number) {
        self.value().record(number);
    }

    /// Adds a set member (the hash of its text).
    #[inline]
    pub(crate) fn insert_member(&self, member: u64) {
        self.value().insert_member(member);
    }
}

impl AsRef<SeriesEntry> for CellRef {
    fn as_ref(&self) -> &SeriesEntry {
        &self.entry
    }
}
