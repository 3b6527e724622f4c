use std::time::Duration;

use super::*;

fn ramp() -> Plan {
    Plan {
        start_rate: 0.0,
        stages: vec![
            Stage {
                duration: Duration::from_secs(10),
                rate: 100.0,
            },
            Stage {
                duration: Duration::from_secs(10),
                rate: 100.0,
            },
        ],
        spacing: Spacing::Uniform,
        max_lag: Duration::from_secs(1),
    }
}

#[test]
fn expected_count_integrates_the_ramped_rate() {
    let plan = ramp();
    // A ramp 0 -> 100/s over 10 s holds 500 arrivals; the hold adds 100 per second.
    assert!((plan.expected_by(10.0) - 500.0).abs() < 1e-9);
    assert!((plan.expected_by(5.0) - 125.0).abs() < 1e-9);
    assert!((plan.expected_by(20.0) - 1500.0).abs() < 1e-9);
    assert!((plan.rate_at(5.0) - 50.0).abs() < 1e-9);
}

#[test]
fn time_of_inverts_expected_by_in_every_stage() {
    let plan = ramp();
    for u in [0.5, 1.0, 125.0, 499.0, 500.0, 900.0, 1499.0] {
        let t = plan.time_of(u).expect("inside the schedule");
        assert!((plan.expected_by(t) - u).abs() < 1e-6, "u={u} t={t}");
    }
    assert_eq!(plan.time_of(1500.0), None);
    let flat = Plan::constant(
        200.0,
        Duration::from_secs(3),
        Spacing::Uniform,
        Duration::ZERO,
    );
    assert_eq!(flat.time_of(0.0), Some(0.0));
    assert!((flat.time_of(100.0).unwrap() - 0.5).abs() < 1e-12);
    let down = Plan {
        start_rate: 100.0,
        stages: vec![Stage {
            duration: Duration::from_secs(10),
            rate: 0.0,
        }],
        ..ramp()
    };
    for u in [1.0, 250.0, 499.0] {
        let t = down.time_of(u).unwrap();
        assert!((down.expected_by(t) - u).abs() < 1e-6, "u={u} t={t}");
    }
}

#[test]
fn poisson_arrivals_average_the_rate() {
    let plan = Plan::constant(
        1000.0,
        Duration::from_secs(20),
        Spacing::Poisson,
        Duration::ZERO,
    );
    let times: Vec<f64> = offsets(&plan, 7).collect();
    // 20,000 expected; a Poisson count's standard deviation is about 141.
    assert!((19_500..=20_500).contains(&times.len()), "{}", times.len());
    assert_eq!(
        offsets(&plan, 7).count(),
        times.len(),
        "the same seed, the same arrivals"
    );
    // Exponential gaps: the standard deviation equals the mean.
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
    assert!(
        (var.sqrt() / mean - 1.0).abs() < 0.05,
        "cv {}",
        var.sqrt() / mean
    );
}

#[test]
fn uniform_arrivals_are_evenly_spaced() {
    let plan = Plan::constant(
        200.0,
        Duration::from_secs(2),
        Spacing::Uniform,
        Duration::ZERO,
    );
    let times: Vec<f64> = offsets(&plan, 1).collect();
    assert_eq!(times.len(), 400);
    assert!((times[1] - times[0] - 0.005).abs() < 1e-12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrivals_come_on_time_and_are_dropped_when_nobody_takes_them() {
    // 200/s for 1 s, one user taking each as it comes: on time, within a millisecond.
    let plan = Plan::constant(
        200.0,
        Duration::from_secs(1),
        Spacing::Uniform,
        Duration::from_millis(50),
    );
    let schedule = Schedule::new(plan, 1, 1);
    schedule.user_started();
    let mut lags = Vec::new();
    while let Some(intended) = schedule.next_arrival(Duration::ZERO).await {
        lags.push(intended.elapsed());
    }
    let r = schedule.report();
    assert_eq!(
        (r.offered, r.on_time + r.late, r.dropped),
        (200, 200, 0),
        "{r:?}"
    );
    lags.sort();
    assert!(
        lags[100] < Duration::from_millis(1),
        "median lag {:?}",
        lags[100]
    );
    // A user that sleeps 300 ms finds the arrivals of that time older than max_lag.
    let plan = Plan::constant(
        100.0,
        Duration::from_millis(500),
        Spacing::Uniform,
        Duration::from_millis(50),
    );
    let schedule = Schedule::new(plan, 1, 1);
    schedule.user_started();
    tokio::time::sleep(Duration::from_millis(300)).await;
    while schedule.next_arrival(Duration::ZERO).await.is_some() {}
    let r = schedule.report();
    assert_eq!(r.offered, 50, "{r:?}");
    assert!((20..=30).contains(&r.dropped), "{r:?}");
    assert_eq!(r.on_time + r.late + r.dropped, 50);
}

#[test]
fn stages_and_think_times_parse_with_clear_errors() {
    let stages = parse_stages("30s:100, 1m:500,30s:500").unwrap();
    assert_eq!(stages.len(), 3);
    assert_eq!(stages[1].duration, Duration::from_secs(60));
    assert_eq!(stages[1].rate, 500.0);
    assert!(parse_stages("30s").unwrap_err().contains("DURATION:RATE"));
    assert!(parse_stages("30x:1").unwrap_err().contains("duration"));
    assert!(parse_stages("30s:fast")
        .unwrap_err()
        .contains("not a number"));
    assert!(parse_stages("0s:5").unwrap_err().contains("above 0"));
    assert!(parse_stages("").is_err());
    let ms = Duration::from_millis;
    assert_eq!(parse_think_time("100ms..500ms"), Ok((ms(100), ms(500))));
    assert_eq!(parse_think_time("0"), Ok((ms(0), ms(0))));
    assert_eq!(parse_think_time("2s"), Ok((ms(2000), ms(2000))));
    assert!(parse_think_time("5s..1s").unwrap_err().contains("above"));
    assert!(parse_think_time("soon").is_err());
}
