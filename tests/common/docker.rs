//! A real Docker Engine for tests: Debian's `dockerd` (package docker.io) started per test inside
//! the test's network namespace, with everything of its own under one temp folder: data root,
//! exec root (containerd's root and state go under these two, and its socket too), pid file,
//! API socket, daemon config, trust key, log, and a cgroup parent named after the test process.
//! Docker's own network objects (its bridge, its iptables-nft rules, its containers' namespaces)
//! are made in the test's namespace, so a test sees Docker exactly as on a host that runs it.
//!
//! Started with `nsenter --net` and not `ip netns exec`, which remounts /sys in a new mount
//! namespace (dockerd then finds no cgroup hierarchies). A daemon that cannot start fails the
//! test: there is no skip. On drop: SIGTERM, a wait, SIGKILL; the processes it left (containerd,
//! shims, containers) are killed by pid, found by their cgroup and by the paths in their command
//! lines; its mounts (its data root bound on itself, overlays, container namespaces) are
//! unmounted lazily; its cgroups and links are removed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The Docker CLI that comes with the daemon (another `docker` may come first in PATH).
const DOCKER_CLI: &str = "/usr/bin/docker";
const DOCKERD: &str = "/usr/sbin/dockerd";

/// Host-wide folders dockerd and containerd create whatever their roots (plugin sockets, shim
/// sockets); removed on drop if they did not exist before and are empty.
const SHARED_DIRS: &[&str] = &["/run/docker/plugins", "/run/docker", "/run/containerd/s", "/run/containerd"];

pub struct Docker {
    pub dir: tempfile::TempDir,
    /// The API socket (`-H unix://...`).
    pub sock: PathBuf,
    pub log: PathBuf,
    /// The network namespace dockerd runs in (a /run/netns path).
    pub netns: String,
    /// `--cgroup-parent`: containers' cgroups are `<hierarchy>/<this>/<id>`.
    pub cgroup_parent: String,
    child: Option<Child>,
    shared_dirs_made: Vec<&'static str>,
    /// More dockerd flags (`--add-runtime NAME=PATH`).
    extra_args: Vec<String>,
}

fn out(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

impl Docker {
    /// Starts dockerd in the network namespace at `netns` (e.g. `/run/netns/NAME`) and waits
    /// until it answers. Panics, with its log, if it does not within a minute.
    pub fn start(netns: &str) -> Docker {
        Docker::start_with(netns, &[])
    }

    /// As [`Docker::start`], with more dockerd flags.
    pub fn start_with(netns: &str, extra_args: &[&str]) -> Docker {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = tempfile::Builder::new().prefix("tfctl-docker-").tempdir().unwrap();
        let d = dir.path();
        let cgroup_parent = format!("/tfctl-test-docker-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        // The daemon's config file: none of the host's /etc/docker/daemon.json, and the trust key
        // (else /etc/docker/key.json) in the test's folder.
        let config = d.join("daemon.json");
        std::fs::write(&config, format!("{{\"deprecated-key-path\": \"{}\"}}\n", d.join("key.json").display())).unwrap();
        let sock = d.join("docker.sock");
        let log = d.join("dockerd.log");
        let shared_dirs_made = SHARED_DIRS.iter().copied().filter(|p| !Path::new(p).exists()).collect();
        let mut docker = Docker { dir, sock, log, netns: netns.to_string(), cgroup_parent, child: None, shared_dirs_made, extra_args: extra_args.iter().map(|s| s.to_string()).collect() };
        docker.spawn();
        docker
    }

    /// Starts dockerd with this fixture's folders and waits until it answers.
    fn spawn(&mut self) {
        let d = self.dir.path();
        let logf = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net={}", self.netns))
            .arg(DOCKERD)
            .arg("--config-file").arg(d.join("daemon.json"))
            .arg("--data-root").arg(d.join("data"))
            .arg("--exec-root").arg(d.join("exec"))
            .arg("--pidfile").arg(d.join("docker.pid"))
            .arg("-H").arg(format!("unix://{}", self.sock.display()))
            .args(["--iptables=true", "--cgroup-parent", &self.cgroup_parent, "--shutdown-timeout", "2"])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("dockerd runs (scripts/setup.sh installs docker.io)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.run(&["version", "--format", "{{.Server.Version}}"]).status.success() {
                break;
            }
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(exited.is_none() && Instant::now() < deadline, "dockerd did not start ({exited:?}): {}", self.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops dockerd (SIGTERM, its containers stop within --shutdown-timeout) and waits for it;
    /// SIGKILL after 30 s. Its folders, images and containers stay.
    pub fn stop(&mut self) {
        if let Some(pid) = self.pid() {
            signal(pid, "TERM");
        }
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if child.try_wait().ok().flatten().is_none() {
                if let Some(pid) = self.pid() {
                    signal(pid, "KILL");
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Stops dockerd and starts it again, as a `systemctl restart docker` does: it rebuilds its
    /// iptables chains on start.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A docker CLI command talking to this daemon (and no user config).
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(DOCKER_CLI);
        c.env("DOCKER_CONFIG", self.dir.path().join("cli")).arg("-H").arg(format!("unix://{}", self.sock.display()));
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).stdin(Stdio::null()).output().expect("the docker CLI runs")
    }

    /// `run`, asserting success; returns stdout.
    pub fn must(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "docker {args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Loads an image from an OCI layout reference (`oci:PATH` or `oci:PATH:TAG`, as
    /// `busybox_image()`/`sample_image()` return) into the daemon as `name` (`repo:tag`).
    pub fn load(&self, oci: &str, name: &str) {
        let o = Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-daemon-host"])
            .arg(format!("unix://{}", self.sock.display()))
            .arg(oci)
            .arg(format!("docker-daemon:{name}"))
            .output()
            .expect("skopeo runs");
        assert!(o.status.success(), "skopeo copy {oci} to {name}: {}", out(&o));
    }

    /// The daemon's pid (from its pid file).
    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("docker.pid")).ok()?.trim().parse().ok()
    }

    /// The controller hierarchies' folders of the cgroup parent (v1 and the unified one).
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else { return vec![] };
        let mut dirs: Vec<PathBuf> = hierarchies.flatten().map(|h| h.path().join(self.cgroup_parent.trim_start_matches('/'))).filter(|p| p.is_dir()).collect();
        if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            dirs.push(Path::new("/sys/fs/cgroup").join(self.cgroup_parent.trim_start_matches('/')));
        }
        dirs.retain(|p| p.is_dir());
        dirs
    }

    /// Pids of what dockerd left: processes in its cgroups (containers) and processes whose
    /// command line names the test's folder (containerd, its shims, docker-proxy does not).
    fn leftover_pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for dir in self.cgroup_dirs() {
            for entry in walk(&dir) {
                if let Ok(procs) = std::fs::read_to_string(entry.join("cgroup.procs")) {
                    pids.extend(procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
                }
            }
        }
        let needle = self.dir.path().to_string_lossy().into_owned();
        for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else { continue };
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) && pid != std::process::id() {
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

/// Every folder under `dir` (itself included), deepest first.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&e.path()));
            }
        }
    }
    out.push(dir.to_path_buf());
    out
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).stderr(Stdio::null()).status();
}

fn alive(pid: u32) -> bool {
    // A zombie has no command line left; it is gone for our purposes.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

impl Drop for Docker {
    fn drop(&mut self) {
        // The daemon stops its containers (within --shutdown-timeout) and its containerd.
        self.stop();
        // Whatever outlived it, by pid: containerd, shims, container processes.
        for _ in 0..50 {
            let left = self.leftover_pids();
            if left.is_empty() {
                break;
            }
            for pid in left.iter().copied().filter(|p| alive(*p)) {
                signal(pid, "KILL");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Its mounts: the data root bound on itself, overlays, container namespaces (nsfs).
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| Path::new(m).starts_with(self.dir.path()))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in &mounts {
            let _ = rustix::mount::unmount(m.as_str(), rustix::mount::UnmountFlags::DETACH);
        }
        for dir in self.cgroup_dirs() {
            for d in walk(&dir) {
                let _ = std::fs::remove_dir(d);
            }
        }
        // Its links in the test's namespace (its bridge; the veths went with the containers).
        let _ = Command::new("nsenter").arg(format!("--net={}", self.netns)).args(["ip", "link", "del", "docker0"]).stderr(Stdio::null()).status();
        for d in &self.shared_dirs_made {
            let _ = std::fs::remove_dir(d);
        }
        if !std::thread::panicking() {
            let left = super::mounts_under(self.dir.path());
            assert!(left.is_empty(), "dockerd left mounts: {left:?}");
            let cgroups = self.cgroup_dirs();
            assert!(cgroups.is_empty(), "dockerd left cgroups: {cgroups:?}");
            let pids = self.leftover_pids();
            assert!(pids.is_empty(), "dockerd left processes: {pids:?}");
        }
    }
}
