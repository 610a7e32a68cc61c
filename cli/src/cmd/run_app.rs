//! `tfctl run --app APP`: a container added to a running app, from a shell or from one of the
//! app's own hooks (an app can grow itself). Inbound is denied but for `--allow-from`; every
//! running container's /etc/hosts learns its name; `ps` marks it; a reconcile from the file
//! leaves it; `down` removes it. Attached (no `-d`), `run` shows its output and exits with its
//! status, as `docker run` does; `--rm` then removes it from the app.

use std::time::{Duration, SystemTime};

use tfctl_runtime::app::record;
use tfctl_runtime::app::serve_reconcile::{self, RunTime};
use tfctl_runtime::logs::LogQuery;
use tfctl_runtime::state::StateRoot;
use tfctl_schema::model::{Allow, Peer, Proto};
use tfctl_schema::values;

use crate::args::{GlobalOpts, RunArgs};
use crate::context;
use crate::exit::{CmdResult, Exit, Failure};

fn run_failed(msg: impl std::fmt::Display) -> Failure {
    Failure::msg(Exit::RunFailed, msg.to_string())
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure::msg(Exit::Usage, msg.into())
}

/// `--allow-from NAME|host|any|CIDR[:PORT[-PORT][/tcp|udp]]`.
fn parse_allow(spec: &str) -> Result<Allow, Failure> {
    let bad = |why: String| usage(format!("--allow-from {spec}: {why}; write NAME|host|any|CIDR[:PORT[-PORT][/tcp|udp]]"));
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, "tcp")) => (r, Some(Proto::Tcp)),
        Some((r, "udp")) => (r, Some(Proto::Udp)),
        _ => (spec, None),
    };
    let (peer, ports) = match rest.split_once(':') {
        Some((p, ports)) => (p, Some(values::parse_port_range(ports).map_err(|e| bad(e.message))?)),
        None => (rest, None),
    };
    if proto.is_some() && ports.is_none() {
        return Err(bad("a protocol needs a port".into()));
    }
    let from = match peer {
        "host" => Peer::Host,
        "any" => Peer::Any,
        p if p.contains('/') || p.parse::<std::net::Ipv4Addr>().is_ok() => {
            let cidr = if p.contains('/') { p.to_string() } else { format!("{p}/32") };
            Peer::Cidr(cidr.parse().map_err(|e: tfctl_schema::model::CidrError| bad(e.to_string()))?)
        }
        name => {
            values::check_name("container", name).map_err(|e| bad(e.message))?;
            Peer::Container(name.to_string())
        }
    };
    Ok(Allow { from, ports, proto })
}

pub fn run(args: RunArgs, global: &GlobalOpts) -> CmdResult {
    let app_name = args.app.clone().expect("run --app");
    let (root, _) = super::reconcile::running(&app_name, global)?
        .ok_or_else(|| run_failed(format!("app {app_name} is not up: start it with `tfctl up`, or run without --app")))?;
    let (name, _, mut c) = super::run::described(&args)?;
    c.publish = args.publish.iter().map(|p| super::run::parse_publish(p)).collect::<Result<_, _>>()?;
    c.allow = args.allow_from.iter().map(|a| parse_allow(a)).collect::<Result<_, _>>()?;
    // Attached, it is a task that runs to completion; detached, a service.
    c.one_shot = !args.detach;

    let lock = super::reconcile::reconcile_lock(&root, &app_name, "run --app")?;
    let rt = context::runtime();
    let mut app = rt.block_on(serve_reconcile::request_model(&root, &app_name)).map_err(run_failed)?;
    if app.container(&name).is_some() {
        return Err(run_failed(format!("app {app_name} already has a container named {name}: choose another --name")));
    }
    app.containers.push(c);
    // The supervisor loads the model as a file: check it the same way here, to say what is
    // wrong before anything is pulled.
    let text = tfctl_schema::to_kdl(&app);
    let file_name = app.file.file_name().and_then(|n| n.to_str()).unwrap_or("app.kdl").to_string();
    if let Err(d) = tfctl_schema::load_str(&file_name, &text, &app.dir, &|_| None) {
        return Err(usage(format!("container {name} does not fit app {app_name}:\n{}", d.render_plain(100))));
    }
    let config = context::host_config(global)?;
    let mut app = app;
    app.apply_host_defaults(&config);
    let store = tfctl_runtime::image::Store::open(root.path()).map_err(run_failed)?;
    let mut one = app.clone();
    one.containers.retain(|x| x.name == name);
    super::up::images(&one, &store, global, &config, &args.registry, crate::args::PullPolicy::Missing)?;

    let added = [name.clone()];
    let rx = super::reconcile::messages(&root, &app_name, serve_reconcile::message("reconcile", &app, &Default::default(), RunTime { added: &added, removed: &[] }))?;
    if args.detach {
        let quiet = GlobalOpts { quiet: true, ..global.clone() };
        super::up::report_until(rx, &app_name, vec![name.clone()], None, &quiet)?;
        drop(lock);
        if !global.quiet {
            println!("{name}");
        }
        return Ok(());
    }
    drop(lock);
    let status = follow(&root, &app_name, &name, rx);
    if args.rm {
        remove(&root, &app_name, &name)?;
    }
    match status? {
        0 => Ok(()),
        code => Err(Failure::silent(Exit::Status(code.clamp(0, 255) as u8))),
    }
}

/// Passes the container's output through until it exits; its status.
fn follow(root: &StateRoot, app: &str, name: &str, rx: std::sync::mpsc::Receiver<Option<serde_json::Value>>) -> Result<i32, Failure> {
    let log = record::app_dir(root, app).join("logs").join(format!("{name}.log"));
    let mut seen: Option<SystemTime> = None;
    let everything = LogQuery { since: None, tail: None };
    // The log may not exist yet: then there is nothing to print.
    // Passed through as `run` passes its output: the bytes as they came.
    let mut output = crate::logview::Output::raw();
    let mut print_new = || {
        let _ = super::exec::print_new_lines(&log, &mut seen, &everything, None, false, &mut output);
    };
    let mut open = true;
    loop {
        let msg = if open {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Some(m)) => Some(m),
                Ok(None) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    open = false;
                    None
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            }
        } else {
            std::thread::sleep(Duration::from_millis(100));
            None
        };
        print_new();
        let Some(msg) = msg else {
            if !open {
                // The reports ended (the app became ready before this container exited): ask.
                if let Some(code) = exit_code_from_ps(root, app, name) {
                    print_new();
                    return Ok(code);
                }
            }
            continue;
        };
        if msg["ok"] == false {
            return Err(run_failed(msg["error"].as_str().unwrap_or("the supervisor refused the container")));
        }
        let r = &msg["report"];
        if msg["kind"] == "failed" && msg["container"] == "" {
            return Err(run_failed(msg["reason"].as_str().unwrap_or("the reconcile failed")));
        }
        if r["container"] == name {
            match r["event"].as_str() {
                Some("exited") => {
                    print_new();
                    return Ok(r["exit_code"].as_i64().unwrap_or(125) as i32);
                }
                Some("failed") if r["reason"] == "start" => {
                    return Err(run_failed(r["message"].as_str().unwrap_or("the container could not start")));
                }
                _ => {}
            }
        }
    }
}

/// The exit code `ps` shows for a container that has ended.
fn exit_code_from_ps(root: &StateRoot, app: &str, name: &str) -> Option<i32> {
    let status = context::runtime().block_on(tfctl_runtime::app::lifecycle::request_status(root, app))?;
    let c = &status["containers"][name];
    match c["state"].as_str() {
        Some("exited" | "failed" | "stopped") => c["exit_code"].as_i64().map(|c| c as i32),
        _ => None,
    }
}

/// `--rm`: the container leaves the app again.
fn remove(root: &StateRoot, app_name: &str, name: &str) -> CmdResult {
    let _lock = super::reconcile::reconcile_lock(root, app_name, "run --rm")?;
    let rt = context::runtime();
    let mut app = rt.block_on(serve_reconcile::request_model(root, app_name)).map_err(run_failed)?;
    app.containers.retain(|c| c.name != name);
    let removed = [name.to_string()];
    let rx = super::reconcile::messages(root, app_name, serve_reconcile::message("reconcile", &app, &Default::default(), RunTime { added: &[], removed: &removed }))?;
    while let Ok(Some(msg)) = rx.recv() {
        if msg["ok"] == false || (msg["kind"] == "failed" && msg["container"] == "") {
            let why = msg["error"].as_str().or(msg["reason"].as_str()).unwrap_or("failed").to_string();
            return Err(run_failed(format!("cannot remove {name} from app {app_name}: {why}")));
        }
        if msg["kind"] == "applied" {
            break;
        }
    }
    Ok(())
}
