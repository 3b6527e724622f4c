//! Through PgBouncer in transaction mode (Debian bookworm's 1.18, which does not keep named
//! prepared statements): the load test with `--statement-mode unnamed` runs without a
//! failure, and the default `prepared` mode's failure is named with what to do.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::{chown, User};

use crate::util::{free_port, run_bin, setup, temp_dir, Pg, SMALL_DATA};

const PGBOUNCER: &str = "/usr/sbin/pgbouncer";

/// PgBouncer on 127.0.0.1 in transaction mode in front of `pg`, as `nobody`; killed on drop.
struct Bouncer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bouncer {
    async fn start(pg: &Pg) -> Bouncer {
        assert!(
            Path::new(PGBOUNCER).is_file(),
            "{PGBOUNCER} is missing: install Debian's pgbouncer (scripts/deps does)"
        );
        let dir = temp_dir();
        let nobody = User::from_name("nobody").unwrap().expect("user nobody");
        chown(dir.path(), Some(nobody.uid), Some(nobody.gid)).unwrap();
        let port = free_port();
        let auth = dir.path().join("userlist.txt");
        std::fs::write(&auth, format!("\"postgres\" \"{}\"\n", pg.password())).unwrap();
        chown(&auth, Some(nobody.uid), Some(nobody.gid)).unwrap();
        let config = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &config,
            format!(
                "[databases]\n* = host=127.0.0.1 port={}\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                 listen_port = {port}\nunix_socket_dir =\nauth_type = scram-sha-256\n\
                 auth_file = {}\npool_mode = transaction\ndefault_pool_size = 4\n\
                 max_client_conn = 200\nignore_startup_parameters = extra_float_digits,options\n\
                 logfile = {}\n",
                pg.port(),
                auth.display(),
                dir.path().join("pgbouncer.log").display()
            ),
        )
        .unwrap();
        let child = Command::new(PGBOUNCER)
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .uid(nobody.uid.as_raw())
            .gid(nobody.gid.as_raw())
            .process_group(0)
            .spawn()
            .expect("spawn pgbouncer");
        let bouncer = Bouncer {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "pgbouncer did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bouncer
    }

    /// The server's URL with PgBouncer's port.
    fn url(&self, pg: &Pg) -> String {
        pg.url()
            .replace(&format!(":{}/", pg.port()), &format!(":{}/", self.port))
    }
}

#[tokio::test]
async fn unnamed_statements_work_through_pgbouncer_and_prepared_ones_are_named() {
    let pg = Pg::start().await;
    setup(&pg.url(), temp_dir().path(), &SMALL_DATA).await;
    let bouncer = Bouncer::start(&pg).await;
    let url = bouncer.url(&pg);
    let run_with = |mode: &'static str| {
        let url = url.clone();
        async move {
            let reports = temp_dir();
            let mut args = vec![
                "--database-url",
                &url,
                "--statement-mode",
                mode,
                "--users",
                "10",
                "--hatch-rate",
                "10",
                "--run-time",
                "6s",
                "--pool-size",
                "10",
                "--no-metrics-exporter",
                "--report-dir",
                reports.path().to_str().unwrap(),
            ];
            args.extend(SMALL_DATA);
            (run_bin(&args, &[]).await, reports)
        }
    };
    let (run, reports) = run_with("unnamed").await;
    run.expect_code(0);
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(reports.path().join("load_test_summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["aggregated"]["failed"], 0, "{}", run.dump());
    assert!(
        summary["aggregated"]["count"].as_u64().unwrap() > 100,
        "{summary}"
    );

    // The default mode: 10 clients share 4 server connections, whose named statements
    // collide or vanish.
    let (run, _reports) = run_with("prepared").await;
    assert_ne!(run.code, 0, "{}", run.dump());
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(
        all.contains("--statement-mode unnamed") && all.contains("PgBouncer in transaction mode"),
        "{}",
        run.dump()
    );
    drop(bouncer);
    pg.stop().await;
}
