//! `acidizer`: the command line. `acidizer serve` runs the HTTP API (and the SPA) on one port, on the embedded
//! SQLite store or on DynamoDB. The binary is a shim over [`run`].

mod baseline;
mod bench;
mod cli;
mod live;
mod logs;
mod rate_limit;
mod serve;
mod site;

/// The hub that `acidizer serve`'s WebSocket sessions subscribe in, and the broadcaster that fans each committed
/// change out through it: public for the fan-out benchmark (`benches/fan_out.rs`), which measures them as they run.
pub use live::{LocalBroadcaster, hub::Hub};

use acidizer_core::telemetry::error_chain;
use acidizer_http::ACCESS_LOG;
use clap::Parser;
use std::process::ExitCode;

/// Runs the command line: parses the arguments, sets up the logs and the runtime, and runs the command.
pub fn run() -> ExitCode {
    let cli = cli::Cli::parse();
    // The server logs what it does, and a line per request only with --access-log; a bench logs only warnings by
    // default: its own requests would drown the report.
    let quiet_access = format!("info,{ACCESS_LOG}=warn");
    let (default_level, format) = match &cli.command {
        cli::Command::Serve(args) if args.access_log => ("info", args.log_format),
        cli::Command::Serve(args) => (quiet_access.as_str(), args.log_format),
        cli::Command::Bench(_) => ("warn", cli::LogFormat::Text),
    };
    // Lines are written out by a thread of their own, so a request never waits for the log's write.
    let logs = match logs::init(default_level, format) {
        Ok(logs) => logs,
        Err(error) => {
            eprintln!("acidizer: {}", error_chain(&error));
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("acidizer: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        cli::Command::Serve(args) => runtime.block_on(serve::run(args)).map_err(|error| error_chain(&error)),
        cli::Command::Bench(args) => runtime.block_on(bench::run(args)).map_err(|error| error_chain(&error)),
    };
    // The lines still queued are written out before the process ends.
    drop(logs);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("acidizer: {error}");
            ExitCode::FAILURE
        }
    }
}
