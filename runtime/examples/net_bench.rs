//! Measures the network layer; run by bench/net.sh inside a throwaway network namespace.
//!
//! 1. Wiring one container: veth pair with its end created in the container's namespace,
//!    addresses, routes, IPv6 off (`attach`), then its firewall rules as set-element adds
//!    (`rules`); goal: under 5 ms for both together.
//! 2. Applying the firewall of an N-container app with one allow each: time, messages and bytes
//!    per N, to show growth is linear.
//!
//! Usage: net_bench [--smoke]

use std::fs::File;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};
use tfctl_runtime::net::firewall::{
    self, Allow, ContainerRules, FirewallSpec, PortRange, Proto, Source,
};
use tfctl_runtime::net::{self as tfnet, AppId, AppNet, NetRecord};

fn new_netns() -> File {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        File::open("/proc/thread-self/ns/net").expect("open the new netns")
    })
    .join()
    .unwrap()
}

/// CPU time (user + system, all threads) used by this process so far: unlike wall time, it does
/// not grow when the machine is busy with other work.
fn cpu() -> Duration {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .expect("getrusage");
    let tv =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(u.user_time()) + tv(u.system_time())
}

fn spec_for(names: &[String]) -> FirewallSpec {
    FirewallSpec {
        containers: names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                // Each container admits the one before it (the first admits itself), so adding a
                // container adds elements and changes none.
                let mut c = ContainerRules::new(n.clone());
                let peer = &names[i.saturating_sub(1)];
                c.allow.push(Allow {
                    from: Source::Container(peer.clone()),
                    ports: Some(PortRange::one(5432)),
                    proto: Some(Proto::Tcp),
                });
                c
            })
            .collect(),
    }
}

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    format!(
        "median {:.2} ms  p90 {:.2} ms  mean {:.2} ms  (n={})",
        ms(v[v.len() / 2]),
        ms(v[(v.len() * 9 / 10).min(v.len() - 1)]),
        mean,
        v.len()
    )
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let root = std::env::temp_dir().join(format!("tfctl-net-bench-{}", std::process::id()));

    // 1. Wiring.
    let n_wire = if smoke { 5 } else { 100 };
    let id = AppId::derive(&root, "wire");
    let mut rec = NetRecord::plan(id, "10.89.0.0/16".parse().unwrap()).unwrap();
    AppNet::create(&rec).expect("create the app's bridge");
    let mut names: Vec<String> = Vec::new();
    let mut spec = FirewallSpec::default();
    firewall::apply(&rec, &spec).expect("apply the empty firewall");
    let (mut attach, mut rules, mut both, mut cpus) = (vec![], vec![], vec![], vec![]);
    let mut namespaces = Vec::new();
    for i in 0..n_wire {
        let ns = new_netns();
        let name = format!("c{i}");
        rec.assign(&name).unwrap();
        names.push(name.clone());
        let c0 = cpu();
        let t0 = Instant::now();
        AppNet::attach_container(&rec, &name, ns.as_fd()).expect("attach");
        let t1 = Instant::now();
        let new_spec = spec_for(&names);
        firewall::update(&rec, &spec, &new_spec).expect("rules for the new container");
        let t2 = Instant::now();
        cpus.push(cpu() - c0);
        spec = new_spec;
        attach.push(t1 - t0);
        rules.push(t2 - t1);
        both.push(t2 - t0);
        namespaces.push(ns);
    }
    println!("wire one container ({n_wire} in a row, app growing):");
    println!(
        "  attach (veth in netns, addresses, routes) : {}",
        stats(attach)
    );
    println!(
        "  rules  (set-element adds)                 : {}",
        stats(rules)
    );
    println!(
        "  total                                     : {}   goal < 5 ms",
        stats(both)
    );
    println!(
        "  total, CPU time of this process           : {}",
        stats(cpus)
    );
    println!(
        "  (load average: {})",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    tfnet::teardown(&rec).expect("teardown");
    drop(namespaces);

    // 2. Firewall apply for N containers with one allow each.
    let sizes: &[usize] = if smoke {
        &[5, 10, 20]
    } else {
        &[25, 50, 100, 200, 400, 800, 1600]
    };
    let reps = if smoke { 2 } else { 7 };
    println!("firewall apply, one allow per container (whole table, one batch):");
    let mut replace = Vec::new();
    println!(
        "  {:>5}  {:>9}  {:>9}  {:>9}  {:>12}  {:>12}",
        "N", "median ms", "messages", "bytes", "ms per cont.", "B per cont."
    );
    for &n in sizes {
        let id = AppId::derive(&root, &format!("fw{n}"));
        let mut rec = NetRecord::plan(id, "10.90.0.0/16".parse().unwrap()).unwrap();
        let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        for nm in &names {
            rec.assign(nm).unwrap();
        }
        let spec = spec_for(&names);
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..reps {
            // Timed from a clean slate: replacing an existing table adds the kernel's cost of
            // deleting it (reported separately below).
            firewall::remove(&rec.table).expect("remove");
            let t = Instant::now();
            let st = firewall::apply(&rec, &spec).expect("apply");
            times.push(t.elapsed());
            last = Some(st);
        }
        times.sort();
        let st = last.unwrap();
        let ms = times[times.len() / 2].as_secs_f64() * 1e3;
        println!(
            "  {:>5}  {:>9.2}  {:>9}  {:>9}  {:>12.4}  {:>12.1}",
            n,
            ms,
            st.messages,
            st.bytes,
            ms / n as f64,
            st.bytes as f64 / n as f64
        );
        let t = Instant::now();
        firewall::apply(&rec, &spec).expect("replace");
        replace.push((n, t.elapsed()));
        firewall::remove(&rec.table).expect("remove");
    }
    let line: Vec<String> = replace
        .iter()
        .map(|(n, d)| format!("N={n}: {:.2} ms", d.as_secs_f64() * 1e3))
        .collect();
    println!(
        "  replacing an existing table (delete + create, one batch): {}",
        line.join(", ")
    );
}
