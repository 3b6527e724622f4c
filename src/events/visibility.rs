//! Read-your-writes on replicas: every `--visibility-interval` a probe writes one memory on the
//! primary and, once the primary acknowledged it, polls each replica until a key lookup finds
//! the row (its visibility delay), then until a vector search with the row's own embedding
//! returns it. A first lookup that misses the row is a read that did not see a write made
//! before it. A replica that is down is reconnected to until the row shows (at most
//! [`GIVE_UP`]), so a stopped replica shows as a spike of delays.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use pgvector::Vector;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::db::target::Target;
use crate::engine::stats::histogram;
use crate::workload::dataset::Dataset;
use crate::workload::Embedding;

/// Longest a probe waits for one replica.
pub const GIVE_UP: Duration = Duration::from_secs(60);

/// One probe's result on one replica.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Probe {
    /// The replica (`host:port`).
    pub replica: String,
    /// When the primary acknowledged the write, seconds from the start of the load.
    pub written_s: f64,
    /// From the acknowledgement until a lookup on the replica found the row, ms (None: not
    /// within [`GIVE_UP`]).
    pub visible_ms: Option<f64>,
    /// Until a vector search there returned it, ms.
    pub search_ms: Option<f64>,
    /// The first lookup, right after the acknowledgement, missed the row.
    pub missed: bool,
}

/// What the probe needs.
pub struct Probing {
    /// Where rows are written.
    pub primary: Target,
    /// Where they are looked for.
    pub replicas: Vec<Target>,
    /// Namespace and vectors of the probe rows.
    pub dataset: Arc<Dataset>,
    /// The column's type and distance.
    pub embedding: Embedding,
    /// The start of the load.
    pub origin: Instant,
    /// Between two probes.
    pub every: Duration,
}

/// A row written on the primary, waiting to be seen on a replica.
struct Written {
    key: String,
    vector: Vector,
    at: Instant,
    at_s: f64,
}

/// Probes until `stop`; returns every probe's result. Writes go on at their pace whatever the
/// replicas do; each replica has a watcher that takes the rows in the order written (replay
/// is in commit order, so an older row is never seen after a newer one).
pub async fn run(p: Probing, stop: CancellationToken) -> Vec<Probe> {
    let p = Arc::new(p);
    let mut senders = Vec::new();
    let mut watchers = Vec::new();
    for target in p.replicas.clone() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        senders.push(tx);
        watchers.push(tokio::spawn(watch(p.clone(), target, rx, stop.clone())));
    }
    write(&p, &senders, &stop).await;
    drop(senders);
    let mut probes = Vec::new();
    for w in watchers {
        probes.extend(w.await.unwrap_or_default());
    }
    probes.sort_by(|a, b| a.written_s.total_cmp(&b.written_s));
    probes
}

/// Writes a probe row every `p.every` until `stop`, handing each to every watcher.
async fn write(
    p: &Probing,
    watchers: &[tokio::sync::mpsc::UnboundedSender<Arc<Written>>],
    stop: &CancellationToken,
) {
    let mut writer: Option<Client> = None;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x5eed);
    let run = crate::engine::operation::run_id();
    let namespace = p.dataset.namespace_name(0);
    let insert = format!(
        "INSERT INTO memory_entries (namespace, key, value, embedding) VALUES ($1, $2, $3, {})",
        p.embedding.vector_type.of("$4::vector")
    );
    for seq in 0u64.. {
        let next = tokio::time::Instant::now() + p.every;
        let key = format!("{}vis_{run}_{seq}", crate::engine::INSERTED_KEY_PREFIX);
        let vector = Vector::from(p.dataset.query_vector(0, &mut rng));
        if let Some(client) = connected(&mut writer, &p.primary).await {
            let value = "visibility probe";
            match client
                .execute(&insert, &[&namespace, &key, &value, &vector])
                .await
            {
                Ok(_) => {
                    let at = Instant::now();
                    let written = Arc::new(Written {
                        key,
                        vector,
                        at,
                        at_s: at.duration_since(p.origin).as_secs_f64(),
                    });
                    for w in watchers {
                        let _ = w.send(written.clone());
                    }
                }
                Err(e) => {
                    log::warn!("visibility probe: the write failed: {e}");
                    writer = None;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One replica's watcher: each written row in turn, until it is visible to a lookup and to a
/// search; rows still waiting when `stop` comes are not recorded.
async fn watch(
    p: Arc<Probing>,
    target: Target,
    mut rows: tokio::sync::mpsc::UnboundedReceiver<Arc<Written>>,
    stop: CancellationToken,
) -> Vec<Probe> {
    let namespace = p.dataset.namespace_name(0);
    let search = format!(
        "SELECT key FROM memory_entries WHERE namespace = $1 ORDER BY {} LIMIT 10",
        p.embedding.distance_to("$2::vector")
    );
    let replica = format!("{}:{}", target.host(), target.port());
    let mut reader: Option<Client> = None;
    let mut probes = Vec::new();
    loop {
        let row = tokio::select! {
            row = rows.recv() => row,
            _ = stop.cancelled() => None,
        };
        let Some(row) = row else {
            return probes;
        };
        let lookup = Check::Lookup {
            namespace: &namespace,
            key: &row.key,
        };
        let seen = async {
            let (visible, missed) = poll(&mut reader, &target, row.at, &lookup).await;
            let searched = match visible {
                Some(_) => {
                    let check = Check::Search {
                        sql: &search,
                        namespace: &namespace,
                        vector: &row.vector,
                        key: &row.key,
                    };
                    poll(&mut reader, &target, row.at, &check).await.0
                }
                None => None,
            };
            (visible, searched, missed)
        };
        let (visible_ms, search_ms, missed) = tokio::select! {
            seen = seen => seen,
            _ = stop.cancelled() => return probes,
        };
        probes.push(Probe {
            replica: replica.clone(),
            written_s: row.at_s,
            visible_ms,
            search_ms,
            missed,
        });
    }
}

/// What a replica is asked about the probe row.
enum Check<'a> {
    /// Is the key there?
    Lookup { namespace: &'a str, key: &'a str },
    /// Does a search with its vector return it?
    Search {
        sql: &'a str,
        namespace: &'a str,
        vector: &'a Vector,
        key: &'a str,
    },
}

impl Check<'_> {
    async fn ask(&self, c: &Client) -> Result<bool, tokio_postgres::Error> {
        match self {
            Check::Lookup { namespace, key } => Ok(c
                .query_opt(
                    "SELECT 1 FROM memory_entries WHERE namespace = $1 AND key = $2",
                    &[namespace, key],
                )
                .await?
                .is_some()),
            Check::Search {
                sql,
                namespace,
                vector,
                key,
            } => {
                let rows = c.query(*sql, &[namespace, *vector]).await?;
                Ok(rows.iter().any(|r| r.get::<_, &str>(0) == *key))
            }
        }
    }
}

/// A live connection to `target` in `slot`, connecting when there is none.
async fn connected<'a>(slot: &'a mut Option<Client>, target: &Target) -> Option<&'a Client> {
    if slot.as_ref().is_some_and(Client::is_closed) {
        *slot = None;
    }
    if slot.is_none() {
        *slot = target.connect().await.ok();
    }
    slot.as_ref()
}

/// Asks `check` on `target` until it says yes: (ms since `since`, whether the first answer
/// was no). Reconnects when the replica is away; gives up after [`GIVE_UP`].
async fn poll(
    slot: &mut Option<Client>,
    target: &Target,
    since: Instant,
    check: &Check<'_>,
) -> (Option<f64>, bool) {
    let mut first_missed = None;
    loop {
        if since.elapsed() > GIVE_UP {
            return (None, first_missed.unwrap_or(true));
        }
        let answer = match connected(slot, target).await {
            Some(c) => check.ask(c).await.ok(),
            None => None,
        };
        match answer {
            Some(true) => {
                let ms = since.elapsed().as_secs_f64() * 1000.0;
                return (Some(ms), first_missed.unwrap_or(false));
            }
            Some(false) => {
                first_missed.get_or_insert(true);
            }
            None => {
                // Away (stopped, restarting): a read that could not see the row.
                first_missed.get_or_insert(true);
                *slot = None;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        // Replay is usually a matter of milliseconds: look again soon, then less often.
        let pause =
            (since.elapsed() / 10).clamp(Duration::from_micros(200), Duration::from_millis(20));
        tokio::time::sleep(pause).await;
    }
}

/// One replica's visibility figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReplicaVisibility {
    /// `host:port`.
    pub replica: String,
    /// Probes.
    pub probes: u64,
    /// Share of probes whose first read, right after the write was acknowledged, missed it.
    pub missed_share: f64,
    /// Visibility delay percentiles, ms.
    pub p50_ms: f64,
    /// 95th.
    pub p95_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Probes never visible within the limit.
    pub not_visible: u64,
    /// Until a vector search returned the row, p95, ms.
    pub search_p95_ms: f64,
}

/// Delays in ms as a µs histogram.
pub fn delays<'a>(values: impl Iterator<Item = &'a f64>) -> Histogram<u64> {
    let mut h = histogram();
    for v in values {
        h.saturating_record((v * 1000.0).max(1.0) as u64);
    }
    h
}

/// A µs histogram's percentile in ms (0 when empty).
pub fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_percentile(q) as f64 / 1000.0
    }
}

/// Per replica, in the order first seen.
pub fn summarize(probes: &[Probe]) -> Vec<ReplicaVisibility> {
    let mut replicas: Vec<&str> = Vec::new();
    for p in probes {
        if !replicas.contains(&p.replica.as_str()) {
            replicas.push(&p.replica);
        }
    }
    replicas
        .into_iter()
        .map(|name| {
            let mine: Vec<&Probe> = probes.iter().filter(|p| p.replica == name).collect();
            let visible = delays(mine.iter().filter_map(|p| p.visible_ms.as_ref()));
            let search = delays(mine.iter().filter_map(|p| p.search_ms.as_ref()));
            let n = mine.len() as u64;
            ReplicaVisibility {
                replica: name.to_string(),
                probes: n,
                missed_share: mine.iter().filter(|p| p.missed).count() as f64 / n.max(1) as f64,
                p50_ms: ms(&visible, 50.0),
                p95_ms: ms(&visible, 95.0),
                max_ms: visible.max() as f64 / 1000.0,
                not_visible: mine.iter().filter(|p| p.visible_ms.is_none()).count() as u64,
                search_p95_ms: ms(&search, 95.0),
            }
        })
        .collect()
}
