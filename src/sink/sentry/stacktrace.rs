//! Stack traces: frames parsed from a captured `std::backtrace::Backtrace`, in Sentry's shape.
//!
//! The standard library exposes frames only through the backtrace's text form (symbols are
//! resolved then, on the sink thread), so this reads that form:
//!
//! ```text
//!    4: my_app::handler::load
//!              at ./src/handler.rs:42:17
//! ```
//!
//! Frames are returned oldest first, as Sentry wants them. A frame is `in_app` unless it belongs
//! to the standard library, to the tracing machinery, or to a dependency (a path under
//! `.cargo/registry`, `.cargo/git` or the Rust sources).

use std::backtrace::Backtrace;

use serde_json::{json, Value};

/// Most frames kept (the innermost ones).
const MAX_FRAMES: usize = 128;

/// Function path prefixes that are never application code.
const NOT_IN_APP: &[&str] = &[
    "std::",
    "core::",
    "alloc::",
    "backtrace::",
    "tracing::",
    "tracing_core::",
    "tracing_subscriber::",
    "tracing_tally::",
    "__rust",
    "<std::",
    "<core::",
    "<alloc::",
    "<tracing",
];

/// Sentry `stacktrace` JSON for a backtrace, or `None` if it has no frames.
pub(crate) fn stacktrace(backtrace: &Backtrace) -> Option<Value> {
    let frames = frames(&backtrace.to_string());
    (!frames.is_empty()).then(|| json!({ "frames": frames }))
}

/// A frame as the backtrace text shows it.
struct Frame {
    function: String,
    location: Option<Location>,
}

/// `path:line[:column]`.
struct Location {
    file: String,
    line: u64,
    column: Option<u64>,
}

fn frames(text: &str) -> Vec<Value> {
    let mut frames: Vec<Frame> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(location) = trimmed.strip_prefix("at ") {
            if let Some(last) = frames.last_mut() {
                last.location = parse_location(location);
            }
        } else if let Some((number, function)) = trimmed.split_once(": ") {
            if number.chars().all(|c| c.is_ascii_digit()) && !number.is_empty() {
                frames.push(Frame { function: function.trim().to_owned(), location: None });
            }
        }
    }
    frames.truncate(MAX_FRAMES);
    frames.into_iter().rev().map(frame_json).collect()
}

fn frame_json(Frame { function, location }: Frame) -> Value {
    let file = location.as_ref().map(|l| l.file.as_str());
    let mut frame = json!({ "function": function, "in_app": in_app(&function, file) });
    if let Some(Location { file, line, column }) = location {
        frame["filename"] = Value::from(file.clone());
        frame["abs_path"] = Value::from(file);
        frame["lineno"] = Value::from(line);
        if let Some(column) = column {
            frame["colno"] = Value::from(column);
        }
    }
    frame
}

fn parse_location(location: &str) -> Option<Location> {
    let (rest, last) = location.trim().rsplit_once(':')?;
    let last: u64 = last.parse().ok()?;
    let with_column = rest.rsplit_once(':').and_then(|(file, line)| {
        let line = line.parse::<u64>().ok()?;
        Some(Location { file: file.to_owned(), line, column: Some(last) })
    });
    Some(with_column.unwrap_or_else(|| Location {
        file: rest.to_owned(),
        line: last,
        column: None,
    }))
}

fn in_app(function: &str, file: Option<&str>) -> bool {
    let foreign_file = file.is_some_and(|f| {
        f.contains("/.cargo/registry/") || f.contains("/.cargo/git/") || f.starts_with("/rustc/")
    });
    !foreign_file && !NOT_IN_APP.iter().any(|p| function.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "   0: std::backtrace_rs::backtrace::libunwind::trace
             at /rustc/abc/library/std/src/../../backtrace/src/backtrace/libunwind.rs:117:9
   1: my_app::db::query
             at ./src/db.rs:42:17
   2: serde_json::de::from_str
             at /home/u/.cargo/registry/src/index/serde_json-1.0/src/de.rs:10:5
   3: main
";

    #[test]
    fn frames_are_oldest_first_with_in_app_marked() {
        let frames = frames(SAMPLE);
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0]["function"], "main");
        assert_eq!(frames[0]["in_app"], true);
        assert_eq!(frames[1]["function"], "serde_json::de::from_str");
        assert_eq!(frames[1]["in_app"], false);
        assert_eq!(frames[2]["function"], "my_app::db::query");
        assert_eq!(
            (frames[2]["lineno"].as_u64(), frames[2]["colno"].as_u64()),
            (Some(42), Some(17))
        );
        assert_eq!(frames[2]["in_app"], true);
        assert_eq!(frames[3]["in_app"], false);
    }

    #[test]
    fn a_real_backtrace_has_frames() {
        let trace = stacktrace(&Backtrace::force_capture());
        assert!(trace.is_some_and(|t| t["frames"].as_array().is_some_and(|f| !f.is_empty())));
    }
}
