//! Load profiles: TOML files in `scenarios/` naming a load shape (users, hatch rate, run time)
//! and the objectives the run is judged against. The five profiles of the spec's scenario table
//! are built into the binary; `--profile-file` reads any other.
//!
//! An optional `[compare]` table sets the limits `compare` judges a run against its baseline
//! by ([`regression`]).
//!
//! Every problem in a file is reported as one line naming the file, the field and what is wrong.

pub mod regression;

use std::path::Path;

use serde::Deserialize;

use crate::workload::ops::Op;

/// The built-in profiles, compiled in so the binary works outside the source tree.
pub const BUILT_IN: [(&str, &str); 6] = [
    ("baseline", include_str!("../scenarios/baseline.toml")),
    ("normal", include_str!("../scenarios/normal.toml")),
    ("peak", include_str!("../scenarios/peak.toml")),
    ("stress", include_str!("../scenarios/stress.toml")),
    ("soak", include_str!("../scenarios/soak.toml")),
    ("capacity", include_str!("../scenarios/capacity.toml")),
];

/// A profile problem: `profile FILE: field `F`: problem`.
#[derive(Debug, thiserror::Error)]
#[error("profile {file}: {what}")]
pub struct ProfileError {
    file: String,
    what: String,
}

/// What an objective measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Median latency, ms.
    P50Ms,
    /// 95th percentile latency, ms.
    P95Ms,
    /// 99th percentile latency, ms.
    P99Ms,
    /// 99.9th percentile latency, ms.
    #[serde(rename = "p99_9_ms")]
    P999Ms,
    /// Largest latency, ms.
    MaxMs,
    /// Successful operations, percent.
    SuccessRatePct,
    /// Operations per second, wall clock.
    ThroughputPerS,
    /// Rows written per second by inserts and bulk inserts.
    RowsWrittenPerS,
    /// Buffer cache hit ratio over the run, percent.
    CacheHitRatioPct,
    /// Largest replica replay lag seen, seconds.
    ReplicationLagS,
    /// Peak share of the pool in use, percent.
    PoolUsagePct,
    /// Mean recall@k of the searches sampled under load (0 to 1), against exact ground truth.
    RecallMean,
    /// 95th percentile of the time a row written on the primary takes to be visible on a
    /// replica (the slowest replica's), ms.
    VisibilityP95Ms,
}

impl Metric {
    /// Whether smaller values are better (latency, lag, usage).
    pub fn lower_is_better(self) -> bool {
        matches!(
            self,
            Metric::P50Ms
                | Metric::P95Ms
                | Metric::P99Ms
                | Metric::P999Ms
                | Metric::MaxMs
                | Metric::ReplicationLagS
                | Metric::PoolUsagePct
                | Metric::VisibilityP95Ms
        )
    }

    /// Whether the metric is about operations (and takes an `operation`).
    pub fn per_operation(self) -> bool {
        !matches!(
            self,
            Metric::RowsWrittenPerS
                | Metric::CacheHitRatioPct
                | Metric::ReplicationLagS
                | Metric::PoolUsagePct
                | Metric::RecallMean
                | Metric::VisibilityP95Ms
        )
    }
}

/// Which operations an objective covers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// Every operation.
    All,
    /// Every search (single, cross, filtered).
    Searches,
    /// Searches and retrieves.
    Reads,
    /// Inserts and bulk inserts.
    Writes,
    /// One operation.
    One(String),
}

impl Selector {
    /// The operations selected.
    pub fn ops(&self) -> Vec<Op> {
        match self {
            Selector::All => Op::ALL.to_vec(),
            Selector::Searches => Op::ALL.into_iter().filter(|op| op.is_search()).collect(),
            Selector::Reads => Op::ALL
                .into_iter()
                .filter(|op| op.is_search() || *op == Op::Retrieve)
                .collect(),
            Selector::Writes => vec![Op::Insert, Op::BulkInsert],
            Selector::One(name) => Op::ALL.into_iter().filter(|op| op.name() == name).collect(),
        }
    }

    fn parse(s: &str) -> Option<Selector> {
        Some(match s {
            "all" => Selector::All,
            "searches" => Selector::Searches,
            "reads" => Selector::Reads,
            "writes" => Selector::Writes,
            name if Op::ALL.iter().any(|op| op.name() == name) => Selector::One(name.into()),
            _ => return None,
        })
    }

    /// The label used in tables.
    pub fn label(&self) -> &str {
        match self {
            Selector::All => "all",
            Selector::Searches => "searches",
            Selector::Reads => "reads",
            Selector::Writes => "writes",
            Selector::One(name) => name,
        }
    }
}

/// One objective.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Objective {
    /// Shown in the verdict table.
    pub name: String,
    /// What is measured.
    pub metric: Metric,
    /// Over which operations.
    pub operations: Selector,
    /// PASS at or better than this.
    pub target: f64,
    /// WARN between target and this, FAIL beyond it (equal to target when not given).
    pub critical: f64,
    /// Whether a FAIL makes the run exit with the breach code.
    pub gate: bool,
}

/// A validated profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Where it came from (a built-in name or a path).
    pub source: String,
    /// What it is for.
    pub description: String,
    /// Users, unless `--users` is given.
    pub users: Option<usize>,
    /// Users started per second, unless `--hatch-rate`/`--increase-rate` is given.
    pub hatch_rate: Option<f64>,
    /// Duration, unless `--run-time` is given.
    pub run_time: Option<String>,
    /// Open model: operations per second, unless `--arrival-rate` is given.
    pub arrival_rate: Option<f64>,
    /// Open model: stages (`30s:100,60s:500`), unless `--arrival-stages` is given.
    pub arrival_stages: Option<String>,
    /// Closed model: think time (`100ms..500ms`), unless `--think-time` is given.
    pub think_time: Option<String>,
    /// Objectives.
    pub objectives: Vec<Objective>,
    /// `[compare]`: the limits of `compare` (empty when the table is absent).
    pub compare: regression::LimitSettings,
    /// `[[event]]`: maintenance events during the load.
    pub events: Vec<crate::events::EventSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    description: String,
    users: Option<usize>,
    hatch_rate: Option<f64>,
    run_time: Option<String>,
    arrival_rate: Option<f64>,
    arrival_stages: Option<String>,
    think_time: Option<String>,
    #[serde(default)]
    objective: Vec<RawObjective>,
    compare: Option<RawCompare>,
    #[serde(default)]
    event: Vec<RawEvent>,
}

/// `[[event]]`: a maintenance event during the load.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    at: String,
    action: String,
    /// vacuum, vacuum_analyze, analyze: a partition.
    target: Option<String>,
    /// create_index_concurrently.
    m: Option<u32>,
    ef_construction: Option<u32>,
    /// replica_stop, replica_start: 1-based.
    replica: Option<usize>,
    /// sql.
    statement: Option<String>,
}

impl RawEvent {
    fn parse(self) -> Result<crate::events::EventSpec, String> {
        let index = [
            self.m.map(|m| format!("m={m}")),
            self.ef_construction.map(|e| format!("ef_construction={e}")),
        ];
        let index: Vec<String> = index.into_iter().flatten().collect();
        let argument = self
            .target
            .or(self.statement)
            .or(self.replica.map(|r| r.to_string()))
            .or((!index.is_empty()).then(|| index.join(",")));
        Ok(crate::events::EventSpec {
            at: crate::events::parse_at(&self.at)?,
            action: crate::events::Action::parse(&self.action, argument.as_deref())?,
        })
    }
}

/// `[compare]`: `max_regression` and per-metric limits, each `"10%"` or `0.1`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompare {
    max_regression: Option<RawLimit>,
    p50: Option<RawLimit>,
    p95: Option<RawLimit>,
    p99: Option<RawLimit>,
    throughput: Option<RawLimit>,
    failure_rate: Option<RawLimit>,
    recall: Option<RawLimit>,
}

/// A limit as TOML gives it: a number (`0.1`) or a string (`"10%"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum RawLimit {
    Number(f64),
    Text(String),
}

impl RawLimit {
    fn parse(&self) -> Result<f64, String> {
        match self {
            RawLimit::Number(n) => regression::parse_share(&n.to_string()),
            RawLimit::Text(t) => regression::parse_share(t),
        }
    }
}

/// The `[compare]` table, checked.
fn compare_limits(raw: Option<RawCompare>) -> Result<regression::LimitSettings, String> {
    use regression::Measure;
    let Some(raw) = raw else {
        return Ok(Default::default());
    };
    let at = |field: &str, e: String| format!("[compare] field `{field}`: {e}");
    let relative = raw
        .max_regression
        .map(|l| l.parse().map_err(|e| at("max_regression", e)))
        .transpose()?;
    let mut per_metric = Vec::new();
    for (measure, limit) in [
        (Measure::P50, raw.p50),
        (Measure::P95, raw.p95),
        (Measure::P99, raw.p99),
        (Measure::Throughput, raw.throughput),
        (Measure::FailureRate, raw.failure_rate),
        (Measure::Recall, raw.recall),
    ] {
        if let Some(limit) = limit {
            per_metric.push((measure, limit.parse().map_err(|e| at(measure.key(), e))?));
        }
    }
    Ok(regression::LimitSettings {
        relative,
        per_metric,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObjective {
    name: Option<String>,
    metric: Metric,
    operation: Option<String>,
    target: f64,
    critical: Option<f64>,
    #[serde(default = "yes")]
    gate: bool,
}

fn yes() -> bool {
    true
}

/// A built-in profile by name.
pub fn built_in(name: &str) -> Result<Profile, ProfileError> {
    let text = BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
        .ok_or_else(|| ProfileError {
            file: name.into(),
            what: format!(
                "no such profile; built in: {}",
                BUILT_IN.map(|(n, _)| n).join(", ")
            ),
        })?;
    parse(&format!("scenarios/{name}.toml"), text)
}

/// A profile file.
pub fn from_file(path: &Path) -> Result<Profile, ProfileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
        file: file.clone(),
        what: format!("cannot read it: {e}"),
    })?;
    parse(&file, &text)
}

/// Parses and validates profile text; `file` names it in errors.
// Long (about 90 lines): one check per field of the profile, in the file's order.
pub fn parse(file: &str, text: &str) -> Result<Profile, ProfileError> {
    let err = |what: String| ProfileError {
        file: file.into(),
        what,
    };
    if text.trim().is_empty() {
        return Err(err("the file is empty".into()));
    }
    let raw: RawProfile = toml::from_str(text).map_err(|e| err(describe_toml_error(text, &e)))?;
    if raw.users == Some(0) {
        return Err(err("field `users`: must be at least 1".into()));
    }
    if let Some(rate) = raw.hatch_rate {
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(err(format!(
                "field `hatch_rate`: must be above 0, got {rate}"
            )));
        }
    }
    if let Some(t) = &raw.run_time {
        if humantime::parse_duration(t)
            .map(|d| d.is_zero())
            .unwrap_or(true)
        {
            return Err(err(format!(
                "field `run_time`: must be a positive duration such as 30s or 10m, got \"{t}\""
            )));
        }
    }
    check_pacing(&raw).map_err(err)?;
    let compare = compare_limits(raw.compare).map_err(err)?;
    let events = raw
        .event
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            e.parse()
                .map_err(|what| err(format!("event {}: {what}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut objectives = Vec::new();
    for (i, o) in raw.objective.into_iter().enumerate() {
        let at =
            |field: &str, what: String| err(format!("objective {} field `{field}`: {what}", i + 1));
        let operations = match (&o.operation, o.metric.per_operation()) {
            (None, _) => Selector::All,
            (Some(s), true) => Selector::parse(s).ok_or_else(|| {
                at(
                    "operation",
                    format!(
                        "unknown operation \"{s}\"; expected all, searches, reads, writes or one of {}",
                        Op::ALL.map(Op::name).join(", ")
                    ),
                )
            })?,
            (Some(_), false) => {
                return Err(at("operation", "this metric is not per operation".into()))
            }
        };
        if !o.target.is_finite() || o.target < 0.0 {
            return Err(at(
                "target",
                format!("must be a number ≥ 0, got {}", o.target),
            ));
        }
        let critical = o.critical.unwrap_or(o.target);
        let consistent = if o.metric.lower_is_better() {
            critical >= o.target
        } else {
            critical <= o.target
        };
        if !critical.is_finite() || !consistent {
            return Err(at(
                "critical",
                format!(
                    "{critical} is stricter than the target {} (for this metric {} is better)",
                    o.target,
                    if o.metric.lower_is_better() {
                        "lower"
                    } else {
                        "higher"
                    }
                ),
            ));
        }
        objectives.push(Objective {
            name: o
                .name
                .unwrap_or_else(|| format!("{:?} {}", o.metric, operations.label())),
            metric: o.metric,
            operations,
            target: o.target,
            critical,
            gate: o.gate,
        });
    }
    Ok(Profile {
        source: file.into(),
        description: raw.description,
        users: raw.users,
        hatch_rate: raw.hatch_rate,
        run_time: raw.run_time,
        arrival_rate: raw.arrival_rate,
        arrival_stages: raw.arrival_stages,
        think_time: raw.think_time,
        objectives,
        compare,
        events,
    })
}

/// The load model's fields, checked by the parsers the command line uses.
fn check_pacing(raw: &RawProfile) -> Result<(), String> {
    use crate::engine::arrivals::{parse_stages, parse_think_time};
    if let Some(rate) = raw.arrival_rate {
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(format!("field `arrival_rate`: must be above 0, got {rate}"));
        }
    }
    if let Some(stages) = &raw.arrival_stages {
        parse_stages(stages).map_err(|e| format!("field `arrival_stages`: {e}"))?;
    }
    if let Some(think) = &raw.think_time {
        parse_think_time(think).map_err(|e| format!("field `think_time`: {e}"))?;
    }
    Ok(())
}

/// One line from a TOML error: the field (the key on the offending line) and the problem.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else {
        return message;
    };
    let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    match line.split_once('=') {
        Some((key, _)) if !message.contains('`') => {
            format!("line {line_no}, field `{}`: {message}", key.trim())
        }
        _ => format!("line {line_no}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_profile_parses_with_the_spec_numbers() {
        let shapes = [
            ("baseline", 50, 5.0, "5m"),
            ("normal", 100, 10.0, "10m"),
            ("peak", 300, 30.0, "10m"),
            ("stress", 500, 50.0, "15m"),
            ("soak", 100, 10.0, "60m"),
        ];
        for (name, users, rate, time) in shapes {
            let p = built_in(name).unwrap();
            assert_eq!(p.users, Some(users), "{name}");
            assert_eq!(p.hatch_rate, Some(rate), "{name}");
            assert_eq!(p.run_time.as_deref(), Some(time), "{name}");
            assert!(p.objectives.len() >= 9, "{name}");
        }
        let peak = built_in("peak").unwrap();
        let expected = peak
            .objectives
            .iter()
            .find(|o| o.name == "expected: search p95")
            .unwrap();
        assert_eq!((expected.target, expected.critical), (25.0, 25.0));
        assert_eq!(expected.operations, Selector::Searches);
    }

    #[test]
    fn errors_name_the_file_the_field_and_the_problem() {
        let e = parse("p.toml", "users = \"many\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("profile p.toml: line 1, field `users`"),
            "{e}"
        );
        let e = parse("p.toml", "users = 3\nuserz = 4\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `userz`"), "{e}");
        let e = parse(
            "p.toml",
            "[[objective]]\nmetric = \"p95_ms\"\ntarget = 5\ncritical = 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("objective 1 field `critical`"), "{e}");
        let e = parse("p.toml", "[[objective]]\nmetric = \"p42_ms\"\ntarget = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("p42_ms"), "{e}");
        let e = parse("p.toml", "  \n").unwrap_err().to_string();
        assert_eq!(e, "profile p.toml: the file is empty");
        let e = parse("p.toml", "run_time = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("field `run_time`"), "{e}");
        assert!(built_in("nope")
            .unwrap_err()
            .to_string()
            .contains("baseline"));
    }

    #[test]
    fn a_compare_table_sets_the_limits_of_compare() {
        use regression::Measure;
        let p = parse(
            "p.toml",
            "[compare]\nmax_regression = \"10%\"\np95 = 0.05\nrecall = \"1%\"\n",
        )
        .unwrap();
        assert_eq!(p.compare.relative, Some(0.1));
        assert_eq!(
            p.compare.per_metric,
            [(Measure::P95, 0.05), (Measure::Recall, 0.01)]
        );
        assert_eq!(built_in("normal").unwrap().compare, Default::default());
        let e = parse("p.toml", "[compare]\np95 = \"5\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("profile p.toml: [compare] field `p95`"),
            "{e}"
        );
        let e = parse("p.toml", "[compare]\np42 = \"5%\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("p42"), "{e}");
    }
}
