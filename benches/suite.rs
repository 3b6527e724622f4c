//! `cargo bench`: the benchmark suite through the library, exactly as `pgvector-loadtest bench`
//! runs it. Arguments after `--` are passed on (e.g. `cargo bench -- --quick`); cargo's own
//! `--bench` flag is dropped.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = std::iter::once("pgvector-loadtest".to_string())
        .chain(std::iter::once("bench".to_string()))
        .chain(std::env::args().skip(1).filter(|a| a != "--bench"));
    let cli = pgvector_loadtest::cli::Cli::parse_from(args);
    std::process::ExitCode::from(pgvector_loadtest::run(cli).code())
}
