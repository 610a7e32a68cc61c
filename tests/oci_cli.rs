//! `tfctl oci`, the OCI runtime command line: the lifecycle verbs on a bundle written here
//! (busybox-static as the root, a `crun spec`-like config.json), hooks in the spec's order, and
//! Docker driving tfctl through containerd's shim (`dockerd --add-runtime tfctl=SCRIPT`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::docker::Docker;
use common::{sample_image, stderr, stdout, tfctl_bin, NetNs};

/// A bundle: `rootfs/` with busybox and its applets, and `config.json` running `args`.
struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn new(args: &[&str], hooks: serde_json::Value) -> Bundle {
        let dir = tempfile::Builder::new().prefix("tfctl-oci-bundle-").tempdir().unwrap();
        let root = dir.path().join("rootfs");
        for d in ["bin", "etc", "proc", "dev", "sys", "tmp"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for applet in ["sh", "echo", "sleep", "cat", "hostname", "id"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        let caps = serde_json::json!(["CAP_KILL", "CAP_CHOWN"]);
        let config = serde_json::json!({
            "ociVersion": "1.2.0",
            "process": {
                "terminal": false, "user": {"uid": 0, "gid": 0}, "args": args,
                "env": ["PATH=/bin", "TERM=xterm"], "cwd": "/",
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs"},
            "hostname": "ocibox",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
            ],
            "hooks": hooks,
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                "resources": {"pids": {"limit": 64}},
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        });
        std::fs::write(dir.path().join("config.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        Bundle { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// `tfctl --root ROOT oci ...`, with the container's stdio going to `out`.
struct Oci {
    root: tempfile::TempDir,
}

impl Oci {
    fn new() -> Oci {
        Oci { root: tempfile::Builder::new().prefix("tfctl-oci-root-").tempdir().unwrap() }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(tfctl_bin());
        c.arg("--root").arg(self.root.path()).arg("oci").args(args).env("NO_COLOR", "1").env_remove("RUST_LOG");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn must(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "tfctl oci {args:?}: {}{}", stdout(&o), stderr(&o));
        stdout(&o)
    }

    /// `create`, the container's stdio (which it keeps) going to files in `bundle`, not to
    /// pipes this test would wait on: (success, stderr).
    fn create(&self, bundle: &Bundle, id: &str, extra: &[&str]) -> (bool, String) {
        let out = bundle.path().join(format!("{id}.out"));
        let err = bundle.path().join(format!("{id}.err"));
        let status = self
            .cmd(&[&["create", "--bundle", bundle.path().to_str().unwrap()][..], extra, &[id]].concat())
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        (status.success(), std::fs::read_to_string(&err).unwrap())
    }

    fn status(&self, id: &str) -> (String, i64) {
        let v: serde_json::Value = serde_json::from_str(&self.must(&["state", id])).unwrap();
        (v["status"].as_str().unwrap().to_string(), v["pid"].as_i64().unwrap())
    }
}

/// Whatever a failing test left: the container killed and its state removed.
impl Drop for Oci {
    fn drop(&mut self) {
        let ids = self.run(&["list", "-q"]);
        for id in stdout(&ids).lines() {
            let _ = self.run(&["delete", "--force", id]);
        }
    }
}

/// Waits for a file to hold `want` (a process outside this one writes it). Bounded by the
/// container's own `sleep`, not by a timed assertion.
fn wait_for_line(path: &Path, want: &str) -> String {
    for _ in 0..500 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(want) {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn create_start_state_kill_delete() {
    let oci = Oci::new();
    let out_dir = tempfile::tempdir().unwrap();
    let bundle = Bundle::new(&["sh", "-c", "echo hello from $(hostname) as $(id -u); exec sleep 300"], serde_json::json!({}));
    let pid_file = out_dir.path().join("pid");
    let (ok, err) = oci.create(&bundle, "c1", &["--pid-file", pid_file.to_str().unwrap()]);
    assert!(ok, "create: {err}");
    let out = bundle.path().join("c1.out");
    // Created: the process exists, set up, and has not run the command yet.
    let (status, pid) = oci.status("c1");
    assert_eq!(status, "created");
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap().trim(), pid.to_string());
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "", "the command ran before start");
    // A second create of the same id is refused.
    let (ok, err) = oci.create(&bundle, "c1", &[]);
    assert!(!ok && err.contains("already exists"), "{err}");

    oci.must(&["start", "c1"]);
    assert_eq!(wait_for_line(&out, "hello"), "hello from ocibox as 0\n");
    assert_eq!(oci.status("c1"), ("running".to_string(), pid));
    // Start again: refused, the container is not created any more.
    assert!(!oci.run(&["start", "c1"]).status.success());
    // Delete without --force refuses a running container.
    let o = oci.run(&["delete", "c1"]);
    assert!(!o.status.success() && stderr(&o).contains("running"), "{}", stderr(&o));
    let listed = oci.must(&["list"]);
    assert!(listed.contains("c1") && listed.contains("running"), "{listed}");
    assert_eq!(oci.must(&["ps", "c1"]).trim(), pid.to_string());

    oci.must(&["pause", "c1"]);
    assert_eq!(oci.status("c1").0, "paused");
    oci.must(&["resume", "c1"]);
    assert_eq!(oci.status("c1").0, "running");

    oci.must(&["kill", "c1", "KILL"]);
    let mut status = oci.status("c1").0;
    for _ in 0..500 {
        if status == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        status = oci.status("c1").0;
    }
    assert_eq!(status, "stopped");
    assert!(!oci.run(&["kill", "c1"]).status.success(), "a stopped container has nothing to signal");
    oci.must(&["delete", "c1"]);
    let o = oci.run(&["state", "c1"]);
    assert!(!o.status.success() && stderr(&o).contains("does not exist"), "{}", stderr(&o));
    assert_eq!(oci.must(&["list", "-q"]), "");
}

#[test]
fn run_exits_with_the_status_and_exec_joins() {
    let oci = Oci::new();
    let bundle = Bundle::new(&["sh", "-c", "exit 7"], serde_json::json!({}));
    let o = oci.run(&["run", "--bundle", bundle.path().to_str().unwrap(), "r1"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(oci.must(&["list", "-q"]), "", "run deletes the container");

    let bundle = Bundle::new(&["sleep", "300"], serde_json::json!({}));
    let (ok, err) = oci.create(&bundle, "e1", &[]);
    assert!(ok, "{err}");
    oci.must(&["start", "e1"]);
    // exec sees the container's hostname and pid namespace (sleep is its pid 1).
    let o = oci.run(&["exec", "e1", "sh", "-c", "hostname; cat /proc/1/comm; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ocibox\nsleep\n");
    oci.must(&["delete", "--force", "e1"]);
    assert_eq!(oci.must(&["list", "-q"]), "");
}

#[test]
fn hooks_run_in_the_spec_order_with_the_state_on_stdin() {
    let oci = Oci::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hooks.log");
    let hook = |name: &str| {
        serde_json::json!([{ "path": "/bin/sh", "args": ["sh", "-c", format!("read -r state; echo \"{name} $state\" >> {}", log.display())], "timeout": 10 }])
    };
    let hooks = serde_json::json!({
        "prestart": hook("prestart"), "createRuntime": hook("createRuntime"), "createContainer": hook("createContainer"),
        "startContainer": hook("startContainer"), "poststart": hook("poststart"), "poststop": hook("poststop"),
    });
    let bundle = Bundle::new(&["sleep", "300"], hooks);
    let (ok, err) = oci.create(&bundle, "h1", &[]);
    assert!(ok, "{err}");
    oci.must(&["start", "h1"]);
    oci.must(&["delete", "--force", "h1"]);
    let text = std::fs::read_to_string(&log).unwrap();
    let order: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(order, ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap().split_once(' ').unwrap().1).unwrap();
    assert_eq!(first["id"], "h1");
    assert_eq!(first["status"], "created");
    assert!(first["pid"].as_i64().unwrap() > 0);

    // A failing createRuntime hook fails create and leaves nothing behind.
    let failing = serde_json::json!({ "createRuntime": [{ "path": "/bin/false" }] });
    let bundle = Bundle::new(&["sleep", "300"], failing);
    let (ok, err) = oci.create(&bundle, "h2", &[]);
    assert!(!ok && err.contains("createRuntime hook /bin/false"), "{err}");
    assert_eq!(oci.must(&["list", "-q"]), "");
}

#[test]
fn features_and_bad_input() {
    let oci = Oci::new();
    let v: serde_json::Value = serde_json::from_str(&oci.must(&["features"])).unwrap();
    assert_eq!(v["ociVersionMin"], "1.0.0");
    assert!(v["hooks"].as_array().unwrap().iter().any(|h| h == "createRuntime"));
    let o = oci.run(&["state", "../etc"]);
    assert!(!o.status.success() && stderr(&o).contains("not valid"), "{}", stderr(&o));
    let bundle = Bundle::new(&["true"], serde_json::json!({}));
    let config = bundle.path().join("config.json");
    let text = std::fs::read_to_string(&config).unwrap().replace("\"1.2.0\"", "\"2.0.0\"");
    std::fs::write(&config, text).unwrap();
    let (ok, err) = oci.create(&bundle, "v1", &[]);
    assert!(!ok && err.contains("ociVersion `2.0.0`"), "{err}");
}

/// The script Docker calls as its runtime: `exec tfctl oci "$@"`.
fn runtime_script(dir: &Path) -> PathBuf {
    let path = dir.join("tfctl-runtime");
    std::fs::write(&path, format!("#!/bin/sh\nexec {} oci \"$@\"\n", tfctl_bin())).unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
    path
}

#[test]
fn docker_runs_containers_with_tfctl() {
    let scripts = tempfile::tempdir().unwrap();
    let script = runtime_script(scripts.path());
    let ns = NetNs::new("oci");
    let docker = Docker::start_with(&ns.path(), &["--add-runtime", &format!("tfctl={}", script.display())]);
    docker.load(&sample_image(), "busybox:latest");

    // Attached: the output comes back, and so does the status.
    assert_eq!(docker.must(&["run", "--rm", "--runtime", "tfctl", "busybox", "echo", "hi"]), "hi\n");
    let o = docker.run(&["run", "--rm", "--runtime", "tfctl", "busybox", "sh", "-c", "exit 5"]);
    assert_eq!(o.status.code(), Some(5));

    // Detached, exec'd into, stopped by its signal, logs kept.
    let script_body = "echo started; trap 'echo got TERM; exit 3' TERM; while true; do sleep 0.1; done";
    docker.must(&["run", "-d", "--name", "d1", "--runtime", "tfctl", "busybox", "sh", "-c", script_body]);
    for i in 0..3 {
        assert_eq!(docker.must(&["exec", "d1", "echo", &format!("exec {i}")]), format!("exec {i}\n"));
    }
    assert_eq!(docker.run(&["exec", "d1", "sh", "-c", "exit 7"]).status.code(), Some(7));
    assert_eq!(docker.must(&["exec", "d1", "hostname"]).trim().len(), 12, "the container's hostname is its short id");
    docker.must(&["stop", "-t", "10", "d1"]);
    assert_eq!(docker.must(&["inspect", "-f", "{{.State.ExitCode}}", "d1"]).trim(), "3");
    assert_eq!(docker.must(&["logs", "d1"]), "started\ngot TERM\n");
    docker.must(&["rm", "d1"]);

    // docker kill and rm -f.
    docker.must(&["run", "-d", "--name", "d2", "--runtime", "tfctl", "busybox", "sleep", "300"]);
    docker.must(&["kill", "d2"]);
    assert_eq!(docker.must(&["inspect", "-f", "{{.State.ExitCode}}", "d2"]).trim(), "137");
    docker.must(&["run", "-d", "--name", "d3", "--runtime", "tfctl", "busybox", "sleep", "300"]);
    docker.must(&["rm", "-f", "d2", "d3"]);

    // --memory and --pids-limit are enforced (with controls).
    let dd = ["busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=2"];
    let limited = docker.run(&[&["run", "--rm", "--runtime", "tfctl", "--memory", "32m"][..], &dd[..]].concat());
    assert_eq!(limited.status.code(), Some(137), "a 64 MiB buffer under --memory 32m is OOM-killed");
    let free = docker.run(&[&["run", "--rm", "--runtime", "tfctl"][..], &dd[..]].concat());
    assert_eq!(free.status.code(), Some(0), "{}", stderr(&free));
    let forks = "for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait";
    let o = docker.run(&["run", "--rm", "--runtime", "tfctl", "--pids-limit", "5", "busybox", "sh", "-c", forks]);
    assert!(stderr(&o).contains("can't fork"), "--pids-limit 5: {}", stderr(&o));
    let o = docker.run(&["run", "--rm", "--runtime", "tfctl", "busybox", "sh", "-c", forks]);
    assert!(o.status.success() && !stderr(&o).contains("can't fork"), "{}", stderr(&o));
    assert_eq!(docker.must(&["ps", "-aq"]), "", "every container is gone");
}
