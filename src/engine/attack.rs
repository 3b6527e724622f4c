//! Goose attacks run from code with one scenario of one transaction and no think time: the
//! benchmark suite's and `calibrate`'s measured runs.

use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::prelude::*;

/// A quiet configuration in which all `users` start at once (the load test's ramp-up makes no
/// sense when the point is a fixed concurrency).
pub fn config(host: &str, users: usize) -> GooseConfiguration {
    let mut config = GooseConfiguration::default();
    config.host = Some(host.into());
    config.users = Some(users);
    config.increase_rate = Some((users * 100).max(1000).to_string());
    config.no_print_metrics = true;
    config.no_error_summary = true;
    config.no_telnet = true;
    config.quiet = 1;
    config
}

/// Runs `function` as the only transaction (named `name`) of scenario `scenario`.
pub async fn run(
    config: GooseConfiguration,
    scenario: &str,
    name: &str,
    function: TransactionFunction,
) -> Result<(), GooseError> {
    let scenario =
        Scenario::new(scenario).register_transaction(Transaction::new(function).set_name(name));
    GooseAttack::initialize_with_config(config)?
        // One shared HTTP client: Goose would otherwise build one per user.
        .set_client_builder_without_cookies(GooseClientBuilder::new().without_cookies())?
        .register_scenario(scenario)
        .execute()
        .await?;
    Ok(())
}
