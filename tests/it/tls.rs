//! TLS as libpq's `sslmode` says, against a real TLS server: Debian's PostgreSQL 15 with a
//! certificate from a throwaway CA. That server has no pgvector, so a run that gets as far as
//! "no pgvector extension" has proved the TLS handshake (and the certificate checks) passed;
//! a failed check stops the run earlier with a TLS error. Both are exit 2 with one line.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pgvector_loadtest::calibrate::pgbench;
use pgvector_loadtest::calibrate::CalibrateError;
use pgvector_loadtest::db::target::Target;
use tempfile::TempDir;

use crate::util::{run_bin, temp_dir, PlainPg};

/// Runs the openssl CLI, panicking with its output on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for DNS name `localhost` (no IP address in it).
fn make_certificates(dir: &Path) {
    for ca in ["ca", "otherca"] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
            ],
        );
    }
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
}

/// Debian's PostgreSQL 15 serving TLS with a certificate for `localhost` signed by `ca.pem`;
/// the directory also holds `otherca.pem`, which signed nothing the server has.
async fn tls_server() -> (TempDir, PlainPg) {
    let certs = temp_dir();
    make_certificates(certs.path());
    let source = certs.path().to_path_buf();
    let pg = PlainPg::start_with(move |data| {
        // The server reads its key as its own user and refuses a key others can read.
        for file in ["server.pem", "server.key"] {
            std::fs::copy(source.join(file), data.join(file)).unwrap();
        }
        let owner = std::fs::metadata(data).unwrap();
        for file in ["server.pem", "server.key"] {
            let path = data.join(file);
            std::os::unix::fs::chown(
                &path,
                Some(std::os::unix::fs::MetadataExt::uid(&owner)),
                Some(std::os::unix::fs::MetadataExt::gid(&owner)),
            )
            .unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
        }
        vec![
            ("ssl".into(), "on".into()),
            ("ssl_cert_file".into(), "server.pem".into()),
            ("ssl_key_file".into(), "server.key".into()),
        ]
    })
    .await;
    (certs, pg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_verify_full_checks_the_ca_and_the_host_name() {
    let (certs, pg) = tls_server().await;
    let reports = temp_dir();
    let dir = reports.path().to_str().unwrap();
    let ca = certs.path().join("ca.pem");
    let other_ca = certs.path().join("otherca.pem");
    let port = pg.port();
    let url = |host: &str, mode: &str, root: Option<&Path>| {
        let mut u = format!("postgres://postgres@{host}:{port}/postgres?sslmode={mode}");
        if let Some(root) = root {
            u.push_str(&format!("&sslrootcert={}", root.display()));
        }
        u
    };
    let setup = |u: String| async move {
        run_bin(&["setup", "--database-url", &u, "--report-dir", dir], &[]).await
    };

    // The right CA and the certificate's name: TLS passes, the run stops at pgvector.
    let line = setup(url("localhost", "verify-full", Some(&ca)))
        .await
        .usage_error();
    assert!(line.contains("no pgvector extension"), "{line}");
    // require encrypts without checking: also reaches the server.
    let line = setup(url("localhost", "require", None)).await.usage_error();
    assert!(line.contains("no pgvector extension"), "{line}");
    // A CA that did not sign the server's certificate.
    let line = setup(url("localhost", "verify-full", Some(&other_ca)))
        .await
        .usage_error();
    assert!(!line.contains("pgvector"), "TLS should have failed: {line}");
    assert!(line.contains("cannot connect to localhost"), "{line}");
    assert!(line.to_lowercase().contains("certificate"), "{line}");
    // The right CA but an address the certificate does not name: verify-full refuses,
    // verify-ca (chain only) accepts.
    let line = setup(url("127.0.0.1", "verify-full", Some(&ca)))
        .await
        .usage_error();
    assert!(
        !line.contains("pgvector"),
        "host name check should have failed: {line}"
    );
    let line = setup(url("127.0.0.1", "verify-ca", Some(&ca)))
        .await
        .usage_error();
    assert!(line.contains("no pgvector extension"), "{line}");
    // A CA file that is not there is named.
    let line = setup(url(
        "localhost",
        "verify-full",
        Some(Path::new("/nonexistent/ca.pem")),
    ))
    .await
    .usage_error();
    assert!(line.contains("/nonexistent/ca.pem"), "{line}");
}

/// libpq trusts only the `sslrootcert` file. The server's CA is made part of the system
/// store (OpenSSL reads `SSL_CERT_FILE` for its default paths), so a connector that added
/// the file to the system store instead of replacing it would accept the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslrootcert_replaces_the_system_store() {
    let (certs, pg) = tls_server().await;
    let reports = temp_dir();
    let dir = reports.path().to_str().unwrap();
    let ca = certs.path().join("ca.pem");
    let system = [("SSL_CERT_FILE", ca.to_str().unwrap())];
    let url = |root: Option<&str>| {
        let mut u = format!(
            "postgres://postgres@localhost:{}/postgres?sslmode=verify-full",
            pg.port()
        );
        if let Some(root) = root {
            u.push_str(&format!(
                "&sslrootcert={}",
                certs.path().join(root).display()
            ));
        }
        u
    };
    let setup = |u: String| async move {
        run_bin(
            &["setup", "--database-url", &u, "--report-dir", dir],
            &system,
        )
        .await
    };
    // The system store does hold the server's CA here: without sslrootcert it is trusted.
    let line = setup(url(None)).await.usage_error();
    assert!(line.contains("no pgvector extension"), "{line}");
    // With sslrootcert naming another CA, the system store no longer counts.
    let line = setup(url(Some("otherca.pem"))).await.usage_error();
    assert!(!line.contains("pgvector"), "TLS should have failed: {line}");
    assert!(line.to_lowercase().contains("certificate"), "{line}");
}

/// pgbench (here Debian's, whose libpq has TLS; the wheel's has none) is given the target's
/// sslmode and root certificate: with the wrong CA it refuses the server before sending
/// anything, with the right one it runs. (pgbench blocks this test's thread: it is short.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_checks_the_server_certificate_as_the_harness_does() {
    let (certs, pg) = tls_server().await;
    let work = temp_dir();
    let bin_dir = Path::new("/usr/lib/postgresql/15/bin");
    let bench = |root: &str| {
        let target = Target::parse(&format!(
            "host=localhost port={} user=postgres dbname=postgres password='unused  pw' \
             sslmode=verify-full sslrootcert='{}'",
            pg.port(),
            certs.path().join(root).display()
        ))
        .unwrap();
        let run = pgbench::Run {
            bin_dir,
            work_dir: work.path(),
            target: &target,
            script: "SELECT 1;\n",
            clients: 1,
            duration: Duration::from_secs(1),
            session_options: String::new(),
            rate: None,
            mode: Default::default(),
        };
        pgbench::measure(&run, Duration::ZERO)
    };
    let msg = match bench("otherca.pem") {
        Err(CalibrateError::PgbenchFailed { tail, .. }) => tail,
        Err(e) => panic!("{e}"),
        Ok(r) => panic!(
            "pgbench accepted a server signed by another CA ({} ops)",
            r.ok
        ),
    };
    assert!(msg.contains("certificate verify failed"), "{msg}");
    let result = bench("ca.pem").expect("pgbench trusts the right CA");
    assert!(result.ok > 0 && result.failed == 0);
}
