//! Loads the dataset into `memory_entries` with binary COPY, a few namespaces at a time in
//! parallel, behind a progress bar; the index is built afterwards by [`super::schema::finish`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use pgvector::Vector;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use super::target::{ConnectError, Target};
use crate::workload::dataset::Dataset;

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

/// Copies every row of `dataset` into the (empty) table using `parallel` connections.
pub async fn copy_dataset(
    target: &Target,
    dataset: Arc<Dataset>,
    parallel: usize,
) -> Result<SeedTimings, ConnectError> {
    let total = dataset.total_rows() as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("seeding {bar:40} {pos}/{len} rows ({per_sec}, eta {eta})")
            .expect("static template"),
    );
    let started = Instant::now();
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
                copy_namespace(&client, &dataset, ns, &bar).await?;
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

async fn copy_namespace(
    client: &tokio_postgres::Client,
    dataset: &Dataset,
    ns: usize,
    bar: &ProgressBar,
) -> Result<(), tokio_postgres::Error> {
    // The vector type's OID differs per database; the server tells us through a prepare.
    let vector_type = client.prepare("SELECT $1::vector").await?.params()[0].clone();
    let sink = client
        .copy_in(
            "COPY memory_entries (namespace, key, value, embedding, metadata) FROM STDIN (FORMAT binary)",
        )
        .await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[Type::TEXT, Type::TEXT, Type::TEXT, vector_type, Type::JSONB],
    );
    futures::pin_mut!(writer);
    let name = dataset.namespace_name(ns);
    let mut buf = vec![0f32; dataset.spec().dim];
    for row in 0..dataset.rows_in_namespace(ns) {
        dataset.vector_into(ns, row, &mut buf);
        let embedding = Vector::from(buf.clone());
        let metadata = serde_json::json!({ "row": row, "seeded": true });
        writer
            .as_mut()
            .write(&[
                &name,
                &dataset.key(row),
                &dataset.value(ns, row),
                &embedding,
                &metadata,
            ])
            .await?;
        if row % 256 == 255 {
            bar.inc(256);
        }
    }
    bar.inc((dataset.rows_in_namespace(ns) % 256) as u64);
    writer.finish().await?;
    Ok(())
}

/// Writes a short line per stage to stderr (the progress bar hides itself when not a terminal).
pub fn announce(text: &str) {
    eprintln!("{text}");
}
