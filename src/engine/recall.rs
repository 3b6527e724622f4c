//! Recall@k against exact ground truth.
//!
//! The truth is the server's exact answer for the same query over the table as it is at that
//! moment: the distances of every candidate row, sorted (a brute-force scan; see [`exact_sql`]).
//! Rows inserted by earlier runs or by the bulk-insert benchmark are
//! therefore part of the truth, and an approximate index is judged on what it actually had to
//! search. It runs on its own connection after the timed query, so it never counts as latency.
//!
//! The truth is also filtered as the search was: the single-namespace search drops rows below
//! `--min-similarity` after its top k, so its truth is the exact top k with the same rows
//! dropped. Otherwise a search that correctly returned 3 rows above the filter would be judged
//! against 10 and score 0.3. The filtered search's truth keeps the same bucket filter, so it
//! is judged on the rows its filter leaves, and when fewer than k of them exist, on those.
//! Both the suite and the load test's sampler
//! (the exporter's recall sampler) get the truth here, so they cannot disagree on it.

use pgvector::Vector;
use tokio_postgres::Client;

use crate::workload::ops::{with_bucket_filter, Hit};
use crate::workload::Embedding;

/// The exact search's SQL: the searches' own distance expression (the query vector in the
/// column's type, so the similarities compare exactly), `$1` one namespace or an array.
///
/// The distances are computed in a subquery the planner may not flatten (`OFFSET 0`) and sorted
/// outside it, so no index can answer the `ORDER BY`: a brute-force scan whatever the planner
/// settings. `enable_indexscan = off` alone is not enough: PostgreSQL 18 plans a disabled HNSW
/// index scan for a single partition anyway (seen here: the "exact" top 400 came back as the
/// index's 10 rows at `ef_search = 10`), which made the truth the index's own answer and every
/// single-namespace recall 1.0.
fn exact_sql(e: Embedding, cross: bool) -> String {
    let (distance, score) = (e.distance_to("$2::vector"), e.distance.score("d"));
    let scope = if cross { "ANY($1)" } else { "$1" };
    format!(
        "SELECT {score} AS similarity FROM (SELECT {distance} AS d FROM memory_entries \
         WHERE namespace = {scope} OFFSET 0) s ORDER BY d LIMIT $3"
    )
}

/// What the exact search is asked.
pub enum Query<'a> {
    /// One namespace, and the search's similarity filter (`--min-similarity`), if any.
    Single(&'a str, Option<f64>),
    /// Several namespaces.
    Cross(&'a [String]),
    /// One namespace, the rows whose bucket is below the threshold.
    Filtered(&'a str, i32),
}

/// The exact top-k similarities (descending) for `query`, less those the search's similarity
/// filter drops.
pub async fn exact_top_k(
    client: &mut Client,
    scope: Query<'_>,
    query: &Vector,
    k: i64,
    e: Embedding,
) -> Result<Vec<f64>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off")
        .await?;
    let (rows, min) = match scope {
        Query::Single(ns, min) => {
            let sql = exact_sql(e, false);
            (tx.query(&sql, &[&ns, query, &k]).await?, min)
        }
        Query::Cross(nss) => {
            let sql = exact_sql(e, true);
            (tx.query(&sql, &[&nss, query, &k]).await?, None)
        }
        Query::Filtered(ns, threshold) => {
            // The same predicate as the search, inside the subquery that no index answers.
            let sql = with_bucket_filter(&exact_sql(e, false));
            (tx.query(&sql, &[&ns, query, &k, &threshold]).await?, None)
        }
    };
    tx.commit().await?;
    Ok(filtered(rows.iter().map(|r| r.get(0)).collect(), min))
}

/// `truth` less the similarities below `min`: what the search's filter leaves of the exact
/// top k (the filter applies after the LIMIT, in the search and here alike).
fn filtered(mut truth: Vec<f64>, min: Option<f64>) -> Vec<f64> {
    if let Some(min) = min {
        truth.retain(|s| *s >= min);
    }
    truth
}

/// Recall@k as ann-benchmarks defines it: the share of the k true neighbours' places filled by
/// returned rows at least as similar as the k-th true neighbour (a small epsilon absorbs float
/// rounding; ties at the boundary count as correct). When the table holds fewer than k
/// candidates, k is what it holds.
pub fn recall(returned: &[Hit], truth: &[f64], k: usize) -> f64 {
    let k = k.min(truth.len());
    if k == 0 {
        return 1.0;
    }
    let threshold = truth[k - 1] - 1e-6;
    let good = returned
        .iter()
        .take(k)
        .filter(|h| h.similarity >= threshold)
        .count();
    good as f64 / k as f64
}

/// The value at quantile `q` (0..=1) of `values` (sorted copy; nearest rank).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(sims: &[f64]) -> Vec<Hit> {
        sims.iter()
            .map(|&similarity| Hit {
                namespace: "ns".into(),
                key: "k".into(),
                similarity,
            })
            .collect()
    }

    #[test]
    fn recall_counts_rows_as_good_as_the_kth_truth() {
        let truth = [0.9, 0.8, 0.7, 0.6];
        assert_eq!(recall(&hits(&[0.9, 0.8, 0.7, 0.6]), &truth, 4), 1.0);
        assert_eq!(recall(&hits(&[0.9, 0.8, 0.5, 0.4]), &truth, 4), 0.5);
        // Short result sets lose recall.
        assert_eq!(recall(&hits(&[0.9]), &truth, 4), 0.25);
        // Fewer candidates than k: k shrinks.
        assert_eq!(recall(&hits(&[0.9, 0.8]), &truth[..2], 10), 1.0);
    }

    #[test]
    fn filtered_truth_shrinks_k_to_what_passes_the_filter() {
        let truth = filtered(vec![0.9, 0.85, 0.8, 0.6, 0.5], Some(0.8));
        assert_eq!(truth, [0.9, 0.85, 0.8]);
        // A filtered search that returned the three rows above the filter missed nothing.
        assert_eq!(recall(&hits(&[0.9, 0.85, 0.8]), &truth, 10), 1.0);
        assert_eq!(filtered(vec![0.5], None), [0.5]);
    }

    #[test]
    fn filtered_truth_filters_inside_the_unindexed_subquery() {
        let sql = with_bucket_filter(&exact_sql(Embedding::default(), false));
        let inner = sql.split("OFFSET 0").next().unwrap();
        assert!(inner.contains("(metadata->>'bucket')::int < $4"), "{sql}");
        assert!(sql.contains("OFFSET 0) s ORDER BY"), "{sql}");
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let v = [0.5, 1.0, 0.9, 0.7];
        assert_eq!(quantile(&v, 0.05), 0.5);
        assert_eq!(quantile(&v, 0.5), 0.7);
        assert_eq!(quantile(&v, 1.0), 1.0);
    }
}
