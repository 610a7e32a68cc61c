//! Container networking and the firewall: links and addresses over rtnetlink, rules over
//! nf_tables (nftnl), host-wide settings, and records of all of it.
//!
//! # Design: routed /32 veths, no bridge switching
//! Each app has a bridge `tfb<id>` that holds the gateway address (the app's anchor in the host's
//! routing table), but no container is enslaved to it. Every container is a routed /32 behind its
//! own host-side veth `tfv<id><n>` (see [`links`]). So traffic between two containers of an app
//! leaves one veth and enters another through the host's IPv4 forward path, where the inet
//! `forward` hook sees it with both veth names. Enforcement therefore never depends on
//! br_netfilter (an unloaded module on stock Debian, and a global switch we would have to own):
//! with `bridge-nf-call-iptables=0` or without the module, the rules see the same packets. The
//! alternatives were weaker: a `bridge` family table needs nf_conntrack_bridge for `ct state` and
//! sees host traffic twice, and rules inside each container's namespace can be flushed by a
//! container given CAP_NET_ADMIN and cannot see the host-side veth, so cannot stop spoofing.
//!
//! # What tfctl creates
//! Per app: the bridge, one veth pair per container, the table `tfctl_<id>` (all in a
//! [`NetRecord`]). Per state root while any app needs it: net.ipv4.ip_forward and the guard table
//! `tfctl_host_<hash>` ([`host::HostRecord`]). Per veth (dies with it): `route_localnet=1` and
//! `disable_ipv6=1`. In each container's namespace: `disable_ipv6=1` (all, default), `lo` up.

//! # Using it (the supervisor's sequence)
//! `up`: `subnet::allocate(requested, pool, &other_apps_subnets)`; `NetRecord::plan(AppId::derive(
//! root, app), subnet)` (or the saved record, which keeps the addresses); `record.assign(name)` per
//! container; save the record; `HostRecord::acquire`; `AppNet::create`; `firewall::apply` and
//! show `firewall::foreign_drop_policies()` as warnings; then for each container, once the
//! spawner has made its network namespace and before its process runs,
//! `AppNet::attach_container(&record, name, netns_fd)`. A container added later:
//! `record.assign`, `firewall::update(&record, &old_spec, &new_spec)` (set-element adds only),
//! attach. Restart: `links::detach_container` (a no-op when the veth died with the old namespace),
//! attach again; address and rules are unchanged. `down`: `teardown(&record)`, then
//! `HostRecord::release`; both idempotent, both work from the saved records after a crash.

pub mod error;
pub mod firewall;
pub mod host;
pub mod links;
pub mod names;
mod netns;
pub mod nft;
pub mod ports;
pub mod record;
mod rtnl;
pub mod subnet;

pub use error::NetError;
pub use names::AppId;
pub use record::{ContainerAddr, NetRecord};

use std::os::fd::BorrowedFd;

/// An app's network: the entry points the supervisor calls.
pub struct AppNet;

impl AppNet {
    /// Creates the app's bridge for a planned record ([`NetRecord::plan`]; save the record first,
    /// so a crash after this call still lets `down` remove what was made).
    pub fn create(record: &NetRecord) -> Result<(), NetError> {
        links::create_bridge(record)
    }

    /// Wires a container whose network namespace is `netns` (see [`links::attach_container`]).
    pub fn attach_container(
        record: &NetRecord,
        container: &str,
        netns: BorrowedFd<'_>,
    ) -> Result<(), NetError> {
        let c = record
            .containers
            .get(container)
            .ok_or_else(|| NetError::Invalid(format!("container {container} has no address in the app's record; call NetRecord::assign first")))?;
        links::attach_container(record, c, netns)
    }
}

/// Removes everything in the record: the app's table, every container's veth, the bridge.
/// Objects already gone are skipped, so this is idempotent and works after a crash.
pub fn teardown(record: &NetRecord) -> Result<(), NetError> {
    let mut first_err = firewall::remove(&record.table).err();
    for c in record.containers.values() {
        if let Err(e) = links::detach_container(c) {
            first_err.get_or_insert(e);
        }
    }
    if let Err(e) = links::delete_link(&record.bridge) {
        first_err.get_or_insert(e);
    }
    first_err.map_or(Ok(()), Err)
}
