//! The `statsd_encode` target: the StatsD sink's encoding and packing.

use super::inputs::{batch, BatchInput};
use crate::batch::MetricValue;

/// What the StatsD sink is configured with.
#[derive(Debug, Clone, Default)]
pub struct StatsdInput {
    /// DogStatsD (0), or plain StatsD with Graphite tags (1), DogStatsD tags (2), no tags (3).
    pub dialect: u8,
    /// The metric name prefix.
    pub prefix: String,
    /// The configured packet size (clamped as the options clamp it).
    pub max_packet: u32,
    /// Distributions as `d`, `h` or `ms` (modulo 3).
    pub distribution_type: u8,
    /// The batch.
    pub batch: BatchInput,
}

/// What [`statsd`] produced.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatsdOutcome {
    /// Datagrams.
    pub datagrams: usize,
    /// Messages sent.
    pub messages: u64,
    /// Messages dropped for being longer than a datagram.
    pub oversized: u64,
}

pub(super) fn statsd_encoding(
    dialect: crate::sink::statsd::encode::Dialect,
    prefix: &str,
    distribution_type: &'static str,
) -> crate::sink::statsd::encode::Encoding {
    crate::sink::statsd::encode::Encoding {
        dialect,
        prefix: prefix.to_owned(),
        distribution_type,
        origin_suffix: String::new(),
        max_plain_values: 1_000,
    }
}

/// Encodes a batch as the StatsD sink does and checks the datagrams.
pub fn statsd(input: &StatsdInput) -> StatsdOutcome {
    use crate::sink::statsd::encode::{dogstatsd_global_tags, Dialect, TagStyle};
    use crate::sink::statsd::merge;
    use crate::sink::statsd::packet::Packer;

    let dialect = match input.dialect % 4 {
        0 => Dialect::DogStatsd,
        1 => Dialect::Plain(TagStyle::Graphite),
        2 => Dialect::Plain(TagStyle::DogStatsd),
        _ => Dialect::Plain(TagStyle::Drop),
    };
    let distribution_type = ["d", "h", "ms"][usize::from(input.distribution_type % 3)];
    let encoding = statsd_encoding(dialect, &input.prefix, distribution_type);
    let max = usize::try_from(input.max_packet).unwrap_or(usize::MAX).clamp(64, 65_467);
    let batch = batch(&input.batch);
    let global: Vec<(String, String)> = match dialect {
        Dialect::DogStatsd => dogstatsd_global_tags(batch.global_tags()),
        Dialect::Plain(_) => {
            batch.global_tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect()
        }
    };
    let mut packer = Packer::new(max);
    let mut messages = 0u64;
    for record in batch.metrics() {
        let tags = merge(&global, record.tags());
        let produced = encoding.record(record, &tags, &mut packer);
        messages += produced.messages;
        // The same record on its own: its lines, and its values accounted for.
        let mut own = Packer::new(max);
        let alone = encoding.record(record, &tags, &mut own);
        assert_eq!(alone, produced);
        let (datagrams, oversized, _) = own.finish();
        let lines: Vec<String> = datagrams
            .iter()
            .flat_map(|d| std::str::from_utf8(&d.bytes).expect("UTF-8").split('\n'))
            .map(str::to_owned)
            .collect();
        assert_eq!(lines.len() as u64 + oversized, produced.messages);
        match record.value() {
            MetricValue::Set(set) => {
                let members =
                    set.member_hashes().map_or(set.unique.min(10_000), |m| m.len() as u64);
                assert_eq!(produced.messages, members);
                assert_eq!(produced.sampled, set.unique - members);
            }
            MetricValue::Distribution(d) if oversized == 0 => {
                let sent: u64 = lines.iter().map(|l| weighted_values(l, dialect)).sum();
                assert_eq!(sent + produced.dropped, d.count, "{lines:?}");
            }
            _ => {}
        }
    }
    for error in batch.errors() {
        let tags = merge(&global, &error.tags);
        // `None` is counted by the sink (`sink_error`).
        if let Some(event) = encoding.event(error, &tags) {
            // Checked here too: an event over the packet size never reaches a datagram.
            check_statsd_line(&event, dialect);
            packer.push(event.as_bytes());
            messages += 1;
        }
    }
    let (datagrams, oversized, _) = packer.finish();
    let mut sent = 0u64;
    for datagram in &datagrams {
        assert!(datagram.bytes.len() <= max, "datagram of {} > {max}", datagram.bytes.len());
        let text = std::str::from_utf8(&datagram.bytes).expect("datagrams are UTF-8");
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.len(), datagram.messages as usize);
        for line in lines {
            check_statsd_line(line, dialect);
        }
        sent += u64::from(datagram.messages);
    }
    assert_eq!(sent + oversized, messages, "every message is sent or counted");
    StatsdOutcome { datagrams: datagrams.len(), messages: sent, oversized }
}

/// How many recorded values a distribution line stands for (`|@1/n` weighs each value `n`).
fn weighted_values(line: &str, dialect: crate::sink::statsd::encode::Dialect) -> u64 {
    use crate::sink::statsd::encode::Dialect;
    let weight = |rate: Option<&str>| -> u64 {
        rate.map_or(1, |r| (1.0 / r.parse::<f64>().expect("rate")).round() as u64)
    };
    // A tag suffix (`|#k:v,...`) belongs to the whole line and holds `:` of its own.
    let line = line.split_once("|#").map_or(line, |(values, _)| values);
    let (_, values) = line.split_once(':').expect("name:values");
    if dialect == Dialect::DogStatsd {
        let mut parts = values.split('|');
        let count = parts.next().unwrap_or_default().split(':').count() as u64;
        let rate = parts.find_map(|p| p.strip_prefix('@'));
        count * weight(rate)
    } else {
        values
            .split(':')
            .map(|segment| weight(segment.split('|').find_map(|p| p.strip_prefix('@'))))
            .sum()
    }
}

pub(super) fn check_statsd_name(name: &str, dialect: crate::sink::statsd::encode::Dialect) {
    use crate::sink::statsd::encode::Dialect;
    match dialect {
        Dialect::DogStatsd => {
            assert!(name.starts_with(|c: char| c.is_ascii_alphabetic()), "name {name:?}");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.')),
                "name {name:?}"
            );
        }
        Dialect::Plain(_) => assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')),
            "name {name:?}"
        ),
    }
}

fn check_number(value: &str, line: &str) {
    assert!(
        !value.is_empty() && value.chars().all(|c| c.is_ascii_digit() || matches!(c, '-' | '.')),
        "value {value:?} in {line:?}"
    );
    assert!(value.parse::<f64>().is_ok_and(f64::is_finite), "value {value:?} in {line:?}");
}

fn check_dogstatsd_tags(tags: &str, line: &str) {
    for tag in tags.split(',') {
        assert!(!tag.is_empty() && !tag.starts_with(':'), "tag {tag:?} in {line:?}");
        assert!(!tag.contains(['|', '\n', '\r']), "tag {tag:?} in {line:?}");
    }
}

/// Checks one message against the grammar of its dialect.
fn check_statsd_line(line: &str, dialect: crate::sink::statsd::encode::Dialect) {
    use crate::sink::statsd::encode::{Dialect, TagStyle};
    assert!(!line.is_empty(), "empty line");
    assert!(!line.contains('\r'), "carriage return in {line:?}");
    if let Some(rest) = line.strip_prefix("_e{") {
        assert!(line.len() <= 8 * 1024, "event of {} bytes", line.len());
        let (lengths, rest) = rest.split_once("}:").expect("_e{title,text}:");
        let (title_len, text_len) = lengths.split_once(',').expect("title,text lengths");
        let (title_len, text_len): (usize, usize) =
            (title_len.parse().expect("length"), text_len.parse().expect("length"));
        let title = rest.get(..title_len).expect("title length is a char boundary");
        let rest = rest[title_len..].strip_prefix('|').expect("| after the title");
        let text = rest.get(..text_len).expect("text length is a char boundary");
        let meta = &rest[text_len..];
        assert!(!title.contains('\n') && !text.contains('\n'), "{line:?}");
        let meta = meta.strip_prefix('|').expect("| after the text");
        for field in meta.split('|') {
            if let Some(tags) = field.strip_prefix('#') {
                check_dogstatsd_tags(tags, line);
            } else {
                assert!(
                    ["d:", "k:", "t:", "c:", "e:", "card:"].iter().any(|p| field.starts_with(p)),
                    "event field {field:?} in {line:?}"
                );
            }
        }
        return;
    }
    let (name, rest) = line.split_once(':').expect("name:value");
    match dialect {
        Dialect::DogStatsd => {
            check_statsd_name(name, dialect);
            let mut fields = rest.split('|');
            let values = fields.next().unwrap_or_default();
            let kind = fields.next().expect("a type");
            assert!(["c", "g", "s", "d", "h", "ms"].contains(&kind), "type {kind:?} in {line:?}");
            for value in values.split(':') {
                if kind == "s" {
                    assert!(!value.is_empty(), "{line:?}");
                } else {
                    check_number(value, line);
                }
            }
            for field in fields {
                if let Some(rate) = field.strip_prefix('@') {
                    let rate: f64 = rate.parse().expect("rate");
                    assert!(rate > 0.0 && rate <= 1.0, "{line:?}");
                } else if let Some(tags) = field.strip_prefix('#') {
                    check_dogstatsd_tags(tags, line);
                } else {
                    assert!(
                        ["c:", "e:", "card:"].iter().any(|p| field.starts_with(p)),
                        "field {field:?} in {line:?}"
                    );
                }
            }
        }
        Dialect::Plain(style) => {
            let mut name_parts = name.split(';');
            check_statsd_name(name_parts.next().unwrap_or_default(), dialect);
            for tag in name_parts {
                assert_eq!(style, TagStyle::Graphite, "{line:?}");
                let (key, value) = tag.split_once('=').expect("key=value");
                check_statsd_name(key, dialect);
                check_statsd_name(value, dialect);
            }
            let rest = match rest.split_once("|#") {
                Some((rest, tags)) => {
                    assert_eq!(style, TagStyle::DogStatsd, "{line:?}");
                    check_dogstatsd_tags(tags, line);
                    rest
                }
                None => rest,
            };
            for segment in rest.split(':') {
                let mut fields = segment.split('|');
                let value = fields.next().unwrap_or_default();
                let kind = fields.next().expect("a type");
                assert!(["c", "g", "s", "ms"].contains(&kind), "type {kind:?} in {line:?}");
                if kind == "s" {
                    assert!(!value.is_empty(), "{line:?}");
                } else {
                    check_number(value, line);
                }
                if kind == "ms" {
                    assert!(!value.starts_with('-'), "negative timing in {line:?}");
                }
                for field in fields {
                    let rate: f64 =
                        field.strip_prefix('@').expect("only a rate").parse().expect("rate");
                    assert!(rate > 0.0 && rate <= 1.0, "{line:?}");
                }
            }
        }
    }
}
