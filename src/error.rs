//! Errors: [`BuildError`] when a pipeline cannot be built, [`ExportError`] when a sink fails.

use std::error::Error;
use std::fmt;

/// Why [`Builder::build`](crate::Builder::build) (or `try_init`) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting has a value that cannot work.
    InvalidConfig {
        /// The setting, as its builder method or environment variable names it.
        setting: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
    /// An environment variable could not be parsed.
    InvalidEnv {
        /// The variable's name.
        variable: &'static str,
        /// What is wrong with its value (the value itself is not repeated: it may be a secret).
        reason: String,
    },
    /// A sink could not be opened (for example, a JSON-lines file).
    Sink {
        /// Which sink.
        sink: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The flusher or a sink thread could not be started.
    Spawn(std::io::Error),
    /// A global default subscriber was already set (`try_init` only).
    AlreadyInitialized,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::InvalidConfig { setting, reason } => {
                write!(f, "invalid tracing-tally setting `{setting}`: {reason}")
            }
            BuildError::InvalidEnv { variable, reason } => {
                write!(f, "invalid environment variable {variable}: {reason}")
            }
            BuildError::Sink { sink, source } => write!(f, "cannot open sink {sink}: {source}"),
            BuildError::Spawn(e) => write!(f, "cannot start the tracing-tally flusher thread: {e}"),
            BuildError::AlreadyInitialized => {
                f.write_str("a global default tracing subscriber is already set")
            }
        }
    }
}

impl Error for BuildError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BuildError::Sink { source, .. } | BuildError::Spawn(source) => Some(source),
            _ => None,
        }
    }
}

/// The kind of an [`ExportError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportErrorKind {
    /// Writing or sending failed.
    Io,
    /// The batch could not be encoded.
    Encode,
    /// The backend refused the data.
    Rejected,
    /// The deadline passed.
    Timeout,
    /// Anything else.
    Other,
}

/// A sink's failure to export or flush.
#[derive(Debug)]
pub struct ExportError {
    kind: ExportErrorKind,
    message: String,
    source: Option<Box<dyn Error + Send + Sync>>,
}

impl ExportError {
    /// An error of `kind` with a message.
    pub fn new(kind: ExportErrorKind, message: impl Into<String>) -> Self {
        ExportError { kind, message: message.into(), source: None }
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The error's kind.
    pub fn kind(&self) -> ExportErrorKind {
        self.kind
    }
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl Error for ExportError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

impl From<std::io::Error> for ExportError {
    fn from(error: std::io::Error) -> Self {
        ExportError::new(ExportErrorKind::Io, "i/o error").with_source(error)
    }
}
