//! `tfctl kill`, `port`, `rm` and `volumes`: operating the containers and volumes of an app.

use std::path::PathBuf;
use std::str::FromStr;

use tfctl_runtime::app::{lifecycle, one_off, ops, record};
use tfctl_runtime::container::ContainerDirs;
use tfctl_runtime::state::StateRoot;

use super::target;
use crate::args::{Format, GlobalOpts, KillArgs, PortArgs, RmArgs, VolumesCommand};
use crate::context;
use crate::exit::{CmdResult, Exit, Failure};
use crate::output;

fn root(global: &GlobalOpts) -> Result<StateRoot, Failure> {
    context::existing_state_root(global)?.ok_or_else(|| Failure::msg(Exit::Usage, "no app under this state root: see `tfctl ps`"))
}

fn is_up(root: &StateRoot, app: &str) -> bool {
    record::load(root, app).ok().flatten().and_then(|r| r.supervisor).is_some_and(|s| s.is_alive())
}

fn not_up(app: &str) -> Failure {
    Failure::msg(Exit::Failed, format!("app {app} is not up: `tfctl up` starts it"))
}

/// `KILL`, `SIGKILL`, `sigkill` or a number.
fn parse_signal(s: &str) -> Result<i32, Failure> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    nix::sys::signal::Signal::from_str(&name)
        .map(|sig| sig as i32)
        .map_err(|_| Failure::msg(Exit::Usage, format!("-s {s}: not a signal; write a name such as TERM or SIGHUP, or a number")))
}

pub fn kill(args: KillArgs, global: &GlobalOpts) -> CmdResult {
    let signal = parse_signal(&args.signal)?;
    let root = root(global)?;
    let t = target::resolve(&root, &args.target, args.target_opts.file.as_deref(), true)?;
    let container = t.container.expect("need_container");
    if let Some((record, state)) = one_off::load(&root, &t.app) {
        let sent = match (record, state) {
            (Some(r), one_off::RunState::Running) => one_off::signal(&r, signal).map_err(|e| Failure::msg(Exit::Failed, format!("{container}: {e}")))?,
            _ => false,
        };
        return if sent { Ok(()) } else { Err(Failure::msg(Exit::Failed, format!("{container} is not running"))) };
    }
    if !is_up(&root, &t.app) {
        return Err(not_up(&t.app));
    }
    context::runtime()
        .block_on(ops::request_kill(&root, &t.app, &container, signal))
        .map_err(|e| Failure::msg(Exit::Failed, format!("{}/{container}: {e}", t.app)))
}

/// `80`, `80/tcp` or `53/udp`.
fn parse_port(s: &str) -> Result<(u16, String), Failure> {
    let (port, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let bad = || Failure::msg(Exit::Usage, format!("{s}: write PORT or PORT/tcp or PORT/udp"));
    let port: u16 = port.parse().map_err(|_| bad())?;
    if proto != "tcp" && proto != "udp" {
        return Err(bad());
    }
    Ok((port, proto.to_string()))
}

pub fn port(args: PortArgs, global: &GlobalOpts) -> CmdResult {
    let root = root(global)?;
    let t = target::resolve(&root, &args.target, args.target_opts.file.as_deref(), true)?;
    let container = t.container.expect("need_container");
    let want = args.port.as_deref().map(parse_port).transpose()?;
    if one_off::exists(&root, &t.app) {
        return Err(Failure::msg(Exit::Failed, format!("{container} publishes no port: a foreground `tfctl run` has only loopback (`tfctl run -p` publishes)")));
    }
    let rec = record::load(&root, &t.app).map_err(context::failed)?;
    let Some(rec) = rec.filter(|r| r.supervisor.as_ref().is_some_and(|s| s.is_alive())) else {
        return Err(not_up(&t.app));
    };
    let ports: Vec<&ops::PublishedPort> = rec
        .ports
        .iter()
        .filter(|p| p.container == container)
        .filter(|p| want.as_ref().is_none_or(|(port, proto)| p.container_port == *port && p.proto == *proto))
        .collect();
    if let Some((port, proto)) = &want {
        if ports.is_empty() {
            return Err(Failure::msg(Exit::Failed, format!("{}/{container} publishes no port {port}/{proto}", t.app)));
        }
    }
    if global.format == Format::Json {
        output::print_json(&serde_json::json!({"schema": 1, "ports": ports}));
        return Ok(());
    }
    for p in ports {
        if want.is_some() {
            println!("{}:{}", p.host_ip, p.host_port);
        } else {
            println!("{}/{} -> {}:{}", p.container_port, p.proto, p.host_ip, p.host_port);
        }
    }
    Ok(())
}

fn container_state(root: &StateRoot, app: &str, container: &str) -> Option<String> {
    let status = context::runtime().block_on(lifecycle::request_status(root, app))?;
    status["containers"][container]["state"].as_str().map(str::to_string)
}

pub fn rm(args: RmArgs, global: &GlobalOpts) -> CmdResult {
    let root = root(global)?;
    for target in &args.targets {
        let t = target::resolve(&root, target, args.target_opts.file.as_deref(), true)?;
        let container = t.container.expect("need_container");
        if let Some(one_off) = one_off::load(&root, &t.app) {
            rm_one_off(&root, &container, one_off, args.force)?;
            if !global.quiet {
                eprintln!("{container}: removed");
            }
            continue;
        }
        let what = format!("{}/{container}", t.app);
        let dirs = ContainerDirs::new(&root, &t.app, &container);
        if !dirs.dir.exists() {
            return Err(Failure::msg(Exit::Failed, format!("{what}: no such container (it was never created or is removed)")));
        }
        if is_up(&root, &t.app) {
            let state = container_state(&root, &t.app, &container);
            if matches!(state.as_deref(), Some("running" | "starting")) {
                if !args.force {
                    return Err(Failure::msg(Exit::Failed, format!("{what} is running: `tfctl stop {what}` first, or `rm --force`")));
                }
                context::runtime()
                    .block_on(lifecycle::request_op(&root, &t.app, "stop", Some(&container)))
                    .map_err(|e| Failure::msg(Exit::Failed, format!("{what}: cannot stop it: {e}")))?;
            }
        }
        let driver = tfctl_runtime::container::cgroup_driver(&root, &t.app, false).map_err(context::failed)?;
        let cgroup = driver.open(&format!("{}-{container}", root.short_id(&t.app)));
        tfctl_runtime::container::remove(cgroup.as_ref(), &dirs).map_err(|e| Failure::msg(Exit::Failed, format!("{what}: {e}")))?;
        if !global.quiet {
            eprintln!("{what}: removed");
        }
    }
    Ok(())
}

/// `rm` of a container of `tfctl run` in the foreground. A running one is killed first with
/// `--force`; its tfctl then cleans up and exits with 137.
pub(super) fn rm_one_off(root: &StateRoot, name: &str, (record, state): (Option<one_off::RunRecord>, one_off::RunState), force: bool) -> CmdResult {
    match (&record, state) {
        (_, one_off::RunState::Starting) => return Err(Failure::msg(Exit::Failed, format!("{name} is starting: try again in a moment"))),
        (Some(r), one_off::RunState::Running) => {
            if !force {
                return Err(Failure::msg(Exit::Failed, format!("{name} is running: `tfctl stop {name}` first, or `rm --force`")));
            }
            let _ = one_off::signal(r, libc::SIGKILL);
            if !one_off::wait_for_tfctl(r, std::time::Duration::from_secs(10)) {
                return Err(Failure::msg(Exit::Failed, format!("{name} was killed but its tfctl has not exited")));
            }
        }
        _ => {}
    }
    // Its tfctl removed the cgroup, unless it was killed itself.
    if let Some(r) = &record {
        let driver = tfctl_runtime::container::cgroup_driver(root, name, false).map_err(context::failed)?;
        driver.open(&r.cgroup).remove().map_err(|e| Failure::msg(Exit::Failed, format!("{name}: {e}")))?;
    }
    tfctl_runtime::userns::release(&tfctl_runtime::userns::app_prefix(root.path(), name));
    match std::fs::remove_dir_all(record::app_dir(root, name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Failure::msg(Exit::Failed, format!("{name}: cannot remove its folder: {e}"))),
        _ => Ok(()),
    }
}

struct Volume {
    app: String,
    name: String,
    path: PathBuf,
}

fn volumes_of(root: &StateRoot, app: Option<&str>) -> Vec<Volume> {
    let base = root.path().join("volumes");
    let apps: Vec<String> = match app {
        Some(a) => vec![a.to_string()],
        None => std::fs::read_dir(&base).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default(),
    };
    let mut out = Vec::new();
    for a in apps {
        let Ok(entries) = std::fs::read_dir(base.join(&a)) else { continue };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(Volume { app: a.clone(), name: e.file_name().to_string_lossy().into_owned(), path: e.path() });
            }
        }
    }
    out.sort_by(|x, y| (&x.app, &x.name).cmp(&(&y.app, &y.name)));
    out
}

/// The running containers that mount the volume: only a live supervisor knows.
fn users(root: &StateRoot, v: &Volume) -> Result<Vec<String>, Failure> {
    if !is_up(root, &v.app) {
        return Ok(Vec::new());
    }
    context::runtime()
        .block_on(ops::request_volume_users(root, &v.app, &v.name))
        .map_err(|e| Failure::msg(Exit::Failed, format!("volume {}/{}: cannot ask the supervisor who uses it: {e}", v.app, v.name)))
}

fn find_volume(root: &StateRoot, spec: &str) -> Result<Volume, Failure> {
    let (app, name) = spec.split_once('/').ok_or_else(|| Failure::msg(Exit::Usage, format!("{spec}: write APP/VOLUME")))?;
    if [app, name].iter().any(|s| s.is_empty() || *s == "." || *s == ".." || s.contains('/')) {
        return Err(Failure::msg(Exit::Usage, format!("{spec}: write APP/VOLUME")));
    }
    volumes_of(root, Some(app))
        .into_iter()
        .find(|v| v.name == name)
        .ok_or_else(|| Failure::msg(Exit::Failed, format!("no volume {spec}: see `tfctl volumes ls`")))
}

fn describe(root: &StateRoot, v: &Volume) -> Result<serde_json::Value, Failure> {
    Ok(serde_json::json!({
        "app": v.app,
        "name": v.name,
        "path": v.path,
        "used_by": users(root, v)?,
    }))
}

pub fn volumes(cmd: VolumesCommand, global: &GlobalOpts) -> CmdResult {
    let root = match context::existing_state_root(global)? {
        Some(r) => r,
        None if matches!(cmd, VolumesCommand::Ls { .. }) => {
            if global.format == Format::Json {
                output::print_json(&serde_json::json!({"schema": 1, "volumes": []}));
            }
            return Ok(());
        }
        None => return Err(Failure::msg(Exit::Failed, "no volume under this state root")),
    };
    match cmd {
        VolumesCommand::Ls { app } => {
            let list = volumes_of(&root, app.as_deref()).iter().map(|v| describe(&root, v)).collect::<Result<Vec<_>, _>>()?;
            if global.format == Format::Json {
                output::print_json(&serde_json::json!({"schema": 1, "volumes": list}));
            } else {
                println!("{:<20} {:<20} USED BY", "APP", "VOLUME");
                for v in &list {
                    let used: Vec<&str> = v["used_by"].as_array().into_iter().flatten().filter_map(|s| s.as_str()).collect();
                    println!("{:<20} {:<20} {}", v["app"].as_str().unwrap_or(""), v["name"].as_str().unwrap_or(""), if used.is_empty() { "-".to_string() } else { used.join(",") });
                }
            }
            Ok(())
        }
        VolumesCommand::Inspect { volume } => {
            let v = find_volume(&root, &volume)?;
            output::print_json(&describe(&root, &v)?);
            Ok(())
        }
        VolumesCommand::Rm { volume } => {
            let v = find_volume(&root, &volume)?;
            let used = users(&root, &v)?;
            if !used.is_empty() {
                return Err(Failure::msg(
                    Exit::Failed,
                    format!("volume {volume} is in use by running container(s) {}: stop them first", used.join(", ")),
                ));
            }
            std::fs::remove_dir_all(&v.path).map_err(|e| Failure::msg(Exit::Failed, format!("cannot remove {}: {e}", v.path.display())))?;
            if !global.quiet {
                eprintln!("volume {volume}: removed");
            }
            Ok(())
        }
    }
}
