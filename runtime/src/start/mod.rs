//! The start sequence: what the cloned child does, top to bottom, from clone to execve.
//!
//! It runs in a child of the single-threaded spawner and reads only its precomputed
//! [`ChildConfig`]: no allocation, no locks, raw syscalls only. Each step has its own [`Step`];
//! the first failure is written to the sync socket as (step, errno, index) and the child exits.
//! Success is the sync socket closing at execve (it is close-on-exec), or, under `init`, an
//! explicit message once the process under the init has been executed.
//!
//! Why this order:
//! - the parent-death signal first, then a check that the spawner is still there;
//! - `/` rprivate before any mount, so nothing propagates to the host;
//! - cgroups joined by the child writing "0" to files opened before the clone (an attach from
//!   outside waits for an RCU grace period), and only then the cgroup namespace unshared, so the
//!   container sees its own cgroup as `/`;
//! - a given network namespace joined before /sys is mounted (sysfs shows the mounter's);
//! - every mount, file and mask while CAP_SYS_ADMIN is still held, all resolved by descriptor
//!   under the rootfs ([`crate::rootfs`]); masks and read-only paths after pivot_root, on the
//!   container's own /proc and /sys;
//! - the bounding set dropped while CAP_SETPCAP is held, before the user change (with
//!   PR_SET_KEEPCAPS so the permitted set survives setuid), then capset and the ambient set;
//! - no_new_privs before seccomp (which needs it), and seccomp last: after it only the syscalls
//!   the filters allow remain (a late sethostname would fail);
//! - close_range(CLOEXEC) keeps the sync socket open until execve, so an exec failure is still
//!   reported.
//!
//! Non-dumpable is inherited from the spawner (set before any namespace exists) and set again.

pub(crate) mod config;
pub(crate) mod init;
pub mod step;

use crate::capabilities;
use crate::rootfs;
use crate::seccomp;
use crate::sys;
use config::ChildConfig;
use std::convert::Infallible;
use step::{Failure, Step, StepExt, SyncMsg};

/// Exit code of a child whose start sequence failed (the parent reports the step instead).
pub(crate) const FAILED_EXIT: i32 = 127;

/// The child's entry point after clone3. Never returns.
pub(crate) fn child_main(cfg: &ChildConfig) -> ! {
    let Err(failure) = sequence(cfg);
    let _ = sys::write_all(cfg.sync_fd, &SyncMsg::Failed(failure).encode());
    sys::exit(FAILED_EXIT)
}

fn sequence(cfg: &ChildConfig) -> Result<Infallible, Failure> {
    // Die with the spawner; if it already died, the sync socket has no peer left.
    sys::close(cfg.parent_sync_fd);
    // The spawner blocks SIGCHLD (it reads it from a signalfd); the process starts with none
    // blocked. Only a bad `how` fails this call.
    let _ = sys::sigprocmask(libc::SIG_SETMASK, &sys::empty_sigset());
    if !cfg.detached {
        sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as _, 0, 0, 0).step(Step::DeathSignal)?;
    }
    if sys::poll_one(cfg.sync_fd, 0, 0).step(Step::DeathSignal)? & libc::POLLHUP != 0 {
        sys::exit(FAILED_EXIT);
    }
    // Inherited from the spawner, set again: no ptrace or /proc/PID access from inside.
    sys::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0).step(Step::Dumpable)?;
    // Device nodes and files get exactly the modes asked for.
    sys::umask(0);
    if let Some(strings) = &cfg.init_strings {
        // The init never executes anything: its command line would stay tfctl's own (binary,
        // state root, app file), its environment tfctl's.
        init::rename(strings).step(Step::InitName)?;
    }

    // Cgroups before the cgroup namespace, so the container sees its own cgroup as its root.
    for (i, &fd) in cfg.fds.cgroup_procs.iter().enumerate() {
        sys::write_all(fd, b"0").step_at(Step::CgroupAttach, i)?;
    }

    match &cfg.container {
        Some(c) => {
            // The clone gave us new mount, pid, ipc, uts (and maybe net) namespaces.
            sys::mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None).step(Step::Rprivate)?;
            sys::unshare(libc::CLONE_NEWCGROUP).step(Step::CgroupNamespace)?;
            if let Some(netns) = cfg.fds.netns {
                sys::setns(netns, libc::CLONE_NEWNET).step(Step::JoinNetwork)?;
            }
            if cfg.userns {
                // The network namespace belongs to the host's user namespace, so the container's
                // root holds no CAP_NET_BIND_SERVICE there: low ports are opened to everyone in
                // it instead, as Docker does for every container. /proc is still the host's
                // mount here, and a net sysctl is the opener's network namespace's.
                let fd = sys::openat2(libc::AT_FDCWD, c"/proc/sys/net/ipv4/ip_unprivileged_port_start", libc::O_WRONLY, 0, 0).step(Step::UnprivilegedPorts)?;
                let written = sys::write_all(fd, b"0");
                sys::close(fd);
                written.step(Step::UnprivilegedPorts)?;
            }
            // The app file's sysctls, after the one above so theirs wins. Like it, each file is
            // the opener's namespace's: net.* of the network namespace just joined, kernel.shm*,
            // kernel.msg*, kernel.sem and fs.mqueue.* of the IPC namespace the clone made.
            for (i, (path, value)) in c.sysctls.iter().enumerate() {
                let fd = sys::openat2(libc::AT_FDCWD, path, libc::O_WRONLY, 0, 0).step_at(Step::Sysctl, i)?;
                let written = sys::write_all(fd, value);
                sys::close(fd);
                written.step_at(Step::Sysctl, i)?;
            }
            if cfg.userns_root.is_some() {
                // The capabilities stay when mount_root changes the fsuid (see there).
                sys::prctl(libc::PR_SET_SECUREBITS, sys::userns::SECBIT_NO_SETUID_FIXUP, 0, 0, 0).step(Step::FsIds)?;
            }
            let root = rootfs::mount_root(&c.root, cfg.fds.userns, cfg.userns_root)?;
            for (i, m) in c.mounts.iter().enumerate() {
                rootfs::mount_step(root, m, i, cfg.fds.userns, c.tmpfs_owner.as_ref(), &c.devpts_gid)?;
            }
            for (i, f) in c.files.iter().enumerate() {
                rootfs::write_file(root, f).step_at(Step::WriteFile, i)?;
            }
            // Each secret is a mount of one file of the container's own tmpfs, placed on its
            // path (an empty file made by descriptor if the image has none): the rest of the
            // folder stays as the image has it.
            for (i, (&mount, target)) in cfg.fds.secret_mounts.iter().zip(&c.secret_targets).enumerate() {
                let at = rootfs::open_or_create(root, target, false).step_at(Step::SecretMount, i)?;
                let placed = sys::move_mount_fd(mount, at);
                sys::close(at);
                placed.step_at(Step::SecretMount, i)?;
            }
            // A working directory the image lacks is made (root's, 0755, each folder resolved
            // inside the root), as Docker makes it: before the root turns read-only, after the
            // mounts so that one under a volume lands in the volume. A file there is refused.
            let wd = rootfs::open_or_create(root, &cfg.cwd, true).step(Step::Workdir)?;
            let st = sys::fstat(wd);
            sys::close(wd);
            if st.step(Step::Workdir)?.st_mode & libc::S_IFMT != libc::S_IFDIR {
                return Err(Failure::new(Step::Workdir, libc::ENOTDIR));
            }
            if c.readonly_rootfs {
                if sys::mount_setattr_supported() {
                    sys::mount_setattr(root, sys::MOUNT_ATTR_RDONLY, 0, false).step(Step::ReadonlyRootfs)?;
                } else {
                    // The root is an overlay or a bind made nodev: a bind remount sets both.
                    sys::remount_attached(root, sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NODEV).step(Step::ReadonlyRootfs)?;
                }
            }
            rootfs::pivot(root)?;
            sys::close(root);
            let root = sys::openat2(libc::AT_FDCWD, c"/", libc::O_PATH | libc::O_DIRECTORY, 0, 0).step(Step::DetachOldRoot)?;
            let dev_null = rootfs::open_dev_null(root)?;
            for (i, path) in c.masked.iter().enumerate() {
                rootfs::mask(root, dev_null, path, i)?;
            }
            for (i, path) in c.readonly.iter().enumerate() {
                rootfs::make_readonly(root, path, i)?;
            }
            sys::close(dev_null);
            sys::close(root);
            if let Some(name) = &c.hostname {
                sys::sethostname(name).step(Step::Hostname)?;
            }
            if cfg.userns_root.is_some() {
                sys::setfsuid(0);
                sys::setfsgid(0);
                sys::prctl(libc::PR_SET_SECUREBITS, 0, 0, 0, 0).step(Step::FsIds)?;
            }
        }
        None => {
            // exec: the spawner already put us in the target's pid namespace; setns into a mount
            // namespace also moves root and cwd to that namespace's root.
            let target = cfg.fds.target.unwrap_or(-1);
            let all = libc::CLONE_NEWNS | libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS | libc::CLONE_NEWCGROUP;
            sys::setns(target, all).step(Step::JoinNamespaces)?;
            // The target's user namespace is joined last, as a new container's is (below).
        }
    }

    if cfg.pty {
        // In the container's own devpts, so the terminal has a name inside; the master goes
        // back to the client through the spawner.
        let (master, slave) = sys::open_pty(c"/dev/pts/ptmx", cfg.pty_owner.0, cfg.pty_owner.1).step(Step::Pty)?;
        sys::send_with_fd(cfg.sync_fd, &SyncMsg::PtyMaster.encode(), master).step(Step::Pty)?;
        sys::close(master);
        if cfg.container.is_some() {
            // A new container's terminal is its /dev/console too, as runc binds it (an `exec`
            // leaves the container's own).
            bind_console(slave).step(Step::Console)?;
        }
        for target in 0..3 {
            sys::dup3(slave, target, 0).step(Step::Stdio)?;
        }
        sys::close(slave);
    } else {
        for (target, source) in cfg.fds.stdio.iter().enumerate() {
            if let Some(fd) = *source {
                sys::dup3(fd, target as i32, 0).step(Step::Stdio)?;
            }
        }
    }
    sys::setsid().step(Step::Setsid)?;
    if cfg.controlling_tty {
        sys::ioctl_int(0, libc::TIOCSCTTY, 0).step(Step::ControllingTty)?;
    }
    for (i, &(resource, soft, hard)) in cfg.rlimits.iter().enumerate() {
        sys::setrlimit(resource, soft, hard).step_at(Step::Rlimit, i)?;
    }

    // `userns`: everything that needed the host's root is done (mounts, devices, the pty, the
    // rlimits); from here on the process is the namespace's, and `user` is read in it. Joining
    // gives the full capability sets of the namespace, which the steps below narrow as usual.
    if cfg.userns {
        let (ns, kind) = match (&cfg.container, cfg.fds.userns, cfg.fds.target) {
            (Some(_), Some(ns), _) => (ns, libc::CLONE_NEWUSER),
            (None, _, Some(target)) => (target, libc::CLONE_NEWUSER),
            _ => return Err(Failure::new(Step::JoinUserNamespace, libc::EBADF)),
        };
        sys::setns(ns, kind).step(Step::JoinUserNamespace)?;
    }

    // Keep the permitted set across setuid to a non-root user; capset below decides what stays.
    sys::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0).step(Step::KeepCaps)?;
    capabilities::drop_bounding(&cfg.caps, cfg.last_cap).map_err(|e| Failure::new(Step::BoundingSet, e as i32))?;
    sys::setgroups(&cfg.groups).step(Step::Groups)?;
    sys::setresgid(cfg.gid).step(Step::Gid)?;
    sys::setresuid(cfg.uid).step(Step::Uid)?;
    // A change of user or group clears the parent-death signal: set it again.
    if !cfg.detached {
        sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as _, 0, 0, 0).step(Step::DeathSignal)?;
    }
    if sys::poll_one(cfg.sync_fd, 0, 0).step(Step::DeathSignal)? & libc::POLLHUP != 0 {
        sys::exit(FAILED_EXIT);
    }
    sys::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0).step(Step::KeepCaps)?;

    sys::chdir(&cfg.cwd).step(Step::Cwd)?;
    let mut cwd = [0u8; 16];
    match sys::getcwd(&mut cwd) {
        // Only reachability matters; a long cwd just does not fit this small buffer.
        Ok(_) | Err(libc::ERANGE) => {}
        Err(e) => return Err(Failure::new(Step::Cwd, e)),
    }

    // The ambient set starts empty (the spawner's is); set_process_caps raises the planned bits.
    sys::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as _, 0, 0, 0).step(Step::Ambient)?;
    capabilities::set_process_caps(&cfg.caps).map_err(|e| Failure::new(Step::Capset, e as i32))?;
    if cfg.no_new_privs {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).step(Step::NoNewPrivs)?;
    }
    sys::umask(0o022);
    // Everything but 0-2 closes at execve; the sync socket stays open until then, so an exec
    // failure is still reported.
    sys::cloexec_from(3).step(Step::CloseFds)?;
    if let Some(gate) = cfg.fds.start_gate {
        // Created: everything but the execve is done. Reported now (the caller goes on with
        // its pid), then the process waits, as long as it takes, for `start`'s byte. Before
        // seccomp, whose filters may deny the read.
        sys::write_all(cfg.sync_fd, &SyncMsg::Executed.encode()).step(Step::StartGate)?;
        let mut byte = [0u8; 1];
        loop {
            match sys::read(gate, &mut byte) {
                Ok(1) => break,
                Err(libc::EINTR) => continue,
                Ok(_) => return Err(Failure::new(Step::StartGate, libc::EPIPE)),
                Err(e) => return Err(Failure::new(Step::StartGate, e)),
            }
        }
        sys::close(gate);
    }
    // Last: after this only the syscalls the filters allow remain.
    for (i, filter) in cfg.seccomp.iter().enumerate() {
        seccomp::install(filter).map_err(|e| Failure { step: Step::Seccomp, errno: e as i32, index: i as u32 })?;
    }

    if cfg.init {
        init::run(cfg)
    } else {
        Err(exec(cfg))
    }
}

/// Binds the pty `slave` onto /dev/console (an empty file made in the container's /dev tmpfs).
fn bind_console(slave: i32) -> Result<(), crate::sys::Errno> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let target = sys::openat2(libc::AT_FDCWD, c"/dev/console", flags, 0o600, libc::RESOLVE_NO_SYMLINKS)?;
    let bound = sys::open_tree_clone(slave, false).and_then(|m| {
        let moved = sys::move_mount_fd(m, target);
        sys::close(m);
        moved
    });
    sys::close(target);
    bound
}

/// execve of the first candidate path that exists; the failure of the most telling attempt.
pub(crate) fn exec(cfg: &ChildConfig) -> Failure {
    let mut errno = libc::ENOENT;
    for (i, path) in cfg.exec_candidates.iter().enumerate() {
        // SAFETY: ChildConfig::prepare built both arrays null-terminated, pointing into strings
        // it owns, and cfg outlives this call.
        let e = unsafe { sys::execve(path, cfg.argv_ptrs.as_ptr(), cfg.env_ptrs.as_ptr()) };
        // As execvp: keep looking past missing entries, remember a permission problem.
        match e {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::EACCES => errno = libc::EACCES,
            other => return Failure { step: Step::Exec, errno: other, index: i as u32 },
        }
    }
    Failure::new(Step::Exec, errno)
}
