//! `tfctl pull`, `tfctl images [ls|rm|prune|inspect]`, `tfctl login`, `tfctl logout`.

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use tfctl_runtime::app::one_off;
use tfctl_runtime::image::{Credentials, ImageSource, Store};

use crate::args::{Format, GlobalOpts, ImagesArgs, ImagesCommand, LoginArgs, LogoutArgs, PullArgs};
use crate::context::{self, failed};
use crate::exit::{CmdResult, Exit, Failure};
use crate::output;
use crate::progress::PullProgress;

/// An argument of `pull` is an app file when it contains `/` or ends in `.kdl` and names an
/// existing file; otherwise an image reference.
fn is_app_file(arg: &str) -> bool {
    (arg.contains('/') || arg.ends_with(".kdl")) && Path::new(arg).is_file()
}

fn parse_source(reference: &str) -> Result<ImageSource, Failure> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    ImageSource::parse(reference, &cwd).map_err(|e| Failure::msg(Exit::Usage, format!("invalid image reference: {e}")))
}

/// The images an app file uses, parsed against the app file's folder.
fn app_images(file: &Path) -> Result<Vec<ImageSource>, Failure> {
    let app = crate::cmd::check::load_app(file)?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for c in &app.containers {
        let source = ImageSource::parse(&c.image, &app.dir)
            .map_err(|e| Failure::msg(Exit::Usage, format!("container {}: invalid image: {e}", c.name)))?;
        if seen.insert(source.to_string()) {
            out.push(source);
        }
    }
    Ok(out)
}

pub fn pull(args: PullArgs, global: &GlobalOpts) -> CmdResult {
    let mut sources = Vec::new();
    for target in &args.targets {
        if is_app_file(target) {
            sources.extend(app_images(Path::new(target))?);
        } else {
            sources.push(parse_source(target)?);
        }
    }
    let config = context::host_config(global)?;
    let root = context::state_root(global)?;
    let store = Store::open(root.path()).map_err(failed)?;
    let opts = context::pull_options(global, &config, &args.registry);
    let progress = PullProgress::for_terminal(global);
    let results = context::runtime().block_on(async {
        let pulls = sources.iter().map(|s| store.pull(s, &opts, &progress));
        futures_util::future::join_all(pulls).await
    });
    let mut errors = Vec::new();
    for (source, result) in sources.iter().zip(results) {
        match result {
            Ok(pulled) if global.format == Format::Text && !global.quiet => {
                println!("{} {}", pulled.record.name, pulled.record.manifest_digest)
            }
            Ok(_) => {}
            Err(e) => errors.push(format!("{source}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::msg(Exit::Failed, errors.join("\n")))
    }
}

/// Images the containers under this state root were made from. Containers record their
/// image's name in `containers/*/image`, one-off ones in their run record; a root without
/// containers uses none.
fn images_in_use(root: &Path) -> HashSet<String> {
    let mut used = HashSet::new();
    let Ok(apps) = std::fs::read_dir(root.join("apps")) else { return used };
    for app in apps.flatten() {
        if let Some(image) = one_off::image_in(&app.path()) {
            used.insert(image);
        }
        let Ok(containers) = std::fs::read_dir(app.path().join("containers")) else { continue };
        for c in containers.flatten() {
            if let Ok(Some(name)) = tfctl_runtime::state::files::read_nofollow(&c.path().join("image")) {
                used.insert(String::from_utf8_lossy(&name).trim().to_string());
            }
        }
    }
    used
}

#[derive(Serialize)]
struct ImageRow {
    name: String,
    digest: String,
    size: u64,
    layers: usize,
}

pub fn images(args: ImagesArgs, global: &GlobalOpts) -> CmdResult {
    match args.command.unwrap_or(ImagesCommand::Ls) {
        ImagesCommand::Ls => list(global),
        ImagesCommand::Rm { reference, force } => remove(&reference, force, global),
        ImagesCommand::Prune => prune(global),
        ImagesCommand::Inspect { reference, registry: _ } => inspect(&reference, global),
    }
}

fn open_store(global: &GlobalOpts) -> Result<Option<Store>, Failure> {
    match context::existing_state_root(global)? {
        None => Ok(None),
        Some(root) => Store::open(root.path()).map(Some).map_err(failed),
    }
}

fn list(global: &GlobalOpts) -> CmdResult {
    let records = match open_store(global)? {
        Some(store) => store.list().map_err(failed)?,
        None => Vec::new(),
    };
    let rows: Vec<ImageRow> = records
        .into_iter()
        .map(|r| ImageRow { name: r.name, digest: r.manifest_digest, size: r.size, layers: r.diff_ids.len() })
        .collect();
    match global.format {
        Format::Json => output::print_json(&serde_json::json!({ "images": rows })),
        Format::Text => {
            println!("{:<50} {:<20} {:>10} {:>6}", "IMAGE", "DIGEST", "SIZE", "LAYERS");
            for r in rows {
                let digest = r.digest.strip_prefix("sha256:").unwrap_or(&r.digest);
                println!("{:<50} {:<20} {:>10} {:>6}", r.name, &digest[..digest.len().min(12)], human_size(r.size), r.layers);
            }
        }
    }
    Ok(())
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

fn stored_name(reference: &str) -> Result<String, Failure> {
    Ok(parse_source(reference)?.to_string())
}

fn remove(reference: &str, force: bool, global: &GlobalOpts) -> CmdResult {
    let name = stored_name(reference)?;
    let Some(store) = open_store(global)? else {
        return Err(Failure::msg(Exit::Failed, format!("image {name} is not in the store")));
    };
    let _lock = store.lock_exclusive().map_err(failed)?;
    if !force && images_in_use(store.root()).contains(&name) {
        return Err(Failure::msg(
            Exit::Failed,
            format!("image {name} is used by a container: remove the container first, or pass --force"),
        ));
    }
    let report = store.remove(&name).map_err(failed)?;
    if !global.quiet {
        eprintln!("removed {name} ({} blobs, {} layers, {} bytes freed)", report.blobs, report.layers, report.bytes);
    }
    Ok(())
}

fn prune(global: &GlobalOpts) -> CmdResult {
    let Some(store) = open_store(global)? else { return Ok(()) };
    let _lock = store.lock_exclusive().map_err(failed)?;
    let (removed, report) = store.prune(&images_in_use(store.root())).map_err(failed)?;
    match global.format {
        Format::Json => output::print_json(&serde_json::json!({ "removed": removed, "blobs": report.blobs, "layers": report.layers, "bytes": report.bytes })),
        Format::Text if !global.quiet => {
            for r in &removed {
                println!("removed {r}");
            }
            eprintln!("{} blobs, {} layers, {} bytes freed", report.blobs, report.layers, report.bytes);
        }
        Format::Text => {}
    }
    Ok(())
}

fn inspect(reference: &str, global: &GlobalOpts) -> CmdResult {
    let source = parse_source(reference)?;
    let Some(store) = open_store(global)? else {
        return Err(Failure::msg(Exit::Failed, format!("image {source} is not in the store; run `tfctl pull {reference}` first")));
    };
    let image = store.resolve(&source).map_err(failed)?;
    let config = serde_json::to_value(&image.config).map_err(failed)?;
    output::print_json(&serde_json::json!({
        "name": image.name,
        "manifest": image.manifest_digest,
        "config_digest": image.config_digest,
        "config": config,
    }));
    Ok(())
}

/// Where `login` writes: `$REGISTRY_AUTH_FILE`, else Docker's config file.
fn auth_file() -> Result<PathBuf, Failure> {
    tfctl_runtime::image::auth::default_auth_files()
        .into_iter()
        .next()
        .ok_or_else(|| Failure::msg(Exit::Failed, "no auth file: set HOME or REGISTRY_AUTH_FILE"))
}

pub fn login(args: LoginArgs, global: &GlobalOpts) -> CmdResult {
    let registry = args.server.unwrap_or_else(|| "docker.io".into());
    let username = match args.username {
        Some(u) => u,
        None if std::io::stdin().is_terminal() && !args.password_stdin => prompt("Username: ")?,
        None => return Err(Failure::msg(Exit::Usage, "give the user name with --username")),
    };
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(failed)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else if std::io::stdin().is_terminal() {
        read_password("Password: ")?
    } else {
        return Err(Failure::msg(Exit::Usage, "standard input is not a terminal: pass the password with --password-stdin"));
    };
    if password.is_empty() {
        return Err(Failure::msg(Exit::Usage, "the password is empty"));
    }
    let path = auth_file()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    tfctl_runtime::image::login(&registry, &Credentials { username, password }, &path).map_err(failed)?;
    if !global.quiet {
        eprintln!("credentials for {registry} saved in {}", path.display());
    }
    Ok(())
}

pub fn logout(args: LogoutArgs, global: &GlobalOpts) -> CmdResult {
    let registry = args.server.unwrap_or_else(|| "docker.io".into());
    let path = auth_file()?;
    let removed = tfctl_runtime::image::logout(&registry, &path).map_err(failed)?;
    if !global.quiet {
        if removed {
            eprintln!("removed the credentials for {registry} from {}", path.display());
        } else {
            eprintln!("no credentials for {registry} in {}", path.display());
        }
    }
    Ok(())
}

fn prompt(text: &str) -> Result<String, Failure> {
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(failed)?;
    Ok(line.trim().to_string())
}

/// Reads a line from the terminal with echo off.
fn read_password(text: &str) -> Result<String, Failure> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).map_err(failed)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).map_err(failed)?;
    let line = prompt(text);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    line
}
