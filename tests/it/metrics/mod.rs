//! The Prometheus exporter against real parts: embedded primaries (one with a streaming
//! replica), the built binary, and a real Prometheus (Debian package `prometheus`).
//!
//! - [`exporter`]: the poller's SQL on a partitioned table (parents are the sums of their
//!   partitions, row counts exact once statistics are flushed, replication lag zero when caught
//!   up, series that vanish rather than go stale when a replica or the primary goes away);
//!   connections counted server-wide, per database, as `max_connections` counts them;
//!   `/metrics` in the text format; a busy `--metrics-port` is a one-line usage error; the
//!   `metrics` command serves until SIGINT.
//! - [`contract`]: the contract with `monitoring/`. During a short load run scraped by
//!   Prometheus, every dashboard panel's query (with `$namespace` substituted) returns data
//!   through Prometheus's HTTP API, `$namespace` filters, every series an alert rule names
//!   exists ([`promql`] finds them), and every rule evaluates without error.

mod contract;
mod exporter;
mod promql;

use std::net::SocketAddr;

use pgvector_loadtest::db::embedded::{
    default_home, ensure_install, EmbeddedOptions, EmbeddedServer,
};
use pgvector_loadtest::db::target::Target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::{temp_dir, url_of};

/// The repository's `monitoring/` folder.
const MONITORING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/monitoring");

/// A primary and, on request, one streaming replica, in a private temp home.
pub struct Cluster {
    pub primary: EmbeddedServer,
    pub replica: Option<EmbeddedServer>,
    _home: tempfile::TempDir,
}

impl Cluster {
    pub async fn start(with_replica: bool) -> Cluster {
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

    pub fn replica_port(&self) -> u16 {
        self.replica().port()
    }

    pub fn replica(&self) -> &EmbeddedServer {
        self.replica.as_ref().expect("replica")
    }
}

pub fn target(server: &EmbeddedServer) -> Target {
    Target::parse(&url_of(server, "postgres")).unwrap()
}

pub async fn client(server: &EmbeddedServer) -> tokio_postgres::Client {
    target(server).connect().await.expect("connect")
}

/// `GET path` over HTTP/1.0 (no chunking); returns status, headers and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
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

/// One sample of `text` (the exposition format) whose line starts with `prefix`.
pub fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
