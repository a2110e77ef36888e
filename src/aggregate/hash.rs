//! Series hashing: order-independent tag hashes with no allocation.
//!
//! A series is identified by `series_hash(metric, tags)`, where `tags` is the wrapping sum of one
//! well-mixed hash per tag. Addition commutes, so the order of fields never matters, and a tag
//! value is hashed as the text it will be exported as (an integer `200` and a string `"200"` are
//! the same tag value).

use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use foldhash::fast::FixedState;

const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Hashes text (a tag key, a tag value, a set member).
#[inline]
pub(crate) fn hash_str(text: &str) -> u64 {
    FixedState::with_seed(SEED).hash_one(text)
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
    mix(key_hash
        ^ value_hash
            .rotate_left(29)
            .wrapping_mul(0x2545_f491_4f6c_dd1d))
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
    fn tag_sums_do_not_depend_on_order() {
        let a = tag_hash(hash_str("route"), hash_str("/x"));
        let b = tag_hash(hash_str("status"), hash_str("200"));
        assert_eq!(a.wrapping_add(b), b.wrapping_add(a));
        // Swapping key and value gives another tag.
        assert_ne!(
            tag_hash(hash_str("a"), hash_str("b")),
            tag_hash(hash_str("b"), hash_str("a"))
        );
    }

    #[test]
    fn series_hash_separates_metrics() {
        let tags = tag_hash(hash_str("k"), hash_str("v"));
        assert_ne!(series_hash(1, tags), series_hash(2, tags));
        assert_ne!(series_hash(1, 0), series_hash(1, tags));
    }
}
