//! The benchmark tool. `bench suite` runs every scenario against every server and prints the
//! report (see docs/benchmarks.md); `bench worker` and `bench raw-server` are the processes the
//! suite starts.

mod proto;
mod raw;
mod suite;
mod worker;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Load generator and benchmark suite for the chat server"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the scenarios against every server and report.
    Suite(suite::SuiteArgs),
    /// A load-generating process (started by `suite`).
    Worker(worker::WorkerArgs),
    /// The raw ceiling server (started by `suite`).
    RawServer {
        /// Address to listen on.
        #[arg(long)]
        addr: SocketAddr,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Cmd::Suite(args) => suite::run(args),
        Cmd::Worker(args) => worker::run(args),
        Cmd::RawServer { addr } => raw::run(addr),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
