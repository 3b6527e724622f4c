//! The charts of `report.html`, drawn by plotters as SVG text: the once-a-second history over
//! time (throughput per operation, latency percentiles, failures, users) and the latency
//! percentile spectrum of the final histograms. Each `<svg>` carries `data-points="N"`, the
//! number of data points it drew, and a `<title>`.

use hdrhistogram::Histogram;

use crate::engine::stats::{HistorySample, Snapshot, Timeline};
use crate::workload::ops::Op;

/// Pixel size of every chart.
const SIZE: (u32, u32) = (960, 340);
/// The spectrum's x axis ends at log10(1 / (1 - 0.9999)): p99.99.
const SPECTRUM_DECADES: f64 = 4.0;
/// Spectrum samples per decade of 1 / (1 - p).
const SPECTRUM_STEPS: usize = 20;
/// Index of p50, p95 and p99 in a history row's percentiles (`QUANTILES`).
const HISTORY_PERCENTILES: [(&str, usize); 3] = [("p50", 0), ("p95", 5), ("p99", 7)];

/// Line colours (Tableau 10), distinguishable on white; repeats after ten series.
const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// One named line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// (x, y) in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// What a chart shows besides its data.
pub struct Chart<'a> {
    /// Caption, also the SVG's `<title>`.
    pub title: &'a str,
    /// X axis description.
    pub x_desc: &'a str,
    /// Y axis description.
    pub y_desc: &'a str,
    /// X tick labels from x values.
    pub x_label: fn(&f64) -> String,
    /// How many x ticks at most.
    pub x_ticks: usize,
    /// Shaded spans of x (maintenance events), behind the lines.
    pub bands: &'a [(f64, f64)],
}

/// Seconds since the start of the run at each sample (the end of its interval).
fn sample_times(history: &[HistorySample]) -> Vec<f64> {
    let mut t = 0.0;
    history
        .iter()
        .map(|s| {
            t += s.interval.as_secs_f64();
            t
        })
        .collect()
}

/// Operations per second of each operation that ran, over time.
pub fn throughput_series(history: &[HistorySample]) -> Vec<Series> {
    let times = sample_times(history);
    let mut series: Vec<Series> = Vec::new();
    for op in Op::ALL {
        let points: Vec<(f64, f64)> = history
            .iter()
            .zip(&times)
            .filter_map(|(s, t)| {
                let row = s.rows.iter().find(|(o, _)| *o == Some(op))?;
                Some((*t, row.1.count as f64 / s.interval.as_secs_f64().max(1e-3)))
            })
            .collect();
        if points.iter().any(|p| p.1 > 0.0) {
            series.push(Series {
                name: op.name().to_string(),
                points,
            });
        }
    }
    series
}

/// p50, p95 and p99 of `op` (None: all operations together) over each interval, ms
/// (intervals in which nothing of it finished are left out).
pub fn latency_series(history: &[HistorySample], op: Option<Op>) -> Vec<Series> {
    let times = sample_times(history);
    HISTORY_PERCENTILES
        .iter()
        .map(|(name, i)| Series {
            name: name.to_string(),
            points: history
                .iter()
                .zip(&times)
                .filter_map(|(s, t)| {
                    let row = s.rows.iter().find(|(o, _)| *o == op)?;
                    Some((*t, row.1.percentiles?[*i] as f64 / 1000.0))
                })
                .collect(),
        })
        .collect()
}

/// The operations that ran, in [`Op::ALL`] order.
pub fn operations_run(history: &[HistorySample]) -> Vec<Op> {
    Op::ALL
        .into_iter()
        .filter(|op| {
            history
                .iter()
                .any(|s| s.rows.iter().any(|(o, r)| *o == Some(*op) && r.count > 0))
        })
        .collect()
}

/// The busiest pool's usage each second, percent.
pub fn pool_series(timeline: &Timeline) -> Vec<Series> {
    vec![Series {
        name: "busiest pool, peak in use".into(),
        points: timeline.pool_usage_pct.clone(),
    }]
}

/// The recall samples taken under load, one series per operation sampled.
pub fn recall_series(timeline: &Timeline) -> Vec<Series> {
    Op::ALL
        .into_iter()
        .filter_map(|op| {
            let points: Vec<(f64, f64)> = timeline
                .recall
                .iter()
                .filter(|(_, o, _)| *o == op)
                .map(|(t, _, r)| (*t, *r))
                .collect();
            (!points.is_empty()).then(|| Series {
                name: op.name().to_string(),
                points,
            })
        })
        .collect()
}

/// Failures per second of all operations together, and users running, over time.
pub fn failures_and_users(history: &[HistorySample]) -> (Series, Series) {
    let times = sample_times(history);
    let failed = history
        .iter()
        .zip(&times)
        .map(|(s, t)| {
            let failed = s
                .rows
                .iter()
                .find(|(o, _)| o.is_none())
                .map_or(0, |r| r.1.failed);
            (*t, failed as f64 / s.interval.as_secs_f64().max(1e-3))
        })
        .collect();
    let users = history
        .iter()
        .zip(&times)
        .map(|(s, t)| (*t, s.users as f64))
        .collect();
    (
        Series {
            name: "failures/s".into(),
            points: failed,
        },
        Series {
            name: "users".into(),
            points: users,
        },
    )
}

/// One operation's response time (ms) against log10(1 / (1 - p)), p from 0 to 0.9999.
fn spectrum_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    (0..=SPECTRUM_DECADES as usize * SPECTRUM_STEPS)
        .map(|i| {
            let x = i as f64 / SPECTRUM_STEPS as f64;
            let percentile = 100.0 * (1.0 - 10f64.powf(-x));
            (x, h.value_at_percentile(percentile) as f64 / 1000.0)
        })
        .collect()
}

/// The latency percentile spectrum of every operation that ran, from the final histograms.
pub fn spectrum_series(snapshot: &Snapshot) -> Vec<Series> {
    Op::ALL
        .iter()
        .filter(|op| !snapshot.op(**op).latency.is_empty())
        .map(|op| Series {
            name: op.name().to_string(),
            points: spectrum_points(&snapshot.op(*op).latency),
        })
        .collect()
}

/// A percentile label for a spectrum x value: 0 -> "p0", 2 -> "p99", 4 -> "p99.99".
pub fn percentile_label(x: &f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let text = format!("{p:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("p{text}")
}

/// Seconds as a tick label.
pub fn seconds_label(x: &f64) -> String {
    format!("{x:.0}")
}

/// The axes' ranges: x over every point (at least 1 wide), y from 0 to 10 % above the top.
fn ranges(series: &[Series]) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let all = || series.iter().flat_map(|s| s.points.iter());
    let x0 = all().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x0 = if x0.is_finite() { x0 } else { 0.0 };
    let x1 = all().map(|p| p.0).fold(x0 + 1.0, f64::max);
    let y1 = all().map(|p| p.1).fold(0.0, f64::max);
    let y1 = if y1 > 0.0 { y1 * 1.1 } else { 1.0 };
    (x0..x1, 0.0..y1)
}

/// Draws `series` as lines (and dots, so that a lone point shows) into an SVG string with
/// `data-points` and a `<title>`.
pub fn line_chart(chart: &Chart, series: &[Series]) -> String {
    let series: Vec<Series> = series.iter().map(thin).collect();
    let mut svg = String::new();
    draw(&mut svg, chart, &series);
    let points = series.iter().map(|s| s.points.len()).sum();
    annotate(svg, chart.title, points)
}

/// Most points a line keeps: an hour of seconds would make the page tens of megabytes.
const MAX_POINTS: usize = 900;
/// Lines with more points than this are drawn without a dot per point.
const DOTS_UP_TO: usize = 120;

/// `s` with at most [`MAX_POINTS`] points: consecutive points in buckets, each bucket's
/// highest kept (a spike is never smoothed away).
fn thin(s: &Series) -> Series {
    let n = s.points.len();
    if n <= MAX_POINTS {
        return s.clone();
    }
    let bucket = n.div_ceil(MAX_POINTS);
    Series {
        name: s.name.clone(),
        points: s
            .points
            .chunks(bucket)
            .filter_map(|c| c.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)))
            .collect(),
    }
}

/// Draws the chart into `svg`; plotters' errors leave it partly drawn.
fn draw(svg: &mut String, chart: &Chart, series: &[Series]) {
    use plotters::prelude::*;
    let (x_range, y_range) = ranges(series);
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    let _ = root.fill(&WHITE);
    let Ok(mut plot) = ChartBuilder::on(&root)
        .caption(chart.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range, y_range)
    else {
        return;
    };
    let _ = plot
        .configure_mesh()
        .x_desc(chart.x_desc)
        .y_desc(chart.y_desc)
        .x_label_formatter(&chart.x_label)
        .x_labels(chart.x_ticks)
        .draw();
    let (y0, y1) = (plot.y_range().start, plot.y_range().end);
    let shade = RGBColor(255, 170, 0).mix(0.18).filled();
    let _ = plot.draw_series(
        chart
            .bands
            .iter()
            .map(|(a, b)| Rectangle::new([(*a, y0), (b.max(a + 0.3), y1)], shade)),
    );
    for (i, s) in series.iter().enumerate() {
        let (r, g, b) = PALETTE[i % PALETTE.len()];
        let color = RGBColor(r, g, b).to_rgba();
        let _ = plot.draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)));
        // A dot per point shows a lone point; on a long line it only weighs the page.
        if s.points.len() <= DOTS_UP_TO {
            let _ = plot.draw_series(s.points.iter().map(|p| Circle::new(*p, 2, color.filled())));
        }
    }
    let _ = root.present();
}

/// The legend of a chart's series, as HTML below it: a legend drawn inside the plot covers
/// the lines it names.
pub fn legend(series: &[Series]) -> String {
    let items: Vec<String> = series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (r, g, b) = PALETTE[i % PALETTE.len()];
            format!(
                "<span class=\"key\"><span style=\"background:#{r:02x}{g:02x}{b:02x}\"></span>{}</span>",
                crate::report::html::escape(&s.name)
            )
        })
        .collect();
    format!("<p class=\"legend\">{}</p>", items.join(" "))
}

/// Adds `data-points` to the `<svg>` element and a `<title>` as its first child.
pub fn annotate(svg: String, title: &str, points: usize) -> String {
    let Some(open_end) = svg.find('>') else {
        return svg;
    };
    let (open, rest) = svg.split_at(open_end + 1);
    let open = open.replacen(
        "<svg ",
        &format!("<svg data-points=\"{points}\" role=\"img\" "),
        1,
    );
    format!(
        "{open}\n<title>{}</title>{rest}",
        crate::report::html::escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_labels_read_as_nines() {
        assert_eq!(percentile_label(&0.0), "p0");
        assert_eq!(percentile_label(&1.0), "p90");
        assert_eq!(percentile_label(&2.0), "p99");
        assert_eq!(percentile_label(&3.0), "p99.9");
        assert_eq!(percentile_label(&4.0), "p99.99");
    }

    #[test]
    fn a_chart_counts_its_points_and_has_a_title() {
        let series = vec![
            Series {
                name: "a".into(),
                points: vec![(1.0, 2.0), (2.0, 3.0)],
            },
            Series {
                name: "b".into(),
                points: vec![(1.0, 5.0)],
            },
        ];
        let chart = Chart {
            title: "ops <per> second",
            x_desc: "s",
            y_desc: "ops/s",
            x_label: seconds_label,
            x_ticks: 10,
            bands: &[],
        };
        let svg = line_chart(&chart, &series);
        assert!(svg.starts_with("<svg data-points=\"3\" "), "{svg}");
        assert!(
            svg.contains("<title>ops &lt;per&gt; second</title>"),
            "{svg}"
        );
        assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
    }

    #[test]
    fn long_lines_are_thinned_keeping_their_spikes() {
        let mut points: Vec<(f64, f64)> = (0..3600).map(|i| (i as f64, 1.0)).collect();
        points[1234].1 = 50.0;
        let s = Series {
            name: "p99".into(),
            points,
        };
        let thinned = thin(&s);
        assert!(
            thinned.points.len() <= MAX_POINTS,
            "{}",
            thinned.points.len()
        );
        assert!(thinned.points.contains(&(1234.0, 50.0)));
        let short = Series {
            name: "a".into(),
            points: vec![(1.0, 2.0)],
        };
        assert_eq!(thin(&short), short);
    }

    #[test]
    fn the_spectrum_rises_to_p99_99() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v * 10).unwrap();
        }
        let points = spectrum_points(&h);
        assert_eq!(points.len(), 81);
        assert_eq!(points[0].0, 0.0);
        assert_eq!(points[80].0, 4.0);
        assert!(points.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!((points[40].1 - 99.0).abs() < 1.0, "p99 {:?}", points[40]);
    }
}
