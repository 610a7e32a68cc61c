//! Lowering the network nodes of a container: `publish`, `allow` and `allow-egress`, with their
//! ports, protocols, addresses and CIDRs.

use std::net::Ipv4Addr;

use kdl::{KdlEntry, KdlValue};

use crate::crossref::{RefKind, Refs};
use crate::model::*;
use crate::reader::{value_span, Cx, Node};
use crate::values;

pub fn cidr(cx: &mut Cx<'_>, e: &kdl::KdlEntry, s: &str) -> Option<Ipv4Net> {
    match s.parse::<Ipv4Net>() {
        Ok(n) => Some(n),
        Err(err) => {
            let p = cx
                .problem(
                    "tfctl::invalid-cidr",
                    value_span(e),
                    format!("invalid CIDR: {err}"),
                )
                .label("not a CIDR")
                .help("write an IPv4 network as ADDRESS/PREFIX, e.g. \"10.89.7.0/24\"");
            cx.push(p);
            None
        }
    }
}

fn proto(cx: &mut Cx<'_>, e: Option<&KdlEntry>) -> Option<Option<Proto>> {
    let Some(e) = e else { return Some(None) };
    match cx.choice(Some(e), "protocol", &["tcp", "udp"])? {
        "tcp" => Some(Some(Proto::Tcp)),
        _ => Some(Some(Proto::Udp)),
    }
}

fn ports(cx: &mut Cx<'_>, e: Option<&KdlEntry>) -> Option<Option<PortRange>> {
    let Some(e) = e else { return Some(None) };
    let r = match e.value() {
        KdlValue::Integer(i) => {
            values::check_port(*i, false).map(|p| PortRange { start: p, end: p })
        }
        KdlValue::String(_) => values::parse_port_range(&cx.str(Some(e))?),
        _ => return None,
    };
    cx.parsed(e, r, "not a port").map(Some)
}

pub fn publish(cx: &mut Cx<'_>, s: Node<'_>, refs: &mut Refs) -> Option<Publish> {
    let host_e = s.arg(0)?;
    let host_port = cx
        .int(Some(host_e))
        .and_then(|p| cx.parsed(host_e, values::check_port(p, true), "not a port"));
    let container_port = match s.prop("to") {
        Some(e) => cx
            .int(Some(e))
            .and_then(|p| cx.parsed(e, values::check_port(p, false), "not a port")),
        None => {
            let p = cx
                .problem(
                    "tfctl::missing-property",
                    s.name_span(),
                    "`publish` needs `to=`",
                )
                .label("no container port")
                .help("say which container port the host port leads to: publish 8080 to=80");
            cx.push(p);
            None
        }
    };
    let host_ip = match s.prop("host-ip") {
        Some(e) => {
            let ip = cx.str(Some(e))?;
            match ip.parse::<Ipv4Addr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    let p = cx
                        .problem("tfctl::invalid-address", value_span(e), format!("`{ip}` is not an IPv4 address"))
                        .label("not an address")
                        .help("write a host address such as \"127.0.0.1\", or leave host-ip out for 0.0.0.0");
                    cx.push(p);
                    None
                }
            }
        }
        None => Some(Ipv4Addr::UNSPECIFIED),
    };
    let proto = proto(cx, s.prop("proto"))?.unwrap_or(Proto::Tcp);
    let p = Publish {
        host_port: host_port?,
        container_port: container_port?,
        host_ip: host_ip?,
        proto,
    };
    refs.publishes
        .push((p.host_ip, p.host_port, p.proto, value_span(host_e)));
    Some(p)
}

pub fn allow(cx: &mut Cx<'_>, s: Node<'_>, refs: &mut Refs) -> Option<Allow> {
    let ports = ports(cx, s.prop("port"));
    let proto = proto(cx, s.prop("proto"));
    let Some(from_e) = s.prop("from") else {
        let p = cx
            .problem("tfctl::missing-property", s.name_span(), "`allow` needs `from=`")
            .label("no source")
            .help("say who may connect: from=\"CONTAINER\", \"host\", \"any\" or a CIDR such as \"10.0.0.0/8\"");
        cx.push(p);
        return None;
    };
    let from = cx.str(Some(from_e))?;
    let peer = match from.as_str() {
        "host" => Peer::Host,
        "any" => Peer::Any,
        // Container names have no `.` or `/`; addresses and networks do.
        f if f.contains('/')
            || (f.contains('.') && f.bytes().all(|c| c.is_ascii_digit() || c == b'.')) =>
        {
            Peer::Cidr(cidr(cx, from_e, f)?)
        }
        f => {
            refs.uses.push((
                RefKind::Container,
                f.to_string(),
                value_span(from_e),
                "`allow`",
            ));
            Peer::Container(f.to_string())
        }
    };
    Some(Allow {
        from: peer,
        ports: ports?,
        proto: proto?,
    })
}

pub fn allow_egress(cx: &mut Cx<'_>, s: Node<'_>) -> Option<AllowEgress> {
    let ports = ports(cx, s.prop("port"));
    let proto = proto(cx, s.prop("proto"));
    let Some(to_e) = s.prop("to") else {
        let p = cx
            .problem("tfctl::missing-property", s.name_span(), "`allow-egress` needs `to=`")
            .label("no destination")
            .help("say where the container may connect: to=\"host\" or a CIDR such as \"192.0.2.0/24\"");
        cx.push(p);
        return None;
    };
    let to = cx.str(Some(to_e))?;
    let dest = match to.as_str() {
        "host" => EgressDest::Host,
        t => EgressDest::Cidr(cidr(cx, to_e, t)?),
    };
    Some(AllowEgress {
        to: dest,
        ports: ports?,
        proto: proto?,
    })
}
