//! Links, addresses and routes in real namespaces: what `ip` sees after tfctl wired an app,
//! and that teardown leaves the namespace as it found it.

#[path = "../../tests/common/netns.rs"]
mod netns;

use netns::{Ns, World};
use std::os::fd::AsFd;
use tfctl_runtime::net::{self, subnet, AppId, AppNet, NetRecord};

#[test]
fn wires_containers_and_tears_down_exactly() {
    let w = World::new(false);
    let before = w.host.snapshot();
    // Inherited from the host's default (1 where anything runs containers): read, not assumed.
    let fwd_before = w.host.sh("cat /proc/sys/net/ipv4/ip_forward").trim().to_string();
    let a = Ns::new("a");
    let b = Ns::new("b");
    let id = AppId::derive(w.root.path(), "links");
    // A host route inside the pool's first /24 pushes the allocation past it (and a recorded
    // app subnet past the second).
    w.host.sh("ip route add 10.89.0.0/25 via 198.51.100.1");
    let before_dummy = w.host.snapshot();
    let subnet = w
        .host
        .run(|| {
            subnet::allocate(
                None,
                subnet::DEFAULT_POOL.parse().unwrap(),
                &["10.89.1.0/24".parse().unwrap()],
            )
        })
        .unwrap();
    assert_eq!(subnet.to_string(), "10.89.2.0/24");
    let mut rec = NetRecord::plan(id.clone(), subnet).unwrap();
    let ca = rec.assign("a").unwrap();
    rec.assign("b").unwrap();
    let (fa, fb) = (a.file(), b.file());
    w.host
        .run(|| -> Result<(), net::NetError> {
            AppNet::create(&rec)?;
            AppNet::attach_container(&rec, "a", fa.as_fd())?;
            AppNet::attach_container(&rec, "b", fb.as_fd())
        })
        .unwrap();

    // Container side: eth0 with the fixed /32, default route via the gateway, lo up, no IPv6.
    let addr = a.sh("ip -4 -o addr show dev eth0");
    assert!(
        addr.contains(&format!("inet {} peer {}/32", ca.address, rec.gateway)),
        "{addr}"
    );
    let routes = a.sh("ip route");
    assert!(
        routes.contains(&format!("default via {} dev eth0", rec.gateway)),
        "{routes}"
    );
    assert!(a.sh("ip link show lo").contains("UP"), "lo is down");
    assert_eq!(
        a.sh("cat /proc/sys/net/ipv6/conf/all/disable_ipv6").trim(),
        "1"
    );
    assert_eq!(
        a.sh("ip -6 addr show dev eth0").trim(),
        "",
        "eth0 has IPv6 addresses"
    );
    // Host side: the bridge with the gateway and no IPv6; one veth per container, a /32 route.
    let br = w.host.sh(&format!("ip addr show dev {}", rec.bridge));
    assert!(br.contains(&format!("inet {}/24", rec.gateway)), "{br}");
    assert!(!br.contains("inet6"), "bridge has IPv6: {br}");
    let hroutes = w.host.sh("ip route");
    assert!(
        hroutes.contains(&format!("{} dev {}", ca.address, ca.veth)),
        "{hroutes}"
    );
    assert!(
        w.host
            .sh(&format!(
                "cat /proc/sys/net/ipv4/conf/{}/route_localnet",
                ca.veth
            ))
            .trim()
            == "1"
    );
    // Not a bridge port: traffic is routed, never switched.
    assert!(!w
        .host
        .sh(&format!("ip -d link show {}", ca.veth))
        .contains("master"));
    // And it works: a pings b through the host.
    let bip = rec.containers["b"].address;
    w.host.sh("echo 1 > /proc/sys/net/ipv4/ip_forward");
    assert!(a
        .try_sh(&format!("busybox ping -c1 -W1 {bip}"))
        .status
        .success());

    // Teardown removes exactly what the record names, twice without error.
    let json = serde_json::to_string(&rec).unwrap();
    let rec2: NetRecord = serde_json::from_str(&json).unwrap();
    w.host.run(|| net::teardown(&rec2)).unwrap();
    w.host.run(|| net::teardown(&rec2)).unwrap();
    w.host.sh(&format!("echo {fwd_before} > /proc/sys/net/ipv4/ip_forward"));
    assert_eq!(w.host.snapshot(), before_dummy);
    w.host.sh("ip route del 10.89.0.0/25");
    assert_eq!(w.host.snapshot(), before);
    assert_eq!(
        a.sh("ip -o link").lines().count(),
        1,
        "only lo is left in the container"
    );
}

#[test]
fn second_state_root_never_shares_objects() {
    let w = World::new(false);
    let a = Ns::new("a");
    let one = AppId::derive(&w.root.path().join("one"), "app");
    let two = AppId::derive(&w.root.path().join("two"), "app");
    assert_ne!(one.bridge(), two.bridge());
    let mut r1 = NetRecord::plan(one, "10.89.0.0/24".parse().unwrap()).unwrap();
    r1.assign("a").unwrap();
    let fa = a.file();
    w.host.run(|| AppNet::create(&r1)).unwrap();
    // Creating it again is refused with advice, not silently adopted.
    let e = w.host.run(|| AppNet::create(&r1)).unwrap_err();
    assert!(e.to_string().contains("tfctl down"), "{e}");
    w.host
        .run(|| AppNet::attach_container(&r1, "a", fa.as_fd()))
        .unwrap();
    w.host.run(|| net::teardown(&r1)).unwrap();
}
