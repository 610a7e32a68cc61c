use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use super::devices_bpf::{program, BpfInsn};
use super::v1::parse_hierarchies;
use super::place::{candidates, enable_controllers, establish, ours_in, recorded, service_of, Caller, Home};
use super::v2::V2Driver;
use super::*;

fn files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A synthetic cgroup2 tree on tmpfs (/dev/shm): a place `own` made with the kernel's files.
fn synthetic(own: &str) -> (tempfile::TempDir, V2Driver) {
    let root = tempfile::Builder::new()
        .prefix("tfctl-cg2-")
        .tempdir_in("/dev/shm")
        .unwrap();
    let dir = root.path().join(own.trim_start_matches('/'));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids rdma misc\n",
    )
    .unwrap();
    std::fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
    std::fs::write(dir.join("cgroup.procs"), "").unwrap();
    let mut d = V2Driver::at(dir);
    d.device_filter = false;
    (root, d)
}

/// What the kernel does after a `cgroup.subtree_control` write: list the enabled controllers.
fn kernel_enables(dir: &Path) {
    let asked = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap();
    let enabled: Vec<&str> = asked
        .split_whitespace()
        .filter_map(|c| c.strip_prefix('+'))
        .collect();
    std::fs::write(dir.join("cgroup.subtree_control"), enabled.join(" ")).unwrap();
}

fn caller(own: &str, unit: Option<&str>, systemd: bool, root_writable: bool) -> Caller {
    Caller {
        own: own.into(),
        delegated_unit: unit.map(str::to_string),
        systemd,
        root_writable,
    }
}

fn scope(key: &str) -> Home {
    Home::Scope {
        unit: format!("tfctl-{key}.scope"),
        path: format!("/tfctl.slice/tfctl-{key}.scope"),
    }
}

#[test]
fn place_under_a_delegated_unit_is_the_units_cgroup() {
    let c = caller("/system.slice/tfctl-web.service", Some("/system.slice/tfctl-web.service"), true, true);
    assert_eq!(
        candidates(&c, "0a1b2c3d"),
        [
            Home::Unit("/system.slice/tfctl-web.service".into()),
            scope("0a1b2c3d"),
            Home::Subtree("/tfctl".into())
        ]
    );
}

#[test]
fn place_with_systemd_is_one_scope_per_app_whoever_asks() {
    // An SSH login (only memory and pids delegated there), a system service, a sudo shell:
    // the same scope for the same app, never the caller's own cgroup.
    for own in [
        "/user.slice/user-1000.slice/session-3.scope",
        "/user.slice/user-0.slice/session-17.scope",
        "/system.slice/cron.service",
        "/",
    ] {
        let homes = candidates(&caller(own, None, true, true), "0a1b2c3d");
        assert_eq!(homes[..2], [scope("0a1b2c3d"), Home::Subtree("/tfctl".into())], "from {own}");
    }
    assert_ne!(
        candidates(&caller("/", None, true, true), "0a1b2c3d")[0],
        candidates(&caller("/", None, true, true), "ffffffff")[0],
        "one scope per app"
    );
}

#[test]
fn place_without_systemd_is_tfctls_subtree_else_below_the_caller() {
    assert_eq!(
        candidates(&caller("/user.slice/user-1000.slice/session-3.scope", None, false, true), "k"),
        [Home::Subtree("/tfctl".into())]
    );
    // Only its own cgroup may be written (a container's cgroup namespace, a read-only root).
    assert_eq!(candidates(&caller("/job/", None, false, false), "k"), [Home::UnderCaller("/job/tfctl".into())]);
    assert_eq!(candidates(&caller("/", None, false, false), "k"), [Home::Subtree("/tfctl".into())]);
}

#[test]
fn service_of_sees_through_the_supervisor_leaf_and_control_cgroup() {
    let unit = "/system.slice/tfctl-web.service";
    assert_eq!(service_of(unit), Some(unit));
    assert_eq!(service_of(&format!("{unit}/supervisor")), Some(unit));
    assert_eq!(service_of(&format!("{unit}/.control")), Some(unit));
    assert_eq!(service_of("/user.slice/user-1000.slice/session-3.scope"), None);
    assert_eq!(service_of("/system.slice/tfctl-web.service/web-1"), None);
    assert_eq!(service_of("/"), None);
}

#[test]
fn the_recorded_place_is_used_while_it_exists_and_only_inside_the_mount() {
    let (root, d) = synthetic("/tfctl.slice/tfctl-k.scope");
    let record = root.path().join("record");
    std::fs::write(&record, format!("{}\n", d.base.display())).unwrap();
    assert_eq!(recorded(root.path(), &record), Some(d.base.clone()));
    let found = V2Driver::for_app(root.path(), "k", Some(&record), false).unwrap();
    assert_eq!(found.base, d.base);
    // Gone (the scope ended): not used.
    std::fs::write(&record, format!("{}\n", root.path().join("tfctl.slice/gone").display())).unwrap();
    assert_eq!(recorded(root.path(), &record), None);
    // A record pointing outside the cgroup tree is not followed.
    std::fs::write(&record, "/etc\n").unwrap();
    assert_eq!(recorded(root.path(), &record), None);
    assert_eq!(recorded(root.path(), &root.path().join("none")), None);
}

#[test]
fn establishing_tfctls_subtree_enables_controllers_and_moves_nobody() {
    let (root, _d) = synthetic("/");
    std::fs::write(root.path().join("cgroup.procs"), "100\n200\n").unwrap();
    let tfctl = root.path().join("tfctl");
    std::fs::create_dir(&tfctl).unwrap();
    std::fs::write(tfctl.join("cgroup.controllers"), "memory pids").unwrap();
    let base = establish(root.path(), &Home::Subtree("/tfctl".into())).unwrap();
    assert_eq!(base, tfctl);
    assert_eq!(
        std::fs::read_to_string(root.path().join("cgroup.subtree_control")).unwrap(),
        "+memory +pids +cpu"
    );
    assert_eq!(std::fs::read_to_string(tfctl.join("cgroup.subtree_control")).unwrap(), "+memory +pids");
    assert_eq!(std::fs::read_to_string(root.path().join("cgroup.procs")).unwrap(), "100\n200\n");
    // Already enabled: nothing written again.
    kernel_enables(&tfctl);
    enable_controllers(&tfctl).unwrap();
    assert_eq!(std::fs::read_to_string(tfctl.join("cgroup.subtree_control")).unwrap(), "memory pids");
}

#[test]
fn only_this_process_and_its_children_count_as_tfctls() {
    let (_root, d) = synthetic("/x");
    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let me = std::process::id();
    std::fs::write(d.base.join("cgroup.procs"), format!("1\n{me}\n{}\n", child.id())).unwrap();
    let ours = ours_in(&d.base).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(ours, [me, child.id()], "PID 1 (not started by tfctl) is left where it is");
}

#[test]
fn v2_container_gets_exactly_its_limit_files() {
    let (_root, d) = synthetic("/system.slice/tfctl.service");
    enable_controllers(&d.base).unwrap();
    kernel_enables(&d.base);
    let limits = CgroupLimits {
        memory: Some(256 << 20),
        cpus: Some(0.5),
        pids: 256,
        pids_explicit: true,
        devices: Vec::new(),
    };
    let cg = d.create("web-1", &limits).unwrap();
    let dir = d.base.join("web-1");
    assert_eq!(cg.paths(), vec![dir.clone()]);
    assert_eq!(
        files(&dir),
        map(&[
            ("memory.max", "268435456"),
            ("pids.max", "256"),
            ("cpu.max", "50000 100000")
        ])
    );
    assert!(matches!(
        d.create("web-1", &limits),
        Err(CgroupError::Exists(_))
    ));

    let defaults = CgroupLimits::from_model(&Limits::default());
    d.create("db-1", &defaults).unwrap();
    assert_eq!(files(&d.base.join("db-1")), map(&[("pids.max", "4096")]));
}

#[test]
fn v2_attach_kill_and_remove_use_the_kernel_files() {
    let (_root, d) = synthetic("/user.slice/me");
    enable_controllers(&d.base).unwrap();
    kernel_enables(&d.base);
    let cg = d
        .create("job", &CgroupLimits::from_model(&Limits::default()))
        .unwrap();
    let dir = d.base.join("job");
    // Files the kernel would have made with the directory.
    for f in ["cgroup.procs", "cgroup.kill", "cgroup.events"] {
        std::fs::write(dir.join(f), "").unwrap();
    }
    let attach = cg.attach_files().unwrap();
    assert_eq!(attach.fds.len(), 1);
    std::fs::File::from(attach.fds.into_iter().next().unwrap())
        .write_all(b"0")
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("cgroup.procs")).unwrap(),
        "0"
    );
    std::fs::write(dir.join("cgroup.procs"), "").unwrap(); // the kernel emptied it
    cg.kill().unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("cgroup.kill")).unwrap(),
        "1"
    );
    // rmdir on cgroupfs ignores interface files; on tmpfs, take them away first.
    for f in files(&dir).keys() {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    cg.remove().unwrap();
    assert!(!dir.exists());
    cg.remove().unwrap(); // already gone is fine
}

#[test]
fn v2_limits_without_their_controller_are_refused_clearly() {
    let (_root, d) = synthetic("/a");
    std::fs::write(d.base.join("cgroup.subtree_control"), "pids").unwrap();
    let limits = CgroupLimits {
        memory: Some(1 << 20),
        cpus: None,
        pids: 4096,
        pids_explicit: false,
        devices: Vec::new(),
    };
    let err = d.create("x", &limits).unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::MissingController {
                controller: "memory",
                ..
            }
        ),
        "{err}"
    );
    assert!(!d.base.join("x").exists());
}

#[test]
fn v1_hierarchies_nest_under_the_callers_path_in_each() {
    let mountinfo = "\
30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:5 - cgroup cgroup rw,cpu
31 25 0:27 / /sys/fs/cgroup/cpuacct rw,relatime shared:6 - cgroup cgroup rw,cpuacct
32 25 0:28 / /sys/fs/cgroup/cpuset rw,relatime shared:7 - cgroup cgroup rw,cpuset
33 25 0:29 / /sys/fs/cgroup/memory rw,relatime shared:8 - cgroup cgroup rw,memory
34 25 0:30 / /sys/fs/cgroup/devices rw,relatime shared:9 - cgroup cgroup rw,devices
35 25 0:31 /sub /sys/fs/cgroup/pids rw,relatime shared:10 - cgroup cgroup rw,pids
36 25 0:32 / /sys/fs/cgroup/systemd rw,relatime shared:11 - cgroup cgroup rw,name=systemd
37 25 0:33 / /sys/fs/cgroup/unified rw,relatime shared:12 - cgroup2 cgroup2 rw
";
    let cgroup = "9:name=systemd:/\n8:pids:/sub/x\n5:devices:/\n4:memory:/process_api/abc\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";
    let h = parse_hierarchies(mountinfo, cgroup);
    let bases: Vec<String> = h.iter().map(|h| h.base.display().to_string()).collect();
    assert_eq!(
        bases,
        [
            "/sys/fs/cgroup/cpu/tfctl",
            "/sys/fs/cgroup/cpuacct/tfctl",
            "/sys/fs/cgroup/memory/process_api/abc/tfctl",
            "/sys/fs/cgroup/devices/tfctl",
            "/sys/fs/cgroup/pids/x/tfctl",
        ]
    );
}

#[test]
fn limits_from_the_model() {
    let l = CgroupLimits::from_model(&Limits {
        memory: Some(1 << 30),
        cpus: Some(1.5),
        pids: None,
    });
    assert_eq!(
        (l.pids, l.pids_explicit, l.cpu_quota_us()),
        (4096, false, Some(150_000))
    );
    assert_eq!(ALLOWED_DEVICES.iter().map(|d| d.v1_line()).collect::<Vec<_>>().join(","),
        "c 1:3 rwm,c 1:5 rwm,c 1:7 rwm,c 1:8 rwm,c 1:9 rwm,c 5:0 rwm,c 5:1 rwm,c 5:2 rwm,c 136:* rwm");
}

/// Runs the device program as the kernel would, for one access.
fn run_device_prog(p: &[BpfInsn], block: bool, access: u32, major: u32, minor: u32) -> u64 {
    let ctx = [(access << 16) | if block { 1 } else { 2 }, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let i = p[pc];
        pc += 1;
        let (dst, src) = (usize::from(i.regs & 0xf), usize::from(i.regs >> 4));
        match i.code {
            0x61 => r[dst] = u64::from(ctx[(i.off / 4) as usize]),
            0xbf => r[dst] = r[src],
            0xb7 => r[dst] = i.imm as i64 as u64,
            0x57 => r[dst] &= i.imm as i64 as u64,
            0x77 => r[dst] >>= i.imm,
            0x55 => {
                if r[dst] != i.imm as i64 as u64 {
                    pc += i.off as usize
                }
            }
            0x95 => return r[0],
            c => panic!("opcode {c:#x}"),
        }
    }
}

#[test]
fn device_program_allows_exactly_the_list() {
    let p = program(&ALLOWED_DEVICES);
    let (rw, mknod) = (2 | 4, 1);
    for (maj, min) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
        (136, 0),
        (136, 77),
    ] {
        assert_eq!(run_device_prog(&p, false, rw, maj, min), 1, "c {maj}:{min}");
        assert_eq!(
            run_device_prog(&p, false, mknod, maj, min),
            1,
            "mknod c {maj}:{min}"
        );
    }
    for (block, maj, min) in [
        (true, 8, 0),
        (true, 1, 3),
        (false, 1, 1),
        (false, 1, 11),
        (false, 4, 0),
        (false, 10, 200),
    ] {
        assert_eq!(
            run_device_prog(&p, block, rw, maj, min),
            0,
            "{block} {maj}:{min}"
        );
    }
}
