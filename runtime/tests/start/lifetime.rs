//! Containers do not outlive their spawner, nor the spawner its client: proven with a helper
//! process (this same test binary in a "holder" role) that starts a container and then dies.

use super::fixture::*;
use std::io::BufRead;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;
use tfctl_runtime::spawn::*;

const ROLE: &str = "TFCTL_START_TEST_ROLE";

/// Called first in main: if this process is a holder, play the role and exit.
pub fn maybe_play_holder() {
    let Ok(role) = std::env::var(ROLE) else { return };
    if role == "hang" {
        play_hang();
    }
    let spawner = Spawner::start().unwrap();
    let layer = std::env::var("TFCTL_START_TEST_LAYER").unwrap();
    let mountpoint = std::env::var("TFCTL_START_TEST_MNT").unwrap();
    let mut plan = Fixture::plan_for(layer.into(), mountpoint.into(), &["sleep", "100"]);
    plan.init = role.ends_with("-init");
    if role.ends_with("-user") {
        plan.user = User { uid: 1000, gid: 1000, additional_gids: vec![] };
        plan.caps = CapSets { bounding: plan.caps.bounding, ..CapSets::default() };
    }
    let child = spawner.launch(&plan, StartFds::default()).unwrap();
    println!("{} {}", spawner.pid(), child.pid());
    if role.starts_with("drop") {
        let mut go = String::new();
        std::io::stdin().read_line(&mut go).unwrap();
        drop(spawner);
        println!("dropped");
        std::process::exit(0);
    }
    std::thread::sleep(Duration::from_secs(100));
    std::process::exit(0);
}

/// A child stuck in its sequence (here: attaching to a "cgroup file" that is a full pipe) is
/// killed after the start timeout, and the spawner serves the next start.
fn play_hang() -> ! {
    let spawner = Spawner::start_with_timeout(Duration::from_millis(500)).unwrap();
    let layer = std::env::var("TFCTL_START_TEST_LAYER").unwrap();
    let mountpoint = std::env::var("TFCTL_START_TEST_MNT").unwrap();
    let plan = Fixture::plan_for(layer.into(), mountpoint.into(), &["true"]);
    let (_keep_reader, full) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK).unwrap();
    while nix::unistd::write(&full, &[0u8; 4096]).is_ok() {}
    nix::fcntl::fcntl(&full, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty())).unwrap();
    let err = spawner.launch(&plan, StartFds { cgroup_procs: vec![full], ..Default::default() }).err().expect("the stuck start fails");
    println!("{err}");
    let next = spawner.launch(&plan, StartFds::default()).expect("the next start works");
    println!("next {:?}", next.wait().unwrap());
    std::process::exit(0);
}

pub fn a_stuck_start_times_out(_: &Spawner, f: &Fixture) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(ROLE, "hang")
        .env("TFCTL_START_TEST_LAYER", &f.layer)
        .env("TFCTL_START_TEST_MNT", f.mountpoint())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("did not reach execve within 0.5 s"), "{text}");
    assert!(text.contains("next Exited(0)"), "{text}");
}

fn pidfd_open(pid: i32) -> OwnedFd {
    // SAFETY: pidfd_open takes integers and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(fd >= 0, "pidfd_open({pid}): {}", std::io::Error::last_os_error());
    // SAFETY: fresh descriptor.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

fn exits_within(fd: &OwnedFd, timeout: Duration) -> bool {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) == 1 }
}

fn holder(f: &Fixture, role: &str) -> (std::process::Child, std::io::Lines<std::io::BufReader<std::process::ChildStdout>>, OwnedFd, OwnedFd) {
    let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
        .env(ROLE, role)
        .env("TFCTL_START_TEST_LAYER", &f.layer)
        .env("TFCTL_START_TEST_MNT", f.mountpoint())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(helper.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let pids: Vec<i32> = first.split(' ').map(|p| p.parse().unwrap()).collect();
    let (spawner, container) = (pidfd_open(pids[0]), pidfd_open(pids[1]));
    assert!(!exits_within(&container, Duration::from_millis(20)), "the container runs");
    (helper, lines, spawner, container)
}

pub fn container_dies_with_a_killed_client(_: &Spawner, f: &Fixture) {
    // As a non-root user too: a change of uid clears the parent-death signal.
    for role in ["kill", "kill-init", "kill-user"] {
        let (mut helper, _, spawner, container) = holder(f, role);
        helper.kill().unwrap();
        helper.wait().unwrap();
        assert!(exits_within(&spawner, Duration::from_secs(5)), "{role}: the spawner dies with its client");
        let died = exits_within(&container, Duration::from_secs(5));
        if !died {
            // Leave nothing behind, then fail.
            let _ = tfctl_runtime::sys::pidfd_send_signal(container.as_raw_fd(), libc::SIGKILL);
        }
        assert!(died, "{role}: the container dies with the spawner");
    }
}

pub fn dropping_the_spawner_ends_everything(_: &Spawner, f: &Fixture) {
    let (mut helper, mut lines, spawner, container) = holder(f, "drop");
    std::io::Write::write_all(helper.stdin.as_mut().unwrap(), b"go\n").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "dropped");
    assert!(helper.wait().unwrap().success());
    assert!(exits_within(&spawner, Duration::from_secs(1)), "the spawner exited when its socket closed");
    assert!(exits_within(&container, Duration::from_secs(5)), "its container was killed");
}
