//! `compare BASE NEW`: a regression gate. Two summaries of the same kind — the load test's
//! `load_test_summary.json`, the benchmark suite's `benchmark_results.json` or `capacity.json`
//! — are read ([`input`], [`capacity`]), checked to describe the same set-up (dataset, layout,
//! index), and every metric of every operation, benchmark or capacity step judged against its
//! limit ([`judge`]); the table goes to the console and optionally to markdown ([`table`]).
//!
//! Exit 0 when nothing is worse beyond its limit, 3 when something is (or an operation BASE
//! had is absent from NEW), 2 when the files cannot be compared; on 2 nothing but the one-line
//! message is written.

pub mod capacity;
pub mod input;
pub mod judge;
pub mod table;

use std::io::Write;
use std::path::PathBuf;

use crate::config::{CompareSettings, Markdown};
use crate::Exit;
use input::{Kind, Role};
use judge::Comparison;

/// Why two files cannot be compared: exit 2, one line.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The file cannot be read.
    #[error("cannot read {role} {file}: {source}")]
    Read {
        /// Which file.
        role: Role,
        /// Its path.
        file: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{role} {file} is not JSON: {source}")]
    NotJson {
        /// Which file.
        role: Role,
        /// Its path.
        file: String,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// JSON, but none of the summaries `compare` knows.
    #[error(
        "{role} {file} is not a summary compare knows (load_test_summary.json, \
         benchmark_results.json or capacity.json)"
    )]
    UnknownKind {
        /// Which file.
        role: Role,
        /// Its path.
        file: String,
    },
    /// Looks like a known summary, but a field is missing or of the wrong type.
    #[error("{role} {file} looks like a {kind} but does not parse: {source}")]
    Shape {
        /// Which file.
        role: Role,
        /// Its path.
        file: String,
        /// What it looks like.
        kind: Kind,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// Two kinds of summary.
    #[error("BASE is a {base} and NEW a {new}: compare two summaries of the same kind")]
    KindsDiffer {
        /// BASE's kind.
        base: Kind,
        /// NEW's kind.
        new: Kind,
    },
    /// The runs differ in set-up.
    #[error("the runs are not comparable: {} (--force compares them anyway)", .0.join("; "))]
    Incomparable(Vec<String>),
    /// The markdown, or the console, could not be written.
    #[error("writing {what}: {source}")]
    Write {
        /// The file, or stdout.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl CompareError {
    /// Every refusal is a usage or input error.
    pub fn exit(&self) -> Exit {
        Exit::Usage
    }
}

/// What the tables show.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The summaries' kind.
    pub kind: Kind,
    /// BASE's path.
    pub base: PathBuf,
    /// NEW's path.
    pub new: PathBuf,
    /// The verdicts.
    pub comparison: Comparison,
    /// Facts that changed without making the runs incomparable (versions).
    pub notes: Vec<String>,
    /// What may mislead: settings compared under `--force`, interrupted runs.
    pub warnings: Vec<String>,
    /// The profile whose `[compare]` table set limits.
    pub profile: Option<String>,
}

impl Outcome {
    /// Where the limits came from, when a profile was read.
    pub fn limits_from(&self) -> String {
        self.profile
            .as_ref()
            .map_or(String::new(), |p| format!(" (flags, then {p} [compare])"))
    }
}

/// Reads both files and judges NEW against BASE; nothing is printed.
pub fn evaluate(s: &CompareSettings) -> Result<Outcome, CompareError> {
    let base = input::read(&s.base, Role::Base)?;
    let new = input::read(&s.new, Role::New)?;
    if base.kind != new.kind {
        return Err(CompareError::KindsDiffer {
            base: base.kind,
            new: new.kind,
        });
    }
    let differ = judge::differences(&base.settings, &new.settings);
    if !differ.is_empty() && !s.force {
        return Err(CompareError::Incomparable(differ));
    }
    let mut warnings = Vec::new();
    if !differ.is_empty() {
        warnings.push(format!(
            "the runs' settings differ, compared anyway (--force): {}",
            differ.join("; ")
        ));
    }
    for (role, run) in [(Role::Base, &base), (Role::New, &new)] {
        warnings.extend(run.warnings.iter().map(|w| format!("{role} {w}")));
    }
    let notes = base
        .notes
        .iter()
        .filter_map(|(name, b)| {
            let (_, n) = new.notes.iter().find(|(k, _)| k == name)?;
            (b != n && !b.is_empty() && !n.is_empty()).then(|| format!("{name} {b} → {n}"))
        })
        .collect();
    Ok(Outcome {
        kind: base.kind,
        comparison: judge::compare(&base, &new, &s.limits),
        base: base.path,
        new: new.path,
        notes,
        warnings,
        profile: s.profile.clone(),
    })
}

/// The `compare` command: evaluates, writes the markdown file first (so that a file that
/// cannot be written leaves nothing else behind), then warnings on stderr and the table on
/// stdout.
pub fn run(s: &CompareSettings) -> Result<Exit, CompareError> {
    let outcome = evaluate(s)?;
    if let Some(Markdown::File(path)) = &s.markdown {
        crate::report::write_atomic(path, |w| table::markdown(w, &outcome)).map_err(|source| {
            CompareError::Write {
                what: path.display().to_string(),
                source,
            }
        })?;
    }
    for warning in &outcome.warnings {
        eprintln!("warning: {warning}");
    }
    let mut out = std::io::stdout().lock();
    let printed = match s.markdown {
        Some(Markdown::Stdout) => table::markdown(&mut out, &outcome),
        _ => table::text(&mut out, &outcome),
    };
    printed
        .and_then(|()| out.flush())
        .map_err(|source| CompareError::Write {
            what: "stdout".into(),
            source,
        })?;
    Ok(if outcome.comparison.regressions().next().is_some() {
        Exit::SloBreached
    } else {
        Exit::Success
    })
}
