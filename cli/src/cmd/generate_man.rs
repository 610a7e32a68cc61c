//! `tfctl generate-man DIR` (hidden): writes tfctl.1 and one page per subcommand
//! (tfctl-up.1, tfctl-images-rm.1, ...), clap's text with the sections of man_extra (more
//! DESCRIPTION, EXIT STATUS, JSON, EXAMPLES). man/ in the repository is this command's output; a
//! test fails when it is stale.

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
    if name != "tfctl" {
        page = with_extra(&String::from_utf8_lossy(&page), &super::man_extra::extra(name)).into_bytes();
    }
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

/// `page` with `extra`'s paragraphs at the end of DESCRIPTION and its sections before VERSION.
fn with_extra(page: &str, extra: &super::man_extra::Extra) -> String {
    let mut out = String::new();
    let mut in_description = false;
    let mut sections_done = false;
    for line in page.lines() {
        if line.starts_with(".SH ") {
            if in_description {
                out.push_str(&super::man_extra::paragraphs(extra));
            }
            if line == ".SH VERSION" && !sections_done {
                out.push_str(&super::man_extra::render(extra));
                sections_done = true;
            }
            in_description = line == ".SH DESCRIPTION";
        }
        out.push_str(line);
        out.push('\n');
    }
    if in_description {
        out.push_str(&super::man_extra::paragraphs(extra));
    }
    if !sections_done {
        out.push_str(&super::man_extra::render(extra));
    }
    out
}
