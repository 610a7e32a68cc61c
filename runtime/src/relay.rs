//! tfctl's own stdin, stdout and stderr relayed to a container process through pipes tfctl
//! owns, as `docker exec` and `docker run` attach: the process gets pipe ends, never a
//! descriptor of tfctl's caller. Handing it the caller's descriptors would let what it leaves
//! running read the terminal after tfctl has returned (a password typed next), and let it hold
//! a file the caller's shell opened for a redirect (`>> /root/x`: seek, truncate, reopen it
//! through /proc, write after tfctl is gone). Here, once the process has exited, tfctl passes on
//! what it wrote and closes its ends: anything left behind gets EOF or EPIPE.
//!
//! One thread copies, polling every pipe: without input it only ever reads the process's pipes,
//! and nothing it does blocks on the process (writes into the stdin pipe do not block). A slow
//! reader of tfctl's own output slows the process down, as a pipe would.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::thread::JoinHandle;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{SigSet, Signal};

/// The ends the process gets, for [`crate::spawn::StartFds`] (or an exec request).
#[derive(Debug)]
pub struct ProcessStdio {
    /// `None` without input: the spawner gives the process /dev/null.
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// A running relay. [`Relay::finish`] (or dropping it) ends it.
pub struct Relay {
    /// Dropped to tell the thread the process has exited.
    stop: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

/// Bytes read and not written yet, per stream.
const BUFFER: usize = 64 << 10;

/// One direction: from a descriptor to another, through a buffer.
struct Copy {
    from: OwnedFd,
    to: OwnedFd,
    /// The process's output (drained at the end), or tfctl's input.
    output: bool,
    buf: Box<[u8]>,
    /// What is read and not written yet: `buf[start..end]`.
    start: usize,
    end: usize,
    /// Ended: end of input, or a side closed. Its descriptors close when it is dropped.
    ended: bool,
}

impl Copy {
    fn new(from: OwnedFd, to: OwnedFd, output: bool) -> Copy {
        Copy { from, to, output, buf: vec![0; BUFFER].into_boxed_slice(), start: 0, end: 0, ended: false }
    }

    fn pending(&self) -> bool {
        self.start < self.end
    }

    /// What to wait for next: room to write what is pending, else something to read.
    fn pollfd(&self) -> libc::pollfd {
        let (fd, events) = if self.pending() { (self.to.as_raw_fd(), libc::POLLOUT) } else { (self.from.as_raw_fd(), libc::POLLIN) };
        libc::pollfd { fd, events, revents: 0 }
    }

    /// Reads at most `limit` bytes into the buffer, which nothing is pending in; returns how
    /// many (0 at the end of the input, which ends the copy, or when nothing was there).
    fn read(&mut self, limit: usize) -> usize {
        let want = self.buf.len().min(limit);
        (self.start, self.end) = (0, 0);
        match nix::unistd::read(self.from.as_fd(), &mut self.buf[..want]) {
            Ok(0) => self.ended = true,
            Ok(n) => self.end = n,
            Err(e) => self.ended = !matches!(e, nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR),
        }
        self.end
    }

    /// Writes what it can of the pending bytes without waiting for room (when `to` does not
    /// block: ours do not; the caller's may).
    fn write(&mut self) {
        match nix::unistd::write(self.to.as_fd(), &self.buf[self.start..self.end]) {
            Ok(n) => self.start += n,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
            // The reader is gone (EPIPE: SIGPIPE is blocked in this thread), or worse.
            Err(_) => self.ended = true,
        }
    }

    /// Writes every pending byte, waiting for room.
    fn flush(&mut self) {
        while self.pending() && !self.ended {
            self.write();
            if self.pending() && !self.ended {
                let _ = crate::sys::poll_one(self.to.as_raw_fd(), libc::POLLOUT, -1);
            }
        }
    }
}

impl Relay {
    /// Makes the pipes and starts relaying: the process's stdout and stderr to tfctl's, and
    /// with `input` tfctl's stdin to the process's (without, the process's stdin is closed, as
    /// `docker run` without -i does).
    pub fn start(input: bool) -> io::Result<(Relay, ProcessStdio)> {
        let ours = |f: OwnedFd| -> io::Result<OwnedFd> {
            fcntl(&f, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
            Ok(f)
        };
        let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        // Copies of tfctl's own descriptors (the same open files): this thread's to use and
        // close. Their flags stay as the caller set them.
        let mut copies = vec![
            Copy::new(ours(out_r)?, io::stdout().as_fd().try_clone_to_owned()?, true),
            Copy::new(ours(err_r)?, io::stderr().as_fd().try_clone_to_owned()?, true),
        ];
        let mut stdin = None;
        if input {
            let (in_r, in_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
            copies.push(Copy::new(io::stdin().as_fd().try_clone_to_owned()?, ours(in_w)?, false));
            stdin = Some(in_r);
        }
        let (stop_r, stop_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let thread = std::thread::Builder::new().name("tfctl-stdio".into()).spawn(move || relay(copies, stop_r))?;
        Ok((Relay { stop: Some(stop_w), thread: Some(thread) }, ProcessStdio { stdin, stdout: out_w, stderr: err_w }))
    }

    /// Once the process has exited: what its pipes hold now goes out, in order, then every
    /// pipe closes (and tfctl's stdin is no longer read). Returns when all that is done.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.end();
    }
}

fn relay(mut copies: Vec<Copy>, stop: OwnedFd) {
    // A write to a pipe whose reader is gone fails with EPIPE here instead of killing tfctl;
    // the signal stays pending on this thread and goes with it.
    let mut pipe = SigSet::empty();
    pipe.add(Signal::SIGPIPE);
    let _ = pipe.thread_block();
    loop {
        copies.retain(|c| !c.ended);
        let mut fds: Vec<libc::pollfd> = std::iter::once(libc::pollfd { fd: stop.as_raw_fd(), events: libc::POLLIN, revents: 0 }).chain(copies.iter().map(Copy::pollfd)).collect();
        if crate::sys::poll(&mut fds, -1).is_err() || fds[0].revents != 0 {
            break;
        }
        for (c, p) in copies.iter_mut().zip(&fds[1..]) {
            if p.revents == 0 {
                continue;
            }
            if !c.pending() {
                c.read(usize::MAX);
            }
            if c.pending() {
                c.write();
            }
        }
    }
    // The process has exited: its output so far is in the pipes. Only that much is passed on,
    // so that what it left running cannot keep tfctl writing.
    for c in copies.iter_mut().filter(|c| c.output) {
        let mut left = rustix::io::ioctl_fionread(&c.from).unwrap_or(0) as usize;
        c.flush();
        while left > 0 && !c.ended {
            match c.read(left) {
                0 => break,
                n => left -= n,
            }
            c.flush();
        }
    }
}
