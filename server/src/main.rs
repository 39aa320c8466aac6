/// jemalloc rather than glibc's allocator: a server-rendered page allocates and frees
/// thousands of small strings, and with jemalloc the incidents page renders 1.46 times as
/// fast (BENCHMARKS.md, "Scale").
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::process::ExitCode;

use clap::Parser;
use server::edge::cli::{Cli, Command};
use server::edge::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        // A filter on standard input: no runtime to start.
        Some(Command::Redact) => commands::redact(&cli),
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(commands::run(cli))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
