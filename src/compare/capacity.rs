//! `capacity.json`, read back. Its writer ([`crate::capacity::CapacityReport`]) only
//! serialises (a step's phase is a static string), so the fields compared are mirrored here.
//!
//! The rows: `max sustainable` (the highest rate at which every objective held: 0 when no step
//! held), then one per step load. A step BASE did not hold is past its knee and no baseline;
//! NEW's step at a load BASE held is compared whether or not NEW held it, so a knee that moved
//! down shows as latency at the loads BASE sustained.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::input::{pairs, run_of, share, Kind, Row, Run};

/// `capacity.json`'s fields that `compare` reads.
#[derive(Debug, Deserialize)]
pub struct CapacityFile {
    sweep: String,
    profile: Option<String>,
    warmup_s: u64,
    hold_s: u64,
    max_in_flight: Option<usize>,
    steps: Vec<StepFile>,
    max_sustainable_per_s: Option<f64>,
    #[serde(default)]
    interrupted: bool,
    // Absent from reports of earlier versions.
    #[serde(default)]
    layout: String,
    #[serde(default)]
    dataset: String,
    #[serde(default)]
    index: String,
}

#[derive(Debug, Deserialize)]
struct StepFile {
    phase: String,
    load: f64,
    achieved_per_s: f64,
    operations: BTreeMap<String, StepOpFile>,
    recall_mean: Option<f64>,
    held: bool,
}

#[derive(Debug, Deserialize)]
struct StepOpFile {
    count: u64,
    failed: u64,
    response_ms: TailFile,
}

#[derive(Debug, Deserialize)]
struct TailFile {
    p50: f64,
    p95: f64,
    p99: f64,
}

/// The row key of the knee.
pub const KNEE: &str = "max sustainable";

/// Settings and rows of a capacity search.
pub fn reduce(c: CapacityFile) -> Run {
    let mut run = run_of(Kind::Capacity);
    let first_step = c
        .steps
        .iter()
        .find(|s| s.phase == "step")
        .map(|s| s.load.to_string())
        .unwrap_or_default();
    run.settings = pairs([
        ("sweep", c.sweep.clone()),
        ("profile", c.profile.clone().unwrap_or_default()),
        ("warm-up s", c.warmup_s.to_string()),
        ("hold s", c.hold_s.to_string()),
        (
            "max in flight",
            c.max_in_flight.map(|n| n.to_string()).unwrap_or_default(),
        ),
        ("first step", first_step),
        ("layout", c.layout.clone()),
        ("dataset", c.dataset.clone()),
        ("index", c.index.clone()),
    ]);
    if c.interrupted {
        run.warnings
            .push("was interrupted: the search did not finish".into());
    }
    let knee = c.max_sustainable_per_s.unwrap_or(0.0);
    run.rows.push(Row {
        key: KNEE.into(),
        values: [None, None, None, Some(knee), None, None],
        held: true,
    });
    let unit = if c.sweep == "concurrency" {
        " users"
    } else {
        "/s"
    };
    let headline = crate::capacity::HEADLINE.name();
    let mut steps: Vec<&StepFile> = c.steps.iter().collect();
    steps.sort_by(|a, b| a.load.total_cmp(&b.load));
    for s in steps {
        let op = s.operations.get(headline);
        let (failed, count) = s
            .operations
            .values()
            .fold((0, 0), |(f, n), o| (f + o.failed, n + o.count));
        run.rows.push(Row {
            key: format!("at {}{unit}", s.load),
            values: [
                op.map(|o| o.response_ms.p50),
                op.map(|o| o.response_ms.p95),
                op.map(|o| o.response_ms.p99),
                Some(s.achieved_per_s),
                share(failed, count),
                s.recall_mean,
            ],
            held: s.held,
        });
    }
    run
}
