//! A host that already runs things (issue 13): Docker Engine (Debian's docker.io: iptables-nft
//! rules, `FORWARD` policy drop, its own bridge), or a host firewall with drop policies in its own
//! nftables table. With either, tfctl's containers keep their traffic, egress and published
//! ports as without it, and Docker's containers keep theirs; after `down`, nothing of tfctl's
//! remains in the other tables. Real traffic, in the test's own network namespaces: the "host"
//! (where dockerd and tfctl run) and an "outside" network behind it, so that published ports and
//! egress take the forward path where those drop policies apply.
//!
//! The control in each test deletes tfctl's accept rules from the other table by hand and sees
//! the admitted connection dropped, then has `up` (a reconcile) put them back: so the rules are
//! what makes the difference. (Before the fix, the same connections were dropped with Docker
//! running: `a` never reached `b:5432`.)

mod common;

use common::docker::Docker;
use common::{sample_image, stderr, stdout, NetNs, Tfctl};

/// The outside world's address and the host's address facing it.
const OUTSIDE: &str = "192.0.2.2";
const HOST: &str = "192.0.2.1";
/// Ports: tfctl's published one, Docker's published ones, a host listener, an outside listener.
const TFCTL_PUBLISHED: u16 = 18080;
const DOCKER_PUBLISHED: u16 = 18081;
const DOCKER_PUBLISHED_LATER: u16 = 18082;
const HOST_PORT: u16 = 17070;
const OUTSIDE_PORT: u16 = 19090;

/// The test's "host" namespace with an outside network behind it (192.0.2.0/24 over a veth), a
/// tfctl state root and a scratch folder. ip_forward is left at 0, as on a fresh host: dockerd
/// sets it to 1, and sets FORWARD's policy to drop only when it does so.
struct World {
    dir: tempfile::TempDir,
    t: Tfctl,
    outside: NetNs,
    ns: NetNs,
    app_file: String,
}

fn must(o: std::process::Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

impl World {
    fn new(tag: &str) -> World {
        let ns = NetNs::new(tag);
        let outside = NetNs::new(&format!("{tag}o"));
        must(
            ns.sh(&format!(
                "ip link add xo0 type veth peer name xo1 netns {} && ip addr add {HOST}/24 dev xo0 && ip link set xo0 up",
                outside.name
            )),
            "outside link",
        );
        must(outside.sh(&format!("ip addr add {OUTSIDE}/24 dev xo1 && ip link set xo1 up && ip route add default via {HOST}")), "outside address");
        let dir = tempfile::tempdir().unwrap();
        let app_file = dir.path().join("app.kdl").to_string_lossy().into_owned();
        std::fs::write(&app_file, app()).unwrap();
        World { dir, t: Tfctl::new(), outside, ns, app_file }
    }

    fn up(&self) {
        let o = self.t.run_in(&self.ns, &["up", "--trust-file", "--wait=30s", &self.app_file]);
        assert_eq!(o.status.code(), Some(0), "up: {}", stderr(&o));
    }

    fn down(&self) {
        let o = self.t.run_in(&self.ns, &["down", "co"]);
        assert_eq!(o.status.code(), Some(0), "down: {}", stderr(&o));
    }

    fn address(&self, container: &str) -> String {
        let o = self.t.run_in(&self.ns, &["ps", "co", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("ps prints JSON");
        let c = v["apps"][0]["containers"].as_array().expect("ps lists containers").iter().find(|c| c["name"] == container).cloned().unwrap();
        c["address"].as_str().unwrap().split('/').next().unwrap().to_string()
    }

    /// Whether container `from` of the app gets "ok" from ip:port over tcp.
    fn reaches(&self, from: &str, ip: &str, port: u16) -> bool {
        let o = self.t.run_in(&self.ns, &["exec", &format!("co/{from}"), "--", "sh", "-c", &format!("echo | nc -w 1 {ip} {port}")]);
        stdout(&o).contains("ok")
    }

    /// The app's gateway, as container `c` sees it (its default route): one of the host's
    /// addresses.
    fn gateway(&self, c: &str) -> String {
        let route = stdout(&self.t.run_in(&self.ns, &["exec", &format!("co/{c}"), "--", "ip", "route"]));
        route.lines().find_map(|l| l.strip_prefix("default via ")).and_then(|l| l.split_whitespace().next()).expect("a default route").to_string()
    }

    /// The nft ruleset of the host namespace.
    fn ruleset(&self) -> String {
        must(self.ns.sh("nft list ruleset"), "nft list ruleset")
    }

    /// Deletes tfctl's accept rules from every chain of `family table` (the control).
    fn delete_tfctl_accepts(&self, family: &str, table: &str) -> usize {
        let listing = must(self.ns.sh(&format!("nft -a list table {family} {table}")), "nft -a list table");
        let mut chain = String::new();
        let mut n = 0;
        for line in listing.lines() {
            let l = line.trim();
            if let Some(rest) = l.strip_prefix("chain ") {
                chain = rest.split_whitespace().next().unwrap().to_string();
            } else if l.contains("comment \"tfctl_") {
                let handle = l.rsplit("# handle ").next().unwrap().trim();
                must(self.ns.sh(&format!("nft delete rule {family} {table} {chain} handle {handle}")), "nft delete rule");
                n += 1;
            }
        }
        n
    }
}

/// Whether `ns` gets "ok" (or Docker's page) from ip:port over tcp; `eventually` for the first
/// contact with a server that may not listen yet.
fn fetch(ns: &NetNs, ip: &str, port: u16) -> String {
    stdout(&ns.sh(&format!("echo | busybox nc -w 1 {ip} {port}; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 1 {ip} {port}")))
}

fn answers(ns: &NetNs, ip: &str, port: u16) -> bool {
    let page = fetch(ns, ip, port);
    page.contains("ok") || page.contains("docker-page")
}

fn eventually(mut f: impl FnMut() -> bool) -> bool {
    (0..30).any(|_| f() || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        false
    })
}

/// The app: `b` serves on 5432, 5433 and 80 (healthy once all answer) and admits `a` on 5432 and
/// 5433 and publishes 80; `a` may reach the host on HOST_PORT; `c` has `egress "deny"`.
fn app() -> String {
    let image = sample_image();
    let listeners: String = [5432, 5433, 80].iter().map(|p| format!("nc -ll -p {p} -e echo ok & ")).collect();
    let probe = "for p in 5432 5433 80; do echo | nc -w 1 127.0.0.1 $$p | grep -q ok || exit 1; done";
    format!(
        "app \"co\"\n\
         container \"b\" {{\n image \"{image}\"\n command \"sh\" \"-c\" \"{listeners}wait\"\n init\n stop-timeout \"1s\"\n health {{\n  exec \"sh\" \"-c\" \"{probe}\"\n  interval \"100ms\"\n  retries 100\n }}\n allow from=\"a\" port=5432\n allow from=\"a\" port=5433\n publish {TFCTL_PUBLISHED} to=80\n}}\n\
         container \"a\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n init\n stop-timeout \"1s\"\n allow-egress to=\"host\" port={HOST_PORT}\n}}\n\
         container \"c\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n init\n stop-timeout \"1s\"\n egress \"deny\"\n}}\n"
    )
}

/// Listeners answering "ok" in `ns` on `port` until dropped; returns once one answers.
struct Listener(std::process::Child);

impl Listener {
    fn new(ns: &NetNs, port: u16) -> Listener {
        let l = Listener(ns.cmd("busybox").args(["nc", "-ll", "-p", &port.to_string(), "-e", "echo", "ok"]).spawn().unwrap());
        assert!(eventually(|| fetch(ns, "127.0.0.1", port).contains("ok")), "the listener on {port} in {} does not answer", ns.name);
        l
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Everything tfctl's app must be able to do, and must not: checked with a host firewall or
/// Docker in place. `expect_explicit_drop`: the host's table drops tcp port 5433 explicitly,
/// which tfctl must not override.
fn check_tfctl_traffic(w: &World, explicit_drop_5433: bool) {
    let b = w.address("b");
    // Between containers, on the forward path.
    assert!(w.reaches("a", &b, 5432), "a cannot reach b:5432 although allowed");
    assert!(!w.reaches("c", &b, 5432), "c reaches b:5432 although only a is allowed");
    assert!(!w.reaches("a", &b, 80), "a reaches b:80, which no allow admits");
    if explicit_drop_5433 {
        assert!(!w.reaches("a", &b, 5433), "a reaches b:5433 although the host's own rule drops it");
    } else {
        assert!(w.reaches("a", &b, 5433), "a cannot reach b:5433 although allowed");
    }
    // Egress: to the outside (forwarded) by default, to the host (input) with allow-egress.
    assert!(w.reaches("a", OUTSIDE, OUTSIDE_PORT), "a cannot reach the outside with egress allowed");
    assert!(!w.reaches("c", OUTSIDE, OUTSIDE_PORT), "c reaches the outside with egress \"deny\"");
    let gw = w.gateway("a");
    assert!(w.reaches("a", &gw, HOST_PORT), "a cannot reach the host ({gw}:{HOST_PORT}) with allow-egress to=\"host\"");
    assert!(!w.reaches("c", &gw, HOST_PORT), "c reaches the host without allow-egress");
    // The published port: from the host itself and, forwarded, from the outside.
    assert!(eventually(|| answers(&w.ns, "127.0.0.1", TFCTL_PUBLISHED)), "tfctl's published port does not answer on the host");
    assert!(answers(&w.outside, HOST, TFCTL_PUBLISHED), "tfctl's published port does not answer from the outside");
    assert!(!answers(&w.outside, &b, 80), "the outside reaches b:80 directly");
}

/// Docker's container with a page, published on `port`; Docker starts it again when it restarts.
fn docker_web(d: &Docker, name: &str, port: u16) {
    d.must(&[
        "run", "-d", "--restart", "always", "--name", name, "-p", &format!("{port}:80"), "tfctl-busybox:latest",
        "sh", "-c", "mkdir -p /w && echo docker-page > /w/index.html && exec httpd -f -p 80 -h /w",
    ]);
}

fn docker_reached(w: &World, port: u16) -> bool {
    eventually(|| fetch(&w.ns, "127.0.0.1", port).contains("docker-page")) && eventually(|| fetch(&w.outside, HOST, port).contains("docker-page"))
}

#[test]
fn with_docker_running_both_keep_their_traffic_and_down_leaves_dockers_chains_as_they_were() {
    let w = World::new("dk");
    let _out = Listener::new(&w.outside, OUTSIDE_PORT);
    let _host = Listener::new(&w.ns, HOST_PORT);
    let mut docker = Docker::start(&w.ns.path());
    docker.load(&sample_image(), "tfctl-busybox:latest");
    docker_web(&docker, "web", DOCKER_PUBLISHED);
    assert!(docker_reached(&w, DOCKER_PUBLISHED), "Docker's published port does not answer before tfctl");
    let forward = must(w.ns.sh("nft list chain ip filter FORWARD"), "Docker's FORWARD chain");
    assert!(forward.contains("policy drop"), "Docker did not set FORWARD's policy to drop, the test proves nothing:\n{forward}");
    let docker_rules_before = must(w.ns.sh("iptables-nft-save -t filter | grep -v '^#' | sed 's/\\[[0-9:]*\\]//'"), "iptables-nft-save");

    w.up();
    check_tfctl_traffic(&w, false);
    // tfctl's accepts are in Docker's FORWARD, at its end, one per direction, and iptables-nft
    // (Docker's tool) reads the table as before.
    let save = w.ns.sh("iptables-nft-save -t filter");
    assert!(save.status.success() && !stderr(&save).contains("incompatible"), "iptables-nft-save: {}", stderr(&save));
    let saved = stdout(&save);
    let ours: Vec<&str> = saved.lines().filter(|l| l.contains("tfctl_")).map(str::trim).collect();
    assert_eq!(ours.len(), 2, "tfctl's accepts in Docker's table:\n{saved}");
    assert!(ours[0].starts_with("-A FORWARD -i tfv") && ours[0].ends_with("-j ACCEPT"), "{}", ours[0]);
    assert!(ours[1].starts_with("-A FORWARD -o tfv") && ours[1].ends_with("-j ACCEPT"), "{}", ours[1]);
    let listed = w.ns.sh("iptables-nft -L FORWARD -v -n");
    assert!(listed.status.success() && !stderr(&listed).contains("incompatible"), "iptables-nft -L: {}", stderr(&listed));
    // Docker keeps working with tfctl's rules in its table: the old container, and a new one it
    // starts and publishes now.
    assert!(docker_reached(&w, DOCKER_PUBLISHED), "Docker's published port does not answer with tfctl up");
    docker_web(&docker, "later", DOCKER_PUBLISHED_LATER);
    assert!(docker_reached(&w, DOCKER_PUBLISHED_LATER), "a container Docker started after tfctl's up is not reached");
    check_tfctl_traffic(&w, false);

    // Control: without tfctl's accepts, Docker's policy drops what tfctl's table admits; a
    // reconcile (`up` again) puts them back.
    assert_eq!(w.delete_tfctl_accepts("ip", "filter"), 2);
    let b = w.address("b");
    assert!(!w.reaches("a", &b, 5432), "a reaches b:5432 without tfctl's accepts: they are not what makes the difference");
    w.up();
    assert!(w.reaches("a", &b, 5432), "up did not put tfctl's accepts back");

    w.down();
    assert!(!w.ruleset().contains("tfv"), "tfctl's rules remain after down:\n{}", w.ruleset());
    let docker_rules_after = must(w.ns.sh("iptables-nft-save -t filter | grep -v '^#' | sed 's/\\[[0-9:]*\\]//'"), "iptables-nft-save");
    let without_later = |s: &str| s.lines().filter(|l| !l.contains("172.17.0.3")).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(without_later(&docker_rules_after), without_later(&docker_rules_before), "down changed Docker's filter table beyond the container it started meanwhile");
    assert!(docker_reached(&w, DOCKER_PUBLISHED), "Docker's published port does not answer after tfctl's down");
    assert!(docker_reached(&w, DOCKER_PUBLISHED_LATER), "Docker's later container is not reached after tfctl's down");

    // Docker restarting while an app runs rebuilds its chains without flushing FORWARD: tfctl's
    // accepts stay, and both keep their traffic.
    w.up();
    docker.restart();
    let save = must(w.ns.sh("iptables-nft-save -t filter"), "iptables-nft-save");
    assert_eq!(save.lines().filter(|l| l.contains("tfctl_")).count(), 2, "tfctl's accepts after Docker restarted:\n{save}");
    assert!(must(w.ns.sh("nft list chain ip filter FORWARD"), "FORWARD").contains("policy drop"));
    check_tfctl_traffic(&w, false);
    assert!(
        docker_reached(&w, DOCKER_PUBLISHED),
        "Docker's published port does not answer after Docker restarted: {}\n{}\n{}",
        docker.must(&["ps", "-a"]),
        must(w.ns.sh("iptables-nft-save; ip -br addr"), "iptables-nft-save"),
        fetch(&w.ns, "127.0.0.1", DOCKER_PUBLISHED)
    );
    w.down();
    assert!(!w.ruleset().contains("tfv"), "tfctl's rules remain after down:\n{}", w.ruleset());
}

/// A host firewall of the host's own: forward drops by policy, with one explicit drop (tcp port
/// 5433) that must keep applying to tfctl's containers; input ends, firewalld's way, in an
/// unconditional reject after admitting established connections and loopback.
const HOSTFW: &str = "table inet hostfw {
  chain forward_drop {
    type filter hook forward priority 0; policy drop;
    tcp dport 5433 drop
  }
  chain input_reject {
    type filter hook input priority 0; policy accept;
    ct state established,related accept
    iifname \"lo\" accept
    reject with icmpx type admin-prohibited
  }
}
";

#[test]
fn with_a_host_firewall_dropping_by_default_the_app_keeps_its_traffic_and_the_firewall_its_own_rules() {
    let w = World::new("hf");
    let _out = Listener::new(&w.outside, OUTSIDE_PORT);
    let _host = Listener::new(&w.ns, HOST_PORT);
    std::fs::write(w.dir.path().join("hostfw.nft"), HOSTFW).unwrap();
    must(w.ns.sh(&format!("nft -f {}", w.dir.path().join("hostfw.nft").display())), "loading the host firewall");
    let before = must(w.ns.sh("nft list table inet hostfw"), "nft list table");
    // The firewall is in force: the outside cannot reach the host's listener.
    assert!(!answers(&w.outside, HOST, HOST_PORT), "the host firewall does not drop, the test proves nothing");

    w.up();
    check_tfctl_traffic(&w, true);
    let table = must(w.ns.sh("nft list table inet hostfw"), "nft list table");
    assert_eq!(table.matches("comment \"tfctl_").count(), 3, "tfctl's accepts (two in forward_drop, one in input_reject):\n{table}");
    // In the input chain, before the final reject.
    let input = must(w.ns.sh("nft list chain inet hostfw input_reject"), "nft list chain");
    let at = |what: &str| input.lines().position(|l| l.contains(what)).unwrap_or_else(|| panic!("{what} in:\n{input}"));
    assert!(at("iifname \"lo\"") < at("comment \"tfctl_") && at("comment \"tfctl_") < at("reject with"), "tfctl's accept is not between the host's rules and its reject:\n{input}");
    // The host firewall still drops what it dropped.
    assert!(!answers(&w.outside, HOST, HOST_PORT), "the outside reaches the host's listener with tfctl up");

    // Control: without tfctl's accepts the host firewall drops the app's traffic; `up` puts
    // them back.
    assert_eq!(w.delete_tfctl_accepts("inet", "hostfw"), 3);
    let b = w.address("b");
    assert!(!w.reaches("a", &b, 5432), "a reaches b:5432 without tfctl's accepts: they are not what makes the difference");
    let gw = w.gateway("a");
    assert!(!w.reaches("a", &gw, HOST_PORT), "a reaches the host without tfctl's accept in the input chain");
    w.up();
    assert!(w.reaches("a", &b, 5432), "up did not put tfctl's accepts back");
    assert!(w.reaches("a", &gw, HOST_PORT), "up did not put tfctl's accept back in the input chain");

    w.down();
    assert_eq!(must(w.ns.sh("nft list table inet hostfw"), "nft list table"), before, "down left the host firewall changed");
    assert!(!w.ruleset().contains("tfv"), "tfctl's rules remain after down:\n{}", w.ruleset());
}
