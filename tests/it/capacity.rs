//! `capacity`: load tests at rising load until an objective fails, against a real server.
//! Two users in flight cannot serve thousands of arrivals a second, so the rate sweep finds a
//! knee within a few steps on any machine.

use tempfile::TempDir;

use crate::report_html::{attribute_values, cell, checked_dom};
use crate::util::{run_bin, setup, temp_dir, Pg, SMALL_DATA};

const PROFILE: &str = r#"
description = "test: search p95 under 50 ms, every operation succeeds"

[[objective]]
name = "search p95"
metric = "p95_ms"
operation = "vector_search_single_shard"
target = 50

[[objective]]
name = "success rate (%)"
metric = "success_rate_pct"
target = 99
"#;

/// The run, `capacity.json`, `capacity.svg`, and the reports' directory.
async fn capacity(
    url: &str,
    extra: &[&str],
) -> (crate::util::Run, serde_json::Value, String, TempDir) {
    let reports = temp_dir();
    let profile = reports.path().join("objectives.toml");
    std::fs::write(&profile, PROFILE).unwrap();
    let dir = reports.path().to_str().unwrap();
    let mut args = vec![
        "capacity",
        "--database-url",
        url,
        "--report-dir",
        dir,
        "--profile-file",
        profile.to_str().unwrap(),
        "--no-metrics-exporter",
    ];
    for (flag, default) in [("--warmup", "1s"), ("--hold", "3s")] {
        if !extra.contains(&flag) {
            args.extend([flag, default]);
        }
    }
    args.extend(SMALL_DATA);
    args.extend(extra);
    let run = run_bin(&args, &[]).await;
    let json = std::fs::read(reports.path().join("capacity.json"))
        .unwrap_or_else(|e| panic!("no capacity.json ({e})\n{}", run.dump()));
    let svg = std::fs::read_to_string(reports.path().join("capacity.svg")).unwrap();
    (run, serde_json::from_slice(&json).unwrap(), svg, reports)
}

#[tokio::test]
async fn the_rate_sweep_finds_the_knee_and_writes_json_and_svg() {
    let pg = Pg::start().await;
    setup(&pg.url(), temp_dir().path(), &SMALL_DATA).await;
    let (run, report, svg, reports) = capacity(
        &pg.url(),
        &[
            "--start",
            "250",
            "--factor",
            "4",
            "--refine",
            "1",
            "--max-in-flight",
            "2",
            "--bulk-user-share",
            "0",
        ],
    )
    .await;
    run.expect_code(0);
    eprintln!("{}", run.stdout());
    let steps = report["steps"].as_array().unwrap();
    assert!(steps.len() >= 3, "{report}");
    let best = report["max_sustainable_per_s"]
        .as_f64()
        .expect("a step held");
    let limit = report["limit_load"].as_f64().expect("a step missed");
    assert!(best >= 250.0 && limit > best, "held {best}, missed {limit}");
    let why = report["limiting_objective"].as_str().unwrap();
    assert!(!why.is_empty(), "{report}");
    // Geometric steps first, then one bisection step between the last held and first missed.
    assert_eq!(steps[0]["load"], 250.0);
    assert_eq!(steps[1]["load"], 1000.0);
    assert_eq!(steps.last().unwrap()["phase"], "refine");
    for step in steps {
        let offered = step["offered_per_s"].as_f64().unwrap();
        assert!(
            (offered - step["load"].as_f64().unwrap()).abs() < 1.0,
            "{step}"
        );
        let single = &step["operations"]["vector_search_single_shard"];
        for tail in ["response_ms", "service_ms"] {
            for p in ["p50", "p95", "p99"] {
                assert!(
                    single[tail][p].as_f64().unwrap() > 0.0,
                    "{tail}.{p}: {step}"
                );
            }
        }
        assert_eq!(step["verdicts"].as_array().unwrap().len(), 2);
        assert_eq!(
            step["held"].as_bool().unwrap(),
            step["limits"].as_array().unwrap().is_empty()
        );
    }
    // A step that missed because the rate was not achieved says so.
    let top = steps.iter().max_by(|a, b| {
        a["load"]
            .as_f64()
            .unwrap()
            .total_cmp(&b["load"].as_f64().unwrap())
    });
    assert_eq!(top.unwrap()["held"], false);
    assert!(
        run.stdout().contains("max sustainable:"),
        "{}",
        run.stdout()
    );
    assert!(
        svg.starts_with("<svg") && svg.contains("SLO p95 &lt; 50 ms")
            || svg.contains("SLO p95 < 50 ms"),
        "no SLO line"
    );
    assert!(svg.contains("achieved = offered"));
    pg.stop().await;

    // capacity_report.html, in Chromium with no network: every step, the JSON's figures,
    // and the plot with a point per step.
    let dom = checked_dom(&reports.path().join("capacity_report.html"), reports.path());
    assert_eq!(
        attribute_values(&dom, "data-points"),
        [steps.len().to_string()]
    );
    for (i, step) in steps.iter().enumerate() {
        let key = |field: &str| format!("steps.{i}.{field}");
        let load = step["load"].as_f64().unwrap();
        assert_eq!(cell(&dom, &key("load")), load.to_string());
        assert_eq!(cell(&dom, &key("dropped")), step["dropped"].to_string());
    }
    assert_eq!(cell(&dom, "max_sustainable_per_s"), format!("{best:.1}"));
}

#[tokio::test]
async fn the_concurrency_sweep_raises_users_with_no_think_time() {
    let pg = Pg::start().await;
    setup(&pg.url(), temp_dir().path(), &SMALL_DATA).await;
    let (run, report, _svg, _reports) = capacity(
        &pg.url(),
        &[
            "--sweep",
            "concurrency",
            "--max",
            "4",
            "--warmup",
            "0s",
            "--hold",
            "2s",
            "--bulk-user-share",
            "0",
        ],
    )
    .await;
    run.expect_code(0);
    let steps = report["steps"].as_array().unwrap();
    let users: Vec<f64> = steps.iter().map(|s| s["load"].as_f64().unwrap()).collect();
    assert_eq!(&users[..2], &[1.0, 2.0], "{report}");
    for step in steps {
        assert!(
            step["offered_per_s"].is_null(),
            "closed model: nothing offered"
        );
        // No think time: one user alone runs hundreds of operations a second.
        assert!(step["achieved_per_s"].as_f64().unwrap() > 50.0, "{step}");
    }
    assert!(report["max_sustainable_per_s"].as_f64().unwrap() > 50.0);
    pg.stop().await;
}
