//! The dashboard and the alert rules against what a load run exports, through a real
//! Prometheus.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use super::promql::selectors;
use super::{http_get, Cluster, MONITORING};
use crate::util::{encode, free_port, run_bin, temp_dir, url_of, SMALL_DATA};

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
    let replica = cluster.replica_port();
    let run = {
        let db = url_of(&cluster.primary, "postgres");
        let rep = url_of(cluster.replica(), "postgres");
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
