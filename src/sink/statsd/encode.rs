//! StatsD messages: metric lines (DogStatsD or plain), and DogStatsD events for captured errors.
//!
//! Each aggregated record becomes messages the server aggregates back to the same numbers:
//!
//! | record | DogStatsD | plain StatsD |
//! |---|---|---|
//! | counter | `name:sum\|c` | `name:sum\|c` |
//! | gauge | `name:last\|g` | `name:last\|g` (a negative value as `name:0\|g` then `name:-5\|g`: a leading sign is a delta in StatsD) |
//! | set | `name:<member hash>\|s`, one per member | the same |
//! | distribution | packed `name:v1:v2…\|d` (or `h`, `ms`), values rebuilt from the sketch with `\|@1/n` for a value seen `n` times | `name:v\|ms:v\|ms…`, each value repeated as often as it was seen up to 1,000 values, rate-weighted above; negative values left out (StatsD rejects them) and counted |
//!
//! A set past 1,000 members per interval has only an estimate: it is sent as that many synthetic
//! members (unique to the process and series, at most 10,000; the rest are counted as dropped).

use std::fmt::Write as _;

use super::packet::Packer;
use crate::batch::{ErrorEvent, MetricRecord, MetricValue, Tag};

/// Synthetic members sent at most for one estimated set.
const MAX_SYNTHETIC_MEMBERS: u64 = 10_000;
/// DogStatsD events are limited to 8 KiB by the Agent.
const MAX_EVENT_BYTES: usize = 8 * 1024;
/// Title length the Datadog event page shows.
const MAX_TITLE_CHARS: usize = 100;
/// Aggregation keys longer than this are cut.
const MAX_AGGREGATION_KEY: usize = 100;

/// How tags reach a plain StatsD server, which has no tags of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TagStyle {
    /// Graphite's tag syntax in the name: `requests;route=/users;status=200` (Graphite 1.1,
    /// and what Etsy statsd makes of DogStatsD tags). Characters other than `A-Z a-z 0-9 _ . -`
    /// in keys and values become `_`.
    #[default]
    Graphite,
    /// DogStatsD's `|#key:value` suffix, for servers that read it (Telegraf, statsd_exporter).
    DogStatsd,
    /// No tags: series that differ only by tags are sent under one name (counters and sets
    /// still add up; gauges keep whichever came last).
    Drop,
}

/// The dialect spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    DogStatsd,
    Plain(TagStyle),
}

/// What encoding needs to know, fixed when the sink is built.
#[derive(Debug, Clone)]
pub(crate) struct Encoding {
    pub(crate) dialect: Dialect,
    /// Prepended to every metric name (for example `myapp.`).
    pub(crate) prefix: String,
    /// DogStatsD type of distributions: `d`, `h` or `ms`.
    pub(crate) distribution_type: &'static str,
    /// `|c:…|e:…|card:…` (DogStatsD only).
    pub(crate) origin_suffix: String,
    /// Values sent one by one for a plain StatsD timer before rates are used instead.
    pub(crate) max_plain_values: u64,
}

/// What encoding one record produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Produced {
    /// Messages pushed.
    pub(crate) messages: u64,
    /// Values left out (negative timings, which plain StatsD rejects).
    pub(crate) dropped: u64,
    /// Values summarised away (synthetic set members past the cap).
    pub(crate) sampled: u64,
}

impl Encoding {
    fn is_dogstatsd(&self) -> bool {
        self.dialect == Dialect::DogStatsd
    }

    /// The metric name as the server accepts it.
    pub(crate) fn name(&self, name: &str) -> String {
        let mut out = String::with_capacity(self.prefix.len() + name.len());
        out.push_str(&self.prefix);
        out.push_str(name);
        if self.is_dogstatsd() {
            // DogStatsD names: a letter, then letters, digits, `_` and `.`.
            let mut cleaned: String = out
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '.' { c } else { '_' })
                .collect();
            if !cleaned.starts_with(|c: char| c.is_ascii_alphabetic()) {
                cleaned.insert_str(0, "m_");
            }
            return cleaned;
        }
        out.chars().map(|c| if is_plain_char(c) { c } else { '_' }).collect()
    }

    /// Tags in the dialect: `(name suffix, message suffix)`.
    fn tags(&self, tags: &[(&str, &str)]) -> (String, String) {
        // A tag needs a key (a `"tags."` field has none): `|#:value` or `;=value` is not one.
        let tags: Vec<(&str, &str)> = tags.iter().copied().filter(|(k, _)| !k.is_empty()).collect();
        let style = match self.dialect {
            Dialect::DogStatsd => TagStyle::DogStatsd,
            Dialect::Plain(style) => style,
        };
        let mut name_suffix = String::new();
        let mut suffix = String::new();
        match style {
            TagStyle::Drop => {}
            TagStyle::Graphite => {
                for (key, value) in &tags {
                    let clean = |t: &str| -> String {
                        t.chars().map(|c| if is_plain_char(c) { c } else { '_' }).collect()
                    };
                    let _ = write!(name_suffix, ";{}={}", clean(key), clean(value));
                }
            }
            TagStyle::DogStatsd => {
                for (i, (key, value)) in tags.iter().enumerate() {
                    suffix.push_str(if i == 0 { "|#" } else { "," });
                    push_dogstatsd_tag(&mut suffix, key);
                    if !value.is_empty() {
                        suffix.push(':');
                        push_dogstatsd_tag(&mut suffix, value);
                    }
                }
            }
        }
        if self.is_dogstatsd() {
            suffix.push_str(&self.origin_suffix);
        }
        (name_suffix, suffix)
    }

    /// Pushes the messages of one record. `tags` are the record's tags merged with the global
    /// ones, in the dialect's naming.
    pub(crate) fn record(
        &self,
        record: &MetricRecord,
        tags: &[(&str, &str)],
        packer: &mut Packer,
    ) -> Produced {
        let (name_suffix, suffix) = self.tags(tags);
        let name = format!("{}{}", self.name(record.name()), name_suffix);
        let mut produced = Produced::default();
        let max = packer.max();
        let mut push_share = |message: &str, values: Option<u64>| {
            if let Some(values) = values {
                packer.share(values as f64);
            }
            packer.push(message.as_bytes());
            produced.messages += 1;
        };
        let mut push = |message: &str| push_share(message, None);
        match record.value() {
            MetricValue::Counter(counter) => {
                let value = match counter.exact_integer().and_then(|i| i64::try_from(i).ok()) {
                    Some(integer) => integer.to_string(),
                    // A float sum that overflowed has no StatsD spelling (`inf` reads as a
                    // number to some servers): left out and counted.
                    None if !counter.sum().is_finite() => {
                        produced.dropped += 1;
                        return produced;
                    }
                    None => number(counter.sum()),
                };
                push(&format!("{name}:{value}|c{suffix}"));
            }
            MetricValue::Gauge(gauge) => {
                if !self.is_dogstatsd() && gauge.last < 0.0 {
                    // In StatsD a signed value changes the gauge: set 0, then add the value.
                    push(&format!("{name}:0|g{suffix}"));
                }
                push(&format!("{name}:{}|g{suffix}", number(gauge.last)));
            }
            MetricValue::Set(set) => match set.member_hashes() {
                // Each member message carries one of the set's unique values.
                Some(members) => {
                    for member in members {
                        push_share(&format!("{name}:{member:016x}|s{suffix}"), Some(1));
                    }
                }
                None => {
                    let sent = set.unique.min(MAX_SYNTHETIC_MEMBERS);
                    let series = record.series_hash();
                    let process = std::process::id();
                    for i in 0..sent {
                        let message = format!("{name}:~{process:x}.{series:x}.{i}|s{suffix}");
                        push_share(&message, Some(1));
                    }
                    produced.sampled += set.unique - sent;
                }
            },
            MetricValue::Distribution(distribution) => {
                let mut pairs = distribution.weighted_values();
                // Bucket midpoints carry 0.79% error: six significant digits say as much. The
                // exact extremes (first and last) stay as they are.
                let last = pairs.len().saturating_sub(1);
                for (value, _) in pairs.iter_mut().take(last).skip(1) {
                    *value = significant(*value, 6);
                }
                let lines = if self.is_dogstatsd() {
                    self.packed_values(&name, &pairs, &suffix, max)
                } else {
                    // StatsD servers reject negative timings (Etsy statsd: "bad line").
                    let negative: u64 =
                        pairs.iter().filter(|(v, _)| *v < 0.0).map(|(_, n)| n).sum();
                    pairs.retain(|(v, _)| *v >= 0.0);
                    produced.dropped += negative;
                    let repeat = distribution.count <= self.max_plain_values;
                    plain_timer_values(&name, &pairs, repeat, &suffix, max)
                };
                // Each line carries the values it stands for, so a datagram lost books them.
                for (line, values) in lines {
                    push_share(&line, Some(values));
                }
            }
        }
        produced
    }

    /// DogStatsD value-packed lines: values seen the same number of times `n` share a line with
    /// `|@1/n`; each line as long as the datagram allows, with room for the suffix. Each line
    /// comes with the number of values it stands for (`n` per value it holds).
    fn packed_values(
        &self,
        name: &str,
        pairs: &[(f64, u64)],
        suffix: &str,
        max: usize,
    ) -> Vec<(String, u64)> {
        let mut by_count: Vec<(u64, Vec<f64>)> = Vec::new();
        for &(value, count) in pairs {
            match by_count.iter_mut().find(|(n, _)| *n == count) {
                Some((_, values)) => values.push(value),
                None => by_count.push((count, vec![value])),
            }
        }
        let mut lines = Vec::new();
        for (count, values) in by_count {
            let rate =
                if count > 1 { format!("|@{}", number(1.0 / count as f64)) } else { String::new() };
            let tail = format!("|{}{rate}{suffix}", self.distribution_type);
            let mut line = String::new();
            let mut held = 0u64;
            for value in values {
                let value = number(value);
                if !line.is_empty() && line.len() + 1 + value.len() + tail.len() > max {
                    line.push_str(&tail);
                    lines.push((std::mem::take(&mut line), held * count));
                    held = 0;
                }
                if line.is_empty() {
                    line.push_str(name);
                }
                line.push(':');
                line.push_str(&value);
                held += 1;
            }
            if !line.is_empty() {
                line.push_str(&tail);
                lines.push((line, held * count));
            }
        }
        lines
    }

    /// A DogStatsD event for a captured error: `_e{title bytes,text bytes}:title|text|…`, its
    /// text cut to fit 8 KiB; `None` when the title and tags alone are over that.
    pub(crate) fn event(&self, error: &ErrorEvent, tags: &[(&str, &str)]) -> Option<String> {
        let title = truncate_chars(&escape(&title(error)), MAX_TITLE_CHARS).to_owned();
        let (_, tag_suffix) = self.tags(tags);
        let key = aggregation_key(error);
        let date = error
            .timestamp
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let meta = format!("|d:{date}|k:{key}|t:error{tag_suffix}");
        let overhead =
            format!("_e{{{},{}}}:", title.len(), 9999).len() + title.len() + 1 + meta.len();
        if overhead > MAX_EVENT_BYTES {
            return None;
        }
        let text = escape(&text(error));
        let text = truncate_bytes(&text, MAX_EVENT_BYTES.saturating_sub(overhead));
        // An escape cut in half would leave a lone backslash.
        let text = text.strip_suffix('\\').unwrap_or(text);
        Some(format!("_e{{{},{}}}:{title}|{text}{meta}", title.len(), text.len()))
    }
}

/// A plain-StatsD timer line: `name:v|ms:v|ms|@r…` (Etsy's several-values form), each value
/// repeated as often as it was seen when `repeat`, else once with `@1/n`. With a tag `suffix`
/// (`|#k:v`, which belongs to a whole line), one value per line, each with the suffix. Each
/// line comes with the number of values it stands for.
fn plain_timer_values(
    name: &str,
    pairs: &[(f64, u64)],
    repeat: bool,
    suffix: &str,
    max: usize,
) -> Vec<(String, u64)> {
    // Each part with the values it stands for: 1 when repeated, `n` with `@1/n`.
    let mut parts: Vec<(String, u64)> = Vec::new();
    for &(value, count) in pairs {
        let value = number(value);
        if repeat || count == 1 {
            parts.extend(std::iter::repeat_n((format!("{value}|ms"), 1), count as usize));
        } else {
            parts.push((format!("{value}|ms|@{}", number(1.0 / count as f64)), count));
        }
    }
    if !suffix.is_empty() {
        return parts
            .iter()
            .map(|(part, values)| (format!("{name}:{part}{suffix}"), *values))
            .collect();
    }
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut held = 0u64;
    for (part, values) in parts {
        if !line.is_empty() && line.len() + 1 + part.len() > max {
            lines.push((std::mem::take(&mut line), held));
            held = 0;
        }
        if line.is_empty() {
            line.push_str(name);
        }
        line.push(':');
        line.push_str(&part);
        held += values;
    }
    if !line.is_empty() {
        lines.push((line, held));
    }
    lines
}

/// Characters plain StatsD servers keep in names (Etsy statsd drops the others).
fn is_plain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// A DogStatsD tag part, with the characters that would end it replaced.
fn push_dogstatsd_tag(out: &mut String, text: &str) {
    out.extend(text.chars().map(|c| if matches!(c, '|' | ',' | '\n' | '\r') { '_' } else { c }));
}

/// A number as StatsD servers read it: integers without a fraction, others in the shortest
/// form that reads back exactly, never with an exponent.
pub(crate) fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// `value` rounded to `digits` significant digits.
fn significant(value: f64, digits: i32) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return value;
    }
    let scale = 10f64.powi(digits - 1 - value.abs().log10().floor() as i32);
    let rounded = (value * scale).round() / scale;
    if rounded.is_finite() {
        rounded
    } else {
        value
    }
}

/// Newlines as the two characters `\n`, as the Agent expects in event texts.
fn escape(text: &str) -> String {
    text.replace('\r', "").replace('\n', "\\n")
}

fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

fn truncate_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn title(error: &ErrorEvent) -> String {
    error
        .message
        .clone()
        .or_else(|| error.error_chain.first().cloned())
        .unwrap_or_else(|| format!("error in {}", error.target()))
}

fn text(error: &ErrorEvent) -> String {
    let mut text = String::new();
    for (i, cause) in error.error_chain.iter().enumerate() {
        let _ = writeln!(text, "{}{cause}", if i == 0 { "error: " } else { "caused by: " });
    }
    for (key, value) in &error.fields {
        let _ = writeln!(text, "{key} = {value}");
    }
    for span in &error.spans {
        let _ = write!(text, "in span {}", span.name);
        for (key, value) in &span.fields {
            let _ = write!(text, " {key}={value}");
        }
        text.push('\n');
    }
    let metadata = error.metadata;
    if let (Some(file), Some(line)) = (metadata.file(), metadata.line()) {
        let _ = writeln!(text, "at {file}:{line}");
    }
    text.trim_end().to_owned()
}

/// Events with the same key are grouped by Datadog: the fingerprint, else the callsite.
fn aggregation_key(error: &ErrorEvent) -> String {
    let key = match &error.fingerprint {
        Some(fingerprint) => fingerprint.clone(),
        None => {
            let metadata = error.metadata;
            format!("{}:{}", metadata.target(), metadata.line().unwrap_or(0))
        }
    };
    let key: String =
        key.chars().map(|c| if matches!(c, '|' | '\n' | '\r') { '_' } else { c }).collect();
    truncate_chars(&key, MAX_AGGREGATION_KEY).to_owned()
}

/// Global tags in DogStatsD's unified service tagging names: `environment` → `env`, `release` →
/// `version`, `service` kept; `host` left out (the Agent tags the host itself).
pub(crate) fn dogstatsd_global_tags(global: &[Tag]) -> Vec<(String, String)> {
    global
        .iter()
        .filter_map(|t| {
            let key = match t.key() {
                "environment" => "env",
                "release" => "version",
                "host" => return None,
                key => key,
            };
            Some((key.to_owned(), t.value().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests;
