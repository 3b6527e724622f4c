//! Real files in every format, written with hand-made bytes (npy, fvecs, ivecs) or the
//! formats' own writers (hdf5-pure, parquet), read back through [`FileSet`].

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hdf5_pure::{AttrValue, FileBuilder};
use parquet::basic::{Compression, GzipLevel};
use parquet::data_type::{DoubleType, FloatType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use super::*;

mod errors;
mod fixtures;
mod memory;

/// `rows`×`dim` distinct values: row r, column c holds r + c / 1000.
pub(super) fn matrix(rows: usize, dim: usize) -> Vec<f32> {
    (0..rows)
        .flat_map(|r| (0..dim).map(move |c| r as f32 + c as f32 / 1000.0))
        .collect()
}

fn npy_header(descr: &str, fortran: bool, rows: usize, cols: usize) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': ({rows}, {cols}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out
}

/// A little-endian float32 C-order `.npy` of `data`.
pub(super) fn npy_f32(path: &Path, data: &[f32], dim: usize) {
    let mut bytes = npy_header("<f4", false, data.len() / dim, dim);
    bytes.extend(data.iter().flat_map(|x| x.to_le_bytes()));
    fs::write(path, bytes).unwrap();
}

fn vecs_bytes<T: Copy>(data: &[T], dim: usize, le: fn(T) -> [u8; 4]) -> Vec<u8> {
    data.chunks(dim)
        .flat_map(|row| {
            let mut rec = (dim as i32).to_le_bytes().to_vec();
            rec.extend(row.iter().flat_map(|&x| le(x)));
            rec
        })
        .collect()
}

pub(super) fn fvecs(path: &Path, data: &[f32], dim: usize) {
    fs::write(path, vecs_bytes(data, dim, f32::to_le_bytes)).unwrap();
}

fn ivecs(path: &Path, data: &[i32], k: usize) {
    fs::write(path, vecs_bytes(data, k, i32::to_le_bytes)).unwrap();
}

/// Every chunk of `set`: (ids, rows) in order.
fn chunks(set: &FileSet, chunk_rows: usize) -> Vec<(Vec<u64>, Vec<f32>)> {
    let mut out = Vec::new();
    set.for_each_chunk(chunk_rows, |ids, rows| {
        assert_eq!(rows.len(), ids.len() * set.dim());
        out.push((ids.to_vec(), rows.to_vec()));
        Ok(())
    })
    .unwrap();
    out
}

/// Checks that chunks of 128 over `set` are full but for the last and give `expected` with
/// `ids` in order.
fn check_chunked(set: &FileSet, expected: &[f32], ids: &[u64]) {
    let got = chunks(set, 128);
    assert_eq!(got.len(), ids.len().div_ceil(128));
    for (i, (chunk_ids, _)) in got.iter().enumerate() {
        let want = if i + 1 == got.len() {
            ids.len() - 128 * i
        } else {
            128
        };
        assert_eq!(chunk_ids.len(), want, "chunk {i}");
    }
    let all_ids: Vec<u64> = got.iter().flat_map(|c| c.0.clone()).collect();
    let all_rows: Vec<f32> = got.iter().flat_map(|c| c.1.clone()).collect();
    assert_eq!(all_ids, ids);
    assert_eq!(all_rows, expected);
}

fn positions(n: usize) -> Vec<u64> {
    (0..n as u64).collect()
}

#[test]
fn npy_in_every_layout_streams_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let (rows, dim) = (1000, 8);
    let data = matrix(rows, dim);
    let c_order = dir.path().join("c.npy");
    npy_f32(&c_order, &data, dim);
    // float64, big-endian, column-major: the same matrix.
    let fortran = dir.path().join("f.npy");
    let mut bytes = npy_header(">f8", true, rows, dim);
    for c in 0..dim {
        for r in 0..rows {
            bytes.extend(f64::from(data[r * dim + c]).to_be_bytes());
        }
    }
    fs::write(&fortran, bytes).unwrap();
    for path in [&c_order, &fortran] {
        let set = FileSet::open(path, None, None).unwrap();
        assert_eq!(set.format(), Format::Npy);
        assert_eq!((set.dim(), set.train_rows()), (dim, rows));
        assert_eq!(set.path(), path.display().to_string());
        assert_eq!(set.metric(), None);
        assert_eq!(set.queries().unwrap(), None);
        assert_eq!(set.ground_truth().unwrap(), None);
        check_chunked(&set, &data, &positions(rows));
        assert_eq!(set.head(3).unwrap(), data[..3 * dim]);
        assert_eq!(set.head(5000).unwrap(), data);
        assert!(set.head(0).unwrap().is_empty());
    }
}

#[test]
fn texmex_fvecs_picks_up_queries_and_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (rows, dim) = (300, 4);
    let base = matrix(rows, dim);
    let queries: Vec<f32> = matrix(5, dim).iter().map(|x| x + 0.5).collect();
    let truth: Vec<i32> = (0..5 * 3).map(|i| (i * 7) % rows as i32).collect();
    fvecs(&d.join("sift_base.fvecs"), &base, dim);
    fvecs(&d.join("sift_query.fvecs"), &queries, dim);
    ivecs(&d.join("sift_groundtruth.ivecs"), &truth, 3);

    let set = FileSet::open(&d.join("sift_base.fvecs"), None, None).unwrap();
    assert_eq!(set.format(), Format::Fvecs);
    assert_eq!((set.dim(), set.train_rows()), (dim, rows));
    check_chunked(&set, &base, &positions(rows));
    assert_eq!(set.queries().unwrap().unwrap(), queries);
    let expected: Vec<Vec<u64>> = truth
        .chunks(3)
        .map(|r| r.iter().map(|&i| i as u64).collect())
        .collect();
    assert_eq!(set.ground_truth().unwrap().unwrap(), expected);

    // Another query file alone replaces the queries and drops the ground truth that went
    // with the old ones; with a ground-truth file, both are used.
    let other = d.join("other.npy");
    npy_f32(&other, &queries[..2 * dim], dim);
    let set = FileSet::open(&d.join("sift_base.fvecs"), Some(&other), None).unwrap();
    assert_eq!(set.queries().unwrap().unwrap(), queries[..2 * dim]);
    assert_eq!(set.ground_truth().unwrap(), None);
    let gt2 = d.join("gt2.ivecs");
    ivecs(&gt2, &truth[..6], 3);
    let set = FileSet::open(&d.join("sift_base.fvecs"), Some(&other), Some(&gt2)).unwrap();
    assert_eq!(set.ground_truth().unwrap().unwrap(), expected[..2]);

    // A file not named X_base.fvecs has no companions, but takes given ones.
    fs::copy(d.join("sift_base.fvecs"), d.join("plain.fvecs")).unwrap();
    let set = FileSet::open(&d.join("plain.fvecs"), None, None).unwrap();
    assert_eq!(set.queries().unwrap(), None);
    let set = FileSet::open(
        &d.join("plain.fvecs"),
        Some(&d.join("sift_query.fvecs")),
        Some(&d.join("sift_groundtruth.ivecs")),
    )
    .unwrap();
    assert_eq!(set.ground_truth().unwrap().unwrap(), expected);
}

/// An ann-benchmarks-shaped file written with hdf5-pure.
fn write_hdf5(path: &Path, distance: &str, train: &[f32], dim: usize, chunked: bool) {
    let rows = (train.len() / dim) as u64;
    let test = &train[..10 * dim];
    let neighbors: Vec<i32> = (0..10 * 5).map(|i| (i * 13) % rows as i32).collect();
    let distances: Vec<f32> = (0..10 * 5).map(|i| i as f32).collect();
    let mut b = FileBuilder::new();
    b.set_attr("distance", AttrValue::String(distance.to_string()));
    b.set_attr("dimension", AttrValue::I64(dim as i64));
    let ds = b.create_dataset("train");
    ds.with_f32_data(train).with_shape(&[rows, dim as u64]);
    if chunked {
        ds.with_chunks(&[100, dim as u64]).with_deflate(4);
    }
    b.create_dataset("test")
        .with_f32_data(test)
        .with_shape(&[10, dim as u64]);
    b.create_dataset("neighbors")
        .with_i32_data(&neighbors)
        .with_shape(&[10, 5]);
    b.create_dataset("distances")
        .with_f32_data(&distances)
        .with_shape(&[10, 5]);
    b.write(path).unwrap();
}

#[test]
fn hdf5_contiguous_and_chunked() {
    let dir = tempfile::tempdir().unwrap();
    let (rows, dim) = (1000, 8);
    let train = matrix(rows, dim);
    for (name, distance, metric, chunked) in [
        ("a.hdf5", "angular", Metric::Cosine, false),
        ("e.h5", "euclidean", Metric::L2, true),
        ("d.hdf5", "dot", Metric::InnerProduct, false),
    ] {
        let path = dir.path().join(name);
        write_hdf5(&path, distance, &train, dim, chunked);
        let set = FileSet::open(&path, None, None).unwrap();
        assert_eq!(set.format(), Format::Hdf5);
        assert_eq!((set.dim(), set.train_rows()), (dim, rows));
        assert_eq!(set.metric(), Some(metric), "{name}");
        check_chunked(&set, &train, &positions(rows));
        assert_eq!(set.head(130).unwrap(), train[..130 * dim]);
        assert_eq!(set.queries().unwrap().unwrap(), train[..10 * dim]);
        let truth = set.ground_truth().unwrap().unwrap();
        assert_eq!(truth.len(), 10);
        assert_eq!(truth[1], [5, 6, 7, 8, 9].map(|i| (i * 13) % rows as u64));
    }
}

/// How a parquet test file stores its list column.
#[derive(Clone, Copy)]
enum Elem {
    F32,
    F64,
    I64,
}

/// A VectorDBBench-style file: `id` int64 and `list` (list<elem>) in row groups of `group`.
fn write_parquet(
    path: &Path,
    list: &str,
    elem: Elem,
    ids: &[i64],
    values: &[Vec<f64>],
    group: usize,
    compression: Compression,
) {
    let ty = match elem {
        Elem::F32 => "float",
        Elem::F64 => "double",
        Elem::I64 => "int64",
    };
    // The schema pyarrow writes for a pandas frame of ids and lists.
    let schema = parse_message_type(&format!(
        "message schema {{ optional int64 id; optional group {list} (LIST) {{ \
         repeated group list {{ optional {ty} element; }} }} }}"
    ))
    .unwrap();
    let props = WriterProperties::builder()
        .set_compression(compression)
        .build();
    let file = fs::File::create(path).unwrap();
    let mut w = SerializedFileWriter::new(file, Arc::new(schema), Arc::new(props)).unwrap();
    for (ids, values) in ids.chunks(group).zip(values.chunks(group)) {
        let mut rg = w.next_row_group().unwrap();
        let mut col = rg.next_column().unwrap().unwrap();
        col.typed::<Int64Type>()
            .write_batch(ids, Some(&vec![1; ids.len()]), None)
            .unwrap();
        col.close().unwrap();
        let mut col = rg.next_column().unwrap().unwrap();
        let flat: Vec<f64> = values.iter().flatten().copied().collect();
        let def = vec![3; flat.len()];
        let rep: Vec<i16> = values
            .iter()
            .flat_map(|v| (0..v.len()).map(|i| i16::from(i > 0)))
            .collect();
        let (def, rep) = (Some(&def[..]), Some(&rep[..]));
        match elem {
            Elem::F32 => {
                let v: Vec<f32> = flat.iter().map(|&x| x as f32).collect();
                col.typed::<FloatType>().write_batch(&v, def, rep).unwrap();
            }
            Elem::F64 => {
                col.typed::<DoubleType>()
                    .write_batch(&flat, def, rep)
                    .unwrap();
            }
            Elem::I64 => {
                let v: Vec<i64> = flat.iter().map(|&x| x as i64).collect();
                col.typed::<Int64Type>().write_batch(&v, def, rep).unwrap();
            }
        }
        col.close().unwrap();
        rg.close().unwrap();
    }
    w.close().unwrap();
}

fn rows_of(data: &[f32], dim: usize) -> Vec<Vec<f64>> {
    data.chunks(dim)
        .map(|r| r.iter().map(|&x| f64::from(x)).collect())
        .collect()
}

/// A VectorDBBench directory: train ids 7, 17, 27, …; queries 100, 101, …; neighbours listed
/// in the reverse of the queries' order.
fn write_vdbb(dir: &Path, rows: usize, dim: usize, parts: usize) -> (Vec<f32>, Vec<u64>) {
    let train = matrix(rows, dim);
    let ids: Vec<i64> = (0..rows as i64).map(|i| 10 * i + 7).collect();
    let per = rows.div_ceil(parts);
    for p in 0..parts {
        let name = if parts == 1 {
            "train.parquet".to_string()
        } else {
            format!("shuffle_train-{p:02}-of-{parts:02}.parquet")
        };
        let range = p * per..((p + 1) * per).min(rows);
        let (elem, compression) = if p % 2 == 0 {
            (Elem::F32, Compression::SNAPPY)
        } else {
            (Elem::F64, Compression::GZIP(GzipLevel::default()))
        };
        write_parquet(
            &dir.join(name),
            "emb",
            elem,
            &ids[range.clone()],
            &rows_of(&train[range.start * dim..range.end * dim], dim),
            300,
            compression,
        );
    }
    let queries: Vec<i64> = (100..105).collect();
    write_parquet(
        &dir.join("test.parquet"),
        "emb",
        Elem::F32,
        &queries,
        &rows_of(&train[..5 * dim], dim),
        1000,
        Compression::SNAPPY,
    );
    let neighbors: Vec<Vec<f64>> = (0..5)
        .rev()
        .map(|q| vec![ids[q] as f64, ids[q + 1] as f64])
        .collect();
    let rev: Vec<i64> = queries.iter().rev().copied().collect();
    write_parquet(
        &dir.join("neighbors.parquet"),
        "neighbors_id",
        Elem::I64,
        &rev,
        &neighbors,
        1000,
        Compression::SNAPPY,
    );
    (train, ids.iter().map(|&i| i as u64).collect())
}

#[test]
fn vectordbbench_single_and_multi_part() {
    let (rows, dim) = (1000, 8);
    for parts in [1, 3] {
        let dir = tempfile::tempdir().unwrap();
        let (train, ids) = write_vdbb(dir.path(), rows, dim, parts);
        let set = FileSet::open(dir.path(), None, None).unwrap();
        assert_eq!(set.format(), Format::VectorDbBench);
        assert_eq!((set.dim(), set.train_rows()), (dim, rows));
        assert_eq!(set.metric(), None);
        check_chunked(&set, &train, &ids);
        assert_eq!(set.head(301).unwrap(), train[..301 * dim]);
        assert_eq!(set.queries().unwrap().unwrap(), train[..5 * dim]);
        let truth = set.ground_truth().unwrap().unwrap();
        let expected: Vec<Vec<u64>> = (0..5).map(|q| vec![ids[q], ids[q + 1]]).collect();
        assert_eq!(truth, expected, "{parts} parts");
    }
}

#[test]
fn vectordbbench_without_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (train, _) = write_vdbb(dir.path(), 50, 4, 1);
    fs::remove_file(dir.path().join("test.parquet")).unwrap();
    let set = FileSet::open(dir.path(), None, None).unwrap();
    assert_eq!(set.queries().unwrap(), None);
    assert_eq!(set.ground_truth().unwrap(), None);
    assert_eq!(set.head(50).unwrap(), train);
}

#[test]
fn content_hash_follows_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = matrix(100, 4);
    npy_f32(&d.join("a.npy"), &data, 4);
    npy_f32(&d.join("b.npy"), &data, 4);
    let mut other = data.clone();
    other[7] += 1.0;
    npy_f32(&d.join("c.npy"), &other, 4);
    fvecs(&d.join("a.fvecs"), &data, 4);
    let hash = |name: &str| {
        FileSet::open(&d.join(name), None, None)
            .unwrap()
            .content_hash()
    };
    assert_eq!(hash("a.npy"), hash("b.npy"));
    assert_ne!(hash("a.npy"), hash("c.npy"));
    assert_ne!(hash("a.npy"), hash("a.fvecs"));
    // The queries are part of the set's content.
    let with_queries = FileSet::open(&d.join("a.npy"), Some(&d.join("a.fvecs")), None)
        .unwrap()
        .content_hash();
    assert_ne!(with_queries, hash("a.npy"));
    assert_eq!(format!("{with_queries:016x}").len(), 16);
}

#[test]
fn chunk_rows_must_be_positive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    npy_f32(&path, &matrix(3, 2), 2);
    let set = FileSet::open(&path, None, None).unwrap();
    assert!(set.for_each_chunk(0, |_, _| Ok(())).is_err());
    // The callback's error stops the scan and comes back as is.
    let mut calls = 0;
    let err = set
        .for_each_chunk(1, |_, _| {
            calls += 1;
            Err(DatasetError::InvalidParameter("stop".into()))
        })
        .unwrap_err();
    assert_eq!((calls, err.to_string().contains("stop")), (1, true));
}

/// Writes `rows` rows of `dim` to `path` a block at a time (so that the writer never holds the
/// file's bytes), as .npy or .fvecs by extension.
pub(super) fn write_big(path: &Path, rows: usize, dim: usize) {
    let mut out = std::io::BufWriter::new(fs::File::create(path).unwrap());
    let npy = path.extension().is_some_and(|e| e == "npy");
    if npy {
        out.write_all(&npy_header("<f4", false, rows, dim)).unwrap();
    }
    let mut rec = Vec::with_capacity(4 + 4 * dim);
    for r in 0..rows {
        rec.clear();
        if !npy {
            rec.extend((dim as i32).to_le_bytes());
        }
        rec.extend((0..dim).flat_map(|c| ((r * dim + c) as f32).to_le_bytes()));
        out.write_all(&rec).unwrap();
    }
    out.flush().unwrap();
}

pub(super) fn tmp_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}
