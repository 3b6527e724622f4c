//! Load profiles and verdicts: an impossible objective gives the breach code (3) with every
//! report written and the verdict in the summary; a malformed profile file is exit 2 with one
//! line naming the file, the field and the problem.

use crate::util::{run_bin, temp_dir, Pg, REPORTS};
use pgvector_loadtest::report::summary::Summary;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_objective_breaches_and_still_writes_every_report() {
    let pg = Pg::start().await;
    let dir = temp_dir();
    let profile = dir.path().join("impossible.toml");
    std::fs::write(
        &profile,
        r#"
description = "objectives no database can meet"
users = 4
hatch_rate = 4
run_time = "8s"

[[objective]]
name = "searches in under a microsecond"
metric = "p50_ms"
operation = "searches"
target = 0.0001
critical = 0.0002

[[objective]]
name = "success rate"
metric = "success_rate_pct"
target = 99

[[objective]]
name = "insert throughput"
metric = "rows_written_per_s"
target = 1000000
gate = false
"#,
    )
    .unwrap();
    let reports = dir.path().join("reports");
    let url = pg.url();
    let run = run_bin(
        &[
            "--profile-file",
            profile.to_str().unwrap(),
            "--database-url",
            &url,
            "--report-dir",
            reports.to_str().unwrap(),
            "--namespaces",
            "4",
            "--rows-per-namespace",
            "500",
            "--no-print-metrics",
        ],
        &[],
    )
    .await;
    run.expect_code(3);
    for name in REPORTS {
        let path = reports.join(name);
        assert!(
            path.metadata().map(|m| m.len() > 0).unwrap_or(false),
            "{name} missing\n{}",
            run.dump()
        );
    }
    let out = run.stdout();
    assert!(out.contains("objectives ("), "{out}");
    assert!(
        out.contains("BREACHED: searches in under a microsecond"),
        "{out}"
    );
    let summary: Summary =
        serde_json::from_slice(&std::fs::read(reports.join("load_test_summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary.max_users, 4, "the profile's users were used");
    let statuses: Vec<String> = summary
        .objectives
        .iter()
        .map(|v| {
            serde_json::to_value(v.status)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        statuses,
        ["FAIL", "PASS", "FAIL"],
        "{:?}",
        summary.objectives
    );
    assert!(summary.objectives[0].measured.unwrap() > 0.0002);
    assert!(!summary.objectives[2].gate);
    pg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_flags_override_the_profile() {
    let pg = Pg::start().await;
    let dir = temp_dir();
    let url = pg.url();
    // The built-in baseline says 50 users for 5 minutes; the flags say 3 users for 5 seconds.
    let run = run_bin(
        &[
            "--profile",
            "baseline",
            "--users",
            "3",
            "--hatch-rate",
            "3",
            "--run-time",
            "5s",
            "--database-url",
            &url,
            "--report-dir",
            dir.path().to_str().unwrap(),
            "--namespaces",
            "4",
            "--rows-per-namespace",
            "500",
            "--no-print-metrics",
        ],
        &[],
    )
    .await;
    assert!(run.code == 0 || run.code == 3, "{}", run.dump());
    let summary: Summary =
        serde_json::from_slice(&std::fs::read(dir.path().join("load_test_summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary.max_users, 3);
    assert!(summary.duration_s < 60.0, "{}", summary.duration_s);
    assert_eq!(summary.profile.as_deref(), Some("scenarios/baseline.toml"));
    assert!(summary.objectives.len() >= 9);
    assert!(run.stdout().contains("vector search p95"));
    pg.stop().await;
}

#[tokio::test]
async fn malformed_profiles_are_exit_2_naming_file_field_and_problem() {
    let dir = temp_dir();
    let reports = dir.path().join("reports");
    let cases = [
        ("users = \"lots\"\n", "field `users`"),
        ("users = 5\nspeed = 3\n", "unknown field `speed`"),
        (
            "[[objective]]\nmetric = \"p95_ms\"\noperation = \"teleport\"\ntarget = 5\n",
            "objective 1 field `operation`",
        ),
        (
            "[[objective]]\nmetric = \"p95_ms\"\ntarget = 10\ncritical = 5\n",
            "objective 1 field `critical`",
        ),
        ("", "the file is empty"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let run = run_bin(
            &[
                "--profile-file",
                path.to_str().unwrap(),
                "--report-dir",
                reports.to_str().unwrap(),
            ],
            &[],
        )
        .await;
        let line = run.usage_error();
        assert!(line.contains(&format!("bad{i}.toml")), "{line}");
        assert!(line.contains(expected), "{line} (expected {expected})");
    }
    let run = run_bin(
        &[
            "--profile",
            "nonesuch",
            "--report-dir",
            reports.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(run
        .usage_error()
        .contains("baseline, normal, peak, stress, soak"));
    let missing = dir.path().join("missing.toml");
    let run = run_bin(
        &[
            "--profile-file",
            missing.to_str().unwrap(),
            "--report-dir",
            reports.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(run.usage_error().contains("missing.toml: cannot read it"));
}
