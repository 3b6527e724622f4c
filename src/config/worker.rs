//! `--worker I/N`: this generator's share of the load, and the checks that make several
//! generators one test.

use std::time::{Duration, SystemTime};

use goose::config::GooseConfiguration;

use super::{bad, ConfigError};
use crate::cli::{Cli, WorkerArgs};
use crate::engine::arrivals::Pacing;

/// The generator's place, if `--worker`/`--workers` was given; its share of users, rates and
/// arrivals is set in `goose` and `pacing`.
pub(super) fn worker(
    cli: &Cli,
    goose: &mut GooseConfiguration,
    pacing: &mut Pacing,
    has_database: bool,
) -> Result<Option<Worker>, ConfigError> {
    let index = std::env::var(INDEX_VARIABLE).ok();
    let Some(w) = Worker::from_args(&cli.worker, index.as_deref()).map_err(bad)? else {
        return Ok(None);
    };
    if cli.command.is_some() {
        return Err(bad(
            "--worker/--workers is for the load test (no subcommand); seed first with `setup`",
        ));
    }
    if !has_database {
        return Err(bad(
            "several generators need --database-url: each must reach the same server",
        ));
    }
    if cli.data.reset {
        return Err(bad(
            "--reset with several generators would reseed once per generator: run `setup \
             --reset` once, then the generators",
        ));
    }
    if cli.data.vectors_file.is_none() && cli.data.namespaces < w.count {
        return Err(bad(format!(
            "{} generators need at least as many namespaces (--namespaces {}): each owns its own",
            w.count, cli.data.namespaces
        )));
    }
    let users = goose.users.ok_or_else(|| {
        bad("several generators need --users (or a profile's users): the total, split among them")
    })?;
    let share = w.share(users);
    if share == 0 {
        return Err(bad(format!(
            "--users {users} leaves generator {} of {} without a user",
            w.index, w.count
        )));
    }
    goose.users = Some(share);
    let n = w.count as f64;
    if let Some(open) = &mut pacing.open {
        open.plan.start_rate /= n;
        for stage in &mut open.plan.stages {
            stage.rate /= n;
        }
        open.max_in_flight = share;
        goose.increase_rate = Some(share.to_string());
    } else if let Some(rate) = &goose.increase_rate {
        // Checked as a positive number before.
        let rate: f64 = rate.parse().unwrap_or(1.0);
        goose.increase_rate = Some(format!("{}", rate / n));
    }
    Ok(Some(w))
}

/// This generator's place among several.
#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    /// 0-based index.
    pub index: usize,
    /// How many generators.
    pub count: usize,
    /// The id they share.
    pub run_id: String,
    /// A start time every generator was given (else 2 s after the last arrives).
    pub start_at: Option<SystemTime>,
    /// How long to wait for the others.
    pub timeout: Duration,
}

/// The Kubernetes Indexed Job's variable holding a pod's index.
pub const INDEX_VARIABLE: &str = "JOB_COMPLETION_INDEX";

impl Worker {
    /// From the command line and the Indexed Job's `index` variable; `None` without
    /// `--worker`/`--workers`.
    pub fn from_args(args: &WorkerArgs, env_index: Option<&str>) -> Result<Option<Worker>, String> {
        let (index, count) = match (&args.worker, args.workers) {
            (None, None) => {
                if args.start_at.is_some() {
                    return Err("--start-at is for several generators: give --worker I/N".into());
                }
                return Ok(None);
            }
            (Some(text), _) => parse_share(text)?,
            (None, Some(count)) => {
                let text = env_index.ok_or_else(|| {
                    format!("--workers needs {INDEX_VARIABLE} (the generator's index, 0 to N-1)")
                })?;
                let index = text.trim().parse::<usize>().map_err(|_| {
                    format!("{INDEX_VARIABLE} must be a whole number, got '{text}'")
                })?;
                (index, count)
            }
        };
        if count == 0 || index >= count {
            return Err(format!(
                "generator {index} of {count}: the index runs from 0 to N-1 and N is at least 1"
            ));
        }
        let run_id = args
            .run_id
            .clone()
            .ok_or("several generators need --run-id (or PLT_RUN_ID), the same for all")?;
        check_run_id(&run_id)?;
        let start_at = args
            .start_at
            .as_deref()
            .map(|t| {
                humantime::parse_rfc3339_weak(t)
                    .map_err(|e| format!("--start-at '{t}' is not an RFC 3339 time: {e}"))
            })
            .transpose()?;
        if args.rendezvous_timeout.is_zero() {
            return Err("--rendezvous-timeout must be above 0".into());
        }
        Ok(Some(Worker {
            index,
            count,
            run_id,
            start_at,
            timeout: args.rendezvous_timeout,
        }))
    }

    /// This generator's share of `total` (users): `total / N`, one more for the first
    /// `total % N` generators, so that the shares add up to `total`.
    pub fn share(&self, total: usize) -> usize {
        total / self.count + usize::from(self.index < total % self.count)
    }

    /// `generator I/N of run R`.
    pub fn label(&self) -> String {
        format!(
            "generator {}/{} of run {}",
            self.index, self.count, self.run_id
        )
    }
}

/// `I/N`.
fn parse_share(text: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--worker takes I/N (generator I of N, from 0), got '{text}'");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    Ok((
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    ))
}

/// Run ids name rows and files: a short plain word.
fn check_run_id(id: &str) -> Result<(), String> {
    let plain = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if id.is_empty() || id.len() > 63 || !plain {
        return Err(format!(
            "--run-id must be 1 to 63 letters, digits, '-', '_' or '.', got '{id}'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(worker: Option<&str>, workers: Option<usize>, run_id: Option<&str>) -> WorkerArgs {
        WorkerArgs {
            worker: worker.map(String::from),
            workers,
            run_id: run_id.map(String::from),
            start_at: None,
            rendezvous_timeout: Duration::from_secs(300),
        }
    }

    #[test]
    fn shares_add_up_to_the_whole() {
        for total in [1, 7, 10, 300, 301] {
            for count in 1..=5 {
                let sum: usize = (0..count)
                    .map(|index| {
                        let w = Worker {
                            index,
                            count,
                            run_id: "r".into(),
                            start_at: None,
                            timeout: Duration::from_secs(1),
                        };
                        w.share(total)
                    })
                    .sum();
                assert_eq!(sum, total, "{total} over {count}");
            }
        }
    }

    #[test]
    fn the_index_comes_from_the_flag_or_the_indexed_job() {
        let w = Worker::from_args(&args(Some("2/3"), None, Some("r1")), None)
            .unwrap()
            .unwrap();
        assert_eq!((w.index, w.count), (2, 3));
        let w = Worker::from_args(&args(None, Some(4), Some("r1")), Some("1"))
            .unwrap()
            .unwrap();
        assert_eq!((w.index, w.count), (1, 4));
        assert!(Worker::from_args(&args(None, None, None), None)
            .unwrap()
            .is_none());
    }

    #[test]
    fn bad_shares_and_ids_are_refused_with_the_flag_named() {
        for (a, env, needle) in [
            (args(Some("3/3"), None, Some("r")), None, "0 to N-1"),
            (args(Some("x"), None, Some("r")), None, "--worker takes I/N"),
            (args(None, Some(3), Some("r")), None, INDEX_VARIABLE),
            (args(None, Some(3), Some("r")), Some("a"), "whole number"),
            (args(Some("0/2"), None, None), None, "--run-id"),
            (args(Some("0/2"), None, Some("a b")), None, "--run-id"),
        ] {
            let e = Worker::from_args(&a, env).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }
}
