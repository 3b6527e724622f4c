//! The `pgvector-loadtest` binary: parse the command line, hand it to the library.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = match pgvector_loadtest::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            // Usage errors are one line, as every other refusal is (exit 2).
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("error: invalid command line");
            // A closed choice names its values on the same line.
            let valid = match e.get(ContextKind::ValidValue) {
                Some(ContextValue::Strings(values)) => format!("; one of {}", values.join(", ")),
                _ => String::new(),
            };
            eprintln!("{first}{valid} (see --help)");
            return std::process::ExitCode::from(pgvector_loadtest::Exit::Usage.code());
        }
    };
    std::process::ExitCode::from(pgvector_loadtest::run(cli).code())
}
