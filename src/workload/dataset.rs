//! Deterministic embedding data for the `memory_entries` table: synthetic
//! clustered vectors, or real vectors loaded from `.npy` / `.fvecs` files.
//!
//! Why clustered topics: real sentence embeddings are strongly clustered
//! (texts about the same thing land close together). Uniform random vectors in
//! 384 dimensions are all nearly orthogonal (cosine ≈ 0 ± 0.05), so the
//! original suite's `similarity >= 0.7` search returned nothing and measured
//! an empty-result query instead of a real one. Here every namespace has a few
//! topic centres on the unit sphere and each row is `normalise(centre + noise)`,
//! with the noise scaled by `1/sqrt(dim)` so that two members of a topic have
//! a cosine of about `1/(1+τ²)` whatever the dimension. A query drawn the same
//! way finds its nearest neighbours at 0.7–0.9, while unrelated vectors stay
//! near 0, as with real embeddings.
//!
//! Every vector is random-access: row `(ns, row)` is generated from its own
//! RNG seeded by `(seed, ns, row)`, so workers can produce any row in O(dim)
//! without materialising the data set, and two runs with equal
//! [`DatasetSpec`]s see identical data (checked by [`Dataset::fingerprint`]).

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use rand::{Rng, RngCore};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

#[path = "vectors_file.rs"]
mod vectors_file;

/// Bumped whenever the generator changes the vectors it produces for a given
/// spec, so that fingerprints of old and new data never match.
const FORMAT_VERSION: u64 = 1;

/// Noise norm relative to the unit-length topic centre (τ). Two rows of one
/// topic have cosine ≈ 1/(1+τ²) ≈ 0.73; the nearest of a few hundred topic
/// mates (the ones with less spread) then sit at ≈ 0.8, like real top-k hits.
const NOISE: f64 = 0.6;
/// Per-row spread multiplier range: some rows sit tight on their topic, some
/// are vaguer, which spreads the neighbour similarities like real data.
const SPREAD_MIN: f64 = 0.7;
const SPREAD_MAX: f64 = 1.3;
/// Zipf exponent of topic popularity inside a namespace.
const TOPIC_ZIPF: f64 = 0.7;
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
    /// Topic clusters per namespace.
    pub topics_per_namespace: usize,
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
            topics_per_namespace: 16,
            skew: 0.0,
        }
    }
}

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
    /// The file's extension is neither `.npy` nor `.fvecs`.
    #[error("vector file {path}: unsupported format (expected a .npy or .fvecs file)")]
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
    File(FileVectors),
}

struct Synthetic {
    /// Cumulative topic popularity, shared by all namespaces.
    topic_cdf: Vec<f64>,
    /// Per-namespace topic centres (topics × dim), built on first use so a
    /// run touching one namespace of thousands doesn't pay for all of them.
    centres: Vec<OnceLock<Vec<f32>>>,
}

/// Vectors read from a file, already normalised.
pub(crate) struct FileVectors {
    pub(crate) path: String,
    pub(crate) data: Vec<f32>,
    pub(crate) count: usize,
    pub(crate) byte_len: u64,
    pub(crate) byte_hash: u64,
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
        if spec.topics_per_namespace == 0 {
            return invalid("topics_per_namespace must be at least 1");
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
        let topic_cdf =
            cumulative((0..spec.topics_per_namespace).map(|t| ((t + 1) as f64).powf(-TOPIC_ZIPF)));
        let centres = (0..spec.namespaces).map(|_| OnceLock::new()).collect();
        let mut h = Fnv::new();
        h.u64(FORMAT_VERSION);
        h.bytes(b"synthetic");
        h.u64(spec.namespaces as u64);
        h.u64(spec.rows_per_namespace as u64);
        h.u64(spec.dim as u64);
        h.u64(spec.seed);
        h.u64(spec.topics_per_namespace as u64);
        h.u64(spec.skew.to_bits());
        Ok(Dataset {
            fingerprint: format!("{:016x}", h.finish()),
            sizes,
            total,
            spec,
            source: Source::Synthetic(Synthetic { topic_cdf, centres }),
        })
    }

    /// Loads every vector of a .npy or .fvecs file (chosen by extension),
    /// checks dim == spec.dim, normalises each vector to unit length, and
    /// spreads them over spec.namespaces namespaces (vector i goes to
    /// namespace i % namespaces; rows_per_namespace and skew are then ignored
    /// and the real counts are used). Zero vectors are an error naming the
    /// index.
    pub fn from_file(path: &Path, spec: DatasetSpec) -> Result<Dataset, DatasetError> {
        check_common(&spec)?;
        let file = vectors_file::load(path, spec.dim)?;
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
        let mut h = Fnv::new();
        h.u64(FORMAT_VERSION);
        h.bytes(b"file");
        h.u64(spec.namespaces as u64);
        h.u64(spec.dim as u64);
        h.u64(file.byte_len);
        h.u64(file.byte_hash);
        Ok(Dataset {
            fingerprint: format!("{:016x}", h.finish()),
            sizes,
            total: file.count,
            spec,
            source: Source::File(file),
        })
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
                self.synth_into(syn, ns, &mut rng, buf);
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
                self.synth_into(syn, ns, rng, &mut v);
            }
            Source::File(file) => {
                let row = rng.random_range(0..self.sizes[ns]);
                v.copy_from_slice(self.file_row(file, ns, row));
                let sigma = (FILE_QUERY_NOISE / (self.spec.dim as f64).sqrt()) as f32;
                for x in &mut v {
                    *x += sigma * rng.sample::<f32, _>(StandardNormal);
                }
                normalise(&mut v);
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
                let topic = pick(&syn.topic_cdf, self.row_rng(ns, row).random::<f64>());
                format!("memory {ns_name}/{key} topic {topic}")
            }
            Source::File(_) => {
                let index = self.file_index(ns, row);
                format!("memory {ns_name}/{key} vector {index}")
            }
        }
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
                "synthetic: {} namespaces × {} rows, dim {}, seed {}, {} topics/ns, skew {}",
                s.namespaces, s.rows_per_namespace, s.dim, s.seed, s.topics_per_namespace, s.skew
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

    /// Shared by stored rows and queries so both use exactly the same scales.
    fn synth_into<R: Rng + ?Sized>(
        &self,
        syn: &Synthetic,
        ns: usize,
        rng: &mut R,
        buf: &mut [f32],
    ) {
        let dim = self.spec.dim;
        let topic = pick(&syn.topic_cdf, rng.random::<f64>());
        let spread = SPREAD_MIN + (SPREAD_MAX - SPREAD_MIN) * rng.random::<f64>();
        let sigma = (NOISE * spread / (dim as f64).sqrt()) as f32;
        let centres = syn.centres[ns].get_or_init(|| self.make_centres(ns));
        let centre = &centres[topic * dim..(topic + 1) * dim];
        for (b, &c) in buf.iter_mut().zip(centre) {
            *b = c + sigma * rng.sample::<f32, _>(StandardNormal);
        }
        normalise(buf);
    }

    fn make_centres(&self, ns: usize) -> Vec<f32> {
        let dim = self.spec.dim;
        let mut out = vec![0.0; self.spec.topics_per_namespace * dim];
        for (topic, centre) in out.chunks_mut(dim).enumerate() {
            // Independent Gaussian directions: distinct topics (and namespaces)
            // are near-orthogonal, like unrelated texts.
            let mut rng = RowRng::new(mix(&[
                self.spec.seed,
                0x746f706963,
                ns as u64,
                topic as u64,
            ]));
            for x in centre.iter_mut() {
                *x = rng.sample(StandardNormal);
            }
            normalise(centre);
        }
        out
    }

    fn file_index(&self, ns: usize, row: usize) -> usize {
        (row % self.sizes[ns]) * self.spec.namespaces + ns
    }

    fn file_row<'a>(&self, file: &'a FileVectors, ns: usize, row: usize) -> &'a [f32] {
        let i = self.file_index(ns, row);
        &file.data[i * self.spec.dim..(i + 1) * self.spec.dim]
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

fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
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
fn pick(cdf: &[f64], u: f64) -> usize {
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

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Combines several numbers into one well-mixed seed.
fn mix(parts: &[u64]) -> u64 {
    let mut state = 0x6a09_e667_f3bc_c909u64;
    let mut out = 0;
    for &p in parts {
        state ^= p;
        out = splitmix64(&mut state);
        state = out;
    }
    out
}

/// xoshiro256++, written out here rather than using `SmallRng`/`StdRng`,
/// whose streams rand documents as free to change between releases and
/// platforms: the data behind a fingerprint must stay the same.
struct RowRng {
    s: [u64; 4],
}

impl RowRng {
    fn new(seed: u64) -> Self {
        let mut sm = seed;
        RowRng {
            s: std::array::from_fn(|_| splitmix64(&mut sm)),
        }
    }
}

impl RngCore for RowRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// 64-bit FNV-1a: tiny and stable forever, unlike std's `DefaultHasher`.
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::path::PathBuf;

    fn spec(namespaces: usize, rows: usize, dim: usize) -> DatasetSpec {
        DatasetSpec {
            namespaces,
            rows_per_namespace: rows,
            dim,
            ..DatasetSpec::default()
        }
    }

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn deterministic_and_seed_sensitive() {
        let a = Dataset::synthetic(spec(3, 100, 64)).unwrap();
        let b = Dataset::synthetic(spec(3, 100, 64)).unwrap();
        let other = Dataset::synthetic(DatasetSpec {
            seed: 43,
            ..spec(3, 100, 64)
        })
        .unwrap();
        assert_eq!(a.vector(2, 57), b.vector(2, 57));
        assert_eq!(a.value(2, 57), b.value(2, 57));
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.vector(2, 57), other.vector(2, 57));
        assert_ne!(a.fingerprint(), other.fingerprint());
        assert!(a.fingerprint().len() >= 16);
        // Random access gives the same row whatever was generated before.
        let first = a.vector(1, 5);
        let _ = a.vector(0, 99);
        assert_eq!(a.vector(1, 5), first);
        let mut buf = vec![0.0; 64];
        a.vector_into(1, 5, &mut buf);
        assert_eq!(buf, first);
        // Rows differ from each other.
        assert_ne!(a.vector(1, 5), a.vector(1, 6));
    }

    #[test]
    fn every_spec_field_changes_the_fingerprint() {
        let base = DatasetSpec::default();
        let fp = |s: DatasetSpec| Dataset::synthetic(s).unwrap().fingerprint();
        let variants = [
            DatasetSpec {
                namespaces: 11,
                ..base.clone()
            },
            DatasetSpec {
                rows_per_namespace: 5001,
                ..base.clone()
            },
            DatasetSpec {
                dim: 385,
                ..base.clone()
            },
            DatasetSpec {
                seed: 1,
                ..base.clone()
            },
            DatasetSpec {
                topics_per_namespace: 15,
                ..base.clone()
            },
            DatasetSpec {
                skew: 0.5,
                ..base.clone()
            },
        ];
        let reference = fp(base.clone());
        assert_eq!(reference, fp(base));
        for v in variants {
            assert_ne!(fp(v.clone()), reference, "{v:?}");
        }
    }

    #[test]
    fn names_keys_values_describe() {
        let d = Dataset::synthetic(DatasetSpec::default()).unwrap();
        assert_eq!(d.namespace_name(3), "ns_003");
        assert_eq!(d.namespace_name(1234), "ns_1234");
        assert_eq!(d.key(42), "key_000042");
        assert!(d
            .value(3, 42)
            .starts_with("memory ns_003/key_000042 topic "));
        assert_eq!(
            d.describe(),
            "synthetic: 10 namespaces × 5000 rows, dim 384, seed 42, 16 topics/ns, skew 0"
        );
    }

    #[test]
    fn unit_norms() {
        let d = Dataset::synthetic(spec(2, 50, 384)).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for ns in 0..2 {
            for row in 0..50 {
                let n = dot(&d.vector(ns, row), &d.vector(ns, row));
                assert!((n - 1.0).abs() < 1e-4, "norm² {n}");
            }
            let q = d.query_vector(ns, &mut rng);
            assert!((dot(&q, &q) - 1.0).abs() < 1e-4);
        }
    }

    #[test]
    fn namespace_sizes_sum_and_skew() {
        let even = Dataset::synthetic(spec(10, 100, 8)).unwrap();
        assert!((0..10).all(|ns| even.rows_in_namespace(ns) == 100));
        assert_eq!(even.total_rows(), 1000);

        let skewed = Dataset::synthetic(DatasetSpec {
            skew: 1.0,
            ..spec(10, 100, 8)
        })
        .unwrap();
        let sizes: Vec<usize> = (0..10).map(|ns| skewed.rows_in_namespace(ns)).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 1000);
        assert_eq!(skewed.total_rows(), 1000);
        assert!(sizes[0] > 2 * sizes[9], "{sizes:?}");
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");

        // Extreme skew still leaves every namespace a row.
        let extreme = Dataset::synthetic(DatasetSpec {
            skew: 8.0,
            ..spec(50, 3, 8)
        })
        .unwrap();
        let sizes: Vec<usize> = (0..50).map(|ns| extreme.rows_in_namespace(ns)).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 150);
        assert!(sizes.iter().all(|&s| s >= 1), "{sizes:?}");
        assert!(sizes[0] > 90, "{sizes:?}");
    }

    #[test]
    fn invalid_parameters() {
        for bad in [
            spec(0, 10, 8),
            spec(1, 0, 8),
            spec(1, 10, 0),
            DatasetSpec {
                topics_per_namespace: 0,
                ..spec(1, 10, 8)
            },
            DatasetSpec {
                skew: -1.0,
                ..spec(1, 10, 8)
            },
            DatasetSpec {
                skew: f64::NAN,
                ..spec(1, 10, 8)
            },
        ] {
            let err = Dataset::synthetic(bad.clone()).unwrap_err();
            assert!(
                matches!(err, DatasetError::InvalidParameter(_)),
                "{bad:?}: {err}"
            );
        }
    }

    /// The property the load test relies on: a `similarity >= 0.7` search in
    /// one namespace returns rows, while unrelated vectors are ~orthogonal.
    #[test]
    fn similarity_targets() {
        let dim = 384;
        let d = Dataset::synthetic(spec(2, 5000, dim)).unwrap();
        let rows = d.rows_in_namespace(0);
        let mut matrix = vec![0.0f32; rows * dim];
        for (row, v) in matrix.chunks_mut(dim).enumerate() {
            d.vector_into(0, row, v);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut top1, mut top10, mut above) = (0.0, 0.0, 0usize);
        let queries = 50;
        for _ in 0..queries {
            let q = d.query_vector(0, &mut rng);
            let mut sims: Vec<f32> = matrix.chunks(dim).map(|v| dot(&q, v)).collect();
            sims.sort_by(|a, b| b.total_cmp(a));
            top1 += sims[0] as f64;
            top10 += sims[..10].iter().map(|&s| s as f64).sum::<f64>() / 10.0;
            above += sims.iter().filter(|&&s| s >= 0.7).count();
        }
        let (top1, top10) = (top1 / queries as f64, top10 / queries as f64);
        let mut cross = 0.0;
        for i in 0..500 {
            cross += dot(&d.vector(0, i * 7), &d.vector(1, i * 13 + 1)).abs() as f64;
        }
        let cross = cross / 500.0;
        eprintln!(
            "top-1 mean {top1:.3}, top-10 mean {top10:.3}, rows ≥ 0.7 per query {:.0}, cross |cos| {cross:.3}",
            above as f64 / queries as f64
        );
        assert!(top1 >= 0.75, "top-1 {top1}");
        assert!((0.7..=0.95).contains(&top10), "top-10 {top10}");
        assert!(top1 <= 0.95, "top-1 {top1}");
        assert!(cross < 0.15, "cross {cross}");
    }

    #[test]
    fn similarity_independent_of_dim() {
        for dim in [64, 1536] {
            let d = Dataset::synthetic(spec(1, 200, dim)).unwrap();
            // Same-topic pairs (same value suffix) should sit near 1/(1+τ²).
            let mut sum = 0.0;
            let mut n = 0;
            for a in 0..40 {
                for b in a + 1..40 {
                    if d.value(0, a).rsplit(' ').next() == d.value(0, b).rsplit(' ').next() {
                        sum += dot(&d.vector(0, a), &d.vector(0, b)) as f64;
                        n += 1;
                    }
                }
            }
            let mean = sum / n as f64;
            assert!(
                (0.7..0.85).contains(&mean),
                "dim {dim}: same-topic mean {mean}"
            );
        }
    }

    fn npy_bytes(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        npy_bytes_order(descr, "False", shape, data)
    }

    fn npy_bytes_order(descr: &str, fortran: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    const RAW: [[f32; 3]; 4] = [
        [3.0, 4.0, 0.0],
        [0.0, 0.0, 2.0],
        [1.0, 1.0, 1.0],
        [0.0, -5.0, 0.0],
    ];

    fn check_loaded(d: &Dataset) {
        assert_eq!(d.total_rows(), 4);
        assert_eq!(d.rows_in_namespace(0), 2);
        assert_eq!(d.rows_in_namespace(1), 2);
        // vector i lives in namespace i % 2, row i / 2.
        for (i, raw) in RAW.iter().enumerate() {
            let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
            let got = d.vector(i % 2, i / 2);
            for (g, r) in got.iter().zip(raw) {
                assert!((g - r / norm).abs() < 1e-6, "vector {i}: {got:?}");
            }
        }
        let q = d.query_vector(1, &mut rand::rngs::StdRng::seed_from_u64(3));
        let best = (0..2)
            .map(|r| dot(&q, &d.vector(1, r)))
            .fold(f32::MIN, f32::max);
        assert!(best > 0.9, "query should sit near a stored vector: {best}");
    }

    #[test]
    fn npy_and_fvecs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let f32_data: Vec<u8> = RAW.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
        let f64_data: Vec<u8> = RAW
            .iter()
            .flatten()
            .flat_map(|&x| f64::from(x).to_le_bytes())
            .collect();
        let fvecs: Vec<u8> = RAW
            .iter()
            .flat_map(|v| {
                let mut rec = 3i32.to_le_bytes().to_vec();
                rec.extend(v.iter().flat_map(|x| x.to_le_bytes()));
                rec
            })
            .collect();
        // Column-major, big-endian: the same matrix as numpy would write it.
        let fortran: Vec<u8> = (0..3)
            .flat_map(|c| RAW.iter().map(move |r| r[c]))
            .flat_map(|x| x.to_be_bytes())
            .collect();
        let paths = [
            write(dir.path(), "a.npy", &npy_bytes("<f4", "(4, 3)", &f32_data)),
            write(
                dir.path(),
                "f.npy",
                &npy_bytes_order(">f4", "True", "(4, 3)", &fortran),
            ),
            write(dir.path(), "b.npy", &npy_bytes("<f8", "(4, 3)", &f64_data)),
            write(dir.path(), "c.fvecs", &fvecs),
        ];
        let mut fingerprints = Vec::new();
        for path in &paths {
            let d = Dataset::from_file(path, spec(2, 999, 3)).unwrap();
            check_loaded(&d);
            assert!(d.describe().contains("4 vectors"), "{}", d.describe());
            assert!(d.value(1, 1).ends_with("vector 3"), "{}", d.value(1, 1));
            fingerprints.push(d.fingerprint());
        }
        assert_ne!(fingerprints[0], fingerprints[1]);
        let again = Dataset::from_file(&paths[0], spec(2, 1, 3)).unwrap();
        assert_eq!(again.fingerprint(), fingerprints[0]);
    }

    fn load_err(path: &Path, dim: usize) -> DatasetError {
        let err = Dataset::from_file(path, spec(1, 1, dim)).unwrap_err();
        let file = path.display().to_string();
        assert!(
            err.to_string().contains(&file),
            "message must name the file: {err}"
        );
        err
    }

    #[test]
    fn file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();

        let err = load_err(&d.join("missing.npy"), 3);
        assert!(matches!(err, DatasetError::Missing { .. }), "{err}");

        let err = load_err(&write(d, "empty.fvecs", b""), 3);
        assert!(matches!(err, DatasetError::Empty { .. }), "{err}");

        let mut rec = 3i32.to_le_bytes().to_vec();
        rec.extend([1.0f32, 2.0, 3.0].iter().flat_map(|x| x.to_le_bytes()));
        rec.extend(3i32.to_le_bytes());
        rec.extend(1.0f32.to_le_bytes());
        let err = load_err(&write(d, "short.fvecs", &rec), 3);
        assert!(
            matches!(
                err,
                DatasetError::Truncated {
                    expected: 32,
                    found: 24,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("expected 32 bytes, found 24"),
            "{err}"
        );

        let err = load_err(&write(d, "dim.fvecs", &rec[..16]), 4);
        assert!(
            matches!(
                err,
                DatasetError::WrongDimension {
                    file_dim: 3,
                    expected: 4,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("file has 3, --dim is 4"), "{err}");

        let data: Vec<u8> = [1.0f32, 2.0, 3.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let err = load_err(&write(d, "flat.npy", &npy_bytes("<f4", "(3,)", &data)), 3);
        assert!(matches!(err, DatasetError::NotTwoD { .. }), "{err}");

        let err = load_err(&write(d, "dim.npy", &npy_bytes("<f4", "(1, 3)", &data)), 4);
        assert!(
            matches!(err, DatasetError::WrongDimension { file_dim: 3, .. }),
            "{err}"
        );

        let err = load_err(&write(d, "int.npy", &npy_bytes("<i4", "(1, 3)", &data)), 3);
        assert!(
            matches!(err, DatasetError::UnsupportedDtype { .. }),
            "{err}"
        );

        let err = load_err(&write(d, "cut.npy", &npy_bytes("<f4", "(2, 3)", &data)), 3);
        assert!(matches!(err, DatasetError::Truncated { .. }), "{err}");

        let err = load_err(&write(d, "magic.npy", b"not a numpy file"), 3);
        assert!(matches!(err, DatasetError::BadMagic { .. }), "{err}");

        let zeros = vec![0u8; 12];
        let err = load_err(
            &write(d, "zero.npy", &npy_bytes("<f4", "(1, 3)", &zeros)),
            3,
        );
        assert!(
            matches!(err, DatasetError::ZeroVector { index: 0, .. }),
            "{err}"
        );

        let err = load_err(&write(d, "data.csv", b"1,2,3"), 3);
        assert!(
            matches!(err, DatasetError::UnsupportedFormat { .. }),
            "{err}"
        );
    }

    #[test]
    fn shareable() {
        fn is_send_sync<T: Send + Sync>() {}
        is_send_sync::<Dataset>();
    }
}
