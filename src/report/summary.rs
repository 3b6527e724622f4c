//! `load_test_summary.json` and the console table: per-operation counts, failures by class,
//! wall-clock throughput, microsecond percentiles, pool wait, rows returned and short results.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::engine::stats::{round, OpStats, Snapshot};
use crate::workload::ops::Op;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    /// Smallest.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th.
    pub p90: u64,
    /// 95th.
    pub p95: u64,
    /// 99th.
    pub p99: u64,
    /// 99.9th.
    pub p99_9: u64,
    /// 99.99th.
    pub p99_99: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// From a µs histogram (all zero when empty).
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles {
                min: 0,
                mean: 0.0,
                p50: 0,
                p90: 0,
                p95: 0,
                p99: 0,
                p99_9: 0,
                p99_99: 0,
                max: 0,
            };
        }
        let q = |p: f64| h.value_at_percentile(p);
        Percentiles {
            min: h.min(),
            mean: (h.mean() * 10.0).round() / 10.0,
            p50: q(50.0),
            p90: q(90.0),
            p95: q(95.0),
            p99: q(99.0),
            p99_9: q(99.9),
            p99_99: q(99.99),
            max: h.max(),
        }
    }
}

/// One operation's figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OpSummary {
    /// Operation name (or "Aggregated").
    pub name: String,
    /// Attempts.
    pub count: u64,
    /// Successful attempts.
    pub ok: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Failures by class (pool_timeout, connection_lost, statement_timeout, sqlstate_XX, client).
    pub failures: BTreeMap<String, u64>,
    /// Attempts per second of wall-clock run time (measured, not derived from latency).
    pub throughput_per_s: f64,
    /// Response time, µs: pool wait + query, what the application sees; every attempt,
    /// failed ones included. Locust's CSVs, Goose's reports, `/metrics` and the objectives use
    /// this one.
    pub latency_us: Percentiles,
    /// Service time, µs: the query alone, after the connection was in hand (attempts that
    /// reached the server). Absent from summaries of earlier versions.
    #[serde(default)]
    pub service_us: Percentiles,
    /// Time waiting for a pool connection, µs. With an uncontended pool, response and service
    /// time agree; the difference is the client-side queue.
    pub pool_wait_us: Percentiles,
    /// Mean rows returned (reads) or written (writes) per successful attempt.
    pub mean_rows: f64,
    /// Mean bytes of result rows received per attempt (Locust's "Average Content Size").
    #[serde(default)]
    pub mean_bytes: f64,
    /// Share of successful searches that returned fewer than k rows (null for non-searches).
    pub short_result_share: Option<f64>,
    /// Share of successful attempts that returned no row (for retrieve: the miss rate).
    pub empty_share: f64,
    /// Searches: mean number of distinct namespaces among the rows of a search that returned
    /// rows (1 for a single-namespace search; a cross-namespace search's top k merging
    /// partitions shows above 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_distinct_namespaces: Option<f64>,
}

impl OpSummary {
    /// Summarises `s` over `elapsed`.
    pub fn of(name: &str, s: &OpStats, elapsed: Duration, is_search: bool) -> OpSummary {
        let ok = s.ok.max(1) as f64;
        OpSummary {
            name: name.to_string(),
            count: s.count(),
            ok: s.ok,
            failed: s.failed,
            failures: s.failure_counts(),
            throughput_per_s: round(s.count() as f64 / elapsed.as_secs_f64().max(1e-9), 3),
            latency_us: Percentiles::of(&s.latency),
            service_us: Percentiles::of(&s.service),
            pool_wait_us: Percentiles::of(&s.pool_wait),
            mean_rows: round(s.rows as f64 / ok, 3),
            mean_bytes: round(s.mean_bytes(), 3),
            short_result_share: is_search.then(|| round(s.short as f64 / ok, 3)),
            empty_share: round(s.empty as f64 / ok, 3),
            mean_distinct_namespaces: is_search
                .then(|| s.mean_distinct_namespaces().map(|m| round(m, 3)))
                .flatten(),
        }
    }
}

/// The run as a whole.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Producer.
    pub tool: String,
    /// Producer version.
    pub version: String,
    /// RFC 3339 start time.
    pub started_at: String,
    /// Wall-clock seconds of the load phase (ramp-up included).
    pub duration_s: f64,
    /// `host:port/dbname` (never credentials).
    pub target: String,
    /// Table layout.
    pub layout: String,
    /// Dataset description.
    pub dataset: String,
    /// hnsw.ef_search / iterative_scan used.
    pub index: String,
    /// Most users that ran at once.
    pub max_users: usize,
    /// Goose, PostgreSQL and pgvector versions (empty in summaries of earlier versions).
    #[serde(default)]
    pub versions: crate::db::versions::Versions,
    /// Several generators: the run they share, how many, and this one (absent for a lone
    /// generator; `index` null in the merged run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generators: Option<Generators>,
    /// Whether the run was stopped by a signal before its planned end.
    pub interrupted: bool,
    /// The profile the run was judged against, if any.
    #[serde(default)]
    pub profile: Option<String>,
    /// Server-side figures of the run.
    #[serde(default)]
    pub server: crate::report::verdict::ServerFigures,
    /// Each objective: measured, target, critical, PASS/WARN/FAIL.
    #[serde(default)]
    pub objectives: Vec<crate::report::verdict::Verdict>,
    /// Failed attempts as a share of all attempts (0 to 1).
    #[serde(default)]
    pub failure_share: f64,
    /// `--max-failure-share` and whether the run exceeded it.
    #[serde(default)]
    pub failure_gate: crate::report::gate::GateVerdict,
    /// The harness's own CPU use and, for throttled runs, schedule lag.
    #[serde(default)]
    pub overhead: Option<crate::engine::overhead::Overhead>,
    /// The open model: offered and achieved rates, late and dropped arrivals (absent in the
    /// closed model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::engine::arrivals::ScheduleReport>,
    /// Maintenance events, each with its figures before, during and after it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<crate::events::windows::EventReport>,
    /// With replicas: how long rows written on the primary took to be visible on each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visibility: Vec<crate::events::visibility::ReplicaVisibility>,
    /// Every acknowledged write looked for on the primary after the run: a missing one fails
    /// the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes: Option<crate::engine::ledger::WriteCheck>,
    /// Stretches of consecutive failed writes or reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outages: Vec<crate::engine::ledger::Outage>,
    /// Per operation.
    pub operations: Vec<OpSummary>,
    /// All operations together.
    pub aggregated: OpSummary,
}

/// Several generators acting as one test.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Generators {
    /// The run id they share.
    pub run_id: String,
    /// How many.
    pub count: usize,
    /// This one's index (None: the merge of all of them).
    pub index: Option<usize>,
}

/// Run facts the statistics don't carry.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Start time.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Load-phase wall-clock time.
    pub elapsed: Duration,
    /// `host:port/dbname`.
    pub target: String,
    /// Layout.
    pub layout: String,
    /// Dataset description.
    pub dataset: String,
    /// Index settings.
    pub index: String,
    /// Most users at once.
    pub max_users: usize,
    /// Goose, PostgreSQL and pgvector.
    pub versions: crate::db::versions::Versions,
    /// One of several generators, or their merge.
    pub generators: Option<Generators>,
    /// Stopped by a signal.
    pub interrupted: bool,
}

impl Summary {
    /// Builds the summary.
    pub fn new(info: &RunInfo, snapshot: &Snapshot) -> Summary {
        let operations = Op::ALL
            .iter()
            .filter(|op| snapshot.op(**op).count() > 0)
            .map(|op| OpSummary::of(op.name(), snapshot.op(*op), info.elapsed, op.is_search()))
            .collect();
        Summary {
            tool: "pgvector-loadtest".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: info.started_at.to_rfc3339(),
            duration_s: round(info.elapsed.as_secs_f64(), 3),
            target: info.target.clone(),
            layout: info.layout.clone(),
            dataset: info.dataset.clone(),
            index: info.index.clone(),
            max_users: info.max_users,
            versions: info.versions.clone(),
            generators: info.generators.clone(),
            interrupted: info.interrupted,
            profile: None,
            server: Default::default(),
            objectives: Vec::new(),
            failure_share: 0.0,
            failure_gate: Default::default(),
            overhead: None,
            schedule: None,
            events: Vec::new(),
            visibility: Vec::new(),
            writes: None,
            outages: Vec::new(),
            operations,
            aggregated: OpSummary::of("Aggregated", &snapshot.aggregated(), info.elapsed, false),
        }
    }

    /// Prints the console table.
    pub fn print<W: Write>(&self, mut w: W) -> std::io::Result<()> {
        let ms = |us: u64| us as f64 / 1000.0;
        writeln!(w)?;
        writeln!(
            w,
            "pgvector-loadtest: {} for {:.1}s, {} users max{}",
            self.target,
            self.duration_s,
            self.max_users,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        )?;
        writeln!(
            w,
            "{:<28} {:>8} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>6} {:>6}",
            "operation (ms)",
            "count",
            "fail",
            "ops/s",
            "p50",
            "p95",
            "p99",
            "p99.9",
            "max",
            "wait p95",
            "rows",
            "short"
        )?;
        for s in self
            .operations
            .iter()
            .chain(std::iter::once(&self.aggregated))
        {
            writeln!(
                w,
                "{:<28} {:>8} {:>6} {:>9.1} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>9.3} {:>9.3} {:>6.1} {:>6}",
                s.name,
                s.count,
                s.failed,
                s.throughput_per_s,
                ms(s.latency_us.p50),
                ms(s.latency_us.p95),
                ms(s.latency_us.p99),
                ms(s.latency_us.p99_9),
                ms(s.latency_us.max),
                ms(s.pool_wait_us.p95),
                s.mean_rows,
                s.short_result_share
                    .map(|x| format!("{:.0}%", x * 100.0))
                    .unwrap_or_else(|| "-".into()),
            )?;
        }
        if !self.aggregated.failures.is_empty() {
            let classes: Vec<String> = self
                .aggregated
                .failures
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            writeln!(w, "failures by class: {}", classes.join(", "))?;
        }
        if let Some(schedule) = &self.schedule {
            self.print_schedule(&mut w, schedule)?;
        }
        if let Some(overhead) = &self.overhead {
            writeln!(w, "{}", overhead.line())?;
        }
        if let Some(writes) = self
            .writes
            .as_ref()
            .filter(|c| c.acknowledged + c.indeterminate > 0)
        {
            writeln!(w, "{}", writes.line())?;
        }
        self.print_events(&mut w)?;
        Ok(())
    }

    /// Each event's latency and recall before, during and after it; each replica's
    /// visibility delays.
    fn print_events<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        if !self.events.is_empty() {
            writeln!(
                w,
                "{:<36} {:>8} {:>8}  {:<24} {:<24} outcome",
                "event (p95 ms, all operations)",
                "start s",
                "length",
                "p95 before/during/after",
                "recall before/during/after",
            )?;
        }
        for e in &self.events {
            let r = &e.record;
            let (p95, recall) = match &e.windows {
                Some(ws) => {
                    let three = [&ws.before, &ws.during, &ws.after];
                    let p95: Vec<String> = three
                        .iter()
                        .map(|x| format!("{:.2}", x.all.p95_ms))
                        .collect();
                    let recall: Vec<String> = three
                        .iter()
                        .map(|x| x.recall_mean.map_or("-".into(), |v| format!("{v:.3}")))
                        .collect();
                    (p95.join(" / "), recall.join(" / "))
                }
                None => ("-".into(), "-".into()),
            };
            writeln!(
                w,
                "{:<36} {:>8} {:>8}  {:<24} {:<24} {}",
                r.label,
                r.started_s.map_or("-".into(), |s| format!("{s:.1}")),
                r.started_s
                    .zip(r.ended_s)
                    .map_or("-".into(), |(a, b)| format!("{:.1}s", b - a)),
                p95,
                recall,
                r.outcome
            )?;
            for o in &e.outages {
                let classes: Vec<String> =
                    o.failures.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let since = r.started_s.unwrap_or(o.first_failure_s);
                writeln!(
                    w,
                    "  {:?} failed from {:.1} s to {:.1} s ({}); first success {}",
                    o.kind,
                    o.first_failure_s,
                    o.last_failure_s,
                    classes.join(", "),
                    o.recovered_s
                        .map_or("none before the end".into(), |t| format!(
                            "at {t:.1} s, {:.1} s after the event began",
                            t - since
                        ))
                )?;
            }
        }
        for v in &self.visibility {
            writeln!(
                w,
                "visibility on {}: {} probes, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms, first read missed the row {:.0} %, search p95 {:.2} ms{}",
                v.replica,
                v.probes,
                v.p50_ms,
                v.p95_ms,
                v.max_ms,
                v.missed_share * 100.0,
                v.search_p95_ms,
                if v.not_visible > 0 {
                    format!(", {} never visible", v.not_visible)
                } else {
                    String::new()
                }
            )?;
        }
        Ok(())
    }

    /// The open model's lines: what was offered and achieved, and service time beside the
    /// response time of the table (which counts from the intended start).
    fn print_schedule<W: Write>(
        &self,
        w: &mut W,
        s: &crate::engine::arrivals::ScheduleReport,
    ) -> std::io::Result<()> {
        writeln!(
            w,
            "open model ({} arrivals): offered {:.1}/s, achieved {:.1}/s over {:.1}s; \
             {} arrivals: {} on time, {} late, {} dropped (no user free within {}s); max lag {:.3}s",
            format!("{:?}", s.spacing).to_lowercase(),
            s.offered_per_s,
            s.achieved_per_s,
            s.duration_s,
            s.offered,
            s.on_time,
            s.late,
            s.dropped,
            s.max_lag_limit_s,
            s.max_lag_s
        )?;
        let service: Vec<String> = self
            .operations
            .iter()
            .map(|o| format!("{} {:.3}", o.name, o.service_us.p95 as f64 / 1000.0))
            .collect();
        writeln!(
            w,
            "service time p95 (ms, from the send): {}",
            service.join(", ")
        )
    }
}
