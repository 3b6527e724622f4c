//! The log file of one server (or initdb, pg_basebackup): appended to across runs, so error
//! messages quote only what this run wrote.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{io_err, EmbeddedError};

/// An open log file and where this run's output starts in it.
pub(super) struct Log {
    pub(super) path: PathBuf,
    pub(super) file: File,
    start: u64,
}

impl Log {
    pub(super) fn open(path: PathBuf) -> Result<Log, EmbeddedError> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let start = file.seek(SeekFrom::End(0)).map_err(io_err(&path))?;
        Ok(Log { path, file, start })
    }

    /// The last lines written since this run began, joined into one line.
    pub(super) fn tail(&self) -> String {
        log_tail(&self.path, self.start)
    }
}

/// The last few non-empty lines of `path` after byte `start`, on one line.
fn log_tail(path: &Path, start: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.seek(SeekFrom::Start(start));
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        text = String::from_utf8_lossy(&buf).into_owned();
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return "no output".into();
    }
    lines[lines.len().saturating_sub(5)..].join(" | ")
}
