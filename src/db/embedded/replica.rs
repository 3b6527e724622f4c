//! A streaming replica of an embedded server: `pg_basebackup -R`, then the same launch.

use super::*;

impl EmbeddedServer {
    /// Creates a streaming replica of this server in `home/data/<name>`
    /// (wiped first), starts it on a free port and waits until it answers
    /// queries and reports `pg_is_in_recovery()`.
    pub async fn start_replica(&self, name: &str) -> Result<EmbeddedServer, EmbeddedError> {
        let home = &self.options.home;
        let data = home.join("data").join(name);
        let log = Log::open(home.join("logs").join(format!("{name}.log")))?;
        make_data_dir(&data, self.user)?;
        let program = self.bin_dir.join("pg_basebackup");
        let mut cmd =
            pg_command(&program, home, self.user, &log.file).map_err(io_err(&log.path))?;
        cmd.args(["-h", "127.0.0.1", "-U", "postgres", "-R", "-X", "stream"])
            .args(["--checkpoint=fast", "--no-password", "-p"])
            .arg(self.port.to_string())
            .arg("-D")
            .arg(&data);
        // -R then stores it in the replica's primary_conninfo (mode 0600), which the
        // replica needs to stream.
        cmd.env("PGPASSWORD", &self.password);
        if !run_to_end(cmd, &program).await? {
            return Err(EmbeddedError::BaseBackupFailed {
                log_tail: log.tail(),
                log: log.path.clone(),
            });
        }
        let options = EmbeddedOptions {
            name: name.to_string(),
            port: None,
            wipe: false,
            ..self.options.clone()
        };
        // A copy of the primary has the primary's password.
        auth::write(&password_path(home, name), &self.password)?;
        let (bin, password) = (self.bin_dir.clone(), self.password.clone());
        let replica = Self::launch(options, bin, data, self.user, log, password).await?;
        // A hot standby only accepts queries once consistent, still in recovery.
        let in_recovery = async {
            let client = replica.connect().await?;
            client.query_one("SELECT pg_is_in_recovery()", &[]).await
        };
        match in_recovery.await {
            Ok(row) if row.get::<_, bool>(0) => Ok(replica),
            Ok(_) => Err(EmbeddedError::NotReplica(replica.log_path.clone())),
            Err(source) => Err(EmbeddedError::Postgres {
                context: format!("checking recovery state of replica {name}"),
                source,
            }),
        }
    }
}
