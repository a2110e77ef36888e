//! Guards around application code that runs inside the layer.
//!
//! The layer calls application code only to format field values: `Debug` and `Display`
//! implementations, and `Error::source` chains. Each such call goes through [`user_code`], so a
//! panic there is caught and counted (`panic`) instead of unwinding into the application's
//! `tracing` call.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::stats::{Counters, DropReason};

/// Runs `f`, catching a panic (counted); `None` if it panicked.
#[inline]
pub(crate) fn user_code<R>(counters: &Counters, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => Some(result),
        Err(_) => {
            counters.dropped(DropReason::Panic, 1);
            None
        }
    }
}

/// Runs `f`, catching a panic without counting it (the caller counts once per event).
#[inline]
pub(crate) fn quietly<R>(f: impl FnOnce() -> R) -> Option<R> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}
