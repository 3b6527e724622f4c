//! `compare`'s settings: the two summaries, the limits (the command line over the profile's
//! `[compare]` table over the defaults) and where the markdown table goes. Nothing here opens
//! the summaries: that is `compare`'s work, and its errors name the file.

use std::path::PathBuf;

use super::{bad, ConfigError};
use crate::cli::{Cli, Command, CompareArgs};
use crate::profile::regression::{parse_metric_limit, parse_share, LimitSettings, Limits};

/// What `compare` reads and how it judges.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareSettings {
    /// The baseline summary.
    pub base: PathBuf,
    /// The summary judged against it.
    pub new: PathBuf,
    /// Every metric's limit.
    pub limits: Limits,
    /// The markdown table's destination, if any.
    pub markdown: Option<Markdown>,
    /// Compare runs whose settings differ.
    pub force: bool,
    /// The profile whose `[compare]` table was read.
    pub profile: Option<String>,
}

/// Where `--markdown` writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Markdown {
    /// `-`: stdout, instead of the text table.
    Stdout,
    /// A file, replaced.
    File(PathBuf),
}

/// `compare`'s settings when the command line is `compare` (None otherwise): it reads files
/// only, so none of the run's configuration (servers, report directory) is checked or made.
pub fn compare_settings(cli: &Cli) -> Option<Result<CompareSettings, ConfigError>> {
    match &cli.command {
        Some(Command::Compare(args)) => Some(settings(args, cli)),
        _ => None,
    }
}

fn settings(args: &CompareArgs, cli: &Cli) -> Result<CompareSettings, ConfigError> {
    let profile = super::profile(cli)?;
    let relative = args
        .max_regression
        .as_deref()
        .map(parse_share)
        .transpose()
        .map_err(|e| bad(format!("--max-regression: {e}")))?;
    let per_metric = args
        .max_regression_metric
        .iter()
        .map(|m| parse_metric_limit(m).map_err(|e| bad(format!("--max-regression-metric: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let given = LimitSettings {
        relative,
        per_metric,
    };
    let from_profile = profile
        .as_ref()
        .map(|p| p.compare.clone())
        .unwrap_or_default();
    let markdown = match args.markdown.as_deref() {
        None => None,
        Some(p) if p.as_os_str() == "-" => Some(Markdown::Stdout),
        // An empty value (an unset $GITHUB_STEP_SUMMARY) is refused by clap already.
        Some(p) => Some(Markdown::File(p.to_path_buf())),
    };
    Ok(CompareSettings {
        base: args.base.clone(),
        new: args.new.clone(),
        limits: Limits::resolve(&[&given, &from_profile]),
        markdown,
        force: args.force,
        profile: profile.map(|p| p.source),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::profile::regression::Measure;

    fn parse(args: &[&str]) -> Result<CompareSettings, ConfigError> {
        let mut argv = vec!["pgvector-loadtest", "compare", "a.json", "b.json"];
        argv.extend(args);
        compare_settings(&Cli::try_parse_from(argv).expect("parses"))
            .expect("a compare command line")
    }

    #[test]
    fn compare_limits_come_from_flags_then_the_profile() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.limits, Limits::default());
        assert_eq!(
            (s.base.to_str(), s.new.to_str()),
            (Some("a.json"), Some("b.json"))
        );
        let s = parse(&[
            "--max-regression",
            "0.2",
            "--max-regression-metric",
            "p95=5%,recall=0.02",
        ])
        .unwrap();
        assert_eq!(s.limits.of(Measure::P50), 0.2);
        assert_eq!(s.limits.of(Measure::P95), 0.05);
        assert_eq!(s.limits.of(Measure::Recall), 0.02);
        assert_eq!(s.limits.of(Measure::FailureRate), 0.001);
        // The built-in baseline profile's [compare] table: p99 20 %, unless a flag says more.
        let s = parse(&["--profile", "baseline"]).unwrap();
        assert_eq!(s.limits.of(Measure::P99), 0.2);
        assert_eq!(s.limits.of(Measure::P95), 0.1);
        let s = parse(&["--profile", "baseline", "--max-regression", "30%"]).unwrap();
        assert_eq!(s.limits.of(Measure::P99), 0.3);
        assert_eq!(
            parse(&["--markdown", "-"]).unwrap().markdown,
            Some(Markdown::Stdout)
        );
        for (args, problem) in [
            (
                &["--max-regression", "10"][..],
                "--max-regression: \"10\" is ambiguous",
            ),
            (
                &["--max-regression-metric", "p95"],
                "--max-regression-metric",
            ),
            (&["--profile", "nope"], "profile nope"),
        ] {
            let e = parse(args).unwrap_err().to_string();
            assert!(e.starts_with(problem), "{args:?}: {e}");
        }
    }
}
