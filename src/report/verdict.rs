//! Judges a run against its profile's objectives: each objective is measured, compared with its
//! target and critical levels, and marked PASS, WARN or FAIL (or N/A when nothing measured it).

use std::io::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::stats::{OpStats, Snapshot};
use crate::profile::{Metric, Objective};
use crate::workload::ops::Op;

/// The outcome of one objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// At or better than the target.
    #[serde(rename = "PASS")]
    Pass,
    /// Missed the target, within the critical level.
    #[serde(rename = "WARN")]
    Warn,
    /// Beyond the critical level.
    #[serde(rename = "FAIL")]
    Fail,
    /// Nothing measured it (no such operation ran, no replica configured).
    #[serde(rename = "N/A")]
    NotMeasured,
}

/// Server-side figures of the run that objectives may name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerFigures {
    /// Buffer cache hits / (hits + reads) over the run, percent.
    pub cache_hit_ratio_pct: Option<f64>,
    /// Largest replica replay lag seen, seconds (None without replicas).
    pub replication_lag_s: Option<f64>,
    /// Peak share of a pool's connections in use, percent.
    pub pool_usage_pct: Option<f64>,
    /// Mean recall@k of the searches sampled under load (None: none sampled, or no exporter
    /// to sample them).
    #[serde(default)]
    pub recall_mean: Option<f64>,
    /// p95 of the time a row written on the primary took to be visible on a replica, the
    /// slowest replica's, ms (None without replicas).
    #[serde(default)]
    pub visibility_p95_ms: Option<f64>,
}

/// One row of the verdict table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    /// Objective name.
    pub name: String,
    /// Metric name.
    pub metric: String,
    /// Operations covered.
    pub operations: String,
    /// What was measured.
    pub measured: Option<f64>,
    /// Target level.
    pub target: f64,
    /// Critical level.
    pub critical: f64,
    /// "<" when lower is better, ">" otherwise.
    pub direction: String,
    /// The verdict.
    pub status: Status,
    /// Whether a FAIL breaches the run.
    pub gate: bool,
}

fn measure(
    o: &Objective,
    snapshot: &Snapshot,
    elapsed: Duration,
    server: &ServerFigures,
) -> Option<f64> {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut merged = OpStats::default();
    for op in o.operations.ops() {
        merged.merge(snapshot.op(op));
    }
    let ran = merged.count() > 0;
    let h = &merged.latency;
    let ms = |q: f64| (h.value_at_percentile(q) as f64) / 1000.0;
    match o.metric {
        Metric::P50Ms => ran.then(|| ms(50.0)),
        Metric::P95Ms => ran.then(|| ms(95.0)),
        Metric::P99Ms => ran.then(|| ms(99.0)),
        Metric::P999Ms => ran.then(|| ms(99.9)),
        Metric::MaxMs => ran.then(|| h.max() as f64 / 1000.0),
        Metric::SuccessRatePct => ran.then(|| merged.ok as f64 * 100.0 / merged.count() as f64),
        Metric::ThroughputPerS => ran.then(|| merged.count() as f64 / secs),
        Metric::RowsWrittenPerS => {
            let rows = snapshot.op(Op::Insert).rows + snapshot.op(Op::BulkInsert).rows;
            let writes = snapshot.op(Op::Insert).count() + snapshot.op(Op::BulkInsert).count();
            (writes > 0).then(|| rows as f64 / secs)
        }
        Metric::CacheHitRatioPct => server.cache_hit_ratio_pct,
        Metric::ReplicationLagS => server.replication_lag_s,
        Metric::PoolUsagePct => server.pool_usage_pct,
        Metric::RecallMean => server.recall_mean,
        Metric::VisibilityP95Ms => server.visibility_p95_ms,
    }
}

/// Judges every objective.
pub fn evaluate(
    objectives: &[Objective],
    snapshot: &Snapshot,
    elapsed: Duration,
    server: &ServerFigures,
) -> Vec<Verdict> {
    objectives
        .iter()
        .map(|o| {
            let measured =
                measure(o, snapshot, elapsed, server).map(|v| (v * 1000.0).round() / 1000.0);
            let lower = o.metric.lower_is_better();
            let within = |level: f64, v: f64| if lower { v <= level } else { v >= level };
            let status = match measured {
                None => Status::NotMeasured,
                Some(v) if within(o.target, v) => Status::Pass,
                Some(v) if within(o.critical, v) => Status::Warn,
                Some(_) => Status::Fail,
            };
            Verdict {
                name: o.name.clone(),
                metric: serde_json::to_value(o.metric)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                operations: if o.metric.per_operation() {
                    o.operations.label().into()
                } else {
                    "-".into()
                },
                measured,
                target: o.target,
                critical: o.critical,
                direction: if lower { "<" } else { ">" }.into(),
                status,
                gate: o.gate,
            }
        })
        .collect()
}

impl Status {
    /// PASS, WARN, FAIL or N/A, as the reports write it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::NotMeasured => "N/A",
        }
    }
}

/// Whether a gating objective failed.
pub fn breached(verdicts: &[Verdict]) -> bool {
    verdicts.iter().any(|v| v.gate && v.status == Status::Fail)
}

/// Prints the verdict table.
pub fn print(w: &mut dyn Write, profile: &str, verdicts: &[Verdict]) -> std::io::Result<()> {
    writeln!(w)?;
    writeln!(w, "objectives ({profile})")?;
    writeln!(
        w,
        "{:<32} {:<28} {:>11} {:>10} {:>10}  verdict",
        "objective", "operations", "measured", "target", "critical"
    )?;
    for v in verdicts {
        let status = v.status.label();
        writeln!(
            w,
            "{:<32} {:<28} {:>11} {:>10} {:>10}  {}{}",
            v.name,
            v.operations,
            v.measured
                .map(|m| format!("{m:.3}"))
                .unwrap_or_else(|| "-".into()),
            format!("{}{}", v.direction, v.target),
            format!("{}{}", v.direction, v.critical),
            status,
            if v.gate { "" } else { " (not gating)" }
        )?;
    }
    let failed: Vec<&str> = verdicts
        .iter()
        .filter(|v| v.gate && v.status == Status::Fail)
        .map(|v| v.name.as_str())
        .collect();
    if failed.is_empty() {
        writeln!(w, "all gating objectives met")?;
    } else {
        writeln!(w, "BREACHED: {}", failed.join("; "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::stats::{Outcome, StatsHub};
    use crate::profile::parse;

    #[test]
    fn levels_give_pass_warn_fail_and_na() {
        let hub = StatsHub::new(1);
        for ms in [1u64, 2, 3, 4, 20] {
            hub.record(
                0,
                Op::SingleShardSearch,
                &Outcome {
                    namespaces: 0,
                    schedule_lag: Duration::ZERO,
                    pool_wait: Duration::ZERO,
                    service: Some(Duration::from_millis(ms)),
                    result: Ok(10),
                    short: false,
                    bytes: 0,
                },
            );
        }
        let profile = parse(
            "t.toml",
            r#"
[[objective]]
name = "pass"
metric = "p50_ms"
operation = "vector_search_single_shard"
target = 5
[[objective]]
name = "warn"
metric = "max_ms"
target = 10
critical = 30
[[objective]]
name = "fail"
metric = "success_rate_pct"
target = 100.1
critical = 100.05
[[objective]]
name = "na"
metric = "p95_ms"
operation = "retrieve_memory"
target = 1
"#,
        )
        .unwrap();
        let v = evaluate(
            &profile.objectives,
            &hub.snapshot(),
            Duration::from_secs(1),
            &ServerFigures::default(),
        );
        let statuses: Vec<Status> = v.iter().map(|v| v.status).collect();
        assert_eq!(
            statuses,
            [
                Status::Pass,
                Status::Warn,
                Status::Fail,
                Status::NotMeasured
            ]
        );
        assert!((v[1].measured.unwrap() - 20.0).abs() < 0.1);
        assert!(breached(&v));
    }
}
