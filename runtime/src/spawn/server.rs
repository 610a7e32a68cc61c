//! The spawner process: single-threaded, forked from the CLI before any thread exists. It
//! serves start requests one at a time (clone, then wait for the child's exec or its failure),
//! reaps its children through their pidfds, and reports every exit. It dies with its parent
//! (PR_SET_PDEATHSIG) and exits when the request socket closes; its children die with it.
//!
//! A child is kept until its exit has really been collected. A process in the container may
//! ptrace one (`exec`'s, a probe's, a hook's): its zombie is then shown to the tracer first, and
//! to us only once the tracer has waited for it or gone, which SIGCHLD (read from a signalfd)
//! tells. No wait here blocks on what a container process controls: a child given up is killed
//! (SIGKILL ends any ptrace stop) and reaped later with the others.

use super::plan::{Mode, StartPlan};
use super::protocol::{self, FdLayout, Reply, Request};
use crate::start::config::{ChildConfig, ChildFds};
use crate::start::step::{SyncMsg, SYNC_MSG_LEN};
use crate::start;
use crate::sys::{self, Cloned};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

struct Running {
    /// The request it answers; `None` for a child whose start failed or was given up (its
    /// client has had its answer): it is reaped without a report.
    id: Option<u64>,
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
    /// Its pidfd said it exited: it is no longer polled (the pidfd stays readable) and is
    /// collected at the next SIGCHLD if a tracer still holds it.
    exited: bool,
}

impl Running {
    /// A child to reap without a report.
    fn unreported(pid: libc::pid_t, pidfd: OwnedFd) -> Running {
        Running { id: None, pid, pidfd, pty: None, sync: None, mount_ns: None, exited: true }
    }
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
    /// SIGCHLD, blocked and read here: it says when a zombie a tracer held can be collected.
    sigchld: SignalFd,
    /// Opened at the first start that leaves a standard descriptor unset: such a process gets
    /// /dev/null, never the spawner's own descriptors (the CLI's terminal or redirect target).
    dev_null: Option<OwnedFd>,
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
    let sigchld = match sigchld_fd() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("tfctl spawner: cannot watch for its children's exits: {e}");
            sys::exit(1)
        }
    };
    let own_pidns = match std::fs::File::open("/proc/self/ns/pid") {
        Ok(f) => OwnedFd::from(f),
        Err(e) => {
            eprintln!("tfctl spawner: cannot open its own pid namespace: {e}");
            sys::exit(1)
        }
    };
    let start_timeout_ms = start_timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
    let mut server = Server {
        sock: sock.as_raw_fd(),
        start_timeout_ms,
        own_pidns,
        own_netns: None,
        spare_netns: None,
        child_stack: None,
        running: Vec::new(),
        sigchld,
        dev_null: None,
    };
    let mut affinity = affinity;
    loop {
        // The socket, SIGCHLD, then the pidfd of each child not yet seen to exit.
        let watched: Vec<usize> = (0..server.running.len()).filter(|&i| !server.running[i].exited).collect();
        let mut pollfds: Vec<libc::pollfd> = [server.sock, server.sigchld.as_raw_fd()]
            .into_iter()
            .chain(watched.iter().map(|&i| server.running[i].pidfd.as_raw_fd()))
            .map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
            .collect();
        if sys::poll(&mut pollfds, -1).is_err() {
            continue;
        }
        let mut collect = false;
        for (&i, p) in watched.iter().zip(&pollfds[2..]) {
            if p.revents != 0 {
                server.running[i].exited = true;
                collect = true;
            }
        }
        if pollfds[1].revents != 0 {
            // Drained before collecting: a SIGCHLD arriving after this wakes the next poll.
            while let Ok(Some(_)) = server.sigchld.read_signal() {}
            collect = true;
        }
        if collect {
            server.collect_exits();
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

/// SIGCHLD blocked and readable from a descriptor. Children inherit the mask: the start
/// sequence empties it first thing.
fn sigchld_fd() -> nix::Result<SignalFd> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
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

    /// Reaps every child seen to exit whose exit can be collected now, and reports it.
    fn collect_exits(&mut self) {
        let mut i = 0;
        while i < self.running.len() {
            let r = &self.running[i];
            if r.exited {
                let status = match sys::collect_exit(r.pidfd.as_raw_fd()) {
                    Ok(Some(status)) => Some(status),
                    // A tracer holds it: SIGCHLD comes once it lets go.
                    Ok(None) => None,
                    // Not our child any more (cannot happen while SIGCHLD is not ignored):
                    // reported as killed rather than never.
                    Err(_) => Some(libc::SIGKILL),
                };
                if let Some(status) = status {
                    let r = self.running.swap_remove(i);
                    self.report_exit(r, status);
                    continue;
                }
            }
            i += 1;
        }
    }

    fn report_exit(&self, r: Running, status: i32) {
        let mut status = status;
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
        if let Some(id) = id {
            self.reply(&Reply::Exited { id, status }, &[]);
        }
        // The last reference: the namespace's mounts go now, before the next request is read
        // (a restart may mount the same upper folder again).
        drop(mount_ns);
    }

    /// Kills a child whose start is given up and waits until it has left our memory (it may
    /// run on our stack, reading the plan we hold): a killed process exits even under a
    /// tracer, since SIGKILL ends any ptrace stop. Its zombie is reaped later with the others,
    /// so one a tracer holds does not stall the spawner.
    fn give_up(&mut self, pid: libc::pid_t, pidfd: OwnedFd) {
        let _ = sys::pidfd_send_signal(pidfd.as_raw_fd(), libc::SIGKILL);
        while !matches!(sys::poll_one(pidfd.as_raw_fd(), libc::POLLIN, -1), Ok(r) if r != 0) {}
        self.running.push(Running::unreported(pid, pidfd));
        self.collect_exits();
    }

    /// /dev/null, for a standard descriptor the request left unset.
    fn dev_null(&mut self) -> Result<RawFd, Outcome> {
        if self.dev_null.is_none() {
            let f = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null").map_err(|e| Outcome::Refused(format!("opening /dev/null: {e}")))?;
            self.dev_null = Some(f.into());
        }
        Ok(self.dev_null.as_ref().map(AsRawFd::as_raw_fd).expect("just opened"))
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
                // A detached process is never reaped here: its exit belongs to whoever
                // inherits it when the spawner exits (containerd's shim, a subreaper), and a
                // reap here, racing that exit, would take its status from them.
                if !plan.detached {
                    self.running.push(r);
                }
            }
            Err(Outcome::Refused(message)) => self.reply(&Reply::Refused { id, message }, &[]),
            Err(Outcome::Failed(f)) => self.reply(&Reply::Failed { id, step: f.step as u32, errno: f.errno, index: f.index }, &[]),
        }
        drop(fds);
    }

    fn clone_child(&mut self, id: u64, plan: &StartPlan, layout: FdLayout, fds: &[OwnedFd], spare_netns: Option<&OwnedFd>) -> Result<Running, Outcome> {
        let mut child_fds = assign_fds(layout, fds).ok_or_else(|| Outcome::Refused("the descriptors sent do not match the request".into()))?;
        if !plan.pty {
            for i in 0..3 {
                if child_fds.stdio[i].is_none() {
                    child_fds.stdio[i] = Some(self.dev_null()?);
                }
            }
        }
        if child_fds.netns.is_none() {
            child_fds.netns = spare_netns.map(AsRawFd::as_raw_fd);
        }
        // `userns`: the container's own user namespace, made now so the child can idmap its
        // mounts with it; held until the clone has its copy.
        let userns = match (&plan.mode, plan.userns) {
            (Mode::Container(_), Some(map)) => Some(
                sys::userns::make_userns(map.base, map.size).map_err(|e| Outcome::Refused(format!("making the container's user namespace: {e}")))?,
            ),
            _ => None,
        };
        child_fds.userns = userns.as_ref().map(AsRawFd::as_raw_fd);
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
            let mut f = libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
            if !matches!(&plan.mode, Mode::Container(s) if s.host_pid) {
                f |= libc::CLONE_NEWPID;
            }
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
        let cloned = if cfg.init || child_fds.start_gate.is_some() {
            // An init lives beside the spawner without ever executing a program, and a gated
            // child waits for `start` after the spawner has gone on (or exited): each gets a
            // copy of our memory.
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
            // is closed (at execve or exit) or after killing it and seeing it exit
            // ([`Server::give_up`]), and meanwhile we only wait on that socket.
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
                self.give_up(pid, pidfd);
                return Err(Outcome::Refused(format!(
                    "the start sequence did not reach execve within {:.1} s (a hung mount or filesystem?); the process was killed",
                    self.start_timeout_ms as f64 / 1000.0
                )));
            }
            let Ok((msg, fd)) = recv_sync(sync_parent.as_raw_fd()) else {
                // Without its report the child's state is unknown: it must not run on.
                self.give_up(pid, pidfd);
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
                    return Ok(Running { id: Some(id), pid, pidfd, pty, sync: init.then_some(sync_parent), mount_ns, exited: false });
                }
                Some(SyncMsg::Failed(f)) => {
                    // It exits right after reporting (an init after its process does), unless
                    // something stops it first: its status says nothing more.
                    self.give_up(pid, pidfd);
                    return Err(Outcome::Failed(f));
                }
                Some(SyncMsg::Exited(_)) => {
                    self.give_up(pid, pidfd);
                    return Err(Outcome::Refused("the init reported an exit before the exec".into()));
                }
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
    if layout.start_gate {
        out.start_gate = Some(it.next()?);
    }
    it.next().is_none().then_some(out)
}
