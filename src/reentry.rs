//! The re-entrancy switch: threads that do the pipeline's own work are invisible to the layer.
//!
//! The flusher and the sinks' sender threads log through `tracing` like any code (a failed send,
//! a retry), and a manual-mode flush runs sinks on an application thread. Were those events
//! recorded, exporting would feed the pipeline it exports: a feedback loop. So those threads set
//! this switch and the layer ignores every event and span of a thread that has it on. Other
//! layers still see them.
//!
//! It sits below the layer (which reads it) and the flusher and sinks (which set it), so neither
//! side imports the other for it.

use std::cell::Cell;

thread_local! {
    /// Whether the layer ignores this thread. `const` and without a destructor: reading it costs
    /// one thread-local load, with no lazy initialisation to check, on the layer's hot path.
    static SUPPRESSED: Cell<bool> = const { Cell::new(false) };
}

/// Makes the layer ignore every event and span of this thread from now on (flusher and sink
/// threads).
///
/// This is not `dispatcher::with_default(&Dispatch::none(), ..)`: a scoped dispatcher that
/// lives as long as the thread would make tracing-core take its slower scoped-dispatch path for
/// every event of every thread in the process.
pub(crate) fn suppress_this_thread() {
    SUPPRESSED.set(true);
}

/// Runs `f` with the layer ignoring this thread's events, so a sink that logs through `tracing`
/// while it runs on an application thread (manual mode) cannot feed the pipeline.
pub(crate) fn suppressed<R>(f: impl FnOnce() -> R) -> R {
    // Restores the previous state even when `f` unwinds: the thread is the application's.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SUPPRESSED.set(self.0);
        }
    }
    let _restore = Restore(SUPPRESSED.replace(true));
    f()
}

/// Whether the layer ignores this thread's events and spans.
#[inline]
pub(crate) fn is_suppressed() -> bool {
    SUPPRESSED.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppressed_restores_the_previous_state_even_on_unwind() {
        assert!(!is_suppressed());
        let inner = suppressed(|| suppressed(is_suppressed));
        assert!(inner);
        assert!(!is_suppressed());
        let unwound = std::panic::catch_unwind(|| suppressed(|| panic!("sink panicked")));
        assert!(unwound.is_err());
        assert!(!is_suppressed());
        let other = std::thread::spawn(|| {
            suppress_this_thread();
            is_suppressed()
        })
        .join();
        assert!(matches!(other, Ok(true)));
        assert!(!is_suppressed(), "the switch is per thread");
    }
}
