//! `tfctl completions SHELL`: a completion script generated from the clap definitions.

use clap::CommandFactory;

use crate::args::{Cli, CompletionsArgs};
use crate::exit::CmdResult;

pub fn run(args: CompletionsArgs) -> CmdResult {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "tfctl", &mut std::io::stdout());
    Ok(())
}
