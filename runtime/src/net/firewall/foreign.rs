//! Finding other tables' chains that would drop tfctl's traffic.

use crate::net::error::NetError;
use nftnl::nftnl_sys::{self as sys, libc};
use std::ffi::CStr;

const HOOK_NAMES: [&str; 5] = ["prerouting", "input", "forward", "output", "postrouting"];

/// Base chains of other tables (family ip or inet) whose policy is drop, as human-readable
/// warnings: they drop tfctl's packets too unless they accept tfctl's interfaces. Tables whose
/// names start with `tfctl_` are tfctl's and skipped.
pub fn foreign_drop_policies() -> Result<Vec<String>, NetError> {
    let sock = mnl::Socket::new(mnl::Bus::Netfilter).map_err(|source| NetError::Netlink {
        step: "socket",
        source,
    })?;
    let mut req = vec![0u8; 256];
    // SAFETY: the buffer holds the 20-byte GETCHAIN dump request nftnl writes.
    let len = unsafe {
        let nlh = sys::nftnl_nlmsg_build_hdr(
            req.as_mut_ptr().cast(),
            libc::NFT_MSG_GETCHAIN as u16,
            libc::NFPROTO_UNSPEC as u16,
            (libc::NLM_F_DUMP | libc::NLM_F_ACK) as u16,
            1,
        );
        (*nlh).nlmsg_len as usize
    };
    sock.send(&req[..len]).map_err(|source| NetError::Netlink {
        step: "send (list chains)",
        source,
    })?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    'recv: loop {
        let n = sock
            .recv_raw(&mut buf)
            .map_err(|source| NetError::Netlink {
                step: "receive (list chains)",
                source,
            })?;
        let mut off = 0;
        while off + 16 <= n {
            let mlen = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
            let ty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap());
            if mlen < 16 || off + mlen > n {
                break;
            }
            if ty == libc::NLMSG_DONE as u16 || ty == libc::NLMSG_ERROR as u16 {
                break 'recv;
            }
            // SAFETY: a complete netlink message from the kernel; the chain is freed below and
            // the strings are copied before that.
            unsafe {
                let c = sys::nftnl_chain_alloc();
                if sys::nftnl_chain_nlmsg_parse(buf.as_ptr().add(off).cast(), c) >= 0
                    && sys::nftnl_chain_is_set(c, sys::NFTNL_CHAIN_HOOKNUM as u16)
                    && sys::nftnl_chain_is_set(c, sys::NFTNL_CHAIN_POLICY as u16)
                {
                    let family = sys::nftnl_chain_get_u32(c, sys::NFTNL_CHAIN_FAMILY as u16) as i32;
                    let policy = sys::nftnl_chain_get_u32(c, sys::NFTNL_CHAIN_POLICY as u16) as i32;
                    let hook =
                        sys::nftnl_chain_get_u32(c, sys::NFTNL_CHAIN_HOOKNUM as u16) as usize;
                    let table =
                        CStr::from_ptr(sys::nftnl_chain_get_str(c, sys::NFTNL_CHAIN_TABLE as u16))
                            .to_string_lossy()
                            .into_owned();
                    let name =
                        CStr::from_ptr(sys::nftnl_chain_get_str(c, sys::NFTNL_CHAIN_NAME as u16))
                            .to_string_lossy()
                            .into_owned();
                    let fam = match family {
                        libc::NFPROTO_IPV4 => Some("ip"),
                        libc::NFPROTO_INET => Some("inet"),
                        _ => None,
                    };
                    if let (Some(fam), true, false) =
                        (fam, policy == libc::NF_DROP, table.starts_with("tfctl_"))
                    {
                        out.push(format!(
                            "table {fam} {table}, chain {name} (hook {}) has policy drop: it also drops tfctl's container traffic unless it accepts iifname \"tfv*\" and oifname \"tfv*\"",
                            HOOK_NAMES.get(hook).unwrap_or(&"?")
                        ));
                    }
                }
                sys::nftnl_chain_free(c);
            }
            off += (mlen + 3) & !3;
        }
    }
    Ok(out)
}
