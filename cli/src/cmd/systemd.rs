//! `tfctl systemd FILE`: a systemd service unit that runs an app, as 20ft's apps ran: the unit's
//! main process is the app's supervisor (`tfctl up` in the foreground), so systemd's stop is the
//! app's `down` and a crash of the supervisor is a failed unit that systemd restarts.
//!
//! The unit is `Type=notify` (the supervisor says READY=1 once `up --wait` would return), takes
//! the environment the app file needs from an `EnvironmentFile=`, and is sandboxed as far as
//! tfctl can still do its job: what the app file asks for (its bind mounts, capabilities,
//! sysctls, user namespaces) decides what the sandbox keeps open, and the unit's comments say
//! why each setting that stays open cannot be closed.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tfctl_runtime::capabilities::{self, CapSet};
use tfctl_schema::model::{App, MountSource, SecretSource, Userns};

use crate::args::{GlobalOpts, SystemdArgs};
use crate::exit::{CmdResult, Exit, Failure};

/// Where `--install` puts units: the administrator's own, above the distribution's.
const UNIT_DIR: &str = "/etc/systemd/system";
/// Where `--install` puts the environment file of a unit whose app file needs variables.
const ENV_DIR: &str = "/etc/tfctl";

#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    #[error("cannot find tfctl's own path (/proc/self/exe is unreadable): name the binary with --tfctl PATH")]
    NoOwnPath,
    #[error(
        "{0} is inside a cargo target folder: a unit must not run a build's binary (the next build replaces it). \
         Install tfctl (scripts/install.sh) and run that one's `tfctl systemd`, or name this binary with --tfctl {0} if you mean it"
    )]
    BuildTree(PathBuf),
    #[error("--tfctl {path}: {why}")]
    BadTfctl { path: PathBuf, why: String },
    #[error("--name {0}: a unit name is letters, digits and `:-_.\\@`, at most 250 characters (e.g. tfctl-web or tfctl-web.service)")]
    BadName(String),
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Service(#[from] tfctl_runtime::service::manager::ServiceError),
    #[error("--now needs systemd running as PID 1 (/run/systemd/system is missing): the unit is installed, start it once systemd runs")]
    NoSystemd,
    #[error("container {container}: {source}")]
    Caps { container: String, source: capabilities::CapError },
}

impl From<UnitError> for Failure {
    fn from(e: UnitError) -> Self {
        let exit = match e {
            UnitError::BadName(_) | UnitError::BadTfctl { .. } | UnitError::BuildTree(_) | UnitError::Caps { .. } => Exit::Usage,
            _ => Exit::Failed,
        };
        Failure::msg(exit, e.to_string())
    }
}

/// Everything the unit's text is made of, resolved.
pub(crate) struct Unit<'a> {
    /// `tfctl-web.service`.
    pub name: String,
    pub app: &'a App,
    pub tfctl: PathBuf,
    pub root: PathBuf,
    pub config: PathBuf,
    /// The environment file and the variables the app file takes from the environment.
    pub env: Option<(PathBuf, Vec<String>)>,
    /// The app file reads `$CREDENTIALS_DIRECTORY`: its from-file secrets become credentials.
    pub credentials: bool,
}

/// Where systemd puts a unit's credentials (LoadCredential=) for its processes.
const CREDENTIALS_VAR: &str = "CREDENTIALS_DIRECTORY";

pub fn unit(args: SystemdArgs, global: &GlobalOpts) -> CmdResult {
    // Every variable the app file (or its secrets) takes from the environment: the unit's
    // process starts with none of the shell's, so they go into its environment file.
    let asked = std::cell::RefCell::new(BTreeSet::new());
    let recording = |name: &str| {
        asked.borrow_mut().insert(name.to_string());
        tfctl_schema::process_env(name)
    };
    let mut app = tfctl_schema::load(&args.file, &recording).map_err(|d| crate::cmd::check::print_diagnostics(&d))?;
    let config = crate::context::host_config(global)?;
    app.apply_host_defaults(&config);
    let asked = asked.into_inner();
    // systemd sets it for a unit with credentials (LoadCredential=): never the file's to set.
    let credentials = asked.contains(CREDENTIALS_VAR);
    let mut vars: BTreeSet<String> = asked.into_iter().filter(|v| v != CREDENTIALS_VAR && std::env::var_os(v).is_some()).collect();
    vars.extend(app.secrets.iter().filter_map(|s| match &s.source {
        SecretSource::FromEnv(v) => Some(v.clone()),
        _ => None,
    }));

    let name = unit_name(args.name.as_deref(), &app.name)?;
    let tfctl = tfctl_binary(args.tfctl.as_deref())?;
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let stem = name.trim_end_matches(".service").to_string();
    let env = (!vars.is_empty()).then(|| (Path::new(ENV_DIR).join(format!("{stem}.env")), vars.into_iter().collect::<Vec<_>>()));
    let unit = Unit { name: name.clone(), app: &app, tfctl, root: abs(&global.root), config: abs(&global.config), env, credentials };
    let text = render(&unit)?;
    if !args.install {
        print!("{text}");
        return Ok(());
    }
    install(&unit, &text, args.now, global.quiet)?;
    Ok(())
}

/// `tfctl-APP.service`, or `--name` with `.service` added when it has no suffix.
fn unit_name(name: Option<&str>, app: &str) -> Result<String, UnitError> {
    let Some(n) = name else { return Ok(format!("tfctl-{app}.service")) };
    let full = if n.ends_with(".service") { n.to_string() } else { format!("{n}.service") };
    let valid = full.len() <= 250
        && !n.starts_with('.')
        && !n.contains('/')
        && full.trim_end_matches(".service").bytes().all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
        && full != ".service";
    if valid {
        Ok(full)
    } else {
        Err(UnitError::BadName(n.to_string()))
    }
}

/// The binary the unit runs: `--tfctl`, else this one, unless this one is a build's.
fn tfctl_binary(named: Option<&Path>) -> Result<PathBuf, UnitError> {
    if let Some(p) = named {
        let bad = |why: &str| UnitError::BadTfctl { path: p.to_path_buf(), why: why.to_string() };
        let abs = std::fs::canonicalize(p).map_err(|e| bad(&format!("cannot be resolved ({e})")))?;
        let meta = std::fs::metadata(&abs).map_err(|e| bad(&e.to_string()))?;
        use std::os::unix::fs::PermissionsExt;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(bad("is not an executable file"));
        }
        return Ok(abs);
    }
    let own = PathBuf::from(tfctl_runtime::hooks::env::tfctl_path().ok_or(UnitError::NoOwnPath)?);
    if in_cargo_target(&own) {
        return Err(UnitError::BuildTree(own));
    }
    Ok(own)
}

/// Whether `exe` is a build's output: cargo marks its target folder (`target/` or
/// `$CARGO_TARGET_DIR`) with a CACHEDIR.TAG and `.rustc_info.json`; the binary is in
/// `PROFILE/` or `TRIPLE/PROFILE/` below it (or in `deps/` there).
fn in_cargo_target(exe: &Path) -> bool {
    exe.ancestors().skip(1).take(4).any(|d| d.join("CACHEDIR.TAG").is_file() || d.join(".rustc_info.json").is_file())
}

/// Writes the unit (and its environment file, if missing) and has systemd take it.
fn install(unit: &Unit, text: &str, now: bool, quiet: bool) -> Result<(), UnitError> {
    let path = Path::new(UNIT_DIR).join(&unit.name);
    write_file(&path, text.as_bytes(), 0o644, true)?;
    if !quiet {
        eprintln!("wrote {}", path.display());
    }
    if let Some((env_path, vars)) = &unit.env {
        if env_path.exists() {
            if !quiet {
                eprintln!("kept {} (it exists): it must set {}", env_path.display(), vars.join(", "));
            }
        } else {
            let (text, missing) = env_file(vars, |v| std::env::var(v).ok());
            if let Some(dir) = env_path.parent() {
                std::fs::create_dir_all(dir).map_err(|source| UnitError::Io { what: "cannot create", path: dir.to_path_buf(), source })?;
            }
            // The values may be secrets (from-env ones): readable by root only.
            write_file(env_path, text.as_bytes(), 0o600, false)?;
            if !quiet {
                eprintln!("wrote {} (mode 0600) with {} from this shell's environment", env_path.display(), vars.join(", "));
            }
            if !missing.is_empty() {
                eprintln!("warning: {} not set here: add {} to {} before the unit starts", missing.join(", "), if missing.len() == 1 { "it" } else { "them" }, env_path.display());
            }
        }
    }
    if !Path::new("/run/systemd/system").is_dir() {
        if now {
            return Err(UnitError::NoSystemd);
        }
        return Ok(());
    }
    tfctl_runtime::service::manager::reload_enable(&unit.name, now)?;
    if !quiet {
        eprintln!("{} {}", unit.name, if now { "is enabled and active: the app is ready" } else { "is enabled; start it with `systemctl start` (or pass --now)" });
    }
    Ok(())
}

fn write_file(path: &Path, data: &[u8], mode: u32, replace: bool) -> Result<(), UnitError> {
    let io = |source| UnitError::Io { what: "cannot write", path: path.to_path_buf(), source };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).mode(mode);
    if replace {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(data).map_err(io)
}

/// An EnvironmentFile= with `vars` as `lookup` gives them (double-quoted, systemd's escapes),
/// and the names `lookup` has no value for.
fn env_file(vars: &[String], lookup: impl Fn(&str) -> Option<String>) -> (String, Vec<String>) {
    let mut text = String::from("# The environment of the tfctl unit that names this file (EnvironmentFile=): the variables its app file takes from the environment.\n");
    let mut missing = Vec::new();
    for v in vars {
        match lookup(v) {
            Some(value) => {
                let mut quoted = String::new();
                for c in value.chars() {
                    if matches!(c, '"' | '\\' | '`' | '$') {
                        quoted.push('\\');
                    }
                    quoted.push(c);
                }
                text.push_str(&format!("{v}=\"{quoted}\"\n"));
            }
            None => missing.push(v.clone()),
        }
    }
    (text, missing)
}

/// Quotes a word for a systemd command line.
fn quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-=:+,@".contains(&b)) {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('%', "%%").replace('$', "$$"))
    }
}

/// A path for a setting that takes a space-separated list (ReadWritePaths=): `%` is a
/// specifier there, and a path with a space is quoted.
fn path_word(p: &Path) -> String {
    let s = p.to_string_lossy().replace('%', "%%");
    if s.contains([' ', '"', '\\']) {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s
    }
}

/// What tfctl itself needs, whatever the app: mounts, namespaces and the cgroup device program
/// (SYS_ADMIN), links and nftables (NET_ADMIN), the device nodes of a container's /dev (MKNOD),
/// image layers' owners, modes and file capabilities (CHOWN, DAC_*, FOWNER, FSETID, SETFCAP),
/// a container's user, groups and bounding set (SETUID, SETGID, SETPCAP), signals to
/// containers running as other users (KILL), entering a container's namespaces through /proc
/// when it runs as another user (SYS_PTRACE), a container's rlimits (SYS_RESOURCE), published
/// ports below 1024 held open (NET_BIND_SERVICE), pivot_root and Docker's default chroot
/// (SYS_CHROOT).
const TFCTL_CAPS: [&str; 17] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_SETFCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_ADMIN",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_ADMIN",
    "CAP_SYS_RESOURCE",
    "CAP_MKNOD",
];

/// What the app's containers ask of the sandbox.
struct Needs {
    /// tfctl's own capabilities and every container's; `None` when one asks for ALL.
    caps: Option<CapSet>,
    /// The containers' own capabilities (without tfctl's).
    container_caps: CapSet,
    userns: bool,
    /// Host paths bind-mounted writable (or made when missing: then their folder).
    writable: Vec<PathBuf>,
    /// /proc/sys files of the containers' sysctls that are not under net/ (IPC ones).
    sysctl_paths: Vec<PathBuf>,
    /// Host paths tfctl reads or writes for the app.
    paths: Vec<PathBuf>,
    /// `from-file` secrets the unit loads as credentials: id (the file's name) and path.
    credentials: Vec<(String, PathBuf)>,
}

fn needs(unit: &Unit) -> Result<Needs, UnitError> {
    let app = unit.app;
    let mut container_caps = CapSet::EMPTY;
    let mut all = false;
    let mut userns = false;
    let mut writable = BTreeSet::new();
    let mut sysctl_paths = BTreeSet::new();
    let mut paths = vec![app.file.clone(), app.dir.clone(), unit.root.clone(), unit.config.clone(), unit.tfctl.clone()];
    for c in &app.containers {
        let caps = capabilities::resolve(&c.cap_add, &c.cap_drop, true).map_err(|source| UnitError::Caps { container: c.name.clone(), source })?;
        all |= c.cap_add.iter().any(|n| matches!(n.trim().to_ascii_uppercase().as_str(), "ALL" | "CAP_ALL"));
        container_caps.0 |= caps.bounding.0;
        userns |= c.userns == Some(Userns::Auto);
        for m in &c.mounts {
            if let MountSource::Bind(src) = &m.source {
                paths.push(src.clone());
                if m.create && !src.exists() {
                    writable.insert(src.parent().unwrap_or(src).to_path_buf());
                } else if !m.read_only {
                    writable.insert(src.clone());
                }
            }
        }
        for (key, _) in &c.sysctls {
            if !key.starts_with("net.") {
                sysctl_paths.insert(Path::new("/proc/sys").join(key.replace('.', "/")));
            }
        }
    }
    let mut credentials = Vec::new();
    for s in &app.secrets {
        if let SecretSource::FromFile(p) = &s.source {
            paths.push(p.clone());
            if let (true, Some(id)) = (unit.credentials, p.file_name()) {
                credentials.push((id.to_string_lossy().into_owned(), p.clone()));
            }
        }
    }
    let own = TFCTL_CAPS.iter().fold(CapSet::EMPTY, |s, n| CapSet(s.0 | capabilities::parse_cap(n).map_or(0, |c| c.bitmask())));
    Ok(Needs {
        caps: (!all).then_some(CapSet(own.0 | container_caps.0)),
        container_caps,
        userns,
        writable: writable.into_iter().collect(),
        sysctl_paths: sysctl_paths.into_iter().collect(),
        paths,
        credentials,
    })
}

/// The unit's text.
pub(crate) fn render(unit: &Unit) -> Result<String, UnitError> {
    let app = unit.app;
    let needs = needs(unit)?;
    let has = |set: CapSet, name: &str| capabilities::cap_index(name).is_ok_and(|i| set.contains(i));
    let stop_secs: u64 = app.containers.iter().map(|c| c.stop_timeout.as_secs() + 5).max().unwrap_or(15) + 10;
    let tfctl = format!(
        "{} --root {} --config {}",
        quote(&unit.tfctl.to_string_lossy()),
        quote(&unit.root.to_string_lossy()),
        quote(&unit.config.to_string_lossy())
    );
    let file = app.file.to_string_lossy();
    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str(s);
        out.push('\n');
    };
    line(&format!("# Generated by `tfctl systemd {file}`: install it as {UNIT_DIR}/{} (`tfctl systemd --install --now` does,", unit.name));
    line("# and enables and starts it); generate it again when the app file changes what it asks of the host");
    line("# (bind mounts, capabilities, sysctls, userns, variables).");
    line("[Unit]");
    line(&format!("Description=tfctl app {} ({file})", app.name));
    line("Documentation=man:tfctl-systemd(1) man:tfctl-up(1) man:tfctl.kdl(5)");
    line("After=network-online.target");
    line("Wants=network-online.target");
    line("");
    line("[Service]");
    line("# The supervisor runs in the foreground and says READY=1 once every container is ready (as");
    line("# `up --wait` means it: healthy, or running without a health check, one-shots exited 0), STATUS=");
    line("# lines as containers start and stop, STOPPING=1 when it stops the app. It is the unit's main");
    line("# process, and only it may say so (NotifyAccess=main: a container or hook cannot).");
    line("Type=notify");
    line("NotifyAccess=main");
    line(&format!("ExecStart={tfctl} up --quiet {}", quote(&file)));
    line(&format!("ExecStopPost=-{tfctl} down --quiet {}", app.name));
    line("# SIGTERM stops the app as `tfctl down` does; what is left after TimeoutStopSec is killed.");
    line("KillMode=mixed");
    line("KillSignal=SIGTERM");
    line(&format!("TimeoutStopSec={stop_secs}"));
    line("# A first start pulls the images and waits for health checks.");
    line("TimeoutStartSec=10min");
    line("# The supervisor's event loop pings every 30s; one that stops answering is restarted.");
    line("WatchdogSec=1min");
    line("Restart=on-failure");
    line("RestartSec=2s");
    line("# The containers' cgroups go below this unit's own (tfctl moves itself into a `supervisor`");
    line("# leaf there), so stopping the unit stops every process of the app and leaves no cgroup.");
    line("Delegate=yes");
    line("Environment=TFCTL_DELEGATED=1");
    if let Some((path, vars)) = &unit.env {
        line(&format!("# The app file takes {} from the environment: set {} in this file", vars.join(", "), if vars.len() == 1 { "it" } else { "them" }));
        line("# (mode 0600, root's: a from-env secret's value is in it). A secret can stay out of the");
        line("# environment: see CREDENTIALS in tfctl-systemd(1).");
        line(&format!("EnvironmentFile={}", path_word(path)));
    }
    if !needs.credentials.is_empty() {
        line("# The app file reads its from-file secrets from ${CREDENTIALS_DIRECTORY:-DIR}: systemd copies");
        line("# each into the unit's own credentials folder, which only the unit's processes can read.");
    }
    for (id, path) in &needs.credentials {
        line(&format!("LoadCredential={id}:{}", path_word(path)));
    }

    line("");
    line("# Sandbox. What tfctl does for the app stays possible; everything else is closed.");
    line("# Host hooks (`run`) share it: a hook that writes outside the paths below needs ReadWritePaths=");
    line("# in a drop-in (`systemctl edit`).");
    line("NoNewPrivileges=yes");
    line("# The host is read-only but for tfctl's state root, /run/tfctl (user namespace ranges, shared");
    line("# by every app) and the app's writable bind mounts.");
    line("ProtectSystem=strict");
    let mut rw = vec![path_word(&unit.root)];
    rw.extend(needs.writable.iter().map(|p| format!("-{}", path_word(p))));
    line(&format!("ReadWritePaths={}", rw.join(" ")));
    line("RuntimeDirectory=tfctl");
    line("RuntimeDirectoryPreserve=yes");
    line("# Read-only, not hidden: an app file, a bind mount or a secret file may live in a home.");
    line("ProtectHome=read-only");
    let in_tmp = needs.paths.iter().any(|p| p.starts_with("/tmp") || p.starts_with("/var/tmp"));
    if in_tmp {
        line("# No PrivateTmp=: the app uses a path under /tmp or /var/tmp, which it would hide.");
    } else {
        line("PrivateTmp=yes");
    }
    line("# The containers' mounts are made in the unit's own mount namespace and go with it.");
    line("PrivateMounts=yes");
    line("ProtectKernelModules=yes");
    line("ProtectClock=yes");
    line("RestrictRealtime=yes");
    line("LockPersonality=yes");
    line("KeyringMode=private");
    line("ProtectProc=invisible");
    if needs.userns {
        line("# No ProtectKernelTunables=, ProtectKernelLogs= nor RestrictNamespaces=~user: a `userns \"auto\"`");
        line("# container makes a user namespace, and the kernel refuses its own /proc there while the host's");
        line("# /proc has a file mounted over (/proc/sys, /proc/kmsg). `systemd-analyze security` rates the");
        line("# unit 5.5 rather than 4.9 for it; the containers' root is no host root in exchange.");
    } else {
        line("# /proc/sys is read-only but for the network sysctls tfctl sets (ip_forward, a container's");
        line("# net.* in its own namespace) and the app's IPC ones.");
        line("ProtectKernelTunables=yes");
        let mut sys = vec!["/proc/sys/net".to_string()];
        sys.extend(needs.sysctl_paths.iter().map(|p| format!("-{}", path_word(p))));
        line(&format!("ReadWritePaths={}", sys.join(" ")));
        line("ProtectKernelLogs=yes");
        if has(needs.container_caps, "CAP_SYS_ADMIN") {
            line("# No RestrictNamespaces=~user: a container holds CAP_SYS_ADMIN and may make one.");
        } else {
            line("# Only user namespaces are refused: tfctl makes every other kind for its containers. systemd's");
            line("# filter for it answers every clone3() with ENOSYS (clone3 passes its flags out of seccomp's");
            line("# sight): tfctl then makes its containers with clone(), whose flags the filter checks.");
            line("RestrictNamespaces=~user");
        }
    }
    line("# Inherited by the containers (under tfctl's own seccomp filter): nothing they could do with");
    line("# Docker's default profile is refused but 32-bit system calls.");
    line("SystemCallArchitectures=native");
    let mut deny = vec!["@clock", "@cpu-emulation", "@module", "@obsolete", "@raw-io", "@reboot", "@swap"];
    if has(needs.container_caps, "CAP_SYS_PTRACE") {
        line("# @debug stays: a container holds CAP_SYS_PTRACE.");
    } else {
        deny.insert(1, "@debug");
        line("# @debug: no container holds CAP_SYS_PTRACE, so none debugs (strace, gdb) another process.");
    }
    line("# @mount, @privileged and @resources stay: tfctl mounts, changes users and sets rlimits.");
    line(&format!("SystemCallFilter=~{}", deny.join(" ")));
    let mut families = vec!["AF_UNIX", "AF_NETLINK", "AF_INET", "AF_INET6"];
    if has(needs.container_caps, "CAP_NET_RAW") {
        families.push("AF_PACKET");
    }
    line("# tfctl talks netlink (links, nftables) and unix sockets; the containers, IP.");
    line(&format!("RestrictAddressFamilies={}", families.join(" ")));
    match needs.caps {
        Some(caps) => {
            line("# tfctl's own capabilities (see tfctl-systemd(1)) and those of the app's containers.");
            line(&format!("CapabilityBoundingSet={}", caps.names().join(" ")));
        }
        None => line("# No CapabilityBoundingSet=: a container asks for cap-add ALL."),
    }
    line("# The devices every container's /dev has (tfctl makes the nodes: MKNOD stays), nothing else.");
    line("DevicePolicy=closed");
    for rule in tfctl_runtime::cgroup::ALLOWED_DEVICES {
        let kind = if rule.block { "block" } else { "char" };
        match (rule.major, rule.minor) {
            (Some(major), Some(minor)) => line(&format!("DeviceAllow=/dev/{kind}/{major}:{minor} rwm")),
            // The pty slaves: /proc/devices calls their majors `pts`.
            (Some(136), None) => line(&format!("DeviceAllow={kind}-pts rwm")),
            _ => {}
        }
    }
    line("# Left open, as tfctl needs them: PrivateNetwork= (it wires the host's network),");
    line("# PrivateUsers= and User= (it is root: namespaces, mounts, nftables), PrivateDevices= (it makes");
    line("# device nodes), ProtectControlGroups= (it makes the containers' cgroups), ProtectHostname=");
    line("# (containers set their own), MemoryDenyWriteExecute= (inherited: JIT runtimes in containers),");
    line("# RestrictSUIDSGID= (image layers hold set-uid files), IPAddressDeny= (would filter the");
    line("# containers' traffic), UMask= (the containers' files), ProcSubset= (/proc/sys is read).");
    line("");
    line("[Install]");
    line("WantedBy=multi-user.target");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(text: &str) -> App {
        let env = |name: &str| (name == "DB_PASSWORD").then(|| "s3cret".to_string());
        let mut app = tfctl_schema::load_str("web.kdl", text, Path::new("/srv/web"), &env).unwrap();
        app.apply_host_defaults(&Default::default());
        app
    }

    fn text(app: &App, env: Option<(PathBuf, Vec<String>)>) -> String {
        let unit = Unit {
            name: "tfctl-web.service".into(),
            app,
            tfctl: "/usr/local/bin/tfctl".into(),
            root: "/var/lib/tfctl".into(),
            config: "/etc/tfctl/config.kdl".into(),
            env,
            credentials: false,
        };
        render(&unit).unwrap()
    }

    fn setting<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
        text.lines().filter_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('='))).collect()
    }

    const PLAIN: &str = r#"app "web"
container "web" { image "busybox:latest"; }
"#;

    #[test]
    fn a_notify_unit_that_runs_the_installed_tfctl_on_absolute_paths() {
        let t = text(&app(PLAIN), None);
        assert_eq!(setting(&t, "Type"), ["notify"]);
        assert_eq!(setting(&t, "NotifyAccess"), ["main"]);
        assert_eq!(setting(&t, "ExecStart"), ["/usr/local/bin/tfctl --root /var/lib/tfctl --config /etc/tfctl/config.kdl up --quiet /srv/web/web.kdl"]);
        assert_eq!(setting(&t, "Delegate"), ["yes"]);
        assert_eq!(setting(&t, "WatchdogSec"), ["1min"]);
        assert!(setting(&t, "EnvironmentFile").is_empty());
        assert_eq!(setting(&t, "ReadWritePaths"), ["/var/lib/tfctl", "/proc/sys/net"]);
        assert_eq!(setting(&t, "PrivateTmp"), ["yes"]);
        assert_eq!(setting(&t, "RestrictNamespaces"), ["~user"]);
        assert_eq!(setting(&t, "SystemCallFilter"), ["~@clock @debug @cpu-emulation @module @obsolete @raw-io @reboot @swap"]);
        let caps = setting(&t, "CapabilityBoundingSet")[0];
        for cap in ["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_MKNOD", "CAP_SYS_CHROOT"] {
            assert!(caps.split(' ').any(|c| c == cap), "{cap} missing from {caps}");
        }
        for cap in ["CAP_NET_RAW", "CAP_SYS_MODULE", "CAP_SYS_TIME", "CAP_AUDIT_WRITE", "CAP_BPF"] {
            assert!(!caps.split(' ').any(|c| c == cap), "{cap} in {caps}");
        }
        assert!(setting(&t, "DeviceAllow").contains(&"/dev/char/1:3 rwm"));
        assert!(setting(&t, "DeviceAllow").contains(&"char-pts rwm"));
    }

    #[test]
    fn what_the_app_asks_for_stays_open() {
        let a = app(r#"app "web"
container "web" {
    image "busybox:latest"
    cap-add "NET_RAW" "SYS_PTRACE"
    mount "/usr/share" at="/data"
    mount "/etc" at="/conf" read-only=#true
    sysctl "kernel.shmmax" "65536"
    userns "auto"
}
"#);
        let t = text(&a, None);
        let caps = setting(&t, "CapabilityBoundingSet")[0];
        assert!(caps.split(' ').any(|c| c == "CAP_NET_RAW"), "{caps}");
        assert!(setting(&t, "RestrictAddressFamilies")[0].contains("AF_PACKET"));
        assert!(!setting(&t, "SystemCallFilter")[0].contains("@debug"));
        assert_eq!(setting(&t, "ReadWritePaths"), ["/var/lib/tfctl -/usr/share"]);
        // A user namespace's /proc needs the host's /proc without files mounted over.
        assert!(setting(&t, "ProtectKernelTunables").is_empty());
        assert!(setting(&t, "ProtectKernelLogs").is_empty());
        assert!(setting(&t, "RestrictNamespaces").is_empty());
    }

    #[test]
    fn ipc_sysctls_stay_writable_and_tmp_paths_keep_the_hosts_tmp() {
        let a = app(r#"app "web"
container "web" {
    image "busybox:latest"
    mount "/tmp" at="/shared"
    sysctl "kernel.shmmax" "65536"
    sysctl "net.core.somaxconn" "1024"
}
"#);
        let t = text(&a, None);
        assert_eq!(setting(&t, "ReadWritePaths"), ["/var/lib/tfctl -/tmp", "/proc/sys/net -/proc/sys/kernel/shmmax"]);
        assert!(setting(&t, "PrivateTmp").is_empty());
    }

    #[test]
    fn the_environment_file_carries_the_variables_and_from_env_secrets() {
        let t = text(&app(PLAIN), Some(("/etc/tfctl/tfctl-web.env".into(), vec!["DB_PASSWORD".into(), "PORT".into()])));
        assert_eq!(setting(&t, "EnvironmentFile"), ["/etc/tfctl/tfctl-web.env"]);
        assert!(t.contains("takes DB_PASSWORD, PORT from the environment"));
        let (file, missing) = env_file(&["A".into(), "B".into(), "C".into()], |v| match v {
            "A" => Some("plain".into()),
            "B" => Some("q\"uo$te\\d`".into()),
            _ => None,
        });
        assert!(file.contains("\nA=\"plain\"\n"));
        assert!(file.contains("\nB=\"q\\\"uo\\$te\\\\d\\`\"\n"));
        assert_eq!(missing, ["C"]);
    }

    #[test]
    fn from_file_secrets_read_through_the_credentials_directory_become_credentials() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), "s3cret").unwrap();
        let a = app(&format!(
            "app \"web\"\nsecret \"db\" from-file=\"${{CREDENTIALS_DIRECTORY:-{}}}/db\"\ncontainer \"web\" {{ image \"busybox:latest\"; }}\n",
            dir.path().display()
        ));
        let mut unit = Unit { name: "tfctl-web.service".into(), app: &a, tfctl: "/usr/local/bin/tfctl".into(), root: "/var/lib/tfctl".into(), config: "/etc/tfctl/config.kdl".into(), env: None, credentials: true };
        assert_eq!(setting(&render(&unit).unwrap(), "LoadCredential"), [format!("db:{}/db", dir.path().display())]);
        unit.credentials = false;
        assert!(setting(&render(&unit).unwrap(), "LoadCredential").is_empty());
    }

    #[test]
    fn unit_names() {
        assert_eq!(unit_name(None, "web").unwrap(), "tfctl-web.service");
        assert_eq!(unit_name(Some("shop"), "web").unwrap(), "shop.service");
        assert_eq!(unit_name(Some("shop.service"), "web").unwrap(), "shop.service");
        for bad in ["a/b", "", ".service", "x y", "../x"] {
            assert!(unit_name(Some(bad), "web").is_err(), "{bad}");
        }
    }

    #[test]
    fn a_binary_in_a_cargo_target_folder_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("target/release")).unwrap();
        std::fs::write(dir.path().join("target/CACHEDIR.TAG"), "Signature: 8a477f597d28d172789f06886806bc55\n").unwrap();
        assert!(in_cargo_target(&dir.path().join("target/release/tfctl")));
        assert!(!in_cargo_target(Path::new("/usr/local/bin/tfctl")));
    }
}
