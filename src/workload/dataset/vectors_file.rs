//! Loaders for real embedding files: `.npy` (2-D float32/float64 matrix) and
//! `.fvecs` (records of int32 dim + dim float32, little-endian). Private to
//! `dataset`.

use std::path::Path;

use super::{normalise, DatasetError, FileVectors, Fnv};

/// Loads and normalises every vector of `path`, picking the format by
/// extension and checking the dimension against `dim`.
pub(crate) fn load(path: &Path, dim: usize) -> Result<FileVectors, DatasetError> {
    let name = path.display().to_string();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let parse = match ext.as_deref() {
        Some("npy") => parse_npy,
        Some("fvecs") => parse_fvecs,
        _ => return Err(DatasetError::UnsupportedFormat { path: name }),
    };
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DatasetError::Missing { path: name.clone() }
        } else {
            DatasetError::Io {
                path: name.clone(),
                source,
            }
        }
    })?;
    if bytes.is_empty() {
        return Err(DatasetError::Empty { path: name });
    }
    let mut data = parse(&bytes, &name, dim)?;
    let count = data.len() / dim;
    if count == 0 {
        return Err(DatasetError::Empty { path: name });
    }
    for (index, v) in data.chunks_mut(dim).enumerate() {
        if !normalise(v) {
            return Err(DatasetError::ZeroVector { path: name, index });
        }
    }
    let mut h = Fnv::new();
    h.bytes(&bytes);
    Ok(FileVectors {
        path: name,
        data,
        count,
        byte_len: bytes.len() as u64,
        byte_hash: h.finish(),
    })
}

fn malformed(path: &str, reason: impl Into<String>) -> DatasetError {
    DatasetError::Malformed {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn truncated(path: &str, expected: usize, found: usize) -> DatasetError {
    DatasetError::Truncated {
        path: path.to_string(),
        expected: expected as u64,
        found: found as u64,
    }
}

fn parse_fvecs(bytes: &[u8], path: &str, dim: usize) -> Result<Vec<f32>, DatasetError> {
    let mut out = Vec::with_capacity(bytes.len() / 4);
    let mut off = 0;
    let mut index = 0;
    while off < bytes.len() {
        let Some(head) = bytes.get(off..off + 4) else {
            return Err(truncated(path, off + 4, bytes.len()));
        };
        let d = i32::from_le_bytes(head.try_into().expect("4 bytes"));
        if d <= 0 {
            return Err(malformed(path, format!("vector {index} has dimension {d}")));
        }
        let d = d as usize;
        if d != dim {
            return Err(DatasetError::WrongDimension {
                path: path.to_string(),
                file_dim: d,
                expected: dim,
            });
        }
        let end = off + 4 + 4 * d;
        let Some(body) = bytes.get(off + 4..end) else {
            return Err(truncated(path, end, bytes.len()));
        };
        out.extend(
            body.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))),
        );
        off = end;
        index += 1;
    }
    Ok(out)
}

// Long (about 100 lines): one linear pass over the .npy header, each check with its own
// error message; split, the checks would lose the order that makes the messages precise.
fn parse_npy(bytes: &[u8], path: &str, dim: usize) -> Result<Vec<f32>, DatasetError> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(DatasetError::BadMagic {
            path: path.to_string(),
        });
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            let Some(b) = bytes.get(8..12) else {
                return Err(truncated(path, 12, bytes.len()));
            };
            (
                u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize,
                12,
            )
        }
        v => return Err(malformed(path, format!("unsupported .npy version {v}"))),
    };
    let data_start = header_start + header_len;
    let Some(header) = bytes.get(header_start..data_start) else {
        return Err(truncated(path, data_start, bytes.len()));
    };
    let header = String::from_utf8_lossy(header);
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
    let (little, size) = match descr.as_str() {
        "<f4" | "=f4" => (true, 4),
        "<f8" | "=f8" => (true, 8),
        ">f4" => (false, 4),
        ">f8" => (false, 8),
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
    if cols != dim {
        return Err(DatasetError::WrongDimension {
            path: path.to_string(),
            file_dim: cols,
            expected: dim,
        });
    }
    let need = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(size))
        .and_then(|n| n.checked_add(data_start))
        .ok_or_else(|| malformed(path, format!("shape {shape_text} is too large")))?;
    let Some(body) = bytes.get(data_start..need) else {
        return Err(truncated(path, need, bytes.len()));
    };
    let values: Vec<f32> = match (size, little) {
        (4, true) => body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        (4, false) => body
            .chunks_exact(4)
            .map(|c| f32::from_be_bytes(c.try_into().unwrap()))
            .collect(),
        (_, true) => body
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        (_, false) => body
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes(c.try_into().unwrap()) as f32)
            .collect(),
    };
    if !fortran {
        return Ok(values);
    }
    // Column-major on disk: transpose so each vector is contiguous.
    let mut out = vec![0.0; values.len()];
    for (c, column) in values.chunks_exact(rows.max(1)).enumerate() {
        for (r, &x) in column.iter().enumerate() {
            out[r * cols + c] = x;
        }
    }
    Ok(out)
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
