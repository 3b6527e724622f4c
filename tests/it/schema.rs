//! The three table layouts (`list`, `hash:4`, `single`) as `setup` creates them: the
//! partitioning in the catalogs, an HNSW cosine index on every leaf table, and plans of the
//! workload's single- and cross-namespace searches that scan those indexes under the harness's
//! own session settings (nothing forces the plan).

use std::collections::BTreeSet;

use pgvector_loadtest::workload::dataset::{Dataset, DatasetSpec};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde_json::Value;
use tokio_postgres::Client;

use crate::util::{setup, temp_dir, Pg};

/// Rows per namespace. The planner rightly prefers a sequential scan and sort for partitions of
/// about 1000 rows or fewer; 3000 keeps a margin above that (the harness's default is 5000).
const ROWS_PER_NAMESPACE: i64 = 3000;

/// One layout and what the catalogs must show for it.
struct Case {
    db: &'static str,
    layout: &'static str,
    /// `pg_partitioned_table.partstrat`, or None for a plain table.
    strategy: Option<&'static str>,
    /// Child tables in `pg_inherits`.
    partitions: i64,
    /// What `--iterative-scan` defaults to for the layout.
    iterative_scan: &'static str,
}

const CASES: [Case; 3] = [
    Case {
        db: "layout_list",
        layout: "list",
        strategy: Some("l"),
        // 4 namespaces + the default partition.
        partitions: 5,
        iterative_scan: "off",
    },
    Case {
        db: "layout_hash",
        layout: "hash:4",
        strategy: Some("h"),
        partitions: 4,
        iterative_scan: "relaxed_order",
    },
    Case {
        db: "layout_single",
        layout: "single",
        strategy: None,
        partitions: 0,
        iterative_scan: "off",
    },
];

#[tokio::test]
async fn each_layout_is_partitioned_as_asked_and_searches_scan_hnsw() {
    let pg = Pg::start().await;
    let dbs: Vec<&str> = CASES.iter().map(|c| c.db).collect();
    pg.create_databases(&dbs).await;
    let reports = temp_dir();
    let dataset = Dataset::synthetic(DatasetSpec {
        namespaces: 4,
        rows_per_namespace: ROWS_PER_NAMESPACE as usize,
        ..DatasetSpec::default()
    })
    .unwrap();
    let query = dataset.query_vector(1, &mut SmallRng::seed_from_u64(7));
    let vector = format!(
        "'[{}]'::vector",
        query
            .iter()
            .map(f32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );

    for case in &CASES {
        setup(
            &pg.url_db(case.db),
            reports.path(),
            &[
                "--namespaces",
                "4",
                "--rows-per-namespace",
                &ROWS_PER_NAMESPACE.to_string(),
                "--layout",
                case.layout,
            ],
        )
        .await;
        let c = pg.client(case.db).await;
        let what = case.layout;

        let strategy: Option<String> = c
            .query_opt(
                "SELECT partstrat::text FROM pg_partitioned_table \
                 WHERE partrelid = 'memory_entries'::regclass",
                &[],
            )
            .await
            .unwrap()
            .map(|r| r.get(0));
        assert_eq!(strategy.as_deref(), case.strategy, "{what}: strategy");
        let partitions: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'memory_entries'::regclass",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(partitions, case.partitions, "{what}: partitions");
        let rows: i64 = c
            .query_one("SELECT count(*) FROM memory_entries", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 4 * ROWS_PER_NAMESPACE, "{what}: seeded rows");

        let hnsw = hnsw_indexes(&c, what).await;
        check_plan(
            &c,
            case,
            &format!(
                "SELECT namespace, key, value, metadata, 1 - (embedding <=> {vector}) AS similarity \
                 FROM memory_entries WHERE namespace = 'ns_001' \
                 ORDER BY embedding <=> {vector} LIMIT 10"
            ),
            &hnsw,
            "single-namespace",
            1..=1,
        )
        .await;
        check_plan(
            &c,
            case,
            &format!(
                "SELECT namespace, key, value, metadata, 1 - (embedding <=> {vector}) AS similarity \
                 FROM memory_entries WHERE namespace = ANY(ARRAY['ns_000', 'ns_001', 'ns_002']) \
                 ORDER BY embedding <=> {vector} LIMIT 20"
            ),
            &hnsw,
            "cross-namespace",
            // list: exactly the three partitions; hash: the shards the three hash to.
            if case.layout == "list" { 3..=3 } else { 1..=3 },
        )
        .await;
    }
    pg.stop().await;
}

/// Checks that every leaf table of `memory_entries` has exactly one HNSW cosine index on
/// `embedding` with the default m and ef_construction; returns the index names.
async fn hnsw_indexes(c: &Client, what: &str) -> BTreeSet<String> {
    // pg_partition_tree lists nothing for a plain table: then the table is the one leaf.
    let leaves: Vec<String> = c
        .query(
            "SELECT relid::regclass::text FROM pg_partition_tree('memory_entries') WHERE isleaf \
             UNION ALL SELECT 'memory_entries' WHERE NOT EXISTS \
               (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'memory_entries'::regclass)",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected_leaves = match what {
        "list" => 5,
        "hash:4" => 4,
        _ => 1,
    };
    assert_eq!(leaves.len(), expected_leaves, "{what}: leaves {leaves:?}");
    let mut names = BTreeSet::new();
    for leaf in &leaves {
        let rows = c
            .query(
                "SELECT ic.relname::text, pg_get_indexdef(i.indexrelid), \
                        array_to_string(ic.reloptions, ',') \
                 FROM pg_index i \
                 JOIN pg_class ic ON ic.oid = i.indexrelid \
                 JOIN pg_am am ON am.oid = ic.relam \
                 WHERE i.indrelid = $1::text::regclass AND am.amname = 'hnsw'",
                &[leaf],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{what}: HNSW indexes on {leaf}");
        let (name, def, options): (String, String, String) =
            (rows[0].get(0), rows[0].get(1), rows[0].get(2));
        assert!(
            def.contains("USING hnsw (embedding vector_cosine_ops)"),
            "{what}: {def}"
        );
        assert_eq!(options, "m=16,ef_construction=64", "{what}: {name}");
        names.insert(name);
    }
    names
}

/// EXPLAINs `sql` with the session settings the harness's pool uses and checks that the plan
/// reads `memory_entries` only through index scans of HNSW indexes, touching `relations`
/// tables.
async fn check_plan(
    c: &Client,
    case: &Case,
    sql: &str,
    hnsw: &BTreeSet<String>,
    which: &str,
    relations: std::ops::RangeInclusive<usize>,
) {
    c.batch_execute(&format!(
        "SET hnsw.ef_search = 40; SET hnsw.iterative_scan = {}",
        case.iterative_scan
    ))
    .await
    .unwrap();
    let plan: Value = c
        .query_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), &[])
        .await
        .unwrap()
        .get(0);
    let root = &plan[0]["Plan"];
    let shape = outline(root);
    assert_eq!(
        root["Node Type"], "Limit",
        "{} {which}: {shape}",
        case.layout
    );
    let mut scans = Vec::new();
    collect_scans(root, &mut scans);
    assert!(
        relations.contains(&scans.len()),
        "{} {which}: {} scans, expected {relations:?}: {shape}",
        case.layout,
        scans.len()
    );
    for scan in &scans {
        assert_eq!(
            scan["Node Type"], "Index Scan",
            "{} {which}: {shape}",
            case.layout
        );
        let index = scan["Index Name"].as_str().unwrap_or_default();
        assert!(
            hnsw.contains(index),
            "{} {which}: scans {index}, not one of the HNSW indexes {hnsw:?}",
            case.layout
        );
        assert!(
            scan["Order By"].as_str().is_some_and(|o| o.contains("<=>")),
            "{} {which}: index scan not ordered by distance: {shape}",
            case.layout
        );
    }
    if case.layout == "list" && which == "single-namespace" {
        assert_eq!(scans[0]["Relation Name"], "memory_entries_p001", "{shape}");
    }
}

/// Every plan node that reads a relation.
fn collect_scans<'a>(node: &'a Value, out: &mut Vec<&'a Value>) {
    if node.get("Relation Name").is_some() {
        out.push(node);
    }
    if let Some(children) = node["Plans"].as_array() {
        for child in children {
            collect_scans(child, out);
        }
    }
}

/// The plan as nested node types with their relations and indexes (the vector literal left
/// out), for assertion messages.
fn outline(node: &Value) -> String {
    let mut text = node["Node Type"].as_str().unwrap_or("?").to_string();
    if let Some(rel) = node["Relation Name"].as_str() {
        text.push_str(&format!(" on {rel}"));
    }
    if let Some(index) = node["Index Name"].as_str() {
        text.push_str(&format!(" using {index}"));
    }
    if let Some(children) = node["Plans"].as_array() {
        let inner: Vec<String> = children.iter().map(outline).collect();
        text.push_str(&format!(" [{}]", inner.join(", ")));
    }
    text
}

#[tokio::test]
async fn a_table_recorded_before_vector_types_reads_as_vector_and_hnsw() {
    let pg = Pg::start().await;
    let data = crate::util::SMALL_DATA;
    setup(&pg.url(), temp_dir().path(), &data).await;
    // As an earlier version recorded it: no vector type, index kind or lists.
    pg.client("postgres")
        .await
        .batch_execute(
            "ALTER TABLE pgvector_loadtest_meta DROP COLUMN vector_type, \
             DROP COLUMN index_kind, DROP COLUMN lists, DROP COLUMN distance",
        )
        .await
        .unwrap();
    let run = setup(&pg.url(), temp_dir().path(), &data).await;
    assert!(
        run.stderr().contains("reusing seeded data"),
        "{}",
        run.dump()
    );
    let url = pg.url();
    let mut args = vec!["setup", "--database-url", &url, "--vector-type", "halfvec"];
    args.extend(data);
    let err = crate::util::run_bin(&args, &[]).await.usage_error();
    assert!(
        err.contains(", vector, cosine, hnsw m 16") && err.contains(", halfvec, cosine, hnsw m 16"),
        "{err}"
    );
    pg.stop().await;
}
