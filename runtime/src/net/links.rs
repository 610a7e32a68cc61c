//! Links, addresses and routes of an app's network, over rtnetlink.
//!
//! Layout (why routed /32 veths, see the `net` module docs): the app's bridge `tfb<id>` holds the
//! gateway address with the subnet's prefix and has no ports; each container gets a veth pair
//! whose container end is created directly inside the container's namespace (IFLA_NET_NS_FD on
//! the peer: about 1 ms, where create-then-move costs 15-21 ms) and named `eth0` there, with the
//! container's address as a /32 peer of the gateway and a default route through it. The host end
//! `tfv<id><n>` carries the gateway address with the container as its /32 peer, so the host routes
//! to each container over its own veth and every packet between containers is routed (and seen by
//! the inet hooks), never switched.

use super::error::NetError;
use super::netns::{self, has_ipv6, write_if_sysctl, write_sysctl};
use super::record::{ContainerAddr, NetRecord};
use super::rtnl::{Request, Rtnl};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

/// The container-side interface name.
pub const CONTAINER_IFNAME: &str = "eth0";

/// Creates the app's bridge with the gateway address (no IPv6 on it). Fails if it exists.
pub fn create_bridge(record: &NetRecord) -> Result<(), NetError> {
    let mut rt = Rtnl::open()?;
    let mut m = LinkMessage::default();
    m.attributes
        .push(LinkAttribute::IfName(record.bridge.clone()));
    m.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge,
        )]));
    rt.execute(vec![Request::new(
        RouteNetlinkMessage::NewLink(m),
        NLM_F_CREATE | NLM_F_EXCL,
        format!("creating bridge {}", record.bridge),
    )])?;
    if has_ipv6() {
        write_if_sysctl("ipv6", &record.bridge, "disable_ipv6", "1")?;
    }
    let index = link_index(&mut rt, &record.bridge)?;
    rt.execute(vec![
        Request::new(
            RouteNetlinkMessage::NewAddress(addr_msg(
                index,
                record.gateway,
                record.gateway,
                record.subnet.prefix_len(),
            )),
            NLM_F_CREATE | NLM_F_EXCL,
            format!(
                "adding {}/{} to bridge {}",
                record.gateway,
                record.subnet.prefix_len(),
                record.bridge
            ),
        ),
        Request::new(
            set_up(index),
            0,
            format!("bringing up bridge {}", record.bridge),
        ),
    ])
}

/// Wires one container: veth pair (container end created inside `netns` as `eth0`), addresses,
/// routes, `lo` up and IPv6 disabled in the container's namespace. The caller has assigned the
/// address with [`NetRecord::assign`].
pub fn attach_container(
    record: &NetRecord,
    c: &ContainerAddr,
    netns: BorrowedFd<'_>,
) -> Result<(), NetError> {
    let mut rt = Rtnl::open()?;
    let mut peer = LinkMessage::default();
    peer.attributes
        .push(LinkAttribute::IfName(CONTAINER_IFNAME.into()));
    peer.attributes
        .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(c.veth.clone()));
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    rt.execute(vec![Request::new(
        RouteNetlinkMessage::NewLink(m),
        NLM_F_CREATE | NLM_F_EXCL,
        format!(
            "creating veth {} (peer {} in the container's namespace)",
            c.veth, CONTAINER_IFNAME
        ),
    )])?;

    let gateway = record.gateway;
    let address = c.address;
    let wired = std::thread::scope(|s| {
        // The container side, on a thread inside the container's namespace, while this thread
        // finishes the host side.
        let inside = s.spawn(move || {
            netns::enter(netns)?;
            configure_inside(address, gateway)
        });
        let host = configure_host_end(&mut rt, c, gateway);
        let inside = inside
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        host.and(inside)
    });
    if wired.is_err() {
        // Leave nothing half-wired; the error that matters is the first one.
        let _ = delete_link(&c.veth);
    }
    wired
}

fn configure_host_end(rt: &mut Rtnl, c: &ContainerAddr, gateway: Ipv4Addr) -> Result<(), NetError> {
    if has_ipv6() {
        write_if_sysctl("ipv6", &c.veth, "disable_ipv6", "1")?;
    }
    // Lets the host's own connections to a loopback-published port be DNATed out of this veth
    // (the route lookup refuses a 127/8 source otherwise). The app's table drops every packet
    // from the app's veths to 127/8 (CVE-2020-8558), and this setting dies with the veth.
    write_if_sysctl("ipv4", &c.veth, "route_localnet", "1")?;
    let index = link_index(rt, &c.veth)?;
    rt.execute(vec![
        Request::new(
            RouteNetlinkMessage::NewAddress(addr_msg(index, gateway, c.address, 32)),
            NLM_F_CREATE | NLM_F_EXCL,
            format!("adding {gateway} peer {}/32 to {}", c.address, c.veth),
        ),
        Request::new(set_up(index), 0, format!("bringing up {}", c.veth)),
    ])
}

fn configure_inside(address: Ipv4Addr, gateway: Ipv4Addr) -> Result<(), NetError> {
    if has_ipv6() {
        // tfctl is IPv4-only: no link-local addresses, no router solicitations.
        write_sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
        write_sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
    }
    let mut rt = Rtnl::open()?;
    let index = link_index(&mut rt, CONTAINER_IFNAME)?;
    let mut route = RouteMessage::default();
    route.header = RouteHeader {
        address_family: AddressFamily::Inet,
        table: RouteHeader::RT_TABLE_MAIN,
        protocol: RouteProtocol::Static,
        scope: RouteScope::Universe,
        kind: RouteType::Unicast,
        ..RouteHeader::default()
    };
    route
        .attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
    route.attributes.push(RouteAttribute::Oif(index));
    rt.execute(vec![
        Request::new(set_up(1), 0, "bringing up lo in the container"),
        Request::new(
            RouteNetlinkMessage::NewAddress(addr_msg(index, address, gateway, 32)),
            NLM_F_CREATE | NLM_F_EXCL,
            format!("adding {address} peer {gateway}/32 to {CONTAINER_IFNAME} in the container"),
        ),
        Request::new(
            set_up(index),
            0,
            format!("bringing up {CONTAINER_IFNAME} in the container"),
        ),
        Request::new(
            RouteNetlinkMessage::NewRoute(route),
            NLM_F_CREATE | NLM_F_EXCL,
            format!("adding the default route via {gateway} in the container"),
        ),
    ])
}

/// Deletes a link by name; a link that is already gone is fine (idempotent teardown).
pub fn delete_link(name: &str) -> Result<(), NetError> {
    let mut rt = Rtnl::open()?;
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    match rt.execute(vec![Request::new(
        RouteNetlinkMessage::DelLink(m),
        0,
        format!("deleting link {name}"),
    )]) {
        Err(e) if e.errno() == Some(libc::ENODEV) => Ok(()),
        r => r,
    }
}

/// Removes one container's veth pair (the host end; the kernel removes its peer).
pub fn detach_container(c: &ContainerAddr) -> Result<(), NetError> {
    delete_link(&c.veth)
}

pub(crate) fn link_index(rt: &mut Rtnl, name: &str) -> Result<u32, NetError> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    let answers = rt.get(
        RouteNetlinkMessage::GetLink(m),
        &format!("looking up link {name}"),
    )?;
    answers
        .into_iter()
        .find_map(|a| match a {
            RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
            _ => None,
        })
        .ok_or_else(|| NetError::Decode {
            what: format!("looking up link {name}"),
            detail: "no link in the answer".into(),
        })
}

fn set_up(index: u32) -> RouteNetlinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    RouteNetlinkMessage::SetLink(m)
}

/// An IPv4 address `local` on `index`; `peer` differs from `local` for point-to-point /32s.
fn addr_msg(index: u32, local: Ipv4Addr, peer: Ipv4Addr, prefix: u8) -> AddressMessage {
    let mut a = AddressMessage::default();
    a.header.family = AddressFamily::Inet;
    a.header.prefix_len = prefix;
    a.header.index = index;
    a.header.scope = AddressScope::Universe;
    a.attributes
        .push(AddressAttribute::Local(IpAddr::V4(local)));
    a.attributes
        .push(AddressAttribute::Address(IpAddr::V4(peer)));
    a
}
