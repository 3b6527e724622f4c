//! The verdicts: each metric of each row BASE and NEW share, judged against its limit; rows
//! one side lacks; and the settings that make two runs incomparable.

use super::input::Run;
use crate::profile::regression::{Limits, Measure};

/// One metric's (or one row's) verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit either way.
    Ok,
    /// Worse beyond the limit: a regression.
    Worse,
    /// Better beyond the limit.
    Better,
    /// BASE has it and NEW does not: a regression.
    Missing,
    /// Only NEW has it: reported, never a regression.
    New,
}

impl Verdict {
    /// The table's word.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Worse => "worse",
            Verdict::Better => "better",
            Verdict::Missing => "missing",
            Verdict::New => "new",
        }
    }

    /// Whether it fails the comparison.
    pub fn is_regression(self) -> bool {
        matches!(self, Verdict::Worse | Verdict::Missing)
    }
}

/// Rounding in the summaries (µs, three decimals) must not tip a change that equals its limit.
const EPSILON: f64 = 1e-9;

/// How `new` compares with `base` for `m`, given `m`'s limit: relative to the baseline for
/// latency and throughput (a baseline of 0 makes any worsening infinite), in absolute points
/// for the shares. At the limit exactly is still `ok`; better by more than the limit is
/// `better`.
pub fn judge(m: Measure, base: f64, new: f64, limit: f64) -> Verdict {
    let worsening = if m.higher_is_worse() {
        new - base
    } else {
        base - new
    };
    let amount = if m.absolute() {
        worsening
    } else if base != 0.0 {
        worsening / base.abs()
    } else if worsening.abs() < EPSILON {
        0.0
    } else {
        worsening.signum() * f64::INFINITY
    };
    if amount > limit + EPSILON {
        Verdict::Worse
    } else if amount < -(limit + EPSILON) {
        Verdict::Better
    } else {
        Verdict::Ok
    }
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The row (operation, benchmark, step).
    pub key: String,
    /// The metric; `None` when the whole row is on one side only.
    pub measure: Option<Measure>,
    /// BASE's value.
    pub base: Option<f64>,
    /// NEW's value.
    pub new: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
}

impl Line {
    /// NEW − BASE.
    pub fn change(&self) -> Option<f64> {
        Some(self.new? - self.base?)
    }

    /// The change as a share of BASE (none when BASE is 0).
    pub fn relative(&self) -> Option<f64> {
        let base = self.base.filter(|b| *b != 0.0)?;
        Some(self.change()? / base.abs())
    }
}

/// Every line, in BASE's order, then NEW's rows BASE lacks.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The table.
    pub lines: Vec<Line>,
    /// The limits judged by.
    pub limits: Limits,
}

impl Comparison {
    /// The lines that fail the comparison.
    pub fn regressions(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(|l| l.verdict.is_regression())
    }

    /// Metrics judged on both sides.
    pub fn judged(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| l.measure.is_some() && l.base.is_some() && l.new.is_some())
            .count()
    }

    /// Rows with a metric judged on both sides.
    pub fn rows_judged(&self) -> usize {
        let mut keys: Vec<&str> = self
            .lines
            .iter()
            .filter(|l| l.measure.is_some() && l.base.is_some() && l.new.is_some())
            .map(|l| l.key.as_str())
            .collect();
        keys.dedup();
        keys.len()
    }

    /// Lines with this verdict.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.lines.iter().filter(|l| l.verdict == verdict).count()
    }
}

/// Pairs the rows by key and judges every metric either side has.
pub fn compare(base: &Run, new: &Run, limits: &Limits) -> Comparison {
    let mut lines = Vec::new();
    // The last of equal keys, as a map built from the rows would keep.
    let find = |key: &str| new.rows.iter().rev().find(|r| r.key == key);
    for b in base.rows.iter().filter(|r| r.held) {
        let Some(n) = find(&b.key) else {
            lines.push(whole_row(&b.key, Verdict::Missing));
            continue;
        };
        for m in Measure::ALL {
            let verdict = match (b.get(m), n.get(m)) {
                (Some(bv), Some(nv)) => judge(m, bv, nv, limits.of(m)),
                (Some(_), None) => Verdict::Missing,
                (None, Some(_)) => Verdict::New,
                (None, None) => continue,
            };
            lines.push(Line {
                key: b.key.clone(),
                measure: Some(m),
                base: b.get(m),
                new: n.get(m),
                verdict,
            });
        }
    }
    for n in new.rows.iter().filter(|r| r.held) {
        if !base.rows.iter().any(|b| b.held && b.key == n.key) {
            lines.push(whole_row(&n.key, Verdict::New));
        }
    }
    Comparison {
        lines,
        limits: *limits,
    }
}

fn whole_row(key: &str, verdict: Verdict) -> Line {
    Line {
        key: key.into(),
        measure: None,
        base: None,
        new: None,
        verdict,
    }
}

/// The settings that differ, each named: `index ef_search 40 ≠ 80`, or the differing part of
/// a description (`dataset "4 namespaces × 500 rows" ≠ "4 namespaces × 600 rows"`). A setting
/// one side did not record (an earlier version's file) is not compared.
pub fn differences(base: &[(String, String)], new: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (name, b) in base {
        let Some((_, n)) = new.iter().find(|(k, _)| k == name) else {
            continue;
        };
        if b.is_empty() || n.is_empty() || b == n {
            continue;
        }
        out.extend(describe(name, b, n));
    }
    out
}

/// How two descriptions differ: part by part (", "-separated), and within a part key by key
/// (`m=16`) when both are lists of settings.
fn describe(name: &str, b: &str, n: &str) -> Vec<String> {
    let (bp, np): (Vec<&str>, Vec<&str>) = (b.split(", ").collect(), n.split(", ").collect());
    if bp.len() != np.len() {
        return vec![format!("{name} {} ≠ {}", quote(b), quote(n))];
    }
    let mut out = Vec::new();
    for (b, n) in bp.into_iter().zip(np).filter(|(b, n)| b != n) {
        let (bt, nt): (Vec<&str>, Vec<&str>) = (
            b.split_whitespace().collect(),
            n.split_whitespace().collect(),
        );
        let keyed = bt.len() == nt.len()
            && bt.iter().zip(&nt).all(|(x, y)| {
                x == y || matches!((x.split_once('='), y.split_once('=')), (Some((kx, _)), Some((ky, _))) if kx == ky)
            });
        if !keyed {
            out.push(format!("{name} {} ≠ {}", quote(b), quote(n)));
            continue;
        }
        for (x, y) in bt.iter().zip(&nt).filter(|(x, y)| x != y) {
            let (key, xv) = x.split_once('=').unwrap_or((x, ""));
            let yv = y.split_once('=').map_or("", |(_, v)| v);
            out.push(format!("{name} {key} {xv} ≠ {yv}"));
        }
    }
    out
}

/// A value with spaces in quotes, so that where it ends shows.
fn quote(s: &str) -> String {
    if s.contains(char::is_whitespace) {
        format!("\"{s}\"")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worse_means_slower_fewer_or_less_accurate_beyond_the_limit() {
        use Measure::*;
        use Verdict::*;
        // Latency: relative to the baseline.
        assert_eq!(judge(P95, 10.0, 11.0, 0.1), Ok, "at the limit is ok");
        assert_eq!(judge(P95, 10.0, 11.01, 0.1), Worse);
        assert_eq!(judge(P95, 10.0, 30.0, 0.1), Worse);
        assert_eq!(judge(P95, 10.0, 8.0, 0.1), Better);
        assert_eq!(judge(P99, 10.0, 9.5, 0.1), Ok);
        // Throughput: lower is worse.
        assert_eq!(judge(Throughput, 1000.0, 500.0, 0.1), Worse);
        assert_eq!(judge(Throughput, 1000.0, 950.0, 0.1), Ok);
        assert_eq!(judge(Throughput, 1000.0, 1200.0, 0.1), Better);
        // Shares: absolute points, from 0 too.
        assert_eq!(judge(FailureRate, 0.0, 0.0005, 0.001), Ok);
        assert_eq!(judge(FailureRate, 0.0, 0.002, 0.001), Worse);
        assert_eq!(judge(FailureRate, 0.01, 0.0, 0.001), Better);
        assert_eq!(judge(Recall, 0.95, 0.945, 0.01), Ok);
        assert_eq!(judge(Recall, 0.95, 0.93, 0.01), Worse);
        assert_eq!(judge(Recall, 0.90, 0.99, 0.01), Better);
        // A zero limit: any worsening fails.
        assert_eq!(judge(P50, 1.0, 1.001, 0.0), Worse);
        assert_eq!(judge(P50, 1.0, 1.0, 0.0), Ok);
        // A baseline of 0: no relative change exists, any worsening is beyond every limit.
        assert_eq!(judge(P50, 0.0, 0.1, 10.0), Worse);
        assert_eq!(judge(Throughput, 0.0, 5.0, 0.1), Better);
        assert_eq!(judge(Throughput, 0.0, 0.0, 0.1), Ok);
    }

    use super::super::input::Row;

    fn run(rows: Vec<Row>) -> Run {
        let mut run = super::super::input::run_of(super::super::input::Kind::Bench);
        run.rows = rows;
        run
    }

    fn row(key: &str, p95: f64, recall: Option<f64>, held: bool) -> Row {
        Row {
            key: key.into(),
            values: [
                Some(1.0),
                Some(p95),
                Some(3.0),
                Some(100.0),
                Some(0.0),
                recall,
            ],
            held,
        }
    }

    #[test]
    fn missing_rows_and_metrics_fail_new_ones_are_reported() {
        let base = run(vec![
            row("a", 2.0, Some(0.9), true),
            row("b", 2.0, None, true),
            row("past the knee", 50.0, None, false),
        ]);
        let new = run(vec![
            row("a", 6.0, None, true),
            row("c", 2.0, None, true),
            row("past the knee", 90.0, None, false),
        ]);
        let c = compare(&base, &new, &Limits::default());
        let verdicts: Vec<(String, Option<Measure>, Verdict)> = c
            .lines
            .iter()
            .filter(|l| l.verdict != Verdict::Ok)
            .map(|l| (l.key.clone(), l.measure, l.verdict))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("a".into(), Some(Measure::P95), Verdict::Worse),
                ("a".into(), Some(Measure::Recall), Verdict::Missing),
                ("b".into(), None, Verdict::Missing),
                ("c".into(), None, Verdict::New),
            ]
        );
        assert_eq!(c.regressions().count(), 3);
        // a: five metrics on both sides; the step past BASE's knee is no baseline.
        assert_eq!(c.judged(), 5);
        let worse = &c.lines[1];
        assert_eq!((worse.change(), worse.relative()), (Some(4.0), Some(2.0)));
    }

    #[test]
    fn differing_settings_are_named() {
        let s = |index: &str, dataset: &str| {
            vec![
                ("layout".to_string(), "list".to_string()),
                ("m".to_string(), "16".to_string()),
                ("index".to_string(), index.to_string()),
                ("dataset".to_string(), dataset.to_string()),
            ]
        };
        let hnsw = "vector cosine, hnsw m=16 ef_construction=64 ef_search=40 iterative_scan=off";
        let data = "synthetic: 4 namespaces × 500 rows, dim 384, seed 42";
        assert!(differences(&s(hnsw, data), &s(hnsw, data)).is_empty());
        let wider = hnsw
            .replace("ef_search=40", "ef_search=80")
            .replace("m=16", "m=24");
        let other = data.replace("500 rows", "600 rows");
        assert_eq!(
            differences(&s(hnsw, data), &s(&wider, &other)),
            [
                "index m 16 ≠ 24",
                "index ef_search 40 ≠ 80",
                "dataset \"synthetic: 4 namespaces × 500 rows\" ≠ \"synthetic: 4 namespaces × 600 rows\"",
            ]
        );
        let ivf = "vector cosine, ivfflat lists=100 probes=10 iterative_scan=off";
        assert_eq!(
            differences(&s(hnsw, data), &s(ivf, data)),
            [format!("index \"{}\" ≠ \"{}\"", &hnsw[15..], &ivf[15..])]
        );
        // Not recorded on one side (an earlier version's file): not compared.
        assert!(differences(&s("", data), &s(ivf, data)).is_empty());
    }
}
