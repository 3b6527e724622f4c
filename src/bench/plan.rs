//! What the suite runs: the benchmarks in order, the sweep's points, and each one's workload.

use super::*;

/// The benchmarks to run, in order: the searches at every point of the sweep, then the
/// concurrent and bulk benchmarks at the session's settings.
pub(super) fn specs(settings: &BenchSettings, session: &Session, truth: bool) -> Vec<Spec> {
    let mut specs = Vec::new();
    // The sweep: ef_search on an HNSW index, probes on an IVFFlat one.
    let breadths: Vec<(u32, u32)> = match session.index {
        IndexKind::Hnsw => settings
            .ef_search
            .iter()
            .map(|&e| (e, session.probes))
            .collect(),
        IndexKind::Ivfflat => settings
            .probes
            .iter()
            .map(|&p| (session.ef_search, p))
            .collect(),
    };
    for (ef, probes) in breadths {
        for mode in &settings.iterative_scan {
            specs.extend(sweep_point(settings, (ef, probes), mode, truth));
        }
    }
    let first = |name, op, users: usize, n: usize| Spec {
        name,
        op,
        users,
        iterations_per_user: n,
        warmup_per_user: settings.warmup.div_ceil(users.max(1)),
        ef_search: session.ef_search,
        probes: session.probes,
        iterative_scan: session.iterative_scan.clone(),
        whole_table: false,
        filter_selectivity: None,
    };
    if settings.concurrent_clients > 0 {
        specs.push(first(
            "concurrent_queries",
            Op::SingleShardSearch,
            settings.concurrent_clients,
            settings.concurrent_queries,
        ));
    }
    // Last: its rows change the table the searches are judged on.
    if settings.bulk_batches > 0 {
        specs.push(first(
            "bulk_insert",
            Op::BulkInsert,
            1,
            settings.bulk_batches,
        ));
    }

    specs
}

/// The searches at one point of the sweep: single, cross, the data set's queries when it has
/// ground truth (`truth`), and the filtered search at every selectivity.
pub(super) fn sweep_point(
    settings: &BenchSettings,
    (ef, probes): (u32, u32),
    mode: &str,
    truth: bool,
) -> Vec<Spec> {
    let filtered = settings.filter_selectivity.iter().map(|&s| {
        (
            "filtered_search",
            Op::FilteredSearch,
            settings.filtered,
            Some(s),
        )
    });
    [
        (
            "single_shard_search",
            Op::SingleShardSearch,
            settings.single,
            None,
        ),
        (
            "cross_shard_search",
            Op::CrossShardSearch,
            settings.cross,
            None,
        ),
        (
            "dataset_search",
            Op::CrossShardSearch,
            if truth { settings.dataset } else { 0 },
            None,
        ),
    ]
    .into_iter()
    .chain(filtered)
    .filter(|&(_, _, iterations, _)| iterations > 0)
    .map(|(name, op, iterations, filter_selectivity)| Spec {
        name,
        op,
        users: 1,
        iterations_per_user: iterations,
        warmup_per_user: settings.warmup,
        ef_search: ef,
        probes,
        iterative_scan: mode.to_string(),
        whole_table: name == "dataset_search",
        filter_selectivity,
    })
    .collect()
}

/// The k of a search operation (recall is judged at it); None for the others.
pub(super) fn search_k(op: Op, workload: &Workload) -> Option<u32> {
    match op {
        Op::SingleShardSearch | Op::FilteredSearch => Some(workload.k),
        Op::CrossShardSearch => Some(workload.cross_k),
        _ => None,
    }
}

/// The workload of one benchmark: the bulk batch size, for the data set benchmark every
/// namespace (the whole table, which the data set's ground truth is about) and k, for the
/// filtered search its selectivity.
pub(super) fn spec_workload(job: Job<'_>, spec: &Spec, dataset: &Dataset) -> Workload {
    let mut workload = job.workload.clone();
    workload.bulk_batch = job.settings.bulk_rows;
    if spec.whole_table {
        workload.cross_namespaces = dataset.namespace_count();
        workload.cross_k = workload.k;
    }
    if let Some(selectivity) = spec.filter_selectivity {
        workload.filter_threshold = ops::bucket_threshold(selectivity);
    }
    workload
}
