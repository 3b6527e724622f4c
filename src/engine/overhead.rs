//! The harness's own cost, so a saturated client is never mistaken for a slow database: CPU
//! time of this process over the load phase (from `getrusage`), and for throttled runs
//! (`--throttle-requests`) how far the operations fell behind their planned schedule.

use std::time::Duration;

use nix::sys::resource::{getrusage, UsageWho};
use serde::{Deserialize, Serialize};

use super::stats::round;
use super::stats::HistorySample;

/// User + system CPU time used so far by `who`.
fn cpu(who: UsageWho) -> Duration {
    match getrusage(who) {
        Ok(u) => {
            let (user, system) = (u.user_time(), u.system_time());
            let micros = (user.tv_sec() + system.tv_sec()) as i128 * 1_000_000
                + (user.tv_usec() + system.tv_usec()) as i128;
            Duration::from_micros(micros.max(0) as u64)
        }
        Err(_) => Duration::ZERO,
    }
}

/// CPU time of this whole process (every thread) so far.
pub fn self_cpu() -> Duration {
    cpu(UsageWho::RUSAGE_SELF)
}

/// CPU time of the child processes waited for so far.
pub fn children_cpu() -> Duration {
    cpu(UsageWho::RUSAGE_CHILDREN)
}

/// This process's peak resident memory so far in MiB (`getrusage`'s `ru_maxrss`).
pub fn peak_rss_mib() -> f64 {
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| u.max_rss() as f64 / 1024.0)
        .unwrap_or(0.0)
}

/// The harness's overhead over one load phase (`overhead` in `load_test_summary.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Overhead {
    /// CPU seconds (user + system) of the whole harness process during the load phase.
    pub cpu_s: f64,
    /// That CPU time as a share of one core over the load phase's wall-clock time, in %
    /// (100 = one core fully busy).
    pub cpu_pct_of_one_core: f64,
    /// Cores the machine offers (the ceiling is `cores` × 100 %).
    pub cores: usize,
    /// Harness CPU per operation, µs.
    pub cpu_us_per_op: f64,
    /// For `--throttle-requests` runs: how late operations ran against the planned rate.
    #[serde(default)]
    pub schedule: Option<ScheduleLag>,
}

/// How far a throttled run fell behind its plan of `planned_per_s` operations per second from
/// its first operation on. Measured from the once-a-second history: lag at a moment is the
/// time the run would need at the planned rate to catch up with the plan.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ScheduleLag {
    /// The plan (`--throttle-requests`), operations per second.
    pub planned_per_s: f64,
    /// What ran, operations per second over the same span.
    pub achieved_per_s: f64,
    /// Lag at the end of the run, seconds.
    pub lag_at_end_s: f64,
    /// Largest lag seen at any one-second sample, seconds.
    pub max_lag_s: f64,
}

impl Overhead {
    /// The overhead of a load phase of `elapsed` that used `cpu` and ran `ops` operations;
    /// `throttle` is `--throttle-requests`, `history` the run's once-a-second samples.
    pub fn measure(
        cpu: Duration,
        elapsed: Duration,
        ops: u64,
        throttle: Option<usize>,
        history: &[HistorySample],
    ) -> Overhead {
        let secs = elapsed.as_secs_f64().max(1e-9);
        Overhead {
            cpu_s: round(cpu.as_secs_f64(), 3),
            cpu_pct_of_one_core: round(100.0 * cpu.as_secs_f64() / secs, 3),
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu_us_per_op: round(cpu.as_secs_f64() * 1e6 / ops.max(1) as f64, 3),
            schedule: throttle
                .filter(|r| *r > 0)
                .and_then(|r| schedule_lag(r as f64, history)),
        }
    }

    /// One console line.
    pub fn line(&self) -> String {
        let mut line = format!(
            "harness overhead: {:.2} CPU s ({:.0}% of one core, {} cores), {:.0} µs CPU per operation",
            self.cpu_s, self.cpu_pct_of_one_core, self.cores, self.cpu_us_per_op
        );
        if let Some(s) = &self.schedule {
            line.push_str(&format!(
                "; throttle plan {:.0}/s, achieved {:.1}/s, schedule lag {:.2}s at end (max {:.2}s)",
                s.planned_per_s, s.achieved_per_s, s.lag_at_end_s, s.max_lag_s
            ));
        }
        line
    }
}

/// Lag against a plan of `rate` operations per second, starting at the first sample that saw
/// an operation.
fn schedule_lag(rate: f64, history: &[HistorySample]) -> Option<ScheduleLag> {
    let total = |s: &HistorySample| s.rows.last().map(|(_, r)| r.total_count).unwrap_or(0);
    let first = history.iter().position(|s| total(s) > 0)?;
    let mut elapsed = 0.0f64;
    let mut max_lag = 0.0f64;
    let mut lag = 0.0f64;
    let mut done = 0u64;
    // The first busy sample's interval counts whole: operations began somewhere inside it.
    for sample in &history[first..] {
        elapsed += sample.interval.as_secs_f64();
        done = total(sample);
        lag = (elapsed - done as f64 / rate).max(0.0);
        max_lag = max_lag.max(lag);
    }
    Some(ScheduleLag {
        planned_per_s: rate,
        achieved_per_s: round(done as f64 / elapsed.max(1e-9), 3),
        lag_at_end_s: round(lag, 3),
        max_lag_s: round(max_lag, 3),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::stats::HistoryRow;

    fn sample(total: u64) -> HistorySample {
        HistorySample {
            unix_time: 0,
            users: 1,
            interval: Duration::from_secs(1),
            rows: vec![(
                None,
                HistoryRow {
                    total_count: total,
                    ..HistoryRow::default()
                },
            )],
            encoded: Vec::new(),
        }
    }

    #[test]
    fn a_run_on_plan_has_no_lag_and_a_slow_one_has_its_backlog() {
        let on_plan: Vec<_> = [0, 10, 20, 30].into_iter().map(sample).collect();
        let s = schedule_lag(10.0, &on_plan).unwrap();
        assert_eq!((s.lag_at_end_s, s.max_lag_s), (0.0, 0.0));
        assert_eq!(s.achieved_per_s, 10.0);
        // 3 s at a plan of 10/s is 30 operations; 15 ran: 1.5 s behind.
        let slow: Vec<_> = [5, 10, 15].into_iter().map(sample).collect();
        let s = schedule_lag(10.0, &slow).unwrap();
        assert_eq!(s.lag_at_end_s, 1.5);
        assert_eq!(s.max_lag_s, 1.5);
        assert_eq!(s.achieved_per_s, 5.0);
    }

    #[test]
    fn cpu_clock_moves_and_per_op_cost_is_derived() {
        let before = self_cpu();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(self_cpu() > before);
        let o = Overhead::measure(
            Duration::from_millis(500),
            Duration::from_secs(1),
            1000,
            None,
            &[],
        );
        assert_eq!((o.cpu_pct_of_one_core, o.cpu_us_per_op), (50.0, 500.0));
        assert!(o.schedule.is_none());
    }
}
