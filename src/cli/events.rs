//! Maintenance during the load test: `--event AT:ACTION[:ARGUMENT]` and the replicas'
//! read-your-writes probe.

use clap::Args;

/// Events and the visibility probe.
#[derive(Debug, Args)]
pub struct EventArgs {
    /// A maintenance event at a time of the load, e.g. 2m:vacuum, 30s:reindex_concurrently,
    /// 1m:create_index_concurrently:m=32, 20s:replica_stop:1, 10s:sql:ANALYZE (repeatable;
    /// a profile's [[event]] tables add more). Actions: vacuum, vacuum_analyze, analyze,
    /// checkpoint, reindex_concurrently, create_index_concurrently, terminate_backends,
    /// replica_stop, replica_start, primary_restart, sql
    #[arg(long, value_name = "AT:ACTION", help_heading = "Maintenance events")]
    pub event: Vec<String>,
    /// With replicas: how often a probe writes a row on the primary and times until each
    /// replica shows it (0: no probe)
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "500ms",
        value_parser = humantime::parse_duration,
        help_heading = "Maintenance events"
    )]
    pub visibility_interval: std::time::Duration,
    /// A Patroni REST API (any node; credentials as http://user:password@host:8008), for
    /// the switchover and failover events (repeatable: tried in turn)
    #[arg(long, value_name = "URL", help_heading = "Maintenance events")]
    pub patroni_url: Vec<String>,
    /// The local HA topology started by deploy/local-ha/cluster.py (its directory), for the
    /// switchover and kill_primary events
    #[arg(long, value_name = "DIR", help_heading = "Maintenance events")]
    pub local_cluster: Option<std::path::PathBuf>,
}
