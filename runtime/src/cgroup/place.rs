//! Where an app's container cgroups go on a cgroup v2 host, decided once per app and found again
//! by every later command, whatever cgroup that command runs in.
//!
//! In this order:
//! 1. run by a systemd unit whose cgroup is delegated to it (the unit `tfctl systemd` writes,
//!    `Delegate=yes`): below the unit's own cgroup, so stopping the unit stops everything;
//! 2. systemd is PID 1 and answers on D-Bus: a transient scope `tfctl-<key>.scope` in
//!    `tfctl.slice` that systemd makes and delegates (as runc's and crun's systemd drivers do);
//! 3. no systemd: `/tfctl` under the cgroup root, or, when the root cannot be written, `tfctl`
//!    under the caller's own cgroup (without moving the caller, so with the controllers it
//!    offers as they are).
//!
//! In 1 and 2 the tfctl process that makes the place (the supervisor, or a foreground `run`)
//! moves itself and its own children into a `supervisor` leaf, so the place holds no process and
//! may hand controllers to the containers; no other process is ever moved. The place is written to
//! a record file in the app's state folder: `exec`, `down` or `rm` from a login shell find the
//! containers of an app that a unit or a scope runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;

/// The slice the transient scopes go in.
pub const SLICE: &str = "tfctl.slice";
/// The leaf the process that makes a unit's or a scope's place moves into.
pub const SUPERVISOR_LEAF: &str = "supervisor";
/// Set by the unit `tfctl systemd` writes, for systemd releases that do not mark a delegated
/// cgroup with the `trusted.delegate` attribute.
pub const DELEGATED_ENV: &str = "TFCTL_DELEGATED";

/// What the placement depends on, read from the host by [`Caller::read`] (and made up in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// This process's cgroup (the `0::` line of `/proc/self/cgroup`), `/`-rooted.
    pub own: String,
    /// The cgroup of the systemd service this process runs as, when systemd delegated it.
    pub delegated_unit: Option<String>,
    /// systemd is PID 1 (`/run/systemd/system` exists).
    pub systemd: bool,
    /// The cgroup root may be written (a `tfctl` folder made there).
    pub root_writable: bool,
}

/// One place container cgroups can go; paths are relative to the cgroup2 mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Home {
    /// The delegated unit's own cgroup.
    Unit(String),
    /// A transient scope systemd makes (the unit's name, its cgroup).
    Scope { unit: String, path: String },
    /// `/tfctl` at the root.
    Subtree(String),
    /// `tfctl` below the caller's own cgroup.
    UnderCaller(String),
}

impl Home {
    pub fn path(&self) -> &str {
        match self {
            Home::Unit(p) | Home::Subtree(p) | Home::UnderCaller(p) => p,
            Home::Scope { path, .. } => path,
        }
    }
}

/// The service cgroup a process at `own` belongs to: `own` itself, or its parent when `own` is
/// the supervisor leaf or systemd's `.control` cgroup (where `ExecStopPost=` commands run).
pub fn service_of(own: &str) -> Option<&str> {
    let unit = own
        .strip_suffix(&format!("/{SUPERVISOR_LEAF}"))
        .or_else(|| own.strip_suffix("/.control"))
        .unwrap_or(own);
    let last = unit.rsplit('/').next()?;
    last.ends_with(".service").then_some(unit)
}

/// The places to try for app `key`, best first: making a place may still fail (no D-Bus), then
/// the next one is taken. The last one is always possible.
pub fn candidates(c: &Caller, key: &str) -> Vec<Home> {
    let mut out = Vec::new();
    if let Some(unit) = &c.delegated_unit {
        out.push(Home::Unit(unit.clone()));
    }
    if c.systemd {
        let unit = format!("tfctl-{key}.scope");
        out.push(Home::Scope {
            path: format!("/{SLICE}/{unit}"),
            unit,
        });
    }
    let own = c.own.trim_end_matches('/');
    out.push(if c.root_writable || own.is_empty() {
        Home::Subtree("/tfctl".into())
    } else {
        Home::UnderCaller(format!("{own}/tfctl"))
    });
    out
}

impl Caller {
    /// Reads this process's situation: its cgroup, whether systemd delegated its unit's cgroup
    /// (the `trusted.delegate` attribute systemd sets, or [`DELEGATED_ENV`] with systemd's
    /// `INVOCATION_ID`), whether systemd runs and whether the root can be written.
    pub fn read(mount: &Path) -> Result<Caller, CgroupError> {
        let own = own_cgroup()?;
        let delegated_unit = service_of(&own)
            .filter(|_| std::env::var_os("INVOCATION_ID").is_some())
            .filter(|unit| {
                let dir = mount.join(unit.trim_start_matches('/'));
                std::env::var_os(DELEGATED_ENV).is_some_and(|v| v == "1")
                    || rustix::fs::getxattr(&dir, "trusted.delegate", &mut [0u8; 8])
                        .is_ok_and(|n| n >= 1)
            })
            .map(str::to_string);
        Ok(Caller {
            own,
            delegated_unit,
            systemd: Path::new("/run/systemd/system").is_dir(),
            root_writable: rustix::fs::access(mount, rustix::fs::Access::WRITE_OK).is_ok(),
        })
    }
}

/// This process's cgroup in the unified hierarchy.
pub fn own_cgroup() -> Result<String, CgroupError> {
    let cgroup = read_file(Path::new("/proc/self/cgroup"))?;
    cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|s| s.trim().to_string())
        .ok_or(CgroupError::NoCgroups)
}

/// The place recorded for an app in `record`, if its cgroup still exists.
pub fn recorded(mount: &Path, record: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(record).ok()?;
    let base = PathBuf::from(text.trim());
    (base.starts_with(mount) && base.is_dir()).then_some(base)
}

/// Makes the place `home` and returns its folder: for a unit or a scope, this process and its
/// children move into the supervisor leaf first; then the controllers tfctl uses are handed on.
pub fn establish(mount: &Path, home: &Home) -> Result<PathBuf, CgroupError> {
    let base = mount.join(home.path().trim_start_matches('/'));
    match home {
        Home::Unit(_) => {
            move_ours_into_leaf(mount, &base)?;
        }
        Home::Scope { unit, .. } => {
            if !base.is_dir() {
                let own = own_cgroup()?;
                let pids = ours_in(&mount.join(own.trim_start_matches('/')))?;
                super::systemd::start_scope(unit, SLICE, &pids)?;
                wait_until_in(&base)?;
            }
            move_ours_into_leaf(mount, &base)?;
        }
        Home::Subtree(_) => {
            std::fs::create_dir_all(&base).map_err(|source| CgroupError::Create {
                path: base.clone(),
                source,
            })?;
            // The root hands the controllers down to /tfctl first.
            if let Some(parent) = base.parent() {
                enable_controllers(parent)?;
            }
        }
        Home::UnderCaller(_) => {
            std::fs::create_dir_all(&base).map_err(|source| CgroupError::Create {
                path: base.clone(),
                source,
            })?;
        }
    }
    enable_controllers(&base)?;
    Ok(base)
}

/// Waits (briefly) until systemd has moved this process into `scope`.
fn wait_until_in(scope: &Path) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let own = own_cgroup()?;
        if scope.ends_with(own.trim_start_matches('/')) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(CgroupError::Systemd(format!(
                "systemd did not move tfctl into {} (it is in {own})",
                scope.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// This process and its descendants among the processes of cgroup `dir`: what tfctl started.
pub(crate) fn ours_in(dir: &Path) -> Result<Vec<u32>, CgroupError> {
    let me = std::process::id() as i32;
    let ppid = |pid: i32| -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
        stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
    };
    let is_ours = |pid: i32| {
        let mut p = pid;
        for _ in 0..64 {
            if p == me {
                return true;
            }
            match ppid(p) {
                Some(q) if q > 1 => p = q,
                _ => return false,
            }
        }
        false
    };
    Ok(read_pids(&dir.join("cgroup.procs"))?
        .into_iter()
        .filter(|&p| is_ours(p))
        .map(|p| p as u32)
        .collect())
}

/// Moves this process and its children that share its cgroup into `<base>/supervisor`, so
/// `base` may enable controllers (cgroup v2 allows no process beside enabled children).
fn move_ours_into_leaf(mount: &Path, base: &Path) -> Result<(), CgroupError> {
    let own = own_cgroup()?;
    let own_dir = mount.join(own.trim_start_matches('/'));
    let leaf = base.join(SUPERVISOR_LEAF);
    match std::fs::create_dir(&leaf) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(source) => return Err(CgroupError::Create { path: leaf, source }),
    }
    if own_dir != base {
        // Already in the leaf, or started outside the place (it already existed): stay.
        return Ok(());
    }
    let procs = leaf.join("cgroup.procs");
    for pid in ours_in(&own_dir)? {
        match write_file(&procs, &pid.to_string(), false) {
            Ok(()) => {}
            Err(CgroupError::Write { source, .. }) if source.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Controllers tfctl enables for container cgroups, when the parent offers them.
pub const WANTED: [&str; 3] = ["memory", "pids", "cpu"];

/// Enables, in `dir`'s `cgroup.subtree_control`, the wanted controllers `dir` offers and has not
/// enabled yet.
pub fn enable_controllers(dir: &Path) -> Result<(), CgroupError> {
    let offered = read_file(&dir.join("cgroup.controllers"))?;
    let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let enable: Vec<String> = WANTED
        .iter()
        .filter(|c| offered.split_whitespace().any(|o| o == **c))
        .filter(|c| !enabled.split_whitespace().any(|o| o == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if enable.is_empty() {
        return Ok(());
    }
    let control = dir.join("cgroup.subtree_control");
    if write_file(&control, &enable.join(" "), true).is_ok() {
        return Ok(());
    }
    // One the kernel refuses (cpu, while a realtime thread sits in this cgroup) must not cost
    // the others; a container asking for it is refused with the controller named.
    for c in &enable {
        let _ = write_file(&control, c, true);
    }
    Ok(())
}
