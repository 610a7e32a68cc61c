//! The app-file settings `check` always accepted and `up` now runs: `log files=`, `restart
//! "unless-stopped"`, the host network and PID modes and `device`, as a user meets them (`tty`,
//! `after restart=` and `replicas=` are still refused by `up`, by name). Each test in a network namespace and state root of its own.

mod common;

use common::{stdout, World};

#[test]
fn a_log_keeps_as_many_rotated_files_as_files_says() {
    let w = World::new("logfiles");
    // 400 lines of 100 bytes, 40 kB, against a 4K size: many rotations, three files kept.
    let up = w.up(
        "lf",
        &format!(
            "container \"chatty\" {{\n image \"{}\"\n command \"sh\" \"-c\" \"i=0; while [ $$i -lt 400 ]; do printf '%099d\\\\n' $$i; i=$$((i+1)); done; echo done; sleep 300\"\n init\n stop-timeout \"1s\"\n log size=\"4K\" files=3\n}}\n",
            w.image
        ),
    );
    let logs = up.state_dir().join("apps/lf/logs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !stdout(&up.run(&["logs", "--tail", "1", "lf/chatty"])).contains("done") {
        assert!(std::time::Instant::now() < deadline, "the container never finished writing");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for n in 1..=3 {
        let f = logs.join(format!("chatty.log.{n}"));
        let len = std::fs::metadata(&f).map(|m| m.len()).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(len <= 4096, "{} is {len} bytes", f.display());
    }
    assert!(!logs.join("chatty.log.4").exists(), "a fourth rotated file was kept");
    // `logs` reads all four files, oldest first: more lines than two files of 4K hold, in order.
    let text = stdout(&up.run(&["logs", "lf/chatty"]));
    let numbers: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert!(numbers.len() > 2 * 4096 / 100, "{} lines: {text}", numbers.len());
    assert!(numbers.windows(2).all(|p| p[1] == p[0] + 1), "{text}");
    assert_eq!(numbers.last(), Some(&399));
}

/// The supervisor's pid, from `ps`.
fn supervisor_pid(up: &common::Up<'_>) -> i32 {
    let v = up.ps();
    v["apps"][0]["supervisor"]["pid"].as_i64().unwrap_or_else(|| panic!("no supervisor: {v}")) as i32
}

/// Kills the supervisor as a crash or a power cut would, and waits until it is gone.
fn crash_supervisor(up: &common::Up<'_>) {
    let pid = supervisor_pid(up);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(std::time::Instant::now() < deadline, "supervisor {pid} outlived SIGKILL");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn unless_stopped_keeps_a_user_stop_across_a_later_up_and_always_does_not() {
    let w = World::new("unlessstop");
    let sleeper = |name: &str, policy: &str| {
        format!("container \"{name}\" {{\n image \"{}\"\n command \"sleep\" \"300\"\n init\n stop-timeout \"1s\"\n restart \"{policy}\"\n}}\n", w.image)
    };
    let up = w.up("us", &format!("{}{}", sleeper("web", "unless-stopped"), sleeper("db", "always")));
    let file = w.dir.path().join("app.kdl");
    let again = || {
        let o = up.run(&["up", "--trust-file", "--wait=30s", file.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "up: {}", common::stderr(&o));
    };
    for c in ["us/web", "us/db"] {
        let o = up.run(&["stop", c]);
        assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    }
    // The host goes down with the app up and both containers stopped by the user.
    crash_supervisor(&up);
    again();
    // unless-stopped remembers the user's stop; the control, always, runs again.
    assert_eq!(up.state("web"), "stopped", "{}", up.ps());
    assert_eq!(up.state("db"), "running", "{}", up.ps());
    // `start` undoes the stop, for good: the next `up` runs it.
    let o = up.run(&["start", "us/web"]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    assert_eq!(up.state("web"), "running");
    crash_supervisor(&up);
    again();
    assert_eq!(up.state("web"), "running", "{}", up.ps());
    // `down` forgets a stop, as Docker's does.
    assert_eq!(up.run(&["stop", "us/web"]).status.code(), Some(0));
    assert_eq!(up.run(&["down", "us"]).status.code(), Some(0));
    again();
    assert_eq!(up.state("web"), "running", "{}", up.ps());
}

#[test]
fn host_network_and_host_pid_share_the_hosts_namespaces_and_the_control_does_not() {
    let w = World::new("hostmodes");
    // The test's network namespace stands for the host: tfctl runs in it, and so does the link
    // only the host has.
    assert!(w.ns.sh("ip link add tfhostmark type bridge").status.success());
    let sleeper = |name: &str, extra: &str| format!("container \"{name}\" {{\n image \"{}\"\n command \"sleep\" \"300\"\n init\n stop-timeout \"1s\"\n{extra}}}\n", w.image);
    let up = w.up("hm", &format!("{}{}{}", sleeper("hostnet", " network \"host\"\n"), sleeper("hostpid", " pid \"host\"\n"), sleeper("plain", "")));
    let out = |c: &str, cmd: &str| stdout(&up.run(&["exec", &format!("hm/{c}"), "--", "sh", "-c", cmd]));
    // network "host": the host's links, no veth of its own (only the two others have one).
    assert!(out("hostnet", "cat /proc/net/dev").contains("tfhostmark"), "{}", out("hostnet", "cat /proc/net/dev"));
    assert!(!out("plain", "cat /proc/net/dev").contains("tfhostmark"));
    let veths = stdout(&w.ns.cmd("ip").args(["-o", "link", "show", "type", "veth"]).output().unwrap());
    assert_eq!(veths.lines().count(), 2, "{veths}");
    // pid "host": the host's processes, this test's among them; the control sees its own only.
    let me = format!("test -d /proc/{} && echo seen", std::process::id());
    assert_eq!(out("hostpid", &me).trim(), "seen");
    assert_eq!(out("plain", &me).trim(), "");
}

#[test]
fn a_device_is_made_in_dev_and_allowed_and_no_other_device_is() {
    let w = World::new("device");
    let sleeper = |name: &str, extra: &str| format!("container \"{name}\" {{\n image \"{}\"\n command \"sleep\" \"300\"\n init\n stop-timeout \"1s\"\n{extra}}}\n", w.image);
    let up = w.up("dv", &format!("{}{}", sleeper("fuse", " device \"/dev/fuse\"\n device \"/dev/net/tun\"\n"), sleeper("plain", "")));
    let sh = |c: &str, cmd: &str| {
        let o = up.run(&["exec", &format!("dv/{c}"), "--", "sh", "-c", cmd]);
        format!("{}{}", stdout(&o), common::stderr(&o))
    };
    // The nodes have the host's type and numbers, a nested path included, and open.
    let ls = sh("fuse", "ls -l /dev/fuse /dev/net/tun");
    assert!(ls.contains("10, 229") && ls.contains("10, 200") && ls.lines().all(|l| l.starts_with('c')), "{ls}");
    assert_eq!(sh("fuse", "exec 3<>/dev/fuse && exec 4<>/dev/net/tun && echo opened").trim(), "opened");
    // The device cgroup still refuses what was not given: a node the container makes itself
    // (kmsg, 1:11) does not open.
    let kmsg = sh("fuse", "mknod /dev/k c 1 11 && cat /dev/k; echo status=$?");
    assert!(kmsg.contains("Operation not permitted") && kmsg.contains("status=1"), "{kmsg}");
    // The control has neither node.
    assert_eq!(sh("plain", "test -e /dev/fuse || test -e /dev/net/tun || echo absent").trim(), "absent");
}
