//! `memory_entries` in three layouts, the HNSW index, and the record of what this harness owns.
//!
//! Ownership is explicit: a row in `pgvector_loadtest_meta` says the table was created here,
//! with which layout, dimension, index parameters and dataset fingerprint. A table without that
//! row belongs to someone else and is never altered, truncated or dropped.

use std::fmt;
use std::str::FromStr;

use tokio_postgres::Client;

use super::target::describe_pg_error;
use crate::workload::{Distance, Embedding, VectorType};
use crate::Exit;

/// How `memory_entries` is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One LIST partition per namespace, each with its own HNSW index (the default).
    List,
    /// N HASH partitions on namespace (Citus-like shards): several namespaces share an index,
    /// so single-namespace queries need pgvector's iterative scans to fill k rows.
    Hash(u32),
    /// One unpartitioned table (the original system's layout).
    Single,
}

impl FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Layout, String> {
        match s {
            "list" => Ok(Layout::List),
            "single" => Ok(Layout::Single),
            _ => match s.strip_prefix("hash:").map(str::parse::<u32>) {
                Some(Ok(n)) if (1..=1024).contains(&n) => Ok(Layout::Hash(n)),
                _ => Err(format!(
                    "unknown layout '{s}': expected list, single or hash:N with N in 1..=1024"
                )),
            },
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layout::List => f.write_str("list"),
            Layout::Hash(n) => write!(f, "hash:{n}"),
            Layout::Single => f.write_str("single"),
        }
    }
}

/// The approximate index on `embedding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum IndexKind {
    /// HNSW (`m`, `ef_construction`; searched with `hnsw.ef_search`).
    #[default]
    Hnsw,
    /// IVFFlat (`lists`; searched with `ivfflat.probes`).
    Ivfflat,
}

impl IndexKind {
    /// pgvector's access method name.
    pub fn name(self) -> &'static str {
        match self {
            IndexKind::Hnsw => "hnsw",
            IndexKind::Ivfflat => "ivfflat",
        }
    }
}

/// The table's shape and index parameters.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// Partitioning.
    pub layout: Layout,
    /// Embedding dimension.
    pub dim: usize,
    /// HNSW `m`.
    pub m: u32,
    /// HNSW `ef_construction`.
    pub ef_construction: u32,
    /// The embedding column's type.
    pub vector_type: VectorType,
    /// The distance the index orders by (its operator class).
    pub distance: Distance,
    /// The index.
    pub index: IndexKind,
    /// IVFFlat `lists`.
    pub lists: u32,
}

impl TableSpec {
    /// What a run must find to reuse the table: `layout list, dimension 384, vector, cosine, hnsw m
    /// 16 ef_construction 64`.
    pub fn shape(&self) -> String {
        let index = match self.index {
            IndexKind::Hnsw => {
                format!("hnsw m {} ef_construction {}", self.m, self.ef_construction)
            }
            IndexKind::Ivfflat => format!("ivfflat lists {}", self.lists),
        };
        format!(
            "layout {}, dimension {}, {}, {}, {index}",
            self.layout,
            self.dim,
            self.vector_type.sql(),
            self.distance.name()
        )
    }

    /// The column as the statements see it.
    pub fn embedding(&self) -> Embedding {
        Embedding {
            vector_type: self.vector_type,
            distance: self.distance,
        }
    }

    /// The index and the session's search settings, as reports print them.
    pub fn describe_index(&self, session: &super::pool::Session) -> String {
        let vt = format!("{} {}", self.vector_type.sql(), self.distance.name());
        match self.index {
            IndexKind::Hnsw => format!(
                "{vt}, hnsw m={} ef_construction={} ef_search={} iterative_scan={}",
                self.m, self.ef_construction, session.ef_search, session.iterative_scan
            ),
            IndexKind::Ivfflat => format!(
                "{vt}, ivfflat lists={} probes={} iterative_scan={}",
                self.lists, session.probes, session.iterative_scan
            ),
        }
    }
}

/// Schema problems, each with one explaining line: see [`SchemaError::exit`].
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// pgvector is not installed on the server.
    #[error("the server has no pgvector extension: {0}; install pgvector (https://github.com/pgvector/pgvector) or use the embedded default (no --database-url)")]
    NoPgvector(String),
    /// pgvector is older than a requested feature needs.
    #[error("pgvector {found} is too old: {feature} needs {needed} or later")]
    PgvectorTooOld {
        /// Installed version.
        found: String,
        /// What was asked for.
        feature: &'static str,
        /// Minimum version.
        needed: &'static str,
    },
    /// The table exists but was not created by this harness.
    #[error("memory_entries exists but was not created by pgvector-loadtest (no entry in pgvector_loadtest_meta); refusing to touch it: use another database")]
    Foreign,
    /// The table is ours but has another shape.
    #[error("memory_entries exists with {found}, but this run asks for {wanted}; pass --reset to drop and recreate it, or match its settings")]
    Mismatch {
        /// What is there.
        found: String,
        /// What was asked.
        wanted: String,
    },
    /// Any other database error.
    #[error("schema setup failed: {}", describe_pg_error(.0))]
    Db(#[from] tokio_postgres::Error),
}

impl SchemaError {
    /// The exit code: a server or table the run cannot use is found before anything runs
    /// (2); a statement that fails once the checks passed (creating the table, building the
    /// index after the seed) ends a run that started (1).
    pub fn exit(&self) -> Exit {
        match self {
            SchemaError::Db(_) => Exit::Failed,
            _ => Exit::Usage,
        }
    }
}

/// What [`prepare`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Our table with the same dataset, completely seeded: nothing to do.
    Reuse,
    /// The table is empty and must be seeded (then [`finish`] called).
    Seed,
}

/// The installed pgvector version, e.g. "0.8.6".
pub async fn pgvector_version(client: &Client) -> Result<String, SchemaError> {
    let row = client
        .query_opt(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
            &[],
        )
        .await?;
    Ok(row.map(|r| r.get(0)).unwrap_or_default())
}

/// The advisory lock key that serialises data preparation.
const SEED_LOCK: &str = "hashtext('pgvector_loadtest_seed')";

/// Whether `memory_entries` holds the complete data of `fingerprint` already: then nothing is
/// prepared and no lock is needed. Unnamed statements only, so that it works through a
/// transaction pooler (where a session lock would not hold).
pub async fn is_complete(client: &Client, fingerprint: &str) -> Result<bool, SchemaError> {
    let meta: bool = client
        .query_typed_one(
            "SELECT to_regclass('pgvector_loadtest_meta') IS NOT NULL \
             AND to_regclass('memory_entries') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !meta {
        return Ok(false);
    }
    let row = client
        .query_typed_opt(
            "SELECT complete AND fingerprint = $1 FROM pgvector_loadtest_meta \
             WHERE table_name = 'memory_entries'",
            &[(&fingerprint, tokio_postgres::types::Type::TEXT)],
        )
        .await?;
    Ok(row.is_some_and(|r| r.get(0)))
}

/// Releases [`lock_for_seeding`]'s lock (the session's end would too, but a pooler may keep
/// the server session).
pub async fn unlock_seeding(client: &Client) {
    let _ = client
        .execute(&format!("SELECT pg_advisory_unlock({SEED_LOCK})"), &[])
        .await;
}

/// Takes the session-level advisory lock that serialises data preparation (schema, seed,
/// index) among processes on one database; says so when another process holds it.
pub async fn lock_for_seeding(client: &Client) -> Result<(), SchemaError> {
    const KEY: &str = SEED_LOCK;
    let got: bool = client
        .query_one(&format!("SELECT pg_try_advisory_lock({KEY})"), &[])
        .await?
        .get(0);
    if !got {
        eprintln!("another process is preparing the data on this database: waiting for it ...");
        client
            .execute(&format!("SELECT pg_advisory_lock({KEY})"), &[])
            .await?;
    }
    Ok(())
}

/// Makes sure pgvector is installed and new enough for `iterative_scan` (0.8.0) and `halfvec`
/// (0.7.0).
pub async fn ensure_pgvector(
    client: &Client,
    iterative_scan: bool,
    halfvec: bool,
) -> Result<String, SchemaError> {
    if let Err(e) = client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS vector")
        .await
    {
        return Err(SchemaError::NoPgvector(describe_pg_error(&e)));
    }
    let version = pgvector_version(client).await?;
    if iterative_scan && version_lt(&version, (0, 8, 0)) {
        return Err(SchemaError::PgvectorTooOld {
            found: version,
            feature: "iterative_scan",
            needed: "0.8.0",
        });
    }
    if halfvec && version_lt(&version, (0, 7, 0)) {
        return Err(SchemaError::PgvectorTooOld {
            found: version,
            feature: "halfvec",
            needed: "0.7.0",
        });
    }
    Ok(version)
}

fn version_lt(version: &str, min: (u32, u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let v = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    v < min
}

const META_DDL: &str = "CREATE TABLE IF NOT EXISTS pgvector_loadtest_meta (
    table_name text PRIMARY KEY,
    layout text NOT NULL,
    dim int NOT NULL,
    m int NOT NULL,
    ef_construction int NOT NULL,
    fingerprint text NOT NULL,
    dataset text NOT NULL,
    complete boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now());
    ALTER TABLE pgvector_loadtest_meta
    ADD COLUMN IF NOT EXISTS vector_type text NOT NULL DEFAULT 'vector',
    ADD COLUMN IF NOT EXISTS index_kind text NOT NULL DEFAULT 'hnsw',
    ADD COLUMN IF NOT EXISTS lists int NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS distance text NOT NULL DEFAULT 'cosine'";

/// Checks what exists against `spec` and leaves an empty, owned table when seeding is needed.
/// `reset` drops our table (never a foreign one) and starts over.
pub async fn prepare(
    client: &Client,
    spec: &TableSpec,
    namespaces: &[String],
    fingerprint: &str,
    reset: bool,
) -> Result<Prepared, SchemaError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('memory_entries') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        client.batch_execute(META_DDL).await?;
        create(client, spec, namespaces).await?;
        record(client, spec, fingerprint, "").await?;
        return Ok(Prepared::Seed);
    }
    let meta_exists: bool = client
        .query_one(
            "SELECT to_regclass('pgvector_loadtest_meta') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    let row = if meta_exists {
        // Read through to_jsonb: a table recorded before the vector type and index kind were
        // has no such columns (vector, hnsw), and a role that may only read cannot add them.
        client
            .query_opt(
                "SELECT layout, dim, m, ef_construction, fingerprint, complete, \
                 coalesce(to_jsonb(t) ->> 'vector_type', 'vector'), \
                 coalesce(to_jsonb(t) ->> 'index_kind', 'hnsw'), \
                 coalesce((to_jsonb(t) ->> 'lists')::int, 0), \
                 coalesce(to_jsonb(t) ->> 'distance', 'cosine') \
                 FROM pgvector_loadtest_meta t WHERE table_name = 'memory_entries'",
                &[],
            )
            .await?
    } else {
        None
    };
    let Some(row) = row else {
        return Err(SchemaError::Foreign);
    };
    let found = match row.get::<_, String>(7).as_str() {
        "ivfflat" => format!("ivfflat lists {}", row.get::<_, i32>(8)),
        _ => format!(
            "hnsw m {} ef_construction {}",
            row.get::<_, i32>(2),
            row.get::<_, i32>(3)
        ),
    };
    let found = format!(
        "layout {}, dimension {}, {}, {}, {found}",
        row.get::<_, String>(0),
        row.get::<_, i32>(1),
        row.get::<_, String>(6),
        row.get::<_, String>(9),
    );
    let wanted = spec.shape();
    if found != wanted || reset {
        if !reset {
            return Err(SchemaError::Mismatch { found, wanted });
        }
        client
            .batch_execute("DROP TABLE memory_entries CASCADE")
            .await?;
        create(client, spec, namespaces).await?;
        record(client, spec, fingerprint, "").await?;
        return Ok(Prepared::Seed);
    }
    let same_data = row.get::<_, String>(4) == fingerprint && row.get::<_, bool>(5);
    if same_data {
        return Ok(Prepared::Reuse);
    }
    // Ours, same shape, other (or half-loaded) data: empty it and reseed. The partitions are
    // recreated because the namespaces may differ.
    client
        .batch_execute("DROP TABLE memory_entries CASCADE")
        .await?;
    create(client, spec, namespaces).await?;
    record(client, spec, fingerprint, "").await?;
    Ok(Prepared::Seed)
}

/// Creates the table and its partitions, without the HNSW index (built after loading, which is
/// several times faster than maintaining it row by row).
async fn create(
    client: &Client,
    spec: &TableSpec,
    namespaces: &[String],
) -> Result<(), SchemaError> {
    let citus: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')",
            &[],
        )
        .await?
        .get(0);
    client
        .batch_execute(&create_sql(spec, namespaces, citus))
        .await?;
    Ok(())
}

/// The statements that create the table: with Citus, the single layout becomes a distributed
/// table on `namespace` (single-namespace searches route to one shard; cross-namespace ones
/// run on several shards and merge on the coordinator).
pub fn create_sql(spec: &TableSpec, namespaces: &[String], citus: bool) -> String {
    let columns = format!(
        "namespace text NOT NULL,
         key text NOT NULL,
         value text NOT NULL,
         embedding {}({}) NOT NULL,
         metadata jsonb NOT NULL DEFAULT '{{}}',
         tags text[] NOT NULL DEFAULT '{{}}',
         created_at timestamptz NOT NULL DEFAULT now(),
         updated_at timestamptz NOT NULL DEFAULT now(),
         expires_at timestamptz,
         PRIMARY KEY (namespace, key)",
        spec.vector_type.sql(),
        spec.dim
    );
    let mut sql = match spec.layout {
        Layout::Single => format!("CREATE TABLE memory_entries ({columns});"),
        Layout::List => {
            let mut s =
                format!("CREATE TABLE memory_entries ({columns}) PARTITION BY LIST (namespace);");
            for (i, ns) in namespaces.iter().enumerate() {
                s.push_str(&format!(
                    "CREATE TABLE memory_entries_p{i:03} PARTITION OF memory_entries FOR VALUES IN ({});",
                    quote_literal(ns)
                ));
            }
            // Inserts into a namespace nobody planned for still succeed.
            s.push_str("CREATE TABLE memory_entries_default PARTITION OF memory_entries DEFAULT;");
            s
        }
        Layout::Hash(n) => {
            let mut s =
                format!("CREATE TABLE memory_entries ({columns}) PARTITION BY HASH (namespace);");
            for i in 0..n {
                s.push_str(&format!(
                    "CREATE TABLE memory_entries_h{i:03} PARTITION OF memory_entries FOR VALUES WITH (MODULUS {n}, REMAINDER {i});"
                ));
            }
            s
        }
    };
    if citus && spec.layout == Layout::Single {
        sql.push_str("SELECT create_distributed_table('memory_entries', 'namespace');");
    }
    sql
}

async fn record(
    client: &Client,
    spec: &TableSpec,
    fingerprint: &str,
    dataset: &str,
) -> Result<(), SchemaError> {
    // The columns a table recorded by an earlier version lacks.
    client.batch_execute(META_DDL).await?;
    client
        .execute(
            "INSERT INTO pgvector_loadtest_meta \
             (table_name, layout, dim, m, ef_construction, fingerprint, dataset, complete, \
              vector_type, index_kind, lists, distance) \
             VALUES ('memory_entries', $1, $2, $3, $4, $5, $6, false, $7, $8, $9, $10) \
             ON CONFLICT (table_name) DO UPDATE SET layout = EXCLUDED.layout, dim = EXCLUDED.dim, \
             m = EXCLUDED.m, ef_construction = EXCLUDED.ef_construction, \
             fingerprint = EXCLUDED.fingerprint, dataset = EXCLUDED.dataset, complete = false, \
             vector_type = EXCLUDED.vector_type, index_kind = EXCLUDED.index_kind, \
             lists = EXCLUDED.lists, distance = EXCLUDED.distance, updated_at = now()",
            &[
                &spec.layout.to_string(),
                &(spec.dim as i32),
                &(spec.m as i32),
                &(spec.ef_construction as i32),
                &fingerprint,
                &dataset,
                &spec.vector_type.sql(),
                &spec.index.name(),
                &(spec.lists as i32),
                &spec.distance.name(),
            ],
        )
        .await?;
    Ok(())
}

/// After loading: builds the index (HNSW or IVFFlat, with the distance's operator class), analyzes, and marks the data complete, so a
/// run interrupted before this point reseeds next time.
pub async fn finish(client: &Client, spec: &TableSpec, dataset: &str) -> Result<(), SchemaError> {
    let ops = spec.embedding().opclass();
    let with = match spec.index {
        IndexKind::Hnsw => format!("m = {}, ef_construction = {}", spec.m, spec.ef_construction),
        IndexKind::Ivfflat => format!("lists = {}", spec.lists),
    };
    client
        .batch_execute(&format!(
            "SET maintenance_work_mem = '512MB';
             CREATE INDEX IF NOT EXISTS memory_entries_embedding_idx ON memory_entries
               USING {} (embedding {ops}) WITH ({with});
             ANALYZE memory_entries;",
            spec.index.name()
        ))
        .await?;
    client
        .execute(
            "UPDATE pgvector_loadtest_meta SET complete = true, dataset = $1, updated_at = now() \
             WHERE table_name = 'memory_entries'",
            &[&dataset],
        )
        .await?;
    Ok(())
}

/// Quotes a name as an SQL identifier.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes a string as an SQL literal (namespace names come from our own generator, but a
/// file-based dataset could name them anything).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_parse_and_print() {
        assert_eq!("list".parse::<Layout>().unwrap(), Layout::List);
        assert_eq!("hash:8".parse::<Layout>().unwrap(), Layout::Hash(8));
        assert_eq!(Layout::Hash(8).to_string(), "hash:8");
        assert!("hash:0".parse::<Layout>().is_err());
        assert!("range".parse::<Layout>().is_err());
    }

    /// The Citus path, checked where Citus is absent: the single layout is distributed on
    /// namespace (the generators' share of namespaces then maps onto shards); without Citus,
    /// or with a partitioned layout, nothing is distributed.
    #[test]
    fn with_citus_the_single_layout_is_distributed_on_namespace() {
        let spec = |layout| TableSpec {
            layout,
            dim: 384,
            m: 16,
            ef_construction: 64,
            vector_type: VectorType::Vector,
            distance: Distance::Cosine,
            index: IndexKind::Hnsw,
            lists: 100,
        };
        let namespaces = vec!["ns_000".to_string(), "ns_001".to_string()];
        let distributed = "SELECT create_distributed_table('memory_entries', 'namespace');";
        let sql = create_sql(&spec(Layout::Single), &namespaces, true);
        assert!(sql.starts_with("CREATE TABLE memory_entries ("), "{sql}");
        assert!(sql.contains("PRIMARY KEY (namespace, key)"), "{sql}");
        assert!(sql.ends_with(distributed), "{sql}");
        assert!(!create_sql(&spec(Layout::Single), &namespaces, false).contains(distributed));
        let list = create_sql(&spec(Layout::List), &namespaces, true);
        assert!(!list.contains(distributed), "{list}");
        assert!(list.contains("FOR VALUES IN ('ns_001')"), "{list}");
    }

    #[test]
    fn versions_compare() {
        assert!(version_lt("0.7.4", (0, 8, 0)));
        assert!(!version_lt("0.8.6", (0, 8, 0)));
        assert!(!version_lt("1.0", (0, 8, 0)));
    }
}
