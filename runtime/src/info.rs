//! `tfctl info`: what this host gives tfctl, as `docker info` and `podman info` tell it: the
//! kernel, cgroups and their controllers, the kernel features tfctl relies on (each with
//! whether this host has it and which route tfctl takes), nftables, seccomp, user namespaces,
//! the state root.
//!
//! Every answer is read from the kernel (a probe, a /proc or /sys file), never assumed from the
//! version alone, except where no probe can tell without side effects; those say so.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// The report's JSON schema: bumped when a field changes meaning or goes away.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    pub schema: u32,
    pub tfctl_version: String,
    pub kernel: Kernel,
    pub root: bool,
    pub cgroup: CgroupInfo,
    pub features: Vec<Feature>,
    pub state_root: StateRootInfo,
    pub systemd: SystemdInfo,
    /// What stops this host from running containers at all; empty when it can.
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Kernel {
    /// `uname -r`.
    pub release: String,
    /// (major, minor) read from the release.
    pub version: (u32, u32),
    pub arch: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CgroupInfo {
    /// 1 (v1 or hybrid) or 2 (unified).
    pub version: u8,
    /// `/sys/fs/cgroup` is cgroup2 alone (`unified`), v1 with a cgroup2 beside it (`hybrid`),
    /// or v1 only (`legacy`).
    pub mode: String,
    /// Controllers tfctl can use: enabled in /proc/cgroups (v1) or in the root's
    /// cgroup.controllers (v2).
    pub controllers: Vec<String>,
}

/// One thing tfctl relies on.
#[derive(Debug, Clone, Serialize)]
pub struct Feature {
    pub name: String,
    pub available: bool,
    /// What tfctl does on this host: the feature's own route, or its fallback.
    pub route: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StateRootInfo {
    pub path: PathBuf,
    pub exists: bool,
    /// The folder's mode, when it exists.
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemdInfo {
    /// systemd is PID 1 (`/run/systemd/system` exists).
    pub pid1: bool,
    /// The system bus socket is there.
    pub dbus: bool,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn kernel() -> Kernel {
    let u = nix::sys::utsname::uname().ok();
    let release = u.as_ref().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    let arch = u.as_ref().map(|u| u.machine().to_string_lossy().into_owned()).unwrap_or_default();
    // The version the mount routes are chosen by: what `info` says is what tfctl does.
    Kernel { version: crate::sys::kernel_version(), release, arch }
}

fn cgroup() -> CgroupInfo {
    if crate::cgroup::version() == crate::cgroup::CgroupVersion::V2 {
        let controllers = read("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default().split_whitespace().map(str::to_string).collect();
        return CgroupInfo { version: 2, mode: "unified".into(), controllers };
    }
    let hybrid = Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists();
    CgroupInfo { version: 1, mode: if hybrid { "hybrid" } else { "legacy" }.into(), controllers: v1_controllers(&read("/proc/cgroups").unwrap_or_default()) }
}

/// Enabled controllers from /proc/cgroups (`name hierarchy num_cgroups enabled`).
fn v1_controllers(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[3] == "1").then(|| f[0].to_string())
        })
        .collect()
}

fn feature(name: &str, available: bool, yes: &str, no: &str) -> Feature {
    Feature { name: name.to_string(), available, route: if available { yes } else { no }.to_string() }
}

/// Whether the new mount API (fsopen, Linux 5.2) works, and with it whether the kernel has the
/// file system: opening a context loads its module, creates nothing.
fn fs_context(fstype: &str) -> bool {
    rustix::mount::fsopen(fstype, rustix::mount::FsOpenFlags::FSOPEN_CLOEXEC).is_ok()
}

fn tmpfs_noswap() -> bool {
    rustix::mount::fsopen("tmpfs", rustix::mount::FsOpenFlags::FSOPEN_CLOEXEC)
        .is_ok_and(|fs| rustix::mount::fsconfig_set_flag(&fs, "noswap").is_ok())
}

fn openat2() -> bool {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    let how = OpenHow::new().flags(OFlag::O_PATH | OFlag::O_CLOEXEC).resolve(ResolveFlag::RESOLVE_IN_ROOT);
    nix::fcntl::openat2(nix::fcntl::AT_FDCWD, "/", how).is_ok()
}

fn pidfd() -> bool {
    crate::sys::pidfd_open(std::process::id() as i32).map(crate::sys::close).is_ok()
}

/// Gathers the report. Nothing here changes the host.
pub fn gather(state_root: &Path) -> HostInfo {
    let kernel = kernel();
    let at_least = |major: u32, minor: u32| kernel.version >= (major, minor);
    let cgroup = cgroup();
    let root = nix::unistd::geteuid().is_root();

    let mount_api = fs_context("tmpfs");
    let overlay = fs_context("overlay");
    let seccomp_actions = read("/proc/sys/kernel/seccomp/actions_avail").unwrap_or_default();
    let seccomp = seccomp_actions.split_whitespace().any(|a| a == "errno");
    let userns_max = read("/proc/sys/user/max_user_namespaces").and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0);
    let nftables = if root { Some(crate::net::firewall::foreign_drop_policies().is_ok()) } else { None };
    let mut features = vec![
        feature("mount API (fsopen, Linux 5.2)", mount_api, "used for every mount", "missing: tfctl cannot mount a container's filesystem"),
        feature("overlay file system", overlay, "image layers are stacked with overlayfs", "missing: load the overlay module (modprobe overlay)"),
        feature(
            "overlay layers added one by one (lowerdir+, Linux 6.8)",
            crate::sys::overlay_lowerdir_plus(),
            "each layer is given on its own",
            "layers are given in one option, as short paths relative to the layers folder (up to one page)",
        ),
        feature("openat2 RESOLVE_IN_ROOT (Linux 5.6)", openat2(), "every path inside an image or container resolves inside it", "missing: tfctl cannot confine paths safely"),
        feature("pidfd (Linux 5.3)", pidfd(), "processes are signalled and waited for by descriptor", "missing"),
        feature(
            "mount_setattr (Linux 5.12)",
            crate::sys::mount_setattr_supported(),
            "read-only and nosuid flags set on whole trees",
            "flags set by a remount of each mount; a recursive bind with flags shows its own mount alone",
        ),
        feature("tmpfs noswap (Linux 6.4)", tmpfs_noswap(), "secrets' memory is never swapped", "secrets' memory may be swapped out (no noswap); use encrypted swap or none"),
        feature(
            "cloning a detached mount (open_tree, Linux 6.15)",
            at_least(6, 15),
            "each secret file is cut from the secrets tmpfs while detached",
            "the secrets tmpfs is attached in a private mount namespace first",
        ),
        feature("cgroup namespace", Path::new("/proc/self/ns/cgroup").exists(), "a container sees its own cgroup as /", "the container sees the host's cgroup paths"),
        feature("seccomp filters", seccomp, "the default profile is installed in every container", "missing: containers would run without a syscall filter"),
        feature(
            "user namespaces",
            userns_max > 0,
            "available (used where an app asks for `userns`)",
            "disabled (user.max_user_namespaces is 0)",
        ),
    ];
    match nftables {
        Some(ok) => features.push(feature("nftables", ok, "the firewall is written with nf_tables over netlink", "missing: no firewall can be set up (load nf_tables)")),
        None => features.push(Feature { name: "nftables".into(), available: false, route: "unknown: only root can ask the kernel".into() }),
    }

    let mut missing = Vec::new();
    for f in &features {
        if !f.available && f.route.starts_with("missing") {
            missing.push(format!("{}: {}", f.name, f.route.trim_start_matches("missing: ")));
        }
    }
    let wanted = if cgroup.version == 2 { &["memory", "pids"][..] } else { &["memory", "pids", "cpu", "devices", "freezer"][..] };
    for c in wanted {
        if !cgroup.controllers.iter().any(|have| have == c) {
            missing.push(format!("the {c} cgroup controller is not enabled"));
        }
    }

    let meta = std::fs::metadata(state_root).ok();
    let state_root = StateRootInfo {
        path: state_root.to_path_buf(),
        exists: meta.is_some(),
        mode: meta.map(|m| format!("{:o}", std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)),
    };
    HostInfo {
        schema: SCHEMA,
        tfctl_version: env!("CARGO_PKG_VERSION").to_string(),
        kernel,
        root,
        cgroup,
        features,
        state_root,
        systemd: SystemdInfo { pid1: Path::new("/run/systemd/system").is_dir(), dbus: Path::new("/run/dbus/system_bus_socket").exists() },
        missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_controllers_are_the_enabled_ones() {
        let text = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\ncpu\t4\t60\t1\nmemory\t0\t90\t0\npids\t5\t60\t1\n";
        assert_eq!(v1_controllers(text), ["cpuset", "cpu", "pids"]);
    }

    /// What this host has, read as `info` reads it: the report agrees with what the kernel
    /// says through other doors.
    #[test]
    fn the_report_matches_this_host() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o710)).unwrap();
        let info = gather(dir.path());
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(info.kernel.release, release.trim());
        let unified = std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| l.contains(" /sys/fs/cgroup ") && l.contains(" - cgroup2 "));
        assert_eq!(info.cgroup.version == 2, unified);
        assert!(info.features.iter().any(|f| f.name.starts_with("overlay file system") && f.available));
        assert_eq!(info.state_root.mode.as_deref(), Some("710"));
        assert_eq!(info.schema, 1);
    }
}
