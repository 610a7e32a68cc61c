//! The name files tfctl writes into every container before boot: /etc/hosts (every container
//! of the app by name and NAME.APP) and /etc/resolv.conf (the host's own upstream nameservers,
//! never a loopback one the container cannot reach, never a public resolver).

use std::net::{IpAddr, Ipv4Addr};

use tfctl_schema::model::ExtraHost;

/// `peers` are the app's names (containers, then their aliases) with their addresses; `extra`
/// the container's own `extra-host` lines, which come last.
pub fn hosts(app: &str, hostname: &str, own: Option<Ipv4Addr>, peers: &[(String, Ipv4Addr)], extra: &[ExtraHost]) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n");
    if own.is_none() {
        out.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    for (name, ip) in peers {
        out.push_str(&format!("{ip}\t{name}.{app} {name}\n"));
    }
    for h in extra {
        out.push_str(&format!("{}\t{}\n", h.addr, h.name));
    }
    out
}

fn nameservers_in(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|s| s.trim().to_string())
        .filter(|s| s.parse::<Ipv4Addr>().is_ok_and(|ip| !ip.is_loopback()))
        .collect()
}

/// The container's `dns` servers (`dns`, `run --dns`) when it names some; else the host's non-loopback nameservers,
/// with systemd-resolved (127.0.0.53) its upstream list.
pub fn resolv_conf(dns: &[IpAddr]) -> String {
    if !dns.is_empty() {
        return dns.iter().map(|s| format!("nameserver {s}\n")).collect();
    }
    let mut servers = nameservers_in(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
    if servers.is_empty() {
        servers = nameservers_in(&std::fs::read_to_string("/run/systemd/resolve/resolv.conf").unwrap_or_default());
    }
    servers.iter().map(|s| format!("nameserver {s}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_resolvers_are_dropped() {
        assert_eq!(nameservers_in("nameserver 127.0.0.53\nnameserver 10.0.0.2\n# x\nnameserver ::1\n"), vec!["10.0.0.2"]);
    }

    #[test]
    fn hosts_names_every_peer_with_and_without_the_app() {
        let extra = [ExtraHost { name: "gw.local".into(), addr: Ipv4Addr::new(192, 0, 2, 1).into() }];
        let h = hosts("shop", "web", Some(Ipv4Addr::new(10, 89, 0, 2)), &[("web".into(), Ipv4Addr::new(10, 89, 0, 2)), ("db".into(), Ipv4Addr::new(10, 89, 0, 3))], &extra);
        assert!(h.contains("10.89.0.3\tdb.shop db\n"));
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("192.0.2.1\tgw.local\n"));
    }

    #[test]
    fn dns_replaces_the_hosts_nameservers() {
        assert_eq!(resolv_conf(&["192.0.2.53".parse().unwrap(), "2001:db8::53".parse().unwrap()]), "nameserver 192.0.2.53\nnameserver 2001:db8::53\n");
    }
}
