//! The embedded server's superuser password: every cluster gets its own, random, and every
//! connection (host, replication, and the unused local socket) must present it.
//!
//! With trust authentication any local account could connect as superuser while a run is
//! going. The password is generated when `initdb` runs and kept in `home/data/<name>.password`,
//! mode 0600, owned by the harness's user. It sits beside the data directory rather than in
//! it: the server user (`nobody` when we are root) has no need to read it, and
//! `pg_basebackup` copies every file in the data directory as that user.
//!
//! Clusters made by earlier versions trusted everyone and have no password file. They hold
//! seeded data (and maybe real embeddings) that is slow or impossible to recreate, so they
//! are converted in place rather than re-initialised: with the server stopped, a
//! single-user-mode `postgres` (which listens on nothing) sets the password from a SCRAM
//! verifier, and `pg_hba.conf` is rewritten to require it. No trusting server ever listens.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::unistd::{chown, Gid, Uid};
use rand::distr::{Alphanumeric, SampleString};
use tokio::io::AsyncWriteExt;

use super::{io_err, pg_command, EmbeddedError, Log, RunAs};

/// 32 alphanumeric characters: about 190 bits, and nothing that needs quoting anywhere.
const PASSWORD_LEN: usize = 32;

/// What an existing cluster is converted to (the lines `initdb --auth=scram-sha-256` writes).
const HBA: &str = "\
# Written by pgvector-loadtest: every connection needs the password (scram-sha-256).
# TYPE  DATABASE     USER  ADDRESS       METHOD
local   all          all                 scram-sha-256
host    all          all   127.0.0.1/32  scram-sha-256
host    all          all   ::1/128       scram-sha-256
local   replication  all                 scram-sha-256
host    replication  all   127.0.0.1/32  scram-sha-256
host    replication  all   ::1/128       scram-sha-256
";

/// Where the password of the cluster in `home/data/<name>` is kept.
pub fn password_path(home: &Path, name: &str) -> PathBuf {
    home.join("data").join(format!("{name}.password"))
}

/// A fresh random password.
pub(super) fn generate() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), PASSWORD_LEN)
}

/// The stored password; `None` when there is no file or it is empty.
fn read(path: &Path) -> Result<Option<String>, EmbeddedError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mode = fs::metadata(path)
        .map_err(io_err(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err(path))?;
    }
    let password = text.trim_end_matches('\n');
    Ok((!password.is_empty()).then(|| password.to_string()))
}

/// Stores `password` with mode 0600, replacing any older file in one rename.
pub(super) fn write(path: &Path, password: &str) -> Result<(), EmbeddedError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // tempfile creates it 0600 from the start: the password is never readable by others.
    let mut file = tempfile::Builder::new()
        .prefix(".password-")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    writeln!(file, "{password}").map_err(io_err(file.path()))?;
    file.as_file().sync_all().map_err(io_err(path))?;
    file.persist(path).map_err(|e| io_err(path)(e.error))?;
    Ok(())
}

/// The file `initdb --pwfile` reads: readable by the server user only, deleted on drop.
pub(super) fn initdb_pwfile(
    home: &Path,
    password: &str,
    user: Option<RunAs>,
) -> Result<tempfile::NamedTempFile, EmbeddedError> {
    let mut f = tempfile::Builder::new()
        .prefix(".pwfile-")
        .tempfile_in(home)
        .map_err(io_err(home))?;
    writeln!(f, "{password}").map_err(io_err(f.path()))?;
    if let Some(u) = user {
        chown(
            f.path(),
            Some(Uid::from_raw(u.uid)),
            Some(Gid::from_raw(u.gid)),
        )
        .map_err(|e| io_err(f.path())(e.into()))?;
    }
    Ok(f)
}

/// Whether some `pg_hba.conf` line lets a client in without the password.
fn hba_is_open(data: &Path) -> Result<bool, EmbeddedError> {
    let path = data.join("pg_hba.conf");
    let text = fs::read_to_string(&path).map_err(io_err(&path))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .any(|l| !l.split_whitespace().any(|w| w == "scram-sha-256")))
}

/// The password of an existing, stopped cluster, setting it first when there is none yet
/// (a cluster from an earlier version), when `wanted` differs from the stored one, or when
/// `pg_hba.conf` lets anyone in without it.
pub(super) async fn ensure_password(
    bin: &Path,
    data: &Path,
    user: Option<RunAs>,
    path: &Path,
    wanted: Option<&str>,
    log: &Log,
) -> Result<String, EmbeddedError> {
    let stored = read(path)?;
    let password = match (wanted, &stored) {
        (Some(w), _) => w.to_string(),
        (None, Some(s)) => s.clone(),
        (None, None) => generate(),
    };
    if stored.as_deref() == Some(password.as_str()) && !hba_is_open(data)? {
        return Ok(password);
    }
    log::info!("setting the superuser password of {}", data.display());
    // The file first: stopped between the steps, the next start finds the cluster still
    // open (or the password unset) and does both again with this same password.
    write(path, &password)?;
    set_password_offline(bin, data, user, &password, log).await?;
    let hba = data.join("pg_hba.conf");
    // Rewritten in place, so the file keeps the server user as its owner.
    fs::write(&hba, HBA).map_err(io_err(&hba))?;
    Ok(password)
}

/// `ALTER ROLE postgres PASSWORD` in single-user mode: no socket, no port, so nobody can
/// connect while the cluster still trusts. Only a SCRAM verifier is sent, never the password.
async fn set_password_offline(
    bin: &Path,
    data: &Path,
    user: Option<RunAs>,
    password: &str,
    log: &Log,
) -> Result<(), EmbeddedError> {
    let program = bin.join("postgres");
    let mut cmd = pg_command(&program, data, user, &log.file).map_err(io_err(&log.path))?;
    cmd.arg("--single")
        .arg("-D")
        .arg(data)
        .args(["-c", "exit_on_error=on", "postgres"])
        .stdin(Stdio::piped());
    let mut child = tokio::process::Command::from(cmd)
        .spawn()
        .map_err(io_err(&program))?;
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    let statement = format!("ALTER ROLE postgres PASSWORD '{verifier}'\n");
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(statement.as_bytes())
            .await
            .map_err(io_err(&program))?;
    }
    let status = child.wait().await.map_err(io_err(&program))?;
    if !status.success() {
        return Err(EmbeddedError::PasswordSetupFailed {
            log_tail: log.tail(),
            log: log.path.clone(),
        });
    }
    Ok(())
}
