//! `run -t`: the container's pty master proxied to tfctl's own terminal, which is put in raw
//! mode for the while and follows window-size changes.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::termios::{self, SetArg, Termios};


/// Restores the terminal's mode when dropped.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    /// Puts stdin's terminal in raw mode, if stdin is a terminal.
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawMode { saved: None };
        }
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(s) = &saved {
            let mut raw = s.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(s) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, s);
        }
    }
}

/// Copies the size of tfctl's terminal to the pty.
pub fn copy_window_size(master: &OwnedFd) {
    let _ = tfctl_runtime::sys::copy_window_size(std::io::stdout().as_raw_fd(), master.as_raw_fd());
}

/// Proxies the pty: its output to stdout, and (with `input`) stdin to it until `exited` is
/// set. Returns when the container side is closed.
fn proxy(master: OwnedFd, input: bool, exited: Arc<AtomicBool>) {
    copy_window_size(&master);
    if input {
        if let Ok(to_pty) = master.try_clone() {
            std::thread::spawn(move || {
                let mut to_pty = std::fs::File::from(to_pty);
                let mut buf = [0u8; 4096];
                let mut stdin = std::io::stdin();
                // Once the process has exited, what is typed is not for what it left running.
                while let Ok(n) = stdin.read(&mut buf) {
                    if n == 0 || exited.load(Ordering::Relaxed) || to_pty.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    }
    let mut from_pty = std::fs::File::from(master);
    let mut out = std::io::stdout();
    let mut buf = [0u8; 4096];
    // EIO once the last process holding the pty's slave side has gone.
    while let Ok(n) = from_pty.read(&mut buf) {
        if n == 0 || out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
            break;
        }
    }
}

/// A container's pty attached to this terminal: raw mode, window size followed, output (and
/// with `interactive`, input) proxied. Needs a tokio runtime.
pub struct Attached {
    copy: tokio::task::JoinHandle<()>,
    winch: tokio::task::JoinHandle<()>,
    exited: Arc<AtomicBool>,
    _raw: RawMode,
}

impl Attached {
    pub fn start(master: OwnedFd, interactive: bool) -> Attached {
        let raw = RawMode::enter();
        let resize = master.try_clone().ok();
        let winch = tokio::spawn(async move {
            let Some(resize) = resize else { return };
            let Ok(mut sig) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()) else { return };
            while sig.recv().await.is_some() {
                copy_window_size(&resize);
            }
        });
        let exited = Arc::new(AtomicBool::new(false));
        let flag = exited.clone();
        Attached { copy: tokio::task::spawn_blocking(move || proxy(master, interactive, flag)), winch, exited, _raw: raw }
    }

    /// Once the process has exited: stops passing input, lets the proxy drain what the pty
    /// still holds (at most 2 s), then restores the terminal.
    pub async fn finish(self) {
        self.exited.store(true, Ordering::Relaxed);
        self.winch.abort();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.copy).await;
    }
}
