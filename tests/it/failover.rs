//! The topology the original system ran, on loopback: etcd, three Patroni nodes on the
//! embedded PostgreSQL + pgvector binaries, HAProxy (read-write and read-only ports) and
//! PgBouncer in transaction mode (deploy/local-ha/cluster.py). A 60 s load test through
//! PgBouncer with a switchover at 20 s and a SIGKILLed primary at 40 s: the run goes on,
//! failures stay inside the events' outages, reads resume on the replica port, and no
//! acknowledged write is lost.

use std::path::{Path, PathBuf};
use std::process::Command;

use pgvector_loadtest::report::summary::Summary;

use crate::util::{embedded_bin, run_bin, temp_dir, SMALL_DATA};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/local-ha/cluster.py");

/// The cluster, torn down on drop (its `--ttl` would anyway).
struct Cluster {
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("python3")
            .arg(SCRIPT)
            .arg("down")
            .arg(&self.dir)
            .status();
    }
}

impl Cluster {
    fn up(dir: &Path, bin: &str) -> Cluster {
        for program in [
            "/usr/bin/patroni",
            "/usr/bin/etcd",
            "/usr/sbin/haproxy",
            "/usr/sbin/pgbouncer",
        ] {
            assert!(
                Path::new(program).is_file(),
                "{program} is missing: scripts/deps installs patroni, etcd-server, haproxy and pgbouncer"
            );
        }
        let cluster = Cluster {
            dir: dir.to_path_buf(),
        };
        let out = Command::new("python3")
            .arg(SCRIPT)
            .arg("up")
            .arg(dir)
            .args(["--ttl", "6m", "--nodes", "3", "--bin-dir", bin])
            .output()
            .expect("run cluster.py");
        assert!(
            out.status.success(),
            "cluster.py up failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    fn url(&self, name: &str) -> String {
        let info: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.dir.join("cluster.json")).unwrap()).unwrap();
        info[name].as_str().expect(name).to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_and_a_killed_primary_lose_no_acknowledged_write() {
    let scratch = temp_dir();
    let cluster = Cluster::up(&scratch.path().join("ha"), &embedded_bin().await);
    let mut setup = vec!["setup", "--database-url"];
    let primary = cluster.url("primary_url");
    setup.push(&primary);
    setup.extend(SMALL_DATA);
    run_bin(&setup, &[]).await.expect_code(0);

    let (bouncer, replicas) = (cluster.url("pgbouncer_url"), cluster.url("replica_url"));
    let reports = scratch.path().join("reports");
    let dir = cluster.dir.to_str().unwrap().to_string();
    let mut args = vec![
        "--database-url",
        &bouncer,
        "--replica-url",
        &replicas,
        "--statement-mode",
        "unnamed",
        "--users",
        "10",
        "--hatch-rate",
        "10",
        "--run-time",
        "60s",
        "--no-metrics-exporter",
        "--visibility-interval",
        "0",
        "--max-failure-share",
        "0.5",
        "--local-cluster",
        &dir,
        "--event",
        "20s:switchover",
        "--event",
        "40s:kill_primary",
        "--report-dir",
        reports.to_str().unwrap(),
    ];
    args.extend(SMALL_DATA);
    let run = run_bin(&args, &[]).await;
    run.expect_code(0);
    println!("{}", run.stdout());
    let s: Summary =
        serde_json::from_slice(&std::fs::read(reports.join("load_test_summary.json")).unwrap())
            .unwrap();

    let writes = s.writes.as_ref().expect("writes checked");
    assert!(writes.checked && writes.error.is_none(), "{writes:?}");
    assert!(writes.acknowledged > 100, "{writes:?}");
    assert_eq!(writes.missing, 0, "{writes:?}");
    assert_eq!(writes.verified, writes.acknowledged);
    assert_eq!(
        writes.indeterminate,
        writes.indeterminate_present + writes.indeterminate_absent
    );

    let [switchover, kill] = &s.events[..] else {
        panic!("two events: {:?}", s.events);
    };
    assert!(
        switchover.record.outcome.starts_with("ok: "),
        "{:?}",
        switchover.record
    );
    assert!(
        kill.record.outcome.contains("is the primary"),
        "{:?}",
        kill.record
    );
    for e in [switchover, kill] {
        let check = e
            .record
            .writes
            .as_ref()
            .expect("writes checked after the event");
        assert!(check.checked && check.missing == 0, "{check:?}");
        let before = &e.windows.as_ref().unwrap().before;
        assert!(
            before.replication_lag_max_s.is_some(),
            "replica lag before: {before:?}"
        );
    }
    // Failures only after the first event began, each stretch over before the end.
    for o in &s.outages {
        assert!(
            o.first_failure_s >= 19.0,
            "a failure before any event: {o:?}"
        );
        assert!(o.recovered_s.is_some(), "never recovered: {o:?}");
    }
    let attributed: usize = s.events.iter().map(|e| e.outages.len()).sum();
    assert_eq!(
        attributed,
        s.outages.len(),
        "every outage belongs to an event"
    );
    // Reads (on the replica port) and writes both succeed after the killed primary.
    let after = &kill.windows.as_ref().expect("windows").after;
    for op in ["vector_search_single_shard", "insert_memory"] {
        let figures = &after.operations[op];
        assert!(
            figures.count > figures.failed,
            "{op} after the failover: {after:?}"
        );
    }
    assert!(s.aggregated.failed > 0, "a killed primary fails something");
    drop(cluster);
}
