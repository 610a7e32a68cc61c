//! The `tfctl` binary: parses the command line and hands it to a command. Everything that does
//! work lives in the `tfctl-schema` and `tfctl-runtime` crates; this crate owns the terminal
//! (output, progress, exit codes).

mod args;
mod cmd;
mod context;
mod exit;
mod logview;
mod output;
mod progress;
mod terminal;

use std::process::ExitCode;

use clap::Parser;

use crate::exit::Exit;

fn main() -> ExitCode {
    // `run` forks its spawner before clap builds its command tree, and has it make the
    // container's network namespace meanwhile: both lie on the path of every short container
    // start. A guess from the raw arguments; clap still decides what runs.
    let mut early = if looks_like_run(std::env::args_os()) { tfctl_runtime::spawn::Spawner::start().ok() } else { None };
    if let Some(s) = &early {
        s.spare_netns();
    }
    let parsed = if early.is_some() { args::Cli::try_parse_run().map(Ok) } else { None };
    let cli = match parsed.unwrap_or_else(args::Cli::try_parse) {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version to stdout (exit 0) and usage errors to stderr (2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { Exit::Usage.code() } else { 0 });
        }
    };
    // tfctl's own warnings (hook failures, firewall conflicts) go to stderr; --verbose says more.
    // RUST_LOG overrides. Nothing here starts a thread.
    let level = if cli.global.verbose { "debug" } else if cli.global.quiet { "error" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).without_time().try_init();

    if cmd::needs_root(&cli.command) && !nix::unistd::geteuid().is_root() {
        eprintln!("tfctl {}: must be run as root (rootless mode is not supported)", cmd::name(&cli.command));
        return ExitCode::from(Exit::Failed.code());
    }

    // Printing into a closed pipe (`tfctl ps | head`) ends tfctl quietly, as it does `ls`; not for
    // commands that supervise containers, which must always get to clean up.
    if !matches!(cli.command, args::Command::Up(_) | args::Command::Run(_)) {
        tfctl_runtime::sys::default_sigpipe();
    }

    // The spawner must be forked while this process has a single thread: before tokio, before
    // anything that might start a thread.
    let spawner = if cmd::needs_spawner(&cli.command) {
        match early.take().map_or_else(tfctl_runtime::spawn::Spawner::start, Ok) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: cannot start tfctl's process starter: {e}");
                return ExitCode::from(Exit::RunFailed.code());
            }
        }
    } else {
        None
    };
    drop(early);
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

/// Whether the command line is `tfctl [GLOBAL OPTIONS] run ...`, read without clap.
fn looks_like_run(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    let mut args = args.skip(1);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--root" | "--config" | "--format") => {
                args.next();
            }
            Some("--verbose" | "--quiet" | "-q") => {}
            Some(s) if ["--root=", "--config=", "--format="].iter().any(|p| s.starts_with(p)) => {}
            Some(s) => return s == "run",
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_is_recognised_after_global_options_only() {
        let guess = |line: &str| super::looks_like_run(line.split(' ').map(std::ffi::OsString::from));
        assert!(guess("tfctl run --rm img /bin/true"));
        assert!(guess("tfctl --root /x -q --format=json --verbose run img"));
        assert!(guess("tfctl --config c.kdl run img"));
        assert!(!guess("tfctl up run"));
        assert!(!guess("tfctl --root run ps"));
        assert!(!guess("tfctl --help run"));
        assert!(!guess("tfctl"));
    }
}
