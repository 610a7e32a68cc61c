//! From a [`FirewallSpec`] to the app's table: sets, chains, rules and set elements.
//!
//! One table per app (`tfctl_<id>`, family inet), so an app's firewall is replaced or removed as
//! one object and two apps (or two state roots) never touch each other's rules. Every chain has
//! `policy accept` and each drop names the app's own interfaces, so nothing outside tfctl is
//! affected; the drops match the app's veth *prefix*, so a veth is covered from the moment it
//! exists, before its container has been added to the sets (fail closed).
//! Containers are identified by their host-side veth: the anti-spoofing rule admits a packet
//! from a veth only if its source is that veth's container address, after which the source
//! address names the container. Per-container data lives in sets, so adding a container adds
//! set elements only and the rule count does not grow with the app.
//!
//! Each set serves one path, and a chain looks up only the sets of its own path: `in_*` and
//! `out_*` (addresses: containers, CIDRs, `any`) only in `forward`, `host_*` only in `output`
//! and `tohost_*` only in `input`. So an address rule never opens the host: a CIDR that covers
//! one of the host's addresses (the app's gateway, another app's, an uplink) opens the networks
//! behind the host, never the host itself, whose sole keys are `from="host"`/`from="any"` and
//! `to="host"`. Link-local destinations (169.254.0.0/16, where cloud metadata services answer)
//! are dropped in `guard`, before any NAT, unless a CIDR inside 169.254.0.0/16 names them: a
//! wider CIDR (`0.0.0.0/0`) is cut around them, and the host's own link-local addresses stay
//! closed even to `to="host"`.

use super::compose::{RuleDef, TCP, UDP};
use super::disjoint::{disjoint, Rect};
use super::spec::{Destination, Egress, FirewallSpec, Proto, Source};
use crate::net::error::NetError;
use crate::net::nft::expr::{CmpOp, Field, Verdict};
use crate::net::nft::set::{Elem, KeyBuilder, KeyField, SetDef};
use crate::net::record::NetRecord;
use ipnet::Ipv4Net;
use nftnl::ProtoFamily;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// A base chain.
#[derive(Clone, Debug)]
pub struct ChainDef {
    pub name: &'static str,
    pub nat: bool,
    pub hook: nftnl::Hook,
    pub hook_name: &'static str,
    pub priority: i32,
    pub rules: Vec<RuleDef>,
}

/// Everything in an app's table.
#[derive(Clone, Debug)]
pub struct Ruleset {
    pub table: String,
    pub sets: Vec<SetDef>,
    pub chains: Vec<ChainDef>,
    /// Elements by set name, each with the container it belongs to (for error labels).
    pub elements: BTreeMap<String, Vec<(Elem, String)>>,
}

// Set names; `in_*` admit sources to containers, `host_*` the host, `out_*` and `tohost_*`
// let containers reach destinations.
const SETS: &[(&str, &[KeyField], bool)] = &[
    ("veth_addr", &[KeyField::Ipv4Addr, KeyField::Ifname], false),
    ("egress_deny", &[KeyField::Ifname], false),
    (
        "in_tcp",
        &[KeyField::Ipv4Addr, KeyField::Ifname, KeyField::InetService],
        true,
    ),
    (
        "in_udp",
        &[KeyField::Ipv4Addr, KeyField::Ifname, KeyField::InetService],
        true,
    ),
    ("in_all", &[KeyField::Ipv4Addr, KeyField::Ifname], true),
    ("host_tcp", &[KeyField::Ifname, KeyField::InetService], true),
    ("host_udp", &[KeyField::Ifname, KeyField::InetService], true),
    ("host_all", &[KeyField::Ifname], false),
    (
        "out_tcp",
        &[KeyField::Ipv4Addr, KeyField::Ifname, KeyField::InetService],
        true,
    ),
    (
        "out_udp",
        &[KeyField::Ipv4Addr, KeyField::Ifname, KeyField::InetService],
        true,
    ),
    ("out_all", &[KeyField::Ipv4Addr, KeyField::Ifname], true),
    (
        "tohost_tcp",
        &[KeyField::Ifname, KeyField::InetService],
        true,
    ),
    (
        "tohost_udp",
        &[KeyField::Ifname, KeyField::InetService],
        true,
    ),
    ("tohost_all", &[KeyField::Ifname], false),
];

fn set_id(name: &str) -> u32 {
    SETS.iter()
        .position(|(n, _, _)| *n == name)
        .expect("known set") as u32
        + 1
}

const ALL_V4: (Ipv4Addr, Ipv4Addr) = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST);

/// Link-local IPv4, where cloud metadata services answer (169.254.169.254).
fn link_local() -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(169, 254, 0, 0), 16).expect("a valid prefix")
}

fn range(net: &Ipv4Net) -> (Ipv4Addr, Ipv4Addr) {
    (net.network(), net.broadcast())
}

/// The address ranges an `allow-egress to=CIDR` opens: the CIDR itself when it lies inside
/// 169.254.0.0/16 (the user named link-local), else the CIDR without 169.254.0.0/16, so that
/// `to="0.0.0.0/0"` lets a container out without opening the metadata service.
fn egress_ranges(net: &Ipv4Net) -> Vec<(Ipv4Addr, Ipv4Addr)> {
    let ll = link_local();
    if ll.contains(net) || !net.contains(&ll) {
        // Inside link-local, or disjoint from it (two prefixes either nest or are disjoint).
        return vec![range(net)];
    }
    let (a, b) = (u32::from(net.network()), u32::from(net.broadcast()));
    let (la, lb) = (u32::from(ll.network()), u32::from(ll.broadcast()));
    let mut out = Vec::new();
    if a < la {
        out.push((Ipv4Addr::from(a), Ipv4Addr::from(la - 1)));
    }
    if lb < b {
        out.push((Ipv4Addr::from(lb + 1), Ipv4Addr::from(b)));
    }
    out
}

/// Which per-protocol sets a (proto, ports) pair goes to, with the port range.
fn proto_sets(
    proto: Option<Proto>,
    ports: Option<super::spec::PortRange>,
) -> Vec<(&'static str, Option<(u16, u16)>)> {
    let pr = ports.map(|p| (p.first, p.last)).unwrap_or((0, 65535));
    match (proto, ports) {
        (None, None) => vec![("all", None)],
        (None, Some(_)) => vec![("tcp", Some(pr)), ("udp", Some(pr))],
        (Some(Proto::Tcp), _) => vec![("tcp", Some(pr))],
        (Some(Proto::Udp), _) => vec![("udp", Some(pr))],
    }
}

/// The DNAT rules of one publish: for packets arriving from elsewhere (none for a loopback
/// host-ip, which must stay unreachable from other hosts), and for the host's own connections.
fn publish_rules(
    container: &str,
    addr: Ipv4Addr,
    p: &super::spec::Publish,
) -> (Option<RuleDef>, RuleDef) {
    let proto = if p.proto == Proto::Udp { UDP } else { TCP };
    let label = format!(
        "publish {}:{}/{} to {}:{}",
        p.host_ip,
        p.host_port,
        if proto == UDP { "udp" } else { "tcp" },
        container,
        p.container_port
    );
    let loopback: Ipv4Net = "127.0.0.0/8".parse().unwrap();
    if p.host_ip.is_unspecified() {
        // From other hosts: any local address but loopback; from the host: any local address.
        let pre = RuleDef::new(label.clone())
            .fib_daddr_local()
            .addr(Field::Daddr, loopback, CmpOp::Neq)
            .dport(proto, p.host_port)
            .dnat(addr, p.container_port);
        let local = RuleDef::new(label)
            .fib_daddr_local()
            .dport(proto, p.host_port)
            .dnat(addr, p.container_port);
        (Some(pre), local)
    } else {
        let host = Ipv4Net::from(p.host_ip);
        let rule = RuleDef::new(label)
            .addr(Field::Daddr, host, CmpOp::Eq)
            .dport(proto, p.host_port)
            .dnat(addr, p.container_port);
        ((!p.host_ip.is_loopback()).then(|| rule.clone()), rule)
    }
}

/// Builds the app's ruleset.
pub fn build(record: &NetRecord, spec: &FirewallSpec) -> Result<Ruleset, NetError> {
    let table = record.table.clone();
    let prefix = format!("{}*", record.app_id.veth_prefix());
    let sets: Vec<SetDef> = SETS
        .iter()
        .map(|(name, fields, interval)| SetDef {
            table: table.clone(),
            family: ProtoFamily::Inet,
            name: name.to_string(),
            id: set_id(name),
            fields: fields.to_vec(),
            interval: *interval,
        })
        .collect();
    let interval_of = |name: &str| {
        SETS.iter()
            .find(|(n, _, _)| *n == name)
            .map(|s| s.2)
            .unwrap_or(false)
    };

    let lookup_addr = |name: &str| -> Result<_, NetError> {
        record.containers.get(name).cloned().ok_or_else(|| {
            NetError::Invalid(format!("container {name} has no address in app record {}; assign one before applying the firewall", record.app_id))
        })
    };

    let mut elements: BTreeMap<String, Vec<(Elem, String)>> = BTreeMap::new();
    let mut put = |set: &str, k: &KeyBuilder, owner: &str| {
        elements
            .entry(set.to_string())
            .or_default()
            .push((k.build(interval_of(set)), owner.to_string()));
    };
    // Ranges for the interval sets, gathered per (set, veth) and made disjoint before they
    // become elements: the kernel's concatenated-range sets refuse overlapping elements, and
    // `allow from="any" port=80` next to `allow from="a" port=80` is ordinary input.
    let mut rects: BTreeMap<(String, String, String), Vec<Rect>> = BTreeMap::new();
    let mut rect = |set: String,
                    veth: &str,
                    owner: &str,
                    addr: Option<(Ipv4Addr, Ipv4Addr)>,
                    ports: Option<(u16, u16)>| {
        let r = Rect {
            addr: addr.map_or((0, 0), |(a, b)| (u32::from(a) as u64, u32::from(b) as u64)),
            port: ports.map_or((0, 0), |(a, b)| (a as u64, b as u64)),
        };
        rects
            .entry((set, veth.to_string(), owner.to_string()))
            .or_default()
            .push(r);
    };
    let mut nat_pre = Vec::new();
    let mut nat_out = Vec::new();
    for c in &spec.containers {
        let me = lookup_addr(&c.name)?;
        put(
            "veth_addr",
            KeyBuilder::default()
                .addr_range(me.address, me.address)
                .ifname(&me.veth),
            &c.name,
        );
        if c.egress == Egress::Deny {
            put(
                "egress_deny",
                KeyBuilder::default().ifname(&me.veth),
                &c.name,
            );
        }
        for a in &c.allow {
            let src = match &a.from {
                Source::Container(n) => {
                    let peer = lookup_addr(n)?;
                    Some((peer.address, peer.address))
                }
                Source::Any => Some(ALL_V4),
                Source::Cidr(net) => Some(range(net)),
                Source::Host => None,
            };
            // `any` is everyone, the host included; a container or CIDR source is matched on
            // the forward path only (see the module docs).
            let host = matches!(a.from, Source::Host | Source::Any);
            for (p, ports) in proto_sets(a.proto, a.ports) {
                if let Some(src) = src {
                    rect(format!("in_{p}"), &me.veth, &c.name, Some(src), ports);
                }
                if host {
                    rect(format!("host_{p}"), &me.veth, &c.name, None, ports);
                }
            }
        }
        for e in &c.allow_egress {
            let dsts: Vec<_> = match &e.to {
                Destination::Cidr(net) => egress_ranges(net).into_iter().map(Some).collect(),
                Destination::Host => vec![None],
            };
            for (p, ports) in proto_sets(e.proto, e.ports) {
                for dst in &dsts {
                    let set = if dst.is_some() {
                        format!("out_{p}")
                    } else {
                        format!("tohost_{p}")
                    };
                    rect(set, &me.veth, &c.name, *dst, ports);
                }
            }
        }
        for p in &c.publish {
            let (pre, local) = publish_rules(&c.name, me.address, p);
            nat_pre.extend(pre);
            nat_out.push(local);
        }
    }

    for ((set, veth, owner), rs) in rects {
        let fields = &SETS
            .iter()
            .find(|(n, _, _)| *n == set)
            .expect("known set")
            .1;
        let has_addr = fields.contains(&KeyField::Ipv4Addr);
        let has_port = fields.contains(&KeyField::InetService);
        for r in disjoint(rs) {
            let mut k = KeyBuilder::default();
            if has_addr {
                k.addr_range(
                    Ipv4Addr::from(r.addr.0 as u32),
                    Ipv4Addr::from(r.addr.1 as u32),
                );
            }
            k.ifname(&veth);
            if has_port {
                k.port_range(r.port.0 as u16, r.port.1 as u16);
            }
            put(&set, &k, &owner);
        }
    }

    let lk = |r: RuleDef, fields: &[Field], proto: Option<u8>, set: &str| {
        r.lookup(fields, proto, set, set_id(set), false)
    };
    let iif = |label: &str| RuleDef::new(label).ifname(Field::Iifname, &prefix, CmpOp::Eq);
    let oif = |label: &str| RuleDef::new(label).ifname(Field::Oifname, &prefix, CmpOp::Eq);
    let accept = Verdict::Accept;
    let drop = Verdict::Drop;
    let subnet = record.subnet;

    let mut guard = vec![
        iif("drop IPv6 from the app's containers")
            .nfproto_ipv6()
            .verdict(drop),
        iif("anti-spoofing: drop packets whose source is not their veth's container")
            .lookup(
                &[Field::Saddr, Field::Iifname],
                None,
                "veth_addr",
                set_id("veth_addr"),
                true,
            )
            .verdict(drop),
        iif("drop packets from containers to 127.0.0.0/8 (CVE-2020-8558)")
            .addr(Field::Daddr, "127.0.0.0/8".parse().unwrap(), CmpOp::Eq)
            .verdict(drop),
    ];
    // The `out_*` lookups; `only` narrows them to destinations in one network.
    let egress_lookups = |chain: &str, only: Option<Ipv4Net>| {
        let start = |what: &str| {
            let r = RuleDef::new(format!("{chain}: allow-egress {what}"));
            match only {
                Some(net) => r.addr(Field::Daddr, net, CmpOp::Eq),
                None => r,
            }
        };
        vec![
            lk(
                start("tcp"),
                &[Field::Daddr, Field::Iifname, Field::Dport],
                Some(TCP),
                "out_tcp",
            )
            .verdict(accept),
            lk(
                start("udp"),
                &[Field::Daddr, Field::Iifname, Field::Dport],
                Some(UDP),
                "out_udp",
            )
            .verdict(accept),
            lk(
                start("all protocols"),
                &[Field::Daddr, Field::Iifname],
                None,
                "out_all",
            )
            .verdict(accept),
        ]
    };
    // Link-local is dropped here, before NAT, so that it stays closed also when the host
    // translates it to one of its own addresses (a local metadata proxy); only an `allow-egress`
    // CIDR inside 169.254.0.0/16 (see `egress_ranges`) passes, and then on the forward path only.
    guard.extend(egress_lookups("guard: link-local", Some(link_local())));
    guard.push(
        iif("guard: drop link-local destinations (169.254.0.0/16)")
            .addr(Field::Daddr, link_local(), CmpOp::Eq)
            .verdict(drop),
    );
    let ingress_lookups = |chain: &str| {
        vec![
            lk(
                RuleDef::new(format!("{chain}: allow tcp")),
                &[Field::Saddr, Field::Oifname, Field::Dport],
                Some(TCP),
                "in_tcp",
            )
            .verdict(accept),
            lk(
                RuleDef::new(format!("{chain}: allow udp")),
                &[Field::Saddr, Field::Oifname, Field::Dport],
                Some(UDP),
                "in_udp",
            )
            .verdict(accept),
            lk(
                RuleDef::new(format!("{chain}: allow all protocols")),
                &[Field::Saddr, Field::Oifname],
                None,
                "in_all",
            )
            .verdict(accept),
        ]
    };

    // Only `to="host"` opens the host: the `out_*` (CIDR) sets are for the forward path.
    let mut input = vec![
        iif("input: replies to containers' connections")
            .ct_established()
            .verdict(accept),
        iif("input: drop the host's link-local addresses (169.254.0.0/16)")
            .addr(Field::Daddr, link_local(), CmpOp::Eq)
            .verdict(drop),
    ];
    input.extend([
        lk(
            RuleDef::new("input: allow-egress to host, tcp"),
            &[Field::Iifname, Field::Dport],
            Some(TCP),
            "tohost_tcp",
        )
        .verdict(accept),
        lk(
            RuleDef::new("input: allow-egress to host, udp"),
            &[Field::Iifname, Field::Dport],
            Some(UDP),
            "tohost_udp",
        )
        .verdict(accept),
        lk(
            RuleDef::new("input: allow-egress to host, all protocols"),
            &[Field::Iifname],
            None,
            "tohost_all",
        )
        .verdict(accept),
        iif("input: drop containers' traffic to the host").verdict(drop),
    ]);

    let mut forward = vec![
        oif("forward: replies to containers")
            .ct_established()
            .verdict(accept),
        iif("forward: replies from containers")
            .ct_established()
            .verdict(accept),
        oif("forward: connections a publish translated")
            .ct_dnat()
            .verdict(accept),
    ];
    forward.extend(ingress_lookups("forward"));
    forward.push(oif("forward: drop what no allow admits").verdict(drop));
    forward.extend(egress_lookups("forward", None));
    forward.push(
        lk(
            RuleDef::new("forward: egress deny"),
            &[Field::Iifname],
            None,
            "egress_deny",
        )
        .verdict(drop),
    );

    let output = vec![
        oif("output: replies to the host's connections")
            .ct_established()
            .verdict(accept),
        oif("output: connections a publish translated")
            .ct_dnat()
            .verdict(accept),
        lk(
            RuleDef::new("output: allow from host, tcp"),
            &[Field::Oifname, Field::Dport],
            Some(TCP),
            "host_tcp",
        )
        .verdict(accept),
        lk(
            RuleDef::new("output: allow from host, udp"),
            &[Field::Oifname, Field::Dport],
            Some(UDP),
            "host_udp",
        )
        .verdict(accept),
        lk(
            RuleDef::new("output: allow from host, all protocols"),
            &[Field::Oifname],
            None,
            "host_all",
        )
        .verdict(accept),
        // Only `from="host"` and `from="any"` (both in `host_*`) admit the host: the `in_*`
        // (container and CIDR) sets are for the forward path.
        oif("output: drop the host's traffic no allow admits").verdict(drop),
    ];

    let snat = vec![
        RuleDef::new("masquerade containers' traffic leaving tfctl's interfaces")
            .addr(Field::Saddr, subnet, CmpOp::Eq)
            .ifname(Field::Oifname, "tfv*", CmpOp::Neq)
            .masquerade(),
        oif("masquerade loopback-published connections")
            .addr(Field::Saddr, "127.0.0.0/8".parse().unwrap(), CmpOp::Eq)
            .masquerade(),
        oif("masquerade published connections from the app's own containers (hairpin)")
            .ct_dnat()
            .addr(Field::Saddr, subnet, CmpOp::Eq)
            .masquerade(),
    ];

    use nftnl::Hook;
    let chains = vec![
        ChainDef {
            name: "guard",
            nat: false,
            hook: Hook::PreRouting,
            hook_name: "prerouting",
            priority: -300,
            rules: guard,
        },
        ChainDef {
            name: "input",
            nat: false,
            hook: Hook::In,
            hook_name: "input",
            priority: 0,
            rules: input,
        },
        ChainDef {
            name: "forward",
            nat: false,
            hook: Hook::Forward,
            hook_name: "forward",
            priority: 0,
            rules: forward,
        },
        ChainDef {
            name: "output",
            nat: false,
            hook: Hook::Out,
            hook_name: "output",
            priority: 0,
            rules: output,
        },
        ChainDef {
            name: "nat_pre",
            nat: true,
            hook: Hook::PreRouting,
            hook_name: "prerouting",
            priority: -100,
            rules: nat_pre,
        },
        ChainDef {
            name: "nat_local",
            nat: true,
            hook: Hook::Out,
            hook_name: "output",
            priority: -100,
            rules: nat_out,
        },
        ChainDef {
            name: "nat_post",
            nat: true,
            hook: Hook::PostRouting,
            hook_name: "postrouting",
            priority: 100,
            rules: snat,
        },
    ];
    Ok(Ruleset {
        table,
        sets,
        chains,
        elements,
    })
}

impl Ruleset {
    /// The table in nft syntax without elements (for the golden tests and for humans).
    pub fn nft_text(&self) -> String {
        let mut s = format!("table inet {} {{\n", self.table);
        for set in &self.sets {
            let ty: Vec<&str> = set
                .fields
                .iter()
                .map(|f| match f {
                    KeyField::Ipv4Addr => "ipv4_addr",
                    KeyField::Ifname => "ifname",
                    KeyField::InetService => "inet_service",
                })
                .collect();
            s += &format!("  set {} {{\n    type {}\n", set.name, ty.join(" . "));
            if set.interval {
                s += "    flags interval\n";
            }
            s += "  }\n";
        }
        for c in &self.chains {
            s += &format!(
                "  chain {} {{\n    type {} hook {} priority {}; policy accept;\n",
                c.name,
                if c.nat { "nat" } else { "filter" },
                c.hook_name,
                c.priority
            );
            for r in &c.rules {
                s += &format!("    {}\n", r.text);
            }
            s += "  }\n";
        }
        s + "}\n"
    }
}

impl Ruleset {
    /// Every rule as (chain, expressions printed as `nft --debug=netlink` prints them), in order.
    pub fn expr_texts(&self) -> Vec<(String, String)> {
        let table = nftnl::Table::new(
            std::ffi::CString::new(self.table.as_str()).unwrap(),
            ProtoFamily::Inet,
        );
        let mut out = Vec::new();
        for c in &self.chains {
            let chain = nftnl::Chain::new(std::ffi::CString::new(c.name).unwrap(), &table);
            for r in &c.rules {
                let mut rule = nftnl::Rule::new(&chain);
                for e in &r.exprs {
                    rule.add_expr(e);
                }
                out.push((c.name.to_string(), crate::net::nft::expr::rule_text(&rule)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(cidr: &str) -> Vec<(String, String)> {
        egress_ranges(&cidr.parse().unwrap())
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn a_cidr_around_link_local_is_cut_one_inside_it_is_kept() {
        assert_eq!(
            ranges("0.0.0.0/0"),
            [
                pair("0.0.0.0", "169.253.255.255"),
                pair("169.255.0.0", "255.255.255.255")
            ]
        );
        assert_eq!(
            ranges("169.0.0.0/8"),
            [
                pair("169.0.0.0", "169.253.255.255"),
                pair("169.255.0.0", "169.255.255.255")
            ]
        );
        assert_eq!(
            ranges("168.0.0.0/7"),
            [
                pair("168.0.0.0", "169.253.255.255"),
                pair("169.255.0.0", "169.255.255.255")
            ]
        );
        assert_eq!(
            ranges("169.254.0.0/16"),
            [pair("169.254.0.0", "169.254.255.255")]
        );
        assert_eq!(
            ranges("169.254.169.254/32"),
            [pair("169.254.169.254", "169.254.169.254")]
        );
        assert_eq!(ranges("10.0.0.0/8"), [pair("10.0.0.0", "10.255.255.255")]);
    }
}
