//! Why a dataset could not be built: one line naming the file (or the parameter) and the problem.

/// Why a data set could not be built or loaded.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The spec has a zero or otherwise unusable parameter.
    #[error("invalid dataset parameters: {0}")]
    InvalidParameter(String),
    /// The vector file does not exist.
    #[error("vector file {path}: not found")]
    Missing {
        /// The file.
        path: String,
    },
    /// The vector file could not be read.
    #[error("vector file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The path is none of the supported formats (by extension, or a directory).
    #[error(
        "vector file {path}: unsupported format (expected a .npy, .fvecs or .hdf5/.h5 file or a \
         VectorDBBench directory of .parquet files; queries in .fvecs or .npy, ground truth in .ivecs)"
    )]
    UnsupportedFormat {
        /// The file.
        path: String,
    },
    /// The file holds no vectors.
    #[error("vector file {path}: empty (no vectors)")]
    Empty {
        /// The file.
        path: String,
    },
    /// The file ends before the data its header or records announce.
    #[error("vector file {path}: truncated (expected {expected} bytes, found {found})")]
    Truncated {
        /// The file.
        path: String,
        /// Bytes needed to hold what the file announces.
        expected: u64,
        /// Actual length of the file.
        found: u64,
    },
    /// The vectors' dimension differs from the configured one.
    #[error("vector file {path}: wrong dimension (file has {file_dim}, --dim is {expected})")]
    WrongDimension {
        /// The file.
        path: String,
        /// Dimension found in the file.
        file_dim: usize,
        /// Dimension of the spec.
        expected: usize,
    },
    /// The `.npy` element type is not a float32/float64.
    #[error("vector file {path}: unsupported dtype {dtype} (need float32 or float64)")]
    UnsupportedDtype {
        /// The file.
        path: String,
        /// The `descr` found in the header.
        dtype: String,
    },
    /// The `.npy` array is not a 2-D matrix.
    #[error("vector file {path}: array is not 2-D (shape {shape})")]
    NotTwoD {
        /// The file.
        path: String,
        /// The shape found in the header.
        shape: String,
    },
    /// The file does not start with the `.npy` magic string.
    #[error("vector file {path}: bad magic (not a .npy file)")]
    BadMagic {
        /// The file.
        path: String,
    },
    /// The header or a record is malformed.
    #[error("vector file {path}: malformed: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A vector has zero length (or non-finite values) and cannot be normalised.
    #[error("vector file {path}: vector {index} is zero or not finite, cannot normalise")]
    ZeroVector {
        /// The file.
        path: String,
        /// Index of the vector in the file.
        index: usize,
    },
    /// The queries' dimension differs from the training vectors'.
    #[error("query file {path}: dimension {dim} differs from the training vectors' {train_dim}")]
    QueryDimension {
        /// The file holding the queries.
        path: String,
        /// Dimension of the queries.
        dim: usize,
        /// Dimension of the training vectors.
        train_dim: usize,
    },
    /// The ground truth has another number of rows than there are queries.
    #[error("ground truth {path}: {rows} rows for {queries} queries")]
    GroundTruthRows {
        /// The file holding the ground truth.
        path: String,
        /// Rows of ground truth.
        rows: usize,
        /// Number of queries.
        queries: usize,
    },
    /// A ground-truth file was given for a data set without queries.
    #[error("ground truth {path}: the data set has no queries for it (give a query file too)")]
    GroundTruthWithoutQueries {
        /// The ground-truth file.
        path: String,
    },
    /// A dataset, column or file the format requires is absent.
    #[error("vector file {path}: missing {what}")]
    MissingData {
        /// The file or directory.
        path: String,
        /// What is missing, e.g. "dataset 'test'" or "column 'emb'".
        what: String,
    },
    /// The HDF5 or Parquet library could not read the file.
    #[error("vector file {path}: cannot read as {format}: {reason}")]
    Library {
        /// The file.
        path: String,
        /// "HDF5" or "Parquet".
        format: &'static str,
        /// The library's message.
        reason: String,
    },
    /// Fewer vectors than namespaces, which would leave namespaces empty.
    #[error("vector file {path}: {vectors} vectors cannot fill {namespaces} namespaces")]
    TooFewVectors {
        /// The file.
        path: String,
        /// Vectors in the file.
        vectors: usize,
        /// Namespaces requested.
        namespaces: usize,
    },
}

impl DatasetError {
    /// The exit code: the dataset is built before anything runs, so every problem with it is
    /// a usage error (2).
    pub fn exit(&self) -> crate::Exit {
        crate::Exit::Usage
    }
}
