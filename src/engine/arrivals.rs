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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

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

/// A schedule being run. A thread of its own (the dispatcher) sleeps until each arrival is
/// due, with the operating system's microsecond timers rather than the async runtime's
/// millisecond ones, and queues it; free users take arrivals from the queue in order. An
/// arrival that waits in the queue past `max_lag` (every user busy) is dropped by the user
/// that takes it.
pub struct Schedule {
    plan: Plan,
    seed: u64,
    users: usize,
    users_started: AtomicU64,
    start: OnceLock<Instant>,
    started: Notify,
    // The dispatcher's end of the queue, until the clock starts and the dispatcher takes it.
    sender: Mutex<Option<flume::Sender<Instant>>>,
    queue: flume::Receiver<Instant>,
    stop: Arc<AtomicBool>,
    on_time: AtomicU64,
    late: AtomicU64,
    dropped: AtomicU64,
    max_lag_us: AtomicU64,
}

/// What became of a schedule's arrivals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleReport {
    /// Uniform or Poisson.
    pub spacing: Spacing,
    /// The schedule's length, seconds.
    pub duration_s: f64,
    /// Arrivals due in it, per second of it.
    pub offered_per_s: f64,
    /// Arrivals started, per second of it.
    pub achieved_per_s: f64,
    /// Arrivals due (up to the end of the schedule, or of the run if it stopped early).
    pub offered: u64,
    /// Started within [`LATE_AFTER`] of their intended start.
    pub on_time: u64,
    /// Started later than that, within `max_lag`.
    pub late: u64,
    /// Never started: no user was free within `max_lag`, or the run ended first.
    pub dropped: u64,
    /// Largest schedule lag of an arrival that started, seconds.
    pub max_lag_s: f64,
    /// The `max_lag` in force, seconds.
    pub max_lag_limit_s: f64,
}

impl Schedule {
    /// A schedule that starts when the `users` serving it have started (see
    /// [`Schedule::user_started`]) or [`Schedule::start_at`] is first called.
    pub fn new(plan: Plan, seed: u64, users: usize) -> Schedule {
        let (sender, queue) = flume::unbounded();
        Schedule {
            plan,
            seed,
            users,
            users_started: AtomicU64::new(0),
            start: OnceLock::new(),
            started: Notify::new(),
            sender: Mutex::new(Some(sender)),
            queue,
            stop: Arc::new(AtomicBool::new(false)),
            on_time: AtomicU64::new(0),
            late: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            max_lag_us: AtomicU64::new(0),
        }
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// One more user is ready; the last one starts the clock. Goose starts counting its
    /// `--run-time` when its last user is launched too, so the schedule and Goose's run end
    /// together.
    pub fn user_started(&self) {
        let n = self.users_started.fetch_add(1, Ordering::Relaxed) + 1;
        if n as usize >= self.users {
            self.start_at(Instant::now());
        }
    }

    /// Starts the clock at `at` and the dispatcher with it; later calls change nothing.
    pub fn start_at(&self, at: Instant) {
        if self.start.set(at).is_err() {
            return;
        }
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(sender) = sender {
            let (plan, seed, stop) = (self.plan.clone(), self.seed, self.stop.clone());
            let spawned = std::thread::Builder::new()
                .name("arrivals".into())
                .spawn(move || dispatch(&plan, seed, at, &sender, &stop));
            if let Err(e) = spawned {
                log::error!("cannot start the arrivals thread: {e}");
            }
        }
        self.started.notify_waiters();
    }

    /// Ends the schedule early (a signal): no arrival is queued after this, and users
    /// waiting for one return once the queue is empty.
    pub fn close(&self) {
        self.stop.store(true, Ordering::Relaxed);
        // Not started yet: nobody will take the dispatcher's end of the queue.
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// When the clock started, if it has.
    pub fn started_at(&self) -> Option<Instant> {
        self.start.get().copied()
    }

    /// Waits for the clock to start; starts it after `patience` if nobody did.
    async fn start(&self, patience: Duration) -> Instant {
        if let Some(&t0) = self.start.get() {
            return t0;
        }
        let notified = self.started.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(&t0) = self.start.get() {
            return t0;
        }
        let _ = tokio::time::timeout(patience, notified).await;
        self.start_at(Instant::now());
        *self.start.get().expect("set above")
    }

    /// Waits for an arrival this user can serve and returns its intended start, counting
    /// as dropped every arrival it takes that is already more than `max_lag` overdue. `None`
    /// once the schedule is over, after sleeping `idle` so that a caller in a loop does not
    /// spin while the run winds down.
    pub async fn next_arrival(&self, idle: Duration) -> Option<Instant> {
        self.start(Duration::from_secs(5)).await;
        loop {
            let Ok(intended) = self.queue.recv_async().await else {
                tokio::time::sleep(idle).await;
                return None;
            };
            let lag = Instant::now().saturating_duration_since(intended);
            if lag > self.plan.max_lag {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let counter = if lag > LATE_AFTER {
                &self.late
            } else {
                &self.on_time
            };
            counter.fetch_add(1, Ordering::Relaxed);
            let us = lag.as_micros().min(u64::MAX as u128) as u64;
            self.max_lag_us.fetch_max(us, Ordering::Relaxed);
            return Some(intended);
        }
    }

    /// Largest lag of an arrival started so far.
    pub fn max_lag(&self) -> Duration {
        Duration::from_micros(self.max_lag_us.load(Ordering::Relaxed))
    }

    /// Arrivals started on time, started late, dropped, so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.on_time.load(Ordering::Relaxed),
            self.late.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }

    /// What became of the arrivals due so far (the whole schedule once it is over); those
    /// due but never taken (every user busy until the run ended) count as dropped.
    pub fn report(&self) -> ScheduleReport {
        let duration = self.plan.duration().as_secs_f64();
        let elapsed = self
            .started_at()
            .map_or(0.0, |t0| t0.elapsed().as_secs_f64())
            .min(duration);
        let offered = offsets(&self.plan, self.seed)
            .take_while(|&t| t <= elapsed)
            .count() as u64;
        let (on_time, late, dropped) = self.counts();
        let taken = on_time + late + dropped;
        let dropped = dropped + offered.saturating_sub(taken);
        let per_s = |n: u64| {
            if duration > 0.0 {
                n as f64 / duration
            } else {
                0.0
            }
        };
        ScheduleReport {
            spacing: self.plan.spacing,
            duration_s: duration,
            offered_per_s: per_s(offered),
            achieved_per_s: per_s(on_time + late),
            offered,
            on_time,
            late,
            dropped,
            max_lag_s: self.max_lag().as_secs_f64(),
            max_lag_limit_s: self.plan.max_lag.as_secs_f64(),
        }
    }
}

impl Drop for Schedule {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The dispatcher queues an arrival this much before it is due rather than sleep for less: a
/// sleep that short costs a system call and lasts longer anyway (Linux's timer slack is 50 µs),
/// so at high rates arrivals go out in small batches. A user that starts one early measures
/// no schedule lag.
const EARLY: Duration = Duration::from_micros(50);

/// The dispatcher: queues each arrival when it is due, until the plan ends, the queue's
/// users are gone or `stop` is set. Sleeps at most 100 ms at a time so that a stop is seen.
fn dispatch(
    plan: &Plan,
    seed: u64,
    t0: Instant,
    queue: &flume::Sender<Instant>,
    stop: &AtomicBool,
) {
    for offset in offsets(plan, seed) {
        let due = t0 + Duration::from_secs_f64(offset);
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let left = due.saturating_duration_since(Instant::now());
            if left <= EARLY {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
        if queue.send(due).is_err() {
            return;
        }
    }
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
mod tests {
    use super::*;

    fn ramp() -> Plan {
        Plan {
            start_rate: 0.0,
            stages: vec![
                Stage {
                    duration: Duration::from_secs(10),
                    rate: 100.0,
                },
                Stage {
                    duration: Duration::from_secs(10),
                    rate: 100.0,
                },
            ],
            spacing: Spacing::Uniform,
            max_lag: Duration::from_secs(1),
        }
    }

    #[test]
    fn expected_count_integrates_the_ramped_rate() {
        let plan = ramp();
        // A ramp 0 -> 100/s over 10 s holds 500 arrivals; the hold adds 100 per second.
        assert!((plan.expected_by(10.0) - 500.0).abs() < 1e-9);
        assert!((plan.expected_by(5.0) - 125.0).abs() < 1e-9);
        assert!((plan.expected_by(20.0) - 1500.0).abs() < 1e-9);
        assert!((plan.rate_at(5.0) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn time_of_inverts_expected_by_in_every_stage() {
        let plan = ramp();
        for u in [0.5, 1.0, 125.0, 499.0, 500.0, 900.0, 1499.0] {
            let t = plan.time_of(u).expect("inside the schedule");
            assert!((plan.expected_by(t) - u).abs() < 1e-6, "u={u} t={t}");
        }
        assert_eq!(plan.time_of(1500.0), None);
        let flat = Plan::constant(
            200.0,
            Duration::from_secs(3),
            Spacing::Uniform,
            Duration::ZERO,
        );
        assert_eq!(flat.time_of(0.0), Some(0.0));
        assert!((flat.time_of(100.0).unwrap() - 0.5).abs() < 1e-12);
        let down = Plan {
            start_rate: 100.0,
            stages: vec![Stage {
                duration: Duration::from_secs(10),
                rate: 0.0,
            }],
            ..ramp()
        };
        for u in [1.0, 250.0, 499.0] {
            let t = down.time_of(u).unwrap();
            assert!((down.expected_by(t) - u).abs() < 1e-6, "u={u} t={t}");
        }
    }

    #[test]
    fn poisson_arrivals_average_the_rate() {
        let plan = Plan::constant(
            1000.0,
            Duration::from_secs(20),
            Spacing::Poisson,
            Duration::ZERO,
        );
        let times: Vec<f64> = offsets(&plan, 7).collect();
        // 20,000 expected; a Poisson count's standard deviation is about 141.
        assert!((19_500..=20_500).contains(&times.len()), "{}", times.len());
        assert_eq!(
            offsets(&plan, 7).count(),
            times.len(),
            "the same seed, the same arrivals"
        );
        // Exponential gaps: the standard deviation equals the mean.
        let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.05,
            "cv {}",
            var.sqrt() / mean
        );
    }

    #[test]
    fn uniform_arrivals_are_evenly_spaced() {
        let plan = Plan::constant(
            200.0,
            Duration::from_secs(2),
            Spacing::Uniform,
            Duration::ZERO,
        );
        let times: Vec<f64> = offsets(&plan, 1).collect();
        assert_eq!(times.len(), 400);
        assert!((times[1] - times[0] - 0.005).abs() < 1e-12);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn arrivals_come_on_time_and_are_dropped_when_nobody_takes_them() {
        // 200/s for 1 s, one user taking each as it comes: on time, within a millisecond.
        let plan = Plan::constant(
            200.0,
            Duration::from_secs(1),
            Spacing::Uniform,
            Duration::from_millis(50),
        );
        let schedule = Schedule::new(plan, 1, 1);
        schedule.user_started();
        let mut lags = Vec::new();
        while let Some(intended) = schedule.next_arrival(Duration::ZERO).await {
            lags.push(intended.elapsed());
        }
        let r = schedule.report();
        assert_eq!(
            (r.offered, r.on_time + r.late, r.dropped),
            (200, 200, 0),
            "{r:?}"
        );
        lags.sort();
        assert!(
            lags[100] < Duration::from_millis(1),
            "median lag {:?}",
            lags[100]
        );
        // A user that sleeps 300 ms finds the arrivals of that time older than max_lag.
        let plan = Plan::constant(
            100.0,
            Duration::from_millis(500),
            Spacing::Uniform,
            Duration::from_millis(50),
        );
        let schedule = Schedule::new(plan, 1, 1);
        schedule.user_started();
        tokio::time::sleep(Duration::from_millis(300)).await;
        while schedule.next_arrival(Duration::ZERO).await.is_some() {}
        let r = schedule.report();
        assert_eq!(r.offered, 50, "{r:?}");
        assert!((20..=30).contains(&r.dropped), "{r:?}");
        assert_eq!(r.on_time + r.late + r.dropped, 50);
    }

    #[test]
    fn stages_and_think_times_parse_with_clear_errors() {
        let stages = parse_stages("30s:100, 1m:500,30s:500").unwrap();
        assert_eq!(stages.len(), 3);
        assert_eq!(stages[1].duration, Duration::from_secs(60));
        assert_eq!(stages[1].rate, 500.0);
        assert!(parse_stages("30s").unwrap_err().contains("DURATION:RATE"));
        assert!(parse_stages("30x:1").unwrap_err().contains("duration"));
        assert!(parse_stages("30s:fast")
            .unwrap_err()
            .contains("not a number"));
        assert!(parse_stages("0s:5").unwrap_err().contains("above 0"));
        assert!(parse_stages("").is_err());
        let ms = Duration::from_millis;
        assert_eq!(parse_think_time("100ms..500ms"), Ok((ms(100), ms(500))));
        assert_eq!(parse_think_time("0"), Ok((ms(0), ms(0))));
        assert_eq!(parse_think_time("2s"), Ok((ms(2000), ms(2000))));
        assert!(parse_think_time("5s..1s").unwrap_err().contains("above"));
        assert!(parse_think_time("soon").is_err());
    }
}
