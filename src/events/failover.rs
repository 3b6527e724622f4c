//! Failover events on a Patroni cluster: `switchover` and `failover` through Patroni's REST
//! API (`--patroni-url`, credentials in the URL's user info), or through the local topology's
//! own script (`--local-cluster DIR`, see deploy/local-ha); `kill_primary` (local topology
//! only) SIGKILLs the leader's Patroni and PostgreSQL. Each waits until a new leader runs and
//! says which.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long an event waits for the new leader.
const NEW_LEADER: Duration = Duration::from_secs(90);

/// Where the cluster is managed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patroni {
    /// REST API URLs (any node's), `http://user:password@host:port`.
    pub urls: Vec<String>,
    /// The local topology's directory (its `cluster.json` names its script).
    pub local_cluster: Option<PathBuf>,
}

impl Patroni {
    /// Whether anything manages the cluster.
    pub fn is_set(&self) -> bool {
        !self.urls.is_empty() || self.local_cluster.is_some()
    }

    /// A switchover to any replica; returns `old → new`.
    pub async fn switchover(&self) -> Result<String, String> {
        if let Some(dir) = &self.local_cluster {
            let out = script(dir, &["switchover"]).await?;
            return Ok(out.split_whitespace().collect::<Vec<_>>().join(" → "));
        }
        let (leader, _) = self.leader_and_replica().await?;
        self.post("/switchover", json!({ "leader": leader }))
            .await?;
        let new = self.wait_for_leader_other_than(&leader).await?;
        Ok(format!("{leader} → {new}"))
    }

    /// A failover to a replica (Patroni promotes it even if the leader is healthy).
    pub async fn failover(&self) -> Result<String, String> {
        let (leader, replica) = self.leader_and_replica().await?;
        let replica = replica.ok_or("failover: no replica to promote")?;
        self.post("/failover", json!({ "candidate": replica }))
            .await?;
        let new = self.wait_for_leader_other_than(&leader).await?;
        Ok(format!("{leader} → {new}"))
    }

    /// SIGKILLs the leader (local topology), then waits for a new one.
    pub async fn kill_primary(&self) -> Result<String, String> {
        let dir = self
            .local_cluster
            .as_ref()
            .ok_or("kill_primary needs --local-cluster DIR (the topology of deploy/local-ha)")?;
        let killed = script(dir, &["kill-primary"]).await?;
        let killed = killed
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_string();
        let deadline = Instant::now() + NEW_LEADER;
        loop {
            let status = script(dir, &["status", "--json"]).await?;
            let status: Value = serde_json::from_str(&status).map_err(|e| e.to_string())?;
            let new = status["nodes"].as_array().into_iter().flatten().find(|n| {
                n["role"]
                    .as_str()
                    .is_some_and(|r| r == "leader" || r == "primary")
                    && n["state"] == "running"
                    && n["name"].as_str() != Some(killed.as_str())
            });
            if let Some(n) = new {
                return Ok(format!(
                    "killed {killed}; {} is the primary",
                    n["name"].as_str().unwrap_or("?")
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "killed {killed}; no new primary within {NEW_LEADER:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The leader's name and a replica's, from any node's `GET /cluster`.
    async fn leader_and_replica(&self) -> Result<(String, Option<String>), String> {
        let cluster = self.get("/cluster").await?;
        let members = cluster["members"].as_array().cloned().unwrap_or_default();
        let name = |m: &Value| m["name"].as_str().map(String::from);
        let leader = members
            .iter()
            .find(|m| m["role"] == "leader")
            .and_then(name)
            .ok_or("no leader in the cluster")?;
        let replica = members
            .iter()
            .find(|m| m["role"] != "leader" && m["state"] != "stopped")
            .and_then(name);
        Ok((leader, replica))
    }

    async fn wait_for_leader_other_than(&self, old: &str) -> Result<String, String> {
        let deadline = Instant::now() + NEW_LEADER;
        loop {
            if let Ok((leader, _)) = self.leader_and_replica().await {
                let cluster = self.get("/cluster").await.unwrap_or_default();
                let running = cluster["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|m| m["name"] == leader.as_str() && m["state"] == "running");
                if leader != old && running {
                    return Ok(leader);
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no new leader within {NEW_LEADER:?}"));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn get(&self, path: &str) -> Result<Value, String> {
        self.each_node(|client, url| client.get(url), path).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        let body = body.to_string();
        self.each_node(
            |client, url| {
                client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body.clone())
            },
            path,
        )
        .await
    }

    /// Sends the request to each node in turn until one answers with success.
    async fn each_node(
        &self,
        build: impl Fn(&reqwest::Client, reqwest::Url) -> reqwest::RequestBuilder,
        path: &str,
    ) -> Result<Value, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let mut last = "no --patroni-url".to_string();
        for base in &self.urls {
            let mut url = reqwest::Url::parse(base).map_err(|e| format!("--patroni-url: {e}"))?;
            let (user, password) = (url.username().to_string(), url.password().map(String::from));
            let _ = url.set_username("");
            let _ = url.set_password(None);
            let url = url.join(path).map_err(|e| e.to_string())?;
            let mut request = build(&client, url.clone());
            if !user.is_empty() {
                request = request.basic_auth(user, password);
            }
            match request.send().await {
                Ok(r) if r.status().is_success() => {
                    let text = r.text().await.unwrap_or_default();
                    return Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)));
                }
                Ok(r) => last = format!("{url}: {}", r.status()),
                Err(e) => last = format!("{url}: {e}"),
            }
        }
        Err(last)
    }
}

/// Runs the local topology's script (named by `DIR/cluster.json`) with `args DIR`; its stdout.
async fn script(dir: &Path, args: &[&str]) -> Result<String, String> {
    let info = std::fs::read_to_string(dir.join("cluster.json"))
        .map_err(|e| format!("{}: {e}", dir.join("cluster.json").display()))?;
    let info: Value = serde_json::from_str(&info).map_err(|e| e.to_string())?;
    let path = info["script"].as_str().ok_or(
        "cluster.json names no script: bring the cluster up with deploy/local-ha/cluster.py",
    )?;
    let (first, rest) = args.split_first().ok_or("no command")?;
    let out = tokio::process::Command::new("python3")
        .arg(path)
        .arg(first)
        .arg(dir)
        .args(rest)
        .output()
        .await
        .map_err(|e| format!("python3 {path}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        return Err(format!(
            "{first}: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
