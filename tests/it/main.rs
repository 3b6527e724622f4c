//! Integration tests of pgvector-loadtest, in one binary (as ripgrep's): every test starts its
//! own real PostgreSQL (the embedded PostgreSQL 18 + pgvector, or Debian's PostgreSQL 15 for
//! "no pgvector"), drives the library or the built binary against it, and stops it.
//!
//! Run with `cargo test --release --test it`.

mod badinput;
mod bench;
mod calibrate;
mod capacity;
mod child;
mod cleanup;
mod cli;
mod compare;
mod console;
mod dashboard;
mod datasets;
mod events;
mod exit_codes;
mod failover;
mod faults;
mod filter;
mod fuzz;
mod gate;
mod generators;
mod interrupts;
mod load;
mod metrics;
mod modules;
mod numbers;
mod open_model;
mod ops;
mod passfile;
mod pgbouncer;
mod profile;
mod report_html;
mod schema;
mod scrape;
mod secrets;
mod seed;
mod tls;
mod util;
