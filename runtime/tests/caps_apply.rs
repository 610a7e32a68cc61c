//! The capability masks, applied in a forked child the way the spawner applies them, give the
//! process what the kernel then reports in /proc/self/status after execve.
//! `harness = false`: single-threaded, so the child may exec.

#[path = "common/skip.rs"]
mod skip;

use std::ffi::CString;
use std::io::Read;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{dup2_stdout, execv, fork, setgid, setgroups, setuid, ForkResult, Gid, Uid};
use tfctl_runtime::capabilities::{self, ProcessCaps};

/// CapInh, CapPrm, CapEff, CapBnd, CapAmb of `cat /proc/self/status` run with `caps` as `uid`.
fn status_after_exec(caps: &ProcessCaps, uid: u32) -> [u64; 5] {
    let last = capabilities::last_cap();
    let (r, w) = nix::unistd::pipe().unwrap();
    let cat = CString::new("/bin/cat").unwrap();
    let args = [cat.clone(), CString::new("/proc/self/status").unwrap()];
    // SAFETY: single-threaded test binary.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let step = (|| -> Result<(), String> {
                capabilities::drop_bounding(caps, last).map_err(|e| format!("bounding: {e}"))?;
                if uid != 0 {
                    // SAFETY: prctl with integer arguments.
                    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
                    setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
                    setgid(Gid::from_raw(uid)).map_err(|e| format!("setgid: {e}"))?;
                    setuid(Uid::from_raw(uid)).map_err(|e| format!("setuid: {e}"))?;
                }
                capabilities::set_process_caps(caps).map_err(|e| format!("capset: {e}"))?;
                dup2_stdout(&w).map_err(|e| e.to_string())?;
                execv(&cat, &args).map_err(|e| format!("exec: {e}"))?;
                Ok(())
            })();
            eprintln!("child: {step:?}");
            // SAFETY: leave at once.
            unsafe { libc::_exit(1) };
        }
        ForkResult::Parent { child } => {
            drop(w);
            let mut out = String::new();
            std::fs::File::from(r).read_to_string(&mut out).unwrap();
            assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0));
            let field = |k: &str| {
                let line = out.lines().find(|l| l.starts_with(k)).unwrap();
                u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
            };
            ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"].map(field)
        }
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        skip::cannot_run("caps_apply", "needs root");
        return;
    }
    let dflt = 0x8004_05fb;
    let root = capabilities::resolve(&[], &[], true).unwrap();
    assert_eq!(
        status_after_exec(&root, 0),
        [0, dflt, dflt, dflt, 0],
        "root: CapEff = CapBnd = default"
    );
    println!("ok: root container: CapPrm = CapEff = CapBnd = {dflt:016x}, CapInh = CapAmb = 0");

    let ptrace = capabilities::resolve(
        &strings(&["SYS_PTRACE"]),
        &strings(&["NET_BIND_SERVICE"]),
        true,
    )
    .unwrap();
    let want = (dflt | (1 << 19)) & !(1 << 10);
    assert_eq!(
        status_after_exec(&ptrace, 0)[2],
        want,
        "cap-add SYS_PTRACE, cap-drop NET_BIND_SERVICE"
    );
    println!("ok: cap-add SYS_PTRACE cap-drop NET_BIND_SERVICE: CapEff {want:016x}");

    let user = capabilities::resolve(&[], &[], false).unwrap();
    assert_eq!(
        status_after_exec(&user, 1000),
        [0, 0, 0, dflt, 0],
        "non-root: nothing effective"
    );
    println!("ok: non-root user: CapEff = 0, CapBnd = {dflt:016x}");

    let nbs = capabilities::resolve(&strings(&["NET_BIND_SERVICE"]), &[], false).unwrap();
    let bit = 1 << 10;
    assert_eq!(
        status_after_exec(&nbs, 1000),
        [bit, bit, bit, dflt, bit],
        "non-root asking NET_BIND_SERVICE"
    );
    println!("ok: non-root user with cap-add NET_BIND_SERVICE: CapEff = CapAmb = {bit:016x}");
    println!("caps_apply: all passed");
}
