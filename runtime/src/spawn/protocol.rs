//! The messages between a client (the CLI or supervisor) and its spawner, over a SOCK_SEQPACKET
//! socketpair: one JSON document per packet, descriptors beside it with SCM_RIGHTS.

use super::plan::StartPlan;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// At most this many descriptors travel with one message.
pub(crate) const MAX_FDS: usize = 64;

#[derive(Debug, Serialize, Deserialize)]
// One message at a time, serialized as soon as it is built: its in-memory size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Request {
    Start { id: u64, plan: StartPlan, layout: FdLayout },
    /// Make a network namespace now, for the next start that brings no netns of its own: its
    /// creation (most of a clone's cost) then overlaps with the client's own preparation.
    SpareNetns,
}

/// Which descriptors follow a start request, in this order: stdin, stdout, stderr, cgroup
/// files, netns, target, secret mounts, start gate.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct FdLayout {
    pub stdio: [bool; 3],
    pub cgroup_procs: usize,
    pub netns: bool,
    pub target: bool,
    #[serde(default)]
    pub secret_mounts: usize,
    #[serde(default)]
    pub start_gate: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The process was executed; its pidfd travels with this message, then its pty master if
    /// `pty`.
    Started { id: u64, pid: i32, pty: bool },
    /// A step of the start sequence failed; the child is gone.
    Failed { id: u64, step: u32, errno: i32, index: u32 },
    /// The spawner refused the plan before cloning (or the clone itself failed).
    Refused { id: u64, message: String },
    /// The process exited: the raw wait status (with `init`, the process under the init).
    Exited { id: u64, status: i32 },
}

/// Sends one message with its descriptors.
pub(crate) fn send<T: Serialize>(sock: RawFd, msg: &T, fds: &[RawFd]) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    let iov = [IoSlice::new(&bytes)];
    let cmsgs: Vec<ControlMessage> = if fds.is_empty() { vec![] } else { vec![ControlMessage::ScmRights(fds)] };
    loop {
        match sendmsg::<()>(sock, &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives one message and its descriptors (close-on-exec); `None` when the peer is gone.
pub(crate) fn recv<T: for<'de> Deserialize<'de>>(sock: RawFd) -> std::io::Result<Option<(T, Vec<OwnedFd>)>> {
    let len = loop {
        // SAFETY: a zero-length peek with MSG_TRUNC writes nothing and returns the packet size.
        let n = unsafe { libc::recv(sock, std::ptr::null_mut(), 0, libc::MSG_PEEK | libc::MSG_TRUNC) };
        if n >= 0 {
            break n as usize;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut buf = vec![0u8; len.max(1)];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
    let (n, fds) = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for c in msg.cmsgs().map_err(std::io::Error::from)? {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        // SAFETY: SCM_RIGHTS hands us fresh descriptors nobody else owns.
                        fds.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                    }
                }
                break (msg.bytes, fds);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if n == 0 {
        return Ok(None);
    }
    let msg = serde_json::from_slice(&buf[..n]).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(Some((msg, fds)))
}
