//! Fidelity with the tools the field uses: `scripts/make-ann-fixtures.py` writes an
//! ann-benchmarks HDF5 file with h5py and VectorDBBench directories with pyarrow, with ground
//! truth computed by brute force in numpy, and these readers must find exactly what it wrote.

use std::process::Command;

use super::*;

/// The venv `plt_install_deps` (scripts/deps) makes.
const DEFAULT_PYTHON: &str = "/var/tmp/pgvector-loadtest/pyenv/bin/python";

/// Runs the script into a temporary directory; fails (never skips) without the venv.
fn make_fixtures() -> (tempfile::TempDir, serde_json::Value) {
    let python = std::env::var("PLT_PYTHON").unwrap_or_else(|_| DEFAULT_PYTHON.to_string());
    assert!(
        Path::new(&python).exists(),
        "{python} not found: the fixture test needs a Python with numpy, h5py and pyarrow; \
         run `source scripts/deps && plt_install_deps` (or set PLT_PYTHON)"
    );
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-ann-fixtures.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = fs::read(dir.path().join("expected.json")).unwrap();
    (dir, serde_json::from_slice(&expected).unwrap())
}

fn u64s(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn lists(v: &serde_json::Value) -> Vec<Vec<u64>> {
    v.as_array().unwrap().iter().map(u64s).collect()
}

/// Checks `rows` (row-major) against numpy's per-row sums, in the row order `order`.
fn check_sums(rows: &[f32], dim: usize, sums: &serde_json::Value, order: &[usize]) {
    let sums = sums.as_array().unwrap();
    assert_eq!(rows.len(), order.len() * dim);
    for (row, &at) in rows.chunks(dim).zip(order) {
        let got: f64 = row.iter().map(|&x| f64::from(x)).sum();
        let want = sums[at].as_f64().unwrap();
        assert!((got - want).abs() < 1e-4, "row {at}: {got} vs {want}");
    }
}

#[test]
fn files_written_by_h5py_pyarrow_and_numpy() {
    let (dir, expected) = make_fixtures();
    let d = dir.path();
    let dim = expected["dim"].as_u64().unwrap() as usize;
    let rows = expected["train_rows"].as_u64().unwrap() as usize;
    let queries = expected["queries"].as_u64().unwrap() as usize;
    let in_order: Vec<usize> = (0..rows).collect();

    // numpy's .npy, both layouts: the reference the other formats are compared with.
    let npy = FileSet::open(&d.join("train.npy"), Some(&d.join("test.npy")), None).unwrap();
    let train = npy.head(rows).unwrap();
    check_sums(&train, dim, &expected["train_row_sums"], &in_order);
    let test = npy.queries().unwrap().unwrap();
    check_sums(
        &test,
        dim,
        &expected["test_row_sums"],
        &(0..queries).collect::<Vec<_>>(),
    );
    let fortran = FileSet::open(&d.join("train-f64-fortran.npy"), None, None).unwrap();
    assert_eq!(fortran.head(rows).unwrap(), train);

    // ann-benchmarks HDF5, contiguous (angular) and chunked + gzip (euclidean).
    for (name, metric, truth) in [
        ("ann-angular.hdf5", Metric::Cosine, "angular_neighbors"),
        ("ann-euclidean.hdf5", Metric::L2, "euclidean_neighbors"),
    ] {
        let set = FileSet::open(&d.join(name), None, None).unwrap();
        assert_eq!((set.dim(), set.train_rows()), (dim, rows), "{name}");
        assert_eq!(set.metric(), Some(metric), "{name}");
        let mut got = Vec::new();
        set.for_each_chunk(300, |ids, chunk| {
            assert_eq!(ids[0] as usize, got.len() / dim);
            got.extend_from_slice(chunk);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, train, "{name}");
        assert_eq!(set.queries().unwrap().unwrap(), test, "{name}");
        assert_eq!(
            set.ground_truth().unwrap().unwrap(),
            lists(&expected[truth]),
            "{name}"
        );
    }

    // VectorDBBench: one training file in row groups, and three shuffled float64 parts.
    let truth = lists(&expected["vdbb_neighbors"]);
    let position: HashMap<u64, usize> = u64s(&expected["train_ids"])
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect();
    for (name, ids) in [
        ("vdbb", u64s(&expected["train_ids"])),
        ("vdbb-parts", u64s(&expected["shuffled_train_ids"])),
    ] {
        let set = FileSet::open(&d.join(name), None, None).unwrap();
        assert_eq!(
            (set.dim(), set.train_rows(), set.metric()),
            (dim, rows, None)
        );
        let (mut got_ids, mut got) = (Vec::new(), Vec::new());
        set.for_each_chunk(300, |ids, chunk| {
            got_ids.extend_from_slice(ids);
            got.extend_from_slice(chunk);
            Ok(())
        })
        .unwrap();
        assert_eq!(got_ids, ids, "{name}");
        let order: Vec<usize> = ids.iter().map(|id| position[id]).collect();
        check_sums(&got, dim, &expected["train_row_sums"], &order);
        assert_eq!(set.queries().unwrap().unwrap(), test, "{name}");
        assert_eq!(set.ground_truth().unwrap().unwrap(), truth, "{name}");
    }
    let zstd = d.join("vdbb-zstd");
    let err = FileSet::open(&zstd, None, None).unwrap_err().to_string();
    assert!(
        err.contains("train.parquet") && err.contains("zstd compression is not supported"),
        "{err}"
    );
}
