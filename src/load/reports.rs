//! A load test's reports: Locust's CSVs, `load_test_summary.json`, `report.html`, the
//! HdrHistogram interval logs, and the console table; and the exit code they make.

use crate::config::Reports;
use crate::engine::stats::hlog;
use crate::events::{visibility, windows};
use crate::load::LoadResult;
use crate::report::gate::GateVerdict;
use crate::report::summary::{RunInfo, Summary};
use crate::report::verdict::{self, Verdict};
use crate::report::{csv_io, html, locust, write_atomic};
use crate::Exit;

/// The run's whole histograms (response, service, pool wait per operation).
pub const HISTOGRAMS_FILE: &str = "histograms.hlog";
/// Each second's response times per operation.
pub const HISTORY_FILE: &str = "history.hlog";

/// Writes the CSVs, the summary and report.html, and prints the summary table; returns the objectives'
/// verdicts and the failure gate's.
pub fn write(
    reports: &Reports,
    info: &RunInfo,
    result: &LoadResult,
) -> std::io::Result<(Vec<Verdict>, GateVerdict)> {
    let (dir, profile) = (reports.dir.as_path(), reports.profile.as_ref());
    let snapshot = &result.snapshot;
    write_atomic(&dir.join("load_test_stats.csv"), |w| {
        locust::write_stats(w, snapshot, info.elapsed).map_err(csv_io)
    })?;
    write_atomic(&dir.join("load_test_failures.csv"), |w| {
        locust::write_failures(w, snapshot).map_err(csv_io)
    })?;
    write_atomic(&dir.join("load_test_stats_history.csv"), |w| {
        locust::write_history(w, &result.history).map_err(csv_io)
    })?;
    let started = std::time::SystemTime::from(info.started_at);
    write_atomic(&dir.join(HISTOGRAMS_FILE), |w| {
        hlog::write_run(w, started, info.elapsed, snapshot)
    })?;
    write_atomic(&dir.join(HISTORY_FILE), |w| {
        hlog::write_history(w, started, &result.history)
    })?;
    let mut summary = Summary::new(info, snapshot);
    let aggregated = &summary.aggregated;
    (summary.failure_share, summary.failure_gate) = reports
        .failure_gate
        .judge(aggregated.failed, aggregated.count);
    summary.server = result.server.clone();
    summary.overhead = Some(result.overhead.clone());
    summary.schedule = result.schedule.clone();
    let measured = windows::Measured {
        history: &result.history,
        timeline: &result.timeline,
        probes: &result.probes,
        outages: &result.outages,
    };
    summary.events = windows::attribute(&result.events, &measured);
    summary.visibility = visibility::summarize(&result.probes);
    summary.writes = result.writes.clone();
    summary.outages = result.outages.clone();
    if let Some(profile) = profile {
        summary.profile = Some(profile.source.clone());
        summary.objectives =
            verdict::evaluate(&profile.objectives, snapshot, info.elapsed, &result.server);
    }
    crate::report::write_json(&dir.join("load_test_summary.json"), &summary)?;
    write_atomic(&dir.join("report.html"), |w| {
        let charted = html::Charted {
            history: &result.history,
            timeline: &result.timeline,
            snapshot,
        };
        html::write(w, &summary, &charted)
    })?;
    print(reports, &summary)?;
    println!("reports written to {}", dir.display());
    Ok((summary.objectives, summary.failure_gate))
}

/// The console: the summary table, the verdicts, the failure gate and a pooler hint.
fn print(reports: &Reports, summary: &Summary) -> std::io::Result<()> {
    summary.print(std::io::stdout())?;
    if let Some(profile) = &reports.profile {
        verdict::print(&mut std::io::stdout(), &profile.source, &summary.objectives)?;
    }
    if let Some(line) = reports
        .failure_gate
        .line(summary.failure_share, &summary.aggregated.failures)
    {
        println!("{line}");
        // The profile's own success-rate objective, beside it: the stricter decides.
        for v in summary
            .objectives
            .iter()
            .filter(|v| v.metric == "success_rate_pct")
        {
            println!(
                "  profile objective {}: {} (measured {}, target {} {})",
                v.name,
                v.status.label(),
                v.measured.map_or("n/a".into(), |m| format!("{m:.2} %")),
                v.direction,
                v.target
            );
        }
    }
    if summary
        .aggregated
        .failures
        .contains_key(crate::workload::failure::PREPARED_STATEMENT)
    {
        println!("hint: {}", crate::workload::failure::POOLER_HINT);
    }
    Ok(())
}

/// The exit code of a load test whose reports were written: interrupted, an acknowledged
/// write lost, a Goose threshold or a gating objective breached, too many failures, or
/// success.
pub fn exit(
    reports: &Reports,
    result: &LoadResult,
    verdicts: &[Verdict],
    gate: &GateVerdict,
) -> Exit {
    if let Some(failed) = &result.thresholds_failed {
        eprintln!("thresholds breached: {failed}");
    }
    let lost = result
        .writes
        .iter()
        .chain(result.events.iter().filter_map(|e| e.writes.as_ref()))
        .any(|w| w.missing > 0);
    if lost {
        eprintln!("acknowledged writes are missing on the primary: the run fails (exit 3)");
    }
    if result.interrupted {
        Exit::Interrupted
    } else if lost || result.thresholds_failed.is_some() || verdict::breached(verdicts) {
        Exit::SloBreached
    } else {
        reports.failure_gate.exit(gate).unwrap_or(Exit::Success)
    }
}
