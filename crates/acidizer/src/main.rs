//! `acidizer`: the command line. `acidizer serve` runs the HTTP API (and the SPA) on one port, on the embedded
//! SQLite store or on DynamoDB.

mod baseline;
mod bench;
mod cli;
mod live;
mod rate_limit;
mod serve;
mod site;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // A bench logs only warnings by default: its own requests would drown the report.
    let default_level = match cli.command {
        cli::Command::Serve(_) => "info",
        cli::Command::Bench(_) => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("acidizer: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        cli::Command::Serve(args) => runtime.block_on(serve::run(args)).map_err(|error| error.to_string()),
        cli::Command::Bench(args) => runtime.block_on(bench::run(args)).map_err(|error| error.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("acidizer: {error}");
            ExitCode::FAILURE
        }
    }
}
