//! What the load test wrote, and whether it is still there: every insert and bulk insert the
//! server acknowledged is recorded (namespace and key), and so is every write that failed or
//! timed out (its fate unknown: `indeterminate`). After the run the current primary is asked
//! for each of them. An acknowledged row that is missing was lost — whatever the latency
//! objectives say, the run fails. Beside it, the outages: each stretch of consecutive failed
//! writes (or reads), from its first failure to the first success after it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_postgres::types::Type;

use crate::db::target::Target;
use crate::workload::ops::{NewRow, Op};

/// Missing rows named in the report, at most.
const EXAMPLES: usize = 10;
/// Keys asked per query.
const CHUNK: usize = 5_000;
/// How long verification waits for a primary (after a failover at the very end).
const VERIFY_WAIT: Duration = Duration::from_secs(60);

/// One row: (namespace, key).
type Row = (Box<str>, Box<str>);

/// The rows written, and the outages seen.
pub struct Ledger {
    started: Instant,
    acknowledged: Mutex<Vec<Row>>,
    indeterminate: Mutex<Vec<Row>>,
    outages: [Mutex<Streaks>; 2],
}

/// Writes or reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Inserts and bulk inserts.
    Writes,
    /// Searches and retrieves.
    Reads,
}

/// A stretch of failures of one kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Outage {
    /// Writes or reads.
    pub kind: Kind,
    /// First failure, seconds from the start of the load.
    pub first_failure_s: f64,
    /// Last failure.
    pub last_failure_s: f64,
    /// The first success after it (None: none before the end).
    pub recovered_s: Option<f64>,
    /// Failures by class.
    pub failures: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Streaks {
    open: Option<Outage>,
    closed: Vec<Outage>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new(Instant::now())
    }
}

impl Ledger {
    /// An empty ledger; times count from `started`.
    pub fn new(started: Instant) -> Ledger {
        Ledger {
            started,
            acknowledged: Mutex::default(),
            indeterminate: Mutex::default(),
            outages: Default::default(),
        }
    }

    /// Records a write's rows: acknowledged when `ok`, else of unknown fate.
    pub fn wrote(&self, rows: &[NewRow], ok: bool) {
        let list = if ok {
            &self.acknowledged
        } else {
            &self.indeterminate
        };
        let mut list = list.lock().unwrap_or_else(|p| p.into_inner());
        list.extend(
            rows.iter()
                .map(|r| (Box::from(r.namespace.as_str()), Box::from(r.key.as_str()))),
        );
    }

    /// Records an operation's success or failure (its class) for the outages.
    pub fn outcome(&self, op: Op, failure: Option<String>) {
        let kind = match op {
            Op::Insert | Op::BulkInsert => Kind::Writes,
            _ => Kind::Reads,
        };
        let now = self.started.elapsed().as_secs_f64();
        let mut s = self.outages[kind as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match failure {
            Some(class) => {
                let open = s.open.get_or_insert_with(|| Outage {
                    kind,
                    first_failure_s: now,
                    last_failure_s: now,
                    recovered_s: None,
                    failures: BTreeMap::new(),
                });
                open.last_failure_s = now;
                *open.failures.entry(class).or_default() += 1;
            }
            None => {
                if let Some(mut done) = s.open.take() {
                    done.recovered_s = Some(now);
                    s.closed.push(done);
                }
            }
        }
    }

    /// Every outage, in time order (an open one last).
    pub fn outages(&self) -> Vec<Outage> {
        let mut all = Vec::new();
        for s in &self.outages {
            let s = s.lock().unwrap_or_else(|p| p.into_inner());
            all.extend(s.closed.iter().cloned());
            all.extend(s.open.iter().cloned());
        }
        all.sort_by(|a, b| a.first_failure_s.total_cmp(&b.first_failure_s));
        all
    }

    /// Asks `primary` for every row written; retries for a while if no primary answers (a
    /// failover at the very end).
    pub async fn verify(&self, primary: &Target) -> WriteCheck {
        let acknowledged = self
            .acknowledged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let indeterminate = self
            .indeterminate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut check = WriteCheck {
            acknowledged: acknowledged.len() as u64,
            indeterminate: indeterminate.len() as u64,
            ..WriteCheck::default()
        };
        if acknowledged.is_empty() && indeterminate.is_empty() {
            check.checked = true;
            return check;
        }
        let deadline = Instant::now() + VERIFY_WAIT;
        let result = loop {
            match present(primary, &acknowledged, &indeterminate).await {
                Ok(found) => break Ok(found),
                // No primary yet (a failover at the very end): ask again.
                Err((e, true)) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err((e, _)) => break Err(e),
            }
        };
        match result {
            Ok((acked_present, missing, unsure_present)) => {
                check.checked = true;
                check.verified = acked_present;
                check.missing = missing.len() as u64;
                check.missing_examples = missing
                    .into_iter()
                    .take(EXAMPLES)
                    .map(|(ns, key)| format!("{ns}/{key}"))
                    .collect();
                check.indeterminate_present = unsure_present;
                check.indeterminate_absent = check.indeterminate - unsure_present;
            }
            Err(e) => check.error = Some(e),
        }
        check
    }
}

/// (acknowledged rows found, acknowledged rows missing, indeterminate rows found); an error
/// says whether asking again may help (no connection, or the server going away).
async fn present(
    primary: &Target,
    acknowledged: &[Row],
    indeterminate: &[Row],
) -> Result<(u64, Vec<Row>, u64), (String, bool)> {
    let client = primary.connect().await.map_err(|e| (e.to_string(), true))?;
    let describe = |e: tokio_postgres::Error| {
        let transient = matches!(
            crate::workload::failure::Failure::from_pg(&e),
            crate::workload::failure::Failure::ConnectionLost
        ) || e.code().is_some_and(|c| c.code().starts_with("08"));
        (crate::db::target::describe_pg_error(&e), transient)
    };
    let mut missing = Vec::new();
    let mut found = [0u64; 2];
    for (i, rows) in [acknowledged, indeterminate].into_iter().enumerate() {
        let mut by_namespace: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (ns, key) in rows {
            by_namespace.entry(ns).or_default().push(key);
        }
        for (ns, keys) in by_namespace {
            for chunk in keys.chunks(CHUNK) {
                // Unnamed (no prepared statement): it works through a transaction pooler.
                let there: std::collections::HashSet<String> = client
                    .query_typed(
                        "SELECT key FROM memory_entries WHERE namespace = $1 AND key = ANY($2)",
                        &[(&ns, Type::TEXT), (&chunk, Type::TEXT_ARRAY)],
                    )
                    .await
                    .map_err(describe)?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                found[i] += there.len() as u64;
                if i == 0 {
                    missing.extend(
                        chunk
                            .iter()
                            .filter(|k| !there.contains(**k))
                            .map(|k| (Box::from(ns), Box::from(*k))),
                    );
                }
            }
        }
    }
    Ok((found[0], missing, found[1]))
}

/// Whether every acknowledged write survived.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WriteCheck {
    /// Rows the server acknowledged.
    pub acknowledged: u64,
    /// Of those, found on the primary after the run.
    pub verified: u64,
    /// Of those, not found: lost.
    pub missing: u64,
    /// Some of the missing ones, `namespace/key`.
    pub missing_examples: Vec<String>,
    /// Rows of writes that failed or timed out: committed or not, nobody knows.
    pub indeterminate: u64,
    /// Of those, found.
    pub indeterminate_present: u64,
    /// Of those, not found (never a loss: they were never acknowledged).
    pub indeterminate_absent: u64,
    /// The check ran (false: no primary answered, see `error`).
    pub checked: bool,
    /// Why it could not run.
    pub error: Option<String>,
}

impl WriteCheck {
    /// Adds another generator's check.
    pub fn add(&mut self, other: &WriteCheck) {
        self.acknowledged += other.acknowledged;
        self.verified += other.verified;
        self.missing += other.missing;
        self.missing_examples
            .extend(other.missing_examples.iter().cloned());
        self.missing_examples.truncate(EXAMPLES);
        self.indeterminate += other.indeterminate;
        self.indeterminate_present += other.indeterminate_present;
        self.indeterminate_absent += other.indeterminate_absent;
        self.checked &= other.checked;
        if self.error.is_none() {
            self.error.clone_from(&other.error);
        }
    }

    /// The console line.
    pub fn line(&self) -> String {
        let mut line = format!(
            "acknowledged writes: {} rows, {} verified on the primary, {} missing",
            self.acknowledged, self.verified, self.missing
        );
        if !self.missing_examples.is_empty() {
            line.push_str(&format!(" (e.g. {})", self.missing_examples.join(", ")));
        }
        if self.indeterminate > 0 {
            line.push_str(&format!(
                "; {} rows of failed writes indeterminate: {} present, {} absent",
                self.indeterminate, self.indeterminate_present, self.indeterminate_absent
            ));
        }
        if let Some(e) = &self.error {
            line.push_str(&format!("; NOT VERIFIED: {e}"));
        }
        line
    }
}
