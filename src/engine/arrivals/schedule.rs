//! A plan being run: a dispatcher thread queues each arrival when it is due; users take them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::{offsets, Plan, Spacing, LATE_AFTER};

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

impl ScheduleReport {
    /// Adds another generator's arrivals (each had its share of the rate): counts and rates
    /// add up, the lag and length are the larger.
    pub fn add(&mut self, other: &ScheduleReport) {
        self.offered += other.offered;
        self.on_time += other.on_time;
        self.late += other.late;
        self.dropped += other.dropped;
        self.offered_per_s += other.offered_per_s;
        self.achieved_per_s += other.achieved_per_s;
        self.max_lag_s = self.max_lag_s.max(other.max_lag_s);
        self.duration_s = self.duration_s.max(other.duration_s);
    }
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
