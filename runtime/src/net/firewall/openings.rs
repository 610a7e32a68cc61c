//! tfctl's accepts in other tables' base chains: what lets an app's traffic through a host
//! firewall or Docker that drops by default.
//!
//! nftables runs every base chain of a hook, and a drop in any of them is final, so an accept in
//! tfctl's table cannot undo another table's `policy drop` (Docker's iptables-nft `ip filter
//! FORWARD`, a host firewall's `inet` table) nor a last unconditional reject (firewalld). So for
//! each such chain of family ip or inet on a hook where tfctl's own table filters its interfaces
//! (input: packets from the app's veths; output: to them; forward: both), tfctl adds one rule
//! per direction that accepts the app's veths (`iifname "tfv<id>*"`, `oifname "tfv<id>*"`) at the
//! chain's end: after every rule the chain has (so an explicit drop of the host's, or a user's
//! rule in Docker's DOCKER-USER, still applies to tfctl's traffic), before the policy or the final
//! drop rule. tfctl only replaces that chain's default for its own interfaces: what an app may
//! send or receive is still decided by the app's table, whose drops are final too.
//!
//! The rules are encoded as iptables-nft encodes `-i tfv<id>+ -m comment --comment "..." -j
//! ACCEPT` (meta iifname, a prefix cmp, counter, accept verdict, and the comment as rule user
//! data), so iptables-nft (and Docker through it) lists, saves and edits those tables as before.
//! The comment names the app's table: it is how tfctl finds exactly its own rules to remove at
//! `down`, and what an administrator sees (`/* tfctl_<id>: ... */`).
//!
//! [`open`] runs at every `up` and reconcile and is idempotent: it reads the chains, and changes
//! one (deleting the app's stale rules and adding them at the end, in one atomic batch) only when
//! they are missing or no longer at its end. While an app runs, a Docker restart keeps them
//! (dockerd re-inserts its jumps at the top of `FORWARD` and flushes nothing: measured in
//! tests/docker_coexist.rs); a firewall reload that replaces its table, or Docker started for the
//! first time after the app, drops the app's traffic until the next `up` puts them back. Nothing
//! watches the ruleset meanwhile.

use super::foreign::{base_chains, BaseChain};
use crate::net::error::NetError;
use crate::net::nft::batch::Batch;
use crate::net::nft::expr::{CmpOp, Expr, Field, Verdict, REG_1};
use crate::net::record::NetRecord;
use nftnl::nftnl_sys::libc;
use nftnl::{Chain, MsgType, NlMsg, ProtoFamily, Rule, Table};
use std::ffi::{c_void, CString};

/// The direction of one of tfctl's accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    /// `iifname "tfv<id>*"`: packets from the app's containers.
    From,
    /// `oifname "tfv<id>*"`: packets to them.
    To,
}

/// What tells tfctl's rules from others': every comment of tfctl's ends so.
const MARK: &str = ", filtered in table inet ";

/// The comment on the app's rule in direction `dir`.
fn comment(table: &str, dir: Dir) -> String {
    let what = match dir {
        Dir::From => "from its containers",
        Dir::To => "to its containers",
    };
    format!("{table}: {what}{MARK}{table}")
}

/// Whether a rule comment is one of tfctl's (of any app).
pub(super) fn is_tfctls(comment: &str) -> bool {
    comment.starts_with("tfctl_") && comment.contains(MARK)
}

/// The directions tfctl opens on a hook (NF_INET_*): where its own table filters them.
fn directions(hook: u32) -> &'static [Dir] {
    match hook as i32 {
        libc::NF_INET_LOCAL_IN => &[Dir::From],
        libc::NF_INET_FORWARD => &[Dir::From, Dir::To],
        libc::NF_INET_LOCAL_OUT => &[Dir::To],
        _ => &[],
    }
}

/// Adds the app's accepts to every foreign chain that would drop its traffic, and removes them
/// from chains that no longer do. Idempotent; see the module docs. On failure the other chains
/// are still handled and the first error is returned.
pub fn open(record: &NetRecord) -> Result<(), NetError> {
    let prefix = record.app_id.veth_prefix();
    reconcile(
        &record.table,
        |c| {
            if c.drops_the_rest() {
                directions(c.hook)
            } else {
                &[]
            }
        },
        &prefix,
    )
}

/// Removes the accepts of the app whose table is `table` from every foreign chain.
pub fn close(table: &str) -> Result<(), NetError> {
    reconcile(table, |_| &[], "")
}

/// Brings every foreign base chain to holding exactly the app's rules `wanted` says, at its end.
/// A chain that changed under us (Docker editing it at the same moment) makes the batch fail
/// with ENOENT; then everything is read again, a few times.
fn reconcile(
    table: &str,
    wanted: impl Fn(&BaseChain) -> &'static [Dir],
    prefix: &str,
) -> Result<(), NetError> {
    let mut last_err = None;
    for _ in 0..3 {
        last_err = None;
        let mut retry = false;
        for c in base_chains()? {
            let want = wanted(&c);
            let Some(batch) = plan(&c, table, want, prefix)? else {
                continue;
            };
            if let Err(e) = batch.finalize().send() {
                retry |= e.errno() == Some(libc::ENOENT);
                last_err.get_or_insert(e);
            }
        }
        if !retry {
            break;
        }
    }
    last_err.map_or(Ok(()), Err)
}

/// The batch that brings chain `c` to holding the app's rules `want` at its end, or None when it
/// does already.
fn plan(c: &BaseChain, table: &str, want: &[Dir], prefix: &str) -> Result<Option<Batch>, NetError> {
    let ours: Vec<(Dir, u64)> = c
        .rules
        .iter()
        .filter_map(|r| {
            let text = r.comment.as_deref()?;
            [Dir::From, Dir::To]
                .into_iter()
                .find(|d| text == comment(table, *d))
                .map(|d| (d, r.handle))
        })
        .collect();
    // The end: before a final drop rule, else after the last rule. tfctl's rules (of any app)
    // right before it form its block; the app's rules belong there.
    let end = c.rules.len() - usize::from(c.ends_in_drop());
    let block_start = c.rules[..end]
        .iter()
        .rposition(|r| !r.comment.as_deref().is_some_and(is_tfctls))
        .map_or(0, |i| i + 1);
    let in_block: Vec<u64> = c.rules[block_start..end].iter().map(|r| r.handle).collect();
    let in_place = ours.len() == want.len()
        && want.iter().all(|d| ours.iter().any(|(o, _)| o == d))
        && ours.iter().all(|(_, h)| in_block.contains(h));
    if in_place {
        return Ok(None);
    }

    let family = if c.family == libc::NFPROTO_INET {
        ProtoFamily::Inet
    } else {
        ProtoFamily::Ipv4
    };
    let t = Table::new(cstring(&c.table), family);
    let chain = Chain::new(cstring(&c.name), &t);
    let what = format!("table {} {}, chain {}", c.family_name(), c.table, c.name);
    let mut batch = Batch::new();
    for (_, handle) in &ours {
        let mut r = Rule::new(&chain);
        r.set_handle(*handle);
        batch.add(
            &r,
            MsgType::Del,
            format!("removing tfctl's accept (handle {handle}) from {what}"),
        );
    }
    let before = c.ends_in_drop().then(|| c.rules[end].handle);
    for d in want {
        let mut rule = accept_rule(&chain, table, *d, prefix)?;
        let label = format!(
            "adding tfctl's accept `{}` to {what}",
            rule_text(*d, prefix)
        );
        match before {
            Some(handle) => {
                rule.set_position(handle);
                batch.add(&InsertBefore(rule), MsgType::Add, label)
            }
            None => batch.add(&rule, MsgType::Add, label),
        }
    }
    Ok(Some(batch))
}

fn cstring(s: &str) -> CString {
    // Names read from the kernel, and tfctl's own, have no NUL.
    CString::new(s).unwrap_or_default()
}

fn rule_text(d: Dir, prefix: &str) -> String {
    let kw = if d == Dir::From { "iifname" } else { "oifname" };
    format!("{kw} \"{prefix}*\" counter accept")
}

/// `iifname "tfv<id>*" counter accept comment "..."` (or oifname), as iptables-nft writes
/// `-i tfv<id>+ -m comment --comment "..." -j ACCEPT`.
fn accept_rule<'a>(
    chain: &'a Chain<'a>,
    table: &str,
    d: Dir,
    prefix: &str,
) -> Result<Rule<'a>, NetError> {
    let field = if d == Dir::From {
        Field::Iifname
    } else {
        Field::Oifname
    };
    let mut r = Rule::new(chain);
    r.add_expr(&field.load(REG_1));
    // No NUL after the prefix: a prefix match, like iptables' `+`.
    r.add_expr(&Expr::Cmp {
        sreg: REG_1,
        op: CmpOp::Eq,
        data: prefix.as_bytes().to_vec(),
    });
    r.add_expr(&nftnl::expr::Counter);
    r.add_expr(&Expr::Verdict(Verdict::Accept));
    let text = comment(table, d);
    r.set_comment(cstring(&text)).map_err(|e| {
        NetError::Invalid(format!("the comment `{text}` on tfctl's accept rule: {e}"))
    })?;
    Ok(r)
}

/// A rule inserted before the rule whose handle is its position: nftnl always sets
/// NLM_F_APPEND, which makes the kernel insert after the position; without it, before.
struct InsertBefore<'a>(Rule<'a>);

// SAFETY: `write` writes exactly the one message the wrapped rule writes, then clears a flag in
// its header.
unsafe impl NlMsg for InsertBefore<'_> {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, msg_type: MsgType) {
        // SAFETY: the caller gives room for one message, which the rule writes at `buf`; the
        // header's flags are the u16 at offset 6 of struct nlmsghdr.
        unsafe {
            self.0.write(buf, seq, msg_type);
            let flags = buf.cast::<u8>().add(6).cast::<u16>();
            flags.write_unaligned(flags.read_unaligned() & !(libc::NLM_F_APPEND as u16));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::foreign::RuleInfo;
    use super::*;

    const T: &str = "tfctl_0000000a";

    fn rule(handle: u64, comment: Option<String>, drops_all: bool) -> RuleInfo {
        RuleInfo {
            handle,
            comment,
            drops_all,
        }
    }

    fn docker(handle: u64) -> RuleInfo {
        rule(handle, None, false)
    }

    fn ours(handle: u64, table: &str, d: Dir) -> RuleInfo {
        rule(handle, Some(comment(table, d)), false)
    }

    fn chain(hook: i32, policy_drop: bool, rules: Vec<RuleInfo>) -> BaseChain {
        BaseChain {
            family: libc::NFPROTO_IPV4,
            table: "filter".into(),
            name: "FORWARD".into(),
            hook: hook as u32,
            policy_drop,
            rules,
        }
    }

    /// Messages the plan sends for app `T` (None: the chain is left alone).
    fn messages(c: &BaseChain) -> Option<usize> {
        let want = if c.drops_the_rest() {
            directions(c.hook)
        } else {
            &[]
        };
        plan(c, T, want, "tfv0000000a").unwrap().map(|b| b.len())
    }

    const FWD: i32 = libc::NF_INET_FORWARD;

    #[test]
    fn a_chain_that_drops_by_default_gets_one_accept_per_direction_once() {
        assert_eq!(
            messages(&chain(FWD, true, vec![docker(1), docker(2)])),
            Some(2)
        );
        assert_eq!(
            messages(&chain(libc::NF_INET_LOCAL_IN, true, vec![])),
            Some(1)
        );
        assert_eq!(
            messages(&chain(libc::NF_INET_LOCAL_OUT, true, vec![])),
            Some(1)
        );
        // Hooks where tfctl's table does not filter are left to the warning.
        assert_eq!(
            messages(&chain(libc::NF_INET_PRE_ROUTING, true, vec![])),
            None
        );
        // In place: nothing to do, so a second `up` sends nothing.
        assert_eq!(
            messages(&chain(
                FWD,
                true,
                vec![docker(1), ours(5, T, Dir::From), ours(6, T, Dir::To)]
            )),
            None
        );
        // Another app's accepts after ours are part of tfctl's block at the end.
        let other = "tfctl_0000000b";
        assert_eq!(
            messages(&chain(
                FWD,
                true,
                vec![
                    docker(1),
                    ours(5, T, Dir::From),
                    ours(6, T, Dir::To),
                    ours(7, other, Dir::From),
                    ours(8, other, Dir::To)
                ]
            )),
            None
        );
        // Before a final unconditional drop rule, also with policy accept.
        assert_eq!(
            messages(&chain(
                FWD,
                false,
                vec![
                    docker(1),
                    ours(5, T, Dir::From),
                    ours(6, T, Dir::To),
                    rule(2, None, true)
                ]
            )),
            None
        );
        assert_eq!(
            messages(&chain(FWD, false, vec![docker(1), rule(2, None, true)])),
            Some(2)
        );
    }

    #[test]
    fn misplaced_or_half_accepts_are_replaced_and_unneeded_ones_removed() {
        // A rule was inserted after ours: delete both, add both at the end.
        assert_eq!(
            messages(&chain(
                FWD,
                true,
                vec![ours(5, T, Dir::From), ours(6, T, Dir::To), docker(7)]
            )),
            Some(4)
        );
        // One of the two is gone.
        assert_eq!(
            messages(&chain(FWD, true, vec![docker(1), ours(5, T, Dir::From)])),
            Some(3)
        );
        // The chain no longer drops: ours go.
        assert_eq!(
            messages(&chain(
                FWD,
                false,
                vec![docker(1), ours(5, T, Dir::From), ours(6, T, Dir::To)]
            )),
            Some(2)
        );
        // Another app's rules are never touched.
        assert_eq!(
            messages(&chain(
                FWD,
                false,
                vec![ours(5, "tfctl_0000000b", Dir::From)]
            )),
            None
        );
    }

    #[test]
    fn tfctls_comments_are_told_from_others() {
        assert!(is_tfctls(&comment(T, Dir::From)));
        assert!(is_tfctls(&comment(T, Dir::To)));
        assert!(!is_tfctls("tfctl_ something else"));
        assert!(!is_tfctls("allow ssh"));
    }
}
