//! Published host ports, reserved: a socket bound to each (and held for as long as the app
//! runs, as docker-proxy holds its listener), so a port a host service or another app already
//! holds is refused before any container starts, instead of being silently taken over by the
//! DNAT rule, and nothing can take it later either.
//!
//! The socket is bound without SO_REUSEADDR and never listens: no connection ever queues on it
//! (the firewall sends published traffic to the container before it could), yet every later
//! bind of the port fails.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrIn};

/// TCP or UDP, as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortProto {
    Tcp,
    Udp,
}

impl std::fmt::Display for PortProto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PortProto::Tcp => "tcp",
            PortProto::Udp => "udp",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("host port {port}/{proto}{on} is already in use{holder}: nothing was started; stop what holds it, or publish the container's port on another host port")]
    InUse { port: u16, proto: PortProto, on: String, holder: String },
    #[error("cannot reserve host port {port}/{proto}: {source}")]
    Reserve {
        port: u16,
        proto: PortProto,
        #[source]
        source: nix::Error,
    },
}

/// One reserved port; dropping it gives the port back.
#[derive(Debug)]
pub struct Reservation {
    pub proto: PortProto,
    pub ip: Option<Ipv4Addr>,
    pub port: u16,
    _socket: OwnedFd,
}

/// Binds `port` on `ip` (every address when `None`) for `proto`.
pub fn reserve(proto: PortProto, ip: Option<Ipv4Addr>, port: u16) -> Result<Reservation, PortError> {
    let ty = match proto {
        PortProto::Tcp => SockType::Stream,
        PortProto::Udp => SockType::Datagram,
    };
    let fd = socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None).map_err(|source| PortError::Reserve { port, proto, source })?;
    let addr = SockaddrIn::from(SocketAddrV4::new(ip.unwrap_or(Ipv4Addr::UNSPECIFIED), port));
    match bind(fd.as_raw_fd(), &addr) {
        Ok(()) => Ok(Reservation { proto, ip, port, _socket: fd }),
        Err(nix::Error::EADDRINUSE) => Err(PortError::InUse {
            port,
            proto,
            on: ip.map(|ip| format!(" on {ip}")).unwrap_or_default(),
            holder: holder(proto, port).map(|h| format!(" by {h}")).unwrap_or_default(),
        }),
        Err(source) => Err(PortError::Reserve { port, proto, source }),
    }
}

/// Reserves every port, all or none.
pub fn reserve_all(ports: impl IntoIterator<Item = (PortProto, Option<Ipv4Addr>, u16)>) -> Result<Vec<Reservation>, PortError> {
    ports.into_iter().map(|(proto, ip, port)| reserve(proto, ip, port)).collect()
}

/// Who holds `port`, as the kernel tells it: the socket's inode in /proc/net/{tcp,udp}[6], then
/// the process with that socket open (`nginx (pid 812)`). `None` when it cannot be told (a
/// socket in another network namespace, or a process that has gone).
pub fn holder(proto: PortProto, port: u16) -> Option<String> {
    let tables: &[&str] = match proto {
        PortProto::Tcp => &["/proc/net/tcp", "/proc/net/tcp6"],
        PortProto::Udp => &["/proc/net/udp", "/proc/net/udp6"],
    };
    let inode = tables.iter().filter_map(|t| std::fs::read_to_string(t).ok()).find_map(|text| socket_inode(&text, port))?;
    let want = format!("socket:[{inode}]");
    for proc in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(proc.path().join("fd")) else { continue };
        if fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == want.as_str())) {
            let comm = std::fs::read_to_string(proc.path().join("comm")).unwrap_or_default();
            return Some(format!("{} (pid {pid})", comm.trim()));
        }
    }
    None
}

/// The inode of the socket bound to local `port` in a /proc/net table (`sl local_address
/// rem_address st ... inode`); a listening TCP socket (state 0A) first.
fn socket_inode(table: &str, port: u16) -> Option<u64> {
    let mut found = None;
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let Some((_, hex_port)) = f[1].rsplit_once(':') else { continue };
        if u16::from_str_radix(hex_port, 16) != Ok(port) {
            continue;
        }
        let inode: u64 = f[9].parse().unwrap_or(0);
        if inode == 0 {
            continue;
        }
        if f[3] == "0A" {
            return Some(inode);
        }
        found.get_or_insert(inode);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_port_is_refused_naming_its_holder() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let err = reserve(PortProto::Tcp, None, port).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, PortError::InUse { .. }), "{text}");
        assert!(text.contains(&format!("{port}/tcp")), "{text}");
        assert!(text.contains(&format!("(pid {})", std::process::id())), "{text}");
        drop(held);
        // The control: once free, it is reserved, and then no one else can bind it.
        let r = reserve(PortProto::Tcp, None, port).unwrap();
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
        assert!(std::net::TcpListener::bind(("0.0.0.0", port)).is_err());
        drop(r);
        std::net::TcpListener::bind(("0.0.0.0", port)).unwrap();
    }

    #[test]
    fn udp_ports_are_reserved_too() {
        let held = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let port = held.local_addr().unwrap().port();
        assert!(matches!(reserve(PortProto::Udp, None, port), Err(PortError::InUse { .. })));
        // TCP and UDP ports are separate.
        let _tcp = reserve(PortProto::Tcp, None, port).unwrap();
    }

    #[test]
    fn reads_the_inode_of_a_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1\n";
        assert_eq!(socket_inode(table, 8080), Some(12345));
        assert_eq!(socket_inode(table, 8081), None);
    }
}
