//! Streaming keeps memory bounded: a ~100 MB file of every format is read in chunks by a child
//! process (this test binary re-run on `memory_child` alone, so that no other test's
//! allocations count) that reports how far its peak RSS (`VmHWM`) rose above its RSS before
//! each read.

use std::process::Command;
use std::time::Instant;

use super::*;

const ROWS: usize = 200_000;
const DIM: usize = 128;
const CHUNK: usize = 1024;
/// Allowed peak growth while reading one file: a chunk is 0.5 MB, the file 100 MB.
const MAX_GROWTH_KB: u64 = 24 * 1024;

#[test]
fn for_each_chunk_holds_a_chunk_not_the_file() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let npy = tmp_path(&dir, "big.npy");
    write_big(&npy, ROWS, DIM);
    let fvecs = tmp_path(&dir, "big.fvecs");
    write_big(&fvecs, ROWS, DIM);
    // HDF5 and Parquet through their writers, which hold the data: done here, not in the child.
    let data: Vec<f32> = (0..ROWS * DIM).map(|i| i as f32).collect();
    let h5 = tmp_path(&dir, "big.hdf5");
    let mut b = FileBuilder::new();
    for (name, rows) in [("train", ROWS), ("test", 1)] {
        b.create_dataset(name)
            .with_f32_data(&data[..rows * DIM])
            .with_shape(&[rows as u64, DIM as u64]);
    }
    b.create_dataset("neighbors")
        .with_i32_data(&[0])
        .with_shape(&[1, 1]);
    b.write(&h5).unwrap();
    let vdbb = tmp_path(&dir, "vdbb");
    fs::create_dir(&vdbb).unwrap();
    let ids: Vec<i64> = (0..ROWS as i64).collect();
    let rows: Vec<Vec<f64>> = data
        .chunks(DIM)
        .map(|r| r.iter().map(|&x| f64::from(x)).collect())
        .collect();
    drop(data);
    write_parquet(
        &vdbb.join("train.parquet"),
        "emb",
        Elem::F32,
        &ids,
        &rows,
        100_000,
        Compression::SNAPPY,
    );
    drop(rows);
    let written = started.elapsed();

    let paths = [&npy, &fvecs, &h5, &vdbb].map(|p| p.display().to_string());
    let test = format!(
        "{}::memory_child",
        module_path!().split_once("::").expect("crate::path").1
    );
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test.as_str(), "--exact", "--ignored", "--nocapture"])
        .env("PLT_MEMORY_FILES", paths.join("\n"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("peak growth").count(), 4, "{stdout}");
    println!("written in {written:?}, all in {:?}", started.elapsed());
}

/// Kibibytes of a `Vm…:` line of /proc/self/status.
fn status_kb(field: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Run by the test above in a process of its own.
#[test]
#[ignore = "run by for_each_chunk_holds_a_chunk_not_the_file in a child process"]
fn memory_child() {
    let files = std::env::var("PLT_MEMORY_FILES").expect("run by the parent test");
    for path in files.lines() {
        let set = FileSet::open(Path::new(path), None, None).unwrap();
        assert_eq!((set.train_rows(), set.dim()), (ROWS, DIM));
        // Peak RSS back down to the current RSS, so that the peak below is this read's.
        fs::write("/proc/self/clear_refs", "5").unwrap();
        let before = status_kb("VmRSS:");
        let (mut rows, mut largest, mut sum) = (0, 0, 0.0f64);
        set.for_each_chunk(CHUNK, |ids, chunk| {
            rows += ids.len();
            largest = largest.max(ids.len());
            sum += f64::from(chunk[chunk.len() - 1]);
            Ok(())
        })
        .unwrap();
        let growth = status_kb("VmHWM:").saturating_sub(before);
        println!(
            "{:?}: {rows} rows in chunks of at most {largest}, peak growth {growth} KiB \
             (file {} MiB)",
            set.format(),
            set.byte_len() >> 20
        );
        assert_eq!((rows, largest), (ROWS, CHUNK));
        assert!(sum > 0.0);
        assert!(
            growth < MAX_GROWTH_KB,
            "{path}: peak RSS grew by {growth} KiB reading in chunks"
        );
    }
}
