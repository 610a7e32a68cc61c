//! `tfctl cp`: files and folders between the host and a running container. The supervisor
//! hands over the container's root as a descriptor; the copy itself runs here
//! (tfctl_runtime::app::copy).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use tfctl_runtime::app::copy::{self, CopyOptions};
use tfctl_runtime::app::{ops, record};

use super::target;
use crate::args::{CpArgs, ExportArgs, GlobalOpts};
use crate::context;
use crate::exit::{CmdResult, Exit, Failure};

/// `APP/CONTAINER:/PATH` or `CONTAINER:/PATH`; anything else is a host path.
fn container_side(arg: &str) -> Option<(&str, &str)> {
    let (who, path) = arg.split_once(':')?;
    let plausible = !who.is_empty() && !who.starts_with(['.', '/', '~']) && who.matches('/').count() <= 1 && path.starts_with('/');
    plausible.then_some((who, path))
}

/// The invoking user: the one `sudo` names, else the process's own.
fn invoking_user() -> (u32, u32) {
    let from_env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
    match (from_env("SUDO_UID"), from_env("SUDO_GID")) {
        (Some(u), Some(g)) => (u, g),
        _ => (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw()),
    }
}

pub fn cp(args: CpArgs, global: &GlobalOpts) -> CmdResult {
    let (into, who, inside, host) = match (container_side(&args.source), container_side(&args.destination)) {
        (None, Some((who, path))) => (true, who, path, &args.source),
        (Some((who, path)), None) => (false, who, path, &args.destination),
        _ => return Err(Failure::msg(Exit::Usage, "write exactly one side as APP/CONTAINER:/PATH and the other as a host path")),
    };
    let root = context::existing_state_root(global)?.ok_or_else(|| Failure::msg(Exit::Usage, "no app is up under this state root"))?;
    let t = target::resolve(&root, who, args.target_opts.file.as_deref(), true)?;
    let container = t.container.expect("need_container");
    if !record::load(&root, &t.app).ok().flatten().and_then(|r| r.supervisor).is_some_and(|s| s.is_alive()) {
        return Err(Failure::msg(Exit::Failed, format!("app {} is not up", t.app)));
    }
    let dir = context::runtime()
        .block_on(ops::request_root(&root, &t.app, &container))
        .map_err(|e| Failure::msg(Exit::Failed, format!("{}/{container}: {e}", t.app)))?;
    let opts = CopyOptions { archive: args.archive, owner: if into { None } else { Some(invoking_user()) } };
    let (inside, host) = (PathBuf::from(inside), Path::new(host));
    let report = if into { copy::copy_in(dir.as_fd(), host, &inside, &opts) } else { copy::copy_out(dir.as_fd(), &inside, host, &opts) }
        .map_err(|e| Failure::msg(Exit::Failed, e.to_string()))?;
    for s in &report.skipped {
        eprintln!("warning: skipped {s}");
    }
    Ok(())
}

/// `tfctl export APP/CONTAINER [-o FILE]`: the running container's filesystem as tar.
pub fn export(args: ExportArgs, global: &GlobalOpts) -> CmdResult {
    use std::io::IsTerminal;
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Failure::msg(Exit::Usage, "export writes a tar archive: redirect standard output, or name a file with -o FILE"));
    }
    let root = context::existing_state_root(global)?.ok_or_else(|| Failure::msg(Exit::Usage, "no app is up under this state root"))?;
    let t = target::resolve(&root, args.target.as_deref().unwrap_or_default(), args.target_opts.file.as_deref(), true)?;
    let container = t.container.expect("need_container");
    let dir = context::runtime()
        .block_on(ops::request_root(&root, &t.app, &container))
        .map_err(|e| Failure::msg(Exit::Failed, format!("{}/{container}: {e}", t.app)))?;
    let report = match &args.output {
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            // The archive may hold whatever the container keeps: readable by its owner only.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(|e| Failure::msg(Exit::Failed, format!("cannot write {}: {e}", path.display())))?;
            tfctl_runtime::app::export::export(dir.as_fd(), std::io::BufWriter::new(file))
        }
        None => tfctl_runtime::app::export::export(dir.as_fd(), std::io::BufWriter::new(std::io::stdout().lock())),
    }
    .map_err(|e| Failure::msg(Exit::Failed, e.to_string()))?;
    if global.verbose {
        eprintln!("{} entries; left out (other filesystems): {}", report.entries, report.other_filesystems.join(", "));
    }
    for s in &report.skipped {
        eprintln!("warning: skipped {s}");
    }
    Ok(())
}
