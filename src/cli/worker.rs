//! Several generators acting as one test: `--worker I/N` (or `--workers N` with the index from
//! `JOB_COMPLETION_INDEX`), the run id they share, when they start, and `merge`'s arguments.

use std::path::PathBuf;

use clap::Args;

/// The load test as one of several generators.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Run as generator I of N (0-based): 1/N of the users (or of the arrival rate) on the
    /// namespaces n with n % N == I, started with the others through the database
    #[arg(
        long,
        value_name = "I/N",
        help_heading = "Several generators",
        conflicts_with = "workers"
    )]
    pub worker: Option<String>,
    /// Run as one of N generators, the index taken from JOB_COMPLETION_INDEX (set by a
    /// Kubernetes Indexed Job)
    #[arg(long, value_name = "N", help_heading = "Several generators")]
    pub workers: Option<usize>,
    /// The id every generator of one test shares (letters, digits, '-', '_', '.')
    #[arg(
        long,
        value_name = "ID",
        env = "PLT_RUN_ID",
        help_heading = "Several generators"
    )]
    pub run_id: Option<String>,
    /// Start at this time (RFC 3339, the database server's clock) instead of 2 s after the
    /// last generator arrives
    #[arg(long, value_name = "TIME", help_heading = "Several generators")]
    pub start_at: Option<String>,
    /// How long a generator waits for the others before the run fails
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5m",
        value_parser = humantime::parse_duration,
        help_heading = "Several generators"
    )]
    pub rendezvous_timeout: std::time::Duration,
}

/// `merge`: the generators' report directories.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Report directories of the generators of one run (each with worker.json and
    /// histograms.hlog); the merged reports go to --report-dir
    #[arg(value_name = "DIR", required = true, num_args = 1..)]
    pub dirs: Vec<PathBuf>,
}
