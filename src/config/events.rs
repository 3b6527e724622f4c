//! `--event` and a profile's `[[event]]` tables: when, what, and whether this run can do it.

use std::time::Duration;

use goose::config::GooseConfiguration;

use super::{bad, ConfigError, Worker};
use crate::cli::Cli;
use crate::events::{parse_cli, Action, EventSpec};

/// The events of the run, in time order. Only the load test runs them, and with several
/// generators only generator 0 does (once for the whole test).
pub(super) fn events(
    cli: &Cli,
    profile: Option<&crate::profile::Profile>,
    goose: &GooseConfiguration,
    worker: Option<&Worker>,
) -> Result<Vec<EventSpec>, ConfigError> {
    let mut events = cli
        .events
        .event
        .iter()
        .map(|e| parse_cli(e).map_err(bad))
        .collect::<Result<Vec<_>, _>>()?;
    if cli.command.is_some() {
        if !events.is_empty() {
            return Err(bad("--event is for the load test (no subcommand)"));
        }
        return Ok(Vec::new());
    }
    events.extend(profile.map(|p| p.events.clone()).unwrap_or_default());
    events.sort_by_key(|e| e.at);
    let embedded = cli.db.database_url.is_none();
    let replicas = cli.db.embedded_replicas as usize;
    let run_time = goose.run_time.as_deref().and_then(|t| {
        humantime::parse_duration(t)
            .ok()
            .or_else(|| t.parse().ok().map(Duration::from_secs))
    });
    for e in &events {
        let label = e.action.label();
        match e.action {
            Action::ReplicaStop(n) | Action::ReplicaStart(n) if !embedded || n > replicas => {
                return Err(bad(format!(
                    "event {label}: only replicas this run starts can be stopped and started \
                     (--embedded-replicas {n} or more, no --database-url)"
                )));
            }
            Action::PrimaryRestart if !embedded => {
                return Err(bad(format!(
                    "event {label}: only the embedded primary can be restarted (no --database-url)"
                )));
            }
            Action::Switchover
                if cli.events.patroni_url.is_empty() && cli.events.local_cluster.is_none() =>
            {
                return Err(bad(format!(
                    "event {label} needs --patroni-url URL or --local-cluster DIR"
                )));
            }
            Action::Failover if cli.events.patroni_url.is_empty() => {
                return Err(bad(format!("event {label} needs --patroni-url URL")));
            }
            Action::KillPrimary if cli.events.local_cluster.is_none() => {
                return Err(bad(format!(
                    "event {label} needs --local-cluster DIR (the topology of deploy/local-ha)"
                )));
            }
            _ => {}
        }
        if let Some(limit) = run_time.filter(|limit| e.at >= *limit) {
            return Err(bad(format!(
                "event {label} at {} is not within the run (--run-time {})",
                humantime::format_duration(e.at),
                humantime::format_duration(limit)
            )));
        }
    }
    Ok(match worker {
        Some(w) if w.index != 0 => Vec::new(),
        _ => events,
    })
}
