//! The six operations of `workload::ops`, run in-process through prepared [`Statements`] on a
//! seeded database: what each returns (row counts, namespaces, similarities and their order)
//! checked against the dataset itself.

use pgvector::Vector;
use pgvector_loadtest::workload::dataset::{Dataset, DatasetSpec};
use pgvector_loadtest::workload::ops::{self, Hit, NewRow, StatementMode, Statements};
use pgvector_loadtest::workload::Embedding;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio_postgres::Client;

use crate::util::{setup, temp_dir, Pg, SMALL_DATA};

fn dataset() -> Dataset {
    // Must match SMALL_DATA with the default seed and dimension.
    Dataset::synthetic(DatasetSpec {
        namespaces: 4,
        rows_per_namespace: 500,
        ..DatasetSpec::default()
    })
    .unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn row_of(key: &str) -> usize {
    key.strip_prefix("key_")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a seeded key: {key}"))
}

/// Checks order, and that each similarity is the true cosine similarity of the seeded row.
fn check_hits(hits: &[Hit], data: &Dataset, query: &[f32], what: &str) {
    for pair in hits.windows(2) {
        assert!(
            pair[0].similarity >= pair[1].similarity,
            "{what}: similarities not descending: {hits:?}"
        );
    }
    for hit in hits {
        let ns: usize = hit.namespace["ns_".len()..].parse().unwrap();
        let expected = cosine(query, &data.vector(ns, row_of(&hit.key)));
        assert!(
            (hit.similarity - expected).abs() < 1e-4,
            "{what}: {hit:?} but the stored vector has similarity {expected}"
        );
    }
}

async fn count(c: &Client) -> i64 {
    c.query_one("SELECT count(*) FROM memory_entries", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn each_operation_returns_what_it_should() {
    let pg = Pg::start().await;
    let reports = temp_dir();
    setup(&pg.url(), reports.path(), &SMALL_DATA).await;
    let data = dataset();
    let c = pg.client("postgres").await;
    c.batch_execute("SET hnsw.ef_search = 40; SET hnsw.iterative_scan = off")
        .await
        .unwrap();
    let stmts = Statements::prepare(&c, Embedding::default(), StatementMode::Prepared)
        .await
        .unwrap();
    let mut rng = SmallRng::seed_from_u64(11);

    // Single-namespace search: k rows of that namespace, the true nearest among them.
    let query = data.query_vector(1, &mut rng);
    let (hits, bytes) =
        ops::search_single(&c, &stmts, "ns_001", &Vector::from(query.clone()), 10, None)
            .await
            .unwrap();
    assert_eq!(hits.len(), 10, "{hits:?}");
    // Each row carries at least its key, namespace, value and an 8-byte similarity.
    let least: usize = hits
        .iter()
        .map(|h| h.key.len() + h.namespace.len() + 8)
        .sum();
    assert!(bytes as usize > least, "{bytes} bytes for 10 rows");
    assert!(hits.iter().all(|h| h.namespace == "ns_001"), "{hits:?}");
    check_hits(&hits, &data, &query, "single");
    let mut exact: Vec<(f64, usize)> = (0..500)
        .map(|row| (cosine(&query, &data.vector(1, row)), row))
        .collect();
    exact.sort_by(|a, b| b.0.total_cmp(&a.0));
    assert_eq!(
        row_of(&hits[0].key),
        exact[0].1,
        "single: nearest row is not first"
    );

    // With a similarity filter (the original used 0.7, above this data's top rows), rows still
    // come back, all above it: here the threshold between the 3rd and 4th nearest rows.
    let min = (exact[2].0 + exact[3].0) / 2.0;
    let (filtered, _) = ops::search_single(
        &c,
        &stmts,
        "ns_001",
        &Vector::from(query.clone()),
        10,
        Some(min),
    )
    .await
    .unwrap();
    assert_eq!(filtered.len(), 3, "{filtered:?}");
    assert!(filtered.iter().all(|h| h.similarity >= min), "{filtered:?}");
    assert!(filtered.iter().all(|h| h.namespace == "ns_001"));

    // Cross-namespace search: k rows, all from the requested namespaces.
    let wanted = vec!["ns_000".to_string(), "ns_002".into(), "ns_003".into()];
    let query = data.query_vector(2, &mut rng);
    let (hits, _) = ops::search_cross(&c, &stmts, &wanted, &Vector::from(query.clone()), 20)
        .await
        .unwrap();
    assert_eq!(hits.len(), 20, "{hits:?}");
    assert!(
        hits.iter().all(|h| wanted.contains(&h.namespace)),
        "{hits:?}"
    );
    check_hits(&hits, &data, &query, "cross");
    // Namespaces share topics, so the merged top 20 holds rows of several of them.
    let mut from: Vec<&str> = hits.iter().map(|h| h.namespace.as_str()).collect();
    from.sort();
    from.dedup();
    assert!(from.len() >= 2, "{hits:?}");

    // Retrieve: a seeded key is found, a missing one is not (and is no error).
    assert_eq!(
        ops::retrieve(&c, &stmts, "ns_003", "key_000499")
            .await
            .unwrap()
            .0,
        1
    );
    assert_eq!(
        ops::retrieve(&c, &stmts, "ns_003", "key_000500")
            .await
            .unwrap(),
        (0, 0)
    );
    assert_eq!(
        ops::retrieve(&c, &stmts, "ns_999", "key_000001")
            .await
            .unwrap(),
        (0, 0)
    );

    // Insert: one row written, then retrievable and found by its own vector.
    let before = count(&c).await;
    let own = data.vector(0, 9_999);
    let row = NewRow {
        namespace: "ns_000".into(),
        key: "lt_insert_1".into(),
        value: "inserted".into(),
        embedding: Vector::from(own.clone()),
    };
    assert_eq!(ops::insert(&c, &stmts, &row).await.unwrap(), 1);
    assert_eq!(
        ops::retrieve(&c, &stmts, "ns_000", "lt_insert_1")
            .await
            .unwrap()
            .0,
        1
    );
    let (hits, _) = ops::search_single(&c, &stmts, "ns_000", &Vector::from(own.clone()), 1, None)
        .await
        .unwrap();
    assert_eq!(hits[0].key, "lt_insert_1");
    assert!((hits[0].similarity - 1.0).abs() < 1e-5, "{hits:?}");
    assert_eq!(count(&c).await, before + 1);

    // Filtered search: only seeded rows whose bucket is below the threshold, nearest first;
    // the row just inserted has no bucket, so even its own vector does not find it.
    let query = Vector::from(own.clone());
    for threshold in [5000, 10_000] {
        let (hits, _) = ops::search_filtered(&c, &stmts, "ns_000", &query, 10, threshold)
            .await
            .unwrap();
        assert_eq!(hits.len(), 10, "{hits:?}");
        check_hits(&hits, &data, &own, "filtered");
        assert!(
            hits.iter()
                .all(|h| data.bucket(0, row_of(&h.key)) < threshold as u32),
            "{threshold}: {hits:?}"
        );
    }
    let (all, _) = ops::search_single(&c, &stmts, "ns_000", &query, 11, None)
        .await
        .unwrap();
    let (kept, _) = ops::search_filtered(&c, &stmts, "ns_000", &query, 10, 10_000)
        .await
        .unwrap();
    assert_eq!(
        kept,
        all[1..],
        "a filter keeping every bucket drops only the new row"
    );

    // Bulk insert: 100 rows in one statement; again, it upserts instead of duplicating.
    let batch = |value: &str| -> Vec<NewRow> {
        (0..100)
            .map(|i| NewRow {
                namespace: format!("ns_{:03}", i % 4),
                key: format!("lt_bulk_{i:03}"),
                value: value.to_string(),
                embedding: Vector::from(data.vector(i % 4, 10_000 + i)),
            })
            .collect()
    };
    let before = count(&c).await;
    assert_eq!(
        ops::bulk_insert(&c, &stmts, &batch("first")).await.unwrap(),
        100
    );
    assert_eq!(count(&c).await, before + 100);
    assert_eq!(
        ops::bulk_insert(&c, &stmts, &batch("second"))
            .await
            .unwrap(),
        100
    );
    assert_eq!(count(&c).await, before + 100, "upsert duplicated rows");
    let second: i64 = c
        .query_one(
            "SELECT count(*) FROM memory_entries WHERE key LIKE 'lt\\_bulk\\_%' AND value = 'second'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(second, 100, "upsert did not update the values");
    pg.stop().await;
}

/// The unnamed mode (no named statement, for PgBouncer in transaction mode) returns what the
/// prepared one does, operation by operation.
#[tokio::test]
async fn unnamed_statements_return_what_prepared_ones_do() {
    let pg = Pg::start().await;
    setup(&pg.url(), temp_dir().path(), &SMALL_DATA).await;
    let data = dataset();
    let c = pg.client("postgres").await;
    let e = Embedding::default();
    let prepared = Statements::prepare(&c, e, StatementMode::Prepared)
        .await
        .unwrap();
    let unnamed = Statements::prepare(&c, e, StatementMode::Unnamed)
        .await
        .unwrap();
    let named_before: i64 = c
        .query_one("SELECT count(*) FROM pg_prepared_statements", &[])
        .await
        .unwrap()
        .get(0);
    let mut rng = SmallRng::seed_from_u64(5);
    let query = Vector::from(data.query_vector(2, &mut rng));
    let wanted = vec!["ns_000".to_string(), "ns_003".into()];
    for (a, b) in [(&prepared, &unnamed)] {
        let single = |s| ops::search_single(&c, s, "ns_002", &query, 10, None);
        assert_eq!(single(a).await.unwrap(), single(b).await.unwrap());
        let min = |s| ops::search_single(&c, s, "ns_002", &query, 10, Some(0.5));
        assert_eq!(min(a).await.unwrap(), min(b).await.unwrap());
        let cross = |s| ops::search_cross(&c, s, &wanted, &query, 20);
        assert_eq!(cross(a).await.unwrap(), cross(b).await.unwrap());
        let filtered = |s| ops::search_filtered(&c, s, "ns_002", &query, 10, 5000);
        assert_eq!(filtered(a).await.unwrap(), filtered(b).await.unwrap());
        let get = |s| ops::retrieve(&c, s, "ns_001", "key_000007");
        assert_eq!(get(a).await.unwrap(), get(b).await.unwrap());
    }
    let row = |key: &str| NewRow {
        namespace: "ns_001".into(),
        key: key.into(),
        value: "v".into(),
        embedding: query.clone(),
    };
    assert_eq!(
        ops::insert(&c, &unnamed, &row("lt_unnamed_1"))
            .await
            .unwrap(),
        1
    );
    let batch = [row("lt_unnamed_2"), row("lt_unnamed_3")];
    assert_eq!(ops::bulk_insert(&c, &unnamed, &batch).await.unwrap(), 2);
    for key in ["lt_unnamed_1", "lt_unnamed_2", "lt_unnamed_3"] {
        assert_eq!(
            ops::retrieve(&c, &prepared, "ns_001", key).await.unwrap().0,
            1
        );
    }
    // The unnamed mode prepared nothing on the connection.
    let named_after: i64 = c
        .query_one("SELECT count(*) FROM pg_prepared_statements", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(named_after, named_before);
    pg.stop().await;
}
