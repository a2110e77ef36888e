//! The retry buffer: payloads that could not be delivered yet, tried again at the next export
//! or flush.
//!
//! It holds at most `capacity` bytes of payloads (their compressed bodies plus a little
//! bookkeeping). Adding past that evicts the oldest payloads first: the newest data is the most
//! useful once Datadog can be reached again, and old points age out of the intake's window
//! anyway. The sender writes what is evicted to its spool, if it has one, or counts its items
//! (`buffer_full`).

use std::collections::VecDeque;

#[cfg(test)]
use super::losses::{DropCause, Losses};
use super::payload::Payload;

/// Payloads evicted to make room, oldest first.
pub(crate) type Evicted = Vec<Payload>;

/// Payloads waiting for a retry, oldest first.
#[derive(Debug)]
pub(crate) struct RetryBuffer {
    payloads: VecDeque<Payload>,
    bytes: usize,
    capacity: usize,
}

impl RetryBuffer {
    pub(crate) fn new(capacity: usize) -> Self {
        RetryBuffer { payloads: VecDeque::new(), bytes: 0, capacity }
    }

    /// Adds the newest payload, evicting the oldest while over capacity.
    #[must_use = "evicted payloads must be spooled or counted"]
    pub(crate) fn push_back(&mut self, payload: Payload) -> Evicted {
        self.bytes += payload.size();
        self.payloads.push_back(payload);
        self.evict()
    }

    /// Puts back a payload taken with [`pop_front`](Self::pop_front), as the oldest.
    #[must_use = "evicted payloads must be spooled or counted"]
    pub(crate) fn push_front(&mut self, payload: Payload) -> Evicted {
        self.bytes += payload.size();
        self.payloads.push_front(payload);
        self.evict()
    }

    /// Takes the oldest payload.
    pub(crate) fn pop_front(&mut self) -> Option<Payload> {
        let payload = self.payloads.pop_front()?;
        self.bytes = self.bytes.saturating_sub(payload.size());
        Some(payload)
    }

    /// Drops everything, counting it as `loss`.
    #[cfg(test)]
    pub(crate) fn clear(&mut self, loss: DropCause, losses: &Losses) {
        while let Some(payload) = self.pop_front() {
            payload.lose(loss, losses);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.payloads.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    fn evict(&mut self) -> Evicted {
        let mut evicted = Vec::new();
        while self.bytes > self.capacity {
            let Some(oldest) = self.pop_front() else { break };
            evicted.push(oldest);
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::datadog::losses::testing::recording;
    use crate::sink::datadog::options::Compression;
    use crate::sink::datadog::payload::{pack, Items, Kind};

    fn payload(tag: u8, items: usize) -> Payload {
        let mut all = Items::default();
        for _ in 0..items {
            all.push(0, None, |out| out.extend_from_slice(&[b'"', b'a' + tag, b'"']));
        }
        pack(Kind::Series, Compression::None, &all, 0..items)
    }

    #[test]
    fn evicts_the_oldest_past_capacity() {
        let (losses, _) = recording();
        let size = payload(0, 2).size();
        let mut buffer = RetryBuffer::new(size * 3);
        let mut evicted = Vec::new();
        for tag in 0..5 {
            evicted.extend(buffer.push_back(payload(tag, 2)));
        }
        assert_eq!(buffer.len(), 3);
        assert_eq!(buffer.bytes(), size * 3);
        assert_eq!(evicted, [payload(0, 2), payload(1, 2)]);
        assert_eq!(buffer.pop_front(), Some(payload(2, 2)));
        assert!(buffer.push_front(payload(2, 2)).is_empty());
        buffer.clear(DropCause::Shutdown, &losses);
        assert!(buffer.is_empty());
        assert_eq!((buffer.bytes(), losses.get(DropCause::Shutdown)), (0, 6));
    }

    #[test]
    fn a_payload_larger_than_the_buffer_is_evicted_at_once() {
        let mut buffer = RetryBuffer::new(10);
        let evicted = buffer.push_back(payload(0, 5));
        assert!(buffer.is_empty());
        assert_eq!(evicted, [payload(0, 5)]);
    }
}
