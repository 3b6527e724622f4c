//! VectorDBBench directories: the training vectors in `train.parquet`, `shuffle_train.parquet`
//! or parts such as `shuffle_train-00-of-10.parquet` (columns `id` int64 and `emb`
//! list<float32|float64>), the queries in `test.parquet` (`id`, `emb`) and the ground truth in
//! `neighbors.parquet` (`id` = query id, `neighbors_id` list<int64> = train ids).
//!
//! Read with the `parquet` crate's column readers (no arrow: that feature would add about ten
//! arrow crates to the build for nothing this module needs). A row group is decoded a page at a
//! time and handed on in batches of at most the caller's chunk size, so memory stays bounded by
//! a chunk plus the pages being decoded whatever the file size.
//!
//! Compression: pyarrow and pandas write snappy by default (the `snap` crate, pure Rust, 0.3 s
//! to build); gzip comes free (flate2 is already in the build). zstd is left out: its zstd-sys
//! compiles the C library, about 18 s of one core on the critical path before `parquet`
//! (measured with `cargo build --release --timings`); a zstd file gets an error saying so.
//! Without the `arrow` feature the `parquet` crate itself builds in about 40 s of one core.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::{DoubleType, FloatType, Int32Type, Int64Type};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::schema::types::ColumnDescriptor;

use super::{malformed, open_file, ChunkFn, DatasetError};

/// File names of a single training file, tried in this order: the unshuffled set first, as its
/// ids run in file order.
const SINGLE_TRAIN: [&str; 2] = ["train.parquet", "shuffle_train.parquet"];
/// Prefixes of the multi-part training files, `PREFIX-NN-of-MM.parquet`.
const PART_PREFIXES: [&str; 2] = ["train", "shuffle_train"];
const TEST: &str = "test.parquet";
const NEIGHBORS: &str = "neighbors.parquet";

/// A VectorDBBench directory, located by its files' footers and first rows.
#[derive(Debug, Clone)]
pub(super) struct Dir {
    /// The training files, in order (several for a multi-part set).
    pub(super) train: Vec<String>,
    pub(super) test: Option<String>,
    pub(super) neighbors: Option<String>,
    pub(super) rows: usize,
    pub(super) dim: usize,
    pub(super) queries: usize,
    pub(super) query_dim: usize,
    pub(super) truth_rows: usize,
}

fn lib_err(path: &str, err: impl std::fmt::Display) -> DatasetError {
    let text = err.to_string();
    let reason = match text.split_once("Disabled feature at compile time: ") {
        // zstd, brotli and lz4 would each add a codec crate (zstd a C library) to the build.
        Some((_, codec)) => format!(
            "{codec} compression is not supported (write the file with snappy, pyarrow's \
             default, gzip or none)"
        ),
        None => text.replace('\n', " "),
    };
    DatasetError::Library {
        path: path.to_string(),
        format: "Parquet",
        reason,
    }
}

fn join(dir: &str, name: &str) -> String {
    Path::new(dir).join(name).display().to_string()
}

impl Dir {
    /// Finds the files and reads their footers (row counts, columns) and the first row of the
    /// training and test vectors (their dimension).
    pub(super) fn open(dir: &str) -> Result<Dir, DatasetError> {
        let names: Vec<String> = fs::read_dir(dir)
            .and_then(|entries| {
                entries
                    .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect()
            })
            .map_err(|source| DatasetError::Io {
                path: dir.to_string(),
                source,
            })?;
        let train = train_files(dir, &names)?;
        let mut rows = 0;
        let mut dim = None;
        for part in &train {
            let n = footer_rows(part, "emb")?;
            if dim.is_none() && n > 0 {
                dim = Some(first_len(part, "emb")?);
            }
            rows += n;
        }
        let Some(dim) = dim else {
            return Err(DatasetError::Empty {
                path: join(dir, ""),
            });
        };
        let has = |name: &str| names.iter().any(|n| n == name);
        let test = has(TEST).then(|| join(dir, TEST));
        let (mut queries, mut query_dim) = (0, dim);
        if let Some(test) = &test {
            queries = footer_rows(test, "emb")?;
            if queries > 0 {
                query_dim = first_len(test, "emb")?;
            }
        }
        let neighbors = (test.is_some() && has(NEIGHBORS)).then(|| join(dir, NEIGHBORS));
        let truth_rows = match &neighbors {
            Some(path) => footer_rows(path, "neighbors_id")?,
            None => 0,
        };
        Ok(Dir {
            train,
            test,
            neighbors,
            rows,
            dim,
            queries,
            query_dim,
            truth_rows,
        })
    }

    /// Calls `f(ids, rows)` over the first `limit` training vectors in chunks of `chunk_rows`.
    pub(super) fn scan_train(
        &self,
        chunk_rows: usize,
        limit: usize,
        f: &mut ChunkFn<'_>,
    ) -> Result<(), DatasetError> {
        let mut ids = Vec::with_capacity(chunk_rows);
        let mut data = Vec::with_capacity(chunk_rows * self.dim);
        let mut left = limit.min(self.rows);
        for part in &self.train {
            if left == 0 {
                break;
            }
            scan_file(part, "emb", left, chunk_rows, &mut |batch| {
                check_lengths(part, batch, self.dim)?;
                for (i, row) in batch.floats.chunks_exact(self.dim).enumerate() {
                    ids.push(id_of(part, batch.first_row + i, batch.ids[i])?);
                    data.extend_from_slice(row);
                    if ids.len() == chunk_rows {
                        f(&ids, &data)?;
                        ids.clear();
                        data.clear();
                    }
                }
                left -= batch.lens.len();
                Ok(())
            })?;
        }
        if !ids.is_empty() {
            f(&ids, &data)?;
        }
        Ok(())
    }

    /// The test vectors with their ids, in file order.
    fn read_test(&self, test: &str) -> Result<(Vec<i64>, Vec<f32>), DatasetError> {
        let mut ids = Vec::with_capacity(self.queries);
        let mut data = Vec::with_capacity(self.queries * self.query_dim);
        scan_file(test, "emb", usize::MAX, 4096, &mut |batch| {
            check_lengths(test, batch, self.query_dim)?;
            ids.extend_from_slice(&batch.ids);
            data.extend_from_slice(&batch.floats);
            Ok(())
        })?;
        Ok((ids, data))
    }

    /// `test.parquet`'s vectors, Q×d row-major, or `None` without one.
    pub(super) fn queries(&self) -> Result<Option<Vec<f32>>, DatasetError> {
        match &self.test {
            Some(test) => Ok(Some(self.read_test(test)?.1)),
            None => Ok(None),
        }
    }

    /// `neighbors.parquet`'s train ids, one list per query in `test.parquet`'s order (matched by
    /// query id, as the two files need not list the queries in the same order).
    pub(super) fn ground_truth(&self) -> Result<Option<Vec<Vec<u64>>>, DatasetError> {
        let (Some(test), Some(neighbors)) = (&self.test, &self.neighbors) else {
            return Ok(None);
        };
        let (query_ids, _) = self.read_test(test)?;
        let position: HashMap<i64, usize> = query_ids
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i))
            .collect();
        let mut out: Vec<Option<Vec<u64>>> = vec![None; query_ids.len()];
        scan_file(neighbors, "neighbors_id", usize::MAX, 4096, &mut |batch| {
            let mut at = 0;
            for (i, (&len, &qid)) in batch.lens.iter().zip(&batch.ids).enumerate() {
                let row = batch.first_row + i;
                let Some(&q) = position.get(&qid) else {
                    return Err(malformed(
                        neighbors,
                        format!("row {row}: query id {qid} is not in {TEST}"),
                    ));
                };
                let list = batch.ints[at..at + len]
                    .iter()
                    .map(|&id| id_of(neighbors, row, id))
                    .collect::<Result<Vec<u64>, _>>()?;
                at += len;
                if out[q].replace(list).is_some() {
                    return Err(malformed(
                        neighbors,
                        format!("row {row}: query id {qid} appears twice"),
                    ));
                }
            }
            Ok(())
        })?;
        out.into_iter()
            .zip(&query_ids)
            .map(|(list, qid)| {
                list.ok_or_else(|| malformed(neighbors, format!("no row for query id {qid}")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// The training files of the directory whose file names are `names`.
fn train_files(dir: &str, names: &[String]) -> Result<Vec<String>, DatasetError> {
    if let Some(single) = SINGLE_TRAIN.iter().find(|s| names.iter().any(|n| n == *s)) {
        return Ok(vec![join(dir, single)]);
    }
    for prefix in PART_PREFIXES {
        // (index, count, index digits, count text) of each `PREFIX-NN-of-MM.parquet`.
        let parts: Vec<(usize, usize, usize, &str)> = names
            .iter()
            .filter_map(|name| {
                let rest = name.strip_prefix(prefix)?.strip_prefix('-')?;
                let (index, count) = rest.strip_suffix(".parquet")?.split_once("-of-")?;
                Some((index.parse().ok()?, count.parse().ok()?, index.len(), count))
            })
            .collect();
        let Some(&(_, count, digits, count_text)) = parts.first() else {
            continue;
        };
        let mut files = Vec::with_capacity(count);
        for i in 0..count {
            let name = format!("{prefix}-{i:0digits$}-of-{count_text}.parquet");
            if !parts.iter().any(|&(j, n, _, _)| j == i && n == count) {
                return Err(DatasetError::MissingData {
                    path: dir.to_string(),
                    what: format!("part {name} (found {} of {count})", parts.len()),
                });
            }
            files.push(join(dir, &name));
        }
        return Ok(files);
    }
    Err(DatasetError::MissingData {
        path: dir.to_string(),
        what: "training vectors (train.parquet, shuffle_train.parquet or \
               shuffle_train-NN-of-MM.parquet parts)"
            .to_string(),
    })
}

/// A training or ground-truth id as u64 (VectorDBBench ids are non-negative int64).
fn id_of(path: &str, row: usize, id: i64) -> Result<u64, DatasetError> {
    u64::try_from(id).map_err(|_| malformed(path, format!("row {row}: negative id {id}")))
}

fn check_lengths(path: &str, batch: &Batch, dim: usize) -> Result<(), DatasetError> {
    match batch.lens.iter().position(|&len| len != dim) {
        None => Ok(()),
        Some(i) => Err(malformed(
            path,
            format!(
                "row {}: emb has {} values, expected {dim}",
                batch.first_row + i,
                batch.lens[i]
            ),
        )),
    }
}

/// Where a file's `id` and list columns are among its leaf columns.
struct Columns {
    id: usize,
    list: usize,
}

fn columns(
    path: &str,
    reader: &SerializedFileReader<fs::File>,
    list: &str,
) -> Result<Columns, DatasetError> {
    let schema = reader.metadata().file_metadata().schema_descr();
    let leaf = |name: &str, repeated: bool| {
        schema.columns().iter().position(|c| {
            c.path().parts().first().map(String::as_str) == Some(name)
                && (c.max_rep_level() > 0) == repeated
        })
    };
    let missing = |name: &str, what: &str| DatasetError::MissingData {
        path: path.to_string(),
        what: format!("column '{name}' ({what})"),
    };
    let id = leaf("id", false).ok_or_else(|| missing("id", "int64"))?;
    let list_at = leaf(list, true).ok_or_else(|| missing(list, "a list of numbers"))?;
    Ok(Columns { id, list: list_at })
}

fn open_reader(path: &str) -> Result<SerializedFileReader<fs::File>, DatasetError> {
    let (file, _) = open_file(path)?;
    SerializedFileReader::new(file).map_err(|e| lib_err(path, e))
}

/// The row count in the footer of `path`, after checking that it has the `id` and `list`
/// columns.
fn footer_rows(path: &str, list: &str) -> Result<usize, DatasetError> {
    let reader = open_reader(path)?;
    columns(path, &reader, list)?;
    Ok(reader.metadata().file_metadata().num_rows() as usize)
}

/// The length of the first row's `list`.
fn first_len(path: &str, list: &str) -> Result<usize, DatasetError> {
    let mut len = None;
    scan_file(path, list, 1, 1, &mut |batch| {
        len = batch.lens.first().copied();
        Ok(())
    })?;
    len.ok_or_else(|| DatasetError::Empty {
        path: path.to_string(),
    })
}

/// A batch of rows: their ids and lists (numbers of either kind, concatenated).
#[derive(Default)]
struct Batch {
    /// Index in the file of the batch's first row.
    first_row: usize,
    ids: Vec<i64>,
    lens: Vec<usize>,
    floats: Vec<f32>,
    ints: Vec<i64>,
}

/// Calls `f` with the first `limit` rows of `path` (its `id` column and `list` column) in
/// batches of at most `batch_rows`, one row group at a time.
fn scan_file(
    path: &str,
    list: &str,
    limit: usize,
    batch_rows: usize,
    f: &mut dyn FnMut(&Batch) -> Result<(), DatasetError>,
) -> Result<(), DatasetError> {
    let reader = open_reader(path)?;
    let cols = columns(path, &reader, list)?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let mut batch = Batch::default();
    let mut levels = Levels::default();
    let mut done = 0;
    for group in 0..reader.num_row_groups() {
        let group = reader.get_row_group(group).map_err(|e| lib_err(path, e))?;
        let mut left = (group.metadata().num_rows() as usize).min(limit - done);
        let column = |i| {
            let reader = group.get_column_reader(i).map_err(|e| lib_err(path, e))?;
            Values::new(path, reader, &schema.column(i))
        };
        let mut ids = column(cols.id)?;
        let mut lists = column(cols.list)?;
        while left > 0 {
            let want = left.min(batch_rows);
            batch.first_row = done;
            batch.ids.clear();
            batch.lens.clear();
            batch.floats.clear();
            batch.ints.clear();
            let got = lists.read(path, want, &mut levels, &mut batch.floats, &mut batch.ints)?;
            levels.lists(path, done, &mut batch.lens)?;
            let got_ids = ids.read(path, got, &mut levels, &mut Vec::new(), &mut batch.ids)?;
            levels.scalars(path, done)?;
            if got == 0 || got_ids != got {
                return Err(malformed(
                    path,
                    format!("row group ends after {done} rows, short of its row count"),
                ));
            }
            f(&batch)?;
            left -= got;
            done += got;
        }
        if done == limit {
            break;
        }
    }
    Ok(())
}

/// The definition and repetition levels of the last read.
#[derive(Default)]
struct Levels {
    def: Vec<i16>,
    rep: Vec<i16>,
    max_def: i16,
}

impl Levels {
    /// The length of each list just read (`out` gets one entry per row); a null list, a null
    /// element or an empty list is an error, as no vector or id list has them.
    fn lists(
        &self,
        path: &str,
        first_row: usize,
        out: &mut Vec<usize>,
    ) -> Result<(), DatasetError> {
        for (i, &d) in self.def.iter().enumerate() {
            if self.rep.get(i).is_none_or(|&r| r == 0) {
                out.push(0);
            }
            let row = first_row + out.len() - 1;
            if d != self.max_def {
                return Err(malformed(
                    path,
                    format!("row {row}: null or empty list, or a null element"),
                ));
            }
            *out.last_mut().expect("a row was started") += 1;
        }
        Ok(())
    }

    /// Checks that none of the scalars just read is null.
    fn scalars(&self, path: &str, first_row: usize) -> Result<(), DatasetError> {
        match self.def.iter().position(|&d| d != self.max_def) {
            None => Ok(()),
            Some(i) => Err(malformed(path, format!("row {}: null id", first_row + i))),
        }
    }
}

/// A column reader of one of the value types these files use, with its column's maximum
/// definition and repetition levels.
struct Values {
    reader: Typed,
    max_def: i16,
    max_rep: i16,
}

enum Typed {
    F32(ColumnReaderImpl<FloatType>),
    F64(ColumnReaderImpl<DoubleType>),
    I32(ColumnReaderImpl<Int32Type>),
    I64(ColumnReaderImpl<Int64Type>),
}

impl Values {
    fn new(
        path: &str,
        reader: ColumnReader,
        descr: &ColumnDescriptor,
    ) -> Result<Values, DatasetError> {
        let reader = match reader {
            ColumnReader::FloatColumnReader(r) => Typed::F32(r),
            ColumnReader::DoubleColumnReader(r) => Typed::F64(r),
            ColumnReader::Int32ColumnReader(r) => Typed::I32(r),
            ColumnReader::Int64ColumnReader(r) => Typed::I64(r),
            _ => {
                return Err(malformed(
                    path,
                    format!(
                        "column '{}' holds neither floats nor integers",
                        descr.path()
                    ),
                ))
            }
        };
        Ok(Values {
            reader,
            max_def: descr.max_def_level(),
            max_rep: descr.max_rep_level(),
        })
    }

    /// Reads up to `n` rows, appending floats to `floats` and integers to `ints` and leaving
    /// their levels in `levels`; returns the rows read.
    fn read(
        &mut self,
        path: &str,
        n: usize,
        levels: &mut Levels,
        floats: &mut Vec<f32>,
        ints: &mut Vec<i64>,
    ) -> Result<usize, DatasetError> {
        levels.def.clear();
        levels.rep.clear();
        let (def, rep) = (Some(&mut levels.def), Some(&mut levels.rep));
        let read = match &mut self.reader {
            Typed::F32(r) => r.read_records(n, def, rep, floats),
            Typed::F64(r) => {
                let mut wide = Vec::new();
                let read = r.read_records(n, def, rep, &mut wide);
                floats.extend(wide.iter().map(|&x| x as f32));
                read
            }
            Typed::I32(r) => {
                let mut narrow = Vec::new();
                let read = r.read_records(n, def, rep, &mut narrow);
                ints.extend(narrow.iter().map(|&x| i64::from(x)));
                read
            }
            Typed::I64(r) => r.read_records(n, def, rep, ints),
        };
        let (rows, values, _) = read.map_err(|e| lib_err(path, e))?;
        // Without definition (repetition) levels the reader leaves that buffer empty: every
        // level is then a value (a row).
        levels.max_def = self.max_def;
        if self.max_def == 0 {
            levels.def.resize(values, 0);
        }
        if self.max_rep == 0 {
            levels.rep.clear();
        }
        Ok(rows)
    }
}
