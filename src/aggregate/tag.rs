//! Tags: a shared key and a value, small enough to live inline in a series entry.
//!
//! A series keeps its tags for its whole life, so their size is most of what a series costs. A
//! [`Tag`] is 32 bytes: its key is one pointer to text shared by every series of the callsite,
//! and a value of up to [`INLINE_VALUE`] bytes is stored in place, without an allocation of its
//! own (route names, status codes, hosts and user ids nearly always fit).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// The longest value kept in place; longer values get an allocation of their own.
pub(crate) const INLINE_VALUE: usize = 22;

/// A tag key, shared by the series that carry it. One pointer wide (the text sits behind a
/// second pointer, read only when tags are exported).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TagKeyText(Arc<Box<str>>);

impl TagKeyText {
    pub(crate) fn new(key: &str) -> Self {
        TagKeyText(Arc::new(key.into()))
    }
}

impl Deref for TagKeyText {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TagKeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A tag value: in place when short, boxed otherwise. 24 bytes either way.
#[derive(Clone)]
enum ValueText {
    Inline { len: u8, bytes: [u8; INLINE_VALUE] },
    Boxed(Box<str>),
}

impl ValueText {
    fn new(value: &str) -> Self {
        if value.len() <= INLINE_VALUE {
            let mut bytes = [0; INLINE_VALUE];
            bytes[..value.len()].copy_from_slice(value.as_bytes());
            // The length fits: it is at most INLINE_VALUE.
            ValueText::Inline { len: value.len() as u8, bytes }
        } else {
            ValueText::Boxed(value.into())
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Always the bytes of a whole `&str`: the check cannot fail (and costs a few
            // nanoseconds, on export only).
            ValueText::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            ValueText::Boxed(text) => text,
        }
    }
}

/// A tag: a key and a value, both text.
///
/// Opaque: read it with [`key`](Self::key) and [`value`](Self::value). Tags compare, order
/// and hash by their text.
#[derive(Clone)]
pub struct Tag {
    key: TagKeyText,
    value: ValueText,
}

impl Tag {
    /// A tag from a key and a value.
    pub(crate) fn new(key: &str, value: &str) -> Tag {
        Tag::with_key(&TagKeyText::new(key), value)
    }

    /// A tag whose key text is shared with other tags (no allocation for the key).
    pub(crate) fn with_key(key: &TagKeyText, value: &str) -> Tag {
        Tag { key: key.clone(), value: ValueText::new(value) }
    }

    /// The tag's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The tag's value.
    pub fn value(&self) -> &str {
        self.value.as_str()
    }
}

impl PartialEq for Tag {
    fn eq(&self, other: &Tag) -> bool {
        (self.key(), self.value()) == (other.key(), other.value())
    }
}

impl Eq for Tag {}

impl PartialOrd for Tag {
    fn partial_cmp(&self, other: &Tag) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Tag {
    fn cmp(&self, other: &Tag) -> Ordering {
        (self.key(), self.value()).cmp(&(other.key(), other.value()))
    }
}

impl Hash for Tag {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.key(), self.value()).hash(state);
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.key(), self.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_four_words() {
        assert_eq!(std::mem::size_of::<Tag>(), 32);
    }

    #[test]
    fn values_round_trip_inline_and_boxed() {
        let at_limit = "x".repeat(INLINE_VALUE);
        let over = "é".repeat(INLINE_VALUE);
        for value in ["", "/api/users/12345", "ünïcödé", at_limit.as_str(), over.as_str()] {
            let tag = Tag::new("k", value);
            assert_eq!((tag.key(), tag.value()), ("k", value));
        }
        assert!(matches!(ValueText::new(&at_limit), ValueText::Inline { .. }));
        assert!(matches!(ValueText::new(&over), ValueText::Boxed(_)));
    }

    #[test]
    fn tags_compare_by_text() {
        let key = TagKeyText::new("route");
        assert_eq!(Tag::with_key(&key, "/a"), Tag::new("route", "/a"));
        assert!(Tag::new("a", "z") < Tag::new("b", "a"));
        assert!(Tag::new("a", "short") < Tag::new("a", &"t".repeat(40)));
    }
}
