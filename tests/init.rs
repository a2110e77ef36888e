//! `try_init` from the environment: variables are read, bad ones are reported, the guard flushes
//! to the configured JSON-lines file.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tracing_tally::BuildError;

#[test]
fn init_reads_the_environment_and_installs_the_global_subscriber() {
    let path = std::env::temp_dir().join(format!("tally-init-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    // This binary holds one test, so changing the environment races nothing.
    std::env::set_var("TALLY_ROLLUP_INTERVAL", "soon");
    match tracing_tally::try_init() {
        Err(BuildError::InvalidEnv { variable, .. }) => {
            assert_eq!(variable, "TALLY_ROLLUP_INTERVAL")
        }
        other => panic!("expected an InvalidEnv error, got {other:?}"),
    }
    std::env::set_var("TALLY_ROLLUP_INTERVAL", "0.05");
    std::env::set_var("TALLY_JSONL", &path);
    std::env::set_var("TALLY_SERVICE", "init-test");
    std::env::set_var("DD_ENV", "ci");
    std::env::set_var("TALLY_HOST", "");
    std::env::set_var("TALLY_SELF_METRICS", "off");
    std::env::set_var("RUST_LOG", "off");
    let guard = tracing_tally::try_init().expect("init");
    assert!(matches!(tracing_tally::try_init(), Err(BuildError::AlreadyInitialized)));

    tracing::info!(monotonic_counter.started = 1, role = "worker");
    assert!(tracing_tally::flush(Duration::from_secs(5)));
    drop(guard);

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let started: Vec<_> = lines.iter().filter(|l| l["name"] == "started").collect();
    assert_eq!(started.len(), 1, "{text}");
    assert_eq!(started[0]["value"], 1);
    assert_eq!(
        started[0]["tags"],
        serde_json::json!({"environment": "ci", "role": "worker", "service": "init-test"})
    );
    assert_eq!(started[0]["interval"], 0.05);
    let _ = std::fs::remove_file(&path);
}
