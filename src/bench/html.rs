//! `bench_report.html`: the benchmark suite in one self-contained page, like the load test's
//! `report.html`: settings, the spec's targets and the failure gate, every result (each cell's
//! `data-key` names its field in `benchmark_results.json`, `results.INDEX.FIELD`; the operation
//! and ef_search cells show the series and breadth the console shows), and the recall/latency
//! trade-off plot inline.

use super::report::{plot_svg, BenchReport, BenchResult};
use crate::report::charts;
use crate::report::html::{data_table, document, failure_gate, key_values, targets_table, Column};

/// The page.
pub fn page(report: &BenchReport) -> String {
    let c = &report.connection;
    let body = [
        settings(report),
        targets(report),
        results(&report.results),
        tradeoff(&report.results),
    ];
    document(
        &format!(
            "pgvector-loadtest bench: {}:{}/{}",
            c.host, c.port, c.database
        ),
        &body.concat(),
    )
}

/// Comma-separated values, `-` when none.
fn list<T: ToString>(values: &[T]) -> String {
    if values.is_empty() {
        return "-".into();
    }
    let texts: Vec<String> = values.iter().map(T::to_string).collect();
    texts.join(", ")
}

/// Where, on what data and index, with which versions.
fn settings(report: &BenchReport) -> String {
    let (c, s) = (&report.connection, &report.settings);
    let index = match s.lists {
        Some(lists) => format!("{} lists={lists}", s.index),
        None => format!(
            "{} m={} ef_construction={}",
            s.index, s.m, s.ef_construction
        ),
    };
    let rows = [
        (
            "Target",
            "connection",
            format!("{}:{}/{}", c.host, c.port, c.database),
        ),
        ("Started", "timestamp", report.timestamp.clone()),
        ("Layout", "settings.layout", s.layout.clone()),
        ("Dataset", "settings.dataset", s.dataset.clone()),
        (
            "Column and distance",
            "settings.vector_type",
            format!("{} {}", s.vector_type, s.distance),
        ),
        ("Index", "settings.index", index),
        ("ef_search", "settings.ef_search", list(&s.ef_search)),
        ("ivfflat.probes", "settings.probes", list(&s.probes)),
        (
            "iterative_scan",
            "settings.iterative_scan",
            list(&s.iterative_scan),
        ),
        (
            "Filter selectivity",
            "settings.filter_selectivity",
            list(&s.filter_selectivity),
        ),
        (
            "Warm-up iterations",
            "settings.warmup_iterations",
            s.warmup_iterations.to_string(),
        ),
        (
            "PostgreSQL",
            "settings.server_version",
            s.server_version.clone(),
        ),
        (
            "pgvector",
            "settings.pgvector_version",
            s.pgvector_version.clone(),
        ),
        (
            "Tool",
            "version",
            format!("pgvector-loadtest {}", env!("CARGO_PKG_VERSION")),
        ),
        ("Goose", "", crate::db::versions::GOOSE.to_string()),
    ];
    format!("<h2>Settings</h2>\n{}", key_values(&rows))
}

/// The spec's targets and the failure gate.
fn targets(report: &BenchReport) -> String {
    let gate = &report.failure_gate;
    format!(
        "<h2>Targets</h2>\n{}{}",
        targets_table(&report.targets),
        failure_gate(
            "measured operations",
            report.failure_share,
            gate.threshold,
            gate.exceeded,
        )
    )
}

/// Optional numbers with `decimals` decimals, `-` when absent.
fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// Operation, clients, breadth and iterative scan: left-aligned.
const TEXT_COLUMNS: usize = 4;

const COLUMNS: [Column<BenchResult>; 17] = [
    ("operation", "operation", |r| r.series()),
    ("clients", "clients", |r| r.clients.to_string()),
    ("breadth", "ef_search", |r| r.breadth()),
    ("iterative scan", "iterative_scan", |r| {
        r.iterative_scan.clone()
    }),
    ("iterations", "iterations", |r| r.iterations.to_string()),
    ("failures", "failures", |r| r.failures.to_string()),
    ("p50 ms", "p50_ms", |r| format!("{:.3}", r.p50_ms)),
    ("p95 ms", "p95_ms", |r| format!("{:.3}", r.p95_ms)),
    ("p99 ms", "p99_ms", |r| format!("{:.3}", r.p99_ms)),
    ("p99.9 ms", "p99_9_ms", |r| format!("{:.3}", r.p99_9_ms)),
    ("max ms", "max_ms", |r| format!("{:.3}", r.max_ms)),
    ("qps", "qps", |r| format!("{:.1}", r.qps)),
    ("wait p95 ms", "pool_wait_p95_ms", |r| {
        format!("{:.3}", r.pool_wait_p95_ms)
    }),
    ("recall", "recall_mean", |r| opt(r.recall_mean, 4)),
    ("recall p5", "recall_p5", |r| opt(r.recall_p5, 4)),
    ("short", "short_result_share", |r| {
        opt(r.short_result_share.map(|s| s * 100.0), 1)
    }),
    ("rows/s", "rows_per_s", |r| opt(r.rows_per_s, 0)),
];

/// Every result, one row each.
fn results(results: &[BenchResult]) -> String {
    let rows = results
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("results.{i}"), r));
    format!(
        "<h2>Results</h2>\n<p class=\"note\">Latency in ms; short is the percentage of \
         searches with fewer than k rows.</p>\n{}",
        data_table(&COLUMNS, TEXT_COLUMNS, rows)
    )
}

/// The recall/latency and recall/throughput plot, when searches measured recall.
fn tradeoff(results: &[BenchResult]) -> String {
    let points = results
        .iter()
        .filter(|r| r.recall_mean.is_some() && r.clients == 1)
        .count();
    if points == 0 {
        return String::new();
    }
    let title = "Recall against p95 latency and throughput";
    format!(
        "<h2>Recall / latency trade-off</h2>\n<figure>\n{}\n</figure>\n",
        charts::annotate(plot_svg(results), title, points)
    )
}
