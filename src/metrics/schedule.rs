//! The open model's series, read from the running schedule at scrape time:
//!
//! | Series | Type | Labels |
//! | --- | --- | --- |
//! | `loadtest_arrivals_total` | counter: arrivals started on time, late (after 10 ms) or dropped | `outcome` |
//! | `loadtest_offered_rate_per_second` | gauge: the schedule's rate now | |
//! | `loadtest_schedule_lag_max_seconds` | gauge: largest lag of a started arrival so far | |
//!
//! Absent in the closed model: there is no schedule to read.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntCounterVec, Opts};

use crate::engine::arrivals::Schedule;

/// Where the load test puts its schedule for the collector to read.
pub type Slot = Arc<Mutex<Option<Arc<Schedule>>>>;

/// Reads the schedule of the load test that runs, if any.
pub struct ScheduleCollector {
    descs: Vec<Desc>,
    schedule: Slot,
}

/// The families, built afresh at each scrape from the schedule's counters.
fn families() -> Result<(IntCounterVec, Gauge, Gauge), prometheus::Error> {
    Ok((
        IntCounterVec::new(
            Opts::new(
                "loadtest_arrivals_total",
                "Open model: arrivals started on time, late (within --max-lag) or dropped",
            ),
            &["outcome"],
        )?,
        Gauge::new(
            "loadtest_offered_rate_per_second",
            "Open model: the arrival rate the schedule offers now",
        )?,
        Gauge::new(
            "loadtest_schedule_lag_max_seconds",
            "Open model: largest lag between an arrival's intended and actual start so far",
        )?,
    ))
}

impl ScheduleCollector {
    /// A collector with no schedule yet, and the slot to put one in.
    pub fn new() -> Result<(ScheduleCollector, Slot), prometheus::Error> {
        let (arrivals, offered, lag) = families()?;
        let descs = [arrivals.desc(), offered.desc(), lag.desc()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let slot = Arc::new(Mutex::new(None));
        let collector = ScheduleCollector {
            descs,
            schedule: slot.clone(),
        };
        Ok((collector, slot))
    }
}

impl Collector for ScheduleCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(schedule) = self
            .schedule
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return Vec::new();
        };
        let Ok((arrivals, offered, lag)) = families() else {
            return Vec::new();
        };
        let (on_time, late, dropped) = schedule.counts();
        for (outcome, n) in [("on_time", on_time), ("late", late), ("dropped", dropped)] {
            arrivals.with_label_values(&[outcome]).inc_by(n);
        }
        let now = schedule
            .started_at()
            .map(|t0| Instant::now().saturating_duration_since(t0).as_secs_f64());
        let plan = schedule.plan();
        let running = now.filter(|&t| t < plan.duration().as_secs_f64());
        offered.set(running.map_or(0.0, |t| plan.rate_at(t)));
        lag.set(schedule.max_lag().as_secs_f64());
        [arrivals.collect(), offered.collect(), lag.collect()]
            .into_iter()
            .flatten()
            .collect()
    }
}
