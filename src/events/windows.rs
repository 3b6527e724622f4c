//! Each event's figures in windows: before it (from the end of the previous event, or the
//! start), during it, and after it until latency is back — the p95 of all operations over
//! three seconds within 10 % of the before window's — or the run ends. Windows are built from
//! the once-a-second history (whole seconds: a second belongs to the window holding its
//! middle), so their percentiles come from the seconds' own histograms, added.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::run::EventRecord;
use super::visibility::{delays, ms, Probe};
use crate::engine::ledger::Outage;
use crate::engine::stats::{histogram, HistorySample, Timeline};
use crate::workload::ops::Op;

/// Back to normal: p95 within this factor of the before window's.
const RECOVERED: f64 = 1.10;
/// Seconds the recovered p95 is taken over.
const RECOVERY_SPAN: usize = 3;

/// One operation (or all) in one window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WindowOp {
    /// Attempts.
    pub count: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Attempts per second of the window.
    pub throughput_per_s: f64,
    /// Response time percentiles, ms.
    pub p50_ms: f64,
    /// 95th.
    pub p95_ms: f64,
    /// 99th.
    pub p99_ms: f64,
}

/// A stretch of the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Window {
    /// Start, seconds from the start of the load.
    pub from_s: f64,
    /// End.
    pub to_s: f64,
    /// Per operation that ran in it.
    pub operations: BTreeMap<String, WindowOp>,
    /// All operations.
    pub all: WindowOp,
    /// Mean recall@k of the searches sampled in it.
    pub recall_mean: Option<f64>,
    /// How many were sampled.
    pub recall_samples: usize,
    /// p95 of the visibility delays of rows written in it, the slowest replica's, ms.
    pub visibility_p95_ms: Option<f64>,
    /// The largest replica replay lag polled in it, seconds.
    #[serde(default)]
    pub replication_lag_max_s: Option<f64>,
}

/// An event and its three windows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventReport {
    /// What it did and when.
    #[serde(flatten)]
    pub record: EventRecord,
    /// Before, during, after (absent for an event that did not start).
    pub windows: Option<Windows>,
    /// The stretches of failed writes or reads that began from a second before it to a minute
    /// after its end: its outage, first and last failure by class, and when writes and reads
    /// succeeded again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outages: Vec<Outage>,
}

/// Before, during, after.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Windows {
    /// From the previous event's end (or the start) to this one's start.
    pub before: Window,
    /// While it ran.
    pub during: Window,
    /// From its end until latency recovered, or the run ended.
    pub after: Window,
}

/// The history's seconds: (start, end) since the start of the load.
fn spans(history: &[HistorySample]) -> Vec<(f64, f64)> {
    let mut t = 0.0;
    history
        .iter()
        .map(|s| {
            let start = t;
            t += s.interval.as_secs_f64();
            (start, t)
        })
        .collect()
}

/// What the run measured, for windows.
pub struct Measured<'a> {
    /// The once-a-second history.
    pub history: &'a [HistorySample],
    /// Recall samples over time.
    pub timeline: &'a Timeline,
    /// Visibility probes.
    pub probes: &'a [Probe],
    /// Stretches of failed writes or reads.
    pub outages: &'a [Outage],
}

impl Measured<'_> {
    /// The seconds whose middle lies in [from, to); at least the one holding `from`.
    fn seconds(&self, from: f64, to: f64) -> Vec<usize> {
        let spans = spans(self.history);
        let inside: Vec<usize> = (0..spans.len())
            .filter(|&i| {
                let mid = (spans[i].0 + spans[i].1) / 2.0;
                mid >= from && mid < to
            })
            .collect();
        if !inside.is_empty() {
            return inside;
        }
        spans
            .iter()
            .position(|(a, b)| from >= *a && from < *b)
            .into_iter()
            .collect()
    }

    /// Each operation's (histogram, attempts, failures) over `seconds`.
    fn add_up(&self, seconds: &[usize]) -> BTreeMap<Op, (Histogram<u64>, u64, u64)> {
        let mut ops: BTreeMap<Op, (Histogram<u64>, u64, u64)> = BTreeMap::new();
        for &i in seconds {
            let sample = &self.history[i];
            for (op, row) in sample
                .rows
                .iter()
                .filter_map(|(o, r)| Some((o.as_ref()?, r)))
            {
                let entry = ops.entry(*op).or_insert_with(|| (histogram(), 0, 0));
                entry.1 += row.count;
                entry.2 += row.failed;
            }
            for (op, bytes) in &sample.encoded {
                if let (Some(entry), Some(h)) = (ops.get_mut(op), decode(bytes)) {
                    let _ = entry.0.add(&h);
                }
            }
        }
        ops
    }

    /// The window [from, to).
    pub fn window(&self, from: f64, to: f64) -> Window {
        let seconds = self.seconds(from, to);
        let length: f64 = {
            let spans = spans(self.history);
            seconds
                .iter()
                .map(|&i| spans[i].1 - spans[i].0)
                .sum::<f64>()
                .max(1e-3)
        };
        let ops = self.add_up(&seconds);
        let mut all = (histogram(), 0, 0);
        let mut operations = BTreeMap::new();
        for (op, (h, count, failed)) in &ops {
            let _ = all.0.add(h);
            all.1 += count;
            all.2 += failed;
            operations.insert(op.name().to_string(), figures(h, *count, *failed, length));
        }
        let recall: Vec<f64> = self
            .timeline
            .recall
            .iter()
            .filter(|(t, _, _)| *t >= from && *t < to)
            .map(|(_, _, r)| *r)
            .collect();
        let written: Vec<&Probe> = self
            .probes
            .iter()
            .filter(|p| p.written_s >= from && p.written_s < to)
            .collect();
        let visibility_p95_ms = written
            .iter()
            .map(|p| p.replica.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|replica| {
                let mine = written.iter().filter(|p| p.replica == replica);
                ms(&delays(mine.filter_map(|p| p.visible_ms.as_ref())), 95.0)
            })
            .reduce(f64::max);
        Window {
            from_s: from,
            to_s: to,
            operations,
            all: figures(&all.0, all.1, all.2, length),
            recall_mean: (!recall.is_empty())
                .then(|| recall.iter().sum::<f64>() / recall.len() as f64),
            recall_samples: recall.len(),
            visibility_p95_ms,
            replication_lag_max_s: self
                .timeline
                .replication_lag_s
                .iter()
                .filter(|(t, _)| *t >= from && *t < to)
                .map(|(_, lag)| *lag)
                .reduce(f64::max),
        }
    }

    /// The end of the first [`RECOVERY_SPAN`] seconds from `from` whose p95 is within
    /// [`RECOVERED`] of `baseline_ms`, or the end of the run.
    fn recovered(&self, from: f64, baseline_ms: f64) -> f64 {
        let spans = spans(self.history);
        let end = spans.last().map_or(from, |s| s.1);
        if baseline_ms <= 0.0 {
            return end;
        }
        let first = spans.iter().position(|s| (s.0 + s.1) / 2.0 >= from);
        let Some(first) = first else {
            return end;
        };
        for i in first..spans.len().saturating_sub(RECOVERY_SPAN - 1) {
            let seconds: Vec<usize> = (i..i + RECOVERY_SPAN).collect();
            let mut all = histogram();
            for (h, _, _) in self.add_up(&seconds).values() {
                let _ = all.add(h);
            }
            if !all.is_empty() && ms(&all, 95.0) <= baseline_ms * RECOVERED {
                return spans[i + RECOVERY_SPAN - 1].1;
            }
        }
        end
    }
}

fn decode(bytes: &[u8]) -> Option<Histogram<u64>> {
    use hdrhistogram::serialization::Deserializer;
    Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .ok()
}

fn figures(h: &Histogram<u64>, count: u64, failed: u64, seconds: f64) -> WindowOp {
    WindowOp {
        count,
        failed,
        throughput_per_s: count as f64 / seconds,
        p50_ms: ms(h, 50.0),
        p95_ms: ms(h, 95.0),
        p99_ms: ms(h, 99.0),
    }
}

/// Every event with its windows, in the order of their start.
pub fn attribute(records: &[EventRecord], measured: &Measured) -> Vec<EventReport> {
    let mut order: Vec<&EventRecord> = records.iter().collect();
    order.sort_by(|a, b| {
        let key = |r: &EventRecord| r.started_s.unwrap_or(r.at_s);
        key(a).total_cmp(&key(b))
    });
    let mut previous_end: f64 = 0.0;
    let starts: Vec<f64> = order.iter().filter_map(|r| r.started_s).collect();
    order
        .into_iter()
        .map(|record| {
            // An outage belongs to the last event that began before it.
            let next_start = record
                .started_s
                .and_then(|s| starts.iter().copied().find(|t| *t > s))
                .unwrap_or(f64::INFINITY);
            let windows = match (record.started_s, record.ended_s) {
                (Some(start), Some(end)) => {
                    let before = measured.window(previous_end.min(start), start);
                    let during = measured.window(start, end);
                    let recovered = measured.recovered(end, before.all.p95_ms);
                    let after = measured.window(end, recovered.max(end));
                    previous_end = end;
                    Some(Windows {
                        before,
                        during,
                        after,
                    })
                }
                _ => None,
            };
            let outages = match (record.started_s, record.ended_s) {
                (Some(start), Some(end)) => measured
                    .outages
                    .iter()
                    .filter(|o| {
                        o.first_failure_s >= start - 1.0
                            && o.first_failure_s <= end + 60.0
                            && o.first_failure_s < next_start - 1.0
                    })
                    .cloned()
                    .collect(),
                _ => Vec::new(),
            };
            EventReport {
                record: record.clone(),
                windows,
                outages,
            }
        })
        .collect()
}
