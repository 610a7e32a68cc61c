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
    /// The pty master of a `pty` start, handed to the client with the Started reply.
    pty: Option<OwnedFd>,
    /// Kept for `init` containers: the init reports the real process's status on it.
    sync: Option<OwnedFd>,
    /// A container's mount namespace, held until its exit has been reported: the unmounting of
    /// its root, /proc, /dev and /sys then happens here after the report instead of in its
    /// exit before it (where it delayed every exit report by some 0.2 ms).
    mount_ns: Option<OwnedFd>,
}

struct Server {
    sock: RawFd,
    /// How long a child may take from clone to execve before the spawner gives up on it.
    start_timeout_ms: i32,
    own_pidns: OwnedFd,
    /// This process's network namespace, opened when a spare is first made (to return to).
    own_netns: Option<OwnedFd>,
    /// A fresh network namespace made ahead of time ([`Request::SpareNetns`]), used by the next
    /// start without a netns instead of CLONE_NEWNET: nothing has entered it yet, so it is what
    /// the clone would have made.
    spare_netns: Option<OwnedFd>,
    child_stack: Option<sys::ChildStack>,
    running: Vec<Running>,
}

/// The spawner's main loop. Never returns.
/// `affinity`: the client's CPU mask at the fork, taken back at the first request (the client
/// may have moved the spawner to another CPU meanwhile).
pub(crate) fn serve(sock: OwnedFd, parent: libc::pid_t, start_timeout: std::time::Duration, affinity: Option<sys::CpuSet>) -> ! {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    // SAFETY: getppid cannot fail.
    if unsafe { libc::getppid() } != parent {
        sys::exit(0);
    }
    // Children inherit non-dumpable (their /proc entries stay root-only until execve).
    let _ = sys::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    reset_signals();
    // Out of the terminal's foreground process group: ^C or a hangup is for the CLI, which
    // passes it to the container or stops it gracefully. The spawner ends when the CLI does.
    // SAFETY: setpgid with integer arguments.
    unsafe { libc::setpgid(0, 0) };
    ensure_stdio_open();
    let own_pidns = match std::fs::File::open("/proc/self/ns/pid") {
        Ok(f) => OwnedFd::from(f),
        Err(e) => {
            eprintln!("tfctl spawner: cannot open its own pid namespace: {e}");
            sys::exit(1)
        }
    };
    let start_timeout_ms = start_timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
    let mut server = Server { sock: sock.as_raw_fd(), start_timeout_ms, own_pidns, own_netns: None, spare_netns: None, child_stack: None, running: Vec::new() };
    let mut affinity = affinity;
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
            if let Some(mask) = affinity.take() {
                let _ = mask.apply(0);
            }
            match protocol::recv::<Request>(server.sock) {
                Ok(Some((Request::Start { id, plan, layout }, fds))) => server.start(id, plan, layout, fds),
                Ok(Some((Request::SpareNetns, _))) => server.make_spare_netns(),
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
        let id = r.id;
        let mut r = r;
        let mount_ns = r.mount_ns.take();
        // Its descriptors close before the exit is told, but for the mount namespace (below).
        drop(r);
        self.reply(&Reply::Exited { id, status }, &[]);
        // The last reference: the namespace's mounts go now, before the next request is read
        // (a restart may mount the same upper folder again).
        drop(mount_ns);
    }

    /// Makes the spare network namespace: unshare into a new one, keep a descriptor of it, go
    /// back. Best effort: without a spare, the next start clones a namespace itself.
    fn make_spare_netns(&mut self) {
        if self.spare_netns.is_some() {
            return;
        }
        if self.own_netns.is_none() {
            match std::fs::File::open("/proc/thread-self/ns/net") {
                Ok(f) => self.own_netns = Some(f.into()),
                Err(_) => return,
            }
        }
        let Some(own) = self.own_netns.as_ref().map(AsRawFd::as_raw_fd) else { return };
        if sys::unshare(libc::CLONE_NEWNET).is_err() {
            return;
        }
        self.spare_netns = std::fs::File::open("/proc/thread-self/ns/net").ok().map(OwnedFd::from);
        if let Err(e) = sys::setns(own, libc::CLONE_NEWNET) {
            // Every later child would share this namespace: better no spawner at all.
            eprintln!("tfctl spawner: cannot return to its own network namespace: {}", std::io::Error::from_raw_os_error(e));
            sys::exit(1);
        }
    }

    fn start(&mut self, id: u64, plan: StartPlan, layout: FdLayout, fds: Vec<OwnedFd>) {
        // A start with its own netns leaves the spare for the next one.
        let spare = match (&plan.mode, layout.netns) {
            (Mode::Container(_), false) => self.spare_netns.take(),
            _ => None,
        };
        match self.clone_child(id, &plan, layout, &fds, spare.as_ref()) {
            Ok(mut r) => {
                let pty = r.pty.take();
                let fds: Vec<RawFd> = std::iter::once(r.pidfd.as_raw_fd()).chain(pty.as_ref().map(AsRawFd::as_raw_fd)).collect();
                self.reply(&Reply::Started { id, pid: r.pid, pty: pty.is_some() }, &fds);
                self.running.push(r);
            }
            Err(Outcome::Refused(message)) => self.reply(&Reply::Refused { id, message }, &[]),
            Err(Outcome::Failed(f)) => self.reply(&Reply::Failed { id, step: f.step as u32, errno: f.errno, index: f.index }, &[]),
        }
        drop(fds);
    }

    fn clone_child(&mut self, id: u64, plan: &StartPlan, layout: FdLayout, fds: &[OwnedFd], spare_netns: Option<&OwnedFd>) -> Result<Running, Outcome> {
        let mut child_fds = assign_fds(layout, fds).ok_or_else(|| Outcome::Refused("the descriptors sent do not match the request".into()))?;
        if child_fds.netns.is_none() {
            child_fds.netns = spare_netns.map(AsRawFd::as_raw_fd);
        }
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
        let cloned = if cfg.init {
            // An init lives beside the spawner without ever executing a program: it gets a copy
            // of our memory.
            // SAFETY: the spawner is single-threaded; the child runs only start::child_main,
            // which reads `cfg` (copied with our memory) and makes raw syscalls.
            let cloned = unsafe { sys::clone3_fork(flags) };
            if let Ok(Cloned::Child) = cloned {
                start::child_main(&cfg);
            }
            cloned
        } else {
            let stack = self.child_stack().map_err(|e| Outcome::Refused(format!("a stack for the child: {}", std::io::Error::from_raw_os_error(e))))?;
            // SAFETY: the spawner is single-threaded. The child runs start::child_main, which
            // reads `cfg` and makes raw syscalls (no allocation, no lock). `cfg` and the stack
            // outlive it in our memory: below, we return only once its end of the sync socket
            // is closed (at execve or exit) or after killing and reaping it, and meanwhile we
            // only wait on that socket.
            unsafe { sys::clone_vm(flags as libc::c_int, stack, child_entry, &cfg as *const ChildConfig as *mut libc::c_void) }.map(|(pid, pidfd)| Cloned::Parent { pid, pidfd })
        };
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
        // Exec success is the socket closing at execve (or, with init, an explicit message);
        // a pty master may come first. A child stuck in its sequence (a hung filesystem) must
        // not stop every later start.
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(self.start_timeout_ms as u64);
        let mut pty = None;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now()).as_millis() as i32;
            if let Ok(0) = sys::poll_one(sync_parent.as_raw_fd(), libc::POLLIN, left) {
                let _ = sys::pidfd_send_signal(pidfd.as_raw_fd(), libc::SIGKILL);
                // SAFETY: pid is our child, just killed.
                unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
                return Err(Outcome::Refused(format!(
                    "the start sequence did not reach execve within {:.1} s (a hung mount or filesystem?); the process was killed",
                    self.start_timeout_ms as f64 / 1000.0
                )));
            }
            let Ok((msg, fd)) = recv_sync(sync_parent.as_raw_fd()) else {
                // Without its report the child's state is unknown: it must not run on.
                let _ = sys::pidfd_send_signal(pidfd.as_raw_fd(), libc::SIGKILL);
                // SAFETY: pid is our child, just killed.
                unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
                return Err(Outcome::Refused("reading the child's start report failed; the process was killed".into()));
            };
            match msg {
                Some(SyncMsg::PtyMaster) => pty = fd,
                None | Some(SyncMsg::Executed) => {
                    // Taken now that the child has left our memory (a failing call here would
                    // have written the errno it shares with us), and at once: the process may
                    // be gone soon after its execve.
                    let mount_ns = if join {
                        None
                    } else {
                        // SAFETY: the ioctl returned a new descriptor that we own.
                        sys::pidfd_namespace(pidfd.as_raw_fd(), sys::Namespace::Mount).ok().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
                    };
                    return Ok(Running { id, pid, pidfd, pty, sync: init.then_some(sync_parent), mount_ns });
                }
                Some(SyncMsg::Failed(f)) => {
                    // SAFETY: pid is our child; it exits right after reporting (an init after
                    // its process does).
                    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
                    return Err(Outcome::Failed(f));
                }
                Some(SyncMsg::Exited(_)) => return Err(Outcome::Refused("the init reported an exit before the exec".into())),
            }
        }
    }
}

/// The stack children run on until their execve (one start at a time), mapped at first use.
impl Server {
    fn child_stack(&mut self) -> sys::SysResult<&sys::ChildStack> {
        if self.child_stack.is_none() {
            self.child_stack = Some(sys::ChildStack::new(CHILD_STACK_BYTES)?);
        }
        Ok(self.child_stack.as_ref().expect("just made"))
    }
}

/// The start sequence keeps its buffers small (it runs in the spawner's memory); 256 KiB is
/// many times what it uses, and only the pages touched cost anything.
const CHILD_STACK_BYTES: usize = 256 << 10;

extern "C" fn child_entry(cfg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: clone_child passes a ChildConfig that outlives the child's use of our memory.
    let cfg = unsafe { &*(cfg as *const ChildConfig) };
    start::child_main(cfg)
}

/// One message from a child's sync socket, with the descriptor it may carry; `None` at EOF.
fn recv_sync(sock: RawFd) -> Result<(Option<SyncMsg>, Option<OwnedFd>), nix::errno::Errno> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; SYNC_MSG_LEN];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    loop {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => {
                let n = m.bytes;
                let fd = m.cmsgs().ok().into_iter().flatten().find_map(|c| match c {
                    // SAFETY: SCM_RIGHTS hands us a fresh descriptor.
                    ControlMessageOwned::ScmRights(fds) => fds.first().map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    _ => None,
                });
                let msg = if n == SYNC_MSG_LEN { SyncMsg::decode(&buf) } else { None };
                return Ok((msg, fd));
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
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
    for _ in 0..layout.secret_mounts {
        out.secret_mounts.push(it.next()?);
    }
    it.next().is_none().then_some(out)
}
