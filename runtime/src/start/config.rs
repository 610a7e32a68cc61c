//! `ChildConfig`: a [`StartPlan`] compiled by the spawner into C strings, flags and descriptor
//! numbers, so the cloned child only reads memory and makes syscalls (it never allocates).

use crate::capabilities::{self, CapSet, ProcessCaps};
use crate::userns::IdMap;
use crate::spawn::plan::{CapSets, DevNode, FileInit, Mode, MountFlags, MountStep, OverlayUpper, RootfsSource, StartPlan};
use crate::sys::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::spec::DEFAULT_PATH;

/// Why a plan cannot be compiled (found in the spawner, before any clone).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("{what} contains a NUL byte: {value:?}")]
    Nul { what: &'static str, value: String },
    #[error("the process has no argv[0]: give a command or an image Entrypoint/Cmd")]
    NoCommand,
    #[error("{what} must be an absolute container path, got {value:?}")]
    NotAbsolute { what: &'static str, value: String },
    #[error(
        "rlimit {resource} asks for a hard limit of {requested}, above the current hard limit {current}: \
         raising a hard limit needs CAP_SYS_RESOURCE, which this host denies; lower the limit to at most {current}"
    )]
    RlimitAboveHard { resource: String, requested: u64, current: u64 },
    #[error("rlimit {resource}: soft limit {soft} is above hard limit {hard}")]
    RlimitSoftAboveHard { resource: String, soft: u64, hard: u64 },
    #[error("the plan needs descriptor {0}, which was not sent with it")]
    MissingFd(&'static str),
    #[error("an overlay rootfs needs at least one layer")]
    NoLayers,
    #[error("the image has {layers} layers, more than the {max} overlayfs stacks: flatten the image (e.g. rebuild it with fewer layers)", max = MAX_LAYERS)]
    TooManyLayers { layers: usize },
    #[error(
        "the overlay options for {layers} layers take {bytes} bytes, more than the one page ({page} bytes) mount(2) accepts \
         on this kernel (before Linux 6.8): flatten the image, or run on Linux 6.8 or later"
    )]
    OverlayOptionsTooLong { layers: usize, bytes: usize, page: usize },
    #[error("cannot read where tfctl's command line lies in memory (/proc/self/stat): the init would show it to the container")]
    ProcStrings,
    #[error("{0}: a tmpfs with size 0 would be unlimited; give it a size")]
    UnlimitedTmpfs(String),
    #[error("sysctl `{0}` is not a key of the form a.b.c")]
    Sysctl(String),
    #[error("cannot inspect bind source {path}: {source}")]
    BindSource { path: String, source: std::io::Error },
}

fn cstr(what: &'static str, s: impl AsRef<[u8]>) -> Result<CString, PrepareError> {
    CString::new(s.as_ref()).map_err(|_| PrepareError::Nul { what, value: String::from_utf8_lossy(s.as_ref()).into_owned() })
}

fn cpath(what: &'static str, p: &Path) -> Result<CString, PrepareError> {
    cstr(what, p.as_os_str().as_bytes())
}

/// A sysctl's file under /proc/sys (`net.ipv4.ip_forward` is net/ipv4/ip_forward) and value.
/// The key's parts are plain names (the app file checks it): no `/`, no `..`.
fn sysctl(key: &str, value: &str) -> Result<(CString, Vec<u8>), PrepareError> {
    let plain = !key.is_empty() && key.split('.').all(|p| !p.is_empty() && !p.contains('/'));
    if !plain {
        return Err(PrepareError::Sysctl(key.to_string()));
    }
    Ok((cstr("sysctl key", format!("/proc/sys/{}", key.replace('.', "/")))?, value.as_bytes().to_vec()))
}

fn container_path(what: &'static str, p: &str) -> Result<CString, PrepareError> {
    if !p.starts_with('/') {
        return Err(PrepareError::NotAbsolute { what, value: p.into() });
    }
    cstr(what, p)
}

/// The descriptors the spawner received with a request, as numbers valid in the child.
#[derive(Debug, Default, Clone)]
pub(crate) struct ChildFds {
    pub stdio: [Option<RawFd>; 3],
    pub cgroup_procs: Vec<RawFd>,
    pub netns: Option<RawFd>,
    pub target: Option<RawFd>,
    pub secret_mounts: Vec<RawFd>,
    /// A FIFO to read one byte from before execve (see `StartFds::start_gate`).
    pub start_gate: Option<RawFd>,
    /// `userns`, for a new container: the user namespace the spawner made for it.
    pub userns: Option<RawFd>,
}

pub(crate) enum RootKind {
    /// tmpfs at `mountpoint` holding `upper`, `work` and the overlay's own mountpoint `root`.
    OverlayOnTmpfs { tmpfs_size: CString, overlay: OverlayConfig },
    OverlayOnDirs { overlay: OverlayConfig },
    Directory { source: CString },
}

/// overlayfs's own limit on lower layers (OVL_MAX_STACK).
pub(crate) const MAX_LAYERS: usize = 500;

/// An overlay, given to the kernel by short relative names: each is a symlink to a host
/// directory, made in a small private tmpfs the child works in while it mounts. The kernel keeps
/// and shows (mountinfo) the names it was given, so the container sees `lowerdir+=0,...,upperdir=u`
/// and no host path, and even [`MAX_LAYERS`] layers fit mount(2)'s one page of options.
pub(crate) struct OverlayConfig {
    /// (name, host directory): the layers top first as "0", "1", ..., then "u" and "w" (none
    /// for a read-only overlay).
    pub links: Vec<(CString, CString)>,
    /// How many of `links` are lower layers.
    pub layers: usize,
    pub volatile: bool,
    /// mount(2)'s options, `lowerdir=0:1:...,upperdir=u,workdir=w[,volatile]`, for kernels
    /// without fsconfig `lowerdir+` (before 6.8); `None`: the new mount API.
    pub legacy_data: Option<CString>,
    /// Where the overlay is attached (a host path in the child's private mount namespace).
    pub target: CString,
    /// Under `userns`: each of `links` is not a symlink but an idmapped clone of its folder (the
    /// upper and work folders as one clone of their parent, "uw", reached through `aliases`).
    pub idmap: bool,
    /// (name, target) symlinks made after the clones: "u" -> "uw/upper", "w" -> "uw/work".
    pub aliases: Vec<(CString, CString)>,
}

pub(crate) struct RootConfig {
    pub mountpoint: CString,
    pub kind: RootKind,
}

pub(crate) struct FileConfig {
    pub path: CString,
    pub data: Vec<u8>,
    pub mode: libc::mode_t,
    pub uid: u32,
    pub gid: u32,
}

/// A `device` node: the directories under /dev to make first, its path, mode (type included)
/// and number.
pub(crate) struct DevNodeConfig {
    pub parents: Vec<CString>,
    pub path: CString,
    pub mode: libc::mode_t,
    pub dev: libc::dev_t,
}

pub(crate) enum MountKind {
    Proc,
    Dev { nodes: Vec<DevNodeConfig> },
    DevPts,
    Mqueue,
    Sysfs { writable: bool },
    Cgroup2,
    Tmpfs { size: CString, mode: CString, attrs: u64, files: Vec<FileConfig> },
    Bind { source: CString, recursive: bool, attrs: u64, source_is_dir: bool, idmap: bool },
}

pub(crate) struct MountConfig {
    pub target: CString,
    pub kind: MountKind,
}

pub(crate) struct ContainerConfig {
    pub root: RootConfig,
    pub mounts: Vec<MountConfig>,
    pub files: Vec<FileConfig>,
    pub masked: Vec<CString>,
    pub readonly: Vec<CString>,
    pub readonly_rootfs: bool,
    pub hostname: Option<Vec<u8>>,
    /// Where each of `ChildFds::secret_mounts` goes.
    pub secret_targets: Vec<CString>,
    /// Under `userns`: `uid=`/`gid=` of the tmpfs mounts (/dev, /dev/shm, tmpfs), the container's
    /// root as the host sees it, so its root owns them; and devpts's `gid=` (tty, 5, mapped).
    pub tmpfs_owner: Option<(CString, CString)>,
    pub devpts_gid: CString,
    /// (/proc/sys/... path, value) of each sysctl, written by the child in its namespaces.
    pub sysctls: Vec<(CString, Vec<u8>)>,
}

pub(crate) struct ChildConfig {
    /// The child's end of the sync socket, and the spawner's end (closed first in the child).
    pub sync_fd: RawFd,
    pub parent_sync_fd: RawFd,
    pub fds: ChildFds,
    /// `None` for [`Mode::Join`].
    pub container: Option<ContainerConfig>,
    pub rlimits: Vec<(u32, u64, u64)>,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
    pub cwd: CString,
    pub caps: ProcessCaps,
    pub last_cap: u8,
    pub no_new_privs: bool,
    pub seccomp: Vec<seccompiler::BpfProgram>,
    /// Every path execve tries, in order (argv[0] joined to each PATH entry, or argv[0] itself).
    pub exec_candidates: Vec<CString>,
    pub init: bool,
    /// No parent-death signal: the process outlives the spawner (see `StartPlan::detached`).
    pub detached: bool,
    /// Under `init`: the spawner's strings the init rewrites (see [`super::init::rename`]).
    pub init_strings: Option<super::init::ProcStrings>,
    pub controlling_tty: bool,
    pub pty: bool,
    /// The pty's owner as the host sees it (the user's ids, mapped under `userns`): it is made
    /// before the process joins its user namespace.
    pub pty_owner: (libc::uid_t, libc::gid_t),
    /// `userns`: join the user namespace (the container's own, or the target's) last.
    pub userns: bool,
    /// `userns`: the container's root as the host sees it, the file system ids the container's
    /// files are made with (see crate::start).
    pub userns_root: Option<(libc::uid_t, libc::gid_t)>,
    // argv/envp own the strings the pointer arrays point into; they must stay alive.
    _argv: Vec<CString>,
    _env: Vec<CString>,
    pub argv_ptrs: Vec<*const libc::c_char>,
    pub env_ptrs: Vec<*const libc::c_char>,
}

fn attrs(flags: MountFlags) -> u64 {
    let mut a = 0;
    if flags.readonly {
        a |= MOUNT_ATTR_RDONLY;
    }
    if flags.nosuid {
        a |= MOUNT_ATTR_NOSUID;
    }
    if flags.nodev {
        a |= MOUNT_ATTR_NODEV;
    }
    if flags.noexec {
        a |= MOUNT_ATTR_NOEXEC;
    }
    a
}

/// A file to write, owned by its ids as the host sees them (`map`: the container's user
/// namespace).
fn file(f: &FileInit, map: Option<IdMap>) -> Result<FileConfig, PrepareError> {
    let host = |id: u32| map.map_or(id, |m| m.host(id));
    Ok(FileConfig { path: cstr("file path", &f.path)?, data: f.data.clone(), mode: f.mode as libc::mode_t, uid: host(f.uid), gid: host(f.gid) })
}

/// The name of an RLIMIT_* number for messages.
pub fn rlimit_name(resource: u32) -> String {
    const NAMES: [&str; 16] = [
        "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE",
        "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
    ];
    NAMES.get(resource as usize).map_or_else(|| format!("resource {resource}"), |n| n.to_string())
}

fn process_caps(c: CapSets) -> ProcessCaps {
    ProcessCaps {
        bounding: CapSet(c.bounding),
        permitted: CapSet(c.permitted),
        effective: CapSet(c.effective),
        inheritable: CapSet(c.inheritable),
        ambient: CapSet(c.ambient),
    }
}

impl ChildConfig {
    pub(crate) fn prepare(plan: &StartPlan, fds: ChildFds, sync_fd: RawFd, parent_sync_fd: RawFd) -> Result<ChildConfig, PrepareError> {
        // Probed here, in the spawner: the cloned child only reads the answer.
        crate::sys::mount_setattr_supported();
        let container = match &plan.mode {
            Mode::Container(setup) => Some(ContainerConfig {
                root: prepare_root(&setup.rootfs.source, &setup.rootfs.mountpoint, plan.userns.is_some())?,
                mounts: setup
                    .mounts
                    .iter()
                    .map(|m| prepare_mount(m, plan.userns, &setup.idmapped_binds_below))
                    .collect::<Result<_, _>>()?,
                files: setup.files.iter().map(|f| file(f, plan.userns)).collect::<Result<_, _>>()?,
                tmpfs_owner: match plan.userns {
                    Some(m) => Some((cstr("tmpfs uid", m.host(0).to_string())?, cstr("tmpfs gid", m.host(0).to_string())?)),
                    None => None,
                },
                devpts_gid: cstr("devpts gid", plan.userns.map_or(TTY_GID, |m| m.host(TTY_GID)).to_string())?,
                masked: setup.masked_paths.iter().map(|p| container_path("masked path", p)).collect::<Result<_, _>>()?,
                readonly: setup.readonly_paths.iter().map(|p| container_path("read-only path", p)).collect::<Result<_, _>>()?,
                readonly_rootfs: setup.readonly_rootfs,
                hostname: setup.hostname.as_ref().map(|h| h.as_bytes().to_vec()),
                sysctls: setup.sysctls.iter().map(|(k, v)| sysctl(k, v)).collect::<Result<_, _>>()?,
                secret_targets: {
                    if setup.secret_targets.len() != fds.secret_mounts.len() {
                        return Err(PrepareError::MissingFd("a secret mount for each secret target"));
                    }
                    setup.secret_targets.iter().map(|p| container_path("secret path", p)).collect::<Result<_, _>>()?
                },
            }),
            Mode::Join => {
                if fds.target.is_none() {
                    return Err(PrepareError::MissingFd("target (a pidfd of the container to join)"));
                }
                None
            }
        };
        let mut rlimits = Vec::new();
        for r in &plan.rlimits {
            if r.soft > r.hard {
                return Err(PrepareError::RlimitSoftAboveHard { resource: rlimit_name(r.resource), soft: r.soft, hard: r.hard });
            }
            let (_, current) = crate::sys::getrlimit(r.resource).unwrap_or((u64::MAX, u64::MAX));
            if r.hard > current {
                return Err(PrepareError::RlimitAboveHard { resource: rlimit_name(r.resource), requested: r.hard, current });
            }
            rlimits.push((r.resource, r.soft, r.hard));
        }
        let argv: Vec<CString> = plan.process.argv.iter().map(|a| cstr("argv", a)).collect::<Result<_, _>>()?;
        let mut env: Vec<CString> = plan.process.env.iter().map(|e| cstr("environment entry", e)).collect::<Result<_, _>>()?;
        // A terminal says what it is, as Docker's does (`run -t`, `exec -t`), unless the image or
        // the user already did.
        if plan.pty && !plan.process.env.iter().any(|e| e.starts_with("TERM=")) {
            env.push(c"TERM=xterm".to_owned());
        }
        let argv0 = plan.process.argv.first().ok_or(PrepareError::NoCommand)?;
        let exec_candidates = if argv0.contains('/') {
            vec![cstr("argv[0]", argv0)?]
        } else {
            let path = plan.process.env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
            path.split(':')
                .map(|dir| if dir.is_empty() { "." } else { dir })
                .map(|dir| cstr("PATH entry", format!("{}/{argv0}", dir.trim_end_matches('/'))))
                .collect::<Result<_, _>>()?
        };
        let ptrs = |v: &[CString]| v.iter().map(|c| c.as_ptr()).chain(std::iter::once(std::ptr::null())).collect::<Vec<_>>();
        Ok(ChildConfig {
            sync_fd,
            parent_sync_fd,
            container,
            rlimits,
            uid: plan.user.uid,
            gid: plan.user.gid,
            groups: plan.user.additional_gids.clone(),
            cwd: container_path("working directory", &plan.process.cwd)?,
            caps: process_caps(plan.caps),
            last_cap: capabilities::last_cap(),
            no_new_privs: plan.no_new_privs,
            detached: plan.detached,
            seccomp: plan
                .seccomp
                .iter()
                .map(|p| p.0.iter().map(|i| seccompiler::sock_filter { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect())
                .collect(),
            exec_candidates,
            init: plan.init && matches!(plan.mode, Mode::Container(_)),
            init_strings: match plan.init && matches!(plan.mode, Mode::Container(_)) {
                true => Some(super::init::ProcStrings::of_self().ok_or(PrepareError::ProcStrings)?),
                false => None,
            },
            controlling_tty: plan.controlling_tty || plan.pty,
            pty: plan.pty,
            pty_owner: plan.userns.map_or((plan.user.uid, plan.user.gid), |m| (m.host(plan.user.uid), m.host(plan.user.gid))),
            userns: plan.userns.is_some(),
            userns_root: plan.userns.map(|m| (m.host(0), m.host(0))),
            argv_ptrs: ptrs(&argv),
            env_ptrs: ptrs(&env),
            _argv: argv,
            _env: env,
            fds,
        })
    }
}

fn prepare_root(source: &RootfsSource, mountpoint: &Path, idmap: bool) -> Result<RootConfig, PrepareError> {
    let kind = match source {
        RootfsSource::Overlay { layers, upper: OverlayUpper::Tmpfs { size_bytes } } => RootKind::OverlayOnTmpfs {
            tmpfs_size: tmpfs_size("the writable layer", *size_bytes)?,
            overlay: prepare_overlay_ids(layers, Some((&mountpoint.join("upper"), &mountpoint.join("work"))), &mountpoint.join("root"), false, idmap)?,
        },
        RootfsSource::Overlay { layers, upper: OverlayUpper::Dirs { upper, work } } => {
            RootKind::OverlayOnDirs { overlay: prepare_overlay_ids(layers, Some((upper, work)), mountpoint, true, idmap)? }
        }
        RootfsSource::Directory(dir) => RootKind::Directory { source: cpath("root directory", dir)? },
    };
    Ok(RootConfig { mountpoint: cpath("mountpoint", mountpoint)?, kind })
}

/// A tmpfs `size=` value: never 0, which tmpfs reads as unlimited.
fn tmpfs_size(what: &str, bytes: u64) -> Result<CString, PrepareError> {
    if bytes == 0 {
        return Err(PrepareError::UnlimitedTmpfs(what.to_string()));
    }
    cstr("size", bytes.to_string())
}

/// An overlay of `layers` (base first) with an `upper` and `work` folder (read-only without),
/// to be mounted at `target`.
pub(crate) fn prepare_overlay(
    layers: &[std::path::PathBuf],
    rw: Option<(&Path, &Path)>,
    target: &Path,
    volatile: bool,
) -> Result<OverlayConfig, PrepareError> {
    if layers.is_empty() {
        return Err(PrepareError::NoLayers);
    }
    if layers.len() > MAX_LAYERS {
        return Err(PrepareError::TooManyLayers { layers: layers.len() });
    }
    let mut links = Vec::with_capacity(layers.len() + 2);
    // overlayfs takes its lower layers top first.
    for (i, layer) in layers.iter().rev().enumerate() {
        links.push((cstr("layer name", i.to_string())?, cpath("layer directory", layer)?));
    }
    if let Some((upper, work)) = rw {
        links.push((cstr("upper name", "u")?, cpath("upper directory", upper)?));
        links.push((cstr("work name", "w")?, cpath("work directory", work)?));
    }
    let legacy_data = if crate::sys::overlay_lowerdir_plus() {
        None
    } else {
        let names: Vec<&str> = links[..layers.len()].iter().map(|(n, _)| n.to_str().unwrap_or("")).collect();
        let mut data = format!("lowerdir={}", names.join(":"));
        if rw.is_some() {
            data.push_str(",upperdir=u,workdir=w");
        }
        if volatile && rw.is_some() {
            data.push_str(",volatile");
        }
        // mount(2) copies one page of options; with these short names 500 layers take ~2 KiB.
        let page = crate::sys::page_size();
        if data.len() >= page {
            return Err(PrepareError::OverlayOptionsTooLong { layers: layers.len(), bytes: data.len() + 1, page });
        }
        Some(cstr("overlay options", data)?)
    };
    Ok(OverlayConfig {
        links,
        layers: layers.len(),
        volatile: volatile && rw.is_some(),
        legacy_data,
        target: cpath("mountpoint", target)?,
        idmap: false,
        aliases: Vec::new(),
    })
}

/// [`prepare_overlay`], idmapped under `userns`: the upper and work folders, which must be on
/// one mount, are reached through one clone of their common parent.
fn prepare_overlay_ids(layers: &[std::path::PathBuf], rw: Option<(&Path, &Path)>, target: &Path, volatile: bool, idmap: bool) -> Result<OverlayConfig, PrepareError> {
    let mut o = prepare_overlay(layers, rw, target, volatile)?;
    if !idmap {
        return Ok(o);
    }
    o.idmap = true;
    if let Some((upper, work)) = rw {
        let parent = upper.parent().filter(|p| Some(*p) == work.parent()).ok_or(PrepareError::NoLayers)?;
        o.links.truncate(o.layers);
        o.links.push((cstr("upper and work name", "uw")?, cpath("upper directory", parent)?));
        let name = |p: &Path| p.file_name().map(|n| format!("uw/{}", n.to_string_lossy())).unwrap_or_default();
        o.aliases = vec![(cstr("upper name", "u")?, cstr("upper alias", name(upper))?), (cstr("work name", "w")?, cstr("work alias", name(work))?)];
    }
    Ok(o)
}

fn dev_node(n: &DevNode) -> Result<DevNodeConfig, PrepareError> {
    let parts: Vec<&str> = n.path.split('/').filter(|p| !p.is_empty()).collect();
    let parents = (1..parts.len()).map(|i| cstr("device directory", parts[..i].join("/"))).collect::<Result<_, _>>()?;
    let kind = if n.block { libc::S_IFBLK } else { libc::S_IFCHR };
    Ok(DevNodeConfig { parents, path: cstr("device path", parts.join("/"))?, mode: kind | (n.mode & 0o777), dev: libc::makedev(n.major, n.minor) })
}

/// The tty group, as devpts gives new terminals.
const TTY_GID: u32 = 5;

fn prepare_mount(step: &MountStep, map: Option<IdMap>, idmapped_below: &[PathBuf]) -> Result<MountConfig, PrepareError> {
    let kind = match step {
        MountStep::Proc { .. } => MountKind::Proc,
        MountStep::Dev { nodes, .. } => MountKind::Dev { nodes: nodes.iter().map(dev_node).collect::<Result<_, _>>()? },
        MountStep::DevPts { .. } => MountKind::DevPts,
        MountStep::Mqueue { .. } => MountKind::Mqueue,
        MountStep::Sysfs { writable, .. } => MountKind::Sysfs { writable: *writable },
        MountStep::Cgroup2 { .. } => MountKind::Cgroup2,
        MountStep::Tmpfs { size_bytes, mode, flags, files, .. } => MountKind::Tmpfs {
            size: tmpfs_size(step.target(), *size_bytes)?,
            mode: cstr("mode", format!("{mode:o}"))?,
            attrs: attrs(*flags),
            files: files.iter().map(|f| file(f, map)).collect::<Result<_, _>>()?,
        },
        MountStep::Bind { source, recursive, flags, .. } => {
            let meta = std::fs::metadata(source).map_err(|e| PrepareError::BindSource { path: source.display().to_string(), source: e })?;
            let idmap = map.is_some() && idmapped_below.iter().any(|under| source.starts_with(under));
            MountKind::Bind { source: cpath("bind source", source)?, recursive: *recursive, attrs: attrs(*flags), source_is_dir: meta.is_dir(), idmap }
        }
    };
    Ok(MountConfig { target: container_path("mount target", step.target())?, kind })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spawn::plan::*;

    fn plan(argv: &[&str], env: &[&str]) -> StartPlan {
        StartPlan {
            mode: Mode::Container(Box::new(ContainerSetup {
                rootfs: Rootfs { source: RootfsSource::Directory("/nonexistent".into()), mountpoint: "/mnt".into() },
                mounts: vec![],
                files: vec![],
                masked_paths: vec![],
                readonly_paths: vec![],
                readonly_rootfs: false,
                hostname: None,
                secret_targets: vec![],
                idmapped_binds_below: vec![],
                sysctls: vec![],
                host_pid: false,
            })),
            process: Process { argv: argv.iter().map(|s| s.to_string()).collect(), env: env.iter().map(|s| s.to_string()).collect(), cwd: "/".into() },
            user: User::default(),
            caps: CapSets::docker_default(),
            no_new_privs: true,
            seccomp: vec![],
            rlimits: vec![],
            init: false,
            controlling_tty: false,
            pty: false,
            userns: None,
            detached: false,
        }
    }

    fn candidates(p: &StartPlan) -> Vec<String> {
        let cfg = ChildConfig::prepare(p, ChildFds::default(), -1, -1).unwrap();
        cfg.exec_candidates.iter().map(|c| c.to_str().unwrap().to_string()).collect()
    }

    #[test]
    fn argv0_is_searched_in_the_containers_path() {
        assert_eq!(candidates(&plan(&["ls"], &["PATH=/usr/bin:/bin/"])), ["/usr/bin/ls", "/bin/ls"]);
        assert_eq!(candidates(&plan(&["./run"], &["PATH=/bin"])), ["./run"]);
        assert_eq!(candidates(&plan(&["ls"], &[])).len(), DEFAULT_PATH.split(':').count());
    }

    #[test]
    fn argv_and_env_arrays_are_null_terminated() {
        let cfg = ChildConfig::prepare(&plan(&["a", "b"], &["X=1"]), ChildFds::default(), -1, -1).unwrap();
        assert_eq!(cfg.argv_ptrs.len(), 3);
        assert!(cfg.argv_ptrs[2].is_null() && cfg.env_ptrs.len() == 2 && cfg.env_ptrs[1].is_null());
    }

    #[test]
    fn bad_plans_are_refused_before_any_clone() {
        assert!(matches!(ChildConfig::prepare(&plan(&[], &[]), ChildFds::default(), -1, -1), Err(PrepareError::NoCommand)));
        assert!(matches!(ChildConfig::prepare(&plan(&["a\0b"], &[]), ChildFds::default(), -1, -1), Err(PrepareError::Nul { .. })));
        let mut p = plan(&["true"], &[]);
        p.process.cwd = "relative".into();
        assert!(matches!(ChildConfig::prepare(&p, ChildFds::default(), -1, -1), Err(PrepareError::NotAbsolute { .. })));
        let mut p = plan(&["true"], &[]);
        p.rlimits = vec![Rlimit { resource: libc::RLIMIT_NOFILE, soft: 10, hard: 5 }];
        assert!(matches!(ChildConfig::prepare(&p, ChildFds::default(), -1, -1), Err(PrepareError::RlimitSoftAboveHard { .. })));
        let (_, hard) = crate::sys::getrlimit(libc::RLIMIT_NOFILE).unwrap();
        if hard != u64::MAX {
            p.rlimits = vec![Rlimit { resource: libc::RLIMIT_NOFILE, soft: 1, hard: hard + 1 }];
            let err = ChildConfig::prepare(&p, ChildFds::default(), -1, -1).err().unwrap();
            assert!(err.to_string().contains("CAP_SYS_RESOURCE"), "{err}");
        }
        let mut p = plan(&["true"], &[]);
        p.mode = Mode::Join;
        assert!(matches!(ChildConfig::prepare(&p, ChildFds::default(), -1, -1), Err(PrepareError::MissingFd(_))));
    }

    #[test]
    fn overlay_layers_are_given_top_first() {
        let mut p = plan(&["true"], &[]);
        if let Mode::Container(s) = &mut p.mode {
            s.rootfs.source = RootfsSource::Overlay { layers: vec!["/l/base".into(), "/l/top".into()], upper: OverlayUpper::Tmpfs { size_bytes: 1 } };
        }
        let cfg = ChildConfig::prepare(&p, ChildFds::default(), -1, -1).unwrap();
        let Some(ContainerConfig { root: RootConfig { kind: RootKind::OverlayOnTmpfs { overlay, .. }, .. }, .. }) = &cfg.container else {
            panic!("overlay on tmpfs")
        };
        let links: Vec<(&str, &str)> = overlay.links.iter().map(|(n, t)| (n.to_str().unwrap(), t.to_str().unwrap())).collect();
        assert_eq!(links, [("0", "/l/top"), ("1", "/l/base"), ("u", "/mnt/upper"), ("w", "/mnt/work")]);
        assert_eq!(overlay.layers, 2);
        assert_eq!(overlay.target.to_str().unwrap(), "/mnt/root");
        if let Some(data) = &overlay.legacy_data {
            assert_eq!(data.to_str().unwrap(), "lowerdir=0:1,upperdir=u,workdir=w");
        }
    }

    #[test]
    fn layers_beyond_overlayfs_limit_are_refused_before_any_clone() {
        let mut p = plan(&["true"], &[]);
        if let Mode::Container(s) = &mut p.mode {
            let layers = (0..=MAX_LAYERS).map(|i| format!("/l/{i}").into()).collect();
            s.rootfs.source = RootfsSource::Overlay { layers, upper: OverlayUpper::Tmpfs { size_bytes: 1 } };
        }
        let err = ChildConfig::prepare(&p, ChildFds::default(), -1, -1).err().unwrap();
        assert!(matches!(err, PrepareError::TooManyLayers { layers: 501 }), "{err}");
        assert!(err.to_string().contains("500"), "{err}");
    }
}
