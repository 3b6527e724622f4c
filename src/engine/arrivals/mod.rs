//! The open model's arrival schedule: operations arrive at a rate of their own (constant, or
//! ramped through stages as k6's `ramping-arrival-rate` does), whatever the database answers,
//! and each has an *intended start*. Users take arrivals in order, sleep until each one is due
//! and run it; an arrival no user could start within `max_lag` of its intended start is
//! dropped (k6's `dropped_iterations`, pgbench `-R --latency-limit`'s "skipped"), one started
//! later than [`LATE_AFTER`] but within `max_lag` is late. Response time counts from the
//! intended start, so a slow database shows as slow instead of as fewer requests (coordinated
//! omission).
//!
//! Arrival `i` is due when the expected count of arrivals, the integral of the rate, reaches
//! `u_i`: `u_i = i` for uniform spacing, `u_i = u_(i-1) + Exp(1)` for Poisson arrivals (by
//! time rescaling, a Poisson process of the ramped rate).
//!
//! This module holds the plan (stages, spacing, the expected-count integral) and the parsers;
//! [`schedule`] runs a plan.

mod schedule;

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

pub use schedule::{Schedule, ScheduleReport};

/// An arrival started more than this after its intended start is counted late: timers on a
/// busy machine wake a millisecond or two late as a matter of course.
pub const LATE_AFTER: Duration = Duration::from_millis(10);

/// How arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spacing {
    /// Evenly, `1/rate` apart (pgbench `-R` uses Poisson; k6 spaces evenly).
    #[default]
    Uniform,
    /// A Poisson process: exponential gaps, as independent clients arrive.
    Poisson,
}

/// Ramp linearly to `rate` (operations per second) over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// How long the ramp (or hold) lasts.
    pub duration: Duration,
    /// The rate at its end.
    pub rate: f64,
}

/// A whole schedule: the rate at the start, then the stages.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The rate at the start (the first stage ramps from it).
    pub start_rate: f64,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// How arrivals are spaced.
    pub spacing: Spacing,
    /// Longest an arrival may wait for a free user before it is dropped.
    pub max_lag: Duration,
}

impl Plan {
    /// A constant `rate` for `duration`.
    pub fn constant(rate: f64, duration: Duration, spacing: Spacing, max_lag: Duration) -> Plan {
        Plan {
            start_rate: rate,
            stages: vec![Stage { duration, rate }],
            spacing,
            max_lag,
        }
    }

    /// The schedule's length.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// Arrivals expected in the first `t` seconds: the integral of the rate.
    pub fn expected_by(&self, t: f64) -> f64 {
        let (mut from, mut rate, mut count) = (0.0, self.start_rate, 0.0);
        for stage in &self.stages {
            let d = stage.duration.as_secs_f64();
            let slope = if d > 0.0 {
                (stage.rate - rate) / d
            } else {
                0.0
            };
            let tau = (t - from).clamp(0.0, d);
            count += rate * tau + slope * tau * tau / 2.0;
            if t <= from + d {
                return count;
            }
            (from, rate) = (from + d, stage.rate);
        }
        count
    }

    /// When (seconds into the schedule) `u` arrivals are expected; `None` past its end.
    pub fn time_of(&self, u: f64) -> Option<f64> {
        let (mut from, mut rate, mut left) = (0.0, self.start_rate, u);
        for stage in &self.stages {
            let d = stage.duration.as_secs_f64();
            let in_stage = (rate + stage.rate) / 2.0 * d;
            if left < in_stage {
                // Solve rate·τ + a·τ² = left (a = half the slope) in the form that stays exact
                // when the rate is flat (a = 0) or starts at zero.
                let a = (stage.rate - rate) / (2.0 * d);
                let root = (rate * rate + 4.0 * a * left).max(0.0).sqrt();
                let tau = if rate + root > 0.0 {
                    2.0 * left / (rate + root)
                } else {
                    0.0
                };
                return Some(from + tau.min(d));
            }
            left -= in_stage;
            (from, rate) = (from + d, stage.rate);
        }
        None
    }

    /// The rate `t` seconds in (the last stage's rate after the end).
    pub fn rate_at(&self, t: f64) -> f64 {
        let (mut from, mut rate) = (0.0, self.start_rate);
        for stage in &self.stages {
            let d = stage.duration.as_secs_f64();
            if t < from + d {
                return rate + (stage.rate - rate) * (t - from) / d;
            }
            (from, rate) = (from + d, stage.rate);
        }
        rate
    }
}

/// How the load test's users are paced: the closed model's think times, and the open model's
/// schedule when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Pacing {
    /// Closed model: each search user's pause between operations, uniform in MIN..=MAX
    /// (zero: none, fixed concurrency).
    pub think_time: (Duration, Duration),
    /// The background bulk inserters' pause between batches.
    pub bulk_think_time: (Duration, Duration),
    /// The open model: arrivals on a schedule, served by at most `max_in_flight` users.
    pub open: Option<Open>,
}

/// The open model's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Open {
    /// The schedule.
    pub plan: Plan,
    /// Goose users started: the most operations in flight at once.
    pub max_in_flight: usize,
}

impl Default for Pacing {
    /// The closed model as the original suite paced it.
    fn default() -> Pacing {
        Pacing {
            think_time: (Duration::from_millis(100), Duration::from_millis(500)),
            bulk_think_time: (Duration::from_secs(5), Duration::from_secs(10)),
            open: None,
        }
    }
}

/// The arrivals of `plan`, as offsets (seconds) from its start, in order: positions `u_i` in
/// expected-count units (see the module's doc) mapped through [`Plan::time_of`].
pub fn offsets(plan: &Plan, seed: u64) -> impl Iterator<Item = f64> + '_ {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xA5A5_5A5A_0F0F_F0F0);
    let mut position = 0.0;
    std::iter::from_fn(move || {
        let at = position;
        position += match plan.spacing {
            Spacing::Uniform => 1.0,
            // Exp(1) by inversion; 1 - x is in (0, 1], so the logarithm is finite.
            Spacing::Poisson => -(1.0 - rng.random::<f64>()).ln(),
        };
        plan.time_of(at)
    })
}

/// Parses `--arrival-stages`: `DURATION:RATE` pairs separated by commas (`30s:100,1m:500`).
pub fn parse_stages(text: &str) -> Result<Vec<Stage>, String> {
    let mut stages = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (d, r) = part
            .split_once(':')
            .ok_or_else(|| format!("stage '{part}' is not DURATION:RATE (such as 30s:100)"))?;
        let duration = humantime::parse_duration(d.trim())
            .map_err(|e| format!("stage '{part}': duration '{}': {e}", d.trim()))?;
        let rate: f64 = r
            .trim()
            .parse()
            .map_err(|_| format!("stage '{part}': rate '{}' is not a number", r.trim()))?;
        if duration.is_zero() {
            return Err(format!("stage '{part}': the duration must be above 0"));
        }
        if !(rate.is_finite() && rate >= 0.0) {
            return Err(format!("stage '{part}': the rate must be 0 or more"));
        }
        stages.push(Stage { duration, rate });
    }
    if stages.is_empty() {
        return Err("no stages given (DURATION:RATE,..., such as 30s:100,1m:500)".into());
    }
    Ok(stages)
}

/// Parses a think time: `MIN..MAX` (`100ms..500ms`), one duration (fixed), or `0` (none).
pub fn parse_think_time(text: &str) -> Result<(Duration, Duration), String> {
    let parse = |s: &str| {
        let s = s.trim();
        if s == "0" {
            return Ok(Duration::ZERO);
        }
        humantime::parse_duration(s).map_err(|e| format!("'{s}': {e}"))
    };
    let (min, max) = match text.split_once("..") {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let d = parse(text)?;
            (d, d)
        }
    };
    if min > max {
        return Err(format!("'{text}': the minimum is above the maximum"));
    }
    Ok((min, max))
}

#[cfg(test)]
mod tests;
