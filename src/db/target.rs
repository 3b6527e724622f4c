//! A database endpoint given by the user: parsed once, connected to many times, and never
//! shown with its password.
//!
//! URLs (`postgres://user:pass@host:port/db?sslmode=require`) and libpq key=value strings are
//! both accepted, as `tokio_postgres::Config` parses them. `PGPASSWORD`, then the password
//! file (`PGPASSFILE` or `~/.pgpass`, see [`super::pgpass`]) fill in a missing password, as
//! libpq does, so a password need not sit in a URL at all. The TLS modes that
//! tokio-postgres does not parse (`verify-ca`, `verify-full`, and `sslrootcert`) are taken out
//! of the string first ([`super::conninfo`]) and applied to our own native-tls connector,
//! which is built once per endpoint and shared by its clones.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use postgres_native_tls::MakeTlsConnector;
use tokio::sync::OnceCell;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::Config;

/// Why a connection string was refused.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The string did not parse; the message never repeats the string itself.
    #[error(
        "invalid database URL ({0}); expected postgres://user@host:port/dbname or key=value pairs"
    )]
    Parse(String),
    /// The TLS settings could not be turned into a connector.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// `PGPASSFILE` could not be used.
    #[error("{0}")]
    PassFile(String),
}

/// How much of the server's certificate is checked, as libpq's `sslmode` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVerify {
    /// Encrypt when asked, check nothing (`prefer`, `require`).
    None,
    /// Check the chain but not the host name (`verify-ca`).
    Chain,
    /// Check the chain and the host name (`verify-full`).
    Full,
}

/// One database endpoint.
#[derive(Clone)]
pub struct Target {
    config: Config,
    verify: TlsVerify,
    root_cert: Option<PathBuf>,
    /// Filled on the first TLS connection and shared by clones: building a connector parses
    /// CA certificates, milliseconds of CPU that every pooled connection would pay again.
    tls: Arc<OnceCell<MakeTlsConnector>>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Config's own Debug redacts the password too, but ours is shorter and certain.
        write!(f, "Target({})", self.display())
    }
}

impl Target {
    /// Parses a URL or key=value string. A missing password is taken from `PGPASSWORD`.
    pub fn parse(raw: &str) -> Result<Target, TargetError> {
        let stripped = super::conninfo::take_tls_options(raw).map_err(TargetError::Parse)?;
        let (verify, root_cert) = (stripped.verify, stripped.root_cert);
        let mut config =
            Config::from_str(&stripped.rest).map_err(|e| TargetError::Parse(e.to_string()))?;
        if config.get_hosts().is_empty() {
            config.host("127.0.0.1");
        }
        if config.get_user().is_none() {
            config.user(std::env::var("PGUSER").unwrap_or_else(|_| "postgres".into()));
        }
        if config.get_password().is_none() {
            if let Ok(password) = std::env::var("PGPASSWORD") {
                config.password(password);
            }
        }
        if verify != TlsVerify::None && config.get_ssl_mode() != SslMode::Disable {
            config.ssl_mode(SslMode::Require);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("pgvector-loadtest");
        let mut target = Target {
            config,
            verify,
            root_cert,
            tls: Arc::default(),
        };
        target.password_from_file()?;
        Ok(target)
    }

    /// Without a password in the string or `PGPASSWORD`, libpq's password file supplies it.
    /// A problem with a file named by `PGPASSFILE` is an error; `~/.pgpass` is skipped.
    fn password_from_file(&mut self) -> Result<(), TargetError> {
        let Some((file, explicit)) = self
            .config
            .get_password()
            .is_none()
            .then(super::pgpass::location)
            .flatten()
        else {
            return Ok(());
        };
        let user = self.config.get_user().unwrap_or("postgres").to_string();
        match super::pgpass::lookup(&file, &self.host(), self.port(), &self.dbname(), &user) {
            Ok(Some(password)) => {
                self.config.password(password);
            }
            Ok(None) => {}
            Err(e) if explicit => return Err(TargetError::PassFile(e)),
            Err(_) => {}
        }
        Ok(())
    }

    /// Wraps an already built config (the embedded server's).
    pub fn from_config(mut config: Config) -> Target {
        config.application_name("pgvector-loadtest");
        Target {
            config,
            verify: TlsVerify::None,
            root_cert: None,
            tls: Arc::default(),
        }
    }

    /// The same endpoint under another `application_name`, so the harness's side connections
    /// (ground truth, monitoring) can be told apart from the measured ones on the server.
    pub fn with_application_name(&self, name: &str) -> Target {
        let mut t = self.clone();
        t.config.application_name(name);
        t
    }

    /// The tokio-postgres config, password included: for connecting only.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `host:port/dbname`, safe to print and to put in reports.
    pub fn display(&self) -> String {
        format!("{}:{}/{}", self.host(), self.port(), self.dbname())
    }

    /// The first host, as text.
    pub fn host(&self) -> String {
        match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "127.0.0.1".into(),
        }
    }

    /// The first port (5432 when none is given).
    pub fn port(&self) -> u16 {
        self.config.get_ports().first().copied().unwrap_or(5432)
    }

    /// The database name (the user name when none is given, as libpq does).
    pub fn dbname(&self) -> String {
        self.config
            .get_dbname()
            .or(self.config.get_user())
            .unwrap_or("postgres")
            .to_string()
    }

    /// The password, if any: only for tools that need it in their environment (never printed).
    pub fn password(&self) -> Option<String> {
        self.config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
    }

    /// `PGSSLMODE` (and `PGSSLROOTCERT` when the certificate is verified) for a libpq tool
    /// such as pgbench, so that it checks the server exactly as our own connections do
    /// before it is handed the password.
    pub fn libpq_ssl_env(&self) -> Vec<(&'static str, OsString)> {
        let mode = match (self.config.get_ssl_mode(), self.verify) {
            (SslMode::Disable, _) => "disable",
            (_, TlsVerify::Full) => "verify-full",
            (_, TlsVerify::Chain) => "verify-ca",
            (SslMode::Require, TlsVerify::None) => "require",
            _ => "prefer",
        };
        let mut env = vec![("PGSSLMODE", OsString::from(mode))];
        if mode.starts_with("verify") {
            // Without sslrootcert our connector trusts the system store, which libpq 16+
            // calls `system` (older libpq would look for ~/.postgresql/root.crt instead).
            let root = match &self.root_cert {
                Some(path) => path.clone().into_os_string(),
                None => "system".into(),
            };
            env.push(("PGSSLROOTCERT", root));
        }
        env
    }

    /// A TLS connector for the requested `sslmode`. With `disable` or a server without TLS
    /// (`prefer`), tokio-postgres never uses it.
    fn build_tls(&self) -> Result<MakeTlsConnector, TargetError> {
        #[cfg(test)]
        tests::TLS_BUILDS.with(|n| n.set(n.get() + 1));
        let mut builder = native_tls::TlsConnector::builder();
        match self.verify {
            TlsVerify::None => {
                // Nothing is verified, so no CA is trusted either.
                builder
                    .disable_built_in_roots(true)
                    .danger_accept_invalid_certs(true)
                    .danger_accept_invalid_hostnames(true);
            }
            TlsVerify::Chain => {
                builder.danger_accept_invalid_hostnames(true);
            }
            TlsVerify::Full => {}
        }
        if let (Some(path), TlsVerify::Chain | TlsVerify::Full) = (&self.root_cert, self.verify) {
            let fail = |e: &dyn fmt::Display| TargetError::Tls(format!("{}: {e}", path.display()));
            let pem = std::fs::read(path).map_err(|e| fail(&e))?;
            let certs = native_tls::Certificate::stack_from_pem(&pem).map_err(|e| fail(&e))?;
            if certs.is_empty() {
                return Err(fail(&"no PEM certificate in the file"));
            }
            // libpq trusts only the sslrootcert file: the system's CAs must not be added to it.
            builder.disable_built_in_roots(true);
            for cert in certs {
                builder.add_root_certificate(cert);
            }
        }
        let connector = builder
            .build()
            .map_err(|e| TargetError::Tls(e.to_string()))?;
        Ok(MakeTlsConnector::new(connector))
    }

    /// Opens one connection and drives it on a background task.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, ConnectError> {
        if self.config.get_ssl_mode() == SslMode::Disable {
            let (client, connection) = self.config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            return Ok(client);
        }
        // A failed build is not cached: the next connection tries again (a CA file put back).
        let tls = self
            .tls
            .get_or_try_init(|| async { self.build_tls() })
            .await?
            .clone();
        let (client, connection) = self.config.connect(tls).await?;
        tokio::spawn(async move {
            // The error, if any, surfaces on the client's next call as is_closed().
            let _ = connection.await;
        });
        Ok(client)
    }
}

/// A failed connection attempt.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TLS could not be set up.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The server could not be reached or refused us.
    #[error("{}", describe_pg_error(.0))]
    Postgres(#[from] tokio_postgres::Error),
}

/// One line for a database error: SQLSTATE message when there is one, else the cause chain.
pub fn describe_pg_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        if crate::workload::failure::is_prepared_statement_lost(code) {
            let hint = crate::workload::failure::POOLER_HINT;
            return format!("{} (SQLSTATE {code}); {hint}", db.message());
        }
        return format!("{} (SQLSTATE {code})", db.message());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Connectors built on this thread (a current-thread test runtime builds on its own).
        pub(super) static TLS_BUILDS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    fn builds() -> usize {
        TLS_BUILDS.with(|n| n.get())
    }

    /// A loopback port that refuses connections: the connector is built before any I/O, so
    /// a refused connection has still built (or reused) it.
    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn tls_connector_is_built_once_per_target_and_shared_by_clones() {
        let url = format!(
            "postgres://u@127.0.0.1:{}/db?sslmode=require",
            closed_port()
        );
        let t = Target::parse(&url).unwrap();
        let before = builds();
        for target in [&t, &t, &t.clone(), &t.with_application_name("side")] {
            let err = target.connect().await.unwrap_err();
            assert!(matches!(err, ConnectError::Postgres(_)), "{err}");
        }
        assert_eq!(builds() - before, 1, "one connector for one target");
        let first = t.tls.get().expect("cached") as *const MakeTlsConnector;
        let clone = t.clone();
        assert!(std::ptr::eq(first, clone.tls.get().unwrap()));
        // Another target has its own; sslmode=disable builds none.
        let _ = Target::parse(&url).unwrap().connect().await;
        assert_eq!(builds() - before, 2);
        let off = Target::parse(&url.replace("require", "disable")).unwrap();
        let _ = off.connect().await;
        assert_eq!(builds() - before, 2);
    }

    #[tokio::test]
    async fn a_failed_tls_setup_is_a_target_error_and_is_retried() {
        let url = format!(
            "postgres://u@127.0.0.1:{}/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            closed_port()
        );
        let t = Target::parse(&url).unwrap();
        let before = builds();
        for _ in 0..2 {
            let err = t.connect().await.unwrap_err();
            assert!(
                matches!(&err, ConnectError::Target(TargetError::Tls(m)) if m.contains("/nonexistent/ca.pem")),
                "{err}"
            );
        }
        assert_eq!(builds() - before, 2);
        assert!(t.tls.get().is_none());
    }

    #[test]
    fn libpq_tools_get_the_same_ssl_settings() {
        let env = |raw: &str| -> Vec<(&str, String)> {
            Target::parse(raw)
                .unwrap()
                .libpq_ssl_env()
                .into_iter()
                .map(|(k, v)| (k, v.into_string().unwrap()))
                .collect()
        };
        let u = "postgres://u@h/db";
        assert_eq!(env(u), [("PGSSLMODE", "prefer".into())]);
        for mode in ["disable", "prefer", "require"] {
            assert_eq!(
                env(&format!("{u}?sslmode={mode}&sslrootcert=/ca.pem")),
                [("PGSSLMODE", mode.into())]
            );
        }
        assert_eq!(
            env(&format!("{u}?sslmode=verify-full&sslrootcert=/my%20ca.pem")),
            [
                ("PGSSLMODE", "verify-full".into()),
                ("PGSSLROOTCERT", "/my ca.pem".into())
            ]
        );
        assert_eq!(
            env("host=h sslmode=verify-ca"),
            [
                ("PGSSLMODE", "verify-ca".into()),
                ("PGSSLROOTCERT", "system".into())
            ]
        );
    }

    #[test]
    fn quoted_key_value_password_survives_intact() {
        let t = Target::parse(r"host=h user=u password='a  b\'c\\d  ' dbname=x").unwrap();
        assert_eq!(t.password().as_deref(), Some(r"a  b'c\d  "));
        assert_eq!(t.display(), "h:5432/x");
    }

    #[test]
    fn url_with_encoded_password_parses_and_display_hides_it() {
        let t = Target::parse("postgres://bob:p%40ss%2Fw%25rd@db.example:6543/vec").unwrap();
        assert_eq!(t.password().as_deref(), Some("p@ss/w%rd"));
        assert_eq!(t.display(), "db.example:6543/vec");
        assert!(!format!("{t:?}").contains("p@ss"));
    }

    #[test]
    fn key_value_form_and_verify_full_are_understood() {
        let t = Target::parse(
            "host=10.0.0.1 port=5433 dbname=x user=u password=secret sslmode=verify-full sslrootcert=/tmp/ca.pem",
        )
        .unwrap();
        assert_eq!(t.display(), "10.0.0.1:5433/x");
        assert_eq!(t.verify, TlsVerify::Full);
        assert_eq!(t.root_cert, Some(PathBuf::from("/tmp/ca.pem")));
        assert_eq!(t.config().get_ssl_mode(), SslMode::Require);
    }

    #[test]
    fn garbage_is_a_parse_error_without_echo() {
        let err = Target::parse("postgres://u:topsecret@host:notaport/db").unwrap_err();
        assert!(matches!(err, TargetError::Parse(_)));
        assert!(!err.to_string().contains("topsecret"));
    }
}
