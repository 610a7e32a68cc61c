//! The spawner process: single-threaded, forked from the CLI before any thread exists. It
//! serves start requests one at a time (clone, then wait for the child's exec or its failure),
//! reaps its children through their pidfds, and reports every exit. It dies with its parent
//! (PR_SET_PDEATHSIG) and exits when the request socket closes; its children die with it.

use super::plan::{Mode, StartPlan};
use super::protocol::{self, FdLayout, Reply, Request};
use crate::start::config::{ChildConfig, ChildFds};
use crate::start::step::{SyncMsg, SYNC_MSG_LEN};
use crate::start;
use crate::sys::{self, Cloned};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

struct Running {
    id: u64,
    pid: libc::pid_t,
    pidfd: OwnedFd,
    /// Kept for `init` containers: the init reports the real process's status on it.
    sync: Option<OwnedFd>,
}

struct Server {
    sock: RawFd,
    own_pidns: OwnedFd,
    running: Vec<Running>,
}

/// The spawner's main loop. Never returns.
pub(crate) fn serve(sock: OwnedFd, parent: libc::pid_t) -> ! {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    // SAFETY: getppid cannot fail.
    if unsafe { libc::getppid() } != parent {
        sys::exit(0);
    }
    // Children inherit non-dumpable (their /proc entries stay root-only until execve).
    let _ = sys::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    reset_signals();
    ensure_stdio_open();
    let own_pidns = match std::fs::File::open("/proc/self/ns/pid") {
        Ok(f) => OwnedFd::from(f),
        Err(e) => {
            eprintln!("tfctl spawner: cannot open its own pid namespace: {e}");
            sys::exit(1)
        }
    };
    let mut server = Server { sock: sock.as_raw_fd(), own_pidns, running: Vec::new() };
    loop {
        let mut pollfds: Vec<libc::pollfd> = std::iter::once(server.sock)
            .chain(server.running.iter().map(|r| r.pidfd.as_raw_fd()))
            .map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
            .collect();
        // SAFETY: pollfds is a valid array of its length.
        let n = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, -1) };
        if n < 0 {
            continue; // EINTR
        }
        let exited: Vec<usize> = pollfds[1..].iter().enumerate().filter(|(_, p)| p.revents != 0).map(|(i, _)| i).collect();
        for i in exited.into_iter().rev() {
            let r = server.running.swap_remove(i);
            server.reap(r);
        }
        if pollfds[0].revents != 0 {
            match protocol::recv::<Request>(server.sock) {
                Ok(Some((Request::Start { id, plan, layout }, fds))) => server.start(id, plan, layout, fds),
                // The client is gone: exit, and PR_SET_PDEATHSIG takes every container with us.
                Ok(None) => sys::exit(0),
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => eprintln!("tfctl spawner: bad request: {e}"),
                Err(_) => sys::exit(0),
            }
        }
    }
}

/// Descriptors received later must not land on 0-2 (the child's dup3 onto 0-2 would clobber
/// them): fill any standard descriptor the CLI had closed with /dev/null.
fn ensure_stdio_open() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            // SAFETY: open of a constant path; the lowest free number is `fd` itself.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}

/// Default dispositions and an empty mask, whatever the CLI had: children start clean, and
/// an ignored signal would otherwise stay ignored across execve.
fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: resetting a disposition to SIG_DFL has no memory effects.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let _ = sys::sigprocmask(libc::SIG_SETMASK, &sys::empty_sigset());
}

impl Server {
    fn reply(&self, msg: &Reply, fds: &[RawFd]) {
        if protocol::send(self.sock, msg, fds).is_err() {
            sys::exit(0);
        }
    }

    fn reap(&self, r: Running) {
        let mut status = 0;
        // SAFETY: r.pid is our unreaped child (its pidfd just became readable).
        let pid = unsafe { libc::waitpid(r.pid, &mut status, libc::WNOHANG) };
        if pid != r.pid {
            return;
        }
        if let Some(sync) = &r.sync {
            // The init's report of the real process, if it got that far.
            let mut buf = [0u8; SYNC_MSG_LEN];
            // SAFETY: buf is writable; non-blocking read of a socket we own.
            let n = unsafe { libc::recv(sync.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if n == SYNC_MSG_LEN as isize {
                if let Some(SyncMsg::Exited(s)) = SyncMsg::decode(&buf) {
                    status = s;
                }
            }
        }
        self.reply(&Reply::Exited { id: r.id, status }, &[]);
    }

    fn start(&mut self, id: u64, plan: StartPlan, layout: FdLayout, fds: Vec<OwnedFd>) {
        match self.clone_child(id, &plan, layout, &fds) {
            Ok(r) => {
                self.reply(&Reply::Started { id, pid: r.pid }, &[r.pidfd.as_raw_fd()]);
                self.running.push(r);
            }
            Err(Outcome::Refused(message)) => self.reply(&Reply::Refused { id, message }, &[]),
            Err(Outcome::Failed(f)) => self.reply(&Reply::Failed { id, step: f.step as u32, errno: f.errno, index: f.index }, &[]),
        }
        drop(fds);
    }

    fn clone_child(&mut self, id: u64, plan: &StartPlan, layout: FdLayout, fds: &[OwnedFd]) -> Result<Running, Outcome> {
        let child_fds = assign_fds(layout, fds).ok_or_else(|| Outcome::Refused("the descriptors sent do not match the request".into()))?;
        let (sync_child, sync_parent) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::SeqPacket,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Outcome::Refused(format!("socketpair: {e}")))?;
        let cfg = ChildConfig::prepare(plan, child_fds.clone(), sync_child.as_raw_fd(), sync_parent.as_raw_fd())
            .map_err(|e| Outcome::Refused(e.to_string()))?;
        let join = matches!(plan.mode, Mode::Join);
        let flags = if join {
            0
        } else {
            let mut f = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
            if child_fds.netns.is_none() {
                f |= libc::CLONE_NEWNET;
            }
            f as u64
        };
        if join {
            // Children of ours are born in the target's pid namespace until we switch back.
            sys::setns(child_fds.target.unwrap_or(-1), libc::CLONE_NEWPID)
                .map_err(|e| Outcome::Refused(format!("joining the container's pid namespace: {}", std::io::Error::from_raw_os_error(e))))?;
        }
        // SAFETY: the spawner is single-threaded; the child runs only start::child_main, which
        // reads `cfg` (copied with our memory) and makes raw syscalls.
        let cloned = unsafe { sys::clone3_fork(flags) };
        if let Ok(Cloned::Child) = cloned {
            start::child_main(&cfg);
        }
        if join {
            if let Err(e) = sys::setns(self.own_pidns.as_raw_fd(), libc::CLONE_NEWPID) {
                eprintln!("tfctl spawner: cannot return to its own pid namespace: {}", std::io::Error::from_raw_os_error(e));
                sys::exit(1);
            }
        }
        let (pid, pidfd) = match cloned {
            Ok(Cloned::Parent { pid, pidfd }) => (pid, pidfd),
            Ok(Cloned::Child) => unreachable!("the child never returns from child_main"),
            Err(e) => return Err(Outcome::Refused(format!("clone3: {}", std::io::Error::from_raw_os_error(e)))),
        };
        // SAFETY: clone3 gave us this new pidfd.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
        drop(sync_child);
        let init = cfg.init;
        drop(cfg);
        // Exec success is the socket closing at execve (or, with init, an explicit message).
        let mut buf = [0u8; SYNC_MSG_LEN];
        let n = loop {
            // SAFETY: buf is writable for its length.
            let n = unsafe { libc::recv(sync_parent.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                break n;
            }
        };
        let msg = if n == SYNC_MSG_LEN as isize { SyncMsg::decode(&buf) } else { None };
        match msg {
            None | Some(SyncMsg::Executed) => Ok(Running { id, pid, pidfd, sync: init.then_some(sync_parent) }),
            Some(SyncMsg::Failed(f)) => {
                // SAFETY: pid is our child; it exits right after reporting (an init after its
                // process does).
                unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
                Err(Outcome::Failed(f))
            }
            Some(SyncMsg::Exited(_)) => Err(Outcome::Refused("the init reported an exit before the exec".into())),
        }
    }
}

enum Outcome {
    Refused(String),
    Failed(crate::start::step::Failure),
}

/// Maps the received descriptors onto the request's layout.
fn assign_fds(layout: FdLayout, fds: &[OwnedFd]) -> Option<ChildFds> {
    let mut it = fds.iter().map(AsRawFd::as_raw_fd);
    let mut out = ChildFds::default();
    for (i, present) in layout.stdio.iter().enumerate() {
        if *present {
            out.stdio[i] = Some(it.next()?);
        }
    }
    for _ in 0..layout.cgroup_procs {
        out.cgroup_procs.push(it.next()?);
    }
    if layout.netns {
        out.netns = Some(it.next()?);
    }
    if layout.target {
        out.target = Some(it.next()?);
    }
    it.next().is_none().then_some(out)
}
