//! What a run ran on, for its reports: the Goose the harness was built with, and the server's
//! PostgreSQL and pgvector versions.

use serde::{Deserialize, Serialize};

use crate::db::target::Target;

/// The Goose version in `Cargo.lock` (a test keeps the two equal).
pub const GOOSE: &str = "0.19.0";

/// The versions a report records.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Versions {
    /// Goose, the load-test framework.
    pub goose: String,
    /// `server_version` of the primary.
    pub postgres: String,
    /// The `vector` extension's version (empty when not installed).
    pub pgvector: String,
}

/// `server_version` and the `vector` extension's version (empty when it is not installed).
pub async fn server(
    client: &tokio_postgres::Client,
) -> Result<(String, String), tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), \
             coalesce((SELECT extversion FROM pg_extension WHERE extname = 'vector'), '')",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// The versions of a run on `primary`; a server that cannot be asked is recorded as
/// `unknown` (the run's figures matter more than its label).
pub async fn of(primary: &Target) -> Versions {
    let asked = match primary.connect().await {
        Ok(client) => server(&client).await.ok(),
        Err(_) => None,
    };
    let (postgres, pgvector) = asked.unwrap_or_else(|| ("unknown".into(), "unknown".into()));
    Versions {
        goose: GOOSE.into(),
        postgres,
        pgvector,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_goose_version_is_the_locked_one() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
            .expect("Cargo.lock");
        let locked = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"goose\"\n"))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
            .map(|v| v.trim_matches('"').to_string());
        assert_eq!(locked.as_deref(), Some(super::GOOSE));
    }
}
