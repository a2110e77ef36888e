//! Packing messages into datagrams: as many whole messages as fit, separated by `\n`, never one
//! split across datagrams, never a datagram over the limit. A message longer than the limit on
//! its own is dropped and counted.

/// Datagrams being filled.
#[derive(Debug)]
pub(crate) struct Packer {
    max: usize,
    current: Vec<u8>,
    /// Messages in `current`.
    current_messages: u32,
    done: Vec<Datagram>,
    /// Messages dropped for being longer than a datagram.
    pub(crate) oversized: u64,
}

/// A finished datagram and the number of messages in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Datagram {
    pub(crate) bytes: Vec<u8>,
    pub(crate) messages: u32,
}

impl Packer {
    /// A packer for datagrams of at most `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        Packer {
            max: max.max(1),
            current: Vec::with_capacity(max),
            current_messages: 0,
            done: Vec::new(),
            oversized: 0,
        }
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
    }

    fn seal(&mut self) {
        if self.current.is_empty() {
            return;
        }
        let bytes = std::mem::replace(&mut self.current, Vec::with_capacity(self.max));
        self.done.push(Datagram { bytes, messages: self.current_messages });
        self.current_messages = 0;
    }

    /// Every datagram, the last one included.
    pub(crate) fn finish(mut self) -> (Vec<Datagram>, u64) {
        self.seal();
        (self.done, self.oversized)
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
        let (datagrams, oversized) = packer.finish();
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
        let (datagrams, _) = packer.finish();
        assert_eq!(datagrams[0].bytes, b"ab\ncd");
        assert_eq!(datagrams[1].bytes, b"vwxyz");
    }
}
