//! The suite's outputs: the spec's console tables, the summary against the spec's targets,
//! `benchmark_results.json`, and the recall/latency trade-off plot of an ef_search sweep.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::db::target::Target;
use crate::engine::recall::quantile;
use crate::engine::stats::round;
use crate::engine::stats::{OpStats, StatsHub};
use crate::report::write_atomic;
use crate::workload::ops::Op;

/// Where the suite ran, without credentials.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Connection {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database.
    pub database: String,
}

/// The run's settings, recorded beside the results.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    /// Table layout.
    pub layout: String,
    /// Dataset description.
    pub dataset: String,
    /// Namespaces.
    pub namespaces: usize,
    /// Seeded rows.
    pub total_rows: usize,
    /// Dimension.
    pub dim: usize,
    /// HNSW m.
    pub m: u32,
    /// HNSW ef_construction.
    pub ef_construction: u32,
    /// ef_search values measured.
    pub ef_search: Vec<u32>,
    /// The embedding column's type (`vector`, `halfvec`).
    #[serde(default)]
    pub vector_type: String,
    /// The distance searched by (`cosine`, `l2`, `ip`); empty in reports of earlier versions.
    #[serde(default)]
    pub distance: String,
    /// The index (`hnsw`, `ivfflat`).
    #[serde(default)]
    pub index: String,
    /// IVFFlat lists.
    #[serde(default)]
    pub lists: Option<u32>,
    /// ivfflat.probes values measured (IVFFlat).
    #[serde(default)]
    pub probes: Vec<u32>,
    /// iterative_scan modes measured.
    pub iterative_scan: Vec<String>,
    /// Filter selectivities the filtered search measured (its share of the seeded rows kept).
    #[serde(default)]
    pub filter_selectivity: Vec<f64>,
    /// Warm-up iterations before each benchmark (excluded from its statistics).
    pub warmup_iterations: usize,
    /// PostgreSQL version.
    pub server_version: String,
    /// pgvector version.
    pub pgvector_version: String,
}

/// One benchmark's figures. Times in ms with µs precision; `qps` is measured wall-clock
/// throughput (operations / time from the first start to the last end).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BenchResult {
    /// single_shard_search, cross_shard_search, filtered_search, concurrent_queries or
    /// bulk_insert.
    pub operation: String,
    /// Measured operations (warm-up excluded).
    pub iterations: u64,
    /// Failed operations.
    pub failures: u64,
    /// Concurrent clients (Goose users).
    pub clients: usize,
    /// Warm-up operations run first and excluded.
    pub warmup_iterations: usize,
    /// Minimum latency.
    pub min_ms: f64,
    /// Maximum latency.
    pub max_ms: f64,
    /// Mean latency.
    pub mean_ms: f64,
    /// Median latency.
    pub median_ms: f64,
    /// Median latency (the spec's name).
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p99_9_ms: f64,
    /// Operations per second, wall clock (for bulk insert: transactions per second).
    pub qps: f64,
    /// Time waiting for a pool connection, 95th percentile.
    pub pool_wait_p95_ms: f64,
    /// hnsw.ef_search.
    pub ef_search: u32,
    /// ivfflat.probes, on an IVFFlat index (then ef_search does not apply).
    #[serde(default)]
    pub probes: Option<u32>,
    /// hnsw.iterative_scan.
    pub iterative_scan: String,
    /// The filtered search's selectivity: the share of the seeded rows its filter keeps.
    #[serde(default)]
    pub filter_selectivity: Option<f64>,
    /// k of a search.
    pub k: Option<u32>,
    /// Mean recall@k against exact ground truth (searches).
    pub recall_mean: Option<f64>,
    /// 5th percentile of recall@k (searches).
    pub recall_p5: Option<f64>,
    /// Share of searches that returned fewer than k rows.
    pub short_result_share: Option<f64>,
    /// Mean distinct namespaces among a search's rows (searches).
    #[serde(default)]
    pub mean_distinct_namespaces: Option<f64>,
    /// Mean recall@k against the data set file's own ground truth (the `dataset` benchmark).
    #[serde(default)]
    pub dataset_recall_mean: Option<f64>,
    /// Most client connections the server had during the run (concurrent benchmark).
    pub peak_server_connections: Option<i64>,
    /// Rows per batch (bulk insert).
    pub rows_per_batch: Option<usize>,
    /// Committed transactions per second (bulk insert).
    pub transactions_per_s: Option<f64>,
    /// Rows written per second (bulk insert).
    pub rows_per_s: Option<f64>,
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

impl BenchResult {
    /// The series it belongs to in the trade-off table and plot: the operation, or
    /// `filtered 1%` for the filtered search at 1 % selectivity.
    pub fn series(&self) -> String {
        match self.filter_selectivity {
            Some(s) => format!("filtered {}", percent(s)),
            None => self.operation.clone(),
        }
    }

    /// The search breadth measured: `ef=40`, or `probes=10` on an IVFFlat index.
    pub fn breadth(&self) -> String {
        match self.probes {
            Some(p) => format!("probes={p}"),
            None => format!("ef={}", self.ef_search),
        }
    }

    /// Builds a result from the measured statistics.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        operation: &str,
        clients: usize,
        warmup_iterations: usize,
        stats: &OpStats,
        span: Duration,
        k: Option<u32>,
        index: (u32, String),
        recalls: &[f64],
        peak_server_connections: Option<i64>,
        rows_per_batch: Option<usize>,
    ) -> BenchResult {
        let h = &stats.latency;
        let q = |p: f64| {
            if h.is_empty() {
                0.0
            } else {
                ms(h.value_at_percentile(p))
            }
        };
        let per_s = stats.count() as f64 / span.as_secs_f64().max(1e-9);
        let searched = k.is_some() && stats.ok > 0;
        BenchResult {
            operation: operation.into(),
            iterations: stats.count(),
            failures: stats.failed,
            clients,
            warmup_iterations,
            min_ms: if h.is_empty() { 0.0 } else { ms(h.min()) },
            max_ms: ms(h.max()),
            mean_ms: round(h.mean() / 1000.0, 4),
            median_ms: q(50.0),
            p50_ms: q(50.0),
            p95_ms: q(95.0),
            p99_ms: q(99.0),
            p99_9_ms: q(99.9),
            qps: (per_s * 10.0).round() / 10.0,
            pool_wait_p95_ms: ms(stats.pool_wait.value_at_percentile(95.0)),
            ef_search: index.0,
            probes: None,
            iterative_scan: index.1,
            filter_selectivity: None,
            k,
            recall_mean: (!recalls.is_empty())
                .then(|| round(recalls.iter().sum::<f64>() / recalls.len() as f64, 4)),
            recall_p5: (!recalls.is_empty()).then(|| round(quantile(recalls, 0.05), 4)),
            short_result_share: searched.then(|| round(stats.short as f64 / stats.ok as f64, 4)),
            mean_distinct_namespaces: searched
                .then(|| stats.mean_distinct_namespaces().map(|m| round(m, 3)))
                .flatten(),
            dataset_recall_mean: None,
            peak_server_connections,
            rows_per_batch,
            transactions_per_s: rows_per_batch.map(|_| (per_s * 10.0).round() / 10.0),
            rows_per_s: rows_per_batch
                .map(|_| (stats.rows as f64 / span.as_secs_f64().max(1e-9)).round()),
        }
    }
}

pub use crate::report::TargetCheck;

/// `benchmark_results.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BenchReport {
    /// RFC 3339.
    pub timestamp: String,
    /// Where.
    pub connection: Connection,
    /// With what.
    pub settings: Settings,
    /// Every benchmark run (the sweep adds one search result per setting).
    pub results: Vec<BenchResult>,
    /// The spec's targets.
    pub targets: Vec<TargetCheck>,
    /// Failed measured operations as a share of all of them, every benchmark together.
    #[serde(default)]
    pub failure_share: f64,
    /// `--max-failure-share` and whether the suite exceeded it: a benchmark whose operations
    /// failed is not a result.
    #[serde(default)]
    pub failure_gate: crate::report::gate::GateVerdict,
}

impl BenchReport {
    /// Assembles the report and checks the targets (on the first setting's results).
    pub fn new(target: &Target, settings: Settings, results: Vec<BenchResult>) -> BenchReport {
        let first = |op: &str| results.iter().find(|r| r.operation == op);
        let mut targets = Vec::new();
        let mut check = |name: &str, target: &str, measured: f64, pass: bool| {
            targets.push(TargetCheck {
                name: name.into(),
                target: target.into(),
                measured,
                pass,
            })
        };
        if let Some(r) = first("single_shard_search") {
            check(
                "single-shard search p95 (ms)",
                "< 10",
                r.p95_ms,
                r.p95_ms < 10.0,
            );
        }
        if let Some(r) = first("cross_shard_search") {
            check(
                "cross-shard search p95 (ms)",
                "< 25",
                r.p95_ms,
                r.p95_ms < 25.0,
            );
        }
        if let Some(r) = first("concurrent_queries") {
            let peak = r.peak_server_connections.unwrap_or(0) as f64;
            check("concurrent server connections", "> 100", peak, peak > 100.0);
        }
        if let Some(r) = first("bulk_insert") {
            let rows = r.rows_per_s.unwrap_or(0.0);
            check("bulk insert rows/s", "> 1000", rows, rows > 1000.0);
        }
        BenchReport {
            timestamp: chrono::Utc::now().to_rfc3339(),
            connection: Connection {
                host: target.host(),
                port: target.port(),
                database: target.dbname(),
            },
            settings,
            results,
            targets,
            failure_share: 0.0,
            failure_gate: Default::default(),
        }
    }

    /// Judges the measured operations of every benchmark by the failure gate; returns its
    /// console line, if anything failed.
    pub fn judge_failures(&mut self, gate: &crate::report::gate::FailureGate) -> Option<String> {
        let mut by_benchmark = std::collections::BTreeMap::new();
        let (mut failed, mut count) = (0, 0);
        for r in &self.results {
            failed += r.failures;
            count += r.iterations;
            if r.failures > 0 {
                *by_benchmark.entry(r.operation.clone()).or_insert(0) += r.failures;
            }
        }
        (self.failure_share, self.failure_gate) = gate.judge(failed, count);
        gate.line(self.failure_share, &by_benchmark)
    }

    /// Writes `benchmark_results.json`, `bench_report.html`, and `recall_vs_latency.svg` when
    /// searches ran.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        crate::report::write_json(&dir.join("benchmark_results.json"), self)?;
        let page = super::html::page(self);
        write_atomic(&dir.join("bench_report.html"), |w| {
            w.write_all(page.as_bytes())
        })?;
        if self.results.iter().any(|r| r.recall_mean.is_some()) {
            let svg = super::report::plot_svg(&self.results);
            write_atomic(&dir.join("recall_vs_latency.svg"), |w| {
                w.write_all(svg.as_bytes())
            })?;
        }
        Ok(())
    }

    /// The summary against the spec's targets, and the sweep table when there is one.
    pub fn print_summary(&self, w: &mut dyn Write) -> std::io::Result<()> {
        writeln!(w)?;
        writeln!(w, "Summary against the spec's targets")?;
        writeln!(w, "{}", "─".repeat(60))?;
        for t in &self.targets {
            writeln!(
                w,
                "  {:<34} {:>8} {:>12.2}   {}",
                t.name,
                t.target,
                t.measured,
                if t.pass { "PASS" } else { "FAIL" }
            )?;
        }
        let searches: Vec<&BenchResult> = self
            .results
            .iter()
            .filter(|r| r.recall_mean.is_some() && r.clients == 1)
            .collect();
        // A sweep, or filtered searches (whose selectivity the table shows).
        if searches.len() > 2 || searches.iter().any(|r| r.filter_selectivity.is_some()) {
            writeln!(w)?;
            writeln!(w, "Recall / latency trade-off")?;
            writeln!(
                w,
                "  {:<20} {:>9} {:<14} {:>8} {:>8} {:>8} {:>8} {:>7}",
                "operation", "ef/probes", "iter. scan", "recall", "p5", "p95 ms", "qps", "short"
            )?;
            for r in searches {
                writeln!(
                    w,
                    "  {:<20} {:>9} {:<14} {:>8.4} {:>8.4} {:>8.3} {:>8.1} {:>6.1}%",
                    r.series(),
                    r.breadth(),
                    r.iterative_scan,
                    r.recall_mean.unwrap_or(0.0),
                    r.recall_p5.unwrap_or(0.0),
                    r.p95_ms,
                    r.qps,
                    r.short_result_share.unwrap_or(0.0) * 100.0
                )?;
            }
        }
        Ok(())
    }
}

/// A share as a percentage without trailing zeros: 0.001 → "0.1%", 0.5 → "50%".
pub fn percent(share: f64) -> String {
    format!("{}%", round(share * 100.0, 4))
}

/// "single_shard_search" → "Single-Shard Vector Search", as the spec's console shows.
pub fn title(operation: &str) -> &'static str {
    match operation {
        "single_shard_search" => "Single-Shard Vector Search",
        "cross_shard_search" => "Cross-Shard Vector Search",
        "filtered_search" => "Filtered Vector Search",
        "concurrent_queries" => "Concurrent Queries",
        "bulk_insert" => "Bulk Insert",
        "dataset_search" => "Data Set Queries (whole table, its ground truth)",
        _ => "Benchmark",
    }
}

/// The spec's per-benchmark table.
pub fn print_result(w: &mut dyn Write, r: &BenchResult) -> std::io::Result<()> {
    let rule = "─".repeat(56);
    writeln!(w, "   Results:")?;
    writeln!(w, "   {rule}")?;
    writeln!(w, "   {:<36} {:>10}", "Latency (ms)", "Value")?;
    writeln!(w, "   {rule}")?;
    for (name, v) in [
        ("Min", r.min_ms),
        ("Max", r.max_ms),
        ("Mean", r.mean_ms),
        ("p50", r.p50_ms),
        ("p95", r.p95_ms),
        ("p99", r.p99_ms),
        ("p99.9", r.p99_9_ms),
    ] {
        writeln!(w, "     {:<34} {:>10.3}", name, v)?;
    }
    writeln!(w, "   {rule}")?;
    match (r.transactions_per_s, r.rows_per_s) {
        (Some(tps), Some(rows)) => {
            writeln!(w, "   {:<36} {:>10.1}", "Throughput (transactions/s)", tps)?;
            writeln!(w, "   {:<36} {:>10.0}", "Throughput (rows/s)", rows)?;
        }
        _ => writeln!(w, "   {:<36} {:>10.1}", "Throughput (QPS)", r.qps)?,
    }
    if let (Some(mean), Some(p5)) = (r.recall_mean, r.recall_p5) {
        writeln!(
            w,
            "   {:<36} {:>10.4}",
            format!("Recall@{} (mean)", r.k.unwrap_or(0)),
            mean
        )?;
        writeln!(w, "   {:<36} {:>10.4}", "Recall (p5)", p5)?;
        if let Some(truth) = r.dataset_recall_mean {
            writeln!(
                w,
                "   {:<36} {:>10.4}",
                "Recall vs the data set's ground truth", truth
            )?;
        }
        if let Some(s) = r.filter_selectivity {
            writeln!(w, "   {:<36} {:>10}", "Rows the filter keeps", percent(s))?;
        }
        writeln!(
            w,
            "   {:<36} {:>9.1}%",
            "Searches with fewer than k rows",
            r.short_result_share.unwrap_or(0.0) * 100.0
        )?;
    }
    if let Some(peak) = r.peak_server_connections {
        writeln!(w, "   {:<36} {:>10}", "Peak server connections", peak)?;
    }
    writeln!(
        w,
        "   {} operations, {} failed, {} clients, {} warm-up operations excluded",
        r.iterations, r.failures, r.clients, r.warmup_iterations
    )?;
    Ok(())
}

/// Prints "Progress: n/N (x%)" while a benchmark runs, and the final line when it stops.
pub async fn progress(hub: Arc<StatsHub>, op: Op, total: u64, stop: CancellationToken) {
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let line = |done: u64| {
        format!(
            "   Progress: {done}/{total} ({:.1}%)",
            done as f64 * 100.0 / total.max(1) as f64
        )
    };
    loop {
        let stopped = tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => false,
            _ = stop.cancelled() => true,
        };
        let done = hub.snapshot().op(op).count();
        if stopped {
            println!("{}{}", if interactive { "\r" } else { "" }, line(done));
            return;
        }
        if interactive {
            print!("\r{}", line(done));
            let _ = std::io::stdout().flush();
        }
    }
}

/// The ann-benchmarks style trade-off plot: recall against p95 latency and against
/// throughput, one series per (operation or filter selectivity, iterative_scan), points
/// labelled by ef_search.
// Long (about 90 lines): plotters' builder chain for two panels, read top to bottom.
pub fn plot_svg(results: &[BenchResult]) -> String {
    use plotters::prelude::*;
    let points: Vec<&BenchResult> = results
        .iter()
        .filter(|r| r.recall_mean.is_some() && r.clients == 1)
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 460)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let (left, right) = root.split_horizontally(550);
        let max_p95 = points.iter().map(|r| r.p95_ms).fold(0.1, f64::max) * 1.15;
        let max_qps = points.iter().map(|r| r.qps).fold(1.0, f64::max) * 1.15;
        // Zoom in on the recall range measured; room on the right for the ef labels.
        let min_recall = points
            .iter()
            .filter_map(|r| r.recall_mean)
            .fold(1.0, f64::min);
        let x_min = ((min_recall - 0.05) * 20.0).floor() / 20.0;
        let x_range = x_min.max(0.0)..1.06;
        let mut series: Vec<(String, Vec<&BenchResult>)> = Vec::new();
        for r in &points {
            let name = format!("{} / {}", r.series(), r.iterative_scan);
            match series.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(r),
                None => series.push((name, vec![r])),
            }
        }
        for (area, title, y_max, y_of) in [
            (
                &left,
                "recall vs p95 latency (ms)",
                max_p95,
                (|r: &BenchResult| r.p95_ms) as fn(&BenchResult) -> f64,
            ),
            (
                &right,
                "recall vs throughput (queries/s)",
                max_qps,
                |r: &BenchResult| r.qps,
            ),
        ] {
            let Ok(mut chart) = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(x_range.clone(), 0.0f64..y_max)
            else {
                continue;
            };
            let _ = chart
                .configure_mesh()
                .x_desc("recall@k (mean)")
                .y_desc(title.split(" vs ").nth(1).unwrap_or(""))
                .draw();
            for (i, (name, rs)) in series.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                let mut xy: Vec<(f64, f64)> = rs
                    .iter()
                    .map(|r| (r.recall_mean.unwrap_or(0.0), y_of(r)))
                    .collect();
                xy.sort_by(|a, b| a.0.total_cmp(&b.0));
                if let Ok(drawn) =
                    chart.draw_series(LineSeries::new(xy.clone(), color.stroke_width(2)))
                {
                    drawn.label(name.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
                }
                let _ = chart.draw_series(rs.iter().map(|r| {
                    let p = (r.recall_mean.unwrap_or(0.0), y_of(r));
                    EmptyElement::at(p)
                        + Circle::new((0, 0), 4, color.filled())
                        + Text::new(r.breadth(), (6, -12), ("sans-serif", 11))
                }));
            }
            let _ = chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw();
        }
        let _ = root.present();
    }
    svg
}
