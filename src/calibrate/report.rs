//! `calibration.json` and the console table: each side's operations, throughput, p50/p95/p99
//! and CPU per 1,000 operations, the harness/pgbench ratios, and the targets.

use std::io::Write;

use serde::{Deserialize, Serialize};

use super::{CalibOp, SideResult};
use crate::db::target::Target;

/// One side's figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SideFigures {
    /// Successful operations in the measured run.
    pub ops: u64,
    /// Failed operations.
    pub failed: u64,
    /// Seconds from the first operation's start to the last one's end.
    pub span_s: f64,
    /// `ops / span_s`: measured the same way on both sides.
    pub throughput_per_s: f64,
    /// Latency percentiles of successful operations, ms (µs precision).
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// CPU seconds (user + system): pgbench's process, or the whole harness process.
    pub cpu_s: f64,
    /// CPU seconds per 1,000 operations.
    pub cpu_s_per_1000_ops: f64,
    /// pgbench's own `tps` line (without initial connection time), for reference.
    #[serde(default)]
    pub reported_tps: Option<f64>,
    /// Rows returned per successful operation (harness side only).
    #[serde(default)]
    pub mean_rows: Option<f64>,
    /// `--rate`: transactions started more than 10 ms after their scheduled start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late: Option<u64>,
    /// `--rate`: transactions never sent (schedule lag past `--latency-limit`): pgbench's
    /// "skipped", our "dropped".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<u64>,
    /// `--rate`: largest schedule lag of a transaction that was sent, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lag_ms: Option<f64>,
}

impl SideFigures {
    fn of(r: &SideResult) -> SideFigures {
        let span = r.span.as_secs_f64();
        let q = |p: f64| {
            if r.latency.is_empty() {
                0.0
            } else {
                r.latency.value_at_percentile(p) as f64 / 1000.0
            }
        };
        SideFigures {
            ops: r.ok,
            failed: r.failed,
            span_s: round(span, 3),
            throughput_per_s: round(r.ok as f64 / span.max(1e-9), 1),
            p50_ms: q(50.0),
            p95_ms: q(95.0),
            p99_ms: q(99.0),
            cpu_s: round(r.cpu.as_secs_f64(), 3),
            cpu_s_per_1000_ops: round(r.cpu.as_secs_f64() * 1000.0 / r.ok.max(1) as f64, 4),
            reported_tps: r.reported_tps.map(|t| round(t, 1)),
            mean_rows: r.mean_rows.map(|m| round(m, 3)),
            late: r.schedule.map(|s| s.late),
            skipped: r.schedule.map(|s| s.skipped),
            max_lag_ms: r
                .schedule
                .map(|s| round(s.max_lag.as_secs_f64() * 1000.0, 3)),
        }
    }
}

pub use crate::report::TargetCheck;

/// One operation compared.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OpCalibration {
    /// The load test's operation name.
    pub operation: String,
    /// The statement both sides prepare (our text; pgbench's script has `:var` for `$n`).
    pub sql: String,
    /// The pgbench script.
    pub pgbench_script: String,
    /// The search's plan check (HNSW index scan, run-time partition pruning).
    #[serde(default)]
    pub plan: Option<String>,
    /// pgbench's figures.
    pub pgbench: SideFigures,
    /// Ours.
    pub harness: SideFigures,
    /// harness / pgbench throughput.
    pub throughput_ratio: f64,
    /// harness / pgbench CPU seconds per 1,000 operations.
    pub cpu_per_1000_ratio: f64,
    /// harness / pgbench p50 latency.
    pub p50_ratio: f64,
    /// harness / pgbench p95 latency.
    #[serde(default)]
    pub p95_ratio: f64,
    /// harness / pgbench p99 latency.
    pub p99_ratio: f64,
    /// The targets for this operation.
    pub targets: Vec<TargetCheck>,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        round(a / b, 3)
    } else {
        0.0
    }
}

use crate::engine::stats::round;

impl OpCalibration {
    /// Compares the two sides of `op`.
    pub fn new(
        op: CalibOp,
        sql: String,
        script: String,
        plan: Option<String>,
        pgbench: &SideResult,
        harness: &SideResult,
    ) -> OpCalibration {
        let (p, h) = (SideFigures::of(pgbench), SideFigures::of(harness));
        let throughput_ratio = ratio(h.throughput_per_s, p.throughput_per_s);
        let cpu_per_1000_ratio = ratio(h.cpu_s_per_1000_ops, p.cpu_s_per_1000_ops);
        let targets = match (&p.late, &p.skipped) {
            (Some(late), Some(skipped)) => rate_targets(&p, &h, late + skipped),
            _ => closed_targets(op, throughput_ratio, cpu_per_1000_ratio),
        };
        OpCalibration {
            operation: op.op().name().into(),
            sql,
            pgbench_script: script,
            plan,
            p50_ratio: ratio(h.p50_ms, p.p50_ms),
            p95_ratio: ratio(h.p95_ms, p.p95_ms),
            p99_ratio: ratio(h.p99_ms, p.p99_ms),
            pgbench: p,
            harness: h,
            throughput_ratio,
            cpu_per_1000_ratio,
            targets,
        }
    }
}

/// Pgbench behind its schedule on more than this share of transactions (late or skipped): the
/// rate is past what the server holds, and both sides must show it.
pub const SATURATED_SHARE: f64 = 0.05;

/// The closed model's targets: our throughput near pgbench's, our CPU per operation at most
/// 1.5 times its.
fn closed_targets(op: CalibOp, throughput_ratio: f64, cpu_ratio: f64) -> Vec<TargetCheck> {
    let min_throughput = match op {
        CalibOp::Single => 0.95,
        CalibOp::Retrieve => 0.90,
    };
    vec![
        TargetCheck {
            name: "throughput harness/pgbench".into(),
            target: format!(">= {min_throughput}"),
            measured: throughput_ratio,
            pass: throughput_ratio >= min_throughput,
        },
        TargetCheck {
            name: "CPU per 1000 ops harness/pgbench".into(),
            target: "<= 1.5".into(),
            measured: cpu_ratio,
            pass: cpu_ratio > 0.0 && cpu_ratio <= 1.5,
        },
    ]
}

/// The open model's targets (`--rate`): below saturation the two measure the same latency
/// from the schedule (p50 and p95 within 15 %); above it, both fall behind the schedule.
fn rate_targets(p: &SideFigures, h: &SideFigures, behind: u64) -> Vec<TargetCheck> {
    let share = |f: &SideFigures, behind: u64| {
        behind as f64 / (f.ops + f.skipped.unwrap_or(0)).max(1) as f64
    };
    let pgbench_behind = share(p, behind);
    if pgbench_behind <= SATURATED_SHARE {
        return ["p50", "p95"]
            .into_iter()
            .zip([ratio(h.p50_ms, p.p50_ms), ratio(h.p95_ms, p.p95_ms)])
            .map(|(q, r)| TargetCheck {
                name: format!("below saturation: {q} latency harness/pgbench"),
                target: "within 0.85..1.15".into(),
                measured: r,
                pass: (0.85..=1.15).contains(&r),
            })
            .collect();
    }
    let ours = share(h, h.late.unwrap_or(0) + h.skipped.unwrap_or(0));
    vec![TargetCheck {
        name: format!(
            "above saturation (pgbench behind on {:.0} %): harness share late or dropped",
            pgbench_behind * 100.0
        ),
        target: format!("> {SATURATED_SHARE}"),
        measured: round(ours, 3),
        pass: ours > SATURATED_SHARE,
    }]
}

/// `calibration.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CalibrationReport {
    /// RFC 3339 time the report was made.
    pub timestamp: String,
    /// `host:port/dbname` (never credentials).
    pub target: String,
    /// Concurrent clients on each side.
    pub clients: usize,
    /// pgbench `-j`.
    pub pgbench_threads: usize,
    /// Measured seconds per side.
    pub duration_s: u64,
    /// Warm-up seconds per side (not measured).
    pub warmup_s: u64,
    /// `--rate`: transactions per second scheduled on each side (open model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_s: Option<f64>,
    /// `--latency-limit` with `--rate`, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_limit_ms: Option<u64>,
    /// Cores of this machine.
    pub cores: usize,
    /// `/proc/loadavg` before and after (the machine may be shared).
    pub load_average_before: Option<[f64; 3]>,
    /// After.
    pub load_average_after: Option<[f64; 3]>,
    /// How the two sides were run and measured.
    pub method: Vec<String>,
    /// Per operation.
    pub results: Vec<OpCalibration>,
    /// Failed operations as a share of all of them, both sides and every operation together.
    #[serde(default)]
    pub failure_share: f64,
    /// `--max-failure-share` and whether the calibration exceeded it.
    #[serde(default)]
    pub failure_gate: crate::report::gate::GateVerdict,
}

/// Cores available to this process.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl CalibrationReport {
    /// Assembles the report.
    pub fn new(
        target: &Target,
        settings: &super::Settings,
        load_before: Option<[f64; 3]>,
        load_after: Option<[f64; 3]>,
        results: Vec<OpCalibration>,
    ) -> CalibrationReport {
        CalibrationReport {
            timestamp: chrono::Utc::now().to_rfc3339(),
            target: target.display(),
            clients: settings.clients,
            pgbench_threads: super::pgbench::threads(settings.clients),
            duration_s: settings.duration.as_secs(),
            warmup_s: settings.warmup.as_secs(),
            rate_per_s: settings.rate.map(|r| r.0),
            latency_limit_ms: settings.rate.map(|r| r.1.as_millis() as u64),
            cores: cores(),
            load_average_before: load_before,
            load_average_after: load_after,
            method: vec![
                "per operation: pgbench warm-up, pgbench measured, then harness warm-up, harness \
                 measured; one after the other, never at once"
                    .into(),
                "throughput = successful operations / (last end - first start); pgbench's from its \
                 per-transaction log (-l), the harness's from its StatsHub"
                    .into(),
                "pgbench: -n -M prepared -c clients -j min(clients, cores) -T duration, with \
                 --rate also -R rate --latency-limit ms (Poisson arrivals; latency from the \
                 scheduled start)"
                    .into(),
                "harness with --rate: one schedule of Poisson arrivals shared by the users, \
                 latency from the scheduled start, arrivals later than --latency-limit dropped"
                    .into(),
                "harness: Goose users, no think time, bb8 pool of `clients` connections, statement \
                 prepared per connection, each operation recorded in our histograms and in Goose"
                    .into(),
                "CPU: getrusage(RUSAGE_CHILDREN) around pgbench; getrusage(RUSAGE_SELF) around the \
                 Goose run, which counts the whole harness process (runtime, Goose's aggregation)"
                    .into(),
            ],
            results,
            failure_share: 0.0,
            failure_gate: Default::default(),
        }
    }

    /// Judges both sides' operations by the failure gate (a comparison of failing runs is not
    /// a result); returns its console line, if anything failed.
    pub fn judge_failures(&mut self, gate: &crate::report::gate::FailureGate) -> Option<String> {
        let mut by_side = std::collections::BTreeMap::new();
        let (mut failed, mut count) = (0, 0);
        for r in &self.results {
            for (side, f) in [("pgbench", &r.pgbench), ("harness", &r.harness)] {
                failed += f.failed;
                count += f.ops + f.failed;
                if f.failed > 0 {
                    by_side.insert(format!("{} {side}", r.operation), f.failed);
                }
            }
        }
        (self.failure_share, self.failure_gate) = gate.judge(failed, count);
        gate.line(self.failure_share, &by_side)
    }

    /// The console table.
    pub fn print(&self, w: &mut dyn Write) -> std::io::Result<()> {
        writeln!(w)?;
        writeln!(
            w,
            "Calibration against pgbench: {}, {} clients, {}s each{}",
            self.target,
            self.clients,
            self.duration_s,
            self.rate_per_s.map_or(String::new(), |r| format!(
                ", open model at {r}/s (latency from the scheduled start)"
            ))
        )?;
        writeln!(
            w,
            "{:<28} {:<16} {:>9} {:>10} {:>8} {:>8} {:>8} {:>16}",
            "operation", "side", "ops", "ops/s", "p50 ms", "p95 ms", "p99 ms", "CPU s/1000 ops"
        )?;
        for r in &self.results {
            for (side, f) in [("pgbench", &r.pgbench), ("harness (Goose)", &r.harness)] {
                writeln!(
                    w,
                    "{:<28} {:<16} {:>9} {:>10.1} {:>8.3} {:>8.3} {:>8.3} {:>16.4}",
                    r.operation,
                    side,
                    f.ops,
                    f.throughput_per_s,
                    f.p50_ms,
                    f.p95_ms,
                    f.p99_ms,
                    f.cpu_s_per_1000_ops
                )?;
            }
            writeln!(
                w,
                "{:<28} {:<16} {:>9} {:>10.3} {:>8.3} {:>8.3} {:>8.3} {:>16.3}",
                r.operation,
                "harness/pgbench",
                "",
                r.throughput_ratio,
                r.p50_ratio,
                r.p95_ratio,
                r.p99_ratio,
                r.cpu_per_1000_ratio
            )?;
            if let Some(plan) = &r.plan {
                writeln!(w, "  plan: {plan}")?;
            }
            for (side, f) in [("pgbench", &r.pgbench), ("harness", &r.harness)] {
                if let (Some(late), Some(skipped), Some(lag)) = (f.late, f.skipped, f.max_lag_ms) {
                    writeln!(
                        w,
                        "  {side} schedule: {late} late (> 10 ms), {skipped} skipped, max lag {lag:.3} ms"
                    )?;
                }
            }
            for t in &r.targets {
                writeln!(
                    w,
                    "  {} {} {}: {:.3}",
                    if t.pass { "PASS" } else { "MISS" },
                    t.name,
                    t.target,
                    t.measured
                )?;
            }
            if r.pgbench.failed + r.harness.failed > 0 {
                writeln!(
                    w,
                    "  failures: pgbench {}, harness {}",
                    r.pgbench.failed, r.harness.failed
                )?;
            }
        }
        writeln!(
            w,
            "harness CPU counts the whole process (Goose's runtime and aggregation included)"
        )?;
        Ok(())
    }
}
