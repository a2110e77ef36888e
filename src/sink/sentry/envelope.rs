//! A pure encoder for Sentry envelopes (spec `sentry.md` §4.1 and §11.1 item 1).
//!
//! An envelope is a header line followed by items, each an item header line, the payload and a
//! newline:
//!
//! ```text
//! {"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","sent_at":"2024-01-01T00:00:00Z"}
//! {"type":"event","length":41}
//! {"message":"hello","level":"error","x":1}
//! {"type":"trace_metric","item_count":2,"content_type":"application/vnd.sentry.items.trace-metric+json","length":57}
//! {"items":[{"name":"a","value":1},{"name":"b","value":2}]}
//! ```
//!
//! Every item header carries an exact byte `length`, so payloads may contain newlines and any
//! bytes. Item header keys are written in a fixed order (`type`, `item_count`, `content_type`,
//! `length`). The envelope header is the caller's `serde_json::Value`, written compactly; its key
//! order is the one of `serde_json::Map` (sorted, or insertion order with `serde_json`'s
//! `preserve_order` feature), so it is stable for a given value.
//!
//! What goes in the envelope (one event per envelope, no mixing of telemetry types except a
//! piggybacked `client_report`, `sent_at` written once at send time) is the caller's job.

use std::fmt::Write as _;

/// Writes an envelope into a byte buffer.
///
/// `Debug` shows only the size and item count: the header may hold the DSN (with its key).
#[derive(Clone)]
pub(crate) struct EnvelopeWriter {
    /// The envelope so far; always ends with `\n`.
    buf: Vec<u8>,
    /// Number of items written.
    items: usize,
}

impl EnvelopeWriter {
    /// Starts an envelope with `header` (e.g. `{"event_id":…,"sent_at":…}`) as its first line.
    ///
    /// Serializing a `Value` cannot fail in practice; if it ever did, the header is written as
    /// `{}`, which is valid.
    pub(crate) fn new(header: &serde_json::Value) -> Self {
        let mut buf = serde_json::to_vec(header).unwrap_or_else(|_| b"{}".to_vec());
        buf.push(b'\n');
        EnvelopeWriter { buf, items: 0 }
    }

    /// Appends an item: `{"type":<item_type>,"length":N}\n<payload>\n`.
    pub(crate) fn item(&mut self, item_type: &str, payload: &[u8]) {
        let mut header = String::with_capacity(48);
        header.push_str("{\"type\":");
        push_json_str(&mut header, item_type);
        let _ = write!(header, ",\"length\":{}}}", payload.len());
        self.push(&header, payload);
    }

    /// Appends a container item (`log`, `span`, `trace_metric`):
    /// `{"type":..,"item_count":N,"content_type":..,"length":L}\n<payload>\n`.
    pub(crate) fn container(
        &mut self,
        item_type: &str,
        content_type: &str,
        item_count: usize,
        payload: &[u8],
    ) {
        let mut header = String::with_capacity(128);
        header.push_str("{\"type\":");
        push_json_str(&mut header, item_type);
        let _ = write!(header, ",\"item_count\":{item_count},\"content_type\":");
        push_json_str(&mut header, content_type);
        let _ = write!(header, ",\"length\":{}}}", payload.len());
        self.push(&header, payload);
    }

    /// Writes one item header line, the payload and the closing newline.
    fn push(&mut self, header: &str, payload: &[u8]) {
        self.buf.reserve(header.len() + payload.len() + 2);
        self.buf.extend_from_slice(header.as_bytes());
        self.buf.push(b'\n');
        self.buf.extend_from_slice(payload);
        self.buf.push(b'\n');
        self.items += 1;
    }

    /// Size of the envelope so far, in bytes.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    #[cfg(test)]
    /// Number of items written so far (0 means the envelope holds only its header).
    pub(crate) fn item_count(&self) -> usize {
        self.items
    }

    /// The finished envelope.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

impl std::fmt::Debug for EnvelopeWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopeWriter")
            .field("len", &self.buf.len())
            .field("items", &self.items)
            .finish()
    }
}

/// Appends `s` as a JSON string literal (quotes included), escaping `"`, `\` and control
/// characters, so a header line can never contain a raw newline.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// One parsed item: its header and its payload.
    type Item = (serde_json::Map<String, Value>, Vec<u8>);

    /// A strict envelope parser: header line, then items with an exact `length`, each payload
    /// followed by `\n`; nothing may be left over.
    fn parse(envelope: &[u8]) -> Result<(Value, Vec<Item>), String> {
        fn line(rest: &[u8]) -> Result<(&[u8], &[u8]), String> {
            let end = rest.iter().position(|&b| b == b'\n').ok_or("missing newline")?;
            Ok((&rest[..end], &rest[end + 1..]))
        }
        let (header, mut rest) = line(envelope)?;
        let header: Value = serde_json::from_slice(header).map_err(|e| e.to_string())?;
        if !header.is_object() {
            return Err("envelope header is not an object".into());
        }
        let mut items = Vec::new();
        while !rest.is_empty() {
            let (item_header, after) = line(rest)?;
            let item_header: Value =
                serde_json::from_slice(item_header).map_err(|e| e.to_string())?;
            let Value::Object(item_header) = item_header else { return Err("item header".into()) };
            if !item_header.get("type").is_some_and(Value::is_string) {
                return Err("item type".into());
            }
            let length =
                item_header.get("length").and_then(Value::as_u64).ok_or("length")? as usize;
            if after.len() < length + 1 || after[length] != b'\n' {
                return Err(format!("payload of {length} bytes not followed by a newline"));
            }
            items.push((item_header, after[..length].to_vec()));
            rest = &after[length + 1..];
        }
        Ok((header, items))
    }

    #[test]
    fn layout_is_exact() {
        let mut w =
            EnvelopeWriter::new(&json!({"sent_at": "2024-01-01T00:00:00Z", "event_id": "abc"}));
        let header_len = w.len();
        assert_eq!(w.item_count(), 0);
        w.item("event", b"{\"a\":1}");
        w.container("log", "application/vnd.sentry.items.log+json", 2, b"{\"items\":[1,2]}");
        assert_eq!(w.item_count(), 2);
        assert_eq!(format!("{w:?}"), format!("EnvelopeWriter {{ len: {}, items: 2 }}", w.len()));
        let len = w.len();
        let out = w.finish();
        assert_eq!(out.len(), len);
        assert!(header_len < len);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "{\"event_id\":\"abc\",\"sent_at\":\"2024-01-01T00:00:00Z\"}\n\
             {\"type\":\"event\",\"length\":7}\n{\"a\":1}\n\
             {\"type\":\"log\",\"item_count\":2,\"content_type\":\"application/vnd.sentry.items.log+json\",\"length\":15}\n\
             {\"items\":[1,2]}\n"
        );
    }

    #[test]
    fn empty_envelope_and_empty_payload() {
        assert_eq!(EnvelopeWriter::new(&json!({})).finish(), b"{}\n");
        let mut w = EnvelopeWriter::new(&json!({}));
        w.item("client_report", b"");
        assert_eq!(w.finish(), b"{}\n{\"type\":\"client_report\",\"length\":0}\n\n");
    }

    #[test]
    fn newlines_and_multibyte_payloads_round_trip() {
        let payloads: [&[u8]; 5] = [
            b"line one\nline two\n",
            "héllo 🌍 \u{2028} wörld".as_bytes(),
            b"\n\n\n",
            b"\r\n",
            &[0, 255, 10, 13, 0xC3],
        ];
        let mut w = EnvelopeWriter::new(&json!({"dsn": "https://k@host/1", "n": 1}));
        for (i, p) in payloads.iter().enumerate() {
            if i % 2 == 0 {
                w.item("attachment", p);
            } else {
                w.container("span", "application/vnd.sentry.items.span.v2+json", i, p);
            }
        }
        let (header, items) = parse(&w.finish()).unwrap();
        assert_eq!(header, json!({"dsn": "https://k@host/1", "n": 1}));
        assert_eq!(items.len(), payloads.len());
        for (i, ((item_header, payload), expected)) in items.iter().zip(payloads).enumerate() {
            assert_eq!(payload.as_slice(), expected);
            assert_eq!(item_header["length"], json!(expected.len()));
            if i % 2 == 1 {
                assert_eq!(item_header["item_count"], json!(i));
            }
        }
    }

    #[test]
    fn header_strings_are_escaped() {
        let mut w = EnvelopeWriter::new(&json!({"k": "a\nb"}));
        w.container("we\"ird\n\\type\u{1}é", "x/y\r\t", 1, b"p");
        let out = w.finish();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 3);
        let (header, items) = parse(&out).unwrap();
        assert_eq!(header["k"], "a\nb");
        assert_eq!(items[0].0["type"], "we\"ird\n\\type\u{1}é");
        assert_eq!(items[0].0["content_type"], "x/y\r\t");
    }

    #[test]
    fn strict_parser_rejects_bad_lengths() {
        assert!(parse(b"{}\n{\"type\":\"event\",\"length\":3}\nab\n").is_err());
        assert!(parse(b"{}\n{\"type\":\"event\",\"length\":1}\nab\n").is_err());
        assert!(parse(b"{}\n{\"length\":2}\nab\n").is_err());
        assert!(parse(b"{}").is_err());
        assert!(parse(b"{}\n{\"type\":\"event\",\"length\":2}\nab\n").is_ok());
    }

    #[derive(Debug, Clone)]
    enum Spec {
        Item(String, Vec<u8>),
        Container(String, String, usize, Vec<u8>),
    }

    fn spec() -> impl Strategy<Value = Spec> {
        prop_oneof![
            ("\\PC{0,12}", proptest::collection::vec(any::<u8>(), 0..64))
                .prop_map(|(t, p)| Spec::Item(t, p)),
            (
                "\\PC{0,12}",
                "[ -~]{0,24}",
                any::<usize>(),
                proptest::collection::vec(any::<u8>(), 0..64)
            )
                .prop_map(|(t, c, n, p)| Spec::Container(t, c, n, p)),
            ("[a-z_]{1,10}", "(.|\n){0,40}").prop_map(|(t, p)| Spec::Item(t, p.into_bytes())),
        ]
    }

    proptest! {
        #[test]
        fn any_items_round_trip(
            header in proptest::collection::btree_map("\\PC{0,8}", "\\PC{0,8}", 0..4),
            specs in proptest::collection::vec(spec(), 0..8),
        ) {
            let header = Value::Object(header.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
            let mut w = EnvelopeWriter::new(&header);
            for s in &specs {
                match s {
                    Spec::Item(t, p) => w.item(t, p),
                    Spec::Container(t, c, n, p) => w.container(t, c, *n, p),
                }
            }
            prop_assert_eq!(w.item_count(), specs.len());
            let len = w.len();
            let out = w.finish();
            prop_assert_eq!(out.len(), len);
            let (parsed_header, items) = parse(&out).map_err(TestCaseError::fail)?;
            prop_assert_eq!(parsed_header, header);
            prop_assert_eq!(items.len(), specs.len());
            for ((h, payload), s) in items.iter().zip(&specs) {
                match s {
                    Spec::Item(t, p) => {
                        prop_assert_eq!(h.len(), 2);
                        prop_assert_eq!(&h["type"], &Value::from(t.as_str()));
                        prop_assert_eq!(payload, p);
                    }
                    Spec::Container(t, c, n, p) => {
                        prop_assert_eq!(h.len(), 4);
                        prop_assert_eq!(&h["type"], &Value::from(t.as_str()));
                        prop_assert_eq!(&h["content_type"], &Value::from(c.as_str()));
                        prop_assert_eq!(h["item_count"].as_u64(), Some(*n as u64));
                        prop_assert_eq!(payload, p);
                    }
                }
            }
        }
    }
}
