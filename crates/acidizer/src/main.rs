//! `acidizer`: the command line (see the library, [`acidizer::run`]).

use std::process::ExitCode;

/// mimalloc: the server allocates a little per request on many threads, which it does with less work and less
/// contention than the system allocator (BENCHMARKS.md has the figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    acidizer::run()
}
