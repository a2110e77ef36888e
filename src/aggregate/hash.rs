//! Series hashing: order-independent tag hashes with no allocation.
//!
//! A series is identified by `series_hash(metric, tags)`, where `tags` is the wrapping sum of one
//! well-mixed hash per tag. Addition commutes, so the order of fields never matters.
//!
//! A tag value is hashed by what it will be exported as: an integer `200` and the text `"200"`
//! are the same tag value. Integers are hashed as numbers (no formatting on the hot path), and
//! so is text that is the canonical decimal form of an integer; all other text by its bytes.

use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use foldhash::fast::FixedState;

const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Hashes text (a tag key, a tag value, a set member).
#[inline]
pub(crate) fn hash_str(text: &str) -> u64 {
    hash_bytes(text.as_bytes())
}

/// Hashes the bytes of text (what [`hash_str`] hashes).
#[inline]
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    FixedState::with_seed(SEED).hash_one(bytes)
}

/// Hashes a value exported as text: by number if it is an integer's canonical decimal form.
#[inline]
pub(crate) fn hash_value_text(text: &[u8]) -> u64 {
    match parse_canonical_integer(text) {
        Some(n) => hash_integer(n),
        None => hash_bytes(text),
    }
}

/// Hashes an integer value (equal to [`hash_value_text`] of its decimal form).
#[inline]
pub(crate) fn hash_integer(value: i128) -> u64 {
    match i64::try_from(value) {
        Ok(v) => mix((v as u64) ^ 0x5851_f42d_4c95_7f2d),
        Err(_) => mix((value as u64) ^ mix((value >> 64) as u64 ^ 0x1405_7b7e_f767_814f)),
    }
}

/// Hashes an unsigned integer value (beyond `i128`, by its decimal text).
#[inline]
pub(crate) fn hash_unsigned(value: u128) -> u64 {
    match i128::try_from(value) {
        Ok(v) => hash_integer(v),
        Err(_) => hash_bytes(value.to_string().as_bytes()),
    }
}

/// The integer whose canonical decimal form `text` is (`-?[1-9][0-9]*` or `0`), if any.
#[inline]
fn parse_canonical_integer(text: &[u8]) -> Option<i128> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    // Most tag values fail on their first byte.
    match digits {
        [b'1'..=b'9', ..] if digits.len() <= 39 => {}
        [b'0'] if !negative => return Some(0),
        _ => return None,
    }
    let mut value: i128 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        let digit = i128::from(b - b'0');
        value = value.checked_mul(10)?.checked_add(if negative { -digit } else { digit })?;
    }
    Some(value)
}

/// The murmur3 64-bit finalizer: spreads every input bit over the output.
#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// One tag's contribution to a series' tag hash.
#[inline]
pub(crate) fn tag_hash(key_hash: u64, value_hash: u64) -> u64 {
    mix(key_hash ^ value_hash.rotate_left(29).wrapping_mul(0x2545_f491_4f6c_dd1d))
}

/// A series' identity from its metric's hash and its tags' summed hashes.
#[inline]
pub(crate) fn series_hash(metric_hash: u64, tags_hash: u64) -> u64 {
    mix(metric_hash ^ mix(tags_hash.wrapping_add(0x6a09_e667_f3bc_c909)))
}

/// A hasher for keys that already are good hashes (series hashes, callsite addresses mixed).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by the maps keyed with this hasher; fold anything else in.
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// Builds [`PassThrough`] hashers.
pub(crate) type BuildPassThrough = BuildHasherDefault<PassThrough>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_their_text_hash_alike() {
        for v in [0i128, 7, -7, 200, i64::MAX.into(), i64::MIN.into(), i128::MAX, i128::MIN] {
            assert_eq!(hash_integer(v), hash_value_text(v.to_string().as_bytes()), "{v}");
        }
        assert_eq!(hash_unsigned(u128::MAX), hash_value_text(u128::MAX.to_string().as_bytes()));
        for text in ["007", "-0", "+1", "1.0", "1e3", "", "-", "12a"] {
            assert_eq!(hash_value_text(text.as_bytes()), hash_bytes(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn tag_sums_do_not_depend_on_order() {
        let a = tag_hash(hash_str("route"), hash_str("/x"));
        let b = tag_hash(hash_str("status"), hash_str("200"));
        assert_eq!(a.wrapping_add(b), b.wrapping_add(a));
        // Swapping key and value gives another tag.
        assert_ne!(tag_hash(hash_str("a"), hash_str("b")), tag_hash(hash_str("b"), hash_str("a")));
    }

    #[test]
    fn series_hash_separates_metrics() {
        let tags = tag_hash(hash_str("k"), hash_str("v"));
        assert_ne!(series_hash(1, tags), series_hash(2, tags));
        assert_ne!(series_hash(1, 0), series_hash(1, tags));
    }
}
