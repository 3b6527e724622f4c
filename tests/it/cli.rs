//! Bad input and unusable environments: each ends with exit code 2 and exactly one line on
//! stderr, starting `error: ` and naming the problem — a malformed URL, a port nothing listens
//! on, a server without pgvector, a table seeded with another dimension, `--users 0`, an
//! unknown `--layout`. Nothing is run and nothing is written.

use tempfile::TempDir;

use crate::util::{free_port, run_bin, setup, temp_dir, Pg, PlainPg, Run, SMALL_DATA};

/// Runs the default load test with `url`, reports in a fresh dir, plus `extra`.
async fn run_with(url: &str, extra: &[&str]) -> (Run, TempDir) {
    let reports = temp_dir();
    let mut args = vec![
        "--database-url",
        url,
        "--report-dir",
        reports.path().to_str().unwrap(),
    ];
    args.extend(SMALL_DATA);
    args.extend(["--users", "2", "--run-time", "2s"]);
    args.extend(extra);
    (run_bin(&args, &[]).await, reports)
}

/// Asserts that nothing was reported.
fn assert_no_reports(reports: &TempDir) {
    let entries: Vec<_> = std::fs::read_dir(reports.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(entries.is_empty(), "a failed run wrote {entries:?}");
}

#[tokio::test]
async fn malformed_url_is_named_without_echoing_it() {
    let (run, reports) = run_with("postgres://u:topsecret@host:notaport/db", &[]).await;
    let line = run.usage_error();
    assert!(line.contains("invalid database URL"), "{line}");
    assert!(!line.contains("topsecret"), "{line}");
    assert_no_reports(&reports);
}

#[tokio::test]
async fn unreachable_server_is_named() {
    let port = free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let (run, reports) = run_with(&url, &[]).await;
    let line = run.usage_error();
    assert!(
        line.contains(&format!("cannot connect to 127.0.0.1:{port}/postgres")),
        "{line}"
    );
    assert!(line.to_lowercase().contains("refused"), "{line}");
    assert_no_reports(&reports);
}

#[tokio::test]
async fn server_without_pgvector_is_named() {
    let pg15 = PlainPg::start().await;
    let (run, reports) = run_with(&pg15.url(), &[]).await;
    let line = run.usage_error();
    assert!(line.contains("no pgvector extension"), "{line}");
    assert_no_reports(&reports);
    // The harness created nothing on that server.
    let (client, conn) = tokio_postgres::connect(&pg15.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let table: Option<String> = client
        .query_one("SELECT to_regclass('memory_entries')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(table, None);
}

#[tokio::test]
async fn dimension_mismatch_is_named_and_the_table_kept() {
    let pg = Pg::start().await;
    let reports = temp_dir();
    setup(&pg.url(), reports.path(), &SMALL_DATA).await;
    let args = [&SMALL_DATA[..], &["--dim", "128"]].concat();
    let run = run_bin(
        &[
            &[
                "setup",
                "--database-url",
                &pg.url(),
                "--report-dir",
                reports.path().to_str().unwrap(),
            ][..],
            &args,
        ]
        .concat(),
        &[],
    )
    .await;
    let line = run.usage_error();
    for part in ["dimension 384", "dimension 128", "--reset"] {
        assert!(line.contains(part), "'{part}' missing: {line}");
    }
    let row = pg
        .client("postgres")
        .await
        .query_one(
            "SELECT count(*), min(vector_dims(embedding)) FROM memory_entries",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i32>(1)),
        (2000, 384),
        "the seeded table was changed"
    );
    pg.stop().await;
}

#[tokio::test]
async fn zero_users_is_refused() {
    // Validation comes before any connection: the port need not be served.
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", free_port());
    let reports = temp_dir();
    let run = run_bin(
        &[
            "--database-url",
            &url,
            "--report-dir",
            reports.path().to_str().unwrap(),
            "--users",
            "0",
        ],
        &[],
    )
    .await;
    let line = run.usage_error();
    assert!(line.contains("--users must be at least 1"), "{line}");
}

#[tokio::test]
async fn unknown_layout_is_refused() {
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", free_port());
    let (run, reports) = run_with(&url, &["--layout", "bogus"]).await;
    let line = run.usage_error();
    assert!(line.contains("unknown layout 'bogus'"), "{line}");
    assert!(line.contains("hash:N"), "{line}");
    assert_no_reports(&reports);
}

/// Every option the Kubernetes manifests pass exists: the load test's, `setup`'s and
/// `merge`'s help name it (a renamed flag would fail every pod at start).
#[tokio::test]
async fn the_kubernetes_manifests_pass_only_options_that_exist() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes");
    let mut help = String::new();
    for args in [&["--help"][..], &["setup", "--help"], &["merge", "--help"]] {
        help.push_str(&run_bin(args, &[]).await.expect_code(0).stdout());
    }
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("deploy/kubernetes") {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for flag in text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- --"))
            .map(|f| f.split(['=', ' ']).next().unwrap_or_default())
        {
            assert!(
                help.contains(&format!("--{flag}")),
                "{} passes --{flag}, which no help names",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 10,
        "only {checked} options found in the manifests"
    );
}
