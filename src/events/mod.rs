//! Live maintenance during a load test: events scheduled at a time of the run (VACUUM,
//! REINDEX CONCURRENTLY, a new index built concurrently and swapped in, a checkpoint, the
//! harness's backends terminated, an embedded replica or primary stopped and started, any
//! statement), each on its own connection and off the clock ([`run`]); the run's figures split
//! into windows before, during and after each ([`windows`]); and, with replicas, how long a
//! row written on the primary takes to become visible on each ([`visibility`]).

pub mod failover;
pub mod run;
pub mod visibility;
pub mod windows;

use std::time::Duration;

/// One scheduled event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSpec {
    /// When, from the start of the load.
    pub at: Duration,
    /// What.
    pub action: Action,
}

/// What an event does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `VACUUM` (with `ANALYZE`) of `memory_entries` or one of its partitions.
    Vacuum {
        /// Also ANALYZE.
        analyze: bool,
        /// A partition, else the whole table.
        target: Option<String>,
    },
    /// `ANALYZE` of the table or one partition.
    Analyze {
        /// A partition, else the whole table.
        target: Option<String>,
    },
    /// `CHECKPOINT`.
    Checkpoint,
    /// `REINDEX INDEX CONCURRENTLY` of the vector index.
    ReindexConcurrently,
    /// A new vector index built concurrently (new HNSW `m` / `ef_construction`), then swapped
    /// in for the old one.
    CreateIndexConcurrently {
        /// New `m` (else the current one).
        m: Option<u32>,
        /// New `ef_construction` (else the current one).
        ef_construction: Option<u32>,
    },
    /// Terminates the harness's own backends (its pools reconnect).
    TerminateBackends,
    /// Stops embedded replica N (1-based).
    ReplicaStop(usize),
    /// Starts embedded replica N again.
    ReplicaStart(usize),
    /// Restarts the embedded primary (fast shutdown, start).
    PrimaryRestart,
    /// Any statement.
    Sql(String),
    /// A Patroni switchover to a replica.
    Switchover,
    /// A Patroni failover (a replica promoted).
    Failover,
    /// The local topology's leader SIGKILLed (Patroni and PostgreSQL).
    KillPrimary,
}

/// Every action's name, for messages.
pub const ACTIONS: &str = "vacuum, vacuum_analyze, analyze, checkpoint, reindex_concurrently, \
     create_index_concurrently, terminate_backends, replica_stop, replica_start, \
     primary_restart, sql, switchover, failover, kill_primary";

impl Action {
    /// The action's name, as written in a profile.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Vacuum { analyze: false, .. } => "vacuum",
            Action::Vacuum { analyze: true, .. } => "vacuum_analyze",
            Action::Analyze { .. } => "analyze",
            Action::Checkpoint => "checkpoint",
            Action::ReindexConcurrently => "reindex_concurrently",
            Action::CreateIndexConcurrently { .. } => "create_index_concurrently",
            Action::TerminateBackends => "terminate_backends",
            Action::ReplicaStop(_) => "replica_stop",
            Action::ReplicaStart(_) => "replica_start",
            Action::PrimaryRestart => "primary_restart",
            Action::Sql(_) => "sql",
            Action::Switchover => "switchover",
            Action::Failover => "failover",
            Action::KillPrimary => "kill_primary",
        }
    }

    /// The name with its arguments: `vacuum memory_entries_p003`, `create_index_concurrently
    /// m=32`, `replica_stop 1`.
    pub fn label(&self) -> String {
        let name = self.name();
        match self {
            Action::Vacuum {
                target: Some(t), ..
            }
            | Action::Analyze { target: Some(t) } => format!("{name} {t}"),
            Action::CreateIndexConcurrently { m, ef_construction } => {
                let mut parts = vec![name.to_string()];
                parts.extend(m.map(|m| format!("m={m}")));
                parts.extend(ef_construction.map(|e| format!("ef_construction={e}")));
                parts.join(" ")
            }
            Action::ReplicaStop(n) | Action::ReplicaStart(n) => format!("{name} {n}"),
            _ => name.to_string(),
        }
    }

    /// From a name and its argument (a partition, `m=…,ef_construction=…`, a replica number
    /// or a statement).
    pub fn parse(name: &str, arg: Option<&str>) -> Result<Action, String> {
        let target = || arg.map(check_target).transpose();
        let replica = || -> Result<usize, String> {
            let text = arg.unwrap_or("1");
            match text.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(format!(
                    "{name} takes a replica number from 1, got '{text}'"
                )),
            }
        };
        let none = |action: Action| match arg {
            None => Ok(action),
            Some(a) => Err(format!("{name} takes no argument, got '{a}'")),
        };
        match name {
            "vacuum" => Ok(Action::Vacuum {
                analyze: false,
                target: target()?,
            }),
            "vacuum_analyze" => Ok(Action::Vacuum {
                analyze: true,
                target: target()?,
            }),
            "analyze" => Ok(Action::Analyze { target: target()? }),
            "checkpoint" => none(Action::Checkpoint),
            "reindex_concurrently" => none(Action::ReindexConcurrently),
            "create_index_concurrently" => index_params(arg),
            "terminate_backends" => none(Action::TerminateBackends),
            "replica_stop" => Ok(Action::ReplicaStop(replica()?)),
            "replica_start" => Ok(Action::ReplicaStart(replica()?)),
            "primary_restart" => none(Action::PrimaryRestart),
            "switchover" => none(Action::Switchover),
            "failover" => none(Action::Failover),
            "kill_primary" => none(Action::KillPrimary),
            "sql" => match arg.map(str::trim) {
                Some(statement) if !statement.is_empty() => Ok(Action::Sql(statement.into())),
                _ => Err("sql needs a statement".into()),
            },
            other => Err(format!("unknown event action '{other}': one of {ACTIONS}")),
        }
    }
}

/// `m=32,ef_construction=128` (either or both).
fn index_params(arg: Option<&str>) -> Result<Action, String> {
    let (mut m, mut ef_construction) = (None, None);
    for part in arg
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.trim().is_empty())
    {
        let (key, value) = part.split_once('=').ok_or_else(|| {
            format!("create_index_concurrently takes m=N,ef_construction=N, got '{part}'")
        })?;
        let value: u32 = value
            .trim()
            .parse()
            .map_err(|_| format!("{key} must be a whole number, got '{value}'"))?;
        match key.trim() {
            "m" if (2..=100).contains(&value) => m = Some(value),
            "ef_construction" if (4..=1000).contains(&value) => ef_construction = Some(value),
            "m" | "ef_construction" => {
                return Err(format!("{key} {value} is outside pgvector's range"))
            }
            other => {
                return Err(format!(
                    "create_index_concurrently has no parameter '{other}'"
                ))
            }
        }
    }
    Ok(Action::CreateIndexConcurrently { m, ef_construction })
}

/// Maintenance may name `memory_entries` or one of its partitions, nothing else.
fn check_target(name: &str) -> Result<String, String> {
    let ok = name == "memory_entries"
        || name.strip_prefix("memory_entries_").is_some_and(|rest| {
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if ok {
        Ok(name.to_string())
    } else {
        Err(format!(
            "an event's target is memory_entries or one of its partitions (memory_entries_p003), got '{name}'"
        ))
    }
}

/// `--event AT:ACTION[:ARG]`: `2m:vacuum`, `30s:vacuum:memory_entries_p003`,
/// `1m:create_index_concurrently:m=32`, `20s:replica_stop:1`, `10s:sql:ANALYZE`.
pub fn parse_cli(text: &str) -> Result<EventSpec, String> {
    let mut parts = text.splitn(3, ':');
    let (at, name) = match (parts.next(), parts.next()) {
        (Some(at), Some(name)) => (at, name),
        _ => {
            return Err(format!(
                "--event takes AT:ACTION[:ARGUMENT] (e.g. 2m:vacuum), got '{text}'"
            ))
        }
    };
    Ok(EventSpec {
        at: parse_at(at)?,
        action: Action::parse(name.trim(), parts.next())?,
    })
}

/// An event's time: `90s`, `2m`, `1m30s`, or plain seconds.
pub fn parse_at(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    humantime::parse_duration(text)
        .or_else(|_| text.parse::<u64>().map(Duration::from_secs))
        .map_err(|_| format!("an event's time must be a duration such as 90s or 2m, got '{text}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_from_the_command_line() {
        let e = parse_cli("2m:vacuum").unwrap();
        assert_eq!(e.at, Duration::from_secs(120));
        assert_eq!(e.action.label(), "vacuum");
        let e = parse_cli("30s:vacuum_analyze:memory_entries_p003").unwrap();
        assert_eq!(e.action.label(), "vacuum_analyze memory_entries_p003");
        let e = parse_cli("1m:create_index_concurrently:m=32,ef_construction=128").unwrap();
        assert_eq!(
            e.action,
            Action::CreateIndexConcurrently {
                m: Some(32),
                ef_construction: Some(128)
            }
        );
        assert_eq!(
            parse_cli("5:replica_stop").unwrap().action,
            Action::ReplicaStop(1)
        );
        assert_eq!(
            parse_cli("10s:sql:SELECT 1; SELECT 2").unwrap().action,
            Action::Sql("SELECT 1; SELECT 2".into())
        );
    }

    #[test]
    fn bad_events_are_named() {
        for (text, needle) in [
            ("vacuum", "AT:ACTION"),
            ("2x:vacuum", "duration"),
            ("1s:defrag", "unknown event action 'defrag'"),
            ("1s:vacuum:pg_authid", "partitions"),
            ("1s:vacuum:memory_entries; DROP TABLE x", "partitions"),
            ("1s:checkpoint:now", "no argument"),
            ("1s:create_index_concurrently:m=1000", "range"),
            ("1s:create_index_concurrently:lists=3", "no parameter"),
            ("1s:replica_stop:0", "from 1"),
            ("1s:sql:", "statement"),
        ] {
            let e = parse_cli(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
