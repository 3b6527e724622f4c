//! Property tests (proptest, bounded case counts) of the parsers the harness owns: profile
//! files, vector files and the command line → configuration step. For any input they must not
//! panic, and every refusal must be one line naming the file or flag.

use std::path::Path;

use clap::Parser;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};

use pgvector_loadtest::cli::Cli;
use pgvector_loadtest::config::Config;
use pgvector_loadtest::db::target::Target;
use pgvector_loadtest::profile;
use pgvector_loadtest::workload::dataset::{Dataset, DatasetSpec};

use crate::util::temp_dir;

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

/// Pieces of profile files: valid lines, near-misses and junk, shuffled together.
fn profile_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("users = 10".to_string()),
        Just("hatch_rate = 2.5".to_string()),
        Just("run_time = \"30s\"".to_string()),
        Just("[[objective]]".to_string()),
        Just("metric = \"p95_ms\"".to_string()),
        Just("metric = \"success_rate_pct\"".to_string()),
        Just("operation = \"searches\"".to_string()),
        Just("target = 10".to_string()),
        Just("critical = 50".to_string()),
        Just("gate = false".to_string()),
        (-5i64..5).prop_map(|n| format!("users = {n}")),
        "[a-z_]{1,12} = [0-9\"a-z.]{0,8}",
        "[ -~]{0,30}",
        any::<f64>().prop_map(|f| format!("target = {f:?}")),
    ]
}

#[test]
fn profile_parser_never_panics_and_errors_are_one_line() {
    let mut runner = runner(1000);
    runner
        .run(&proptest::collection::vec(profile_line(), 0..12), |lines| {
            let text = lines.join("\n");
            if let Err(e) = profile::parse("fuzz.toml", &text) {
                let msg = e.to_string();
                prop_assert!(msg.starts_with("profile fuzz.toml: "), "{msg}");
                prop_assert!(!msg.contains('\n'), "multi-line: {msg:?}");
            }
            Ok(())
        })
        .unwrap();
}

fn npy_header(dims: (usize, usize), descr: &str) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({}, {}), }}",
        dims.0, dims.1
    );
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header);
    out
}

#[test]
fn vector_file_loaders_never_panic_and_name_the_file() {
    let dir = temp_dir();
    let spec = DatasetSpec {
        namespaces: 2,
        dim: 4,
        ..DatasetSpec::default()
    };
    let file = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let check = |path: &Path| -> Result<(), TestCaseError> {
        match Dataset::from_file(path, spec.clone()) {
            Ok(d) => prop_assert!(d.total_rows() >= 2),
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains(&path.display().to_string()), "{msg}");
                prop_assert!(!msg.contains('\n'), "{msg:?}");
            }
        }
        Ok(())
    };
    let mut runner = runner(600);
    // Arbitrary bytes, and well-formed headers over arbitrary (often short) bodies.
    let bytes = proptest::collection::vec(any::<u8>(), 0..200);
    let shaped = (
        0usize..6,
        0usize..8,
        prop_oneof![Just("<f4"), Just("<f8"), Just(">f4"), Just("<i4")],
        bytes.clone(),
    );
    runner
        .run(&(bytes, shaped), |(raw, (rows, cols, descr, body))| {
            check(&file("raw.npy", &raw))?;
            check(&file("raw.fvecs", &raw))?;
            let mut npy = npy_header((rows, cols), descr);
            npy.extend(&body);
            check(&file("shaped.npy", &npy))?;
            let mut fvecs = (cols as i32).to_le_bytes().to_vec();
            fvecs.extend(&body);
            check(&file("shaped.fvecs", &fvecs))
        })
        .unwrap();
}

/// Flags and values, valid and not, for the command line.
fn arg() -> impl Strategy<Value = Vec<String>> {
    let flag = prop_oneof![
        Just("--users"),
        Just("--hatch-rate"),
        Just("--increase-rate"),
        Just("--run-time"),
        Just("--pool-size"),
        Just("--pool-timeout"),
        Just("--layout"),
        Just("--dim"),
        Just("--namespaces"),
        Just("--rows-per-namespace"),
        Just("--ef-search"),
        Just("--iterative-scan"),
        Just("--k"),
        Just("--min-similarity"),
        Just("--retrieve-hit-ratio"),
        Just("--bulk-user-share"),
        Just("--database-url"),
        Just("--host"),
        Just("--metrics-port"),
        Just("--profile"),
        Just("--m"),
        Just("--statement-timeout"),
        Just("--filter-selectivity"),
        Just("--filtered-weight"),
    ];
    let value = prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("10".to_string()),
        Just("1.5".to_string()),
        Just("30s".to_string()),
        Just("hash:4".to_string()),
        Just("relaxed_order".to_string()),
        Just("postgres://u@h:1/d".to_string()),
        Just("postgres://u:p@h:x/d".to_string()),
        Just("baseline".to_string()),
        "[ -~]{0,12}",
    ];
    (flag, value).prop_map(|(f, v)| vec![f.to_string(), v])
}

#[test]
fn command_line_validation_never_panics_and_errors_are_one_line() {
    let reports = temp_dir();
    let report_dir = reports.path().to_str().unwrap().to_string();
    let mut runner = runner(1000);
    runner
        .run(&proptest::collection::vec(arg(), 0..6), |args| {
            // Whether the URL with a password went only to flags that take a database URL
            // (echoing it back as, say, a bad --layout value is fair).
            let secret = "postgres://u:p@h:x/d";
            let url_flags_only = args
                .iter()
                .filter(|a| a[1] == secret)
                .all(|a| a[0] == "--database-url" || a[0] == "--host");
            let mut argv = vec![
                "pgvector-loadtest".to_string(),
                "--report-dir".into(),
                report_dir.clone(),
            ];
            argv.extend(args.into_iter().flatten());
            // clap's own refusals (unknown values, missing values) are clap's business.
            let Ok(cli) = Cli::try_parse_from(&argv) else {
                return Ok(());
            };
            if let Err(e) = Config::from_cli(cli) {
                let msg = e.to_string();
                prop_assert!(!msg.is_empty() && !msg.contains('\n'), "{argv:?}: {msg:?}");
                prop_assert!(
                    !(url_flags_only && msg.contains(":p@")),
                    "echoed a URL password: {msg}"
                );
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_parser_accepts_the_documented_main_job() {
    let reports = temp_dir();
    let cli = Cli::parse_from([
        "pgvector-loadtest",
        "--users",
        "300",
        "--hatch-rate",
        "30",
        "--run-time",
        "10m",
        "--report-dir",
        reports.path().to_str().unwrap(),
    ]);
    let config = Config::from_cli(cli).expect("the README's main job is valid");
    assert_eq!(config.goose.users, Some(300));
    assert_eq!(config.goose.increase_rate.as_deref(), Some("30"));
    assert!(
        config.servers.primary.is_none(),
        "no URL means the embedded server"
    );
}

/// libpq's quoting of a key=value value, written independently of the harness's.
fn libpq_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[test]
fn any_password_survives_both_connection_string_forms() {
    let mut runner = runner(1000);
    let password = any::<String>().prop_filter("libpq strings end at NUL", |p| !p.contains('\0'));
    let space = prop_oneof![Just(""), Just(" "), Just("  "), Just("\t")];
    runner
        .run(
            &(password, space.clone(), space),
            |(password, around_eq, between)| {
                let kv = format!(
                    "host=h dbname=d{between} password{around_eq}={around_eq}{}{between} \
                     sslmode=verify-full sslrootcert={}",
                    libpq_quote(&password),
                    libpq_quote("/tmp/a  b'.pem")
                );
                let t = Target::parse(&kv).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(t.password(), Some(password.clone()));
                prop_assert_eq!(t.display(), "h:5432/d");
                let url = format!(
                    "postgres://postgres:{}@h/postgres?sslmode=verify-ca",
                    crate::util::encode(&password)
                );
                let t = Target::parse(&url).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(t.password(), Some(password.clone()));
                Ok(())
            },
        )
        .unwrap();
}
