//! More bad input (see also cli.rs): an unknown host, a pgvector too old for a requested
//! feature, vector files that are missing, empty, truncated, of the wrong dimension or format,
//! zero or negative rates and durations, a statement timeout under 1 ms (which PostgreSQL would
//! take as "none"), a filter selectivity outside (0, 1] or narrower than one bucket, a report directory that cannot exist, and a web UI
//! that anyone could control. Each is exit 2 with one line naming the problem, before any load.

use std::path::Path;
use std::time::Duration;

use clap::Parser;
use pgvector_loadtest::cli::Cli;
use pgvector_loadtest::config::Config;

use crate::util::{free_port, run_bin, temp_dir, Pg};

/// The load test against `url` with `extra`; returns the one error line.
async fn refused(url: &str, report_dir: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "--database-url",
        url,
        "--report-dir",
        report_dir.to_str().unwrap(),
        "--namespaces",
        "2",
        "--users",
        "1",
    ];
    args.extend(extra);
    run_bin(&args, &[]).await.usage_error()
}

fn unserved() -> String {
    format!("postgres://postgres@127.0.0.1:{}/postgres", free_port())
}

#[tokio::test]
async fn unknown_host_is_named() {
    let reports = temp_dir();
    let line = refused(
        "postgres://postgres@no-such-host.invalid:5432/postgres",
        reports.path(),
        &[],
    )
    .await;
    assert!(
        line.contains("cannot connect to no-such-host.invalid:5432/postgres"),
        "{line}"
    );
}

#[tokio::test]
async fn zero_and_negative_rates_and_durations_are_refused() {
    let reports = temp_dir();
    let url = unserved();
    for (extra, want) in [
        (
            &["--hatch-rate", "0"][..],
            "--hatch-rate must be a number above 0, got '0'",
        ),
        (
            &["--hatch-rate", "-1"],
            "--hatch-rate must be a number above 0, got '-1'",
        ),
        (
            &["--increase-rate", "abc"],
            "--hatch-rate must be a number above 0, got 'abc'",
        ),
        (
            &["--run-time", "0s"],
            "--run-time must be a positive duration",
        ),
        (
            &["--run-time=-5s"],
            "--run-time must be a positive duration",
        ),
        (
            &["--pool-timeout", "0s"],
            "--pool-timeout must be greater than zero",
        ),
        (&["--pool-size", "0"], "--pool-size must be at least 1"),
    ] {
        let line = refused(&url, reports.path(), extra).await;
        assert!(line.contains(want), "{extra:?}: {line}");
    }
    assert!(std::fs::read_dir(reports.path()).unwrap().next().is_none());
}

/// A `.fvecs` file of `n` vectors of `dim` dimensions.
fn fvecs(n: usize, dim: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend((dim as i32).to_le_bytes());
        for j in 0..dim {
            out.extend((1.0 + (i * dim + j) as f32).to_le_bytes());
        }
    }
    out
}

#[tokio::test]
async fn statement_timeouts_under_a_millisecond_are_refused() {
    // `SET statement_timeout = 0` (what 500us truncated to) disables the timeout.
    let reports = temp_dir();
    let url = unserved();
    for (value, shown) in [("500us", "500us"), ("999us", "999us"), ("0s", "0s")] {
        let line = refused(&url, reports.path(), &["--statement-timeout", value]).await;
        assert_eq!(
            line,
            format!(
                "error: --statement-timeout must be at least 1ms (PostgreSQL counts whole \
                 milliseconds and 0 disables it), got {shown}"
            ),
            "{value}"
        );
    }
    // Others are rounded to the millisecond the server applies.
    for (value, ms) in [("1ms", 1), ("1499us", 1), ("1500us", 2), ("2s", 2000)] {
        let cli = Cli::parse_from([
            "pgvector-loadtest",
            "--report-dir",
            reports.path().to_str().unwrap(),
            "--statement-timeout",
            value,
        ]);
        let config = Config::from_cli(cli).expect("valid");
        assert_eq!(
            config.connections.session.statement_timeout,
            Some(Duration::from_millis(ms)),
            "{value}"
        );
    }
}

#[tokio::test]
async fn bad_vector_files_are_named() {
    // Checked before connecting: the server need not exist.
    let url = unserved();
    let dir = temp_dir();
    let reports = temp_dir();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let good = fvecs(10, 8);
    let cases = [
        (
            dir.path()
                .join("missing.fvecs")
                .to_str()
                .unwrap()
                .to_string(),
            "no such file",
        ),
        (write("empty.fvecs", b""), "empty"),
        (write("empty.npy", b""), "missing.npy"),
        (write("cut.fvecs", &good[..good.len() - 3]), "truncated"),
        (
            write("dim8.fvecs", &good),
            "wrong dimension (file has 8, --dim is 384)",
        ),
        (
            write("cut.npy", b"\x93NUMPY\x01\x00\x40\x00{'descr': '<f4'"),
            "vector file",
        ),
        (write("vectors.txt", b"1 2 3\n"), "unsupported format"),
    ];
    for (path, want) in cases {
        // The file's own dimension (8), except where the mismatch is the point.
        let dim = if want.starts_with("wrong dimension") {
            "384"
        } else {
            "8"
        };
        let line = refused(
            &url,
            reports.path(),
            &["--vectors-file", &path, "--dim", dim],
        )
        .await;
        let want = want.replace("missing.npy", "empty.npy");
        assert!(line.contains(&want), "{path}: {line}");
        let name = Path::new(&path).file_name().unwrap().to_str().unwrap();
        assert!(line.contains(name), "file not named: {line}");
    }
}

#[tokio::test]
async fn report_dir_that_cannot_exist_is_refused_first() {
    // Root ignores permission bits, so the directory is made impossible instead: its parent
    // is a regular file. The server is not reachable either; the report dir is named first.
    let dir = temp_dir();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let line = refused(&unserved(), &file.join("reports"), &[]).await;
    assert!(line.contains("report directory"), "{line}");
    assert!(line.contains("a-file/reports"), "{line}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[tokio::test]
async fn filter_selectivity_outside_one_bucket_to_one_is_refused() {
    let reports = temp_dir();
    let url = unserved();
    for (value, want) in [
        (
            "0",
            "--filter-selectivity must be above 0 and at most 1 (0.01 keeps 1 % of the seeded \
             rows), got 0",
        ),
        (
            "2",
            "--filter-selectivity must be above 0 and at most 1 (0.01 keeps 1 % of the seeded \
             rows), got 2",
        ),
        ("-0.5", "got -0.5"),
        ("NaN", "got NaN"),
        (
            "0.00001",
            "--filter-selectivity 0.00001 keeps no row: rows fall in 10000 buckets, so the \
             smallest selectivity is 0.0001",
        ),
        (
            "0.01,0.1",
            "a list of --filter-selectivity values is only for `bench` (a sweep)",
        ),
    ] {
        let line = refused(&url, reports.path(), &["--filter-selectivity", value]).await;
        assert!(line.contains(want), "{value}: {line}");
    }
    let line = refused(&url, reports.path(), &["--filtered-weight", "1001"]).await;
    assert!(
        line.contains("--filtered-weight must be between 0 and 1000"),
        "{line}"
    );
    // A bench sweep takes the list, each value checked; the load test's threshold is the
    // selectivity in buckets of 10,000.
    let parse = |args: &[&str]| {
        let mut argv = vec!["pgvector-loadtest", "--report-dir"];
        argv.push(reports.path().to_str().unwrap());
        argv.extend(args);
        Config::from_cli(Cli::parse_from(argv))
    };
    let config = parse(&["bench", "--filter-selectivity", "0.001,0.5,1"]).expect("valid");
    match config.mode {
        pgvector_loadtest::config::Mode::Bench(b) => {
            assert_eq!(b.filter_selectivity, [0.001, 0.5, 1.0])
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(config.workload.filter_threshold, 10);
    let err = parse(&["bench", "--filter-selectivity", "0.1,0"]).unwrap_err();
    assert!(err.to_string().contains("got 0"), "{err}");
    let config = parse(&["--filter-selectivity", "0.00005"]).expect("rounds to one bucket");
    assert_eq!(config.workload.filter_threshold, 1);
    assert!(std::fs::read_dir(reports.path()).unwrap().next().is_none());
}

#[tokio::test]
async fn controllable_or_exposed_web_ui_needs_a_token() {
    let reports = temp_dir();
    let url = unserved();
    let line = refused(
        &url,
        reports.path(),
        &["--dashboard", "--dashboard-control"],
    )
    .await;
    assert!(
        line.contains("--dashboard-control needs --dashboard-auth-token"),
        "{line}"
    );
    for host in ["0.0.0.0", "192.0.2.10", "::"] {
        let line = refused(
            &url,
            reports.path(),
            &[
                "--dashboard",
                "--dashboard-control",
                "--dashboard-host",
                host,
            ],
        )
        .await;
        assert!(line.contains("--dashboard-auth-token"), "{host}: {line}");
        let line = refused(
            &url,
            reports.path(),
            &["--dashboard", "--dashboard-host", host],
        )
        .await;
        assert!(
            line.contains(&format!(
                "--dashboard-host {host} is not a loopback address"
            )),
            "{line}"
        );
    }
    // With a token the configuration passes and the run gets as far as the database.
    let line = refused(
        &url,
        reports.path(),
        &[
            "--dashboard",
            "--dashboard-control",
            "--dashboard-host",
            "0.0.0.0",
            "--dashboard-auth-token",
            "tok",
        ],
    )
    .await;
    assert!(line.contains("cannot connect"), "{line}");
}

#[tokio::test]
async fn pgvector_too_old_for_iterative_scan_is_named() {
    // No older pgvector is installable here; the catalog's recorded version is what the
    // harness reads, so it is set back to 0.7.4 on a throwaway server.
    let pg = Pg::start().await;
    let db = pg.client("postgres").await;
    db.batch_execute(
        "CREATE EXTENSION vector;
         UPDATE pg_extension SET extversion = '0.7.4' WHERE extname = 'vector';",
    )
    .await
    .unwrap();
    let reports = temp_dir();
    let line = refused(
        &pg.url(),
        reports.path(),
        &["--iterative-scan", "relaxed_order"],
    )
    .await;
    assert!(
        line.contains("pgvector 0.7.4 is too old: iterative_scan needs 0.8.0"),
        "{line}"
    );
    let table: Option<String> = db
        .query_one("SELECT to_regclass('memory_entries')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(table, None, "a table was created");
    pg.stop().await;
}
