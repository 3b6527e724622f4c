//! The exporter and its poller, in-process and through the binary.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pgvector_loadtest::db::target::Target;
use pgvector_loadtest::metrics::server::{families, interval_hit_ratio, Poller};
use pgvector_loadtest::metrics::{exporter, Sidecar};

use super::{client, http_get, sample, target, Cluster};
use crate::util::{free_port, run_bin, temp_dir, url_of, BIN};

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
    let db = client(&cluster.primary).await;
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
    let mut poller = Poller::new(target(&cluster.primary), vec![target(cluster.replica())]);
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
    let total: f64 = state.connections.iter().map(|c| c.3).sum();
    assert!(total >= 1.0, "the poller's own connection");
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

#[tokio::test]
async fn connections_are_counted_server_wide_by_database() {
    // max_connections is the server's: connections to another database use it up as well, so
    // the series the alerts divide by it must count them.
    let cluster = Cluster::start(false).await;
    let admin = client(&cluster.primary).await;
    admin.batch_execute("CREATE DATABASE other").await.unwrap();
    let other = Target::parse(&url_of(&cluster.primary, "other")).unwrap();
    let mut extra = Vec::new();
    for _ in 0..7 {
        extra.push(other.connect().await.expect("connect to other"));
    }
    let mut poller = Poller::new(target(&cluster.primary), Vec::new());
    let snapshot = poller.poll().await;
    let text = render(&snapshot);
    let value = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}: {text}"));
    // `other`: the 7 idle clients. `postgres`: this test's client (idle) and the poller's own
    // connection, running the poll (active).
    assert_eq!(value("db_connections_total{datname=\"other\"}"), 7.0);
    assert_eq!(value("db_connections_idle{datname=\"other\"}"), 7.0);
    assert_eq!(value("db_connections_active{datname=\"other\"}"), 0.0);
    assert_eq!(value("db_connections_total{datname=\"postgres\"}"), 2.0);
    assert_eq!(value("db_connections_active{datname=\"postgres\"}"), 1.0);
    let sum: f64 = text
        .lines()
        .filter(|l| l.starts_with("db_connections_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    let server: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sum, 9.0, "{text}");
    assert_eq!(sum, server as f64);
    drop(extra);
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
    let db = client(&cluster.primary).await;
    db.batch_execute("CREATE EXTENSION vector").await.unwrap();
    let listener = exporter::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let sidecar = Sidecar::start(
        listener,
        Duration::from_secs(60),
        target(&cluster.primary),
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
    let url = url_of(&cluster.primary, "postgres");
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
        .args(["--database-url", &url_of(&cluster.primary, "postgres")])
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
