//! One module per command group; `dispatch` routes a parsed command line to it.

pub mod check;
mod completions;
mod convert;
mod cp;
mod events;
mod exec;
mod export;
mod generate_man;
mod man_extra;
mod images;
mod info;
mod inspect;
pub mod oci;
mod ops;
mod reconcile;
mod run;
mod run_app;
mod stats;
mod systemd;
mod target;
mod up;

use tfctl_runtime::spawn::Spawner;

use crate::args::{Cli, Command, ExportArgs};
use crate::exit::CmdResult;

/// Commands that only read files or print: everything else works on the host's kernel and the
/// state root, which only root may do.
pub fn needs_root(command: &Command) -> bool {
    !matches!(
        command,
        Command::Check(_) | Command::Config(_) | Command::Convert(_) | Command::Completions(_) | Command::Version | Command::GenerateMan { .. } | Command::Info | Command::Systemd(_) | Command::Export(ExportArgs { kind: Some(_), .. })
    )
}

/// The command's name as the user typed it, for messages.
pub fn name(command: &Command) -> String {
    use clap::CommandFactory;
    let debug = format!("{command:?}");
    let variant = debug.split(|c: char| !c.is_alphanumeric()).next().unwrap_or_default().to_ascii_lowercase();
    crate::args::Cli::command().get_subcommands().map(|s| s.get_name().to_string()).find(|n| n.replace('-', "") == variant).unwrap_or(variant)
}

/// Commands that put processes into containers: `main` starts the spawner for them before
/// anything else, while the process still has one thread.
pub fn needs_spawner(command: &Command) -> bool {
    match command {
        Command::Run(_) => true,
        Command::Oci(a) => a.needs_spawner(),
        _ => false,
    }
}

pub fn dispatch(cli: Cli, spawner: Option<Spawner>) -> CmdResult {
    let Cli { global, command } = cli;
    match command {
        Command::Completions(args) => completions::run(args),
        Command::Info => info::info(&global),
        Command::Version => {
            match global.format {
                // `{"schema": 1, "version", "os", "arch"}`.
                crate::args::Format::Json => crate::output::print_json(&serde_json::json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "os": std::env::consts::OS,
                    "arch": std::env::consts::ARCH,
                })),
                crate::args::Format::Text => println!("tfctl {}", env!("CARGO_PKG_VERSION")),
            }
            Ok(())
        }
        Command::GenerateMan { dir } => generate_man::run(&dir),
        Command::Check(args) => check::check(args, &global),
        Command::Config(args) => check::config(args, &global),
        Command::Convert(args) => convert::convert(args, &global),
        Command::Pull(args) => images::pull(args, &global),
        Command::Images(args) => images::images(args, &global),
        Command::Login(args) => images::login(args, &global),
        Command::Logout(args) => images::logout(args, &global),
        Command::Run(args) => run::run(args, &global, spawner.expect("main starts the spawner for run")),
        Command::Up(args) => up::up(args, &global),
        Command::Down(args) => up::down(args, &global),
        Command::Exec(args) => exec::exec(args, &global),
        Command::Restart(args) => exec::lifecycle_op("restart", &[args.target], args.target_opts.file.as_deref(), args.reset, &global),
        Command::Ps(args) => up::ps(args, &global),
        Command::Logs(args) => exec::logs(args, &global),
        Command::Plan(args) => reconcile::plan(args, &global),
        Command::Cp(args) => cp::cp(args, &global),
        Command::Start(args) => exec::lifecycle_op("start", &args.targets, args.target_opts.file.as_deref(), false, &global),
        Command::Stop(args) => exec::lifecycle_op("stop", &args.targets, args.target_opts.file.as_deref(), false, &global),
        Command::Systemd(args) => systemd::unit(args, &global),
        Command::Kill(args) => ops::kill(args, &global),
        Command::Rm(args) => ops::rm(args, &global),
        Command::Port(args) => ops::port(args, &global),
        Command::Volumes(cmd) => ops::volumes(cmd, &global),
        Command::Export(ExportArgs { kind: Some(kind), .. }) => export::export(kind, &global),
        Command::Export(args) => cp::export(args, &global),
        Command::Inspect(args) => inspect::inspect(args, &global),
        Command::Events(args) => events::events(args, &global),
        Command::Stats(args) => stats::stats(args, &global),
        Command::Top(args) => stats::top(args, &global),
        Command::Oci(args) => oci::oci(args, &global, spawner),
    }
}
