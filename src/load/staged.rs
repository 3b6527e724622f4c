//! Goose's own reports (`--report-file`), written atomically: Goose truncates its report files
//! when the run starts and fills them at the end, so a crash or a second signal would leave
//! empty files in place of the previous run's reports. Goose writes to temporary names
//! instead (same folder, same extension, which tells Goose the format), renamed into place
//! once it has finished.

use std::path::{Path, PathBuf};

/// Report files Goose writes under temporary names, and where they belong.
#[derive(Debug, Default)]
pub struct Staged {
    files: Vec<(PathBuf, PathBuf)>,
}

/// `dir/name.ext` -> `dir/.name.partial-PID.ext`.
fn temporary(path: &Path) -> PathBuf {
    let (prefix, suffix) = partial_affixes(path);
    path.with_file_name(format!("{prefix}{}{suffix}", std::process::id()))
}

/// What every partial file of `path` starts and ends with, whichever process wrote it.
fn partial_affixes(path: &Path) -> (String, String) {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("report");
    let suffix = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => format!(".{ext}"),
        None => String::new(),
    };
    (format!(".{stem}.partial-"), suffix)
}

/// Removes partial files an earlier run left when it was killed before it could rename them.
fn remove_stale_partials(path: &Path) {
    let (prefix, suffix) = partial_affixes(path);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(&suffix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Staged {
    /// Points each of Goose's report files at a temporary name.
    pub fn stage(report_files: &mut [String]) -> Staged {
        let files = report_files
            .iter_mut()
            .map(|file| {
                let target = PathBuf::from(&*file);
                remove_stale_partials(&target);
                let tmp = temporary(&target);
                *file = tmp.to_string_lossy().into_owned();
                (tmp, target)
            })
            .collect();
        Staged { files }
    }

    /// Moves every report Goose wrote into place; a report Goose did not write (it failed
    /// before the end) leaves the previous one untouched.
    pub fn commit(self) -> std::io::Result<()> {
        for (tmp, target) in self.files {
            match std::fs::metadata(&tmp) {
                Ok(m) if m.len() > 0 => std::fs::rename(&tmp, &target)?,
                Ok(_) => std::fs::remove_file(&tmp)?,
                Err(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_keep_folder_and_extension() {
        let mut files = vec!["reports/load_test.html".to_string(), "x.json".into()];
        let staged = Staged::stage(&mut files);
        let pid = std::process::id();
        assert_eq!(files[0], format!("reports/.load_test.partial-{pid}.html"));
        assert_eq!(files[1], format!(".x.partial-{pid}.json"));
        assert_eq!(staged.files[0].1, PathBuf::from("reports/load_test.html"));
    }

    #[test]
    fn commit_replaces_only_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let html = dir.path().join("r.html");
        let json = dir.path().join("r.json");
        std::fs::write(&html, "old html").unwrap();
        std::fs::write(&json, "old json").unwrap();
        let mut files = vec![path(&html), path(&json)];
        let staged = Staged::stage(&mut files);
        std::fs::write(&files[0], "new html").unwrap();
        std::fs::write(&files[1], "").unwrap();
        staged.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&html).unwrap(), "new html");
        // A killed run's partial is removed by the next run's staging.
        let stale = dir.path().join(".r.partial-1.html");
        std::fs::write(&stale, "killed").unwrap();
        let mut files = vec![path(&html)];
        drop(Staged::stage(&mut files));
        assert!(!stale.exists());
        assert_eq!(std::fs::read_to_string(&json).unwrap(), "old json");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    fn path(p: &Path) -> String {
        p.to_string_lossy().into_owned()
    }
}
