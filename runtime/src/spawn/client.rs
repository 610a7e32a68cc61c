//! The client side of the spawner: a handle usable from plain threads and from tokio alike.
//! Until something awaits a reply, a blocking caller reads the spawner's replies itself (a
//! one-off `tfctl run` starts no thread, and hears of its container's start and exit without a
//! thread handing them over); from the first async wait on, one reader thread dispatches them.

use super::error::{SpawnerError, StartError};
use super::plan::{Mode, StartFds, StartPlan};
use super::protocol::{self, FdLayout, Reply, Request};
use super::server;
use crate::start::step::Step;
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// How a container process ended, exactly as the kernel reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    pub fn from_wait_status(status: i32) -> ExitStatus {
        if libc::WIFSIGNALED(status) {
            ExitStatus::Signaled(libc::WTERMSIG(status))
        } else {
            ExitStatus::Exited(libc::WEXITSTATUS(status))
        }
    }

    /// The shell's number: the exit code, or 128+N for signal N.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }
}

impl From<ExitStatus> for crate::supervise::driver::ExitStatus {
    fn from(s: ExitStatus) -> Self {
        crate::supervise::driver::ExitStatus {
            code: s.code(),
            signal: match s {
                ExitStatus::Signaled(n) => Some(n),
                ExitStatus::Exited(_) => None,
            },
        }
    }
}

type StartReply = Result<(i32, OwnedFd, Option<OwnedFd>), StartError>;

struct Pending {
    plan: Option<StartPlan>,
    started: Option<oneshot::Sender<StartReply>>,
    exited: Option<oneshot::Sender<ExitStatus>>,
}

struct Shared {
    sock: OwnedFd,
    send_lock: Mutex<()>,
    pending: Mutex<HashMap<u64, Pending>>,
    gone: Mutex<Option<String>>,
    next_id: AtomicU64,
    /// A spare network namespace has been asked for and no start has used it yet.
    spare_asked: std::sync::atomic::AtomicBool,
    /// The reader thread, once there is one. Until then, callers read replies themselves, one
    /// at a time, holding this lock while they do.
    reader: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// A handle on the spawner process. Dropping it closes the request socket: the spawner exits
/// and every process it started is killed (PR_SET_PDEATHSIG).
pub struct Spawner {
    shared: Arc<Shared>,
    pid: libc::pid_t,
    /// Whether dropping it waits for the spawner to exit ([`Spawner::release`] says no).
    reap: bool,
}

/// Who reads the spawner's replies, as [`Shared::pump`] found.
enum Pumped {
    /// The callers: what was waiting on the socket (maybe nothing) has been read and handed to
    /// its waiter, maybe another caller's.
    Here,
    /// A reader thread: wait on the channel.
    ReaderThread,
}

impl Shared {
    /// Starts the reader thread, if there is none yet (an async caller cannot read replies on
    /// its own thread).
    fn ensure_reader(self: &Arc<Shared>) {
        let mut reader = self.reader.lock().unwrap();
        if reader.is_none() {
            let shared = self.clone();
            match std::thread::Builder::new().name("tfctl-spawner-replies".into()).spawn(move || read_replies(&shared)) {
                Ok(handle) => *reader = Some(handle),
                Err(e) => {
                    *self.gone.lock().unwrap() = Some(format!("cannot start the thread reading its replies: {e}"));
                    self.pending.lock().unwrap().clear();
                }
            }
        }
    }

    /// Reads and dispatches the reply waiting on the socket, if there is one, unless a reader
    /// thread does that. Never blocks while it holds the lock (a reader thread starting, or
    /// another caller reading, waits for it at most that long).
    fn pump(&self) -> Pumped {
        let reader = self.reader.lock().unwrap();
        if reader.is_some() {
            return Pumped::ReaderThread;
        }
        // An interrupted poll reads nothing this time: the caller loops.
        let ready = crate::sys::poll_one(self.sock.as_raw_fd(), libc::POLLIN, 0).is_ok_and(|r| r != 0);
        if ready && self.gone.lock().unwrap().is_none() {
            if let Err(why) = read_one(self) {
                *self.gone.lock().unwrap() = Some(why);
                self.pending.lock().unwrap().clear();
            }
        }
        Pumped::Here
    }

    /// The value `rx` will get, reading replies on this thread while no reader thread does.
    /// Several threads may wait at once: whichever reads a reply hands it to its waiter.
    fn wait_for<T>(&self, mut rx: oneshot::Receiver<T>) -> Option<T> {
        loop {
            match rx.try_recv() {
                Ok(v) => return Some(v),
                Err(oneshot::error::TryRecvError::Closed) => return None,
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            if let Pumped::ReaderThread = self.pump() {
                return rx.blocking_recv().ok();
            }
            if let Ok(v) = rx.try_recv() {
                return Some(v);
            }
            // Nothing for us yet: sleep until the socket has something (for any waiter). The
            // timeout only bounds how long a reader thread started meanwhile goes unnoticed.
            let _ = crate::sys::poll_one(self.sock.as_raw_fd(), libc::POLLIN, 50);
        }
    }
}

/// How long a start may take from clone to execve by default (a hung mount or filesystem
/// otherwise stalls every later start: the spawner serves one start at a time).
pub const DEFAULT_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl Spawner {
    /// Forks the spawner. Call it first thing in `main`, while the process is single-threaded.
    pub fn start() -> Result<Spawner, SpawnerError> {
        Spawner::start_with_timeout(DEFAULT_START_TIMEOUT)
    }

    /// As [`Spawner::start`], with another limit on the time from clone to execve.
    pub fn start_with_timeout(start_timeout: std::time::Duration) -> Result<Spawner, SpawnerError> {
        let threads = crate::sys::thread_count().unwrap_or(1);
        if threads != 1 {
            return Err(SpawnerError::NotSingleThreaded(threads as usize));
        }
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .map_err(|e| SpawnerError::Socket(e.into()))?;
        // A plan carries seccomp programs and the environment: allow packets of a few MiB where
        // the host lets us (root may exceed wmem_max), else keep the default (~200 KiB).
        for sock in [&ours, &theirs] {
            let size: libc::c_int = 8 << 20;
            // SAFETY: setsockopt reads one int from a valid pointer.
            unsafe {
                libc::setsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, (&size as *const libc::c_int).cast(), 4);
            }
        }
        // SAFETY: getpid cannot fail.
        let parent = unsafe { libc::getpid() };
        let affinity = crate::sys::CpuSet::of(0).ok();
        // SAFETY: we checked that we are the only thread, so the child may run ordinary code.
        match unsafe { nix::unistd::fork() }.map_err(|e| SpawnerError::Fork(e.into()))? {
            nix::unistd::ForkResult::Child => {
                drop(ours);
                server::serve(theirs, parent, start_timeout, affinity)
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(theirs);
                // The spawner's first work (a spare network namespace, the launch) should run
                // beside ours, but a forked child often waits queued behind its parent on the
                // same CPU: move it to another one. It takes back the mask we both had when it
                // reads its first request (sent after this), so nothing it starts inherits this.
                if let (Some(mask), Some(cpu)) = (affinity, crate::sys::current_cpu()) {
                    let others = mask.without(cpu);
                    if !others.is_empty() {
                        let _ = others.apply(child.as_raw());
                    }
                }
                let shared = Arc::new(Shared {
                    sock: ours,
                    send_lock: Mutex::new(()),
                    pending: Mutex::new(HashMap::new()),
                    gone: Mutex::new(None),
                    next_id: AtomicU64::new(1),
                    spare_asked: std::sync::atomic::AtomicBool::new(false),
                    reader: Mutex::new(None),
                });
                Ok(Spawner { shared, pid: child.as_raw(), reap: true })
            }
        }
    }

    /// The spawner process's pid (for diagnostics).
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    fn request(&self, plan: &StartPlan, fds: StartFds) -> Result<(oneshot::Receiver<StartReply>, oneshot::Receiver<ExitStatus>), StartError> {
        if let Some(why) = self.shared.gone.lock().unwrap().clone() {
            return Err(StartError::SpawnerGone(why));
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (started_tx, started_rx) = oneshot::channel();
        let (exited_tx, exited_rx) = oneshot::channel();
        let layout = FdLayout {
            stdio: [fds.stdin.is_some(), fds.stdout.is_some(), fds.stderr.is_some()],
            cgroup_procs: fds.cgroup_procs.len(),
            netns: fds.netns.is_some(),
            target: fds.target.is_some(),
            secret_mounts: fds.secret_mounts.len(),
            start_gate: fds.start_gate.is_some(),
        };
        if matches!(plan.mode, Mode::Join) && fds.target.is_none() {
            return Err(StartError::Refused("joining a container needs its init's pidfd in StartFds::target".into()));
        }
        let raw: Vec<RawFd> = [&fds.stdin, &fds.stdout, &fds.stderr]
            .into_iter()
            .flatten()
            .chain(fds.cgroup_procs.iter())
            .chain(fds.netns.iter())
            .chain(fds.target.iter())
            .chain(fds.secret_mounts.iter())
            .chain(fds.start_gate.iter())
            .map(AsRawFd::as_raw_fd)
            .collect();
        if raw.len() > protocol::MAX_FDS {
            return Err(StartError::Refused(format!("{} descriptors sent, at most {}", raw.len(), protocol::MAX_FDS)));
        }
        self.shared
            .pending
            .lock()
            .unwrap()
            .insert(id, Pending { plan: Some(plan.clone()), started: Some(started_tx), exited: Some(exited_tx) });
        if matches!(plan.mode, Mode::Container(_)) && fds.netns.is_none() {
            // This start takes the spare, if there is one.
            self.shared.spare_asked.store(false, Ordering::Relaxed);
        }
        let request = Request::Start { id, plan: plan.clone(), layout };
        let sent = {
            let _guard = self.shared.send_lock.lock().unwrap();
            protocol::send(self.shared.sock.as_raw_fd(), &request, &raw)
        };
        if let Err(e) = sent {
            self.shared.pending.lock().unwrap().remove(&id);
            return Err(StartError::Send(e));
        }
        // Our copies close here; the spawner holds its own until the child has them.
        drop(fds);
        Ok((started_rx, exited_rx))
    }

    /// Asks the spawner to make a network namespace now for the next container start that
    /// brings none (`StartFds::netns`), so that the namespace's creation overlaps with the
    /// caller's own work before the launch. Does not wait; best effort.
    /// Asked again before a start has used the spare, it sends nothing (each message wakes the
    /// spawner).
    pub fn spare_netns(&self) {
        if self.shared.spare_asked.swap(true, Ordering::Relaxed) {
            return;
        }
        let _guard = self.shared.send_lock.lock().unwrap();
        let _ = protocol::send(self.shared.sock.as_raw_fd(), &Request::SpareNetns, &[]);
    }

    /// Starts a process and waits until it has been executed (or a step failed). Blocking: do
    /// not call it on a tokio worker thread (use [`Spawner::launch_async`]).
    pub fn launch(&self, plan: &StartPlan, fds: StartFds) -> Result<Child, StartError> {
        self.begin_launch(plan, fds)?.started()
    }

    /// Sends the start request and returns at once: the caller can do other work while the
    /// spawner runs the start sequence, then wait with [`Launch::started`].
    pub fn begin_launch(&self, plan: &StartPlan, fds: StartFds) -> Result<Launch, StartError> {
        let (started, exited) = self.request(plan, fds)?;
        Ok(Launch { shared: self.shared.clone(), started, exited })
    }

    /// As [`Spawner::launch`], awaiting the result.
    pub async fn launch_async(&self, plan: &StartPlan, fds: StartFds) -> Result<Child, StartError> {
        self.shared.ensure_reader();
        let (started, exited) = self.request(plan, fds)?;
        let (pid, pidfd, pty) = started.await.map_err(|_| self.gone())??;
        Ok(Child { pid, pidfd, pty, exited, shared: self.shared.clone() })
    }

    fn gone(&self) -> StartError {
        gone(&self.shared)
    }
}

fn gone(shared: &Shared) -> StartError {
    StartError::SpawnerGone(shared.gone.lock().unwrap().clone().unwrap_or_else(|| "its socket closed".into()))
}

/// A start request sent, its answer not yet read.
pub struct Launch {
    shared: Arc<Shared>,
    started: oneshot::Receiver<StartReply>,
    exited: oneshot::Receiver<ExitStatus>,
}

impl Launch {
    /// Waits until the process has been executed (or a step failed). Blocking.
    pub fn started(self) -> Result<Child, StartError> {
        let (pid, pidfd, pty) = self.shared.wait_for(self.started).ok_or_else(|| gone(&self.shared))??;
        Ok(Child { pid, pidfd, pty, exited: self.exited, shared: self.shared })
    }
}

impl Spawner {
    /// Closes the request socket: the spawner exits, killing whatever it still runs. Does not
    /// wait (the drop reaps it), so the caller's own cleanup overlaps with the spawner's exit.
    /// Later launches fail.
    pub fn shutdown(&self) {
        // SAFETY: shutdown on our own socket; the reader thread then sees EOF and ends.
        unsafe { libc::shutdown(self.shared.sock.as_raw_fd(), libc::SHUT_RDWR) };
    }

    /// Tells the spawner to exit and does not wait for it: for a caller about to exit itself.
    /// The spawner may still be dropping the last container's mount namespace, whose tree the
    /// kernel unmounts as the last reference goes (1.5 ms here); nothing can reach that tree,
    /// and the kernel finishes it whether the spawner exits or is killed.
    pub fn release(mut self) {
        self.reap = false;
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.shutdown();
        if let Some(r) = self.shared.reader.lock().unwrap().take() {
            let _ = r.join();
        }
        if self.reap {
            // SAFETY: the spawner is our child; it exits on EOF of its socket.
            unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
        }
    }
}

fn read_replies(shared: &Shared) {
    let why = loop {
        if let Err(why) = read_one(shared) {
            break why;
        }
    };
    *shared.gone.lock().unwrap() = Some(why);
    // Wake every waiter: dropping the senders makes their receivers fail.
    shared.pending.lock().unwrap().clear();
}

/// Reads one reply (blocking) and hands it to its waiter; `Err` says why the spawner is gone.
fn read_one(shared: &Shared) -> Result<(), String> {
    match protocol::recv::<Reply>(shared.sock.as_raw_fd()) {
        Ok(Some((reply, fds))) => {
            dispatch(shared, reply, fds);
            Ok(())
        }
        Ok(None) => Err("it exited".to_string()),
        Err(e) => Err(format!("reading its replies: {e}")),
    }
}

fn dispatch(shared: &Shared, reply: Reply, fds: Vec<OwnedFd>) {
    let mut pending = shared.pending.lock().unwrap();
    match reply {
        Reply::Started { id, pid, pty } => {
            if let Some(p) = pending.get_mut(&id) {
                p.plan = None;
                let mut fds = fds.into_iter();
                if let (Some(tx), Some(pidfd)) = (p.started.take(), fds.next()) {
                    let _ = tx.send(Ok((pid, pidfd, if pty { fds.next() } else { None })));
                }
            }
        }
        Reply::Failed { id, step, errno, index } => {
            if let Some(p) = pending.remove(&id) {
                let err = match (Step::from_u32(step), &p.plan) {
                    (Some(step), Some(plan)) => StartError::from_failure(plan, step, errno, index),
                    _ => StartError::Refused(format!("unknown step {step} failed: {}", std::io::Error::from_raw_os_error(errno))),
                };
                if let Some(tx) = p.started {
                    let _ = tx.send(Err(err));
                }
            }
        }
        Reply::Refused { id, message } => {
            if let Some(tx) = pending.remove(&id).and_then(|p| p.started) {
                let _ = tx.send(Err(StartError::Refused(message)));
            }
        }
        Reply::Exited { id, status } => {
            if let Some(tx) = pending.remove(&id).and_then(|p| p.exited) {
                let _ = tx.send(ExitStatus::from_wait_status(status));
            }
        }
    }
}

/// A started process: its pidfd (to signal it, or to poll for its exit) and its exit status.
pub struct Child {
    pid: i32,
    pidfd: OwnedFd,
    pty: Option<OwnedFd>,
    exited: oneshot::Receiver<ExitStatus>,
    shared: Arc<Shared>,
}

impl Child {
    /// The host pid, for display only: act on the process through [`Child::pidfd`].
    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// The master side of the pty a [`StartPlan::pty`] start allocated (once).
    pub fn take_pty(&mut self) -> Option<OwnedFd> {
        self.pty.take()
    }

    /// Sends a signal through the pidfd (never through a pid that may have been reused).
    pub fn signal(&self, sig: i32) -> std::io::Result<()> {
        crate::sys::pidfd_send_signal(self.pidfd.as_raw_fd(), sig).map_err(std::io::Error::from_raw_os_error)
    }

    /// A descriptor of one of the process's namespaces (e.g. the network namespace for probes).
    pub fn namespace(&self, ns: crate::sys::Namespace) -> std::io::Result<OwnedFd> {
        let fd = crate::sys::pidfd_namespace(self.pidfd.as_raw_fd(), ns).map_err(std::io::Error::from_raw_os_error)?;
        // SAFETY: the ioctl returned a new descriptor we own.
        Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    }

    /// Waits for the exit. Blocking: not on a tokio worker thread (use [`Child::wait_async`]).
    pub fn wait(self) -> Result<ExitStatus, StartError> {
        self.shared.wait_for(self.exited).ok_or_else(exit_unreported)
    }

    /// Waits for the exit, passing each signal that arrives on `signals` to the process, as
    /// `docker run` does: `forward` sees each and says which signal to send instead (or none).
    /// Blocking, as [`Child::wait`].
    pub fn wait_forwarding(self, signals: &crate::sys::signal_pipe::SignalPipe, mut forward: impl FnMut(i32) -> Option<i32>) -> Result<ExitStatus, StartError> {
        // Without a reader thread the exit report arrives on the spawner's socket, read here;
        // with one, the pidfd says when to wait for it.
        let direct = self.shared.reader.lock().unwrap().is_none();
        let watched = if direct { self.shared.sock.as_raw_fd() } else { self.pidfd.as_raw_fd() };
        let mut fds = [
            libc::pollfd { fd: signals.fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: watched, events: libc::POLLIN, revents: 0 },
        ];
        let mut exited = self.exited;
        loop {
            fds.iter_mut().for_each(|p| p.revents = 0);
            if crate::sys::poll(&mut fds, -1).is_err() {
                break;
            }
            if fds[0].revents != 0 {
                for sig in signals.drain().into_iter().filter_map(&mut forward) {
                    let _ = crate::sys::pidfd_send_signal(self.pidfd.as_raw_fd(), sig);
                }
            }
            if fds[1].revents != 0 {
                if !direct {
                    break;
                }
                self.shared.pump();
                match exited.try_recv() {
                    Ok(status) => return Ok(status),
                    Err(oneshot::error::TryRecvError::Closed) => return Err(exit_unreported()),
                    Err(oneshot::error::TryRecvError::Empty) => {}
                }
            }
        }
        self.shared.wait_for(exited).ok_or_else(exit_unreported)
    }

    pub async fn wait_async(self) -> Result<ExitStatus, StartError> {
        self.shared.ensure_reader();
        self.exited.await.map_err(|_| exit_unreported())
    }

    /// Splits off the pidfd, keeping a waiter for the exit status.
    pub fn into_parts(self) -> (i32, OwnedFd, ExitWaiter) {
        (self.pid, self.pidfd, ExitWaiter(self.exited, self.shared))
    }
}

fn exit_unreported() -> StartError {
    StartError::SpawnerGone("it exited before reporting the process's exit".into())
}

/// The exit status of a process whose pidfd has been taken with [`Child::into_parts`].
pub struct ExitWaiter(oneshot::Receiver<ExitStatus>, Arc<Shared>);

impl ExitWaiter {
    pub fn wait(self) -> Result<ExitStatus, StartError> {
        self.1.wait_for(self.0).ok_or_else(exit_unreported)
    }
    pub async fn wait_async(self) -> Result<ExitStatus, StartError> {
        self.1.ensure_reader();
        self.0.await.map_err(|_| exit_unreported())
    }
}
