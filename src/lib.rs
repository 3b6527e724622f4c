//! pgvector-loadtest: a Goose-based load-testing, benchmarking and monitoring harness for
//! PostgreSQL + pgvector clusters that store embeddings in a `memory_entries` table split by
//! namespace.
//!
//! # Layout
//! Top-level modules, each depending only on those listed before it (checked by
//! `tests/it/modules.rs`):
//! - [`workload`]: the dataset ([`workload::dataset`]), the six operations
//!   ([`workload::ops`]), failure classes ([`workload::failure`]) and the workload's knobs.
//! - [`shutdown`]: the one owner of signals and of the child processes to stop.
//! - [`db`]: endpoints and credentials ([`db::target`], [`db::conninfo`]), the embedded
//!   PostgreSQL ([`db::embedded`]), the pool ([`db::pool`]), schema and ownership
//!   ([`db::schema`]), seeding by binary COPY ([`db::seed`]).
//! - [`engine`]: what every mode drives: the timed operation ([`engine::operation`]), our µs
//!   statistics ([`engine::stats`]), the open model's arrival schedule
//!   ([`engine::arrivals`]), code-run Goose attacks, CPU accounting, recall.
//! - [`profile`]: load profiles (scenarios/*.toml) and their objectives.
//! - [`report`]: Locust-compatible CSVs, the JSON summary, the objectives' verdicts and the
//!   failure gate.
//! - [`cli`]: the raw command line (clap derive, Goose's options flattened in).
//! - [`config`]: the validated configuration; nothing downstream reads the raw CLI.
//! - [`metrics`]: the Prometheus exporter (sidecar or `metrics` command): client-side series
//!   ([`metrics::client`]), recall sampled under load ([`metrics::recall`]), server-side
//!   polling ([`metrics::server`]).
//! - The modes: [`load`] (the Goose scenarios of the load test), [`bench`](mod@bench) (the
//!   benchmark suite: single-user Goose scenarios, recall@k, ef_search sweeps), [`cleanup`]
//!   (deletes only the rows load tests inserted), [`calibrate`] (the same SQL through pgbench
//!   and through our Goose users, compared: is the load generator the bottleneck?),
//!   [`capacity`] (load tests at rising load until an objective fails: the knee).
//! - [`compare`]: two runs' summaries judged against each other: the regression gate for CI
//!   (reads files only; no server).
//! - [`app`]: one run from configuration to exit code.
//!
//! # Exit codes
//! See [`Exit`].
#![warn(missing_docs)]

pub mod app;
pub mod bench;
pub mod calibrate;
pub mod capacity;
pub mod cleanup;
pub mod cli;
pub mod compare;
pub mod config;
pub mod db;
pub mod distributed;
pub mod engine;
pub mod events;
pub mod load;
pub mod metrics;
pub mod profile;
pub mod report;
pub mod shutdown;
pub mod workload;

/// The process exit codes: a contract, documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The run completed, and no more than `--max-failure-share` of its operations failed.
    Success,
    /// The run started but could not complete (lost the database during setup, I/O error
    /// writing reports).
    Failed,
    /// Bad usage or configuration, or an environment the run cannot start in (unreachable
    /// server, no pgvector, table of another shape): nothing was run.
    Usage,
    /// The run completed, reports are written, and a `--threshold` or profile objective was
    /// breached; or `compare` found the new run worse than its baseline beyond a limit.
    SloBreached,
    /// The run completed, reports are written, and more than `--max-failure-share` of its
    /// operations failed: `--exit-code-on-error` (1 by default).
    TooManyFailures(u8),
    /// Stopped by SIGINT/SIGTERM; the reports of whatever ran are written.
    Interrupted,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::SloBreached => 3,
            Exit::TooManyFailures(code) => code,
            Exit::Interrupted => 130,
        }
    }
}

/// Worker threads of the runtime: tokio's default (one per core, or `TOKIO_WORKER_THREADS`)
/// unless every database endpoint is on this machine (the embedded server, a loopback address,
/// a Unix socket). Then the database needs the cores too and the harness takes half of them, at
/// least one: an idle worker that is woken for most operations costs more CPU than it saves.
fn worker_threads(config: &config::Config) -> Option<usize> {
    if std::env::var_os("TOKIO_WORKER_THREADS").is_some() {
        return None;
    }
    let local = |target: &db::target::Target| {
        let host = target.host();
        host.starts_with('/')
            || host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    let servers = &config.servers;
    let all_local =
        servers.primary.as_ref().is_none_or(local) && servers.replicas.iter().all(local);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    all_local.then_some((cores / 2).max(1))
}

/// Runs the command line and returns the process exit code; errors are printed as one line.
pub fn run(cli: cli::Cli) -> Exit {
    if cli.goose.version {
        println!("pgvector-loadtest {}", env!("CARGO_PKG_VERSION"));
        return Exit::Success;
    }
    // `compare` reads two files: no runtime, no server, no report directory.
    if let Some(settings) = config::compare_settings(&cli) {
        let result = match settings {
            Ok(s) => compare::run(&s).map_err(|e| (e.to_string(), e.exit())),
            Err(e) => Err((e.to_string(), Exit::Usage)),
        };
        return result.unwrap_or_else(|(message, exit)| {
            eprintln!("error: {message}");
            exit
        });
    }
    // `merge` reads report directories and writes reports: no runtime, no server.
    if let Some(settings) = config::merge_settings(&cli) {
        let result = match settings {
            Ok((dirs, reports)) => {
                distributed::merge::run(&dirs, &reports).map_err(|e| (e.to_string(), e.exit()))
            }
            Err(e) => Err((e.to_string(), Exit::Usage)),
        };
        return result.unwrap_or_else(|(message, exit)| {
            eprintln!("error: {message}");
            exit
        });
    }
    let config = match config::Config::from_cli(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage;
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = worker_threads(&config) {
        builder.worker_threads(threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Failed;
        }
    };
    let shutdown = shutdown::Shutdown::new();
    shutdown.handle_signals();
    match runtime.block_on(app::run(config, &shutdown)) {
        Ok(exit) => exit,
        Err(e) => {
            if !matches!(e, app::AppError::Interrupted) {
                eprintln!("error: {e}");
            }
            e.exit()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn threads(args: &[&str]) -> Option<usize> {
        let mut argv = vec!["pgvector-loadtest"];
        argv.extend(args);
        let config = config::Config::from_cli(cli::Cli::parse_from(argv)).expect("valid");
        worker_threads(&config)
    }

    #[test]
    fn a_database_on_this_machine_leaves_it_half_the_cores() {
        if std::env::var_os("TOKIO_WORKER_THREADS").is_some() {
            return; // tokio's own setting wins, as the user asked.
        }
        let half = (std::thread::available_parallelism().unwrap().get() / 2).max(1);
        for url in [
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u@localhost/db",
            "postgres://u@[::1]:5432/db",
            "host=/var/run/postgresql user=u",
        ] {
            assert_eq!(threads(&["--database-url", url]), Some(half), "{url}");
        }
        // The embedded server runs here too.
        assert_eq!(threads(&[]), Some(half));
        // A remote primary, or a remote replica beside a local primary: tokio's default.
        assert_eq!(
            threads(&["--database-url", "postgres://u@db.example:5432/db"]),
            None
        );
        let replica = [
            "--database-url",
            "postgres://u@127.0.0.1/db",
            "--replica-url",
            "postgres://u@10.0.0.7/db",
        ];
        assert_eq!(threads(&replica), None);
    }
}
