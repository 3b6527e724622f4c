//! Recall of the suite's searches: against exact search on the table as it is, and for the data
//! set benchmark against the data set's own ground truth.

use super::*;

/// Recall against the data set's own ground truth, for the data set benchmark's searches.
pub(super) fn truth_recalls(
    dataset: &Dataset,
    spec: &Spec,
    searched: &[(Request, Vec<Hit>)],
    k: u32,
) -> Vec<f64> {
    if !spec.whole_table {
        return Vec::new();
    }
    searched
        .iter()
        .filter_map(|(r, hits)| dataset_recall(dataset, r, hits, k as usize))
        .collect()
}

/// Recall@k of a search for one of the data set's test queries against the data set's own
/// ground truth: the share of its k nearest training rows (by id) among the rows returned.
pub(super) fn dataset_recall(
    dataset: &Dataset,
    request: &Request,
    hits: &[Hit],
    k: usize,
) -> Option<f64> {
    let Request::Cross { query, .. } = request else {
        return None;
    };
    let truth = dataset.truth_of(query.as_slice())?;
    let k = k.min(truth.len());
    if k == 0 {
        return None;
    }
    let wanted: std::collections::HashSet<(usize, usize)> =
        truth[..k].iter().map(|&id| dataset.location(id)).collect();
    let found = hits
        .iter()
        .take(k)
        .filter_map(|h| {
            let ns = h.namespace.strip_prefix("ns_")?.parse().ok()?;
            let row = h.key.strip_prefix("key_")?.parse().ok()?;
            wanted.contains(&(ns, row)).then_some(())
        })
        .count();
    Some(found as f64 / k as f64)
}

/// Recall@k of every kept search, against the exact answer of the same query (with the same
/// similarity filter) on the same session settings, a few at a time on connections of their
/// own.
pub(super) async fn judge(
    primary: &Target,
    session: &Session,
    searched: Vec<(Request, Vec<Hit>)>,
    k: u32,
    workload: &Workload,
) -> Result<Vec<f64>, BenchError> {
    use futures::StreamExt;
    let (min_similarity, vt) = (workload.min_similarity, workload.embedding);
    let pool = pool::build(
        &primary.with_application_name(TRUTH_APP),
        session,
        vt,
        4,
        Duration::from_secs(60),
    )
    .await
    .map_err(|source| BenchError::Connect {
        what: "ground truth",
        target: primary.display(),
        source,
    })?;
    let results: Vec<Result<f64, BenchError>> = futures::stream::iter(searched)
        .map(|(request, hits)| {
            let pool = pool.clone();
            async move {
                let (scope, query) = match &request {
                    Request::Single { namespace, query } => {
                        (recall::Query::Single(namespace, min_similarity), query)
                    }
                    Request::Cross { namespaces, query } => {
                        (recall::Query::Cross(namespaces), query)
                    }
                    Request::Filtered {
                        namespace,
                        query,
                        threshold,
                    } => (recall::Query::Filtered(namespace, *threshold), query),
                    _ => return Ok(1.0),
                };
                let (mut conn, _) = pool.checkout().await.map_err(BenchError::Checkout)?;
                let truth = recall::exact_top_k(&mut conn.client, scope, query, k as i64, vt)
                    .await
                    .map_err(|source| BenchError::Query {
                        what: "ground truth",
                        source,
                    })?;
                Ok(recall::recall(&hits, &truth, k as usize))
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    results.into_iter().collect()
}
