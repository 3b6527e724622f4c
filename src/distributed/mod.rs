//! Several generators acting as one test. Each runs 1/N of the users (or of the arrival rate)
//! on its own share of the namespaces; they meet in a table of the target database
//! ([`rendezvous`]) and start together; each writes its histograms as HdrHistogram interval
//! logs and its counters as `worker.json` ([`record`]); `merge` adds them up into the reports
//! of one run ([`merge`]). PostgreSQL is the only thing they share: no protocol of our own.

pub mod merge;
pub mod record;
pub mod rendezvous;

pub use crate::config::{Worker, INDEX_VARIABLE};
