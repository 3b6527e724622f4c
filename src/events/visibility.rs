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

/// Probes until `stop`; returns every probe's result.
pub async fn run(p: Probing, stop: CancellationToken) -> Vec<Probe> {
    let mut probes = Vec::new();
    let mut writer: Option<Client> = None;
    let mut readers: Vec<Option<Client>> = p.replicas.iter().map(|_| None).collect();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x5eed);
    let run = crate::engine::operation::run_id();
    for seq in 0u64.. {
        let next = tokio::time::Instant::now() + p.every;
        let id = format!("{run}_{seq}");
        let one = probe(&p, &mut writer, &mut readers, &mut rng, &id);
        tokio::select! {
            found = one => probes.extend(found),
            _ = stop.cancelled() => break,
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop.cancelled() => break,
        }
    }
    probes
}

/// One write, then each replica in turn.
async fn probe(
    p: &Probing,
    writer: &mut Option<Client>,
    readers: &mut [Option<Client>],
    rng: &mut rand::rngs::SmallRng,
    id: &str,
) -> Vec<Probe> {
    let namespace = p.dataset.namespace_name(0);
    let key = format!("{}vis_{id}", crate::engine::INSERTED_KEY_PREFIX);
    let vector = Vector::from(p.dataset.query_vector(0, rng));
    let insert = format!(
        "INSERT INTO memory_entries (namespace, key, value, embedding) VALUES ($1, $2, $3, {})",
        p.embedding.vector_type.of("$4::vector")
    );
    let Some(client) = connected(writer, &p.primary).await else {
        return Vec::new();
    };
    let value = "visibility probe";
    if let Err(e) = client
        .execute(&insert, &[&namespace, &key, &value, &vector])
        .await
    {
        log::warn!("visibility probe: the write failed: {e}");
        *writer = None;
        return Vec::new();
    }
    let written = Instant::now();
    let written_s = written.duration_since(p.origin).as_secs_f64();
    let search = format!(
        "SELECT key FROM memory_entries WHERE namespace = $1 ORDER BY {} LIMIT 10",
        p.embedding.distance_to("$2::vector")
    );
    let mut found = Vec::new();
    for (target, reader) in p.replicas.iter().zip(readers.iter_mut()) {
        let lookup = Check::Lookup {
            namespace: &namespace,
            key: &key,
        };
        let (visible, missed) = poll(reader, target, written, &lookup).await;
        let searched = match visible {
            Some(_) => {
                let check = Check::Search {
                    sql: &search,
                    namespace: &namespace,
                    vector: &vector,
                    key: &key,
                };
                poll(reader, target, written, &check).await.0
            }
            None => None,
        };
        found.push(Probe {
            replica: format!("{}:{}", target.host(), target.port()),
            written_s,
            visible_ms: visible,
            search_ms: searched,
            missed,
        });
    }
    found
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
