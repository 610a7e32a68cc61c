//! The `tfctl` binary: parses the command line and hands it to a command. Everything that does
//! work lives in the `tfctl-schema` and `tfctl-runtime` crates; this crate owns the terminal
//! (output, progress, exit codes).

mod args;
mod cmd;
mod context;
mod exit;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use crate::exit::Exit;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version to stdout (exit 0) and usage errors to stderr (2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { Exit::Usage.code() } else { 0 });
        }
    };
    // The spawner must be forked while this process has a single thread: before tokio, before
    // anything that might start a thread.
    let spawner = if cmd::needs_spawner(&cli.command) {
        match tfctl_runtime::spawn::Spawner::start() {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: cannot start tfctl's process spawner: {e}");
                return ExitCode::from(Exit::RunFailed.code());
            }
        }
    } else {
        None
    };
    match cmd::dispatch(cli, spawner) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if let Some(report) = failure.report {
                let mut out = String::new();
                if output::report_handler().render_report(&mut out, report.as_ref()).is_err() {
                    out = format!("error: {report}\n");
                }
                eprint!("{out}");
            }
            ExitCode::from(failure.exit.code())
        }
    }
}
