//! The queue between the flusher and a lane thread: a room per kind, and flush barriers.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::part::{Part, KINDS};
use crate::flush::ticket::FlushTicket;

/// Flushes waiting at one lane at most; more fail at once (a lane that far behind is stuck).
pub(super) const MAX_BARRIERS: usize = 16;

/// A flush waiting for what was queued before it.
pub(super) struct Barrier {
    pub(super) seq: u64,
    pub(super) ticket: Arc<FlushTicket>,
    pub(super) shutdown: bool,
}

/// What the lane thread does next.
pub(super) enum Next {
    Export(Part),
    Barrier(Barrier),
    Stop,
}

/// The queue between the flusher and a lane thread.
pub(super) struct Queue {
    pub(super) rooms: [VecDeque<(u64, Part)>; KINDS],
    /// Room used per kind (see [`Part::weight`]).
    pub(super) used: [usize; KINDS],
    pub(super) barriers: VecDeque<Barrier>,
    pub(super) next_seq: u64,
    /// A shutdown was queued: nothing more is taken.
    pub(super) closing: bool,
    /// The handle is gone without a shutdown: finish what is queued, then stop.
    pub(super) orphaned: bool,
}

impl Queue {
    pub(super) fn new() -> Queue {
        Queue {
            rooms: Default::default(),
            used: [0; KINDS],
            barriers: VecDeque::new(),
            next_seq: 0,
            closing: false,
            orphaned: false,
        }
    }

    pub(super) fn next(&mut self) -> Option<Next> {
        // The most urgent part queued before the first barrier, or before none.
        let limit = self.barriers.front().map_or(u64::MAX, |b| b.seq);
        let room = self.rooms.iter().position(|room| room.front().is_some_and(|(s, _)| *s < limit));
        if let Some(room) = room {
            let (_, part) = self.rooms[room].pop_front()?;
            self.used[room] = self.used[room].saturating_sub(part.weight());
            return Some(Next::Export(part));
        }
        if let Some(barrier) = self.barriers.pop_front() {
            return Some(Next::Barrier(barrier));
        }
        self.orphaned.then_some(Next::Stop)
    }
}

/// What the flusher and a lane thread share.
pub(crate) struct Channel {
    pub(super) queue: Mutex<Queue>,
    pub(super) ready: Condvar,
}

impl Channel {
    pub(super) fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
