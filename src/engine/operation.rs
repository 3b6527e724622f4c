//! The timed operation every mode shares: plan a request off the clock, check a connection
//! out, execute, and record the outcome in our histograms ([`StatsHub`]), in Goose
//! (`record_custom_request_duration`) and, when the exporter runs, in Prometheus. Response
//! time (pool wait + query), service time and pool wait are timed apart.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::prelude::*;
use pgvector::Vector;
use rand::rngs::SmallRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};

use super::stats::{Outcome, StatsHub};
use crate::db::pool::Pool;
use crate::workload::dataset::Dataset;
use crate::workload::failure::Failure;
use crate::workload::ops::{self, Hit, NewRow, Op};
use crate::workload::Workload;

/// Goose's method label for our requests.
pub const METHOD: &str = "SQL";

/// Sees every operation as it is recorded (the exporter's client-side series implement it),
/// so the engine does not depend on who listens.
pub trait Observer: Send + Sync {
    /// One operation: what was sent, through which reader pool, how it went, what it found.
    fn observe(&self, request: &Request, reader: usize, op: Op, outcome: &Outcome, hits: &[Hit]);
}

/// What every user shares.
pub struct Shared {
    /// The seeded data (for query vectors and existing keys).
    pub dataset: Arc<Dataset>,
    /// The primary's pool (writes).
    pub writer: Pool,
    /// Pools for reads (the primary's, or the replicas').
    pub readers: Vec<Pool>,
    /// Our measurements.
    pub hub: Arc<StatsHub>,
    /// Workload knobs.
    pub workload: Workload,
    /// Makes inserted keys unique across users.
    pub insert_seq: AtomicU64,
    /// Makes inserted keys unique across runs (and across a benchmark's warm-up and measured
    /// run), so an insert is always a new row, never an upsert of an earlier run's: see
    /// [`run_id`].
    pub run_id: String,
    /// Mixed into every user's random seed, so two phases of one run (a benchmark's warm-up
    /// and its measured run) draw different query streams.
    pub stream: u64,
    /// Each user stays in its namespace (the load test); else every operation picks one at
    /// random (the benchmarks, whose single user must cover all namespaces).
    pub pin_namespace: bool,
    /// (I, N): generator I of N owns the namespaces n with n % N == I, and its pinned users
    /// live in those only; (0, 1) for a lone generator.
    pub generator: (usize, usize),
    /// Users started so far, per scenario (search, bulk): the namespaces are dealt round-robin
    /// within each scenario, so every namespace gets its share of every kind of user.
    pub started: [AtomicUsize; 2],
    /// Who else sees every operation: the Prometheus exporter's client-side series, when the
    /// sidecar runs.
    pub metrics: Option<Arc<dyn Observer>>,
    /// The open model's arrivals (None: the closed model, users pace themselves).
    pub schedule: Option<Arc<super::arrivals::Schedule>>,
    /// Every row written (acknowledged or not) and the outages, checked after the run.
    pub ledger: Arc<super::ledger::Ledger>,
}

/// A fresh identifier for one run's inserted keys: milliseconds since the epoch and the
/// process id, in base 36 (short, sortable, distinct across reruns and concurrent runs).
pub fn run_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    format!("{}{}", base36(ms), base36(std::process::id() as u64))
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii digits")
}

/// Per-user state, set in on_start. Goose needs it `Clone + Send + Sync`.
#[derive(Clone)]
pub(crate) struct UserState {
    index: usize,
    namespace: usize,
    reader: usize,
    rng: SmallRng,
}

/// State of user `index` (Goose's, unique across scenarios), which is the `nth` user of its
/// scenario.
pub(crate) fn new_state(shared: &Shared, index: usize, nth: usize) -> UserState {
    // A stable namespace per user, as an agent's memories live in its own namespace.
    UserState {
        index,
        namespace: owned_namespace(shared, nth),
        reader: index % shared.readers.len().max(1),
        rng: SmallRng::seed_from_u64(
            shared.workload.seed
                ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ shared.stream.wrapping_mul(0xD1B5_4A32_D192_ED03),
        ),
    }
}

/// The `nth` of the namespaces this generator owns (round-robin).
fn owned_namespace(shared: &Shared, nth: usize) -> usize {
    let (index, count) = shared.generator;
    let all = shared.dataset.namespace_count();
    // Checked before the run: every generator owns at least one namespace.
    let owned = all.saturating_sub(index).div_ceil(count.max(1)).max(1);
    (index + count * (nth % owned)) % all.max(1)
}

/// What an operation will send, prepared before the clock starts.
pub enum Request {
    /// kNN search in one namespace.
    Single {
        /// The namespace.
        namespace: String,
        /// The query vector.
        query: Vector,
    },
    /// kNN search in one namespace among the seeded rows a bucket filter keeps.
    Filtered {
        /// The namespace.
        namespace: String,
        /// The query vector.
        query: Vector,
        /// Rows whose `metadata.bucket` is below it match.
        threshold: i32,
    },
    /// kNN search across namespaces.
    Cross {
        /// The namespaces (the user's own first).
        namespaces: Vec<String>,
        /// The query vector.
        query: Vector,
    },
    /// Key lookup.
    Retrieve {
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
    },
    /// Insert (one row) or bulk insert (a batch).
    Write(Vec<NewRow>),
}

fn plan(shared: &Shared, state: &mut UserState, op: Op) -> Request {
    let ds = &shared.dataset;
    let ns = if shared.pin_namespace {
        state.namespace
    } else {
        state.rng.random_range(0..ds.namespace_count())
    };
    match op {
        Op::SingleShardSearch => Request::Single {
            namespace: ds.namespace_name(ns),
            query: Vector::from(ds.query_vector(ns, &mut state.rng)),
        },
        Op::FilteredSearch => Request::Filtered {
            namespace: ds.namespace_name(ns),
            query: Vector::from(ds.query_vector(ns, &mut state.rng)),
            threshold: shared.workload.filter_threshold,
        },
        Op::CrossShardSearch => {
            let n = ds.namespace_count();
            let want = shared.workload.cross_namespaces.min(n);
            // The user's own namespace plus others chosen at random.
            let mut chosen = vec![ns];
            for i in sample(&mut state.rng, n, want) {
                if chosen.len() < want && i != ns {
                    chosen.push(i);
                }
            }
            let query_ns = chosen[state.rng.random_range(0..chosen.len())];
            Request::Cross {
                namespaces: chosen.iter().map(|&i| ds.namespace_name(i)).collect(),
                query: Vector::from(ds.query_vector(query_ns, &mut state.rng)),
            }
        }
        Op::Retrieve => {
            let key = if state.rng.random_bool(shared.workload.retrieve_hit_ratio) {
                ds.key(state.rng.random_range(0..ds.rows_in_namespace(ns)))
            } else {
                format!("missing_{:016x}", state.rng.random::<u64>())
            };
            Request::Retrieve {
                namespace: ds.namespace_name(ns),
                key,
            }
        }
        Op::Insert | Op::BulkInsert => {
            let count = if op == Op::Insert {
                1
            } else {
                shared.workload.bulk_batch
            };
            let rows = (0..count)
                .map(|_| {
                    let seq = shared.insert_seq.fetch_add(1, Ordering::Relaxed);
                    NewRow {
                        namespace: ds.namespace_name(ns),
                        key: format!(
                            "{}{}_{}_{seq}",
                            super::INSERTED_KEY_PREFIX,
                            shared.run_id,
                            state.index
                        ),
                        value: format!("load-test memory {seq} of user {}", state.index),
                        embedding: Vector::from(ds.query_vector(ns, &mut state.rng)),
                    }
                })
                .collect();
            Request::Write(rows)
        }
    }
}

/// Plans, times, executes and records one operation; returns what was sent and, for
/// searches, the rows found (the benchmark suite computes recall from them, off the clock).
/// `intended` is the open model's intended start: response time counts from it.
pub(crate) async fn perform(
    user: &mut GooseUser,
    shared: &Shared,
    op: Op,
    intended: Option<Instant>,
) -> Result<(Request, Vec<Hit>), Box<TransactionError>> {
    if user.get_session_data::<UserState>().is_none() {
        let state = new_state(shared, user.weighted_users_index, user.weighted_users_index);
        user.set_session_data(state);
    }
    let state = user.get_session_data_unchecked_mut::<UserState>();
    let request = plan(shared, state, op);
    let (index, reader) = (state.index, state.reader);
    // --throttle-requests only paces HTTP by itself; queries opt in here.
    if let Some(throttle) = &user.throttle {
        let _ = throttle.send_async(true).await;
    }
    let pool = match op {
        Op::Insert | Op::BulkInsert => &shared.writer,
        _ => &shared.readers[reader],
    };
    let mut hits = Vec::new();
    let waited = Instant::now();
    let schedule_lag = intended.map_or(Duration::ZERO, |t| waited.saturating_duration_since(t));
    let mut outcome = match pool.checkout().await {
        Err(failure) => Outcome::not_served(waited.elapsed(), failure),
        Ok((conn, wait)) => {
            let started = Instant::now();
            let result = execute(&conn, &request, shared).await;
            let service = started.elapsed();
            drop(conn);
            let (result, short, bytes) = match result {
                Ok(done) => {
                    hits = done.hits;
                    (Ok(done.rows), done.short, done.bytes)
                }
                Err(failure) => (Err(failure), false, 0),
            };
            let namespaces = distinct_namespaces(&hits);
            Outcome {
                namespaces,
                schedule_lag: Duration::ZERO,
                pool_wait: wait,
                service: Some(service),
                result,
                short,
                bytes,
            }
        }
    };
    outcome.schedule_lag = schedule_lag;
    let failure = outcome.result.as_ref().err().map(Failure::label);
    if let Request::Write(rows) = &request {
        shared.ledger.wrote(rows, failure.is_none());
    }
    shared.ledger.outcome(op, failure);
    if let Some(metrics) = &shared.metrics {
        metrics.observe(&request, reader, op, &outcome, &hits);
    }
    record(user, &shared.hub, index, op, &outcome).await?;
    Ok((request, hits))
}

/// How many distinct namespaces a search's rows came from.
fn distinct_namespaces(hits: &[Hit]) -> u32 {
    let mut seen: Vec<&str> = hits.iter().map(|h| h.namespace.as_str()).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len() as u32
}

/// Records an outcome in our statistics and in Goose; a failure becomes the transaction's
/// error (labelled by its class), so Goose counts the transaction as failed too.
pub(crate) async fn record(
    user: &mut GooseUser,
    hub: &StatsHub,
    index: usize,
    op: Op,
    outcome: &Outcome,
) -> TransactionResult {
    hub.record(index, op, outcome);
    let failure = outcome.result.as_ref().err().map(Failure::label);
    // Goose's figures are response times like ours: pool wait included, failures too.
    user.record_custom_request_duration(
        METHOD,
        op.name(),
        outcome.response(),
        failure.is_none(),
        None,
        failure.as_deref(),
    )
    .await?;
    match failure {
        None => Ok(()),
        Some(label) => Err(Box::new(TransactionError::Custom(label))),
    }
}

/// What a request got back.
struct Done {
    rows: u64,
    short: bool,
    bytes: u64,
    hits: Vec<Hit>,
}

/// Runs the request; returns rows, whether a search came back short of k, bytes and hits.
async fn execute(
    conn: &crate::db::pool::Conn,
    request: &Request,
    shared: &Shared,
) -> Result<Done, Failure> {
    let w = &shared.workload;
    let (c, s) = (&conn.client, &conn.stmts);
    let searched = |(hits, bytes): (Vec<Hit>, u64), k: u32| Done {
        rows: hits.len() as u64,
        short: hits.len() < k as usize,
        bytes,
        hits,
    };
    let other = |rows: u64, bytes: u64| Done {
        rows,
        short: false,
        bytes,
        hits: Vec::new(),
    };
    let result = match request {
        Request::Single { namespace, query } => {
            ops::search_single(c, s, namespace, query, w.k as i64, w.min_similarity)
                .await
                .map(|found| searched(found, w.k))
        }
        Request::Filtered {
            namespace,
            query,
            threshold,
        } => ops::search_filtered(c, s, namespace, query, w.k as i64, *threshold)
            .await
            .map(|found| searched(found, w.k)),
        Request::Cross { namespaces, query } => {
            ops::search_cross(c, s, namespaces, query, w.cross_k as i64)
                .await
                .map(|found| searched(found, w.cross_k))
        }
        Request::Retrieve { namespace, key } => ops::retrieve(c, s, namespace, key)
            .await
            .map(|(rows, bytes)| other(rows, bytes)),
        Request::Write(rows) if rows.len() == 1 => {
            ops::insert(c, s, &rows[0]).await.map(|n| other(n, 0))
        }
        Request::Write(rows) => ops::bulk_insert(c, s, rows).await.map(|n| other(n, 0)),
    };
    result.map_err(|e| Failure::from_pg(&e))
}
