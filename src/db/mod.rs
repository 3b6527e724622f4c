//! Everything that talks to PostgreSQL: endpoints, the embedded server, the pool, the schema
//! and seeding.

pub mod conninfo;
pub mod embedded;
pub mod pgpass;
pub mod pool;
pub mod schema;
pub mod seed;
pub mod target;
pub mod versions;

use embedded::{EmbeddedOptions, EmbeddedServer};
use target::Target;

use crate::shutdown::Children;
use crate::Exit;

/// Embedded-server settings (used when no database URL is given).
#[derive(Debug, Clone)]
pub struct Embedded {
    /// Streaming replicas to start.
    pub replicas: u32,
    /// Delete the data directory first.
    pub wipe: bool,
    /// Use this PostgreSQL bin directory instead of the wheel.
    pub pg_bin: Option<std::path::PathBuf>,
}

/// The endpoints a run uses, and the embedded servers it started (stopped by [`Endpoints::shutdown`]).
pub struct Endpoints {
    /// The primary (writes; reads unless replicas are used).
    pub primary: Target,
    /// Read endpoints.
    pub replicas: Vec<Target>,
    // The embedded primary first, then its replicas; locked only to stop or start one.
    servers: tokio::sync::Mutex<Vec<EmbeddedServer>>,
}

/// Why the endpoints could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Provisioning the embedded server failed.
    #[error("embedded PostgreSQL: {0}")]
    Embedded(#[from] embedded::EmbeddedError),
}

impl EndpointError {
    /// The exit code: the server the run needs could not be provided, so nothing ran (2).
    pub fn exit(&self) -> Exit {
        match self {
            EndpointError::Embedded(_) => Exit::Usage,
        }
    }
}

impl Endpoints {
    /// Uses the configured URLs, or provisions the embedded server (and its replicas).
    pub async fn open(
        database: Option<&Target>,
        given_replicas: &[Target],
        embedded: &Embedded,
        children: Children,
    ) -> Result<Endpoints, EndpointError> {
        if let Some(primary) = database {
            return Ok(Endpoints {
                primary: primary.clone(),
                replicas: given_replicas.to_vec(),
                servers: Default::default(),
            });
        }
        let pg_bin = embedded.pg_bin.clone().or_else(local_pg_bin);
        if let Some(bin) = &pg_bin {
            eprintln!("using the PostgreSQL installation in {}", bin.display());
        }
        let options = EmbeddedOptions {
            wipe: embedded.wipe,
            pg_bin,
            children,
            ..EmbeddedOptions::default()
        };
        eprintln!(
            "starting embedded PostgreSQL + pgvector (data in {}) ...",
            options.home.display()
        );
        let primary = EmbeddedServer::start(options).await?;
        eprintln!(
            "embedded server on 127.0.0.1:{} (log: {})",
            primary.port(),
            primary.log_path().display()
        );
        let mut replicas = given_replicas.to_vec();
        let mut servers = Vec::new();
        for i in 0..embedded.replicas {
            let replica = primary.start_replica(&format!("replica{}", i + 1)).await?;
            eprintln!(
                "embedded replica {} on 127.0.0.1:{} (log: {})",
                i + 1,
                replica.port(),
                replica.log_path().display()
            );
            replicas.push(embedded_target(&replica));
            servers.push(replica);
        }
        let primary_target = embedded_target(&primary);
        servers.insert(0, primary);
        Ok(Endpoints {
            primary: primary_target,
            replicas,
            servers: tokio::sync::Mutex::new(servers),
        })
    }

    /// Stops the embedded servers this run started, replicas first.
    pub async fn shutdown(self) {
        let mut servers = self.servers.into_inner();
        while let Some(server) = servers.pop() {
            if let Err(e) = server.stop().await {
                eprintln!("warning: stopping embedded server: {e}");
            }
        }
    }

    /// Whether the primary is the embedded server.
    pub fn is_embedded(&self) -> bool {
        self.servers.try_lock().map_or(true, |s| !s.is_empty())
    }

    /// Stops (`running` false) or starts again embedded server `i` (0: the primary, 1…: its
    /// replicas) in place. Only servers this run started can be stopped.
    pub async fn set_running(&self, i: usize, running: bool) -> Result<(), String> {
        let mut servers = self.servers.lock().await;
        let count = servers.len();
        let server = servers.get_mut(i).ok_or_else(|| {
            if count == 0 {
                "only the embedded servers this run started can be stopped and started".to_string()
            } else {
                format!("no embedded server {i}: this run has {count} (0 is the primary)")
            }
        })?;
        let done = if running {
            server.restart().await
        } else {
            server.halt().await
        };
        done.map_err(|e| e.to_string())
    }
}

/// A PostgreSQL on PATH whose share directory has pgvector, if there is one: users who have
/// one need not download the wheel.
fn local_pg_bin() -> Option<std::path::PathBuf> {
    let ask = |flag: &str| -> Option<String> {
        let out = std::process::Command::new("pg_config")
            .arg(flag)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let share = ask("--sharedir")?;
    let bin = ask("--bindir")?;
    let has_vector = std::path::Path::new(&share)
        .join("extension/vector.control")
        .is_file();
    (has_vector && std::path::Path::new(&bin).join("postgres").is_file()).then(|| bin.into())
}

/// The embedded server as an endpoint, its password included (it never trusts anyone).
fn embedded_target(server: &EmbeddedServer) -> Target {
    Target::from_config(server.config())
}
