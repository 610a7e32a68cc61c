//! `tfctl run`: a one-off container from an image, as `docker run` does. It becomes a
//! one-container app named after the container; its output is tfctl's output and its exit
//! status is tfctl's.

use std::path::PathBuf;

use tfctl_runtime::container::{self, Inputs, Writes};
use tfctl_runtime::image::{ImageError, ImageSource, Store};
use tfctl_runtime::relay::Relay;
use tfctl_runtime::spawn::{ExitStatus, Launch, Spawner, StartError, StartFds, StartPlan};
use tfctl_runtime::app::one_off;
use tfctl_runtime::state::identity::ProcessIdentity;
use tfctl_runtime::sys::signal_pipe::SignalPipe;
use tfctl_schema::model::*;
use tfctl_schema::values;

use crate::args::{GlobalOpts, RunArgs};
use crate::context::{self};
use crate::exit::{CmdResult, Exit, Failure};
use crate::progress::PullProgress;

fn usage(msg: impl Into<String>) -> Failure {
    Failure::msg(Exit::Usage, msg.into())
}

/// tfctl's own failure once the arguments are accepted: 125, as `docker run`.
fn run_failed(msg: impl std::fmt::Display) -> Failure {
    Failure::msg(Exit::RunFailed, msg.to_string())
}

/// The container `run` describes: its name (`--name`, else run-<6 hex>), its image and the rest.
pub(super) fn described(args: &RunArgs) -> Result<(String, ImageSource, Container), Failure> {
    let name = match &args.name {
        Some(n) => {
            values::check_name("container", n).map_err(|e| usage(format!("--name {n}: {}", e.message)))?;
            n.clone()
        }
        None => random_name(),
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let source = ImageSource::parse(&args.image, &cwd).map_err(|e| usage(format!("invalid image reference: {e}")))?;
    let mut c = container_from_args(args, &name)?;
    c.image = source.to_string();
    Ok((name, source, c))
}

/// `run -p` and `run -d`: a one-container app with its own network (and published ports), under
/// a supervisor: in this process when attached, detached with `-d`.
fn run_as_app(args: RunArgs, global: &GlobalOpts) -> CmdResult {
    let (name, _, mut c) = described(&args)?;
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    c.publish = args.publish.iter().map(|p| parse_publish(p)).collect::<Result<_, _>>()?;
    // A detached container is a service: not a one-shot, and stopped quickly by `down`.
    c.one_shot = !args.detach;
    let app = App {
        name: name.clone(),
        file: cwd.join(format!("{name}.run")),
        dir: cwd,
        subnet: None,
        egress: Egress::Allow,
        secrets: vec![],
        volumes: vec![],
        containers: vec![c],
        hooks: vec![],
        labels: vec![],
    };
    let parts = super::up::prepare_app(app, global, &args.registry, crate::args::PullPolicy::Missing)?;
    if super::up::threads() > 1 {
        return Err(Failure::msg(Exit::RunFailed, "internal error: tfctl has threads before starting the supervisor"));
    }
    if args.detach {
        super::up::detached(parts, None, global)?;
        if !global.quiet {
            println!("{name}");
        }
        Ok(())
    } else {
        let root = context::state_root(global)?;
        let result = super::up::run_attached(parts);
        if args.rm {
            let _ = std::fs::remove_dir_all(tfctl_runtime::app::record::app_dir(&root, &name));
        }
        result
    }
}


fn random_name() -> String {
    let mut b = [0u8; 3];
    let _ = getrandom::getrandom(&mut b);
    format!("run-{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

fn absolute(p: &str) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| PathBuf::from(p))
}

fn parse_env(args: &RunArgs) -> Result<Vec<(String, String)>, Failure> {
    let mut env = Vec::new();
    for file in &args.env_file {
        let text = std::fs::read_to_string(file).map_err(|e| usage(format!("cannot read --env-file {}: {e}", file.display())))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            match line.split_once('=') {
                Some((k, v)) => env.push((k.trim().to_string(), v.to_string())),
                None => {
                    if let Ok(v) = std::env::var(line) {
                        env.push((line.to_string(), v));
                    }
                }
            }
        }
    }
    for e in &args.env {
        match e.split_once('=') {
            Some((k, v)) if !k.is_empty() => env.push((k.to_string(), v.to_string())),
            Some(_) => return Err(usage(format!("-e {e}: the variable has no name"))),
            // `-e KEY` takes KEY from tfctl's environment, and nothing if it is unset.
            None => {
                if let Ok(v) = std::env::var(e) {
                    env.push((e.clone(), v));
                }
            }
        }
    }
    Ok(env)
}

fn parse_volume(spec: &str) -> Result<Mount, Failure> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, read_only) = match parts.as_slice() {
        [s, t] => (*s, *t, false),
        [s, t, "ro"] => (*s, *t, true),
        [s, t, "rw"] => (*s, *t, false),
        _ => return Err(usage(format!("-v {spec}: write SOURCE:/PATH[:ro], SOURCE a volume name or a path starting with ./, ../ or /"))),
    };
    values::check_container_path(target).map_err(|e| usage(format!("-v {spec}: {}", e.message)))?;
    let source = if source.starts_with('/') || source.starts_with("./") || source.starts_with("../") {
        let p = absolute(source);
        if !p.exists() {
            return Err(usage(format!("-v {spec}: {} does not exist", p.display())));
        }
        MountSource::Bind(p)
    } else {
        values::check_name("volume", source).map_err(|e| usage(format!("-v {spec}: {}", e.message)))?;
        MountSource::Volume(source.to_string())
    };
    Ok(Mount { source, target: target.to_string(), read_only, create: false })
}

fn parse_copy(spec: &str) -> Result<PreBootFile, Failure> {
    let (local, path) = spec
        .rsplit_once(':')
        .ok_or_else(|| usage(format!("--copy {spec}: write LOCAL:/PATH")))?;
    values::check_container_path(path).map_err(|e| usage(format!("--copy {spec}: {}", e.message)))?;
    let local = absolute(local);
    let meta = std::fs::metadata(&local).map_err(|e| usage(format!("--copy {spec}: cannot read {}: {e}", local.display())))?;
    use std::os::unix::fs::PermissionsExt;
    Ok(PreBootFile {
        path: path.to_string(),
        content: FileContent::From(local),
        template: false,
        mode: meta.permissions().mode() & 0o7777,
        owner: None,
    })
}

fn parse_seccomp(opts: &[String]) -> Result<Seccomp, Failure> {
    let mut seccomp = Seccomp::Default;
    for o in opts {
        match o.split_once('=') {
            Some(("seccomp", "unconfined")) => seccomp = Seccomp::Unconfined,
            Some(("seccomp", path)) => seccomp = Seccomp::Profile(absolute(path)),
            _ if o == "no-new-privileges" || o == "no-new-privileges=true" => {}
            _ => return Err(usage(format!("--security-opt {o}: tfctl knows seccomp=unconfined, seccomp=PROFILE.json and no-new-privileges"))),
        }
    }
    Ok(seccomp)
}

fn caps(list: &[String], flag: &str) -> Result<Vec<String>, Failure> {
    list.iter()
        .map(|c| if c.eq_ignore_ascii_case("all") { Ok("ALL".to_string()) } else { values::parse_capability(c) })
        .collect::<Result<_, _>>()
        .map_err(|e| usage(format!("{flag}: {}", e.message)))
}

/// The container `run` describes, as an app file would.
fn container_from_args(args: &RunArgs, name: &str) -> Result<Container, Failure> {
    let mut limits = Limits::default();
    if let Some(m) = &args.memory {
        limits.memory = Some(values::parse_size(m).map_err(|e| usage(format!("--memory {m}: {}", e.message)))?);
    }
    let shm_size = match &args.shm_size {
        Some(s) => values::parse_size(s).map_err(|e| usage(format!("--shm-size {s}: {}", e.message)))?,
        None => tfctl_schema::model::DEFAULT_SHM_SIZE,
    };
    if let Some(w) = &args.workdir {
        values::check_container_path(w).map_err(|e| usage(format!("--workdir {w}: {}", e.message)))?;
    }
    let hostname = args.hostname.clone().unwrap_or_else(|| name.to_string());
    values::check_hostname(&hostname).map_err(|e| usage(format!("--hostname {hostname}: {}", e.message)))?;
    Ok(Container {
        command: (!args.command.is_empty()).then(|| args.command.clone()),
        entrypoint: args.entrypoint.as_ref().map(|e| vec![e.clone()]),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        hostname,
        env: parse_env(args)?,
        files: args.copy.iter().map(|c| parse_copy(c)).collect::<Result<_, _>>()?,
        mounts: args.volume.iter().map(|v| parse_volume(v)).collect::<Result<_, _>>()?,
        limits,
        shm_size,
        userns: args.userns.as_deref().map(|u| if u == "auto" { tfctl_schema::model::Userns::Auto } else { tfctl_schema::model::Userns::Host }),
        cap_add: caps(&args.cap_add, "--cap-add")?,
        cap_drop: caps(&args.cap_drop, "--cap-drop")?,
        seccomp: parse_seccomp(&args.security_opt)?,
        read_only: args.read_only,
        init: args.init,
        one_shot: true,
        ..Container::new(name, &args.image)
    })
}

/// A failed start exits as `docker run` does (127 not found, 126 not executable, else 125).
pub(super) fn start_failure(e: StartError) -> Failure {
    let exit = match e.run_status() {
        127 => Exit::NotFound,
        126 => Exit::CannotExecute,
        _ => Exit::RunFailed,
    };
    Failure::msg(exit, e.to_string())
}

/// `-p [IP:]HOSTPORT:PORT[/udp]`, as Docker writes it.
pub(super) fn parse_publish(spec: &str) -> Result<Publish, Failure> {
    let bad = || usage(format!("-p {spec}: write [IP:]HOSTPORT:PORT[/udp]"));
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, "udp")) => (r, Proto::Udp),
        Some((r, "tcp")) => (r, Proto::Tcp),
        Some(_) => return Err(bad()),
        None => (spec, Proto::Tcp),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, port) = match parts.as_slice() {
        [h, p] => ("0.0.0.0", *h, *p),
        [ip, h, p] => (*ip, *h, *p),
        _ => return Err(bad()),
    };
    let host_ip = ip.parse().map_err(|_| usage(format!("-p {spec}: `{ip}` is not an IPv4 address")))?;
    let host_port: u16 = host.parse().map_err(|_| bad())?;
    let container_port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
    Ok(Publish { host_port, container_port, host_ip, proto })
}

pub fn run(args: RunArgs, global: &GlobalOpts, spawner: Spawner) -> CmdResult {
    if args.app.is_some() {
        drop(spawner);
        return super::run_app::run(args, global);
    }
    if args.detach || !args.publish.is_empty() {
        // The app path forks or starts spawners of its own: this one must not linger in them.
        drop(spawner);
        return run_as_app(args, global);
    }
    let (name, source, c) = described(&args)?;
    // The container's network namespace is made by the spawner while this process prepares
    // the rest (it is the costliest part of the clone).
    spawner.spare_netns();

    let config = context::host_config(global)?;
    let mut c = c;
    c.userns.get_or_insert(config.userns);
    let root = context::state_root(global)?;
    let store = Store::open(root.path()).map_err(run_failed)?;
    root.dir("apps").map_err(run_failed)?;
    // The name is ours until we exit: `ps`, `stop`, `kill` and `rm` find the container by it.
    let claim = one_off::Claim::take(&root, &name).map_err(run_failed)?;

    // No async runtime unless this run needs one (a pull, a terminal to proxy): its threads
    // cost more to start and stop than the rest of a short container's start.
    let image = match store.resolve(&source) {
        Ok(image) => image,
        Err(ImageError::NotFound { .. }) => {
            let opts = context::pull_options(global, &config, &args.registry);
            let quiet = GlobalOpts { quiet: !global.verbose, ..global.clone() };
            context::runtime()
                .block_on(store.pull(&source, &opts, &PullProgress::for_terminal(&quiet)))
                .map_err(run_failed)?;
            store.resolve(&source).map_err(run_failed)?
        }
        Err(e) => return Err(run_failed(e)),
    };
    let writes = if args.rm { Writes::Ephemeral } else { Writes::Kept };
    let mut prepared = container::prepare(&root, &name, &c, &image, writes, Inputs::default()).map_err(run_failed)?;
    prepared.plan.pty = args.tty;
    // Without -t the container's stdout and stderr (and with -i its stdin) are pipes relayed
    // until it exits, never tfctl's own descriptors; without -i its stdin is /dev/null, as
    // `docker run` does.
    let relay = match args.tty {
        true => None,
        false => {
            let (relay, stdio) = Relay::start(args.interactive).map_err(relay_failure)?;
            (prepared.fds.stdin, prepared.fds.stdout, prepared.fds.stderr) = (stdio.stdin, Some(stdio.stdout), Some(stdio.stderr));
            Some(relay)
        }
    };
    let mut record = one_off::RunRecord {
        schema: 1,
        name: name.clone(),
        image: image.name.clone(),
        cgroup: prepared.cgroup.name().to_string(),
        started_at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        remove: args.rm,
        tfctl: None,
        init: None,
        exit_code: None,
        exec: Some(one_off::ExecTemplate { plan: prepared.plan.clone(), cap_add: c.cap_add.clone(), cap_drop: c.cap_drop.clone() }),
    };
    let fds = std::mem::take(&mut prepared.fds);
    // Caught from before the launch until the cleanup is done, so none ends tfctl without it.
    let signals = SignalPipe::install(&FORWARDED).map_err(|e| run_failed(format!("cannot catch signals: {}", std::io::Error::from_raw_os_error(e))))?;
    let outcome = if args.tty {
        record_tfctl(&claim, &mut record);
        context::runtime().block_on(with_terminal(&spawner, &prepared.plan, fds, args.interactive, |child| record_start(&claim, &mut record, child)))
    } else {
        let launch = spawner.begin_launch(&prepared.plan, fds);
        // Written while the spawner runs the start sequence, which is all this process would
        // otherwise wait for.
        record_tfctl(&claim, &mut record);
        launch
            .and_then(Launch::started)
            .and_then(|child| {
                record_start(&claim, &mut record, child.pid());
                let mut interrupts = 0;
                child.wait_forwarding(&signals, |sig| forwarded(&name, sig, &mut interrupts))
            })
            .map_err(start_failure)
    };
    // The container's output so far goes out; the pipes close.
    drop(relay);
    // The spawner has nothing left to do: it exits while we clean up, and this process does
    // not wait for it (it may still be dropping the container's mount namespace).
    spawner.release();
    // A kill by the memory limit is said as such: exit 137 alone reads like `kill -9`.
    if let Ok(Some(n @ 1..)) = prepared.cgroup.stats().map(|s| s.oom_kills) {
        eprintln!("{name}: out of memory: the kernel killed {n} of its processes at its memory limit (raise --memory)");
    }
    // Whatever happened, nothing of the container keeps running; its folder stays unless
    // --rm, so its filesystem can still be inspected.
    let cleanup = if args.rm {
        container::remove(prepared.cgroup.as_ref(), &prepared.dirs).map(|_| ())
    } else {
        prepared.cgroup.remove().map_err(|e| container::CreateError::Cgroup { container: name.clone(), source: e })
    };
    if args.rm {
        drop(claim);
    } else {
        record.tfctl = None;
        record.init = None;
        record.exec = None;
        record.exit_code = Some(outcome.as_ref().map_or_else(|f| i32::from(f.exit.code()), |s| s.code()));
        if let Err(e) = claim.keep(&record) {
            eprintln!("warning: cannot record the exit of {name}: {e}");
        }
    }
    if let Err(e) = cleanup {
        eprintln!("warning: {e}");
    }
    drop(signals);
    let status = outcome?;
    let code = status.code();
    if code == 0 {
        Ok(())
    } else {
        Err(Failure::silent(Exit::Status(code.clamp(0, 255) as u8)))
    }
}

/// What `run` in the foreground passes on to its container, as `docker run` does.
const FORWARDED: [i32; 6] = [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGUSR1, libc::SIGUSR2];

/// Each signal goes to the container as it is, but a PID 1 without a handler ignores SIGINT:
/// the third interrupt kills the container, so ^C always ends `run`.
fn forwarded(name: &str, sig: i32, interrupts: &mut u32) -> Option<i32> {
    if sig != libc::SIGINT {
        return Some(sig);
    }
    *interrupts += 1;
    match *interrupts {
        2 => eprintln!("tfctl: {name} got SIGINT twice; a third ^C kills it"),
        3.. => {
            eprintln!("tfctl: killing {name}");
            return Some(libc::SIGKILL);
        }
        _ => {}
    }
    Some(sig)
}

/// Records this tfctl and the image in use (for `images rm` and `prune`).
fn record_tfctl(claim: &one_off::Claim, record: &mut one_off::RunRecord) {
    record.tfctl = Some(ProcessIdentity::current());
    save_record(claim, record);
}

/// Records the started container's init, so `stop` and `kill` can reach it.
fn record_start(claim: &one_off::Claim, record: &mut one_off::RunRecord, init: i32) {
    record.init = ProcessIdentity::of(init);
    save_record(claim, record);
}

/// Best effort: the container runs either way, only unlisted.
fn save_record(claim: &one_off::Claim, record: &one_off::RunRecord) {
    if let Err(e) = claim.record(record) {
        tracing::warn!("cannot record container {}: {e}", record.name);
    }
}

/// The pipes of a process's stdio could not be made.
pub(super) fn relay_failure(e: std::io::Error) -> Failure {
    Failure::msg(Exit::RunFailed, format!("cannot make the pipes for the process's stdin, stdout and stderr: {e}"))
}

/// Starts the container on a pty and proxies it to this terminal (raw mode, window size) until
/// the process exits.
pub(super) async fn with_terminal(spawner: &Spawner, plan: &StartPlan, fds: StartFds, interactive: bool, started: impl FnOnce(i32)) -> Result<ExitStatus, Failure> {
    let mut child = spawner.launch_async(plan, fds).await.map_err(start_failure)?;
    started(child.pid());
    let attached = child.take_pty().map(|master| crate::terminal::Attached::start(master, interactive));
    // In raw mode ^C is a byte for the container; a signal sent to tfctl is passed on.
    let (_, pidfd, exited) = child.into_parts();
    let forwarder = tokio::spawn(async move {
        let mut streams: Vec<_> = FORWARDED.iter().filter_map(|&s| tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(s)).ok().map(|st| (s, st))).collect();
        loop {
            let next = futures_util::future::select_all(streams.iter_mut().map(|(s, st)| Box::pin(async move { st.recv().await.map(|_| *s) })));
            match next.await.0 {
                Some(sig) => {
                    let _ = tfctl_runtime::sys::pidfd_send_signal(std::os::fd::AsRawFd::as_raw_fd(&pidfd), sig);
                }
                None => break,
            }
        }
    });
    let status = exited.wait_async().await.map_err(start_failure);
    forwarder.abort();
    if let Some(a) = attached {
        a.finish().await;
    }
    status
}
