//! The raw command line (clap derive). Nothing outside the `config` module reads it: it is
//! turned into a validated `Config` before anything runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use goose::config::GooseConfiguration;

mod compare;
mod data;
mod events;
mod worker;
pub use compare::CompareArgs;
pub use data::DataArgs;
pub use events::EventArgs;
pub use worker::{MergeArgs, WorkerArgs};

/// Load-test, benchmark and monitor PostgreSQL + pgvector.
///
/// Without a subcommand, runs the weighted Goose load test (single- and cross-namespace kNN
/// search, key lookup, insert, background bulk inserts). Without --database-url, an embedded
/// PostgreSQL with pgvector is provisioned, seeded and used.
#[derive(Debug, Parser)]
#[command(
    name = "pgvector-loadtest",
    disable_version_flag = true,
    max_term_width = 100
)]
pub struct Cli {
    /// What to do (default: the load test).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Database connection.
    #[command(flatten)]
    pub db: DbArgs,
    /// Schema and dataset.
    #[command(flatten)]
    pub data: DataArgs,
    /// Workload shape.
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// The Prometheus exporter.
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Where reports go.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "reports",
        help_heading = "Reports"
    )]
    pub report_dir: PathBuf,
    /// Largest share of failed operations (0 to 1) a run may have and still exit 0; above it,
    /// every report is written and the exit code is --exit-code-on-error
    #[arg(
        long,
        global = true,
        value_name = "SHARE",
        default_value_t = 0.01,
        allow_hyphen_values = true,
        help_heading = "Reports"
    )]
    pub max_failure_share: f64,
    /// How often the load test prints its status line when the output is not a terminal (on a
    /// terminal it is redrawn every second).
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = humantime::parse_duration,
        help_heading = "Reports"
    )]
    pub status_interval: std::time::Duration,
    /// Exit code of a run with more than --max-failure-share failed operations (Locust's
    /// option; 0 turns the gate off)
    #[arg(
        long,
        global = true,
        value_name = "N",
        default_value_t = 1,
        help_heading = "Reports"
    )]
    pub exit_code_on_error: u8,
    /// Users started per second: Locust's name for Goose's --increase-rate
    // Hyphen values allowed so that `--hatch-rate -1` reaches the check that names the flag.
    #[arg(
        long,
        value_name = "RATE",
        help_heading = "Load test",
        allow_hyphen_values = true
    )]
    pub hatch_rate: Option<String>,
    /// A built-in load profile: baseline, normal, peak, stress, soak (users, rate, run time
    /// and the objectives the run is judged against; explicit flags override it)
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        help_heading = "Load test",
        conflicts_with = "profile_file"
    )]
    pub profile: Option<String>,
    /// A load profile file (TOML, as in scenarios/)
    #[arg(long, global = true, value_name = "PATH", help_heading = "Load test")]
    pub profile_file: Option<PathBuf>,
    /// Closed or open model, and their pacing.
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// One of several generators.
    #[command(flatten)]
    pub worker: WorkerArgs,
    /// Maintenance events and the visibility probe.
    #[command(flatten)]
    pub events: EventArgs,
    /// Goose's own options.
    #[command(flatten)]
    pub goose: GooseConfiguration,
}

/// Subcommands beside the default load test.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the schema and seed the dataset, then exit.
    Setup,
    /// Run the benchmark suite (single-user Goose scenarios) and measure recall.
    Bench(BenchArgs),
    /// Run the Prometheus exporter alone (server-side metrics of the database and its
    /// replicas) until Ctrl-C, e.g. beside a production cluster.
    Metrics,
    /// Is the load generator the bottleneck? Runs the same SQL through pgbench and through
    /// our Goose users at equal concurrency and compares throughput, latency and CPU.
    Calibrate(CalibrateArgs),
    /// Delete the rows load tests and benchmarks inserted (keys lt_*) from a memory_entries
    /// this harness created; seeded and foreign rows stay.
    Cleanup,
    /// Find the highest load at which every objective of a profile holds: steps the offered
    /// arrival rate up (geometric steps, then bisection near the knee), each a warm-up and a
    /// measured hold; writes capacity.json and capacity.svg.
    Capacity(CapacityArgs),
    /// Compare two runs' summaries (load_test_summary.json, benchmark_results.json or
    /// capacity.json): a table of p50/p95/p99, throughput, failure rate and recall per
    /// operation, and exit 3 when NEW is worse than BASE beyond the limits (a CI gate).
    Compare(CompareArgs),
    /// Merge the report directories of several generators of one run (--worker) into the
    /// reports of one run: histograms added, never percentiles averaged.
    Merge(MergeArgs),
}

/// What a capacity search raises at each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sweep {
    /// The offered arrival rate (open model, `--max-in-flight` users).
    Rate,
    /// The number of users, each with no think time (closed model, as VectorDBBench).
    Concurrency,
}

/// The capacity search's steps.
#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// What the steps raise
    #[arg(long, value_enum, default_value_t = Sweep::Rate)]
    pub sweep: Sweep,
    /// The first step's load: operations per second, or users with --sweep concurrency
    /// [default: 50 per second, 1 user]
    #[arg(long, value_name = "LOAD")]
    pub start: Option<f64>,
    /// Each step multiplies the load by this until an objective fails
    #[arg(long, default_value_t = 2.0, value_name = "FACTOR")]
    pub factor: f64,
    /// Highest load to try
    #[arg(long, default_value_t = 100_000.0, value_name = "LOAD")]
    pub max: f64,
    /// Bisection steps between the last load that held and the first that did not
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub refine: usize,
    /// Unmeasured time at the start of each step [default: 5s; --quick 2s]
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub warmup: Option<std::time::Duration>,
    /// Measured time of each step [default: 20s; --quick 6s]
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub hold: Option<std::time::Duration>,
    /// A short search for CI: 2 s warm-up, 6 s hold, 2 bisection steps
    #[arg(long)]
    pub quick: bool,
}

/// The Prometheus exporter: a sidecar of the load test and `bench`, or the `metrics` command.
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Port of the exporter's /metrics [default: 9090; a busy default port only skips the
    /// sidecar, a port given here must be free]
    #[arg(
        long,
        env = "METRICS_PORT",
        global = true,
        value_name = "PORT",
        help_heading = "Prometheus exporter"
    )]
    pub metrics_port: Option<u16>,
    /// Address the exporter listens on.
    #[arg(
        long,
        global = true,
        value_name = "IP",
        default_value = "127.0.0.1",
        help_heading = "Prometheus exporter"
    )]
    pub metrics_host: std::net::IpAddr,
    /// How often server-side metrics (connections, sizes, replication, cache) are polled.
    #[arg(long, global = true, default_value = "15s", value_parser = humantime::parse_duration, value_name = "DURATION", help_heading = "Prometheus exporter")]
    pub poll_interval: std::time::Duration,
    /// Do not start the exporter beside the load test or `bench`.
    #[arg(long, global = true, help_heading = "Prometheus exporter")]
    pub no_metrics_exporter: bool,
}

/// The benchmark suite's counts.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A short version for CI: every iteration count divided by 10 (at least 5); the
    /// concurrent benchmark keeps its clients, since its target is a number of connections.
    #[arg(long)]
    pub quick: bool,
    /// Iterations of the single-namespace search.
    #[arg(long, default_value_t = 1000)]
    pub single_iterations: usize,
    /// Iterations of the cross-namespace search.
    #[arg(long, default_value_t = 500)]
    pub cross_iterations: usize,
    /// Iterations of the data set benchmark (its test queries over the whole table).
    #[arg(long, default_value_t = 1000)]
    pub dataset_iterations: usize,
    /// Iterations of the filtered search, at every --filter-selectivity.
    #[arg(long, default_value_t = 500)]
    pub filtered_iterations: usize,
    /// Clients of the concurrent benchmark, each with its own connection (the spec's target
    /// is more than 100 concurrent connections; its 50 clients could never meet it).
    #[arg(long, default_value_t = 120)]
    pub concurrent_clients: usize,
    /// Queries per client in the concurrent benchmark.
    #[arg(long, default_value_t = 20)]
    pub concurrent_queries: usize,
    /// Batches of the bulk-insert benchmark.
    #[arg(long, default_value_t = 100)]
    pub bulk_batches: usize,
    /// Rows per batch of the bulk-insert benchmark.
    #[arg(long, default_value_t = 100)]
    pub bulk_rows: usize,
    /// Warm-up iterations before each benchmark, excluded from its statistics.
    #[arg(long, default_value_t = 50)]
    pub warmup: usize,
    /// Which benchmarks to run (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "single,cross,dataset,filtered,concurrent,bulk"
    )]
    pub only: Vec<Benchmark>,
}

/// A benchmark of the suite (`bench --only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Benchmark {
    /// Single-namespace search, one user.
    Single,
    /// Cross-namespace search, one user.
    Cross,
    /// A data set file's test queries over the whole table, with recall against the file's
    /// ground truth as well as exact search (skipped for data without ground truth).
    Dataset,
    /// Single-namespace search under a metadata filter (--filter-selectivity), one user.
    Filtered,
    /// Single-namespace search, many clients at once.
    Concurrent,
    /// Bulk inserts, one user.
    Bulk,
}

/// `calibrate`: what to compare and for how long.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Operations to compare (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "single,retrieve"
    )]
    pub op: Vec<CalibOp>,
    /// Concurrent clients on each side (pgbench -c, Goose users).
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Measured time of each side (whole seconds, as pgbench -T).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: std::time::Duration,
    /// Unmeasured warm-up before each side.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub warmup: std::time::Duration,
    /// Query vectors stored in pgvector_loadtest_queries for the search.
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Open model on both sides: transactions per second, scheduled as pgbench -R does
    /// (Poisson arrivals); latency then counts from each one's scheduled start
    #[arg(long, value_name = "PER_S")]
    pub rate: Option<f64>,
    /// With --rate: a transaction that cannot start within this of its schedule is skipped
    /// (pgbench --latency-limit; our --max-lag)
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub latency_limit: std::time::Duration,
}

/// Where the database is.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// PostgreSQL URL or key=value string; without it, the embedded server is used.
    /// A postgres:// --host is taken as this.
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        value_name = "URL",
        hide_env_values = true,
        help_heading = "Database"
    )]
    pub database_url: Option<String>,
    /// Read endpoint (a streaming replica); repeatable.
    #[arg(long, global = true, value_name = "URL", help_heading = "Database")]
    pub replica_url: Vec<String>,
    /// Where searches and retrieves go (auto: replicas when any are configured).
    #[arg(long, global = true, value_enum, default_value_t = ReadFrom::Auto, help_heading = "Database")]
    pub read_from: ReadFrom,
    /// Connections in the pool (per endpoint).
    #[arg(
        long,
        global = true,
        default_value_t = 100,
        value_name = "N",
        help_heading = "Database"
    )]
    pub pool_size: u32,
    /// How long an operation waits for a pool connection before failing as pool_timeout.
    #[arg(long, global = true, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION", help_heading = "Database")]
    pub pool_timeout: std::time::Duration,
    /// Server-side statement_timeout for every query (e.g. 5s).
    #[arg(long, global = true, value_parser = humantime::parse_duration, value_name = "DURATION", help_heading = "Database")]
    pub statement_timeout: Option<std::time::Duration>,
    /// How queries are sent: named statements prepared once per connection, or unnamed
    /// ones (one Parse/Bind/Execute round trip each), which work through PgBouncer in
    /// transaction mode
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "prepared",
        value_name = "MODE",
        help_heading = "Database"
    )]
    pub statement_mode: crate::workload::ops::StatementMode,
    /// Embedded server: streaming replicas to start and read from.
    #[arg(
        long,
        global = true,
        default_value_t = 0,
        value_name = "N",
        help_heading = "Embedded server"
    )]
    pub embedded_replicas: u32,
    /// Embedded server: delete its data directory first (reseeds).
    #[arg(long, global = true, help_heading = "Embedded server")]
    pub wipe: bool,
    /// Embedded server: use this PostgreSQL bin directory (with pgvector) instead of the wheel.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        help_heading = "Embedded server"
    )]
    pub pg_bin: Option<PathBuf>,
}

/// Where reads are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReadFrom {
    /// Replicas when configured, else the primary.
    Auto,
    /// Always the primary.
    Primary,
    /// The replicas (round robin per user); an error when none is configured.
    Replicas,
}

/// pgvector's `hnsw.iterative_scan` modes, spelled as the setting takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum IterativeScan {
    /// Stop at ef_search candidates, as before pgvector 0.8.
    Off,
    /// Scan on until enough rows pass the filters, in approximately the right order.
    RelaxedOrder,
    /// Scan on until enough rows pass the filters, in exact distance order.
    StrictOrder,
}

impl IterativeScan {
    /// The setting's value (`SET hnsw.iterative_scan = ...`).
    pub fn as_str(self) -> &'static str {
        match self {
            IterativeScan::Off => "off",
            IterativeScan::RelaxedOrder => "relaxed_order",
            IterativeScan::StrictOrder => "strict_order",
        }
    }
}

/// What the users do.
#[derive(Debug, Args)]
pub struct WorkloadArgs {
    /// k of the single-namespace search.
    #[arg(long, global = true, default_value_t = 10, help_heading = "Workload")]
    pub k: u32,
    /// k of the cross-namespace search.
    #[arg(long, global = true, default_value_t = 20, help_heading = "Workload")]
    pub cross_k: u32,
    /// Namespaces per cross-namespace search.
    #[arg(long, global = true, default_value_t = 5, help_heading = "Workload")]
    pub cross_namespaces: usize,
    /// Drop single-namespace results below this cosine similarity (the original used 0.7).
    #[arg(long, global = true, help_heading = "Workload")]
    pub min_similarity: Option<f64>,
    /// Share of retrieves that ask for an existing key.
    #[arg(long, global = true, default_value_t = 1.0, help_heading = "Workload")]
    pub retrieve_hit_ratio: f64,
    /// Rows per bulk insert in the load test.
    #[arg(long, global = true, default_value_t = 50, help_heading = "Workload")]
    pub bulk_batch: usize,
    /// Share of users that are background bulk inserters.
    #[arg(long, global = true, default_value_t = 0.1, help_heading = "Workload")]
    pub bulk_user_share: f64,
    /// Share of the seeded rows the filtered search keeps (above 0, at most 1; 0.0001 is one
    /// bucket in 10,000); `bench` takes a comma-separated list to sweep.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "0.01",
        value_name = "SHARE",
        allow_hyphen_values = true,
        help_heading = "Workload"
    )]
    pub filter_selectivity: Vec<f64>,
    /// Weight of the filtered search (vector_search_filtered) in the load test's mix, beside
    /// single 10, cross 3, retrieve 2, insert 1 (0: not in the mix).
    #[arg(
        long,
        global = true,
        default_value_t = 0,
        value_name = "N",
        help_heading = "Workload"
    )]
    pub filtered_weight: usize,
}

/// An operation `calibrate` can compare (`--op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CalibOp {
    /// Single-namespace kNN search (k = `--k`).
    Single,
    /// Key lookup of an existing key.
    Retrieve,
}

impl CalibOp {
    /// The load test's operation it stands for.
    pub fn op(self) -> crate::workload::ops::Op {
        match self {
            CalibOp::Single => crate::workload::ops::Op::SingleShardSearch,
            CalibOp::Retrieve => crate::workload::ops::Op::Retrieve,
        }
    }
}

/// The load model: closed (users with think time) or open (an arrival rate).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PacingArgs {
    /// Closed model: each search user's pause between operations, MIN..MAX (uniform), one
    /// duration, or 0 (no pause: fixed concurrency)
    #[arg(
        long,
        value_name = "MIN..MAX",
        help_heading = "Load model",
        global = true
    )]
    pub think_time: Option<String>,
    /// The background bulk inserters' pause between batches, MIN..MAX
    #[arg(
        long,
        value_name = "MIN..MAX",
        help_heading = "Load model",
        global = true
    )]
    pub bulk_think_time: Option<String>,
    /// Open model: operations per second across all search users, whatever the database
    /// answers (with --arrival-stages: the rate the first stage ramps from)
    #[arg(long, value_name = "PER_S", help_heading = "Load model", global = true)]
    pub arrival_rate: Option<f64>,
    /// Open model: ramp linearly to each rate over each duration, as k6's ramping executor
    /// (such as 30s:100,60s:500,30s:500); the run lasts as long as the stages
    #[arg(
        long,
        value_name = "STAGES",
        help_heading = "Load model",
        global = true
    )]
    pub arrival_stages: Option<String>,
    /// Open model: spacing of arrivals
    #[arg(long, value_enum, default_value_t = crate::engine::arrivals::Spacing::Uniform, help_heading = "Load model", global = true)]
    pub arrivals: crate::engine::arrivals::Spacing,
    /// Open model: most operations in flight at once (the Goose users started; default
    /// --users, else 100)
    #[arg(long, value_name = "N", help_heading = "Load model", global = true)]
    pub max_in_flight: Option<usize>,
    /// Open model: an arrival no user could start within this of its intended start is
    /// dropped (counted, not run)
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration, help_heading = "Load model", global = true)]
    pub max_lag: std::time::Duration,
}
