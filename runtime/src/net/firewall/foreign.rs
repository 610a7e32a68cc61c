//! Finding other tables' base chains that would drop tfctl's traffic: a packet must pass every
//! base chain on its hook, so a host firewall's `policy drop` (ufw, plain nftables) or a final
//! unconditional `reject`/`drop` rule (firewalld) also drops tfctl's containers' packets.

use crate::net::error::NetError;
use nftnl::nftnl_sys::{self as sys, libc};
use std::collections::BTreeMap;
use std::ffi::CStr;

const HOOK_NAMES: [&str; 5] = ["prerouting", "input", "forward", "output", "postrouting"];

/// One base chain of a foreign table.
struct BaseChain {
    family: &'static str,
    table: String,
    name: String,
    hook: &'static str,
    policy_drop: bool,
}

/// Warnings, one per base chain of another table (family ip or inet) that drops what it does
/// not accept: a `policy drop`, or a last rule that drops or rejects unconditionally. Tables
/// whose names start with `tfctl_` are tfctl's own and skipped.
pub fn foreign_drop_policies() -> Result<Vec<String>, NetError> {
    let mut chains: BTreeMap<(i32, String, String), BaseChain> = BTreeMap::new();
    for msg in dump(libc::NFT_MSG_GETCHAIN as u16, "chains")? {
        // SAFETY: a complete netlink message from the kernel; the chain is freed below and the
        // strings are copied before that.
        unsafe {
            let c = sys::nftnl_chain_alloc();
            if sys::nftnl_chain_nlmsg_parse(msg.as_ptr().cast(), c) >= 0
                && sys::nftnl_chain_is_set(c, sys::NFTNL_CHAIN_HOOKNUM as u16)
            {
                let family = sys::nftnl_chain_get_u32(c, sys::NFTNL_CHAIN_FAMILY as u16) as i32;
                let policy = sys::nftnl_chain_get_u32(c, sys::NFTNL_CHAIN_POLICY as u16) as i32;
                let hook = sys::nftnl_chain_get_u32(c, sys::NFTNL_CHAIN_HOOKNUM as u16) as usize;
                let table = cstr(sys::nftnl_chain_get_str(c, sys::NFTNL_CHAIN_TABLE as u16));
                let name = cstr(sys::nftnl_chain_get_str(c, sys::NFTNL_CHAIN_NAME as u16));
                if let (Some(fam), false) = (family_name(family), table.starts_with("tfctl_")) {
                    chains.insert(
                        (family, table.clone(), name.clone()),
                        BaseChain {
                            family: fam,
                            table,
                            name,
                            hook: HOOK_NAMES.get(hook).copied().unwrap_or("?"),
                            policy_drop: policy == libc::NF_DROP,
                        },
                    );
                }
            }
            sys::nftnl_chain_free(c);
        }
    }
    // The last rule of each chain (the dump lists rules in chain order).
    let mut last_drops: BTreeMap<(i32, String, String), bool> = BTreeMap::new();
    for msg in dump(libc::NFT_MSG_GETRULE as u16, "rules")? {
        // SAFETY: as above, for a rule; the expression iterator is destroyed before the rule.
        unsafe {
            let r = sys::nftnl_rule_alloc();
            if sys::nftnl_rule_nlmsg_parse(msg.as_ptr().cast(), r) >= 0 {
                let family = sys::nftnl_rule_get_u32(r, sys::NFTNL_RULE_FAMILY as u16) as i32;
                let table = cstr(sys::nftnl_rule_get_str(r, sys::NFTNL_RULE_TABLE as u16));
                let chain = cstr(sys::nftnl_rule_get_str(r, sys::NFTNL_RULE_CHAIN as u16));
                let key = (family, table, chain);
                if chains.contains_key(&key) {
                    last_drops.insert(key, unconditional_drop(r));
                }
            }
            sys::nftnl_rule_free(r);
        }
    }
    let mut out = Vec::new();
    for (key, c) in &chains {
        let why = if c.policy_drop {
            "has policy drop"
        } else if last_drops.get(key).copied().unwrap_or(false) {
            "ends with an unconditional drop or reject"
        } else {
            continue;
        };
        out.push(format!(
            "table {} {}, chain {} (hook {}) {why}: it also drops tfctl's container traffic unless it accepts iifname \"tfv*\" and oifname \"tfv*\" first",
            c.family, c.table, c.name, c.hook
        ));
    }
    Ok(out)
}

fn family_name(f: i32) -> Option<&'static str> {
    match f {
        libc::NFPROTO_IPV4 => Some("ip"),
        libc::NFPROTO_INET => Some("inet"),
        _ => None,
    }
}

unsafe fn cstr(p: *const libc::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: libnftnl returns NUL-terminated strings it owns.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Whether the rule matches every packet and drops it: only counters/logging, then `reject` or
/// a drop verdict.
unsafe fn unconditional_drop(r: *mut sys::nftnl_rule) -> bool {
    // SAFETY: r is a parsed rule; the iterator is destroyed before returning.
    unsafe {
        let it = sys::nftnl_expr_iter_create(r);
        let mut names = Vec::new();
        let mut verdict_drop = false;
        loop {
            let e = sys::nftnl_expr_iter_next(it);
            if e.is_null() {
                break;
            }
            let name = cstr(sys::nftnl_expr_get_str(e, sys::NFTNL_EXPR_NAME as u16));
            if name == "immediate" {
                verdict_drop = sys::nftnl_expr_get_u32(e, sys::NFTNL_EXPR_IMM_DREG as u16) == 0
                    && sys::nftnl_expr_get_u32(e, sys::NFTNL_EXPR_IMM_VERDICT as u16) as i32
                        == libc::NF_DROP;
            }
            names.push(name);
        }
        sys::nftnl_expr_iter_destroy(it);
        let Some((last, before)) = names.split_last() else {
            return false;
        };
        before.iter().all(|n| n == "counter" || n == "log")
            && (last == "reject" || (last == "immediate" && verdict_drop))
    }
}

/// Dumps all objects of one kind (all families) as raw netlink messages.
fn dump(msg_type: u16, what: &str) -> Result<Vec<Vec<u8>>, NetError> {
    let sock = mnl::Socket::new(mnl::Bus::Netfilter).map_err(|source| NetError::Netlink {
        step: "socket",
        source,
    })?;
    let mut req = vec![0u8; 256];
    // SAFETY: the buffer holds the 20-byte dump request nftnl writes.
    let len = unsafe {
        let nlh = sys::nftnl_nlmsg_build_hdr(
            req.as_mut_ptr().cast(),
            msg_type,
            libc::NFPROTO_UNSPEC as u16,
            (libc::NLM_F_DUMP | libc::NLM_F_ACK) as u16,
            1,
        );
        (*nlh).nlmsg_len as usize
    };
    let step = if what == "chains" {
        "send (list chains)"
    } else {
        "send (list rules)"
    };
    sock.send(&req[..len])
        .map_err(|source| NetError::Netlink { step, source })?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = sock
            .recv_raw(&mut buf)
            .map_err(|source| NetError::Netlink {
                step: "receive (nf_tables dump)",
                source,
            })?;
        let mut off = 0;
        while off + 16 <= n {
            let mlen = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
            let ty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap());
            if mlen < 16 || off + mlen > n {
                break;
            }
            if ty == libc::NLMSG_DONE as u16 {
                return Ok(out);
            }
            if ty == libc::NLMSG_ERROR as u16 {
                let code = i32::from_ne_bytes(buf[off + 16..off + 20].try_into().unwrap());
                if code != 0 {
                    return Err(NetError::refused(
                        format!("listing nf_tables {what}"),
                        -code,
                    ));
                }
                return Ok(out);
            }
            out.push(buf[off..off + mlen].to_vec());
            off += (mlen + 3) & !3;
        }
    }
}
