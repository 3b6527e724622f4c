//! Bad files in every format: each error names the file and what is wrong with it.

use super::*;

/// The error of opening `path` (with `queries` and `truth`), checked to name `names`.
fn open_err(
    path: &Path,
    queries: Option<&Path>,
    truth: Option<&Path>,
    names: &Path,
) -> DatasetError {
    let err = FileSet::open(path, queries, truth).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&names.display().to_string()),
        "must name {}: {text}",
        names.display()
    );
    assert!(!text.contains('\n'), "one line: {text}");
    err
}

#[test]
// Long (about 100 lines): one bad file per case, each written then opened, read top to bottom.
fn errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = matrix(10, 4);

    // A truncated .fvecs: the last record is cut short.
    let mut bytes = vecs_bytes(&data, 4, f32::to_le_bytes);
    bytes.truncate(bytes.len() - 3);
    let cut = d.join("cut.fvecs");
    fs::write(&cut, &bytes).unwrap();
    let err = open_err(&cut, None, None, &cut);
    assert!(
        matches!(
            err,
            DatasetError::Truncated {
                expected: 200,
                found: 197,
                ..
            }
        ),
        "{err}"
    );

    // A record whose dimension differs from the first: found when read.
    let mut bytes = vecs_bytes(&data, 4, f32::to_le_bytes);
    bytes[3 * 20..3 * 20 + 4].copy_from_slice(&5i32.to_le_bytes());
    let odd = d.join("odd.fvecs");
    fs::write(&odd, &bytes).unwrap();
    let set = FileSet::open(&odd, None, None).unwrap();
    let err = set.for_each_chunk(4, |_, _| Ok(())).unwrap_err();
    assert!(
        err.to_string()
            .contains("vector 3 has dimension 5, the first has 4"),
        "{err}"
    );

    // Queries of another dimension; ground truth of another length; ground truth alone.
    let base = d.join("x_base.fvecs");
    fvecs(&base, &data, 4);
    let q3 = d.join("q3.fvecs");
    fvecs(&q3, &matrix(2, 3), 3);
    let err = open_err(&base, Some(&q3), None, &q3);
    assert!(
        matches!(
            err,
            DatasetError::QueryDimension {
                dim: 3,
                train_dim: 4,
                ..
            }
        ),
        "{err}"
    );
    let q = d.join("q.fvecs");
    fvecs(&q, &matrix(2, 4), 4);
    let gt = d.join("gt.ivecs");
    ivecs(&gt, &[1, 2, 3], 1);
    let err = open_err(&base, Some(&q), Some(&gt), &gt);
    assert!(err.to_string().contains("3 rows for 2 queries"), "{err}");
    let err = open_err(&base, None, Some(&gt), &gt);
    assert!(
        matches!(err, DatasetError::GroundTruthWithoutQueries { .. }),
        "{err}"
    );
    // Ground truth pointing past the training vectors.
    let far = d.join("far.ivecs");
    ivecs(&far, &[1, 10], 1);
    let set = FileSet::open(&base, Some(&q), Some(&far)).unwrap();
    let err = set.ground_truth().unwrap_err();
    assert!(
        err.to_string()
            .contains("neighbour 10 is past the 10 training vectors"),
        "{err}"
    );

    // Unsupported and missing paths; the message lists every format.
    let csv = d.join("data.csv");
    fs::write(&csv, "1,2").unwrap();
    let err = open_err(&csv, None, None, &csv);
    assert!(
        matches!(err, DatasetError::UnsupportedFormat { .. }),
        "{err}"
    );
    for format in [".npy", ".fvecs", ".hdf5", "VectorDBBench", ".ivecs"] {
        assert!(err.to_string().contains(format), "{err}");
    }
    let err = open_err(&base, Some(&csv), None, &csv);
    assert!(
        matches!(err, DatasetError::UnsupportedFormat { .. }),
        "{err}"
    );
    let err = open_err(&base, Some(&q), Some(&q), &q);
    assert!(
        matches!(err, DatasetError::UnsupportedFormat { .. }),
        "{err}"
    );
    let gone = d.join("gone");
    let err = open_err(&gone, None, None, &gone);
    assert!(matches!(err, DatasetError::Missing { .. }), "{err}");
    let gone = d.join("gone.hdf5");
    let err = open_err(&gone, None, None, &gone);
    assert!(matches!(err, DatasetError::Missing { .. }), "{err}");
}

#[test]
fn hdf5_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = matrix(20, 4);
    let write = |name: &str, build: &dyn Fn(&mut FileBuilder)| {
        let mut b = FileBuilder::new();
        b.set_attr("distance", AttrValue::String("euclidean".into()));
        b.create_dataset("train")
            .with_f32_data(&train)
            .with_shape(&[20, 4]);
        build(&mut b);
        let path = d.join(name);
        b.write(&path).unwrap();
        path
    };
    let neighbors = |b: &mut FileBuilder, rows: u64| {
        b.create_dataset("neighbors")
            .with_i32_data(&vec![0; rows as usize * 2])
            .with_shape(&[rows, 2]);
    };
    let test = |b: &mut FileBuilder, dim: u64| {
        b.create_dataset("test")
            .with_f32_data(&vec![1.0; 3 * dim as usize])
            .with_shape(&[3, dim]);
    };

    let path = write("no_test.hdf5", &|b| neighbors(b, 3));
    let err = open_err(&path, None, None, &path);
    assert!(err.to_string().contains("missing dataset 'test'"), "{err}");

    let path = write("dim.hdf5", &|b| {
        test(b, 5);
        neighbors(b, 3);
    });
    let err = open_err(&path, None, None, &path);
    assert!(
        matches!(
            err,
            DatasetError::QueryDimension {
                dim: 5,
                train_dim: 4,
                ..
            }
        ),
        "{err}"
    );

    let path = write("rows.hdf5", &|b| {
        test(b, 4);
        neighbors(b, 2);
    });
    let err = open_err(&path, None, None, &path);
    assert!(err.to_string().contains("2 rows for 3 queries"), "{err}");

    let path = d.join("hamming.hdf5");
    let mut b = FileBuilder::new();
    b.set_attr("distance", AttrValue::String("hamming".into()));
    for name in ["train", "test"] {
        b.create_dataset(name)
            .with_f32_data(&train)
            .with_shape(&[20, 4]);
    }
    neighbors(&mut b, 20);
    b.write(&path).unwrap();
    let err = open_err(&path, None, None, &path);
    assert!(
        err.to_string().contains("'hamming' is not supported"),
        "{err}"
    );

    let junk = d.join("junk.h5");
    fs::write(&junk, b"not an hdf5 file at all").unwrap();
    let err = open_err(&junk, None, None, &junk);
    assert!(matches!(err, DatasetError::Library { .. }), "{err}");
}

#[test]
fn vectordbbench_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // No training file at all.
    fs::write(d.join("test.parquet"), b"").unwrap();
    let err = open_err(d, None, None, d);
    assert!(
        err.to_string().contains("missing training vectors"),
        "{err}"
    );

    // A part missing from a multi-part set.
    let parts = tempfile::tempdir().unwrap();
    write_vdbb(parts.path(), 90, 4, 3);
    fs::remove_file(parts.path().join("shuffle_train-01-of-03.parquet")).unwrap();
    let err = open_err(parts.path(), None, None, parts.path());
    assert!(
        err.to_string()
            .contains("missing part shuffle_train-01-of-03.parquet (found 2 of 3)"),
        "{err}"
    );

    // Columns named otherwise.
    let cols = tempfile::tempdir().unwrap();
    let train = cols.path().join("train.parquet");
    write_parquet(
        &train,
        "vector",
        Elem::F32,
        &[1, 2],
        &rows_of(&matrix(2, 4), 4),
        10,
        Compression::SNAPPY,
    );
    let err = open_err(cols.path(), None, None, &train);
    assert!(err.to_string().contains("missing column 'emb'"), "{err}");

    // A vector of the wrong length, found while reading.
    let short = tempfile::tempdir().unwrap();
    let mut rows = rows_of(&matrix(5, 4), 4);
    rows[3].pop();
    let train = short.path().join("train.parquet");
    write_parquet(
        &train,
        "emb",
        Elem::F32,
        &[1, 2, 3, 4, 5],
        &rows,
        10,
        Compression::SNAPPY,
    );
    let set = FileSet::open(short.path(), None, None).unwrap();
    let err = set.for_each_chunk(2, |_, _| Ok(())).unwrap_err();
    assert!(
        err.to_string()
            .contains("row 3: emb has 3 values, expected 4"),
        "{err}"
    );
    assert!(
        err.to_string().contains(&train.display().to_string()),
        "{err}"
    );

    // Queries of another dimension.
    let qdim = tempfile::tempdir().unwrap();
    write_vdbb(qdim.path(), 20, 4, 1);
    let test = qdim.path().join("test.parquet");
    write_parquet(
        &test,
        "emb",
        Elem::F32,
        &[1],
        &[vec![1.0; 3]],
        10,
        Compression::SNAPPY,
    );
    let err = open_err(qdim.path(), None, None, &test);
    assert!(
        matches!(err, DatasetError::QueryDimension { dim: 3, .. }),
        "{err}"
    );
}
