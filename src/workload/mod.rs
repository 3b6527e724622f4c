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

    /// `expr` (a `vector`: a bound parameter or a query vector) in the column's type, so the
    /// column's operators and index apply. Parameters are always bound as `vector`.
    pub fn of(self, expr: &str) -> String {
        match self {
            VectorType::Vector => expr.to_string(),
            VectorType::Halfvec => format!("({expr})::halfvec"),
        }
    }
}

/// The distance searches order by: pgvector's operator and its index operator class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Distance {
    /// Cosine distance, `<=>` (`*_cosine_ops`); ann-benchmarks' `angular`.
    #[default]
    Cosine,
    /// Euclidean distance, `<->` (`*_l2_ops`); ann-benchmarks' `euclidean`.
    L2,
    /// Negative inner product, `<#>` (`*_ip_ops`); ann-benchmarks' `dot`.
    Ip,
}

impl Distance {
    /// The name reports and the table's record use.
    pub fn name(self) -> &'static str {
        match self {
            Distance::Cosine => "cosine",
            Distance::L2 => "l2",
            Distance::Ip => "ip",
        }
    }

    /// pgvector's operator.
    pub fn operator(self) -> &'static str {
        match self {
            Distance::Cosine => "<=>",
            Distance::L2 => "<->",
            Distance::Ip => "<#>",
        }
    }

    /// A score where larger is nearer, from a distance expression: cosine similarity, minus
    /// the Euclidean distance, the inner product.
    pub fn score(self, distance: &str) -> String {
        match self {
            Distance::Cosine => format!("1 - ({distance})"),
            Distance::L2 | Distance::Ip => format!("-({distance})"),
        }
    }
}

/// The `embedding` column as the SQL sees it: its type and the distance searched by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Embedding {
    /// `vector` or `halfvec`.
    pub vector_type: VectorType,
    /// The distance.
    pub distance: Distance,
}

impl Embedding {
    /// The distance from the column to a query bound as `vector` (`param`, e.g. `$2::vector`),
    /// cast to the column's type so the index applies.
    pub fn distance_to(self, param: &str) -> String {
        format!(
            "embedding {} {}",
            self.distance.operator(),
            self.vector_type.of(param)
        )
    }

    /// The score (larger is nearer) of the column against the query `param`.
    pub fn score(self, param: &str) -> String {
        self.distance.score(&self.distance_to(param))
    }

    /// The index operator class, e.g. `vector_cosine_ops`.
    pub fn opclass(self) -> String {
        let d = match self.distance {
            Distance::Cosine => "cosine",
            Distance::L2 => "l2",
            Distance::Ip => "ip",
        };
        format!("{}_{d}_ops", self.vector_type.sql())
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
    /// The embedding column's type and distance: how statements bind, cast and order.
    pub embedding: Embedding,
}
