//! What the capacity search found: a row per step on the console, `capacity.json`, and
//! `capacity.svg` (response time against offered load, the "hockey stick", and achieved
//! against offered throughput, with the objectives' targets drawn).

use std::collections::BTreeMap;
use std::io::Write;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

use crate::cli::Sweep;
use crate::config::{CapacitySettings, Reports};
use crate::engine::stats::OpStats;
use crate::load::LoadResult;
use crate::report::verdict::Verdict;
use crate::workload::ops::Op;

/// The operation the console rows and the plot show (the objectives name it most).
pub const HEADLINE: Op = Op::SingleShardSearch;

/// Reads one percentile of a [`Tail`].
type Percentile = fn(&Tail) -> f64;

/// Milliseconds at three percentiles.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Tail {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Tail {
    fn of(h: &hdrhistogram::Histogram<u64>) -> Tail {
        let ms = |q: f64| h.value_at_percentile(q) as f64 / 1000.0;
        Tail {
            p50: ms(50.0),
            p95: ms(95.0),
            p99: ms(99.0),
        }
    }
}

/// One operation in one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepOp {
    /// Attempts.
    pub count: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Response time (from the intended start in the open model), ms.
    pub response_ms: Tail,
    /// Service time (the query alone), ms.
    pub service_ms: Tail,
}

/// One step of the search.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `step` (geometric) or `refine` (bisection).
    pub phase: &'static str,
    /// The load set: operations per second offered, or users.
    pub load: f64,
    /// Arrivals due per second (the rate sweep; none in the closed model).
    pub offered_per_s: Option<f64>,
    /// Operations (search arrivals, in the open model) started per second.
    pub achieved_per_s: f64,
    /// Arrivals dropped: no user free within `--max-lag`.
    pub dropped: u64,
    /// Arrivals started late (within `--max-lag`).
    pub late: u64,
    /// Per operation.
    pub operations: BTreeMap<String, StepOp>,
    /// Mean recall@k of the searches sampled in the hold.
    pub recall_mean: Option<f64>,
    /// Every objective, judged on the hold.
    pub verdicts: Vec<Verdict>,
    /// Every objective met its target and the load was achieved.
    pub held: bool,
    /// Why it did not hold.
    pub limits: Vec<String>,
}

impl Step {
    /// A step's figures from its hold (judged by the caller).
    pub fn new(load: f64, phase: &'static str, r: &LoadResult, verdicts: Vec<Verdict>) -> Step {
        let operations = Op::ALL
            .iter()
            .map(|&op| (op, r.snapshot.op(op)))
            .filter(|(_, s)| s.count() > 0)
            .map(|(op, s)| (op.name().to_string(), step_op(s)))
            .collect();
        let secs = r.elapsed.as_secs_f64().max(1e-9);
        let (offered, achieved, dropped, late) = match &r.schedule {
            Some(s) => (Some(s.offered_per_s), s.achieved_per_s, s.dropped, s.late),
            None => (None, r.snapshot.aggregated().count() as f64 / secs, 0, 0),
        };
        Step {
            phase,
            load,
            offered_per_s: offered,
            achieved_per_s: achieved,
            dropped,
            late,
            operations,
            recall_mean: r.server.recall_mean,
            verdicts,
            held: false,
            limits: Vec::new(),
        }
    }

    fn headline(&self) -> Option<&StepOp> {
        self.operations.get(HEADLINE.name())
    }

    /// The console row.
    pub fn print_row(&self, w: &mut dyn Write, sweep: Sweep) {
        let load = match sweep {
            Sweep::Rate => format!("{:.1}/s", self.load),
            Sweep::Concurrency => format!("{} users", self.load),
        };
        let op = self.headline();
        let ms = |f: fn(&StepOp) -> f64| op.map_or("-".into(), |o| format!("{:.2}", f(o)));
        let result = if self.held {
            "held".to_string()
        } else {
            format!("missed: {}", self.limits.join("; "))
        };
        let _ = writeln!(
            w,
            "{:<7} {:>12} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}  {result}",
            self.phase,
            load,
            self.offered_per_s.map_or("-".into(), |o| format!("{o:.1}")),
            format!("{:.1}", self.achieved_per_s),
            self.dropped,
            ms(|o| o.response_ms.p50),
            ms(|o| o.response_ms.p95),
            ms(|o| o.response_ms.p99),
            ms(|o| o.service_ms.p95),
            self.recall_mean.map_or("-".into(), |r| format!("{r:.3}")),
        );
    }
}

fn step_op(s: &OpStats) -> StepOp {
    StepOp {
        count: s.count(),
        failed: s.failed,
        response_ms: Tail::of(&s.latency),
        service_ms: Tail::of(&s.service),
    }
}

/// The whole search, as `capacity.json` holds it.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityReport {
    /// What the steps raised.
    pub sweep: Sweep,
    /// The profile whose objectives judged the steps.
    pub profile: Option<String>,
    /// Warm-up and hold of each step, seconds.
    pub warmup_s: u64,
    /// Measured time of each step, seconds.
    pub hold_s: u64,
    /// The rate sweep's users serving arrivals.
    pub max_in_flight: Option<usize>,
    /// Every step, in the order run.
    pub steps: Vec<Step>,
    /// The highest rate at which every objective held (the rate sweep: the offered rate; the
    /// concurrency sweep: the best achieved throughput); `None` when no step held.
    pub max_sustainable_per_s: Option<f64>,
    /// The load (rate or users) of that step.
    pub max_sustainable_load: Option<f64>,
    /// What failed at the lowest load that did not hold.
    pub limiting_objective: Option<String>,
    /// The lowest load that did not hold.
    pub limit_load: Option<f64>,
    /// Stopped by a signal before the search ended.
    pub interrupted: bool,
    /// Table layout.
    pub layout: String,
    /// Dataset description.
    pub dataset: String,
    /// Index settings (as the load test summary's `index`).
    pub index: String,
}

impl CapacityReport {
    /// A search with no steps yet; `setup` is the layout, dataset and index descriptions.
    pub fn new(s: &CapacitySettings, reports: &Reports, setup: [String; 3]) -> CapacityReport {
        let [layout, dataset, index] = setup;
        CapacityReport {
            sweep: s.sweep,
            profile: reports.profile.as_ref().map(|p| p.source.clone()),
            warmup_s: s.warmup.as_secs(),
            hold_s: s.hold.as_secs(),
            max_in_flight: (s.sweep == Sweep::Rate).then_some(s.max_in_flight),
            steps: Vec::new(),
            max_sustainable_per_s: None,
            max_sustainable_load: None,
            limiting_objective: None,
            limit_load: None,
            interrupted: false,
            layout,
            dataset,
            index,
        }
    }

    /// Adds a step.
    pub fn add(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// The best throughput a step that held achieved.
    pub fn best_achieved(&self) -> Option<f64> {
        self.steps
            .iter()
            .filter(|s| s.held)
            .map(|s| s.achieved_per_s)
            .reduce(f64::max)
    }

    /// Fills in the conclusion; whether any step held.
    pub fn conclude(&mut self) -> bool {
        let best = self
            .steps
            .iter()
            .filter(|s| s.held)
            .max_by(|a, b| a.load.total_cmp(&b.load));
        self.max_sustainable_load = best.map(|s| s.load);
        self.max_sustainable_per_s = match self.sweep {
            Sweep::Rate => best.map(|s| s.load),
            Sweep::Concurrency => self.best_achieved(),
        };
        let limit = self
            .steps
            .iter()
            .filter(|s| !s.held)
            .min_by(|a, b| a.load.total_cmp(&b.load));
        self.limit_load = limit.map(|s| s.load);
        self.limiting_objective = limit.map(|s| s.limits.join("; "));
        best.is_some()
    }

    /// The search's settings and the table's header.
    pub fn print_header(&self, w: &mut dyn Write) {
        let _ = writeln!(
            w,
            "capacity: sweeping {} ({}s warm-up + {}s hold per step{}), objectives of {}",
            match self.sweep {
                Sweep::Rate => "the offered rate (open model)",
                Sweep::Concurrency => "users with no think time (closed model)",
            },
            self.warmup_s,
            self.hold_s,
            self.max_in_flight
                .map_or(String::new(), |n| format!(", {n} users in flight at most")),
            self.profile.as_deref().unwrap_or("no profile")
        );
        let _ = writeln!(
            w,
            "{:<7} {:>12} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}  result",
            "phase",
            "load",
            "offered/s",
            "achieved/s",
            "dropped",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "svc p95",
            "recall"
        );
        let _ = writeln!(
            w,
            "(latencies: {}, response time from the intended start; svc = service time)",
            HEADLINE.name()
        );
    }

    /// The answer.
    pub fn print_conclusion(&self, w: &mut dyn Write) {
        let unit = |load: f64| match self.sweep {
            Sweep::Rate => format!("{load:.1}/s"),
            Sweep::Concurrency => format!("{load} users"),
        };
        let _ = match (self.max_sustainable_per_s, self.max_sustainable_load) {
            (Some(rate), Some(load)) => writeln!(
                w,
                "max sustainable: {rate:.1} operations/s{} (every objective held)",
                match self.sweep {
                    Sweep::Rate => String::new(),
                    Sweep::Concurrency => format!(" at {}", unit(load)),
                }
            ),
            _ => writeln!(
                w,
                "no step held: every objective must meet its target at the first load; lower --start"
            ),
        };
        if let (Some(load), Some(why)) = (self.limit_load, &self.limiting_objective) {
            let _ = writeln!(w, "limited at {} by: {why}", unit(load));
        }
        if self.interrupted {
            let _ = writeln!(w, "(interrupted: the search did not finish)");
        }
    }
}

/// The latency objectives that cover the headline search, one line per target:
/// `SLO p95 < 10 ms`.
fn slo_lines(report: &CapacityReport) -> Vec<(String, f64)> {
    let covers = ["all", "reads", "searches", HEADLINE.name()];
    let mut lines: Vec<(String, f64)> = Vec::new();
    let Some(first) = report.steps.first() else {
        return lines;
    };
    for v in &first.verdicts {
        if !(v.metric.ends_with("_ms") && covers.contains(&v.operations.as_str())) {
            continue;
        }
        let percentile = v.metric.trim_end_matches("_ms").replace('_', ".");
        let label = format!("SLO {percentile} < {} ms", v.target);
        if !lines.iter().any(|(l, _)| *l == label) {
            lines.push((label, v.target));
        }
    }
    lines
}

/// Both panels' coordinates: linear, in f64.
type Plane = Cartesian2d<RangedCoordf64, RangedCoordf64>;

/// One panel of the plot: linear axes from 0 to `top`, whole numbers on the x axis.
fn panel<'a>(
    area: &DrawingArea<SVGBackend<'a>, Shift>,
    title: &str,
    top: (f64, f64),
    desc: (&str, &str),
) -> Option<ChartContext<'a, SVGBackend<'a>, Plane>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..top.0, 0.0f64..top.1)
        .ok()?;
    let _ = chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .light_line_style(WHITE)
        .x_desc(desc.0)
        .y_desc(desc.1)
        .draw();
    Some(chart)
}

/// The series' legend, top left.
fn legend<'a>(chart: &mut ChartContext<'a, SVGBackend<'a>, Plane>) {
    let _ = chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw();
}

/// Response time p50/p95/p99 of the headline search against the load, with the
/// latency objectives' targets; and achieved against offered throughput.
// Long (about 130 lines): plotters' builder chain for two panels, read top to bottom.
pub fn plot_svg(report: &CapacityReport) -> String {
    let steps: Vec<&Step> = {
        let mut s: Vec<&Step> = report.steps.iter().collect();
        s.sort_by(|a, b| a.load.total_cmp(&b.load));
        s
    };
    let x_desc = match report.sweep {
        Sweep::Rate => "offered load (operations/s)",
        Sweep::Concurrency => "users (no think time)",
    };
    let hi = steps.last().map_or(10.0, |s| s.load) * 1.1;
    let tails: Vec<(f64, Tail)> = steps
        .iter()
        .filter_map(|s| s.headline().map(|o| (s.load, o.response_ms)))
        .collect();
    let targets = slo_lines(report);
    let y_max = tails
        .iter()
        .map(|(_, t)| t.p99)
        .chain(targets.iter().map(|t| t.1))
        .fold(1.0, f64::max)
        * 1.2;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 460)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let (left, right) = root.split_horizontally(550);
        let title = format!("{} response time (ms)", HEADLINE.name());
        if let Some(mut chart) = panel(&left, &title, (hi, y_max), (x_desc, "ms")) {
            let pick: [(&str, Percentile); 3] =
                [("p50", |t| t.p50), ("p95", |t| t.p95), ("p99", |t| t.p99)];
            for (i, (name, f)) in pick.into_iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                let xy: Vec<(f64, f64)> = tails.iter().map(|(x, t)| (*x, f(t))).collect();
                if let Ok(drawn) =
                    chart.draw_series(LineSeries::new(xy.clone(), color.stroke_width(2)))
                {
                    drawn.label(name).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
                }
                let _ = chart.draw_series(xy.iter().map(|&p| Circle::new(p, 3, color.filled())));
            }
            for (label, target) in &targets {
                let line = vec![(0.0, *target), (hi, *target)];
                let _ = chart.draw_series(LineSeries::new(line, RED.mix(0.6).stroke_width(1)));
                let _ = chart.draw_series(std::iter::once(Text::new(
                    label.clone(),
                    (hi * 0.02, *target),
                    ("sans-serif", 11).into_font().color(&RED),
                )));
            }
            legend(&mut chart);
        }
        let achieved: Vec<(f64, f64)> = steps.iter().map(|s| (s.load, s.achieved_per_s)).collect();
        let top = achieved
            .iter()
            .map(|p| p.1)
            .chain(steps.iter().filter_map(|s| s.offered_per_s))
            .fold(1.0, f64::max)
            * 1.2;
        let title = "achieved throughput (operations/s)";
        if let Some(mut chart) = panel(&right, title, (hi, top), (x_desc, "per second")) {
            if report.sweep == Sweep::Rate {
                let end = hi.min(top);
                let diagonal = vec![(0.0, 0.0), (end, end)];
                let _ = chart
                    .draw_series(LineSeries::new(diagonal, BLACK.mix(0.4).stroke_width(1)))
                    .map(|d| {
                        d.label("achieved = offered").legend(|(x, y)| {
                            PathElement::new(vec![(x, y), (x + 16, y)], BLACK.mix(0.4))
                        })
                    });
            }
            let color = Palette99::pick(3).to_rgba();
            if let Ok(drawn) =
                chart.draw_series(LineSeries::new(achieved.clone(), color.stroke_width(2)))
            {
                drawn.label("achieved").legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            }
            let _ = chart.draw_series(steps.iter().map(|s| {
                let style = if s.held { color.filled() } else { RED.filled() };
                Circle::new((s.load, s.achieved_per_s), 4, style)
            }));
            legend(&mut chart);
        }
        let _ = root.present();
    }
    svg
}
