//! The app firewall with real traffic, in namespaces the tests create. Every "cannot reach" is
//! paired with a "can reach" over the same path that differs only in the rule under test. The
//! whole file runs twice: with the namespace's defaults and with
//! net.bridge.bridge-nf-call-ip{,6}tables=0 (enforcement must not depend on br_netfilter).

#[path = "../../tests/common/netns.rs"]
mod netns;

use netns::*;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;
use tfctl_runtime::net::firewall::{self, *};
use tfctl_runtime::net::host::HostRecord;
use tfctl_runtime::net::{self as tfnet, AppId, AppNet, NetRecord};

struct App {
    rec: NetRecord,
    c: BTreeMap<&'static str, Ns>,
    spec: FirewallSpec,
}

impl App {
    fn ip(&self, n: &str) -> Ipv4Addr {
        self.rec.containers[n].address
    }
    fn at(&self, n: &str, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(self.ip(n), port)
    }
    fn rules(&mut self, n: &str) -> &mut ContainerRules {
        self.spec
            .containers
            .iter_mut()
            .find(|c| c.name == n)
            .unwrap()
    }
}

struct Fixture {
    w: World,
    before: (String, String),
    /// net.ipv4.ip_forward as the new namespace got it: it inherits the host's default
    /// (1 where anything on the host runs containers), so it is read, not assumed.
    fwd_before: String,
    host: HostRecord,
    apps: Vec<App>,
}

impl Fixture {
    fn new(bridge_nf_off: bool) -> Fixture {
        let w = World::new(bridge_nf_off);
        if bridge_nf_off {
            // Where the sysctl exists in this namespace, it is now 0.
            let v = w.host.try_sh(
                "cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo absent",
            );
            let v = String::from_utf8_lossy(&v.stdout).trim().to_string();
            assert!(v == "0" || v == "absent", "bridge-nf-call-iptables is {v}");
        }
        let before = w.host.snapshot();
        let fwd_before = w.host.sh("cat /proc/sys/net/ipv4/ip_forward").trim().to_string();
        Fixture {
            w,
            before,
            fwd_before,
            host: HostRecord::default(),
            apps: vec![],
        }
    }

    /// Creates an app with the named containers and applies an empty firewall.
    fn app(&mut self, name: &str, subnet: &str, names: &[&'static str]) -> usize {
        let id = AppId::derive(self.w.root.path(), name);
        let mut rec = NetRecord::plan(id.clone(), subnet.parse().unwrap()).unwrap();
        let mut c = BTreeMap::new();
        for n in names {
            rec.assign(n).unwrap();
            c.insert(*n, Ns::new(n));
        }
        let spec = FirewallSpec {
            containers: names.iter().map(|n| ContainerRules::new(*n)).collect(),
        };
        let root = self.w.root.path().to_path_buf();
        let host = &mut self.host;
        self.w
            .host
            .run(|| -> Result<(), tfnet::NetError> {
                host.acquire(&root, &id)?;
                AppNet::create(&rec)?;
                firewall::apply(&rec, &spec)?;
                for n in names {
                    AppNet::attach_container(&rec, n, c[n].file().as_fd())?;
                }
                Ok(())
            })
            .unwrap();
        self.apps.push(App { rec, c, spec });
        self.apps.len() - 1
    }

    /// Applies app `i`'s current spec with set-element changes only.
    fn update(&mut self, i: usize, change: impl FnOnce(&mut App)) {
        let old = self.apps[i].spec.clone();
        change(&mut self.apps[i]);
        let app = &self.apps[i];
        self.w
            .host
            .run(|| firewall::update(&app.rec, &old, &app.spec))
            .unwrap();
    }

    fn host_reach(&self, dst: SocketAddrV4) -> bool {
        reach(&self.w.host, dst)
    }

    fn host_blocked(&self, dst: SocketAddrV4) -> bool {
        blocked(&self.w.host, dst)
    }

    /// Tears everything down and checks the namespace is as before (ruleset, links, forwarding).
    fn finish(mut self) {
        for app in &self.apps {
            self.w.host.run(|| tfnet::teardown(&app.rec)).unwrap();
            let id = app.rec.app_id.clone();
            let host = &mut self.host;
            self.w.host.run(|| host.release(&id)).unwrap();
        }
        assert_eq!(
            self.w.host.sh("cat /proc/sys/net/ipv4/ip_forward").trim(),
            self.fwd_before
        );
        assert_eq!(self.w.host.snapshot(), self.before);
    }
}

fn allow(from: Source, port: Option<u16>, proto: Option<Proto>) -> Allow {
    Allow {
        from,
        ports: port.map(PortRange::one),
        proto,
    }
}

fn allow_from_container_port(bnf: bool) {
    let mut f = Fixture::new(bnf);
    let i = f.app("fw", "10.89.0.0/24", &["a", "b", "c"]);
    f.apps[i]
        .c
        .get_mut("b")
        .unwrap()
        .httpd(Ipv4Addr::UNSPECIFIED, 5432, "b-5432");
    f.apps[i]
        .c
        .get_mut("b")
        .unwrap()
        .httpd(Ipv4Addr::UNSPECIFIED, 80, "b-80");
    let app = &f.apps[i];
    // Nothing admitted yet.
    assert!(
        blocked(&app.c["a"], app.at("b", 5432)),
        "a reached b:5432 with no allow"
    );
    f.update(i, |app| {
        app.rules("b").allow.push(allow(
            Source::Container("a".into()),
            Some(5432),
            Some(Proto::Tcp),
        ))
    });
    let app = &f.apps[i];
    assert!(
        reach(&app.c["a"], app.at("b", 5432)),
        "allow from=a port=5432 did not let a in"
    );
    assert!(blocked(&app.c["a"], app.at("b", 80)), "a reached b on 80");
    assert!(blocked(&app.c["c"], app.at("b", 5432)), "c reached b:5432");
    // The set holds the element as nft reads it back (our key encoding).
    let set =
        f.w.host
            .sh(&format!("nft list set inet {} in_tcp", app.rec.table));
    assert!(
        set.contains(&format!(
            "{} . \"{}\" . 5432",
            app.ip("a"),
            app.rec.containers["b"].veth
        )),
        "{set}"
    );
    // Every port when no port is given.
    f.update(i, |app| {
        app.rules("b")
            .allow
            .push(allow(Source::Container("c".into()), None, None))
    });
    let app = &f.apps[i];
    assert!(reach(&app.c["c"], app.at("b", 80)) && reach(&app.c["c"], app.at("b", 5432)));
    // A container always reaches itself.
    assert!(reach(&app.c["b"], app.at("b", 80)));
    f.finish();
}

fn host_any_and_cidr_sources(bnf: bool) {
    let mut f = Fixture::new(bnf);
    let i = f.app("src", "10.89.0.0/24", &["b"]);
    f.apps[i]
        .c
        .get_mut("b")
        .unwrap()
        .httpd(Ipv4Addr::UNSPECIFIED, 80, "b");
    let subnet = f.apps[i].rec.subnet;
    f.w.outside
        .sh(&format!("ip route add {subnet} via {UPLINK_IP}"));
    let b80 = f.apps[i].at("b", 80);
    assert!(f.host_blocked(b80), "the host got in without from=host");
    assert!(
        blocked(&f.w.outside, b80),
        "the outside got in with no allow"
    );
    f.update(i, |app| {
        app.rules("b")
            .allow
            .push(allow(Source::Host, Some(80), Some(Proto::Tcp)))
    });
    assert!(f.host_reach(b80), "from=host did not admit the host");
    assert!(blocked(&f.w.outside, b80), "from=host admitted the outside");
    f.update(i, |app| {
        app.rules("b").allow = vec![allow(
            Source::Cidr("203.0.113.0/24".parse().unwrap()),
            Some(80),
            None,
        )]
    });
    assert!(
        blocked(&f.w.outside, b80),
        "a CIDR not covering the outside admitted it"
    );
    f.update(i, |app| {
        app.rules("b").allow = vec![allow(
            Source::Cidr("198.51.100.0/24".parse().unwrap()),
            Some(80),
            None,
        )]
    });
    assert!(
        reach(&f.w.outside, b80),
        "a covering CIDR did not admit the outside"
    );
    assert!(
        f.host_blocked(b80),
        "a CIDR not covering the host's source admitted the host"
    );
    f.update(i, |app| {
        app.rules("b").allow = vec![allow(Source::Any, Some(80), Some(Proto::Tcp))]
    });
    assert!(
        reach(&f.w.outside, b80) && f.host_reach(b80),
        "from=any must admit everyone"
    );
    f.finish();
}

fn container_to_host(bnf: bool) {
    let mut f = Fixture::new(bnf);
    f.w.host.httpd(Ipv4Addr::UNSPECIFIED, 8081, "host");
    let i = f.app("egr", "10.89.0.0/24", &["a"]);
    let gw = SocketAddrV4::new(f.apps[i].rec.gateway, 8081);
    let uplink = SocketAddrV4::new(UPLINK_IP, 8081);
    assert!(
        blocked(&f.apps[i].c["a"], gw),
        "a reached the host via the gateway"
    );
    assert!(
        blocked(&f.apps[i].c["a"], uplink),
        "a reached the host's other address"
    );
    f.update(i, |app| {
        app.rules("a").allow_egress.push(AllowEgress {
            to: Destination::Host,
            ports: Some(PortRange::one(8081)),
            proto: Some(Proto::Tcp),
        })
    });
    assert!(
        reach(&f.apps[i].c["a"], gw),
        "allow-egress to=host did not open the gateway"
    );
    assert!(
        reach(&f.apps[i].c["a"], uplink),
        "allow-egress to=host did not open the host's other address"
    );
    f.finish();
}

fn egress_deny_and_allow(bnf: bool) {
    let mut f = Fixture::new(bnf);
    let i = f.app("out", "10.89.0.0/24", &["a"]);
    let outside = SocketAddrV4::new(OUTSIDE_IP, 80);
    // The outside has no route to the app's subnet: success proves masquerading.
    let page = get_retried(&f.apps[i].c["a"], outside).expect("egress allow did not reach the outside");
    assert!(page.contains("hello from outside"));
    f.update(i, |app| app.rules("a").egress = Egress::Deny);
    assert!(blocked(&f.apps[i].c["a"], outside), "egress deny let a out");
    f.update(i, |app| {
        app.rules("a").allow_egress.push(AllowEgress {
            to: Destination::Cidr("198.51.100.1/32".parse().unwrap()),
            ports: Some(PortRange::one(80)),
            proto: None,
        })
    });
    assert!(
        reach(&f.apps[i].c["a"], outside),
        "allow-egress to the CIDR did not let a out under egress deny"
    );
    f.finish();
}

fn publish_is_no_back_door(bnf: bool) {
    let mut f = Fixture::new(bnf);
    let i = f.app("pub", "10.89.0.0/24", &["web", "a"]);
    f.apps[i]
        .c
        .get_mut("web")
        .unwrap()
        .httpd(Ipv4Addr::UNSPECIFIED, 80, "web");
    f.apps[i]
        .c
        .get_mut("web")
        .unwrap()
        .httpd(Ipv4Addr::UNSPECIFIED, 5432, "web-5432");
    let subnet = f.apps[i].rec.subnet;
    f.w.outside
        .sh(&format!("ip route add {subnet} via {UPLINK_IP}"));
    let published = SocketAddrV4::new(UPLINK_IP, 8080);
    let local_only = SocketAddrV4::new(UPLINK_IP, 9090);
    assert!(
        blocked(&f.w.outside, published),
        "reachable before publishing"
    );
    f.update(i, |app| {
        let web = app.rules("web");
        web.publish.push(Publish {
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: 8080,
            container_port: 80,
            proto: Proto::Tcp,
        });
        web.publish.push(Publish {
            host_ip: Ipv4Addr::LOCALHOST,
            host_port: 9090,
            container_port: 80,
            proto: Proto::Tcp,
        });
    });
    let app = &f.apps[i];
    assert!(
        reach(&f.w.outside, published),
        "the publish is not reachable from outside"
    );
    assert!(
        blocked(&f.w.outside, app.at("web", 80)),
        "the container port is open from outside without the publish"
    );
    assert!(
        blocked(&f.w.outside, app.at("web", 5432)),
        "the publish opened another port"
    );
    assert!(
        blocked(&f.w.outside, local_only),
        "a loopback publish is reachable from outside"
    );
    assert!(
        f.host_reach(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080)),
        "0.0.0.0 publish not reachable on the host's loopback"
    );
    assert!(
        f.host_reach(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9090)),
        "loopback publish not reachable from the host"
    );
    assert!(
        f.host_reach(published),
        "publish not reachable from the host via its own address"
    );
    assert!(
        f.host_blocked(app.at("web", 80)),
        "the host reached web directly without from=host"
    );
    // Hairpin: another container, and web itself, through the published port.
    assert!(
        reach(&app.c["a"], published),
        "a container cannot use the published port"
    );
    assert!(
        reach(&app.c["web"], published),
        "web cannot reach itself through its publish"
    );
    f.finish();
}

fn spoofed_source_not_admitted(bnf: bool) {
    let mut f = Fixture::new(bnf);
    let i = f.app("spoof", "10.89.0.0/24", &["a", "b", "c"]);
    f.update(i, |app| {
        app.rules("b").allow.push(allow(
            Source::Container("a".into()),
            Some(5353),
            Some(Proto::Udp),
        ))
    });
    let app = &f.apps[i];
    let rx = udp_listen(&app.c["b"], 5353);
    udp_send(&app.c["a"], None, app.at("b", 5353), b"from-a");
    assert_eq!(
        udp_recv(&rx).as_deref(),
        Some(&b"from-a"[..]),
        "a's allowed datagram did not arrive"
    );
    // c takes a's address in its own namespace (as a container with NET_ADMIN could).
    app.c["c"].sh(&format!("ip addr add {}/32 dev eth0", app.ip("a")));
    udp_send(
        &app.c["c"],
        Some(app.ip("a")),
        app.at("b", 5353),
        b"spoofed",
    );
    assert_eq!(
        udp_recv(&rx),
        None,
        "a datagram spoofed from a's address was admitted"
    );
    f.finish();
}

fn ipv6_link_local_refused(bnf: bool) {
    let mut f = Fixture::new(bnf);
    let i = f.app("six", "10.89.0.0/24", &["a", "b"]);
    f.apps[i]
        .c
        .get_mut("b")
        .unwrap()
        .httpd(Ipv4Addr::UNSPECIFIED, 80, "b");
    f.update(i, |app| {
        app.rules("b")
            .allow
            .push(allow(Source::Container("a".into()), None, None))
    });
    let app = &f.apps[i];
    assert!(
        reach(&app.c["a"], app.at("b", 80)),
        "IPv4 between a and b is allowed"
    );
    // Both turn IPv6 back on (as a container with NET_ADMIN could) and get link-local addresses.
    for n in ["a", "b"] {
        app.c[n].sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.eth0.disable_ipv6=0 net.ipv6.conf.eth0.accept_dad=0");
    }
    let mut ll = String::new();
    for _ in 0..100 {
        ll = app.c["b"]
            .sh("ip -6 -o addr show dev eth0 scope link | awk '{print $4}' | cut -d/ -f1");
        if !ll.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let ll = ll.trim();
    assert!(!ll.is_empty(), "b got no link-local address");
    let ping = app.c["a"].try_sh(&format!("busybox ping -6 -c1 -W1 {ll}%eth0"));
    assert!(
        !ping.status.success(),
        "a reached b's IPv6 link-local address"
    );
    f.finish();
}

fn two_apps_isolated(bnf: bool) {
    let mut f = Fixture::new(bnf);
    let one = f.app("one", "10.89.0.0/24", &["a", "b"]);
    let two = f.app("two", "10.89.1.0/24", &["x"]);
    f.apps[one]
        .c
        .get_mut("b")
        .unwrap()
        .httpd(Ipv4Addr::UNSPECIFIED, 80, "b");
    f.apps[two]
        .c
        .get_mut("x")
        .unwrap()
        .httpd(Ipv4Addr::UNSPECIFIED, 80, "x");
    f.update(one, |app| {
        app.rules("b")
            .allow
            .push(allow(Source::Container("a".into()), Some(80), None))
    });
    let (a1, a2) = (&f.apps[one], &f.apps[two]);
    assert!(
        reach(&a1.c["a"], a1.at("b", 80)),
        "a cannot reach b in its own app"
    );
    assert!(
        blocked(&a2.c["x"], a1.at("b", 80)),
        "x (another app) reached b"
    );
    assert!(
        blocked(&a1.c["a"], a2.at("x", 80)),
        "a reached x (another app)"
    );
    f.finish();
}

fn forward_guard_and_foreign_drop(bnf: bool) {
    let mut f = Fixture::new(bnf);
    // A second network on the host (a "LAN"), reachable from the outside only if the host routes.
    let mut lan = Ns::new("lan");
    std::process::Command::new("ip")
        .args([
            "link",
            "add",
            "lan0",
            "netns",
            &f.w.host.name,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &lan.name,
        ])
        .status()
        .unwrap();
    f.w.host
        .sh("ip addr add 192.0.2.1/24 dev lan0 && ip link set lan0 up");
    lan.sh("ip addr add 192.0.2.2/24 dev eth0 && ip link set eth0 up && ip route add default via 192.0.2.1");
    lan.httpd(Ipv4Addr::UNSPECIFIED, 80, "lan");
    f.w.outside
        .sh(&format!("ip route add 192.0.2.0/24 via {UPLINK_IP}"));
    let before = f.w.host.snapshot();
    f.before = before;
    let i = f.app("guard", "10.89.0.0/24", &["a", "b"]);
    assert_eq!(f.w.host.sh("cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
    let lan80 = SocketAddrV4::new("192.0.2.2".parse().unwrap(), 80);
    assert!(
        blocked(&f.w.outside, lan80),
        "the host routes between its other interfaces"
    );
    let guard = f.host.guard_table.clone().unwrap();
    f.w.host.sh(&format!("nft delete table inet {guard}"));
    assert!(
        reach(&f.w.outside, lan80),
        "control: without the guard the host forwards"
    );
    f.w.host.run(|| firewall::remove(&guard)).unwrap();
    // A host firewall with a drop policy is reported, and does drop tfctl's traffic.
    f.apps[i]
        .c
        .get_mut("b")
        .unwrap()
        .httpd(Ipv4Addr::UNSPECIFIED, 80, "b");
    f.update(i, |app| {
        app.rules("b")
            .allow
            .push(allow(Source::Container("a".into()), Some(80), None))
    });
    assert!(reach(&f.apps[i].c["a"], f.apps[i].at("b", 80)));
    assert!(f
        .w
        .host
        .run(firewall::foreign_drop_policies)
        .unwrap()
        .is_empty());
    f.w.host.sh("nft add table inet hostfw && nft add chain inet hostfw hostchain '{ type filter hook forward priority 0; policy drop; }'");
    let warnings = f.w.host.run(firewall::foreign_drop_policies).unwrap();
    assert!(
        warnings.len() == 1 && warnings[0].contains("hostfw") && warnings[0].contains("forward"),
        "{warnings:?}"
    );
    assert!(
        blocked(&f.apps[i].c["a"], f.apps[i].at("b", 80)),
        "a host drop policy should drop tfctl traffic (hence the warning)"
    );
    f.w.host.sh("nft delete table inet hostfw");
    // firewalld's way: policy accept, then a final unconditional reject.
    f.w.host.sh("nft -f - <<'EOF'
table inet fakefirewalld {
  chain filter_FORWARD {
    type filter hook forward priority 10; policy accept;
    ct state established,related accept
    ip saddr 192.0.2.99 drop
    counter reject with icmpx type admin-prohibited
  }
}
EOF");
    let warnings = f.w.host.run(firewall::foreign_drop_policies).unwrap();
    assert!(
        warnings.len() == 1
            && warnings[0].contains("fakefirewalld")
            && warnings[0].contains("reject"),
        "{warnings:?}"
    );
    // Control: the same chain whose last rule is conditional is not reported.
    f.w.host.sh("nft delete rule inet fakefirewalld filter_FORWARD handle $(nft -a list chain inet fakefirewalld filter_FORWARD | awk '/reject/ {print $NF}')");
    assert!(f
        .w
        .host
        .run(firewall::foreign_drop_policies)
        .unwrap()
        .is_empty());
    f.w.host.sh("nft delete table inet fakefirewalld");
    f.finish();
    drop(lan);
}

fn overlapping_allows(bnf: bool) {
    let mut f = Fixture::new(bnf);
    let i = f.app("ovl", "10.89.0.0/24", &["a", "b"]);
    f.apps[i]
        .c
        .get_mut("b")
        .unwrap()
        .httpd(Ipv4Addr::UNSPECIFIED, 80, "b");
    f.apps[i]
        .c
        .get_mut("b")
        .unwrap()
        .httpd(Ipv4Addr::UNSPECIFIED, 95, "b-95");
    let subnet = f.apps[i].rec.subnet;
    f.w.outside
        .sh(&format!("ip route add {subnet} via {UPLINK_IP}"));
    // Overlapping sources and port ranges for one container, as users write them.
    f.update(i, |app| {
        let b = app.rules("b");
        b.allow.push(allow(
            Source::Container("a".into()),
            Some(80),
            Some(Proto::Tcp),
        ));
        b.allow.push(allow(
            Source::Cidr("10.0.0.0/8".parse().unwrap()),
            Some(80),
            Some(Proto::Tcp),
        ));
        b.allow.push(Allow {
            from: Source::Cidr("10.89.0.0/16".parse().unwrap()),
            ports: Some(PortRange {
                first: 70,
                last: 90,
            }),
            proto: Some(Proto::Tcp),
        });
        b.allow.push(Allow {
            from: Source::Container("a".into()),
            ports: Some(PortRange {
                first: 85,
                last: 100,
            }),
            proto: Some(Proto::Tcp),
        });
    });
    let app = &f.apps[i];
    assert!(reach(&app.c["a"], app.at("b", 80)) && reach(&app.c["a"], app.at("b", 95)));
    assert!(
        blocked(&f.w.outside, app.at("b", 80)),
        "outside is in none of the ranges"
    );
    f.finish();
}

fn link_local_destinations_blocked(bnf: bool) {
    let mut f = Fixture::new(bnf);
    // A "metadata service" in the outside namespace, routed from the host.
    f.w.outside.sh("ip addr add 169.254.169.254/32 dev out0");
    f.w.outside
        .httpd("169.254.169.254".parse().unwrap(), 80, "metadata");
    f.w.host
        .sh(&format!("ip route add 169.254.169.254/32 via {OUTSIDE_IP}"));
    let i = f.app("meta", "10.89.0.0/24", &["a"]);
    let md = SocketAddrV4::new("169.254.169.254".parse().unwrap(), 80);
    assert!(
        reach(&f.apps[i].c["a"], SocketAddrV4::new(OUTSIDE_IP, 80)),
        "egress allow reaches the outside"
    );
    assert!(
        blocked(&f.apps[i].c["a"], md),
        "a reached 169.254.0.0/16 without allow-egress"
    );
    f.update(i, |app| {
        app.rules("a").allow_egress.push(AllowEgress {
            to: Destination::Cidr("169.254.169.254/32".parse().unwrap()),
            ports: Some(PortRange::one(80)),
            proto: Some(Proto::Tcp),
        })
    });
    assert!(
        reach(&f.apps[i].c["a"], md),
        "allow-egress did not open 169.254.169.254"
    );
    f.w.host.sh("ip route del 169.254.169.254/32");
    f.finish();
}

/// CVE-2020-8558: with route_localnet on tfctl's veths, a container that routes 127.0.0.1 to
/// the host (it needs NET_ADMIN in its namespace) must still not reach the host's loopback.
fn container_cannot_reach_host_loopback(bnf: bool) {
    let mut f = Fixture::new(bnf);
    f.w.host.httpd(Ipv4Addr::UNSPECIFIED, 8081, "host");
    let i = f.app("lo", "10.89.0.0/24", &["a"]);
    f.update(i, |app| {
        app.rules("a").allow_egress.push(AllowEgress {
            to: Destination::Host,
            ports: Some(PortRange::one(8081)),
            proto: Some(Proto::Tcp),
        })
    });
    let gw = f.apps[i].rec.gateway;
    let a = &f.apps[i].c["a"];
    assert!(
        reach(a, SocketAddrV4::new(gw, 8081)),
        "allowed path to the host works"
    );
    a.sh(&format!(
        "sysctl -qw net.ipv4.conf.eth0.route_localnet=1 net.ipv4.conf.all.route_localnet=1 && \
         ip route del table local 127.0.0.1 dev lo && ip route del table local 127.0.0.0/8 dev lo && \
         ip route add 127.0.0.1/32 via {gw} dev eth0 && ip addr del 127.0.0.1/8 dev lo"
    ));
    assert!(
        blocked(a, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8081)),
        "a container reached the host's 127.0.0.1"
    );
    f.finish();
}

fn restart_keeps_address_and_rules(bnf: bool) {
    let mut f = Fixture::new(bnf);
    let i = f.app("rst", "10.89.0.0/24", &["a", "b"]);
    f.apps[i]
        .c
        .get_mut("b")
        .unwrap()
        .httpd(Ipv4Addr::UNSPECIFIED, 80, "b");
    f.update(i, |app| {
        app.rules("b")
            .allow
            .push(allow(Source::Container("a".into()), Some(80), None))
    });
    let before = f.apps[i].ip("a");
    assert!(reach(&f.apps[i].c["a"], f.apps[i].at("b", 80)));
    // The container stops (its namespace goes; the kernel removes the veth with it, but not
    // necessarily at once) and starts again: detach (a no-op if the veth is gone), attach.
    let old = f.apps[i].c.remove("a").unwrap();
    drop(old);
    let gone = f.apps[i].rec.containers["a"].clone();
    f.w.host
        .run(|| tfctl_runtime::net::links::detach_container(&gone))
        .unwrap();
    let fresh = Ns::new("a2");
    let rec = f.apps[i].rec.clone();
    let fd = fresh.file();
    f.w.host
        .run(|| AppNet::attach_container(&rec, "a", fd.as_fd()))
        .unwrap();
    assert_eq!(f.apps[i].ip("a"), before);
    assert!(fresh
        .sh("ip -4 -o addr show dev eth0")
        .contains(&before.to_string()));
    assert!(
        reach(&fresh, f.apps[i].at("b", 80)),
        "the restarted container lost its allow"
    );
    f.apps[i].c.insert("a", fresh);
    f.finish();
}

fn egress(to: &str, port: Option<u16>) -> AllowEgress {
    AllowEgress {
        to: match to {
            "host" => Destination::Host,
            cidr => Destination::Cidr(cidr.parse().unwrap()),
        },
        ports: port.map(PortRange::one),
        proto: None,
    }
}

/// The page `from` gets from `dst`, by its tag ("host", "outside", ...), if any; tried three
/// times as [`reach`] does, since a "can reach" must not fail because the machine was slow once.
fn page(from: &Ns, dst: SocketAddrV4) -> Option<String> {
    let body = (0..3).find_map(|_| http_get(from, None, dst))?;
    Some(body.rsplit("hello from ").next()?.trim().to_string())
}

/// An `allow-egress` CIDR opens the networks behind the host, never the host itself: not its
/// gateway, not another app's gateway, not its uplink address, also when the CIDR covers them
/// (0.0.0.0/0, 10.0.0.0/8, the uplink's own network). Only to="host" opens the host.
fn cidr_egress_never_opens_the_host(bnf: bool) {
    let mut f = Fixture::new(bnf);
    f.w.host.httpd(Ipv4Addr::UNSPECIFIED, 80, "host");
    let i = f.app(
        "cidr",
        "10.89.0.0/24",
        &["wide", "wideall", "ten", "uplink", "tohost", "ctl"],
    );
    let two = f.app("other", "10.89.1.0/24", &["x"]);
    f.apps[two]
        .c
        .get_mut("x")
        .unwrap()
        .httpd(Ipv4Addr::UNSPECIFIED, 80, "x");
    f.update(i, |app| {
        let deny = |r: &mut ContainerRules, e: AllowEgress| {
            r.egress = Egress::Deny;
            r.allow_egress.push(e);
        };
        deny(app.rules("wide"), egress("0.0.0.0/0", Some(80)));
        deny(app.rules("wideall"), egress("0.0.0.0/0", None));
        app.rules("ten")
            .allow_egress
            .push(egress("10.0.0.0/8", None));
        deny(app.rules("uplink"), egress("198.51.100.0/24", None));
        deny(app.rules("tohost"), egress("host", Some(80)));
        app.rules("ctl").egress = Egress::Deny;
    });
    let host = [
        SocketAddrV4::new(f.apps[i].rec.gateway, 80),
        SocketAddrV4::new(f.apps[two].rec.gateway, 80),
        SocketAddrV4::new(UPLINK_IP, 80),
    ];
    let app = &f.apps[i];
    // Control: the host answers a container that may reach it, at each of these addresses.
    for dst in host {
        assert_eq!(
            page(&app.c["tohost"], dst).as_deref(),
            Some("host"),
            "to=host did not reach {dst}"
        );
    }
    for c in ["wide", "wideall", "ten", "uplink", "ctl"] {
        for dst in host {
            assert!(
                blocked(&app.c[c], dst),
                "{c} reached the host at {dst} through an allow-egress CIDR"
            );
        }
    }
    // The CIDRs do open the outside world (the uplink's network included) ...
    let outside = SocketAddrV4::new(OUTSIDE_IP, 80);
    for c in ["wide", "wideall", "uplink"] {
        assert_eq!(
            page(&app.c[c], outside).as_deref(),
            Some("outside"),
            "{c} cannot reach the outside"
        );
    }
    assert!(blocked(&app.c["ctl"], outside), "egress deny let ctl out");
    // ... and other apps' containers only as far as their own allows let them in.
    let x = f.apps[two].at("x", 80);
    assert!(
        blocked(&app.c["wideall"], x),
        "a CIDR opened another app's container"
    );
    assert!(
        blocked(&app.c["ten"], x),
        "a CIDR opened another app's container"
    );
    f.update(two, |app| {
        app.rules("x")
            .allow
            .push(allow(Source::Any, Some(80), None))
    });
    let app = &f.apps[i];
    assert_eq!(
        page(&app.c["wideall"], x).as_deref(),
        Some("x"),
        "x's allow from=any did not let wideall in"
    );
    f.finish();
}

/// 169.254.0.0/16 opens only to a CIDR inside it, and never on the host: not by a wider CIDR,
/// not by to="host" (the host's own link-local address), not when the host translates the
/// metadata address to one of its own addresses.
fn link_local_only_by_name_and_never_on_the_host(bnf: bool) {
    let mut f = Fixture::new(bnf);
    f.w.host.httpd(Ipv4Addr::UNSPECIFIED, 80, "host");
    f.w.outside.sh("ip addr add 169.254.169.254/32 dev out0");
    f.w.outside
        .httpd("169.254.169.254".parse().unwrap(), 80, "metadata");
    f.w.host.sh(&format!(
        "ip route add 169.254.169.254/32 via {OUTSIDE_IP} && ip addr add 169.254.7.1/32 dev up0"
    ));
    let i = f.app("ll", "10.89.0.0/24", &["wide", "named", "tohost"]);
    f.update(i, |app| {
        app.rules("wide")
            .allow_egress
            .push(egress("0.0.0.0/0", None));
        app.rules("wide").egress = Egress::Deny;
        app.rules("named")
            .allow_egress
            .push(egress("169.254.0.0/16", None));
        app.rules("tohost").allow_egress.push(egress("host", None));
    });
    let md = SocketAddrV4::new("169.254.169.254".parse().unwrap(), 80);
    let host_ll = SocketAddrV4::new("169.254.7.1".parse().unwrap(), 80);
    let app = &f.apps[i];
    assert_eq!(
        page(&app.c["named"], md).as_deref(),
        Some("metadata"),
        "a CIDR inside 169.254.0.0/16 did not open it"
    );
    assert_eq!(
        page(&app.c["wide"], SocketAddrV4::new(OUTSIDE_IP, 80)).as_deref(),
        Some("outside"),
        "0.0.0.0/0 did not open the outside"
    );
    assert!(
        blocked(&app.c["wide"], md),
        "0.0.0.0/0 opened the metadata address"
    );
    // The host's own link-local address: the host answers there (from its own namespace) ...
    assert!(
        f.host_reach(host_ll),
        "control: the host's link-local address does not answer"
    );
    assert_eq!(
        page(&app.c["tohost"], SocketAddrV4::new(UPLINK_IP, 80)).as_deref(),
        Some("host"),
        "to=host did not open the host"
    );
    // ... but not for containers, whatever they are allowed.
    for c in ["wide", "named", "tohost"] {
        assert!(
            blocked(&app.c[c], host_ll),
            "{c} reached the host's link-local address"
        );
    }
    // The host translates the metadata address to its own (as a local metadata proxy does).
    f.w.host.sh("nft add table ip mdproxy && nft add chain ip mdproxy pre '{ type nat hook prerouting priority -100; }' && nft add rule ip mdproxy pre ip daddr 169.254.169.254 tcp dport 80 dnat to 198.51.100.2:80");
    assert!(
        blocked(&app.c["tohost"], md),
        "to=host reached the host through a DNAT of 169.254.169.254"
    );
    f.w.host.sh("nft delete table ip mdproxy && ip route del 169.254.169.254/32 && ip addr del 169.254.7.1/32 dev up0");
    f.finish();
}

/// The host gets into a container only with from="host" or from="any": a CIDR that covers the
/// host's source address (the gateway) admits other networks, not the host.
fn a_cidr_source_does_not_admit_the_host(bnf: bool) {
    let mut f = Fixture::new(bnf);
    let i = f.app("hin", "10.89.0.0/24", &["b", "a"]);
    f.apps[i]
        .c
        .get_mut("b")
        .unwrap()
        .httpd(Ipv4Addr::UNSPECIFIED, 80, "b");
    f.update(i, |app| {
        app.rules("b").allow.push(allow(
            Source::Cidr("10.0.0.0/8".parse().unwrap()),
            Some(80),
            None,
        ))
    });
    let b80 = f.apps[i].at("b", 80);
    assert!(
        reach(&f.apps[i].c["a"], b80),
        "the CIDR does not admit a peer in it"
    );
    assert!(
        f.host_blocked(b80),
        "a CIDR covering the host's gateway address admitted the host"
    );
    f.update(i, |app| {
        app.rules("b")
            .allow
            .push(allow(Source::Host, Some(80), None))
    });
    assert!(f.host_reach(b80), "from=host did not admit the host");
    f.finish();
}

macro_rules! both_modes {
    ($($name:ident),*) => {
        mod bridge_nf_default { $( #[test] fn $name() { super::$name(false) } )* }
        mod bridge_nf_off { $( #[test] fn $name() { super::$name(true) } )* }
    };
}

both_modes!(
    allow_from_container_port,
    host_any_and_cidr_sources,
    container_to_host,
    egress_deny_and_allow,
    publish_is_no_back_door,
    spoofed_source_not_admitted,
    ipv6_link_local_refused,
    two_apps_isolated,
    forward_guard_and_foreign_drop,
    overlapping_allows,
    link_local_destinations_blocked,
    container_cannot_reach_host_loopback,
    restart_keeps_address_and_rules,
    cidr_egress_never_opens_the_host,
    link_local_only_by_name_and_never_on_the_host,
    a_cidr_source_does_not_admit_the_host
);
