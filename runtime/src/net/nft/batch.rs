//! nf_tables batches: built in one buffer, sent in ONE sendmsg (as `nft` does) so the kernel
//! applies them atomically whatever their size, with every message acknowledged and every
//! sequence number mapped to a label, so an error names the rule or set that failed instead of
//! a bare errno.

use crate::net::error::NetError;
use crate::net::rtnl::for_each_message;
use mnl::{Bus, Socket};
use nftnl::nftnl_sys as sys;
use nftnl::{MsgType, NlMsg};
use std::ffi::c_void;
use std::io;
use std::os::fd::AsRawFd;

/// Room left for each message before it is written (the largest nf_tables message).
const MSG_ROOM: usize = 64 * 1024 + 4096;
const NLMSG_HDRLEN: usize = 16;

/// A batch being built.
pub struct Batch {
    buf: Vec<u8>,
    next_seq: u32,
    labels: Vec<(u32, String)>,
    last_start: usize,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    pub fn new() -> Batch {
        let mut b = Batch {
            buf: Vec::with_capacity(MSG_ROOM * 2),
            next_seq: 1,
            labels: Vec::new(),
            last_start: 0,
        };
        // SAFETY: write_raw gives the closure MSG_ROOM writable bytes; nftnl_batch_begin writes
        // one nlmsghdr plus nfgenmsg (20 bytes) there.
        unsafe {
            b.write_raw(|buf, seq| {
                sys::nftnl_batch_begin(buf.cast(), seq);
            })
        };
        b
    }

    /// Adds a message built by nftnl (table, chain, rule) with the label that names it.
    pub fn add(&mut self, msg: &impl NlMsg, ty: MsgType, label: impl Into<String>) {
        // SAFETY: the buffer handed to `write` has MSG_ROOM bytes, more than
        // nftnl::nft_nlmsg_maxsize() allows a single message to use.
        let seq = unsafe { self.write_raw(|buf, seq| msg.write(buf, seq, ty)) };
        self.label(seq, label);
    }

    /// Adds a message written by our own builders in [`super::set`].
    ///
    /// # Safety
    /// `write` must write one netlink message of at most `MSG_ROOM` bytes at the pointer.
    pub(crate) unsafe fn add_raw(
        &mut self,
        label: impl Into<String>,
        write: impl FnOnce(*mut c_void, u32),
    ) {
        // SAFETY: forwarded to the caller's contract.
        let seq = unsafe { self.write_raw(write) };
        self.label(seq, label);
    }

    fn label(&mut self, seq: u32, label: impl Into<String>) {
        // Ask for an acknowledgement of every message, so that each answer (ack or error) can
        // be matched by sequence number.
        let hdr = self.last_start;
        let flags =
            u16::from_ne_bytes([self.buf[hdr + 6], self.buf[hdr + 7]]) | libc::NLM_F_ACK as u16;
        self.buf[hdr + 6..hdr + 8].copy_from_slice(&flags.to_ne_bytes());
        self.labels.push((seq, label.into()));
    }

    /// Writes one message at the end of the buffer and returns its sequence number.
    unsafe fn write_raw(&mut self, write: impl FnOnce(*mut c_void, u32)) -> u32 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let start = self.buf.len();
        self.buf.reserve(MSG_ROOM);
        // SAFETY: reserve guarantees MSG_ROOM spare bytes after len; they are zeroed before
        // use so that padding bytes the writer skips are defined.
        unsafe {
            let spare = self.buf.as_mut_ptr().add(start);
            std::ptr::write_bytes(spare, 0, MSG_ROOM);
            write(spare.cast(), seq);
            let len = u32::from_ne_bytes(*(spare as *const [u8; 4])) as usize;
            assert!(
                (NLMSG_HDRLEN..=MSG_ROOM).contains(&len),
                "nftnl wrote a netlink message of {len} bytes"
            );
            self.buf.set_len(start + ((len + 3) & !3));
        }
        self.last_start = start;
        seq
    }

    /// Number of labelled messages (everything but begin and end).
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Closes the batch.
    pub fn finalize(mut self) -> FinalBatch {
        // SAFETY: as for begin.
        unsafe {
            self.write_raw(|buf, seq| {
                sys::nftnl_batch_end(buf.cast(), seq);
            })
        };
        FinalBatch {
            buf: self.buf,
            labels: self.labels,
        }
    }
}

/// A closed batch, ready to send.
pub struct FinalBatch {
    buf: Vec<u8>,
    labels: Vec<(u32, String)>,
}

impl FinalBatch {
    /// Size in bytes (what the benchmark reports).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Number of labelled messages.
    pub fn messages(&self) -> usize {
        self.labels.len()
    }

    /// Sends the batch in one sendmsg and collects one answer per message. On failure the
    /// kernel applied nothing; the error names the first message it refused.
    pub fn send(&self) -> Result<(), NetError> {
        let sock = Socket::new(Bus::Netfilter).map_err(|source| NetError::Netlink {
            step: "socket",
            source,
        })?;
        let fd = sock.as_raw_fd();
        // Buffers large enough for the whole batch and one answer per message (each answer
        // costs about a kilobyte of receive-buffer accounting). FORCE needs CAP_NET_ADMIN, which
        // we have; the plain option is the fallback.
        let snd = (self.buf.len() + 64 * 1024) as libc::c_int;
        let rcv = (self.labels.len() * 2048 + 256 * 1024) as libc::c_int;
        set_buf(fd, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, snd);
        set_buf(fd, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, rcv);
        // Answers carry only the header of the request, not the request itself.
        let one: libc::c_int = 1;
        // SAFETY: setsockopt with a valid fd and a pointer to a c_int of the given length.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_NETLINK,
                libc::NETLINK_CAP_ACK,
                (&one as *const libc::c_int).cast(),
                4,
            );
        }
        let sent = sock.send(&self.buf).map_err(|source| NetError::Netlink {
            step: "send (nf_tables batch)",
            source,
        })?;
        if sent != self.buf.len() {
            return Err(NetError::Netlink {
                step: "send (nf_tables batch)",
                source: io::Error::other("short write"),
            });
        }
        // The kernel processes the batch inside sendmsg and queues every answer before
        // returning, so whatever is not queued now will not come.
        let mut pending: std::collections::HashMap<u32, &str> =
            self.labels.iter().map(|(s, l)| (*s, l.as_str())).collect();
        let mut first_err: Option<(u32, i32)> = None;
        let mut buf = vec![0u8; 256 * 1024];
        while !pending.is_empty() {
            // SAFETY: recv into a buffer we own, with its length.
            let n =
                unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => break,
                    _ => {
                        return Err(NetError::Netlink {
                            step: "receive (nf_tables batch)",
                            source: e,
                        })
                    }
                }
            }
            for_each_message(&buf[..n as usize], |seq, code| {
                if let Some(code) = code {
                    pending.remove(&seq);
                    if code != 0 && first_err.is_none_or(|(s, _)| seq < s) {
                        first_err = Some((seq, -code));
                    }
                }
            });
        }
        if let Some((seq, errno)) = first_err {
            let label = self
                .labels
                .iter()
                .find(|(s, _)| *s == seq)
                .map_or("an unlabelled message", |(_, l)| l.as_str());
            return Err(NetError::refused(format!("nf_tables: {label}"), errno));
        }
        if !pending.is_empty() {
            // Never report success for messages the kernel did not confirm.
            return Err(NetError::Decode {
                what: "an nf_tables batch".into(),
                detail: format!(
                    "the kernel confirmed {} of {} messages",
                    self.labels.len() - pending.len(),
                    self.labels.len()
                ),
            });
        }
        Ok(())
    }
}

fn set_buf(fd: i32, force: libc::c_int, plain: libc::c_int, size: libc::c_int) {
    // SAFETY: setsockopt with a valid fd and a pointer to a c_int of the given length.
    unsafe {
        let p = (&size as *const libc::c_int).cast();
        if libc::setsockopt(fd, libc::SOL_SOCKET, force, p, 4) != 0 {
            libc::setsockopt(fd, libc::SOL_SOCKET, plain, p, 4);
        }
    }
}
