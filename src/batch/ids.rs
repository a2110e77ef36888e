use std::fmt;

/// A span's 64-bit id, shown as 16 lower-case hex digits (the Sentry and W3C form).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(pub(crate) u64);

/// A trace's 128-bit id, shown as 32 lower-case hex digits (the Sentry and W3C form).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub(crate) u128);

impl SpanId {
    /// The id as a number.
    pub fn to_u64(self) -> u64 {
        self.0
    }
}

impl TraceId {
    /// The id as a number.
    pub fn to_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_render_as_fixed_width_hex() {
        assert_eq!(SpanId(0xab).to_string(), "00000000000000ab");
        assert_eq!(TraceId(1).to_string().len(), 32);
    }
}
