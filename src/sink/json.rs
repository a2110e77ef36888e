//! A small streaming JSON writer: objects with keys in a fixed order, written straight into a
//! byte buffer (no intermediate `Value` trees). Strings and numbers go through `serde_json`, so
//! escaping is exact.

// The JSON-lines sink writes objects and values; the Datadog encoders also floats and arrays.
#![cfg_attr(not(feature = "datadog"), allow(dead_code))]

use serde::Serialize;

/// Appends `v` as JSON. Serializing strings, integers and finite floats into a `Vec` cannot fail.
pub(crate) fn value<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    let _ = serde_json::to_writer(&mut *out, v);
}

/// Appends a float the way the intake reads doubles: always with a fraction or an exponent
/// (`12.0`, never `12`). The caller makes sure it is finite.
pub(crate) fn float(out: &mut Vec<u8>, v: f64) {
    value(out, &v);
}

/// Appends an array of strings.
pub(crate) fn strings<'a>(out: &mut Vec<u8>, items: impl IntoIterator<Item = &'a str>) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        value(out, item);
    }
    out.push(b']');
}

/// One JSON object being written; keys come out in the order they are given.
pub(crate) struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    /// Opens an object.
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// Writes the key (and separator) and returns the buffer for the value.
    pub(crate) fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        value(self.out, key);
        self.out.push(b':');
        self.out
    }

    /// A string or integer member.
    pub(crate) fn field<T: Serialize + ?Sized>(&mut self, key: &str, v: &T) {
        value(self.key(key), v);
    }

    /// A float member (finite).
    pub(crate) fn float(&mut self, key: &str, v: f64) {
        float(self.key(key), v);
    }

    /// A member whose value `write` produces.
    pub(crate) fn with(&mut self, key: &str, write: impl FnOnce(&mut Vec<u8>)) {
        write(self.key(key));
    }

    /// Closes the object.
    pub(crate) fn end(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_keys_in_order_with_exact_escaping() {
        let mut out = Vec::new();
        let mut o = Object::new(&mut out);
        o.field("b", "q\"\n\u{1}");
        o.field("a", &3i64);
        o.float("f", 12.0);
        o.with("t", |out| strings(out, ["x:y", "z"]));
        o.end();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"b":"q\"\n\u0001","a":3,"f":12.0,"t":["x:y","z"]}"#
        );
    }
}
