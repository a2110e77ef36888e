//! Packing messages into datagrams: as many whole messages as fit, separated by `\n`, never one
//! split across datagrams, never a datagram over the limit. A message longer than the limit on
//! its own is dropped and counted.
//!
//! A record's first message carries the record (see [`Packer::carry`]) into the datagram that
//! holds it, so that a datagram given up books the metric points it stood for.

use crate::stats::Carried;

/// Datagrams being filled.
#[derive(Debug)]
pub(crate) struct Packer {
    max: usize,
    current: Vec<u8>,
    /// Messages in `current`.
    current_messages: u32,
    /// The records of `current`.
    current_carried: Vec<Carried>,
    /// The record the next message stands for.
    pending: Option<Carried>,
    done: Vec<Datagram>,
    /// Messages dropped for being longer than a datagram.
    pub(crate) oversized: u64,
    /// Records whose first message was dropped for being longer than a datagram.
    pub(crate) lost: Vec<Carried>,
}

/// A finished datagram, the number of messages in it, and the records it stands for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Datagram {
    pub(crate) bytes: Vec<u8>,
    pub(crate) messages: u32,
    pub(crate) carried: Vec<Carried>,
}

impl Packer {
    /// A packer for datagrams of at most `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        Packer {
            max: max.max(1),
            current: Vec::with_capacity(max),
            current_messages: 0,
            current_carried: Vec::new(),
            pending: None,
            done: Vec::new(),
            oversized: 0,
            lost: Vec::new(),
        }
    }

    /// Makes the next message stand for `record` (its first message).
    pub(crate) fn carry(&mut self, record: Carried) {
        self.pending = Some(record);
    }

    /// The record set with [`carry`](Self::carry) when no message took it (the record produced
    /// none).
    pub(crate) fn take_pending(&mut self) -> Option<Carried> {
        self.pending.take()
    }

    /// The largest message that fits a datagram.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Adds one message (without its `\n`).
    pub(crate) fn push(&mut self, message: &[u8]) {
        if message.is_empty() {
            return;
        }
        if message.len() > self.max {
            self.oversized += 1;
            self.lost.extend(self.pending.take());
            return;
        }
        let separator = usize::from(!self.current.is_empty());
        if self.current.len() + separator + message.len() > self.max {
            self.seal();
        }
        if !self.current.is_empty() {
            self.current.push(b'\n');
        }
        self.current.extend_from_slice(message);
        self.current_messages += 1;
        self.current_carried.extend(self.pending.take());
    }

    fn seal(&mut self) {
        if self.current.is_empty() {
            return;
        }
        let bytes = std::mem::replace(&mut self.current, Vec::with_capacity(self.max));
        let carried = std::mem::take(&mut self.current_carried);
        self.done.push(Datagram { bytes, messages: self.current_messages, carried });
        self.current_messages = 0;
    }

    /// Every datagram, the last one included, and the records lost with oversized messages.
    pub(crate) fn finish(mut self) -> (Vec<Datagram>, u64, Vec<Carried>) {
        self.seal();
        (self.done, self.oversized, self.lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_fill_datagrams_up_to_exactly_the_limit() {
        let mut packer = Packer::new(10);
        for message in ["aaaa", "bbbb", "c", "dddddddddd", "e", "fffffffffff"] {
            packer.push(message.as_bytes());
        }
        let (datagrams, oversized, _) = packer.finish();
        let texts: Vec<&str> =
            datagrams.iter().map(|d| std::str::from_utf8(&d.bytes).unwrap()).collect();
        // "aaaa\nbbbb" is 9 bytes; "\nc" would make 11.
        assert_eq!(texts, ["aaaa\nbbbb", "c", "dddddddddd", "e"]);
        assert_eq!(datagrams.iter().map(|d| d.messages).collect::<Vec<_>>(), [2, 1, 1, 1]);
        assert_eq!(oversized, 1);
        assert!(datagrams.iter().all(|d| d.bytes.len() <= 10));
    }

    #[test]
    fn a_message_of_exactly_the_limit_fits_alone() {
        let mut packer = Packer::new(5);
        packer.push(b"ab");
        packer.push(b"cd");
        packer.push(b"vwxyz");
        let (datagrams, _, _) = packer.finish();
        assert_eq!(datagrams[0].bytes, b"ab\ncd");
        assert_eq!(datagrams[1].bytes, b"vwxyz");
    }
}
