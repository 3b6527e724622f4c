//! The `cleanup` command: deletes the rows that load tests and benchmarks inserted (their keys
//! start with `lt_`, see [`crate::engine::operation`]) from a `memory_entries` this harness owns,
//! and nothing else. Seeded rows stay, so the next run still reuses them; a table without our
//! entry in `pgvector_loadtest_meta` is someone else's and is refused untouched.

use tokio_postgres::Client;

use crate::db::schema::SchemaError;
use crate::db::target::{describe_pg_error, ConnectError, Target};
use crate::Exit;

/// The prefix of every key the load test and the benchmarks insert.
pub use crate::engine::INSERTED_KEY_PREFIX;

/// Why cleanup did not run (exit 2) or failed (exit 1): see [`CleanupError::exit`].
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// The server could not be reached.
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// Endpoint, without credentials.
        target: String,
        /// Cause.
        #[source]
        source: ConnectError,
    },
    /// The table is not ours.
    #[error(transparent)]
    Foreign(#[from] SchemaError),
    /// The delete failed.
    #[error("cleanup failed: {}", describe_pg_error(.0))]
    Db(#[source] tokio_postgres::Error),
}

impl CleanupError {
    /// The exit code: an unreachable server or a foreign table is found before anything is
    /// deleted (2); a statement that fails on our table is a run that could not complete (1).
    pub fn exit(&self) -> Exit {
        match self {
            CleanupError::Connect { .. } => Exit::Usage,
            CleanupError::Foreign(e) => e.exit(),
            CleanupError::Db(_) => Exit::Failed,
        }
    }
}

/// Deletes the load tests' rows; returns how many were deleted (0 when there is no table).
pub async fn delete_inserted(client: &Client) -> Result<u64, CleanupError> {
    let db = CleanupError::Db;
    let row = client
        .query_one(
            "SELECT to_regclass('memory_entries') IS NOT NULL, \
                    to_regclass('pgvector_loadtest_meta') IS NOT NULL",
            &[],
        )
        .await
        .map_err(db)?;
    let (table, meta): (bool, bool) = (row.get(0), row.get(1));
    if !table {
        return Ok(0);
    }
    let owned = meta
        && client
            .query_opt(
                "SELECT 1 FROM pgvector_loadtest_meta WHERE table_name = 'memory_entries'",
                &[],
            )
            .await
            .map_err(db)?
            .is_some();
    if !owned {
        return Err(SchemaError::Foreign.into());
    }
    client
        .execute(
            "DELETE FROM memory_entries WHERE key LIKE $1",
            &[&crate::engine::inserted_key_pattern()],
        )
        .await
        .map_err(db)
}

/// Runs the command against `primary` and prints the count.
pub async fn run(primary: &Target) -> Result<u64, CleanupError> {
    let client = primary
        .connect()
        .await
        .map_err(|source| CleanupError::Connect {
            target: primary.display(),
            source,
        })?;
    let deleted = delete_inserted(&client).await?;
    println!(
        "deleted {deleted} rows inserted by load tests and benchmarks (keys {INSERTED_KEY_PREFIX}*) from memory_entries on {}",
        primary.display()
    );
    Ok(deleted)
}
