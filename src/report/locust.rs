//! Locust-compatible CSVs (`_stats.csv`, `_failures.csv`, `_stats_history.csv`) with Locust's
//! exact column names, so dashboards and scripts written for Locust read ours unchanged.
//! Times are milliseconds, as Locust's are, but with microsecond precision (three decimals).

use std::io::Write;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::engine::operation::METHOD;
use crate::engine::stats::{HistorySample, OpStats, Snapshot, QUANTILES};
use crate::workload::ops::Op;

/// Locust's column names for its default percentiles ([`QUANTILES`], in the same order).
pub const PERCENTILES: [&str; 11] = [
    "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
];

/// Header of `load_test_stats.csv`.
pub fn stats_header() -> Vec<&'static str> {
    let mut h = vec![
        "Type",
        "Name",
        "Request Count",
        "Failure Count",
        "Median Response Time",
        "Average Response Time",
        "Min Response Time",
        "Max Response Time",
        "Average Content Size",
        "Requests/s",
        "Failures/s",
    ];
    h.extend(PERCENTILES);
    h
}

/// Header of `load_test_failures.csv` (Locust 2.x's).
pub const FAILURES_HEADER: [&str; 6] = [
    "Method",
    "Name",
    "Error",
    "Occurrences",
    "First Seen",
    "Last Seen",
];

/// Header of `load_test_stats_history.csv`.
pub fn history_header() -> Vec<&'static str> {
    let mut h = vec![
        "Timestamp",
        "User Count",
        "Type",
        "Name",
        "Requests/s",
        "Failures/s",
    ];
    h.extend(PERCENTILES);
    h.extend([
        "Total Request Count",
        "Total Failure Count",
        "Total Median Response Time",
        "Total Average Response Time",
        "Total Min Response Time",
        "Total Max Response Time",
        "Total Average Content Size",
    ]);
    h
}

/// Microseconds as milliseconds with three decimals.
pub fn ms(us: f64) -> String {
    format!("{:.3}", us / 1000.0)
}

fn percentiles(h: &Histogram<u64>) -> Vec<String> {
    QUANTILES
        .iter()
        .map(|q| {
            if h.is_empty() {
                "N/A".to_string()
            } else {
                ms(h.value_at_percentile(*q) as f64)
            }
        })
        .collect()
}

fn min_ms(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        "0".into()
    } else {
        ms(h.min() as f64)
    }
}

/// Rows: each operation that ran, then "Aggregated" (whose Type is empty, as in Locust).
fn rows(snapshot: &Snapshot) -> Vec<(&'static str, &'static str, OpStats)> {
    let mut rows: Vec<_> = Op::ALL
        .iter()
        .filter(|op| snapshot.op(**op).count() > 0)
        .map(|op| (METHOD, op.name(), snapshot.op(*op).clone()))
        .collect();
    rows.push(("", "Aggregated", snapshot.aggregated()));
    rows
}

/// Writes `load_test_stats.csv`; rates are per second of `elapsed` wall-clock time.
pub fn write_stats<W: Write>(w: W, snapshot: &Snapshot, elapsed: Duration) -> csv::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(stats_header())?;
    let secs = elapsed.as_secs_f64().max(1e-9);
    for (kind, name, s) in rows(snapshot) {
        let mut rec = vec![
            kind.to_string(),
            name.to_string(),
            s.count().to_string(),
            s.failed.to_string(),
            if s.latency.is_empty() {
                "0".into()
            } else {
                ms(s.latency.value_at_quantile(0.5) as f64)
            },
            ms(s.latency.mean()),
            min_ms(&s.latency),
            ms(s.latency.max() as f64),
            format!("{:.0}", s.mean_bytes()),
            format!("{:.3}", s.count() as f64 / secs),
            format!("{:.3}", s.failed as f64 / secs),
        ];
        rec.extend(percentiles(&s.latency));
        out.write_record(rec)?;
    }
    out.flush()?;
    Ok(())
}

/// Writes `load_test_failures.csv`: one row per operation and failure class, with when it
/// was first and last seen (Unix seconds, as the history's timestamps).
pub fn write_failures<W: Write>(w: W, snapshot: &Snapshot) -> csv::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(FAILURES_HEADER)?;
    for op in Op::ALL {
        for (class, f) in &snapshot.op(op).failures {
            out.write_record([
                METHOD,
                op.name(),
                class,
                &f.count.to_string(),
                &f.first_seen.to_string(),
                &f.last_seen.to_string(),
            ])?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Writes `load_test_stats_history.csv`: per sample, one row per operation plus Aggregated
/// (Locust's `--csv-full-history`). Rates and percentiles cover the sample's interval; the
/// Total columns are cumulative.
pub fn write_history<W: Write>(w: W, samples: &[HistorySample]) -> csv::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(history_header())?;
    for sample in samples {
        let secs = sample.interval.as_secs_f64().max(1e-9);
        for (op, row) in &sample.rows {
            let (kind, name) = match op {
                Some(op) => (METHOD, op.name()),
                None => ("", "Aggregated"),
            };
            let mut rec = vec![
                sample.unix_time.to_string(),
                sample.users.to_string(),
                kind.to_string(),
                name.to_string(),
                format!("{:.3}", row.count as f64 / secs),
                format!("{:.3}", row.failed as f64 / secs),
            ];
            match row.percentiles {
                Some(p) => rec.extend(p.iter().map(|us| ms(*us as f64))),
                None => rec.extend(PERCENTILES.iter().map(|_| "N/A".to_string())),
            }
            rec.extend([
                row.total_count.to_string(),
                row.total_failed.to_string(),
                ms(row.total_median as f64),
                ms(row.total_mean),
                ms(row.total_min as f64),
                ms(row.total_max as f64),
                format!("{:.0}", row.total_mean_bytes),
            ]);
            out.write_record(rec)?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::stats::{Outcome, StatsHub};

    #[test]
    fn stats_csv_reads_back_with_locust_columns() {
        let hub = StatsHub::new(1);
        for ms_ in [1u64, 2, 3] {
            hub.record(
                0,
                Op::Retrieve,
                &Outcome {
                    namespaces: 0,
                    schedule_lag: Duration::ZERO,
                    pool_wait: Duration::ZERO,
                    service: Some(Duration::from_micros(ms_ * 1000 + 250)),
                    result: Ok(1),
                    short: false,
                    bytes: 100,
                },
            );
        }
        let mut buf = Vec::new();
        write_stats(&mut buf, &hub.snapshot(), Duration::from_secs(3)).unwrap();
        let mut r = csv::Reader::from_reader(buf.as_slice());
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, stats_header());
        let recs: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(&recs[0][1], "retrieve_memory");
        assert_eq!(&recs[0][2], "3");
        assert_eq!(&recs[0][9], "1.000");
        assert_eq!(&recs[1][1], "Aggregated");
        // Sub-millisecond precision survives: 1.25 ms, not 1.
        assert!(recs[0][6].starts_with("1.25"), "min was {}", &recs[0][6]);
        assert_eq!(&recs[0][8], "100", "Average Content Size");
    }
}
