//! Serialisable records of everything the network layer creates, so that `down`, also after a
//! crash, removes exactly those objects and nothing found by a name pattern.

use super::error::NetError;
use super::names::AppId;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// One app's network: written to the app's record before the objects are created (so a crash
/// in between still leaves a record that names them), kept across `down`/`up` for the addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRecord {
    pub app_id: AppId,
    /// The bridge holding the gateway address (the app's anchor; see the module docs).
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// The host's address in the subnet (first host address), which containers route through.
    pub gateway: Ipv4Addr,
    /// The app's nftables table (family inet).
    pub table: String,
    /// Fixed addresses by container name; they survive restarts and `down`/`up`.
    pub containers: BTreeMap<String, ContainerAddr>,
}

/// A container's fixed place in the app's network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerAddr {
    pub address: Ipv4Addr,
    /// The host-side veth name (derived from the address, so it is stable too).
    pub veth: String,
}

impl NetRecord {
    /// Plans an app's network: names and gateway, no side effect.
    pub fn plan(app_id: AppId, subnet: Ipv4Net) -> Result<NetRecord, NetError> {
        if subnet.prefix_len() < 16 || subnet.prefix_len() > 29 {
            return Err(NetError::Invalid(format!(
                "subnet {subnet}: tfctl needs a prefix between /16 and /29 (container numbers must fit the veth name)"
            )));
        }
        let subnet = subnet.trunc();
        let gateway = Ipv4Addr::from(u32::from(subnet.network()) + 1);
        Ok(NetRecord {
            bridge: app_id.bridge(),
            table: app_id.table(),
            app_id,
            subnet,
            gateway,
            containers: BTreeMap::new(),
        })
    }

    /// The container's fixed address, assigning the lowest free one on first use.
    pub fn assign(&mut self, container: &str) -> Result<ContainerAddr, NetError> {
        if let Some(c) = self.containers.get(container) {
            return Ok(c.clone());
        }
        let base = u32::from(self.subnet.network());
        let last = u32::from(self.subnet.broadcast());
        let used: std::collections::BTreeSet<Ipv4Addr> =
            self.containers.values().map(|c| c.address).collect();
        let addr = (base + 2..last)
            .map(Ipv4Addr::from)
            .find(|a| !used.contains(a))
            .ok_or_else(|| {
                NetError::Invalid(format!("subnet {} has no free address left", self.subnet))
            })?;
        let c = ContainerAddr {
            address: addr,
            veth: self.app_id.veth(u32::from(addr) - base),
        };
        self.containers.insert(container.to_string(), c.clone());
        Ok(c)
    }

    /// Forgets a container's address (`down --volumes`, or a container removed from the file).
    pub fn release(&mut self, container: &str) {
        self.containers.remove(container);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_fixed_and_reused_lowest_first() {
        let id = AppId::derive(std::path::Path::new("/r"), "a");
        let mut r = NetRecord::plan(id, "10.89.3.0/24".parse().unwrap()).unwrap();
        assert_eq!(r.gateway, Ipv4Addr::new(10, 89, 3, 1));
        let a = r.assign("a").unwrap();
        let b = r.assign("b").unwrap();
        assert_eq!(a.address, Ipv4Addr::new(10, 89, 3, 2));
        assert_eq!(b.address, Ipv4Addr::new(10, 89, 3, 3));
        assert_eq!(r.assign("a").unwrap(), a);
        r.release("a");
        assert_eq!(r.assign("c").unwrap().address, Ipv4Addr::new(10, 89, 3, 2));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<NetRecord>(&json).unwrap(), r);
        assert!(NetRecord::plan(r.app_id.clone(), "10.0.0.0/8".parse().unwrap()).is_err());
    }

    #[test]
    fn small_subnet_runs_out() {
        let id = AppId::derive(std::path::Path::new("/r"), "a");
        let mut r = NetRecord::plan(id, "10.89.3.0/29".parse().unwrap()).unwrap();
        for i in 0..5 {
            r.assign(&format!("c{i}")).unwrap();
        }
        assert!(r.assign("one-too-many").is_err());
    }
}
