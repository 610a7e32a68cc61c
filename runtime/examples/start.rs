//! Times the start sequence: container starts of `/bin/true` in a busybox rootfs through the
//! spawner, back to back and isolated (50 ms apart, as `hyperfine --prepare 'sleep 0.05'`).
//!
//! usage: start [--iterations N] [--layer DIR] [--upper tmpfs|dirs] [--init] [--no-masks] [--seccomp]
//!
//! `--seccomp` installs Moby's default profile (compiled once, as tfctl caches it per capability set).
//! `--print-crun-hardening` prints, as JSON, what makes a crun bundle equivalent to these starts
//! (`{"seccomp": <Moby's profile resolved for Docker's default caps, OCI form>, "caps": [...]}`)
//! and exits: bench/start.sh merges it into crun's default spec.
//!
//! Prints, per mode, the median, p90, min and max of launch-to-exec ("started") and
//! launch-to-exit ("run") in milliseconds. Needs root. Without --layer it builds a busybox layer
//! in a temp dir from /bin/busybox.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tfctl_runtime::spawn::*;

fn main() {
    // First: the spawner must be forked while we are single-threaded.
    let spawner = Spawner::start().expect("spawner");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    if flag("--print-crun-hardening") {
        print_crun_hardening();
        return;
    }
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let iterations: usize = value("--iterations").map_or(200, |v| v.parse().expect("--iterations N"));
    let tmp = tempfile::Builder::new().prefix("tfctl-start-bench-").tempdir().expect("temp dir");
    let layer = value("--layer").map(PathBuf::from).unwrap_or_else(|| busybox_layer(tmp.path()));
    let upper = match value("--upper").as_deref() {
        None | Some("tmpfs") => OverlayUpper::Tmpfs { size_bytes: 64 << 20 },
        Some("dirs") => {
            let (u, w) = (tmp.path().join("upper"), tmp.path().join("work"));
            std::fs::create_dir_all(&u).unwrap();
            std::fs::create_dir_all(&w).unwrap();
            OverlayUpper::Dirs { upper: u, work: w }
        }
        Some(other) => panic!("--upper tmpfs|dirs, not {other}"),
    };
    let mountpoint = tmp.path().join("mnt");
    std::fs::create_dir_all(&mountpoint).unwrap();
    let masks = !flag("--no-masks");
    let plan = StartPlan {
        mode: Mode::Container(Box::new(ContainerSetup {
            rootfs: Rootfs { source: RootfsSource::Overlay { layers: vec![layer], upper }, mountpoint },
            mounts: MountStep::defaults(),
            files: vec![],
            masked_paths: if masks { MASKED_PATHS.iter().map(|s| s.to_string()).collect() } else { vec![] },
            readonly_paths: if masks { READONLY_PATHS.iter().map(|s| s.to_string()).collect() } else { vec![] },
            readonly_rootfs: false,
            hostname: Some("bench".into()),
            secret_targets: vec![],
            idmapped_binds_below: Vec::new(),
            sysctls: vec![],
            host_pid: false,
        })),
        process: Process { argv: vec!["/bin/true".into()], env: vec!["PATH=/bin".into()], cwd: "/".into() },
        user: User::default(),
        caps: CapSets::docker_default(),
        no_new_privs: true,
        seccomp: if flag("--seccomp") { default_seccomp() } else { vec![] },
        rlimits: vec![],
        init: flag("--init"),
        controlling_tty: false,
        pty: false,
        userns: None,
        detached: false,
    };
    // Warm up (page cache, first overlay mount).
    for _ in 0..3 {
        one(&spawner, &plan);
    }
    for (mode, pause) in [("back to back", Duration::ZERO), ("isolated", Duration::from_millis(50))] {
        let mut started = Vec::with_capacity(iterations);
        let mut ran = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            std::thread::sleep(pause);
            let (s, r) = one(&spawner, &plan);
            started.push(s);
            ran.push(r);
        }
        println!("{mode:>12}: started {}   run {}   (n={iterations})", summary(&mut started), summary(&mut ran));
    }
}

/// One start of /bin/true: (launch to exec, launch to exit).
fn one(spawner: &Spawner, plan: &StartPlan) -> (f64, f64) {
    let t0 = Instant::now();
    let child = spawner.launch(plan, StartFds::default()).unwrap_or_else(|e| panic!("{e}"));
    let started = t0.elapsed();
    let status = child.wait().expect("exit");
    let ran = t0.elapsed();
    assert_eq!(status, ExitStatus::Exited(0));
    (started.as_secs_f64() * 1e3, ran.as_secs_f64() * 1e3)
}

fn summary(v: &mut [f64]) -> String {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!("median {:.2} ms, p90 {:.2}, min {:.2}, max {:.2}", at(0.5), at(0.9), v[0], v[v.len() - 1])
}

fn busybox_layer(dir: &Path) -> PathBuf {
    let layer = dir.join("layer");
    for d in ["bin", "proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(layer.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", layer.join("bin/busybox")).expect("/bin/busybox (busybox-static)");
    for applet in ["sh", "true"] {
        std::os::unix::fs::symlink("busybox", layer.join("bin").join(applet)).unwrap();
    }
    layer
}

fn default_seccomp() -> Vec<BpfProgram> {
    use tfctl_runtime::seccomp::{programs, SeccompPolicy};
    let caps = tfctl_runtime::capabilities::CapSet(CapSets::docker_default().bounding);
    let p = programs(&SeccompPolicy::Default, caps).expect("profile").expect("confined");
    std::iter::once(p.main.clone()).chain(p.clone3_enosys.clone()).map(BpfProgram::from).collect()
}

fn print_crun_hardening() {
    use tfctl_runtime::capabilities::CapSet;
    use tfctl_runtime::seccomp::{oci::to_oci, resolve, Arch, KernelVersion, MOBY_DEFAULT};
    let caps = CapSet(CapSets::docker_default().bounding);
    let resolved = resolve(&MOBY_DEFAULT, Arch::native(), KernelVersion::running().unwrap(), caps).unwrap();
    let seccomp = to_oci(&resolved).unwrap();
    let names: Vec<String> = caps.names().into_iter().map(|n| if n.starts_with("CAP_") { n } else { format!("CAP_{n}") }).collect();
    println!("{}", serde_json::json!({ "seccomp": seccomp, "caps": names }));
}
