//! The exporter as the tests see it: a `/metrics` scraper that keeps every scrape of a run,
//! and a bare HTTP GET.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::child::Child;

/// The figures of one `/metrics` scrape that these tests compare.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// `vector_search_queries_total` summed over namespaces, by operation.
    pub queries: BTreeMap<String, f64>,
    /// `vector_search_errors_total` summed over namespaces and operations, by error_type.
    pub errors: BTreeMap<String, f64>,
    /// `replica_up`, when present.
    pub replica_up: Option<f64>,
}

fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let end = labels[start..].find('"')? + start;
    Some(&labels[start..end])
}

fn parse_scrape(text: &str) -> Scrape {
    let mut s = Scrape::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        match name {
            "vector_search_queries_total" => {
                let op = label(labels, "operation").unwrap_or_default().to_string();
                *s.queries.entry(op).or_default() += value;
            }
            "vector_search_errors_total" if value > 0.0 => {
                let kind = label(labels, "error_type").unwrap_or_default().to_string();
                *s.errors.entry(kind).or_default() += value;
            }
            "replica_up" => s.replica_up = Some(value),
            _ => {}
        }
    }
    s
}

/// Scrapes `/metrics` every 50 ms until the exporter goes away; keeps every scrape.
pub struct Scraper {
    scrapes: Arc<Mutex<Vec<(Instant, Scrape)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Scraper {
    pub fn start(addr: SocketAddr) -> Scraper {
        let scrapes = Arc::new(Mutex::new(Vec::new()));
        let into = scrapes.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Some(body) = http_get(addr).await {
                    into.lock()
                        .unwrap()
                        .push((Instant::now(), parse_scrape(&body)));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Scraper { scrapes, task }
    }

    /// The latest scrape.
    pub fn last(&self) -> Option<Scrape> {
        self.scrapes.lock().unwrap().last().map(|(_, s)| s.clone())
    }

    /// Total queries in the latest scrape.
    pub fn queries(&self) -> f64 {
        self.last().map_or(0.0, |s| s.queries.values().sum())
    }

    /// Waits until the harness has sent `n` queries (its load is running).
    pub async fn wait_queries(&self, n: f64, child: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.queries() < n {
            assert!(Instant::now() < deadline, "no load:\n{}", child.stderr());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every scrape, once the run is over.
    pub fn stop(self) -> Vec<(Instant, Scrape)> {
        self.task.abort();
        self.scrapes.lock().unwrap().clone()
    }
}

pub async fn http_get(addr: SocketAddr) -> Option<String> {
    let get = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.ok()?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.contains(" 200 ").then(|| body.to_string())
    };
    tokio::time::timeout(Duration::from_secs(2), get)
        .await
        .ok()
        .flatten()
}
