//! `worker.json`: what a generator measured besides its histograms (which are in its
//! `histograms.hlog` and `history.hlog`): counters, failures by class, the once-a-second
//! counts, the server figures, the open model's schedule and its own overhead. With the
//! interval logs it is everything `merge` needs to write the reports of the whole run.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Worker;
use crate::db::versions::Versions;
use crate::engine::arrivals::ScheduleReport;
use crate::engine::overhead::Overhead;
use crate::engine::stats::OpStats;
use crate::load::LoadResult;
use crate::report::summary::RunInfo;
use crate::report::verdict::ServerFigures;
use crate::workload::ops::Op;

/// The file in a generator's report directory.
pub const RECORD_FILE: &str = "worker.json";
/// Its format; `merge` refuses others.
pub const FORMAT: u32 = 1;

/// One generator's counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// [`FORMAT`].
    pub format: u32,
    /// The run id all generators share.
    pub run_id: String,
    /// This generator's index.
    pub worker: usize,
    /// How many generators.
    pub workers: usize,
    /// RFC 3339 start of the load phase.
    pub started_at: String,
    /// Its wall-clock length, seconds.
    pub elapsed_s: f64,
    /// `host:port/dbname`.
    pub target: String,
    /// Table layout.
    pub layout: String,
    /// Dataset.
    pub dataset: String,
    /// Index settings.
    pub index: String,
    /// Most users at once.
    pub max_users: usize,
    /// Stopped by a signal.
    pub interrupted: bool,
    /// Goose, PostgreSQL, pgvector.
    pub versions: Versions,
    /// The profile that judged it (a built-in name or a path).
    pub profile: Option<String>,
    /// Per operation that ran.
    pub operations: Vec<OpCounters>,
    /// Each second's counts.
    pub history: Vec<Second>,
    /// Server figures.
    pub server: ServerFigures,
    /// The open model's arrivals.
    pub schedule: Option<ScheduleReport>,
    /// This generator's own CPU.
    pub overhead: Overhead,
    /// (seconds since the history's start, busiest pool's peak %).
    pub pool_usage_pct: Vec<(f64, f64)>,
    /// (seconds since the history's start, operation, recall@k).
    pub recall: Vec<(f64, String, f64)>,
    /// The maintenance events it ran (generator 0 runs them for the whole test).
    #[serde(default)]
    pub events: Vec<crate::events::run::EventRecord>,
    /// Its visibility probes (generator 0's).
    #[serde(default)]
    pub probes: Vec<crate::events::visibility::Probe>,
    /// Its acknowledged writes, checked after the run.
    #[serde(default)]
    pub writes: Option<crate::engine::ledger::WriteCheck>,
    /// Its outages.
    #[serde(default)]
    pub outages: Vec<crate::engine::ledger::Outage>,
    /// (seconds since the history's start, largest replica lag).
    #[serde(default)]
    pub replication_lag_s: Vec<(f64, f64)>,
}

/// One operation's counters (its histograms are in `histograms.hlog`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpCounters {
    /// Operation name.
    pub operation: String,
    /// Its counters and failures by class (histograms left out).
    #[serde(flatten)]
    pub stats: OpStats,
}

/// One second of the history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Second {
    /// Seconds from the history's start to this interval's start (`history.hlog`'s
    /// timestamps).
    pub start_s: f64,
    /// The interval's length, seconds.
    pub interval_s: f64,
    /// Unix time of the sample.
    pub unix_time: u64,
    /// Users running.
    pub users: usize,
    /// Per operation that has run so far: [attempts, failures, bytes] in the interval.
    pub operations: BTreeMap<String, [u64; 3]>,
}

impl WorkerRecord {
    /// The record of `result`, a run of `worker` described by `info`.
    pub fn new(
        worker: &Worker,
        info: &RunInfo,
        result: &LoadResult,
        profile: Option<String>,
    ) -> WorkerRecord {
        let operations = Op::ALL
            .iter()
            .filter(|op| result.snapshot.op(**op).count() > 0)
            .map(|op| OpCounters {
                operation: op.name().to_string(),
                stats: result.snapshot.op(*op).clone(),
            })
            .collect();
        let mut start = 0.0;
        let history = result
            .history
            .iter()
            .map(|s| {
                let second = Second {
                    start_s: start,
                    interval_s: s.interval.as_secs_f64(),
                    unix_time: s.unix_time,
                    users: s.users,
                    operations: s
                        .rows
                        .iter()
                        .filter_map(|(op, r)| {
                            Some((
                                op.as_ref()?.name().to_string(),
                                [r.count, r.failed, r.bytes],
                            ))
                        })
                        .collect(),
                };
                start += s.interval.as_secs_f64();
                second
            })
            .collect();
        WorkerRecord {
            format: FORMAT,
            run_id: worker.run_id.clone(),
            worker: worker.index,
            workers: worker.count,
            started_at: info.started_at.to_rfc3339(),
            elapsed_s: info.elapsed.as_secs_f64(),
            target: info.target.clone(),
            layout: info.layout.clone(),
            dataset: info.dataset.clone(),
            index: info.index.clone(),
            max_users: info.max_users,
            interrupted: info.interrupted,
            versions: info.versions.clone(),
            profile,
            operations,
            history,
            server: result.server.clone(),
            schedule: result.schedule.clone(),
            overhead: result.overhead.clone(),
            pool_usage_pct: result.timeline.pool_usage_pct.clone(),
            recall: result
                .timeline
                .recall
                .iter()
                .map(|(t, op, r)| (*t, op.name().to_string(), *r))
                .collect(),
            events: result.events.clone(),
            probes: result.probes.clone(),
            writes: result.writes.clone(),
            outages: result.outages.clone(),
            replication_lag_s: result.timeline.replication_lag_s.clone(),
        }
    }

    /// Writes `worker.json` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        crate::report::write_json(&dir.join(RECORD_FILE), self)
    }
}
