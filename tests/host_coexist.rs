//! A host that already runs things: a published port someone holds is refused before anything
//! starts, and a port tfctl publishes cannot be taken while the app runs.

mod common;

use common::{sample_image, stderr, NetNs, Tfctl};
use std::time::{Duration, Instant};

fn app(dir: &std::path::Path, port: u16) -> String {
    let file = dir.join("app.kdl");
    std::fs::write(
        &file,
        format!(
            "app \"pt\"\ncontainer \"web\" {{\n image \"{}\"\n command \"httpd\" \"-f\" \"-p\" \"80\" \"-h\" \"/\"\n stop-timeout \"1s\"\n publish {port} to=80\n}}\n",
            sample_image()
        ),
    )
    .unwrap();
    file.to_string_lossy().into_owned()
}

/// A host service listening on the port, started in the test's namespace.
fn listen(ns: &NetNs, addr: &str, port: u16) -> std::process::Child {
    let child = ns
        .cmd("python3")
        .args(["-c", &format!("import socket,time\ns=socket.socket()\ns.bind(('{addr}',{port}))\ns.listen()\nprint('ready',flush=True)\ntime.sleep(60)")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ns.sh(&format!("ss -ltn | grep -q ':{port} '")).status.code() != Some(0) {
        assert!(Instant::now() < deadline, "the host service did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn leftovers(ns: &NetNs) -> String {
    let o = ns.sh("ip -o link | grep -E 'tf[bv]' ; nft list tables | grep tfctl");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_port_a_host_service_holds_is_refused_and_a_published_one_cannot_be_taken() {
    sample_image();
    let ns = NetNs::new("ports");
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    let port = 18431;
    let file = app(dir.path(), port);

    for addr in ["127.0.0.1", "0.0.0.0"] {
        let mut service = listen(&ns, addr, port);
        let o = t.run_in(&ns, &["up", "--wait=30s", &file]);
        assert_eq!(o.status.code(), Some(1), "{addr}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(&format!("host port {port}/tcp is already in use by python3 (pid {})", service.id())), "{err}");
        assert_eq!(leftovers(&ns), "", "up left objects behind");
        let _ = service.kill();
        let _ = service.wait();
        let _ = t.run_in(&ns, &["down", "pt"]);
    }

    // The control: with the port free, up works, and while it runs no host service can take it.
    let o = t.run_in(&ns, &["up", "--wait=30s", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = ns.sh(&format!("python3 -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1', {port}))\""));
    assert!(!o.status.success(), "a host service took the published port");
    assert!(String::from_utf8_lossy(&o.stderr).contains("Address already in use"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = ns.sh(&format!("wget -qO- -T 2 http://127.0.0.1:{port}/etc/hosts"));
        if o.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "the published port does not answer: {}", String::from_utf8_lossy(&o.stderr));
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = t.run_in(&ns, &["down", "pt"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Given back with the app.
    let o = ns.sh(&format!("python3 -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1', {port}))\""));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
