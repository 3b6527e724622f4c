//! Our side of `calibrate`: Goose users with no think time, each transaction checking a
//! connection out of the load test's pool (one implementation, [`crate::db::pool`]), running
//! the calibration statement (prepared once per connection, as pgbench `-M prepared` does),
//! and recording it in a [`StatsHub`] and in Goose, exactly as the load test's users do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Statement};

use super::{CalibrateError, Lagged, Params, SideResult};
use crate::db::pool::{build_with, Prepare, Session};
use crate::db::target::Target;
use crate::engine::arrivals::{Plan, Schedule, Spacing};
use crate::engine::attack;
use crate::engine::overhead::self_cpu;
use crate::engine::stats::{Outcome, StatsHub};
use crate::workload::failure::Failure;
use crate::workload::ops::{Op, StatementMode};

/// The calibration statement, prepared once per pooled connection (as pgbench `-M prepared`
/// does); in the unnamed mode (pgbench `-M extended`) its text and parameter types, sent
/// unnamed with every query.
pub struct Calibration(pub String, pub StatementMode);

/// The statement a connection runs.
pub struct CalStmt {
    prepared: Statement,
    unnamed: Option<(String, Vec<Type>)>,
}

impl CalStmt {
    async fn query(
        &self,
        c: &Client,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        match &self.unnamed {
            None => c.query(&self.prepared, params).await,
            Some((sql, types)) => {
                let typed: Vec<(&(dyn ToSql + Sync), Type)> =
                    params.iter().copied().zip(types.iter().cloned()).collect();
                c.query_typed(sql, &typed).await
            }
        }
    }
}

impl Prepare for Calibration {
    type Prepared = CalStmt;

    async fn prepare(&self, client: &Client) -> Result<CalStmt, tokio_postgres::Error> {
        // Prepared once either way: the unnamed mode learns its parameter types from it,
        // outside the measured run.
        let prepared = client.prepare(&self.0).await?;
        let unnamed = (self.1 == StatementMode::Unnamed)
            .then(|| (self.0.clone(), prepared.params().to_vec()));
        Ok(CalStmt { prepared, unnamed })
    }
}

/// The pool every user shares.
pub type Pool = crate::db::pool::Pool<Calibration>;

/// Builds a pool of `size` connections and opens them all now, so neither side pays for
/// connecting inside its measured run (pgbench connects before its clock starts too).
pub async fn pool(
    target: &Target,
    session: &Session,
    sql: &str,
    size: u32,
) -> Result<Pool, CalibrateError> {
    let connect = |source| CalibrateError::Connect {
        what: "harness pool",
        target: target.display(),
        source,
    };
    let calibration = Calibration(sql.to_string(), session.statement_mode);
    let pool = build_with(target, session, calibration, size, Duration::from_secs(30))
        .await
        .map_err(connect)?;
    pool.fill().await.map_err(connect)?;
    Ok(pool)
}

struct Shared {
    pool: Pool,
    hub: Arc<StatsHub>,
    op: Op,
    params: Params,
    seed: u64,
    // `--rate`: Poisson arrivals, as pgbench -R schedules them.
    schedule: Option<Schedule>,
}

#[derive(Clone)]
struct UserRng(SmallRng);

/// One measured run of our side.
pub struct Side<'a> {
    /// The users' pool.
    pub pool: &'a Pool,
    /// The operation.
    pub op: Op,
    /// How parameters are drawn.
    pub params: Params,
    /// Goose users (no think time; with a rate, the most transactions in flight).
    pub clients: usize,
    /// `--rate` and `--latency-limit`.
    pub rate: Option<(f64, Duration)>,
}

/// Runs `clients` Goose users for `duration` (all started at once, no think time, or serving
/// a schedule with `rate`) and returns what they measured; `cpu` is this whole process's CPU
/// time over the Goose run.
pub async fn measure(
    side: &Side<'_>,
    duration: Duration,
    seed: u64,
) -> Result<SideResult, CalibrateError> {
    let (op, clients) = (side.op, side.clients);
    let hub = StatsHub::new(clients);
    let schedule = side.rate.map(|(rate, limit)| {
        let plan = Plan::constant(rate, duration, Spacing::Poisson, limit);
        Schedule::new(plan, seed, clients)
    });
    let shared = Arc::new(Shared {
        pool: side.pool.clone(),
        hub: hub.clone(),
        op,
        params: side.params,
        seed,
        schedule,
    });
    let cpu_before = self_cpu();
    goose_run(&shared, clients, duration).await?;
    let cpu = self_cpu().saturating_sub(cpu_before);
    let snapshot = hub.snapshot();
    let stats = snapshot.op(op);
    Ok(SideResult {
        ok: stats.ok,
        failed: stats.failed,
        latency: stats.latency.clone(),
        span: hub.active_span(),
        cpu,
        reported_tps: None,
        mean_rows: Some(stats.rows as f64 / stats.ok.max(1) as f64),
        schedule: shared.schedule.as_ref().map(|s| {
            let r = s.report();
            Lagged {
                late: r.late,
                skipped: r.dropped,
                max_lag: Duration::from_secs_f64(r.max_lag_s),
            }
        }),
    })
}

async fn goose_run(
    shared: &Arc<Shared>,
    clients: usize,
    duration: Duration,
) -> Result<(), CalibrateError> {
    let mut config = attack::config("pg://calibrate", clients);
    // Goose's --run-time counts from the end of the ramp-up: all users start at once, so
    // the measured run is as long as pgbench's -T.
    config.run_time = Some(duration.as_secs().max(1).to_string());
    let s = shared.clone();
    let function: TransactionFunction = Arc::new(move |user| {
        let s = s.clone();
        Box::pin(async move { transaction(user, &s).await })
    });
    attack::run(config, "Calibrate", shared.op.name(), function)
        .await
        .map_err(CalibrateError::Goose)
}

/// One timed execution, recorded as the load test records its operations.
async fn transaction(user: &mut GooseUser, shared: &Shared) -> TransactionResult {
    if user.get_session_data::<UserRng>().is_none() {
        let seed = shared.seed ^ (user.weighted_users_index as u64 + 1).wrapping_mul(0x9E37_79B9);
        user.set_session_data(UserRng(SmallRng::seed_from_u64(seed)));
    }
    let intended = match &shared.schedule {
        Some(schedule) => {
            // The first user to start starts the clock.
            schedule.start_at(Instant::now());
            match schedule.next_arrival(Duration::from_millis(100)).await {
                Some(at) => Some(at),
                // The schedule is over: Goose ends the run between transactions.
                None => return Ok(()),
            }
        }
        None => None,
    };
    let rng = &mut user.get_session_data_unchecked_mut::<UserRng>().0;
    let values = shared.params.draw(rng);
    let index = user.weighted_users_index;
    let waited = Instant::now();
    let schedule_lag = intended.map_or(Duration::ZERO, |t| waited.saturating_duration_since(t));
    let mut outcome = match shared.pool.checkout().await {
        Err(failure) => Outcome::not_served(waited.elapsed(), failure),
        Ok((conn, wait)) => {
            let started = Instant::now();
            let result = match &values {
                Drawn::Texts([a, b]) => {
                    let params: [&(dyn ToSql + Sync); 2] = [a, b];
                    conn.stmts.query(&conn.client, &params).await
                }
                Drawn::Ints([a, b, c]) => {
                    let params: [&(dyn ToSql + Sync); 3] = [a, b, c];
                    conn.stmts.query(&conn.client, &params).await
                }
            };
            let service = started.elapsed();
            Outcome {
                namespaces: 0,
                schedule_lag: Duration::ZERO,
                pool_wait: wait,
                service: Some(service),
                // Not measured: calibrate compares CPU per operation with pgbench.
                bytes: 0,
                result: result
                    .map(|rows| rows.len() as u64)
                    .map_err(|e| Failure::from_pg(&e)),
                short: false,
            }
        }
    };
    outcome.schedule_lag = schedule_lag;
    crate::engine::operation::record(user, &shared.hub, index, shared.op, &outcome).await
}

/// Parameter values for one execution, in the types the prepared statement expects.
pub enum Drawn {
    /// Text parameters (pgbench sends `:var` as text; `$1::text` is text on both sides).
    Texts([String; 2]),
    /// int4 parameters (`id = $1`).
    Ints([i32; 3]),
}

impl Params {
    /// Draws one execution's parameters, uniformly as pgbench's `random(lo, hi)` does.
    pub fn draw<R: Rng>(&self, rng: &mut R) -> Drawn {
        match *self {
            Params::Retrieve { namespaces, rows } => Drawn::Texts([
                rng.random_range(0..namespaces).to_string(),
                rng.random_range(0..rows).to_string(),
            ]),
            Params::Search { queries } => {
                let q = rng.random_range(1..=queries) as i32;
                Drawn::Ints([q, q, q])
            }
        }
    }
}
