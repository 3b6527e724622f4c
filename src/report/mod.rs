//! Report files: Locust-compatible CSVs, our JSON summary and its self-contained HTML page,
//! each written to a temporary file and renamed into place, so an interrupted run never leaves
//! a half-written report.

pub mod charts;
pub mod gate;
pub mod html;
pub mod locust;
pub mod summary;
pub mod verdict;

use std::io::{BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One target (the spec's, or calibration's) and whether it was met.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TargetCheck {
    /// What is measured.
    pub name: String,
    /// The target, as text.
    pub target: String,
    /// What was measured.
    pub measured: f64,
    /// Met or not.
    pub pass: bool,
}

/// Writes `path` atomically: `write` fills a temporary file in the same directory, which is
/// then renamed over `path`.
pub fn write_atomic<F>(path: &Path, write: F) -> std::io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> std::io::Result<()>,
{
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    {
        let mut w = BufWriter::new(tmp.as_file());
        write(&mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    // Temporary files are private (0600); reports are meant to be read and archived.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes `value` to `path` as pretty JSON, atomically (see [`write_atomic`]).
pub fn write_json(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    write_atomic(path, |w| {
        serde_json::to_writer_pretty(w, value).map_err(std::io::Error::other)
    })
}

/// Converts a csv error into an io error for [`write_atomic`].
pub fn csv_io(e: csv::Error) -> std::io::Error {
    std::io::Error::other(e)
}
