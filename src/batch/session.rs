use std::time::SystemTime;

/// How sessions appear among the metric records: the `sessions` counter, tagged `mode`
/// (`application` or `request`) and `status` (`exited`, `errored`, `crashed`...).
pub(crate) mod session_counter {
    /// The name of the session counter.
    pub(crate) const SESSIONS_METRIC: &str = "sessions";
    /// The tag naming a session's mode.
    pub(crate) const MODE_TAG: &str = "mode";
    /// The tag naming a session's final status.
    pub(crate) const STATUS_TAG: &str = "status";
}

/// The state of a release-health session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionStatus {
    /// Running.
    Ok,
    /// Ended normally (with or without errors).
    Exited,
    /// Ended by a panic.
    Crashed,
    /// Ended in an unknown way.
    Abnormal,
}

impl SessionStatus {
    /// The status's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Ok => "ok",
            SessionStatus::Exited => "exited",
            SessionStatus::Crashed => "crashed",
            SessionStatus::Abnormal => "abnormal",
        }
    }
}

/// An update of the process session (release health, application mode).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionUpdate {
    /// The session's id (a UUID v4, 32 hex digits).
    pub sid: u128,
    /// Whether this is the session's first update.
    pub init: bool,
    /// When the session started.
    pub started: SystemTime,
    /// When this update was made.
    pub timestamp: SystemTime,
    /// The session's state.
    pub status: SessionStatus,
    /// Errors captured during the session so far.
    pub errors: u64,
    /// The release (sessions are only tracked with one).
    pub release: String,
    /// The environment, if configured.
    pub environment: Option<String>,
}

impl SessionUpdate {
    /// The session id in UUID form (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
    pub fn sid_string(&self) -> String {
        let hex = format!("{:032x}", self.sid);
        let part = |range: std::ops::Range<usize>| hex.get(range).unwrap_or_default().to_owned();
        format!("{}-{}-{}-{}-{}", part(0..8), part(8..12), part(12..16), part(16..20), part(20..32))
    }
}
