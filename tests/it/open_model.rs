//! The open model (`--arrival-rate`): arrivals on a schedule, response time from the intended
//! start. Against a real server: a modest rate is achieved on time, and an overload shows in
//! response time and dropped arrivals where the closed model would have hidden it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use pgvector_loadtest::cli::Cli;
use pgvector_loadtest::config::Config;

use crate::scrape::http_get;
use crate::util::{free_port, run_bin, setup, temp_dir, Pg, Run, SMALL_DATA};

/// An open-model run against `url`; returns the run and its summary.
async fn open_run(url: &str, extra: &[&str]) -> (Run, serde_json::Value) {
    let reports = temp_dir();
    let dir = reports.path().to_str().unwrap();
    let mut args = vec![
        "--database-url",
        url,
        "--report-dir",
        dir,
        "--no-print-metrics",
    ];
    args.extend(SMALL_DATA);
    args.extend(extra);
    let run = run_bin(&args, &[]).await;
    let summary = std::fs::read(reports.path().join("load_test_summary.json"))
        .unwrap_or_else(|e| panic!("no summary ({e})\n{}", run.dump()));
    assert!(
        reports.path().join("load_test.html").is_file(),
        "{}",
        run.dump()
    );
    (run, serde_json::from_slice(&summary).unwrap())
}

#[tokio::test]
async fn a_modest_rate_is_achieved_on_time() {
    let pg = Pg::start().await;
    setup(&pg.url(), temp_dir().path(), &SMALL_DATA).await;
    let (run, summary) = open_run(
        &pg.url(),
        &[
            "--arrival-rate",
            "200",
            "--run-time",
            "20s",
            "--max-in-flight",
            "20",
            "--no-metrics-exporter",
        ],
    )
    .await;
    run.expect_code(0);
    let s = &summary["schedule"];
    eprintln!("{s}");
    let offered = s["offered"].as_u64().unwrap();
    assert_eq!(offered, 4000, "200/s for 20 s");
    let achieved = s["achieved_per_s"].as_f64().unwrap();
    assert!(
        (achieved - 200.0).abs() <= 4.0,
        "achieved {achieved}/s of 200/s"
    );
    let missed = s["late"].as_u64().unwrap() + s["dropped"].as_u64().unwrap();
    assert!(
        (missed as f64) < 0.05 * offered as f64,
        "{missed} late or dropped of {offered}"
    );
    // Every started arrival is an operation in the statistics (bulk inserts come on top).
    let search_ops: u64 = summary["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["name"] != "bulk_insert")
        .map(|o| o["count"].as_u64().unwrap())
        .sum();
    let started = s["on_time"].as_u64().unwrap() + s["late"].as_u64().unwrap();
    assert_eq!(search_ops, started, "{}", run.stdout());
    assert!(run
        .stdout()
        .contains("open model (uniform arrivals): offered 200.0/s"));
    pg.stop().await;
}

#[tokio::test]
async fn an_overload_shows_in_response_time_and_dropped_arrivals() {
    let pg = Pg::start().await;
    setup(&pg.url(), temp_dir().path(), &SMALL_DATA).await;
    let port = free_port().to_string();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // The exporter's open-model series, from the last scrape that had them.
    let seen = Arc::new(Mutex::new(String::new()));
    let into = seen.clone();
    let scraper = tokio::spawn(async move {
        loop {
            if let Some(body) = http_get(addr).await {
                if body.contains("loadtest_arrivals_total") {
                    *into.lock().unwrap() = body;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    // Far more than two users can serve, arrivals dropped after 200 ms.
    let (run, summary) = open_run(
        &pg.url(),
        &[
            "--arrival-rate",
            "6000",
            "--run-time",
            "5s",
            "--max-in-flight",
            "2",
            "--bulk-user-share",
            "0",
            "--max-lag",
            "200ms",
            "--arrivals",
            "poisson",
            "--metrics-port",
            &port,
        ],
    )
    .await;
    scraper.abort();
    run.expect_code(0);
    let s = &summary["schedule"];
    let a = &summary["aggregated"];
    eprintln!(
        "{s}\nresponse {}\nservice {}",
        a["latency_us"], a["service_us"]
    );
    assert!(s["dropped"].as_u64().unwrap() > 0, "{s}");
    assert!(s["achieved_per_s"].as_f64().unwrap() < s["offered_per_s"].as_f64().unwrap());
    let response_p99 = a["latency_us"]["p99"].as_f64().unwrap();
    let service_p99 = a["service_us"]["p99"].as_f64().unwrap();
    assert!(
        response_p99 > 10.0 * service_p99,
        "response p99 {response_p99} µs is not many times service p99 {service_p99} µs"
    );
    // The schedule lag stays under --max-lag: later arrivals are dropped instead.
    assert!(s["max_lag_s"].as_f64().unwrap() <= 0.25, "{s}");
    let scraped = seen.lock().unwrap().clone();
    for outcome in ["on_time", "late", "dropped"] {
        let line = format!("loadtest_arrivals_total{{outcome=\"{outcome}\"}}");
        assert!(scraped.contains(&line), "{line} not exported:\n{scraped}");
    }
    assert!(scraped.contains("loadtest_offered_rate_per_second"));
    pg.stop().await;
}

#[tokio::test]
async fn think_time_zero_runs_users_back_to_back() {
    let pg = Pg::start().await;
    setup(&pg.url(), temp_dir().path(), &SMALL_DATA).await;
    let args = [
        "--users",
        "2",
        "--hatch-rate",
        "2",
        "--run-time",
        "4s",
        "--bulk-user-share",
        "0",
        "--no-metrics-exporter",
    ];
    let (paced, paced_summary) = open_run(&pg.url(), &args).await;
    paced.expect_code(0);
    let mut back_to_back = args.to_vec();
    back_to_back.extend(["--think-time", "0"]);
    let (run, summary) = open_run(&pg.url(), &back_to_back).await;
    run.expect_code(0);
    let rate = |s: &serde_json::Value| s["aggregated"]["throughput_per_s"].as_f64().unwrap();
    // Two users pausing 100-500 ms send at most 20 operations a second; without a pause,
    // far more.
    assert!(rate(&paced_summary) < 20.0, "{}", rate(&paced_summary));
    assert!(rate(&summary) > 100.0, "{}", rate(&summary));
    assert!(
        summary.get("schedule").is_none(),
        "closed model: no schedule"
    );
    pg.stop().await;
}

fn config(args: &[&str]) -> Result<Config, String> {
    let reports = temp_dir();
    let mut argv = vec!["pgvector-loadtest", "--report-dir"];
    argv.push(reports.path().to_str().unwrap());
    argv.extend(args);
    Config::from_cli(Cli::parse_from(argv)).map_err(|e| e.to_string())
}

#[test]
fn open_model_flags_are_checked_before_anything_runs() {
    let open = config(&["--arrival-rate", "50", "--run-time", "10s"]).unwrap();
    let o = open.pacing.open.as_ref().expect("open model");
    assert_eq!(o.max_in_flight, 100, "default without --users");
    assert_eq!(open.goose.users, Some(100));
    assert_eq!(open.goose.run_time.as_deref(), Some("10s"));
    let staged = config(&["--arrival-stages", "2s:10,1500ms:10", "--users", "7"]).unwrap();
    let o = staged.pacing.open.as_ref().unwrap();
    assert_eq!(o.max_in_flight, 7);
    assert_eq!(o.plan.duration(), Duration::from_millis(3500));
    assert_eq!(staged.goose.run_time.as_deref(), Some("4s"));
    for (args, says) in [
        (&["--arrival-rate", "50"][..], "needs --run-time"),
        (
            &[
                "--arrival-rate",
                "50",
                "--run-time",
                "5s",
                "--hatch-rate",
                "5",
            ],
            "--hatch-rate",
        ),
        (
            &["--arrival-stages", "5s:10", "--run-time", "5s"],
            "not both",
        ),
        (
            &[
                "--arrival-rate",
                "5",
                "--run-time",
                "5s",
                "--users",
                "3",
                "--max-in-flight",
                "4",
            ],
            "same number",
        ),
        (
            &[
                "--arrival-rate",
                "5",
                "--run-time",
                "5s",
                "--think-time",
                "1s",
            ],
            "--think-time",
        ),
        (&["--arrival-rate", "0", "--run-time", "5s"], "above 0"),
        (&["--arrival-stages", "5s"], "DURATION:RATE"),
        (&["--max-in-flight", "5"], "needs --arrival-rate"),
        (&["--think-time", "2s..1s"], "above the maximum"),
        (&["--think-time", "fast"], "--think-time"),
    ] {
        let e = config(args).expect_err(says);
        assert!(e.contains(says), "{args:?}: {e}");
    }
    let closed = config(&["--think-time", "0", "--bulk-think-time", "1s..2s"]).unwrap();
    assert_eq!(closed.pacing.think_time, (Duration::ZERO, Duration::ZERO));
    assert_eq!(
        closed.pacing.bulk_think_time,
        (Duration::from_secs(1), Duration::from_secs(2))
    );
    assert!(closed.pacing.open.is_none());
}
