//! The failure gate: a run whose operations failed is not a result. When more than
//! `--max-failure-share` of the attempts failed, every report is still written and the process
//! exits with `--exit-code-on-error` (Locust's name and default, 1), so CI does not go green on
//! a run that mostly measured errors. `--exit-code-on-error 0` turns the gate off.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The gate's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureGate {
    /// Largest share of failed attempts (0..=1) a run may have and still pass.
    pub max_share: f64,
    /// Exit code when the share is exceeded.
    pub exit_code: u8,
}

impl Default for FailureGate {
    fn default() -> Self {
        FailureGate {
            max_share: 0.01,
            exit_code: 1,
        }
    }
}

/// The gate's verdict on one run, as `failure_gate` in the JSON reports.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct GateVerdict {
    /// The threshold (`--max-failure-share`).
    pub threshold: f64,
    /// Whether more than that share of attempts failed.
    pub exceeded: bool,
}

impl FailureGate {
    /// Judges `failed` of `count` attempts: the share and the verdict.
    pub fn judge(&self, failed: u64, count: u64) -> (f64, GateVerdict) {
        let share = if count == 0 {
            0.0
        } else {
            failed as f64 / count as f64
        };
        let verdict = GateVerdict {
            threshold: self.max_share,
            exceeded: share > self.max_share,
        };
        (share, verdict)
    }

    /// The exit a verdict calls for: None when within the gate or the gate is off.
    pub fn exit(&self, verdict: &GateVerdict) -> Option<crate::Exit> {
        (verdict.exceeded && self.exit_code != 0)
            .then_some(crate::Exit::TooManyFailures(self.exit_code))
    }

    /// One console line: the share, the threshold, the largest failure classes and what
    /// follows. None when nothing failed.
    pub fn line(&self, share: f64, failures: &BTreeMap<String, u64>) -> Option<String> {
        if failures.is_empty() {
            return None;
        }
        let mut top: Vec<(&String, &u64)> = failures.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let classes: Vec<String> = top
            .iter()
            .take(3)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let outcome = if share <= self.max_share {
            "within the gate".to_string()
        } else if self.exit_code == 0 {
            "over the gate, which --exit-code-on-error 0 turns off".to_string()
        } else {
            format!("over the gate: exit {}", self.exit_code)
        };
        Some(format!(
            "failure gate: {:.2} % of operations failed (--max-failure-share {:.2} %; {}): {outcome}",
            share * 100.0,
            self.max_share * 100.0,
            classes.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_must_exceed_the_threshold() {
        let gate = FailureGate::default();
        assert!(!gate.judge(1, 100).1.exceeded);
        assert!(gate.judge(2, 100).1.exceeded);
        assert!(!gate.judge(0, 0).1.exceeded);
        assert_eq!(gate.judge(1, 4).0, 0.25);
    }

    #[test]
    fn the_line_names_share_threshold_and_top_classes() {
        let gate = FailureGate::default();
        let failures = BTreeMap::from([
            ("sqlstate_26".to_string(), 167),
            ("pool_timeout".to_string(), 3),
            ("client".to_string(), 1),
            ("connection_lost".to_string(), 2),
        ]);
        let line = gate.line(0.574, &failures).unwrap();
        assert!(line.contains("57.40 %"), "{line}");
        assert!(line.contains("1.00 %"), "{line}");
        assert!(
            line.contains("sqlstate_26=167, pool_timeout=3, connection_lost=2"),
            "{line}"
        );
        assert!(line.ends_with("exit 1"), "{line}");
        assert!(gate.line(0.0, &BTreeMap::new()).is_none());
    }
}
