//! Internal diagnostics: written to standard error when `debug` is on, never through `tracing`
//! (that would feed the layer its own events).

use std::io::Write;

/// Writes one diagnostic line to standard error.
pub(crate) fn log(message: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "[tracing-tally] {message}");
}
