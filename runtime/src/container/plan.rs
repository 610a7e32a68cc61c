//! From a compiled container (its OCI runtime Spec plus the precomputed confinement) to the
//! spawner's `StartPlan`: the last step before a container's process exists.
//!
//! The plan is read off the Spec wherever the Spec says it (argv, env, cwd, hostname, mounts,
//! masked and read-only paths, a read-only root), so the Spec is the record of what runs; the
//! confinement comes precomputed (capability masks, compiled seccomp programs, rlimits).

use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::seccomp::{self, SeccompError};
use crate::spawn::{
    BpfProgram, CapSets, ContainerSetup, DevNode, FileInit, Mode, MountFlags, MountStep, OverlayUpper, Process, Rlimit, Rootfs,
    RootfsSource, StartPlan, User,
};
use crate::spec::CompiledContainer;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the container's spec has no process")]
    NoProcess,
    #[error("mount at {target}: {reason}")]
    Mount { target: String, reason: String },
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
}

/// Where the container's filesystem comes from.
pub struct RootfsPlan {
    /// The image's layer directories, base first.
    pub layers: Vec<PathBuf>,
    pub upper: OverlayUpper,
    /// An empty directory the root is attached at inside the container's mount namespace.
    pub mountpoint: PathBuf,
}

/// Files a container gets besides its image: pre-boot files in the rootfs, and where its
/// secrets (and files rendered from secrets) go, each a mount of one file of its secrets tmpfs
/// (the descriptors travel in `StartFds::secret_mounts`, in this order).
#[derive(Default)]
pub struct ExtraFiles {
    pub rootfs: Vec<FileInit>,
    pub secret_targets: Vec<String>,
}

fn option_flags(options: &[String]) -> MountFlags {
    let has = |o: &str| options.iter().any(|x| x == o);
    MountFlags { readonly: has("ro"), nosuid: has("nosuid"), nodev: has("nodev"), noexec: has("noexec") }
}

/// A tmpfs's `size=` option as the kernel reads it (`65536k`, `64m`, bytes); without one, the
/// kernel's own default written out (half of RAM). Never 0: to tmpfs that means unlimited.
fn size_option(target: &str, options: &[String]) -> Result<u64, PlanError> {
    match options.iter().find_map(|o| o.strip_prefix("size=")) {
        None => Ok(crate::rootfs::default_tmpfs_size()),
        Some(s) => tfctl_schema::values::parse_size(s)
            .map_err(|e| PlanError::Mount { target: target.to_string(), reason: format!("tmpfs size: {}", e.message) }),
    }
}

/// The Spec's devices (`device "/dev/X"`) as nodes of the container's /dev.
fn dev_nodes(spec: &Spec) -> Vec<DevNode> {
    let devices = spec.linux().as_ref().and_then(|l| l.devices().clone()).unwrap_or_default();
    devices
        .iter()
        .map(|d| DevNode {
            path: d.path().to_string_lossy().trim_start_matches("/dev/").to_string(),
            block: d.typ() == oci_spec::runtime::LinuxDeviceType::B,
            major: d.major() as u32,
            minor: d.minor() as u32,
            mode: d.file_mode().unwrap_or(0o666),
        })
        .collect()
}

/// The Spec's mounts as spawner steps. The standard kernel filesystems map onto the spawner's
/// own hardened steps; binds and tmpfs mounts keep the Spec's options, always `nodev`.
fn mount_steps(spec: &Spec) -> Result<Vec<MountStep>, PlanError> {
    let mut steps = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let target = m.destination().to_string_lossy().into_owned();
        let typ = m.typ().as_deref().unwrap_or("");
        let options = m.options().clone().unwrap_or_default();
        let step = match (typ, target.as_str()) {
            ("proc", _) => MountStep::Proc { target },
            ("devpts", _) => MountStep::DevPts { target },
            ("mqueue", _) => MountStep::Mqueue { target },
            ("sysfs", _) => MountStep::Sysfs { target, writable: !options.iter().any(|o| o == "ro") },
            ("tmpfs", "/dev") => MountStep::Dev { target, nodes: dev_nodes(spec) },
            // On a cgroup v2 host: cgroup2, which in the container's cgroup namespace shows its
            // own cgroup as the root, limits included. A v1 host's controllers are not mounted.
            ("cgroup", _) | ("cgroup2", _) if crate::cgroup::version() == crate::cgroup::CgroupVersion::V2 => MountStep::Cgroup2 { target },
            ("cgroup", _) | ("cgroup2", _) => continue,
            ("tmpfs", _) => {
                let mut flags = option_flags(&options);
                flags.nodev = true;
                flags.nosuid = true;
                let mode = options
                    .iter()
                    .find_map(|o| o.strip_prefix("mode="))
                    .and_then(|m| u32::from_str_radix(m, 8).ok())
                    .unwrap_or(0o1777);
                let size_bytes = size_option(&target, &options)?;
                MountStep::Tmpfs { target, size_bytes, mode, flags, files: vec![] }
            }
            ("bind", _) | ("none", _) => {
                let source = m
                    .source()
                    .clone()
                    .ok_or_else(|| PlanError::Mount { target: target.clone(), reason: "a bind mount without a source".into() })?;
                let mut flags = option_flags(&options);
                flags.nodev = true;
                MountStep::Bind { source, target, recursive: options.iter().any(|o| o == "rbind"), flags }
            }
            (other, _) => {
                return Err(PlanError::Mount { target, reason: format!("mount type `{other}` is not supported") });
            }
        };
        steps.push(step);
    }
    Ok(steps)
}

/// The plan that starts `compiled` on `rootfs`.
pub fn start_plan(compiled: &CompiledContainer, rootfs: RootfsPlan, files: ExtraFiles) -> Result<StartPlan, PlanError> {
    let spec = &compiled.spec;
    let process = spec.process().as_ref().ok_or(PlanError::NoProcess)?;
    let linux = spec.linux().as_ref();
    let mounts = mount_steps(spec)?;
    let setup = ContainerSetup {
        rootfs: Rootfs {
            source: RootfsSource::Overlay { layers: rootfs.layers, upper: rootfs.upper },
            mountpoint: rootfs.mountpoint,
        },
        mounts,
        files: files.rootfs,
        masked_paths: linux.and_then(|l| l.masked_paths().clone()).unwrap_or_default(),
        readonly_paths: linux.and_then(|l| l.readonly_paths().clone()).unwrap_or_default(),
        readonly_rootfs: spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false),
        hostname: spec.hostname().clone(),
        secret_targets: files.secret_targets,
        idmapped_binds_below: vec![],
        // Sorted: the order they are written in, and so which fails first, is the same each time.
        sysctls: {
            let mut s: Vec<(String, String)> = linux.and_then(|l| l.sysctl().clone()).unwrap_or_default().into_iter().collect();
            s.sort();
            s
        },
        host_pid: !linux.and_then(|l| l.namespaces().as_ref()).is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Pid)),
    };
    let programs = seccomp::programs(&compiled.seccomp, compiled.caps.bounding)?;
    let seccomp: Vec<BpfProgram> = match programs {
        None => vec![],
        Some(p) => std::iter::once(p.main.clone()).chain(p.clone3_enosys.clone()).map(BpfProgram::from).collect(),
    };
    let caps = compiled.caps;
    Ok(StartPlan {
        mode: Mode::Container(Box::new(setup)),
        process: Process {
            argv: process.args().clone().unwrap_or_default(),
            env: process.env().clone().unwrap_or_default(),
            cwd: process.cwd().to_string_lossy().into_owned(),
        },
        user: User {
            uid: compiled.user.uid,
            gid: compiled.user.gid,
            additional_gids: compiled.user.additional_gids.clone(),
        },
        caps: CapSets {
            bounding: caps.bounding.0,
            permitted: caps.permitted.0,
            effective: caps.effective.0,
            inheritable: caps.inheritable.0,
            ambient: caps.ambient.0,
        },
        no_new_privs: process.no_new_privileges().unwrap_or(true),
        seccomp,
        rlimits: compiled
            .rlimits
            .iter()
            .map(|r| Rlimit { resource: r.resource as u32, soft: r.soft, hard: r.hard })
            .collect(),
        init: compiled.init,
        controlling_tty: false,
        pty: false,
        userns: None,
        detached: false,
    })
}

