//! Reading a summary: which kind it is (told by its content, not its name), parsed with the
//! type that wrote it, and reduced to what `compare` judges: the settings that must agree and
//! one row of metrics per operation, benchmark or capacity step.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::CompareError;
use crate::bench::report::{percent, BenchReport};
use crate::profile::regression::Measure;
use crate::report::summary::{OpSummary, Summary};

/// Which of the two files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The baseline.
    Base,
    /// The run judged.
    New,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Base => "BASE",
            Role::New => "NEW",
        })
    }
}

/// What wrote the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The load test's `load_test_summary.json`.
    Load,
    /// The benchmark suite's `benchmark_results.json`.
    Bench,
    /// `capacity`'s `capacity.json`.
    Capacity,
}

impl Kind {
    /// Tells the kind from the top-level fields only each kind has.
    pub fn detect(value: &Value) -> Option<Kind> {
        let o = value.as_object()?;
        let has = |keys: &[&str]| keys.iter().all(|k| o.contains_key(*k));
        if has(&["operations", "aggregated"]) {
            Some(Kind::Load)
        } else if has(&["results", "settings"]) {
            Some(Kind::Bench)
        } else if has(&["steps", "sweep"]) {
            Some(Kind::Capacity)
        } else {
            None
        }
    }

    /// What the rows of its table are.
    pub fn rows(self) -> &'static str {
        match self {
            Kind::Load => "operations",
            Kind::Bench => "benchmarks",
            Kind::Capacity => "capacity steps",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Load => "load test summary (load_test_summary.json)",
            Kind::Bench => "benchmark suite report (benchmark_results.json)",
            Kind::Capacity => "capacity search (capacity.json)",
        })
    }
}

/// One operation's (benchmark's, step's) metrics, in [`Measure::ALL`]'s order.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What it is, as both files name it: the comparison pairs rows by it.
    pub key: String,
    /// Each metric, when the summary has it.
    pub values: [Option<f64>; 6],
    /// Whether it can serve as a baseline: false for a capacity step that missed an
    /// objective (past the knee, its figures are those of an overloaded server).
    pub held: bool,
}

impl Row {
    /// The value of `m`.
    pub fn get(&self, m: Measure) -> Option<f64> {
        self.values[m as usize]
    }
}

/// A summary as `compare` sees it.
#[derive(Debug, Clone)]
pub struct Run {
    /// The file.
    pub path: PathBuf,
    /// What wrote it.
    pub kind: Kind,
    /// Settings both runs must share, as (name, value); an empty value was not recorded.
    pub settings: Vec<(String, String)>,
    /// Facts shown when they differ but never refused (versions).
    pub notes: Vec<(String, String)>,
    /// Why its figures may mislead (an interrupted run).
    pub warnings: Vec<String>,
    /// Its rows, in the file's order.
    pub rows: Vec<Row>,
}

/// Reads and reduces the summary at `path`.
pub fn read(path: &Path, role: Role) -> Result<Run, CompareError> {
    let file = || path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CompareError::Read {
        role,
        file: file(),
        source,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|source| CompareError::NotJson {
        role,
        file: file(),
        source,
    })?;
    let kind =
        Kind::detect(&value).ok_or_else(|| CompareError::UnknownKind { role, file: file() })?;
    let shape = |source| CompareError::Shape {
        role,
        file: file(),
        kind,
        source,
    };
    let mut run = match kind {
        Kind::Load => load(&serde_json::from_value(value).map_err(shape)?),
        Kind::Bench => bench(&serde_json::from_value(value).map_err(shape)?),
        Kind::Capacity => super::capacity::reduce(serde_json::from_value(value).map_err(shape)?),
    };
    run.path = path.to_path_buf();
    Ok(run)
}

/// A run of `kind` with no path yet (the caller sets it).
pub(super) fn run_of(kind: Kind) -> Run {
    Run {
        path: PathBuf::new(),
        kind,
        settings: Vec::new(),
        notes: Vec::new(),
        warnings: Vec::new(),
        rows: Vec::new(),
    }
}

/// `(name, value)` pairs from literals.
pub(super) fn pairs<const N: usize>(items: [(&str, String); N]) -> Vec<(String, String)> {
    items.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A load test: one row per operation and the aggregate (which carries the recall sampled
/// under load, a figure of the run rather than of one operation).
fn load(s: &Summary) -> Run {
    let mut run = run_of(Kind::Load);
    let model = if s.schedule.is_some() {
        "open (arrival rate)"
    } else {
        "closed (users)"
    };
    run.settings = pairs([
        ("layout", s.layout.clone()),
        ("dataset", s.dataset.clone()),
        ("index", s.index.clone()),
        ("users", s.max_users.to_string()),
        ("load model", model.to_string()),
    ]);
    run.notes = pairs([
        ("pgvector-loadtest", s.version.clone()),
        ("Goose", s.versions.goose.clone()),
        ("PostgreSQL", s.versions.postgres.clone()),
        ("pgvector", s.versions.pgvector.clone()),
    ]);
    if s.interrupted {
        run.warnings
            .push("was interrupted: its figures cover part of the planned run".into());
    }
    let row = |o: &OpSummary, recall: Option<f64>| Row {
        key: o.name.clone(),
        values: [
            Some(o.latency_us.p50 as f64 / 1000.0),
            Some(o.latency_us.p95 as f64 / 1000.0),
            Some(o.latency_us.p99 as f64 / 1000.0),
            Some(o.throughput_per_s),
            share(o.failed, o.count),
            recall,
        ],
        held: true,
    };
    run.rows = s.operations.iter().map(|o| row(o, None)).collect();
    run.rows.push(row(&s.aggregated, s.server.recall_mean));
    run
}

/// Failed attempts as a share of all (none when nothing ran).
pub(super) fn share(failed: u64, count: u64) -> Option<f64> {
    (count > 0).then(|| failed as f64 / count as f64)
}

/// The benchmark suite: one row per result, keyed by the benchmark and, for searches, the
/// settings a sweep varies (ef_search or probes, iterative scan, filter selectivity).
fn bench(r: &BenchReport) -> Run {
    let mut run = run_of(Kind::Bench);
    let s = &r.settings;
    let hnsw = s.index.is_empty() || s.index == "hnsw";
    run.settings = pairs([
        ("layout", s.layout.clone()),
        ("dataset", s.dataset.clone()),
        ("namespaces", s.namespaces.to_string()),
        ("rows", s.total_rows.to_string()),
        ("dim", s.dim.to_string()),
        ("vector type", s.vector_type.clone()),
        ("distance", s.distance.clone()),
        ("index", s.index.clone()),
        ("m", if hnsw { s.m.to_string() } else { String::new() }),
        (
            "ef_construction",
            if hnsw {
                s.ef_construction.to_string()
            } else {
                String::new()
            },
        ),
        ("lists", s.lists.map(|l| l.to_string()).unwrap_or_default()),
    ]);
    run.notes = pairs([
        ("PostgreSQL", s.server_version.clone()),
        ("pgvector", s.pgvector_version.clone()),
    ]);
    run.rows = r
        .results
        .iter()
        .map(|b| {
            // A search's index settings; bulk inserts have none.
            let mut key = match b.k {
                Some(_) => format!("{} {} scan={}", b.operation, b.breadth(), b.iterative_scan),
                None => b.operation.clone(),
            };
            if let Some(sel) = b.filter_selectivity {
                key.push_str(&format!(" filter={}", percent(sel)));
            }
            Row {
                key,
                values: [
                    Some(b.p50_ms),
                    Some(b.p95_ms),
                    Some(b.p99_ms),
                    Some(b.qps),
                    share(b.failures, b.iterations),
                    b.recall_mean,
                ],
                held: true,
            }
        })
        .collect();
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_comes_from_the_content() {
        let kind = |text: &str| Kind::detect(&serde_json::from_str(text).unwrap());
        assert_eq!(
            kind(r#"{"operations": [], "aggregated": {}}"#),
            Some(Kind::Load)
        );
        assert_eq!(
            kind(r#"{"results": [], "settings": {}}"#),
            Some(Kind::Bench)
        );
        assert_eq!(
            kind(r#"{"steps": [], "sweep": "rate"}"#),
            Some(Kind::Capacity)
        );
        assert_eq!(kind(r#"{"results": []}"#), None);
        assert_eq!(kind("[1, 2]"), None);
    }
}
