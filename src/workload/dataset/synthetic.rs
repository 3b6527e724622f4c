//! The synthetic generator: embeddings with the structure that makes real ones hard to search.
//!
//! Real text embeddings are neither uniform noise (every pair near-orthogonal, so nothing is a
//! neighbour) nor a few tight balls (every query in a ball has the same ten nearest rows, which
//! any index finds at once: the first release's data gave recall 1.0 at `ef_search = 10`). They
//! are clustered at several scales, their spread inside a cluster lives in a few tens of
//! directions rather than in all of them, a few points are everybody's neighbours, and different
//! users write about the same subjects. Each of those is one knob here:
//!
//! - **Topics shared by all namespaces** (`topics`): every namespace draws its rows from the same
//!   pool of topic centres, each with its own Zipf popularity order over them, so agents remember
//!   the same subjects and a cross-namespace top-k merges rows of several partitions.
//! - **Subtopics** (`subtopics`, `subtopic_spread`): each topic has subtopic centres around it
//!   (a sentence about a subject lands near the others about the same detail).
//! - **Noise** (`noise`): a row is its subtopic centre plus noise of this norm (relative to the
//!   unit centre) before normalising; more noise, weaker contrast between the nearest rows and
//!   the rest.
//! - **Anisotropy** (`anisotropy`): the noise variance along the dimensions falls off as
//!   `j^-anisotropy` (in a random order per topic), so it spreads over a few tens of effective
//!   directions, as in real embeddings, instead of all `dim` of them; 0 is isotropic noise.
//!   This sets the data's local intrinsic dimension, which is what makes a graph index need a
//!   larger `ef_search`.
//! - **Hubness** (`hubness`): each row's noise is scaled by `exp(hubness · N(0,1))`; rows with
//!   little noise sit near their centre and turn up in many neighbour lists.
//!
//! Every row stays random-access: its RNG is seeded by `(seed, ns, row)`, so any row is built in
//! O(dim) without materialising the data set.

use std::sync::OnceLock;

use rand::{Rng, RngCore};
use rand_distr::StandardNormal;

use super::{cumulative, mix, normalise, pick, DatasetSpec, RowRng};

/// Zipf exponent of topic popularity inside a namespace (over its own order of the topics).
const TOPIC_ZIPF: f64 = 0.8;
/// Zipf exponent of subtopic popularity inside a topic.
const SUBTOPIC_ZIPF: f64 = 0.5;

/// The generator's lazily built state; `Send + Sync`.
pub(super) struct Synthetic {
    /// Cumulative popularity of a namespace's topics by rank.
    rank_cdf: Vec<f64>,
    /// Cumulative popularity of a topic's subtopics.
    subtopic_cdf: Vec<f64>,
    /// Subtopic centres and per-topic noise scales, built on first use.
    shape: OnceLock<Shape>,
    /// Per namespace: its topics in order of popularity, built on first use.
    orders: Vec<OnceLock<Vec<u32>>>,
}

struct Shape {
    /// topics × subtopics × dim, unit length.
    centres: Vec<f32>,
    /// topics × dim: the noise's relative standard deviation per dimension.
    scales: Vec<f32>,
}

impl Synthetic {
    pub(super) fn new(spec: &DatasetSpec) -> Synthetic {
        Synthetic {
            rank_cdf: cumulative((0..spec.topics).map(|t| ((t + 1) as f64).powf(-TOPIC_ZIPF))),
            subtopic_cdf: cumulative(
                (0..spec.subtopics).map(|s| ((s + 1) as f64).powf(-SUBTOPIC_ZIPF)),
            ),
            shape: OnceLock::new(),
            orders: (0..spec.namespaces).map(|_| OnceLock::new()).collect(),
        }
    }

    /// One embedding of namespace `ns` from `rng`: a row (with the row's RNG) or a query (with
    /// the caller's). Returns the topic.
    pub(super) fn draw<R: Rng + ?Sized>(
        &self,
        spec: &DatasetSpec,
        ns: usize,
        rng: &mut R,
        buf: &mut [f32],
    ) -> usize {
        let topic = self.topic(spec, ns, rng.random::<f64>());
        let subtopic = pick(&self.subtopic_cdf, rng.random::<f64>());
        let spread = (spec.hubness * rng.sample::<f64, _>(StandardNormal)).exp() as f32;
        let shape = self.shape.get_or_init(|| Shape::build(spec));
        let dim = spec.dim;
        let c = (topic * spec.subtopics + subtopic) * dim;
        let centre = &shape.centres[c..c + dim];
        let scales = &shape.scales[topic * dim..(topic + 1) * dim];
        // Noise along the topic's directions, made orthogonal to the centre and of an exact
        // norm: every row then sits at the same angle from its centre (no accidental hubs
        // from noise that happens to point at the centre), and which rows are a query's
        // nearest depends on the noise alone, as it does for real embeddings.
        for (b, &s) in buf.iter_mut().zip(scales) {
            *b = s * rng.sample::<f32, _>(StandardNormal);
        }
        let along: f32 = buf.iter().zip(centre).map(|(b, c)| b * c).sum();
        buf.iter_mut()
            .zip(centre)
            .for_each(|(b, &c)| *b -= along * c);
        let len = buf.iter().map(|b| b * b).sum::<f32>().sqrt();
        let scale = spec.noise as f32 * spread / len.max(f32::MIN_POSITIVE);
        buf.iter_mut()
            .zip(centre)
            .for_each(|(b, &c)| *b = c + scale * *b);
        normalise(buf);
        topic
    }

    /// The topic of a row whose first draw was `u`; cheap (for the `value` column).
    pub(super) fn topic(&self, spec: &DatasetSpec, ns: usize, u: f64) -> usize {
        let order = self.orders[ns].get_or_init(|| namespace_order(spec, ns));
        order[pick(&self.rank_cdf, u)] as usize
    }
}

impl Shape {
    fn build(spec: &DatasetSpec) -> Shape {
        let dim = spec.dim;
        let mut centres = vec![0.0f32; spec.topics * spec.subtopics * dim];
        let mut scales = vec![0.0f32; spec.topics * dim];
        // The falling spectrum, mean square 1, then scaled to the noise's norm.
        let spectrum: Vec<f64> = (0..dim)
            .map(|j| ((j + 1) as f64).powf(-spec.anisotropy / 2.0))
            .collect();
        let sub_sigma = (spec.subtopic_spread / (dim as f64).sqrt()) as f32;
        let mut topic_centre = vec![0.0f32; dim];
        for topic in 0..spec.topics {
            let mut rng = RowRng::new(mix(&[spec.seed, 0x746f706963, topic as u64]));
            for x in topic_centre.iter_mut() {
                *x = rng.sample(StandardNormal);
            }
            normalise(&mut topic_centre);
            let block = &mut centres[topic * spec.subtopics * dim..][..spec.subtopics * dim];
            for sub in block.chunks_mut(dim) {
                for (x, &c) in sub.iter_mut().zip(&topic_centre) {
                    *x = c + sub_sigma * rng.sample::<f32, _>(StandardNormal);
                }
                normalise(sub);
            }
            // Each topic spreads along its own directions: the spectrum in a shuffled order.
            let order = shuffled(dim, &mut rng);
            for (s, &j) in scales[topic * dim..(topic + 1) * dim]
                .iter_mut()
                .zip(&order)
            {
                *s = spectrum[j as usize] as f32;
            }
        }
        Shape { centres, scales }
    }
}

/// Namespace `ns`'s topics from most to least popular: its own shuffle of the shared pool.
fn namespace_order(spec: &DatasetSpec, ns: usize) -> Vec<u32> {
    let mut rng = RowRng::new(mix(&[spec.seed, 0x6f72646572, ns as u64]));
    shuffled(spec.topics, &mut rng)
}

/// 0..n in a random order (Fisher–Yates with the stable RNG).
fn shuffled(n: usize, rng: &mut RowRng) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}
