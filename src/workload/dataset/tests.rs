//! Tests of the dataset: determinism, norms, namespace sizes, similarity targets, files.

use super::*;
use rand::SeedableRng;
use std::path::PathBuf;

fn spec(namespaces: usize, rows: usize, dim: usize) -> DatasetSpec {
    DatasetSpec {
        namespaces,
        rows_per_namespace: rows,
        dim,
        ..DatasetSpec::default()
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn deterministic_and_seed_sensitive() {
    let a = Dataset::synthetic(spec(3, 100, 64)).unwrap();
    let b = Dataset::synthetic(spec(3, 100, 64)).unwrap();
    let other = Dataset::synthetic(DatasetSpec {
        seed: 43,
        ..spec(3, 100, 64)
    })
    .unwrap();
    assert_eq!(a.vector(2, 57), b.vector(2, 57));
    assert_eq!(a.value(2, 57), b.value(2, 57));
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_ne!(a.vector(2, 57), other.vector(2, 57));
    assert_ne!(a.fingerprint(), other.fingerprint());
    assert!(a.fingerprint().len() >= 16);
    // Random access gives the same row whatever was generated before.
    let first = a.vector(1, 5);
    let _ = a.vector(0, 99);
    assert_eq!(a.vector(1, 5), first);
    let mut buf = vec![0.0; 64];
    a.vector_into(1, 5, &mut buf);
    assert_eq!(buf, first);
    // Rows differ from each other.
    assert_ne!(a.vector(1, 5), a.vector(1, 6));
}

#[test]
fn buckets_are_uniform_so_a_threshold_keeps_its_share() {
    // 100,000 rows: the share below round(s × 10000) is s, within a few standard deviations.
    let d = Dataset::synthetic(spec(10, 10_000, 4)).unwrap();
    let buckets: Vec<u32> = (0..10)
        .flat_map(|ns| (0..10_000).map(move |row| (ns, row)))
        .map(|(ns, row)| d.bucket(ns, row))
        .collect();
    assert!(buckets.iter().all(|&b| b < BUCKETS));
    let share =
        |below: u32| buckets.iter().filter(|&&b| b < below).count() as f64 / buckets.len() as f64;
    for (below, want, tolerance) in [
        (10, 0.001, 0.0003),
        (100, 0.01, 0.002),
        (1000, 0.1, 0.005),
        (5000, 0.5, 0.01),
    ] {
        let got = share(below);
        assert!((got - want).abs() <= tolerance, "below {below}: {got}");
    }
    // Deterministic per (seed, namespace, row); another seed deals other buckets.
    let again = Dataset::synthetic(spec(10, 10_000, 4)).unwrap();
    assert_eq!(again.bucket(3, 1234), d.bucket(3, 1234));
    let other = Dataset::synthetic(DatasetSpec {
        seed: 43,
        ..spec(10, 10_000, 4)
    })
    .unwrap();
    let moved = (0..1000).filter(|&r| other.bucket(0, r) != d.bucket(0, r));
    assert!(moved.count() > 990);
    // Namespaces are dealt independently: row r does not share its bucket across them.
    assert!(
        (0..1000)
            .filter(|&r| d.bucket(0, r) == d.bucket(1, r))
            .count()
            < 5
    );
}

#[test]
fn every_spec_field_changes_the_fingerprint() {
    let base = DatasetSpec::default();
    let fp = |s: DatasetSpec| Dataset::synthetic(s).unwrap().fingerprint();
    let variants = [
        DatasetSpec {
            namespaces: 11,
            ..base.clone()
        },
        DatasetSpec {
            rows_per_namespace: 5001,
            ..base.clone()
        },
        DatasetSpec {
            dim: 385,
            ..base.clone()
        },
        DatasetSpec {
            seed: 1,
            ..base.clone()
        },
        DatasetSpec {
            topics: 15,
            ..base.clone()
        },
        DatasetSpec {
            subtopics: 3,
            ..base.clone()
        },
        DatasetSpec {
            subtopic_spread: 0.4,
            ..base.clone()
        },
        DatasetSpec {
            noise: 1.1,
            ..base.clone()
        },
        DatasetSpec {
            anisotropy: 0.8,
            ..base.clone()
        },
        DatasetSpec {
            hubness: 0.2,
            ..base.clone()
        },
        DatasetSpec {
            skew: 0.5,
            ..base.clone()
        },
    ];
    let reference = fp(base.clone());
    assert_eq!(reference, fp(base));
    for v in variants {
        assert_ne!(fp(v.clone()), reference, "{v:?}");
    }
}

#[test]
fn names_keys_values_describe() {
    let d = Dataset::synthetic(DatasetSpec::default()).unwrap();
    assert_eq!(d.namespace_name(3), "ns_003");
    assert_eq!(d.namespace_name(1234), "ns_1234");
    assert_eq!(d.key(42), "key_000042");
    assert!(d
        .value(3, 42)
        .starts_with("memory ns_003/key_000042 topic "));
    assert_eq!(
        d.describe(),
        "synthetic: 10 namespaces × 5000 rows, dim 384, seed 42, 6 shared topics × 4 subtopics, \
         noise 1 anisotropy 0.7 hubness 0.05, skew 0"
    );
}

#[test]
fn unit_norms() {
    let d = Dataset::synthetic(spec(2, 50, 384)).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for ns in 0..2 {
        for row in 0..50 {
            let n = dot(&d.vector(ns, row), &d.vector(ns, row));
            assert!((n - 1.0).abs() < 1e-4, "norm² {n}");
        }
        let q = d.query_vector(ns, &mut rng);
        assert!((dot(&q, &q) - 1.0).abs() < 1e-4);
    }
}

#[test]
fn namespace_sizes_sum_and_skew() {
    let even = Dataset::synthetic(spec(10, 100, 8)).unwrap();
    assert!((0..10).all(|ns| even.rows_in_namespace(ns) == 100));
    assert_eq!(even.total_rows(), 1000);

    let skewed = Dataset::synthetic(DatasetSpec {
        skew: 1.0,
        ..spec(10, 100, 8)
    })
    .unwrap();
    let sizes: Vec<usize> = (0..10).map(|ns| skewed.rows_in_namespace(ns)).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 1000);
    assert_eq!(skewed.total_rows(), 1000);
    assert!(sizes[0] > 2 * sizes[9], "{sizes:?}");
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");

    // Extreme skew still leaves every namespace a row.
    let extreme = Dataset::synthetic(DatasetSpec {
        skew: 8.0,
        ..spec(50, 3, 8)
    })
    .unwrap();
    let sizes: Vec<usize> = (0..50).map(|ns| extreme.rows_in_namespace(ns)).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 150);
    assert!(sizes.iter().all(|&s| s >= 1), "{sizes:?}");
    assert!(sizes[0] > 90, "{sizes:?}");
}

#[test]
fn invalid_parameters() {
    for bad in [
        spec(0, 10, 8),
        spec(1, 0, 8),
        spec(1, 10, 0),
        DatasetSpec {
            topics: 0,
            ..spec(1, 10, 8)
        },
        DatasetSpec {
            subtopics: 0,
            ..spec(1, 10, 8)
        },
        DatasetSpec {
            noise: -0.1,
            ..spec(1, 10, 8)
        },
        DatasetSpec {
            anisotropy: f64::INFINITY,
            ..spec(1, 10, 8)
        },
        DatasetSpec {
            skew: -1.0,
            ..spec(1, 10, 8)
        },
        DatasetSpec {
            skew: f64::NAN,
            ..spec(1, 10, 8)
        },
    ] {
        let err = Dataset::synthetic(bad.clone()).unwrap_err();
        assert!(
            matches!(err, DatasetError::InvalidParameter(_)),
            "{bad:?}: {err}"
        );
    }
}

/// Mean similarity of the top 1 and top 10 rows of namespace `ns` to each of `queries`
/// queries drawn from namespace `from`, and the median similarity.
fn neighbour_profile(d: &Dataset, from: usize, ns: usize, queries: usize) -> (f64, f64, f64) {
    let dim = d.spec().dim;
    let rows = d.rows_in_namespace(ns);
    let mut matrix = vec![0.0f32; rows * dim];
    for (row, v) in matrix.chunks_mut(dim).enumerate() {
        d.vector_into(ns, row, v);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut top1, mut top10, mut median) = (0.0, 0.0, 0.0);
    for _ in 0..queries {
        let q = d.query_vector(from, &mut rng);
        let mut sims: Vec<f32> = matrix.chunks(dim).map(|v| dot(&q, v)).collect();
        sims.sort_by(|a, b| b.total_cmp(a));
        top1 += sims[0] as f64;
        top10 += sims[..10].iter().map(|&s| s as f64).sum::<f64>() / 10.0;
        median += sims[rows / 2] as f64;
    }
    let n = queries as f64;
    (top1 / n, top10 / n, median / n)
}

/// The shape of real embedding neighbourhoods: a query's nearest rows are clearly closer than
/// the bulk (cluster structure), but the top 10 are not a tight ball far above everything else
/// (which any index finds at once), and other namespaces hold neighbours about as close
/// (namespaces share topics).
#[test]
fn similarity_targets() {
    let d = Dataset::synthetic(spec(2, 5000, 384)).unwrap();
    let (top1, top10, median) = neighbour_profile(&d, 0, 0, 50);
    let (_, other_top10, _) = neighbour_profile(&d, 0, 1, 50);
    eprintln!(
        "top-1 {top1:.3}, top-10 {top10:.3}, median {median:.3}, top-10 in another namespace \
         {other_top10:.3}"
    );
    assert!((0.5..0.8).contains(&top1), "top-1 {top1}");
    assert!((0.45..0.75).contains(&top10), "top-10 {top10}");
    assert!(top1 - top10 < 0.1, "top-1 {top1} far above top-10 {top10}");
    assert!(median < top10 - 0.2, "median {median} vs top-10 {top10}");
    assert!(
        other_top10 > top10 - 0.05,
        "another namespace's top-10 {other_top10} vs own {top10}"
    );
}

#[test]
fn similarity_independent_of_dim() {
    for dim in [64, 1536] {
        let d = Dataset::synthetic(spec(1, 200, dim)).unwrap();
        // Same-topic pairs (same value suffix) should sit near 1/(1+noise²) = 0.5, a little
        // below for pairs from different subtopics.
        let mut sum = 0.0;
        let mut n = 0;
        for a in 0..40 {
            for b in a + 1..40 {
                if d.value(0, a).rsplit(' ').next() == d.value(0, b).rsplit(' ').next() {
                    sum += dot(&d.vector(0, a), &d.vector(0, b)) as f64;
                    n += 1;
                }
            }
        }
        let mean = sum / n as f64;
        assert!(
            (0.4..0.56).contains(&mean),
            "dim {dim}: same-topic mean {mean}"
        );
    }
}

fn npy_bytes(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    npy_bytes_order(descr, "False", shape, data)
}

fn npy_bytes_order(descr: &str, fortran: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

const RAW: [[f32; 3]; 4] = [
    [3.0, 4.0, 0.0],
    [0.0, 0.0, 2.0],
    [1.0, 1.0, 1.0],
    [0.0, -5.0, 0.0],
];

fn check_loaded(d: &Dataset) {
    assert_eq!(d.total_rows(), 4);
    assert_eq!(d.rows_in_namespace(0), 2);
    assert_eq!(d.rows_in_namespace(1), 2);
    // vector i lives in namespace i % 2, row i / 2.
    for (i, raw) in RAW.iter().enumerate() {
        let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
        let got = d.vector(i % 2, i / 2);
        for (g, r) in got.iter().zip(raw) {
            assert!((g - r / norm).abs() < 1e-6, "vector {i}: {got:?}");
        }
    }
    let q = d.query_vector(1, &mut rand::rngs::StdRng::seed_from_u64(3));
    let best = (0..2)
        .map(|r| dot(&q, &d.vector(1, r)))
        .fold(f32::MIN, f32::max);
    assert!(best > 0.9, "query should sit near a stored vector: {best}");
}

#[test]
fn npy_and_fvecs_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let f32_data: Vec<u8> = RAW.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
    let f64_data: Vec<u8> = RAW
        .iter()
        .flatten()
        .flat_map(|&x| f64::from(x).to_le_bytes())
        .collect();
    let fvecs: Vec<u8> = RAW
        .iter()
        .flat_map(|v| {
            let mut rec = 3i32.to_le_bytes().to_vec();
            rec.extend(v.iter().flat_map(|x| x.to_le_bytes()));
            rec
        })
        .collect();
    // Column-major, big-endian: the same matrix as numpy would write it.
    let fortran: Vec<u8> = (0..3)
        .flat_map(|c| RAW.iter().map(move |r| r[c]))
        .flat_map(|x| x.to_be_bytes())
        .collect();
    let paths = [
        write(dir.path(), "a.npy", &npy_bytes("<f4", "(4, 3)", &f32_data)),
        write(
            dir.path(),
            "f.npy",
            &npy_bytes_order(">f4", "True", "(4, 3)", &fortran),
        ),
        write(dir.path(), "b.npy", &npy_bytes("<f8", "(4, 3)", &f64_data)),
        write(dir.path(), "c.fvecs", &fvecs),
    ];
    let mut fingerprints = Vec::new();
    for path in &paths {
        let d = Dataset::from_file(path, spec(2, 999, 3)).unwrap();
        check_loaded(&d);
        assert!(d.describe().contains("4 vectors"), "{}", d.describe());
        assert!(d.value(1, 1).ends_with("vector 3"), "{}", d.value(1, 1));
        fingerprints.push(d.fingerprint());
    }
    assert_ne!(fingerprints[0], fingerprints[1]);
    let again = Dataset::from_file(&paths[0], spec(2, 1, 3)).unwrap();
    assert_eq!(again.fingerprint(), fingerprints[0]);
}

fn load_err(path: &Path, dim: usize) -> DatasetError {
    let err = Dataset::from_file(path, spec(1, 1, dim)).unwrap_err();
    let file = path.display().to_string();
    assert!(
        err.to_string().contains(&file),
        "message must name the file: {err}"
    );
    err
}

#[test]
fn file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let err = load_err(&d.join("missing.npy"), 3);
    assert!(matches!(err, DatasetError::Missing { .. }), "{err}");

    let err = load_err(&write(d, "empty.fvecs", b""), 3);
    assert!(matches!(err, DatasetError::Empty { .. }), "{err}");

    let mut rec = 3i32.to_le_bytes().to_vec();
    rec.extend([1.0f32, 2.0, 3.0].iter().flat_map(|x| x.to_le_bytes()));
    rec.extend(3i32.to_le_bytes());
    rec.extend(1.0f32.to_le_bytes());
    let err = load_err(&write(d, "short.fvecs", &rec), 3);
    assert!(
        matches!(
            err,
            DatasetError::Truncated {
                expected: 32,
                found: 24,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("expected 32 bytes, found 24"),
        "{err}"
    );

    let err = load_err(&write(d, "dim.fvecs", &rec[..16]), 4);
    assert!(
        matches!(
            err,
            DatasetError::WrongDimension {
                file_dim: 3,
                expected: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("file has 3, --dim is 4"), "{err}");

    let data: Vec<u8> = [1.0f32, 2.0, 3.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let err = load_err(&write(d, "flat.npy", &npy_bytes("<f4", "(3,)", &data)), 3);
    assert!(matches!(err, DatasetError::NotTwoD { .. }), "{err}");

    let err = load_err(&write(d, "dim.npy", &npy_bytes("<f4", "(1, 3)", &data)), 4);
    assert!(
        matches!(err, DatasetError::WrongDimension { file_dim: 3, .. }),
        "{err}"
    );

    let err = load_err(&write(d, "int.npy", &npy_bytes("<i4", "(1, 3)", &data)), 3);
    assert!(
        matches!(err, DatasetError::UnsupportedDtype { .. }),
        "{err}"
    );

    let err = load_err(&write(d, "cut.npy", &npy_bytes("<f4", "(2, 3)", &data)), 3);
    assert!(matches!(err, DatasetError::Truncated { .. }), "{err}");

    let err = load_err(&write(d, "magic.npy", b"not a numpy file"), 3);
    assert!(matches!(err, DatasetError::BadMagic { .. }), "{err}");

    let zeros = vec![0u8; 12];
    let err = load_err(
        &write(d, "zero.npy", &npy_bytes("<f4", "(1, 3)", &zeros)),
        3,
    );
    assert!(
        matches!(err, DatasetError::ZeroVector { index: 0, .. }),
        "{err}"
    );

    let err = load_err(&write(d, "data.csv", b"1,2,3"), 3);
    assert!(
        matches!(err, DatasetError::UnsupportedFormat { .. }),
        "{err}"
    );
}

#[test]
fn shareable() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Dataset>();
}
