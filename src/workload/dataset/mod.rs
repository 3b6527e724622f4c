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

mod error;
mod files;
mod vectors_file;

pub use error::DatasetError;
pub use files::{FileSet, Format, Metric};

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
mod tests;
