//! Deterministic embedding data for the `memory_entries` table: synthetic vectors with the
//! structure of real embeddings ([`synthetic`]: shared topics, subtopics, anisotropic noise,
//! hubness), or real vectors loaded from `.npy` / `.fvecs` files.
//!
//! Every vector is random-access: row `(ns, row)` is generated from its own RNG seeded by
//! `(seed, ns, row)`, so workers can produce any row in O(dim) without materialising the data
//! set, and two runs with equal [`DatasetSpec`]s see identical data (checked by
//! [`Dataset::fingerprint`]).

use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

mod error;
mod file_data;
mod files;
mod rng;
mod synthetic;

use file_data::FileVectors;
pub(super) use rng::mix;
pub(crate) use rng::Fnv;
use rng::RowRng;
use synthetic::Synthetic;

pub use error::DatasetError;
pub use file_data::FileOptions;
pub use files::{FileSet, Format, Metric};

/// Bumped whenever the generator changes the vectors it produces for a given
/// spec (or what is stored beside them: 3 added the rows' `metadata.bucket`), so
/// that fingerprints of old and new data never match.
const FORMAT_VERSION: u64 = 3;

/// Seeded rows carry `metadata.bucket` in `0..BUCKETS`, uniform: a filter of
/// selectivity s keeps the rows whose bucket is below `round(s × BUCKETS)`.
pub const BUCKETS: u32 = 10_000;

/// Noise norm added to a stored vector to make a query for file data
/// (cosine to its source ≈ 0.97): close to real data but never an exact copy.
const FILE_QUERY_NOISE: f64 = 0.25;

/// Parameters that determine the data; two equal specs give identical vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatasetSpec {
    /// Number of namespaces (the table is split by its `namespace` column).
    pub namespaces: usize,
    /// Mean rows per namespace; the total is `namespaces * rows_per_namespace`.
    pub rows_per_namespace: usize,
    /// Embedding dimension.
    pub dim: usize,
    /// Seed from which all synthetic vectors derive.
    pub seed: u64,
    /// Topics (cluster centres) shared by all namespaces.
    pub topics: usize,
    /// Subtopics per topic.
    pub subtopics: usize,
    /// Spread of a topic's subtopic centres around it (norm relative to the unit centre).
    pub subtopic_spread: f64,
    /// Norm of a row's noise relative to its unit subtopic centre.
    pub noise: f64,
    /// Exponent of the noise's variance spectrum over the dimensions (0 = isotropic).
    pub anisotropy: f64,
    /// Standard deviation of the log of a row's noise scale (0 = every row equally spread).
    pub hubness: f64,
    /// 0.0 = equal namespace sizes; > 0 = Zipf-like exponent over namespaces
    /// (the total stays the same and every namespace keeps at least 1 row).
    pub skew: f64,
}

impl Default for DatasetSpec {
    fn default() -> Self {
        DatasetSpec {
            namespaces: 10,
            rows_per_namespace: 5000,
            dim: 384,
            seed: 42,
            topics: 6,
            subtopics: 4,
            subtopic_spread: 0.3,
            noise: 1.0,
            anisotropy: 0.7,
            hubness: 0.05,
            skew: 0.0,
        }
    }
}

/// Source of vectors: synthetic or loaded from a file.
///
/// `Send + Sync`; share it between workers with an `Arc`.
pub struct Dataset {
    spec: DatasetSpec,
    sizes: Vec<usize>,
    total: usize,
    fingerprint: String,
    source: Source,
}

enum Source {
    Synthetic(Synthetic),
    File(Box<FileVectors>),
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Dataset {
    /// Builds a synthetic clustered data set; cheap (no vectors are
    /// materialised up front).
    pub fn synthetic(spec: DatasetSpec) -> Result<Dataset, DatasetError> {
        check_common(&spec)?;
        if spec.rows_per_namespace == 0 {
            return invalid("rows_per_namespace must be at least 1");
        }
        if spec.topics == 0 || spec.topics > u32::MAX as usize {
            return invalid("topics must be at least 1");
        }
        if spec.subtopics == 0 {
            return invalid("subtopics must be at least 1");
        }
        for (name, value) in [
            ("subtopic_spread", spec.subtopic_spread),
            ("noise", spec.noise),
            ("anisotropy", spec.anisotropy),
            ("hubness", spec.hubness),
        ] {
            if !value.is_finite() || value < 0.0 {
                return invalid(&format!("{name} must be a finite number ≥ 0, got {value}"));
            }
        }
        if !spec.skew.is_finite() || spec.skew < 0.0 {
            return invalid(&format!(
                "skew must be a finite number ≥ 0, got {}",
                spec.skew
            ));
        }
        let Some(total) = spec.namespaces.checked_mul(spec.rows_per_namespace) else {
            return invalid("namespaces × rows_per_namespace overflows");
        };
        let sizes = namespace_sizes(spec.namespaces, total, spec.skew);
        let synthetic = Synthetic::new(&spec);
        let mut h = Fnv::new();
        h.u64(FORMAT_VERSION);
        h.bytes(b"synthetic");
        h.u64(spec.namespaces as u64);
        h.u64(spec.rows_per_namespace as u64);
        h.u64(spec.dim as u64);
        h.u64(spec.seed);
        h.u64(spec.topics as u64);
        h.u64(spec.subtopics as u64);
        for knob in [
            spec.subtopic_spread,
            spec.noise,
            spec.anisotropy,
            spec.hubness,
        ] {
            h.u64(knob.to_bits());
        }
        h.u64(spec.skew.to_bits());
        Ok(Dataset {
            fingerprint: format!("{:016x}", h.finish()),
            sizes,
            total,
            spec,
            source: Source::Synthetic(synthetic),
        })
    }

    /// A data set file with default options (cosine, the set's own queries): see
    /// [`Dataset::open_file`].
    pub fn from_file(path: &Path, spec: DatasetSpec) -> Result<Dataset, DatasetError> {
        Dataset::open_file(path, spec, &FileOptions::default())
    }

    /// Opens a data set file or directory (see [`FileSet::open`]), checks dim == spec.dim, and
    /// spreads its training rows over spec.namespaces namespaces: the row with id `i` goes to
    /// namespace `i % namespaces` under key `i / namespaces` (rows_per_namespace and skew are
    /// then ignored). Reads headers, the test queries and ground truth, and a bounded pool of
    /// training rows; seeding streams the rest ([`Dataset::stream_file`]). For cosine, vectors
    /// are normalised and a zero vector is an error naming its index.
    pub fn open_file(
        path: &Path,
        spec: DatasetSpec,
        options: &FileOptions,
    ) -> Result<Dataset, DatasetError> {
        check_common(&spec)?;
        let file = FileVectors::open(path, spec.dim, options)?;
        if file.count < spec.namespaces {
            return Err(DatasetError::TooFewVectors {
                path: file.path,
                vectors: file.count,
                namespaces: spec.namespaces,
            });
        }
        let n = spec.namespaces;
        let sizes = (0..n).map(|ns| (file.count - ns).div_ceil(n)).collect();
        // Only what shapes the stored rows: the seed only affects queries and
        // rows_per_namespace/skew/topics are ignored for file data.
        let (hash, len) = file.content();
        let mut h = Fnv::new();
        h.u64(FORMAT_VERSION);
        h.bytes(b"file");
        h.u64(spec.namespaces as u64);
        h.u64(spec.dim as u64);
        h.u64(len);
        h.u64(hash);
        h.u64(u64::from(file.normalise));
        Ok(Dataset {
            fingerprint: format!("{:016x}", h.finish()),
            sizes,
            total: file.count,
            spec,
            source: Source::File(Box::new(file)),
        })
    }

    /// For file data: streams every training row as stored, `f(ns, row, vector)`, a chunk at a
    /// time (bounded memory); returns false (calling nothing) for synthetic data.
    pub fn stream_file(
        &self,
        mut f: impl FnMut(usize, usize, &[f32]) -> Result<(), DatasetError>,
    ) -> Result<bool, DatasetError> {
        let Source::File(file) = &self.source else {
            return Ok(false);
        };
        let (n, dim) = (self.spec.namespaces, self.spec.dim);
        file.stream(dim, |ids, rows| {
            for (&id, v) in ids.iter().zip(rows.chunks(dim)) {
                let id = id as usize;
                if id >= self.total {
                    // Row `id` goes to namespace id % n under key id / n: ids must be dense.
                    return Err(DatasetError::Malformed {
                        path: file.path.clone(),
                        reason: format!(
                            "id {id} is not below the row count {}: ids must be 0..N-1",
                            self.total
                        ),
                    });
                }
                f(id % n, id / n, v)?;
            }
            Ok(())
        })?;
        Ok(true)
    }

    /// The data set's test queries with their ground truth (training ids, best first), when a
    /// file set has both.
    pub fn test_queries(&self) -> Option<(&[f32], &[Vec<u64>])> {
        match &self.source {
            Source::File(file) => match (&file.queries, &file.truth) {
                (Some(q), Some(t)) => Some((q, t)),
                _ => None,
            },
            Source::Synthetic(_) => None,
        }
    }

    /// Whether the vectors come from a file (seeding streams them).
    pub fn is_file(&self) -> bool {
        matches!(self.source, Source::File(_))
    }

    /// The data set's ground truth (training ids, best first) for a query this data set handed
    /// out, when it is one of a file set's test queries with ground truth.
    pub fn truth_of(&self, query: &[f32]) -> Option<&[u64]> {
        match &self.source {
            Source::File(file) => file.truth_of(query, self.spec.dim),
            Source::Synthetic(_) => None,
        }
    }

    /// Where the training row with id `id` is stored: its namespace and row (key).
    pub fn location(&self, id: u64) -> (usize, usize) {
        let n = self.spec.namespaces;
        (id as usize % n, id as usize / n)
    }

    /// The spec this data set was built from.
    pub fn spec(&self) -> &DatasetSpec {
        &self.spec
    }

    /// Number of namespaces.
    pub fn namespace_count(&self) -> usize {
        self.spec.namespaces
    }

    /// Namespace names: "ns_000", "ns_001", ... (zero-padded to 3 digits,
    /// more if ≥1000).
    pub fn namespace_name(&self, ns: usize) -> String {
        format!("ns_{ns:03}")
    }

    /// Rows seeded into namespace `ns` (0 if `ns` is out of range).
    pub fn rows_in_namespace(&self, ns: usize) -> usize {
        self.sizes.get(ns).copied().unwrap_or(0)
    }

    /// Rows over all namespaces.
    pub fn total_rows(&self) -> usize {
        self.total
    }

    /// Key of row r in namespace ns: "key_000000" style (6 digits); rows are
    /// 0..rows_in_namespace(ns).
    pub fn key(&self, row: usize) -> String {
        format!("key_{row:06}")
    }

    /// The stored embedding of (ns, row), unit length, deterministic and
    /// random-access in O(dim).
    ///
    /// For synthetic data rows past `rows_in_namespace(ns)` continue the same
    /// distribution (handy for insert workloads); for file data they wrap
    /// around. Panics if `ns >= namespace_count()`.
    pub fn vector(&self, ns: usize, row: usize) -> Vec<f32> {
        let mut v = vec![0.0; self.spec.dim];
        self.vector_into(ns, row, &mut v);
        v
    }

    /// Writes the same vector as [`Dataset::vector`] into `buf` (len dim)
    /// without allocating — used on hot paths. Panics if `buf.len() != dim`
    /// or `ns` is out of range.
    pub fn vector_into(&self, ns: usize, row: usize, buf: &mut [f32]) {
        self.check_args(ns, buf);
        match &self.source {
            Source::Synthetic(syn) => {
                let mut rng = self.row_rng(ns, row);
                syn.draw(&self.spec, ns, &mut rng, buf);
            }
            Source::File(file) => buf.copy_from_slice(self.file_row(file, ns, row)),
        }
    }

    /// A query vector for namespace ns drawn from the same distribution as the
    /// stored data (a topic of that namespace + fresh noise, normalised), using
    /// the caller's RNG; for file data: a random stored vector of that
    /// namespace plus small noise, normalised. Panics if `ns` is out of range.
    pub fn query_vector<R: Rng + ?Sized>(&self, ns: usize, rng: &mut R) -> Vec<f32> {
        let mut v = vec![0.0; self.spec.dim];
        self.check_args(ns, &v);
        match &self.source {
            Source::Synthetic(syn) => {
                syn.draw(&self.spec, ns, rng, &mut v);
            }
            Source::File(file) if file.queries.is_some() => {
                let q = file.queries.as_deref().unwrap_or_default();
                let i = rng.random_range(0..q.len() / self.spec.dim);
                v.copy_from_slice(&q[i * self.spec.dim..(i + 1) * self.spec.dim]);
            }
            Source::File(file) => {
                let row = rng.random_range(0..self.sizes[ns]);
                v.copy_from_slice(self.file_row(file, ns, row));
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                let sigma = (FILE_QUERY_NOISE / (self.spec.dim as f64).sqrt()) as f32 * norm;
                for x in &mut v {
                    *x += sigma * rng.sample::<f32, _>(StandardNormal);
                }
                if file.normalise {
                    normalise(&mut v);
                }
            }
        }
        v
    }

    /// A short text value for a row (the table's `value` column), e.g.
    /// "memory ns_003/key_000042 topic 7"; deterministic.
    pub fn value(&self, ns: usize, row: usize) -> String {
        let ns_name = self.namespace_name(ns);
        let key = self.key(row);
        match &self.source {
            Source::Synthetic(syn) => {
                // The topic is the row RNG's first draw, so this is cheap and
                // agrees with the vector.
                let topic = syn.topic(&self.spec, ns, self.row_rng(ns, row).random::<f64>());
                format!("memory {ns_name}/{key} topic {topic}")
            }
            Source::File(_) => {
                let index = self.file_index(ns, row);
                format!("memory {ns_name}/{key} vector {index}")
            }
        }
    }

    /// The filter bucket of (ns, row), in `0..BUCKETS`: uniform, deterministic
    /// and independent of the vector, so a bucket filter keeps a random share of
    /// every topic. (For file data the seed is not in the fingerprint, so a
    /// table seeded under another seed keeps its buckets; a filter only needs
    /// them uniform, never equal to these.)
    pub fn bucket(&self, ns: usize, row: usize) -> u32 {
        let h = mix(&[self.spec.seed, 0x6275_636b, ns as u64, row as u64]);
        (h % u64::from(BUCKETS)) as u32
    }

    /// Hex string (16 hex digits) identifying the data: FNV-1a over a format
    /// version and the spec fields, and for file data the file's length and a
    /// hash of its bytes (the fields a file ignores are left out).
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// A compact description for logs and reports, e.g. "synthetic: 10
    /// namespaces × 5000 rows, dim 384, seed 42, 16 topics/ns, skew 0".
    pub fn describe(&self) -> String {
        let s = &self.spec;
        match &self.source {
            Source::Synthetic(_) => format!(
                "synthetic: {} namespaces × {} rows, dim {}, seed {}, {} shared topics × {} \
                 subtopics, noise {} anisotropy {} hubness {}, skew {}",
                s.namespaces,
                s.rows_per_namespace,
                s.dim,
                s.seed,
                s.topics,
                s.subtopics,
                s.noise,
                s.anisotropy,
                s.hubness,
                s.skew
            ),
            Source::File(f) => format!(
                "file {}: {} vectors, dim {}, over {} namespaces",
                f.path, f.count, s.dim, s.namespaces
            ),
        }
    }

    fn check_args(&self, ns: usize, buf: &[f32]) {
        assert!(
            ns < self.spec.namespaces,
            "namespace {ns} out of range (data set has {})",
            self.spec.namespaces
        );
        assert_eq!(
            buf.len(),
            self.spec.dim,
            "vector buffer length must equal dim"
        );
    }

    fn row_rng(&self, ns: usize, row: usize) -> RowRng {
        RowRng::new(mix(&[self.spec.seed, 0x726f77, ns as u64, row as u64]))
    }

    fn file_index(&self, ns: usize, row: usize) -> usize {
        (row % self.sizes[ns]) * self.spec.namespaces + ns
    }

    /// A training row from the in-memory pool (the first rows of the file; others wrap).
    fn file_row<'a>(&self, file: &'a FileVectors, ns: usize, row: usize) -> &'a [f32] {
        let i = self.file_index(ns, row) % (file.pool.len() / self.spec.dim);
        &file.pool[i * self.spec.dim..(i + 1) * self.spec.dim]
    }
}

fn invalid<T>(msg: &str) -> Result<T, DatasetError> {
    Err(DatasetError::InvalidParameter(msg.to_string()))
}

fn check_common(spec: &DatasetSpec) -> Result<(), DatasetError> {
    if spec.namespaces == 0 {
        return invalid("namespaces must be at least 1");
    }
    if spec.dim == 0 {
        return invalid("dim must be at least 1");
    }
    Ok(())
}

/// Splits `total` rows over `n` namespaces with weights (i+1)^-skew: every
/// namespace gets 1 row, the rest is shared by largest remainder so the sum is
/// exact.
fn namespace_sizes(n: usize, total: usize, skew: f64) -> Vec<usize> {
    if skew == 0.0 {
        // Exact even split without floating point; total is a multiple of n.
        return vec![total / n; n];
    }
    let weights: Vec<f64> = (0..n).map(|i| ((i + 1) as f64).powf(-skew)).collect();
    let sum: f64 = weights.iter().sum();
    let rest = (total - n) as f64;
    let shares: Vec<f64> = weights.iter().map(|w| rest * w / sum).collect();
    let mut sizes: Vec<usize> = shares.iter().map(|s| 1 + s.floor() as usize).collect();
    let assigned: usize = sizes.iter().sum();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        let fa = shares[a] - shares[a].floor();
        let fb = shares[b] - shares[b].floor();
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    for &i in order.iter().cycle().take(total.saturating_sub(assigned)) {
        sizes[i] += 1;
    }
    sizes
}

pub(super) fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = weights
        .map(|w| {
            acc += w;
            acc
        })
        .collect();
    for c in &mut cdf {
        *c /= acc;
    }
    cdf
}

/// Index of the first cumulative weight above `u` (u in [0, 1)).
pub(super) fn pick(cdf: &[f64], u: f64) -> usize {
    cdf.partition_point(|&c| c <= u).min(cdf.len() - 1)
}

/// Scales `v` to unit length; returns false (leaving `v` alone) if it has no
/// usable length.
pub(crate) fn normalise(v: &mut [f32]) -> bool {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if !(norm.is_finite() && norm > 0.0) {
        return false;
    }
    let inv = (1.0 / norm) as f32;
    v.iter_mut().for_each(|x| *x *= inv);
    true
}

#[cfg(test)]
mod tests;
