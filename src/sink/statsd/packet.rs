//! Packing messages into datagrams: as many whole messages as fit, separated by `\n`, never one
//! split across datagrams, never a datagram over the limit. A message longer than the limit on
//! its own is dropped and counted.
//!
//! A record's messages carry the record (see [`Packer::carry`]) into the datagrams that hold
//! them, so that a datagram given up books exactly the metric points and values it stood for.
//! A counter or a gauge travels whole with its (first) message. A set's members and a
//! distribution's lines say what each stands for ([`Packer::share`]): a member one unique
//! value, a line the values it holds, a value sent with `|@1/n` standing for `n` of them; the
//! first also carries the point. A datagram lost then books what the server would have counted
//! from it, no more and no less.

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
    /// The record the next messages stand for.
    pending: Option<Carried>,
    /// Values of `pending` that no message took yet.
    pending_values: f64,
    /// Whether a message took `pending`'s point already.
    pending_point_taken: bool,
    /// Values of `pending` the next message carries (`None`: all that is left).
    share: Option<f64>,
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
            pending_values: 0.0,
            pending_point_taken: false,
            share: None,
            done: Vec::new(),
            oversized: 0,
            lost: Vec::new(),
        }
    }

    /// Makes the next messages stand for `record`: the next one all of it, unless
    /// [`share`](Self::share) says how much of it each carries.
    pub(crate) fn carry(&mut self, record: Carried) {
        self.pending_values = record.values();
        self.pending_point_taken = false;
        self.share = None;
        self.pending = Some(record);
    }

    /// Makes the next message carry `values` of the record set with [`carry`](Self::carry)
    /// (the values it holds, weighted by their sample rate).
    pub(crate) fn share(&mut self, values: f64) {
        self.share = Some(values);
    }

    /// What the record set with [`carry`](Self::carry) still carries when no message took it:
    /// all of it when it produced no message, or the values its messages left out.
    pub(crate) fn take_pending(&mut self) -> Option<Carried> {
        let record = self.pending.take()?;
        self.share = None;
        let left = self.pending_values;
        (!self.pending_point_taken || left > 0.0)
            .then(|| record.part(left, !self.pending_point_taken))
    }

    /// What the next message carries of the pending record, if anything.
    fn take_share(&mut self) -> Option<Carried> {
        let record = self.pending.as_ref()?;
        let part = match self.share.take() {
            Some(values) => {
                let part = record.part(values, !self.pending_point_taken);
                self.pending_values -= values;
                part
            }
            None => {
                let part = record.part(self.pending_values, !self.pending_point_taken);
                self.pending = None;
                part
            }
        };
        self.pending_point_taken = true;
        Some(part)
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
            let part = self.take_share();
            self.lost.extend(part);
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
        let part = self.take_share();
        self.current_carried.extend(part);
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

    /// What a DogStatsD distribution line stands for, as the Agent counts it: its values, each
    /// weighted by `1 / rate`.
    fn weight(line: &str) -> f64 {
        let mut fields = line.split('|');
        let values = fields.next().unwrap().split(':').count() - 1;
        let rate: f64 =
            fields.find_map(|f| f.strip_prefix('@')).map_or(1.0, |r| r.parse().unwrap());
        values as f64 * (1.0 / rate).round()
    }

    #[test]
    fn a_record_split_over_datagrams_carries_in_each_what_its_lines_stand_for() {
        use crate::aggregate::sketch::Sketch;
        use crate::batch::{DistributionValue, MetricKind, MetricValue};
        use crate::sink::statsd::encode::{Dialect, Encoding};
        use crate::stats::MetricLosses;

        // Values seen once and values seen three times (sent with `|@0.333…`), far enough apart
        // to keep their own sketch buckets.
        let mut values: Vec<f64> = (1..=40).map(|i| f64::from(i) * 100.0).collect();
        for i in 1..=20 {
            values.extend([f64::from(10_000 + i * 1_000); 3]);
        }
        let mut sketch = Sketch::new();
        values.iter().for_each(|&v| sketch.insert(v));
        let value = MetricValue::Distribution(DistributionValue {
            count: values.len() as u64,
            sum: values.iter().sum(),
            min: 100.0,
            max: 30_000.0,
            sketch: Box::new(sketch),
        });
        let record =
            crate::batch::testing::record("lat", MetricKind::Distribution, None, &[], value);
        let encoding = Encoding {
            dialect: Dialect::DogStatsd,
            prefix: String::new(),
            distribution_type: "d",
            origin_suffix: String::new(),
            max_plain_values: 1_000,
        };
        let mut packer = Packer::new(96);
        packer.carry(Carried::of(&record));
        encoding.record(&record, &[], &mut packer);
        assert_eq!(packer.take_pending(), None, "every value went into a line");
        let (datagrams, oversized, _) = packer.finish();
        assert!(datagrams.len() > 2 && oversized == 0, "{datagrams:?}");
        let (mut points, mut total) = (0, 0.0);
        for datagram in &datagrams {
            let text = std::str::from_utf8(&datagram.bytes).unwrap();
            // Losing this datagram alone books what the Agent would have counted from it.
            let ledger = MetricLosses::default();
            ledger.lose("dogstatsd", &datagram.carried);
            let booked = ledger.snapshot().first().map_or((0, 0.0), |row| (row.points, row.values));
            assert_eq!(booked.1, text.lines().map(weight).sum::<f64>(), "{text}");
            points += booked.0;
            total += booked.1;
        }
        assert!(datagrams.iter().any(|d| std::str::from_utf8(&d.bytes).unwrap().contains("|@")));
        assert_eq!((points, total), (1, values.len() as f64), "the point is booked once");
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
