//! The comparison as aligned text (the console) and as GitHub-flavoured markdown (a pull
//! request comment, `$GITHUB_STEP_SUMMARY`), with the same columns and the same verdict line.

use std::io::{self, Write};

use super::judge::{Comparison, Line, Verdict};
use super::Outcome;
use crate::profile::regression::Measure;

const HEADER: [&str; 8] = [
    "operation",
    "metric",
    "base",
    "new",
    "change",
    "change %",
    "limit",
    "verdict",
];

/// Columns aligned left (the rest, numbers, align right).
const LEFT: [bool; 8] = [true, true, false, false, false, false, false, true];

/// A value as the summaries' own tables show it.
fn value(m: Measure, v: f64) -> String {
    match m {
        Measure::P50 | Measure::P95 | Measure::P99 => format!("{v:.3}"),
        Measure::Throughput => format!("{v:.1}"),
        Measure::FailureRate | Measure::Recall => format!("{v:.4}"),
    }
}

/// A change, signed.
fn change(m: Measure, d: f64) -> String {
    let s = value(m, d);
    if d >= 0.0 && !s.starts_with('-') {
        format!("+{s}")
    } else {
        s
    }
}

/// The eight cells of a line.
fn cells(line: &Line, c: &Comparison) -> [String; 8] {
    let dash = || "-".to_string();
    let Some(m) = line.measure else {
        let (base, new) = match line.verdict {
            Verdict::New => (dash(), "ran".to_string()),
            _ => ("ran".to_string(), "absent".to_string()),
        };
        return [
            line.key.clone(),
            "(all)".into(),
            base,
            new,
            dash(),
            dash(),
            dash(),
            line.verdict.label().into(),
        ];
    };
    let shown = |v: Option<f64>| v.map_or_else(dash, |v| value(m, v));
    [
        line.key.clone(),
        m.label().into(),
        shown(line.base),
        shown(line.new),
        line.change().map_or_else(dash, |d| change(m, d)),
        line.relative()
            .map_or_else(dash, |r| format!("{:+.1}%", r * 100.0)),
        c.limits.show(m),
        line.verdict.label().into(),
    ]
}

/// The verdict in one line: what failed, or how much was compared.
pub fn verdict_line(o: &Outcome) -> String {
    let c = &o.comparison;
    let failed: Vec<String> = c.regressions().map(|l| describe(l, c)).collect();
    if failed.is_empty() {
        let better = c.count(Verdict::Better);
        format!(
            "no regression: {} metrics of {} {} compared, none worse beyond its limit{}",
            c.judged(),
            c.rows_judged(),
            o.kind.rows(),
            if better > 0 {
                format!("; {better} better")
            } else {
                String::new()
            }
        )
    } else {
        format!(
            "REGRESSION: {} worse beyond the limits: {}",
            failed.len(),
            failed.join("; ")
        )
    }
}

/// One regression: `single_shard_search ef=40 scan=off p95 ms +200.0% (limit 10%)`.
fn describe(l: &Line, c: &Comparison) -> String {
    match l.measure {
        None => format!("{} absent from NEW", l.key),
        Some(m) if l.new.is_none() => format!("{} {} absent from NEW", l.key, m.label()),
        Some(m) => {
            let by = match (m.absolute(), l.relative(), l.change()) {
                (false, Some(r), _) => format!("{:+.1}%", r * 100.0),
                (_, _, Some(d)) => change(m, d),
                _ => String::new(),
            };
            format!("{} {} {by} (limit {})", l.key, m.label(), c.limits.show(m))
        }
    }
}

/// The console: what was compared, the table, the verdict line last.
pub fn text(w: &mut dyn Write, o: &Outcome) -> io::Result<()> {
    writeln!(w, "compare: {}", o.kind)?;
    writeln!(w, "  base: {}", o.base.display())?;
    writeln!(w, "  new:  {}", o.new.display())?;
    writeln!(w, "  limits: {}{}", o.comparison.limits, o.limits_from())?;
    for note in &o.notes {
        writeln!(w, "  note: {note}")?;
    }
    writeln!(w)?;
    let rows: Vec<[String; 8]> = o
        .comparison
        .lines
        .iter()
        .map(|l| cells(l, &o.comparison))
        .collect();
    let header = HEADER.map(String::from);
    let mut widths = [0; 8];
    for r in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            if LEFT[i] {
                line.push_str(cell);
                line.push_str(&pad);
            } else {
                line.push_str(&pad);
                line.push_str(cell);
            }
        }
        writeln!(w, "{}", line.trim_end())?;
    }
    writeln!(w)?;
    writeln!(w, "verdict: {}", verdict_line(o))
}

/// GitHub-flavoured markdown: the verdict line first, then the table.
pub fn markdown(w: &mut dyn Write, o: &Outcome) -> io::Result<()> {
    let regressed = o.comparison.regressions().next().is_some();
    let mark = if regressed { "❌" } else { "✅" };
    writeln!(w, "{mark} **{}**", escape(&verdict_line(o)))?;
    writeln!(w)?;
    writeln!(
        w,
        "{}: `{}` (base) → `{}` (new); limits: {}{}",
        o.kind,
        o.base.display(),
        o.new.display(),
        o.comparison.limits,
        o.limits_from()
    )?;
    for note in &o.notes {
        writeln!(w, "\n> {}", escape(note))?;
    }
    for warning in &o.warnings {
        writeln!(w, "\n> ⚠️ {}", escape(warning))?;
    }
    writeln!(w)?;
    writeln!(w, "| {} |", HEADER.join(" | "))?;
    let align: Vec<&str> = LEFT
        .iter()
        .map(|&l| if l { ":---" } else { "---:" })
        .collect();
    writeln!(w, "| {} |", align.join(" | "))?;
    for l in &o.comparison.lines {
        let mut row = cells(l, &o.comparison).map(|c| escape(&c));
        if l.verdict.is_regression() {
            row[7] = format!("**{}**", row[7]);
        }
        writeln!(w, "| {} |", row.join(" | "))?;
    }
    Ok(())
}

/// Markdown-safe: a `|` would split a table cell, a `*` start emphasis (GitHub leaves the
/// underscores inside operation names alone).
fn escape(s: &str) -> String {
    s.replace('|', "\\|").replace('*', "\\*")
}
