//! What the users do: the dataset they search and write, the operations, and how failures are
//! classified.

pub mod dataset;
pub mod failure;
pub mod ops;

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
    /// Share of retrieves asking for an existing key.
    pub retrieve_hit_ratio: f64,
    /// Rows per bulk insert.
    pub bulk_batch: usize,
    /// Share of users that bulk insert.
    pub bulk_user_share: f64,
    /// Seed of the users' random choices.
    pub seed: u64,
}
