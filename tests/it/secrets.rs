//! Passwords: a server that requires one is load-tested with the password percent-encoded in
//! `--database-url` and, separately, given through `PGPASSWORD`; neither form of it appears in
//! the output or in any report. A wrong password is a usage error that does not echo it.

use std::path::Path;

use crate::util::{contains_bytes, files, run_bin, temp_dir, Pg, Run, SMALL_DATA};

/// Has every character that needs escaping in a URL's userinfo.
const PASSWORD: &str = "s3cr@t/p%ss:word";
const ENCODED: &str = "s3cr%40t%2Fp%25ss%3Aword";

/// Asserts the run succeeded, wrote its reports, and leaked the password nowhere.
fn assert_no_leak(run: &Run, reports: &Path) {
    run.expect_code(0);
    let written = files(reports);
    for name in crate::util::REPORTS {
        assert!(
            written.iter().any(|p| p.ends_with(name)),
            "{name} not written: {written:?}"
        );
    }
    for secret in [PASSWORD, ENCODED] {
        let needle = secret.as_bytes();
        assert!(!contains_bytes(&run.stdout, needle), "stdout has {secret}");
        assert!(!contains_bytes(&run.stderr, needle), "stderr has {secret}");
        for path in &written {
            let bytes = std::fs::read(path).unwrap();
            assert!(
                !contains_bytes(&bytes, needle),
                "{} has {secret}",
                path.display()
            );
        }
    }
}

fn load_args<'a>(url: &'a str, reports: &'a str) -> Vec<&'a str> {
    let mut args = vec!["--database-url", url, "--report-dir", reports];
    args.extend(SMALL_DATA);
    args.extend([
        "--users",
        "2",
        "--hatch-rate",
        "2",
        "--run-time",
        "3s",
        "--no-print-metrics",
    ]);
    args
}

#[tokio::test]
async fn password_in_url_or_env_works_and_never_leaks() {
    let pg = Pg::start_with_password(PASSWORD).await;
    let port = pg.port();

    // The helper itself can find the password (the search is not vacuous).
    assert!(contains_bytes(
        format!("x{ENCODED}y").as_bytes(),
        ENCODED.as_bytes()
    ));

    let in_url = format!("postgres://postgres:{ENCODED}@127.0.0.1:{port}/postgres");
    let reports = temp_dir();
    let run = run_bin(&load_args(&in_url, reports.path().to_str().unwrap()), &[]).await;
    assert_no_leak(&run, reports.path());

    let bare = pg.bare_url();
    let reports = temp_dir();
    let run = run_bin(
        &load_args(&bare, reports.path().to_str().unwrap()),
        &[("PGPASSWORD", PASSWORD)],
    )
    .await;
    assert_no_leak(&run, reports.path());
    // The same data: the second run reused what the first seeded.
    assert!(
        run.stderr().contains("reusing seeded data"),
        "{}",
        run.dump()
    );

    // Without any password the server refuses, and that is a usage error.
    let reports = temp_dir();
    let run = run_bin(&load_args(&bare, reports.path().to_str().unwrap()), &[]).await;
    let line = run.usage_error();
    assert!(line.contains("password"), "{line}");

    let wrong = "Wr0ng:pa55@x";
    let wrong_url = format!("postgres://postgres:Wr0ng%3Apa55%40x@127.0.0.1:{port}/postgres");
    let run = run_bin(
        &load_args(&wrong_url, reports.path().to_str().unwrap()),
        &[],
    )
    .await;
    let line = run.usage_error();
    assert!(
        line.contains("authentication failed"),
        "wrong password not named: {line}"
    );
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(
        !line.contains(wrong) && !line.contains("Wr0ng"),
        "password echoed: {line}"
    );
    pg.stop().await;
}
