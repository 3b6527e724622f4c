//! libpq connection strings, as far as the harness must read them itself: the TLS settings
//! tokio-postgres does not understand (`sslmode=verify-ca|verify-full`, `sslrootcert`) are
//! taken out of a URL's query or a key=value string, and the rest is handed on to
//! `tokio_postgres::Config::from_str`.
//!
//! The key=value grammar is libpq's (`conninfo_parse`): a keyword ends at whitespace or `=`,
//! whitespace may surround `=`, and a value is either bare (ending at whitespace) or
//! single-quoted; in both a backslash takes the next character literally. Splitting on
//! whitespace instead would mangle a quoted password with repeated spaces, so the string is
//! tokenized and then written out again with every value quoted.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use super::target::TlsVerify;

/// A connection string without its TLS verification settings, and those settings.
#[derive(Debug, PartialEq, Eq)]
pub struct Stripped {
    /// What tokio-postgres parses.
    pub rest: String,
    /// From the last `sslmode`: verification only for `verify-ca` / `verify-full`.
    pub verify: TlsVerify,
    /// `sslrootcert`, percent-decoded in a URL.
    pub root_cert: Option<PathBuf>,
}

/// Removes `sslmode=verify-*` and `sslrootcert` from a URL or key=value string. Errors never
/// quote the string: it may hold a password.
pub fn take_tls_options(raw: &str) -> Result<Stripped, String> {
    let mut out = Stripped {
        rest: String::new(),
        verify: TlsVerify::None,
        root_cert: None,
    };
    // libpq lets the last sslmode win, so a later plain mode cancels an earlier verify-*.
    let mut keep = |key: &str, value: &[u8]| -> bool {
        match (key, value) {
            ("sslmode", b"verify-full") => out.verify = TlsVerify::Full,
            ("sslmode", b"verify-ca") => out.verify = TlsVerify::Chain,
            ("sslmode", _) => {
                out.verify = TlsVerify::None;
                return true;
            }
            ("sslrootcert", path) => out.root_cert = Some(OsString::from_vec(path.to_vec()).into()),
            _ => return true,
        }
        false
    };
    let rest = if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        match raw.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        keep(
                            &String::from_utf8_lossy(&percent_decode(k)),
                            &percent_decode(v),
                        )
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => raw.to_string(),
        }
    } else {
        parse_key_values(raw)?
            .into_iter()
            .filter(|(k, v)| keep(k, v.as_bytes()))
            .map(|(k, v)| format!("{k}={}", quote(&v)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    Ok(Stripped { rest, ..out })
}

/// Splits a key=value connection string into its pairs, unquoted and unescaped.
pub fn parse_key_values(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut it = s.chars().peekable();
    let skip_ws = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while it.next_if(|c| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut it);
        if it.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = it.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        skip_ws(&mut it);
        // The keyword is not quoted back: a badly quoted password would end up there.
        if key.is_empty() || it.next() != Some('=') {
            return Err(
                "expected keyword=value pairs (quote values that contain spaces: key='a b')".into(),
            );
        }
        skip_ws(&mut it);
        let mut value = String::new();
        if it.next_if_eq(&'\'').is_some() {
            loop {
                match it.next() {
                    None => return Err("unterminated quoted value".into()),
                    Some('\'') => break,
                    Some('\\') => value.extend(it.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = it.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(it.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

/// `'value'` with `\` and `'` escaped, which libpq and tokio-postgres read back unchanged.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// `%XX` decoded as libpq decodes URL parts; a `%` without two hex digits stays as it is,
/// as tokio-postgres leaves it.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .filter(|h| b[i] == b'%' && h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, String)> {
        parse_key_values(s).unwrap()
    }

    #[test]
    fn quoted_values_keep_spaces_quotes_and_backslashes() {
        let p = pairs(r"host = db  password='a  b\'c\\d'   user=u\ v dbname=''");
        assert_eq!(
            p,
            [
                ("host".into(), "db".into()),
                ("password".into(), r"a  b'c\d".into()),
                ("user".into(), "u v".into()),
                ("dbname".into(), String::new()),
            ]
        );
    }

    #[test]
    fn broken_strings_are_refused_without_echo() {
        for bad in ["password='zq9  w7", "password=zq9 w7", "=zq9", "zq9"] {
            let err = parse_key_values(bad).unwrap_err();
            assert!(!err.contains("zq9") && !err.contains("w7"), "{bad}: {err}");
        }
    }

    #[test]
    fn quote_round_trips() {
        for v in ["", "a  b", r"x'y\z", "'", "\\", " lead", "tab\there"] {
            assert_eq!(pairs(&format!("k={}", quote(v))), [("k".into(), v.into())]);
        }
    }

    #[test]
    fn key_value_tls_options_are_taken_out_and_the_rest_requoted() {
        let s = take_tls_options(
            r"host=h sslmode = verify-ca sslrootcert='/tmp/my ca.pem' password='p  w\'x'",
        )
        .unwrap();
        assert_eq!(s.verify, TlsVerify::Chain);
        assert_eq!(s.root_cert, Some(PathBuf::from("/tmp/my ca.pem")));
        assert_eq!(s.rest, r"host='h' password='p  w\'x'");
        // The last sslmode wins, as in libpq.
        let s = take_tls_options("sslmode=verify-full sslmode=require").unwrap();
        assert_eq!(
            (s.verify, s.rest.as_str()),
            (TlsVerify::None, "sslmode='require'")
        );
        let s = take_tls_options("sslmode=require sslmode=verify-full").unwrap();
        assert_eq!(
            (s.verify, s.rest.as_str()),
            (TlsVerify::Full, "sslmode='require'")
        );
    }

    #[test]
    fn url_tls_options_are_percent_decoded() {
        let s = take_tls_options(
            "postgresql://u:p%20w@h/db?application_name=x&sslmode=verify%2Dfull&sslrootcert=%2Ftmp%2Fmy%20ca%25.pem&bad=%zz",
        )
        .unwrap();
        assert_eq!(s.verify, TlsVerify::Full);
        assert_eq!(s.root_cert, Some(PathBuf::from("/tmp/my ca%.pem")));
        assert_eq!(
            s.rest,
            "postgresql://u:p%20w@h/db?application_name=x&bad=%zz"
        );
        let s = take_tls_options("postgres://h/db?sslmode=verify-ca").unwrap();
        assert_eq!(
            (s.verify, s.rest.as_str()),
            (TlsVerify::Chain, "postgres://h/db")
        );
    }
}
