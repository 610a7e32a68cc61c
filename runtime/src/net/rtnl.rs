//! A small synchronous rtnetlink channel.
//!
//! Why netlink-packet-route: it is the typed rtnetlink message model maintained by the
//! rust-netlink project (the one behind the `rtnetlink` crate), so links, addresses and routes
//! are built as checked structures rather than hand-packed attributes; we skip `rtnetlink`
//! itself because its async connection adds a task and a channel per request, while wiring a
//! container is a handful of requests best sent in one write. The socket is mnl's, already
//! used for nf_tables.

use super::error::NetError;
use mnl::{Bus, Socket};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use std::io;

/// One request with the label that names it in errors.
pub(crate) struct Request {
    pub msg: RouteNetlinkMessage,
    /// Extra NLM_F_* flags (CREATE, EXCL, REPLACE).
    pub flags: u16,
    pub label: String,
}

impl Request {
    pub fn new(msg: RouteNetlinkMessage, flags: u16, label: impl Into<String>) -> Self {
        Request {
            msg,
            flags,
            label: label.into(),
        }
    }
}

/// An rtnetlink socket, bound to the network namespace of the thread that opened it.
pub(crate) struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    pub fn open() -> Result<Self, NetError> {
        let sock = Socket::new(Bus::Route).map_err(|source| NetError::Netlink {
            step: "socket",
            source,
        })?;
        Ok(Rtnl {
            sock,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    fn encode(&mut self, msg: RouteNetlinkMessage, flags: u16, out: &mut Vec<u8>) -> u32 {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        nl.finalize();
        let start = out.len();
        out.resize(start + nl.buffer_len(), 0);
        nl.serialize(&mut out[start..]);
        // Netlink messages are 4-byte aligned inside one datagram.
        out.resize((out.len() + 3) & !3, 0);
        self.seq
    }

    /// Sends the requests in one write, each asking for an acknowledgement, and waits for all of
    /// them. The kernel runs them in order; the first refusal is returned, named by its label.
    /// Only send together requests that are safe to run after an earlier one failed
    /// (rtnetlink does not stop at the first error).
    pub fn execute(&mut self, reqs: Vec<Request>) -> Result<(), NetError> {
        if reqs.is_empty() {
            return Ok(());
        }
        let mut out = Vec::with_capacity(256 * reqs.len());
        let mut pending: Vec<(u32, String)> = Vec::with_capacity(reqs.len());
        for r in reqs {
            let seq = self.encode(r.msg, r.flags | NLM_F_ACK, &mut out);
            pending.push((seq, r.label));
        }
        self.sock.send(&out).map_err(|source| NetError::Netlink {
            step: "send",
            source,
        })?;
        let mut first_error: Option<NetError> = None;
        while !pending.is_empty() {
            let n = recv(&self.sock, &mut self.buf)?;
            for_each_message(&self.buf[..n], |seq, payload| {
                if let Some(code) = payload {
                    if let Some(i) = pending.iter().position(|(s, _)| *s == seq) {
                        let (_, label) = pending.remove(i);
                        if code != 0 && first_error.is_none() {
                            first_error = Some(NetError::refused(label, -code));
                        }
                    }
                }
            });
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Sends one request and returns the messages it answers with (a dump, or an echo).
    pub fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        what: &str,
    ) -> Result<Vec<RouteNetlinkMessage>, NetError> {
        let mut out = Vec::new();
        let seq = self.encode(msg, NLM_F_DUMP, &mut out);
        self.query(out, seq, what)
    }

    /// Sends one non-dump GET request (e.g. a link by name) and returns its answer.
    pub fn get(
        &mut self,
        msg: RouteNetlinkMessage,
        what: &str,
    ) -> Result<Vec<RouteNetlinkMessage>, NetError> {
        let mut out = Vec::new();
        let seq = self.encode(msg, 0, &mut out);
        self.query(out, seq, what)
    }

    fn query(
        &mut self,
        out: Vec<u8>,
        seq: u32,
        what: &str,
    ) -> Result<Vec<RouteNetlinkMessage>, NetError> {
        self.sock.send(&out).map_err(|source| NetError::Netlink {
            step: "send",
            source,
        })?;
        let mut answers = Vec::new();
        loop {
            let n = recv(&self.sock, &mut self.buf)?;
            let mut off = 0;
            let mut done = false;
            while off + 16 <= n {
                let len = u32::from_ne_bytes(self.buf[off..off + 4].try_into().unwrap()) as usize;
                if len < 16 || off + len > n {
                    break;
                }
                let raw = &self.buf[off..off + len];
                off += (len + 3) & !3;
                let msg_seq = u32::from_ne_bytes(raw[8..12].try_into().unwrap());
                if msg_seq != seq {
                    continue;
                }
                let flags = u16::from_ne_bytes(raw[6..8].try_into().unwrap());
                match NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw) {
                    Ok(m) => match m.payload {
                        NetlinkPayload::InnerMessage(inner) => {
                            answers.push(inner);
                            if flags & netlink_packet_core::NLM_F_MULTIPART == 0 {
                                done = true;
                            }
                        }
                        NetlinkPayload::Done(_) => done = true,
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                Some(c) => Err(NetError::refused(what, -c.get())),
                                None => Ok(answers),
                            };
                        }
                        _ => {}
                    },
                    // Attributes newer than the crate knows: skip that message, keep the rest.
                    Err(_) if flags & netlink_packet_core::NLM_F_MULTIPART != 0 => {}
                    Err(e) => {
                        return Err(NetError::Decode {
                            what: what.into(),
                            detail: e.to_string(),
                        })
                    }
                }
            }
            if done {
                return Ok(answers);
            }
        }
    }
}

fn recv(sock: &Socket, buf: &mut [u8]) -> Result<usize, NetError> {
    loop {
        match sock.recv_raw(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(NetError::Netlink {
                    step: "receive",
                    source,
                })
            }
        }
    }
}

/// Calls `f(seq, Some(errno or 0))` for each NLMSG_ERROR (acks included) in a datagram and
/// `f(seq, None)` for other messages.
pub(crate) fn for_each_message(buf: &[u8], mut f: impl FnMut(u32, Option<i32>)) {
    let mut off = 0;
    while off + 16 <= buf.len() {
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
        if len < 16 || off + len > buf.len() {
            break;
        }
        let ty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap());
        let seq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap());
        if ty == libc::NLMSG_ERROR as u16 && len >= 36 {
            // The error code, then the header of the request it answers (whose seq we trust).
            let code = i32::from_ne_bytes(buf[off + 16..off + 20].try_into().unwrap());
            let req_seq = u32::from_ne_bytes(buf[off + 28..off + 32].try_into().unwrap());
            f(req_seq, Some(code));
        } else {
            f(seq, None);
        }
        off += (len + 3) & !3;
    }
}
