//! A reusable fixture for network tests: named network namespaces (a "host", an "outside"
//! world, "containers"), commands and threads run inside them, busybox listeners, reachability
//! probes with short timeouts, and snapshots of what a namespace holds. Everything carries the
//! test process's pid and a counter in its name and is removed on drop, also when a test fails.
//! Nothing here sends traffic outside the namespaces it created.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The outside world's address (TEST-NET-2) and the host's address facing it.
pub const OUTSIDE_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const UPLINK_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

/// A named network namespace (`ip netns add`), deleted on drop with the processes started in it.
pub struct Ns {
    pub name: String,
    children: Vec<Child>,
    dirs: Vec<tempfile::TempDir>,
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    out
}

fn must(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Ns {
    pub fn new(tag: &str) -> Ns {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("tfnet-test-{}-{n}-{tag}", std::process::id());
        must(Command::new("ip").args(["netns", "add", &name]));
        let ns = Ns {
            name,
            children: vec![],
            dirs: vec![],
        };
        ns.sh("ip link set lo up");
        ns
    }

    /// The namespace as a file descriptor (what tfctl's API takes).
    pub fn file(&self) -> File {
        File::open(format!("/run/netns/{}", self.name)).expect("open netns")
    }

    /// Runs `f` on a thread inside the namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let file = self.file();
        std::thread::scope(|s| {
            s.spawn(move || {
                nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .expect("setns");
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Runs a shell command inside the namespace and returns its output.
    pub fn try_sh(&self, cmd: &str) -> Output {
        run(Command::new("ip").args(["netns", "exec", &self.name, "sh", "-c", cmd]))
    }

    /// Runs a shell command inside the namespace; panics if it fails.
    pub fn sh(&self, cmd: &str) -> String {
        must(Command::new("ip").args(["netns", "exec", &self.name, "sh", "-c", cmd]))
    }

    /// Starts `busybox httpd` on `port` serving a page that names `tag`; waits until it listens.
    pub fn httpd(&mut self, ip: Ipv4Addr, port: u16, tag: &str) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), format!("hello from {tag}\n")).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.name,
                "busybox",
                "httpd",
                "-f",
                "-p",
                &format!("{ip}:{port}"),
                "-h",
            ])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn busybox httpd");
        self.children.push(child);
        self.dirs.push(dir);
        let local = if ip.is_unspecified() {
            Ipv4Addr::LOCALHOST
        } else {
            ip
        };
        for _ in 0..200 {
            if self.run(|| {
                TcpStream::connect_timeout(
                    &SocketAddr::from((local, port)),
                    Duration::from_millis(100),
                )
                .is_ok()
            }) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "busybox httpd on {ip}:{port} in {} did not start",
            self.name
        );
    }

    /// `nft list ruleset` and `ip -d link` (without volatile counters) inside the namespace.
    pub fn snapshot(&self) -> (String, String) {
        let rules = self.sh("nft list ruleset");
        let links = self.sh("ip -d link");
        (rules, links)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// GETs http://dst/ from inside `from`, optionally from a chosen source address; true when the
/// page arrives within about a second.
pub fn http_get(from: &Ns, src: Option<Ipv4Addr>, dst: SocketAddrV4) -> Option<String> {
    from.run(move || -> Option<String> {
        let mut s = match src {
            None => {
                TcpStream::connect_timeout(&SocketAddr::V4(dst), Duration::from_millis(800)).ok()?
            }
            Some(ip) => {
                let sock = socket2_bind(ip)?;
                connect_bound(sock, dst)?
            }
        };
        s.set_read_timeout(Some(Duration::from_millis(800))).ok()?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        body.contains("hello from").then_some(body)
    })
}

/// True when the page arrives; retried twice, since a "can reach" must not fail because a
/// loaded machine was slow once.
pub fn reach(from: &Ns, dst: SocketAddrV4) -> bool {
    (0..3).any(|_| http_get(from, None, dst).is_some())
}

/// The page, retried twice as [`reach`] is.
pub fn get_retried(from: &Ns, dst: SocketAddrV4) -> Option<String> {
    (0..3).find_map(|_| http_get(from, None, dst))
}

/// True when the page does not arrive within one short attempt (for "cannot reach").
pub fn blocked(from: &Ns, dst: SocketAddrV4) -> bool {
    http_get(from, None, dst).is_none()
}

fn socket2_bind(ip: Ipv4Addr) -> Option<std::os::fd::OwnedFd> {
    use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ok()?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(ip, 0)),
    )
    .ok()?;
    Some(fd)
}

fn connect_bound(fd: std::os::fd::OwnedFd, dst: SocketAddrV4) -> Option<TcpStream> {
    use nix::sys::socket::{connect, SockaddrIn};
    use std::os::fd::AsRawFd;
    // A blocking connect with a send timeout (SO_SNDTIMEO bounds connect on Linux).
    nix::sys::socket::setsockopt(
        &fd,
        nix::sys::socket::sockopt::SendTimeout,
        &nix::sys::time::TimeVal::new(0, 800_000),
    )
    .ok()?;
    connect(fd.as_raw_fd(), &SockaddrIn::from(dst)).ok()?;
    Some(TcpStream::from(fd))
}

/// Sends one UDP datagram from inside `from` (optionally from a chosen source address, which
/// must be configured there).
pub fn udp_send(from: &Ns, src: Option<Ipv4Addr>, dst: SocketAddrV4, payload: &[u8]) {
    let payload = payload.to_vec();
    from.run(move || {
        let s = UdpSocket::bind(SocketAddrV4::new(src.unwrap_or(Ipv4Addr::UNSPECIFIED), 0))
            .expect("bind udp");
        s.send_to(&payload, dst).expect("send udp");
    });
}

/// A UDP socket bound inside `ns`, to see what arrives.
pub fn udp_listen(ns: &Ns, port: u16) -> UdpSocket {
    ns.run(move || {
        let s = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).expect("bind udp");
        s.set_read_timeout(Some(Duration::from_millis(700)))
            .unwrap();
        s
    })
}

/// The next datagram within the timeout, if any.
pub fn udp_recv(s: &UdpSocket) -> Option<Vec<u8>> {
    let mut buf = [0u8; 1500];
    s.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

/// A test world: a fresh "host" namespace (where the code under test runs), an "outside"
/// namespace linked to it by a veth (198.51.100.1, the host's default route) running busybox
/// httpd on port 80.
pub struct World {
    pub host: Ns,
    pub outside: Ns,
    pub root: tempfile::TempDir,
}

impl World {
    pub fn new(bridge_nf_off: bool) -> World {
        let host = Ns::new("host");
        let mut outside = Ns::new("out");
        must(Command::new("ip").args([
            "link",
            "add",
            "up0",
            "netns",
            &host.name,
            "type",
            "veth",
            "peer",
            "name",
            "out0",
            "netns",
            &outside.name,
        ]));
        host.sh(&format!("ip addr add {UPLINK_IP}/24 dev up0 && ip link set up0 up && ip route add default via {OUTSIDE_IP}"));
        outside.sh(&format!(
            "ip addr add {OUTSIDE_IP}/24 dev out0 && ip link set out0 up"
        ));
        if bridge_nf_off {
            host.sh(
                "for k in bridge-nf-call-iptables bridge-nf-call-ip6tables; do \
                   f=/proc/sys/net/bridge/$k; if [ -e $f ]; then echo 0 > $f; fi; done",
            );
        }
        outside.httpd(OUTSIDE_IP, 80, "outside");
        World {
            host,
            outside,
            root: tempfile::tempdir().unwrap(),
        }
    }
}
