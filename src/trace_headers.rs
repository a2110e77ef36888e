//! The trace header codec: `sentry-trace`, W3C `traceparent` and `baggage`, parsed and
//! formatted. Below the layer (which parses incoming headers and formats outgoing ones) and the
//! public [`propagation`](crate::propagation) module, which re-exports [`TraceHeaders`].

use std::fmt::Write as _;
use std::sync::Arc;

/// Headers that carry a trace to the next service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeaders {
    pub(crate) sentry_trace: String,
    pub(crate) traceparent: String,
    pub(crate) baggage: Option<String>,
}

impl TraceHeaders {
    /// The headers that continue trace `trace_id` from span `span_id`. `sampled` is the trace's
    /// sampling decision (`None`: not made, traces are off); `baggage` the `sentry-*` entries
    /// (keys without the prefix) of its dynamic sampling context.
    pub(crate) fn new(
        trace_id: u128,
        span_id: u64,
        sampled: Option<bool>,
        baggage: Option<&[(String, String)]>,
    ) -> Self {
        // `sentry-trace` leaves the flag out when no decision was made; `traceparent` has no
        // such state, and says "not sampled".
        let flag = match sampled {
            Some(true) => "-1",
            Some(false) => "-0",
            None => "",
        };
        let trace_flags = if sampled == Some(true) { "01" } else { "00" };
        TraceHeaders {
            sentry_trace: format!("{trace_id:032x}-{span_id:016x}{flag}"),
            traceparent: format!("00-{trace_id:032x}-{span_id:016x}-{trace_flags}"),
            baggage: baggage.map(format_baggage),
        }
    }

    /// The `sentry-trace` header: `<trace id>-<span id>-<1|0>`.
    pub fn sentry_trace(&self) -> &str {
        &self.sentry_trace
    }

    /// The W3C `traceparent` header: `00-<trace id>-<span id>-<01|00>`.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The `baggage` header with the `sentry-*` dynamic sampling context, when there is one.
    pub fn baggage(&self) -> Option<&str> {
        self.baggage.as_deref()
    }

    /// Every header as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        [
            ("sentry-trace", Some(self.sentry_trace.as_str())),
            ("traceparent", Some(self.traceparent.as_str())),
            ("baggage", self.baggage.as_deref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
    }
}

/// A trace continued from incoming headers.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    pub(crate) trace_id: u128,
    pub(crate) parent_span_id: u64,
    pub(crate) sampled: Option<bool>,
    pub(crate) sample_rand: Option<f64>,
    pub(crate) sample_rate: Option<f64>,
    /// The upstream `sentry-*` baggage entries (keys without the prefix), frozen.
    pub(crate) baggage: Option<Arc<[(String, String)]>>,
}

/// The upstream trace described by incoming header values, if any is well-formed.
pub(crate) fn upstream(
    sentry_trace: Option<&str>,
    traceparent: Option<&str>,
    baggage: Option<&str>,
) -> Option<Upstream> {
    let (trace_id, parent_span_id, sampled) = sentry_trace
        .and_then(parse_sentry_trace)
        .or_else(|| traceparent.and_then(parse_traceparent).map(|(t, s, d)| (t, s, Some(d))))?;
    let entries = baggage.map(parse_baggage).filter(|e| !e.is_empty());
    let value = |key: &str| {
        entries.as_ref().and_then(|e| e.iter().find(|(k, _)| k == key)).map(|(_, v)| v.as_str())
    };
    // Baggage from another trace says nothing about this one.
    let same_trace =
        value("trace_id").is_none_or(|t| u128::from_str_radix(t, 16).ok() == Some(trace_id));
    let entries = entries.filter(|_| same_trace);
    let value = |key: &str| {
        entries.as_ref().and_then(|e| e.iter().find(|(k, _)| k == key)).map(|(_, v)| v.as_str())
    };
    let unit = |v: f64| (0.0..=1.0).contains(&v).then_some(v);
    Some(Upstream {
        trace_id,
        parent_span_id,
        sampled,
        sample_rand: value("sample_rand")
            .and_then(|v| v.parse().ok())
            .and_then(unit)
            .filter(|v| *v < 1.0),
        sample_rate: value("sample_rate").and_then(|v| v.parse().ok()).and_then(unit),
        baggage: entries.map(Into::into),
    })
}

fn hex_u128(text: &str) -> Option<u128> {
    (text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u128::from_str_radix(text, 16).ok())
        .flatten()
        .filter(|v| *v != 0)
}

fn hex_u64(text: &str) -> Option<u64> {
    (text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(text, 16).ok())
        .flatten()
        .filter(|v| *v != 0)
}

/// `<32 hex trace id>-<16 hex span id>[-<0|1>]`, surrounding blanks allowed.
pub(crate) fn parse_sentry_trace(header: &str) -> Option<(u128, u64, Option<bool>)> {
    let mut parts = header.trim().split('-');
    let trace_id = hex_u128(parts.next()?)?;
    let span_id = hex_u64(parts.next()?)?;
    let sampled = match parts.next() {
        None => None,
        Some("1") => Some(true),
        Some("0") => Some(false),
        Some(_) => return None,
    };
    parts.next().is_none().then_some((trace_id, span_id, sampled))
}

/// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>` (version 00; later versions are read
/// the same way, as the W3C spec asks).
pub(crate) fn parse_traceparent(header: &str) -> Option<(u128, u64, bool)> {
    let mut parts = header.trim().split('-');
    let version = parts.next()?;
    if version.len() != 2 || version == "ff" || !version.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let trace_id = hex_u128(parts.next()?)?;
    let span_id = hex_u64(parts.next()?)?;
    let flags =
        parts.next().filter(|f| f.len() == 2).and_then(|f| u8::from_str_radix(f, 16).ok())?;
    if version == "00" && parts.next().is_some() {
        return None;
    }
    Some((trace_id, span_id, flags & 1 == 1))
}

/// The `sentry-*` entries of a `baggage` header, keys without the prefix, values decoded.
pub(crate) fn parse_baggage(header: &str) -> Vec<(String, String)> {
    header
        .split(',')
        .filter_map(|member| {
            let entry = member.split(';').next()?.trim();
            let (key, value) = entry.split_once('=')?;
            let key = key.trim().strip_prefix("sentry-")?;
            (!key.is_empty()).then(|| (key.to_owned(), percent_decode(value.trim())))
        })
        .take(64)
        .collect()
}

/// A `baggage` header from `sentry-*` entries (keys without the prefix).
fn format_baggage(entries: &[(String, String)]) -> String {
    let mut out = String::new();
    for (key, value) in entries {
        if !out.is_empty() {
            out.push(',');
        }
        let _ = write!(out, "sentry-{key}=");
        percent_encode(value, &mut out);
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        let escaped = (byte == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                i += 3;
            }
            None => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "771a43a4192642f0b136d5159a501700";
    const SPAN: &str = "b0e6f15b45c36b12";

    #[test]
    fn outgoing_headers_format() {
        let (trace_id, span_id) = (0x771a43a4192642f0b136d5159a501700, 0xb0e6f15b45c36b12);
        let baggage =
            [("trace_id".to_owned(), TRACE.to_owned()), ("sampled".to_owned(), "true".to_owned())];
        let kept = TraceHeaders::new(trace_id, span_id, Some(true), Some(&baggage));
        assert_eq!(kept.sentry_trace(), format!("{TRACE}-{SPAN}-1"));
        assert_eq!(kept.traceparent(), format!("00-{TRACE}-{SPAN}-01"));
        assert_eq!(
            kept.baggage(),
            Some(format!("sentry-trace_id={TRACE},sentry-sampled=true").as_str())
        );
        let dropped = TraceHeaders::new(trace_id, span_id, Some(false), None);
        assert_eq!(dropped.sentry_trace(), format!("{TRACE}-{SPAN}-0"));
        assert_eq!(dropped.traceparent(), format!("00-{TRACE}-{SPAN}-00"));
        assert_eq!(dropped.baggage(), None);
        let undecided = TraceHeaders::new(trace_id, span_id, None, None);
        assert_eq!(undecided.sentry_trace(), format!("{TRACE}-{SPAN}"));
        assert_eq!(undecided.traceparent(), format!("00-{TRACE}-{SPAN}-00"));
    }

    #[test]
    fn sentry_trace_headers_parse() {
        let full = parse_sentry_trace(&format!(" {TRACE}-{SPAN}-1 ")).unwrap();
        assert_eq!(full, (0x771a43a4192642f0b136d5159a501700, 0xb0e6f15b45c36b12, Some(true)));
        assert_eq!(parse_sentry_trace(&format!("{TRACE}-{SPAN}")).unwrap().2, None);
        assert_eq!(parse_sentry_trace(&format!("{TRACE}-{SPAN}-0")).unwrap().2, Some(false));
        for bad in [
            "",
            "x",
            &format!("{TRACE}-{SPAN}-2"),
            &format!("{TRACE}-short-1"),
            &format!("{}-{SPAN}", "0".repeat(32)),
        ] {
            assert!(parse_sentry_trace(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn traceparent_headers_parse() {
        assert!(parse_traceparent(&format!("00-{TRACE}-{SPAN}-01")).unwrap().2);
        assert!(!parse_traceparent(&format!("00-{TRACE}-{SPAN}-00")).unwrap().2);
        assert!(parse_traceparent(&format!("ff-{TRACE}-{SPAN}-01")).is_none());
        assert!(parse_traceparent(&format!("00-{TRACE}-{SPAN}-01-extra")).is_none());
        assert!(parse_traceparent(&format!("01-{TRACE}-{SPAN}-01-extra")).is_some());
    }

    #[test]
    fn baggage_round_trips_sentry_entries_only() {
        let entries =
            parse_baggage("other=1,sentry-trace_id=abc, sentry-release=a%20b%2Cc;prop=1,sentry-=x");
        assert_eq!(
            entries,
            vec![("trace_id".into(), "abc".into()), ("release".into(), "a b,c".into())]
        );
        let header = format_baggage(&entries);
        assert_eq!(header, "sentry-trace_id=abc,sentry-release=a%20b%2Cc");
        assert_eq!(parse_baggage(&header), entries);
    }

    #[test]
    fn upstream_prefers_sentry_trace_and_keeps_matching_baggage() {
        let baggage =
            format!("sentry-trace_id={TRACE},sentry-sample_rand=0.25,sentry-sample_rate=0.5");
        let up =
            upstream(Some(&format!("{TRACE}-{SPAN}-1")), Some("garbage"), Some(&baggage)).unwrap();
        assert_eq!(up.sampled, Some(true));
        assert_eq!(up.sample_rand, Some(0.25));
        assert_eq!(up.sample_rate, Some(0.5));
        assert_eq!(up.baggage.as_ref().map(|b| b.len()), Some(3));
        let other = "sentry-trace_id=00000000000000000000000000000001,sentry-sample_rand=0.9";
        let up = upstream(None, Some(&format!("00-{TRACE}-{SPAN}-00")), Some(other)).unwrap();
        assert_eq!(up.sampled, Some(false));
        assert!(
            up.baggage.is_none() && up.sample_rand.is_none(),
            "baggage of another trace is ignored"
        );
        assert!(upstream(None, None, Some(&baggage)).is_none());
    }
}
