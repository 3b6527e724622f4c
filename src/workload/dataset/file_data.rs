//! A data set read from files ([`FileSet`]): what the workload keeps in memory (a bounded pool
//! of training rows, the test queries and their ground truth) and the stream seeding reads.
//!
//! Memory stays bounded whatever the file's size: seeding streams the training rows a chunk at
//! a time, and only the first [`POOL_BYTES`] of them are kept, for the queries of a set without
//! test queries and for nothing else.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::files::FileSet;
use super::{normalise, DatasetError, Fnv};
use crate::workload::Distance;

/// The most training-row bytes kept in memory (for queries when the set has none).
const POOL_BYTES: usize = 16 << 20;
/// Rows per chunk when streaming: a few MB whatever the dimension.
pub(super) const STREAM_BYTES: usize = 4 << 20;

/// Where the queries and ground truth come from, and the distance searched by.
#[derive(Debug, Clone, Default)]
pub struct FileOptions {
    /// Query vectors instead of the set's own test queries.
    pub queries: Option<PathBuf>,
    /// Ground truth for `queries`.
    pub ground_truth: Option<PathBuf>,
    /// The distance (cosine data is normalised to unit length; other distances keep it raw).
    pub distance: Distance,
}

/// The file data's in-memory part.
pub(crate) struct FileVectors {
    pub(super) set: FileSet,
    pub(super) path: String,
    pub(super) count: usize,
    /// The first training rows (prepared), at most [`POOL_BYTES`].
    pub(super) pool: Vec<f32>,
    /// The test queries (prepared), row-major.
    pub(super) queries: Option<Vec<f32>>,
    /// For each query, its nearest training ids (best first).
    pub(super) truth: Option<Vec<Vec<u64>>>,
    pub(super) normalise: bool,
    /// Test query (by a hash of its bits) to its index, built on first use.
    pub(super) by_query: OnceLock<HashMap<u64, usize>>,
}

impl FileVectors {
    pub(super) fn open(path: &Path, dim: usize, o: &FileOptions) -> Result<Self, DatasetError> {
        let set = FileSet::open(path, o.queries.as_deref(), o.ground_truth.as_deref())?;
        let name = set.path().to_string();
        if set.dim() != dim {
            return Err(DatasetError::WrongDimension {
                path: name,
                file_dim: set.dim(),
                expected: dim,
            });
        }
        let count = set.train_rows();
        if count == 0 {
            return Err(DatasetError::Empty { path: name });
        }
        let normalise = o.distance == Distance::Cosine;
        let pool_rows = count.min((POOL_BYTES / (4 * dim)).max(1));
        let mut pool = set.head(pool_rows)?;
        prepare(&mut pool, dim, normalise, &name)?;
        let queries = match set.queries()? {
            Some(mut q) => {
                prepare(&mut q, dim, normalise, &name)?;
                Some(q)
            }
            None => None,
        };
        let truth = set.ground_truth()?;
        Ok(FileVectors {
            set,
            path: name,
            count,
            pool,
            queries,
            truth,
            normalise,
            by_query: OnceLock::new(),
        })
    }

    /// Streams every training row, prepared as stored: `f(ids, rows)` a chunk at a time.
    pub(super) fn stream(
        &self,
        dim: usize,
        mut f: impl FnMut(&[u64], &[f32]) -> Result<(), DatasetError>,
    ) -> Result<(), DatasetError> {
        let chunk = (STREAM_BYTES / (4 * dim)).max(1);
        let mut first = 0usize;
        self.set.for_each_chunk(chunk, |ids, rows| {
            let mut rows = rows.to_vec();
            if self.normalise {
                for (i, v) in rows.chunks_mut(dim).enumerate() {
                    if !normalise(v) {
                        return Err(DatasetError::ZeroVector {
                            path: self.path.clone(),
                            index: first + i,
                        });
                    }
                }
            }
            first += ids.len();
            f(ids, &rows)
        })
    }

    /// The ground truth of a test query (the exact vector [`super::Dataset::query_vector`]
    /// handed out), if it is one.
    pub(super) fn truth_of(&self, query: &[f32], dim: usize) -> Option<&[u64]> {
        let (queries, truth) = (self.queries.as_ref()?, self.truth.as_ref()?);
        let index = self.by_query.get_or_init(|| {
            queries
                .chunks(dim)
                .enumerate()
                .map(|(i, q)| (bits_hash(q), i))
                .collect()
        });
        let &i = index.get(&bits_hash(query))?;
        (queries[i * dim..(i + 1) * dim] == *query).then(|| truth[i].as_slice())
    }

    /// The content's identity: the set's sampled hash and length.
    pub(super) fn content(&self) -> (u64, u64) {
        (self.set.content_hash(), self.set.byte_len())
    }
}

fn bits_hash(v: &[f32]) -> u64 {
    let mut h = Fnv::new();
    v.iter().for_each(|x| h.bytes(&x.to_bits().to_le_bytes()));
    h.finish()
}

fn prepare(rows: &mut [f32], dim: usize, unit: bool, path: &str) -> Result<(), DatasetError> {
    if !unit {
        return Ok(());
    }
    for (index, v) in rows.chunks_mut(dim).enumerate() {
        if !normalise(v) {
            return Err(DatasetError::ZeroVector {
                path: path.to_string(),
                index,
            });
        }
    }
    Ok(())
}
