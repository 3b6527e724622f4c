//! Streaming readers for the standard ANN benchmark data sets, read without holding a whole
//! file in memory:
//!
//! | format | training vectors | queries | ground truth | metric |
//! | --- | --- | --- | --- | --- |
//! | [`Format::Npy`] | `X.npy` (N×d float32/float64) | a `.npy`/`.fvecs` given | an `.ivecs` given | – |
//! | [`Format::Fvecs`] | `X_base.fvecs` | `X_query.fvecs` beside it, or given | `X_groundtruth.ivecs` beside it, or given | – |
//! | [`Format::Hdf5`] | ann-benchmarks `train` | `test` | `neighbors` | attribute `distance` |
//! | [`Format::VectorDbBench`] | `train.parquet`, `shuffle_train.parquet` or parts | `test.parquet` | `neighbors.parquet` | – (the caller's) |
//!
//! [`FileSet::open`] reads headers and metadata only; [`FileSet::for_each_chunk`] then streams
//! the training vectors a chunk at a time. Vectors come back raw (not normalised). Ids are row
//! positions except for VectorDBBench, whose `id` column may be sparse.
//!
//! What a set must hold: an ann-benchmarks file needs `train`, `test` and `neighbors` (as
//! ann-benchmarks always writes them; `distances` is not read); a VectorDBBench directory needs
//! its training files, while `test.parquet` and `neighbors.parquet` are optional (without them
//! [`FileSet::queries`] / [`FileSet::ground_truth`] are `None`). A query file given to
//! [`FileSet::open`] without a ground-truth file drops the set's own ground truth, which was
//! computed for the set's own queries.
//!
//! [`super::Dataset::open_file`] reads every format through this module (`FileSet::byte_len`
//! is crate-internal, for its fingerprint). New [`DatasetError`] variants: `QueryDimension`, `GroundTruthRows`,
//! `GroundTruthWithoutQueries`, `MissingData` and `Library` (an HDF5 or Parquet library error).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{DatasetError, Fnv};

mod fvecs;
mod hdf5;
mod npy;
mod vdbb;

#[cfg(test)]
mod tests;

/// What [`FileSet::for_each_chunk`] calls: `(ids, rows)`.
type ChunkFn<'a> = dyn FnMut(&[u64], &[f32]) -> Result<(), DatasetError> + 'a;
/// What the positional readers call: `(index of the first row, rows)`.
type RowsFn<'a> = dyn FnMut(usize, &[f32]) -> Result<(), DatasetError> + 'a;

/// Bytes hashed at each end of each file by [`FileSet::content_hash`].
const SAMPLE: u64 = 64 * 1024;
/// Rows per read when a whole matrix is wanted (queries, `head`).
const READ_ROWS: usize = 4096;

/// The distance a data set's ground truth was computed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Cosine distance (ann-benchmarks' `angular`).
    Cosine,
    /// Euclidean distance.
    L2,
    /// Negative inner product (ann-benchmarks' `dot`).
    InnerProduct,
}

/// The layout a [`FileSet`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A 2-D numpy `.npy` matrix.
    Npy,
    /// texmex `.fvecs` (with `.ivecs` ground truth).
    Fvecs,
    /// An ann-benchmarks `.hdf5` file.
    Hdf5,
    /// A VectorDBBench directory of `.parquet` files.
    VectorDbBench,
}

/// A training set with, where it has them, its queries and their ground truth.
#[derive(Debug, Clone)]
pub struct FileSet {
    format: Format,
    path: String,
    dim: usize,
    rows: usize,
    metric: Option<Metric>,
    train: Train,
    queries: Option<Queries>,
    truth: Option<Truth>,
    byte_len: u64,
    hash: u64,
}

/// A single-file matrix: training vectors or queries.
#[derive(Debug, Clone)]
enum Matrix {
    Npy(npy::Npy),
    Vecs(fvecs::Vecs),
}

#[derive(Debug, Clone)]
enum Train {
    Matrix(Matrix),
    Hdf5(hdf5::Ann),
    Vdbb(vdbb::Dir),
}

#[derive(Debug, Clone)]
enum Queries {
    /// A query file of its own.
    File(String, Matrix),
    /// The ones in the training container (HDF5 `test`, `test.parquet`).
    Own,
}

#[derive(Debug, Clone)]
enum Truth {
    /// An `.ivecs` file.
    Ivecs(String, fvecs::Vecs),
    /// The one in the training container (HDF5 `neighbors`, `neighbors.parquet`).
    Own,
}

impl Matrix {
    /// Opens a `.npy` or `.fvecs` file, or returns `None` for another extension.
    fn open(path: &str) -> Result<Option<Matrix>, DatasetError> {
        Ok(match extension(Path::new(path)).as_deref() {
            Some("npy") => Some(Matrix::Npy(npy::Npy::open(path)?)),
            Some("fvecs") => Some(Matrix::Vecs(fvecs::Vecs::open(path)?)),
            _ => None,
        })
    }

    fn rows(&self) -> usize {
        match self {
            Matrix::Npy(m) => m.rows(),
            Matrix::Vecs(m) => m.rows(),
        }
    }

    fn dim(&self) -> usize {
        match self {
            Matrix::Npy(m) => m.dim(),
            Matrix::Vecs(m) => m.dim(),
        }
    }

    fn read_rows(
        &self,
        file: &File,
        start: usize,
        count: usize,
        raw: &mut Vec<u8>,
        out: &mut Vec<f32>,
    ) -> Result<(), DatasetError> {
        match self {
            Matrix::Npy(m) => m.read_rows(file, start, count, raw, out),
            Matrix::Vecs(m) => m.read_f32_rows(file, start, count, raw, out),
        }
    }

    /// Calls `f(start, rows)` over rows `0..limit` of `path` in chunks of `chunk_rows`.
    fn scan(
        &self,
        path: &str,
        chunk_rows: usize,
        limit: usize,
        f: &mut RowsFn<'_>,
    ) -> Result<(), DatasetError> {
        let (file, _) = open_file(path)?;
        let end = limit.min(self.rows());
        let (mut raw, mut rows) = (Vec::new(), Vec::with_capacity(chunk_rows * self.dim()));
        let mut start = 0;
        while start < end {
            let n = chunk_rows.min(end - start);
            rows.clear();
            self.read_rows(&file, start, n, &mut raw, &mut rows)?;
            f(start, &rows)?;
            start += n;
        }
        Ok(())
    }

    fn read_all(&self, path: &str) -> Result<Vec<f32>, DatasetError> {
        let mut out = Vec::with_capacity(self.rows() * self.dim());
        self.scan(path, READ_ROWS, usize::MAX, &mut |_, rows| {
            out.extend_from_slice(rows);
            Ok(())
        })?;
        Ok(out)
    }
}

impl FileSet {
    /// Opens a path: a file (by extension: .npy, .fvecs, .hdf5/.h5) or a VectorDBBench directory.
    /// For `X_base.fvecs` (texmex naming, e.g. sift_base.fvecs) also picks up `X_query.fvecs` and
    /// `X_groundtruth.ivecs` beside it when present. `queries`/`ground_truth` override (any
    /// .fvecs/.npy query file, .ivecs ground-truth file); a query file given alone drops the set's
    /// own ground truth, which belongs to its own queries. Reads headers/metadata only (and the
    /// first and last 64 KiB of each file for [`FileSet::content_hash`]).
    pub fn open(
        path: &Path,
        queries: Option<&Path>,
        ground_truth: Option<&Path>,
    ) -> Result<FileSet, DatasetError> {
        let mut set = FileSet::open_container(path)?;
        let (auto_queries, auto_truth) = match set.format {
            Format::Fvecs => texmex_companions(path),
            _ => (None, None),
        };
        let queries = queries.map(Path::to_path_buf);
        let truth = ground_truth.map(Path::to_path_buf);
        let (queries, truth) = match (queries, truth) {
            (Some(q), t) => (Some(q), t),
            (None, Some(t)) => (auto_queries, Some(t)),
            (None, None) if auto_queries.is_some() => (auto_queries, auto_truth),
            (None, None) => (None, None),
        };
        if let Some(q) = queries {
            set.use_queries(&q.display().to_string())?;
            set.truth = None;
        }
        if let Some(t) = truth {
            set.use_truth(&t.display().to_string())?;
        }
        set.finish_hash()?;
        Ok(set)
    }

    /// The training vectors of `path` alone (with what the same file or directory holds),
    /// before the content hash.
    fn open_container(path: &Path) -> Result<FileSet, DatasetError> {
        let name = path.display().to_string();
        let (format, train) = if path.is_dir() {
            (Format::VectorDbBench, Train::Vdbb(vdbb::Dir::open(&name)?))
        } else {
            match extension(path).as_deref() {
                Some("hdf5" | "h5") => (Format::Hdf5, Train::Hdf5(hdf5::Ann::open(&name)?)),
                Some("npy" | "fvecs") => {
                    let m = Matrix::open(&name)?.expect("a matrix extension");
                    let format = match m {
                        Matrix::Npy(_) => Format::Npy,
                        Matrix::Vecs(_) => Format::Fvecs,
                    };
                    (format, Train::Matrix(m))
                }
                _ if !path.exists() => return Err(DatasetError::Missing { path: name }),
                _ => return Err(DatasetError::UnsupportedFormat { path: name }),
            }
        };
        let mut set = FileSet {
            format,
            path: name,
            dim: 0,
            rows: 0,
            metric: None,
            train,
            queries: None,
            truth: None,
            byte_len: 0,
            hash: 0,
        };
        set.read_own_parts()?;
        Ok(set)
    }

    /// Fills in the shape, metric, and the queries and ground truth a container holds, checking
    /// that they fit together.
    fn read_own_parts(&mut self) -> Result<(), DatasetError> {
        match &self.train {
            Train::Matrix(m) => {
                self.dim = m.dim();
                self.rows = m.rows();
            }
            Train::Hdf5(ann) => {
                (self.dim, self.rows, self.metric) = (ann.dim, ann.rows, ann.metric);
                check_query_dim(&self.path, ann.query_dim, ann.dim)?;
                check_truth_rows(&self.path, ann.truth_rows, ann.queries)?;
                self.queries = Some(Queries::Own);
                self.truth = Some(Truth::Own);
            }
            Train::Vdbb(dir) => {
                (self.dim, self.rows) = (dir.dim, dir.rows);
                if let Some(test) = &dir.test {
                    check_query_dim(test, dir.query_dim, dir.dim)?;
                    self.queries = Some(Queries::Own);
                }
                if let Some(neighbors) = &dir.neighbors {
                    check_truth_rows(neighbors, dir.truth_rows, dir.queries)?;
                    self.truth = Some(Truth::Own);
                }
            }
        }
        Ok(())
    }

    fn use_queries(&mut self, path: &str) -> Result<(), DatasetError> {
        let Some(m) = Matrix::open(path)? else {
            return Err(DatasetError::UnsupportedFormat {
                path: path.to_string(),
            });
        };
        check_query_dim(path, m.dim(), self.dim)?;
        self.queries = Some(Queries::File(path.to_string(), m));
        Ok(())
    }

    fn use_truth(&mut self, path: &str) -> Result<(), DatasetError> {
        if extension(Path::new(path)).as_deref() != Some("ivecs") {
            return Err(DatasetError::UnsupportedFormat {
                path: path.to_string(),
            });
        }
        let truth = fvecs::Vecs::open(path)?;
        let Some(queries) = self.query_count() else {
            return Err(DatasetError::GroundTruthWithoutQueries {
                path: path.to_string(),
            });
        };
        check_truth_rows(path, truth.rows(), queries)?;
        self.truth = Some(Truth::Ivecs(path.to_string(), truth));
        Ok(())
    }

    fn query_count(&self) -> Option<usize> {
        match (&self.queries, &self.train) {
            (None, _) => None,
            (Some(Queries::File(_, m)), _) => Some(m.rows()),
            (Some(Queries::Own), Train::Hdf5(ann)) => Some(ann.queries),
            (Some(Queries::Own), Train::Vdbb(dir)) => Some(dir.queries),
            (Some(Queries::Own), Train::Matrix(_)) => None,
        }
    }

    /// Every file the set reads, training files first.
    fn files(&self) -> Vec<String> {
        let mut files = match &self.train {
            Train::Matrix(_) | Train::Hdf5(_) => vec![self.path.clone()],
            Train::Vdbb(dir) => {
                let mut files = dir.train.clone();
                files.extend(dir.test.iter().chain(&dir.neighbors).cloned());
                files
            }
        };
        if let Some(Queries::File(path, _)) = &self.queries {
            files.push(path.clone());
        }
        if let Some(Truth::Ivecs(path, _)) = &self.truth {
            files.push(path.clone());
        }
        files
    }

    /// FNV-1a over the format, shape, and each file's length and first and last 64 KiB.
    fn finish_hash(&mut self) -> Result<(), DatasetError> {
        let mut h = Fnv::new();
        h.bytes(format!("{:?}", self.format).as_bytes());
        h.u64(self.dim as u64);
        h.u64(self.rows as u64);
        self.byte_len = 0;
        for path in self.files() {
            let (file, len) = open_file(&path)?;
            self.byte_len += len;
            h.u64(len);
            let head = len.min(SAMPLE);
            let mut buf = vec![0; head as usize];
            read_at(&file, &path, 0, &mut buf)?;
            h.bytes(&buf);
            let tail_start = len.saturating_sub(SAMPLE).max(head);
            buf.resize((len - tail_start) as usize, 0);
            read_at(&file, &path, tail_start, &mut buf)?;
            h.bytes(&buf);
        }
        self.hash = h.finish();
        Ok(())
    }

    /// The layout the set was read from.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The path as given to [`FileSet::open`].
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The vectors' dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of training vectors.
    pub fn train_rows(&self) -> usize {
        self.rows
    }

    /// HDF5's `distance` attribute (angular→Cosine, euclidean→L2, dot→InnerProduct); None
    /// elsewhere.
    pub fn metric(&self) -> Option<Metric> {
        self.metric
    }

    /// Total length in bytes of the files the set reads.
    pub(super) fn byte_len(&self) -> u64 {
        self.byte_len
    }

    /// Calls `f(ids, rows)` over the training vectors in file order, in chunks of at most
    /// `chunk_rows` rows (`rows` is `ids.len()` × dim, row-major), holding at most one chunk
    /// (plus a parquet row group's pages) in memory. Each row comes with its id: the position for
    /// npy/fvecs/hdf5, the `id` column for VectorDBBench. Stops at the first error, `f`'s
    /// included.
    pub fn for_each_chunk(
        &self,
        chunk_rows: usize,
        mut f: impl FnMut(&[u64], &[f32]) -> Result<(), DatasetError>,
    ) -> Result<(), DatasetError> {
        self.scan(chunk_rows, usize::MAX, &mut f)
    }

    /// [`FileSet::for_each_chunk`] over the first `limit` rows.
    fn scan(
        &self,
        chunk_rows: usize,
        limit: usize,
        f: &mut ChunkFn<'_>,
    ) -> Result<(), DatasetError> {
        if chunk_rows == 0 {
            return Err(DatasetError::InvalidParameter(
                "chunk_rows must be at least 1".to_string(),
            ));
        }
        if let Train::Vdbb(dir) = &self.train {
            return dir.scan_train(chunk_rows, limit, f);
        }
        // The other formats number rows by position.
        let mut ids = Vec::with_capacity(chunk_rows);
        let mut positional = |start: usize, rows: &[f32]| {
            ids.clear();
            ids.extend((start..start + rows.len() / self.dim.max(1)).map(|i| i as u64));
            f(&ids, rows)
        };
        match &self.train {
            Train::Matrix(m) => m.scan(&self.path, chunk_rows, limit, &mut positional),
            Train::Hdf5(ann) => ann.scan_train(chunk_rows, limit, &mut positional),
            Train::Vdbb(_) => unreachable!("handled above"),
        }
    }

    /// The first `n` training vectors (row-major; all of them if there are fewer), for the
    /// workload's query/insert pool.
    pub fn head(&self, n: usize) -> Result<Vec<f32>, DatasetError> {
        let n = n.min(self.rows);
        let mut out = Vec::with_capacity(n * self.dim);
        if n > 0 {
            self.scan(n.min(READ_ROWS), n, &mut |_, rows| {
                out.extend_from_slice(rows);
                Ok(())
            })?;
        }
        Ok(out)
    }

    /// The test queries (Q×dim row-major) if the set has them.
    pub fn queries(&self) -> Result<Option<Vec<f32>>, DatasetError> {
        match (&self.queries, &self.train) {
            (None, _) | (Some(Queries::Own), Train::Matrix(_)) => Ok(None),
            (Some(Queries::File(path, m)), _) => m.read_all(path).map(Some),
            (Some(Queries::Own), Train::Hdf5(ann)) => ann.queries().map(Some),
            (Some(Queries::Own), Train::Vdbb(dir)) => dir.queries(),
        }
    }

    /// Ground truth: for each query, its nearest training ids (best first), if the set has
    /// them. Ids are positions except for VectorDBBench sets, where they are `id` values; a
    /// position past the training rows is an error.
    pub fn ground_truth(&self) -> Result<Option<Vec<Vec<u64>>>, DatasetError> {
        let (path, truth) = match (&self.truth, &self.train) {
            (None, _) | (Some(Truth::Own), Train::Matrix(_)) => return Ok(None),
            (Some(Truth::Ivecs(path, vecs)), _) => (path.as_str(), vecs.read_ids()?),
            (Some(Truth::Own), Train::Hdf5(ann)) => (self.path.as_str(), ann.ground_truth()?),
            (Some(Truth::Own), Train::Vdbb(dir)) => return dir.ground_truth(),
        };
        if self.format != Format::VectorDbBench {
            for (q, ids) in truth.iter().enumerate() {
                if let Some(&id) = ids.iter().find(|&&id| id >= self.rows as u64) {
                    return Err(malformed(
                        path,
                        format!(
                            "query {q}: neighbour {id} is past the {} training vectors",
                            self.rows
                        ),
                    ));
                }
            }
        }
        Ok(Some(truth))
    }

    /// A u64 identifying the content without reading it all: FNV-1a over the format, dim, row
    /// count, each file's length and its first and last 64 KiB. Format with `{:016x}`.
    pub fn content_hash(&self) -> u64 {
        self.hash
    }
}

/// `X_query.fvecs` and `X_groundtruth.ivecs` beside `X_base.fvecs`, those that exist.
fn texmex_companions(path: &Path) -> (Option<std::path::PathBuf>, Option<std::path::PathBuf>) {
    let Some(stem) = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix("_base.fvecs"))
    else {
        return (None, None);
    };
    let beside = |name: String| Some(path.with_file_name(name)).filter(|p| p.is_file());
    (
        beside(format!("{stem}_query.fvecs")),
        beside(format!("{stem}_groundtruth.ivecs")),
    )
}

fn check_query_dim(path: &str, dim: usize, train_dim: usize) -> Result<(), DatasetError> {
    if dim == train_dim {
        return Ok(());
    }
    Err(DatasetError::QueryDimension {
        path: path.to_string(),
        dim,
        train_dim,
    })
}

fn check_truth_rows(path: &str, rows: usize, queries: usize) -> Result<(), DatasetError> {
    if rows == queries {
        return Ok(());
    }
    Err(DatasetError::GroundTruthRows {
        path: path.to_string(),
        rows,
        queries,
    })
}

/// The lower-case extension of `path`.
fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

/// Opens `path` for reading, with its length; a missing file is [`DatasetError::Missing`].
fn open_file(path: &str) -> Result<(File, u64), DatasetError> {
    let io = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DatasetError::Missing {
                path: path.to_string(),
            }
        } else {
            DatasetError::Io {
                path: path.to_string(),
                source,
            }
        }
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    Ok((file, len))
}

/// Fills `buf` from `offset` of `file`.
fn read_at(file: &File, path: &str, offset: u64, buf: &mut [u8]) -> Result<(), DatasetError> {
    file.read_exact_at(buf, offset)
        .map_err(|source| DatasetError::Io {
            path: path.to_string(),
            source,
        })
}

fn malformed(path: &str, reason: impl Into<String>) -> DatasetError {
    DatasetError::Malformed {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn truncated(path: &str, expected: u64, found: u64) -> DatasetError {
    DatasetError::Truncated {
        path: path.to_string(),
        expected,
        found,
    }
}
