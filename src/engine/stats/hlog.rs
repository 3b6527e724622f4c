//! HdrHistogram interval logs, the format HdrHistogram's own tools read (`HistogramLogProcessor`,
//! HdrHistogram's plotter): `histograms.hlog` holds a run's whole histograms, one interval per
//! operation and kind, tagged `OPERATION:response`, `OPERATION:service` and
//! `OPERATION:pool_wait`; `history.hlog` holds each second's response times, tagged
//! `OPERATION`. Histograms are V2 deflate-compressed, in microseconds. Adding the intervals of
//! several generators gives exactly the histogram of all their samples.

use std::io::Write;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use super::{HistorySample, Snapshot};
use crate::workload::ops::Op;

/// The kinds of a run's histograms, as tag suffixes.
pub const KINDS: [&str; 3] = ["response", "service", "pool_wait"];

/// `h` as V2 deflate bytes (None: it could not be encoded, which a histogram of ours never is).
pub fn encode(h: &Histogram<u64>) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut bytes).ok()?;
    Some(bytes)
}

/// One interval of a log.
pub struct Interval {
    /// Its tag (empty when untagged).
    pub tag: String,
    /// Seconds from the log's base time to the interval's start.
    pub start_s: f64,
    /// Its length, seconds.
    pub duration_s: f64,
    /// The histogram, µs.
    pub histogram: Histogram<u64>,
}

/// The log's header: a comment, its start and base time (`started`).
fn writer_builder(comment: &str, started: SystemTime) -> IntervalLogWriterBuilder {
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment(comment)
        .add_comment("values in microseconds")
        .with_start_time(started)
        .with_base_time(started);
    builder
}

fn io_error(e: impl std::fmt::Debug) -> std::io::Error {
    std::io::Error::other(format!("{e:?}"))
}

/// `histograms.hlog`: the run's response, service and pool-wait histograms of every operation
/// that ran, each one interval from `started` lasting `elapsed`.
pub fn write_run(
    w: &mut dyn Write,
    started: SystemTime,
    elapsed: Duration,
    snapshot: &Snapshot,
) -> std::io::Result<()> {
    let mut serializer = V2DeflateSerializer::new();
    let builder = writer_builder("pgvector-loadtest: the run's histograms", started);
    let mut w = w;
    let mut log = builder.begin_log_with(&mut w, &mut serializer)?;
    for op in Op::ALL {
        let stats = snapshot.op(op);
        if stats.count() == 0 {
            continue;
        }
        for (kind, h) in KINDS
            .iter()
            .zip([&stats.latency, &stats.service, &stats.pool_wait])
        {
            let tag = format!("{}:{kind}", op.name());
            log.write_histogram(h, Duration::ZERO, elapsed, Tag::new(&tag))
                .map_err(io_error)?;
        }
    }
    Ok(())
}

/// `history.hlog`: each second's response times of every operation that finished something in
/// it, from the samples' encoded histograms; intervals start at the sum of the samples'
/// lengths before them.
pub fn write_history(
    w: &mut dyn Write,
    started: SystemTime,
    history: &[HistorySample],
) -> std::io::Result<()> {
    let mut serializer = V2DeflateSerializer::new();
    let builder = writer_builder("pgvector-loadtest: response times per second", started);
    let mut w = w;
    let mut log = builder.begin_log_with(&mut w, &mut serializer)?;
    let mut start = Duration::ZERO;
    for sample in history {
        for (op, bytes) in &sample.encoded {
            let h = decode(bytes).map_err(io_error)?;
            log.write_histogram(&h, start, sample.interval, Tag::new(op.name()))
                .map_err(io_error)?;
        }
        start += sample.interval;
    }
    Ok(())
}

fn decode(bytes: &[u8]) -> Result<Histogram<u64>, String> {
    let mut cursor = std::io::Cursor::new(bytes);
    Deserializer::new()
        .deserialize(&mut cursor)
        .map_err(|e| format!("{e:?}"))
}

/// Every interval of a log, in order.
pub fn read(text: &[u8]) -> Result<Vec<Interval>, String> {
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(text) {
        let entry = entry.map_err(|e| format!("not an interval log: {e:?}"))?;
        let LogEntry::Interval(interval) = entry else {
            continue;
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(interval.encoded_histogram())
            .map_err(|e| format!("an interval's histogram is not base64: {e}"))?;
        out.push(Interval {
            tag: interval
                .tag()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            start_s: interval.start_timestamp().as_secs_f64(),
            duration_s: interval.duration().as_secs_f64(),
            histogram: decode(&bytes)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::stats::histogram;

    #[test]
    fn a_run_log_reads_back_exactly() {
        let mut snapshot = Snapshot::default();
        let single = &mut snapshot.ops[Op::SingleShardSearch.index()];
        for v in 1..=5000u64 {
            single.latency.record(v * 7).unwrap();
            single.service.record(v * 5).unwrap();
            single.pool_wait.record(v % 13 + 1).unwrap();
        }
        single.ok = 5000;
        let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut bytes = Vec::new();
        write_run(&mut bytes, started, Duration::from_secs(10), &snapshot).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("#[BaseTime: 1800000000.000"), "{text}");
        assert!(
            text.contains("Tag=vector_search_single_shard:response,"),
            "{text}"
        );
        let intervals = read(&bytes).unwrap();
        assert_eq!(intervals.len(), 3);
        let single = snapshot.op(Op::SingleShardSearch);
        for (i, h) in intervals
            .iter()
            .zip([&single.latency, &single.service, &single.pool_wait])
        {
            assert_eq!(i.duration_s, 10.0);
            assert_eq!(&i.histogram, h, "{}", i.tag);
        }
        let mut empty = histogram();
        empty.add(&intervals[0].histogram).unwrap();
        assert_eq!(empty.len(), 5000);
    }
}
