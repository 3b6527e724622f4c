//! The load test's Goose scenarios: `VectorSearchUser` (weights 10/3/2/1 over
//! single-namespace search, cross-namespace search, retrieve, insert, and the filtered search
//! when `--filtered-weight` gives it a weight; by default waits
//! 100–500 ms, `--think-time`) and `BulkInsertUser` (a small background share of the users;
//! waits 5–10 s, `--bulk-think-time`), each transaction one `perform` of the engine. In the
//! open model the search users wait for arrivals instead: each transaction takes the next
//! one from the schedule, sleeps until it is due and runs it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use goose::prelude::*;

use crate::engine::arrivals::Pacing;
use crate::engine::operation::{new_state, perform, Shared};
use crate::workload::ops::Op;

/// The scenarios, as indexes into [`Shared::started`].
const SEARCH: usize = 0;
const BULK: usize = 1;

/// A transaction running `op`, or with `op` None the on_start of a user of `scenario`.
fn transaction(shared: &Arc<Shared>, scenario: usize, op: Option<Op>) -> Transaction {
    let shared = shared.clone();
    let function: TransactionFunction = Arc::new(move |user| {
        let shared = shared.clone();
        Box::pin(async move {
            match op {
                None => start_user(user, &shared, scenario),
                Some(op) => run(user, &shared, op).await,
            }
        })
    });
    let name = op.map(Op::name).unwrap_or("on_start");
    let t = Transaction::new(function).set_name(name);
    if op.is_none() {
        t.set_on_start()
    } else {
        t
    }
}

fn stop_transaction(shared: &Arc<Shared>) -> Transaction {
    let shared = shared.clone();
    let function: TransactionFunction = Arc::new(move |_user| {
        let shared = shared.clone();
        Box::pin(async move {
            shared.hub.user_stopped();
            Ok(())
        })
    });
    Transaction::new(function).set_name("on_stop").set_on_stop()
}

/// Builds both scenarios; `BulkInsertUser` is left out when its share is zero.
pub fn scenarios(shared: &Arc<Shared>, pacing: &Pacing) -> Result<Vec<Scenario>, GooseError> {
    let share = shared.workload.bulk_user_share;
    let (search_weight, bulk_weight) = if share <= 0.0 {
        (1, 0)
    } else {
        // Integer weights whose ratio is closest to the requested share (0.1 -> 9:1).
        let search = ((1.0 - share) / share).round().max(1.0) as usize;
        (search, 1)
    };
    let mut search = scenario!("VectorSearchUser").set_weight(search_weight)?;
    let (min, max) = pacing.think_time;
    // Open model: the schedule paces the users. Closed with think time 0: back to back.
    if pacing.open.is_none() && !max.is_zero() {
        search = search.set_wait_time(min, max)?;
    }
    search = search
        .register_transaction(transaction(shared, SEARCH, None))
        .register_transaction(stop_transaction(shared));
    let mix = [
        (Op::SingleShardSearch, 10),
        (Op::CrossShardSearch, 3),
        (Op::FilteredSearch, shared.workload.filtered_weight),
        (Op::Retrieve, 2),
        (Op::Insert, 1),
    ];
    // Weight 0 (the filtered search by default): not registered, so not in any report.
    for (op, weight) in mix.into_iter().filter(|(_, weight)| *weight > 0) {
        search =
            search.register_transaction(transaction(shared, SEARCH, Some(op)).set_weight(weight)?);
    }
    let mut all = vec![search];
    if bulk_weight > 0 {
        all.push(
            scenario!("BulkInsertUser")
                .set_weight(bulk_weight)?
                .set_wait_time(pacing.bulk_think_time.0, pacing.bulk_think_time.1)?
                .register_transaction(transaction(shared, BULK, None))
                .register_transaction(stop_transaction(shared))
                .register_transaction(transaction(shared, BULK, Some(Op::BulkInsert))),
        );
    }
    Ok(all)
}

fn start_user(user: &mut GooseUser, shared: &Shared, scenario: usize) -> TransactionResult {
    let nth = shared.started[scenario].fetch_add(1, Ordering::Relaxed);
    let state = new_state(shared, user.weighted_users_index, nth);
    user.set_session_data(state);
    shared.hub.user_started();
    if let Some(schedule) = &shared.schedule {
        schedule.user_started();
    }
    Ok(())
}

async fn run(user: &mut GooseUser, shared: &Shared, op: Op) -> TransactionResult {
    // Only search users serve arrivals: the bulk inserters keep their own pacing.
    let intended = match (&shared.schedule, op) {
        (Some(schedule), op) if op != Op::BulkInsert => {
            // Schedule over: return, so that Goose sees the end of its run (it checks between
            // transactions); nothing is recorded.
            match schedule.next_arrival(Duration::from_millis(100)).await {
                Some(intended) => Some(intended),
                None => return Ok(()),
            }
        }
        _ => None,
    };
    perform(user, shared, op, intended).await.map(|_| ())
}
