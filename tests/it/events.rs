//! Maintenance events during real load tests: VACUUM, REINDEX CONCURRENTLY and a new index
//! built concurrently and swapped in, each with its windows in the summary and no failure;
//! and, on an embedded primary with one replica, the visibility probe's delays, which spike
//! while the replica is stopped by an event.

use pgvector_loadtest::report::summary::Summary;

use crate::util::{run_bin, temp_dir, Pg, SMALL_DATA};

fn summary(dir: &std::path::Path) -> Summary {
    let bytes = std::fs::read(dir.join("load_test_summary.json")).expect("a summary");
    serde_json::from_slice(&bytes).expect("the summary parses")
}

#[tokio::test]
async fn vacuum_reindex_and_a_new_index_each_have_their_windows() {
    let pg = Pg::start().await;
    let url = pg.url();
    let reports = temp_dir();
    let dir = reports.path().to_str().unwrap();
    let mut args = vec![
        "--database-url",
        &url,
        "--report-dir",
        dir,
        "--users",
        "8",
        "--hatch-rate",
        "8",
        "--run-time",
        "16s",
        "--no-metrics-exporter",
        "--event",
        "3s:vacuum_analyze",
        "--event",
        "6s:reindex_concurrently",
        "--event",
        "10s:create_index_concurrently:m=24,ef_construction=80",
    ];
    args.extend(SMALL_DATA);
    let run = run_bin(&args, &[]).await;
    run.expect_code(0);
    assert!(
        run.stdout().contains("p95 before/during/after"),
        "{}",
        run.dump()
    );
    let s = summary(reports.path());
    assert_eq!(s.aggregated.failed, 0, "{:?}", s.aggregated.failures);
    let actions: Vec<&str> = s.events.iter().map(|e| e.record.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "vacuum_analyze",
            "reindex_concurrently",
            "create_index_concurrently"
        ]
    );
    for e in &s.events {
        assert!(e.record.outcome.starts_with("ok"), "{:?}", e.record);
        let ws = e.windows.as_ref().expect("windows");
        for (name, w) in [
            ("before", &ws.before),
            ("during", &ws.during),
            ("after", &ws.after),
        ] {
            assert!(w.all.count > 0, "{} {name}: {w:?}", e.record.label);
            assert!(w.all.p95_ms > 0.0 && w.from_s <= w.to_s, "{name}: {w:?}");
        }
        assert!(ws.before.to_s <= ws.during.from_s + 1e-9);
    }
    // The new index is in place, valid, with the new parameters, and recorded.
    let client = pg.client("postgres").await;
    let row = client
        .query_one(
            "SELECT c.reloptions::text, i.indisvalid FROM pg_class c \
             JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relname = 'memory_entries_embedding_idx'",
            &[],
        )
        .await
        .unwrap();
    let (options, valid): (String, bool) = (row.get(0), row.get(1));
    assert!(
        options.contains("m=24") && options.contains("ef_construction=80"),
        "{options}"
    );
    assert!(valid);
    let invalid: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
             WHERE c.relname LIKE 'memory_entries%' AND NOT i.indisvalid",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(invalid, 0, "no index left invalid");
    let m: i32 = client
        .query_one(
            "SELECT m FROM pgvector_loadtest_meta WHERE table_name = 'memory_entries'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(m, 24);
    let html = std::fs::read_to_string(reports.path().join("report.html")).unwrap();
    assert!(
        html.contains("<h2>Events</h2>"),
        "report.html has the events"
    );
    pg.stop().await;
}

#[tokio::test]
async fn visibility_delays_spike_while_the_replica_is_stopped() {
    let home = temp_dir();
    let reports = temp_dir();
    let bin = crate::util::embedded_bin().await;
    let mut args = vec![
        "--pg-bin",
        &bin,
        "--report-dir",
        reports.path().to_str().unwrap(),
        "--embedded-replicas",
        "1",
        // Reads stay on the primary: only the probe meets the stopped replica.
        "--read-from",
        "primary",
        "--users",
        "4",
        "--hatch-rate",
        "4",
        "--run-time",
        "16s",
        "--no-metrics-exporter",
        "--visibility-interval",
        "200ms",
        "--event",
        "5s:replica_stop:1",
        "--event",
        "9s:replica_start:1",
    ];
    args.extend(SMALL_DATA);
    let run = run_bin(
        &args,
        &[("PGVECTOR_LOADTEST_HOME", home.path().to_str().unwrap())],
    )
    .await;
    run.expect_code(0);
    let s = summary(reports.path());
    assert_eq!(s.visibility.len(), 1, "{:?}", s.visibility);
    let v = &s.visibility[0];
    assert!(v.probes >= 20, "{v:?}");
    assert!(v.p50_ms > 0.0 && v.p50_ms.is_finite(), "{v:?}");
    assert!(v.max_ms.is_finite() && v.not_visible == 0, "{v:?}");
    assert!(s.server.visibility_p95_ms.is_some());
    let [stop, start] = &s.events[..] else {
        panic!("two events: {:?}", s.events);
    };
    assert!(stop.record.outcome == "ok" && start.record.outcome == "ok");
    let stop_w = stop.windows.as_ref().unwrap();
    let stopped = &start.windows.as_ref().unwrap().before;
    // Rows written while the replica was down became visible only after it came back.
    let normal = stop_w
        .before
        .visibility_p95_ms
        .expect("probes before the stop");
    let spiked = stopped.visibility_p95_ms.expect("probes while stopped");
    eprintln!("visibility p95: {normal:.2} ms before the stop, {spiked:.2} ms while stopped");
    assert!(normal < 500.0, "{normal}");
    assert!(
        spiked > 1000.0 && spiked > 10.0 * normal,
        "{spiked} vs {normal}"
    );
}
