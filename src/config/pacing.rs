//! The load model's settings: think times, or the open model's schedule and the Goose users
//! that serve it.

use std::time::Duration;

use goose::config::GooseConfiguration;

use super::{bad, ConfigError};
use crate::engine::arrivals::{parse_stages, parse_think_time, Open, Pacing, Plan};

/// `capacity`: the steps set the load, so only the bulk inserters' pacing is the user's; the
/// built-in `capacity` objectives unless a profile is given.
pub(super) fn capacity_pacing(
    args: &crate::cli::PacingArgs,
    profile: &mut Option<crate::profile::Profile>,
) -> Result<Pacing, ConfigError> {
    if profile.is_none() {
        let built_in = crate::profile::built_in("capacity").map_err(|e| bad(e.to_string()))?;
        *profile = Some(built_in);
    }
    let mut pacing = Pacing::default();
    if let Some(t) = &args.bulk_think_time {
        pacing.bulk_think_time =
            parse_think_time(t).map_err(|e| bad(format!("--bulk-think-time {e}")))?;
    }
    Ok(pacing)
}

/// What the command line itself said (before a profile filled in the rest).
pub(super) struct Explicit {
    pub(super) users: Option<usize>,
    pub(super) run_time: Option<String>,
    pub(super) hatch_rate: bool,
}

/// The load model: think times, or an arrival schedule served by `--max-in-flight` Goose
/// users (all started at once; the run lasts as long as the schedule). Flags win over the
/// profile's fields.
pub(super) fn pacing(
    args: &crate::cli::PacingArgs,
    goose: &mut GooseConfiguration,
    explicit: &Explicit,
    profile: Option<&crate::profile::Profile>,
    is_load: bool,
) -> Result<Pacing, ConfigError> {
    let from_profile = |f: fn(&crate::profile::Profile) -> Option<String>| profile.and_then(f);
    let think = args
        .think_time
        .clone()
        .or_else(|| from_profile(|p| p.think_time.clone()));
    let rate = args.arrival_rate.or(profile.and_then(|p| p.arrival_rate));
    let stages = args
        .arrival_stages
        .clone()
        .or_else(|| from_profile(|p| p.arrival_stages.clone()));
    let open_flags = args.arrival_rate.is_some()
        || args.arrival_stages.is_some()
        || args.max_in_flight.is_some();
    let closed_flags = args.think_time.is_some() || args.bulk_think_time.is_some();
    if !is_load && (open_flags || closed_flags) {
        return Err(bad(
            "--think-time, --arrival-rate, --arrival-stages and --max-in-flight pace the load \
             test; the subcommands have their own pacing",
        ));
    }
    let mut pacing = Pacing::default();
    if let Some(t) = &think {
        pacing.think_time = parse_think_time(t).map_err(|e| bad(format!("--think-time {e}")))?;
    }
    if let Some(t) = &args.bulk_think_time {
        pacing.bulk_think_time =
            parse_think_time(t).map_err(|e| bad(format!("--bulk-think-time {e}")))?;
        if pacing.bulk_think_time.1.is_zero() {
            return Err(bad(
                "--bulk-think-time must be above 0: bulk inserters are background load",
            ));
        }
    }
    if rate.is_none() && stages.is_none() {
        if args.max_in_flight.is_some() {
            return Err(bad(
                "--max-in-flight needs --arrival-rate or --arrival-stages (the open model)",
            ));
        }
        return Ok(pacing);
    }
    if args.think_time.is_some() {
        return Err(bad(
            "--think-time paces the closed model; with --arrival-rate the schedule paces the users",
        ));
    }
    pacing.open = Some(open_model(args, goose, explicit, rate, stages.as_deref())?);
    Ok(pacing)
}

/// The open model's schedule and users; sets Goose's users, start rate and run time to serve
/// it.
fn open_model(
    args: &crate::cli::PacingArgs,
    goose: &mut GooseConfiguration,
    explicit: &Explicit,
    rate: Option<f64>,
    stages: Option<&str>,
) -> Result<Open, ConfigError> {
    if explicit.hatch_rate {
        return Err(bad(
            "--hatch-rate ramps users in the closed model; in the open model ramp the rate with \
             --arrival-stages",
        ));
    }
    if goose.throttle_requests.is_some_and(|t| t > 0) {
        return Err(bad(
            "--throttle-requests contradicts --arrival-rate: give one",
        ));
    }
    if let Some(r) = rate {
        if !(r.is_finite() && (r > 0.0 || (stages.is_some() && r == 0.0))) {
            return Err(bad(format!("--arrival-rate must be above 0, got {r}")));
        }
    }
    let plan = match stages {
        Some(text) => {
            if explicit.run_time.is_some() {
                return Err(bad(
                    "give --run-time or --arrival-stages, not both: the stages set the run's length",
                ));
            }
            let stages = parse_stages(text).map_err(|e| bad(format!("--arrival-stages: {e}")))?;
            Plan {
                start_rate: rate.unwrap_or(0.0),
                stages,
                spacing: args.arrivals,
                max_lag: args.max_lag,
            }
        }
        None => {
            let run_time = goose.run_time.as_deref().ok_or_else(|| {
                bad("--arrival-rate needs --run-time (or ramp it with --arrival-stages)")
            })?;
            let duration = humantime::parse_duration(run_time)
                .or_else(|_| run_time.parse::<u64>().map(Duration::from_secs))
                .map_err(|_| bad(format!("--run-time '{run_time}' is not a duration")))?;
            Plan::constant(
                rate.expect("open model"),
                duration,
                args.arrivals,
                args.max_lag,
            )
        }
    };
    if args.max_lag.is_zero() {
        return Err(bad("--max-lag must be above 0"));
    }
    if let (Some(users), Some(n)) = (explicit.users, args.max_in_flight) {
        if users != n {
            return Err(bad(
                "in the open model --users and --max-in-flight are the same number (the users \
                 serving arrivals): give one",
            ));
        }
    }
    let max_in_flight = args.max_in_flight.or(goose.users).unwrap_or(100);
    if max_in_flight == 0 {
        return Err(bad("--max-in-flight must be at least 1"));
    }
    goose.users = Some(max_in_flight);
    // All users start within the first second: the schedule, not the users, ramps the load.
    goose.increase_rate = Some(max_in_flight.to_string());
    goose.run_time = Some(format!("{}s", plan.duration().as_secs_f64().ceil() as u64));
    // Goose times whole transactions and scenarios, which here include the wait for the
    // next arrival: its request figures (ours, from the intended start) are the ones to read.
    goose.no_transaction_metrics = true;
    goose.no_scenario_metrics = true;
    Ok(Open {
        plan,
        max_in_flight,
    })
}
