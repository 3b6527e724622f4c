//! Data safety: `cleanup` deletes only what load tests inserted (keys `lt_*`) from a table
//! this harness owns — seeded rows and a row someone else added stay — and refuses, changing
//! nothing, a `memory_entries` it did not create; so does `--reset`.

use crate::util::{run_bin, setup, temp_dir, Pg, SMALL_DATA};

async fn count(client: &tokio_postgres::Client, filter: &str) -> i64 {
    client
        .query_one(
            &format!("SELECT count(*) FROM memory_entries WHERE {filter}"),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn cleanup_deletes_only_load_test_rows() {
    let pg = Pg::start().await;
    let reports = temp_dir();
    let dir = reports.path().to_str().unwrap();
    let url = pg.url();
    setup(&url, reports.path(), &SMALL_DATA).await;
    let mut args = vec!["--database-url", &url, "--report-dir", dir];
    args.extend(SMALL_DATA);
    args.extend(["--users", "4", "--hatch-rate", "4", "--run-time", "3s"]);
    args.extend(["--no-print-metrics", "--no-metrics-exporter"]);
    run_bin(&args, &[]).await.expect_code(0);
    let db = pg.client("postgres").await;
    // Someone else's row in our table, with a key that merely looks similar.
    db.batch_execute(
        "INSERT INTO memory_entries (namespace, key, value, embedding)
         SELECT 'ns_000', 'ltx_manual', 'theirs', embedding FROM memory_entries LIMIT 1",
    )
    .await
    .unwrap();
    let inserted = count(&db, "key LIKE 'lt\\_%'").await;
    assert!(inserted >= 1, "the load test inserted nothing");
    let others = count(&db, "key NOT LIKE 'lt\\_%'").await;
    assert_eq!(others, 2001, "2000 seeded + 1 foreign");

    let run = run_bin(
        &["cleanup", "--database-url", &url, "--report-dir", dir],
        &[],
    )
    .await;
    run.expect_code(0);
    assert!(
        run.stdout().contains(&format!("deleted {inserted} rows")),
        "{}",
        run.dump()
    );
    assert_eq!(count(&db, "key LIKE 'lt\\_%'").await, 0);
    assert_eq!(count(&db, "key NOT LIKE 'lt\\_%'").await, 2001);
    assert_eq!(count(&db, "key = 'ltx_manual'").await, 1);

    // Idempotent; and the seeded data is still reused by the next run.
    let run = run_bin(
        &["cleanup", "--database-url", &url, "--report-dir", dir],
        &[],
    )
    .await;
    run.expect_code(0);
    assert!(run.stdout().contains("deleted 0 rows"), "{}", run.dump());
    let run = setup(&url, reports.path(), &SMALL_DATA).await;
    assert!(
        run.stderr().contains("reusing seeded data"),
        "{}",
        run.dump()
    );
    pg.stop().await;
}

#[tokio::test]
async fn foreign_table_is_refused_by_cleanup_and_reset() {
    let pg = Pg::start().await;
    let db = pg.client("postgres").await;
    db.batch_execute(
        "CREATE EXTENSION vector;
         CREATE TABLE memory_entries (namespace text, key text, value text,
           embedding vector(384), PRIMARY KEY (namespace, key));
         INSERT INTO memory_entries
           SELECT 'ns_000', 'lt_' || i, 'theirs', array_fill(0.1, ARRAY[384])::vector
           FROM generate_series(1, 5) i;",
    )
    .await
    .unwrap();
    let reports = temp_dir();
    let dir = reports.path().to_str().unwrap();
    let url = pg.url();
    let line = run_bin(
        &["cleanup", "--database-url", &url, "--report-dir", dir],
        &[],
    )
    .await
    .usage_error();
    assert!(line.contains("not created by pgvector-loadtest"), "{line}");
    let mut args = vec![
        "setup",
        "--reset",
        "--database-url",
        &url,
        "--report-dir",
        dir,
    ];
    args.extend(SMALL_DATA);
    let line = run_bin(&args, &[]).await.usage_error();
    assert!(line.contains("refusing to touch it"), "{line}");
    assert_eq!(count(&db, "true").await, 5, "a foreign row was deleted");
    let meta: Option<String> = db
        .query_one("SELECT to_regclass('pgvector_loadtest_meta')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(meta, None, "the harness wrote to a foreign database");
    pg.stop().await;
}
