//! Confinement costs per container start: seccomp compilation (cold and cached) and filter
//! installation (tree vs seccompiler's linear layout), cgroup creation and removal, attaching
//! from the child ("0" to the attach file) vs from the parent (the pid), and the secrets tmpfs.
//! Run by `bench/confine.sh` (root). `--smoke`: a few iterations, figures meaningless.

use std::io::Write;
use std::time::{Duration, Instant};

use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};
use tfctl_runtime::capabilities::{self, CapSet};
use tfctl_runtime::cgroup::{self, CgroupLimits};
use tfctl_runtime::seccomp::{self, Arch, KernelVersion, Layout, SeccompPolicy, MOBY_DEFAULT};
use tfctl_runtime::secrets::{SecretFile, SecretMounts};
use tfctl_schema::model::Owner;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

/// Runs `child` in forked children (single-threaded here), which report a duration each.
fn in_children(n: usize, child: impl Fn() -> Duration) -> Duration {
    let mut samples = Vec::new();
    for _ in 0..n {
        let (r, w) = nix::unistd::pipe().unwrap();
        // SAFETY: this benchmark is single-threaded.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let d = child();
                std::fs::File::from(w)
                    .write_all(&(d.as_nanos() as u64).to_le_bytes())
                    .unwrap();
                // SAFETY: leave without atexit handlers.
                unsafe { libc::_exit(0) };
            }
            ForkResult::Parent { child } => {
                drop(w);
                let mut b = [0u8; 8];
                std::io::Read::read_exact(&mut std::fs::File::from(r), &mut b).unwrap();
                waitpid(child, None).unwrap();
                samples.push(Duration::from_nanos(u64::from_le_bytes(b)));
            }
        }
    }
    median(samples)
}

fn caps(add: &[&str]) -> CapSet {
    let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
    capabilities::resolve(&add, &[], true).unwrap().bounding
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let n = if smoke { 3 } else { 201 };
    let kernel = KernelVersion::running().unwrap();

    let cold: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let r = seccomp::resolve(&MOBY_DEFAULT, Arch::native(), kernel, caps(&["NET_ADMIN"]))
                .unwrap();
            std::hint::black_box(seccomp::compile(&r, Layout::Tree).unwrap());
            t.elapsed()
        })
        .collect();
    println!(
        "seccomp resolve + compile (tree), cache miss: {} median",
        us(median(cold))
    );
    seccomp::programs(&SeccompPolicy::Default, caps(&[])).unwrap();
    let hit: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(seccomp::programs(&SeccompPolicy::Default, caps(&[])).unwrap());
            t.elapsed()
        })
        .collect();
    println!("seccomp programs, cache hit: {} median", us(median(hit)));

    let r = seccomp::resolve(&MOBY_DEFAULT, Arch::native(), kernel, caps(&[])).unwrap();
    for layout in [Layout::Tree, Layout::Linear] {
        let p = seccomp::compile(&r, layout).unwrap();
        let t = in_children(n, || {
            // SAFETY: plain prctl.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            let t = Instant::now();
            seccomp::install(&p.main).unwrap();
            if let Some(c) = &p.clone3_enosys {
                seccomp::install(c).unwrap();
            }
            t.elapsed()
        });
        let extra = p.clone3_enosys.as_ref().map_or(0, Vec::len);
        println!("seccomp install, {layout:?}: {} + {extra} instructions, {} median (goal: tree ~0.16 ms or less)", p.main.len(), us(t));
    }

    if !nix::unistd::geteuid().is_root() {
        println!("SKIP cgroup and secrets figures: need root");
        return;
    }
    let driver = cgroup::detect("confine-bench").unwrap();
    let limits = CgroupLimits {
        memory: Some(256 << 20),
        cpus: Some(1.0),
        pids: 4096,
        pids_explicit: false,
        devices: Vec::new(),
    };
    let (mut create, mut kill, mut remove, mut child_attach, mut parent_attach) =
        (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..n.min(51) {
        let name = format!("tfctl-bench-{}-{i}", std::process::id());
        let t = Instant::now();
        let cg = driver.create(&name, &limits).unwrap();
        let files = cg.attach_files().unwrap();
        create.push(t.elapsed());
        // Isolated, as starts are: a recent cgroup migration leaves the kernel's rcu_sync in
        // its fast state, which would flatter whichever attach comes second.
        std::thread::sleep(Duration::from_millis(if smoke { 1 } else { 50 }));
        // The child attaches itself...
        let fds = files.fds;
        child_attach.push(in_children(1, || {
            let t = Instant::now();
            for fd in &fds {
                std::fs::File::from(fd.try_clone().unwrap())
                    .write_all(b"0")
                    .unwrap();
            }
            t.elapsed()
        }));
        // ...versus the parent writing a child's pid into each `cgroup.procs`.
        // SAFETY: single-threaded; the child only pauses until killed.
        let pid = match unsafe { fork() }.unwrap() {
            ForkResult::Child => loop {
                // SAFETY: plain pause.
                unsafe { libc::pause() };
            },
            ForkResult::Parent { child } => child,
        };
        std::thread::sleep(Duration::from_millis(if smoke { 1 } else { 50 }));
        let t = Instant::now();
        for dir in cg.paths() {
            std::fs::write(dir.join("tasks"), pid.to_string()).unwrap();
        }
        parent_attach.push(t.elapsed());
        let t = Instant::now();
        cg.kill().unwrap();
        kill.push(t.elapsed());
        waitpid(pid, None).unwrap();
        let t = Instant::now();
        cg.remove().unwrap();
        remove.push(t.elapsed());
    }
    println!(
        "cgroup ({:?}) create + open attach files: {} median",
        driver.version(),
        us(median(create))
    );
    println!(
        "cgroup attach from the child (\"0\" to each tasks file), isolated: {} median",
        us(median(child_attach))
    );
    println!(
        "cgroup attach from the parent (pid to each tasks file), isolated: {} median",
        us(median(parent_attach))
    );
    println!("cgroup kill (one process): {} median", us(median(kill)));
    println!("cgroup remove (empty): {} median", us(median(remove)));

    let secret = [b'x'; 64];
    let t: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let mut m = SecretMounts::new().unwrap();
            m.add(&SecretFile {
                target: "/run/secrets/db",
                content: &secret,
                mode: 0o400,
                owner: Owner { uid: 0, gid: 0 },
            })
            .unwrap();
            t.elapsed()
        })
        .collect();
    println!("secrets tmpfs + one file mount: {} median", us(median(t)));
}
