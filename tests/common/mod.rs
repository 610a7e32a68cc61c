//! Shared fixtures of the integration tests: the built binary and per-test state roots.
#![allow(dead_code)]

pub mod docker;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `tfctl` binary cargo built for this test run.
pub fn tfctl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tfctl")
}

/// The repository's top folder.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A `tfctl` command with its own state root and no host config, so tests never share state
/// with each other or with the host's /var/lib/tfctl.
pub struct Tfctl {
    pub root: tempfile::TempDir,
}

impl Tfctl {
    pub fn new() -> Self {
        let root = tempfile::Builder::new().prefix("tfctl-test-").tempdir().unwrap();
        Tfctl { root }
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(tfctl_bin());
        cmd.env("TFCTL_ROOT", self.root.path().join("state"))
            .env("TFCTL_CONFIG", self.root.path().join("no-config.kdl"))
            .env("NO_COLOR", "1")
            // Wide enough that messages are not folded in the middle of a word.
            .env("COLUMNS", "400")
            .env_remove("RUST_LOG");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("tfctl runs")
    }
}

/// Whatever a test leaves up (it failed half-way, say) goes down with its state root: each
/// app's supervisor, told through its control socket, removes the app's objects in the app's own
/// namespace.
impl Drop for Tfctl {
    fn drop(&mut self) {
        let Ok(apps) = std::fs::read_dir(self.root.path().join("state/apps")) else { return };
        for app in apps.flatten() {
            let name = app.file_name().to_string_lossy().into_owned();
            let _ = self.cmd().args(["down", "--quiet", &name]).output();
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A busybox-static OCI image layout built once per test binary by scripts/busybox-image.py;
/// returns its `oci:` reference.
pub fn busybox_image() -> String {
    use std::sync::OnceLock;
    static LAYOUT: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    let (_, reference) = LAYOUT.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("tfctl-busybox-").tempdir().unwrap();
        let layout = dir.path().join("busybox");
        let out = Command::new("python3")
            .arg(repo().join("scripts/busybox-image.py"))
            .arg(&layout)
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "busybox-image.py: {}", String::from_utf8_lossy(&out.stderr));
        (dir, format!("oci:{}", layout.display()))
    });
    reference.clone()
}

/// Mount points whose path contains `needle` (e.g. a test's state root).
pub fn mounts_under(needle: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let needle = needle.to_string_lossy();
    info.lines().filter(|l| l.contains(needle.as_ref())).map(str::to_string).collect()
}

/// A network namespace of the test's own, in which tfctl runs (through `nsenter --net`, which
/// leaves the mount namespace, and so the cgroup mounts, as they are). Deleted on drop.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn new(tag: &str) -> NetNs {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("tft-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let ok = Command::new("ip").args(["netns", "add", &name]).status().unwrap().success();
        assert!(ok, "ip netns add {name}");
        let ns = NetNs { name };
        assert!(ns.sh("ip link set lo up").status.success());
        ns
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// A command run inside the namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path())).arg(program);
        c
    }

    pub fn sh(&self, script: &str) -> Output {
        self.cmd("sh").args(["-c", script]).output().unwrap()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

impl Tfctl {
    /// A `tfctl` command inside `ns`.
    pub fn cmd_in(&self, ns: &NetNs) -> Command {
        let mut c = ns.cmd(tfctl_bin());
        c.env("TFCTL_ROOT", self.root.path().join("state"))
            .env("TFCTL_CONFIG", self.root.path().join("no-config.kdl"))
            .env("NO_COLOR", "1")
            .env("COLUMNS", "400");
        c
    }

    /// tfctl run inside `ns`.
    pub fn run_in(&self, ns: &NetNs, args: &[&str]) -> Output {
        self.cmd_in(ns).args(args).output().expect("tfctl runs")
    }

    /// An app's container names with their addresses (without the prefix length), from `ps
    /// --format json`, as a user would read them.
    pub fn addresses_in(&self, ns: &NetNs, app: &str) -> std::collections::HashMap<String, String> {
        let o = self.run_in(ns, &["ps", app, "--format", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("ps prints JSON");
        v["apps"][0]["containers"]
            .as_array()
            .expect("ps lists containers")
            .iter()
            .map(|c| (c["name"].as_str().unwrap().to_string(), c["address"].as_str().unwrap().split('/').next().unwrap().to_string()))
            .collect()
    }

    /// Whether container `target` (APP/NAME) gets an "ok" from `to:port` over tcp (`to` a name
    /// or an address; the server answers "ok").
    pub fn reaches_in(&self, ns: &NetNs, target: &str, to: &str, port: u16) -> bool {
        let o = self.run_in(ns, &["exec", target, "--", "sh", "-c", &format!("echo | nc -w 1 {to} {port}")]);
        stdout(&o).contains("ok")
    }
}

/// The image the samples use (`samples/images/busybox`), built if scripts/setup.sh has not;
/// returns its `oci:` reference.
pub fn sample_image() -> String {
    let layout = repo().join("samples/images/busybox");
    if !layout.join("index.json").exists() {
        let out = Command::new("python3").arg(repo().join("scripts/busybox-image.py")).arg(&layout).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    format!("oci:{}", layout.display())
}

/// An app that is up in `ns`; `down --volumes` when dropped, so a failing test leaves nothing.
pub struct Up<'a> {
    pub t: &'a Tfctl,
    pub ns: &'a NetNs,
    pub app: String,
}

impl<'a> Up<'a> {
    pub fn new(t: &'a Tfctl, ns: &'a NetNs, dir: &std::path::Path, app: &str, body: &str) -> Up<'a> {
        let file = dir.join("app.kdl");
        std::fs::write(&file, format!("app \"{app}\"\n{body}")).unwrap();
        let o = t.run_in(ns, &["up", "--trust-file", "--wait=30s", file.to_str().unwrap()]);
        let up = Up { t, ns, app: app.to_string() };
        assert_eq!(o.status.code(), Some(0), "up: {}", stderr(&o));
        up
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.t.run_in(self.ns, args)
    }

    pub fn ps(&self) -> serde_json::Value {
        let o = self.run(&["ps", &self.app, "--format", "json"]);
        serde_json::from_slice(&o.stdout).unwrap_or_default()
    }

    pub fn state(&self, container: &str) -> String {
        let v = self.ps();
        let c = v["apps"][0]["containers"].as_array().unwrap().iter().find(|c| c["name"] == container).cloned().unwrap_or_default();
        c["state"].as_str().unwrap_or_default().to_string()
    }

    /// Waits up to 10 s for `container` to reach `state`.
    pub fn wait_state(&self, container: &str, state: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.state(container) != state {
            assert!(std::time::Instant::now() < deadline, "{container} did not become {state}: {}", self.ps());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    pub fn state_dir(&self) -> std::path::PathBuf {
        self.t.root.path().join("state")
    }
}

impl Drop for Up<'_> {
    fn drop(&mut self) {
        let _ = self.t.run_in(self.ns, &["down", "--volumes", &self.app]);
    }
}


/// A test's own world: a network namespace, a state root, a scratch folder, and the sample
/// image's reference. Dropped in reverse: apps down (Tfctl), then the namespace.
pub struct World {
    pub dir: tempfile::TempDir,
    pub t: Tfctl,
    pub ns: NetNs,
    pub image: String,
}

impl World {
    pub fn new(tag: &str) -> World {
        let ns = NetNs::new(tag);
        World { dir: tempfile::tempdir().unwrap(), t: Tfctl::new(), ns, image: sample_image() }
    }

    /// App `app` made of `body` (KDL), up and waited for; `down --volumes` when dropped.
    pub fn up(&self, app: &str, body: &str) -> Up<'_> {
        Up::new(&self.t, &self.ns, self.dir.path(), app, body)
    }
}
