//! Installs the compiled filters in forked children and probes what the kernel then allows.
//! `harness = false`: the process stays single-threaded, so forking is safe.

#[path = "common/skip.rs"]
mod skip;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use tfctl_runtime::capabilities::{self, CapSet};
use tfctl_runtime::seccomp::{
    self, Arch, KernelVersion, Layout, SeccompPolicy, SeccompPrograms, MOBY_DEFAULT,
};

fn errno_of(rc: libc::c_long) -> i32 {
    if rc == -1 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    }
}

/// What the probes saw, one errno (0 = success) each.
#[derive(Debug, PartialEq)]
struct Seen {
    unshare_user: i32,
    clone3: i32,
    kcmp: i32,
    thread_ok: bool,
}

/// Runs the probes in a forked child under `progs` (none: unconfined) and returns what they saw.
fn probe(progs: Option<&SeccompPrograms>) -> Seen {
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: this test binary is single-threaded (harness = false).
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            drop(r);
            // SAFETY: plain prctl.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            if let Some(p) = progs {
                seccomp::install(&p.main).unwrap();
                if let Some(c) = &p.clone3_enosys {
                    seccomp::install(c).unwrap();
                }
            }
            // SAFETY: raw syscalls with valid (or deliberately empty) arguments.
            let (unshare_user, clone3, kcmp) = unsafe {
                (
                    errno_of(libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER)),
                    errno_of(libc::syscall(
                        libc::SYS_clone3,
                        std::ptr::null::<u8>(),
                        0usize,
                    )),
                    errno_of(libc::syscall(
                        libc::SYS_kcmp,
                        libc::getpid(),
                        libc::getpid(),
                        0,
                        0,
                        0,
                    )),
                )
            };
            let thread_ok = std::thread::spawn(|| 42)
                .join()
                .map(|v| v == 42)
                .unwrap_or(false);
            let msg = format!("{unshare_user} {clone3} {kcmp} {}", thread_ok as u8);
            nix::unistd::write(&w, msg.as_bytes()).unwrap();
            // SAFETY: leave without running the parent's atexit handlers.
            unsafe { libc::_exit(0) };
        }
        ForkResult::Parent { child } => {
            drop(w);
            let mut out = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut out).unwrap();
            assert_eq!(
                waitpid(child, None).unwrap(),
                WaitStatus::Exited(child, 0),
                "probe child failed"
            );
            let v: Vec<i32> = out.split_whitespace().map(|s| s.parse().unwrap()).collect();
            Seen {
                unshare_user: v[0],
                clone3: v[1],
                kcmp: v[2],
                thread_ok: v[3] == 1,
            }
        }
    }
}

fn default_caps(add: &[&str]) -> CapSet {
    let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
    capabilities::resolve(&add, &[], true).unwrap().bounding
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        skip::cannot_run("seccomp_install", "needs root (unshare(CLONE_NEWUSER) as the control)");
        return;
    }
    let unconfined = probe(None);
    assert_eq!(
        unconfined.unshare_user, 0,
        "control: unconfined unshare -U works as root"
    );
    assert_ne!(
        unconfined.clone3,
        libc::ENOSYS,
        "control: the kernel has clone3"
    );
    assert_eq!(unconfined.kcmp, 0, "control: kcmp works as root");
    assert!(unconfined.thread_ok);
    println!("ok: unconfined control {unconfined:?}");

    for layout in [Layout::Tree, Layout::Linear] {
        let p = seccomp::resolve(
            &MOBY_DEFAULT,
            Arch::native(),
            KernelVersion::running().unwrap(),
            default_caps(&[]),
        )
        .unwrap();
        let progs = seccomp::compile(&p, layout).unwrap();
        let seen = probe(Some(&progs));
        assert_eq!(
            seen.unshare_user,
            libc::EPERM,
            "{layout:?}: unshare -U refused by seccomp"
        );
        assert_eq!(
            seen.clone3,
            libc::ENOSYS,
            "{layout:?}: clone3 answers ENOSYS"
        );
        assert_eq!(seen.kcmp, libc::EPERM, "{layout:?}: kcmp needs SYS_PTRACE");
        assert!(
            seen.thread_ok,
            "{layout:?}: threads still start (glibc falls back to clone)"
        );
        println!("ok: default profile, {layout:?} layout: {seen:?}");
    }

    let ptrace = seccomp::programs(&SeccompPolicy::Default, default_caps(&["SYS_PTRACE"]))
        .unwrap()
        .unwrap();
    let seen = probe(Some(&ptrace));
    assert_eq!(seen.kcmp, 0, "cap-add SYS_PTRACE allows kcmp");
    assert_eq!(seen.unshare_user, libc::EPERM);
    println!("ok: cap-add SYS_PTRACE: {seen:?}");

    let admin = seccomp::programs(&SeccompPolicy::Default, default_caps(&["SYS_ADMIN"]))
        .unwrap()
        .unwrap();
    let seen = probe(Some(&admin));
    assert_eq!(seen.unshare_user, 0, "cap-add SYS_ADMIN allows unshare");
    assert_ne!(seen.clone3, libc::ENOSYS, "cap-add SYS_ADMIN allows clone3");
    println!("ok: cap-add SYS_ADMIN: {seen:?}");

    // A Docker-format JSON profile: allow everything but unshare, answered with EACCES.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.json");
    std::fs::write(
        &path,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["unshare"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
    )
    .unwrap();
    let custom = SeccompPolicy::load(&path).unwrap();
    let progs = seccomp::programs(&custom, default_caps(&[]))
        .unwrap()
        .unwrap();
    let seen = probe(Some(&progs));
    assert_eq!(
        seen.unshare_user,
        libc::EACCES,
        "the JSON profile's errnoRet"
    );
    assert_eq!(seen.kcmp, 0, "the JSON profile allows the rest");
    assert_ne!(
        seen.clone3,
        libc::ENOSYS,
        "this profile leaves clone3 alone"
    );
    println!("ok: Docker-format JSON profile: {seen:?}");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#).unwrap();
    let e = SeccompPolicy::load(&bad).unwrap_err().to_string();
    assert!(
        e.contains("bad.json") && e.contains("SCMP_ACT_NOTIFY"),
        "{e}"
    );

    clone3_fork_where_clone3_answers_enosys();

    // Timings: bench/confine.sh.
    println!("seccomp_install: all passed");
}

/// Under a filter that answers clone3 with ENOSYS (systemd's `RestrictNamespaces=`, which
/// `tfctl systemd`'s unit sets, installs one), `sys::clone3_fork` still makes a child in new
/// namespaces, with a pidfd: the spawner starts a container's init this way.
fn clone3_fork_where_clone3_answers_enosys() {
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: this test binary is single-threaded (harness = false).
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            drop(r);
            // SAFETY: plain prctl.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            seccomp::install(&seccomp::compile_clone3_enosys(Arch::native())).unwrap();
            // SAFETY: a raw syscall with deliberately empty arguments.
            let raw = errno_of(unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) });
            let own_uts = std::fs::read_link("/proc/self/ns/uts").unwrap();
            // SAFETY: this child is single-threaded; the grandchild only reads a link and exits.
            let msg = match unsafe { tfctl_runtime::sys::clone3_fork(libc::CLONE_NEWUTS as u64) } {
                Ok(tfctl_runtime::sys::Cloned::Child) => {
                    let moved = std::fs::read_link("/proc/self/ns/uts").map(|l| l != own_uts).unwrap_or(false);
                    // SAFETY: leave without running the parent's atexit handlers.
                    unsafe { libc::_exit(if moved { 7 } else { 1 }) };
                }
                Ok(tfctl_runtime::sys::Cloned::Parent { pid, pidfd }) => {
                    let status = waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
                    let code = if let WaitStatus::Exited(_, c) = status { c } else { -1 };
                    format!("{raw} ok {} {code}", (pidfd >= 0) as u8)
                }
                Err(e) => format!("{raw} err {e} 0"),
            };
            nix::unistd::write(&w, msg.as_bytes()).unwrap();
            // SAFETY: leave without running the parent's atexit handlers.
            unsafe { libc::_exit(0) };
        }
        ForkResult::Parent { child } => {
            drop(w);
            let mut out = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut out).unwrap();
            assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0), "probe child failed");
            let v: Vec<&str> = out.split_whitespace().collect();
            assert_eq!(v[0], libc::ENOSYS.to_string(), "control: the filter answers clone3 with ENOSYS ({out})");
            assert_eq!(v[1..], ["ok", "1", "7"], "clone3_fork made a child in a new UTS namespace, with a pidfd ({out})");
            println!("ok: clone3_fork falls back to clone where clone3 answers ENOSYS: {out}");
        }
    }
}
