//! The reference side of `calibrate`: pgbench (C, libpq) from the same PostgreSQL install, run
//! with a generated script in `-M prepared` mode, its per-transaction log (`-l`) read back into
//! a µs histogram, and its CPU time taken from `getrusage(RUSAGE_CHILDREN)` around the child.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hdrhistogram::Histogram;

use super::{CalibrateError, Lagged, SideResult};
use crate::db::target::Target;
use crate::engine::arrivals::LATE_AFTER;
use crate::engine::overhead::children_cpu;

/// One pgbench run's settings.
pub struct Run<'a> {
    /// pgbench's directory (the wheel's bin dir, or a local install's).
    pub bin_dir: &'a Path,
    /// Where the script and the logs go.
    pub work_dir: &'a Path,
    /// The database.
    pub target: &'a Target,
    /// The script text.
    pub script: &'a str,
    /// `-c`.
    pub clients: usize,
    /// `-T`.
    pub duration: Duration,
    /// `hnsw.ef_search` / `hnsw.iterative_scan`, set through `PGOPTIONS` as our pool sets them
    /// with `SET` on every connection.
    pub session_options: String,
    /// `-R` and `--latency-limit`: the open model.
    pub rate: Option<(f64, Duration)>,
    /// `-M prepared`, or `-M extended` (unnamed statements), as the harness sends them.
    pub mode: crate::workload::ops::StatementMode,
}

/// `-j`: one thread per client, at most one per core (pgbench's own advice).
pub fn threads(clients: usize) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    clients.clamp(1, cores)
}

fn command(run: &Run<'_>, script: &Path, duration: Duration) -> Command {
    let t = run.target;
    let mut cmd = Command::new(run.bin_dir.join("pgbench"));
    // The user's own PG* settings must not change what is measured; the password goes
    // through the environment only, never the command line.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
    // The same certificate checks as our own connections, before libpq sends the password.
    cmd.envs(t.libpq_ssl_env())
        .env("PGOPTIONS", &run.session_options)
        .env("PGAPPNAME", "pgvector-loadtest-pgbench")
        .env("PGCONNECT_TIMEOUT", "10");
    if let Some(pw) = t.password() {
        cmd.env("PGPASSWORD", pw);
    }
    cmd.arg("-n")
        .args([
            "-M",
            match run.mode {
                crate::workload::ops::StatementMode::Prepared => "prepared",
                crate::workload::ops::StatementMode::Unnamed => "extended",
            },
        ])
        .arg("-c")
        .arg(run.clients.to_string())
        .arg("-j")
        .arg(threads(run.clients).to_string())
        .arg("-T")
        .arg(duration.as_secs().max(1).to_string())
        .arg("-f")
        .arg(script);
    if let Some((rate, limit)) = run.rate {
        cmd.arg("-R")
            .arg(format!("{rate}"))
            .arg("--latency-limit")
            .arg(limit.as_millis().max(1).to_string());
    }
    cmd.arg("-h")
        .arg(t.host())
        .arg("-p")
        .arg(t.port().to_string())
        .arg("-U")
        .arg(t.config().get_user().unwrap_or("postgres"))
        .arg(t.dbname())
        .stdin(Stdio::null());
    cmd
}

/// Runs pgbench without logging for `warmup`, then measured for `run.duration` with `-l`.
/// Blocking: call from `spawn_blocking`.
pub fn measure(run: &Run<'_>, warmup: Duration) -> Result<SideResult, CalibrateError> {
    let script = run.work_dir.join("calibrate.sql");
    std::fs::write(&script, run.script).map_err(io(&script))?;
    if !warmup.is_zero() {
        let out = command(run, &script, warmup)
            .output()
            .map_err(|e| spawn_error(run.bin_dir, e))?;
        check(&out)?;
    }
    let logs = run.work_dir.join("logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).map_err(io(&logs))?;
    let mut cmd = command(run, &script, run.duration);
    cmd.arg("-l").arg(format!(
        "--log-prefix={}",
        logs.join("pgbench_log").display()
    ));
    let cpu_before = children_cpu();
    let out = cmd.output().map_err(|e| spawn_error(run.bin_dir, e))?;
    let cpu = children_cpu().saturating_sub(cpu_before);
    check(&out)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut result = read_logs(&logs)?;
    result.cpu = cpu;
    result.reported_tps = reported_tps(&stdout);
    Ok(result)
}

fn spawn_error(bin_dir: &Path, source: std::io::Error) -> CalibrateError {
    CalibrateError::Spawn {
        path: bin_dir.join("pgbench"),
        source,
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CalibrateError + '_ {
    move |source| CalibrateError::Io {
        what: path.display().to_string(),
        source,
    }
}

fn check(out: &std::process::Output) -> Result<(), CalibrateError> {
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
    Err(CalibrateError::PgbenchFailed {
        status: out.status,
        tail: tail.into_iter().rev().collect::<Vec<_>>().join(" / "),
    })
}

/// `tps = 1234.5 (without initial connection time)` from pgbench's summary.
pub fn reported_tps(stdout: &str) -> Option<f64> {
    stdout
        .lines()
        .find(|l| l.starts_with("tps = ") && l.contains("without initial connection time"))
        .and_then(|l| l["tps = ".len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Reads every `pgbench_log.*` file in `dir` (one per thread).
pub fn read_logs(dir: &Path) -> Result<SideResult, CalibrateError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().starts_with("pgbench_log"))
                .unwrap_or(false)
        })
        .collect();
    files.sort();
    let mut log = LogStats::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(io(file))?;
        log.add(&text)?;
    }
    Ok(log.finish())
}

/// Accumulates per-transaction log lines:
/// `client_id transaction_no time script_no time_epoch time_us [schedule_lag]` (time =
/// latency in µs, from the scheduled start under `-R`, or `failed` / `skipped`;
/// time_epoch + time_us = when the transaction ended; schedule_lag in µs under `-R`).
pub struct LogStats {
    latency: Histogram<u64>,
    ok: u64,
    failed: u64,
    skipped: u64,
    late: u64,
    max_lag_us: u64,
    // A line had a schedule-lag field: pgbench ran with -R.
    rated: bool,
    first_start_us: i128,
    last_end_us: i128,
}

impl LogStats {
    /// Empty.
    pub fn new() -> LogStats {
        LogStats {
            latency: super::histogram(),
            ok: 0,
            failed: 0,
            skipped: 0,
            late: 0,
            max_lag_us: 0,
            rated: false,
            first_start_us: i128::MAX,
            last_end_us: i128::MIN,
        }
    }

    /// Adds the lines of one log file.
    pub fn add(&mut self, text: &str) -> Result<(), CalibrateError> {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let bad = || CalibrateError::PgbenchLog(line.to_string());
            if f.len() < 6 {
                return Err(bad());
            }
            let epoch: i128 = f[4].parse().map_err(|_| bad())?;
            let micros: i128 = f[5].parse().map_err(|_| bad())?;
            let end = epoch * 1_000_000 + micros;
            if let Some(lag) = f.get(6).and_then(|l| l.parse::<f64>().ok()) {
                self.rated = true;
                let lag = lag.max(0.0) as u64;
                self.max_lag_us = self.max_lag_us.max(lag);
                if f[2] != "skipped" && lag > LATE_AFTER.as_micros() as u64 {
                    self.late += 1;
                }
            }
            match f[2].parse::<u64>() {
                Ok(latency) => {
                    self.ok += 1;
                    self.latency.saturating_record(latency.max(1));
                    self.first_start_us = self.first_start_us.min(end - latency as i128);
                }
                // Skipped: never sent (its schedule lag passed --latency-limit).
                Err(_) if f[2] == "skipped" => self.skipped += 1,
                Err(_) => {
                    self.failed += 1;
                    self.first_start_us = self.first_start_us.min(end);
                }
            }
            self.last_end_us = self.last_end_us.max(end);
        }
        Ok(())
    }

    /// The totals; the span runs from the first transaction's start to the last one's end,
    /// as the harness measures its own.
    pub fn finish(self) -> SideResult {
        let span_us = if self.ok + self.failed == 0 {
            0
        } else {
            (self.last_end_us - self.first_start_us).max(0) as u64
        };
        SideResult {
            ok: self.ok,
            failed: self.failed,
            latency: self.latency,
            span: Duration::from_micros(span_us),
            cpu: Duration::ZERO,
            reported_tps: None,
            mean_rows: None,
            schedule: self.rated.then(|| Lagged {
                late: self.late,
                skipped: self.skipped,
                max_lag: Duration::from_micros(self.max_lag_us),
            }),
        }
    }
}

impl Default for LogStats {
    fn default() -> Self {
        LogStats::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_become_counts_latencies_and_a_span() {
        let mut log = LogStats::new();
        log.add(
            "0 0 1500 0 1700000000 500000\n1 0 2500 0 1700000001 0\n0 1 failed 0 1700000001 100\n",
        )
        .unwrap();
        let r = log.finish();
        assert_eq!((r.ok, r.failed), (2, 1));
        assert_eq!(r.latency.len(), 2);
        assert!((r.latency.max() as i64 - 2500).abs() < 5);
        // First start 1700000000.4985, last end 1700000001.0001.
        assert_eq!(r.span, Duration::from_micros(501_600));
        assert!(LogStats::new().add("garbage\n").is_err());
    }

    #[test]
    fn reported_tps_is_read_from_the_summary() {
        let out = "latency average = 1.0 ms\ninitial connection time = 5.1 ms\n\
                   tps = 7890.123456 (without initial connection time)\n";
        assert_eq!(reported_tps(out), Some(7890.123456));
        assert_eq!(reported_tps("nothing"), None);
    }
}
