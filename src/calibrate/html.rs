//! `calibration.html`: the calibration in one self-contained page, like `report.html`: how
//! the two sides ran, each operation's figures side by side (each cell's `data-key` names its
//! field in `calibration.json`), the ratios and targets, and the two sides' latency at p50,
//! p95 and p99 on one chart.

use super::report::{CalibrationReport, OpCalibration, SideFigures};
use crate::report::charts::{self, Chart, Series};
use crate::report::html::{
    data_table, document, escape, failure_gate, figure, key_values, targets_table, Column,
};

/// The page.
pub fn page(report: &CalibrationReport) -> String {
    let body = [
        settings(report),
        sides(report),
        ratios(report),
        latency_chart(report),
    ];
    document(
        &format!("pgvector-loadtest calibrate: {}", report.target),
        &body.concat(),
    )
}

/// Where and how long, and how the two sides were measured.
fn settings(r: &CalibrationReport) -> String {
    let loadavg = |l: Option<[f64; 3]>| l.map_or("-".into(), |l| format!("{:?}", l));
    let mut rows = vec![
        ("Target", "target", r.target.clone()),
        ("Made", "timestamp", r.timestamp.clone()),
        ("Clients per side", "clients", r.clients.to_string()),
        (
            "pgbench -j",
            "pgbench_threads",
            r.pgbench_threads.to_string(),
        ),
        (
            "Measured / warm-up",
            "duration_s",
            format!("{} s / {} s per side", r.duration_s, r.warmup_s),
        ),
        ("Cores", "cores", r.cores.to_string()),
        (
            "Load average before",
            "load_average_before",
            loadavg(r.load_average_before),
        ),
        (
            "Load average after",
            "load_average_after",
            loadavg(r.load_average_after),
        ),
    ];
    if let Some(rate) = r.rate_per_s {
        rows.push(("Scheduled rate", "rate_per_s", format!("{rate}/s")));
    }
    let method: String = r
        .method
        .iter()
        .map(|m| format!("<li>{}</li>\n", escape(m)))
        .collect();
    format!(
        "<h2>Settings</h2>\n{}<h3>Method</h3>\n<ul>\n{method}</ul>\n",
        key_values(&rows)
    )
}

/// One side of one operation, for the side-by-side table.
struct Side {
    operation: String,
    side: &'static str,
    f: SideFigures,
}

/// Optional numbers, `-` when absent.
fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or("-".into(), |v| v.to_string())
}

const SIDE_COLUMNS: [Column<Side>; 13] = [
    ("operation", "", |s| s.operation.clone()),
    ("side", "", |s| s.side.to_string()),
    ("operations", "ops", |s| s.f.ops.to_string()),
    ("failed", "failed", |s| s.f.failed.to_string()),
    ("span s", "span_s", |s| format!("{:.3}", s.f.span_s)),
    ("ops/s", "throughput_per_s", |s| {
        format!("{:.1}", s.f.throughput_per_s)
    }),
    ("p50 ms", "p50_ms", |s| format!("{:.3}", s.f.p50_ms)),
    ("p95 ms", "p95_ms", |s| format!("{:.3}", s.f.p95_ms)),
    ("p99 ms", "p99_ms", |s| format!("{:.3}", s.f.p99_ms)),
    ("CPU s", "cpu_s", |s| format!("{:.3}", s.f.cpu_s)),
    ("CPU s / 1000 ops", "cpu_s_per_1000_ops", |s| {
        format!("{:.4}", s.f.cpu_s_per_1000_ops)
    }),
    ("late", "late", |s| opt(s.f.late)),
    ("skipped", "skipped", |s| opt(s.f.skipped)),
];

/// Each operation's two sides, one row each.
fn sides(r: &CalibrationReport) -> String {
    let rows = r.results.iter().enumerate().flat_map(|(i, op)| {
        [("pgbench", &op.pgbench), ("harness", &op.harness)].map(|(side, f)| {
            let row = Side {
                operation: op.operation.clone(),
                side,
                f: f.clone(),
            };
            (format!("results.{i}.{side}"), row)
        })
    });
    let rows: Vec<(String, Side)> = rows.collect();
    format!(
        "<h2>Both sides</h2>\n<p class=\"note\">Throughput is successful operations over the \
         span from the first start to the last end, on both sides.</p>\n{}",
        data_table(&SIDE_COLUMNS, 2, rows.iter().map(|(k, s)| (k.clone(), s)))
    )
}

const RATIO_COLUMNS: [Column<OpCalibration>; 6] = [
    ("operation", "", |o| o.operation.clone()),
    ("throughput", "throughput_ratio", |o| {
        format!("{:.3}", o.throughput_ratio)
    }),
    ("CPU / 1000 ops", "cpu_per_1000_ratio", |o| {
        format!("{:.3}", o.cpu_per_1000_ratio)
    }),
    ("p50", "p50_ratio", |o| format!("{:.3}", o.p50_ratio)),
    ("p95", "p95_ratio", |o| format!("{:.3}", o.p95_ratio)),
    ("p99", "p99_ratio", |o| format!("{:.3}", o.p99_ratio)),
];

/// harness / pgbench ratios, each operation's targets and the failure gate.
fn ratios(r: &CalibrationReport) -> String {
    let rows = r
        .results
        .iter()
        .enumerate()
        .map(|(i, o)| (format!("results.{i}"), o));
    let mut out = format!(
        "<h2>Harness / pgbench</h2>\n{}",
        data_table(&RATIO_COLUMNS, 1, rows)
    );
    for o in &r.results {
        out.push_str(&format!(
            "<h3>Targets: {}</h3>\n{}",
            escape(&o.operation),
            targets_table(&o.targets)
        ));
    }
    let gate = &r.failure_gate;
    out.push_str(&failure_gate(
        "operations (both sides)",
        r.failure_share,
        gate.threshold,
        gate.exceeded,
    ));
    out
}

/// p50, p95 and p99 of every operation on each side, against log10(1 / (1 - p)).
fn latency_chart(r: &CalibrationReport) -> String {
    let x = |p: f64| (1.0 / (1.0 - p)).log10();
    let series: Vec<Series> = r
        .results
        .iter()
        .flat_map(|o| {
            [("pgbench", &o.pgbench), ("harness", &o.harness)].map(|(side, f)| Series {
                name: format!("{} {side}", o.operation),
                points: vec![(x(0.5), f.p50_ms), (x(0.95), f.p95_ms), (x(0.99), f.p99_ms)],
            })
        })
        .collect();
    let chart = Chart {
        title: "Latency of each side at p50, p95 and p99",
        x_desc: "percentile",
        y_desc: "ms",
        x_label: charts::percentile_label,
        x_ticks: 3,
        bands: &[],
    };
    format!("<h2>Latency</h2>\n{}", figure(&chart, &series))
}
