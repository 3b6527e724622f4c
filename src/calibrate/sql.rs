//! The calibration SQL: the statement both sides prepare (ours with `$n`, pgbench's script
//! with `:var`), the query table the search reads its vectors from, and the plan check.

use super::*;
use crate::workload::Distance;

/// The statement of `op` with its parameters written by `param(i)` (pgbench's `:var`
/// or our `$i`), and the parameter draw.
fn statement(op: CalibOp, k: u32, d: Distance, param: impl Fn(usize) -> String) -> String {
    let op_ = d.operator();
    match op {
        // The names as Dataset::namespace_name / Dataset::key write them (ns_007, key_000042).
        CalibOp::Retrieve => format!(
            "SELECT namespace, key, value, metadata, tags, created_at FROM memory_entries \
             WHERE namespace = 'ns_' || lpad({}::text, 3, '0') \
             AND key = 'key_' || lpad({}::text, 6, '0')",
            param(1),
            param(2)
        ),
        CalibOp::Single => format!(
            "SELECT namespace, key, value, metadata, \
             {} AS similarity \
             FROM memory_entries \
             WHERE namespace = (SELECT namespace FROM {QUERIES_TABLE} WHERE id = {}) \
             ORDER BY embedding {op_} (SELECT embedding FROM {QUERIES_TABLE} WHERE id = {}) \
             LIMIT {k}",
            d.score(&format!(
                "embedding {op_} (SELECT embedding FROM {QUERIES_TABLE} WHERE id = {})",
                param(1)
            )),
            param(2),
            param(3)
        ),
    }
}

/// The SQL our side prepares: exactly the text pgbench prepares from the script (pgbench
/// numbers every `:var` occurrence `$1`, `$2`, ... in order).
pub fn harness_sql(op: CalibOp, k: u32, d: Distance) -> String {
    statement(op, k, d, |i| format!("${i}"))
}

/// The pgbench script.
pub fn pgbench_script(op: CalibOp, k: u32, d: Distance, params: Params) -> String {
    match params {
        Params::Retrieve { namespaces, rows } => format!(
            "\\set ns random(0, {})\n\\set row random(0, {})\n{};\n",
            namespaces - 1,
            rows - 1,
            statement(op, k, d, |i| if i == 1 { ":ns" } else { ":row" }
                .to_string())
        ),
        Params::Search { queries } => format!(
            "\\set q random(1, {queries})\n{};\n",
            statement(op, k, d, |_| ":q".to_string())
        ),
    }
}

/// The SQL rebuilds names with `lpad(.., 3)` / `lpad(.., 6)`: refuse datasets whose names
/// would not round-trip rather than measure misses.
pub(super) fn check_names(dataset: &Dataset, params: Params) -> Result<(), CalibrateError> {
    if let Params::Retrieve { namespaces, rows } = params {
        if rows == 0
            || namespaces > 1000
            || rows > 1_000_000
            || dataset.namespace_name(namespaces - 1) != format!("ns_{:03}", namespaces - 1)
            || dataset.key(rows - 1) != format!("key_{:06}", rows - 1)
        {
            return Err(CalibrateError::Names { namespaces, rows });
        }
    }
    Ok(())
}

/// (Re)creates the query table with `queries` query vectors drawn as the load test draws
/// them (a random namespace, then `Dataset::query_vector`), seeded; its embeddings have the
/// type of `memory_entries`' (so that the statement compares like with like, and uses the
/// index, without a cast).
pub(super) async fn store_queries(
    primary: &Target,
    dataset: &Dataset,
    queries: usize,
    workload: &Workload,
) -> Result<(), CalibrateError> {
    let (seed, vt) = (workload.seed, workload.embedding.vector_type.sql());
    let db = CalibrateError::query("query table");
    let client = primary
        .connect()
        .await
        .map_err(CalibrateError::connect("query table", primary))?;
    let dim = dataset.spec().dim;
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {QUERIES_TABLE}; \
             CREATE TABLE {QUERIES_TABLE} (id int PRIMARY KEY, namespace text NOT NULL, \
             embedding {vt}({dim}) NOT NULL)"
        ))
        .await
        .map_err(db)?;
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xCA11_B7A7);
    let mut ids = Vec::with_capacity(queries);
    let mut namespaces = Vec::with_capacity(queries);
    let mut vectors = Vec::with_capacity(queries);
    for id in 1..=queries {
        let ns = rng.random_range(0..dataset.namespace_count());
        ids.push(id as i32);
        namespaces.push(dataset.namespace_name(ns));
        vectors.push(Vector::from(dataset.query_vector(ns, &mut rng)));
    }
    client
        .execute(
            &format!(
                "INSERT INTO {QUERIES_TABLE} SELECT * FROM unnest($1::int[], $2::text[], $3::vector[])"
            ),
            &[&ids, &namespaces, &vectors],
        )
        .await
        .map_err(db)?;
    client
        .batch_execute(&format!("ANALYZE {QUERIES_TABLE}"))
        .await
        .map_err(db)?;
    Ok(())
}

/// EXPLAIN ANALYZE of the search as both sides run it after pgbench's and our first five
/// executions: the generic plan of the prepared statement. The returned line says whether
/// it scans the HNSW index and on how many partitions (run-time pruning on the initplan).
pub(super) async fn check_plan(
    primary: &Target,
    session_sql: &str,
    sql: &str,
) -> Result<String, CalibrateError> {
    let db = CalibrateError::query("plan check");
    let client = primary
        .connect()
        .await
        .map_err(CalibrateError::connect("plan check", primary))?;
    client.batch_execute(session_sql).await.map_err(db)?;
    client
        .batch_execute(&format!(
            "SET plan_cache_mode = force_generic_plan; PREPARE calibrate_plan AS {sql}"
        ))
        .await
        .map_err(db)?;
    let rows = client
        .simple_query("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE calibrate_plan(1, 1, 1)")
        .await
        .map_err(db)?;
    let plan: Vec<String> = rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    let scans: Vec<&String> = plan
        .iter()
        .filter(|l| l.contains(" on memory_entries") && l.contains("Scan"))
        .collect();
    let executed = scans
        .iter()
        .filter(|l| !l.contains("never executed"))
        .count();
    let removed: usize = plan
        .iter()
        .filter_map(|l| l.trim().strip_prefix("Subplans Removed: "))
        .filter_map(|n| n.trim().parse::<usize>().ok())
        .sum();
    let total = scans.len() + removed;
    let hnsw = scans.iter().any(|l| l.contains("Index Scan using"))
        && plan.iter().any(|l| {
            l.trim().starts_with("Order By: (embedding <")
                || l.trim().starts_with("Order By: (memory_entries")
        });
    let how = if hnsw {
        "HNSW index scan".to_string()
    } else {
        // Both sides still run the same plan; the load test's search would choose the same.
        eprintln!(
            "warning: the planner does not use the HNSW index for the calibration search \
             (small partitions?); both sides run the same plan. Plan:\n{}",
            plan.join("\n")
        );
        "no HNSW index scan (planner's choice)".to_string()
    };
    Ok(format!(
        "generic plan: {how}, executed on {executed} of {total} partition(s); \
         run-time pruning skipped {}",
        total - executed
    ))
}
