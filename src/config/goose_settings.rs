//! Goose's configuration: the profile's load shape, our report files, a credential-free host,
//! and Goose's own checks made before anything runs.

use std::path::Path;

use goose::config::GooseConfiguration;

use super::{bad, ConfigError};
use crate::cli::Cli;
use crate::db::target::Target;

/// Goose's configuration: the profile's users, rate and run time unless given, our report
/// files, a credential-free host; and the profile itself.
pub(super) fn goose_settings(
    mut goose: GooseConfiguration,
    cli: &Cli,
    database: Option<&Target>,
) -> Result<(GooseConfiguration, Option<crate::profile::Profile>), ConfigError> {
    if let Some(rate) = cli.hatch_rate.clone() {
        if goose.increase_rate.is_some() {
            return Err(bad("give --hatch-rate or --increase-rate, not both"));
        }
        goose.increase_rate = Some(rate);
    }
    let profile = super::profile(cli)?;
    if let Some(p) = &profile {
        // Flags given explicitly win over the profile.
        goose.users = goose.users.or(p.users);
        goose.increase_rate = goose
            .increase_rate
            .take()
            .or(p.hatch_rate.map(|r| r.to_string()));
        goose.run_time = goose.run_time.take().or(p.run_time.clone());
    }
    check_goose_numbers(&goose)?;
    check_dashboard(&goose)?;
    ensure_writable(&cli.report_dir)?;
    if goose.report_file.is_empty() {
        goose.report_file = vec![
            path_str(&cli.report_dir.join("load_test.html")),
            path_str(&cli.report_dir.join("load_test.json")),
        ];
    }
    // Our CSVs and summary count every operation from the first; Goose's reports must
    // count the same ones, so its reset after ramp-up is off.
    goose.no_reset_metrics = true;
    // With --dashboard Goose keeps a run folder (for the UI's "save report"): keep it with
    // the other reports rather than in the working directory.
    if goose.dashboard && goose.output_dir.is_none() {
        goose.output_dir = Some(path_str(&cli.report_dir.join("goose-run")));
    }
    // The telnet controller binds a fixed port: two runs on one machine would collide.
    goose.no_telnet = true;
    // A quiet terminal: Goose's INFO lines (every user's launch and exit) go to its log in the
    // report directory, and our status line and summary replace its tables; `-v` brings both
    // back, and so does `--dashboard`, whose address is one of those lines.
    if goose.verbose == 0 && !goose.dashboard {
        goose.quiet = goose.quiet.max(1);
        goose.no_print_metrics = true;
        if goose.goose_log.is_none() {
            goose.goose_log = Some(path_str(&cli.report_dir.join("goose.log")));
            goose.log_level = goose.log_level.max(1);
        }
    }
    goose.host = Some(match database {
        Some(t) => format!("pg://{}", t.display()),
        None => "pg://127.0.0.1/embedded".into(),
    });

    Ok((goose, profile))
}

/// Goose checks these too, but only once the load test starts: after seeding. Checking here
/// fails in a second rather than after minutes of setup.
fn check_goose_numbers(goose: &GooseConfiguration) -> Result<(), ConfigError> {
    if goose.users == Some(0) {
        return Err(bad("--users must be at least 1"));
    }
    for (flag, value) in [
        ("--increase-rate/--hatch-rate", &goose.increase_rate),
        ("--decrease-rate", &goose.decrease_rate),
    ] {
        if let Some(v) = value {
            match v.parse::<f64>() {
                Ok(r) if r > 0.0 && r.is_finite() => {}
                _ => return Err(bad(format!("{flag} must be a number above 0, got '{v}'"))),
            }
        }
    }
    for (flag, value) in [
        ("--run-time", &goose.run_time),
        ("--increase-time", &goose.increase_time),
    ] {
        if let Some(v) = value {
            let ok = humantime::parse_duration(v)
                .map(|d| !d.is_zero())
                .unwrap_or_else(|_| v.parse::<u64>().map(|n| n > 0).unwrap_or(false));
            if !ok {
                return Err(bad(format!(
                    "{flag} must be a positive duration such as 30s, 10m or 1h, got '{v}'"
                )));
            }
        }
    }
    Ok(())
}

/// Goose refuses a web UI that anyone could control, but only when the load test starts:
/// after seeding. The same rules, checked before anything runs.
fn check_dashboard(goose: &GooseConfiguration) -> Result<(), ConfigError> {
    let token = goose
        .dashboard_auth_token
        .as_deref()
        .is_some_and(|t| !t.trim().is_empty());
    if !goose.dashboard || goose.dashboard_no_auth || token {
        return Ok(());
    }
    if goose.dashboard_control {
        return Err(bad(
            "--dashboard-control needs --dashboard-auth-token (or, on a trusted network, --dashboard-no-auth)",
        ));
    }
    let host = goose
        .dashboard_host
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .unwrap_or("127.0.0.1");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(bad(format!(
            "--dashboard-host {host} is not a loopback address: give --dashboard-auth-token (or --dashboard-no-auth)"
        )));
    }
    Ok(())
}

/// Creates the report directory and proves it writable now, not after ten minutes of load.
pub(super) fn ensure_writable(dir: &Path) -> Result<(), ConfigError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| bad(format!("report directory {}: {e}", dir.display())))?;
    tempfile::NamedTempFile::new_in(dir).map_err(|e| {
        bad(format!(
            "report directory {} is not writable: {e}",
            dir.display()
        ))
    })?;
    Ok(())
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
