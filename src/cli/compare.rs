//! `compare`'s arguments: two summaries and the limits they are judged by.

use std::path::PathBuf;

use clap::Args;

/// `compare`: the two summaries and the limits.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline summary
    #[arg(value_name = "BASE")]
    pub base: PathBuf,
    /// The summary to judge, of the same kind
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Largest relative worsening of latency (p50, p95, p99) and throughput, as 10% or 0.1
    /// [default: 10%, or the profile's [compare] table]
    #[arg(long, value_name = "LIMIT", allow_hyphen_values = true)]
    pub max_regression: Option<String>,
    /// Limits of single metrics, comma-separated, e.g. p95=5%,recall=0.01 (p50 p95 p99
    /// throughput: relative; failure_rate recall: absolute, default 0.001 and 0.01)
    #[arg(
        long,
        value_name = "METRIC=LIMIT",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub max_regression_metric: Vec<String>,
    /// Also write the table as GitHub-flavoured markdown to FILE, a verdict line first
    /// (e.g. "$GITHUB_STEP_SUMMARY"); `-` prints it on stdout instead of the text table
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Compare runs whose dataset, layout or index settings differ (a warning names them)
    #[arg(long)]
    pub force: bool,
}
