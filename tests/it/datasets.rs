//! Data set files on a real server: small sets in each standard layout (written by the field's
//! own tools: h5py for ann-benchmarks, pyarrow for VectorDBBench, plus hand-written texmex
//! `.fvecs`/`.ivecs`) are seeded, searched with their own test queries, and the recall against
//! each file's ground truth must agree with the exact-search recall on the untouched table.

use std::path::{Path, PathBuf};

use crate::util::{run_bin, temp_dir, Pg};
use pgvector_loadtest::bench::report::BenchReport;

const PYTHON: &str = "/var/tmp/pgvector-loadtest/pyenv/bin/python";

/// Writes the fixtures of `scripts/make-ann-fixtures.py` (2,000 × 24 training vectors, 40
/// queries, brute-force ground truth) into `dir`.
fn fixtures(dir: &Path) {
    let python = std::env::var("PLT_PYTHON").unwrap_or_else(|_| PYTHON.to_string());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-ann-fixtures.py");
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{python}: {e}; run `source scripts/deps && plt_install_deps` (or set PLT_PYTHON)"
            )
        });
    assert!(
        out.status.success(),
        "fixtures: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// texmex files from the fixture's numpy arrays: `sift_base.fvecs`, `sift_query.fvecs` and
/// `sift_groundtruth.ivecs` (its angular neighbours) side by side.
fn texmex(dir: &Path) -> PathBuf {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let dim = expected["dim"].as_u64().unwrap() as usize;
    let fvecs = |npy: &str, out: &str| {
        let bytes = std::fs::read(dir.join(npy)).unwrap();
        let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let data = &bytes[10 + header..];
        let mut file = Vec::new();
        for row in data.chunks(4 * dim) {
            file.extend_from_slice(&(dim as i32).to_le_bytes());
            file.extend_from_slice(row);
        }
        std::fs::write(dir.join(out), file).unwrap();
    };
    fvecs("train.npy", "sift_base.fvecs");
    fvecs("test.npy", "sift_query.fvecs");
    let mut truth = Vec::new();
    for row in expected["angular_neighbors"].as_array().unwrap() {
        let row = row.as_array().unwrap();
        truth.extend_from_slice(&(row.len() as i32).to_le_bytes());
        for id in row {
            truth.extend_from_slice(&(id.as_i64().unwrap() as i32).to_le_bytes());
        }
    }
    std::fs::write(dir.join("sift_groundtruth.ivecs"), truth).unwrap();
    dir.join("sift_base.fvecs")
}

/// Seeds `set` (with `extra` options) and runs the data set benchmark at ef_search 4 and 40;
/// returns (ef_search, recall vs exact search, recall vs the file's ground truth) per point.
async fn dataset_recall(pg: &Pg, set: &Path, extra: &[&str]) -> Vec<(u32, f64, f64)> {
    let reports = temp_dir();
    let (url, dir) = (pg.url(), reports.path().to_str().unwrap().to_string());
    let set = set.to_str().unwrap();
    let mut args = vec![
        "--database-url",
        &url,
        "--report-dir",
        &dir,
        "--dim",
        "24",
        "--namespaces",
        "3",
        "--dataset",
        set,
        "--reset",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "bench",
        "--only",
        "dataset",
        "--dataset-iterations",
        "200",
        "--warmup",
        "5",
        "--ef-search",
        "4,40",
    ]);
    run_bin(&args, &[]).await.expect_code(0);
    let text = std::fs::read_to_string(reports.path().join("benchmark_results.json")).unwrap();
    let report: BenchReport = serde_json::from_str(&text).unwrap();
    assert_eq!(report.results.len(), 2, "{:?}", report.results);
    report
        .results
        .iter()
        .map(|r| {
            assert_eq!(r.operation, "dataset_search");
            assert_eq!(r.failures, 0);
            let exact = r.recall_mean.expect("recall against exact search");
            let file = r.dataset_recall_mean.expect("recall against the file");
            (r.ef_search, exact, file)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_is_judged_by_its_own_ground_truth() {
    let pg = Pg::start().await;
    let files = temp_dir();
    fixtures(files.path());
    let base = texmex(files.path());
    let test_npy = files.path().join("test.npy");
    let truth_ivecs = files.path().join("sift_groundtruth.ivecs");
    let (q, t) = (test_npy.to_str().unwrap(), truth_ivecs.to_str().unwrap());
    let cases: Vec<(&str, PathBuf, Vec<&str>)> = vec![
        (
            "ann-benchmarks angular",
            files.path().join("ann-angular.hdf5"),
            vec![],
        ),
        // The file declares euclidean: the L2 operator class and `<->` follow from it.
        (
            "ann-benchmarks euclidean",
            files.path().join("ann-euclidean.hdf5"),
            vec![],
        ),
        // Its ground truth is euclidean, and the files do not say so.
        (
            "VectorDBBench",
            files.path().join("vdbb"),
            vec!["--distance", "l2"],
        ),
        (
            "VectorDBBench in shuffled parts",
            files.path().join("vdbb-parts"),
            vec!["--distance", "l2"],
        ),
        ("texmex fvecs + ivecs", base, vec![]),
        (
            "npy with a query file and ground truth",
            files.path().join("train.npy"),
            vec!["--queries-file", q, "--ground-truth", t],
        ),
    ];
    for (name, set, extra) in cases {
        let points = dataset_recall(&pg, &set, &extra).await;
        eprintln!("{name}: (ef_search, exact recall, file recall) {points:?}");
        for (ef, exact, file) in &points {
            assert!(
                (exact - file).abs() < 0.02,
                "{name} at ef_search {ef}: {exact} against exact search, {file} against the file"
            );
        }
        // Each of the 3 partitions returns at most ef_search rows: 12 candidates for 10 places
        // at ef_search 4, so recall is below what ef_search 40 finds.
        let (low, high) = (points[0].2, points[1].2);
        assert!(
            low < high - 0.02,
            "{name}: {low} at ef_search 4, {high} at 40"
        );
        assert!(high > 0.9, "{name}: {high} at ef_search 40");
    }
    pg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distance_other_than_the_files_is_refused() {
    let files = temp_dir();
    fixtures(files.path());
    let set = files.path().join("ann-euclidean.hdf5");
    let run = run_bin(
        &[
            "--dataset",
            set.to_str().unwrap(),
            "--distance",
            "cosine",
            "setup",
        ],
        &[],
    )
    .await;
    run.expect_code(2);
    let stderr = run.stderr();
    assert!(
        stderr.contains("ground truth was computed with l2"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_a_file_larger_than_the_harness_keeps_memory_bounded() {
    // 400,000 × 128 float32: a 205 MB .npy. Seeding streams it; the harness keeps a 16 MiB
    // pool of rows and a few 4 MiB chunks in flight, so its peak stays far below the file.
    let (rows, dim) = (400_000usize, 128usize);
    let files = temp_dir();
    let path = files.path().join("big.npy");
    {
        use std::io::Write;
        let header =
            format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
        let pad = 64 - (10 + header.len() + 1) % 64;
        let header = format!("{header}{}\n", " ".repeat(pad));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        out.write_all(b"\x93NUMPY\x01\x00").unwrap();
        out.write_all(&(header.len() as u16).to_le_bytes()).unwrap();
        out.write_all(header.as_bytes()).unwrap();
        let mut state = 1u32;
        for _ in 0..rows * dim {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            out.write_all(&((state >> 8) as f32 / 16_777_216.0 - 0.5).to_le_bytes())
                .unwrap();
        }
    }
    let pg = Pg::start().await;
    let url = pg.url();
    let args = [
        "--database-url",
        &url,
        "--dim",
        "128",
        "--dataset",
        path.to_str().unwrap(),
        "--index",
        "ivfflat",
        "--lists",
        "10",
        "setup",
    ];
    let run = run_bin(&args, &[]).await;
    run.expect_code(0);
    let stderr = run.stderr();
    let peak: f64 = stderr
        .split("harness peak memory ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak memory line: {stderr}"));
    eprintln!(
        "seeded {rows} rows from a {} MB file; harness peak {peak} MiB",
        rows * dim * 4 / 1_000_000
    );
    assert!(
        peak < 100.0,
        "harness peak {peak} MiB while seeding a 205 MB file"
    );
    let c = pg.client("postgres").await;
    let n: i64 = c
        .query_one("SELECT count(*) FROM memory_entries", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, rows as i64);
    pg.stop().await;
}
