//! `exec [--process JSON | ARGS] [--tty] [--detach] [--pid-file F] ID`: one more process in a
//! running container, confined as its first (the plan `create` kept), with the process the
//! caller describes.

use std::os::fd::AsFd;
use std::path::PathBuf;

use super::state::{procs_file, write_atomic, Root, Status};
use super::OciError;
use crate::capabilities;
use crate::spawn::{CapSets, Spawner, StartFds, StartPlan, User};

pub struct ExecOpts {
    /// A runtime-spec `process` object (JSON file), as the shim gives it.
    pub process: Option<PathBuf>,
    /// Or the command, run with the container's environment.
    pub args: Vec<String>,
    pub cwd: Option<String>,
    pub env: Vec<String>,
    pub tty: bool,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
}

/// Runs the process; its exit code when not detached, else 0.
pub fn exec(root: &Root, id: &str, opts: &ExecOpts, spawner: &Spawner) -> Result<i32, OciError> {
    let c = root.load(id)?;
    let status = c.status();
    if !matches!(status, Status::Running | Status::Created) {
        return Err(OciError::WrongState { id: id.to_string(), status, what: "exec needs a running container" });
    }
    let plan_path = c.dir.join("plan.json");
    let text = std::fs::read(&plan_path).map_err(OciError::io("cannot read", &plan_path))?;
    let base: StartPlan = serde_json::from_slice(&text).map_err(|e| OciError::Record { path: plan_path.clone(), message: e.to_string() })?;
    let mut plan = match &opts.process {
        Some(path) => {
            let p: oci_spec::runtime::Process = serde_json::from_slice(&std::fs::read(path).map_err(OciError::io("cannot read", path))?)
                .map_err(|e| OciError::Config { path: path.clone(), message: e.to_string() })?;
            let mut plan = base.exec_in(p.args().clone().unwrap_or_default(), Some(p.cwd().to_string_lossy().into_owned()));
            if let Some(env) = p.env() {
                plan.process.env = env.clone();
            }
            let u = p.user();
            plan.user = User { uid: u.uid(), gid: u.gid(), additional_gids: u.additional_gids().clone().unwrap_or_default() };
            if let Some(caps) = p.capabilities() {
                let set = |l: &Option<oci_spec::runtime::Capabilities>| -> Result<u64, OciError> {
                    let mut m = 0u64;
                    for cap in l.iter().flatten() {
                        let name = serde_json::to_value(cap).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                        m |= 1 << capabilities::cap_index(&name)?;
                    }
                    Ok(m)
                };
                plan.caps = CapSets { bounding: set(caps.bounding())?, permitted: set(caps.permitted())?, effective: set(caps.effective())?, inheritable: set(caps.inheritable())?, ambient: set(caps.ambient())? };
            }
            if let Some(nnp) = p.no_new_privileges() {
                plan.no_new_privs = nnp || base.no_new_privs;
            }
            plan.pty = p.terminal().unwrap_or(false);
            plan
        }
        None => {
            let mut plan = base.exec_in(opts.args.clone(), opts.cwd.clone());
            plan.process.env.extend(opts.env.iter().cloned());
            plan.pty = opts.tty;
            plan
        }
    };
    if plan.process.argv.is_empty() {
        return Err(OciError::Config { path: opts.process.clone().unwrap_or_default(), message: "no command to run".into() });
    }
    if plan.pty && opts.console_socket.is_none() {
        return Err(OciError::Unsupported("a terminal without --console-socket".into()));
    }
    plan.detached = opts.detach;

    let target = super::kill::pidfd(&c).ok_or_else(|| OciError::WrongState { id: id.to_string(), status: Status::Stopped, what: "exec needs a running container" })?;
    let mut fds = StartFds { target: Some(target), ..StartFds::default() };
    for dir in &c.record.cgroups {
        let procs = procs_file(dir);
        let fd = crate::cgroup::open_attach(&procs)?;
        fds.cgroup_procs.push(fd);
    }
    fds.stdin = std::io::stdin().as_fd().try_clone_to_owned().ok();
    fds.stdout = std::io::stdout().as_fd().try_clone_to_owned().ok();
    fds.stderr = std::io::stderr().as_fd().try_clone_to_owned().ok();
    let mut child = spawner.launch(&plan, fds)?;
    if let (Some(master), Some(socket)) = (child.take_pty(), &opts.console_socket) {
        super::create::send_console(socket, master)?;
    }
    if let Some(path) = &opts.pid_file {
        write_atomic(path, child.pid().to_string().as_bytes())?;
    }
    if opts.detach {
        return Ok(0);
    }
    Ok(child.wait()?.code())
}

