//! Seeding: the same `--seed` gives byte-identical embeddings in two fresh databases, another
//! seed gives other embeddings, and a second `setup` of the same dataset reuses the seeded
//! table (dataset fingerprint) instead of loading it again.

use tokio_postgres::Client;

use crate::util::{setup, temp_dir, Pg, SMALL_DATA};

/// md5 of every embedding in key order, and the row count.
async fn checksum(c: &Client) -> (String, i64) {
    let row = c
        .query_one(
            "SELECT md5(string_agg(embedding::text, ',' ORDER BY namespace, key)), count(*) \
             FROM memory_entries",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn same_seed_same_embeddings_other_seed_other_embeddings_and_reuse() {
    let pg = Pg::start().await;
    pg.create_databases(&["seed_a", "seed_b", "seed_c"]).await;
    let reports = temp_dir();
    let seed = |s: &'static str| [&SMALL_DATA[..], &["--seed", s]].concat();

    let first = setup(&pg.url_db("seed_a"), reports.path(), &seed("42")).await;
    assert!(
        first.stderr().contains("seeding "),
        "first setup did not seed:\n{}",
        first.dump()
    );
    setup(&pg.url_db("seed_b"), reports.path(), &seed("42")).await;
    setup(&pg.url_db("seed_c"), reports.path(), &seed("43")).await;

    let a = checksum(&pg.client("seed_a").await).await;
    let b = checksum(&pg.client("seed_b").await).await;
    let c = checksum(&pg.client("seed_c").await).await;
    assert_eq!(a.1, 2000, "rows in seed_a");
    assert_eq!(c.1, 2000, "rows in seed_c");
    assert_eq!(a, b, "same seed, different embeddings");
    assert_ne!(a.0, c.0, "seeds 42 and 43 gave the same embeddings");

    // The rows are the dataset's own vectors, not merely equal between runs.
    let client = pg.client("seed_a").await;
    let spec = pgvector_loadtest::workload::dataset::DatasetSpec {
        namespaces: 4,
        rows_per_namespace: 500,
        ..Default::default()
    };
    let dataset = pgvector_loadtest::workload::dataset::Dataset::synthetic(spec).unwrap();
    let stored: pgvector::Vector = client
        .query_one(
            "SELECT embedding FROM memory_entries WHERE namespace = 'ns_002' AND key = 'key_000123'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored.to_vec(), dataset.vector(2, 123));

    // Mark the table so a reseed (which drops and recreates it) would show.
    client
        .batch_execute("INSERT INTO memory_entries (namespace, key, value, embedding) SELECT 'ns_000', 'marker', 'm', embedding FROM memory_entries LIMIT 1")
        .await
        .unwrap();
    let again = setup(&pg.url_db("seed_a"), reports.path(), &seed("42")).await;
    let stderr = again.stderr();
    assert!(
        stderr.contains("reusing seeded data"),
        "second setup did not reuse:\n{}",
        again.dump()
    );
    assert!(!stderr.contains("seeding "), "{}", again.dump());
    let markers: i64 = client
        .query_one(
            "SELECT count(*) FROM memory_entries WHERE key = 'marker'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(markers, 1, "the reused table was rewritten");
    pg.stop().await;
}
