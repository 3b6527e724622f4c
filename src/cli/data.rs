//! The table, its index and the data set: `--layout`, `--index`, the synthetic generator's knobs,
//! data set files and their distance.

use std::path::PathBuf;

use clap::Args;

use super::IterativeScan;

/// Table layout, index and dataset.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Table layout: list (partition per namespace), hash:N (N shards), single.
    #[arg(
        long,
        global = true,
        default_value = "list",
        help_heading = "Schema and data"
    )]
    pub layout: String,
    /// HNSW m.
    #[arg(
        long,
        global = true,
        default_value_t = 16,
        help_heading = "Schema and data"
    )]
    pub m: u32,
    /// HNSW ef_construction.
    #[arg(
        long,
        global = true,
        default_value_t = 64,
        help_heading = "Schema and data"
    )]
    pub ef_construction: u32,
    /// hnsw.ef_search for every query; `bench` takes a comma-separated list to sweep.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "40",
        help_heading = "Schema and data"
    )]
    pub ef_search: Vec<u32>,
    /// The embedding column's type: vector (4-byte floats) or halfvec (2-byte: half the
    /// storage and index size).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = crate::workload::VectorType::Vector,
        help_heading = "Schema and data"
    )]
    pub vector_type: crate::workload::VectorType,
    /// The approximate index: hnsw (--m, --ef-construction, --ef-search) or ivfflat (--lists,
    /// --probes).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = crate::db::schema::IndexKind::Hnsw,
        help_heading = "Schema and data"
    )]
    pub index: crate::db::schema::IndexKind,
    /// IVFFlat lists (per partition index).
    #[arg(
        long,
        global = true,
        default_value_t = 100,
        help_heading = "Schema and data"
    )]
    pub lists: u32,
    /// ivfflat.probes for every query; `bench` takes a comma-separated list to sweep.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "10",
        help_heading = "Schema and data"
    )]
    pub probes: Vec<u32>,
    /// hnsw.iterative_scan or ivfflat.iterative_scan (default: relaxed_order for hash:N, else
    /// off; ivfflat has no strict_order); `bench` takes a comma-separated list to sweep.
    #[arg(
        long,
        global = true,
        value_enum,
        value_delimiter = ',',
        help_heading = "Schema and data"
    )]
    pub iterative_scan: Vec<IterativeScan>,
    /// Namespaces in the dataset.
    #[arg(
        long,
        global = true,
        default_value_t = 10,
        help_heading = "Schema and data"
    )]
    pub namespaces: usize,
    /// Rows per namespace (mean, when skewed).
    #[arg(
        long,
        global = true,
        default_value_t = 5000,
        help_heading = "Schema and data"
    )]
    pub rows_per_namespace: usize,
    /// Embedding dimension.
    #[arg(
        long,
        global = true,
        default_value_t = 384,
        help_heading = "Schema and data"
    )]
    pub dim: usize,
    /// Seed of the dataset and of the users' random choices.
    #[arg(
        long,
        global = true,
        default_value_t = 42,
        help_heading = "Schema and data"
    )]
    pub seed: u64,
    /// Synthetic data: topics (cluster centres) shared by all namespaces.
    #[arg(
        long,
        global = true,
        default_value_t = 6,
        help_heading = "Schema and data"
    )]
    pub topics: usize,
    /// Synthetic data: subtopics per topic.
    #[arg(
        long,
        global = true,
        default_value_t = 4,
        help_heading = "Schema and data"
    )]
    pub subtopics: usize,
    /// Synthetic data: spread of a topic's subtopic centres (norm relative to the unit centre).
    #[arg(
        long,
        global = true,
        default_value_t = 0.3,
        help_heading = "Schema and data"
    )]
    pub subtopic_spread: f64,
    /// Synthetic data: norm of a row's noise relative to its unit subtopic centre (more: harder).
    #[arg(
        long,
        global = true,
        default_value_t = 1.0,
        help_heading = "Schema and data"
    )]
    pub noise: f64,
    /// Synthetic data: exponent of the noise's spectrum over the dimensions (0: isotropic noise in every dimension; larger: fewer effective dimensions).
    #[arg(
        long,
        global = true,
        default_value_t = 0.7,
        help_heading = "Schema and data"
    )]
    pub anisotropy: f64,
    /// Synthetic data: spread of the rows' noise scales (log-normal σ; rows with little noise become hubs).
    #[arg(
        long,
        global = true,
        default_value_t = 0.05,
        help_heading = "Schema and data"
    )]
    pub hubness: f64,
    /// Zipf exponent of namespace sizes (0 = equal sizes).
    #[arg(
        long,
        global = true,
        default_value_t = 0.0,
        help_heading = "Schema and data"
    )]
    pub namespace_skew: f64,
    /// Real vectors instead of synthetic ones: a .npy or .fvecs file (with X_query.fvecs and
    /// X_groundtruth.ivecs beside an X_base.fvecs), an ann-benchmarks .hdf5 file, or a
    /// VectorDBBench directory (train/test/neighbors .parquet).
    #[arg(
        long,
        visible_alias = "dataset",
        global = true,
        value_name = "PATH",
        help_heading = "Schema and data"
    )]
    pub vectors_file: Option<PathBuf>,
    /// Query vectors (.fvecs or .npy) for --vectors-file, instead of its own test queries.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        requires = "vectors_file",
        help_heading = "Schema and data"
    )]
    pub queries_file: Option<PathBuf>,
    /// Ground truth (.ivecs: the nearest training rows of each query) for --queries-file.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        requires = "vectors_file",
        help_heading = "Schema and data"
    )]
    pub ground_truth: Option<PathBuf>,
    /// The distance searched by (default: what the data set file declares, else cosine).
    #[arg(long, global = true, value_enum, help_heading = "Schema and data")]
    pub distance: Option<crate::workload::Distance>,
    /// Drop and recreate memory_entries (only when this harness created it).
    #[arg(long, global = true, help_heading = "Schema and data")]
    pub reset: bool,
}
