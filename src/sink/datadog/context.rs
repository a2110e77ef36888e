//! A series' context on the wire: its name, its tags (`key:value` strings), its host and unit.
//!
//! * Tags are the batch's global tags merged with the record's own (the record wins), written
//!   `key:value` (just `key` when the value is empty) and cut to 200 characters, Datadog's limit.
//!   Two keys are renamed to Datadog's unified service tags: `environment` becomes `env` and
//!   `release` becomes `version` (`service` is already right).
//! * `host` is never sent as a tag: it is Datadog's host, sent as the series' host resource
//!   (`resources:[{"type":"host","name":..}]`, `host` in v1 payloads and events). A record's own
//!   `host` tag wins, as a `host:` tag does in DogStatsD; otherwise [`HostSetting`] decides.
//! * Metric names keep ASCII letters, digits, `_` and `.`; anything else becomes `_`, and names
//!   are cut to 200 characters (Datadog's rules; the intake would do the same).
//! * Units are sent only when Datadog knows them ([`unit()`]); common abbreviations are
//!   translated (`ms` → `millisecond`), plurals made singular, others left out rather than
//!   risking a refused payload.

use std::borrow::Cow;

use crate::batch::{merge_tags, Tag};

use crate::sink::json::{self, Object};

/// Longest tag (`key:value`) and metric name Datadog keeps.
const MAX_LEN: usize = 200;

/// How a series' host is chosen when it has no `host` tag of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostSetting {
    /// The batch's `host` global tag (the builder's host, the machine's name by default).
    FromTags,
    /// This name.
    Fixed(String),
    /// No host (serverless): only a record's own `host` tag sets one.
    Off,
}

/// The tags and host of one series or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Context {
    pub(crate) tags: Vec<String>,
    pub(crate) host: Option<String>,
}

impl Context {
    /// The context of something tagged `own`, in a batch tagged `global`.
    pub(crate) fn new(global: &[Tag], own: &[Tag], setting: &HostSetting) -> Context {
        let own_host = own.iter().find(|t| t.key() == "host").map(Tag::value);
        let host = match (own_host, setting) {
            (Some(host), _) => Some(host),
            (None, HostSetting::FromTags) => {
                global.iter().find(|t| t.key() == "host").map(Tag::value)
            }
            (None, HostSetting::Fixed(host)) => Some(host.as_str()),
            (None, HostSetting::Off) => None,
        };
        let tags = merge_tags(global, own)
            .into_iter()
            .filter(|(key, _)| *key != "host")
            .map(|(key, value)| tag(key, value))
            .collect();
        Context { tags, host: host.filter(|h| !h.is_empty()).map(str::to_owned) }
    }

    /// Ends an item's object with its `host` (if any) and `tags`, as distribution points and
    /// events write them.
    pub(crate) fn end(&self, mut o: Object<'_>) {
        if let Some(host) = &self.host {
            o.field("host", host);
        }
        o.with("tags", |out| json::strings(out, self.tags.iter().map(String::as_str)));
        o.end();
    }
}

/// One tag as Datadog writes it.
fn tag(key: &str, value: &str) -> String {
    let key = match key {
        "environment" => "env",
        "release" => "version",
        key => key,
    };
    let mut tag = if value.is_empty() { key.to_owned() } else { format!("{key}:{value}") };
    if let Some((cut, _)) = tag.char_indices().nth(MAX_LEN) {
        tag.truncate(cut);
    }
    tag
}

/// A metric name under Datadog's rules.
pub(crate) fn metric_name(name: &str) -> Cow<'_, str> {
    let keep = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    if name.len() <= MAX_LEN && name.chars().all(keep) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(name.chars().take(MAX_LEN).map(|c| if keep(c) { c } else { '_' }).collect())
}

/// Units Datadog's metric metadata knows (a conservative subset of its unit list).
const UNITS: &[&str] = &[
    // Bytes.
    "bit",
    "byte",
    "kibibyte",
    "mebibyte",
    "gibibyte",
    "tebibyte",
    "pebibyte",
    "exbibyte",
    // Time.
    "nanosecond",
    "microsecond",
    "millisecond",
    "second",
    "minute",
    "hour",
    "day",
    "week",
    // Fractions.
    "percent",
    "percent_nano",
    "fraction",
    "apdex",
    // Network.
    "connection",
    "request",
    "packet",
    "segment",
    "response",
    "message",
    "payload",
    "timeout",
    "datagram",
    "route",
    "session",
    "hop",
    // System.
    "process",
    "thread",
    "host",
    "node",
    "fault",
    "service",
    "instance",
    "cpu",
    "core",
    // Disk.
    "file",
    "inode",
    "sector",
    "block",
    // General.
    "buffer",
    "error",
    "read",
    "write",
    "occurrence",
    "event",
    "time",
    "unit",
    "operation",
    "item",
    "task",
    "worker",
    "resource",
    "email",
    "sample",
    "stage",
    "monitor",
    "location",
    "check",
    "attempt",
    "device",
    "update",
    "method",
    "job",
    "container",
    "execution",
    "invocation",
    "user",
    "success",
    "exception",
    // Caches and databases.
    "hit",
    "miss",
    "eviction",
    "get",
    "set",
    "table",
    "index",
    "lock",
    "transaction",
    "query",
    "row",
    "key",
    "command",
    "offset",
    "record",
    "object",
    "cursor",
    "document",
    "shard",
    "flush",
    "merge",
    "refresh",
    "fetch",
    "column",
    "commit",
    "wait",
];

/// The Datadog name of a unit, if Datadog knows it.
pub(crate) fn unit(unit: &str) -> Option<&'static str> {
    let lower = unit.to_ascii_lowercase();
    let alias = match lower.as_str() {
        "ns" | "nanos" => "nanosecond",
        "us" | "µs" | "micros" => "microsecond",
        "ms" | "msec" | "millis" => "millisecond",
        "s" | "sec" | "secs" => "second",
        "min" | "mins" => "minute",
        "h" | "hr" | "hrs" => "hour",
        "b" => "byte",
        "kib" => "kibibyte",
        "mib" => "mebibyte",
        "gib" => "gibibyte",
        "tib" => "tebibyte",
        "%" | "pct" => "percent",
        "ratio" => "fraction",
        other => other,
    };
    let find = |name: &str| UNITS.iter().copied().find(|u| *u == name);
    find(alias).or_else(|| alias.strip_suffix('s').and_then(find))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
        let mut tags: Vec<Tag> = pairs.iter().map(|(k, v)| Tag::new(k, v)).collect();
        tags.sort_by(|a, b| a.key().cmp(b.key()));
        tags
    }

    #[test]
    fn tags_merge_rename_and_leave_out_host() {
        let global = tags(&[
            ("environment", "prod"),
            ("host", "web-1"),
            ("release", "1.2"),
            ("service", "api"),
        ]);
        let own = tags(&[("route", "/a"), ("flag", ""), ("service", "worker")]);
        let context = Context::new(&global, &own, &HostSetting::FromTags);
        assert_eq!(context.tags, ["env:prod", "flag", "version:1.2", "route:/a", "service:worker"]);
        assert_eq!(context.host.as_deref(), Some("web-1"));
    }

    #[test]
    fn host_follows_the_setting_unless_the_record_has_its_own() {
        let global = tags(&[("host", "web-1")]);
        let fixed = HostSetting::Fixed("box".into());
        assert_eq!(Context::new(&global, &[], &fixed).host.as_deref(), Some("box"));
        assert_eq!(Context::new(&global, &[], &HostSetting::Off).host, None);
        assert!(Context::new(&global, &[], &HostSetting::Off).tags.is_empty());
        let own = tags(&[("host", "db-7")]);
        for setting in [HostSetting::FromTags, fixed, HostSetting::Off] {
            assert_eq!(Context::new(&global, &own, &setting).host.as_deref(), Some("db-7"));
        }
        assert_eq!(Context::new(&[], &[], &HostSetting::FromTags).host, None);
    }

    #[test]
    fn long_tags_are_cut_at_200_characters() {
        let value = "é".repeat(300);
        let context = Context::new(&[], &tags(&[("k", &value)]), &HostSetting::Off);
        assert_eq!(context.tags[0].chars().count(), 200);
    }

    #[test]
    fn metric_names_follow_datadog_rules() {
        assert!(matches!(metric_name("http.requests_total"), Cow::Borrowed(_)));
        assert_eq!(metric_name("span-duration/ms"), "span_duration_ms");
        assert_eq!(metric_name(&"a".repeat(250)).len(), 200);
    }

    #[test]
    fn units_are_translated_or_left_out() {
        assert_eq!(unit("millisecond"), Some("millisecond"));
        assert_eq!(unit("ms"), Some("millisecond"));
        assert_eq!(unit("Seconds"), Some("second"));
        assert_eq!(unit("requests"), Some("request"));
        assert_eq!(unit("bytes"), Some("byte"));
        assert_eq!(unit("widget"), None);
        assert_eq!(unit(""), None);
    }
}
