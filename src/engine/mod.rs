//! The engine every mode drives: the timed operation ([`operation`]), our µs statistics
//! ([`stats`]), code-run Goose attacks ([`attack`]), the harness's own CPU accounting
//! ([`overhead`]) and recall against exact search ([`recall`]). The load test, the benchmark
//! suite and calibration are thin drivers of it; the exporter reads what it records.

pub mod arrivals;
pub mod attack;
pub mod ledger;
pub mod operation;
pub mod overhead;
pub mod recall;
pub mod stats;

/// Keys the harness inserts start with this (`lt_<run id>_<user>_<seq>`), so `cleanup` can
/// find them and only them.
pub const INSERTED_KEY_PREFIX: &str = "lt_";

/// A LIKE pattern for the keys the harness inserted (`_` is a LIKE wildcard, so escaped).
pub fn inserted_key_pattern() -> String {
    format!("{}%", INSERTED_KEY_PREFIX.replace('_', "\\_"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_pattern_escapes_the_wildcard() {
        assert_eq!(super::inserted_key_pattern(), "lt\\_%");
    }
}
