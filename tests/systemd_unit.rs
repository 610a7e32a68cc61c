//! `tfctl systemd`: the units it writes are valid for systemd (`systemd-analyze verify`, with
//! every man page they name found among tfctl's), sandboxed below exposure 5 by
//! `systemd-analyze security` (its offline mode: this host need not run systemd), run this very
//! binary only when told to, and carry the environment their app file needs.
//!
//! That such a unit really starts, says READY=1, and leaves nothing when stopped is checked in a
//! guest with systemd as PID 1 (scripts/vm, MODES=systemd).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{stderr, stdout, tfctl_bin, Tfctl};

/// The unit `tfctl systemd --tfctl <this build> EXTRA FILE` prints, with `env` set.
fn unit(t: &Tfctl, file: &Path, extra: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = t.cmd();
    cmd.args(["systemd", "--tfctl", tfctl_bin()]).args(extra).arg(file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
}

fn analyze(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .current_dir(dir)
        // The man pages the unit names, where man(1) finds them: tfctl's own, from man/.
        .env("MANPATH", man_path(dir))
        .output()
        .expect("systemd-analyze (package systemd) is needed by this test")
}

/// A MANPATH holding the repository's pages as man1/ and man5/.
fn man_path(dir: &Path) -> PathBuf {
    let top = dir.join("man");
    for section in ["1", "5"] {
        let sub = top.join(format!("man{section}"));
        std::fs::create_dir_all(&sub).unwrap();
        for page in std::fs::read_dir(common::repo().join("man")).unwrap().flatten() {
            let name = page.file_name();
            if name.to_string_lossy().ends_with(&format!(".{section}")) && !sub.join(&name).exists() {
                std::os::unix::fs::symlink(page.path(), sub.join(&name)).unwrap();
            }
        }
    }
    top
}

/// The overall exposure `systemd-analyze security --offline=yes` gives the unit file.
fn exposure(dir: &Path, name: &str) -> f64 {
    let o = analyze(&["security", "--offline=yes", name], dir);
    let text = stdout(&o);
    let line = text.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| panic!("no exposure in: {text}{}", stderr(&o)));
    line.split(':').nth(1).and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("cannot read {line}"))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn units_verify_and_rate_below_exposure_5_unless_the_app_asks_for_more() {
    let t = Tfctl::new();
    // Not under /tmp: the app files of a unit with PrivateTmp= must not be there.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let samples = common::repo().join("samples");
    // The samples, and apps that open the sandbox: a user namespace, capabilities, binds.
    let userns = write(dir.path(), "ns.kdl", "app \"ns\"\ncontainer \"c\" {\n  image \"busybox:latest\"\n  userns \"auto\"\n}\n");
    let binds = write(
        dir.path(),
        "binds.kdl",
        "app \"binds\"\ncontainer \"c\" {\n  image \"busybox:latest\"\n  mount \"/usr/share\" at=\"/data\"\n  sysctl \"kernel.shmmax\" \"65536\"\n}\n",
    );
    let caps = write(dir.path(), "caps.kdl", "app \"caps\"\ncontainer \"c\" {\n  image \"busybox:latest\"\n  cap-add \"NET_RAW\" \"SYS_PTRACE\"\n}\n");
    // What an app asks for costs: a `userns "auto"` container three settings the kernel would
    // refuse its /proc under (ProtectKernelTunables=, ProtectKernelLogs=, RestrictNamespaces=~user),
    // NET_RAW and SYS_PTRACE their capabilities, packet sockets and @debug. Each is said in the
    // unit and in tfctl-systemd(1).
    let cases = [(samples.join("web.kdl"), 5.0), (samples.join("three-tier.kdl"), 5.0), (binds, 5.0), (caps, 5.4), (userns, 5.6)];
    for (file, limit) in cases {
        // The state root and config an admin's unit has (this test's are under /tmp: a unit for them goes
        // without PrivateTmp=, which would hide it). Printing a unit does not touch it.
        let text = unit(&t, &file, &["--root", "/var/lib/tfctl", "--config", "/etc/tfctl/config.kdl"], &[]);
        let name = format!("tfctl-{}.service", file.file_stem().unwrap().to_string_lossy());
        write(dir.path(), &name, &text);
        let o = analyze(&["verify", &name], dir.path());
        assert_eq!(o.status.code(), Some(0), "systemd-analyze verify {name}:\n{}{}\n{text}", stdout(&o), stderr(&o));
        let level = exposure(dir.path(), &name);
        eprintln!("{name}: exposure {level}");
        assert!(level < limit, "{name}: exposure {level}, want below {limit}\n{text}");

        // Control: the same unit without its sandbox is rated UNSAFE, as the unit tfctl wrote
        // before (9.6): the measure tells them apart.
        let start = text.find("\n# Sandbox.").unwrap();
        let end = text.find("\n[Install]").unwrap();
        let bare = format!("bare-{name}");
        write(dir.path(), &bare, &format!("{}{}", &text[..start], &text[end..]));
        let level = exposure(dir.path(), &bare);
        assert!(level > 9.0, "{bare}: exposure {level}");
    }
}

#[test]
fn a_unit_runs_the_supervisor_of_the_app_in_the_foreground() {
    let t = Tfctl::new();
    let file = common::repo().join("samples/web.kdl");
    let unit = unit(&t, &file, &[], &[]);
    let root = t.root.path().join("state");
    let exec = unit.lines().find(|l| l.starts_with("ExecStart=")).expect("an ExecStart line");
    assert!(exec.starts_with(&format!("ExecStart={} ", tfctl_bin())), "{exec}");
    assert!(exec.ends_with(&format!("up --quiet {}", file.display())), "{exec}");
    assert!(exec.contains(&format!("--root {}", root.display())), "the unit loses --root: {exec}");
    assert!(unit.contains("ExecStopPost=-") && unit.contains("down --quiet web"), "{unit}");
    assert!(unit.contains("\nType=notify\nNotifyAccess=main\n"), "{unit}");
    assert!(unit.contains("[Install]\nWantedBy=multi-user.target"), "{unit}");
    // The unit's cgroup is delegated: the containers' cgroups go below it (the VM checks in
    // scripts/vm/ show `systemctl stop` leaving nothing).
    assert!(unit.contains("\nDelegate=yes\n") && unit.contains("\nEnvironment=TFCTL_DELEGATED=1\n"), "{unit}");
    assert!(!root.exists(), "printing a unit touched the state root");
}

#[test]
fn a_relative_state_root_and_app_file_become_absolute() {
    let t = Tfctl::new();
    let o = t
        .cmd()
        .current_dir(common::repo())
        .args(["--root", "rel-state", "systemd", "--tfctl", tfctl_bin(), "samples/web.kdl"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let exec = stdout(&o).lines().find(|l| l.starts_with("ExecStart=")).unwrap().to_string();
    let repo = common::repo();
    assert!(exec.contains(&format!("--root {}/rel-state ", repo.display())), "{exec}");
    assert!(exec.ends_with(&format!("up --quiet {}/samples/web.kdl", repo.display())), "{exec}");
    assert!(!repo.join("rel-state").exists());
}

#[test]
fn a_binary_in_a_cargo_target_folder_is_refused_unless_named() {
    let t = Tfctl::new();
    let file = common::repo().join("samples/web.kdl");
    let o = t.run(&["systemd", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("inside a cargo target folder") && stderr(&o).contains("--tfctl"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "a unit was printed: {}", stdout(&o));
    let o = t.run(&["systemd", "--tfctl", "/nonexistent/tfctl", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--tfctl /nonexistent/tfctl"), "{}", stderr(&o));
}

#[test]
fn the_variables_and_from_env_secrets_an_app_needs_come_from_an_environment_file() {
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "shop.kdl",
        "app \"shop\"\nsecret \"db\" from-env=\"SHOP_DB_PASSWORD\"\ncontainer \"web\" {\n  image \"busybox:latest\"\n  env PORT=\"${SHOP_PORT:?the port}\"\n}\n",
    );
    let text = unit(&t, &file, &["--name", "shop"], &[("SHOP_PORT", "8080"), ("SHOP_DB_PASSWORD", "hunter2-secret")]);
    assert!(text.lines().any(|l| l == "EnvironmentFile=/etc/tfctl/shop.env"), "{text}");
    assert!(text.contains("takes SHOP_DB_PASSWORD, SHOP_PORT from the environment"), "{text}");
    // The unit names the variables, never their values.
    assert!(!text.contains("hunter2") && !text.contains("8080"), "{text}");
    write(dir.path(), "shop.service", &text);
    let o = analyze(&["verify", "shop.service"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));

    // Without the variable the app file requires, there is no unit: `up` would fail the same way.
    let o = t.cmd().args(["systemd", "--tfctl", tfctl_bin(), file.to_str().unwrap()]).env_remove("SHOP_PORT").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("SHOP_PORT"), "{}", stderr(&o));
}

/// What systemd hears from a `Type=notify` unit's main process: the foreground supervisor says
/// READY=1 once the app is ready, STATUS= lines, WATCHDOG=1 at half of WATCHDOG_USEC, and
/// STOPPING=1 when SIGTERM (systemctl stop) stops the app, after which it exits 0.
#[test]
fn the_foreground_supervisor_notifies_ready_status_watchdog_and_stopping() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;

    let t = Tfctl::new();
    let ns = common::NetNs::new("notify");
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "nt.kdl",
        &format!("app \"nt\"\ncontainer \"web\" {{\n  image \"{}\"\n  command \"sleep\" \"1000000\"\n  init\n  stop-timeout \"1s\"\n}}\n", common::busybox_image()),
    );
    let socket_path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    // No read waits forever: a supervisor that never notifies fails the test, it does not hang it.
    socket.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    // WATCHDOG_PID is the pid systemd started: the supervisor is that very process (nsenter execs).
    let mut child = t
        .cmd_in(&ns)
        .args(["up", "--quiet", file.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut recv = || {
        let n = socket.recv(&mut buf).unwrap_or_else(|e| panic!("no notification from the supervisor: {e}"));
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut seen = Vec::new();
    while !seen.iter().any(|m: &String| m.starts_with("READY=1")) {
        seen.push(recv());
    }
    assert!(seen.iter().any(|m| m == "STATUS=web: started"), "{seen:?}");
    assert_eq!(seen.last().unwrap(), "READY=1\nSTATUS=app nt is ready (1 container)");
    // The loop keeps pinging after READY.
    let mut pings = 0;
    while pings < 2 {
        if recv() == "WATCHDOG=1" {
            pings += 1;
        }
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let mut stopping = false;
    while !stopping {
        stopping = recv().starts_with("STOPPING=1");
    }
    let status = child.wait().unwrap();
    let err = BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok).collect::<Vec<_>>().join("\n");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(common::mounts_under(t.root.path()).is_empty(), "mounts left: {:?}", common::mounts_under(t.root.path()));
}
