//! Recall@k against exact ground truth.
//!
//! The truth is the server's exact answer for the same query over the table as it is at that
//! moment: the same SQL with index scans disabled, so the planner sorts every candidate row
//! (a brute-force scan). Rows inserted by earlier runs or by the bulk-insert benchmark are
//! therefore part of the truth, and an approximate index is judged on what it actually had to
//! search. It runs on its own connection after the timed query, so it never counts as latency.

use pgvector::Vector;
use tokio_postgres::Client;

use crate::workload::ops::Hit;

const EXACT_SINGLE: &str = "SELECT 1 - (embedding <=> $2) AS similarity FROM memory_entries \
     WHERE namespace = $1 ORDER BY embedding <=> $2 LIMIT $3";
const EXACT_CROSS: &str = "SELECT 1 - (embedding <=> $2) AS similarity FROM memory_entries \
     WHERE namespace = ANY($1) ORDER BY embedding <=> $2 LIMIT $3";

/// What the exact search is asked.
pub enum Query<'a> {
    /// One namespace.
    Single(&'a str),
    /// Several namespaces.
    Cross(&'a [String]),
}

/// The exact top-k similarities (descending) for `query`.
pub async fn exact_top_k(
    client: &mut Client,
    scope: Query<'_>,
    query: &Vector,
    k: i64,
) -> Result<Vec<f64>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off")
        .await?;
    let rows = match scope {
        Query::Single(ns) => tx.query(EXACT_SINGLE, &[&ns, query, &k]).await?,
        Query::Cross(nss) => tx.query(EXACT_CROSS, &[&nss, query, &k]).await?,
    };
    tx.commit().await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
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
    fn quantiles_use_nearest_rank() {
        let v = [0.5, 1.0, 0.9, 0.7];
        assert_eq!(quantile(&v, 0.05), 0.5);
        assert_eq!(quantile(&v, 0.5), 0.7);
        assert_eq!(quantile(&v, 1.0), 1.0);
    }
}
