//! Configuration from environment variables: [`Builder::from_env`] (its documentation lists
//! them).

use std::time::Duration;

use tracing_core::LevelFilter;

use crate::builder::Builder;
use crate::error::BuildError;
use crate::summary::SummaryOutput;

impl Builder {
    /// Applies the `TALLY_*` environment variables (and the conventional `SENTRY_*`/`DD_*`
    /// ones) that are set, listed below. A variable that cannot be parsed makes
    /// [`Builder::build`] fail with an error naming it.
    ///
    /// # Environment variables
    ///
    /// | variable | builder setting | format |
    /// |---|---|---|
    /// | `TALLY_JSONL` | `jsonl_path` / `jsonl_stdout` | a path, or `-` for standard output |
    /// | `TALLY_ROLLUP_INTERVAL` | `rollup_interval` | seconds (`10`, `0.5`) |
    /// | `TALLY_FLUSH_INTERVAL` | `flush_interval` | seconds |
    /// | `TALLY_SHUTDOWN_TIMEOUT` | `shutdown_timeout` | seconds |
    /// | `TALLY_MANUAL` | `manual` | boolean |
    /// | `TALLY_SERVICE`, else `DD_SERVICE` | `service` | text |
    /// | `TALLY_ENVIRONMENT`, else `SENTRY_ENVIRONMENT`, else `DD_ENV` | `environment` | text |
    /// | `TALLY_RELEASE`, else `SENTRY_RELEASE`, else `DD_VERSION` | `release` | text |
    /// | `TALLY_HOST` | `host` | text; empty leaves the host tag out |
    /// | `TALLY_TAGS`, `DD_TAGS` | `tag` | `key:value` pairs separated by commas or spaces |
    /// | `TALLY_SPAN_LEVEL` | `span_level` | `trace`, `debug`, `info`, `warn`, `error`, `off` |
    /// | `TALLY_SPAN_METRIC` | `span_metric` | metric name |
    /// | `TALLY_SPAN_TAGS` | `span_tags` | field names separated by commas |
    /// | `TALLY_BUSY_IDLE` | `busy_idle` | boolean |
    /// | `TALLY_CAPTURE_SPAN_FIELDS` | `capture_span_fields` | boolean |
    /// | `TALLY_SEND_DEFAULT_PII` | `send_default_pii` | boolean |
    /// | `TALLY_ERROR_LEVEL` | `error_level` | level |
    /// | `TALLY_ERROR_RATE`, `TALLY_ERROR_BURST` | `error_rate_limit` | integers |
    /// | `TALLY_ERROR_QUEUE` | `error_queue` | integer |
    /// | `TALLY_BREADCRUMBS`, `TALLY_BREADCRUMB_LEVEL` | `breadcrumbs` | integer; level |
    /// | `TALLY_MAX_SERIES_PER_METRIC` | `max_series_per_metric` | integer |
    /// | `TALLY_MAX_SERIES` | `max_series` | integer |
    /// | `TALLY_IDLE_INTERVALS` | `idle_intervals` | integer |
    /// | `TALLY_SINK_QUEUE` | `sink_queue` | integer |
    /// | `TALLY_SELF_METRICS` | `self_metrics` | boolean |
    /// | `TALLY_SUMMARY` | `summary_on_drop` | `stdout`, `stderr` or `off` |
    /// | `TALLY_DEBUG` | `debug` | boolean |
    /// | `TALLY_TRACES_SAMPLE_RATE`, else `SENTRY_TRACES_SAMPLE_RATE` | `traces_sample_rate` | `0.0` to `1.0` |
    /// | `TALLY_MAX_SPANS` | `max_spans` | integer |
    /// | `TALLY_MIN_SPAN_DURATION` | `min_span_duration` | seconds |
    /// | `TALLY_TRANSACTION_QUEUE` | `transaction_queue` | integer |
    /// | `TALLY_SESSIONS` | `sessions` | boolean |
    /// | `TALLY_REQUEST_SESSIONS` | `request_sessions` | span names separated by commas |
    /// | `TALLY_PANIC_HOOK` | `panic_hook` | boolean |
    /// | `TALLY_ATTACH_STACKTRACE` | `attach_stacktrace` | boolean |
    /// | `SENTRY_DSN` (feature `sentry`) | `sentry` | a DSN |
    /// | `TALLY_STATSD` (feature `statsd`) | `statsd(StatsdOptions::statsd(..))` | a plain StatsD address |
    /// | `TALLY_DOGSTATSD` (feature `statsd`) | `statsd(StatsdOptions::dogstatsd())` | a boolean, or an address |
    /// | `DD_DOGSTATSD_URL`, `DD_AGENT_HOST`, `DD_DOGSTATSD_PORT` (feature `statsd`) | `statsd(StatsdOptions::dogstatsd())` | the Agent's address; sets up DogStatsD unless `TALLY_DOGSTATSD` is false |
    /// | `DD_API_KEY`, else `DATADOG_API_KEY` (feature `datadog`) | `datadog` | an API key (32 hex digits) |
    /// | `DD_SITE` (feature `datadog`) | `DatadogOptions::site` | `datadoghq.com`, `datadoghq.eu`, `us3.datadoghq.com`... |
    /// | `DD_URL` (feature `datadog`) | `DatadogOptions::url` | the intake's base URL, overriding `DD_SITE` |
    /// | `TALLY_DATADOG` (feature `datadog`) | | a boolean: with an API key, whether to send over the API (default: yes, unless DogStatsD is configured too, which would count everything twice) |
    ///
    /// The StatsD and Datadog variables apply only when no StatsD server, respectively no Datadog
    /// API sink, was configured in code.
    ///
    /// Booleans are `1`/`0`, `true`/`false`, `yes`/`no` or `on`/`off`.
    pub fn from_env(self) -> Self {
        apply(self, |name| std::env::var(name).ok())
    }
}

/// Applies every variable that `get` finds to `builder`; parse errors are kept for `build`.
pub(crate) fn apply(mut builder: Builder, get: impl Fn(&str) -> Option<String>) -> Builder {
    let first = |names: &[&'static str]| names.iter().find_map(|n| get(n).map(|v| (*n, v)));
    macro_rules! parsed {
        ($name:expr, $parse:expr, |$b:ident, $v:ident| $set:expr) => {
            if let Some(raw) = get($name) {
                match $parse(raw.trim()) {
                    Ok($v) => {
                        let $b = builder;
                        builder = $set;
                    }
                    Err(reason) => {
                        builder.env_errors.push(BuildError::InvalidEnv { variable: $name, reason })
                    }
                }
            }
        };
    }
    if let Some(raw) = get("TALLY_JSONL") {
        let raw = raw.trim();
        builder = match raw {
            "" => builder,
            "-" => builder.jsonl_stdout(),
            path => builder.jsonl_path(path),
        };
    }
    parsed!("TALLY_ROLLUP_INTERVAL", seconds, |b, v| b.rollup_interval(v));
    parsed!("TALLY_FLUSH_INTERVAL", seconds, |b, v| b.flush_interval(v));
    parsed!("TALLY_SHUTDOWN_TIMEOUT", seconds, |b, v| b.shutdown_timeout(v));
    parsed!("TALLY_MANUAL", boolean, |b, v| if v { b.manual() } else { b });
    if let Some((_, v)) = first(&["TALLY_SERVICE", "DD_SERVICE"]).filter(|(_, v)| !v.is_empty()) {
        builder = builder.service(v);
    }
    if let Some((_, v)) =
        first(&["TALLY_ENVIRONMENT", "SENTRY_ENVIRONMENT", "DD_ENV"]).filter(|(_, v)| !v.is_empty())
    {
        builder = builder.environment(v);
    }
    if let Some((_, v)) =
        first(&["TALLY_RELEASE", "SENTRY_RELEASE", "DD_VERSION"]).filter(|(_, v)| !v.is_empty())
    {
        builder = builder.release(v);
    }
    if let Some(host) = get("TALLY_HOST") {
        let host = host.trim().to_owned();
        builder = builder.host((!host.is_empty()).then_some(host));
    }
    for name in ["DD_TAGS", "TALLY_TAGS"] {
        parsed!(name, tags, |b, v| v.into_iter().fold(b, |b, (k, val)| b.tag(k, val)));
    }
    parsed!("TALLY_SPAN_LEVEL", level, |b, v| b.span_level(v));
    if let Some(name) = get("TALLY_SPAN_METRIC").filter(|n| !n.trim().is_empty()) {
        builder = builder.span_metric(name.trim());
    }
    if let Some(list) = get("TALLY_SPAN_TAGS") {
        builder = builder.span_tags(list.split(',').map(str::trim).filter(|s| !s.is_empty()));
    }
    parsed!("TALLY_BUSY_IDLE", boolean, |b, v| b.busy_idle(v));
    parsed!("TALLY_CAPTURE_SPAN_FIELDS", boolean, |b, v| b.capture_span_fields(v));
    parsed!("TALLY_SEND_DEFAULT_PII", boolean, |b, v| b.send_default_pii(v));
    parsed!("TALLY_ERROR_LEVEL", level, |b, v| b.error_level(v));
    parsed!("TALLY_ERROR_RATE", integer::<u32>, |b, v| {
        let burst = b.error_burst_setting();
        b.error_rate_limit(v, burst)
    });
    parsed!("TALLY_ERROR_BURST", integer::<u32>, |b, v| {
        let rate = b.error_rate_setting();
        b.error_rate_limit(rate, v)
    });
    parsed!("TALLY_ERROR_QUEUE", integer::<usize>, |b, v| b.error_queue(v));
    parsed!("TALLY_BREADCRUMBS", integer::<usize>, |b, v| {
        let level = b.breadcrumb_level_setting();
        b.breadcrumbs(v, level)
    });
    parsed!("TALLY_BREADCRUMB_LEVEL", level, |b, v| {
        let count = b.breadcrumbs_setting();
        b.breadcrumbs(count, v)
    });
    parsed!("TALLY_MAX_SERIES_PER_METRIC", integer::<usize>, |b, v| b.max_series_per_metric(v));
    parsed!("TALLY_MAX_SERIES", integer::<usize>, |b, v| b.max_series(v));
    parsed!("TALLY_IDLE_INTERVALS", integer::<u32>, |b, v| b.idle_intervals(v));
    parsed!("TALLY_SINK_QUEUE", integer::<usize>, |b, v| b.sink_queue(v));
    parsed!("TALLY_SELF_METRICS", boolean, |b, v| b.self_metrics(v));
    parsed!("TALLY_SUMMARY", summary, |b, v| b.summary_on_drop(v));
    parsed!("TALLY_DEBUG", boolean, |b, v| b.debug(v));
    for name in ["SENTRY_TRACES_SAMPLE_RATE", "TALLY_TRACES_SAMPLE_RATE"] {
        parsed!(name, probability, |b, v| b.traces_sample_rate(v));
    }
    parsed!("TALLY_MAX_SPANS", integer::<usize>, |b, v| b.max_spans(v));
    parsed!("TALLY_MIN_SPAN_DURATION", seconds, |b, v| b.min_span_duration(v));
    parsed!("TALLY_TRANSACTION_QUEUE", integer::<usize>, |b, v| b.transaction_queue(v));
    parsed!("TALLY_SESSIONS", boolean, |b, v| b.sessions(v));
    if let Some(list) = get("TALLY_REQUEST_SESSIONS") {
        builder =
            builder.request_sessions(list.split(',').map(str::trim).filter(|s| !s.is_empty()));
    }
    parsed!("TALLY_PANIC_HOOK", boolean, |b, v| b.panic_hook(v));
    parsed!("TALLY_ATTACH_STACKTRACE", boolean, |b, v| b.attach_stacktrace(v));
    #[cfg(feature = "sentry")]
    if let Some(dsn) = get("SENTRY_DSN").filter(|d| !d.trim().is_empty()) {
        // Replaces only the DSN of options already set (hooks and timeouts stay).
        match dsn.trim().parse::<crate::sink::sentry::Dsn>() {
            Ok(dsn) => builder = builder.sentry_dsn(dsn),
            Err(error) => builder
                .env_errors
                .push(BuildError::InvalidEnv { variable: "SENTRY_DSN", reason: error.to_string() }),
        }
    }
    #[cfg(feature = "statsd")]
    {
        builder = statsd(builder, &get);
    }
    #[cfg(feature = "datadog")]
    {
        builder = datadog(builder, &get);
    }
    builder
}

/// `DD_API_KEY` (else `DATADOG_API_KEY`), `DD_SITE`, `DD_URL`, when no Datadog API sink was
/// configured in code. With the Agent's DogStatsD configured too, metrics would reach Datadog
/// twice: the API sink is then added only when `TALLY_DATADOG` is true.
#[cfg(feature = "datadog")]
fn datadog(mut builder: Builder, get: &impl Fn(&str) -> Option<String>) -> Builder {
    use crate::sink::datadog::DatadogOptions;
    if builder.datadog_configured().is_some() {
        return builder;
    }
    let set = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let wanted = match set("TALLY_DATADOG").map(|v| boolean(&v)) {
        Some(Ok(wanted)) => Some(wanted),
        Some(Err(reason)) => {
            builder.env_errors.push(BuildError::InvalidEnv { variable: "TALLY_DATADOG", reason });
            return builder;
        }
        None => None,
    };
    let Some((variable, key)) =
        ["DD_API_KEY", "DATADOG_API_KEY"].into_iter().find_map(|v| set(v).map(|k| (v, k)))
    else {
        if wanted == Some(true) {
            let reason = "set, but neither DD_API_KEY nor DATADOG_API_KEY is".to_owned();
            builder.env_errors.push(BuildError::InvalidEnv { variable: "TALLY_DATADOG", reason });
        }
        return builder;
    };
    #[cfg(feature = "statsd")]
    let beside_agent = builder.statsd_configured();
    #[cfg(not(feature = "statsd"))]
    let beside_agent = false;
    if wanted == Some(false) || (wanted.is_none() && beside_agent) {
        return builder;
    }
    let options = DatadogOptions::new(&key).map_err(|e| (variable, e.to_string())).and_then(|o| {
        match set("DD_URL").or_else(|| set("DD_DD_URL")) {
            Some(url) => o.url(&url).map_err(|e| ("DD_URL", e.to_string())),
            None => match set("DD_SITE") {
                Some(site) => o.site(&site).map_err(|e| ("DD_SITE", e.to_string())),
                None => Ok(o),
            },
        }
    });
    match options {
        Ok(options) => builder = builder.datadog_options(options),
        Err((variable, reason)) => {
            builder.env_errors.push(BuildError::InvalidEnv { variable, reason })
        }
    }
    builder
}

/// `TALLY_STATSD`, `TALLY_DOGSTATSD`, and the Datadog Agent's variables, when no StatsD server
/// was configured in code.
#[cfg(feature = "statsd")]
fn statsd(mut builder: Builder, get: &impl Fn(&str) -> Option<String>) -> Builder {
    use crate::sink::statsd::StatsdOptions;
    if builder.statsd_configured() {
        return builder;
    }
    let set = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let invalid = |variable, error: crate::sink::statsd::AddressError| BuildError::InvalidEnv {
        variable,
        reason: error.to_string(),
    };
    if let Some(address) = set("TALLY_STATSD") {
        match StatsdOptions::statsd(&address) {
            Ok(options) => builder = builder.statsd(options),
            Err(error) => builder.env_errors.push(invalid("TALLY_STATSD", error)),
        }
    }
    let agent_variable =
        ["DD_DOGSTATSD_URL", "DD_AGENT_HOST"].into_iter().find(|v| set(v).is_some());
    let dogstatsd = match set("TALLY_DOGSTATSD") {
        None => agent_variable.map(|v| (v, StatsdOptions::dogstatsd_from(get))),
        Some(value) => match boolean(&value) {
            Ok(true) => Some((
                agent_variable.unwrap_or("TALLY_DOGSTATSD"),
                StatsdOptions::dogstatsd_from(get),
            )),
            Ok(false) => None,
            Err(_) => Some(("TALLY_DOGSTATSD", StatsdOptions::dogstatsd_at_from(&value, get))),
        },
    };
    match dogstatsd {
        Some((_, Ok(options))) => builder = builder.statsd(options),
        Some((variable, Err(error))) => builder.env_errors.push(invalid(variable, error)),
        None => {}
    }
    builder
}

fn seconds(raw: &str) -> Result<Duration, String> {
    let value: f64 =
        raw.parse().map_err(|_| "expected a number of seconds, like 10 or 0.5".to_owned())?;
    if !(0.0..=1e9).contains(&value) {
        return Err("expected a non-negative number of seconds".to_owned());
    }
    Ok(Duration::from_secs_f64(value))
}

fn probability(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("expected a number between 0.0 and 1.0".to_owned()),
    }
}

fn boolean(raw: &str) -> Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err("expected a boolean: 1/0, true/false, yes/no or on/off".to_owned()),
    }
}

fn integer<T: std::str::FromStr>(raw: &str) -> Result<T, String> {
    raw.parse().map_err(|_| "expected a non-negative integer".to_owned())
}

fn level(raw: &str) -> Result<LevelFilter, String> {
    raw.parse().map_err(|_| "expected one of trace, debug, info, warn, error, off".to_owned())
}

fn summary(raw: &str) -> Result<Option<SummaryOutput>, String> {
    match raw.to_ascii_lowercase().as_str() {
        "stdout" => Ok(Some(SummaryOutput::Stdout)),
        "stderr" | "1" | "true" | "on" => Ok(Some(SummaryOutput::Stderr)),
        "off" | "0" | "false" | "" => Ok(None),
        _ => Err("expected stdout, stderr or off".to_owned()),
    }
}

fn tags(raw: &str) -> Result<Vec<(String, String)>, String> {
    raw.split([',', ' '])
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once(':') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err("expected key:value pairs separated by commas".to_owned()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn build(vars: &[(&str, &str)]) -> Builder {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        apply(Builder::default(), move |name| vars.get(name).cloned())
    }

    #[test]
    fn parses_every_kind_of_value() {
        let b = build(&[
            ("TALLY_ROLLUP_INTERVAL", "0.5"),
            ("TALLY_MANUAL", "yes"),
            ("TALLY_TAGS", "team:core, tier:1"),
            ("TALLY_SPAN_LEVEL", "debug"),
            ("TALLY_SUMMARY", "stderr"),
        ]);
        assert!(b.env_errors.is_empty(), "{:?}", b.env_errors);
        let text = format!("{b:?}");
        assert!(text.contains("rollup_interval: 500ms"), "{text}");
        assert!(text.contains("manual: true"), "{text}");
    }

    #[test]
    fn personal_data_is_kept_only_when_asked() {
        let config = |vars: &[(&str, &str)]| build(vars).validate().map(|c| c.scrubber);
        let default = config(&[]).unwrap();
        assert!(default.is_sensitive("ip_address") && default.is_sensitive("password"));
        let sent = config(&[("TALLY_SEND_DEFAULT_PII", "true")]).unwrap();
        assert!(!sent.is_sensitive("ip_address") && sent.is_sensitive("password"));
        assert!(!build(&[("TALLY_SEND_DEFAULT_PII", "maybe")]).env_errors.is_empty());
    }

    #[test]
    fn conventional_variables_have_lower_priority() {
        let b = build(&[("DD_ENV", "dd"), ("SENTRY_ENVIRONMENT", "sentry")]);
        assert!(format!("{b:?}").contains("environment: Some(\"sentry\")"));
        let b = build(&[("DD_ENV", "dd"), ("TALLY_ENVIRONMENT", "tally")]);
        assert!(format!("{b:?}").contains("environment: Some(\"tally\")"));
    }

    #[test]
    fn bad_values_are_reported_by_name() {
        let b = build(&[("TALLY_FLUSH_INTERVAL", "soon"), ("TALLY_TAGS", "novalue")]);
        let errors: Vec<String> = b.env_errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].contains("TALLY_FLUSH_INTERVAL"), "{errors:?}");
        assert!(errors[1].contains("TALLY_TAGS"), "{errors:?}");
    }

    #[cfg(feature = "sentry")]
    #[test]
    fn sentry_dsn_replaces_only_the_dsn_of_options_already_set() {
        use crate::sink::sentry::SentryOptions;
        let vars = |name: &str| {
            (name == "SENTRY_DSN").then(|| "https://secretkey@o3.example.com/9".to_owned())
        };
        let options = SentryOptions::new("https://k@old.example.com/1")
            .unwrap()
            .timeout(Duration::from_secs(7))
            .before_send(Some);
        let b = apply(Builder::default().sentry_options(options), vars);
        let text = format!("{b:?}");
        assert!(text.contains("o3.example.com") && text.contains("timeout: 7s"), "{text}");
        assert!(!text.contains("secretkey"), "{text}");
        assert!(b.settings.dsc_extras.iter().any(|(k, v)| k == "org_id" && v == "3"));

        let b = apply(Builder::default(), |name: &str| {
            (name == "SENTRY_DSN").then(|| "https://k@host/notanumber".to_owned())
        });
        let errors: Vec<String> = b.env_errors.iter().map(ToString::to_string).collect();
        assert!(errors[0].contains("SENTRY_DSN") && errors[0].contains("project"), "{errors:?}");
    }

    #[cfg(feature = "statsd")]
    #[test]
    fn the_agents_variables_set_up_dogstatsd_unless_turned_off() {
        let b = build(&[("DD_AGENT_HOST", "10.0.0.7"), ("DD_DOGSTATSD_PORT", "9125")]);
        assert!(format!("{b:?}").contains("10.0.0.7"), "{b:?}");
        let b = build(&[("DD_AGENT_HOST", "10.0.0.7"), ("TALLY_DOGSTATSD", "off")]);
        assert!(!b.statsd_configured());
        let b = build(&[("TALLY_STATSD", "udp://graphite:8125")]);
        assert!(format!("{b:?}").contains("graphite"));
        let b = build(&[("DD_DOGSTATSD_URL", "tcp://agent:1")]);
        let errors: Vec<String> = b.env_errors.iter().map(ToString::to_string).collect();
        assert!(
            errors[0].contains("DD_DOGSTATSD_URL") && errors[0].contains("scheme"),
            "{errors:?}"
        );
    }

    #[cfg(feature = "datadog")]
    #[test]
    fn an_api_key_sets_up_the_datadog_api_sink() {
        let key = "0123456789abcdef0123456789abcdef";
        let mut b = build(&[("DD_API_KEY", key), ("DD_SITE", "datadoghq.eu")]);
        let options = b.datadog_configured().clone().unwrap();
        assert_eq!(options.base_url(), "https://api.datadoghq.eu");
        assert!(!format!("{b:?}").contains(key));
        let b = build(&[("DATADOG_API_KEY", "not-a-key")]);
        let errors: Vec<String> = b.env_errors.iter().map(ToString::to_string).collect();
        assert!(
            errors[0].contains("DATADOG_API_KEY") && !errors[0].contains("not-a-key"),
            "{errors:?}"
        );
        #[cfg(feature = "statsd")]
        {
            // Beside the Agent, only on request: the Agent already sends the metrics.
            let mut b = build(&[("DD_API_KEY", key), ("DD_AGENT_HOST", "agent")]);
            assert!(b.datadog_configured().is_none());
            let mut b =
                build(&[("DD_API_KEY", key), ("DD_AGENT_HOST", "agent"), ("TALLY_DATADOG", "1")]);
            assert!(b.datadog_configured().is_some());
        }
    }
}
