//! Loads the dataset into `memory_entries` with binary COPY, a few namespaces at a time in
//! parallel, behind a progress bar; the index is built afterwards by [`super::schema::finish`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use futures::SinkExt;
use indicatif::{ProgressBar, ProgressStyle};

use super::target::{ConnectError, Target};
use crate::workload::dataset::{Dataset, DatasetError};
use crate::workload::VectorType;

/// How long loading took, split so index build time is reported apart from COPY.
#[derive(Debug, Clone, Copy)]
pub struct SeedTimings {
    /// Rows written.
    pub rows: u64,
    /// Time spent in COPY.
    pub copy: Duration,
}

impl SeedTimings {
    /// COPY throughput in rows per second.
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.copy.as_secs_f64().max(1e-9)
    }
}

/// Why seeding stopped.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The server refused or the connection broke.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The data set file could not be read to the end.
    #[error(transparent)]
    Data(#[from] DatasetError),
}

impl From<tokio_postgres::Error> for SeedError {
    fn from(e: tokio_postgres::Error) -> Self {
        SeedError::Connect(e.into())
    }
}

/// Copies every row of `dataset` into the (empty) table: synthetic data with `parallel`
/// connections (a few namespaces each), file data streamed through one.
pub async fn copy_dataset(
    target: &Target,
    dataset: Arc<Dataset>,
    vector_type: VectorType,
    parallel: usize,
) -> Result<SeedTimings, SeedError> {
    let total = dataset.total_rows() as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("seeding {bar:40} {pos}/{len} rows ({per_sec}, eta {eta})")
            .expect("static template"),
    );
    let started = Instant::now();
    if dataset.is_file() {
        let client = target.connect().await?;
        copy_file(&client, dataset, vector_type, &bar).await?;
        bar.finish_and_clear();
        return Ok(SeedTimings {
            rows: total,
            copy: started.elapsed(),
        });
    }
    let namespaces: Vec<usize> = (0..dataset.namespace_count()).collect();
    let chunks: Vec<Vec<usize>> = (0..parallel.max(1))
        .map(|w| {
            namespaces
                .iter()
                .copied()
                .filter(|ns| ns % parallel.max(1) == w)
                .collect()
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in chunks.into_iter().filter(|c| !c.is_empty()) {
        let target = target.clone();
        let dataset = dataset.clone();
        let bar = bar.clone();
        tasks.spawn(async move {
            let client = target.connect().await?;
            for ns in chunk {
                copy_namespace(&client, &dataset, vector_type, ns, &bar).await?;
            }
            Ok::<(), ConnectError>(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("seeding task panicked")?;
    }
    bar.finish_and_clear();
    Ok(SeedTimings {
        rows: total,
        copy: started.elapsed(),
    })
}

/// Streams a data set file into one COPY: a reader thread sends chunks of encoded rows through
/// a small channel, so memory holds a few chunks whatever the file's size.
async fn copy_file(
    client: &tokio_postgres::Client,
    dataset: Arc<Dataset>,
    vector_type: VectorType,
    bar: &ProgressBar,
) -> Result<(), SeedError> {
    let sink = client.copy_in(COPY).await?;
    futures::pin_mut!(sink);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(bytes::Bytes, u64)>(4);
    let reader = tokio::task::spawn_blocking(move || {
        let mut buf = copy_header();
        let mut rows = 0u64;
        let streamed = dataset.stream_file(|ns, row, v| {
            let (name, key) = (dataset.namespace_name(ns), dataset.key(row));
            let value = dataset.value(ns, row);
            encode_row(
                &mut buf,
                &name,
                &key,
                &value,
                Embedding(v, vector_type),
                (row, dataset.bucket(ns, row)),
            );
            rows += 1;
            if buf.len() >= CHUNK {
                // A closed channel means the COPY failed; its error is reported below.
                let _ = tx.blocking_send((buf.split().freeze(), std::mem::take(&mut rows)));
            }
            Ok(())
        });
        buf.put_i16(-1); // trailer
        let _ = tx.blocking_send((buf.split().freeze(), rows));
        streamed
    });
    while let Some((bytes, rows)) = rx.recv().await {
        sink.send(bytes).await?;
        bar.inc(rows);
    }
    reader.await.expect("file reader panicked")?;
    sink.as_mut().finish().await?;
    Ok(())
}

const COPY: &str =
    "COPY memory_entries (namespace, key, value, embedding, metadata) FROM STDIN (FORMAT binary)";

fn copy_header() -> BytesMut {
    let mut buf = BytesMut::with_capacity(CHUNK + 8192);
    buf.put_slice(b"PGCOPY\n\xff\r\n\0");
    buf.put_i32(0); // flags
    buf.put_i32(0); // header extension length
    buf
}

async fn copy_namespace(
    client: &tokio_postgres::Client,
    dataset: &Dataset,
    vector_type: VectorType,
    ns: usize,
    bar: &ProgressBar,
) -> Result<(), tokio_postgres::Error> {
    let sink = client.copy_in(COPY).await?;
    futures::pin_mut!(sink);
    let name = dataset.namespace_name(ns);
    let mut vector = vec![0f32; dataset.spec().dim];
    let mut buf = copy_header();
    let rows = dataset.rows_in_namespace(ns);
    let mut counted = 0;
    for row in 0..rows {
        dataset.vector_into(ns, row, &mut vector);
        let key = dataset.key(row);
        let value = dataset.value(ns, row);
        let embedding = Embedding(&vector, vector_type);
        let bucket = dataset.bucket(ns, row);
        encode_row(&mut buf, &name, &key, &value, embedding, (row, bucket));
        if buf.len() >= CHUNK {
            sink.send(buf.split().freeze()).await?;
            bar.inc((row + 1 - counted) as u64);
            counted = row + 1;
        }
    }
    buf.put_i16(-1); // trailer
    sink.send(buf.split().freeze()).await?;
    sink.as_mut().finish().await?;
    bar.inc((rows - counted) as u64);
    Ok(())
}

/// Bytes sent per COPY message: large enough that per-message costs vanish.
const CHUNK: usize = 256 * 1024;

/// An embedding and the column type it is written as.
#[derive(Clone, Copy)]
struct Embedding<'a>(&'a [f32], VectorType);

/// Appends one row in PostgreSQL's binary COPY format: a field count, then each field as a
/// length and its binary representation (text as UTF-8; pgvector's `vector` as dim, unused,
/// then big-endian float4s, `halfvec` the same with IEEE half floats; jsonb as version 1 and
/// the JSON text: the row number and the filter bucket the filtered search reads).
fn encode_row(
    buf: &mut BytesMut,
    ns: &str,
    key: &str,
    value: &str,
    e: Embedding<'_>,
    (row, bucket): (usize, u32),
) {
    buf.put_i16(5);
    for text in [ns, key, value] {
        buf.put_i32(text.len() as i32);
        buf.put_slice(text.as_bytes());
    }
    let Embedding(vector, vector_type) = e;
    let width = match vector_type {
        VectorType::Vector => 4,
        VectorType::Halfvec => 2,
    };
    buf.put_i32(4 + width * vector.len() as i32);
    buf.put_i16(vector.len() as i16);
    buf.put_i16(0);
    match vector_type {
        VectorType::Vector => vector.iter().for_each(|x| buf.put_f32(*x)),
        VectorType::Halfvec => vector
            .iter()
            .for_each(|x| buf.put_u16(half::f16::from_f32(*x).to_bits())),
    }
    let metadata = format!("{{\"row\": {row}, \"seeded\": true, \"bucket\": {bucket}}}");
    buf.put_i32(1 + metadata.len() as i32);
    buf.put_u8(1);
    buf.put_slice(metadata.as_bytes());
}
