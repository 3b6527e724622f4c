//! The SQL behind the server-side series, over the catalog columns that exist
//! (`pg_stat_user_tables.relname`, not `tablename`; indexes by `pg_class`, not `indexname`).
//!
//! A partitioned table or index has no storage of its own: it is reported as the sum of its
//! leaf partitions (`pg_partition_tree`), and the partitions are reported too, so both the
//! whole table and a single bloated partition are visible.
//!
//! With the `citus` extension, distributed tables live in shards on the workers and the
//! coordinator's catalog shows empty shells: their sizes come from `citus_table_size`, their
//! row counts and index sizes from the shards (`run_command_on_shards`). That path is best
//! effort and untested here (no Citus in the test environment); on any error it logs and keeps
//! the coordinator's numbers.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::server::PrimaryState;

const SETTINGS: &str = "SELECT current_setting('server_version'), \
     coalesce((SELECT extversion FROM pg_extension WHERE extname = 'vector'), 'none'), \
     current_setting('max_connections')::float8, \
     EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus'), \
     pg_is_in_recovery()";

// Server-wide, by database: max_connections is a limit of the whole server, so the alerts
// that divide by it must count every database's clients, not just the one we connect to.
const CONNECTIONS: &str = "SELECT coalesce(datname, ''), \
     count(*) FILTER (WHERE state = 'active')::float8, \
     count(*) FILTER (WHERE state = 'idle')::float8, count(*)::float8 \
     FROM pg_stat_activity WHERE backend_type = 'client backend' \
     GROUP BY 1 ORDER BY 1";

const BLOCKS: &str =
    "SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()";

const USER_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp'";

fn tables_sql() -> String {
    format!(
        "SELECT n.nspname, c.relname, \
           (CASE WHEN c.relkind = 'p' THEN \
              (SELECT coalesce(sum(pg_table_size(t.relid)), 0) \
               FROM pg_partition_tree(c.oid) t WHERE t.isleaf) \
            ELSE pg_table_size(c.oid) END)::float8, \
           (CASE WHEN c.relkind = 'p' THEN \
              (SELECT coalesce(sum(s.n_live_tup), 0) FROM pg_partition_tree(c.oid) t \
               JOIN pg_stat_user_tables s ON s.relid = t.relid WHERE t.isleaf) \
            ELSE (SELECT coalesce(max(s.n_live_tup), 0) FROM pg_stat_user_tables s \
                  WHERE s.relid = c.oid) END)::float8 \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMAS} \
         ORDER BY 1, 2"
    )
}

fn indexes_sql() -> String {
    format!(
        "SELECT n.nspname, i.relname, t.relname, am.amname, \
           (CASE WHEN i.relkind = 'I' THEN \
              (SELECT coalesce(sum(pg_relation_size(p.relid)), 0) \
               FROM pg_partition_tree(i.oid) p WHERE p.isleaf) \
            ELSE pg_relation_size(i.oid) END)::float8 \
         FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace n ON n.oid = i.relnamespace \
         JOIN pg_am am ON am.oid = i.relam \
         WHERE {USER_SCHEMAS} \
         ORDER BY 1, 2"
    )
}

const REPLICATION: &str = "SELECT coalesce(application_name, ''), \
     coalesce(host(client_addr), 'local'), coalesce(client_port, 0), \
     coalesce(extract(epoch FROM replay_lag), 0)::float8, \
     pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 \
     FROM pg_stat_replication ORDER BY pid";

/// Reads everything the server-side series need from the primary; with `sizes` false, leaves
/// out the table and index sizes (a catalog walk per table: the load test's once-a-second
/// watch needs only the cache counters and replication).
pub async fn read_primary(
    client: &Client,
    sizes: bool,
) -> Result<PrimaryState, tokio_postgres::Error> {
    let settings = client.query_one(SETTINGS, &[]).await?;
    let citus: bool = settings.get(3);
    let in_recovery: bool = settings.get(4);
    let blocks = client.query_one(BLOCKS, &[]).await?;
    let mut state = PrimaryState {
        server_version: settings.get(0),
        pgvector_version: settings.get(1),
        max_connections: settings.get(2),
        connections: client
            .query(CONNECTIONS, &[])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect(),
        blocks: (blocks.get(0), blocks.get(1)),
        tables: Vec::new(),
        indexes: Vec::new(),
        replication: Vec::new(),
    };
    if sizes {
        state.tables = client
            .query(&tables_sql(), &[])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        state.indexes = client
            .query(&indexes_sql(), &[])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect();
    }
    // A standby has no WAL position of its own to measure replicas against.
    if !in_recovery {
        let senders: Vec<WalSender> = client
            .query(REPLICATION, &[])
            .await?
            .iter()
            .map(|r| WalSender {
                application_name: r.get(0),
                client_addr: r.get(1),
                client_port: r.get(2),
                lag_seconds: r.get(3),
                lag_bytes: r.get(4),
            })
            .collect();
        state.replication = name_replicas(&senders);
    }
    if citus && sizes {
        if let Err(e) = citus_sizes(client, &mut state).await {
            log::warn!("citus sizes unavailable, keeping the coordinator's: {e}");
        }
    }
    Ok(state)
}

/// One row of `pg_stat_replication`.
#[derive(Debug, Clone, PartialEq)]
pub struct WalSender {
    /// The replica's `application_name` (`walreceiver` unless set).
    pub application_name: String,
    /// Its address (`local` for a Unix socket).
    pub client_addr: String,
    /// Its client port.
    pub client_port: i32,
    /// `replay_lag` in seconds, 0 when NULL (caught up).
    pub lag_seconds: f64,
    /// WAL bytes not yet replayed, unknown before the replica's first report.
    pub lag_bytes: Option<f64>,
}

/// Labels replicas by `application_name` (set it, or `cluster_name`, on each replica to name
/// it); replicas sharing a name (e.g. the default `walreceiver`) get their client address,
/// then their port, appended.
pub fn name_replicas(senders: &[WalSender]) -> Vec<(String, f64, Option<f64>)> {
    let by_app = |w: &WalSender| w.application_name.clone();
    let by_addr = |w: &WalSender| format!("{}@{}", w.application_name, w.client_addr);
    let unique = |key: &dyn Fn(&WalSender) -> String, w: &WalSender| {
        senders.iter().filter(|o| key(o) == key(w)).count() == 1
    };
    senders
        .iter()
        .map(|w| {
            let name = if unique(&by_app, w) {
                by_app(w)
            } else if unique(&by_addr, w) {
                by_addr(w)
            } else {
                format!("{}:{}", by_addr(w), w.client_port)
            };
            (name, w.lag_seconds, w.lag_bytes)
        })
        .collect()
}

const CITUS_TABLES: &str = "SELECT n.nspname, c.relname, format('%I.%I', n.nspname, c.relname), \
     citus_table_size(p.logicalrelid)::float8 \
     FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'";

const CITUS_ROWS: &str = "SELECT coalesce(sum(result::bigint), 0)::float8 \
     FROM run_command_on_shards($1::regclass, \
       $$SELECT n_live_tup FROM pg_stat_user_tables WHERE relid = '%s'::regclass$$) \
     WHERE success";

const CITUS_INDEXES: &str = "SELECT result FROM run_command_on_shards($1::regclass, \
       $$SELECT coalesce(json_object_agg(c.relname, pg_relation_size(c.oid)), '{}') \
         FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid \
         WHERE x.indrelid = '%s'::regclass$$) \
     WHERE success";

/// Replaces the coordinator's empty shells of distributed tables by the shards' totals.
async fn citus_sizes(
    client: &Client,
    state: &mut PrimaryState,
) -> Result<(), tokio_postgres::Error> {
    for row in client.query(CITUS_TABLES, &[]).await? {
        let (schema, table, qualified, bytes): (String, String, String, f64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let rows: f64 = client.query_one(CITUS_ROWS, &[&qualified]).await?.get(0);
        if let Some(t) = state
            .tables
            .iter_mut()
            .find(|t| t.0 == schema && t.1 == table)
        {
            t.2 = bytes;
            t.3 = rows;
        }
        // Shard indexes are named <index>_<shardid>: sum them per index.
        let mut sums: HashMap<String, f64> = HashMap::new();
        for shard in client.query(CITUS_INDEXES, &[&qualified]).await? {
            let text: String = shard.get(0);
            let Ok(map) = serde_json::from_str::<HashMap<String, f64>>(&text) else {
                continue;
            };
            for (name, size) in map {
                let index = match name.rsplit_once('_') {
                    Some((base, id)) if id.chars().all(|c| c.is_ascii_digit()) => base.to_string(),
                    _ => name,
                };
                *sums.entry(index).or_default() += size;
            }
        }
        for i in state
            .indexes
            .iter_mut()
            .filter(|i| i.0 == schema && i.2 == table)
        {
            if let Some(size) = sums.get(&i.1) {
                i.4 = *size;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(app: &str, addr: &str, port: i32) -> WalSender {
        WalSender {
            application_name: app.into(),
            client_addr: addr.into(),
            client_port: port,
            lag_seconds: 0.0,
            lag_bytes: Some(0.0),
        }
    }

    #[test]
    fn replicas_are_named_by_application_name_then_address_then_port() {
        let names: Vec<String> = name_replicas(&[
            sender("replica1", "10.0.0.1", 40000),
            sender("walreceiver", "10.0.0.2", 40001),
            sender("walreceiver", "10.0.0.3", 40002),
            sender("walreceiver", "10.0.0.3", 40003),
        ])
        .into_iter()
        .map(|r| r.0)
        .collect();
        assert_eq!(
            names,
            [
                "replica1",
                "walreceiver@10.0.0.2",
                "walreceiver@10.0.0.3:40002",
                "walreceiver@10.0.0.3:40003"
            ]
        );
    }
}
