//! The start sequence, proven from inside real containers as the kernel sees them.
//!
//! `harness = false`: the spawner must be forked while the process is single-threaded, so main
//! starts it before anything else and then runs the cases in sequence. Needs root.

#[path = "common/skip.rs"]
mod skip;

#[path = "start/fixture.rs"]
mod fixture;
#[path = "start/lifetime.rs"]
mod lifetime;

use fixture::*;
use std::os::fd::{AsRawFd, OwnedFd};
use tfctl_runtime::spawn::*;

fn main() {
    lifetime::maybe_play_holder();
    let spawner = Spawner::start().expect("the spawner starts while we are single-threaded");
    if nix::unistd::geteuid().as_raw() != 0 {
        skip::cannot_run("start_container", "the start tests need root");
        return;
    }
    let fx = Fixture::new();
    let cases: &[Case] = &[
        ("capabilities_and_no_new_privs", capabilities_and_no_new_privs),
        ("non_root_user_gets_planned_caps", non_root_user_gets_planned_caps),
        ("only_std_fds_open", only_std_fds_open),
        ("pid_1_and_host_processes_invisible", pid_1_and_host_processes_invisible),
        ("masked_paths_unreadable", masked_paths_unreadable),
        ("proc_sys_read_only", proc_sys_read_only),
        ("planted_device_node_unusable", planted_device_node_unusable),
        ("planted_symlinks_stay_inside_rootfs", planted_symlinks_stay_inside_rootfs),
        ("planted_symlink_cannot_redirect_a_file", planted_symlink_cannot_redirect_a_file),
        ("hostname_mounts_and_network", hostname_mounts_and_network),
        ("a_spare_network_namespace_is_fresh_and_used_once", a_spare_network_namespace_is_fresh_and_used_once),
        ("containers_keep_the_clients_cpu_mask", containers_keep_the_clients_cpu_mask),
        ("exit_codes_and_signals_exact", exit_codes_and_signals_exact),
        ("init_reaps_forwards_and_reports", init_reaps_forwards_and_reports),
        ("failures_name_the_step", failures_name_the_step),
        ("rlimits_applied_and_refused_above_hard", rlimits_applied_and_refused_above_hard),
        ("seccomp_filter_installed_last", seccomp_filter_installed_last),
        ("default_seccomp_profile_end_to_end", default_seccomp_profile_end_to_end),
        ("cgroup_attached_by_the_child", cgroup_attached_by_the_child),
        ("read_only_rootfs_and_bind_volumes", read_only_rootfs_and_bind_volumes),
        ("files_and_tmpfs_written_from_memory", files_and_tmpfs_written_from_memory),
        ("secrets_are_mounts_of_one_file_each", secrets_are_mounts_of_one_file_each),
        ("persistent_upper_and_directory_rootfs", persistent_upper_and_directory_rootfs),
        ("join_runs_inside_a_running_container", join_runs_inside_a_running_container),
        ("nothing_left_behind", nothing_left_behind),
        ("container_dies_with_a_killed_client", lifetime::container_dies_with_a_killed_client),
        ("dropping_the_spawner_ends_everything", lifetime::dropping_the_spawner_ends_everything),
        ("a_stuck_start_times_out", lifetime::a_stuck_start_times_out),
        ("async_launch_and_large_plan", async_launch_and_large_plan),
        ("terminal_becomes_controlling_tty", terminal_becomes_controlling_tty),
        ("pty_in_the_containers_devpts", pty_in_the_containers_devpts),
    ];
    run_cases(cases, &spawner, &fx);
}

fn cap_hex(mask: u64) -> String {
    format!("{mask:016x}")
}

fn capabilities_and_no_new_privs(s: &Spawner, f: &Fixture) {
    let st = status_fields(&run_ok(s, &f.plan(&["cat", "/proc/self/status"])));
    let default = CapSets::docker_default();
    assert_eq!(st["CapEff"], cap_hex(default.effective));
    assert_eq!(st["CapPrm"], cap_hex(default.permitted));
    assert_eq!(st["CapBnd"], cap_hex(default.bounding));
    assert_eq!(st["CapInh"], cap_hex(0));
    assert_eq!(st["CapAmb"], cap_hex(0));
    assert_eq!(st["NoNewPrivs"], "1");
    assert_eq!(st["Uid"], "0\t0\t0\t0");
    // The control: without the flag the kernel shows 0.
    let mut plan = f.plan(&["cat", "/proc/self/status"]);
    plan.no_new_privs = false;
    assert_eq!(status_fields(&run_ok(s, &plan))["NoNewPrivs"], "0");
}

fn non_root_user_gets_planned_caps(s: &Spawner, f: &Fixture) {
    let mut plan = f.plan(&["cat", "/proc/self/status"]);
    plan.user = User { uid: 1000, gid: 1000, additional_gids: vec![5, 100] };
    let bounding = CapSets::docker_default().bounding;
    // What the confinement code plans for a non-root user by default: nothing effective.
    plan.caps = CapSets { bounding, permitted: 0, effective: 0, inheritable: 0, ambient: 0 };
    let st = status_fields(&run_ok(s, &plan));
    assert_eq!(st["Uid"], "1000\t1000\t1000\t1000");
    assert_eq!(st["Gid"], "1000\t1000\t1000\t1000");
    assert_eq!(st["Groups"], "5 100");
    assert_eq!(st["CapEff"], cap_hex(0));
    assert_eq!(st["CapBnd"], cap_hex(bounding));
    // A capability asked for survives execve as a non-root user only through the ambient set.
    let nbs = 1 << 10;
    plan.caps = CapSets { bounding, permitted: nbs, effective: nbs, inheritable: nbs, ambient: nbs };
    let st = status_fields(&run_ok(s, &plan));
    assert_eq!(st["Uid"], "1000\t1000\t1000\t1000");
    assert_eq!((st["CapEff"].as_str(), st["CapPrm"].as_str(), st["CapAmb"].as_str()), (&*cap_hex(nbs), &*cap_hex(nbs), &*cap_hex(nbs)));
}

fn only_std_fds_open(s: &Spawner, f: &Fixture) {
    // Pass extra descriptors the child must not keep: a netns (joined, then closed at exec).
    let netns: OwnedFd = std::fs::File::open("/proc/self/ns/net").unwrap().into();
    let (c, o, e) = launch(s, &f.plan(&["ls", "/proc/self/fd"]), StartFds { netns: Some(netns), ..Default::default() }).unwrap();
    let out = finish(c, o, e);
    assert_eq!(out.status, ExitStatus::Exited(0), "{}", out.stderr);
    // 0-2, and the one ls itself opened to read the directory.
    let fds: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "open descriptors: {fds:?}");
}

fn pid_1_and_host_processes_invisible(s: &Spawner, f: &Fixture) {
    let out = run_ok(s, &f.plan(&["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "the process is pid 1");
    let visible: usize = lines[1].parse().unwrap();
    // sh, and the ls and grep it forked: nothing of the host's hundreds of processes.
    assert!(visible <= 3, "{visible} processes visible");
    let host = std::fs::read_dir("/proc").unwrap().filter(|e| e.as_ref().unwrap().file_name().to_str().unwrap().parse::<u32>().is_ok()).count();
    assert!(host > 3, "the host shows {host} processes (the comparison must be able to fail)");
}

/// The paths of `list` this host's kernel has (the others are skipped by the sequence).
fn existing(list: &[&str]) -> Vec<String> {
    list.iter().filter(|p| std::path::Path::new(p).exists()).map(|p| p.to_string()).collect()
}

fn masked_paths_unreadable(s: &Spawner, f: &Fixture) {
    // Moby's masked files this kernel has (several do not exist here, and are skipped).
    let files = existing(&["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/interrupts", "/proc/latency_stats"]);
    assert!(!files.is_empty());
    let dirs = existing(&["/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware"]);
    let script = format!(
        "stat -c '%F %t:%T' {files}; cat {files} | wc -c; for d in {dirs}; do ls -A $d | wc -l; done; touch /sys/firmware/x",
        files = files.join(" "),
        dirs = dirs.join(" ")
    );
    let out = run(s, &f.plan(&["sh", "-c", &script])).unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), files.len() + 1 + dirs.len(), "{}{}", out.stdout, out.stderr);
    for l in &lines[..files.len()] {
        assert_eq!(*l, "character special file 1:3", "{}", out.stdout);
    }
    assert_eq!(lines[files.len()], "0", "the masked files read nothing");
    assert!(lines[files.len() + 1..].iter().all(|l| *l == "0"), "masked directories are empty: {lines:?}");
    assert!(out.stderr.contains("Read-only file system"), "{}", out.stderr);
    // The control: on the host the same files have content.
    let host: usize = files.iter().map(|p| std::fs::read(p).map_or(0, |d| d.len())).sum();
    assert!(host > 0, "the host's masked files read {host} bytes");
}

fn proc_sys_read_only(s: &Spawner, f: &Fixture) {
    let out = run(s, &f.plan(&["sh", "-c", "cat /proc/sys/kernel/hostname; echo x > /proc/sys/kernel/hostname"])).unwrap();
    assert_eq!(out.stdout.trim(), "tfctl-test");
    assert_ne!(out.status, ExitStatus::Exited(0));
    assert!(out.stderr.contains("Read-only file system"), "{}", out.stderr);
    let ro = existing(&["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]);
    let script = format!("for p in {}; do grep -q \" $p ro,\" /proc/self/mountinfo && echo $p; done", ro.join(" "));
    assert_eq!(run_ok(s, &f.plan(&["sh", "-c", &script])), ro.iter().map(|p| format!("{p}\n")).collect::<String>());
}

fn planted_device_node_unusable(s: &Spawner, f: &Fixture) {
    let out = run(s, &f.plan(&["sh", "-c", "stat -c '%F' /disk /nullnode; head -c 1 /disk; head -c 1 /nullnode"])).unwrap();
    assert_eq!(out.stdout, "block special file\ncharacter special file\n", "the nodes are there");
    assert_ne!(out.status, ExitStatus::Exited(0));
    assert_eq!(out.stderr.matches("Permission denied").count(), 2, "{}", out.stderr);
    // The control: the harmless node opens on the host (the overlay's nodev is what stops it).
    assert!(std::fs::File::open(f.layer.join("nullnode")).is_ok());
}

fn planted_symlinks_stay_inside_rootfs(s: &Spawner, f: &Fixture) {
    let mut plan = f.plan(&["sh", "-c", "ls /sys/kernel >/dev/null && echo sys-ok; stat -c '%t:%T' /dev/null"]);
    setup(&mut plan).rootfs.source = RootfsSource::Overlay { layers: vec![f.layer.clone(), f.hazard()], upper: OverlayUpper::Tmpfs { size_bytes: 1 << 20 } };
    let (c, o, e) = launch(s, &plan, StartFds::default()).unwrap();
    // While it runs (and after), the host paths the symlinks name hold no mount and no file.
    for name in ["hostsys", "hostdev"] {
        assert!(mounts_under(&f.path(name)).is_empty());
        assert_eq!(std::fs::read_dir(f.path(name)).unwrap().count(), 0, "{name} untouched");
    }
    let out = finish(c, o, e);
    assert_eq!(out.status, ExitStatus::Exited(0), "{}", out.stderr);
    assert_eq!(out.stdout, "sys-ok\n1:3\n");
}

fn planted_symlink_cannot_redirect_a_file(s: &Spawner, f: &Fixture) {
    let mut plan = f.plan(&["true"]);
    let set = setup(&mut plan);
    set.rootfs.source = RootfsSource::Overlay { layers: vec![f.layer.clone(), f.hazard()], upper: OverlayUpper::Tmpfs { size_bytes: 1 << 20 } };
    set.files.push(FileInit { path: "/etc/planted".into(), data: b"overwritten\n".to_vec(), mode: 0o644, uid: 0, gid: 0 });
    let err = run(s, &plan).err().expect("writing through the planted symlink is refused");
    assert_eq!(err.step(), Some(Step::WriteFile), "{err}");
    assert_eq!(err.errno(), Some(libc::ELOOP), "{err}");
    assert_eq!(std::fs::read_to_string(f.path("victim")).unwrap(), "host data\n");
}

fn hostname_mounts_and_network(s: &Spawner, f: &Fixture) {
    let script = "hostname; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; grep -E ' / | /proc | /dev | /sys | /dev/pts ' /proc/self/mountinfo | cut -d' ' -f5,6,8";
    let out = run_ok(s, &f.plan(&["sh", "-c", script]));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("tfctl-test"));
    assert_eq!(lines.next(), Some("lo"), "only loopback in a new network namespace:\n{out}");
    let mounts: Vec<&str> = lines.collect();
    let find = |target: &str| mounts.iter().find(|l| l.split(' ').next() == Some(target)).unwrap_or_else(|| panic!("{target} in {mounts:?}")).to_string();
    assert!(find("/").contains("nodev") && find("/").ends_with("overlay"), "{mounts:?}");
    let proc_ = find("/proc");
    assert!(proc_.contains("nosuid") && proc_.contains("nodev") && proc_.contains("noexec"), "{proc_}");
    assert!(find("/dev").ends_with("tmpfs") && find("/dev").contains("nosuid"));
    assert!(find("/sys").starts_with("/sys ro,") && find("/sys").ends_with("sysfs"), "{mounts:?}");
    assert!(find("/dev/pts").ends_with("devpts"));
    let dev = run_ok(s, &f.plan(&["ls", "/dev"]));
    let names: Vec<&str> = dev.split_whitespace().collect();
    assert_eq!(names, ["fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"]);
}

/// A namespace made ahead by `spare_netns` is what the clone would have made: new, loopback only,
/// for one container; the spawner itself stays in the host's namespace.
fn a_spare_network_namespace_is_fresh_and_used_once(s: &Spawner, f: &Fixture) {
    let script = "readlink /proc/self/ns/net; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '";
    let host = std::fs::read_link("/proc/self/ns/net").unwrap().to_string_lossy().into_owned();
    let spawner_ns = || std::fs::read_link(format!("/proc/{}/ns/net", s.pid())).unwrap().to_string_lossy().into_owned();
    s.spare_netns();
    let first = run_ok(s, &f.plan(&["sh", "-c", script]));
    assert_eq!(spawner_ns(), host, "the spawner went back to its own namespace");
    let second = run_ok(s, &f.plan(&["sh", "-c", script]));
    let (first_ns, second_ns) = (first.lines().next().unwrap(), second.lines().next().unwrap());
    assert!(first_ns != host && second_ns != host && first_ns != second_ns, "{host} {first_ns} {second_ns}");
    for out in [&first, &second] {
        assert_eq!(out.lines().skip(1).collect::<Vec<_>>(), ["lo"], "only loopback:\n{out}");
    }
}

/// The spawner may be moved to another CPU while it starts; it and its containers end up with
/// the client's CPU mask.
fn containers_keep_the_clients_cpu_mask(s: &Spawner, f: &Fixture) {
    let mask = |status: &str| status.lines().find(|l| l.starts_with("Cpus_allowed_list:")).unwrap_or_default().to_string();
    let ours = mask(&std::fs::read_to_string("/proc/self/status").unwrap());
    let container = mask(&run_ok(s, &f.plan(&["cat", "/proc/self/status"])));
    assert_eq!(container, ours);
    assert_eq!(mask(&std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap()), ours, "the spawner's own mask");
}

fn exit_codes_and_signals_exact(s: &Spawner, f: &Fixture) {
    assert_eq!(run(s, &f.plan(&["sh", "-c", "exit 3"])).unwrap().status, ExitStatus::Exited(3));
    // PID 1 ignores signals sent from inside its namespace (as in Docker without --init).
    assert_eq!(run(s, &f.plan(&["sh", "-c", "kill -9 $$; exit 4"])).unwrap().status, ExitStatus::Exited(4));
    assert_eq!(ExitStatus::Signaled(9).code(), 137);
    // A signal from outside through the pidfd.
    let (c, o, e) = launch(s, &f.plan(&["sleep", "100"]), StartFds::default()).unwrap();
    c.signal(libc::SIGKILL).unwrap();
    assert_eq!(finish(c, o, e).status, ExitStatus::Signaled(9));
}

fn init_reaps_forwards_and_reports(s: &Spawner, f: &Fixture) {
    let mut plan = f.plan(&["sh", "-c", "echo $$; sleep 0.1 & exit 3"]);
    plan.init = true;
    let out = run(s, &plan).unwrap();
    assert_eq!(out.stdout, "2\n", "the process runs under the init");
    assert_eq!(out.status, ExitStatus::Exited(3));
    plan.process.argv = vec!["sh".into(), "-c".into(), "kill -9 $$".into()];
    assert_eq!(run(s, &plan).unwrap().status, ExitStatus::Signaled(9));
    // SIGTERM to the init reaches the process (a bare PID 1 would ignore it).
    plan.process.argv = vec!["sleep".into(), "100".into()];
    let (c, o, e) = launch(s, &plan, StartFds::default()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    c.signal(libc::SIGTERM).unwrap();
    assert_eq!(finish(c, o, e).status, ExitStatus::Signaled(libc::SIGTERM));
    // A missing executable under the init still names the exec step.
    plan.process.argv = vec!["/no/such".into()];
    let err = run(s, &plan).err().expect("exec fails");
    assert_eq!((err.step(), err.errno()), (Some(Step::Exec), Some(libc::ENOENT)), "{err}");
}

fn failures_name_the_step(s: &Spawner, f: &Fixture) {
    let err = run(s, &f.plan(&["/no/such/program"])).err().expect("exec fails");
    assert_eq!((err.step(), err.errno()), (Some(Step::Exec), Some(libc::ENOENT)));
    let text = err.to_string();
    assert!(text.contains("executing the process") && text.contains("/no/such/program") && text.contains("no such file"), "{text}");
    let err = run(s, &f.plan(&["no-such-command"])).err().expect("PATH search fails");
    assert_eq!(err.step(), Some(Step::Exec));
    assert!(err.to_string().contains("searched in its PATH"), "{err}");
    let err = run(s, &f.plan(&["/etc/passwd"])).err().expect("not executable");
    assert_eq!((err.step(), err.errno()), (Some(Step::Exec), Some(libc::EACCES)), "{err}");
    let mut plan = f.plan(&["true"]);
    // A missing working directory is made (as Docker does); a file in its place is refused.
    plan.process.cwd = "/etc/passwd".into();
    let err = run(s, &plan).err().expect("cwd fails");
    assert_eq!((err.step(), err.errno()), (Some(Step::Workdir), Some(libc::ENOTDIR)), "{err}");
    let mut plan = f.plan(&["true"]);
    setup(&mut plan).rootfs.source = RootfsSource::Overlay { layers: vec![f.path("no-such-layer")], upper: OverlayUpper::Tmpfs { size_bytes: 1 << 20 } };
    let err = run(s, &plan).err().expect("overlay fails");
    assert_eq!(err.step(), Some(Step::RootfsOverlay), "{err}");
    // A tmpfs file that cannot be written ("x" is a file, not a folder) is named by its own path,
    // not by the container file whose index equals the tmpfs mount's.
    let mut plan = f.plan(&["true"]);
    let set = setup(&mut plan);
    let tmpfs_file = |path: &str| FileInit { path: path.into(), data: b"x".to_vec(), mode: 0o600, uid: 0, gid: 0 };
    set.mounts.push(MountStep::Tmpfs {
        target: "/run/cfg".into(),
        size_bytes: 1 << 20,
        mode: 0o755,
        flags: MountFlags::HARDENED,
        files: vec![tmpfs_file("x"), tmpfs_file("x/y")],
    });
    set.files = (0..set.mounts.len()).map(|n| tmpfs_file(&format!("/etc/file{n}"))).collect();
    let err = run(s, &plan).err().expect("the tmpfs file fails");
    assert_eq!((err.step(), err.errno()), (Some(Step::TmpfsFile), Some(libc::ENOTDIR)), "{err}");
    assert!(err.to_string().contains("/run/cfg/x/y") && !err.to_string().contains("/etc/file"), "{err}");
}

fn rlimits_applied_and_refused_above_hard(s: &Spawner, f: &Fixture) {
    let mut plan = f.plan(&["sh", "-c", "ulimit -n; ulimit -Hn"]);
    plan.rlimits = vec![Rlimit { resource: libc::RLIMIT_NOFILE, soft: 100, hard: 200 }];
    assert_eq!(run_ok(s, &plan), "100\n200\n");
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    if hard != u64::MAX {
        plan.rlimits = vec![Rlimit { resource: libc::RLIMIT_NOFILE, soft: 100, hard: hard + 1 }];
        let err = run(s, &plan).err().expect("above the hard limit");
        assert!(matches!(err, StartError::Refused(_)), "{err}");
        assert!(err.to_string().contains("CAP_SYS_RESOURCE"), "{err}");
    }
}

fn seccomp_filter_installed_last(s: &Spawner, f: &Fixture) {
    use seccompiler::{SeccompAction, SeccompFilter, TargetArch};
    let arch: TargetArch = std::env::consts::ARCH.try_into().unwrap();
    let rules = [libc::SYS_mkdir, libc::SYS_mkdirat].into_iter().map(|n| (n, vec![])).collect();
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch).unwrap();
    let bpf: seccompiler::BpfProgram = filter.try_into().unwrap();
    let mut plan = f.plan(&["sh", "-c", "mkdir /tmp/d && echo made"]);
    assert_eq!(run_ok(s, &plan), "made\n", "the control: root may mkdir");
    plan.seccomp = vec![bpf.into()];
    let out = run(s, &plan).unwrap();
    assert_ne!(out.status, ExitStatus::Exited(0));
    assert!(out.stderr.contains("Operation not permitted"), "{}", out.stderr);
    plan.process.argv = vec!["grep".into(), "Seccomp:".into(), "/proc/self/status".into()];
    assert_eq!(run_ok(s, &plan).split_whitespace().nth(1), Some("2"));
}

fn files_and_tmpfs_written_from_memory(s: &Spawner, f: &Fixture) {
    let mut plan = f.plan(&["sh", "-c", "stat -c '%a %u:%g %s' /etc/motd /run/secrets/token; cat /run/secrets/token; echo; grep ' /run/secrets ' /proc/self/mountinfo | cut -d' ' -f6"]);
    let set = setup(&mut plan);
    set.files.push(FileInit { path: "/etc/motd".into(), data: b"hello\n".to_vec(), mode: 0o640, uid: 1000, gid: 1000 });
    set.mounts.push(MountStep::Tmpfs {
        target: "/run/secrets".into(),
        size_bytes: 1 << 20,
        mode: 0o700,
        flags: MountFlags { readonly: true, ..MountFlags::HARDENED },
        files: vec![FileInit { path: "token".into(), data: b"s3cr3t".to_vec(), mode: 0o400, uid: 0, gid: 0 }],
    });
    let out = run_ok(s, &plan);
    assert_eq!(out, "640 1000:1000 6\n400 0:0 6\ns3cr3t\nro,nosuid,nodev,noexec,relatime\n");
}

/// A detached secrets tmpfs holding `files` (path, content), and a mount of each file.
fn secret_mounts(files: &[(&str, &[u8])]) -> Vec<std::os::fd::OwnedFd> {
    let owner = tfctl_schema::model::Owner { uid: 0, gid: 0 };
    let files = files.iter().map(|(target, content)| tfctl_runtime::secrets::SecretFile { target, content, mode: 0o400, owner });
    tfctl_runtime::secrets::SecretMounts::with_files(files).unwrap().mounts.into_iter().map(|p| p.fd).collect()
}

fn secrets_are_mounts_of_one_file_each(s: &Spawner, f: &Fixture) {
    // Beside the image's own /etc/passwd, which stays visible; the rootfs read-only after.
    let mut plan = f.plan(&["sh", "-c", "cat /etc/token; echo; head -c 5 /etc/passwd; echo; grep -c ' /etc/token ' /proc/self/mountinfo; grep -c ' /etc ' /proc/self/mountinfo; exit 0"]);
    let set = setup(&mut plan);
    set.secret_targets = vec!["/etc/token".into()];
    set.readonly_rootfs = true;
    let fds = StartFds { secret_mounts: secret_mounts(&[("/etc/token", b"s3cr3t")]), ..StartFds::default() };
    let (c, o, e) = launch(s, &plan, fds).unwrap();
    let out = finish(c, o, e);
    assert_eq!(out.status, ExitStatus::Exited(0), "{}", out.stderr);
    assert_eq!(out.stdout, "s3cr3t
root:
1
0
");

    // A symlink planted at the secret's path, pointing at a host file: refused, and the host
    // file neither written nor covered.
    let mut plan = f.plan(&["true"]);
    let set = setup(&mut plan);
    set.rootfs.source = RootfsSource::Overlay { layers: vec![f.layer.clone(), f.hazard()], upper: OverlayUpper::Tmpfs { size_bytes: 1 << 20 } };
    set.secret_targets = vec!["/etc/planted".into()];
    let fds = StartFds { secret_mounts: secret_mounts(&[("/etc/planted", b"s3cr3t")]), ..StartFds::default() };
    let err = launch(s, &plan, fds).err().expect("a secret placed through the planted symlink is refused");
    assert_eq!(err.step(), Some(Step::SecretMount), "{err}");
    assert_eq!(std::fs::read_to_string(f.path("victim")).unwrap(), "host data\n");
    assert!(mounts_under(&f.path("victim")).is_empty());
}

fn persistent_upper_and_directory_rootfs(s: &Spawner, f: &Fixture) {
    let (upper, work) = (f.path("upper"), f.path("work"));
    std::fs::create_dir_all(&upper).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let mut plan = f.plan(&["sh", "-c", "echo kept > /kept; grep ' / ' /proc/self/mountinfo"]);
    setup(&mut plan).rootfs.source = RootfsSource::Overlay { layers: vec![f.layer.clone()], upper: OverlayUpper::Dirs { upper: upper.clone(), work } };
    let out = run_ok(s, &plan);
    assert!(out.contains("volatile"), "{out}");
    assert_eq!(std::fs::read_to_string(upper.join("kept")).unwrap(), "kept\n");
    // A prepared directory as the root.
    let mut plan = f.plan(&["sh", "-c", "echo $((1+1)); grep ' / ' /proc/self/mountinfo | cut -d' ' -f6"]);
    setup(&mut plan).rootfs.source = RootfsSource::Directory(f.layer.clone());
    let out = run_ok(s, &plan);
    assert!(out.starts_with("2\n") && out.contains("nodev"), "{out}");
}

fn join_runs_inside_a_running_container(s: &Spawner, f: &Fixture) {
    let mut plan = f.plan(&["sh", "-c", "echo inside > /tmp/mark; exec sleep 100"]);
    plan.init = true;
    plan.seccomp = default_seccomp();
    let (c, o, e) = launch(s, &plan, StartFds::default()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let target: OwnedFd = c.pidfd().try_clone_to_owned().unwrap();
    let script = "cat /tmp/mark; hostname; cat /proc/self/status | grep -E '^(CapEff|NoNewPrivs|Seccomp):'; ls /proc | grep -c '^[0-9]'";
    let join = plan.exec_in(vec!["sh".into(), "-c".into(), script.into()], None);
    let (jc, jo, je) = launch(s, &join, StartFds { target: Some(target), ..Default::default() }).unwrap();
    let out = finish(jc, jo, je);
    assert_eq!(out.status, ExitStatus::Exited(0), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "inside", "same filesystem");
    assert_eq!(lines[1], "tfctl-test", "same hostname");
    assert_eq!(lines[2].split_whitespace().nth(1), Some(cap_hex(CapSets::docker_default().effective).as_str()));
    assert_eq!(lines[3], "NoNewPrivs:\t1");
    assert_eq!(lines[4], "Seccomp:\t2");
    let pids: usize = lines[5].parse().unwrap();
    assert!(pids <= 6, "same pid namespace: init, sleep, and the exec'd shell's processes ({pids})");
    // exec -t: a pty from the container's own devpts.
    let mut join = plan.exec_in(vec!["sh".into(), "-c".into(), "tty; ls -1 /dev/pts".into()], None);
    join.pty = true;
    let target: OwnedFd = c.pidfd().try_clone_to_owned().unwrap();
    let mut jc = s.launch(&join, StartFds { target: Some(target), ..Default::default() }).unwrap();
    let mut master = std::fs::File::from(jc.take_pty().unwrap());
    assert_eq!(jc.wait().unwrap(), ExitStatus::Exited(0));
    let mut text = String::new();
    let mut buf = [0u8; 1024];
    while let Ok(n @ 1..) = std::io::Read::read(&mut master, &mut buf) {
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(text.replace('\r', ""), "/dev/pts/0\n0\nptmx\n");
    c.signal(libc::SIGKILL).unwrap();
    assert_eq!(finish(c, o, e).status, ExitStatus::Signaled(9));
}

fn nothing_left_behind(s: &Spawner, f: &Fixture) {
    // A background process in the container dies with it.
    let (c, o, e) = launch(s, &f.plan(&["sh", "-c", "sleep 100 & sleep 0.2"]), StartFds::default()).unwrap();
    let pidns = std::fs::read_link(format!("/proc/{}/ns/pid", c.pid())).unwrap();
    assert_eq!(finish(c, o, e).status, ExitStatus::Exited(0));
    std::thread::sleep(std::time::Duration::from_millis(50));
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.parse::<u32>().is_ok()))
        .filter(|e| std::fs::read_link(e.path().join("ns/pid")).is_ok_and(|l| l == pidns))
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    assert!(left.is_empty(), "processes of the container left: {left:?}");
    assert!(mounts_under(f.dir.path()).is_empty(), "mounts left: {:?}", mounts_under(f.dir.path()));
    // The spawner keeps no descriptor of finished starts (successful or failed).
    let spawner_fds = || std::fs::read_dir(format!("/proc/{}/fd", s.pid())).unwrap().count();
    let before = spawner_fds();
    for argv in [&["true"][..], &["/no/such"][..], &["sh", "-c", "exit 2"][..]] {
        let netns: OwnedFd = std::fs::File::open("/proc/self/ns/net").unwrap().into();
        let _ = launch(s, &f.plan(argv), StartFds { netns: Some(netns), ..Default::default() }).map(|(c, o, e)| finish(c, o, e));
    }
    // The last container's mount namespace is let go just after its exit report (the unmounts
    // then delay no report), so the count settles a moment later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while spawner_fds() != before && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(spawner_fds(), before, "descriptors held by the spawner");
}

fn async_launch_and_large_plan(s: &Spawner, f: &Fixture) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // 1 MiB of environment: far more than a default socket buffer (~200 KiB) holds.
    let mut plan = f.plan(&["sh", "-c", "env | grep -c ^BIG; echo ${#BIG15}; exit 5"]);
    plan.process.env.extend((0..16).map(|i| format!("BIG{i}={}", "x".repeat(64 << 10))));
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let status = rt.block_on(async {
        let child = s.launch_async(&plan, StartFds { stdout: Some(out_w), ..Default::default() }).await.unwrap();
        let net = child.namespace(Namespace::Net).unwrap();
        let ours = std::fs::metadata("/proc/self/ns/net").unwrap();
        let theirs = nix::sys::stat::fstat(&net).unwrap();
        assert_ne!(std::os::unix::fs::MetadataExt::ino(&ours), theirs.st_ino, "the container has its own network namespace");
        child.wait_async().await.unwrap()
    });
    assert_eq!(status, ExitStatus::Exited(5));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(out_r), &mut out).unwrap();
    assert_eq!(out, format!("16\n{}\n", 64 << 10));
}

fn terminal_becomes_controlling_tty(s: &Spawner, f: &Fixture) {
    assert_ne!(tty_nr_on_a_pty(s, f, true), 0, "the terminal is the session's controlling tty");
    assert_eq!(tty_nr_on_a_pty(s, f, false), 0, "the control: a new session has no controlling tty");
}

/// Runs a container on a new pty; returns its controlling tty number (field 7 of stat).
fn tty_nr_on_a_pty(s: &Spawner, f: &Fixture, controlling_tty: bool) -> u64 {
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = || -> Option<OwnedFd> { Some(pty.slave.try_clone().unwrap()) };
    let mut plan = f.plan(&["sh", "-c", "[ -t 0 ] && echo is-a-tty; cut -d' ' -f7 /proc/self/stat"]);
    plan.controlling_tty = controlling_tty;
    let child = s.launch(&plan, StartFds { stdin: slave(), stdout: slave(), stderr: slave(), ..Default::default() }).unwrap();
    drop(pty.slave);
    assert_eq!(child.wait().unwrap(), ExitStatus::Exited(0));
    let mut out = Vec::new();
    let mut master = std::fs::File::from(pty.master);
    let mut buf = [0u8; 4096];
    // The master reads EIO once the last slave descriptor is closed.
    while let Ok(n @ 1..) = std::io::Read::read(&mut master, &mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&out).replace('\r', "");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("is-a-tty"), "{text}");
    lines.next().unwrap().trim().parse().unwrap()
}

/// The compiled Moby profile for Docker's default capabilities, as the plan carries it.
pub fn default_seccomp() -> Vec<BpfProgram> {
    use tfctl_runtime::seccomp::{programs, SeccompPolicy};
    let caps = tfctl_runtime::capabilities::CapSet(CapSets::docker_default().bounding);
    let p = programs(&SeccompPolicy::Default, caps).unwrap().expect("the default policy compiles");
    std::iter::once(p.main.clone()).chain(p.clone3_enosys.clone()).map(BpfProgram::from).collect()
}

fn default_seccomp_profile_end_to_end(s: &Spawner, f: &Fixture) {
    // Probes only seccomp refuses: a user namespace needs no capability.
    let mut plan = f.plan(&["unshare", "-U", "true"]);
    assert_eq!(run(s, &plan).unwrap().status, ExitStatus::Exited(0), "the control: unconfined, unshare -U works");
    plan.seccomp = default_seccomp();
    let out = run(s, &plan).unwrap();
    assert_ne!(out.status, ExitStatus::Exited(0));
    assert!(out.stderr.contains("Operation not permitted"), "{}", out.stderr);
    // The init reaper runs under the same filters: fork, wait, signals.
    plan.init = true;
    plan.process.argv = vec!["sh".into(), "-c".into(), "grep Seccomp: /proc/self/status; sleep 0.05 & wait; exit 7".into()];
    let out = run(s, &plan).unwrap();
    assert_eq!(out.status, ExitStatus::Exited(7), "{}", out.stderr);
    assert_eq!(out.stdout.split_whitespace().nth(1), Some("2"));
}

/// Removes the test's cgroup when the case ends, passed or not.
struct CgroupGuard(Box<dyn tfctl_runtime::cgroup::ContainerCgroup>);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.remove() {
            eprintln!("cleanup of {:?} failed: {e}", self.0.paths());
        }
    }
}

fn cgroup_attached_by_the_child(s: &Spawner, f: &Fixture) {
    use tfctl_runtime::cgroup::{detect, CgroupLimits};
    let driver = detect("start-container-test").unwrap();
    let limits = CgroupLimits { memory: None, cpus: None, pids: 20, pids_explicit: true, devices: Vec::new() };
    let cg = CgroupGuard(driver.create(&format!("tfctl-test-{}-start", std::process::id()), &limits).unwrap());
    let attach = cg.0.attach_files().unwrap();
    // A fork bomb of 40 background sleeps stops at pids.max; the cgroup namespace shows the
    // container's own cgroup as its root.
    // The bomb runs in a subshell that dies on its first failed fork; the shell then execs (no
    // fork needed) and keeps the container alive while the test looks.
    let script = "cat /proc/self/cgroup; (while :; do sleep 3 & done); echo bombed; exec sleep 1";
    let (c, o, e) = launch(s, &f.plan(&["sh", "-c", script]), StartFds { cgroup_procs: attach.fds, ..Default::default() }).unwrap();
    let mut waited = 0;
    while cg.0.pids().unwrap().len() < 19 && waited < 250 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        waited += 1;
    }
    let pids = cg.0.pids().unwrap();
    assert!(pids.contains(&c.pid()), "the container's init is in its cgroup: {pids:?}");
    assert!(pids.len() <= 20, "{} processes in a cgroup with pids.max 20", pids.len());
    // It ends by itself (the init's exit takes the bomb with it); a hang is killed, and fails.
    let mut p = libc::pollfd { fd: c.pidfd().as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&mut p, 1, 10_000) } != 1 {
        c.signal(libc::SIGKILL).unwrap();
    }
    let out = finish(c, o, e);
    assert_eq!(out.status, ExitStatus::Exited(0), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.len() > 3, "{}", out.stdout);
    assert_eq!(lines.last(), Some(&"bombed"), "{}", out.stderr);
    for l in &lines[..lines.len() - 1] {
        assert!(l.ends_with(":/"), "cgroup paths seen from inside: {}", out.stdout);
    }
    assert!(out.stderr.contains("fork"), "the fork bomb hit pids.max: {}", out.stderr);
    assert!(pids.len() >= 19, "the bomb filled the cgroup: {}", pids.len());
    assert!(cg.0.pids().unwrap().is_empty(), "nothing left in the cgroup");
}

fn read_only_rootfs_and_bind_volumes(s: &Spawner, f: &Fixture) {
    let vol = f.path("volume");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("data"), "from the host\n").unwrap();
    let conf = f.path("app.conf");
    std::fs::write(&conf, "setting=1\n").unwrap();
    let script = "cat /data/data /etc/app/app.conf; echo x > /data/new && echo wrote-volume; touch /rootfile || echo ro-root; \
                  touch /etc/app/app.conf || echo ro-file; echo x > /dev/shm/ok && echo shm-ok";
    let mut plan = f.plan(&["sh", "-c", script]);
    let set = setup(&mut plan);
    set.readonly_rootfs = true;
    set.mounts.push(MountStep::Bind { source: vol.clone(), target: "/data".into(), recursive: true, flags: MountFlags::HARDENED });
    // A file bind onto a path the image lacks: the directory and the file are made by descriptor.
    let ro = MountFlags { readonly: true, ..MountFlags::HARDENED };
    set.mounts.push(MountStep::Bind { source: conf, target: "/etc/app/app.conf".into(), recursive: false, flags: ro });
    let out = run(s, &plan).unwrap();
    assert_eq!(out.stdout, "from the host\nsetting=1\nwrote-volume\nro-root\nro-file\nshm-ok\n", "{}", out.stderr);
    assert!(vol.join("new").exists(), "the volume write reached the host directory");
}

fn pty_in_the_containers_devpts(s: &Spawner, f: &Fixture) {
    let mut plan = f.plan(&["sh", "-c", "tty; read line; stty size; echo got:$line; stat -c %u /dev/pts/0"]);
    plan.pty = true;
    plan.user = User { uid: 1000, gid: 1000, additional_gids: vec![] };
    plan.caps = CapSets { bounding: plan.caps.bounding, ..CapSets::default() };
    let mut child = s.launch(&plan, StartFds::default()).unwrap();
    let master = child.take_pty().expect("a pty master");
    let ws = libc::winsize { ws_row: 40, ws_col: 100, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize.
    assert_eq!(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) }, 0);
    let mut master = std::fs::File::from(master);
    std::io::Write::write_all(&mut master, b"hello\n").unwrap();
    assert_eq!(child.wait().unwrap(), ExitStatus::Exited(0));
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = std::io::Read::read(&mut master, &mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&out).replace('\r', "");
    // The input echoes back first; then the answers.
    let lines: Vec<&str> = text.lines().filter(|l| *l != "hello").collect();
    assert_eq!(lines, ["/dev/pts/0", "40 100", "got:hello", "1000"], "{text}");
}
