//! Reading other tables' base chains: a packet must pass every base chain on its hook, so a
//! host firewall's `policy drop` (ufw, plain nftables, Docker's iptables `FORWARD`) or a final
//! unconditional `reject`/`drop` rule (firewalld) also drops tfctl's containers' packets. This
//! module lists those chains with their rules (handle, comment, whether it drops everything);
//! [`super::openings`] adds tfctl's accepts to them, and [`foreign_drop_policies`] names those
//! that still drop tfctl's traffic.

use crate::net::error::NetError;
use nftnl::nftnl_sys::{self as sys, libc};
use std::collections::BTreeMap;
use std::ffi::CStr;

const HOOK_NAMES: [&str; 5] = ["prerouting", "input", "forward", "output", "postrouting"];

/// One base chain of a table that is not tfctl's (family ip or inet).
#[derive(Debug)]
pub(super) struct BaseChain {
    /// NFPROTO_IPV4 or NFPROTO_INET.
    pub family: i32,
    pub table: String,
    pub name: String,
    /// NF_INET_* hook number.
    pub hook: u32,
    pub policy_drop: bool,
    /// Its rules in order.
    pub rules: Vec<RuleInfo>,
}

/// One rule of a [`BaseChain`].
#[derive(Debug)]
pub(super) struct RuleInfo {
    pub handle: u64,
    /// The comment in the rule's user data (nft's `comment "..."`, iptables-nft's
    /// `-m comment --comment "..."`).
    pub comment: Option<String>,
    /// Matches every packet and drops or rejects it.
    pub drops_all: bool,
}

impl BaseChain {
    /// Whether the last rule drops every packet that reaches it.
    pub fn ends_in_drop(&self) -> bool {
        self.rules.last().is_some_and(|r| r.drops_all)
    }

    /// Whether a packet no rule accepted is dropped.
    pub fn drops_the_rest(&self) -> bool {
        self.policy_drop || self.ends_in_drop()
    }

    pub fn family_name(&self) -> &'static str {
        family_name(self.family).unwrap_or("?")
    }

    pub fn hook_name(&self) -> &'static str {
        HOOK_NAMES.get(self.hook as usize).copied().unwrap_or("?")
    }
}

/// Every base chain of the tables of family ip and inet whose names do not start with
/// `tfctl_` (tfctl's own), with their rules.
pub(super) fn base_chains() -> Result<Vec<BaseChain>, NetError> {
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
                let hook = sys::nftnl_chain_get_u32(c, sys::NFTNL_CHAIN_HOOKNUM as u16);
                let table = cstr(sys::nftnl_chain_get_str(c, sys::NFTNL_CHAIN_TABLE as u16));
                let name = cstr(sys::nftnl_chain_get_str(c, sys::NFTNL_CHAIN_NAME as u16));
                if family_name(family).is_some() && !table.starts_with("tfctl_") {
                    chains.insert(
                        (family, table.clone(), name.clone()),
                        BaseChain {
                            family,
                            table,
                            name,
                            hook,
                            policy_drop: policy == libc::NF_DROP,
                            rules: Vec::new(),
                        },
                    );
                }
            }
            sys::nftnl_chain_free(c);
        }
    }
    // The dump lists each chain's rules in order.
    for msg in dump(libc::NFT_MSG_GETRULE as u16, "rules")? {
        // SAFETY: as above, for a rule; the expression iterator is destroyed before the rule,
        // and the user data is copied before the rule is freed.
        unsafe {
            let r = sys::nftnl_rule_alloc();
            if sys::nftnl_rule_nlmsg_parse(msg.as_ptr().cast(), r) >= 0 {
                let family = sys::nftnl_rule_get_u32(r, sys::NFTNL_RULE_FAMILY as u16) as i32;
                let table = cstr(sys::nftnl_rule_get_str(r, sys::NFTNL_RULE_TABLE as u16));
                let chain = cstr(sys::nftnl_rule_get_str(r, sys::NFTNL_RULE_CHAIN as u16));
                if let Some(c) = chains.get_mut(&(family, table, chain)) {
                    let handle = sys::nftnl_rule_get_u64(r, sys::NFTNL_RULE_HANDLE as u16);
                    let mut comment = None;
                    if sys::nftnl_rule_is_set(r, sys::NFTNL_RULE_USERDATA as u16) {
                        let mut len = 0u32;
                        let p =
                            sys::nftnl_rule_get_data(r, sys::NFTNL_RULE_USERDATA as u16, &mut len);
                        if !p.is_null() {
                            comment = udata_comment(std::slice::from_raw_parts(
                                p.cast::<u8>(),
                                len as usize,
                            ));
                        }
                    }
                    c.rules.push(RuleInfo {
                        handle,
                        comment,
                        drops_all: unconditional_drop(r),
                    });
                }
            }
            sys::nftnl_rule_free(r);
        }
    }
    Ok(chains.into_values().collect())
}

/// The comment in a rule's user data: type-length-value attributes, the comment being type 0
/// (NFTNL_UDATA_RULE_COMMENT, the same number iptables-nft uses) holding a NUL-terminated string.
fn udata_comment(mut data: &[u8]) -> Option<String> {
    while let [ty, len, rest @ ..] = data {
        let len = *len as usize;
        let value = rest.get(..len)?;
        if *ty == sys::NFTNL_UDATA_RULE_COMMENT as u8 {
            let text = value.split(|b| *b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        data = &rest[len..];
    }
    None
}

/// Warnings, one per base chain of another table (family ip or inet) that drops what it does
/// not accept (a `policy drop`, or a last rule that drops or rejects unconditionally) and that
/// holds no accept of tfctl's: [`super::openings`] could not add them (a table that refuses
/// other programs' rules), or the chain is on a hook tfctl does not open (prerouting,
/// postrouting).
pub fn foreign_drop_policies() -> Result<Vec<String>, NetError> {
    let mut out = Vec::new();
    for c in base_chains()? {
        let why = if c.policy_drop {
            "has policy drop"
        } else if c.ends_in_drop() {
            "ends with an unconditional drop or reject"
        } else {
            continue;
        };
        if c.rules
            .iter()
            .any(|r| r.comment.as_deref().is_some_and(super::openings::is_tfctls))
        {
            continue;
        }
        out.push(format!(
            "table {} {}, chain {} (hook {}) {why}: it also drops tfctl's container traffic unless it accepts iifname \"tfv*\" and oifname \"tfv*\" first",
            c.family_name(),
            c.table,
            c.name,
            c.hook_name()
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

#[cfg(test)]
mod tests {
    use super::udata_comment;

    #[test]
    fn the_comment_is_found_among_user_data_attributes() {
        // type 1 (another attribute), then type 0 (the comment, NUL-terminated), as nft writes.
        let data = [1u8, 2, 9, 9, 0, 4, b'a', b'b', b'c', 0];
        assert_eq!(udata_comment(&data).as_deref(), Some("abc"));
        assert_eq!(udata_comment(&[1, 1, 7]), None);
        // Truncated: no panic, no comment.
        assert_eq!(udata_comment(&[0, 9, b'a']), None);
        assert_eq!(udata_comment(&[]), None);
    }
}
