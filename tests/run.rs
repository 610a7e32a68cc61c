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
