//! Structured inputs for the fuzz targets: `arbitrary` builds them from the fuzzer's bytes, and
//! they convert into the plain inputs of `tracing_tally::fuzzing`.

use arbitrary::Arbitrary;
use tracing_tally::fuzzing::{BatchInput, ErrorInput, MetricInput};

/// Longest text built from a repeated string (long enough to pass every length limit).
const MAX_TEXT: usize = 12 * 1024;

/// Text, possibly long: `text` repeated `1 + repeat` times, at most [`MAX_TEXT`] bytes.
#[derive(Debug, Clone, Arbitrary)]
pub struct Text {
    text: String,
    repeat: u8,
}

impl Text {
    pub fn build(&self) -> String {
        let times = 1 + usize::from(self.repeat);
        let fit = if self.text.is_empty() { 1 } else { (MAX_TEXT / self.text.len()).max(1) };
        self.text.repeat(times.min(fit))
    }
}

/// A tag: a key (sanitized like a field name) and a value of any length.
#[derive(Debug, Clone, Arbitrary)]
pub struct TagInput {
    key: String,
    value: Text,
}

fn tags(tags: &[TagInput]) -> Vec<(String, String)> {
    tags.iter().map(|t| (t.key.clone(), t.value.build())).collect()
}

/// A number: any `f64` bit pattern, or one of the values that break encoders.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Number {
    Bits(f64),
    Integer(i64),
    Huge(bool),
    Tiny(bool),
    Special(u8),
}

impl Number {
    fn value(self) -> f64 {
        match self {
            Number::Bits(v) => v,
            Number::Integer(i) => i as f64,
            Number::Huge(negative) => {
                if negative {
                    -f64::MAX
                } else {
                    f64::MAX
                }
            }
            Number::Tiny(negative) => {
                if negative {
                    -f64::MIN_POSITIVE
                } else {
                    5e-324
                }
            }
            Number::Special(n) => {
                [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, 1e15, 1e-7, 4294967296.0]
                    [usize::from(n % 8)]
            }
        }
    }
}

#[derive(Debug, Clone, Arbitrary)]
pub struct Metric {
    name: String,
    raw_name: bool,
    kind: u8,
    monotonic: bool,
    unit: Option<String>,
    tags: Vec<TagInput>,
    values: Vec<Number>,
    /// Repeats `values` this many extra times (many values in one interval).
    repeat: u8,
    unique: u64,
    age_secs: u16,
}

#[derive(Debug, Clone, Arbitrary)]
pub struct Error {
    message: Option<Text>,
    chain: Vec<Text>,
    fingerprint: Option<Text>,
    tags: Vec<TagInput>,
    fields: Vec<Text>,
    spans: Vec<(u8, Vec<String>)>,
    age_secs: u32,
}

#[derive(Debug, Clone, Arbitrary)]
pub struct BatchSpec {
    metrics: Vec<Metric>,
    errors: Vec<Error>,
    global_tags: Vec<TagInput>,
}

impl BatchSpec {
    pub fn build(&self) -> BatchInput {
        BatchInput {
            metrics: self
                .metrics
                .iter()
                .map(|m| MetricInput {
                    name: m.name.clone(),
                    raw_name: m.raw_name,
                    kind: m.kind,
                    monotonic: m.monotonic,
                    unit: m.unit.clone(),
                    tags: tags(&m.tags),
                    values: std::iter::repeat_n(&m.values, 1 + usize::from(m.repeat % 32))
                        .flatten()
                        .map(|n| n.value())
                        .collect(),
                    // Mostly a few hundred synthetic set members, now and then the 10,000 cap.
                    unique: if m.unique % 64 == 0 { m.unique % 20_000 } else { m.unique % 1_500 },
                    // Mostly inside the intake's window, sometimes outside.
                    age_secs: u32::from(m.age_secs) * 2,
                })
                .collect(),
            errors: self
                .errors
                .iter()
                .map(|e| ErrorInput {
                    message: e.message.as_ref().map(Text::build),
                    chain: e.chain.iter().map(Text::build).collect(),
                    fingerprint: e.fingerprint.as_ref().map(Text::build),
                    tags: tags(&e.tags),
                    fields: e.fields.iter().map(Text::build).collect(),
                    spans: e.spans.clone(),
                    age_secs: e.age_secs % (20 * 3600),
                })
                .collect(),
            global_tags: tags(&self.global_tags),
        }
    }
}
