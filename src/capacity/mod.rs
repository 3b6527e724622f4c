//! `capacity`: the highest load at which every objective of a profile holds. Each step is a
//! load test of its own (the load test's engine, users and recall sampler): an unmeasured
//! warm-up, then a measured hold. With `--sweep rate` (the default) a step offers an arrival
//! rate in the open model, so a database past its knee shows as slow and as dropped arrivals,
//! not as fewer requests; with `--sweep concurrency` a step is a number of users with no think
//! time (the closed model, as VectorDBBench sweeps it).
//!
//! The load rises geometrically (`--start`, `--factor`) until a step misses an objective's
//! target or does not achieve the rate it offered; then `--refine` bisection steps narrow the
//! interval between the last load that held and the first that did not.

mod html;

/// Capacity steps run no failover events.
static NO_PATRONI: crate::events::failover::Patroni = crate::events::failover::Patroni {
    urls: Vec::new(),
    local_cluster: None,
};
mod report;

use std::sync::Arc;
use std::time::Duration;

use goose::config::GooseConfiguration;

use crate::cli::Sweep;
use crate::config::{CapacitySettings, Connections, Reports, Workload};
use crate::db::schema::TableSpec;
use crate::db::Endpoints;
use crate::engine::arrivals::{Open, Pacing, Plan};
use crate::load::{self, LoadError, LoadResult};
use crate::metrics::ClientMetrics;
use crate::report::verdict::{self, Status};
use crate::shutdown::Shutdown;
use crate::workload::dataset::Dataset;
use crate::Exit;

pub use report::{CapacityReport, Step, HEADLINE};

/// A step of the rate sweep holds only if it achieved at least this share of what it
/// offered: past the knee, arrivals queue until they are dropped.
pub const ACHIEVED_SHARE: f64 = 0.95;

/// Why the search could not run or complete.
#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    /// A step's load test failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The recall sampler's series could not be created.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The report could not be written.
    #[error("writing {what}: {source}")]
    Io {
        /// Which file.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl CapacityError {
    /// The exit code: a step that cannot run after the data was checked ends a run that
    /// started (1), as the load test's own errors say.
    pub fn exit(&self) -> Exit {
        match self {
            CapacityError::Load(e) => e.exit(),
            CapacityError::Metrics(_) | CapacityError::Io { .. } => Exit::Failed,
        }
    }
}

/// The sections of the configuration the search reads.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    /// The steps.
    pub settings: &'a CapacitySettings,
    /// Pools and session settings.
    pub connections: &'a Connections,
    /// Workload knobs.
    pub workload: &'a Workload,
    /// The bulk inserters' pacing.
    pub pacing: &'a Pacing,
    /// Goose's configuration, the base of every step's.
    pub goose: &'a GooseConfiguration,
    /// Report directory and the objectives.
    pub reports: &'a Reports,
    /// The table and its index, recorded in `capacity.json`.
    pub table: &'a TableSpec,
}

/// What every step runs against.
struct Bench<'a> {
    job: Job<'a>,
    endpoints: &'a Endpoints,
    dataset: Arc<Dataset>,
    metrics: Arc<ClientMetrics>,
    shutdown: &'a Shutdown,
}

/// Runs the search, prints a row per step and writes `capacity.json` and `capacity.svg`.
pub async fn run(
    job: Job<'_>,
    endpoints: &Endpoints,
    dataset: Arc<Dataset>,
    metrics: Option<Arc<ClientMetrics>>,
    shutdown: &Shutdown,
) -> Result<Exit, CapacityError> {
    // Recall is sampled through the client series: without the exporter, unexported ones.
    let metrics = match metrics {
        Some(m) => m,
        None => ClientMetrics::register(&prometheus::Registry::new())?,
    };
    let bench = Bench {
        job,
        endpoints,
        dataset,
        metrics,
        shutdown,
    };
    let s = job.settings;
    let setup = [
        job.table.layout.to_string(),
        bench.dataset.describe(),
        job.table.describe_index(&job.connections.session),
    ];
    let mut report = CapacityReport::new(s, job.reports, setup);
    report.print_header(&mut std::io::stdout());
    let (mut good, mut bad) = (None::<f64>, None::<f64>);
    let mut load = s.start;
    loop {
        let Some(step) = bench.step(load, "step", report.best_achieved()).await? else {
            return finish(report, job, Exit::Interrupted);
        };
        let held = step.held;
        report.add(step);
        if !held {
            bad = Some(load);
            break;
        }
        good = Some(load);
        if load >= s.max {
            break;
        }
        load = next_load(load, s);
    }
    if let (Some(mut g), Some(mut b)) = (good, bad) {
        for _ in 0..s.refine {
            let mid = match s.sweep {
                Sweep::Rate => (g + b) / 2.0,
                Sweep::Concurrency => ((g + b) / 2.0).floor(),
            };
            if mid <= g || mid >= b {
                break;
            }
            let Some(step) = bench.step(mid, "refine", None).await? else {
                return finish(report, job, Exit::Interrupted);
            };
            if step.held {
                g = mid;
            } else {
                b = mid;
            }
            report.add(step);
        }
    }
    let exit = if report.conclude() {
        Exit::Success
    } else {
        Exit::SloBreached
    };
    finish(report, job, exit)
}

/// The next geometric step: `--factor` times the load, whole users for a concurrency
/// sweep, never above `--max`.
fn next_load(load: f64, s: &CapacitySettings) -> f64 {
    let next = load * s.factor;
    let next = match s.sweep {
        Sweep::Rate => next,
        Sweep::Concurrency => next.round().max(load + 1.0),
    };
    next.min(s.max)
}

/// Prints the conclusion and writes the reports.
fn finish(mut report: CapacityReport, job: Job<'_>, exit: Exit) -> Result<Exit, CapacityError> {
    if exit == Exit::Interrupted {
        report.interrupted = true;
        report.conclude();
    }
    report.print_conclusion(&mut std::io::stdout());
    let dir = &job.reports.dir;
    let io = |what: &str| {
        let what = dir.join(what).display().to_string();
        move |source| CapacityError::Io { what, source }
    };
    crate::report::write_json(&dir.join("capacity.json"), &report).map_err(io("capacity.json"))?;
    let svg = report::plot_svg(&report);
    crate::report::write_atomic(&dir.join("capacity.svg"), |w| w.write_all(svg.as_bytes()))
        .map_err(io("capacity.svg"))?;
    let page = html::page(&report);
    crate::report::write_atomic(&dir.join("capacity_report.html"), |w| {
        w.write_all(page.as_bytes())
    })
    .map_err(io("capacity_report.html"))?;
    println!(
        "capacity.json, capacity.svg and capacity_report.html written to {}",
        dir.display()
    );
    Ok(exit)
}

impl Bench<'_> {
    /// One step at `load`: the warm-up, then the measured hold, judged. `None` when a signal
    /// stopped it. `best` is the highest throughput a concurrency step achieved so far: a
    /// step that does not improve on it by 5 % has found the knee.
    async fn step(
        &self,
        load: f64,
        phase: &'static str,
        best: Option<f64>,
    ) -> Result<Option<Step>, CapacityError> {
        let s = self.job.settings;
        if !s.warmup.is_zero() {
            let warm = self.load_test(load, s.warmup).await?;
            if warm.interrupted || self.shutdown.is_triggered() {
                return Ok(None);
            }
        }
        let result = self.load_test(load, s.hold).await?;
        if result.interrupted || self.shutdown.is_triggered() {
            return Ok(None);
        }
        let step = self.judge(load, phase, &result, best);
        step.print_row(&mut std::io::stdout(), s.sweep);
        Ok(Some(step))
    }

    /// A load test of `duration` at `load`.
    async fn load_test(&self, load: f64, duration: Duration) -> Result<LoadResult, LoadError> {
        let (pacing, goose) = step_config(self.job, load, duration);
        let job = load::Job {
            connections: self.job.connections,
            workload: self.job.workload,
            pacing: &pacing,
            goose: &goose,
            // Each step prints its own line.
            status: None,
            generator: (0, 1),
            events: &[],
            patroni: &NO_PATRONI,
            table: self.job.table,
            visibility: None,
        };
        let metrics = Some(self.metrics.clone());
        let dataset = self.dataset.clone();
        load::run(job, self.endpoints, dataset, metrics, self.shutdown).await
    }

    /// The step's figures and whether it held.
    fn judge(&self, load: f64, phase: &'static str, r: &LoadResult, best: Option<f64>) -> Step {
        let s = self.job.settings;
        let objectives = self
            .job
            .reports
            .profile
            .as_ref()
            .map_or(&[][..], |p| &p.objectives);
        let verdicts = verdict::evaluate(objectives, &r.snapshot, r.elapsed, &r.server);
        let mut limits: Vec<String> = verdicts
            .iter()
            .filter(|v| v.gate && matches!(v.status, Status::Fail | Status::Warn))
            .map(|v| {
                let measured = v.measured.map_or("n/a".into(), |m| format!("{m}"));
                format!(
                    "{} {measured} (target {} {})",
                    v.name, v.direction, v.target
                )
            })
            .collect();
        let mut step = Step::new(load, phase, r, verdicts);
        match (s.sweep, &r.schedule) {
            (Sweep::Rate, Some(schedule)) => {
                if schedule.achieved_per_s < ACHIEVED_SHARE * schedule.offered_per_s {
                    limits.push(format!(
                        "offered rate not achieved ({:.1} of {:.1}/s, {} dropped)",
                        schedule.achieved_per_s, schedule.offered_per_s, schedule.dropped
                    ));
                }
            }
            (Sweep::Concurrency, _) => {
                if let Some(best) = best.filter(|&b| step.achieved_per_s < 1.05 * b) {
                    limits.push(format!(
                        "throughput no longer grows ({:.1}/s, best so far {best:.1}/s)",
                        step.achieved_per_s
                    ));
                }
            }
            (Sweep::Rate, None) => {}
        }
        step.held = limits.is_empty();
        step.limits = limits;
        step
    }
}

/// The pacing and Goose configuration of one load test of the search: all users started in
/// the first second, no Goose reports or console tables (the search writes its own).
fn step_config(job: Job<'_>, load: f64, duration: Duration) -> (Pacing, GooseConfiguration) {
    let s = job.settings;
    let mut pacing = job.pacing.clone();
    let mut goose = job.goose.clone();
    let users = match s.sweep {
        Sweep::Rate => {
            let plan = Plan::constant(load, duration, s.spacing, s.max_lag);
            pacing.open = Some(Open {
                plan,
                max_in_flight: s.max_in_flight,
            });
            // Goose times whole transactions, which here include the wait for an arrival.
            goose.no_transaction_metrics = true;
            goose.no_scenario_metrics = true;
            s.max_in_flight
        }
        Sweep::Concurrency => {
            pacing.open = None;
            pacing.think_time = (Duration::ZERO, Duration::ZERO);
            load as usize
        }
    };
    goose.users = Some(users);
    goose.increase_rate = Some(users.to_string());
    goose.run_time = Some(format!("{}s", duration.as_secs().max(1)));
    goose.report_file = Vec::new();
    // Goose's own figures are not read here: with its reset after ramp-up left on and its
    // tables off, it prints nothing between our rows.
    goose.no_reset_metrics = false;
    goose.no_print_metrics = true;
    goose.no_error_summary = true;
    goose.quiet = 1;
    goose.dashboard = false;
    (pacing, goose)
}
