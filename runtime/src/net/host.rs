//! Host-wide settings tfctl changes, recorded so that the last app's `down` restores them.
//!
//! Only one today: net.ipv4.ip_forward, needed because containers are routed. While tfctl has
//! turned it on, a guard table (`tfctl_host_<hash of the state root>`) drops forwarded packets
//! that neither enter nor leave a tfctl veth (`tfv*`), so the host does not start routing
//! between its other interfaces. If ip_forward was already on, tfctl changes nothing and
//! installs no guard: the host was a router before and its owner decides what it forwards.
//! Per-interface settings (route_localnet and disable_ipv6 on tfctl's veths and bridge) live and
//! die with those interfaces and need no restore.
//!
//! The record belongs to a state root; the caller keeps it in a file under the root's lock.
//! Two state roots on one host each record what they saw; the first to enable ip_forward is the
//! one that restores it (documented limitation).

use super::error::NetError;
use super::firewall::compose::RuleDef;
use super::names::{host_table, AppId};
use super::netns::{read_sysctl, write_sysctl};
use super::nft::batch::Batch;
use super::nft::expr::{CmpOp, Field, Verdict};
use super::nft::table::delete_if_exists;
use nftnl::{Chain, ChainType, Hook, MsgType, Policy, ProtoFamily, Rule, Table};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::ffi::CString;
use std::path::Path;

const IP_FORWARD: &str = "net.ipv4.ip_forward";

/// What tfctl changed on the host, and for whom.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    /// ip_forward's value before tfctl set it to 1; `None` when tfctl did not change it.
    pub ip_forward_before: Option<String>,
    /// The guard table created while tfctl has ip_forward on.
    pub guard_table: Option<String>,
    /// The apps that need the settings.
    pub users: BTreeSet<AppId>,
}

impl HostRecord {
    /// Registers `app` as needing forwarding; turns ip_forward on (guard first) if it is off.
    pub fn acquire(&mut self, state_root: &Path, app: &AppId) -> Result<(), NetError> {
        if read_sysctl(IP_FORWARD)? != "1" {
            let table = host_table(state_root);
            install_guard(&table)?;
            self.guard_table = Some(table);
            let before = read_sysctl(IP_FORWARD)?;
            if self.ip_forward_before.is_none() {
                self.ip_forward_before = Some(before);
            }
            write_sysctl(IP_FORWARD, "1")?;
        }
        self.users.insert(app.clone());
        Ok(())
    }

    /// Unregisters `app`; when no app is left, restores what tfctl changed and removes the
    /// guard. Idempotent.
    pub fn release(&mut self, app: &AppId) -> Result<(), NetError> {
        self.users.remove(app);
        if !self.users.is_empty() {
            return Ok(());
        }
        if let Some(before) = self.ip_forward_before.take() {
            write_sysctl(IP_FORWARD, &before)?;
        }
        if let Some(table) = self.guard_table.take() {
            super::firewall::remove(&table)?;
        }
        Ok(())
    }
}

fn install_guard(table_name: &str) -> Result<(), NetError> {
    let mut batch = Batch::new();
    delete_if_exists(&mut batch, table_name, ProtoFamily::Inet)?;
    let table = Table::new(CString::new(table_name).expect("no NUL"), ProtoFamily::Inet);
    batch.add(&table, MsgType::Add, format!("creating table {table_name}"));
    let mut chain = Chain::new(c"forward", &table);
    chain.set_hook(Hook::Forward, 0);
    chain.set_type(ChainType::Filter);
    chain.set_policy(Policy::Accept);
    batch.add(&chain, MsgType::Add, "creating the forward guard chain");
    let r = RuleDef::new("drop forwarding that does not involve a tfctl veth")
        .ifname(Field::Iifname, "tfv*", CmpOp::Neq)
        .ifname(Field::Oifname, "tfv*", CmpOp::Neq)
        .verdict(Verdict::Drop);
    let mut rule = Rule::new(&chain);
    for e in &r.exprs {
        rule.add_expr(e);
    }
    batch.add(
        &rule,
        MsgType::Add,
        format!("rule `{}` ({})", r.text, r.label),
    );
    batch.finalize().send()
}
