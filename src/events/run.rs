//! Runs the scheduled events beside the load: each waits for its time from the start of the
//! load, runs on its own connection (application_name `pgvector-loadtest-event`, so that
//! `terminate_backends` spares it) and is recorded with its start, end and outcome. An event
//! whose time has not come when the load ends is recorded as not started; one that is running
//! then is waited for (a concurrent index build is not abandoned half done).

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use super::{Action, EventSpec};
use crate::db::schema::{quote_ident, IndexKind, TableSpec};
use crate::db::target::describe_pg_error;
use crate::db::Endpoints;

/// The vector index every layout has (on a partitioned table, its partitions' indexes hang
/// from it).
const INDEX: &str = "memory_entries_embedding_idx";

/// What one event did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventRecord {
    /// The action's name (`vacuum`, `reindex_concurrently`, …).
    pub action: String,
    /// With its arguments.
    pub label: String,
    /// When it was scheduled, seconds from the start of the load.
    pub at_s: f64,
    /// When it started and ended, seconds from the start of the load (None: not started).
    pub started_s: Option<f64>,
    /// End.
    pub ended_s: Option<f64>,
    /// RFC 3339 start.
    pub started_at: Option<String>,
    /// RFC 3339 end.
    pub ended_at: Option<String>,
    /// `ok`, `ok: …` (what it did), `failed: …`, or `not started: the load ended first`.
    pub outcome: String,
    /// After a failover or restart: every write acknowledged so far, looked for on the new
    /// primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes: Option<crate::engine::ledger::WriteCheck>,
}

/// Told (action, true) when an event starts and (action, false) when it ends.
pub type OnChange = Arc<dyn Fn(&str, bool) + Send + Sync>;

/// What the events act on.
pub struct Context<'a> {
    /// The servers (embedded ones can be stopped and started).
    pub endpoints: &'a Endpoints,
    /// The table and its index settings.
    pub table: &'a TableSpec,
    /// The start of the load: events' times count from it.
    pub origin: Instant,
    /// The Patroni cluster, for switchover, failover and kill_primary.
    pub patroni: &'a super::failover::Patroni,
    /// The rows written so far, checked on the new primary after a failover.
    pub ledger: Option<Arc<crate::engine::ledger::Ledger>>,
    /// Called with (action, true) when an event starts and (action, false) when it ends: the
    /// exporter's `event_active` gauge.
    pub on_change: Option<OnChange>,
}

/// Runs `specs` at their times until every one is done or `load_done` fires before its time.
pub async fn run(
    specs: &[EventSpec],
    ctx: &Context<'_>,
    load_done: CancellationToken,
) -> Vec<EventRecord> {
    let events = specs.iter().map(|spec| one(spec, ctx, load_done.clone()));
    futures::future::join_all(events).await
}

async fn one(spec: &EventSpec, ctx: &Context<'_>, load_done: CancellationToken) -> EventRecord {
    let mut record = EventRecord {
        action: spec.action.name().to_string(),
        label: spec.action.label(),
        at_s: spec.at.as_secs_f64(),
        started_s: None,
        ended_s: None,
        started_at: None,
        ended_at: None,
        outcome: "not started: the load ended first".into(),
        writes: None,
    };
    let due = tokio::time::Instant::from_std(ctx.origin + spec.at);
    tokio::select! {
        _ = tokio::time::sleep_until(due) => {}
        _ = load_done.cancelled() => return record,
    }
    let name = spec.action.name();
    if let Some(f) = &ctx.on_change {
        f(name, true);
    }
    record.started_s = Some(ctx.origin.elapsed().as_secs_f64());
    record.started_at = Some(chrono::Utc::now().to_rfc3339());
    eprintln!("event {}: started", record.label);
    let outcome = act(&spec.action, ctx).await;
    record.ended_s = Some(ctx.origin.elapsed().as_secs_f64());
    record.ended_at = Some(chrono::Utc::now().to_rfc3339());
    if let Some(f) = &ctx.on_change {
        f(name, false);
    }
    record.outcome = match outcome {
        Ok(done) if done.is_empty() => "ok".into(),
        Ok(done) => format!("ok: {done}"),
        Err(e) => format!("failed: {e}"),
    };
    let moved = matches!(
        spec.action,
        Action::Switchover | Action::Failover | Action::KillPrimary | Action::PrimaryRestart
    );
    if let (true, Some(ledger), true) = (moved, &ctx.ledger, outcome_ok(&record.outcome)) {
        let check = ledger.verify(&ctx.endpoints.primary).await;
        eprintln!("event {}: {}", record.label, check.line());
        record.writes = Some(check);
    }
    eprintln!(
        "event {}: {} after {:.1} s",
        record.label,
        record.outcome,
        record.ended_s.unwrap_or_default() - record.started_s.unwrap_or_default()
    );
    record
}

fn outcome_ok(outcome: &str) -> bool {
    outcome == "ok" || outcome.starts_with("ok: ")
}

/// Runs one action; says what it did beyond "ok".
async fn act(action: &Action, ctx: &Context<'_>) -> Result<String, String> {
    match action {
        Action::ReplicaStop(n) => ctx
            .endpoints
            .set_running(*n, false)
            .await
            .map(|_| String::new()),
        Action::ReplicaStart(n) => ctx
            .endpoints
            .set_running(*n, true)
            .await
            .map(|_| String::new()),
        Action::PrimaryRestart => {
            ctx.endpoints.set_running(0, false).await?;
            ctx.endpoints
                .set_running(0, true)
                .await
                .map(|_| String::new())
        }
        Action::Switchover => ctx.patroni.switchover().await,
        Action::Failover => ctx.patroni.failover().await,
        Action::KillPrimary => ctx.patroni.kill_primary().await,
        sql => {
            let target = ctx
                .endpoints
                .primary
                .with_application_name("pgvector-loadtest-event");
            let client = target.connect().await.map_err(|e| e.to_string())?;
            on_connection(sql, &client, ctx.table)
                .await
                .map_err(|e| describe_pg_error(&e))
        }
    }
}

/// The actions that are statements.
async fn on_connection(
    action: &Action,
    client: &Client,
    table: &TableSpec,
) -> Result<String, tokio_postgres::Error> {
    let target = |t: &Option<String>| quote_ident(t.as_deref().unwrap_or("memory_entries"));
    match action {
        Action::Vacuum { analyze, target: t } => {
            let options = if *analyze { " (ANALYZE)" } else { "" };
            client
                .batch_execute(&format!("VACUUM{options} {}", target(t)))
                .await?;
        }
        Action::Analyze { target: t } => {
            client
                .batch_execute(&format!("ANALYZE {}", target(t)))
                .await?;
        }
        Action::Checkpoint => client.batch_execute("CHECKPOINT").await?,
        Action::ReindexConcurrently => {
            // One statement per call: several in one string form a transaction block, which
            // CONCURRENTLY refuses.
            client
                .batch_execute("SET maintenance_work_mem = '512MB'")
                .await?;
            client
                .batch_execute(&format!("REINDEX INDEX CONCURRENTLY {INDEX}"))
                .await?
        }
        Action::CreateIndexConcurrently { m, ef_construction } => {
            return replace_index(client, table, *m, *ef_construction).await;
        }
        Action::TerminateBackends => {
            let row = client
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE application_name = 'pgvector-loadtest' AND pid <> pg_backend_pid()",
                    &[],
                )
                .await?;
            return Ok(format!("{} backends terminated", row.get::<_, i64>(0)));
        }
        Action::Sql(statement) => client.batch_execute(statement).await?,
        Action::ReplicaStop(_)
        | Action::ReplicaStart(_)
        | Action::PrimaryRestart
        | Action::Switchover
        | Action::Failover
        | Action::KillPrimary => {}
    }
    Ok(String::new())
}

/// Builds a new vector index beside the old one without blocking writes (on a partitioned
/// table: an invalid index on the parent only, one `CREATE INDEX CONCURRENTLY` per partition,
/// each attached, which makes the parent's valid), then swaps it in for the old one in one
/// short transaction, and records the new parameters in `pgvector_loadtest_meta`.
async fn replace_index(
    client: &Client,
    table: &TableSpec,
    m: Option<u32>,
    ef_construction: Option<u32>,
) -> Result<String, tokio_postgres::Error> {
    let (m, ef) = (
        m.unwrap_or(table.m),
        ef_construction.unwrap_or(table.ef_construction),
    );
    let with = match table.index {
        IndexKind::Hnsw => format!("m = {m}, ef_construction = {ef}"),
        IndexKind::Ivfflat => format!("lists = {}", table.lists),
    };
    let using = format!(
        "USING {} (embedding {}) WITH ({with})",
        table.index.name(),
        table.embedding().opclass()
    );
    let suffix = format!("{:x}", chrono::Utc::now().timestamp_millis());
    let new = format!("{INDEX}_{suffix}");
    client
        .batch_execute("SET maintenance_work_mem = '512MB'")
        .await?;
    let partitions: Vec<String> = client
        .query(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'memory_entries'::regclass ORDER BY c.relname",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if partitions.is_empty() {
        client
            .batch_execute(&format!(
                "CREATE INDEX CONCURRENTLY {new} ON memory_entries {using}"
            ))
            .await?;
    } else {
        client
            .batch_execute(&format!(
                "CREATE INDEX {new} ON ONLY memory_entries {using}"
            ))
            .await?;
        for part in &partitions {
            let index = quote_ident(&format!("{part}_emb_{suffix}"));
            client
                .batch_execute(&format!(
                    "CREATE INDEX CONCURRENTLY {index} ON {} {using}",
                    quote_ident(part)
                ))
                .await?;
            client
                .batch_execute(&format!("ALTER INDEX {new} ATTACH PARTITION {index}"))
                .await?;
        }
    }
    // The swap: searches wait for these locks for a moment, and never find no index.
    client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL lock_timeout = '30s'; DROP INDEX {INDEX}; \
             ALTER INDEX {new} RENAME TO {INDEX}; \
             UPDATE pgvector_loadtest_meta SET m = {m}, ef_construction = {ef}, updated_at = now() \
             WHERE table_name = 'memory_entries'; COMMIT"
        ))
        .await?;
    Ok(format!(
        "{} rebuilt with {with}{}",
        INDEX,
        if partitions.is_empty() {
            String::new()
        } else {
            format!(" on {} partitions", partitions.len())
        }
    ))
}
