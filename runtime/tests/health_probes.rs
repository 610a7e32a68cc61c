//! Health probes run inside the container's network namespace: a server that listens only on a
//! namespace's loopback is healthy through that namespace and unreachable from the test's own.

#[path = "common/skip.rs"]
mod skip;

use std::os::fd::AsFd;
use std::process::{Child, Command};
use std::time::Duration;

use tfctl_runtime::health;

struct Netns {
    name: String,
    server: Option<Child>,
    _www: tempfile::TempDir,
}

impl Netns {
    fn with_httpd(port: u16) -> Netns {
        let name = format!("tfhealth-{}", std::process::id());
        let ok = Command::new("ip").args(["netns", "add", &name]).status().unwrap().success();
        assert!(ok, "ip netns add failed");
        let www = tempfile::tempdir().unwrap();
        std::fs::write(www.path().join("index.html"), "ok").unwrap();
        let mut ns = Netns { name, server: None, _www: www };
        let run = |args: &[&str]| Command::new("ip").args(["netns", "exec", &ns.name]).args(args).status().unwrap();
        assert!(run(&["ip", "link", "set", "lo", "up"]).success());
        let server = Command::new("ip")
            .args(["netns", "exec", &ns.name, "busybox", "httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
            .arg(ns._www.path())
            .spawn()
            .unwrap();
        ns.server = Some(server);
        ns
    }

    fn fd(&self) -> std::fs::File {
        std::fs::File::open(format!("/run/netns/{}", self.name)).unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

#[tokio::test]
async fn probes_reach_the_namespace_loopback_and_only_it() {
    if !nix::unistd::geteuid().is_root() {
        skip::cannot_run("health probes", "needs root for network namespaces");
        return;
    }
    let ns = Netns::with_httpd(18080);
    let fd = ns.fd();
    let t = Duration::from_secs(2);
    // The server may take a moment to listen.
    let mut ready = false;
    for _ in 0..50 {
        if health::tcp(fd.as_fd(), 18080, t).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "tcp probe never passed inside the namespace");
    assert_eq!(health::http(fd.as_fd(), "http://localhost:18080/", t).await.unwrap(), 200);
    // Same probes, differing only in what they aim at.
    assert!(health::tcp(fd.as_fd(), 18081, t).await.is_err(), "nothing listens on 18081");
    let err = health::http(fd.as_fd(), "http://localhost:18080/missing", t).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    // From the test's own namespace the server is not there at all.
    let own = std::fs::File::open("/proc/self/ns/net").unwrap();
    assert!(health::tcp(own.as_fd(), 18080, t).await.is_err(), "the probe did not run in the container's namespace");
}
