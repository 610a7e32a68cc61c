//! Shared pieces of the start tests: a busybox rootfs, plans, running a container and
//! capturing its output, a tiny test runner.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use tfctl_runtime::spawn::*;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub layer: PathBuf,
    next: AtomicUsize,
}

impl Fixture {
    /// A busybox layer with `/disk`, a block device node for the host's root disk, `/nullnode`
    /// (char 1:3 under another name), and a hazard
    /// layer (`self.hazard()`) of planted symlinks:
    /// - `/etc/planted` -> a host file (`victim` in the fixture dir);
    /// - `/sys` -> the fixture's `hostsys` dir, `/dev` -> `/../../../..` + its `hostdev` dir
    ///   (both exist on the host, and inside the image).
    pub fn new() -> Fixture {
        let dir = tempfile::Builder::new().prefix(&format!("tfctl-start-{}-", std::process::id())).tempdir().unwrap();
        let layer = dir.path().join("layer");
        for d in ["bin", "etc", "proc", "dev", "sys", "tmp", "root", "home/app"] {
            std::fs::create_dir_all(layer.join(d)).unwrap();
        }
        std::fs::set_permissions(layer.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::fs::copy("/bin/busybox", layer.join("bin/busybox")).unwrap();
        let out = std::process::Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8(out.stdout).unwrap().lines() {
            if applet != "busybox" {
                symlink("busybox", layer.join("bin").join(applet)).unwrap();
            }
        }
        std::fs::write(layer.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n").unwrap();
        // The host's root disk, planted as a device node.
        let root_dev = nix::sys::stat::stat("/").unwrap().st_dev;
        nix::sys::stat::mknod(&layer.join("disk"), nix::sys::stat::SFlag::S_IFBLK, nix::sys::stat::Mode::from_bits_truncate(0o666), root_dev).unwrap();
        // A harmless device (the null device) under another name: the host may open this one.
        nix::sys::stat::mknod(&layer.join("nullnode"), nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::from_bits_truncate(0o666), libc::makedev(1, 3)).unwrap();
        // The hazard layer, stacked on top in the tests that ask for it.
        let hazard = dir.path().join("hazard");
        std::fs::create_dir_all(hazard.join("etc")).unwrap();
        std::fs::write(dir.path().join("victim"), "host data\n").unwrap();
        symlink(dir.path().join("victim"), hazard.join("etc/planted")).unwrap();
        for name in ["hostsys", "hostdev"] {
            let host = dir.path().join(name);
            std::fs::create_dir(&host).unwrap();
            // The same path inside the image, where the redirected mount lands.
            std::fs::create_dir_all(hazard.join(host.strip_prefix("/").unwrap())).unwrap();
        }
        symlink(dir.path().join("hostsys"), hazard.join("sys")).unwrap();
        symlink(format!("/../../../..{}", dir.path().join("hostdev").display()), hazard.join("dev")).unwrap();
        Fixture { dir, layer, next: AtomicUsize::new(0) }
    }

    /// A fresh empty mountpoint directory.
    pub fn mountpoint(&self) -> PathBuf {
        let p = self.dir.path().join(format!("mnt-{}", self.next.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir(&p).unwrap();
        p
    }

    pub fn hazard(&self) -> PathBuf {
        self.dir.path().join("hazard")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Docker's defaults: the standard mounts, masks, read-only paths, default caps, no_new_privs.
    pub fn plan(&self, argv: &[&str]) -> StartPlan {
        Fixture::plan_for(self.layer.clone(), self.mountpoint(), argv)
    }

    pub fn plan_for(layer: PathBuf, mountpoint: PathBuf, argv: &[&str]) -> StartPlan {
        StartPlan {
            mode: Mode::Container(Box::new(ContainerSetup {
                rootfs: Rootfs { source: RootfsSource::Overlay { layers: vec![layer], upper: OverlayUpper::Tmpfs { size_bytes: 16 << 20 } }, mountpoint },
                mounts: MountStep::defaults(),
                files: vec![],
                masked_paths: MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
                readonly_paths: READONLY_PATHS.iter().map(|s| s.to_string()).collect(),
                readonly_rootfs: false,
                hostname: Some("tfctl-test".into()),
                secret_targets: vec![],
                idmapped_binds_below: vec![],
                sysctls: vec![],
                host_pid: false,
            })),
            process: Process { argv: argv.iter().map(|s| s.to_string()).collect(), env: vec!["PATH=/bin".into()], cwd: "/".into() },
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
}

pub fn setup(plan: &mut StartPlan) -> &mut ContainerSetup {
    match &mut plan.mode {
        Mode::Container(s) => s,
        Mode::Join => panic!("not a container plan"),
    }
}

pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

fn pipe() -> (OwnedFd, std::fs::File) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    (w, std::fs::File::from(r))
}

/// Starts a process with piped stdout/stderr; returns the child and the two readers.
pub fn launch(spawner: &Spawner, plan: &StartPlan, extra: StartFds) -> Result<(Child, std::fs::File, std::fs::File), StartError> {
    let (out_w, out_r) = pipe();
    let (err_w, err_r) = pipe();
    let fds = StartFds { stdout: Some(out_w), stderr: Some(err_w), ..extra };
    spawner.launch(plan, fds).map(|c| (c, out_r, err_r))
}

pub fn finish(child: Child, mut out: std::fs::File, mut err: std::fs::File) -> Output {
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let mut stdout = String::new();
    out.read_to_string(&mut stdout).unwrap();
    let stderr = reader.join().unwrap();
    let status = child.wait().unwrap();
    Output { status, stdout, stderr }
}

/// Runs a plan to completion.
pub fn run(spawner: &Spawner, plan: &StartPlan) -> Result<Output, StartError> {
    let (c, o, e) = launch(spawner, plan, StartFds::default())?;
    Ok(finish(c, o, e))
}

/// Runs and requires exit 0; returns stdout.
pub fn run_ok(spawner: &Spawner, plan: &StartPlan) -> String {
    let out = run(spawner, plan).unwrap_or_else(|e| panic!("start failed: {e}"));
    assert_eq!(out.status, ExitStatus::Exited(0), "stdout: {}\nstderr: {}", out.stdout, out.stderr);
    out.stdout
}

/// `Key:\tvalue` lines of /proc/PID/status.
pub fn status_fields(text: &str) -> BTreeMap<String, String> {
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect()
}

/// Mount points (field 5 of mountinfo) of this process's mount namespace under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = dir.to_str().unwrap();
    info.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(prefix)).map(String::from).collect()
}

/// Runs named cases in order, each caught separately; exits non-zero if any failed.
/// A named test case.
pub type Case = (&'static str, fn(&Spawner, &Fixture));

pub fn run_cases(cases: &[Case], spawner: &Spawner, fixture: &Fixture) {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, case) in cases {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let started = std::time::Instant::now();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(spawner, fixture))) {
            Ok(()) => println!("test {name} ... ok ({:.1} ms)", started.elapsed().as_secs_f64() * 1e3),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    println!("\n{} passed, {} failed", ran - failed.len(), failed.len());
    if !failed.is_empty() {
        println!("failed: {failed:?}");
        std::process::exit(1);
    }
}
