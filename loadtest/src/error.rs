//! The load tester's error type: everything that stops a run before it produces a report.

use std::io;
use thiserror::Error;

/// A run could not start or finish.
#[derive(Debug, Error)]
pub enum Error {
    /// Invalid or contradictory options; fix the command line.
    #[error("{0}")]
    Config(String),
    /// The target resolves outside 127.0.0.0/8 / ::1; pass `--allow-non-loopback` if meant.
    #[error("{0} is not a loopback address; pass --allow-non-loopback to load another host")]
    NonLoopback(String),
    /// The publisher (Redis or HTTP) could not connect or failed.
    #[error("publisher: {0}")]
    Publisher(String),
    /// No client could connect at all; the summary would be meaningless.
    #[error("no client could connect: {0}")]
    NothingConnected(String),
    /// A plot or histogram file could not be made (the run itself finished).
    #[error("{0}")]
    Export(String),
    /// A worker thread panicked or vanished.
    #[error("worker thread {0} died")]
    Worker(String),
    /// Any other I/O error (spawning threads, writing the JSON file).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

/// Result with [`enum@Error`].
pub type Result<T> = std::result::Result<T, Error>;
