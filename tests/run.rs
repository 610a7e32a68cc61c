//! `tfctl run`: a container's confinement as the kernel reports it from inside, exit statuses as
//! `docker run` gives them, and nothing left behind.

mod common;

use common::{busybox_image, mounts_under, stderr, stdout, Tfctl};

fn run(t: &Tfctl, args: &[&str], script: &str) -> std::process::Output {
    let image = busybox_image();
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[&image, "sh", "-c", script]);
    t.run(&all)
}

fn status_field(out: &str, field: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {out}"))
        .trim()
        .to_string()
}

#[test]
fn the_default_confinement_as_the_kernel_sees_it() {
    let t = Tfctl::new();
    let o = run(&t, &[], "cat /proc/self/status; echo fds-begin; ls /proc/1/fd; echo fds-end; echo pid: $$; echo procs: $(ls /proc | grep '^[0-9]' | tr '\\n' ' ')");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT SETFCAP
    assert_eq!(status_field(&out, "CapEff"), "00000000800405fb");
    assert_eq!(status_field(&out, "CapBnd"), "00000000800405fb");
    assert_eq!(status_field(&out, "CapInh"), "0000000000000000");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000000");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    assert_eq!(status_field(&out, "Seccomp"), "2");
    // PID 1's descriptors, listed while it runs no redirection of its own.
    let fds: Vec<&str> = out.lines().skip_while(|l| *l != "fds-begin").skip(1).take_while(|l| *l != "fds-end").collect();
    assert_eq!(fds, ["0", "1", "2"]);
    assert_eq!(status_field(&out, "pid"), "1");
    // Only the container's own shell and the few commands it runs are visible: a new pid
    // namespace numbers from 1, and the host's processes (pid 1 of the host included) are absent.
    let pids: Vec<u32> = status_field(&out, "procs").split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert!(pids.contains(&1) && pids.iter().all(|p| *p < 16), "host processes are visible: {pids:?}");
}

#[test]
fn seccomp_refuses_what_only_seccomp_refuses_and_unconfined_is_the_control() {
    let t = Tfctl::new();
    // As root with CAP_SYS_ADMIN absent, unshare(CLONE_NEWUSER) is still allowed by capabilities;
    // only the seccomp profile refuses it.
    let o = run(&t, &[], "unshare -U true && echo allowed || echo refused");
    assert_eq!(stdout(&o).trim(), "refused", "{}", stderr(&o));
    let o = run(&t, &["--security-opt", "seccomp=unconfined"], "unshare -U true && echo allowed || echo refused");
    assert_eq!(stdout(&o).trim(), "allowed", "{}", stderr(&o));
    let o = run(&t, &["--security-opt", "seccomp=unconfined"], "grep Seccomp: /proc/self/status");
    assert_eq!(status_field(&stdout(&o), "Seccomp"), "0");
}

#[test]
fn capabilities_follow_cap_add_and_cap_drop() {
    let t = Tfctl::new();
    let o = run(&t, &["--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN"], "grep CapEff /proc/self/status");
    let eff = u64::from_str_radix(&status_field(&stdout(&o), "CapEff"), 16).unwrap();
    assert_eq!(eff, (0x800405fb | 1 << 12) & !1, "{}", stderr(&o));
    assert_eq!(eff & 1, 0, "CHOWN was not dropped");
    assert_ne!(eff & (1 << 12), 0, "NET_ADMIN was not added");
    let o = run(&t, &["--user", "1000"], "grep -E 'CapEff|Uid' /proc/self/status");
    assert_eq!(status_field(&stdout(&o), "CapEff"), "0000000000000000", "a non-root user kept capabilities");
}

#[test]
fn proc_and_sys_are_guarded() {
    let t = Tfctl::new();
    let o = run(
        &t,
        &[],
        "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-readonly; \
         touch /sys/x 2>/dev/null && echo sysfs-writable || echo sysfs-readonly; \
         [ -s /proc/keys ] && echo keys-visible || echo keys-masked; \
         cat /proc/timer_list 2>/dev/null | head -c1 | wc -c",
    );
    let out = stdout(&o);
    assert!(out.contains("sys-readonly"), "{out}");
    assert!(out.contains("sysfs-readonly"), "{out}");
    assert!(out.contains("keys-masked"), "{out}");
    assert!(out.trim_end().ends_with('0'), "/proc/timer_list is readable: {out}");
}

#[test]
fn exit_statuses_are_docker_run_s() {
    let t = Tfctl::new();
    assert_eq!(run(&t, &[], "exit 0").status.code(), Some(0));
    assert_eq!(run(&t, &[], "exit 3").status.code(), Some(3));
    // Under --init the shell is not PID 1, so SIGKILL reaches it: 128 + 9.
    assert_eq!(run(&t, &["--init"], "kill -9 $$").status.code(), Some(137));
    let image = busybox_image();
    let o = t.run(&["run", "--rm", &image, "no-such-command"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(stderr(&o).contains("no-such-command"), "{}", stderr(&o));
    let o = t.run(&["run", "--rm", &image, "/etc/passwd"]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    let o = t.run(&["run", "--rm", "--user", "no-such-user", &image, "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    // A successful run adds nothing of its own to the output.
    let o = t.run(&["run", "--rm", &image, "echo", "only this"]);
    assert_eq!(stdout(&o), "only this\n");
    assert_eq!(stderr(&o), "");
}

#[test]
fn a_kill_at_the_memory_limit_is_reported_as_out_of_memory() {
    let t = Tfctl::new();
    // dd's 100 MiB buffer cannot fit in 32 MiB: the kernel kills it, and tfctl says why.
    let o = run(&t, &["-m", "32M"], "dd if=/dev/zero of=/dev/null bs=100M count=1");
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    assert!(stderr(&o).contains("out of memory: the kernel killed 1 of its processes at its memory limit"), "{}", stderr(&o));
    // Control: the same under a limit it fits in is no kill and no such word.
    let o = run(&t, &["-m", "256M"], "dd if=/dev/zero of=/dev/null bs=100M count=1 2>/dev/null");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("out of memory"), "{}", stderr(&o));
}

#[test]
fn environment_user_workdir_and_copies() {
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("greeting");
    std::fs::write(&local, "hi from the host\n").unwrap();
    let copy = format!("{}:/etc/greeting", local.display());
    let o = run(
        &t,
        &["-e", "COLOR=blue", "-u", "1000:1000", "-w", "/tmp", "--copy", &copy, "--hostname", "box"],
        "echo $COLOR $(id -u):$(id -g) $(pwd) $(hostname); cat /etc/greeting",
    );
    assert_eq!(stdout(&o), "blue 1000:1000 /tmp box\nhi from the host\n", "{}", stderr(&o));
}

#[test]
fn nothing_is_left_behind() {
    let t = Tfctl::new();
    let state = t.root.path().join("state");
    let o = run(&t, &[], "true");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(mounts_under(&state).is_empty(), "mounts remain: {:?}", mounts_under(&state));
    assert!(!state.join("apps").read_dir().unwrap().any(|_| true), "--rm left the container's folder");
    // Without --rm the container's folder stays (so its files can be read); still no mounts.
    let image = busybox_image();
    let o = t.run(&["run", "--name", "kept", &image, "sh", "-c", "echo data > /kept"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let upper = state.join("apps/kept/containers/kept/upper/kept");
    assert_eq!(std::fs::read_to_string(upper).unwrap(), "data\n");
    assert!(mounts_under(&state).is_empty());
    // Its cgroups are gone in every hierarchy.
    let found = std::process::Command::new("find").args(["/sys/fs/cgroup", "-maxdepth", "6", "-type", "d", "-name", "*-kept"]).output().unwrap();
    assert_eq!(stdout(&found), "", "cgroups remain");
    let o = t.run(&["run", "--name", "kept", &image, "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
}

#[test]
fn a_published_run_gets_its_own_network_and_d_leaves_it_running() {
    common::sample_image();
    let ns = common::NetNs::new("runp");
    let t = Tfctl::new();
    let image = busybox_image();
    // Attached with -p: its own address on its own network, the container's status, and --rm
    // leaves nothing.
    let o = t.run_in(&ns, &["run", "--rm", "-p", "18080:80", "--name", "pub", &image, "sh", "-c", "ip -4 -o addr show eth0; exit 5"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stdout(&o).contains("inet 10.89."), "{}", stdout(&o));
    assert!(!t.root.path().join("state/apps/pub").exists(), "--rm left the app's record");
    // Detached: the published port answers until `down`.
    let o = t.run_in(&ns, &["run", "-d", "-p", "127.0.0.1:18081:80", "--name", "bg", &image, "httpd", "-f", "-p", "80", "-h", "/var/www"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "bg");
    let mut page = String::new();
    for _ in 0..50 {
        page = stdout(&ns.sh("wget -qO- -T 2 http://127.0.0.1:18081/"));
        if !page.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(page.contains("hello from tfctl"), "the published port did not answer");
    // Not a back door to the container's other ports.
    assert!(stdout(&ns.sh("wget -qO- -T 2 http://127.0.0.1:18082/")).is_empty());
    assert_eq!(t.run_in(&ns, &["down", "bg"]).status.code(), Some(0));
    assert_eq!(stdout(&ns.sh("nft list ruleset")), "", "rules remain after down");
}

#[test]
fn t_gives_a_terminal_and_i_passes_stdin() {
    let t = Tfctl::new();
    let image = busybox_image();
    let o = t.run(&["run", "--rm", "-t", &image, "sh", "-c", "tty; [ -t 0 ] && echo is-a-tty; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let out = stdout(&o).replace('\r', "");
    assert!(out.starts_with("/dev/pts/"), "{out}");
    assert!(out.contains("is-a-tty"), "{out}");
    // Without -t the container has no terminal; without -i its stdin is empty.
    let mut c = t.cmd();
    c.args(["run", "--rm", &image, "sh", "-c", "[ -t 0 ] || echo no-tty; cat"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"typed\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "no-tty\n");
    let mut c = t.cmd();
    c.args(["run", "--rm", "-i", &image, "cat"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"typed\n").unwrap();
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "typed\n");
}

/// A `tfctl run` child process, killed if the test ends early.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `run --name NAME IMAGE sh -c SCRIPT` in the background (stdout piped) and waits for
/// the script's first line, `ready`.
fn run_in_background(t: &Tfctl, extra: &[&str], name: &str, script: &str) -> (Running, std::io::BufReader<std::process::ChildStdout>) {
    use std::io::BufRead;
    let image = busybox_image();
    let mut c = t.cmd();
    c.arg("run").args(extra).args(["--name", name, &image, "sh", "-c", script]).stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    (Running(child), out)
}

fn ps_json(t: &Tfctl) -> serde_json::Value {
    let o = t.run(&["ps", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn rest(mut out: impl std::io::Read) -> String {
    let mut s = String::new();
    out.read_to_string(&mut s).unwrap();
    s
}

#[test]
fn a_foreground_run_is_listed_signalled_stopped_and_removed_by_name() {
    let t = Tfctl::new();
    let state = t.root.path().join("state");
    let image = busybox_image();
    let traps = "trap 'echo usr1' USR1; trap 'echo term; exit 7' TERM; echo ready; while :; do sleep 0.1; done";

    // Listed while it runs, with its image, which `images rm` then refuses to remove.
    let (mut fg, out) = run_in_background(&t, &["--rm"], "fg", traps);
    let ps = ps_json(&t);
    let app = &ps["apps"][0];
    assert_eq!(app["name"], "fg", "{ps}");
    assert_eq!(app["one_off"], true);
    assert_eq!(app["containers"][0]["state"], "running", "{ps}");
    assert_eq!(app["containers"][0]["image"], image.as_str());
    let o = t.run(&["ps"]);
    assert!(stdout(&o).lines().any(|l| l.starts_with("fg ") && l.contains("running")), "{}", stdout(&o));
    let o = t.run(&["images", "rm", &image]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("used by a container"), "{}", stderr(&o));
    // `exec` joins it with its confinement (its hostname and files, its capabilities, its
    // seccomp filter), and exits with the process's status; `-u` gets that user's (none).
    let o = t.run(&["exec", "fg", "--", "sh", "-c", "hostname; grep -E '^(CapEff|Seccomp):' /proc/self/status; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "fg\nCapEff:\t00000000800405fb\nSeccomp:\t2\n");
    let o = t.run(&["exec", "-u", "1000", "fg", "--", "grep", "CapEff", "/proc/self/status"]);
    assert_eq!(stdout(&o), "CapEff:\t0000000000000000\n", "{}", stderr(&o));
    assert_eq!(t.run(&["exec", "fg", "--", "no-such-command"]).status.code(), Some(127));

    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(state.join("apps/fg/run.json")).unwrap()).unwrap();
    let cgroup = record["cgroup"].as_str().unwrap().to_string();
    assert!(!cgroup.is_empty());

    // `kill` signals its process; `stop` sends SIGTERM, and `run` exits with the status.
    assert_eq!(t.run(&["kill", "-s", "USR1", "fg"]).status.code(), Some(0));
    let o = t.run(&["stop", "fg"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(fg.0.wait().unwrap().code(), Some(7));
    assert_eq!(rest(out), "usr1\nterm\n");
    // `stop` returned after the cleanup: --rm left nothing.
    assert!(!state.join("apps/fg").exists(), "--rm left the container's folder");
    assert!(mounts_under(&state).is_empty());
    let found = std::process::Command::new("find").args(["/sys/fs/cgroup", "-maxdepth", "6", "-type", "d", "-name", &cgroup]).output().unwrap();
    assert_eq!(stdout(&found), "", "cgroups remain");

    // A signal to `run` itself goes to the container (docker run's sig-proxy), and `--rm` still
    // cleans up.
    let (mut fg, out) = run_in_background(&t, &["--rm"], "fg2", traps);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(fg.0.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(fg.0.wait().unwrap().code(), Some(7));
    assert_eq!(rest(out), "term\n");
    assert!(!state.join("apps/fg2").exists());

    // A PID 1 without handlers ignores SIGTERM and SIGINT: `rm` refuses it while it runs, and
    // `rm --force` kills it. Interrupts reach it too: the third kills it.
    let (mut fg, _out) = run_in_background(&t, &["--rm"], "fg3", "echo ready; exec sleep 60");
    let o = t.run(&["rm", "fg3"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("is running"), "{}", stderr(&o));
    assert_eq!(t.run(&["rm", "--force", "fg3"]).status.code(), Some(0));
    assert_eq!(fg.0.wait().unwrap().code(), Some(137));
    assert!(!state.join("apps/fg3").exists());
    // (The shell ignores SIGINT before it prints `ready`: a signal arriving while it still
    // runs would otherwise meet its handler.)
    let (mut fg, _out) = run_in_background(&t, &["--rm"], "fg4", "trap '' INT; echo ready; exec sleep 60");
    let pid = nix::unistd::Pid::from_raw(fg.0.id() as i32);
    for _ in 0..3 {
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(fg.0.wait().unwrap().code(), Some(137));

    // Without --rm it stays, listed as exited with its status, until `rm`.
    let o = t.run(&["run", "--name", "kept", &image, "sh", "-c", "exit 4"]);
    assert_eq!(o.status.code(), Some(4));
    let ps = ps_json(&t);
    assert_eq!(ps["apps"][0]["containers"][0]["state"], "exited", "{ps}");
    assert_eq!(ps["apps"][0]["containers"][0]["exit_code"], 4);
    assert!(stdout(&t.run(&["ps"])).contains("exited (4)"));
    let o = t.run(&["start", "kept"]);
    assert!(stderr(&o).contains("tfctl run -d"), "{}", stderr(&o));
    // Its output went to its terminal: `logs` says so rather than printing nothing.
    let o = t.run(&["logs", "kept"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not logged"), "{}", stderr(&o));
    let o = t.run(&["rm", "kept"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!state.join("apps/kept").exists());
    assert_eq!(ps_json(&t)["apps"], serde_json::json!([]));
}

/// What the kernel gives a tmpfs without `size=`, in KiB as `df -k` shows it: half of RAM,
/// rounded up to whole pages.
fn half_of_ram_kib() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total: u64 = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:")).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap();
    (total / 2).div_ceil(4) * 4
}

/// Prints the size of /dev/shm and of / in KiB, then fills /dev/shm and prints how many MiB fit.
const FILL_SHM: &str = "df -k /dev/shm / | awk 'NR>1 {print $2}'; \
    dd if=/dev/zero of=/dev/shm/fill bs=1M count=200 2>&1 | grep -o 'No space left on device'; \
    echo $(($(stat -c %s /dev/shm/fill) >> 20))";

#[test]
fn dev_shm_and_the_writable_layer_have_limits() {
    let t = Tfctl::new();
    let half = half_of_ram_kib().to_string();
    // Docker's 64 MiB for /dev/shm; a one-off's writable layer gets what a tmpfs gets by default.
    let o = run(&t, &[], FILL_SHM);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().collect::<Vec<_>>(), ["65536", half.as_str(), "No space left on device", "64"]);
    let o = run(&t, &["--shm-size", "8M"], FILL_SHM);
    assert_eq!(stdout(&o).lines().collect::<Vec<_>>(), ["8192", half.as_str(), "No space left on device", "8"], "{}", stderr(&o));
    // A size tfctl cannot read is refused, never taken as 0 (which tmpfs reads as unlimited).
    for bad in ["0", "64 pages"] {
        let o = t.run(&["run", "--rm", "--shm-size", bad, &busybox_image(), "true"]);
        assert_eq!(o.status.code(), Some(2), "--shm-size {bad}: {}", stderr(&o));
        assert!(stderr(&o).contains(&format!("--shm-size {bad}")), "{}", stderr(&o));
    }
}

#[test]
fn the_container_sees_neither_tfctl_s_command_line_nor_host_paths() {
    let t = Tfctl::new();
    // With CAP_SYS_PTRACE the container's root may read PID 1's environment: under --init that
    // is a copy of tfctl's (TFCTL_ROOT, TFCTL_CONFIG) unless the init wipes it.
    let o = run(
        &t,
        &["--init", "--cap-add", "SYS_PTRACE"],
        "tr '\\0' '|' < /proc/1/cmdline; echo; cat /proc/1/comm; tr '\\0' '\\n' < /proc/1/environ | grep -c . ; echo; cat /proc/self/mountinfo",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("tfctl-init|"), "PID 1's command line: {out}");
    assert_eq!(lines.next(), Some("tfctl-init"));
    assert_eq!(lines.next(), Some("0"), "PID 1's environment is not empty: {out}");
    let root = t.root.path().display().to_string();
    let image = busybox_image();
    let image_dir = image.trim_start_matches("oci:");
    for hidden in [root.as_str(), image_dir, common::tfctl_bin()] {
        assert!(!out.contains(hidden), "the container sees {hidden}: {out}");
    }
    let overlay = out.lines().find(|l| l.contains(" - overlay ")).unwrap_or_else(|| panic!("no overlay root: {out}"));
    assert!(overlay.contains("upperdir=u,workdir=w"), "{overlay}");
}
