//! Compiling a container to an OCI runtime [`Spec`]: the image config (Entrypoint, Cmd, Env,
//! WorkingDir, User) merged with the app file's settings as Docker merges them, plus everything
//! the start sequence needs as plain precomputed data ([`CompiledContainer`]).
//!
//! The spec never holds a secret value: secrets given as environment variables are added by
//! the spawner from `secrets::secret_env` when it builds the process's environment.

pub mod user;

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::str::FromStr;

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{
    Capabilities, Capability as OciCapability, LinuxBuilder, LinuxCapabilitiesBuilder,
    LinuxCpuBuilder, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount,
    MountBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder,
    Spec, SpecBuilder, UserBuilder,
};
use tfctl_schema::model::{Container, MountSource};

use crate::capabilities::{self, CapSet, ProcessCaps};
use crate::cgroup::{CgroupLimits, DeviceRule, ALLOWED_DEVICES, CPU_PERIOD_US};
use crate::seccomp::{self, SeccompPolicy};
pub use user::{add_groups, resolve_user, ResolvedUser};

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("container `{0}` has nothing to run: the image has no Entrypoint or Cmd and the app file gives no `command`")]
    NoCommand(String),
    #[error("group `{0}` is not in the image's /etc/group: use a number, or a group the image defines")]
    UnknownGroup(String),
    #[error("user `{user}` is not in the image's {file}: use a numeric UID[:GID] or a name the image defines")]
    UnknownUser { user: String, file: &'static str },
    #[error("image file {path}: {message}")]
    ImageFile { path: String, message: String },
    #[error(transparent)]
    Caps(#[from] capabilities::CapError),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error("{what} {id} is not a usable id: the kernel reads 4294967295 (-1) as \"leave unchanged\", so the process would keep running as root; use another {what}")]
    ReservedId { what: &'static str, id: u32 },
    #[error("ulimit `{0}` is not a resource limit (nofile, nproc, core, memlock, stack, ...)")]
    UnknownUlimit(String),
    #[error("ulimit `{name}`: soft limit {soft} is above the hard limit {hard}")]
    UlimitOrder { name: String, soft: u64, hard: u64 },
    #[error("ulimit `{name}`: hard limit {asked} is above this host's current hard limit {max}; raising it needs CAP_SYS_RESOURCE, which this host denies: ask for at most {max}")]
    UlimitAboveHost { name: String, asked: u64, max: u64 },
    #[error("device {path}: {reason}; give a character or block device that exists on this host, or remove the `device` line")]
    Device { path: String, reason: String },
    #[error("device {0}: tfctl makes this path of the container's /dev itself; give another device")]
    DeviceReserved(String),
    #[error("building the OCI spec: {0}")]
    Oci(String),
}

/// The names tfctl makes in every container's /dev: a `device` cannot take one.
const OWN_DEV_NAMES: [&str; 14] =
    ["null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx", "fd", "stdin", "stdout", "stderr"];

/// `device "/dev/X"`: the host node's type, numbers and mode, read now (a missing one is an
/// error at start), as the spec's device and the cgroup rule that allows it.
fn host_device(path: &str) -> Result<(LinuxDevice, DeviceRule), SpecError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let first = path.trim_start_matches("/dev/").split('/').next().unwrap_or_default();
    if OWN_DEV_NAMES.contains(&first) {
        return Err(SpecError::DeviceReserved(path.to_string()));
    }
    let bad = |reason: String| SpecError::Device { path: path.to_string(), reason };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    let block = meta.file_type().is_block_device();
    if !block && !meta.file_type().is_char_device() {
        return Err(bad("not a device node on the host".into()));
    }
    let (major, minor) = (rustix::fs::major(meta.rdev()), rustix::fs::minor(meta.rdev()));
    let device = LinuxDeviceBuilder::default()
        .path(path)
        .typ(if block { LinuxDeviceType::B } else { LinuxDeviceType::C })
        .major(i64::from(major))
        .minor(i64::from(minor))
        .file_mode(meta.mode() & 0o777)
        .uid(meta.uid())
        .gid(meta.gid())
        .build()?;
    Ok((device, DeviceRule { block, major: Some(major), minor: Some(minor) }))
}

impl From<oci_spec::OciSpecError> for SpecError {
    fn from(e: oci_spec::OciSpecError) -> Self {
        SpecError::Oci(e.to_string())
    }
}

/// Where a container's surroundings are.
pub struct SpecContext<'a> {
    pub app: &'a str,
    /// Named volume `NAME` lives in `<volumes_dir>/NAME` (`<root>/volumes/<app>`).
    pub volumes_dir: &'a Path,
    /// The container's root filesystem (any folder showing the image's /etc/passwd), for users.
    pub rootfs: BorrowedFd<'a>,
    /// The folder showing the image's /etc/group (a layer above `rootfs`'s may have changed it).
    pub group_rootfs: BorrowedFd<'a>,
}

/// One resource limit, as `setrlimit` takes it (the spawner's plan type).
pub use crate::spawn::plan::Rlimit;
/// Moby's masked and read-only paths (shared with the spawner's plan).
pub use crate::spawn::plan::{MASKED_PATHS, READONLY_PATHS};

/// A container compiled: the OCI spec and the precomputed data the spawner applies.
#[derive(Debug)]
pub struct CompiledContainer {
    pub spec: Spec,
    pub user: ResolvedUser,
    pub caps: ProcessCaps,
    pub seccomp: SeccompPolicy,
    pub cgroup: CgroupLimits,
    pub rlimits: Vec<Rlimit>,
    /// tfctl's minimal PID 1 runs the process as its child.
    pub init: bool,
}

/// Docker's default PATH when neither the image nor the app file sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's command merge: an app-file entrypoint replaces the image's and drops the image's
/// Cmd; an app-file command replaces the Cmd.
pub fn merge_args(c: &Container, image: &ImageConfiguration) -> Result<Vec<String>, SpecError> {
    let cfg = image.config().as_ref();
    let image_entry = cfg.and_then(|c| c.entrypoint().clone()).unwrap_or_default();
    let image_cmd = cfg.and_then(|c| c.cmd().clone()).unwrap_or_default();
    let entry = c.entrypoint.clone().unwrap_or(image_entry);
    let cmd = match (&c.command, &c.entrypoint) {
        (Some(cmd), _) => cmd.clone(),
        (None, Some(_)) => Vec::new(),
        (None, None) => image_cmd,
    };
    let args: Vec<String> = entry.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(SpecError::NoCommand(c.name.clone()));
    }
    Ok(args)
}

/// The environment: the image's, then the app file's (a later key wins, in place), then
/// PATH, HOSTNAME and HOME when missing, as Docker adds them.
/// Linear in the number of entries: an image's config is untrusted, and may hold a great many.
pub fn merge_env(c: &Container, image: &ImageConfiguration, home: &str) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut set = |k: &str, v: &str, replace: bool| match at.get(k) {
        Some(&i) if replace => env[i].1 = v.to_string(),
        Some(_) => {}
        None => {
            at.insert(k.to_string(), env.len());
            env.push((k.to_string(), v.to_string()));
        }
    };
    let image_env = image
        .config()
        .as_ref()
        .and_then(|c| c.env().clone())
        .unwrap_or_default();
    for kv in &image_env {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        set(k, v, true);
    }
    for (k, v) in &c.env {
        set(k, v, true);
    }
    for (k, v) in [
        ("PATH", DEFAULT_PATH),
        ("HOSTNAME", c.hostname.as_str()),
        ("HOME", home),
    ] {
        set(k, v, false);
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// `RLIMIT_NOFILE` (or `nofile`) -> `libc::RLIMIT_NOFILE` (an OCI config's rlimit type).
pub fn rlimit_resource(name: &str) -> Option<u32> {
    rlimit_kind(name).map(|(r, _)| r as u32)
}

/// `nofile` -> (`RLIMIT_NOFILE`, the OCI type).
fn rlimit_kind(name: &str) -> Option<(u32, PosixRlimitType)> {
    use PosixRlimitType as T;
    Some(
        match name.to_ascii_lowercase().trim_start_matches("rlimit_") {
            "cpu" => (libc::RLIMIT_CPU, T::RlimitCpu),
            "fsize" => (libc::RLIMIT_FSIZE, T::RlimitFsize),
            "data" => (libc::RLIMIT_DATA, T::RlimitData),
            "stack" => (libc::RLIMIT_STACK, T::RlimitStack),
            "core" => (libc::RLIMIT_CORE, T::RlimitCore),
            "rss" => (libc::RLIMIT_RSS, T::RlimitRss),
            "nproc" => (libc::RLIMIT_NPROC, T::RlimitNproc),
            "nofile" => (libc::RLIMIT_NOFILE, T::RlimitNofile),
            "memlock" => (libc::RLIMIT_MEMLOCK, T::RlimitMemlock),
            "as" => (libc::RLIMIT_AS, T::RlimitAs),
            "locks" => (libc::RLIMIT_LOCKS, T::RlimitLocks),
            "sigpending" => (libc::RLIMIT_SIGPENDING, T::RlimitSigpending),
            "msgqueue" => (libc::RLIMIT_MSGQUEUE, T::RlimitMsgqueue),
            "nice" => (libc::RLIMIT_NICE, T::RlimitNice),
            "rtprio" => (libc::RLIMIT_RTPRIO, T::RlimitRtprio),
            "rttime" => (libc::RLIMIT_RTTIME, T::RlimitRttime),
            _ => return None,
        },
    )
}

/// The app file's ulimits, checked against this host's hard limits (tfctl cannot raise them).
pub fn rlimits(c: &Container) -> Result<(Vec<Rlimit>, Vec<PosixRlimit>), SpecError> {
    let mut raw = Vec::new();
    let mut oci = Vec::new();
    for u in &c.ulimits {
        let (resource, typ) =
            rlimit_kind(&u.name).ok_or_else(|| SpecError::UnknownUlimit(u.name.clone()))?;
        if u.soft > u.hard {
            return Err(SpecError::UlimitOrder {
                name: u.name.clone(),
                soft: u.soft,
                hard: u.hard,
            });
        }
        if let Ok((_, max)) = crate::sys::getrlimit(resource as u32) {
            if u.hard > max {
                return Err(SpecError::UlimitAboveHost { name: u.name.clone(), asked: u.hard, max });
            }
        }
        raw.push(Rlimit {
            resource,
            soft: u.soft,
            hard: u.hard,
        });
        oci.push(
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(u.soft)
                .hard(u.hard)
                .build()?,
        );
    }
    Ok((raw, oci))
}

fn oci_caps(set: CapSet) -> Capabilities {
    set.names()
        .iter()
        .filter_map(|n| OciCapability::from_str(n.trim_start_matches("CAP_")).ok())
        .collect()
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()?)
}

/// The kernel filesystems every container gets, then volumes and binds (`nodev`) and tmpfs
/// mounts (`nosuid,nodev`). Secrets are not here: they are detached mounts (`secrets`).
pub fn mounts(c: &Container, volumes_dir: &Path) -> Result<Vec<Mount>, SpecError> {
    let shm_size = format!("size={}", c.shm_size);
    let mut m = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            // Docker's --privileged: /sys writable.
            if c.privileged { &["nosuid", "noexec", "nodev", "rw"] } else { &["nosuid", "noexec", "nodev", "ro"] },
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
    ];
    for v in &c.mounts {
        let source = match &v.source {
            MountSource::Volume(name) => volumes_dir.join(name),
            MountSource::Bind(path) => path.clone(),
        };
        let mut opts = vec!["rbind", "nodev", "rprivate"];
        opts.push(if v.read_only { "ro" } else { "rw" });
        m.push(mount(&v.target, "bind", &source.to_string_lossy(), &opts)?);
    }
    for t in &c.tmpfs {
        let size = t.size.map(|s| format!("size={s}"));
        let mut opts = vec!["nosuid", "nodev", "mode=1777"];
        if let Some(s) = &size {
            opts.push(s);
        }
        m.push(mount(&t.path, "tmpfs", "tmpfs", &opts)?);
    }
    Ok(m)
}

/// Compiles `c` with its image's config.
pub fn compile(
    c: &Container,
    image: &ImageConfiguration,
    ctx: &SpecContext<'_>,
) -> Result<CompiledContainer, SpecError> {
    let cfg = image.config().as_ref();
    let args = merge_args(c, image)?;
    let user_spec = c
        .user
        .clone()
        .or_else(|| cfg.and_then(|c| c.user().clone()).filter(|u| !u.is_empty()));
    let mut user = resolve_user(user_spec.as_deref(), ctx.rootfs, ctx.group_rootfs)?;
    add_groups(&mut user, &c.group_add, ctx.group_rootfs)?;
    // --privileged: every capability tfctl holds, whatever --cap-add and --cap-drop say (as
    // Docker ignores them there), and no seccomp filter.
    let caps = if c.privileged {
        capabilities::resolve(&["ALL".to_string()], &[], user.uid == 0)?
    } else {
        capabilities::resolve(&c.cap_add, &c.cap_drop, user.uid == 0)?
    };
    let env = merge_env(c, image, &user.home);
    let cwd = c
        .workdir
        .clone()
        .or_else(|| {
            cfg.and_then(|c| c.working_dir().clone())
                .filter(|w| !w.is_empty())
        })
        .unwrap_or_else(|| "/".to_string());
    let (raw_rlimits, oci_rlimits) = rlimits(c)?;
    let mut cgroup = CgroupLimits::from_model(&c.limits);
    let mut host_devices = Vec::new();
    for d in &c.devices {
        let (device, rule) = host_device(d)?;
        host_devices.push(device);
        cgroup.devices.push(rule);
    }
    let policy = SeccompPolicy::from_model(if c.privileged { &tfctl_schema::model::Seccomp::Unconfined } else { &c.seccomp })?;
    // --privileged: nothing of /proc or /sys hidden or made read-only.
    let (masked, readonly): (&[&str], &[&str]) = if c.privileged { (&[], &[]) } else { (MASKED_PATHS, READONLY_PATHS) };

    let oci_caps = LinuxCapabilitiesBuilder::default()
        .bounding(oci_caps(caps.bounding))
        .permitted(oci_caps(caps.permitted))
        .effective(oci_caps(caps.effective))
        .inheritable(oci_caps(caps.inheritable))
        .ambient(oci_caps(caps.ambient))
        .build()?;
    let mut user_b = UserBuilder::default().uid(user.uid).gid(user.gid);
    if !user.additional_gids.is_empty() {
        user_b = user_b.additional_gids(user.additional_gids.clone());
    }
    if let Some(n) = &user.name {
        user_b = user_b.username(n.clone());
    }
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(user_b.build()?)
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(oci_caps)
        .rlimits(oci_rlimits)
        .no_new_privileges(true)
        .build()?;

    let mut namespaces = vec![LinuxNamespaceType::Ipc, LinuxNamespaceType::Uts, LinuxNamespaceType::Mount];
    // `pid "host"` and `network "host"` give up those namespaces: the container sees the host's
    // processes, or uses the host's network stack itself (its netns is the supervisor's).
    if !c.host_pid {
        namespaces.insert(0, LinuxNamespaceType::Pid);
    }
    if c.network != tfctl_schema::model::NetworkMode::Host {
        namespaces.insert(usize::from(!c.host_pid), LinuxNamespaceType::Network);
    }
    if Path::new("/proc/self/ns/cgroup").exists() {
        namespaces.push(LinuxNamespaceType::Cgroup);
    }
    let namespaces = namespaces
        .into_iter()
        .map(|t| LinuxNamespaceBuilder::default().typ(t).build())
        .collect::<Result<Vec<_>, _>>()?;

    let mut devices = vec![LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()?];
    for d in ALLOWED_DEVICES.iter().chain(&cgroup.devices) {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(if d.block {
                LinuxDeviceType::B
            } else {
                LinuxDeviceType::C
            })
            .access("rwm");
        if let Some(m) = d.major {
            b = b.major(i64::from(m));
        }
        if let Some(m) = d.minor {
            b = b.minor(i64::from(m));
        }
        devices.push(b.build()?);
    }
    let mut resources = LinuxResourcesBuilder::default().devices(devices).pids(
        LinuxPidsBuilder::default()
            .limit(cgroup.pids as i64)
            .build()?,
    );
    if let Some(m) = cgroup.memory {
        resources = resources.memory(
            LinuxMemoryBuilder::default()
                .limit(m as i64)
                .swap(m as i64)
                .build()?,
        );
    }
    if let Some(q) = cgroup.cpu_quota_us() {
        resources = resources.cpu(
            LinuxCpuBuilder::default()
                .quota(q as i64)
                .period(CPU_PERIOD_US)
                .build()?,
        );
    }

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(
            masked
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            readonly
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .sysctl(c.sysctls.iter().cloned().collect::<HashMap<_, _>>())
        .rootfs_propagation("rprivate")
        .resources(resources.build()?);
    if !host_devices.is_empty() {
        linux = linux.devices(host_devices);
    }
    if let Some(seccomp) = oci_seccomp(&policy, caps.bounding)? {
        linux = linux.seccomp(seccomp);
    }

    if !c.sysctls.is_empty() {
        linux = linux.sysctl(c.sysctls.iter().cloned().collect::<HashMap<_, _>>());
    }

    let spec = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(c.read_only)
                .build()?,
        )
        .hostname(c.hostname.clone())
        .mounts(mounts(c, ctx.volumes_dir)?)
        .process(process)
        .linux(linux.build()?)
        .annotations(HashMap::from([
            ("io.tfctl.app".to_string(), ctx.app.to_string()),
            ("io.tfctl.container".to_string(), c.name.clone()),
        ]))
        .build()?;
    Ok(CompiledContainer {
        spec,
        user,
        caps,
        seccomp: policy,
        cgroup,
        rlimits: raw_rlimits,
        init: c.init,
    })
}

/// The container's seccomp rules in OCI form (what an OCI runtime given this spec would apply).
fn oci_seccomp(
    policy: &SeccompPolicy,
    caps: CapSet,
) -> Result<Option<oci_spec::runtime::LinuxSeccomp>, SpecError> {
    let Some(resolved) = seccomp::resolved(policy, caps)? else {
        return Ok(None);
    };
    Ok(Some(seccomp::oci::to_oci(&resolved)?))
}

#[cfg(test)]
mod tests;
