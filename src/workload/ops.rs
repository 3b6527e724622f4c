//! The six operations of the workload, as plain async functions over one connection, shared by
//! the Goose load test and the benchmark suite.
//!
//! Statements are prepared once per pooled connection ([`Statements::prepare`]) so an operation
//! is one round trip, as pgbench's `-M prepared` is; that keeps the client's cost out of the
//! latency we report.

use std::sync::Arc;

use super::Embedding;
use pgvector::Vector;
use tokio_postgres::types::{FromSql, Kind, ToSql, Type};
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

/// How statements reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StatementMode {
    /// Named statements, prepared once per connection (fastest; needs a session of its own,
    /// which PgBouncer in transaction mode before 1.21 does not give).
    #[default]
    Prepared,
    /// Each query as one unnamed Parse/Bind/Execute/Sync round trip with its parameter types
    /// given: works through any pooler.
    Unnamed,
}

/// One statement: prepared on the connection, or sent unnamed with its parameter types.
#[derive(Clone)]
enum Stmt {
    Prepared(Statement),
    Unnamed(Arc<str>, Arc<[Type]>),
}

type Params<'a> = [&'a (dyn ToSql + Sync)];

impl Stmt {
    async fn query(
        &self,
        c: &Client,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        match self {
            Stmt::Prepared(s) => c.query(s, params).await,
            Stmt::Unnamed(sql, types) => {
                let typed: Vec<(&(dyn ToSql + Sync), Type)> =
                    params.iter().copied().zip(types.iter().cloned()).collect();
                c.query_typed(sql, &typed).await
            }
        }
    }

    /// Rows written; an unnamed statement reports none, so `expected` stands for it (every
    /// row of an upsert is written).
    async fn execute(
        &self,
        c: &Client,
        params: &Params<'_>,
        expected: u64,
    ) -> Result<u64, tokio_postgres::Error> {
        match self {
            Stmt::Prepared(s) => c.execute(s, params).await,
            Stmt::Unnamed(..) => self.query(c, params).await.map(|_| expected),
        }
    }
}

/// The workload's statements, prepared on one connection (or their text and parameter types,
/// in the unnamed mode).
#[derive(Clone)]
pub struct Statements {
    search_single: Stmt,
    search_single_min: Stmt,
    search_cross: Stmt,
    search_filtered: Stmt,
    retrieve: Stmt,
    insert: Stmt,
    bulk_insert: Stmt,
}

impl Statements {
    /// The statements for the column `e`; needs `memory_entries` to exist. Prepared, or in
    /// the unnamed mode the `vector` type's oids looked up (pgvector's oids differ per
    /// database) and nothing prepared.
    pub async fn prepare(
        client: &Client,
        e: Embedding,
        mode: StatementMode,
    ) -> Result<Statements, tokio_postgres::Error> {
        let [single, single_min, cross] = search_sql(e);
        let filtered = with_bucket_filter(&single);
        let sqls = [
            &single,
            &single_min,
            &cross,
            &filtered,
            RETRIEVE,
            INSERT,
            BULK_INSERT,
        ];
        let stmts: Vec<Stmt> = match mode {
            StatementMode::Prepared => {
                let mut out = Vec::new();
                for sql in sqls {
                    out.push(Stmt::Prepared(client.prepare(sql).await?));
                }
                out
            }
            StatementMode::Unnamed => {
                let (vector, vectors) = vector_types(client).await?;
                let (text, texts) = (Type::TEXT, Type::TEXT_ARRAY);
                let types: [Vec<Type>; 7] = [
                    vec![text.clone(), vector.clone(), Type::INT8],
                    vec![text.clone(), vector.clone(), Type::INT8, Type::FLOAT8],
                    vec![texts.clone(), vector.clone(), Type::INT8],
                    vec![text.clone(), vector.clone(), Type::INT8, Type::INT4],
                    vec![text.clone(), text.clone()],
                    vec![text.clone(), text.clone(), text, vector],
                    vec![texts.clone(), texts.clone(), texts, vectors],
                ];
                sqls.into_iter()
                    .zip(types)
                    .map(|(sql, t)| Stmt::Unnamed(Arc::from(sql), Arc::from(t)))
                    .collect()
            }
        };
        let [search_single, search_single_min, search_cross, search_filtered, retrieve, insert, bulk_insert]: [Stmt; 7] =
            stmts.try_into().unwrap_or_else(|_| unreachable!("seven statements"));
        Ok(Statements {
            search_single,
            search_single_min,
            search_cross,
            search_filtered,
            retrieve,
            insert,
            bulk_insert,
        })
    }
}

/// pgvector's `vector` and `vector[]` types in this database (their oids are assigned when
/// the extension is created), asked without a named statement.
async fn vector_types(client: &Client) -> Result<(Type, Type), tokio_postgres::Error> {
    let row = client
        .query_typed_one(
            "SELECT t.oid, t.typarray, n.nspname::text FROM pg_type t \
             JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typname = 'vector' LIMIT 1",
            &[],
        )
        .await?;
    let (oid, array, schema): (u32, u32, String) = (row.get(0), row.get(1), row.get(2));
    let vector = Type::new("vector".into(), oid, Kind::Simple, schema.clone());
    let vectors = Type::new("_vector".into(), array, Kind::Array(vector.clone()), schema);
    Ok((vector, vectors))
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
            stmts
                .search_single
                .query(client, &[&namespace, query, &k])
                .await?
        }
        Some(min) => {
            stmts
                .search_single_min
                .query(client, &[&namespace, query, &k, &min])
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
    let rows = stmts
        .search_cross
        .query(client, &[&namespaces, query, &k])
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
    let rows = stmts
        .search_filtered
        .query(client, &[&namespace, query, &k, &threshold])
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
    let rows = stmts.retrieve.query(client, &[&namespace, &key]).await?;
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
    stmts
        .insert
        .execute(
            client,
            &[&row.namespace, &row.key, &row.value, &row.embedding],
            1,
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
    stmts
        .bulk_insert
        .execute(
            client,
            &[&namespaces, &keys, &values, &embeddings],
            rows.len() as u64,
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
