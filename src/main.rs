//! The `pgvector-loadtest` binary: parse the command line, hand it to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = pgvector_loadtest::cli::Cli::parse();
    std::process::ExitCode::from(pgvector_loadtest::run(cli) as u8)
}
