//! Recall@k under load, on a sample: one search in [`SAMPLE_EVERY`] of each kind (single,
//! cross, filtered; the first one included) is handed, with the rows the user got, to a
//! background task that asks the server for the exact answer
//! ([`crate::engine::recall::exact_top_k`]: a brute-force scan, with the search's own filter)
//! on its own connection to the primary, and scores it with the benchmark suite's own
//! [`crate::engine::recall::recall`]. The user never waits for it: the hand-off is a
//! `try_send` into a one-slot channel, dropped when the task is busy, and the task takes at
//! most one sample a second so that brute-force scans stay a small share of the server's work.
//!
//! `vector_search_recall{operation}` is the mean of the last [`WINDOW`] samples of that
//! operation, so a drop shows within a few minutes at any load.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pgvector::Vector;
use tokio::sync::mpsc;

use super::ClientMetrics;
use crate::db::target::Target;
use crate::engine::operation::Request;
use crate::engine::recall::{exact_top_k, recall, Query};
use crate::workload::ops::{Hit, Op};
use crate::workload::Workload;

/// One search in this many (of each kind) is checked against the exact answer.
pub const SAMPLE_EVERY: u64 = 100;
/// Samples the gauge averages over.
pub const WINDOW: usize = 50;
/// Least time between two exact scans.
const SPACING: Duration = Duration::from_secs(1);
/// An exact scan of a large table may be slow; it must not run forever.
const EXACT_TIMEOUT_MS: u64 = 60_000;

enum Scope {
    Single(String),
    Cross(Vec<String>),
    Filtered(String, i32),
}

struct Sample {
    op: Op,
    scope: Scope,
    query: Vector,
    hits: Vec<Hit>,
}

/// The users' side of the sampler.
pub struct RecallSampler {
    tx: mpsc::Sender<Sample>,
    seen: [AtomicU64; 3],
}

impl RecallSampler {
    /// Starts the sampling task; it ends when the sampler is dropped.
    pub fn spawn(primary: Target, workload: &Workload, metrics: Arc<ClientMetrics>) -> Self {
        let (tx, rx) = mpsc::channel(1);
        let task = Task {
            primary,
            k: workload.k as usize,
            cross_k: workload.cross_k as usize,
            min_similarity: workload.min_similarity,
            embedding: workload.embedding,
            metrics,
        };
        tokio::spawn(task.run(rx));
        RecallSampler {
            tx,
            seen: Default::default(),
        }
    }

    /// Offers a successful search; most offers return after one atomic add.
    pub(crate) fn offer(&self, request: &Request, hits: &[Hit]) {
        let (slot, op) = match request {
            Request::Single { .. } => (0, Op::SingleShardSearch),
            Request::Cross { .. } => (1, Op::CrossShardSearch),
            Request::Filtered { .. } => (2, Op::FilteredSearch),
            _ => return,
        };
        if !self.seen[slot]
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SAMPLE_EVERY)
        {
            return;
        }
        let (scope, query) = match request {
            Request::Single { namespace, query } => (Scope::Single(namespace.clone()), query),
            Request::Cross { namespaces, query } => (Scope::Cross(namespaces.clone()), query),
            Request::Filtered {
                namespace,
                query,
                threshold,
            } => (Scope::Filtered(namespace.clone(), *threshold), query),
            _ => return,
        };
        let _ = self.tx.try_send(Sample {
            op,
            scope,
            query: query.clone(),
            hits: hits.to_vec(),
        });
    }
}

struct Task {
    primary: Target,
    k: usize,
    cross_k: usize,
    min_similarity: Option<f64>,
    embedding: crate::workload::Embedding,
    metrics: Arc<ClientMetrics>,
}

impl Task {
    async fn run(self, mut rx: mpsc::Receiver<Sample>) {
        let mut client = None;
        let mut windows: HashMap<Op, VecDeque<f64>> = HashMap::new();
        while let Some(sample) = rx.recv().await {
            if client.is_none() {
                client = self.connect().await;
            }
            let Some(c) = client.as_mut() else {
                continue;
            };
            match self.score(c, &sample).await {
                Ok(value) => {
                    let window = windows.entry(sample.op).or_default();
                    if window.len() == WINDOW {
                        window.pop_front();
                    }
                    window.push_back(value);
                    let mean = window.iter().sum::<f64>() / window.len() as f64;
                    self.metrics.set_recall(sample.op, mean);
                    self.metrics.count_recall_sample(sample.op, value);
                }
                Err(e) => {
                    // The server shutting down at the end of a run is not worth a warning.
                    if e.code() == Some(&tokio_postgres::error::SqlState::ADMIN_SHUTDOWN) {
                        log::debug!("recall sample stopped: server shutting down");
                    } else {
                        log::warn!(
                            "recall sample failed: {}",
                            crate::db::target::describe_pg_error(&e)
                        );
                    }
                    if c.is_closed() {
                        client = None;
                    }
                }
            }
            tokio::time::sleep(SPACING).await;
        }
    }

    async fn connect(&self) -> Option<tokio_postgres::Client> {
        let client = match self.primary.connect().await {
            Ok(c) => c,
            Err(e) => {
                log::warn!("recall sampler cannot connect: {e}");
                return None;
            }
        };
        let timeout = format!("SET statement_timeout = {EXACT_TIMEOUT_MS}");
        client.batch_execute(&timeout).await.ok()?;
        Some(client)
    }

    async fn score(
        &self,
        client: &mut tokio_postgres::Client,
        sample: &Sample,
    ) -> Result<f64, tokio_postgres::Error> {
        let (scope, k) = match &sample.scope {
            Scope::Single(ns) => (Query::Single(ns, self.min_similarity), self.k),
            Scope::Cross(nss) => (Query::Cross(nss), self.cross_k),
            Scope::Filtered(ns, threshold) => (Query::Filtered(ns, *threshold), self.k),
        };
        let truth = exact_top_k(client, scope, &sample.query, k as i64, self.embedding).await?;
        Ok(recall(&sample.hits, &truth, k))
    }
}
