//! What waits: the retry buffer and the spool, drained oldest first, and what is spilled to
//! disk (or counted lost) when it cannot wait in memory any more.

use std::time::Instant;

use super::super::buffer::Evicted;
use super::super::losses::{DropCause, Losses};
use super::super::payload::Payload;
use super::Transport;
use crate::sink::http::spool::{Record, Spool, SpoolLedger};
use crate::stats::DropReason;

impl Transport {
    /// A new payload: send it, or queue it behind the parked ones.
    pub(super) fn submit(&mut self, payload: Payload) {
        if self.parked || self.paused(Instant::now()) {
            let evicted = self.buffer.push_back(payload);
            self.overflow(evicted);
            return;
        }
        let parked = self.deliver(payload);
        if parked.is_empty() && self.spooled() > 0 {
            // The intake is back: send what waits on disk.
            self.drain();
        }
        for parked in parked {
            let evicted = self.buffer.push_back(parked);
            self.overflow(evicted);
        }
    }

    /// Tries the spool, then the retry buffer, oldest first, until a payload still cannot go.
    pub(super) fn drain(&mut self) {
        self.parked = false;
        if !self.drain_spool() {
            return;
        }
        while !self.buffer.is_empty() {
            if self.paused(Instant::now()) || self.clock.request_timeout().is_none() {
                return;
            }
            let Some(payload) = self.buffer.pop_front() else { return };
            let parked = self.deliver(payload);
            if !parked.is_empty() {
                self.unpark(parked);
                return;
            }
        }
    }

    /// Puts payloads that still cannot go back at the front of the retry buffer, in order.
    fn unpark(&mut self, parked: Vec<Payload>) {
        for payload in parked.into_iter().rev() {
            let evicted = self.buffer.push_front(payload);
            self.overflow(evicted);
        }
    }

    /// Tries the spool, oldest first; `false` when a payload still cannot go.
    fn drain_spool(&mut self) -> bool {
        loop {
            if self.paused(Instant::now()) || self.clock.request_timeout().is_none() {
                return self.spooled() == 0;
            }
            let Some(spool) = self.spool.as_mut() else { return true };
            let Some((ticket, record)) = spool.front() else { return true };
            let Some(payload) = Payload::from_record(record) else {
                spool.discard(&ticket);
                continue;
            };
            let items = payload.items();
            let parked = self.deliver(payload);
            match parked.as_slice() {
                [] => {
                    // Accepted, or refused and counted.
                    if let Some(spool) = self.spool.as_mut() {
                        spool.remove(&ticket);
                    }
                }
                // Unchanged: it stays on disk for the next try.
                [same] if same.items() == items => return false,
                _ => {
                    // Part of it was settled (stale items dropped, a half sent): the rest
                    // leaves the spool, so that the settled part is not counted again.
                    if let Some(spool) = self.spool.as_mut() {
                        spool.remove(&ticket);
                    }
                    self.unpark(parked);
                    return false;
                }
            }
        }
    }

    /// Payloads waiting in the spool.
    pub(super) fn spooled(&self) -> usize {
        self.spool.as_ref().map_or(0, Spool::len)
    }

    /// Writes `payload` to the spool; without one, or when it cannot be written, counts it as
    /// lost to `loss`. Whether it was spooled.
    fn spill(&mut self, payload: Payload, loss: DropCause) -> bool {
        if let Some(spool) = &mut self.spool {
            if spool.write(&payload.to_record()).is_ok() {
                return true;
            }
        }
        payload.lose(loss, &self.losses);
        false
    }

    /// Empties the retry buffer into the spool, or counts it lost (`shutdown`); returns how
    /// many payloads were lost.
    pub(super) fn spill_all(&mut self) -> usize {
        let mut lost = 0;
        while let Some(payload) = self.buffer.pop_front() {
            lost += usize::from(!self.spill(payload, DropCause::Shutdown));
        }
        lost
    }

    /// Spools (or counts as `buffer_full`) what the retry buffer evicted.
    fn overflow(&mut self, evicted: Evicted) {
        for payload in evicted {
            self.spill(payload, DropCause::BufferFull);
        }
    }
}

impl SpoolLedger for Losses {
    /// Books what the spool deletes unsent: the items and metric points of a payload that
    /// could be read back, or the file.
    fn discarded(&self, reason: DropReason, record: Option<&Record>) {
        let cause = DropCause::unrefined(reason).unwrap_or(DropCause::SpoolCorrupt);
        match record {
            Some(record) if cause != DropCause::SpoolCorrupt => {
                self.record_items(cause, record.items, &record.points);
            }
            _ => self.record(DropCause::SpoolCorrupt, 1),
        }
    }
}
