//! The app firewall in nf_tables: one table per app, applied in atomic batches.
//!
//! Semantics (issue 5): inbound to a container is dropped unless an `allow` admits it (a
//! container of the app, the host, anyone, a CIDR; ports; tcp/udp); replies pass; a container
//! always reaches itself (its own address is local to its namespace); a CIDR source admits a
//! network, not the host (only `host` and `any` do). Containers cannot reach the host (any host
//! address, the gateway included) unless `allow-egress to="host"` says so, nor 169.254.0.0/16
//! unless an `allow-egress` CIDR inside it does; a CIDR never opens the host (issue 19);
//! `egress deny` drops everything leaving the app but admitted peers and `allow-egress`
//! destinations; `egress allow` is masqueraded. `publish` DNATs host-ip:port (from outside via
//! prerouting, from the host itself via output) and the forward/output chains admit exactly
//! the connections that were translated (`ct status dnat`). See [`ruleset`] for the layout.
//!
//! # Coexistence with Docker and host firewalls
//! tfctl's chains accept by policy and drop only on its own interfaces, so they never loosen
//! or tighten anything else. But a packet must pass every base chain of its hook, and a drop is
//! final: a forward chain with `policy drop` (Docker's iptables-nft `ip filter FORWARD`, ufw's
//! DEFAULT_FORWARD_POLICY="DROP", a plain nftables config) or ending in an unconditional reject
//! (firewalld) would drop containers' traffic and published ports alike, whatever tfctl's table
//! accepts. So `apply` also adds, to each such chain of family ip or inet on the input, forward
//! and output hooks, accepts for exactly the app's veths, at the chain's end, and `remove` takes
//! them out again ([`openings`]): the foreign chain's *default* no longer applies to the app's
//! interfaces, its explicit rules still do, and the app's own table decides the rest. Chains on
//! other hooks, and chains tfctl could not change, are named by [`foreign_drop_policies`] so
//! that `up` warns. Like Docker's published ports, a published port is reachable past a host
//! forward policy and bypasses rules that filter only the host's `input` hook (the translated
//! packets are forwarded, not delivered locally): publish on `host-ip="127.0.0.1"` or a
//! specific address to limit exposure, or drop in the host's chain explicitly.

pub mod compose;
pub mod disjoint;
pub mod openings;
pub mod ruleset;
pub mod spec;

pub use spec::*;

use crate::net::error::NetError;
use crate::net::nft::batch::Batch;
use crate::net::nft::table::delete_if_exists;
use crate::net::record::NetRecord;
use nftnl::{Chain, ChainType, MsgType, Policy, ProtoFamily, Rule, Table};
use ruleset::Ruleset;
use std::collections::BTreeSet;
use std::ffi::CString;

/// What an apply sent (for the benchmark and logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyStats {
    pub messages: usize,
    pub bytes: usize,
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("tfctl names have no NUL")
}

/// Adds the whole table (after deleting it if it exists) to `batch`.
fn add_ruleset(batch: &mut Batch, rs: &Ruleset) -> Result<(), NetError> {
    delete_if_exists(batch, &rs.table, ProtoFamily::Inet)?;
    let table = Table::new(cstr(&rs.table), ProtoFamily::Inet);
    batch.add(&table, MsgType::Add, format!("creating table {}", rs.table));
    for s in &rs.sets {
        s.add_to(batch);
    }
    for c in &rs.chains {
        let mut chain = Chain::new(cstr(c.name), &table);
        chain.set_hook(c.hook, c.priority);
        chain.set_type(if c.nat {
            ChainType::Nat
        } else {
            ChainType::Filter
        });
        chain.set_policy(Policy::Accept);
        batch.add(&chain, MsgType::Add, format!("creating chain {}", c.name));
        for r in &c.rules {
            let mut rule = Rule::new(&chain);
            for e in &r.exprs {
                rule.add_expr(e);
            }
            batch.add(
                &rule,
                MsgType::Add,
                format!("rule `{}` ({})", r.text, r.label),
            );
        }
    }
    for s in &rs.sets {
        if let Some(elems) = rs.elements.get(&s.name) {
            s.elements_to(batch, elems, false);
        }
    }
    Ok(())
}

/// Builds the batch that replaces the app's table with `spec` (exposed for the benchmark).
pub fn plan(record: &NetRecord, spec: &FirewallSpec) -> Result<Batch, NetError> {
    let rs = ruleset::build(record, spec)?;
    let mut batch = Batch::new();
    add_ruleset(&mut batch, &rs)?;
    Ok(batch)
}

/// Replaces the app's table with the one `spec` describes, atomically; then makes sure other
/// tables' chains that drop by default accept the app's interfaces ([`openings::open`]; a
/// failure there is a warning, and [`foreign_drop_policies`] names the chains left closed).
pub fn apply(record: &NetRecord, spec: &FirewallSpec) -> Result<ApplyStats, NetError> {
    let fin = plan(record, spec)?.finalize();
    let stats = ApplyStats {
        messages: fin.messages(),
        bytes: fin.bytes(),
    };
    fin.send()?;
    if let Err(e) = openings::open(record) {
        tracing::warn!(
            "cannot add tfctl's accepts to another table's chain that drops by default: {e}"
        );
    }
    Ok(stats)
}

/// Moves the app's table from `old` to `new` with set-element adds and deletes only, when the
/// rules themselves (publishes, subnet) are unchanged; otherwise replaces the table. This is
/// the cheap path for adding or removing a container.
pub fn update(
    record: &NetRecord,
    old: &FirewallSpec,
    new: &FirewallSpec,
) -> Result<ApplyStats, NetError> {
    let (a, b) = match (ruleset::build(record, old), ruleset::build(record, new)) {
        (Ok(a), Ok(b)) => (a, b),
        (_, Err(e)) => return Err(e),
        (Err(_), Ok(_)) => return apply(record, new),
    };
    let same_rules = a
        .chains
        .iter()
        .map(|c| c.rules.iter().map(|r| &r.text).collect::<Vec<_>>())
        .eq(b
            .chains
            .iter()
            .map(|c| c.rules.iter().map(|r| &r.text).collect::<Vec<_>>()));
    if !same_rules {
        return apply(record, new);
    }
    let mut batch = Batch::new();
    for s in &b.sets {
        let empty = Vec::new();
        let before = a.elements.get(&s.name).unwrap_or(&empty);
        let after = b.elements.get(&s.name).unwrap_or(&empty);
        let before_keys: BTreeSet<_> = before.iter().map(|(e, _)| e).collect();
        let after_keys: BTreeSet<_> = after.iter().map(|(e, _)| e).collect();
        let gone: Vec<_> = before
            .iter()
            .filter(|(e, _)| !after_keys.contains(e))
            .cloned()
            .collect();
        let new_elems: Vec<_> = after
            .iter()
            .filter(|(e, _)| !before_keys.contains(e))
            .cloned()
            .collect();
        if !gone.is_empty() {
            s.elements_to(&mut batch, &gone, true);
        }
        if !new_elems.is_empty() {
            s.elements_to(&mut batch, &new_elems, false);
        }
    }
    if batch.is_empty() {
        return Ok(ApplyStats {
            messages: 0,
            bytes: 0,
        });
    }
    let fin = batch.finalize();
    let stats = ApplyStats {
        messages: fin.messages(),
        bytes: fin.bytes(),
    };
    fin.send()?;
    Ok(stats)
}

/// Removes an app's accepts from other tables' chains ([`openings::close`]), then its table if
/// it exists, in that order so that the app's interfaces are never accepted there without its
/// table's drops. Idempotent.
pub fn remove(table: &str) -> Result<(), NetError> {
    let closed = openings::close(table);
    remove_family(table, ProtoFamily::Inet)?;
    closed
}

pub(crate) fn remove_family(table: &str, family: ProtoFamily) -> Result<(), NetError> {
    let mut batch = Batch::new();
    delete_if_exists(&mut batch, table, family)?;
    if batch.is_empty() {
        return Ok(());
    }
    batch.finalize().send()
}

mod foreign;
pub use foreign::foreign_drop_policies;
