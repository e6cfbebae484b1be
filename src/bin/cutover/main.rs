//! The `cutover` command: parses arguments, sets up logging and the runtime, runs the command
//! (`cli.rs` names the module of `commands/` that runs it) and turns its result into an exit
//! code.

mod args;
mod cli;
mod commands;
mod output;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(cutover::secrets::RedactingStderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CUTOVER_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            return output::fatal(
                &anyhow::anyhow!("cannot start the async runtime: {e}"),
                false,
            )
        }
    };
    let json = cli.command.json();
    match runtime.block_on(cli.run()) {
        Ok(exit) => exit.into(),
        Err(e) => output::fatal(&e, json),
    }
}
