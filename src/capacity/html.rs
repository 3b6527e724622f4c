//! `capacity_report.html`: the capacity search in one self-contained page, like `report.html`:
//! the search's settings and answer, every step (each cell's `data-key` names its field in
//! `capacity.json`, `steps.INDEX.FIELD`) and the plot of `capacity.svg` inline.

use super::report::{plot_svg, CapacityReport, Step, StepOp, HEADLINE};
use crate::cli::Sweep;
use crate::report::charts;
use crate::report::html::{data_table, document, escape, key_values, Column};

/// The page.
pub fn page(report: &CapacityReport) -> String {
    let body = [
        settings(report),
        answer(report),
        steps(report),
        plot(report),
    ];
    document("pgvector-loadtest capacity", &body.concat())
}

/// What was swept, on what, judged by which profile.
fn settings(r: &CapacityReport) -> String {
    let sweep = match r.sweep {
        Sweep::Rate => "offered arrival rate (open model)",
        Sweep::Concurrency => "users with no think time (closed model)",
    };
    let mut rows = vec![
        ("Sweep", "sweep", sweep.to_string()),
        (
            "Profile",
            "profile",
            r.profile.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "Warm-up / hold per step",
            "hold_s",
            format!("{} s / {} s", r.warmup_s, r.hold_s),
        ),
        ("Layout", "layout", r.layout.clone()),
        ("Dataset", "dataset", r.dataset.clone()),
        ("Index", "index", r.index.clone()),
    ];
    if let Some(n) = r.max_in_flight {
        rows.push(("Users in flight (most)", "max_in_flight", n.to_string()));
    }
    if r.interrupted {
        rows.push((
            "Interrupted",
            "interrupted",
            "yes: the search did not finish".into(),
        ));
    }
    format!("<h2>Settings</h2>\n{}", key_values(&rows))
}

/// The highest load that held and what limited the next one.
fn answer(r: &CapacityReport) -> String {
    let rows = [
        (
            "Max sustainable (operations/s)",
            "max_sustainable_per_s",
            r.max_sustainable_per_s
                .map_or("no step held".into(), |v| format!("{v:.1}")),
        ),
        (
            "At load",
            "max_sustainable_load",
            r.max_sustainable_load.map_or("-".into(), |v| v.to_string()),
        ),
        (
            "Limited at load",
            "limit_load",
            r.limit_load.map_or("-".into(), |v| v.to_string()),
        ),
        (
            "Limited by",
            "limiting_objective",
            r.limiting_objective.clone().unwrap_or_else(|| "-".into()),
        ),
    ];
    format!("<h2>Answer</h2>\n{}", key_values(&rows))
}

/// A percentile of the headline search's response time, ms.
fn headline(s: &Step, f: fn(&StepOp) -> f64) -> String {
    s.operations
        .get(HEADLINE.name())
        .map_or("-".into(), |o| format!("{:.3}", f(o)))
}

const COLUMNS: [Column<Step>; 12] = [
    ("phase", "phase", |s| s.phase.to_string()),
    ("load", "load", |s| format!("{}", s.load)),
    ("offered/s", "offered_per_s", |s| {
        s.offered_per_s.map_or("-".into(), |o| format!("{o:.1}"))
    }),
    ("achieved/s", "achieved_per_s", |s| {
        format!("{:.1}", s.achieved_per_s)
    }),
    ("late", "late", |s| s.late.to_string()),
    ("dropped", "dropped", |s| s.dropped.to_string()),
    ("p50 ms", "", |s| headline(s, |o| o.response_ms.p50)),
    ("p95 ms", "", |s| headline(s, |o| o.response_ms.p95)),
    ("p99 ms", "", |s| headline(s, |o| o.response_ms.p99)),
    ("service p95 ms", "", |s| headline(s, |o| o.service_ms.p95)),
    ("recall", "recall_mean", |s| {
        s.recall_mean.map_or("-".into(), |r| format!("{r:.3}"))
    }),
    ("result", "", |s| {
        if s.held {
            "held".into()
        } else {
            format!("missed: {}", s.limits.join("; "))
        }
    }),
];

/// Every step, in the order run.
fn steps(r: &CapacityReport) -> String {
    let rows = r
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("steps.{i}"), s));
    format!(
        "<h2>Steps</h2>\n<p class=\"note\">Latencies are those of {}: response time from the \
         intended start (open model), and service time (the query alone).</p>\n{}",
        escape(HEADLINE.name()),
        data_table(&COLUMNS, 1, rows)
    )
}

/// `capacity.svg`, inline.
fn plot(r: &CapacityReport) -> String {
    let title = "Response time and achieved throughput against load";
    format!(
        "<h2>Plot</h2>\n<figure>\n{}\n</figure>\n",
        charts::annotate(plot_svg(r), title, r.steps.len())
    )
}
