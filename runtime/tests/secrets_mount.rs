//! Secrets reach the container as files on a tmpfs, mounted by descriptor inside the rootfs,
//! never staged on disk; a symlink planted in the image cannot send them outside the rootfs.
//! `harness = false`: single-threaded, so the child may unshare its mount namespace.

#[path = "common/skip.rs"]
mod skip;

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use tfctl_runtime::secrets::{self, SecretFile, SecretValue};
use tfctl_schema::model::{Owner, SecretTarget, SecretUse};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every regular file under `dir` (not following symlinks) that holds `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            hits.extend(files_holding(&e.path(), needle));
        } else if t.is_file() && contains(&std::fs::read(e.path()).unwrap(), needle) {
            hits.push(e.path().display().to_string());
        }
    }
    hits
}

fn check(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        skip::cannot_run("secrets_mount", "needs root");
        return;
    }
    // A fresh random value: anything holding it afterwards is a leak.
    let mut raw = [0u8; 32];
    getrandom::getrandom(&mut raw).unwrap();
    let secret = hex::encode(raw);
    let rootfs = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let outside = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // The image plants /run -> a host folder.
    std::os::unix::fs::symlink(outside.path(), rootfs.path().join("run")).unwrap();
    // Inside the rootfs that path exists, as in an image that has it: the symlink resolves there.
    std::fs::create_dir_all(rootfs.path().join(outside.path().strip_prefix("/").unwrap())).unwrap();
    std::fs::create_dir(rootfs.path().join("etc")).unwrap();

    let uses = vec![SecretUse {
        name: "db".into(),
        target: SecretTarget::File {
            path: "/run/secrets/db".into(),
            mode: 0o400,
            owner: None,
        },
    }];
    let values = HashMap::from([(
        "db".to_string(),
        SecretValue::new(secret.clone().into_bytes()),
    )]);
    let config = format!("password={secret}\n");
    let templated = [SecretFile {
        target: "/etc/app.conf",
        content: config.as_bytes(),
        mode: 0o440,
        owner: Owner { uid: 0, gid: 33 },
    }];
    let user = Owner {
        uid: 1000,
        gid: 1000,
    };
    let prepared = secrets::prepare_mounts(&uses, &values, user, &templated)
        .unwrap()
        .expect("two files");
    println!("secrets tmpfs noswap: {}", prepared.noswap);

    // SAFETY: single-threaded test binary.
    let child = match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let result = (|| -> Result<(), String> {
                unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare: {e}"))?;
                mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
                .map_err(|e| format!("rprivate: {e}"))?;
                let root = std::fs::File::open(rootfs.path()).unwrap();
                for m in &prepared.mounts {
                    // What the start sequence does (crate::start): the target made by
                    // descriptor inside the rootfs, then the secret's mount moved onto it.
                    let path = std::ffi::CString::new(m.target.as_str()).unwrap();
                    let target = tfctl_runtime::rootfs::open_or_create(root.as_raw_fd(), &path, false)
                        .map_err(|e| format!("mount target {}: errno {e}", m.target))?;
                    // SAFETY: open_or_create returned a descriptor that nothing else owns.
                    let target = unsafe { OwnedFd::from_raw_fd(target) };
                    secrets::attach(m.fd.as_fd(), target.as_fd())
                        .map_err(|e| format!("attach {}: {e}", m.target))?;
                }
                // As the container sees it: /run resolves inside the rootfs.
                let inside = rootfs
                    .path()
                    .join(outside.path().strip_prefix("/").unwrap())
                    .join("secrets/db");
                let meta =
                    std::fs::metadata(&inside).map_err(|e| format!("{}: {e}", inside.display()))?;
                check(
                    std::fs::read_to_string(&inside).unwrap() == secret,
                    "secret content",
                )?;
                check(
                    (meta.uid(), meta.gid()) == (1000, 1000),
                    "secret owned by the container's user",
                )?;
                check(
                    meta.permissions().mode() & 0o7777 == 0o400,
                    "secret mode 0400",
                )?;
                let conf = rootfs.path().join("etc/app.conf");
                check(
                    std::fs::read_to_string(&conf).unwrap() == config,
                    "templated file",
                )?;
                let meta = std::fs::metadata(&conf).unwrap();
                check(
                    (meta.gid(), meta.permissions().mode() & 0o7777) == (33, 0o440),
                    "template owner and mode",
                )?;
                let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
                let line = mountinfo
                    .lines()
                    .find(|l| l.contains(&inside.display().to_string()))
                    .ok_or("secret mount in mountinfo")?;
                check(
                    line.contains("nosuid") && line.contains("nodev") && line.contains("noexec"),
                    line,
                )?;
                check(line.contains(" - tmpfs "), line)?;
                check(
                    files_holding(outside.path(), secret.as_bytes()).is_empty(),
                    "nothing outside the rootfs",
                )?;
                check(
                    std::fs::read_dir(outside.path()).unwrap().count() == 0,
                    "outside folder untouched",
                )?;
                Ok(())
            })();
            if let Err(e) = &result {
                eprintln!("child: {e}");
            }
            // SAFETY: leave without the parent's atexit handlers.
            unsafe { libc::_exit(result.is_err() as i32) };
        }
        ForkResult::Parent { child } => child,
    };
    assert_eq!(
        waitpid(child, None).unwrap(),
        WaitStatus::Exited(child, 0),
        "secret mounts in the child"
    );
    drop(prepared);
    // The mount namespace is gone: the targets left in the rootfs are empty, nothing on disk
    // holds the value, raw or hex-decoded.
    let leaks = files_holding(rootfs.path(), secret.as_bytes());
    assert!(leaks.is_empty(), "secret on disk: {leaks:?}");
    assert!(files_holding(rootfs.path(), &raw).is_empty());
    assert!(files_holding(outside.path(), secret.as_bytes()).is_empty());
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "the planted symlink led nowhere outside"
    );
    println!("ok: secret and templated file mounted from a detached tmpfs (nosuid,nodev,noexec), 0400 owned by the user, through a planted /run symlink kept inside the rootfs; nothing on disk");
    println!("secrets_mount: all passed");
}
