//! Scrubbing sensitive values, with sentry-python's default denylists (spec `sentry.md` §6.2
//! and §11.1 item 9).
//!
//! The layer applies it to every field before any sink sees it (metric tags, captured error
//! fields and tags, breadcrumbs, span data; decided once per callsite, see
//! `layer::plan`), and the Sentry sink applies it again, with its own options, to the JSON of
//! its envelopes.
//!
//! A key is sensitive when it equals, ignoring ASCII case, an entry of [`DEFAULT_DENYLIST`], of
//! [`PII_DENYLIST`] (unless `send_default_pii` is on), or of the user's extra list. Matching is
//! exact, as in Python's `EventScrubber` (`k.lower() in denylist`): `api-key` does not match
//! `api_key`, and `my_password` does not match `password`. Case folding is ASCII-only (every
//! default entry is ASCII; Python's Unicode `lower()` differs only for exotic characters such as
//! the Kelvin sign).
//!
//! The value of a sensitive key is replaced as a whole (object, array or scalar) by
//! [`FILTERED`]. Unlike Python, which scrubs only the top level of each area unless
//! `recursive=True`, [`Scrubber::scrub_json`] always recurses into nested objects and arrays,
//! since our fields can carry arbitrary JSON. It does not add Python's `_meta` remark
//! (`[["!config","s"]]`); the caller may do so.

use serde_json::Value;

/// The replacement for a sensitive value.
pub(crate) const FILTERED: &str = "[Filtered]";

/// sentry-python's `DEFAULT_DENYLIST` (`sentry_sdk/scrubber.py`), matched case-insensitively.
pub(crate) const DEFAULT_DENYLIST: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "api_key",
    "apikey",
    "auth",
    "credentials",
    "mysql_pwd",
    "privatekey",
    "private_key",
    "token",
    "session",
    "csrftoken",
    "sessionid",
    "x_csrftoken",
    "x_forwarded_for",
    "set_cookie",
    "cookie",
    "authorization",
    "proxy-authorization",
    "x_api_key",
    "aiohttp_session",
    "connect.sid",
    "csrf_token",
    "csrf",
    "_csrf",
    "_csrf_token",
    "PHPSESSID",
    "_session",
    "symfony",
    "user_session",
    "_xsrf",
    "XSRF-TOKEN",
];

/// sentry-python's `DEFAULT_PII_DENYLIST`, applied unless `send_default_pii` is on.
pub(crate) const PII_DENYLIST: &[&str] =
    &["x_forwarded_for", "x_real_ip", "ip_address", "remote_addr"];

/// Decides which keys are sensitive and filters their values.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scrubber {
    /// When `true`, [`PII_DENYLIST`] is not applied (Sentry's `send_default_pii` option).
    send_default_pii: bool,
    /// User-supplied keys, matched like the default ones.
    extra: Vec<String>,
}

impl Scrubber {
    /// A scrubber with the default denylist, the PII list unless `send_default_pii`, and `extra`
    /// keys.
    pub(crate) fn new(send_default_pii: bool, extra: Vec<String>) -> Self {
        Scrubber { send_default_pii, extra }
    }

    /// Whether the value under `key` must be filtered (exact, ASCII case-insensitive match).
    pub(crate) fn is_sensitive(&self, key: &str) -> bool {
        let matches = |entry: &str| entry.eq_ignore_ascii_case(key);
        DEFAULT_DENYLIST.iter().copied().any(matches)
            || (!self.send_default_pii && PII_DENYLIST.iter().copied().any(matches))
            || self.extra.iter().map(String::as_str).any(matches)
    }

    /// Replaces, at any depth, the value of every object member with a sensitive key by
    /// [`FILTERED`]. Arrays are searched for nested objects; a bare scalar is left untouched.
    ///
    /// Uses an explicit stack, so deeply nested values cannot overflow the thread's stack.
    #[cfg_attr(not(feature = "sentry"), allow(dead_code))]
    pub(crate) fn scrub_json(&self, value: &mut Value) {
        let mut stack = vec![value];
        while let Some(value) = stack.pop() {
            match value {
                Value::Object(map) => {
                    for (key, child) in map.iter_mut() {
                        if self.is_sensitive(key) {
                            *child = Value::String(FILTERED.to_owned());
                        } else if child.is_object() || child.is_array() {
                            stack.push(child);
                        }
                    }
                }
                Value::Array(items) => {
                    stack.extend(items.iter_mut().filter(|v| v.is_object() || v.is_array()));
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn default_list_case_insensitive_exact() {
        let s = Scrubber::default();
        for key in DEFAULT_DENYLIST {
            assert!(s.is_sensitive(key), "{key}");
            assert!(s.is_sensitive(&key.to_ascii_uppercase()), "{key}");
            assert!(s.is_sensitive(&key.to_ascii_lowercase()), "{key}");
        }
        for key in ["Password", "PASSWORD", "phpsessid", "xsrf-token", "Proxy-Authorization"] {
            assert!(s.is_sensitive(key), "{key}");
        }
        for key in [
            "api-key",
            "my_password",
            "password2",
            "xsrf_token",
            "proxy_authorization",
            "",
            "user",
            "pass word",
        ] {
            assert!(!s.is_sensitive(key), "{key}");
        }
    }

    #[test]
    fn pii_toggle_and_extra() {
        let default = Scrubber::default();
        let pii = Scrubber::new(true, vec!["Card_Number".into()]);
        for key in PII_DENYLIST {
            assert!(default.is_sensitive(key), "{key}");
        }
        assert!(pii.is_sensitive("x_forwarded_for"), "also in the default list");
        for key in ["x_real_ip", "IP_ADDRESS", "remote_addr"] {
            assert!(!pii.is_sensitive(key), "{key}");
        }
        assert!(pii.is_sensitive("card_number") && pii.is_sensitive("CARD_NUMBER"));
        assert!(!default.is_sensitive("card_number"));
        assert!(pii.is_sensitive("password"));
    }

    #[test]
    fn scrubs_nested_data() {
        let mut value = json!({
            "user": {"id": 1, "ip_address": "10.0.0.1", "Password": {"nested": "object"}},
            "headers": [{"Authorization": "Bearer x"}, {"accept": "*/*"}, ["deep", {"token": 1}]],
            "Token": null,
            "list": [1, "password", {"a": {"b": {"secret": [1, 2]}}}],
            "message": "password=hunter2",
        });
        Scrubber::default().scrub_json(&mut value);
        assert_eq!(
            value,
            json!({
                "user": {"id": 1, "ip_address": FILTERED, "Password": FILTERED},
                "headers": [{"Authorization": FILTERED}, {"accept": "*/*"}, ["deep", {"token": FILTERED}]],
                "Token": FILTERED,
                "list": [1, "password", {"a": {"b": {"secret": FILTERED}}}],
                "message": "password=hunter2",
            })
        );
    }

    #[test]
    fn pii_kept_when_allowed_and_scalars_untouched() {
        let mut value = json!({"ip_address": "10.0.0.1", "remote_addr": "x", "cookie": "c"});
        Scrubber::new(true, Vec::new()).scrub_json(&mut value);
        assert_eq!(
            value,
            json!({"ip_address": "10.0.0.1", "remote_addr": "x", "cookie": FILTERED})
        );
        let mut scalar = json!("password");
        Scrubber::default().scrub_json(&mut scalar);
        assert_eq!(scalar, json!("password"));
    }

    #[test]
    fn very_deep_nesting_does_not_overflow() {
        let mut value = json!({"password": 1});
        for _ in 0..100_000 {
            // Not `json!`: it would serialize (recursively clone) the interpolated value.
            let object = Value::Object(std::iter::once(("k".to_owned(), value)).collect());
            value = Value::Array(vec![object]);
        }
        Scrubber::default().scrub_json(&mut value);
        let mut cursor = &value;
        while let Some(inner) = cursor.get(0).and_then(|o| o.get("k")) {
            cursor = inner;
        }
        assert_eq!(cursor, &json!({"password": FILTERED}));
        // Drop iteratively too: serde_json's recursive drop would overflow the test thread.
        let mut stack = vec![value];
        while let Some(mut v) = stack.pop() {
            match &mut v {
                Value::Array(items) => stack.append(items),
                Value::Object(map) => stack.extend(std::mem::take(map).into_iter().map(|(_, v)| v)),
                _ => {}
            }
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            proptest::sample::select(vec!["password", "TOKEN", "ip_address", "name", "id", "data"])
                .prop_map(str::to_owned),
            "[a-z_]{0,6}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            "[a-z]{0,4}".prop_map(Value::from)
        ];
        leaf.prop_recursive(4, 64, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Whether any object member with a sensitive key holds something other than `FILTERED`.
    fn leaks(s: &Scrubber, v: &Value) -> bool {
        match v {
            Value::Object(map) => map.iter().any(|(k, v)| {
                if s.is_sensitive(k) {
                    v != &Value::String(FILTERED.to_owned())
                } else {
                    leaks(s, v)
                }
            }),
            Value::Array(items) => items.iter().any(|v| leaks(s, v)),
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn no_sensitive_value_survives(mut value in arb_json(), pii in any::<bool>()) {
            let s = Scrubber::new(pii, Vec::new());
            let before = value.clone();
            s.scrub_json(&mut value);
            prop_assert!(!leaks(&s, &value));
            if !leaks(&s, &before) {
                prop_assert_eq!(value, before);
            }
        }
    }
}
