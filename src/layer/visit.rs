//! Field visitors for metric events.
//!
//! [`MetricVisitor`] runs on every metric event: it validates the metric values and folds every
//! tag value into the series hash, formatting numbers and `Debug` values into a stack buffer, so
//! it never allocates. [`TagCollector`] runs only when a thread sees a series for the first time,
//! to build the series' owned tags.

use std::fmt::{self, Write as _};

use smallvec::SmallVec;
use tracing_core::field::{Field, Visit};

use super::guard;
use super::plan::{EventPlan, FieldRole, TagKey};
use crate::aggregate::hash::{hash_bytes, hash_integer, hash_unsigned, hash_value_text, tag_hash};
use crate::aggregate::series::{MetricDesc, SeriesTags};
use crate::aggregate::value::Number;
use crate::batch::{MetricKind, Tag};
use crate::fields::{truncate_tag_value, MAX_TAG_VALUE_LEN};
use crate::scrub::FILTERED;
use crate::stats::{Counters, DropReason};

/// A validated metric observation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Observation {
    Number(Number),
    /// A set member: the hash of its text.
    Member(u64),
}

/// A raw metric value, before it is checked against its metric's kind.
#[derive(Clone, Copy)]
enum Raw<'a> {
    /// The common case, kept apart so that it needs no 128-bit arithmetic.
    U64(u64),
    Int(i128),
    U128(u128),
    F64(f64),
    Text(&'a str),
    /// A boolean, or a `Debug` value for a numeric kind: never a valid metric value.
    Invalid,
}

/// Integers up to 2^32 in magnitude are summed exactly in an `i64` cell, which cannot overflow
/// before 2^31 such increments in one interval on one thread; larger ones are summed as floats.
const EXACT_INTEGER_LIMIT: u128 = 1 << 32;

#[inline]
fn integer(value: i128) -> Number {
    if value.unsigned_abs() <= EXACT_INTEGER_LIMIT {
        Number::Int(value as i64)
    } else {
        Number::Float(value as f64)
    }
}

/// Checks a value against its metric: the documented conversion rules.
#[inline]
fn observe(metric: &MetricDesc, raw: Raw<'_>) -> Result<Observation, DropReason> {
    if metric.kind() == MetricKind::Set {
        return match raw {
            Raw::Text(text) => Ok(Observation::Member(hash_value_text(text.as_bytes()))),
            Raw::U64(v) => Ok(Observation::Member(hash_integer(v.into()))),
            Raw::Int(v) => Ok(Observation::Member(hash_integer(v))),
            Raw::U128(v) => Ok(Observation::Member(hash_unsigned(v))),
            Raw::F64(_) | Raw::Invalid => Err(DropReason::InvalidType),
        };
    }
    let number = match raw {
        // Never negative: no monotonic check to make.
        Raw::U64(v) if u128::from(v) <= EXACT_INTEGER_LIMIT => {
            return Ok(Observation::Number(Number::Int(v as i64)));
        }
        Raw::U64(v) => return Ok(Observation::Number(Number::Float(v as f64))),
        Raw::Int(v) => integer(v),
        Raw::U128(v) => i128::try_from(v).map_or(Number::Float(v as f64), integer),
        Raw::F64(v) if !v.is_finite() => return Err(DropReason::NonFinite),
        Raw::F64(v) => Number::Float(v),
        Raw::Text(_) | Raw::Invalid => return Err(DropReason::InvalidType),
    };
    if metric.is_monotonic() && number.as_f64() < 0.0 {
        return Err(DropReason::NegativeMonotonic);
    }
    Ok(Observation::Number(number))
}

/// Visits a metric event on the hot path.
pub(crate) struct MetricVisitor<'a> {
    plan: &'a EventPlan,
    counters: &'a Counters,
    /// The sum of the event's tag hashes.
    pub(crate) tags_hash: u64,
    /// `(metric index, observation)` for every valid metric value.
    pub(crate) observations: SmallVec<[(u8, Observation); 2]>,
    /// Set when formatting a field panicked: the event is dropped (counted once).
    pub(crate) panicked: bool,
}

impl<'a> MetricVisitor<'a> {
    #[inline]
    pub(crate) fn new(plan: &'a EventPlan, counters: &'a Counters) -> Self {
        MetricVisitor {
            plan,
            counters,
            tags_hash: plan.filtered_tags_hash,
            observations: SmallVec::new(),
            panicked: false,
        }
    }

    #[inline]
    fn role(&self, field: &Field) -> Option<&'a FieldRole> {
        self.plan.roles.get(field.index())
    }

    #[inline]
    fn metric(&mut self, index: u8, raw: Raw<'_>) {
        let Some(metric) = self.plan.metrics.get(usize::from(index)) else {
            return;
        };
        match observe(metric, raw) {
            Ok(observation) => self.observations.push((index, observation)),
            Err(reason) => self.counters.dropped(reason, 1),
        }
    }

    #[inline]
    fn tag(&mut self, key: &TagKey, value_hash: u64) {
        self.tags_hash = self.tags_hash.wrapping_add(tag_hash(key.hash, value_hash));
    }

    #[inline]
    fn integer(&mut self, field: &Field, value: i128) {
        match self.role(field) {
            Some(FieldRole::Metric(i)) => self.metric(*i, Raw::Int(value)),
            Some(FieldRole::Tag(key)) => self.tag(key, hash_integer(value)),
            _ => {}
        }
    }

    #[inline]
    fn unsigned(&mut self, field: &Field, value: u64) {
        match self.role(field) {
            Some(FieldRole::Metric(i)) => self.metric(*i, Raw::U64(value)),
            Some(FieldRole::Tag(key)) => self.tag(key, hash_integer(value.into())),
            _ => {}
        }
    }

    /// Formats a value with application code, guarded.
    fn format(&mut self, format: impl FnOnce(&mut TextBuf)) -> Option<TextBuf> {
        let mut text = TextBuf::new();
        match guard::quietly(|| format(&mut text)) {
            Some(()) => Some(text),
            None => {
                self.panicked = true;
                None
            }
        }
    }

    /// A formatted value: a tag, or a member of a set (any other metric refuses it).
    fn formatted(&mut self, field: &Field, format: impl FnOnce(&mut TextBuf)) {
        match self.role(field) {
            Some(FieldRole::Tag(key)) => {
                if let Some(text) = self.format(format) {
                    self.tag(key, hash_value_text(text.as_str().as_bytes()));
                }
            }
            Some(FieldRole::Metric(i)) => {
                let is_set = self
                    .plan
                    .metrics
                    .get(usize::from(*i))
                    .is_some_and(|m| m.kind() == MetricKind::Set);
                if is_set {
                    if let Some(text) = self.format(format) {
                        self.metric(*i, Raw::Text(text.as_str()));
                    }
                } else {
                    self.metric(*i, Raw::Invalid);
                }
            }
            _ => {}
        }
    }
}

impl Visit for MetricVisitor<'_> {
    #[inline]
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.integer(field, value.into());
    }

    #[inline]
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.unsigned(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.integer(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match self.role(field) {
            Some(FieldRole::Metric(i)) => self.metric(*i, Raw::U128(value)),
            Some(FieldRole::Tag(key)) => self.tag(key, hash_unsigned(value)),
            _ => {}
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        match self.role(field) {
            Some(FieldRole::Metric(i)) => self.metric(*i, Raw::F64(value)),
            Some(FieldRole::Tag(_)) => self.formatted(field, |text| {
                let _ = write!(text, "{value}");
            }),
            _ => {}
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        match self.role(field) {
            Some(FieldRole::Metric(i)) => self.metric(*i, Raw::Invalid),
            Some(FieldRole::Tag(key)) => {
                self.tag(key, hash_bytes(if value { b"true" } else { b"false" }));
            }
            _ => {}
        }
    }

    #[inline]
    fn record_str(&mut self, field: &Field, value: &str) {
        match self.role(field) {
            Some(FieldRole::Metric(i)) => self.metric(*i, Raw::Text(value)),
            Some(FieldRole::Tag(key)) => {
                self.tag(key, hash_value_text(truncate_tag_value(value).0.as_bytes()));
            }
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.formatted(field, |text| {
            let _ = write!(text, "{value:?}");
        });
    }
}

/// Collects an event's tags as owned values (first sight of a series only).
pub(crate) struct TagCollector<'a> {
    plan: &'a EventPlan,
    pub(crate) tags: SeriesTags,
    pub(crate) truncated: bool,
}

impl<'a> TagCollector<'a> {
    pub(crate) fn new(plan: &'a EventPlan) -> Self {
        TagCollector { plan, tags: SeriesTags::new(), truncated: false }
    }

    fn push(&mut self, field: &Field, value: &str) {
        match self.plan.roles.get(field.index()) {
            Some(FieldRole::Tag(key)) => {
                let (value, truncated) = truncate_tag_value(value);
                self.truncated |= truncated;
                self.tags.push(Tag::with_key(&key.key, value));
            }
            Some(FieldRole::FilteredTag(key)) => self.tags.push(Tag::with_key(&key.key, FILTERED)),
            _ => {}
        }
    }
}

impl Visit for TagCollector<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, IntText::text(IntText::new().i128(value.into())));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, IntText::text(IntText::new().u128(value.into())));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.push(field, IntText::text(IntText::new().i128(value)));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.push(field, IntText::text(IntText::new().u128(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let mut text = TextBuf::new();
        let _ = write!(text, "{value}");
        self.push(field, text.as_str());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, if value { "true" } else { "false" });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if let Some(FieldRole::FilteredTag(_)) = self.plan.roles.get(field.index()) {
            // Never formatted: the value is not kept.
            self.push(field, FILTERED);
        } else if matches!(self.plan.roles.get(field.index()), Some(FieldRole::Tag(_))) {
            let mut text = TextBuf::new();
            match guard::quietly(|| write!(text, "{value:?}")) {
                Some(_) => {
                    self.truncated |= text.truncated;
                    self.push(field, text.as_str());
                }
                None => self.push(field, "<panicked>"),
            }
        }
    }
}

/// Decimal text of an integer, written on the stack (ASCII bytes).
pub(crate) struct IntText {
    bytes: [u8; 40],
}

impl IntText {
    #[inline]
    pub(crate) fn new() -> Self {
        IntText { bytes: [0; 40] }
    }

    /// Writes the digits of `value` at the end of the buffer; returns where they start.
    #[inline]
    fn digits(&mut self, value: u128) -> usize {
        let mut at = self.bytes.len();
        // 64-bit division is much cheaper than 128-bit: use it whenever the value fits.
        if let Ok(mut small) = u64::try_from(value) {
            loop {
                at -= 1;
                self.bytes[at] = b'0' + (small % 10) as u8;
                small /= 10;
                if small == 0 {
                    return at;
                }
            }
        }
        let mut value = value;
        loop {
            at -= 1;
            self.bytes[at] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                return at;
            }
        }
    }

    #[inline]
    pub(crate) fn u128(&mut self, value: u128) -> &[u8] {
        let at = self.digits(value);
        &self.bytes[at..]
    }

    #[inline]
    pub(crate) fn i128(&mut self, value: i128) -> &[u8] {
        let mut at = self.digits(value.unsigned_abs());
        if value < 0 {
            at -= 1;
            self.bytes[at] = b'-';
        }
        &self.bytes[at..]
    }

    /// The digits as text (for owned tags; off the hot path).
    pub(crate) fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).unwrap_or_default()
    }
}

/// A stack buffer for formatted tag values, cut at [`MAX_TAG_VALUE_LEN`] bytes on a character
/// boundary.
pub(crate) struct TextBuf {
    bytes: [u8; MAX_TAG_VALUE_LEN],
    len: usize,
    pub(crate) truncated: bool,
}

impl TextBuf {
    pub(crate) fn new() -> Self {
        TextBuf { bytes: [0; MAX_TAG_VALUE_LEN], len: 0, truncated: false }
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for TextBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = MAX_TAG_VALUE_LEN - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            self.truncated = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_render_as_decimal() {
        assert_eq!(IntText::new().u128(0), b"0");
        assert_eq!(IntText::new().u128(u128::MAX), u128::MAX.to_string().as_bytes());
        assert_eq!(IntText::new().u128(u64::MAX.into()), u64::MAX.to_string().as_bytes());
        assert_eq!(IntText::new().i128(i128::MIN), i128::MIN.to_string().as_bytes());
        assert_eq!(IntText::new().i128(-42), b"-42");
    }

    #[test]
    fn text_buffer_cuts_on_char_boundaries() {
        let mut buf = TextBuf::new();
        let _ = write!(buf, "{}", "ü".repeat(150));
        assert!(buf.truncated);
        assert_eq!(buf.as_str().len(), MAX_TAG_VALUE_LEN);
    }

    #[test]
    fn observation_rules() {
        let counter = MetricDesc::new("c", MetricKind::Counter, true, None);
        let gauge = MetricDesc::new("g", MetricKind::Gauge, false, None);
        let set = MetricDesc::new("s", MetricKind::Set, false, None);
        assert!(matches!(observe(&counter, Raw::Int(-1)), Err(DropReason::NegativeMonotonic)));
        assert!(matches!(observe(&counter, Raw::F64(f64::NAN)), Err(DropReason::NonFinite)));
        assert!(matches!(observe(&counter, Raw::Text("1")), Err(DropReason::InvalidType)));
        assert!(matches!(
            observe(&counter, Raw::Int(u64::MAX.into())),
            Ok(Observation::Number(Number::Float(_)))
        ));
        assert!(matches!(observe(&gauge, Raw::Int(-1)), Ok(Observation::Number(Number::Int(-1)))));
        assert!(matches!(observe(&counter, Raw::U64(7)), Ok(Observation::Number(Number::Int(7)))));
        assert!(matches!(
            observe(&counter, Raw::U64(u64::MAX)),
            Ok(Observation::Number(Number::Float(_)))
        ));
        assert!(matches!(observe(&set, Raw::F64(1.0)), Err(DropReason::InvalidType)));
        let (Ok(Observation::Member(a)), Ok(Observation::Member(b))) =
            (observe(&set, Raw::Int(5)), observe(&set, Raw::Text("5")))
        else {
            panic!("members expected")
        };
        assert_eq!(a, b);
    }
}
