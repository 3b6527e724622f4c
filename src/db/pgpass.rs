//! libpq's password file (`PGPASSFILE`, else `~/.pgpass`): lines of
//! `hostname:port:database:username:password`, `*` matching anything, `\:` and `\\` escaping,
//! `#` comments; the first matching line wins. As libpq does, a file that group or others can
//! read is not used — here that is an error rather than a silent skip, so that a refused login
//! does not leave the user guessing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The file libpq would read: `PGPASSFILE` (true: named explicitly), else `$HOME/.pgpass`.
pub fn location() -> Option<(PathBuf, bool)> {
    match std::env::var_os("PGPASSFILE").filter(|v| !v.is_empty()) {
        Some(p) => Some((PathBuf::from(p), true)),
        None => std::env::var_os("HOME").map(|h| (Path::new(&h).join(".pgpass"), false)),
    }
}

/// The password for `host:port/dbname` as `user` from `path`; `Ok(None)` when the file does
/// not exist or no line matches. Errors never include the file's contents.
pub fn lookup(
    path: &Path,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> Result<Option<String>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("password file {}: {e}", path.display())),
    };
    if !meta.is_file() {
        return Err(format!("password file {} is not a file", path.display()));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "password file {} can be read by group or others; chmod 600 it",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("password file {}: {e}", path.display()))?;
    let port = port.to_string();
    let wanted = [host, port.as_str(), dbname, user];
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split(line);
        if fields.len() < 5 {
            continue;
        }
        let matches = fields[..4]
            .iter()
            .zip(wanted)
            .all(|(field, want)| field == "*" || field == want);
        if matches {
            return Ok(Some(fields[4..].join(":")));
        }
    }
    Ok(None)
}

/// Splits on unescaped `:` and removes the escapes.
fn split(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().unwrap().push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str, mode: u32) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        f
    }

    #[test]
    fn first_matching_line_wins_with_wildcards_and_escapes() {
        let f = file(
            "# comment\nother:5432:*:*:nope\n127.0.0.1:*:vec:bob:p\\:w\\\\d:x\n*:*:*:*:fallback\n",
            0o600,
        );
        let get = |host, port, db, user| lookup(f.path(), host, port, db, user).unwrap();
        assert_eq!(
            get("127.0.0.1", 6543, "vec", "bob").as_deref(),
            Some("p:w\\d:x")
        );
        assert_eq!(
            get("127.0.0.1", 6543, "vec", "eve").as_deref(),
            Some("fallback")
        );
        assert_eq!(get("other", 5432, "x", "y").as_deref(), Some("nope"));
    }

    #[test]
    fn missing_is_none_and_readable_by_others_is_refused() {
        assert_eq!(
            lookup(Path::new("/nonexistent/pgpass"), "h", 1, "d", "u"),
            Ok(None)
        );
        let f = file("*:*:*:*:secret\n", 0o644);
        let err = lookup(f.path(), "h", 1, "d", "u").unwrap_err();
        assert!(
            err.contains("chmod 600") && !err.contains("secret"),
            "{err}"
        );
    }
}
