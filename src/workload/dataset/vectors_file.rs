//! Loads every vector of a data set file into memory, normalised, for [`super::Dataset`]:
//! `.npy` (2-D float32/float64 matrix) and `.fvecs` (records of int32 dim + dim float32,
//! little-endian), and through the same [`FileSet`] readers ann-benchmarks `.hdf5` files and
//! VectorDBBench directories (their training vectors). Private to `dataset`.

use std::path::Path;

use super::files::{FileSet, Format};
use super::{normalise, DatasetError, FileVectors, Fnv};

/// Rows per read: 4096 × 4 bytes × dim, a few MB whatever the file.
const CHUNK_ROWS: usize = 4096;

/// Loads and normalises every training vector of `path`, picking the format by extension (or
/// a directory for VectorDBBench) and checking the dimension against `dim`.
pub(crate) fn load(path: &Path, dim: usize) -> Result<FileVectors, DatasetError> {
    let set = FileSet::open_train(path)?;
    let name = set.path().to_string();
    if set.dim() != dim {
        return Err(DatasetError::WrongDimension {
            path: name,
            file_dim: set.dim(),
            expected: dim,
        });
    }
    let count = set.train_rows();
    if count == 0 {
        return Err(DatasetError::Empty { path: name });
    }
    let mut data = Vec::with_capacity(count * dim);
    set.for_each_chunk(CHUNK_ROWS, |_, rows| {
        data.extend_from_slice(rows);
        Ok(())
    })?;
    for (index, v) in data.chunks_mut(dim).enumerate() {
        if !normalise(v) {
            return Err(DatasetError::ZeroVector { path: name, index });
        }
    }
    // A hash of every byte for the single-file formats, as before the streaming readers, so
    // their fingerprints stay what they were; the sampled content hash for the others.
    let byte_hash = match set.format() {
        Format::Npy | Format::Fvecs => whole_file_hash(&name)?,
        Format::Hdf5 | Format::VectorDbBench => set.content_hash(),
    };
    Ok(FileVectors {
        path: name,
        data,
        count,
        byte_len: set.byte_len(),
        byte_hash,
    })
}

/// FNV-1a of every byte of `path`, read in 1 MiB blocks.
fn whole_file_hash(path: &str) -> Result<u64, DatasetError> {
    use std::io::Read;
    let io = |source| DatasetError::Io {
        path: path.to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut h = Fnv::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.bytes(&buf[..n]);
    }
}
