use super::*;
use crate::capabilities::{self, CapSet};

fn caps(add: &[&str]) -> CapSet {
    let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
    capabilities::resolve(&add, &[], true).unwrap().bounding
}

fn moby(arch: Arch, caps: CapSet) -> ResolvedProfile {
    resolve(&MOBY_DEFAULT, arch, KernelVersion(6, 18), caps).unwrap()
}

fn nr(name: &str) -> u32 {
    Arch::X86_64
        .syscall_nr(name)
        .unwrap_or_else(|| panic!("{name} has no number"))
}

const EPERM: Action = Action::Errno(libc::EPERM as u16);
const ENOSYS: Action = Action::Errno(libc::ENOSYS as u16);

#[test]
fn generated_table_matches_the_vendored_json() {
    let json = include_str!("../../data/moby-seccomp/default.json");
    assert_eq!(parse_docker_profile(json).unwrap(), MOBY_DEFAULT);
}

#[test]
fn default_profile_resolves_as_moby_does() {
    let p = moby(Arch::X86_64, caps(&[]));
    assert_eq!(p.default, EPERM);
    let none = [0u64; 6];
    assert_eq!(p.evaluate(nr("read"), &none), Action::Allow);
    // Namespaces, mounts and kcmp need capabilities the default set lacks.
    for name in [
        "unshare",
        "mount",
        "setns",
        "kcmp",
        "pidfd_getfd",
        "bpf",
        "reboot",
    ] {
        assert_eq!(p.evaluate(nr(name), &none), EPERM, "{name}");
    }
    // ptrace itself is allowed from Linux 4.8 on (Moby's minKernel rule).
    assert_eq!(p.evaluate(nr("ptrace"), &none), Action::Allow);
    assert_eq!(p.evaluate(nr("clone3"), &none), ENOSYS);
    // clone: threads yes, new namespaces no.
    let thread_flags = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD) as u64;
    assert_eq!(
        p.evaluate(nr("clone"), &[thread_flags, 0, 0, 0, 0, 0]),
        Action::Allow
    );
    assert_eq!(
        p.evaluate(nr("clone"), &[libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]),
        EPERM
    );
    // socket: every family but AF_VSOCK (40).
    assert_eq!(
        p.evaluate(nr("socket"), &[libc::AF_INET as u64, 0, 0, 0, 0, 0]),
        Action::Allow
    );
    assert_eq!(
        p.evaluate(nr("socket"), &[libc::AF_VSOCK as u64, 0, 0, 0, 0, 0]),
        EPERM
    );
    // Names of other architectures are skipped, not errors.
    assert!(p.unknown.iter().any(|n| n == "chown32"));
    assert!(
        !p.unknown.iter().any(|n| n == "mseal" || n == "listmount"),
        "new syscalls are numbered"
    );
}

#[test]
fn cap_add_opens_the_matching_syscalls() {
    let none = [0u64; 6];
    let p = moby(Arch::X86_64, caps(&["SYS_PTRACE"]));
    for name in ["kcmp", "pidfd_getfd", "process_madvise", "ptrace"] {
        assert_eq!(p.evaluate(nr(name), &none), Action::Allow, "{name}");
    }
    let p = moby(Arch::X86_64, caps(&["SYS_ADMIN"]));
    for name in ["unshare", "mount", "setns", "clone3"] {
        assert_eq!(p.evaluate(nr(name), &none), Action::Allow, "{name}");
    }
    assert_eq!(
        p.evaluate(nr("clone"), &[libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]),
        Action::Allow
    );
    // Dropping a default capability closes its syscall.
    let no_chroot = capabilities::resolve(&[], &["SYS_CHROOT".to_string()], true)
        .unwrap()
        .bounding;
    assert_eq!(
        moby(Arch::X86_64, no_chroot).evaluate(nr("chroot"), &none),
        EPERM
    );
    assert_eq!(
        moby(Arch::X86_64, caps(&[])).evaluate(nr("chroot"), &none),
        Action::Allow
    );
}

#[test]
fn min_kernel_and_arches_are_honoured() {
    let old = resolve(&MOBY_DEFAULT, Arch::X86_64, KernelVersion(4, 4), caps(&[])).unwrap();
    assert_eq!(old.evaluate(nr("ptrace"), &[0; 6]), EPERM);
    let x86 = moby(Arch::X86_64, caps(&[]));
    assert_eq!(x86.evaluate(nr("arch_prctl"), &[0; 6]), Action::Allow);
    let arm = moby(Arch::Aarch64, caps(&[]));
    assert!(Arch::Aarch64.syscall_nr("arch_prctl").is_none());
    assert_eq!(
        arm.evaluate(Arch::Aarch64.syscall_nr("openat").unwrap(), &[0; 6]),
        Action::Allow
    );
    assert_eq!(
        KernelVersion::parse("6.18.44-fc-v595"),
        Some(KernelVersion(6, 18))
    );
}

#[test]
fn syscall_table_agrees_with_libc() {
    for (name, n) in [
        ("read", libc::SYS_read),
        ("openat", libc::SYS_openat),
        ("clone", libc::SYS_clone),
        ("clone3", libc::SYS_clone3),
        ("unshare", libc::SYS_unshare),
        ("kcmp", libc::SYS_kcmp),
        ("pidfd_getfd", libc::SYS_pidfd_getfd),
        ("process_madvise", libc::SYS_process_madvise),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("futex_waitv", libc::SYS_futex_waitv),
        ("newfstatat", libc::SYS_newfstatat),
    ] {
        assert_eq!(Arch::native().syscall_nr(name), Some(n as u32), "{name}");
    }
}

#[test]
fn user_profiles_load_and_bad_ones_say_why() {
    let p = parse_docker_profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13,"args":null}]}"#,
    )
    .unwrap();
    let r = resolve(&p, Arch::X86_64, KernelVersion(6, 18), caps(&[])).unwrap();
    assert_eq!(r.evaluate(nr("mkdirat"), &[0; 6]), Action::Errno(13));
    assert_eq!(r.evaluate(nr("unshare"), &[0; 6]), Action::Allow);
    let bad = parse_docker_profile(r#"{"defaultAction":"SCMP_ACT_NOTIFY","syscalls":[]}"#).unwrap();
    let err = resolve(&bad, Arch::X86_64, KernelVersion(6, 18), caps(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("SCMP_ACT_NOTIFY"), "{err}");
    assert!(parse_docker_profile("{").is_err());
}

/// What the kernel answers for these stacked filters (in installation order).
fn run_stack(progs: &[&[sock_filter]], arch: u32, nr: u32, args: &[u64; 6]) -> u32 {
    interp::run_stack(progs, &interp::SeccompData::new(arch, nr, *args)).expect("a valid program")
}

fn arg_samples() -> Vec<[u64; 6]> {
    let mut v = vec![[0; 6]];
    let edges = [
        0u64,
        1,
        8,
        37,
        38,
        39,
        40,
        41,
        0x20000,
        0x7E02_0000,
        0xffff_ffff,
        1 << 32,
        (1 << 32) + 39,
        u64::MAX,
    ];
    for e in edges {
        v.push([e, e, e, e, e, e]);
        v.push([e, 0, 0, 0, 0, 0]);
    }
    let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
    v.push([thread, 0, 0, 0, 0, 0]);
    v.push([thread | libc::CLONE_NEWNET as u64, 0, 0, 0, 0, 0]);
    v
}

/// Checks a program against the profile's reference semantics for syscalls 0-599, the top of
/// the number space and foreign architectures. `kills_x32`: tfctl's tree filter kills the x32
/// ABI (numbers from 0x4000_0000 on x86_64); seccompiler's gives them the default answer.
fn assert_same_answers(p: &ResolvedProfile, progs: &[&[sock_filter]], kills_x32: bool) {
    let arch = p.arch.audit_arch();
    for nr in (0..600).chain([0x3fff_ffff, 0x4000_0001, u32::MAX]) {
        for args in arg_samples() {
            let expected = if kills_x32 && p.arch == Arch::X86_64 && nr >= 0x4000_0000 {
                libc::SECCOMP_RET_KILL_PROCESS
            } else {
                p.evaluate(nr, &args).ret()
            };
            assert_eq!(
                run_stack(progs, arch, nr, &args),
                expected,
                "syscall {nr} args {args:x?}"
            );
        }
    }
    // Other architectures are killed.
    assert_eq!(
        run_stack(progs, 0x4000_0003, 1, &[0; 6]),
        libc::SECCOMP_RET_KILL_PROCESS
    );
}

#[test]
fn tree_filter_answers_exactly_as_the_profile() {
    for arch in [Arch::X86_64, Arch::Aarch64] {
        for set in [caps(&[]), caps(&["SYS_ADMIN", "SYS_PTRACE"]), CapSet::EMPTY] {
            let p = moby(arch, set);
            let c = compile(&p, Layout::Tree).unwrap();
            assert!(c.clone3_enosys.is_none());
            assert_same_answers(&p, &[&c.main], true);
            assert!(c.main.len() < 300, "{} instructions", c.main.len());
        }
    }
}

#[test]
fn seccompiler_filter_plus_clone3_filter_answer_the_same() {
    let p = moby(Arch::X86_64, caps(&[]));
    let c = compile(&p, Layout::Linear).unwrap();
    let clone3 = c
        .clone3_enosys
        .as_ref()
        .expect("default caps need the clone3 filter");
    assert_same_answers(&p, &[&c.main, clone3], false);
    let tree = compile(&p, Layout::Tree).unwrap();
    eprintln!(
        "Moby default, x86_64: linear {} instructions, tree {}",
        c.main.len(),
        tree.main.len()
    );
    assert!(tree.main.len() * 4 < c.main.len());
}

#[test]
fn every_comparison_and_far_jumps_compile_correctly() {
    // Many checked syscalls push the tree's jumps beyond 255 instructions.
    let ops = [
        "SCMP_CMP_EQ",
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_GT",
        "SCMP_CMP_GE",
        "SCMP_CMP_MASKED_EQ",
    ];
    let values = [0u64, 38, 0xffff_ffff, 1 << 32, (1 << 32) + 39];
    let mut rules = Vec::new();
    for (n, (name, _)) in super::syscalls::X86_64.iter().take(140).enumerate() {
        let op = ops[n % ops.len()];
        let v = values[n % values.len()];
        rules.push(format!(
            r#"{{"names":["{name}"],"action":"SCMP_ACT_ALLOW","args":[{{"index":{},"value":{v},"valueTwo":{},"op":"{op}"}}]}}"#,
            n % 6,
            v & 0xffff_0000_ffff
        ));
    }
    let json = format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"syscalls":[{}]}}"#,
        rules.join(",")
    );
    let p = resolve(
        &parse_docker_profile(&json).unwrap(),
        Arch::X86_64,
        KernelVersion(6, 18),
        CapSet::EMPTY,
    )
    .unwrap();
    let c = compile(&p, Layout::Tree).unwrap();
    assert!(
        c.main.len() > 600,
        "the test needs far jumps: {} instructions",
        c.main.len()
    );
    assert_same_answers(&p, &[&c.main], true);
    let lin = compile(&p, Layout::Linear).unwrap();
    assert_same_answers(&p, &[&lin.main], false);
}

#[test]
fn programs_are_cached_per_capability_set_and_unconfined_has_none() {
    let a = programs(&SeccompPolicy::Default, caps(&[]))
        .unwrap()
        .unwrap();
    let b = programs(&SeccompPolicy::Default, caps(&[]))
        .unwrap()
        .unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    let c = programs(&SeccompPolicy::Default, caps(&["SYS_PTRACE"]))
        .unwrap()
        .unwrap();
    assert_ne!(a.main, c.main);
    assert!(programs(&SeccompPolicy::Unconfined, caps(&[]))
        .unwrap()
        .is_none());
}

#[test]
fn plan_programs_keep_the_installation_order() {
    let p = moby(Arch::X86_64, caps(&[]));
    let lin = compile(&p, Layout::Linear).unwrap();
    let plan = lin.to_plan();
    assert_eq!(plan.len(), 2);
    assert_eq!(plan[0].0.len(), lin.main.len());
    assert_eq!(plan[1].0.len(), lin.clone3_enosys.as_ref().unwrap().len());
    assert_eq!(compile(&p, Layout::Tree).unwrap().to_plan().len(), 1);
}

#[test]
fn the_oci_form_gives_every_syscall_its_resolved_action() {
    use oci_spec::runtime::LinuxSeccompAction as A;
    let p = moby(Arch::X86_64, caps(&["SYS_PTRACE"]));
    let oci = oci::to_oci(&p).unwrap();
    let mut unconditional = std::collections::BTreeMap::new();
    let mut conditional = 0;
    for s in oci.syscalls().as_ref().unwrap() {
        if s.args().as_ref().is_some_and(|a| !a.is_empty()) {
            conditional += 1;
            continue;
        }
        for n in s.names() {
            let action = match s.action() {
                A::ScmpActAllow => Action::Allow,
                A::ScmpActErrno => Action::Errno(s.errno_ret().unwrap() as u16),
                other => panic!("unexpected action {other:?}"),
            };
            assert!(unconditional.insert(nr(n), action).is_none(), "{n} is listed twice");
        }
    }
    let expected: std::collections::BTreeMap<u32, Action> = p.syscalls.iter().filter_map(|(&nr, v)| v.otherwise.filter(|a| *a != p.default).map(|a| (nr, a))).collect();
    assert_eq!(unconditional, expected);
    assert!(unconditional.len() > 300 && unconditional[&nr("ptrace")] == Action::Allow && unconditional[&nr("clone3")] == ENOSYS);
    assert_eq!(conditional, p.syscalls.values().map(|v| v.conditional.len()).sum::<usize>());
}

/// Regression cases of the differential check against libseccomp (fuzz/seccomp_diff.rs): a
/// profile means what it means to Docker, whose runc builds the filter with libseccomp.
#[test]
fn profiles_resolve_as_libseccomp_builds_them() {
    let resolve_json = |json: &str| resolve(&parse_docker_profile(json).unwrap(), Arch::X86_64, KernelVersion(6, 18), CapSet::EMPTY);
    let sysctl = nr("_sysctl");
    // Masked equality: bits of valueTwo outside the mask are dropped, not a rule never met.
    let p = resolve_json(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["_sysctl"],"action":"SCMP_ACT_KILL","args":[{"index":2,"op":"SCMP_CMP_MASKED_EQ","value":4294967296,"valueTwo":40}]}]}"#).unwrap();
    assert_eq!(p.evaluate(sysctl, &[0; 6]), Action::KillThread);
    assert_eq!(p.evaluate(sysctl, &[0, 0, 1 << 32, 0, 0, 0]), Action::Allow);
    // An unconditional rule decides its syscall, before or after conditional ones.
    for rules in [
        r#"{"names":["_sysctl"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"op":"SCMP_CMP_EQ","value":5}]},{"names":["_sysctl"],"action":"SCMP_ACT_ERRNO","errnoRet":9}"#,
        r#"{"names":["_sysctl"],"action":"SCMP_ACT_ERRNO","errnoRet":9},{"names":["_sysctl"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"op":"SCMP_CMP_EQ","value":5}]}"#,
    ] {
        let p = resolve_json(&format!(r#"{{"defaultAction":"SCMP_ACT_KILL","syscalls":[{rules}]}}"#)).unwrap();
        assert_eq!(p.evaluate(sysctl, &[5, 0, 0, 0, 0, 0]), Action::Errno(9), "{rules}");
    }
    // A rule answering the default action is skipped: it does not shadow a later rule.
    let p = resolve_json(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["_sysctl"],"action":"SCMP_ACT_ERRNO"},{"names":["_sysctl"],"action":"SCMP_ACT_ALLOW"}]}"#).unwrap();
    assert_eq!(p.evaluate(sysctl, &[0; 6]), Action::Allow);
    // errnoRet beyond MAX_ERRNO is refused (the kernel would answer 4095).
    let err = resolve_json(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":4096}"#).unwrap_err().to_string();
    assert!(err.contains("4096") && err.contains("0-4095"), "{err}");
}

/// The interpreter's termination rests on the kernel's own limits: programs of 1 to 4096
/// instructions that only jump forward. The longest run, a chain of 4095 one-step jumps, ends.
#[test]
fn the_interpreter_ends_on_any_program_and_refuses_what_the_kernel_refuses() {
    let insn = |code: u32, jt: u8, jf: u8, k: u32| sock_filter { code: code as u16, jt, jf, k };
    let ja = |k| insn(libc::BPF_JMP | libc::BPF_JA, 0, 0, k);
    let ret_allow = || insn(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW);
    let data = interp::SeccompData::new(Arch::X86_64.audit_arch(), 0, [0; 6]);

    let mut chain = vec![ja(0); bpf::MAX_INSNS - 1];
    chain.push(ret_allow());
    assert_eq!(interp::run(&chain, &data), Ok(libc::SECCOMP_RET_ALLOW));

    chain.insert(0, ja(0));
    assert_eq!(interp::run(&chain, &data), Err(interp::InterpError::Length { len: bpf::MAX_INSNS + 1 }));
    assert_eq!(interp::run(&[], &data), Err(interp::InterpError::Length { len: 0 }));
    // Jumps past the end, by BPF_JA's 32-bit offset or a conditional's 8-bit one, are errors.
    assert_eq!(interp::run(&[ja(u32::MAX), ret_allow()], &data), Err(interp::InterpError::OffTheEnd { pc: 1 << 32 }));
    let jeq = insn(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 255, 255, 0);
    assert_eq!(interp::run(&[jeq, ret_allow()], &data), Err(interp::InterpError::OffTheEnd { pc: 256 }));
}
