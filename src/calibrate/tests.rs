use super::*;
use crate::workload::Distance;

#[test]
fn pgbench_and_harness_prepare_the_same_text() {
    let params = Params::Retrieve {
        namespaces: 10,
        rows: 5000,
    };
    let script = pgbench_script(CalibOp::Retrieve, 10, Distance::Cosine, params);
    assert!(script.starts_with("\\set ns random(0, 9)\n\\set row random(0, 4999)\n"));
    // pgbench replaces each :var with $1, $2, ... in order of appearance.
    let sql_line = script.lines().nth(2).unwrap().trim_end_matches(';');
    let replaced = sql_line.replacen(":ns", "$1", 1).replacen(":row", "$2", 1);
    assert_eq!(
        replaced,
        harness_sql(CalibOp::Retrieve, 10, Distance::Cosine)
    );

    let script = pgbench_script(
        CalibOp::Single,
        10,
        Distance::Cosine,
        Params::Search { queries: 1000 },
    );
    let mut line = script
        .lines()
        .nth(1)
        .unwrap()
        .trim_end_matches(';')
        .to_string();
    for i in 1..=3 {
        line = line.replacen(":q", &format!("${i}"), 1);
    }
    assert_eq!(line, harness_sql(CalibOp::Single, 10, Distance::Cosine));
    assert!(line.ends_with("LIMIT 10"));
}

#[test]
fn settings_are_checked() {
    let args = |ops: &[CalibOp], clients, rate| crate::cli::CalibrateArgs {
        op: ops.to_vec(),
        clients,
        duration: Duration::from_millis(2500),
        warmup: Duration::ZERO,
        queries: 10,
        rate,
        latency_limit: Duration::from_millis(1500),
    };
    let s = |ops: &[CalibOp], c| settings(&args(ops, c, None));
    let (single, retrieve) = (CalibOp::Single, CalibOp::Retrieve);
    let ok = s(&[retrieve, single, retrieve], 4).unwrap();
    assert_eq!(ok.ops, [CalibOp::Retrieve, CalibOp::Single]);
    assert_eq!(ok.duration, Duration::from_secs(2));
    assert_eq!(ok.rate, None);
    assert!(s(&[], 4).unwrap_err().contains("--op"));
    assert!(s(&[single], 0).unwrap_err().contains("--clients"));
    let rated = settings(&args(&[single], 4, Some(250.0))).unwrap();
    assert_eq!(rated.rate, Some((250.0, Duration::from_millis(1500))));
    let e = settings(&args(&[single], 4, Some(0.0))).unwrap_err();
    assert!(e.contains("--rate"), "{e}");
}

#[test]
fn draws_stay_in_range() {
    let mut rng = SmallRng::seed_from_u64(1);
    for _ in 0..1000 {
        match (Params::Search { queries: 3 }).draw(&mut rng) {
            harness::Drawn::Ints([a, b, c]) => {
                assert!((1..=3).contains(&a) && a == b && b == c)
            }
            _ => panic!("search draws ints"),
        }
    }
}
