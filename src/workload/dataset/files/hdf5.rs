//! ann-benchmarks `.hdf5` files: datasets `train` (N×d float), `test` (Q×d float), `neighbors`
//! (Q×K integer indices into `train`) and `distances` (not read), and the root attribute
//! `distance` naming the metric.
//!
//! Read with [`hdf5_pure`], a pure-Rust reader and writer, so that no system libhdf5 is needed.
//! Why this crate:
//! - `hdf5-metno` (the `hdf5` bindings) links the C library: a fresh Debian machine would need
//!   libhdf5-dev before `cargo run` works, and its build script probes for it.
//! - `hdf5-reader` maps the file and pulls in rayon and ndarray; `rust-hdf5` is younger and
//!   smaller in scope.
//! - `hdf5-pure` depends only on byteorder and (for gzip-compressed chunked datasets) flate2,
//!   which the project already builds; [`hdf5_pure::File::open_streaming`] parses metadata on
//!   demand from the open file, and [`hdf5_pure::Dataset::read_f32_rows`] reads a row window,
//!   touching only the bytes (contiguous layout) or chunks (chunked layout) that it overlaps.
//!   It also writes HDF5, which the tests use to make files.
//!
//! Its cost: about 50 s of one core for a release build of the crate itself (measured with
//! `cargo build --release --timings` on this project's 2-core machine), built once and cached.

use hdf5_pure::{DType, Dataset, File};

use super::{malformed, open_file, DatasetError, Metric, RowsFn};

/// The datasets an ann-benchmarks file must hold: training vectors, queries, ground truth.
const REQUIRED: [&str; 3] = ["train", "test", "neighbors"];

/// An ann-benchmarks file, located by its metadata.
#[derive(Debug, Clone)]
pub(super) struct Ann {
    path: String,
    pub(super) rows: usize,
    pub(super) dim: usize,
    pub(super) queries: usize,
    pub(super) query_dim: usize,
    pub(super) truth_rows: usize,
    pub(super) metric: Option<Metric>,
}

fn lib_err(path: &str, err: impl std::fmt::Display) -> DatasetError {
    DatasetError::Library {
        path: path.to_string(),
        format: "HDF5",
        reason: err.to_string().replace('\n', " "),
    }
}

impl Ann {
    /// Reads the shapes, types and `distance` attribute; no vector data.
    pub(super) fn open(path: &str) -> Result<Ann, DatasetError> {
        // Separately first, so that a missing file is `Missing` like the other formats.
        open_file(path)?;
        let file = File::open_streaming(path).map_err(|e| lib_err(path, e))?;
        let names = file.root().datasets().map_err(|e| lib_err(path, e))?;
        for want in REQUIRED {
            if !names.iter().any(|n| n == want) {
                return Err(DatasetError::MissingData {
                    path: path.to_string(),
                    what: format!(
                        "dataset '{want}' (an ann-benchmarks file has train, test and neighbors)"
                    ),
                });
            }
        }
        let (rows, dim) = shape(path, &file, "train", true)?;
        let (queries, query_dim) = shape(path, &file, "test", true)?;
        let (truth_rows, _) = shape(path, &file, "neighbors", false)?;
        let attrs = file.root().attrs().map_err(|e| lib_err(path, e))?;
        let metric = match attrs.get("distance") {
            None => None,
            Some(v) => {
                let name = v
                    .as_str()
                    .ok_or_else(|| malformed(path, "attribute 'distance' is not a string"))?;
                Some(metric(path, name)?)
            }
        };
        Ok(Ann {
            path: path.to_string(),
            rows,
            dim,
            queries,
            query_dim,
            truth_rows,
            metric,
        })
    }

    fn open_dataset(&self, name: &str) -> Result<Dataset, DatasetError> {
        let file = File::open_streaming(&self.path).map_err(|e| lib_err(&self.path, e))?;
        file.dataset(name).map_err(|e| lib_err(&self.path, e))
    }

    /// Calls `f(start, rows)` over `train` rows `0..limit` in windows of `chunk_rows`.
    pub(super) fn scan_train(
        &self,
        chunk_rows: usize,
        limit: usize,
        f: &mut RowsFn<'_>,
    ) -> Result<(), DatasetError> {
        let ds = self.open_dataset("train")?;
        let end = limit.min(self.rows);
        let mut start = 0;
        while start < end {
            let n = chunk_rows.min(end - start);
            let rows = ds
                .read_f32_rows(start as u64, n as u64)
                .map_err(|e| lib_err(&self.path, e))?;
            if rows.len() != n * self.dim {
                return Err(malformed(
                    &self.path,
                    format!("train rows {start}..{} read short", start + n),
                ));
            }
            f(start, &rows)?;
            start += n;
        }
        Ok(())
    }

    /// `test`, Q×d row-major.
    pub(super) fn queries(&self) -> Result<Vec<f32>, DatasetError> {
        self.open_dataset("test")?
            .read_f32()
            .map_err(|e| lib_err(&self.path, e))
    }

    /// `neighbors`, one list of train indices per query.
    pub(super) fn ground_truth(&self) -> Result<Vec<Vec<u64>>, DatasetError> {
        let ds = self.open_dataset("neighbors")?;
        let k = ds.shape().map_err(|e| lib_err(&self.path, e))?[1] as usize;
        let ids = ds.read_i64().map_err(|e| lib_err(&self.path, e))?;
        if k == 0 {
            return Ok(vec![Vec::new(); self.truth_rows]);
        }
        ids.chunks(k)
            .enumerate()
            .map(|(row, ids)| {
                ids.iter()
                    .map(|&id| {
                        u64::try_from(id).map_err(|_| {
                            malformed(
                                &self.path,
                                format!("neighbors row {row} has a negative index {id}"),
                            )
                        })
                    })
                    .collect()
            })
            .collect()
    }
}

/// The rows and columns of a 2-D dataset, checking its element type: float for vectors, an
/// integer for indices.
fn shape(path: &str, file: &File, name: &str, float: bool) -> Result<(usize, usize), DatasetError> {
    let ds = file.dataset(name).map_err(|e| lib_err(path, e))?;
    let shape = ds.shape().map_err(|e| lib_err(path, e))?;
    let &[rows, cols] = shape.as_slice() else {
        return Err(malformed(
            path,
            format!("dataset '{name}' has shape {shape:?}, expected 2-D"),
        ));
    };
    let dtype = ds.dtype().map_err(|e| lib_err(path, e))?;
    let ok = match dtype {
        DType::F32 | DType::F64 => float,
        DType::I8
        | DType::I16
        | DType::I32
        | DType::I64
        | DType::U8
        | DType::U16
        | DType::U32
        | DType::U64 => !float,
        _ => false,
    };
    if !ok {
        let want = if float {
            "float32 or float64"
        } else {
            "an integer type"
        };
        return Err(malformed(
            path,
            format!("dataset '{name}' has type {dtype}, expected {want}"),
        ));
    }
    Ok((rows as usize, cols as usize))
}

/// ann-benchmarks' metric names (and a few spellings other tools write).
fn metric(path: &str, name: &str) -> Result<Metric, DatasetError> {
    match name.to_ascii_lowercase().as_str() {
        "angular" | "cosine" => Ok(Metric::Cosine),
        "euclidean" | "l2" => Ok(Metric::L2),
        "dot" | "ip" | "inner_product" => Ok(Metric::InnerProduct),
        _ => Err(malformed(
            path,
            format!("distance '{name}' is not supported (angular, euclidean or dot)"),
        )),
    }
}
