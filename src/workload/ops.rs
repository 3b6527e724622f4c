//! The six operations of the workload, as plain async functions over one connection, shared by
//! the Goose load test and the benchmark suite.
//!
//! Statements are prepared once per pooled connection ([`Statements::prepare`]) so an operation
//! is one round trip, as pgbench's `-M prepared` is; that keeps the client's cost out of the
//! latency we report.

use super::Embedding;
use pgvector::Vector;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, Row, Statement};

/// The operations, in the order the reports list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// kNN search inside one namespace (one partition / shard).
    SingleShardSearch,
    /// kNN search across several namespaces, merged top-k.
    CrossShardSearch,
    /// kNN search inside one namespace, among the seeded rows a metadata filter keeps (a
    /// controlled share of them: `--filter-selectivity`).
    FilteredSearch,
    /// Key lookup.
    Retrieve,
    /// Upsert of one row.
    Insert,
    /// Upsert of a batch of rows in one statement (one transaction).
    BulkInsert,
}

impl Op {
    /// How many there are: the length of every per-operation array.
    pub const COUNT: usize = 6;

    /// All operations.
    pub const ALL: [Op; Op::COUNT] = [
        Op::SingleShardSearch,
        Op::CrossShardSearch,
        Op::FilteredSearch,
        Op::Retrieve,
        Op::Insert,
        Op::BulkInsert,
    ];

    /// The operation named `name` (as [`Op::name`] spells it).
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// The name used in Goose, the CSVs and the summary (the original Locust task names).
    pub fn name(self) -> &'static str {
        match self {
            Op::SingleShardSearch => "vector_search_single_shard",
            Op::CrossShardSearch => "vector_search_cross_shard",
            Op::FilteredSearch => "vector_search_filtered",
            Op::Retrieve => "retrieve_memory",
            Op::Insert => "insert_memory",
            Op::BulkInsert => "bulk_insert",
        }
    }

    /// Position in [`Op::ALL`], for array-indexed statistics.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the operation is a kNN search (k and short result sets apply).
    pub fn is_search(self) -> bool {
        matches!(
            self,
            Op::SingleShardSearch | Op::CrossShardSearch | Op::FilteredSearch
        )
    }
}

/// The searches' SQL for the column `e`: the query vector is bound as `vector` ($2) and cast
/// to the column's type; `similarity` is the distance's score (larger is nearer: the cosine
/// similarity for cosine).
fn search_sql(e: Embedding) -> [String; 3] {
    let (score, order) = (e.score("$2::vector"), e.distance_to("$2::vector"));
    [
        format!(
            "SELECT namespace, key, value, metadata, {score} AS similarity \
             FROM memory_entries WHERE namespace = $1 ORDER BY {order} LIMIT $3"
        ),
        // The similarity filter sits outside the ordered LIMIT so the planner keeps the index
        // scan; a WHERE on the distance inside would turn it into a filtered scan.
        format!(
            "SELECT * FROM (SELECT namespace, key, value, metadata, {score} AS similarity \
             FROM memory_entries WHERE namespace = $1 ORDER BY {order} LIMIT $3) s \
             WHERE similarity >= $4"
        ),
        format!(
            "SELECT namespace, key, value, metadata, {score} AS similarity \
             FROM memory_entries WHERE namespace = ANY($1) ORDER BY {order} LIMIT $3"
        ),
    ]
}

/// The filtered search's predicate: a seeded row's bucket (uniform over
/// [`BUCKETS`](super::dataset::BUCKETS)) below `$4`. Rows the load test inserts carry no bucket
/// and never match. pgvector applies it to what the index scan returns, so without iterative
/// scan a selective filter leaves fewer than k rows.
const BUCKET_FILTER: &str = "(metadata->>'bucket')::int < $4";

/// The bucket threshold of a filter keeping `selectivity` of the seeded rows (0 keeps none).
pub fn bucket_threshold(selectivity: f64) -> i32 {
    (selectivity * f64::from(super::dataset::BUCKETS)).round() as i32
}

/// `sql`, a query over one namespace (`WHERE namespace = $1 ...`, a search or its exact
/// truth), with the bucket filter added to its WHERE as `$4`: the filtered search and its
/// truth are derived from the unfiltered SQL rather than written twice, so they cannot drift
/// apart (in the distance operator, say).
pub fn with_bucket_filter(sql: &str) -> String {
    const SCOPE: &str = "WHERE namespace = $1 ";
    assert_eq!(
        sql.matches(SCOPE).count(),
        1,
        "a single-namespace query has one `{SCOPE}`: {sql}"
    );
    sql.replacen(SCOPE, &format!("{SCOPE}AND {BUCKET_FILTER} "), 1)
}

const RETRIEVE: &str = "SELECT namespace, key, value, metadata, tags, created_at \
     FROM memory_entries WHERE namespace = $1 AND key = $2";

// The embedding is bound as `vector`; a `halfvec` column takes it by pgvector's cast.
const INSERT: &str = "INSERT INTO memory_entries (namespace, key, value, embedding, metadata) \
     VALUES ($1, $2, $3, $4::vector, '{\"source\":\"pgvector-loadtest\"}') \
     ON CONFLICT (namespace, key) DO UPDATE \
     SET value = EXCLUDED.value, embedding = EXCLUDED.embedding, updated_at = now()";

const BULK_INSERT: &str =
    "INSERT INTO memory_entries (namespace, key, value, embedding, metadata) \
     SELECT n, k, v, e, '{\"source\":\"pgvector-loadtest\"}' \
     FROM unnest($1::text[], $2::text[], $3::text[], $4::vector[]) AS t(n, k, v, e) \
     ON CONFLICT (namespace, key) DO UPDATE \
     SET value = EXCLUDED.value, embedding = EXCLUDED.embedding, updated_at = now()";

/// The workload's statements, prepared on one connection.
#[derive(Clone)]
pub struct Statements {
    search_single: Statement,
    search_single_min: Statement,
    search_cross: Statement,
    search_filtered: Statement,
    retrieve: Statement,
    insert: Statement,
    bulk_insert: Statement,
}

impl Statements {
    /// Prepares every statement for the column `e`; needs `memory_entries` to exist.
    pub async fn prepare(
        client: &Client,
        e: Embedding,
    ) -> Result<Statements, tokio_postgres::Error> {
        let [single, single_min, cross] = search_sql(e);
        let filtered = with_bucket_filter(&single);
        Ok(Statements {
            search_single: client.prepare(&single).await?,
            search_single_min: client.prepare(&single_min).await?,
            search_cross: client.prepare(&cross).await?,
            search_filtered: client.prepare(&filtered).await?,
            retrieve: client.prepare(RETRIEVE).await?,
            insert: client.prepare(INSERT).await?,
            bulk_insert: client.prepare(BULK_INSERT).await?,
        })
    }
}

/// One row a search returned: enough to compute recall and check similarity.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Namespace of the row.
    pub namespace: String,
    /// Key of the row.
    pub key: String,
    /// The score against the query, larger is nearer: cosine similarity (1 - cosine distance),
    /// minus the Euclidean distance, or the inner product.
    pub similarity: f64,
}

/// The size of one column value as it came over the wire, whatever its type.
struct WireLen(u64);

impl<'a> FromSql<'a> for WireLen {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(WireLen(raw.len() as u64))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(WireLen(0))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Bytes of the rows' column values as received: the response size Locust's "Average Content
/// Size" means, for a query.
pub fn wire_bytes(rows: &[Row]) -> u64 {
    rows.iter()
        .flat_map(|row| (0..row.len()).map(move |i| row.try_get::<_, WireLen>(i)))
        .map(|len| len.map(|l| l.0).unwrap_or(0))
        .sum()
}

/// kNN search in one namespace; with `min_similarity`, rows below it are dropped (the
/// original load test's `similarity >= 0.7`). Returns the hits and their size in bytes.
pub async fn search_single(
    client: &Client,
    stmts: &Statements,
    namespace: &str,
    query: &Vector,
    k: i64,
    min_similarity: Option<f64>,
) -> Result<(Vec<Hit>, u64), tokio_postgres::Error> {
    let rows = match min_similarity {
        None => {
            client
                .query(&stmts.search_single, &[&namespace, query, &k])
                .await?
        }
        Some(min) => {
            client
                .query(&stmts.search_single_min, &[&namespace, query, &k, &min])
                .await?
        }
    };
    Ok((rows.iter().map(hit).collect(), wire_bytes(&rows)))
}

/// kNN search over several namespaces at once; returns the hits and their size in bytes.
pub async fn search_cross(
    client: &Client,
    stmts: &Statements,
    namespaces: &[String],
    query: &Vector,
    k: i64,
) -> Result<(Vec<Hit>, u64), tokio_postgres::Error> {
    let rows = client
        .query(&stmts.search_cross, &[&namespaces, query, &k])
        .await?;
    Ok((rows.iter().map(hit).collect(), wire_bytes(&rows)))
}

/// kNN search in one namespace among the seeded rows whose bucket is below `threshold` (see
/// [`bucket_threshold`]); returns the hits and their size in bytes.
pub async fn search_filtered(
    client: &Client,
    stmts: &Statements,
    namespace: &str,
    query: &Vector,
    k: i64,
    threshold: i32,
) -> Result<(Vec<Hit>, u64), tokio_postgres::Error> {
    let rows = client
        .query(&stmts.search_filtered, &[&namespace, query, &k, &threshold])
        .await?;
    Ok((rows.iter().map(hit).collect(), wire_bytes(&rows)))
}

fn hit(row: &tokio_postgres::Row) -> Hit {
    Hit {
        namespace: row.get(0),
        key: row.get(1),
        similarity: row.get(4),
    }
}

/// Looks up one key; returns the number of rows found (0 or 1; a miss is not an error) and
/// their size in bytes.
pub async fn retrieve(
    client: &Client,
    stmts: &Statements,
    namespace: &str,
    key: &str,
) -> Result<(u64, u64), tokio_postgres::Error> {
    let rows = client.query(&stmts.retrieve, &[&namespace, &key]).await?;
    Ok((rows.len() as u64, wire_bytes(&rows)))
}

/// One row to write.
#[derive(Debug, Clone)]
pub struct NewRow {
    /// Namespace.
    pub namespace: String,
    /// Key (the load test's own keys start with `lt_`, so `cleanup` can find them).
    pub key: String,
    /// Text value.
    pub value: String,
    /// Embedding.
    pub embedding: Vector,
}

/// Upserts one row; returns rows written (1).
pub async fn insert(
    client: &Client,
    stmts: &Statements,
    row: &NewRow,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            &stmts.insert,
            &[&row.namespace, &row.key, &row.value, &row.embedding],
        )
        .await
}

/// Upserts a batch in one statement, which is one transaction: all rows land or none.
pub async fn bulk_insert(
    client: &Client,
    stmts: &Statements,
    rows: &[NewRow],
) -> Result<u64, tokio_postgres::Error> {
    let namespaces: Vec<&str> = rows.iter().map(|r| r.namespace.as_str()).collect();
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    let values: Vec<&str> = rows.iter().map(|r| r.value.as_str()).collect();
    let embeddings: Vec<&Vector> = rows.iter().map(|r| &r.embedding).collect();
    client
        .execute(
            &stmts.bulk_insert,
            &[&namespaces, &keys, &values, &embeddings],
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filtered_search_is_the_single_search_plus_the_bucket_filter() {
        use crate::workload::{Distance, VectorType};
        for vector_type in [VectorType::Vector, VectorType::Halfvec] {
            let distance = Distance::L2;
            let [single, ..] = search_sql(Embedding {
                vector_type,
                distance,
            });
            let filtered = with_bucket_filter(&single);
            assert_eq!(
                filtered.replace("AND (metadata->>'bucket')::int < $4 ", ""),
                single
            );
            assert!(filtered.contains("WHERE namespace = $1 AND (metadata->>'bucket')::int < $4 "));
        }
    }

    #[test]
    fn thresholds_round_to_whole_buckets() {
        assert_eq!(bucket_threshold(0.01), 100);
        assert_eq!(bucket_threshold(0.001), 10);
        assert_eq!(bucket_threshold(1.0), 10_000);
        assert_eq!(bucket_threshold(0.00004), 0);
    }
}
