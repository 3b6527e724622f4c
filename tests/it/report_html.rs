//! `report.html` after a real load test (10 users, 8 s): a page that references nothing outside
//! itself, opened from disk by headless Chromium with networking cut off (every host resolves
//! to nothing, every proxy connection is refused); in the DOM Chromium builds, every chart drew
//! points and the per-operation cells agree with `load_test_summary.json`. Likewise
//! `bench_report.html` after a quick ef_search sweep, against `benchmark_results.json`. Copies
//! are left in `CARGO_TARGET_TMPDIR` to look at.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use pgvector_loadtest::bench::report::BenchReport;
use pgvector_loadtest::report::summary::Summary;

use crate::dashboard::{CHROMIUM, HEADLESS};
use crate::util::{free_port, load_args, run_bin, temp_dir, Pg, SMALL_DATA};

/// How long Chromium may take to load and serialise the page.
const DUMP_TIMEOUT: Duration = Duration::from_secs(60);
/// The charts besides one per operation: throughput, all operations' latency, failures,
/// users, pool usage, recall and the percentile spectrum.
const FIXED_CHARTS: usize = 7;

#[tokio::test]
async fn report_html_is_self_contained_and_agrees_with_the_summary() {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`)"
    );
    let pg = Pg::start().await;
    let dir = temp_dir();
    let reports = dir.path().join("reports");
    let mut args = load_args(&pg.url(), &reports, "10", "8s");
    // The exporter on: the recall sampler runs beside it, and the report charts its samples.
    args.retain(|a| a != "--no-metrics-exporter");
    let port = free_port().to_string();
    args.extend(["--metrics-port".to_string(), port]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_bin(&args, &[]).await.expect_code(0);
    pg.stop().await;

    let summary: Summary = serde_json::from_slice(
        &std::fs::read(reports.join("load_test_summary.json")).expect("summary written"),
    )
    .expect("summary parses");
    let path = reports.join("report.html");
    let html = std::fs::read_to_string(&path).expect("report.html written");
    let copy = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report.html");
    std::fs::write(&copy, &html).expect("copy the report");
    println!("report: {}", copy.display());
    assert_self_contained(&html);

    let dom = dump_dom(&path, &dir.path().join("chromium-profile"));
    assert!(dom.contains("<h1>pgvector-loadtest: "), "no heading: {dom}");
    let points = attribute_values(&dom, "data-points");
    let charts = FIXED_CHARTS + summary.operations.len();
    assert_eq!(points.len(), charts, "charts with data-points: {points:?}");
    assert_eq!(dom.matches("<svg").count(), charts, "svg elements");
    for (i, n) in points.iter().enumerate() {
        let n: usize = n.parse().expect("a number of points");
        assert!(n > 0, "chart {i} drew no point: {points:?}");
    }
    for title in ["Pool usage", "Recall@k of the searches sampled under load"] {
        assert!(dom.contains(&format!("<title>{title}")), "no chart {title}");
    }
    // Legends sit below the charts, one key per line drawn.
    assert!(dom.matches("class=\"legend\"").count() == charts, "legends");
    let v = &summary.versions;
    assert_eq!(v.goose, "0.19.0");
    assert!(v.postgres.starts_with("18"), "{v:?}");
    assert!(!v.pgvector.is_empty() && v.pgvector != "unknown", "{v:?}");
    for (key, value) in [
        ("versions.postgres", &v.postgres),
        ("versions.pgvector", &v.pgvector),
    ] {
        assert_eq!(&cell(&dom, key), value);
    }

    assert!(summary.operations.len() >= 4, "{:#?}", summary.operations);
    let ms = |us: u64| format!("{:.3}", us as f64 / 1000.0);
    for o in &summary.operations {
        assert_eq!(
            cell(&dom, &format!("{}.count", o.name)),
            o.count.to_string()
        );
        assert_eq!(
            cell(&dom, &format!("{}.failed", o.name)),
            o.failed.to_string()
        );
        assert_eq!(
            cell(&dom, &format!("{}.latency_us.p95", o.name)),
            ms(o.latency_us.p95)
        );
        assert_eq!(
            cell(&dom, &format!("{}.latency_us.p99", o.name)),
            ms(o.latency_us.p99)
        );
    }
    assert_eq!(
        cell(&dom, "aggregated.count"),
        summary.aggregated.count.to_string()
    );
    assert_eq!(cell(&dom, "target"), summary.target);
    assert_eq!(cell(&dom, "max_users"), "10");
}

#[tokio::test]
async fn bench_report_html_is_self_contained_and_agrees_with_the_results() {
    assert!(Path::new(CHROMIUM).is_file(), "{CHROMIUM} is missing");
    let pg = Pg::start().await;
    let dir = temp_dir();
    let reports = dir.path().join("reports");
    let (url, out) = (pg.url(), reports.to_str().expect("utf-8 path").to_string());
    let mut args = vec![
        "bench",
        "--quick",
        "--only",
        "single",
        "--ef-search",
        "10,40",
    ];
    args.extend(["--database-url", &url, "--report-dir", &out]);
    args.extend(SMALL_DATA);
    run_bin(&args, &[]).await.expect_code(0);
    pg.stop().await;

    let report: BenchReport = serde_json::from_slice(
        &std::fs::read(reports.join("benchmark_results.json")).expect("results written"),
    )
    .expect("results parse");
    let path = reports.join("bench_report.html");
    let html = std::fs::read_to_string(&path).expect("bench_report.html written");
    let copy = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench_report.html");
    std::fs::write(&copy, &html).expect("copy the report");
    assert_self_contained(&html);

    let dom = dump_dom(&path, &dir.path().join("chromium-profile"));
    let points = attribute_values(&dom, "data-points");
    let searched = report
        .results
        .iter()
        .filter(|r| r.recall_mean.is_some() && r.clients == 1)
        .count();
    assert!(searched >= 2, "{:?}", report.results);
    assert_eq!(
        points,
        vec![searched.to_string()],
        "the trade-off plot's points"
    );
    assert_eq!(report.results.len(), 2, "{:?}", report.results);
    for (i, r) in report.results.iter().enumerate() {
        let key = |field: &str| format!("results.{i}.{field}");
        assert_eq!(cell(&dom, &key("iterations")), r.iterations.to_string());
        assert_eq!(cell(&dom, &key("p95_ms")), format!("{:.3}", r.p95_ms));
        let recall = r.recall_mean.expect("searches measure recall");
        assert_eq!(cell(&dom, &key("recall_mean")), format!("{recall:.4}"));
    }
    assert_eq!(
        cell(&dom, "settings.pgvector_version"),
        report.settings.pgvector_version
    );
}

/// The DOM Chromium builds from the page at `path` (with no network), after checking that the
/// page is self-contained; a copy is left in `CARGO_TARGET_TMPDIR`.
pub fn checked_dom(path: &Path, scratch: &Path) -> String {
    let html = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} not written: {e}", path.display()));
    let name = path.file_name().expect("a file name");
    std::fs::write(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name), &html)
        .expect("copy the page");
    assert_self_contained(&html);
    dump_dom(path, &scratch.join("chromium-profile"))
}

/// No script, style sheet, font or image from anywhere else; no script at all.
fn assert_self_contained(html: &str) {
    let lower = html.to_lowercase();
    for needle in [
        "<script", "<link", "<img", "<iframe", "@import", "url(", "src=", "href=",
    ] {
        assert!(!lower.contains(needle), "report.html has {needle}");
    }
    // The only address is the SVG namespace, which names and fetches nothing.
    let addresses = lower.matches("http://").count() + lower.matches("https://").count();
    let namespaces = lower
        .matches("xmlns=\"http://www.w3.org/2000/svg\"")
        .count();
    assert_eq!(
        addresses, namespaces,
        "addresses other than the SVG namespace"
    );
    assert!(lower.contains("<style>"), "no inline style");
}

/// Chromium's serialisation of the page at `path` after loading it with no network: DNS maps
/// every host to nothing and the proxy (for every scheme) is a closed port.
fn dump_dom(path: &Path, profile: &Path) -> String {
    let out_path = profile.with_extension("dom.html");
    let err_path = profile.with_extension("log");
    let mut child = Command::new(CHROMIUM)
        .args(HEADLESS)
        .args([
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", path.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("dom file"))
        .stderr(std::fs::File::create(&err_path).expect("log file"))
        .process_group(0)
        .spawn()
        .expect("spawn chromium");
    let group = Pid::from_raw(-(child.id() as i32));
    let deadline = Instant::now() + DUMP_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = kill(group, Signal::SIGKILL);
            let _ = child.wait();
            panic!(
                "chromium --dump-dom still running after {DUMP_TIMEOUT:?}; its log:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Whatever helper processes are left.
    let _ = kill(group, Signal::SIGKILL);
    let dom = std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(
        status.success() && dom.contains("</html>"),
        "chromium {status}, {} bytes of DOM; its log:\n{}",
        dom.len(),
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    dom
}

/// Every value of the attribute `name` in `dom`.
pub fn attribute_values(dom: &str, name: &str) -> Vec<String> {
    let prefix = format!("{name}=\"");
    dom.match_indices(&prefix)
        .map(|(i, _)| {
            let rest = &dom[i + prefix.len()..];
            rest[..rest.find('"').unwrap_or(0)].to_string()
        })
        .collect()
}

/// The text of the one element whose `data-key` is `key` (`data-key` is its last attribute).
pub fn cell(dom: &str, key: &str) -> String {
    let open = format!("data-key=\"{key}\">");
    let found: Vec<usize> = dom.match_indices(&open).map(|(i, _)| i).collect();
    assert_eq!(
        found.len(),
        1,
        "elements with data-key {key}: {}",
        found.len()
    );
    let rest = &dom[found[0] + open.len()..];
    let text = &rest[..rest.find('<').unwrap_or(rest.len())];
    text.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
}
