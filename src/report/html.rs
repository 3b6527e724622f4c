//! `report.html`: the load test in one self-contained page (inline style and SVG, no script,
//! nothing fetched), readable offline: run settings, the objectives' verdicts and the failure
//! gate, the per-operation table of `load_test_summary.json` (each cell's `data-key` names its
//! JSON field), charts of the once-a-second history and the latency percentile spectrum.

use std::fmt::Write as _;
use std::io::Write;

use crate::engine::stats::{HistorySample, Snapshot, Timeline};
use crate::report::charts::{self, Chart, Series};
use crate::report::summary::{OpSummary, Summary};
use crate::report::verdict::{Status, Verdict};

/// The page's style sheet (`bench_report.html`'s too).
pub const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; }
th { background: #f4f4f4; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.PASS { color: #176f2c; font-weight: bold; } .WARN { color: #9a6700; font-weight: bold; }
.FAIL { color: #b31d28; font-weight: bold; } .NA { color: #666; }
figure { margin: 1em 0; } svg { max-width: 100%; height: auto; }
p.note { color: #555; font-size: 0.85em; } div.wide { overflow-x: auto; }
p.legend { font-size: 0.85em; margin: 0 0 0 4.5em; } span.key { margin-right: 1.2em; }
span.key span { display: inline-block; width: 1.6em; height: 0.3em; margin-right: 0.4em;
  vertical-align: middle; }
";

/// HTML-escapes `text` for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the page charts: the once-a-second history, the pool usage and recall samples on
/// its clock, and the final histograms.
pub struct Charted<'a> {
    /// Once-a-second samples.
    pub history: &'a [HistorySample],
    /// Pool usage and recall over time.
    pub timeline: &'a Timeline,
    /// The run's histograms.
    pub snapshot: &'a Snapshot,
}

/// Writes the page for `summary`, with charts of `charted`.
pub fn write(w: &mut dyn Write, summary: &Summary, charted: &Charted) -> std::io::Result<()> {
    w.write_all(page(summary, charted).as_bytes())
}

/// The whole page.
pub fn page(summary: &Summary, charted: &Charted) -> String {
    let bands: Vec<(f64, f64)> = summary
        .events
        .iter()
        .filter_map(|e| Some((e.record.started_s?, e.record.ended_s?)))
        .collect();
    let body = [
        settings(summary),
        verdicts(summary),
        operations(summary),
        events(summary),
        history_charts(charted.history, charted.timeline, &bands),
        spectrum(charted.snapshot),
    ];
    document(
        &format!("pgvector-loadtest: {}", summary.target),
        &body.concat(),
    )
}

/// A page titled `title` (also its heading) around `body`, with the inline style sheet.
pub fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n{body}\
         </body>\n</html>\n",
        escape(title),
        escape(title)
    )
}

/// A two-column table of (label, JSON key, value) rows (an empty key: not in the JSON).
pub fn key_values(rows: &[(&str, &str, String)]) -> String {
    let mut out = String::from("<table>\n");
    for (label, key, value) in rows {
        let key = if key.is_empty() {
            String::new()
        } else {
            format!(" data-key=\"{}\"", escape(key))
        };
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td{key}>{}</td></tr>",
            escape(label),
            escape(value)
        );
    }
    out.push_str("</table>\n");
    out
}

/// Run settings: target, data, users, time, and the open model's and server's figures.
fn settings(s: &Summary) -> String {
    let mut rows = vec![
        ("Target", "target", s.target.clone()),
        ("Started", "started_at", s.started_at.clone()),
        (
            "Elapsed (load phase)",
            "duration_s",
            format!("{:.1} s", s.duration_s),
        ),
        ("Users (most at once)", "max_users", s.max_users.to_string()),
        ("Layout", "layout", s.layout.clone()),
        ("Dataset", "dataset", s.dataset.clone()),
        ("Index", "index", s.index.clone()),
        ("Tool", "version", format!("{} {}", s.tool, s.version)),
        ("Goose", "versions.goose", s.versions.goose.clone()),
        (
            "PostgreSQL",
            "versions.postgres",
            s.versions.postgres.clone(),
        ),
        ("pgvector", "versions.pgvector", s.versions.pgvector.clone()),
    ];
    if s.interrupted {
        rows.push((
            "Interrupted",
            "interrupted",
            "yes: stopped by a signal".into(),
        ));
    }
    if let Some(profile) = &s.profile {
        rows.push(("Profile", "profile", profile.clone()));
    }
    if let Some(g) = &s.generators {
        let text = match g.index {
            Some(i) => format!("generator {i} of {} in run {}", g.count, g.run_id),
            None => format!("{} generators merged, run {}", g.count, g.run_id),
        };
        rows.push(("Generators", "generators.count", text));
    }
    if let Some(o) = &s.schedule {
        let spacing = format!("{:?}", o.spacing).to_lowercase();
        rows.extend([
            ("Open model: arrivals", "schedule.spacing", spacing),
            (
                "Offered",
                "schedule.offered_per_s",
                format!("{:.1}/s", o.offered_per_s),
            ),
            (
                "Achieved",
                "schedule.achieved_per_s",
                format!("{:.1}/s", o.achieved_per_s),
            ),
            (
                "Arrivals",
                "schedule.offered",
                format!(
                    "{}: {} on time, {} late, {} dropped",
                    o.offered, o.on_time, o.late, o.dropped
                ),
            ),
            (
                "Max lag",
                "schedule.max_lag_s",
                format!("{:.3} s", o.max_lag_s),
            ),
        ]);
    }
    rows.extend(server_rows(s));
    format!("<h2>Run settings</h2>\n{}", key_values(&rows))
}

/// The server-side figures that were measured, and the harness's overhead.
fn server_rows(s: &Summary) -> Vec<(&'static str, &'static str, String)> {
    let server = &s.server;
    let figures = [
        (
            "Cache hit ratio",
            "server.cache_hit_ratio_pct",
            server.cache_hit_ratio_pct,
            " %",
        ),
        (
            "Replication lag (max)",
            "server.replication_lag_s",
            server.replication_lag_s,
            " s",
        ),
        (
            "Pool usage (peak)",
            "server.pool_usage_pct",
            server.pool_usage_pct,
            " %",
        ),
        (
            "Recall@k (mean, sampled under load)",
            "server.recall_mean",
            server.recall_mean,
            "",
        ),
    ];
    let mut rows: Vec<(&str, &str, String)> = figures
        .into_iter()
        .filter_map(|(label, key, v, unit)| v.map(|v| (label, key, format!("{v:.3}{unit}"))))
        .collect();
    if let Some(o) = &s.overhead {
        rows.push(("Harness overhead", "overhead", o.line()));
    }
    rows
}

/// The objectives' verdicts (when a profile judged the run) and the failure gate.
fn verdicts(s: &Summary) -> String {
    let mut out = String::from("<h2>Verdicts</h2>\n");
    match &s.profile {
        Some(profile) if !s.objectives.is_empty() => {
            let _ = writeln!(out, "<p>Objectives of {}:</p>", escape(profile));
            out.push_str(&objectives_table(&s.objectives));
        }
        _ => out.push_str("<p>No profile: no objectives were judged.</p>\n"),
    }
    let gate = &s.failure_gate;
    out.push_str(&failure_gate(
        "operations",
        s.failure_share,
        gate.threshold,
        gate.exceeded,
    ));
    out
}

/// The failure gate's line: the share of `what` that failed against `--max-failure-share`.
pub fn failure_gate(what: &str, share: f64, threshold: f64, exceeded: bool) -> String {
    let (class, outcome) = if exceeded {
        ("FAIL", "over the gate")
    } else {
        ("PASS", "within the gate")
    };
    format!(
        "<p>Failure gate: <span data-key=\"failure_share\">{:.2} %</span> of {what} failed \
         (--max-failure-share {:.2} %): <span class=\"{class}\" \
         data-key=\"failure_gate.exceeded\">{outcome}</span>.</p>\n",
        share * 100.0,
        threshold * 100.0
    )
}

/// One row per objective.
fn objectives_table(verdicts: &[Verdict]) -> String {
    let mut out = String::from(
        "<table>\n<tr><th>objective</th><th>operations</th><th>measured</th><th>target</th>\
         <th>critical</th><th>verdict</th></tr>\n",
    );
    for v in verdicts {
        let label = v.status.label();
        let class = if v.status == Status::NotMeasured {
            "NA"
        } else {
            label
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}{}</td>\
             <td class=\"n\">{}{}</td><td class=\"{class}\">{label}{}</td></tr>",
            escape(&v.name),
            escape(&v.operations),
            v.measured.map_or("-".into(), |m| format!("{m:.3}")),
            escape(&v.direction),
            v.target,
            escape(&v.direction),
            v.critical,
            if v.gate { "" } else { " (not gating)" }
        );
    }
    out.push_str("</table>\n");
    out
}

/// A table column: header, JSON field under the row's key (empty: the cell has no
/// `data-key`), and the cell text.
pub type Column<T> = (&'static str, &'static str, fn(&T) -> String);

/// A table of `rows`, each (JSON key, item): a cell's `data-key` is `KEY.FIELD`. The first
/// `text_columns` columns are left-aligned text, the rest numbers.
pub fn data_table<'a, T: 'a>(
    columns: &[Column<T>],
    text_columns: usize,
    rows: impl IntoIterator<Item = (String, &'a T)>,
) -> String {
    let mut out = String::from("<div class=\"wide\"><table>\n<tr>");
    for (header, _, _) in columns {
        let _ = write!(out, "<th>{header}</th>");
    }
    out.push_str("</tr>\n");
    for (key, item) in rows {
        out.push_str("<tr>");
        for (column, (_, field, cell)) in columns.iter().enumerate() {
            let class = if column < text_columns {
                ""
            } else {
                " class=\"n\""
            };
            let key = if field.is_empty() {
                String::new()
            } else {
                format!(" data-key=\"{}.{field}\"", escape(&key))
            };
            let _ = write!(out, "<td{class}{key}>{}</td>", escape(&cell(item)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
    out
}

/// Targets met or missed, one row each.
pub fn targets_table(targets: &[crate::report::TargetCheck]) -> String {
    let mut out = String::from(
        "<table>\n<tr><th>target</th><th>wanted</th><th>measured</th><th>verdict</th></tr>\n",
    );
    for t in targets {
        let verdict = if t.pass { "PASS" } else { "FAIL" };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{:.3}</td>\
             <td class=\"{verdict}\">{verdict}</td></tr>",
            escape(&t.name),
            escape(&t.target),
            t.measured
        );
    }
    out.push_str("</table>\n");
    out
}

/// Microseconds as milliseconds with three decimals.
fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// The per-operation table's columns (cells as the console table prints them: milliseconds
/// with three decimals).
const COLUMNS: [Column<OpSummary>; 16] = [
    ("operation", "", |o| o.name.clone()),
    ("count", "count", |o| o.count.to_string()),
    ("failed", "failed", |o| o.failed.to_string()),
    ("failures by class", "failures", |o| failure_classes(o)),
    ("ops/s", "throughput_per_s", |o| {
        format!("{:.1}", o.throughput_per_s)
    }),
    ("p50", "latency_us.p50", |o| ms(o.latency_us.p50)),
    ("p95", "latency_us.p95", |o| ms(o.latency_us.p95)),
    ("p99", "latency_us.p99", |o| ms(o.latency_us.p99)),
    ("p99.9", "latency_us.p99_9", |o| ms(o.latency_us.p99_9)),
    ("max", "latency_us.max", |o| ms(o.latency_us.max)),
    ("service p95", "service_us.p95", |o| ms(o.service_us.p95)),
    ("wait p95", "pool_wait_us.p95", |o| ms(o.pool_wait_us.p95)),
    ("rows", "mean_rows", |o| format!("{:.1}", o.mean_rows)),
    ("short", "short_result_share", |o| {
        o.short_result_share
            .map_or("-".into(), |x| format!("{:.0}%", x * 100.0))
    }),
    ("empty", "empty_share", |o| {
        format!("{:.0}%", o.empty_share * 100.0)
    }),
    ("namespaces", "mean_distinct_namespaces", |o| {
        o.mean_distinct_namespaces
            .map_or("-".into(), |x| format!("{x:.2}"))
    }),
];

/// `class=n, ...`, or `-` when nothing failed.
fn failure_classes(o: &OpSummary) -> String {
    if o.failures.is_empty() {
        return "-".into();
    }
    let classes: Vec<String> = o.failures.iter().map(|(k, v)| format!("{k}={v}")).collect();
    classes.join(", ")
}

/// The per-operation table, then the aggregate (keyed `aggregated.…`).
fn operations(s: &Summary) -> String {
    let rows = s.operations.iter().map(|o| (o.name.clone(), o));
    let rows = rows.chain(std::iter::once(("aggregated".to_string(), &s.aggregated)));
    format!(
        "<h2>Operations</h2>\n<p class=\"note\">Response time (pool wait + query) in ms; \
         service is the query alone, wait the pool wait; rows are the mean per successful \
         attempt; short is the share of searches with fewer than k rows.</p>\n{}",
        data_table(&COLUMNS, 2, rows)
    )
}

/// Each event's latency, throughput, failures and recall before, during and after it
/// (`events.I.windows.W.…` in the summary), and each replica's visibility delays.
fn events(s: &Summary) -> String {
    if s.events.is_empty() && s.visibility.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<h2>Events</h2>\n<p class=\"note\">Each maintenance event's windows: before it (from \
         the previous event's end), during it, and after it until the p95 of all operations is \
         back within 10 % of before. The charts over time shade each event.</p>\n<table>\n\
         <tr><th>event</th><th>outcome</th><th>window</th><th>from s</th><th>to s</th>\
         <th>ops/s</th><th>failed</th><th>p50</th><th>p95</th><th>p99</th><th>recall</th>\
         <th>visibility p95</th></tr>\n",
    );
    for (i, e) in s.events.iter().enumerate() {
        let Some(ws) = &e.windows else {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td colspan=\"10\">-</td></tr>",
                escape(&e.record.label),
                escape(&e.record.outcome)
            );
            continue;
        };
        for (name, w) in [
            ("before", &ws.before),
            ("during", &ws.during),
            ("after", &ws.after),
        ] {
            let key = |field: &str| format!("events.{i}.windows.{name}.{field}");
            let opt = |v: Option<f64>, d: usize| v.map_or("-".into(), |v| format!("{v:.d$}"));
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{name}</td><td class=\"n\">{:.1}</td>\
                 <td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td>\
                 <td class=\"n\" data-key=\"{}\">{}</td><td class=\"n\">{:.3}</td>\
                 <td class=\"n\" data-key=\"{}\">{:.3}</td><td class=\"n\">{:.3}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&e.record.label),
                escape(&e.record.outcome),
                w.from_s,
                w.to_s,
                w.all.throughput_per_s,
                key("all.failed"),
                w.all.failed,
                w.all.p50_ms,
                key("all.p95_ms"),
                w.all.p95_ms,
                w.all.p99_ms,
                opt(w.recall_mean, 3),
                opt(w.visibility_p95_ms, 2),
            );
        }
    }
    out.push_str("</table>\n");
    if !s.visibility.is_empty() {
        out.push_str(
            "<h3>Read-your-writes on replicas</h3>\n<table>\n<tr><th>replica</th><th>probes</th>\
             <th>p50 ms</th><th>p95 ms</th><th>max ms</th><th>first read missed</th>\
             <th>never visible</th><th>search p95 ms</th></tr>\n",
        );
        for (i, v) in s.visibility.iter().enumerate() {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}</td>\
                 <td class=\"n\" data-key=\"visibility.{i}.p95_ms\">{:.2}</td>\
                 <td class=\"n\">{:.2}</td><td class=\"n\">{:.1} %</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{:.2}</td></tr>",
                escape(&v.replica),
                v.probes,
                v.p50_ms,
                v.p95_ms,
                v.max_ms,
                v.missed_share * 100.0,
                v.not_visible,
                v.search_p95_ms
            );
        }
        out.push_str("</table>\n");
    }
    out
}

/// A chart in a figure, its legend below it.
pub fn figure(chart: &Chart, series: &[Series]) -> String {
    format!(
        "<figure>\n{}\n{}\n</figure>\n",
        charts::line_chart(chart, series),
        charts::legend(series)
    )
}

/// A chart over the run's seconds, the events' spans shaded.
fn over_time<'a>(title: &'a str, y_desc: &'a str, bands: &'a [(f64, f64)]) -> Chart<'a> {
    Chart {
        title,
        x_desc: "seconds since start",
        y_desc,
        x_label: charts::seconds_label,
        x_ticks: 10,
        bands,
    }
}

/// Throughput, latency (all operations, then each), failures, users, pool usage and recall
/// over time, from the once-a-second history and the timeline.
fn history_charts(history: &[HistorySample], timeline: &Timeline, bands: &[(f64, f64)]) -> String {
    let (failures, users) = charts::failures_and_users(history);
    let mut out = vec![
        "<h2>Over time</h2>\n".to_string(),
        figure(
            &over_time("Operations per second, per operation", "ops/s", bands),
            &charts::throughput_series(history),
        ),
        figure(
            &over_time(
                "Response time of all operations (p50, p95, p99 per second)",
                "ms",
                bands,
            ),
            &charts::latency_series(history, None),
        ),
    ];
    for op in charts::operations_run(history) {
        let title = format!("Response time of {} (p50, p95, p99 per second)", op.name());
        out.push(figure(
            &over_time(&title, "ms", bands),
            &charts::latency_series(history, Some(op)),
        ));
    }
    out.extend([
        figure(
            &over_time("Failures per second", "failures/s", bands),
            &[failures],
        ),
        figure(&over_time("Users", "users", bands), &[users]),
        figure(
            &over_time(
                "Pool usage (busiest pool, peak each second)",
                "% of the pool",
                bands,
            ),
            &charts::pool_series(timeline),
        ),
    ]);
    let recall = charts::recall_series(timeline);
    out.push(if recall.is_empty() {
        "<p class=\"note\">Recall was not sampled in this run (the sampler runs beside the \
         Prometheus exporter).</p>\n"
            .to_string()
    } else {
        figure(
            &over_time(
                "Recall@k of the searches sampled under load",
                "recall",
                bands,
            ),
            &recall,
        )
    });
    out.concat()
}

/// The latency percentile spectrum of each operation, from the final histograms.
fn spectrum(snapshot: &Snapshot) -> String {
    let chart = Chart {
        title: "Response time by percentile (log scale of 1/(1-p))",
        x_desc: "percentile",
        y_desc: "ms",
        x_label: charts::percentile_label,
        // One per nine: p0, p90, p99, p99.9, p99.99.
        x_ticks: 5,
        bands: &[],
    };
    format!(
        "<h2>Latency percentile spectrum</h2>\n<p class=\"note\">From the whole run's \
         histograms; the x axis is log10(1/(1-p)): each step right is one more nine.</p>\n{}",
        figure(&chart, &charts::spectrum_series(snapshot))
    )
}
