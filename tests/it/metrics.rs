//! The Prometheus exporter against real parts: an embedded primary with one streaming replica,
//! the built binary, and a real Prometheus (Debian package `prometheus`) scraping it.
//!
//! - The poller's SQL on a partitioned table: parents are the sums of their partitions, row
//!   counts are exact once statistics are flushed, replication lag is zero when caught up, and
//!   series vanish (rather than repeat stale values) when a replica or the primary goes away.
//! - `/metrics` is the text format; a busy `--metrics-port` is a one-line usage error; the
//!   `metrics` command serves until SIGINT.
//! - The contract with `monitoring/`: during a short load run, every dashboard panel's query
//!   (with `$namespace` substituted) returns data through Prometheus's HTTP API, `$namespace`
//!   filters, every series an alert rule names exists, and every rule evaluates without error.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pgvector_loadtest::db::embedded::{
    default_home, ensure_install, EmbeddedOptions, EmbeddedServer,
};
use pgvector_loadtest::db::target::Target;
use pgvector_loadtest::metrics::server::{families, interval_hit_ratio, Poller};
use pgvector_loadtest::metrics::{exporter, Sidecar};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::{free_port, run_bin, temp_dir, BIN, SMALL_DATA};

const MONITORING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/monitoring");

/// A primary and, on request, one streaming replica, in a private temp home.
struct Cluster {
    primary: EmbeddedServer,
    replica: Option<EmbeddedServer>,
    _home: tempfile::TempDir,
}

impl Cluster {
    async fn start(with_replica: bool) -> Cluster {
        let home = temp_dir();
        let bin = tokio::task::spawn_blocking(|| ensure_install(&default_home(), None))
            .await
            .unwrap()
            .expect("embedded PostgreSQL install");
        let primary = EmbeddedServer::start(EmbeddedOptions {
            home: home.path().to_path_buf(),
            pg_bin: Some(bin),
            max_connections: 100,
            settings: vec![("shared_buffers".into(), "64MB".into())],
            ..EmbeddedOptions::default()
        })
        .await
        .expect("primary starts");
        let replica = match with_replica {
            true => Some(primary.start_replica("replica1").await.expect("replica")),
            false => None,
        };
        Cluster {
            primary,
            replica,
            _home: home,
        }
    }

    fn replica_port(&self) -> u16 {
        self.replica.as_ref().expect("replica").port()
    }
}

fn target(port: u16) -> Target {
    Target::parse(&format!("postgres://postgres@127.0.0.1:{port}/postgres")).unwrap()
}

async fn client(port: u16) -> tokio_postgres::Client {
    target(port).connect().await.expect("connect")
}

/// `GET path` over HTTP/1.0 (no chunking); returns status, headers and body.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    (status, head.to_string(), body.to_string())
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One sample of `text` (the exposition format) whose line starts with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn cache_hit_ratio_is_over_the_interval() {
    // 900 hits and 100 reads in the interval, whatever came before: 0.9, not the cumulative.
    assert_eq!(interval_hit_ratio((10, 1_000), (910, 1_100)), Some(0.9));
    assert_eq!(interval_hit_ratio((5, 5), (5, 5)), None, "nothing read");
    assert_eq!(interval_hit_ratio((900, 100), (10, 1)), None, "stats reset");
}

#[tokio::test]
async fn poller_reads_partitions_replication_and_drops_what_it_cannot_see() {
    let cluster = Cluster::start(true).await;
    let db = client(cluster.primary.port()).await;
    db.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS vector;
         CREATE TABLE docs (ns text, id int, v vector(3), PRIMARY KEY (ns, id)) PARTITION BY LIST (ns);
         CREATE TABLE docs_a PARTITION OF docs FOR VALUES IN ('a');
         CREATE TABLE docs_b PARTITION OF docs FOR VALUES IN ('b');
         CREATE TABLE plain (id int PRIMARY KEY);
         INSERT INTO docs SELECT CASE WHEN i % 4 = 0 THEN 'a' ELSE 'b' END, i,
           ARRAY[random(), random(), random()]::vector FROM generate_series(1, 4000) i;
         INSERT INTO plain SELECT generate_series(1, 123);
         CREATE INDEX docs_hnsw ON docs USING hnsw (v vector_cosine_ops);
         SELECT pg_stat_force_next_flush();",
    )
    .await
    .unwrap();
    drop(db);
    let replica_label = format!("127.0.0.1:{}", cluster.replica_port());
    let mut poller = Poller::new(
        target(cluster.primary.port()),
        vec![target(cluster.replica_port())],
    );
    let first = poller.poll().await;
    assert!(
        first.cache_hit_ratio.is_none(),
        "no interval before the second poll"
    );
    // Until the replica has replayed everything, its lag may be non-zero.
    let deadline = Instant::now() + Duration::from_secs(30);
    let state = loop {
        let snapshot = poller.poll().await;
        let state = snapshot.primary.clone().expect("primary polled");
        let caught_up = state.replication.len() == 1
            && state.replication[0].1 == 0.0
            && state.replication[0].2 == Some(0.0);
        let counted = state.tables.iter().any(|t| t.1 == "docs" && t.3 == 4000.0);
        // Backends flush their block counts at most once a second, so two quick polls may
        // see no reads at all in between: then there is no ratio, rather than a stale one.
        if let Some(ratio) = snapshot.cache_hit_ratio {
            assert!((0.0..=1.0).contains(&ratio), "{ratio}");
        }
        if caught_up && counted && snapshot.cache_hit_ratio.is_some() {
            assert_eq!(snapshot.replicas, vec![(replica_label.clone(), true)]);
            break state;
        }
        assert!(
            Instant::now() < deadline,
            "not caught up / counted: {state:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(state.pgvector_version, "0.8.6");
    assert!(state.server_version.starts_with("18."), "{state:?}");
    assert_eq!(state.max_connections, 100.0);
    assert!(state.connections.2 >= 1.0, "the poller's own connection");
    let table = |name: &str| {
        state
            .tables
            .iter()
            .find(|t| t.0 == "public" && t.1 == name)
            .unwrap_or_else(|| panic!("{name} missing: {:?}", state.tables))
    };
    assert_eq!(table("docs_a").3, 1000.0);
    assert_eq!(table("docs_b").3, 3000.0);
    assert_eq!(table("plain").3, 123.0);
    assert!(table("docs_a").2 > 0.0 && table("plain").2 > 0.0);
    assert_eq!(table("docs").2, table("docs_a").2 + table("docs_b").2);
    let index = |name: &str| {
        state
            .indexes
            .iter()
            .find(|i| i.1 == name)
            .unwrap_or_else(|| panic!("{name} missing: {:?}", state.indexes))
    };
    let parent = index("docs_hnsw");
    assert_eq!((parent.2.as_str(), parent.3.as_str()), ("docs", "hnsw"));
    let parts: f64 = state
        .indexes
        .iter()
        .filter(|i| i.3 == "hnsw" && (i.2 == "docs_a" || i.2 == "docs_b"))
        .map(|i| i.4)
        .sum();
    assert!(parts > 0.0);
    assert_eq!(
        parent.4, parts,
        "a partitioned index is its partitions' sum"
    );
    assert_eq!(index("plain_pkey").2, "plain");

    // The replica stops: replica_up 0, and its lag series disappears instead of going stale.
    cluster.replica.unwrap().stop().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let snapshot = poller.poll().await;
        let primary = snapshot.primary.as_ref().expect("primary still up");
        if primary.replication.is_empty() {
            assert_eq!(snapshot.replicas, vec![(replica_label.clone(), false)]);
            let text = render(&snapshot);
            assert_eq!(sample(&text, "replica_up{"), Some(0.0), "{text}");
            assert!(!text.contains("replication_lag_seconds{"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "walsender still listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The primary stops: db_up 0 and nothing else from it.
    cluster.primary.stop().await.unwrap();
    let snapshot = poller.poll().await;
    assert!(snapshot.primary.is_none());
    let text = render(&snapshot);
    assert_eq!(sample(&text, "db_up "), Some(0.0), "{text}");
    for gone in [
        "table_size_bytes",
        "db_connections_total",
        "postgres_info",
        "cache_hit_ratio",
    ] {
        assert!(!text.contains(gone), "{gone} still exported: {text}");
    }
}

fn render(snapshot: &pgvector_loadtest::metrics::server::Snapshot) -> String {
    let mut out = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &families(snapshot).unwrap(),
        &mut out,
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn exporter_serves_the_text_format_and_busy_ports_are_usage_errors() {
    let cluster = Cluster::start(false).await;
    let db = client(cluster.primary.port()).await;
    db.batch_execute("CREATE EXTENSION vector").await.unwrap();
    let listener = exporter::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let sidecar = Sidecar::start(
        listener,
        Duration::from_secs(60),
        target(cluster.primary.port()),
        Vec::new(),
    )
    .unwrap();
    let addr = sidecar.addr().expect("running");
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, head, body) = http_get(addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        if body.contains("db_up 1") {
            break body;
        }
        assert!(Instant::now() < deadline, "no db_up 1: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(body.contains("# TYPE db_max_connections gauge"), "{body}");
    assert_eq!(sample(&body, "db_max_connections "), Some(100.0));
    assert!(
        body.contains("postgres_info{pgvector_version=\"0.8.6\""),
        "{body}"
    );
    assert_eq!(http_get(addr, "/nothing").await.0, 404);

    // The binary: a port that is taken is an error before anything runs, for the standalone
    // exporter and for a sidecar whose port was asked for.
    let busy = addr.port().to_string();
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        cluster.primary.port()
    );
    let reports = temp_dir();
    let dir = reports.path().to_str().unwrap();
    for args in [
        vec![
            "metrics",
            "--database-url",
            &url,
            "--metrics-port",
            &busy,
            "--report-dir",
            dir,
        ],
        vec![
            "--database-url",
            &url,
            "--report-dir",
            dir,
            "--users",
            "1",
            "--run-time",
            "5s",
        ],
    ] {
        let env = [("METRICS_PORT", busy.as_str())];
        let line = run_bin(&args, &env).await.usage_error();
        assert!(
            line.contains(&format!("127.0.0.1:{busy}")) && line.contains("in use"),
            "{line}"
        );
    }
    sidecar.stop().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still serving"
    );
}

#[tokio::test]
async fn metrics_command_serves_until_sigint() {
    let cluster = Cluster::start(false).await;
    let port = free_port();
    let reports = temp_dir();
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "metrics",
            "--poll-interval",
            "1s",
            "--metrics-port",
            &port.to_string(),
        ])
        .args([
            "--database-url",
            &format!(
                "postgres://postgres@127.0.0.1:{}/postgres",
                cluster.primary.port()
            ),
        ])
        .args(["--report-dir", reports.path().to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Ok((_, _, body))) = tokio::time::timeout(Duration::from_secs(2), async {
            tokio::net::TcpStream::connect(addr).await?;
            Ok::<_, std::io::Error>(http_get(addr, "/metrics").await)
        })
        .await
        {
            if body.contains("cache_hit_ratio ") {
                break; // two polls done: the interval ratio exists
            }
        }
        assert!(Instant::now() < deadline, "exporter never served two polls");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGINT).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits after SIGINT")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// A real Prometheus, killed (by pid) on drop.
struct Prometheus {
    child: tokio::process::Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    async fn start(scrape: SocketAddr) -> Prometheus {
        let dir = temp_dir();
        let config = dir.path().join("prometheus.yml");
        let rules = Path::new(MONITORING).join("prometheus_alerts.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 rule_files: [{rules:?}]\n\
                 scrape_configs:\n  - job_name: pgvector_loadtest\n    scrape_timeout: 1s\n    \
                 static_configs: [{{targets: [\"{scrape}\"]}}]\n"
            ),
        )
        .unwrap();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let child = tokio::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("run prometheus (Debian package `prometheus`)");
        let prometheus = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(
            tokio::time::timeout(Duration::from_secs(2), async {
                tokio::net::TcpStream::connect(addr).await.ok()?;
                Some(http_get(addr, "/-/ready").await.0)
            })
            .await,
            Ok(Some(200))
        ) {
            assert!(Instant::now() < deadline, "prometheus not ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        prometheus
    }

    /// `GET /api/v1/<path>`; asserts status success and returns `data`.
    async fn api(&self, path: &str) -> Value {
        let (status, _, body) = http_get(self.addr, &format!("/api/v1/{path}")).await;
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        assert!(
            status == 200 && json["status"] == "success",
            "{path}: {status} {body}"
        );
        json["data"].clone()
    }

    /// Instant query at `time`: the result vector.
    async fn query(&self, expr: &str, time: f64) -> Vec<Value> {
        let data = self
            .api(&format!("query?query={}&time={time:.3}", encode(expr)))
            .await;
        data["result"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Every `expr` of every panel of the dashboard, with its panel's title.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = panels.pop() {
        if let Some(inner) = panel["panels"].as_array() {
            panels.extend(inner);
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap().to_string();
            out.push((title, target["expr"].as_str().unwrap().to_string()));
        }
    }
    out
}

fn substitute(expr: &str, namespaces: &str) -> String {
    expr.replace("$namespace", namespaces)
        .replace("$__rate_interval", "30s")
}

/// The vector selectors of a PromQL expression (`name` or `name{matchers}`): identifiers that
/// are not functions, keywords, label lists of by/on/..., numbers, durations or strings.
fn selectors(expr: &str) -> Vec<String> {
    const KEYWORDS: [&str; 13] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
    ];
    const AGGREGATIONS: [&str; 12] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let skip_to = |mut i: usize, close: char| {
        while i < chars.len() && chars[i] != close {
            if chars[i] == '"' {
                i += 1;
                while chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
            }
            i += 1;
        }
        i
    };
    let next_non_space = |mut i: usize| {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            i = skip_to(i + 1, '"') + 1;
        } else if c == '[' {
            i = skip_to(i, ']') + 1;
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let after = next_non_space(i);
            let next = chars.get(after).copied();
            if AGGREGATIONS.contains(&name.as_str()) {
                // `sum by (x) (...)`: the clause comes next, then the parenthesis.
            } else if KEYWORDS.contains(&name.as_str()) {
                if next == Some('(') {
                    i = skip_to(after, ')') + 1;
                }
            } else if next == Some('{') {
                let end = skip_to(after, '}');
                out.push(
                    chars[start..=end]
                        .iter()
                        .collect::<String>()
                        .replace(' ', ""),
                );
                i = end + 1;
            } else if next != Some('(') {
                out.push(name);
            }
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn selector_extraction() {
    let expr =
        "histogram_quantile(0.95, sum by (job, le) (rate(a_bucket{op=~\"x.*\", le!=\"1\"}[5m]))) \
                > 0.05 and on (job) (b / ignoring (x) group_left c) or deriv(d[1h]) * 3600 > 1e9";
    assert_eq!(
        selectors(expr),
        ["a_bucket{op=~\"x.*\",le!=\"1\"}", "b", "c", "d"]
    );
}

/// Headings of the README as GitHub anchors.
fn readme_anchors() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(Path::new(MONITORING).join("../README.md")).unwrap();
    readme
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn dashboard_and_alerts_match_what_a_load_run_exports() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(MONITORING).join("grafana_dashboard.json")).unwrap(),
    )
    .unwrap();
    let cluster = Cluster::start(true).await;
    let exporter_port = free_port();
    let exporter_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, exporter_port));
    let prometheus = Prometheus::start(exporter_addr).await;
    let reports = temp_dir();
    let (primary, replica) = (cluster.primary.port(), cluster.replica_port());
    let run = {
        let db = format!("postgres://postgres@127.0.0.1:{primary}/postgres");
        let rep = format!("postgres://postgres@127.0.0.1:{replica}/postgres");
        let dir = reports.path().to_str().unwrap().to_string();
        let port = exporter_port.to_string();
        tokio::spawn(async move {
            let mut args = vec![
                "--database-url",
                &db,
                "--replica-url",
                &rep,
                "--report-dir",
                &dir,
            ];
            args.extend(SMALL_DATA);
            args.extend(["--users", "10", "--hatch-rate", "10", "--run-time", "40s"]);
            args.extend([
                "--metrics-port",
                &port,
                "--poll-interval",
                "2s",
                "--no-print-metrics",
            ]);
            run_bin(&args, &[]).await
        })
    };

    // Wait until the load has run 35 s (its first operation is when the counters rise), then
    // evaluate everything at that instant: 30 s rate windows are full, the run still going.
    let mut load_started = None;
    let at = loop {
        assert!(
            !run.is_finished(),
            "the run ended before 35 s of load: {}",
            { run.await.unwrap().dump() }
        );
        let t = now();
        let ops = prometheus
            .query("sum(vector_search_queries_total)", t)
            .await;
        let counted = ops
            .first()
            .and_then(|r| r["value"][1].as_str())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        match load_started {
            None if counted > 0.0 => load_started = Some(t),
            Some(start) if t - start >= 35.0 => break t,
            _ => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };

    // Every panel's query returns data, with a finite value somewhere.
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 12, "{queries:?}");
    for (title, expr) in &queries {
        let expr = substitute(expr, "ns_000|ns_001");
        assert!(
            !expr.contains('$'),
            "unsubstituted variable in {title}: {expr}"
        );
        let result = prometheus.query(&expr, at).await;
        let finite = result.iter().any(|r| {
            r["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(f64::is_finite)
        });
        assert!(finite, "panel '{title}': no data for {expr}: {result:?}");
    }
    // $namespace filters: one namespace, two, all four (the variable's own query lists them).
    let qps = queries
        .iter()
        .find(|(t, _)| t.starts_with("Queries Per Second"))
        .unwrap();
    for (value, want) in [("ns_002", 1), ("ns_000|ns_001", 2), (".*", 4)] {
        let result = prometheus.query(&substitute(&qps.1, value), at).await;
        assert_eq!(result.len(), want, "$namespace={value}: {result:?}");
    }
    assert_eq!(result_namespaces(&prometheus, &qps.1, at).await, ["ns_002"]);
    let listed = prometheus
        .api("label/namespace/values?match[]=vector_search_queries_total")
        .await;
    assert_eq!(
        listed,
        serde_json::json!(["ns_000", "ns_001", "ns_002", "ns_003"])
    );

    // Every series named in an alert rule exists; every rule evaluates cleanly.
    let rules = prometheus.api("rules?type=alert").await;
    let anchors = readme_anchors();
    let mut alerts = 0;
    let mut names = BTreeSet::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            alerts += 1;
            let name = rule["name"].as_str().unwrap();
            assert_eq!(rule["health"], "ok", "{name}: {rule}");
            for key in ["summary", "description", "runbook_url"] {
                assert!(rule["annotations"][key].is_string(), "{name} lacks {key}");
            }
            let runbook = rule["annotations"]["runbook_url"].as_str().unwrap();
            let anchor = runbook
                .split_once("README.md#")
                .map(|(_, a)| a)
                .unwrap_or("");
            assert!(
                anchors.contains(anchor),
                "{name}: {runbook} is no README heading"
            );
            for selector in selectors(rule["query"].as_str().unwrap()) {
                let path = format!(
                    "series?match[]={}&start={:.3}&end={at:.3}",
                    encode(&selector),
                    at - 60.0
                );
                let found = prometheus.api(&path).await;
                assert!(
                    found.as_array().is_some_and(|a| !a.is_empty()),
                    "{name}: no series {selector}"
                );
                names.insert(selector.split('{').next().unwrap().to_string());
            }
        }
    }
    assert_eq!(alerts, 15);
    assert!(names.len() >= 12, "{names:?}");
    // The replica is labelled by host:port where configured, and its lag is measured.
    let up = prometheus
        .query(
            &format!("replica_up{{replica=\"127.0.0.1:{replica}\"}} == 1"),
            at,
        )
        .await;
    assert_eq!(up.len(), 1, "{up:?}");
    let recall = prometheus
        .query(
            "vector_search_recall{operation=\"vector_search_single_shard\"}",
            at,
        )
        .await;
    let recall: f64 = recall[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((0.5..=1.0).contains(&recall), "recall {recall}");

    let run = run.await.unwrap();
    run.expect_code(0);
    assert!(
        run.stderr().contains(&format!(
            "metrics exporter on http://127.0.0.1:{exporter_port}/metrics"
        )),
        "{}",
        run.dump()
    );
    // Prometheus's last scrape cannot have counted more operations than the run's summary.
    let summary: Value = serde_json::from_slice(
        &std::fs::read(reports.path().join("load_test_summary.json")).unwrap(),
    )
    .unwrap();
    let total = summary["aggregated"]["count"].as_f64().unwrap();
    let scraped = prometheus
        .query(
            "max_over_time(sum(vector_search_queries_total)[2m:1s])",
            now(),
        )
        .await;
    let scraped: f64 = scraped[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(
        scraped <= total && scraped >= 0.8 * total,
        "scraped {scraped} of {total}"
    );
    drop(prometheus);
    drop(cluster);
}

async fn result_namespaces(prometheus: &Prometheus, expr: &str, at: f64) -> Vec<String> {
    prometheus
        .query(&substitute(expr, "ns_002"), at)
        .await
        .iter()
        .map(|r| r["metric"]["namespace"].as_str().unwrap().to_string())
        .collect()
}
