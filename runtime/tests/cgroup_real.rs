//! cgroups on the real kernel, as root: limits hold for a process attached the way the spawner
//! attaches (writing "0" to the attach files from the child), and cleanup leaves nothing.
//! `harness = false`: single-threaded, so the forked children may do anything.

#[path = "common/skip.rs"]
mod skip;

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use tfctl_runtime::cgroup::{
    self, devices_bpf, CgroupDriver, CgroupLimits, CgroupVersion, ContainerCgroup, ALLOWED_DEVICES,
};

/// Removes the cgroup when the test ends, passed or not.
struct Guard(Box<dyn ContainerCgroup>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = self.0.remove() {
            eprintln!("cleanup of {:?} failed: {e}", self.0.paths());
        }
    }
}

/// Forks a child that attaches itself through `attach` then runs `body`, whose return value is
/// its exit status.
fn in_child(attach: Vec<OwnedFd>, body: impl FnOnce() -> i32) -> Pid {
    // SAFETY: this test binary is single-threaded (harness = false).
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            for fd in &attach {
                if std::fs::File::from(fd.try_clone().unwrap())
                    .write_all(b"0")
                    .is_err()
                {
                    // SAFETY: leave at once.
                    unsafe { libc::_exit(100) };
                }
            }
            drop(attach);
            let code = body();
            // SAFETY: leave without the parent's atexit handlers.
            unsafe { libc::_exit(code) };
        }
        ForkResult::Parent { child } => child,
    }
}

fn name(what: &str) -> String {
    format!("tfctl-test-{}-{what}", std::process::id())
}

fn fork_bomb_stops_at_pids_max(d: &dyn CgroupDriver) {
    let limits = CgroupLimits {
        memory: None,
        cpus: None,
        pids: 20,
        pids_explicit: true,
        devices: Vec::new(),
    };
    let cg = Guard(d.create(&name("pids"), &limits).unwrap());
    let child = in_child(cg.0.attach_files().unwrap().fds, || {
        let mut forked = 0;
        for _ in 0..200 {
            // SAFETY: the grandchild only pauses.
            match unsafe { libc::fork() } {
                0 => loop {
                    // SAFETY: plain pause.
                    unsafe { libc::pause() };
                },
                -1 => break,
                _ => forked += 1,
            }
        }
        forked
    });
    let status = waitpid(child, None).unwrap();
    // The child itself is one of the 20.
    assert_eq!(
        status,
        WaitStatus::Exited(child, 19),
        "fork bomb stopped at pids.max"
    );
    assert_eq!(
        cg.0.stats().unwrap().pids,
        Some(19),
        "the paused grandchildren are in the cgroup"
    );
    let paths = cg.0.paths();
    drop(cg);
    assert!(
        paths.iter().all(|p| !p.exists()),
        "cleanup removed {paths:?}"
    );
    println!("ok: fork bomb stopped at pids.max=20 (19 forks); cleanup killed the rest and removed the dirs");
}

/// The v1 files hold what was asked (read back from the kernel).
fn v1_files_hold_the_limits(d: &dyn CgroupDriver) {
    let limits = CgroupLimits {
        memory: Some(64 << 20),
        cpus: Some(0.5),
        pids: 99,
        pids_explicit: true,
        devices: Vec::new(),
    };
    let cg = Guard(d.create(&name("files"), &limits).unwrap());
    let read = |file: &str| -> Option<String> {
        cg.0.paths()
            .iter()
            .map(|p| p.join(file))
            .find(|p| p.exists())
            .map(|p| std::fs::read_to_string(p).unwrap())
    };
    assert_eq!(
        read("memory.limit_in_bytes").unwrap().trim(),
        (64u64 << 20).to_string()
    );
    if let Some(memsw) = read("memory.memsw.limit_in_bytes") {
        assert_eq!(memsw.trim(), (64u64 << 20).to_string(), "no swap on top");
    }
    assert_eq!(read("pids.max").unwrap().trim(), "99");
    assert_eq!(read("cpu.cfs_quota_us").unwrap().trim(), "50000");
    assert_eq!(read("cpu.cfs_period_us").unwrap().trim(), "100000");
    let mut list: Vec<String> = read("devices.list")
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    list.sort();
    let mut want: Vec<String> = ALLOWED_DEVICES.iter().map(|d| d.v1_line()).collect();
    want.sort();
    assert_eq!(list, want, "devices.list is exactly the allow-list");
    // Each hierarchy nests under this process's own path in it.
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for p in cg.0.paths() {
        let s = p.display().to_string();
        assert!(s.contains("/tfctl/tfctl-test-"), "{s}");
        if s.starts_with("/sys/fs/cgroup/memory/") {
            let mine = own
                .lines()
                .find_map(|l| {
                    let mut parts = l.splitn(3, ':');
                    parts.next();
                    (parts.next()? == "memory").then(|| parts.next())?
                })
                .unwrap();
            assert!(
                s.starts_with(&format!(
                    "/sys/fs/cgroup/memory{}/tfctl/",
                    mine.trim_end_matches('/')
                )),
                "{s} under {mine}"
            );
        }
    }
    println!("ok: v1 files: memory(+memsw), pids.max, cfs quota/period and devices.list as asked, under the caller's path per hierarchy");
}

fn memory_hog_is_oom_killed(d: &dyn CgroupDriver) {
    let limits = CgroupLimits {
        memory: Some(32 << 20),
        cpus: None,
        pids: 64,
        pids_explicit: false,
        devices: Vec::new(),
    };
    let cg = Guard(d.create(&name("mem"), &limits).unwrap());
    let child = in_child(cg.0.attach_files().unwrap().fds, || {
        let mut hog: Vec<Vec<u8>> = Vec::new();
        for _ in 0..64 {
            hog.push(vec![1u8; 4 << 20]); // touched: vec! writes every byte
        }
        hog.len() as i32
    });
    let status = waitpid(child, None).unwrap();
    assert_eq!(
        status,
        WaitStatus::Signaled(child, Signal::SIGKILL, false),
        "the hog is OOM-killed"
    );
    let stats = cg.0.stats().unwrap();
    assert!(stats.oom_kills.unwrap_or(0) >= 1, "{stats:?}");
    println!("ok: 256 MiB hog in a 32 MiB cgroup was OOM-killed; stats {stats:?}");
}

/// Device nodes on a filesystem that allows them (not nodev).
fn device_nodes() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let null = dir.path().join("null");
    let mem = dir.path().join("kmsg");
    let disk = dir.path().join("disk");
    mknod(
        &null,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(1, 3),
    )
    .unwrap();
    mknod(
        &mem,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o600),
        makedev(1, 11),
    )
    .unwrap();
    mknod(
        &disk,
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o600),
        makedev(253, 0),
    )
    .unwrap();
    (dir, null, mem, disk)
}

fn open_errno(p: &Path) -> i32 {
    match std::fs::File::open(p) {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

/// Exit status: 0 when the /dev/null node opens and the kmsg and disk nodes do not (EPERM).
fn probe_devices(null: &Path, mem: &Path, disk: &Path) -> i32 {
    let (n, m, d) = (open_errno(null), open_errno(mem), open_errno(disk));
    if n == 0 && m == libc::EPERM && d == libc::EPERM {
        0
    } else {
        eprintln!("device probe: null {n} mem {m} disk {d}");
        1
    }
}

fn planted_devices_are_refused(d: &dyn CgroupDriver) {
    let (_dir, null, mem, disk) = device_nodes();
    // Control: outside the cgroup, root opens both.
    assert_eq!((open_errno(&null), open_errno(&mem)), (0, 0), "control");
    let cg = Guard(
        d.create(&name("dev"), &CgroupLimits::from_model(&Default::default()))
            .unwrap(),
    );
    let child = in_child(cg.0.attach_files().unwrap().fds, || {
        probe_devices(&null, &mem, &disk)
    });
    assert_eq!(
        waitpid(child, None).unwrap(),
        WaitStatus::Exited(child, 0),
        "device allow-list"
    );
    println!("ok: {:?} devices: c 1:3 opens, c 1:11 (kmsg) and a planted block node get EPERM", d.version());
}

/// The v2 device program on this host's cgroup2 mount (controllers are not needed for it).
fn v2_device_program(mount: &Path) {
    let dir = mount.join(name("devbpf"));
    std::fs::create_dir(&dir).unwrap();
    struct RmDir(PathBuf);
    impl Drop for RmDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _guard = RmDir(dir.clone());
    let prog = devices_bpf::load(&ALLOWED_DEVICES).unwrap();
    let dirfd = std::fs::File::open(&dir).unwrap();
    devices_bpf::attach(dirfd.as_fd(), prog.as_fd()).unwrap();
    let (_nodes, null, mem, disk) = device_nodes();
    let procs = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.procs"))
        .unwrap();
    let child = in_child(vec![procs.into()], || probe_devices(&null, &mem, &disk));
    assert_eq!(
        waitpid(child, None).unwrap(),
        WaitStatus::Exited(child, 0),
        "eBPF device allow-list"
    );
    println!(
        "ok: v2 eBPF device program on {}: c 1:3 opens, c 1:11 and a block node get EPERM",
        dir.display()
    );
}

fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mount = pre.split(' ').nth(4)?;
        post.starts_with("cgroup2 ").then(|| PathBuf::from(mount))
    })
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        skip::cannot_run("cgroup_real", "needs root");
        return;
    }
    // The place a supervisor would make for an app (on v2: a scope under systemd, else tfctl's
    // subtree).
    let mut skipped = false;
    let d = cgroup::detect(&format!("test{}", std::process::id())).unwrap();
    match d.version() {
        CgroupVersion::V1 => {
            v1_files_hold_the_limits(d.as_ref());
            fork_bomb_stops_at_pids_max(d.as_ref());
            memory_hog_is_oom_killed(d.as_ref());
            planted_devices_are_refused(d.as_ref());
            // scripts/test.sh proves them on a cgroup v2 kernel under qemu (scripts/vm/run.sh).
            skip::cannot_run("v2 backend limits", "this host's cgroup2 tree has no usable controllers (cgroup v1 or hybrid)");
            skipped = true;
        }
        CgroupVersion::V2 => {
            fork_bomb_stops_at_pids_max(d.as_ref());
            memory_hog_is_oom_killed(d.as_ref());
            planted_devices_are_refused(d.as_ref());
        }
    }
    match cgroup2_mount() {
        Some(m) => v2_device_program(&m),
        None => {
            skip::cannot_run("v2 device program", "no cgroup2 mount");
            skipped = true;
        }
    }
    println!("cgroup_real: {}", if skipped { "passed, with checks skipped (see SKIP above)" } else { "all passed" });
}
