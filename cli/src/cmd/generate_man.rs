//! `tfctl generate-man DIR` (hidden): writes tfctl.1 and one page per subcommand
//! (tfctl-up.1, tfctl-images-rm.1, ...). man/ in the repository is this command's output; a test
//! fails when it is stale.

use std::path::Path;

use clap::CommandFactory;

use crate::args::Cli;
use crate::exit::{CmdResult, Exit, Failure};

pub fn run(dir: &Path) -> CmdResult {
    let cmd = Cli::command();
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::msg(Exit::Failed, format!("cannot create {}: {e}", dir.display())))?;
    write_pages(&cmd, "tfctl", dir)
}

fn write_pages(cmd: &clap::Command, name: &str, dir: &Path) -> CmdResult {
    let cmd = cmd.clone().name(name.to_string()).bin_name(name.replace('-', " "));
    if cmd.is_hide_set() {
        return Ok(());
    }
    let mut page = Vec::new();
    // `help` has no page of its own: a page must not name one (tfctl-help(1)).
    clap_mangen::Man::new(cmd.clone().disable_help_subcommand(true))
        .date("")
        .render(&mut page)
        .map_err(|e| Failure::msg(Exit::Failed, format!("cannot render the {name} page: {e}")))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page)
        .map_err(|e| Failure::msg(Exit::Failed, format!("cannot write {}: {e}", path.display())))?;
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}
