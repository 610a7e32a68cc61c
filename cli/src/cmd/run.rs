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
    if c.privileged {
        eprintln!(
            "tfctl: WARNING: --privileged: container {name} gets every capability, no seccomp filter and a writable /sys: root in it is root on this host"
        );
    }
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

/// A flag's value that does not parse: names the flag and the value, says what is wrong and
/// shows how to write it (exit 2).
fn bad_flag(flag: &str, value: &str, what: impl std::fmt::Display, example: &str) -> Failure {
    usage(format!("{flag} {value}: {what}; write e.g. {flag} {example}"))
}

/// `--tmpfs /PATH[:size=SIZE]`. Docker's other options (mode=, exec, ...) are refused, not
/// dropped.
fn parse_tmpfs(spec: &str) -> Result<Tmpfs, Failure> {
    let (path, opts) = spec.split_once(':').unwrap_or((spec, ""));
    values::check_container_path(path).map_err(|e| bad_flag("--tmpfs", spec, e.message, "/run:size=64m"))?;
    let mut size = None;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o.split_once('=') {
            Some(("size", s)) => size = Some(values::parse_size(s).map_err(|e| bad_flag("--tmpfs", spec, e.message, "/run:size=64m"))?),
            _ => return Err(bad_flag("--tmpfs", spec, format!("option `{o}` is not supported (only size=)"), "/run:size=64m")),
        }
    }
    Ok(Tmpfs { path: path.to_string(), size })
}

/// What `--mount` adds: a mount or a tmpfs.
enum MountFlag {
    Mount(Mount),
    Tmpfs(Tmpfs),
}

/// `--mount type=bind|volume|tmpfs,source=SRC,target=/PATH[,readonly][,tmpfs-size=SIZE]`, with
/// Docker's spellings (src, destination, dst, ro, readonly=true|false).
fn parse_mount(spec: &str) -> Result<MountFlag, Failure> {
    const EXAMPLE: &str = "type=bind,source=./data,target=/data,readonly";
    let bad = |what: String| bad_flag("--mount", spec, what, EXAMPLE);
    let (mut typ, mut source, mut target, mut read_only, mut size) = ("volume", None, None, false, None);
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = field.split_once('=').map_or((field, None), |(k, v)| (k, Some(v)));
        match (k, v) {
            ("type", Some(t @ ("bind" | "volume" | "tmpfs"))) => typ = t,
            ("type", Some(t)) => return Err(bad(format!("type `{t}` is not one of bind, volume, tmpfs"))),
            ("source" | "src", Some(s)) => source = Some(s),
            ("target" | "destination" | "dst", Some(t)) => target = Some(t),
            ("readonly" | "ro", None | Some("true" | "1")) => read_only = true,
            ("readonly" | "ro", Some("false" | "0")) => read_only = false,
            ("tmpfs-size", Some(s)) => size = Some(values::parse_size(s).map_err(|e| bad(e.message))?),
            _ => return Err(bad(format!("`{field}` is not an option tfctl knows (type, source, target, readonly, tmpfs-size)"))),
        }
    }
    let target = target.ok_or_else(|| bad("it has no target=".into()))?;
    values::check_container_path(target).map_err(|e| bad(e.message))?;
    if size.is_some() && typ != "tmpfs" {
        return Err(bad("tmpfs-size= is for type=tmpfs only".into()));
    }
    let source = match (typ, source) {
        ("tmpfs", None) => return Ok(MountFlag::Tmpfs(Tmpfs { path: target.to_string(), size })),
        ("tmpfs", Some(_)) => return Err(bad("a tmpfs has no source=".into())),
        (_, None) => return Err(bad(format!("a {typ} mount needs source=; tfctl has no anonymous volumes"))),
        ("bind", Some(s)) => {
            let p = absolute(s);
            if !p.exists() {
                return Err(bad(format!("the bind source {} does not exist", p.display())));
            }
            MountSource::Bind(p)
        }
        (_, Some(s)) => {
            values::check_name("volume", s).map_err(|e| bad(e.message))?;
            MountSource::Volume(s.to_string())
        }
    };
    Ok(MountFlag::Mount(Mount { source, target: target.to_string(), read_only, create: false }))
}

/// `--ulimit NAME=SOFT[:HARD]`; -1 or `unlimited` is no limit, as in Docker.
fn parse_ulimit(spec: &str) -> Result<Ulimit, Failure> {
    const EXAMPLE: &str = "nofile=1024:2048";
    let (name, limits) = spec.split_once('=').ok_or_else(|| bad_flag("--ulimit", spec, "it has no `=`", EXAMPLE))?;
    values::check_ulimit(name).map_err(|e| bad_flag("--ulimit", spec, format!("{} ({})", e.message, e.help), EXAMPLE))?;
    let number = |v: &str| match v {
        "-1" | "unlimited" => Ok(u64::MAX),
        _ => v.parse::<u64>().map_err(|_| bad_flag("--ulimit", spec, format!("`{v}` is not a number"), EXAMPLE)),
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (number(s)?, number(h)?),
        None => (number(limits)?, number(limits)?),
    };
    if soft > hard {
        return Err(bad_flag("--ulimit", spec, "the soft limit is above the hard limit", EXAMPLE));
    }
    Ok(Ulimit { name: name.to_string(), soft, hard })
}

fn parse_sysctl(spec: &str) -> Result<(String, String), Failure> {
    const EXAMPLE: &str = "net.ipv4.ip_unprivileged_port_start=0";
    let (k, v) = spec.split_once('=').ok_or_else(|| bad_flag("--sysctl", spec, "it has no `=`", EXAMPLE))?;
    values::check_sysctl(k).map_err(|e| bad_flag("--sysctl", spec, format!("{} ({})", e.message, e.help), EXAMPLE))?;
    Ok((k.to_string(), v.to_string()))
}

/// `--add-host NAME:IP` (or NAME=IP); an IPv6 address may follow the first `:`.
fn parse_add_host(spec: &str) -> Result<tfctl_schema::model::ExtraHost, Failure> {
    const EXAMPLE: &str = "db.local:192.0.2.10";
    let (name, ip) = spec.split_once(['=', ':']).ok_or_else(|| bad_flag("--add-host", spec, "write NAME:IP", EXAMPLE))?;
    values::check_hostname(name).map_err(|e| bad_flag("--add-host", spec, e.message, EXAMPLE))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip = ip.parse().map_err(|_| bad_flag("--add-host", spec, format!("`{ip}` is not an IP address (tfctl has no host-gateway)"), EXAMPLE))?;
    Ok(tfctl_schema::model::ExtraHost { name: name.to_string(), addr: ip })
}

fn parse_label(spec: &str) -> Result<(String, String), Failure> {
    let (k, v) = spec.split_once('=').unwrap_or((spec, ""));
    if k.is_empty() {
        return Err(bad_flag("--label", spec, "the label has no name", "com.example.team=web"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// `--cpus`: more than 0, at most the kernel's largest CFS quota.
fn parse_cpus(v: &str) -> Result<f64, Failure> {
    match v.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 && n <= 1_000_000.0 => Ok(n),
        _ => Err(bad_flag("--cpus", v, "not a number of CPUs above 0", "1.5")),
    }
}

/// `--pids-limit`: a number above 0, or 0 or -1 for no limit (Docker's spelling).
fn parse_pids(v: &str) -> Result<u64, Failure> {
    match v.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n as u64),
        Ok(0 | -1) => Ok(u64::MAX),
        _ => Err(bad_flag("--pids-limit", v, "not a number of processes", "100")),
    }
}

/// The container `run` describes, as an app file would.
fn container_from_args(args: &RunArgs, name: &str) -> Result<Container, Failure> {
    let mut limits = Limits::default();
    if let Some(m) = &args.memory {
        limits.memory = Some(values::parse_size(m).map_err(|e| usage(format!("--memory {m}: {}", e.message)))?);
    }
    limits.cpus = args.cpus.as_deref().map(parse_cpus).transpose()?;
    limits.pids = args.pids_limit.as_deref().map(parse_pids).transpose()?;
    let mut mounts: Vec<Mount> = args.volume.iter().map(|v| parse_volume(v)).collect::<Result<_, _>>()?;
    let mut tmpfs: Vec<Tmpfs> = args.tmpfs.iter().map(|t| parse_tmpfs(t)).collect::<Result<_, _>>()?;
    for m in &args.mount {
        match parse_mount(m)? {
            MountFlag::Mount(m) => mounts.push(m),
            MountFlag::Tmpfs(t) => tmpfs.push(t),
        }
    }
    let network = match args.network.as_deref() {
        None => NetworkMode::App,
        Some("none") => NetworkMode::None,
        Some(n) => return Err(bad_flag("--network", n, "tfctl knows only `none` (without it, the container gets loopback only, or with -p or -d an app network of its own)", "none")),
    };
    if network == NetworkMode::None && !args.publish.is_empty() {
        return Err(usage("--network none and -p: a container on no network cannot publish ports"));
    }
    let stop_signal = args
        .stop_signal
        .as_deref()
        .map(|s| values::parse_signal(s).map_err(|e| bad_flag("--stop-signal", s, e.message, "SIGQUIT")))
        .transpose()?;
    let stop_timeout = match &args.stop_timeout {
        None => tfctl_schema::model::DEFAULT_STOP_TIMEOUT,
        Some(t) => match t.parse::<u64>() {
            Ok(s) => std::time::Duration::from_secs(s),
            Err(_) => return Err(bad_flag("--stop-timeout", t, "not a number of seconds", "30")),
        },
    };
    let group_add = args
        .group_add
        .iter()
        .map(|g| match g.parse::<u32>() {
            Ok(_) => Ok(g.clone()),
            Err(_) if !g.is_empty() && !g.contains([':', '\n', ',']) => Ok(g.clone()),
            Err(_) => Err(bad_flag("--group-add", g, "not a group name or number", "audio")),
        })
        .collect::<Result<_, _>>()?;
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
        // `--entrypoint ""` clears the image's Entrypoint (and so its Cmd), as Docker does: the
        // command given runs as it is. Never an empty program name, which exec refuses (126).
        entrypoint: args.entrypoint.as_ref().map(|e| if e.is_empty() { vec![] } else { vec![e.clone()] }),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        hostname,
        env: parse_env(args)?,
        files: args.copy.iter().map(|c| parse_copy(c)).collect::<Result<_, _>>()?,
        mounts,
        tmpfs,
        limits,
        ulimits: args.ulimit.iter().map(|u| parse_ulimit(u)).collect::<Result<_, _>>()?,
        sysctls: args.sysctl.iter().map(|s| parse_sysctl(s)).collect::<Result<_, _>>()?,
        stop_signal,
        stop_timeout,
        group_add,
        labels: args.label.iter().map(|l| parse_label(l)).collect::<Result<_, _>>()?,
        extra_hosts: args.add_host.iter().map(|h| parse_add_host(h)).collect::<Result<_, _>>()?,
        dns: args
            .dns
            .iter()
            .map(|d| d.parse().map_err(|_| bad_flag("--dns", d, "not an IP address", "192.0.2.53")))
            .collect::<Result<_, _>>()?,
        network,
        privileged: args.privileged,
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
    let inputs = Inputs::default();
    let mut prepared = container::prepare(&root, &name, &c, &image, writes, inputs).map_err(run_failed)?;
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
        // `exec -u` works its capabilities out from these: a privileged container's are all.
        exec: Some(match c.privileged {
            true => one_off::ExecTemplate { plan: prepared.plan.clone(), cap_add: vec!["ALL".to_string()], cap_drop: vec![] },
            false => one_off::ExecTemplate { plan: prepared.plan.clone(), cap_add: c.cap_add.clone(), cap_drop: c.cap_drop.clone() },
        }),
        // As `docker stop` chooses: --stop-signal, else the image's StopSignal.
        stop_signal: c.stop_signal.clone().or_else(|| image.config.config().as_ref().and_then(|cfg| cfg.stop_signal().clone())),
        stop_timeout: Some(c.stop_timeout.as_secs()),
        labels: c.labels.clone(),
        host_modes: c.host_modes(),
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
