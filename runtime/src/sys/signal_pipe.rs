//! Signals turned into bytes on a pipe (the self-pipe trick), for a blocking process that must
//! pass signals on: `tfctl run` in the foreground forwards what it receives to its container, as
//! `docker run` does, and polls the pipe beside the container's pidfd.
//!
//! A handler, not a mask and signalfd: a mask would have to be set in every thread before it
//! starts (the spawner client's reader thread exists already), and a masked signal is inherited
//! across fork. The handler does only async-signal-safe work: one write(2) of the signal number.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use super::{check_int, SysResult};

/// The pipe's write end, for the handler; -1 when no pipe is installed.
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = sig as u8;
        let saved = super::errno();
        // SAFETY: write(2) is async-signal-safe; one byte from a valid local. A full pipe drops
        // the byte (O_NONBLOCK): 4 KiB of unread signals is enough to know what to do.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
            *libc::__errno_location() = saved;
        }
    }
}

/// While it lives, the given signals are caught and queued on its pipe; dropping it restores
/// their default dispositions. One at a time per process.
pub struct SignalPipe {
    read: OwnedFd,
    _write: OwnedFd,
    signals: Vec<libc::c_int>,
}

impl SignalPipe {
    pub fn install(signals: &[libc::c_int]) -> SysResult<SignalPipe> {
        let [r, w] = super::pipe2(libc::O_CLOEXEC | libc::O_NONBLOCK)?;
        // SAFETY: pipe2 returned two new descriptors that we own.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(r), OwnedFd::from_raw_fd(w)) };
        WRITE_FD.store(write.as_raw_fd(), Ordering::Relaxed);
        for &sig in signals {
            // SAFETY: sigaction is plain data; the handler only writes one byte (see on_signal).
            // SA_RESTART keeps other threads' blocking calls going.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                check_int(libc::sigaction(sig, &action, std::ptr::null_mut()))?;
            }
        }
        Ok(SignalPipe { read, _write: write, signals: signals.to_vec() })
    }

    /// The descriptor to poll: readable when a signal has arrived.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// The signals received since the last call, in order.
    pub fn drain(&self) -> Vec<libc::c_int> {
        let mut buf = [0u8; 64];
        let mut out = Vec::new();
        while let Ok(n @ 1..) = super::read(self.read.as_raw_fd(), &mut buf) {
            out.extend(buf[..n].iter().map(|&b| b as libc::c_int));
        }
        out
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        for &sig in &self.signals {
            // SAFETY: restoring the default disposition has no memory effects.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
        WRITE_FD.store(-1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_becomes_a_byte_and_the_default_comes_back() {
        let pipe = SignalPipe::install(&[libc::SIGUSR2]).unwrap();
        // SAFETY: raising a signal we catch.
        unsafe { libc::raise(libc::SIGUSR2) };
        assert_eq!(pipe.drain(), vec![libc::SIGUSR2]);
        assert_eq!(pipe.drain(), Vec::<i32>::new());
        drop(pipe);
        // SAFETY: reading the current disposition only.
        let old = unsafe { libc::signal(libc::SIGUSR2, libc::SIG_DFL) };
        assert_eq!(old, libc::SIG_DFL);
    }
}
