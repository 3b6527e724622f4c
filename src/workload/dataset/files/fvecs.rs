//! texmex `.fvecs` / `.ivecs` files: records of a little-endian i32 dimension followed by that
//! many little-endian f32 (fvecs) or i32 (ivecs) values. Every record of a file has the same
//! dimension, so record `i` starts at `i * (4 + 4 * dim)`: the first record's dimension and the
//! file length give the row count, and any row range is one positioned read.

use std::fs::File;

use super::{malformed, open_file, read_at, truncated, DatasetError};

/// An `.fvecs` or `.ivecs` file, located by its first record.
#[derive(Debug, Clone)]
pub(super) struct Vecs {
    path: String,
    dim: usize,
    rows: usize,
}

impl Vecs {
    /// Reads the first record's dimension and checks that the file holds whole records.
    pub(super) fn open(path: &str) -> Result<Vecs, DatasetError> {
        let (file, len) = open_file(path)?;
        if len == 0 {
            return Err(DatasetError::Empty {
                path: path.to_string(),
            });
        }
        if len < 4 {
            return Err(truncated(path, 4, len));
        }
        let mut head = [0u8; 4];
        read_at(&file, path, 0, &mut head)?;
        let d = i32::from_le_bytes(head);
        if d <= 0 {
            return Err(malformed(path, format!("vector 0 has dimension {d}")));
        }
        let dim = d as usize;
        let record = 4 + 4 * dim as u64;
        if len % record != 0 {
            return Err(truncated(path, len.div_ceil(record) * record, len));
        }
        Ok(Vecs {
            path: path.to_string(),
            dim,
            rows: (len / record) as usize,
        })
    }

    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    pub(super) fn dim(&self) -> usize {
        self.dim
    }

    fn record(&self) -> usize {
        4 + 4 * self.dim
    }

    /// Reads records `start..start + count` (clamped to the file) into `raw` and checks that each
    /// announces the file's dimension; returns how many were read.
    fn read_raw(
        &self,
        file: &File,
        start: usize,
        count: usize,
        raw: &mut Vec<u8>,
    ) -> Result<usize, DatasetError> {
        let count = count.min(self.rows.saturating_sub(start));
        raw.resize(count * self.record(), 0);
        read_at(file, &self.path, (start * self.record()) as u64, raw)?;
        for (i, rec) in raw.chunks_exact(self.record()).enumerate() {
            let d = i32::from_le_bytes(rec[..4].try_into().expect("4 bytes"));
            if d != self.dim as i32 {
                return Err(malformed(
                    &self.path,
                    format!(
                        "vector {} has dimension {d}, the first has {}",
                        start + i,
                        self.dim
                    ),
                ));
            }
        }
        Ok(count)
    }

    /// Appends the f32 values of records `start..start + count` to `out` (an `.fvecs` read).
    pub(super) fn read_f32_rows(
        &self,
        file: &File,
        start: usize,
        count: usize,
        raw: &mut Vec<u8>,
        out: &mut Vec<f32>,
    ) -> Result<(), DatasetError> {
        self.read_raw(file, start, count, raw)?;
        for rec in raw.chunks_exact(self.record()) {
            out.extend(
                rec[4..]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))),
            );
        }
        Ok(())
    }

    /// Every record as a list of non-negative i32 values (an `.ivecs` ground-truth read).
    pub(super) fn read_ids(&self) -> Result<Vec<Vec<u64>>, DatasetError> {
        let (file, _) = open_file(&self.path)?;
        let mut raw = Vec::new();
        self.read_raw(&file, 0, self.rows, &mut raw)?;
        raw.chunks_exact(self.record())
            .enumerate()
            .map(|(row, rec)| {
                rec[4..]
                    .chunks_exact(4)
                    .map(|c| {
                        let id = i32::from_le_bytes(c.try_into().expect("4 bytes"));
                        u64::try_from(id).map_err(|_| {
                            malformed(&self.path, format!("row {row} has a negative id {id}"))
                        })
                    })
                    .collect()
            })
            .collect()
    }
}
