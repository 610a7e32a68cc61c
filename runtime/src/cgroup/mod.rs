//! Control groups: one interface ([`CgroupDriver`], [`ContainerCgroup`]), two backends
//! ([`v1::V1Driver`], [`v2::V2Driver`]); on cgroup v2, [`place`] decides where an app's
//! container cgroups go.
//!
//! Output for the spawner: [`AttachFiles`], descriptors opened by the parent before clone. The
//! child writes `"0"` to each (v1 `tasks`, v2 `cgroup.procs`), which moves the writer itself:
//! attaching from the parent would wait for an RCU grace period (8-18 ms); the child does it
//! first thing, then unshares its cgroup namespace so it sees its own cgroup as `/`.

pub mod devices_bpf;
pub mod place;
pub mod systemd;
pub mod v1;
pub mod v2;

use std::fmt::Debug;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tfctl_schema::model::Limits;

/// `pids.max` when the app file does not say.
pub const DEFAULT_PIDS_MAX: u64 = 4096;
/// The CFS period tfctl uses for `cpus=`.
pub const CPU_PERIOD_US: u64 = 100_000;

/// The limits one container's cgroup gets.
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupLimits {
    /// Bytes of memory (swap not allowed on top).
    pub memory: Option<u64>,
    /// CPUs' worth of time per period (`0.5` = half a CPU).
    pub cpus: Option<f64>,
    pub pids: u64,
    /// Whether `pids` came from the app file (else it is the default, applied where possible).
    pub pids_explicit: bool,
    /// Host devices allowed besides [`ALLOWED_DEVICES`] (`device "/dev/fuse"`).
    pub devices: Vec<DeviceRule>,
}

impl CgroupLimits {
    pub fn from_model(l: &Limits) -> CgroupLimits {
        CgroupLimits {
            memory: l.memory,
            cpus: l.cpus,
            pids: l.pids.unwrap_or(DEFAULT_PIDS_MAX),
            pids_explicit: l.pids.is_some(),
            devices: Vec::new(),
        }
    }

    /// `pids.max` as the kernel reads it: `max` for no limit (`run --pids-limit -1`).
    pub fn pids_max(&self) -> String {
        if self.pids == u64::MAX {
            "max".to_string()
        } else {
            self.pids.to_string()
        }
    }

    /// CFS quota in microseconds per [`CPU_PERIOD_US`], at least 1 ms (the kernel's minimum).
    pub fn cpu_quota_us(&self) -> Option<u64> {
        self.cpus
            .map(|c| ((c * CPU_PERIOD_US as f64).round() as u64).max(1000))
    }
}

/// A device the container may use: type, major, minor (`None` = any), access `rwm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    pub block: bool,
    pub major: Option<u32>,
    pub minor: Option<u32>,
}

impl DeviceRule {
    /// The allow-list: every container's devices, then `extra`.
    pub fn allowed(extra: &[DeviceRule]) -> Vec<DeviceRule> {
        ALLOWED_DEVICES.iter().chain(extra).copied().collect()
    }

    const fn chr(major: u32, minor: Option<u32>) -> DeviceRule {
        DeviceRule {
            block: false,
            major: Some(major),
            minor,
        }
    }

    /// The v1 `devices.allow` line.
    pub fn v1_line(&self) -> String {
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} rwm",
            if self.block { 'b' } else { 'c' },
            n(self.major),
            n(self.minor)
        )
    }
}

/// Every container's device allow-list: null, zero, full, random, urandom, tty, console, ptmx
/// and the pty slaves; everything else (a host disk node planted in an image) is refused.
pub const ALLOWED_DEVICES: [DeviceRule; 9] = [
    DeviceRule::chr(1, Some(3)),
    DeviceRule::chr(1, Some(5)),
    DeviceRule::chr(1, Some(7)),
    DeviceRule::chr(1, Some(8)),
    DeviceRule::chr(1, Some(9)),
    DeviceRule::chr(5, Some(0)),
    DeviceRule::chr(5, Some(1)),
    DeviceRule::chr(5, Some(2)),
    DeviceRule::chr(136, None),
];

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write `{value}` to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("cannot create the cgroup {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the cgroup {0} already exists: container cgroup names must be unique")]
    Exists(PathBuf),
    #[error("cannot remove the cgroup {path}: {source}")]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no cgroup hierarchy found: neither cgroup v2 at /sys/fs/cgroup nor v1 controllers in /proc/self/mountinfo")]
    NoCgroups,
    #[error("the `{controller}` controller is not available under {path}, so `{limit}` cannot be applied (enable or delegate the controller, or drop the limit)")]
    MissingController {
        controller: &'static str,
        path: PathBuf,
        limit: &'static str,
    },
    #[error("processes in {path} survived SIGKILL for {waited:?}: {pids:?}")]
    KillTimeout {
        path: PathBuf,
        pids: Vec<i32>,
        waited: Duration,
    },
    #[error("device filter: {0}")]
    DeviceFilter(String),
    #[error("{0} (tfctl asks systemd for a scope to put containers in; without one it uses its own subtree under the cgroup root)")]
    Systemd(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// The descriptors a new process attaches itself with (write `"0"` to each).
#[derive(Debug)]
pub struct AttachFiles {
    pub fds: Vec<OwnedFd>,
}

/// Usage figures; `None` where the controller is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    pub memory_bytes: Option<u64>,
    pub memory_peak_bytes: Option<u64>,
    pub oom_kills: Option<u64>,
    pub pids: Option<u64>,
    pub cpu_usage_ns: Option<u64>,
}

/// A cgroup backend: where container cgroups live and how they are made.
pub trait CgroupDriver: Send + Sync + Debug {
    fn version(&self) -> CgroupVersion;
    /// Creates the cgroup for container `name` (unique among live containers) with its limits
    /// and the device allow-list.
    fn create(
        &self,
        name: &str,
        limits: &CgroupLimits,
    ) -> Result<Box<dyn ContainerCgroup>, CgroupError>;
    /// The cgroup of container `name`, as `create` made it (for `stop`/cleanup after a restart).
    fn open(&self, name: &str) -> Box<dyn ContainerCgroup>;
    /// Whether `limits` can be held here: the first controller that cannot be had, with the
    /// setting that needs it. `create` refuses the same; asked up front, nothing starts.
    fn check(&self, limits: &CgroupLimits) -> Result<(), CgroupError>;
}

/// One container's cgroup (one directory per v1 hierarchy, or one v2 directory).
pub trait ContainerCgroup: Send + Sync + Debug {
    fn name(&self) -> &str;
    fn paths(&self) -> Vec<PathBuf>;
    /// Opens the attach files (close-on-exec) for the spawner.
    fn attach_files(&self) -> Result<AttachFiles, CgroupError>;
    /// Processes in the cgroup.
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    /// Kills every process in the cgroup and waits until it is empty.
    fn kill(&self) -> Result<(), CgroupError>;
    /// Kills what is left and removes the cgroup's directories. Missing directories are fine.
    fn remove(&self) -> Result<(), CgroupError>;
    fn stats(&self) -> Result<CgroupStats, CgroupError>;
}

/// Where the cgroup2 tree is mounted on a unified host.
pub const MOUNT: &str = "/sys/fs/cgroup";

/// The host's cgroup version: v2 when `/sys/fs/cgroup` is a cgroup2 mount, else v1 (hybrid
/// hosts included: their cgroup2 tree at `/sys/fs/cgroup/unified` has no controllers).
pub fn version() -> CgroupVersion {
    match nix::sys::statfs::statfs(Path::new(MOUNT)) {
        Ok(st) if st.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => CgroupVersion::V2,
        _ => CgroupVersion::V1,
    }
}

/// The cgroup backend for the containers of one app. `key` names the app uniquely per state
/// root (`StateRoot::short_id`); `record` is a file in the app's state folder where, on v2, the
/// place chosen for its cgroups is kept, so every command finds them whatever cgroup it runs in
/// ([`place`]). `make`: the caller is about to create container cgroups (the supervisor, a
/// foreground `run`), so the place is made if it does not exist; others only look.
pub fn for_app(key: &str, record: &Path, make: bool) -> Result<Box<dyn CgroupDriver>, CgroupError> {
    match version() {
        CgroupVersion::V2 => Ok(Box::new(v2::V2Driver::for_app(Path::new(MOUNT), key, Some(record), make)?)),
        CgroupVersion::V1 => Ok(Box::new(v1::V1Driver::discover()?)),
    }
}

/// The backend for cgroups that belong to no app (tests, benchmarks): on v2, the place a new
/// app `key` would get from this caller, made and not recorded.
pub fn detect(key: &str) -> Result<Box<dyn CgroupDriver>, CgroupError> {
    match version() {
        CgroupVersion::V2 => Ok(Box::new(v2::V2Driver::for_app(Path::new(MOUNT), key, None, true)?)),
        CgroupVersion::V1 => Ok(Box::new(v1::V1Driver::discover()?)),
    }
}

/// Writes a control file in one `write` (the kernel parses each write on its own).
/// Opens an existing control file for writing.
pub(crate) fn open_write(path: &Path) -> Result<std::fs::File, CgroupError> {
    OpenOptions::new().write(true).custom_flags(libc::O_CLOEXEC).open(path).map_err(|source| CgroupError::Write {
        path: path.to_owned(),
        value: String::new(),
        source,
    })
}

pub(crate) fn write_file(path: &Path, value: &str, create: bool) -> Result<(), CgroupError> {
    let err = |source| CgroupError::Write {
        path: path.to_owned(),
        value: value.to_string(),
        source,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create(create)
        .truncate(create)
        .custom_flags(libc::O_CLOEXEC)
        .mode(0o644)
        .open(path)
        .map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}

pub(crate) fn read_file(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A number from a one-value file; `None` if the file does not exist.
pub(crate) fn read_u64(path: &Path) -> Result<Option<u64>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s.trim().parse().ok()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// `KEY VALUE` from a flat-keyed file (`memory.events`, `cpu.stat`, `memory.oom_control`).
pub(crate) fn read_key(path: &Path, key: &str) -> Result<Option<u64>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The pids listed in a `cgroup.procs`; a missing file (cgroup gone) lists none.
pub(crate) fn read_pids(path: &Path) -> Result<Vec<i32>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(CgroupError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

pub(crate) fn open_attach(path: &Path) -> Result<OwnedFd, CgroupError> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|source| CgroupError::Write {
            path: path.to_owned(),
            value: "0".into(),
            source,
        })
}

/// Makes a container's directory; an existing one means the name is taken.
pub(crate) fn make_dir(path: &Path) -> Result<(), CgroupError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(CgroupError::Exists(path.to_owned())),
        Err(source) => Err(CgroupError::Create {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Makes `base` (shared by containers) and a container's directory in it; retried because a
/// sibling's cleanup may remove an empty `base` in between.
pub(crate) fn make_dir_under(base: &Path, dir: &Path) -> Result<(), CgroupError> {
    for _ in 0..5 {
        // `base` usually exists: try the container's directory first.
        match make_dir(dir) {
            Err(CgroupError::Create { source, .. }) if source.kind() == ErrorKind::NotFound => {
                std::fs::create_dir_all(base).map_err(|source| CgroupError::Create {
                    path: base.to_owned(),
                    source,
                })?;
            }
            r => return r,
        }
    }
    make_dir(dir)
}

/// Removes a cgroup directory, waiting out the moment exited tasks still pin it.
pub(crate) fn remove_dir(path: &Path) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
}

/// Waits until `procs` lists no process (after SIGKILL), up to a deadline.
pub(crate) fn wait_empty(procs: &Path, waited: Duration) -> Result<(), CgroupError> {
    let start = Instant::now();
    loop {
        let pids = read_pids(procs)?;
        if pids.is_empty() {
            return Ok(());
        }
        if start.elapsed() > waited {
            return Err(CgroupError::KillTimeout {
                path: procs.to_owned(),
                pids,
                waited,
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Validates a container cgroup name: one path component.
pub(crate) fn check_name(name: &str) -> Result<(), CgroupError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(CgroupError::Create {
            path: PathBuf::from(name),
            source: std::io::Error::new(
                ErrorKind::InvalidInput,
                "a cgroup name is one path component",
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
