//! Command-line arguments.

use acidizer_core::CounterMax;
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "acidizer", version, about = "The Number Acidizer: an ACID counter, broadcast live")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the SPA on one port.
    Serve(ServeArgs),
    /// Measure changes per second and their latency (on a fresh in-process SQLite store, or at --url), then check
    /// the counter's history is exact.
    Bench(BenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A running acidizer to load, e.g. http://127.0.0.1:8080 (default: one started in-process on a fresh
    /// embedded store in a temporary directory).
    #[arg(long)]
    pub url: Option<String>,
    /// How many changes to send (at most, with --duration).
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Send changes for this many seconds (as many as --requests at most).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<f64>,
    /// The share of decrements among the changes (0 to 1; the rest are increments).
    #[arg(long, default_value_t = 0.0, value_parser = parse_mix)]
    pub mix: f64,
    /// How many clients send at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// The counter to change (others may change it too: the final check reads its history between the states read
    /// before and after the run, and finds every change acknowledged to this run there).
    #[arg(long, default_value = "bench")]
    pub counter: String,
    /// Also measure the naive durable rate on this machine's temporary directory (one SQLite transaction per
    /// increment, WAL, synchronous=FULL) and print the run's throughput as a multiple of it.
    #[arg(long)]
    pub baseline: bool,
    /// Measure live delivery instead of throughput: this many WebSocket subscribers of the counter, one change
    /// every --interval-ms for --duration (10 s unless given), and the latency from each change's answer to its
    /// arrival at each subscriber.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub subscribers: Option<u32>,
    /// With --subscribers: the pause between changes, in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub interval_ms: u64,
    /// With --subscribers and --url: the server's process id, to report its memory per subscriber.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print the results as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line of text per event (coloured on a terminal).
    Text,
    /// One JSON object per line, with the fields of the request's span.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// The embedded SQLite store, in --data-dir.
    Sqlite,
    /// DynamoDB from the AWS environment (COUNTER_TABLE, AWS_ENDPOINT_URL for an emulator, …).
    Dynamodb,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the SQLite store keeps its data.
    #[arg(long, default_value = "acidizer-data")]
    pub data_dir: PathBuf,
    /// Which store holds the counters.
    #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
    pub store: StoreKind,
    /// The built SPA to serve at `/`.
    #[arg(long, default_value = "frontend/dist")]
    pub static_dir: PathBuf,
    /// Create missing DynamoDB tables with the template's layout (for a fresh emulator).
    #[arg(long)]
    pub create_tables: bool,
    /// Cap requests per second per client IP (429 beyond it).
    #[arg(long)]
    pub rate_limit: Option<NonZeroU32>,
    /// Ping a WebSocket client that has sent nothing for this many seconds.
    #[arg(long, default_value = "30")]
    pub ws_ping_after: std::num::NonZeroU64,
    /// Close the session of a pinged WebSocket client that sends nothing back within this many seconds.
    #[arg(long, default_value = "10")]
    pub ws_answer_within: std::num::NonZeroU64,
    /// The most WebSocket sessions open at once (at most what the open-file limit leaves room for); beyond it a
    /// new one is closed with 1013 (try again later).
    #[arg(long, default_value = "10000")]
    pub ws_max_sessions: NonZeroUsize,
    /// The most WebSocket sessions one client (an IPv4 address, an IPv6 /64) may have open; beyond it a new one is
    /// closed with 1008 (policy violation).
    #[arg(long, default_value = "1000")]
    pub ws_max_per_client: NonZeroUsize,
    /// The most messages a WebSocket client may send per second (a second's worth at once); one over it is answered
    /// with an error message, and nothing else is done for it.
    #[arg(long, default_value = "10")]
    pub ws_messages_per_second: NonZeroU32,
    /// How logs are written to stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log a line for every answered request, with its status and latency (off by default: at thousands of
    /// requests a second it costs a quarter of the throughput; `RUST_LOG` naming `acidizer::access=info` does the
    /// same).
    #[arg(long)]
    pub access_log: bool,
    /// The ceiling every counter stays under (1 to 2^53): an increment at it answers 409.
    #[arg(long, env = "COUNTER_MAX", default_value = "1000000000", value_parser = CounterMax::parse)]
    pub counter_max: CounterMax,
}

fn parse_duration(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(seconds),
        _ => Err(format!("{raw} is not a number of seconds above 0")),
    }
}

fn parse_mix(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(mix) if (0.0..=1.0).contains(&mix) => Ok(mix),
        _ => Err(format!("the mix is a share of decrements from 0 to 1, not {raw:?}")),
    }
}
