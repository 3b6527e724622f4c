//! `.npy` matrices: the header (magic, version, a Python dict literal) is parsed once, then rows
//! are read with positioned reads, so a chunk of rows costs its own bytes and no more.

use std::fs::File;

use super::{malformed, open_file, read_at, truncated, DatasetError};

/// Element type and byte order of an `.npy` matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    F32,
    F64,
}

/// A 2-D float32/float64 `.npy` matrix, located by its header.
#[derive(Debug, Clone)]
pub(super) struct Npy {
    path: String,
    data_start: u64,
    rows: usize,
    cols: usize,
    elem: Elem,
    little: bool,
    fortran: bool,
}

impl Npy {
    /// Reads and checks the header of `path`: float32/float64, 2-D, and the file long enough for
    /// the announced shape.
    // Long (about 90 lines): one linear pass over the header, each check with its own error
    // message; split, the checks would lose the order that makes the messages precise.
    pub(super) fn open(path: &str) -> Result<Npy, DatasetError> {
        let (file, len) = open_file(path)?;
        if len == 0 {
            return Err(DatasetError::Empty {
                path: path.to_string(),
            });
        }
        let mut lead = [0u8; 12];
        let got = (len as usize).min(lead.len());
        read_at(&file, path, 0, &mut lead[..got])?;
        if got < 10 || &lead[..6] != b"\x93NUMPY" {
            return Err(DatasetError::BadMagic {
                path: path.to_string(),
            });
        }
        let (header_len, header_start) = match lead[6] {
            1 => (u16::from_le_bytes([lead[8], lead[9]]) as usize, 10),
            2 | 3 => {
                if got < 12 {
                    return Err(truncated(path, 12, len));
                }
                let n = u32::from_le_bytes([lead[8], lead[9], lead[10], lead[11]]);
                (n as usize, 12)
            }
            v => return Err(malformed(path, format!("unsupported .npy version {v}"))),
        };
        let data_start = (header_start + header_len) as u64;
        if data_start > len {
            return Err(truncated(path, data_start, len));
        }
        let mut header = vec![0u8; header_len];
        read_at(&file, path, header_start as u64, &mut header)?;
        let header = String::from_utf8_lossy(&header);
        let descr = dict_value(&header, "descr")
            .map(|d| d.trim_matches(|c| c == '\'' || c == '"').to_string())
            .ok_or_else(|| malformed(path, "header has no 'descr'"))?;
        let fortran = match dict_value(&header, "fortran_order") {
            Some("True") => true,
            Some("False") => false,
            _ => return Err(malformed(path, "header has no valid 'fortran_order'")),
        };
        let shape_text =
            dict_value(&header, "shape").ok_or_else(|| malformed(path, "header has no 'shape'"))?;
        let shape: Vec<usize> = shape_text
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .map_err(|_| malformed(path, format!("bad shape {shape_text}")))
            })
            .collect::<Result<_, _>>()?;
        let (elem, little) = match descr.as_str() {
            "<f4" | "=f4" => (Elem::F32, true),
            "<f8" | "=f8" => (Elem::F64, true),
            ">f4" => (Elem::F32, false),
            ">f8" => (Elem::F64, false),
            _ => {
                return Err(DatasetError::UnsupportedDtype {
                    path: path.to_string(),
                    dtype: descr,
                })
            }
        };
        let &[rows, cols] = shape.as_slice() else {
            return Err(DatasetError::NotTwoD {
                path: path.to_string(),
                shape: shape_text.to_string(),
            });
        };
        let npy = Npy {
            path: path.to_string(),
            data_start,
            rows,
            cols,
            elem,
            little,
            fortran,
        };
        let need = rows
            .checked_mul(cols)
            .and_then(|n| n.checked_mul(npy.size()))
            .and_then(|n| (n as u64).checked_add(data_start))
            .ok_or_else(|| malformed(path, format!("shape {shape_text} is too large")))?;
        if need > len {
            return Err(truncated(path, need, len));
        }
        Ok(npy)
    }

    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    pub(super) fn dim(&self) -> usize {
        self.cols
    }

    fn size(&self) -> usize {
        match self.elem {
            Elem::F32 => 4,
            Elem::F64 => 8,
        }
    }

    /// Appends rows `start..start + count` (clamped to the matrix) to `out`, row-major, as f32.
    /// `raw` is a scratch buffer the caller keeps between calls.
    pub(super) fn read_rows(
        &self,
        file: &File,
        start: usize,
        count: usize,
        raw: &mut Vec<u8>,
        out: &mut Vec<f32>,
    ) -> Result<(), DatasetError> {
        let count = count.min(self.rows.saturating_sub(start));
        if count == 0 {
            return Ok(());
        }
        let size = self.size();
        if !self.fortran {
            raw.resize(count * self.cols * size, 0);
            let at = self.data_start + (start * self.cols * size) as u64;
            read_at(file, &self.path, at, raw)?;
            self.decode(raw, out);
            return Ok(());
        }
        // Column-major on disk: each column's slice of these rows is contiguous; read them one
        // column at a time and scatter so that each vector comes out contiguous.
        let first = out.len();
        out.resize(first + count * self.cols, 0.0);
        let mut column = Vec::with_capacity(count);
        raw.resize(count * size, 0);
        for c in 0..self.cols {
            let at = self.data_start + ((c * self.rows + start) * size) as u64;
            read_at(file, &self.path, at, raw)?;
            column.clear();
            self.decode(raw, &mut column);
            for (r, &x) in column.iter().enumerate() {
                out[first + r * self.cols + c] = x;
            }
        }
        Ok(())
    }

    fn decode(&self, raw: &[u8], out: &mut Vec<f32>) {
        match (self.elem, self.little) {
            (Elem::F32, true) => out.extend(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))),
            ),
            (Elem::F32, false) => out.extend(
                raw.chunks_exact(4)
                    .map(|c| f32::from_be_bytes(c.try_into().expect("4 bytes"))),
            ),
            (Elem::F64, true) => out.extend(
                raw.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32),
            ),
            (Elem::F64, false) => out.extend(
                raw.chunks_exact(8)
                    .map(|c| f64::from_be_bytes(c.try_into().expect("8 bytes")) as f32),
            ),
        }
    }
}

/// The raw text of `key`'s value in a numpy header dict such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = header[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}
