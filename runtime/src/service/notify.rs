//! sd_notify(3): the supervisor of a `Type=notify` unit tells systemd when the app is ready
//! (`READY=1`, once `--wait`'s conditions hold), what it is doing (`STATUS=`), that it is
//! stopping (`STOPPING=1`) and that its event loop is alive (`WATCHDOG=1`).
//!
//! The protocol is one datagram per message to `$NOTIFY_SOCKET`: a path, or an abstract socket
//! when it starts with `@`. Written here rather than taken from the `sd-notify` crate: its 0.4
//! connects `@name` as a file path (systemd in a container or a user manager may hand out an
//! abstract one), and reads the environment at each call, where this reads it once.
//!
//! The unit says `NotifyAccess=main`: the supervisor is the unit's main process (the foreground
//! `tfctl up`), so nothing else in the unit (a container, a hook) can claim readiness for it.
//! Without `$NOTIFY_SOCKET` (not run by systemd, or not `Type=notify`) nothing is sent.

use std::ffi::OsStr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where the supervisor's notifications go, as systemd gave it to the process.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier systemd set up for this process, if any. A `$NOTIFY_SOCKET` that cannot be
    /// used is said once (systemd then fails the start when its timeout passes).
    pub fn from_env() -> Option<Notifier> {
        let var = |k: &str| std::env::var_os(k);
        match Notifier::from_vars(var("NOTIFY_SOCKET").as_deref(), var("WATCHDOG_USEC").as_deref(), var("WATCHDOG_PID").as_deref(), std::process::id()) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("NOTIFY_SOCKET is set but unusable, systemd will not hear that the app is ready: {e}");
                None
            }
        }
    }

    fn from_vars(socket: Option<&OsStr>, watchdog_usec: Option<&OsStr>, watchdog_pid: Option<&OsStr>, own_pid: u32) -> std::io::Result<Option<Notifier>> {
        let Some(socket) = socket.filter(|s| !s.is_empty()) else { return Ok(None) };
        let addr = match socket.as_bytes() {
            [b'@', name @ ..] => SocketAddr::from_abstract_name(name)?,
            path => SocketAddr::from_pathname(OsStr::from_bytes(path))?,
        };
        let parse = |v: Option<&OsStr>| v.and_then(|v| v.to_str()).and_then(|v| v.parse::<u64>().ok());
        // WATCHDOG_PID names the process systemd expects pings from; another process (one that
        // inherited the variables) must not ping in its place.
        let for_us = parse(watchdog_pid).is_none_or(|pid| pid == u64::from(own_pid));
        let watchdog = parse(watchdog_usec).filter(|&us| us > 0 && for_us).map(Duration::from_micros);
        Ok(Some(Notifier { socket: UnixDatagram::unbound()?, addr, watchdog }))
    }

    /// How often to send `WATCHDOG=1`: half the unit's `WatchdogSec=`, as sd_watchdog_enabled(3)
    /// advises; `None` when the unit has no watchdog.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    /// `READY=1` with a status line: the app's containers are ready, as `up --wait` means it.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// A `STATUS=` line (what `systemctl status` shows).
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// `STOPPING=1`: the supervisor is stopping the app.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping the app");
    }

    /// `WATCHDOG=1`: called from the supervisor's event loop, so a ping proves the loop runs.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    fn send(&self, message: &str) {
        // Best effort: a lost notification shows as a start or watchdog timeout in systemd's
        // journal, which says more than a failed app would.
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.addr) {
            tracing::warn!("cannot notify systemd ({message:?}): {e}");
        }
    }
}

/// A status must be one line: the protocol is newline-separated assignments.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notifier(socket: &str, usec: Option<&str>, pid: Option<&str>) -> Option<Notifier> {
        Notifier::from_vars(Some(OsStr::new(socket)), usec.map(OsStr::new), pid.map(OsStr::new), 42).unwrap()
    }

    #[test]
    fn sends_each_message_as_one_datagram_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = notifier(path.to_str().unwrap(), None, None).unwrap();
        n.ready("2 containers ready");
        n.status("web: started\nmore");
        n.stopping();
        let mut buf = [0u8; 256];
        let mut next = || {
            let len = server.recv(&mut buf).unwrap();
            String::from_utf8(buf[..len].to_vec()).unwrap()
        };
        assert_eq!(next(), "READY=1\nSTATUS=2 containers ready");
        assert_eq!(next(), "STATUS=web: started more");
        assert_eq!(next(), "STOPPING=1\nSTATUS=stopping the app");
    }

    #[test]
    fn an_at_sign_names_an_abstract_socket() {
        let name = format!("tfctl-notify-test-{}", std::process::id());
        let server = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
        notifier(&format!("@{name}"), None, None).unwrap().watchdog();
        let mut buf = [0u8; 64];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[test]
    fn pings_at_half_the_watchdog_and_only_for_the_process_systemd_named() {
        assert_eq!(notifier("/run/x", Some("30000000"), Some("42")).unwrap().watchdog_interval(), Some(Duration::from_secs(15)));
        assert_eq!(notifier("/run/x", Some("30000000"), None).unwrap().watchdog_interval(), Some(Duration::from_secs(15)));
        assert_eq!(notifier("/run/x", Some("30000000"), Some("7")).unwrap().watchdog_interval(), None);
        assert_eq!(notifier("/run/x", None, None).unwrap().watchdog_interval(), None);
        assert!(Notifier::from_vars(None, Some(OsStr::new("1")), None, 42).unwrap().is_none());
        assert!(Notifier::from_vars(Some(OsStr::new("")), None, None, 42).unwrap().is_none());
    }
}
