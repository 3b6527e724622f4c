//! The live status of a load test: a line redrawn every second on a terminal (indicatif), or a
//! compact line every `--status-interval` when the output is not one (CI logs), so a ten-minute
//! run can be watched without Goose's per-user logging.
//!
//! It is fed the once-a-second history samples, so it costs nothing the history does not
//! already compute, plus a snapshot of the failure classes and pool waits when it prints.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::arrivals::Schedule;
use crate::engine::stats::{HistorySample, StatsHub, QUANTILES};

/// Where and how often the status goes.
pub struct Status {
    hub: Arc<StatsHub>,
    schedule: Option<Arc<Schedule>>,
    run_time: Option<Duration>,
    started: Instant,
    out: Out,
}

enum Out {
    /// A terminal: one line, redrawn every second.
    Bar(ProgressBar),
    /// A log: a line every `every`.
    Lines { every: Duration, last: Instant },
}

impl Status {
    /// Status for a run of `run_time` (None: until stopped), on stderr.
    pub fn new(
        hub: Arc<StatsHub>,
        schedule: Option<Arc<Schedule>>,
        run_time: Option<Duration>,
        every: Duration,
    ) -> Status {
        let started = Instant::now();
        let out = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner()
                .with_style(ProgressStyle::with_template("{spinner} {msg}").expect("template"));
            Out::Bar(bar)
        } else {
            Out::Lines {
                every,
                last: started,
            }
        };
        Status {
            hub,
            schedule,
            run_time,
            started,
            out,
        }
    }

    /// Takes one second's sample; draws or prints when due.
    pub fn update(&mut self, sample: &HistorySample) {
        let due = match &mut self.out {
            Out::Bar(_) => true,
            // Half a second early, so a 10 s interval fed once a second prints every 10 s.
            Out::Lines { every, last } => {
                let due = last.elapsed() + Duration::from_millis(500) >= *every;
                if due {
                    *last = Instant::now();
                }
                due
            }
        };
        if !due {
            return;
        }
        let line = self.line(sample);
        match &self.out {
            Out::Bar(bar) => {
                bar.set_message(line);
                bar.tick();
            }
            Out::Lines { .. } => eprintln!("{line}"),
        }
    }

    /// Clears the terminal line when the run ends.
    pub fn finish(&self) {
        if let Out::Bar(bar) = &self.out {
            bar.finish_and_clear();
        }
    }

    /// `[0:42 / 10:00] 300 users | 812 ops/s | search p95 4.1 ms | pool wait p95 0.1 ms |
    /// 0 failed` (plus failure classes and, in the open model, the schedule's counts).
    fn line(&self, sample: &HistorySample) -> String {
        let elapsed = clock(self.started.elapsed());
        let of = self
            .run_time
            .map(|t| format!(" / {}", clock(t)))
            .unwrap_or_default();
        let secs = sample.interval.as_secs_f64().max(1e-3);
        let all = sample.rows.iter().find(|(op, _)| op.is_none());
        let ops = all.map_or(0.0, |(_, r)| r.count as f64 / secs);
        let p95 = QUANTILES.iter().position(|&q| q == 95.0).unwrap_or(0);
        let search_p95 = sample
            .rows
            .iter()
            .filter(|(op, _)| op.is_some_and(|o| o.is_search()))
            .filter_map(|(_, r)| r.percentiles.map(|p| p[p95]))
            .max();
        let snapshot = self.hub.snapshot();
        let aggregated = snapshot.aggregated();
        let pool_p95 = aggregated.pool_wait.value_at_quantile(0.95);
        let mut line = format!(
            "[{elapsed}{of}] {} users | {ops:.0} ops/s | search p95 {} | pool wait p95 {} | {} failed",
            sample.users,
            search_p95.map_or("-".into(), ms),
            ms(pool_p95),
            aggregated.failed,
        );
        if !aggregated.failures.is_empty() {
            let classes: Vec<String> = aggregated
                .failures
                .iter()
                .map(|(class, n)| format!("{class} {}", n.count))
                .collect();
            line.push_str(&format!(" ({})", classes.join(", ")));
        }
        if let Some(schedule) = &self.schedule {
            let r = schedule.report();
            line.push_str(&format!(
                " | offered {:.0}/s achieved {:.0}/s late {} dropped {}",
                r.offered_per_s, r.achieved_per_s, r.late, r.dropped
            ));
        }
        line
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}
