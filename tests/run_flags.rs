//! `tfctl run`'s everyday Docker flags (issue 14), each compared with Docker itself: the same
//! flags given to `tfctl run` and to `docker run` (a real dockerd per test, in the test's own
//! network namespace, the same busybox image loaded into it with skopeo), and what the
//! container observes compared field by field: /proc/self/limits, its cgroup's files read on the
//! host, /proc/mounts, /etc/hosts, /etc/resolv.conf, `id`, CapEff and Seccomp in
//! /proc/self/status, what `stop` does to it. Where tfctl deliberately differs (no noexec on a
//! tfctl tmpfs, a one-off container's network), the test says so and asserts tfctl's documented
//! behaviour. Invalid values exit 2 naming the flag and an example, under tfctl only.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::docker::Docker;
use common::{sample_image, stderr, stdout, NetNs, Tfctl};

/// The image as Docker knows it once loaded.
const DOCKER_IMAGE: &str = "tfctl-flags/busybox:1";

/// One test's two engines: dockerd in the test's namespace and a tfctl with its own root.
struct Both {
    t: Tfctl,
    docker: Docker,
    image: String,
    dir: tempfile::TempDir,
    ns: NetNs,
}

/// A process's exit code, its stdout and its stderr.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    out: String,
    err: String,
}

fn ran(o: std::process::Output) -> Ran {
    Ran { code: o.status.code(), out: stdout(&o), err: stderr(&o) }
}

/// A number no other container of this test binary uses (for names and `sleep` markers).
fn unique() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    std::process::id() % 10_000 * 1000 + N.fetch_add(1, Ordering::SeqCst)
}

impl Both {
    fn new(tag: &str) -> Both {
        let ns = NetNs::new(tag);
        let docker = Docker::start(&ns.path());
        let image = sample_image();
        docker.load(&image, DOCKER_IMAGE);
        Both { t: Tfctl::new(), docker, image, dir: tempfile::tempdir().unwrap(), ns }
    }

    /// `tfctl run --rm FLAGS IMAGE ARGS...`.
    fn tfctl(&self, flags: &[&str], args: &[&str]) -> Ran {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(flags);
        a.push(&self.image);
        a.extend_from_slice(args);
        ran(self.t.run_in(&self.ns, &a))
    }

    /// `docker run --rm FLAGS IMAGE ARGS...`.
    fn docker(&self, flags: &[&str], args: &[&str]) -> Ran {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(flags);
        a.push(DOCKER_IMAGE);
        a.extend_from_slice(args);
        ran(self.docker.run(&a))
    }

    /// `sh -c SCRIPT` with FLAGS under both, each asserted to exit 0: (tfctl's output, Docker's).
    fn sh(&self, flags: &[&str], script: &str) -> (String, String) {
        let t = self.tfctl(flags, &["sh", "-c", script]);
        assert_eq!(t.code, Some(0), "tfctl run {flags:?}: {t:?}");
        let d = self.docker(flags, &["sh", "-c", script]);
        assert_eq!(d.code, Some(0), "docker run {flags:?}: {d:?}");
        (t.out, d.out)
    }

    /// Each engine's container with FLAGS (running `sleep`), and the values of `files` of its
    /// cgroup in the `controller` hierarchy, read on the host: (tfctl's, Docker's).
    fn cgroup(&self, flags: &[&str], controller: &str, files: &[&str]) -> (Vec<String>, Vec<String>) {
        let read = |pid: u32| -> Vec<String> {
            let dir = cgroup_dir(pid, controller);
            files.iter().map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{}/{f}: {e}", dir.display())).trim().to_string()).collect()
        };
        // tfctl, attached as usual, in the background.
        let mark = format!("{}", 100_000 + unique());
        let name = format!("cg-{mark}");
        let mut args = vec!["run", "--rm", "--name", &name];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[&self.image, "sleep", &mark]);
        let mut child = self.t.cmd_in(&self.ns).args(&args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let pid = sleeper(&mark, &mut child);
        let tfctl = read(pid);
        kill(pid);
        let _ = child.wait();

        let mark = format!("{}", 100_000 + unique());
        let mut args = vec!["run", "-d", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[DOCKER_IMAGE, "sleep", &mark]);
        let id = self.docker.must(&args).trim().to_string();
        let pid: u32 = self.docker.must(&["inspect", "-f", "{{.State.Pid}}", &id]).trim().parse().unwrap();
        let docker = read(pid);
        let _ = self.docker.run(&["rm", "-f", &id]);
        (tfctl, docker)
    }

    /// Starts `sh -c SCRIPT` (which prints `ready` once its traps are set) attached, under
    /// name `name`, with FLAGS; returns once it is ready.
    fn start_attached(&self, docker: bool, name: &str, flags: &[&str], script: &str) -> (Child, BufReader<std::process::ChildStdout>) {
        let mut args = vec!["run", "--rm", "--name", name];
        args.extend_from_slice(flags);
        let mut cmd = if docker {
            args.push(DOCKER_IMAGE);
            let mut c = self.docker.cmd();
            c.args(&args);
            c
        } else {
            args.push(&self.image);
            let mut c = self.t.cmd_in(&self.ns);
            c.args(&args);
            c
        };
        let mut child = cmd.args(["sh", "-c", script]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "{} did not start the container", if docker { "docker" } else { "tfctl" });
        (child, out)
    }

    /// `stop` of a container running SCRIPT with FLAGS, under both engines: (exit code, what
    /// it printed after `ready`) of tfctl's, then Docker's.
    fn stopped(&self, flags: &[&str], script: &str) -> ((Option<i32>, String), (Option<i32>, String)) {
        let run = |docker: bool| {
            let name = format!("stop-{}", unique());
            let (mut child, mut out) = self.start_attached(docker, &name, flags, script);
            let stop = if docker { ran(self.docker.run(&["stop", &name])) } else { ran(self.t.run_in(&self.ns, &["stop", &name])) };
            assert_eq!(stop.code, Some(0), "stop {name}: {stop:?}");
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
            (child.wait().unwrap().code(), rest)
        };
        std::thread::scope(|s| {
            let t = s.spawn(|| run(false));
            let d = s.spawn(|| run(true));
            (t.join().unwrap(), d.join().unwrap())
        })
    }
}

/// The host folder of `pid`'s cgroup in the v1 hierarchy of `controller` (or the unified one).
fn cgroup_dir(pid: u32, controller: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for l in text.lines() {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        if ctrls.split(',').any(|c| c == controller) {
            return std::path::Path::new("/sys/fs/cgroup").join(ctrls).join(path.trim_start_matches('/'));
        }
        if ctrls.is_empty() && std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            return std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
        }
    }
    panic!("{pid} is in no {controller} cgroup: {text}");
}

/// The pid of the process running `sleep MARK`, once there is one (it is being started by
/// `child`, which must not exit first).
fn sleeper(mark: &str, child: &mut Child) -> u32 {
    let want = format!("sleep\0{mark}\0");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        for p in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else { continue };
            if std::fs::read(p.path().join("cmdline")).is_ok_and(|c| c == want.as_bytes()) {
                return pid;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
            panic!("tfctl run exited ({status}) before its container ran: {err}");
        }
        assert!(Instant::now() < deadline, "no process runs `sleep {mark}`");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill(pid: u32) {
    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
}

/// The line of /proc/self/limits for `what` (e.g. "Max open files"), its limits only.
fn limit_line(limits: &str, what: &str) -> String {
    let line = limits.lines().find(|l| l.starts_with(what)).unwrap_or_else(|| panic!("no `{what}` in {limits}"));
    line[what.len()..].split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// The mount at `target` in a /proc/mounts text: (fstype, ro or rw, its size= option).
fn mount_at(mounts: &str, target: &str) -> (String, String, Option<String>) {
    // The last one: what the path shows.
    let l = mounts
        .lines()
        .rfind(|l| l.split_whitespace().nth(1) == Some(target))
        .unwrap_or_else(|| panic!("nothing is mounted at {target}: {mounts}"));
    let f: Vec<&str> = l.split_whitespace().collect();
    let opts: Vec<&str> = f[3].split(',').collect();
    let mode = if opts.contains(&"ro") { "ro" } else { "rw" };
    (f[2].to_string(), mode.to_string(), opts.iter().find_map(|o| o.strip_prefix("size=")).map(str::to_string))
}

/// `id`'s uid, gid and supplementary groups other than the primary one. Docker (runc) also
/// lists the primary group among the supplementary ones when the image's /etc/group has it,
/// tfctl does not: either way the process has that group, so it is left out of the comparison.
fn identity(id: &str) -> (String, String, Vec<String>) {
    let mut uid = String::new();
    let mut gid = String::new();
    let mut groups = Vec::new();
    for field in id.split_whitespace() {
        if let Some(g) = field.strip_prefix("groups=") {
            groups = g.split(',').map(str::to_string).collect();
        } else if field.starts_with("uid=") {
            uid = field.to_string();
        } else if field.starts_with("gid=") {
            gid = field.to_string();
        }
    }
    let primary = gid.trim_start_matches("gid=").to_string();
    groups.retain(|g| *g != primary);
    (uid, gid, groups)
}

/// The value of `key:` in a /proc/PID/status text.
fn status_field(status: &str, key: &str) -> String {
    status.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("no {key} in {status}")).trim().to_string()
}

#[test]
fn limits_match_docker() {
    let b = Both::new("fl-lim");

    // --cpus 1.5: a CFS quota of 150000 per 100000 µs, as in Docker.
    let (t, d) = b.cgroup(&["--cpus", "1.5"], "cpu", &["cpu.cfs_quota_us", "cpu.cfs_period_us"]);
    assert_eq!(t, vec!["150000", "100000"]);
    assert_eq!(t, d, "--cpus 1.5");

    // --pids-limit.
    let (t, d) = b.cgroup(&["--pids-limit", "77"], "pids", &["pids.max"]);
    assert_eq!(t, vec!["77"]);
    assert_eq!(t, d, "--pids-limit 77");
    // -1: no limit (tfctl's default is 4096).
    let (t, d) = b.cgroup(&["--pids-limit", "-1"], "pids", &["pids.max"]);
    assert_eq!(t, vec!["max"]);
    assert_eq!(t, d, "--pids-limit -1");

    // --ulimit NAME=SOFT:HARD and NAME=N (both limits).
    let (t, d) = b.sh(&["--ulimit", "nofile=1024:2048", "--ulimit", "nproc=300"], "cat /proc/self/limits");
    assert_eq!(limit_line(&t, "Max open files"), "1024 2048");
    assert_eq!(limit_line(&t, "Max processes"), "300 300");
    for what in ["Max open files", "Max processes"] {
        assert_eq!(limit_line(&t, what), limit_line(&d, what), "--ulimit: {what}");
    }

    // --shm-size (not new, compared all the same).
    let (t, d) = b.sh(&["--shm-size", "128m"], "cat /proc/mounts");
    assert_eq!(mount_at(&t, "/dev/shm").2.as_deref(), Some("131072k"));
    assert_eq!(mount_at(&t, "/dev/shm"), mount_at(&d, "/dev/shm"), "--shm-size 128m");
}

#[test]
fn mounts_match_docker() {
    let b = Both::new("fl-mnt");

    // --tmpfs /PATH:size=: a tmpfs of that size. Docker adds noexec to a --tmpfs; tfctl's
    // tmpfs mounts (the app file's `tmpfs` too) are nosuid,nodev only: compared are the type,
    // ro/rw and size.
    let (t, d) = b.sh(&["--tmpfs", "/scratch:size=8m"], "cat /proc/mounts");
    assert_eq!(mount_at(&t, "/scratch"), ("tmpfs".to_string(), "rw".to_string(), Some("8192k".to_string())));
    assert_eq!(mount_at(&t, "/scratch"), mount_at(&d, "/scratch"), "--tmpfs");

    // --mount type=tmpfs,tmpfs-size=.
    let (t, d) = b.sh(&["--mount", "type=tmpfs,destination=/t2,tmpfs-size=4m"], "cat /proc/mounts");
    assert_eq!(mount_at(&t, "/t2"), ("tmpfs".to_string(), "rw".to_string(), Some("4096k".to_string())));
    assert_eq!(mount_at(&t, "/t2"), mount_at(&d, "/t2"), "--mount type=tmpfs");

    // --mount type=bind,readonly: the host's file is there, and cannot be written.
    let host = b.dir.path().join("data");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "from the host\n").unwrap();
    let spec = format!("type=bind,source={},target=/data,readonly", host.display());
    let script = "cat /data/f; if touch /data/new 2>/dev/null; then echo writable; else echo read-only; fi; grep ' /data ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1";
    let (t, d) = b.sh(&["--mount", &spec], script);
    assert_eq!(t, "from the host\nread-only\nro\n");
    assert_eq!(t, d, "--mount type=bind,readonly");
    // The same bind without readonly is writable (the control).
    let spec = format!("type=bind,src={},dst=/data", host.display());
    let (t, d) = b.sh(&["--mount", &spec], script);
    assert_eq!(t, "from the host\nwritable\nrw\n");
    assert_eq!(t, d, "--mount type=bind");

    // --mount type=volume: a named volume, kept from one run to the next of the same name.
    let name = format!("vol-{}", unique());
    let spec = "type=volume,source=cache,target=/cache";
    let first = b.t.run_in(&b.ns, &["run", "--name", &name, "--mount", spec, &b.image, "sh", "-c", "echo kept > /cache/f"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(b.t.run_in(&b.ns, &["rm", &name]).status.code(), Some(0));
    let again = b.t.run_in(&b.ns, &["run", "--rm", "--name", &name, "--mount", spec, &b.image, "sh", "-c", "cat /cache/f; grep ' /cache ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1"]);
    let dspec = format!("type=volume,source={name},target=/cache");
    b.docker.must(&["run", "--rm", "--mount", &dspec, DOCKER_IMAGE, "sh", "-c", "echo kept > /cache/f"]);
    let dagain = b.docker.must(&["run", "--rm", "--mount", &dspec, DOCKER_IMAGE, "sh", "-c", "cat /cache/f; grep ' /cache ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1"]);
    assert_eq!(stdout(&again), "kept\nrw\n", "{}", stderr(&again));
    assert_eq!(stdout(&again), dagain, "--mount type=volume");
}

#[test]
fn names_network_and_sysctls_match_docker() {
    let b = Both::new("fl-net");

    // --add-host NAME:IP: a line of /etc/hosts.
    let (t, d) = b.sh(&["--add-host", "db.local:192.0.2.10", "--add-host", "cache:192.0.2.11"], "grep -E 'db.local|cache' /etc/hosts");
    assert_eq!(t, "192.0.2.10\tdb.local\n192.0.2.11\tcache\n");
    assert_eq!(t, d, "--add-host");

    // --dns IP: the nameservers of /etc/resolv.conf.
    let (t, d) = b.sh(&["--dns", "192.0.2.53", "--dns", "198.51.100.53"], "grep nameserver /etc/resolv.conf");
    assert_eq!(t, "nameserver 192.0.2.53\nnameserver 198.51.100.53\n");
    assert_eq!(t, d, "--dns");

    // --network none: loopback only.
    let (t, d) = b.sh(&["--network", "none"], "ls /sys/class/net");
    assert_eq!(t, "lo\n");
    assert_eq!(t, d, "--network none");
    // Docker's default is its bridge; tfctl's attached `run` (no -p, no -d) is documented as
    // loopback only, with or without --network none.
    let (t, d) = b.sh(&[], "ls /sys/class/net");
    assert_eq!(t, "lo\n");
    assert!(d.contains("eth0"), "docker's default network: {d}");

    // Detached, a tfctl container gets an app network of its own (as Docker's its bridge);
    // --network none keeps it on none, and out of its own /etc/hosts.
    for (flags, want) in [(&["--network", "none"][..], "lo\n"), (&[][..], "eth0\nlo\n")] {
        let name = format!("det-{}", unique());
        let mut args = vec!["run", "-d", "--name", &name];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[&b.image, "sleep", "1000"]);
        let o = b.t.run_in(&b.ns, &args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let t = b.t.run_in(&b.ns, &["exec", &name, "--", "sh", "-c", "ls /sys/class/net; cat /etc/hosts"]);
        assert_eq!(b.t.run_in(&b.ns, &["down", &name]).status.code(), Some(0));
        let mut dargs = vec!["run", "-d", "--rm", "--name", &name];
        dargs.extend_from_slice(flags);
        dargs.extend_from_slice(&[DOCKER_IMAGE, "sleep", "1000"]);
        b.docker.must(&dargs);
        let d = b.docker.must(&["exec", &name, "ls", "/sys/class/net"]);
        let _ = b.docker.run(&["rm", "-f", &name]);
        let t = stdout(&t);
        assert!(t.starts_with(want), "run -d {flags:?}: {t}");
        assert_eq!(&t[..want.len()], d, "run -d {flags:?}");
        assert_eq!(t.contains(&format!("{name}.{name}")), flags.is_empty(), "run -d {flags:?}: its own address in /etc/hosts: {t}");
    }

    // --sysctl of the network and IPC namespaces.
    let flags = ["--sysctl", "net.ipv4.ip_unprivileged_port_start=0", "--sysctl", "kernel.shm_rmid_forced=1"];
    let (t, d) = b.sh(&flags, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced");
    assert_eq!(t, "0\n1\n");
    assert_eq!(t, d, "--sysctl");
}

#[test]
fn identity_privilege_and_entrypoint_match_docker() {
    let b = Both::new("fl-id");

    // --group-add by name (the image's /etc/group) and by number.
    let (t, d) = b.sh(&["--group-add", "app", "--group-add", "4242"], "id");
    assert_eq!(identity(&t), ("uid=0(root)".to_string(), "gid=0(root)".to_string(), vec!["1000(app)".to_string(), "4242".to_string()]));
    assert_eq!(identity(&t), identity(&d), "--group-add");
    // With --user: the user's own group stays primary.
    let (t, d) = b.sh(&["--user", "65534", "--group-add", "app"], "id");
    assert_eq!(identity(&t).2, vec!["1000(app)".to_string()], "{t}");
    assert_eq!(identity(&t), identity(&d), "--user 65534 --group-add app");

    // The default confinement (the control of --privileged): seccomp on, /sys read-only, as in
    // Docker. tfctl's default capabilities are deliberately fewer than Docker's (tfctl.kdl(5),
    // cap-add: no NET_RAW, MKNOD or AUDIT_WRITE).
    let script = "grep -E '^(CapEff|CapBnd|Seccomp):' /proc/self/status; grep ' /sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1";
    let (t, d) = b.sh(&[], script);
    assert_eq!(status_field(&t, "Seccomp:"), "2");
    assert_eq!(status_field(&t, "Seccomp:"), status_field(&d, "Seccomp:"));
    assert_eq!(status_field(&t, "CapEff:"), "00000000800405fb");
    assert_eq!(status_field(&d, "CapEff:"), "00000000a80425fb");
    assert!(t.ends_with("ro\n") && d.ends_with("ro\n"), "/sys: tfctl {t}, docker {d}");

    // --privileged: every capability, seccomp off, /sys writable; and a warning.
    let o = b.tfctl(&["--privileged"], &["sh", "-c", script]);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(o.err.contains("WARNING: --privileged"), "no warning on stderr: {:?}", o.err);
    assert_eq!(status_field(&o.out, "Seccomp:"), "0");
    assert!(o.out.ends_with("rw\n"), "{}", o.out);
    // Every capability tfctl itself holds: on a host (or in a container) that keeps some out of
    // its bounding set, those are left out.
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(status_field(&o.out, "CapEff:"), status_field(&own, "CapBnd:"));
    let d = b.docker(&["--privileged"], &["sh", "-c", script]);
    if d.code == Some(0) {
        assert_eq!(o.out, d.out, "--privileged: {d:?}");
    } else {
        // Docker asks for every capability the kernel knows, and cannot start a privileged
        // container where the bounding set lacks one (runc: "unable to apply caps").
        assert!(d.err.contains("unable to apply caps"), "docker run --privileged: {d:?}");
    }

    // --entrypoint "" with a command: the command runs (it exited 126 before).
    let t = b.tfctl(&["--entrypoint", ""], &["echo", "hello", "there"]);
    let d = b.docker(&["--entrypoint", ""], &["echo", "hello", "there"]);
    assert_eq!((t.code, t.out.as_str()), (Some(0), "hello there\n"), "{t:?}");
    assert_eq!((t.code, &t.out), (d.code, &d.out), "--entrypoint \"\" CMD");
    // Without a command it clears the image's Cmd too: nothing to run, tfctl's failure (125).
    let t = b.tfctl(&["--entrypoint", ""], &[]);
    let d = b.docker(&["--entrypoint", ""], &[]);
    assert_eq!(t.code, Some(125), "{t:?}");
    assert_eq!(t.code, d.code, "--entrypoint \"\" alone: {d:?}");
}

#[test]
fn stop_signal_stop_timeout_and_labels_match_docker() {
    let b = Both::new("fl-stop");

    // --stop-signal: what `stop` sends.
    let script = "trap 'echo got-usr1; exit 7' USR1; trap 'echo got-term; exit 9' TERM; echo ready; while true; do sleep 0.1; done";
    let (t, d) = b.stopped(&["--stop-signal", "USR1"], script);
    assert_eq!(t, (Some(7), "got-usr1\n".to_string()));
    assert_eq!(t, d, "--stop-signal USR1");
    // Without it, SIGTERM (the control).
    let (t, d) = b.stopped(&[], script);
    assert_eq!(t, (Some(9), "got-term\n".to_string()));
    assert_eq!(t, d, "the default stop signal");

    // --stop-timeout: a process that takes 11 s to stop is killed after the default 10 s,
    // and stops by itself within 30.
    let script = "trap 'sleep 11; echo done; exit 5' TERM; echo ready; while true; do sleep 0.1; done";
    let (t, d) = b.stopped(&["--stop-timeout", "30"], script);
    assert_eq!(t, (Some(5), "done\n".to_string()));
    assert_eq!(t, d, "--stop-timeout 30");
    let (t, d) = b.stopped(&[], script);
    assert_eq!(t.0, Some(137), "{t:?}");
    assert_eq!(t.0, d.0, "the default stop timeout");

    // --label: shown by `ps --format json`, as `docker inspect` shows them.
    let name = format!("lab-{}", unique());
    let flags = ["--label", "com.example.team=web", "--label", "tier"];
    let mut args = vec!["run", "--name", &name];
    args.extend_from_slice(&flags);
    args.extend_from_slice(&[&b.image, "true"]);
    assert_eq!(b.t.run_in(&b.ns, &args).status.code(), Some(0));
    let ps: serde_json::Value = serde_json::from_slice(&b.t.run_in(&b.ns, &["ps", &name, "--format", "json"]).stdout).unwrap();
    let labels = ps["apps"][0]["containers"][0]["labels"].clone();
    assert_eq!(labels, serde_json::json!({"com.example.team": "web", "tier": ""}));
    let mut dargs = vec!["run", "--name", &name];
    dargs.extend_from_slice(&flags);
    dargs.extend_from_slice(&[DOCKER_IMAGE, "true"]);
    b.docker.must(&dargs);
    let dlabels: serde_json::Value = serde_json::from_str(&b.docker.must(&["inspect", "-f", "{{json .Config.Labels}}", &name])).unwrap();
    assert_eq!(labels, dlabels, "--label");
    assert_eq!(b.t.run_in(&b.ns, &["rm", &name]).status.code(), Some(0));
}

/// Bad values: exit 2, naming the flag and showing how to write it; never a panic.
#[test]
fn invalid_values_exit_2_naming_the_flag_and_an_example() {
    let t = Tfctl::new();
    let image = sample_image();
    let cases: &[&[&str]] = &[
        &["--cpus", "abc"],
        &["--cpus", "0"],
        &["--cpus", "-1"],
        &["--pids-limit", "many"],
        &["--pids-limit", "-5"],
        &["--ulimit", "nofile"],
        &["--ulimit", "nofiles=10"],
        &["--ulimit", "nofile=20:10"],
        &["--ulimit", "nofile=x"],
        &["--sysctl", "kernel.hostname=x"],
        &["--sysctl", "net.ipv4.ip_forward"],
        &["--tmpfs", "relative"],
        &["--tmpfs", "/run:mode=1777"],
        &["--tmpfs", "/run:size=lots"],
        &["--mount", "type=nfs,target=/x"],
        &["--mount", "type=bind,target=/x"],
        &["--mount", "type=bind,source=/nonexistent-tfctl,target=/x"],
        &["--mount", "type=tmpfs"],
        &["--mount", "type=volume,source=Bad_Name,target=/x"],
        &["--mount", "type=bind,source=/,target=/x,tmpfs-size=1m"],
        &["--mount", "type=tmpfs,target=/x,propagation=shared"],
        &["--network", "host"],
        &["--add-host", "db"],
        &["--add-host", "db:not-an-ip"],
        &["--add-host", "bad_host!:192.0.2.1"],
        &["--dns", "dns.example"],
        &["--label", "=x"],
        &["--stop-signal", "SIGNOPE"],
        &["--stop-timeout", "ten"],
        &["--group-add", "a:b"],
    ];
    for flags in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[&image, "true"]);
        let o = t.run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(flags[0]), "{flags:?}: the message does not name the flag: {err}");
        assert!(err.contains("e.g.") && !err.contains("panicked"), "{flags:?}: no example: {err}");
    }
    // A group name the image does not define: tfctl's failure, naming it.
    let o = t.run(&["run", "--rm", "--group-add", "nosuchgroup", &image, "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("group `nosuchgroup` is not in the image's /etc/group"), "{}", stderr(&o));
    // --network none cannot publish.
    let o = t.run(&["run", "--rm", "--network", "none", "-p", "8080:80", &image, "true"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--network none"), "{}", stderr(&o));
}
