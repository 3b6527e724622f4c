//! `compare BASE NEW` on real summaries: a quick benchmark, a short load test and a short
//! capacity search against one real server, each compared with itself (exit 0, every verdict
//! ok), with a copy into which a regression was written (exit 3, the metrics named), and with a
//! copy of other settings (exit 2; `--force` compares anyway). Bad input is one line, exit 2,
//! and leaves no markdown behind.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{load_args, run_bin, temp_dir, Pg, Run, SMALL_DATA};

/// A copy of the summary at `from` as `name` in `dir`, changed by `edit`.
fn edited(dir: &Path, from: &Path, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut value: Value = serde_json::from_slice(&std::fs::read(from).unwrap()).unwrap();
    edit(&mut value);
    let to = dir.join(name);
    std::fs::write(&to, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    to
}

fn scale(v: &mut Value, by: f64) {
    *v = serde_json::json!(v.as_f64().expect("a number") * by);
}

async fn compare(base: &Path, new: &Path, flags: &[&str]) -> Run {
    let mut args = vec!["compare", base.to_str().unwrap(), new.to_str().unwrap()];
    args.extend(flags);
    run_bin(&args, &[]).await
}

/// The table's rows: (the line, its verdict: the last column).
fn rows(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("operation "))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let verdict = l.split_whitespace().last().unwrap_or_default();
            (l.to_string(), verdict.to_string())
        })
        .collect()
}

/// The run's last line, `verdict: ...`.
fn verdict(run: &Run) -> String {
    let out = run.stdout();
    let last = out.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("verdict: "), "{}", run.dump());
    last
}

/// Identical files: exit 0, nothing but `ok`, and `metrics` of them judged.
async fn same(path: &Path, metrics: usize) {
    let run = compare(path, path, &[]).await;
    run.expect_code(0);
    let rows = rows(&run.stdout());
    assert_eq!(rows.len(), metrics, "{}", run.dump());
    assert!(rows.iter().all(|(_, v)| v == "ok"), "{}", run.dump());
    assert!(
        verdict(&run).starts_with(&format!("verdict: no regression: {metrics} metrics")),
        "{}",
        run.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_gates_real_summaries() {
    let pg = Pg::start().await;
    let url = pg.url();
    let work = temp_dir();
    let dir = work.path();
    let bench = bench_summary(&url, dir).await;
    bench_cases(dir, &bench).await;
    let load = load_summary(&url, dir).await;
    load_cases(dir, &load).await;
    // Two kinds: refused.
    let run = compare(&bench, &load, &[]).await;
    let line = run.usage_error();
    assert!(
        line.contains("BASE is a benchmark suite report") && line.contains("NEW a load test"),
        "{line}"
    );
    let capacity = capacity_summary(&url, dir).await;
    capacity_cases(dir, &capacity).await;
    bad_input(dir, &bench).await;
    pg.stop().await;
}

async fn bench_summary(url: &str, dir: &Path) -> PathBuf {
    let reports = dir.join("bench");
    let mut args = vec![
        "bench",
        "--quick",
        "--only",
        "single",
        "--database-url",
        url,
    ];
    args.extend([
        "--report-dir",
        reports.to_str().unwrap(),
        "--no-metrics-exporter",
    ]);
    args.extend(SMALL_DATA);
    run_bin(&args, &[]).await.expect_code(0);
    reports.join("benchmark_results.json")
}

async fn bench_cases(dir: &Path, bench: &Path) {
    // One search result: six metrics, recall included.
    same(bench, 6).await;
    let worse = edited(dir, bench, "bench-worse.json", |v| {
        let r = &mut v["results"][0];
        scale(&mut r["p95_ms"], 3.0);
        scale(&mut r["p99_ms"], 3.0);
        scale(&mut r["qps"], 0.5);
        let recall = r["recall_mean"].as_f64().expect("recall measured");
        r["recall_mean"] = serde_json::json!(recall - 0.05);
    });
    let markdown = dir.join("bench.md");
    let md = markdown.to_str().unwrap();
    let run = compare(bench, &worse, &["--markdown", md]).await;
    run.expect_code(3);
    let line = verdict(&run);
    assert!(line.starts_with("verdict: REGRESSION: 4 worse"), "{line}");
    for named in [
        "p95 ms +200.0%",
        "p99 ms +200.0%",
        "throughput/s -50.0%",
        "recall -0.0500",
    ] {
        assert!(line.contains(named), "{named} not in {line}");
    }
    let verdicts: Vec<String> = rows(&run.stdout()).into_iter().map(|(_, v)| v).collect();
    assert_eq!(verdicts, ["ok", "worse", "worse", "worse", "ok", "worse"]);
    let text = std::fs::read_to_string(&markdown).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(
            "❌ **REGRESSION: 4 worse beyond the limits: single_shard_search ef=40 scan=off p95 ms"
        ),
        "{text}"
    );
    assert!(
        lines
            .contains(&"| operation | metric | base | new | change | change % | limit | verdict |"),
        "{text}"
    );
    assert!(
        lines.iter().any(
            |l| l.starts_with("| single_shard_search ef=40 scan=off | p95 ms |")
                && l.ends_with("| +200.0% | 10% | **worse** |")
        ),
        "{text}"
    );
    // The other way round everything worse became better: exit 0.
    let run = compare(&worse, bench, &[]).await;
    run.expect_code(0);
    assert!(verdict(&run).ends_with("; 4 better"), "{}", run.dump());
    // Looser limits, from the flags or a profile's [compare] table; flags win over the profile.
    let loose = [
        "--max-regression",
        "300%",
        "--max-regression-metric",
        "recall=0.1",
    ];
    compare(bench, &worse, &loose).await.expect_code(0);
    let profile = dir.join("loose.toml");
    std::fs::write(
        &profile,
        "[compare]\nmax_regression = \"300%\"\nrecall = 0.1\n",
    )
    .unwrap();
    let from_profile = ["--profile-file", profile.to_str().unwrap()];
    compare(bench, &worse, &from_profile).await.expect_code(0);
    let run = compare(
        bench,
        &worse,
        &[&from_profile[..], &["--max-regression", "10%"]].concat(),
    )
    .await;
    run.expect_code(3);
    let line = verdict(&run);
    assert!(
        line.contains("p95 ms") && !line.contains("recall"),
        "{line}"
    );
    // A benchmark BASE had is absent from NEW (here: measured at another ef_search).
    let moved = edited(dir, bench, "bench-moved.json", |v| {
        v["results"][0]["ef_search"] = serde_json::json!(41);
    });
    let run = compare(bench, &moved, &[]).await;
    run.expect_code(3);
    let out = run.stdout();
    assert!(
        verdict(&run).contains("single_shard_search ef=40 scan=off absent from NEW"),
        "{out}"
    );
    let verdicts: Vec<String> = rows(&out).into_iter().map(|(_, v)| v).collect();
    assert_eq!(verdicts, ["missing", "new"], "{out}");
    // Another index and data set: refused, each difference named; --force compares anyway.
    let other = edited(dir, bench, "bench-other.json", |v| {
        v["settings"]["m"] = serde_json::json!(24);
        v["settings"]["total_rows"] = serde_json::json!(4000);
        let dataset = v["settings"]["dataset"]
            .as_str()
            .unwrap()
            .replace("500 rows", "1000 rows");
        v["settings"]["dataset"] = serde_json::json!(dataset);
    });
    let markdown = dir.join("refused.md");
    let run = compare(bench, &other, &["--markdown", markdown.to_str().unwrap()]).await;
    let line = run.usage_error();
    assert!(
        line.starts_with("error: the runs are not comparable: "),
        "{line}"
    );
    for named in ["1000 rows", "rows 2000 ≠ 4000", "m 16 ≠ 24", "--force"] {
        assert!(line.contains(named), "{named} not in {line}");
    }
    assert!(
        run.stdout.is_empty() && !markdown.exists(),
        "{}",
        run.dump()
    );
    let run = compare(bench, &other, &["--force"]).await;
    run.expect_code(0);
    let warning = run.stderr();
    assert!(
        warning.starts_with("warning: the runs' settings differ") && warning.contains("m 16 ≠ 24"),
        "{warning}"
    );
    assert_eq!(warning.lines().count(), 1, "{warning}");
}

async fn load_summary(url: &str, dir: &Path) -> PathBuf {
    let reports = dir.join("load");
    std::fs::create_dir(&reports).unwrap();
    let args = load_args(url, &reports, "4", "3s");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_bin(&args, &[]).await.expect_code(0);
    reports.join("load_test_summary.json")
}

async fn load_cases(dir: &Path, load: &Path) {
    let summary: Value = serde_json::from_slice(&std::fs::read(load).unwrap()).unwrap();
    let ops = summary["operations"].as_array().unwrap().len();
    assert!(ops >= 3, "{summary}");
    // Five metrics per operation and the aggregate, and recall when it was sampled.
    let recall = usize::from(summary["server"]["recall_mean"].is_number());
    same(load, (ops + 1) * 5 + recall).await;
    let worse = edited(dir, load, "load-worse.json", |v| {
        let single = v["operations"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|o| o["name"] == "vector_search_single_shard")
            .expect("single-namespace searches ran");
        // µs in the file; 3 × and a tenth of the operations failed.
        let p99 = single["latency_us"]["p99"].as_u64().unwrap();
        single["latency_us"]["p99"] = serde_json::json!(p99 * 3 + 1000);
        let count = single["count"].as_u64().unwrap();
        single["failed"] = serde_json::json!(count / 10 + 1);
    });
    let run = compare(load, &worse, &["--markdown", "-"]).await;
    run.expect_code(3);
    let out = run.stdout();
    let first = out.lines().next().unwrap_or_default();
    assert!(first.starts_with("❌ **REGRESSION: 2 worse"), "{out}");
    for named in [
        "vector_search_single_shard p99 ms +",
        "vector_search_single_shard failure rate +0.1",
    ] {
        assert!(first.contains(named), "{named} not in {first}");
    }
    assert!(
        out.contains("| vector_search_single_shard | p99 ms |"),
        "{out}"
    );
    let other = edited(dir, load, "load-other.json", |v| {
        let index = v["index"]
            .as_str()
            .unwrap()
            .replace("ef_search=40", "ef_search=100");
        v["index"] = serde_json::json!(index);
        v["layout"] = serde_json::json!("hash:4");
    });
    let line = compare(load, &other, &[]).await.usage_error();
    assert!(
        line.contains("layout list ≠ hash:4") && line.contains("index ef_search 40 ≠ 100"),
        "{line}"
    );
    compare(load, &other, &["--force"]).await.expect_code(0);
}

async fn capacity_summary(url: &str, dir: &Path) -> PathBuf {
    let reports = dir.join("capacity");
    let profile = dir.join("lenient.toml");
    std::fs::write(
        &profile,
        "[[objective]]\nmetric = \"p95_ms\"\noperation = \"vector_search_single_shard\"\ntarget = 500\n",
    )
    .unwrap();
    let mut args = vec!["capacity", "--database-url", url, "--no-metrics-exporter"];
    args.extend(["--report-dir", reports.to_str().unwrap()]);
    args.extend(["--profile-file", profile.to_str().unwrap()]);
    args.extend(["--start", "20", "--max", "40", "--refine", "0"]);
    args.extend(["--warmup", "1s", "--hold", "2s", "--max-in-flight", "4"]);
    args.extend(SMALL_DATA);
    run_bin(&args, &[]).await.expect_code(0);
    reports.join("capacity.json")
}

async fn capacity_cases(dir: &Path, capacity: &Path) {
    let report: Value = serde_json::from_slice(&std::fs::read(capacity).unwrap()).unwrap();
    assert_eq!(report["max_sustainable_per_s"], 40.0, "{report}");
    assert!(
        report["index"].as_str().unwrap().contains("hnsw m=16"),
        "{report}"
    );
    // The knee (throughput only) and two steps of five metrics, six with recall sampled.
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{report}");
    let recalls = steps
        .iter()
        .filter(|s| s["recall_mean"].is_number())
        .count();
    same(capacity, 1 + 2 * 5 + recalls).await;
    let worse = edited(dir, capacity, "capacity-worse.json", |v| {
        v["max_sustainable_per_s"] = serde_json::json!(20.0);
        v["steps"][1]["held"] = serde_json::json!(false);
        scale(
            &mut v["steps"][1]["operations"]["vector_search_single_shard"]["response_ms"]["p95"],
            3.0,
        );
    });
    let run = compare(capacity, &worse, &[]).await;
    run.expect_code(3);
    let line = verdict(&run);
    assert!(line.starts_with("verdict: REGRESSION: 2 worse"), "{line}");
    for named in [
        "max sustainable throughput/s -50.0%",
        "at 40/s p95 ms +200.0%",
    ] {
        assert!(line.contains(named), "{named} not in {line}");
    }
    let other = edited(dir, capacity, "capacity-other.json", |v| {
        v["hold_s"] = serde_json::json!(20);
    });
    let line = compare(capacity, &other, &[]).await.usage_error();
    assert!(line.contains("hold s 2 ≠ 20"), "{line}");
}

async fn bad_input(dir: &Path, bench: &Path) {
    let missing = dir.join("nope.json");
    let not_json = dir.join("not.json");
    std::fs::write(&not_json, "p95 = 3\n").unwrap();
    let unknown = dir.join("unknown.json");
    std::fs::write(&unknown, "{\"p95\": 3}").unwrap();
    let broken = edited(dir, bench, "broken.json", |v| {
        v["results"][0]["p95_ms"] = serde_json::json!("fast");
    });
    let markdown = dir.join("never.md");
    let md = markdown.to_str().unwrap();
    for (base, new, problem) in [
        (bench, missing.as_path(), "error: cannot read NEW "),
        (not_json.as_path(), bench, "is not JSON"),
        (bench, unknown.as_path(), "is not a summary compare knows"),
        (
            bench,
            broken.as_path(),
            "looks like a benchmark suite report",
        ),
    ] {
        let run = compare(base, new, &["--markdown", md]).await;
        let line = run.usage_error();
        assert!(line.contains(problem), "{problem} not in {line}");
        assert!(
            run.stdout.is_empty() && !markdown.exists(),
            "{}",
            run.dump()
        );
    }
    let run = compare(bench, bench, &["--max-regression", "10"]).await;
    assert!(
        run.usage_error().contains("write 10% or a share"),
        "{}",
        run.dump()
    );
}
