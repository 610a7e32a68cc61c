//! Choosing an app's subnet.

use super::error::NetError;
use super::rtnl::Rtnl;
use ipnet::Ipv4Net;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::IpAddr;

/// The default pool (`subnet-pool` in tfctl-config(5)).
pub const DEFAULT_POOL: &str = "10.89.0.0/16";

/// The routing table that holds local and broadcast routes, which duplicate the addresses.
const RT_TABLE_LOCAL: u8 = 255;

/// Picks the app's subnet: `requested` if given (checked against `taken`, other apps' recorded
/// subnets, and the host), else the first /24 of `pool` that overlaps no host route or address
/// and nothing in `taken`. The caller excludes this app's own record from `taken`.
pub fn allocate(
    requested: Option<Ipv4Net>,
    pool: Ipv4Net,
    taken: &[Ipv4Net],
) -> Result<Ipv4Net, NetError> {
    let host = host_networks()?;
    choose(requested, pool, taken, &host)
}

/// The pure part of [`allocate`], given the host's networks.
pub fn choose(
    requested: Option<Ipv4Net>,
    pool: Ipv4Net,
    taken: &[Ipv4Net],
    host: &[Ipv4Net],
) -> Result<Ipv4Net, NetError> {
    let clash = |n: &Ipv4Net| -> Option<String> {
        if let Some(t) = taken.iter().find(|t| overlaps(n, t)) {
            return Some(format!("{t}, the subnet of another tfctl app"));
        }
        host.iter()
            .find(|h| overlaps(n, h))
            .map(|h| format!("{h}, a route or address of the host"))
    };
    if let Some(n) = requested {
        let n = n.trunc();
        return match clash(&n) {
            Some(with) => Err(NetError::SubnetTaken {
                subnet: n.to_string(),
                with,
            }),
            None => Ok(n),
        };
    }
    let pool = pool.trunc();
    let candidates: Box<dyn Iterator<Item = Ipv4Net>> = if pool.prefix_len() >= 24 {
        Box::new(std::iter::once(pool))
    } else {
        Box::new(
            pool.subnets(24)
                .map_err(|e| NetError::Invalid(e.to_string()))?,
        )
    };
    for n in candidates {
        if clash(&n).is_none() {
            return Ok(n);
        }
    }
    Err(NetError::PoolExhausted {
        pool: pool.to_string(),
    })
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The host's IPv4 networks: every route except default routes and the local table, and every
/// address with its prefix.
pub fn host_networks() -> Result<Vec<Ipv4Net>, NetError> {
    let mut rt = Rtnl::open()?;
    let mut nets = Vec::new();
    let mut route = RouteMessage::default();
    route.header.address_family = AddressFamily::Inet;
    for m in rt.dump(
        RouteNetlinkMessage::GetRoute(route),
        "listing the host's routes",
    )? {
        let RouteNetlinkMessage::NewRoute(r) = m else {
            continue;
        };
        let table = r
            .attributes
            .iter()
            .find_map(|a| {
                if let RouteAttribute::Table(t) = a {
                    Some(*t)
                } else {
                    None
                }
            })
            .unwrap_or(r.header.table as u32);
        if table == RT_TABLE_LOCAL as u32 || r.header.destination_prefix_length == 0 {
            continue;
        }
        let dst = r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(d)) => Some(*d),
            _ => None,
        });
        if let Some(d) = dst {
            if let Ok(n) = Ipv4Net::new(d, r.header.destination_prefix_length) {
                nets.push(n.trunc());
            }
        }
    }
    let mut addr = AddressMessage::default();
    addr.header.family = AddressFamily::Inet;
    for m in rt.dump(
        RouteNetlinkMessage::GetAddress(addr),
        "listing the host's addresses",
    )? {
        let RouteNetlinkMessage::NewAddress(a) = m else {
            continue;
        };
        for at in &a.attributes {
            if let AddressAttribute::Local(IpAddr::V4(ip))
            | AddressAttribute::Address(IpAddr::V4(ip)) = at
            {
                if let Ok(n) = Ipv4Net::new(*ip, a.header.prefix_len) {
                    nets.push(n.trunc());
                }
            }
        }
    }
    nets.sort();
    nets.dedup();
    Ok(nets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn first_free_24_skips_host_and_other_apps() {
        let pool = n("10.89.0.0/16");
        let host = [n("10.89.0.0/24"), n("10.89.1.7/32"), n("192.168.1.0/24")];
        let taken = [n("10.89.2.0/24")];
        assert_eq!(
            choose(None, pool, &taken, &host).unwrap(),
            n("10.89.3.0/24")
        );
        assert_eq!(choose(None, pool, &[], &[]).unwrap(), n("10.89.0.0/24"));
        // A host route covering the whole pool exhausts it.
        assert!(matches!(
            choose(None, pool, &[], &[n("10.0.0.0/8")]),
            Err(NetError::PoolExhausted { .. })
        ));
    }

    #[test]
    fn requested_subnet_is_checked() {
        let pool = n("10.89.0.0/16");
        assert_eq!(
            choose(Some(n("10.90.7.9/24")), pool, &[], &[]).unwrap(),
            n("10.90.7.0/24")
        );
        let e = choose(Some(n("10.90.7.0/24")), pool, &[n("10.90.0.0/16")], &[]).unwrap_err();
        assert!(e.to_string().contains("another tfctl app"), "{e}");
        let e = choose(Some(n("10.90.7.0/24")), pool, &[], &[n("10.90.7.128/25")]).unwrap_err();
        assert!(e.to_string().contains("of the host"), "{e}");
    }
}
