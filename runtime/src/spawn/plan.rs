//! `StartPlan`: everything the spawner needs to start one process in a container, as plain data.
//!
//! This is the seam between the code that decides (OCI Spec compilation, capabilities, seccomp,
//! cgroups, images) and the code that executes (the spawner and the child's start sequence).
//! Every value is final: capability sets are bitmasks, seccomp programs are compiled BPF, rlimits
//! are numbers, paths inside the container are container paths (resolved by descriptor under the
//! rootfs, never on the host). Open files travel beside the plan in [`StartFds`].

use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

impl StartPlan {
    /// A plan for `exec` (or an in-container hook or probe) in the container this plan started:
    /// the same user, capabilities, no_new_privs, seccomp and rlimits, and environment, with
    /// `argv` (and `cwd`, if given) instead. Send it with the container's init pidfd as
    /// [`StartFds::target`] and the container's cgroup attach files.
    pub fn exec_in(&self, argv: Vec<String>, cwd: Option<String>) -> StartPlan {
        StartPlan {
            mode: Mode::Join,
            process: Process { argv, env: self.process.env.clone(), cwd: cwd.unwrap_or_else(|| self.process.cwd.clone()) },
            init: false,
            controlling_tty: false,
            pty: false,
            ..self.clone()
        }
    }
}

/// One process to start: a new container's first process, or a process joining a running one.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StartPlan {
    pub mode: Mode,
    /// What runs: argv, environment, working directory.
    pub process: Process,
    /// Who it runs as. Groups are set as given: no lookup of /etc/group happens here.
    pub user: User,
    pub caps: CapSets,
    /// Set `no_new_privs` (always true for tfctl's containers; a knob for tests and exec).
    pub no_new_privs: bool,
    /// Seccomp programs installed last, in order (e.g. the profile, then clone3 -> ENOSYS).
    /// Empty means unconfined.
    pub seccomp: Vec<BpfProgram>,
    /// Resource limits; a hard limit above the spawner's current hard limit is refused up front
    /// (raising one needs CAP_SYS_RESOURCE).
    pub rlimits: Vec<Rlimit>,
    /// Keep a minimal PID 1 that forks the process, forwards signals, reaps zombies and exits
    /// with the process's status (`--init`). Only for [`Mode::Container`].
    pub init: bool,
    /// Make stdin (a terminal given in [`StartFds`]) the controlling tty of the new session.
    pub controlling_tty: bool,
    /// `-t`: allocate a pty in the container's own devpts (so `tty` inside names it), make its
    /// slave stdin, stdout, stderr and the controlling tty; the master comes back with the
    /// started process ([`crate::spawn::Child::take_pty`]). Overrides the stdio in [`StartFds`].
    #[serde(default)]
    pub pty: bool,
    /// `userns "auto"`: the container's own user namespace, mapping its ids onto this range of
    /// host ids. Its mounts are idmapped with it, its pre-boot files owned by the mapped ids, and
    /// the process joins it last, so `user` is read inside it.
    #[serde(default)]
    pub userns: Option<crate::userns::IdMap>,
    /// The process outlives the spawner (`tfctl oci create`: the runtime exits while the
    /// container runs, and the caller, e.g. containerd's shim as child subreaper, inherits it):
    /// no parent-death signal.
    #[serde(default)]
    pub detached: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Mode {
    /// A new container: new mount, pid, ipc, uts and cgroup namespaces, and a network namespace
    /// unless [`StartFds::netns`] is given (then that one is joined before /sys is mounted).
    Container(Box<ContainerSetup>),
    /// Join the namespaces of the running container whose init is [`StartFds::target`] (a
    /// pidfd): `exec`, in-container hooks and probes. Cgroup attach and confinement as planned.
    Join,
}

/// The filesystem side of a new container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContainerSetup {
    pub rootfs: Rootfs,
    /// Mounts in order, after the rootfs and before pivot_root. Start from
    /// [`MountStep::defaults`] and append volumes, binds and tmpfs mounts.
    pub mounts: Vec<MountStep>,
    /// Files written into the rootfs before the process starts (pre-boot files), in order,
    /// after the mounts, each path resolved inside the rootfs.
    pub files: Vec<FileInit>,
    /// Paths hidden after pivot_root: files under /dev/null, directories under a read-only tmpfs.
    /// A path that does not exist is skipped. See [`MASKED_PATHS`].
    pub masked_paths: Vec<String>,
    /// Paths made read-only after pivot_root (bind onto themselves). See [`READONLY_PATHS`].
    pub readonly_paths: Vec<String>,
    /// Make the rootfs mount itself read-only (`--read-only`); mounts on top keep their flags.
    pub readonly_rootfs: bool,
    pub hostname: Option<String>,
    /// Where each of [`StartFds::secret_mounts`] goes, in order: secret files (and files
    /// rendered from secrets), each a detached mount of one file on the container's secrets
    /// tmpfs, placed after the files and before the rootfs turns read-only.
    #[serde(default)]
    pub secret_targets: Vec<String>,
    /// Under `userns`: bind mounts whose source is below one of these folders (the app's named
    /// volumes, the container's anonymous ones) are idmapped, so their files keep the
    /// container's own ids on disk. Other binds (host folders) show their host owners.
    #[serde(default)]
    pub idmapped_binds_below: Vec<PathBuf>,
    /// (key, value) sysctls written in the container's own network and IPC namespaces
    /// (`net.ipv4.ip_forward`), before pivot_root; the app file allows only namespaced keys.
    #[serde(default)]
    pub sysctls: Vec<(String, String)>,
    /// `pid "host"`: no pid namespace of its own; the process runs in the spawner's (the host's).
    #[serde(default)]
    pub host_pid: bool,
}

/// Moby's masked paths.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Moby's read-only paths.
pub const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rootfs {
    pub source: RootfsSource,
    /// An empty host directory owned by this container (e.g. under the run directory). The root
    /// is attached there inside the container's own mount namespace only: the host never sees
    /// it, and it disappears with the namespace, so nothing is left to unmount.
    pub mountpoint: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum RootfsSource {
    /// An overlay of unpacked layers, mounted `nodev` inside the container's mount namespace.
    Overlay {
        /// Layer directories in manifest order: the base layer first, the topmost last.
        layers: Vec<PathBuf>,
        upper: OverlayUpper,
    },
    /// An already prepared directory (e.g. an overlay the caller mounted), bind-mounted
    /// recursively and made `nodev`.
    Directory(PathBuf),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum OverlayUpper {
    /// Writes go to a tmpfs private to the container and vanish with it (`run --rm`): the
    /// fastest start and stop, nothing to sync or clean.
    Tmpfs { size_bytes: u64 },
    /// Persistent upper and work directories (same filesystem). Mounted with `volatile`: no
    /// syncs, so an unmount does not wait for the host's disk.
    Dirs { upper: PathBuf, work: PathBuf },
}

/// A host device node made in the container's /dev: its path under /dev (`fuse`, `net/tun`),
/// type, numbers and mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevNode {
    pub path: String,
    pub block: bool,
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
}

/// Container paths are absolute (`/dev/shm`) and resolved inside the rootfs by descriptor.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum MountStep {
    /// procfs, `nosuid,noexec,nodev`.
    Proc { target: String },
    /// A small tmpfs (`nosuid,noexec`, 64 KiB) holding only null, zero, full, random, urandom,
    /// tty, ptmx -> pts/ptmx, the fd/stdin/stdout/stderr links, and the pts, shm and mqueue
    /// directories, all created by descriptor; then `nodes` (`device "/dev/X"`).
    Dev {
        target: String,
        #[serde(default)]
        nodes: Vec<DevNode>,
    },
    /// A new devpts instance (`newinstance,ptmxmode=0666,mode=0620,gid=5`, `nosuid,noexec`).
    DevPts { target: String },
    /// A new mqueue instance (`nosuid,nodev,noexec`).
    Mqueue { target: String },
    /// A new sysfs instance of the container's network namespace: read-only unless
    /// `writable` (`run --privileged`).
    Sysfs {
        target: String,
        #[serde(default)]
        writable: bool,
    },
    /// A read-only cgroup2 mount of the container's cgroup namespace (its own cgroup as the
    /// root, its limits readable), on a cgroup v2 host.
    Cgroup2 { target: String },
    /// A tmpfs with optional files written from memory (secrets, templated files).
    Tmpfs { target: String, size_bytes: u64, mode: u32, flags: MountFlags, files: Vec<FileInit> },
    /// A bind mount of a host path (volume or `-v ./PATH:/PATH`). The target is created (a
    /// directory, or an empty file for a file source) if missing.
    Bind { source: PathBuf, target: String, recursive: bool, flags: MountFlags },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountFlags {
    pub readonly: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

impl MountFlags {
    /// `nosuid,nodev,noexec`: what tfctl gives volumes, secrets and /dev/shm.
    pub const HARDENED: MountFlags = MountFlags { readonly: false, nosuid: true, nodev: true, noexec: true };
}

impl MountStep {
    /// Docker's standard mounts in order: /proc, /dev, /dev/pts, /dev/shm (64 MiB), /dev/mqueue, /sys.
    pub fn defaults() -> Vec<MountStep> {
        vec![
            MountStep::Proc { target: "/proc".into() },
            MountStep::Dev { target: "/dev".into(), nodes: vec![] },
            MountStep::DevPts { target: "/dev/pts".into() },
            MountStep::Tmpfs { target: "/dev/shm".into(), size_bytes: 64 << 20, mode: 0o1777, flags: MountFlags::HARDENED, files: vec![] },
            MountStep::Mqueue { target: "/dev/mqueue".into() },
            MountStep::Sysfs { target: "/sys".into(), writable: false },
        ]
    }

    pub fn target(&self) -> &str {
        match self {
            MountStep::Proc { target }
            | MountStep::Dev { target, .. }
            | MountStep::DevPts { target }
            | MountStep::Mqueue { target }
            | MountStep::Sysfs { target, .. }
            | MountStep::Cgroup2 { target }
            | MountStep::Tmpfs { target, .. }
            | MountStep::Bind { target, .. } => target,
        }
    }
}

/// A file written from memory, never staged on disk. In a [`MountStep::Tmpfs`] `path` is
/// relative to the tmpfs; in [`ContainerSetup::files`] it is a container path (its directory
/// must exist). An existing file is replaced only if it is a regular file.
#[derive(Clone, Serialize, Deserialize)]
pub struct FileInit {
    pub path: String,
    pub data: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl std::fmt::Debug for FileInit {
    // The data may be a secret: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileInit({}, {} bytes, {:o}, {}:{})", self.path, self.data.len(), self.mode, self.uid, self.gid)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Process {
    /// argv[0] without a slash is searched in the PATH of `env` (or the default PATH).
    pub argv: Vec<String>,
    /// `KEY=VALUE` entries, exactly as the process gets them.
    pub env: Vec<String>,
    /// Absolute container path; must exist.
    pub cwd: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Capability sets as bitmasks (bit N = capability N, e.g. `1 << libc::CAP_KILL`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapSets {
    pub bounding: u64,
    pub permitted: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl CapSets {
    /// Docker's default set in bounding, permitted and effective; nothing inheritable or ambient.
    /// (The confinement code owns the real computation; this is the default it starts from.)
    pub fn docker_default() -> CapSets {
        const CAPS: [u32; 11] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 18, 31]; // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT SETFCAP
        let set = CAPS.iter().fold(0u64, |m, c| m | 1 << c);
        CapSets { bounding: set, permitted: set, effective: set, inheritable: 0, ambient: 0 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// `libc::RLIMIT_*`.
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

/// A compiled classic-BPF seccomp program (`seccompiler::BpfProgram` converts with `From`).
#[derive(Clone, Default)]
pub struct BpfProgram(pub Vec<libc::sock_filter>);

impl std::fmt::Debug for BpfProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BpfProgram({} instructions)", self.0.len())
    }
}

impl From<seccompiler::BpfProgram> for BpfProgram {
    fn from(p: seccompiler::BpfProgram) -> Self {
        BpfProgram(p.into_iter().map(|i| libc::sock_filter { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect())
    }
}

// On the wire a program is one string of 16 hex digits per instruction: compact and fast.
impl Serialize for BpfProgram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut raw = Vec::with_capacity(self.0.len() * 8);
        for i in &self.0 {
            raw.extend_from_slice(&i.code.to_le_bytes());
            raw.push(i.jt);
            raw.push(i.jf);
            raw.extend_from_slice(&i.k.to_le_bytes());
        }
        s.serialize_str(&hex::encode(raw))
    }
}

impl<'de> Deserialize<'de> for BpfProgram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let raw = hex::decode(text).map_err(serde::de::Error::custom)?;
        if raw.len() % 8 != 0 {
            return Err(serde::de::Error::custom("BPF program length is not a multiple of 8 bytes"));
        }
        Ok(BpfProgram(
            raw.chunks_exact(8)
                .map(|c| libc::sock_filter { code: u16::from_le_bytes([c[0], c[1]]), jt: c[2], jf: c[3], k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]) })
                .collect(),
        ))
    }
}

/// Open files handed to the process, sent to the spawner with SCM_RIGHTS.
#[derive(Debug, Default)]
pub struct StartFds {
    /// `None` gives the process /dev/null. Never the caller's own descriptors (a terminal, a
    /// redirect target): the process could keep them after its start, read or reopen them.
    /// Hand it pipes and relay them ([`crate::relay`]), as `exec` and `run` do.
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// The container's cgroup `tasks` (v1) or `cgroup.procs` (v2) files, opened for writing:
    /// the child attaches itself by writing "0" (cheaper than an attach from outside).
    pub cgroup_procs: Vec<OwnedFd>,
    /// A network namespace to join instead of creating one (`/proc/PID/ns/net` or a bind of it).
    pub netns: Option<OwnedFd>,
    /// For [`Mode::Join`]: a pidfd of the target container's init.
    pub target: Option<OwnedFd>,
    /// Detached mounts of one file each, placed at [`ContainerSetup::secret_targets`].
    pub secret_mounts: Vec<OwnedFd>,
    /// A FIFO opened read-write: the process is reported started once set up, then waits to
    /// read one byte from it before its execve (`tfctl oci create`, released by `start`).
    pub start_gate: Option<OwnedFd>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpf_programs_cross_the_wire_intact() {
        let prog = BpfProgram(vec![libc::sock_filter { code: 0x20, jt: 1, jf: 2, k: 0xdead_beef }, libc::sock_filter { code: 6, jt: 0, jf: 0, k: 0x7fff_0000 }]);
        let back: BpfProgram = serde_json::from_str(&serde_json::to_string(&prog).unwrap()).unwrap();
        let words = |p: &BpfProgram| p.0.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect::<Vec<_>>();
        assert_eq!(words(&back), words(&prog));
        assert!(serde_json::from_str::<BpfProgram>("\"0011\"").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let f = FileInit { path: "/run/secrets/t".into(), data: b"hunter2".to_vec(), mode: 0o400, uid: 0, gid: 0 };
        assert!(!format!("{f:?}").contains("hunter2"));
    }
}
