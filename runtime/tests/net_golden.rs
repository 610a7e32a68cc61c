//! Golden tests of our nf_tables expression module: every rule tfctl generates, encoded by our
//! code and printed back by libnftnl, must equal what `nft --debug=netlink` emits for the same
//! rule written in nft syntax (concatenations, inverted lookups, fib, interface prefixes, ct
//! state/status, prefixes aligned or not, dnat, masquerade). `nft -c` only checks; it runs in a
//! throwaway network namespace.

use std::io::Write;
use std::process::{Command, Stdio};
use tfctl_runtime::net::firewall::ruleset;
use tfctl_runtime::net::firewall::*;
use tfctl_runtime::net::{AppId, NetRecord};

fn nft_debug(text: &str) -> Vec<(String, String)> {
    let mut child = Command::new("unshare")
        .args(["-n", "nft", "-c", "--debug=netlink", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nft");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft refused our text:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut rules: Vec<(String, Vec<String>)> = Vec::new();
    for line in stdout.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            rules
                .last_mut()
                .expect("an expression outside a rule")
                .1
                .push(t.to_string());
        } else if let Some(rest) = t.strip_prefix("inet ") {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            if parts.len() == 2 && parts[0] != "(null)" {
                rules.push((parts[1].to_string(), vec![]));
            }
        }
    }
    rules.into_iter().map(|(c, l)| (c, l.join("\n"))).collect()
}

fn spec() -> (NetRecord, FirewallSpec) {
    let id = AppId::derive(std::path::Path::new("/golden"), "app");
    // A /20 exercises the non-byte-aligned prefix (bitwise) form.
    let mut rec = NetRecord::plan(id, "10.90.16.0/20".parse().unwrap()).unwrap();
    for n in ["db", "api", "web"] {
        rec.assign(n).unwrap();
    }
    let mut db = ContainerRules::new("db");
    db.allow.push(Allow {
        from: Source::Container("api".into()),
        ports: Some(PortRange::one(5432)),
        proto: Some(Proto::Tcp),
    });
    db.egress = Egress::Deny;
    let mut api = ContainerRules::new("api");
    api.allow.push(Allow {
        from: Source::Host,
        ports: None,
        proto: None,
    });
    api.allow.push(Allow {
        from: Source::Cidr("192.0.2.0/24".parse().unwrap()),
        ports: Some(PortRange {
            first: 8000,
            last: 8099,
        }),
        proto: None,
    });
    api.allow_egress.push(AllowEgress {
        to: Destination::Host,
        ports: Some(PortRange::one(53)),
        proto: Some(Proto::Udp),
    });
    api.allow_egress.push(AllowEgress {
        to: Destination::Cidr("198.51.100.0/24".parse().unwrap()),
        ports: None,
        proto: None,
    });
    let mut web = ContainerRules::new("web");
    web.allow.push(Allow {
        from: Source::Any,
        ports: Some(PortRange::one(80)),
        proto: Some(Proto::Tcp),
    });
    web.publish.push(Publish {
        host_ip: "0.0.0.0".parse().unwrap(),
        host_port: 8080,
        container_port: 80,
        proto: Proto::Tcp,
    });
    web.publish.push(Publish {
        host_ip: "127.0.0.1".parse().unwrap(),
        host_port: 9090,
        container_port: 80,
        proto: Proto::Tcp,
    });
    web.publish.push(Publish {
        host_ip: "192.0.2.7".parse().unwrap(),
        host_port: 5353,
        container_port: 53,
        proto: Proto::Udp,
    });
    (
        rec,
        FirewallSpec {
            containers: vec![db, api, web],
        },
    )
}

#[test]
fn every_generated_rule_matches_nft() {
    let (rec, spec) = spec();
    let rs = ruleset::build(&rec, &spec).unwrap();
    let ours = rs.expr_texts();
    let theirs = nft_debug(&rs.nft_text());
    assert_eq!(
        ours.len(),
        theirs.len(),
        "rule count differs\n{}",
        rs.nft_text()
    );
    assert!(ours.len() > 30, "the sample should cover the whole ruleset");
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(o, t, "rule {i} in chain {} differs", o.0);
    }
    // The features nftnl's wrappers lack are all exercised.
    let all: String = ours
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        "=> reg 9",
        "=> reg 13",
        "lookup reg 1 set veth_addr 0x1",
        "[ fib daddr type => reg 1 ]",
        "bitwise",
        "[ masq ]",
        "nat dnat ip",
    ] {
        assert!(all.contains(needle), "no `{needle}` in\n{all}");
    }
}

#[test]
fn rule_count_does_not_grow_with_containers() {
    let (rec, spec) = spec();
    let small = ruleset::build(
        &rec,
        &FirewallSpec {
            containers: spec.containers[..1].to_vec(),
        },
    )
    .unwrap();
    let big = ruleset::build(&rec, &spec).unwrap();
    let count = |r: &ruleset::Ruleset| {
        r.chains
            .iter()
            .filter(|c| !c.nat)
            .map(|c| c.rules.len())
            .sum::<usize>()
    };
    assert_eq!(
        count(&small),
        count(&big),
        "filter rules must not depend on the number of containers"
    );
    let elems = |r: &ruleset::Ruleset| r.elements.values().map(Vec::len).sum::<usize>();
    assert!(elems(&big) > elems(&small));
}
