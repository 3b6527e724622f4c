//! What the users do: the dataset they search and write, the operations, and how failures are
//! classified.

pub mod dataset;
pub mod failure;
pub mod ops;

/// How embeddings are stored and indexed: `vector` (4-byte floats) or `halfvec` (2-byte floats:
/// half the storage and index size, at some loss of precision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum VectorType {
    /// pgvector's `vector`.
    #[default]
    Vector,
    /// pgvector's `halfvec` (pgvector 0.7.0 or later).
    Halfvec,
}

impl VectorType {
    /// The SQL type name.
    pub fn sql(self) -> &'static str {
        match self {
            VectorType::Vector => "vector",
            VectorType::Halfvec => "halfvec",
        }
    }

    /// The cosine operator class of its indexes.
    pub fn cosine_ops(self) -> &'static str {
        match self {
            VectorType::Vector => "vector_cosine_ops",
            VectorType::Halfvec => "halfvec_cosine_ops",
        }
    }

    /// `expr` (a `vector`: a bound parameter or a query vector) in the column's type, so the
    /// column's operators and index apply. Parameters are always bound as `vector`.
    pub fn of(self, expr: &str) -> String {
        match self {
            VectorType::Vector => expr.to_string(),
            VectorType::Halfvec => format!("({expr})::halfvec"),
        }
    }
}

/// The workload's knobs.
#[derive(Debug, Clone)]
pub struct Workload {
    /// k of the single-namespace search.
    pub k: u32,
    /// k of the cross-namespace search.
    pub cross_k: u32,
    /// Namespaces per cross-namespace search.
    pub cross_namespaces: usize,
    /// Similarity filter of the single-namespace search.
    pub min_similarity: Option<f64>,
    /// The filtered search keeps the seeded rows whose bucket is below this
    /// ([`ops::bucket_threshold`] of the selectivity).
    pub filter_threshold: i32,
    /// Weight of the filtered search in the load test's mix (0: not in it).
    pub filtered_weight: usize,
    /// Share of retrieves asking for an existing key.
    pub retrieve_hit_ratio: f64,
    /// Rows per bulk insert.
    pub bulk_batch: usize,
    /// Share of users that bulk insert.
    pub bulk_user_share: f64,
    /// Seed of the users' random choices.
    pub seed: u64,
    /// The embedding column's type: how statements bind and cast the query vector.
    pub vector_type: VectorType,
}
