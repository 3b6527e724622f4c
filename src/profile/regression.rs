//! The limits `compare` judges a new run by: how much worse than its baseline each metric may
//! get. They live beside the profile format because a profile's `[compare]` table sets them as
//! well as the command line (`--max-regression`, `--max-regression-metric`).
//!
//! Latency and throughput are judged relative to the baseline (10 % by default): their scale
//! depends on the machine. Failure rate and recall are shares (0 to 1) and are judged in
//! absolute points: a failure rate that rises from 0 has no relative change, and a recall drop
//! from 0.99 to 0.98 matters the same at any scale.

use std::fmt;

/// A metric `compare` judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Measure {
    /// Median latency, ms.
    P50,
    /// 95th percentile latency, ms.
    P95,
    /// 99th percentile latency, ms.
    P99,
    /// Operations per second.
    Throughput,
    /// Failed operations as a share of all (0 to 1).
    FailureRate,
    /// Mean recall@k (0 to 1).
    Recall,
}

impl Measure {
    /// Every metric, in table order.
    pub const ALL: [Measure; 6] = [
        Measure::P50,
        Measure::P95,
        Measure::P99,
        Measure::Throughput,
        Measure::FailureRate,
        Measure::Recall,
    ];

    /// The name `--max-regression-metric` and the `[compare]` table use.
    pub fn key(self) -> &'static str {
        match self {
            Measure::P50 => "p50",
            Measure::P95 => "p95",
            Measure::P99 => "p99",
            Measure::Throughput => "throughput",
            Measure::FailureRate => "failure_rate",
            Measure::Recall => "recall",
        }
    }

    /// The name tables show, with the unit.
    pub fn label(self) -> &'static str {
        match self {
            Measure::P50 => "p50 ms",
            Measure::P95 => "p95 ms",
            Measure::P99 => "p99 ms",
            Measure::Throughput => "throughput/s",
            Measure::FailureRate => "failure rate",
            Measure::Recall => "recall",
        }
    }

    /// Whether a higher value is worse (latency, failures).
    pub fn higher_is_worse(self) -> bool {
        matches!(
            self,
            Measure::P50 | Measure::P95 | Measure::P99 | Measure::FailureRate
        )
    }

    /// Whether the limit is in absolute points of the metric (the shares) rather than
    /// relative to the baseline.
    pub fn absolute(self) -> bool {
        matches!(self, Measure::FailureRate | Measure::Recall)
    }

    /// The limit when neither the command line nor a profile sets one.
    pub fn default_limit(self) -> f64 {
        match self {
            Measure::FailureRate => 0.001,
            Measure::Recall => 0.01,
            _ => 0.10,
        }
    }

    /// By [`Measure::key`].
    pub fn from_key(key: &str) -> Option<Measure> {
        Measure::ALL.into_iter().find(|m| m.key() == key)
    }
}

/// The limits one source sets: the command line, or a profile's `[compare]` table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitSettings {
    /// `max_regression`: the relative limit of latency and throughput.
    pub relative: Option<f64>,
    /// Limits of single metrics (the last one given for a metric wins).
    pub per_metric: Vec<(Measure, f64)>,
}

impl LimitSettings {
    /// The limit this source alone sets for `m`: its own, else `max_regression` for a
    /// relative metric.
    fn get(&self, m: Measure) -> Option<f64> {
        let own = self.per_metric.iter().rev().find(|(k, _)| *k == m);
        own.map(|(_, v)| *v)
            .or(self.relative.filter(|_| !m.absolute()))
    }
}

/// The limit of every metric, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits([f64; 6]);

impl Default for Limits {
    fn default() -> Limits {
        Limits(Measure::ALL.map(Measure::default_limit))
    }
}

impl Limits {
    /// Each metric's limit from the first source that sets it (the command line before the
    /// profile), else its default.
    pub fn resolve(sources: &[&LimitSettings]) -> Limits {
        Limits(Measure::ALL.map(|m| {
            sources
                .iter()
                .find_map(|s| s.get(m))
                .unwrap_or(m.default_limit())
        }))
    }

    /// The limit of `m`: a share of the baseline (relative metrics) or points (absolute).
    pub fn of(&self, m: Measure) -> f64 {
        self.0[m as usize]
    }

    /// The limit as tables show it: `10%` (relative), `0.01` (absolute).
    pub fn show(&self, m: Measure) -> String {
        let v = self.of(m);
        if m.absolute() {
            format!("{}", round6(v))
        } else {
            format!("{}%", round6(v * 100.0))
        }
    }
}

impl fmt::Display for Limits {
    /// `p50 10%, p95 5%, ..., failure_rate 0.001, recall 0.01`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Measure::ALL
            .iter()
            .map(|&m| format!("{} {}", m.key(), self.show(m)))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// A limit written as a percentage (`10%`) or a share (`0.1`); never negative. A bare number
/// above 1 is refused rather than guessed at: `10` could mean 10 % or 1000 %.
pub fn parse_share(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (t, 1.0),
    };
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| {
            format!("\"{t}\" is not a limit: write a percentage (10%) or a share (0.1)")
        })?;
    if value < 0.0 {
        return Err(format!("\"{t}\" is negative: a limit is 0 or more"));
    }
    if scale == 1.0 && value > 1.0 {
        return Err(format!(
            "\"{t}\" is ambiguous: write {t}% or a share such as 0.1"
        ));
    }
    Ok(value / scale)
}

/// `p95=5%`: one metric's limit.
pub fn parse_metric_limit(text: &str) -> Result<(Measure, f64), String> {
    let keys = || Measure::ALL.map(Measure::key).join(", ");
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("\"{text}\" is not METRIC=LIMIT (metrics: {})", keys()))?;
    let measure = Measure::from_key(key.trim())
        .ok_or_else(|| format!("unknown metric \"{}\"; one of {}", key.trim(), keys()))?;
    Ok((measure, parse_share(value)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_percentages_or_shares() {
        assert_eq!(parse_share("10%"), Ok(0.1));
        assert_eq!(parse_share(" 0.1 "), Ok(0.1));
        assert_eq!(parse_share("2.5 %"), Ok(0.025));
        assert_eq!(parse_share("0"), Ok(0.0));
        assert_eq!(parse_share("150%"), Ok(1.5));
        assert_eq!(parse_share("1"), Ok(1.0));
        for bad in ["10", "-5%", "-0.1", "ten", "", "%", "NaN", "inf%"] {
            assert!(parse_share(bad).is_err(), "{bad} accepted");
        }
        assert!(parse_share("10").unwrap_err().contains("10%"));
    }

    #[test]
    fn metric_limits_name_a_known_metric() {
        assert_eq!(parse_metric_limit("p95=5%"), Ok((Measure::P95, 0.05)));
        assert_eq!(
            parse_metric_limit("recall=0.01"),
            Ok((Measure::Recall, 0.01))
        );
        assert_eq!(
            parse_metric_limit("failure_rate = 0.1%"),
            Ok((Measure::FailureRate, 0.001))
        );
        let e = parse_metric_limit("p42=5%").unwrap_err();
        assert!(e.contains("p42") && e.contains("failure_rate"), "{e}");
        assert!(parse_metric_limit("p95").is_err());
        assert!(parse_metric_limit("p95=lots").is_err());
    }

    #[test]
    fn the_command_line_wins_over_the_profile_and_shares_stay_absolute() {
        let cli = LimitSettings {
            relative: Some(0.2),
            per_metric: vec![(Measure::Recall, 0.05)],
        };
        let profile = LimitSettings {
            relative: Some(0.3),
            per_metric: vec![(Measure::P95, 0.05), (Measure::FailureRate, 0.01)],
        };
        let limits = Limits::resolve(&[&cli, &profile]);
        // --max-regression covers every relative metric, over the profile's p95.
        assert_eq!(limits.of(Measure::P95), 0.2);
        assert_eq!(limits.of(Measure::Throughput), 0.2);
        assert_eq!(limits.of(Measure::Recall), 0.05);
        // Not set on the command line: the profile's.
        assert_eq!(limits.of(Measure::FailureRate), 0.01);
        // max_regression never reaches the absolute metrics.
        let only_relative = LimitSettings {
            relative: Some(0.5),
            per_metric: vec![],
        };
        let limits = Limits::resolve(&[&only_relative]);
        assert_eq!(limits.of(Measure::Recall), 0.01);
        assert_eq!(limits.of(Measure::FailureRate), 0.001);
        assert_eq!(limits.of(Measure::P50), 0.5);
        let profile_only = Limits::resolve(&[&LimitSettings::default(), &profile]);
        assert_eq!(profile_only.of(Measure::P95), 0.05);
        assert_eq!(profile_only.of(Measure::P99), 0.3);
        assert_eq!(
            Limits::default().to_string(),
            "p50 10%, p95 10%, p99 10%, throughput 10%, failure_rate 0.001, recall 0.01"
        );
    }
}
