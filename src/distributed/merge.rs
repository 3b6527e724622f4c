//! `merge DIR...`: the reports of one run from its generators' report directories. Histograms
//! are added (never percentiles averaged): the merged p99 is the p99 of one histogram holding
//! every generator's samples. Counters are summed; the history is aligned by second since the
//! common start; server figures, polled by every generator from the same database, are taken
//! once (the largest lag, the busiest pool).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hdrhistogram::Histogram;

use super::record::{WorkerRecord, FORMAT, RECORD_FILE};
use crate::config::Reports;
use crate::engine::arrivals::ScheduleReport;
use crate::engine::overhead::Overhead;
use crate::engine::stats::hlog::{self, Interval, KINDS};
use crate::engine::stats::{histogram, Counts, HistoryRow, HistorySample, Snapshot, Timeline};
use crate::load::reports::{HISTOGRAMS_FILE, HISTORY_FILE};
use crate::load::LoadResult;
use crate::report::summary::{Generators, RunInfo};
use crate::report::verdict::ServerFigures;
use crate::workload::ops::Op;
use crate::Exit;

/// Why the directories could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A file is missing or unreadable.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is not what a generator writes.
    #[error("{file}: {what}")]
    Bad {
        /// The file.
        file: String,
        /// What is wrong.
        what: String,
    },
    /// The directories are not the generators of one run.
    #[error("{0}")]
    Mismatch(String),
    /// The merged reports could not be written.
    #[error("writing the merged reports to {dir}: {source}")]
    Write {
        /// The report directory.
        dir: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl MergeError {
    /// Bad input is a usage error (2); a failed write, a failure (1).
    pub fn exit(&self) -> Exit {
        match self {
            MergeError::Write { .. } => Exit::Failed,
            _ => Exit::Usage,
        }
    }
}

/// One generator's directory, read.
struct Part {
    record: WorkerRecord,
    /// Whole-run histograms by tag.
    run: HashMap<String, Histogram<u64>>,
    /// Per-second response times.
    seconds: Vec<Interval>,
}

/// Merges `dirs` into the reports of one run in `reports.dir`; returns the exit code a single
/// run with those figures would have.
pub fn run(dirs: &[PathBuf], reports: &Reports) -> Result<Exit, MergeError> {
    let mut parts = dirs
        .iter()
        .map(|d| read(d))
        .collect::<Result<Vec<_>, _>>()?;
    parts.sort_by_key(|p| p.record.worker);
    check(&parts, dirs)?;
    let (info, result) = combine(&parts)?;
    let reports = judged_by_the_workers_profile(reports, &parts[0].record);
    eprintln!(
        "merging {} generators of run {}: {} operations",
        parts.len(),
        parts[0].record.run_id,
        result.snapshot.aggregated().count()
    );
    let (verdicts, gate) =
        crate::load::reports::write(&reports, &info, &result).map_err(|source| {
            MergeError::Write {
                dir: reports.dir.clone(),
                source,
            }
        })?;
    Ok(crate::load::reports::exit(
        &reports, &result, &verdicts, &gate,
    ))
}

/// The profile given to `merge`, else the one the generators were judged by, when it can be
/// found here (a built-in name, or a path that exists).
fn judged_by_the_workers_profile(reports: &Reports, record: &WorkerRecord) -> Reports {
    let mut reports = reports.clone();
    if reports.profile.is_some() {
        return reports;
    }
    if let Some(source) = &record.profile {
        let found = crate::profile::built_in(source)
            .or_else(|_| crate::profile::from_file(Path::new(source)));
        match found {
            Ok(p) => reports.profile = Some(p),
            Err(e) => eprintln!(
                "warning: the generators were judged by {source}, which is not readable here \
                 ({e}): give --profile-file to judge the merged run"
            ),
        }
    }
    reports
}

fn read_file(path: &Path) -> Result<Vec<u8>, MergeError> {
    std::fs::read(path).map_err(|source| MergeError::Read {
        file: path.display().to_string(),
        source,
    })
}

/// Reads `worker.json` and the two interval logs of one directory.
fn read(dir: &Path) -> Result<Part, MergeError> {
    let path = dir.join(RECORD_FILE);
    let bad = |path: &Path, what: String| MergeError::Bad {
        file: path.display().to_string(),
        what,
    };
    let record: WorkerRecord = serde_json::from_slice(&read_file(&path)?).map_err(|e| {
        bad(
            &path,
            format!("not a generator's record ({e}); was it run with --worker?"),
        )
    })?;
    if record.format != FORMAT {
        return Err(bad(
            &path,
            format!("format {}, this merge reads {FORMAT}", record.format),
        ));
    }
    let path = dir.join(HISTOGRAMS_FILE);
    let run = hlog::read(&read_file(&path)?)
        .map_err(|e| bad(&path, e))?
        .into_iter()
        .map(|i| (i.tag, i.histogram))
        .collect();
    let path = dir.join(HISTORY_FILE);
    let seconds = hlog::read(&read_file(&path)?).map_err(|e| bad(&path, e))?;
    Ok(Part {
        record,
        run,
        seconds,
    })
}

/// The directories are generators 0..N of one run, each once, on the same data and index.
fn check(parts: &[Part], dirs: &[PathBuf]) -> Result<(), MergeError> {
    let first = &parts[0].record;
    let mismatch = |what: String| Err(MergeError::Mismatch(what));
    for p in parts {
        let r = &p.record;
        if r.run_id != first.run_id {
            return mismatch(format!(
                "generators of different runs: {} and {} (merge the directories of one --run-id)",
                first.run_id, r.run_id
            ));
        }
        if r.workers != first.workers {
            return mismatch(format!(
                "generators of run {} disagree on their number: {} and {}",
                r.run_id, first.workers, r.workers
            ));
        }
        for (what, a, b) in [
            ("dataset", &first.dataset, &r.dataset),
            ("index", &first.index, &r.index),
            ("layout", &first.layout, &r.layout),
            ("target", &first.target, &r.target),
        ] {
            if a != b {
                return mismatch(format!("generators with different {what}: '{a}' and '{b}'"));
            }
        }
    }
    let indexes: Vec<usize> = parts.iter().map(|p| p.record.worker).collect();
    let expected: Vec<usize> = (0..first.workers).collect();
    if indexes != expected {
        let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return mismatch(format!(
            "run {} has {} generators; these {} directories ({}) hold generators {:?}: give \
             each generator's directory once",
            first.run_id,
            first.workers,
            dirs.len(),
            names.join(", "),
            indexes
        ));
    }
    Ok(())
}

/// The run as one: the summed statistics, the aligned history, the combined figures.
fn combine(parts: &[Part]) -> Result<(RunInfo, LoadResult), MergeError> {
    let mut snapshot = Snapshot::default();
    for p in parts {
        snapshot_add(&mut snapshot, p)?;
    }
    let starts: Vec<chrono::DateTime<chrono::Utc>> = parts
        .iter()
        .map(|p| {
            chrono::DateTime::parse_from_rfc3339(&p.record.started_at)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| MergeError::Bad {
                    file: RECORD_FILE.into(),
                    what: format!("started_at '{}': {e}", p.record.started_at),
                })
        })
        .collect::<Result<_, _>>()?;
    let started_at = *starts.iter().min().expect("at least one generator");
    // From the first start to the last end.
    let end = parts
        .iter()
        .zip(&starts)
        .map(|(p, s)| (*s - started_at).as_seconds_f64() + p.record.elapsed_s)
        .fold(0.0, f64::max);
    let elapsed = Duration::from_secs_f64(end.max(1e-3));
    let first = &parts[0].record;
    let records: Vec<&WorkerRecord> = parts.iter().map(|p| &p.record).collect();
    let info = RunInfo {
        started_at,
        elapsed,
        target: first.target.clone(),
        layout: first.layout.clone(),
        dataset: first.dataset.clone(),
        index: first.index.clone(),
        max_users: records.iter().map(|r| r.max_users).sum(),
        versions: first.versions.clone(),
        generators: Some(Generators {
            run_id: first.run_id.clone(),
            count: first.workers,
            index: None,
        }),
        interrupted: records.iter().any(|r| r.interrupted),
    };
    let timeline = timeline(&records);
    let result = LoadResult {
        history: history(parts)?,
        server: server(&records, &timeline),
        overhead: overhead(&records, snapshot.aggregated().count()),
        schedule: schedule(&records),
        snapshot,
        timeline,
        elapsed,
        max_users: info.max_users,
        thresholds_failed: None,
        interrupted: info.interrupted,
        // Generator 0 ran the events and the visibility probe for the whole test.
        events: records.iter().flat_map(|r| r.events.clone()).collect(),
        probes: records.iter().flat_map(|r| r.probes.clone()).collect(),
        writes: records
            .iter()
            .filter_map(|r| r.writes.as_ref())
            .fold(None, |all, w| {
                let mut all = all.unwrap_or(crate::engine::ledger::WriteCheck {
                    checked: true,
                    ..Default::default()
                });
                all.add(w);
                Some(all)
            }),
        outages: records.iter().flat_map(|r| r.outages.clone()).collect(),
    };
    Ok((info, result))
}

/// Adds one generator's counters and whole-run histograms.
fn snapshot_add(snapshot: &mut Snapshot, part: &Part) -> Result<(), MergeError> {
    for counters in &part.record.operations {
        let op = Op::from_name(&counters.operation).ok_or_else(|| MergeError::Bad {
            file: RECORD_FILE.into(),
            what: format!("unknown operation '{}'", counters.operation),
        })?;
        let mut stats = counters.stats.clone();
        for (kind, h) in
            KINDS
                .iter()
                .zip([&mut stats.latency, &mut stats.service, &mut stats.pool_wait])
        {
            let tag = format!("{}:{kind}", op.name());
            let found = part.run.get(&tag).ok_or_else(|| MergeError::Bad {
                file: HISTOGRAMS_FILE.into(),
                what: format!(
                    "generator {} has no interval tagged {tag}",
                    part.record.worker
                ),
            })?;
            h.add(found).map_err(|e| MergeError::Bad {
                file: HISTOGRAMS_FILE.into(),
                what: format!("{tag}: {e:?}"),
            })?;
        }
        snapshot.ops[op.index()].merge(&stats);
    }
    Ok(())
}

/// The once-a-second history of all generators: the i-th second of each (they started
/// together) adds up; its percentiles come from the sum of their interval histograms.
fn history(parts: &[Part]) -> Result<Vec<HistorySample>, MergeError> {
    let seconds = parts
        .iter()
        .map(|p| p.record.history.len())
        .max()
        .unwrap_or(0);
    let mut totals: BTreeMap<Option<Op>, (Histogram<u64>, Counts)> = BTreeMap::new();
    let mut samples = Vec::with_capacity(seconds);
    for i in 0..seconds {
        let mut users = 0;
        let mut unix_time = u64::MAX;
        let mut interval = Duration::ZERO;
        let mut now: BTreeMap<Option<Op>, (Histogram<u64>, Counts)> = BTreeMap::new();
        for part in parts {
            let Some(second) = part.record.history.get(i) else {
                continue;
            };
            users += second.users;
            unix_time = unix_time.min(second.unix_time);
            interval = interval.max(Duration::from_secs_f64(second.interval_s));
            for (name, [count, failed, bytes]) in &second.operations {
                let Some(op) = Op::from_name(name) else {
                    continue;
                };
                let counts = Counts {
                    count: *count,
                    failed: *failed,
                    bytes: *bytes,
                };
                let found = part
                    .seconds
                    .iter()
                    .find(|s| &s.tag == name && (s.start_s - second.start_s).abs() < 0.002);
                for key in [Some(op), None] {
                    let (h, c) = now
                        .entry(key)
                        .or_insert_with(|| (histogram(), Counts::default()));
                    c.add(counts);
                    if let Some(found) = found {
                        h.add(&found.histogram).map_err(|e| MergeError::Bad {
                            file: HISTORY_FILE.into(),
                            what: format!("{name}: {e:?}"),
                        })?;
                    }
                }
            }
        }
        let mut rows = Vec::new();
        let mut encoded = Vec::new();
        for (key, (h, counts)) in &now {
            let (total_h, total) = totals
                .entry(*key)
                .or_insert_with(|| (histogram(), Counts::default()));
            let _ = total_h.add(h);
            total.add(*counts);
            rows.push((*key, HistoryRow::new(h, *counts, total_h, *total)));
            if let (Some(op), false) = (key, h.is_empty()) {
                encoded.extend(hlog::encode(h).map(|bytes| (*op, bytes)));
            }
        }
        // Operations first (in Op::ALL order), the aggregate last, as a run's samples are.
        rows.sort_by_key(|(key, _)| key.map_or(usize::MAX, |op| op.index()));
        samples.push(HistorySample {
            unix_time: if unix_time == u64::MAX { 0 } else { unix_time },
            users,
            interval,
            rows,
            encoded,
        });
    }
    Ok(samples)
}

/// The busiest pool each second (the largest of the generators'), and every recall sample.
fn timeline(records: &[&WorkerRecord]) -> Timeline {
    let seconds = records
        .iter()
        .map(|r| r.pool_usage_pct.len())
        .max()
        .unwrap_or(0);
    let pool_usage_pct = (0..seconds)
        .filter_map(|i| {
            let at: Vec<(f64, f64)> = records
                .iter()
                .filter_map(|r| r.pool_usage_pct.get(i).copied())
                .collect();
            let t = at.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
            let peak = at.iter().map(|p| p.1).fold(0.0, f64::max);
            t.is_finite().then_some((t, peak))
        })
        .collect();
    let mut recall: Vec<(f64, Op, f64)> = records
        .iter()
        .flat_map(|r| r.recall.iter())
        .filter_map(|(t, name, v)| Some((*t, Op::from_name(name)?, *v)))
        .collect();
    recall.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Every generator polled the same primary: generator 0's view.
    let replication_lag_s = records[0].replication_lag_s.clone();
    Timeline {
        replication_lag_s,
        pool_usage_pct,
        recall,
    }
}

/// Server figures: every generator polled the same database, so they are not added: the
/// first generator's cache hit ratio, the largest lag and pool usage, recall over every
/// sample.
fn server(records: &[&WorkerRecord], timeline: &Timeline) -> ServerFigures {
    let max = |f: fn(&ServerFigures) -> Option<f64>| {
        records.iter().filter_map(|r| f(&r.server)).reduce(f64::max)
    };
    let samples = &timeline.recall;
    ServerFigures {
        cache_hit_ratio_pct: records[0].server.cache_hit_ratio_pct,
        replication_lag_s: max(|s| s.replication_lag_s),
        pool_usage_pct: max(|s| s.pool_usage_pct),
        recall_mean: (!samples.is_empty())
            .then(|| samples.iter().map(|s| s.2).sum::<f64>() / samples.len() as f64),
        // Each generator probed the same replicas: the worst of theirs.
        visibility_p95_ms: max(|s| s.visibility_p95_ms),
    }
}

/// The generators' CPU together, per operation of all of them.
fn overhead(records: &[&WorkerRecord], operations: u64) -> Overhead {
    let cpu_s: f64 = records.iter().map(|r| r.overhead.cpu_s).sum();
    Overhead {
        cpu_s,
        cpu_pct_of_one_core: records.iter().map(|r| r.overhead.cpu_pct_of_one_core).sum(),
        cores: records.iter().map(|r| r.overhead.cores).sum(),
        cpu_us_per_op: cpu_s * 1e6 / operations.max(1) as f64,
        schedule: None,
    }
}

/// The open model's arrivals of all generators (each had 1/N of the rate).
fn schedule(records: &[&WorkerRecord]) -> Option<ScheduleReport> {
    let reports: Vec<&ScheduleReport> =
        records.iter().filter_map(|r| r.schedule.as_ref()).collect();
    let mut merged = (*reports.first()?).clone();
    for r in &reports[1..] {
        merged.add(r);
    }
    Some(merged)
}
