//! Credentials outside the URL: a password from `PGPASSFILE` (libpq's format, mode 0600)
//! drives a load test and `bench`, and the recognisable password appears in none of their
//! artifacts: stdout, stderr, every report file, and `/metrics` scraped during the run. A
//! password file others can read is refused, without echoing it.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;

use crate::child::Child;
use crate::scrape::http_get;
use crate::util::{contains_bytes, files, free_port, run_bin, temp_dir, Pg, SMALL_DATA};

const PASSWORD: &str = "Pa55:file/s3cret@x";

fn assert_absent(what: &str, bytes: &[u8]) {
    for needle in [PASSWORD, "Pa55%3Afile", "s3cret"] {
        assert!(
            !contains_bytes(bytes, needle.as_bytes()),
            "{what} has {needle}"
        );
    }
}

#[tokio::test]
async fn password_file_works_for_load_and_bench_and_never_leaks() {
    let pg = Pg::start_with_password(PASSWORD).await;
    let dir = temp_dir();
    let passfile = dir.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!(
            "# test\nelsewhere:5432:*:*:wrong\n127.0.0.1:{}:postgres:postgres:{}\n",
            pg.port(),
            PASSWORD.replace(':', "\\:")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = [("PGPASSFILE", passfile.to_str().unwrap())];
    let url = pg.bare_url();
    let reports = temp_dir();
    let report_dir = reports.path().to_str().unwrap();
    let port = free_port();
    let port_s = port.to_string();

    let mut args = vec!["--database-url", &url, "--report-dir", report_dir];
    args.extend(SMALL_DATA);
    args.extend(["--users", "2", "--hatch-rate", "2", "--run-time", "4s"]);
    args.extend(["--no-print-metrics", "--metrics-port", &port_s]);
    let child = Child::spawn(&args, &env);
    let mut scraped = Vec::new();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if let Some(body) = http_get(addr).await {
            let done = body.contains("vector_search_queries_total{");
            scraped.push(body);
            if done {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (load, _) = child.finish(std::time::Duration::from_secs(90)).await;
    load.expect_code(0);
    assert!(
        scraped
            .iter()
            .any(|b| b.contains("vector_search_queries_total{")),
        "never scraped the load's metrics"
    );

    let mut args = vec!["bench", "--quick", "--only", "single,bulk"];
    args.extend(["--database-url", &url, "--report-dir", report_dir]);
    args.extend(SMALL_DATA);
    args.extend(["--no-metrics-exporter"]);
    let bench = run_bin(&args, &env).await;
    bench.expect_code(0);

    let written = files(reports.path());
    for name in [
        "load_test_summary.json",
        "load_test.html",
        "benchmark_results.json",
    ] {
        assert!(
            written.iter().any(|p| p.ends_with(name)),
            "{name} missing: {written:?}"
        );
    }
    for run in [&load, &bench] {
        assert_absent("stdout", &run.stdout);
        assert_absent("stderr", &run.stderr);
    }
    for path in &written {
        assert_absent(&path.display().to_string(), &std::fs::read(path).unwrap());
    }
    for body in &scraped {
        assert_absent("/metrics", body.as_bytes());
    }

    // Readable by others: refused, naming the file, not its contents.
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let line = run_bin(
        &["setup", "--database-url", &url, "--report-dir", report_dir],
        &env,
    )
    .await
    .usage_error();
    assert!(
        line.contains("chmod 600") && line.contains("pgpass"),
        "{line}"
    );
    assert_absent("error line", line.as_bytes());
    pg.stop().await;
}
