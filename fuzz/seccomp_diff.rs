//! The differential check of tfctl's seccomp compiler, shared by the cargo-fuzz target
//! (fuzz_targets/seccomp_diff.rs) and the seeded test that runs in `cargo test`
//! (runtime/tests/seccomp_differential.rs), so CI exercises it without libFuzzer.
//!
//! The input bytes decide a random Docker-format profile (default action, rules with every
//! comparison, masked equality with values inside and outside the mask, errno and trace data,
//! x86_64 or aarch64) and a list of (arch, syscall number, arguments) tuples. For every tuple,
//! three answers must agree:
//! - the profile's reference semantics, `ResolvedProfile::evaluate`;
//! - tfctl's compiled filter (`compile_tree`), run in the in-repo BPF interpreter
//!   (`tfctl_runtime::seccomp::interp`);
//! - libseccomp's filter for the same rules, built the way runc builds it and exported with
//!   `seccomp_export_bpf`, run in the same interpreter. libseccomp has no simulator in its
//!   library API (its `scmp_bpf_sim` is a tool of the source tree), so its own BPF output is
//!   what is compared: the very program the kernel would get from Docker.
//!
//! Profiles stay inside the part of the format whose meaning libseccomp defines: a syscall's
//! conditional rules share one action (rules of different actions whose conditions overlap are
//! merged by argument in libseccomp's tree, refused with EEXIST or ordered by datum, not by the
//! profile's order), and a rule compares each argument at most once (libseccomp refuses a
//! second comparison of the same argument; runc splits such rules, tfctl does not). Nor do two
//! rules of a syscall make the same NE, LT, LE, GT or GE comparison: libseccomp 2.5.4's
//! `seccomp_rule_add` never returns on some such pairs (found by seed 1106 of the seeded test;
//! reproduced in C with the rules `A0 <= 2 && A1 == 5` then `A0 <= 2 && A5 == 7` on one syscall,
//! any architecture and optimize level; EQ and MASKED_EQ prefixes do not hang).

use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::sync::OnceLock;

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use tfctl_runtime::capabilities::CapSet;
use tfctl_runtime::seccomp::interp::{self, SeccompData};
use tfctl_runtime::seccomp::{compile_tree, parse_docker_profile, resolve, sock_filter, Action, Arch, KernelVersion};

/// The input bytes as a source of choices; past the end every choice is 0.
struct Src<'a>(&'a [u8]);

impl Src<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }

    fn below(&mut self, n: usize) -> usize {
        (usize::from(self.byte()) << 8 | usize::from(self.byte())) % n
    }

    fn chance(&mut self, percent: u8) -> bool {
        self.byte() % 100 < percent
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |v, _| v << 8 | u64::from(self.byte()))
    }

    /// A value near the edges a 64-bit comparison from two 32-bit halves can get wrong.
    fn value(&mut self) -> u64 {
        const EDGES: [u64; 12] =
            [0, 1, 2, 0x7f, 0x8000_0000, 0xffff_ffff, 1 << 32, (1 << 32) + 1, 0xffff_ffff_0000_0000, 1 << 63, u64::MAX - 1, u64::MAX];
        match self.byte() % 4 {
            0 => self.u64(),
            1 => u64::from(self.byte()),
            _ => EDGES[self.below(EDGES.len())],
        }
    }
}

/// An action as the profile spells it and as both sides must answer it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Act {
    name: &'static str,
    /// Always explicit for ERRNO and TRACE data: how a missing errnoRet falls back is the
    /// resolver's business, not the compiler's, and runc and tfctl may differ there.
    errno_ret: Option<u16>,
    action: Action,
}

impl Act {
    fn pick(src: &mut Src) -> Act {
        // ERRNO data stops at 4094: the kernel and tfctl take up to MAX_ERRNO (4095), libseccomp
        // only below it. TRACE data takes all 16 bits.
        let data = |src: &mut Src, max: u16| match src.byte() % 4 {
            0 => 0,
            1 => u16::from(src.byte()),
            2 => max,
            _ => 1 + src.byte() as u16 % 40,
        };
        let (name, errno_ret, action) = match src.byte() % 8 {
            0 | 1 => ("SCMP_ACT_ALLOW", None, Action::Allow),
            2 | 3 => {
                let e = data(src, 4094);
                ("SCMP_ACT_ERRNO", Some(e), Action::Errno(e))
            }
            4 => ("SCMP_ACT_KILL_PROCESS", None, Action::KillProcess),
            5 => ("SCMP_ACT_KILL", None, Action::KillThread),
            6 => {
                if src.chance(50) {
                    ("SCMP_ACT_TRAP", None, Action::Trap)
                } else {
                    ("SCMP_ACT_LOG", None, Action::Log)
                }
            }
            _ => {
                let d = data(src, 0xffff);
                ("SCMP_ACT_TRACE", Some(d), Action::Trace(d))
            }
        };
        Act { name, errno_ret, action }
    }

    fn libseccomp(self) -> ScmpAction {
        match self.action {
            Action::Allow => ScmpAction::Allow,
            Action::Errno(e) => ScmpAction::Errno(i32::from(e)),
            Action::KillProcess => ScmpAction::KillProcess,
            Action::KillThread => ScmpAction::KillThread,
            Action::Trap => ScmpAction::Trap,
            Action::Log => ScmpAction::Log,
            Action::Trace(d) => ScmpAction::Trace(d),
        }
    }
}

const OPS: [&str; 7] =
    ["SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GT", "SCMP_CMP_GE", "SCMP_CMP_MASKED_EQ"];

#[derive(Debug, Clone, Copy)]
struct Cond {
    index: u32,
    op: &'static str,
    value: u64,
    value_two: u64,
}

#[derive(Debug, Clone)]
struct Rule {
    names: Vec<&'static str>,
    act: Act,
    args: Vec<Cond>,
}

/// Syscalls of `arch` that libseccomp numbers as tfctl's table does and can name from the
/// native architecture (it translates every rule's number through the native name).
pub fn shared_syscalls(arch: Arch) -> &'static [(&'static str, u32)] {
    static POOLS: [OnceLock<Vec<(&'static str, u32)>>; 2] = [OnceLock::new(), OnceLock::new()];
    POOLS[usize::from(arch == Arch::Aarch64)].get_or_init(|| {
        (0..1024)
            .filter_map(|nr| Some((arch.syscall_name(nr)?, nr)))
            .filter(|(name, nr)| {
                let theirs = ScmpSyscall::from_name_by_arch(name, scmp_arch(arch)).map(i32::from);
                let native = ScmpSyscall::from_name(name).map(i32::from);
                theirs.is_ok_and(|t| t == *nr as i32) && native.is_ok_and(|n| n >= 0)
            })
            .collect()
    })
}

fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::X86_64 => ScmpArch::X8664,
        Arch::Aarch64 => ScmpArch::Aarch64,
    }
}

/// libseccomp's filter for the rules, as runc builds it from a Docker profile: rules whose
/// action is the default are skipped (libseccomp refuses them), the rest added in order.
fn libseccomp_program(arch: Arch, default: Act, rules: &[Rule], optimize: u32) -> Vec<sock_filter> {
    let mut ctx = ScmpFilterContext::new(default.libseccomp()).expect("libseccomp filter");
    ctx.set_act_badarch(ScmpAction::KillProcess).unwrap();
    ctx.set_ctl_optimize(optimize).unwrap();
    if scmp_arch(arch) != ScmpArch::native() {
        ctx.add_arch(scmp_arch(arch)).unwrap();
        ctx.remove_arch(ScmpArch::native()).unwrap();
    }
    for rule in rules.iter().filter(|r| r.act.action != default.action) {
        for name in &rule.names {
            let nr = ScmpSyscall::from_name(name).unwrap();
            let conds: Vec<ScmpArgCompare> = rule
                .args
                .iter()
                .map(|c| {
                    let (op, datum) = match c.op {
                        "SCMP_CMP_EQ" => (ScmpCompareOp::Equal, c.value),
                        "SCMP_CMP_NE" => (ScmpCompareOp::NotEqual, c.value),
                        "SCMP_CMP_LT" => (ScmpCompareOp::Less, c.value),
                        "SCMP_CMP_LE" => (ScmpCompareOp::LessOrEqual, c.value),
                        "SCMP_CMP_GT" => (ScmpCompareOp::Greater, c.value),
                        "SCMP_CMP_GE" => (ScmpCompareOp::GreaterEqual, c.value),
                        _ => (ScmpCompareOp::MaskedEqual(c.value), c.value_two),
                    };
                    ScmpArgCompare::new(c.index, op, datum)
                })
                .collect();
            let added = if conds.is_empty() {
                ctx.add_rule(rule.act.libseccomp(), nr)
            } else {
                ctx.add_rule_conditional(rule.act.libseccomp(), nr, &conds)
            };
            added.unwrap_or_else(|e| panic!("libseccomp refuses {rule:?} for {name}: {e}"));
        }
    }
    let mut file = tempfile::tempfile().unwrap();
    ctx.export_bpf(&file).unwrap();
    let mut bytes = Vec::new();
    file.rewind().unwrap();
    file.read_to_end(&mut bytes).unwrap();
    bytes
        .chunks_exact(8)
        .map(|i| sock_filter {
            code: u16::from_ne_bytes([i[0], i[1]]),
            jt: i[2],
            jf: i[3],
            k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
        })
        .collect()
}

/// Builds a profile and tuples from `data` and panics, with the profile and the tuple, at the
/// first answer on which the reference, tfctl's filter and libseccomp's filter disagree.
pub fn seccomp_differential(data: &[u8]) {
    let mut src = Src(data);
    let arch = if src.chance(25) { Arch::Aarch64 } else { Arch::X86_64 };
    let pool = shared_syscalls(arch);
    // A few "hot" syscalls take most rules, so rules meet on the same syscall.
    let hot: Vec<(&str, u32)> = (0..4).map(|_| pool[src.below(pool.len())]).collect();
    let pick_name = |src: &mut Src| if src.chance(75) { hot[src.below(hot.len())].0 } else { pool[src.below(pool.len())].0 };
    let default = Act::pick(&mut src);
    let mut conditional_action: BTreeMap<&str, Act> = BTreeMap::new();
    // The range and NE comparisons already made per syscall (see the module's last paragraph).
    let mut range_compared: BTreeMap<&str, Vec<(u32, &str, u64)>> = BTreeMap::new();
    let mut rules = Vec::new();
    for _ in 0..src.below(12) {
        let mut act = Act::pick(&mut src);
        if src.chance(50) {
            let names = (0..1 + src.below(3)).map(|_| pick_name(&mut src)).collect();
            rules.push(Rule { names, act, args: Vec::new() });
            continue;
        }
        let name = pick_name(&mut src);
        act = *conditional_action.entry(name).or_insert(act);
        let mut args: Vec<Cond> = Vec::new();
        for _ in 0..1 + src.below(3) {
            let index = src.below(6) as u32;
            if args.iter().any(|c| c.index == index) {
                continue;
            }
            let op = OPS[src.below(OPS.len())];
            let mut value = src.value();
            if !matches!(op, "SCMP_CMP_EQ" | "SCMP_CMP_MASKED_EQ") {
                let made = range_compared.entry(name).or_default();
                while made.contains(&(index, op, value)) {
                    value = value.wrapping_add(1);
                }
                made.push((index, op, value));
            }
            // Masked: an expected value within the mask, or one with bits outside it (never equal).
            let value_two = if src.chance(75) { src.value() & value } else { src.value() };
            args.push(Cond { index, op, value, value_two });
        }
        rules.push(Rule { names: vec![name], act, args });
    }
    let optimize = if src.chance(50) { 2 } else { 1 };

    let json = serde_json::json!({
        "defaultAction": default.name,
        "defaultErrnoRet": default.errno_ret,
        "syscalls": rules.iter().map(|r| serde_json::json!({
            "names": r.names,
            "action": r.act.name,
            "errnoRet": r.act.errno_ret,
            "args": r.args.iter().map(|c| serde_json::json!({
                "index": c.index, "op": c.op, "value": c.value, "valueTwo": c.value_two,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
    .to_string();
    let profile = parse_docker_profile(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    let resolved = resolve(&profile, arch, KernelVersion(6, 18), CapSet::EMPTY).unwrap_or_else(|e| panic!("{json}: {e}"));
    let ours = compile_tree(&resolved).unwrap_or_else(|e| panic!("{json}: {e}"));
    let theirs = libseccomp_program(arch, default, &rules, optimize);

    // Argument values the profile compares with, and their neighbours.
    let mut near: Vec<u64> = rules.iter().flat_map(|r| &r.args).flat_map(|c| [c.value, c.value_two]).collect();
    near.extend(near.clone().iter().flat_map(|v| [v.wrapping_add(1), v.wrapping_sub(1), v.rotate_left(32)]));
    let other_arch = if arch == Arch::X86_64 { Arch::Aarch64 } else { Arch::X86_64 };
    for _ in 0..64 {
        let audit_arch = match src.byte() % 16 {
            0 => other_arch.audit_arch(),
            1 => src.u64() as u32,
            _ => arch.audit_arch(),
        };
        let nr = match src.byte() % 8 {
            0..=4 if !rules.is_empty() => {
                let r = &rules[src.below(rules.len())];
                let name = r.names[src.below(r.names.len())];
                pool.iter().find(|(n, _)| *n == name).unwrap().1
            }
            5 => 0x4000_0000 | src.below(1024) as u32,
            6 => src.u64() as u32,
            _ => src.below(600) as u32,
        };
        let mut args = [0u64; 6];
        for a in &mut args {
            *a = if !near.is_empty() && src.chance(50) { near[src.below(near.len())] } else { src.value() };
        }
        let expected = if audit_arch != arch.audit_arch() || (arch == Arch::X86_64 && nr >= 0x4000_0000) {
            libc::SECCOMP_RET_KILL_PROCESS
        } else {
            resolved.evaluate(nr, &args).ret()
        };
        let d = SeccompData::new(audit_arch, nr, args);
        let mine = interp::run(&ours, &d).unwrap_or_else(|e| panic!("{json}: tfctl's program: {e}"));
        let mut lib = interp::run(&theirs, &d).unwrap_or_else(|e| panic!("{json}: libseccomp's program: {e}"));
        if lib != expected && mine == expected && audit_arch == arch.audit_arch() {
            // libseccomp 2.5.4 merges a syscall's rules into one tree and, with 64-bit range
            // comparisons on several arguments, can jump into a branch without reloading the
            // argument it compares (seen with the kernel itself: the exported program answers
            // TRACE where every rule fails). Each rule alone has no merge: if the rules one at
            // a time give the profile's answer, the defect is libseccomp's, and counted.
            lib = one_rule_at_a_time(arch, default, &rules, nr, &d);
            if lib == expected {
                LIBSECCOMP_MERGE_DEFECTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        assert!(
            mine == expected && lib == expected,
            "profile {json} ({arch:?}, libseccomp optimize {optimize}), syscall {nr} arch {audit_arch:#x} args {args:#x?}: \
             the profile says {expected:#x}, tfctl's filter {mine:#x}, libseccomp's {lib:#x}"
        );
    }
}

/// How many answers libseccomp's merged filter got wrong while its rules, one at a time, and
/// tfctl's filter agreed with the profile (libseccomp's defect, not tfctl's).
pub static LIBSECCOMP_MERGE_DEFECTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// libseccomp's answer for syscall `nr` with each rule in a filter of its own: the first
/// unconditional rule decides; else the (one) action of any conditional rule that matches.
fn one_rule_at_a_time(arch: Arch, default: Act, rules: &[Rule], nr: u32, d: &SeccompData) -> u32 {
    let pool = shared_syscalls(arch);
    let names_nr = |r: &&Rule| r.names.iter().any(|n| pool.iter().any(|(p, pnr)| p == n && *pnr == nr));
    let mine: Vec<&Rule> = rules.iter().filter(names_nr).filter(|r| r.act.action != default.action).collect();
    if let Some(r) = mine.iter().find(|r| r.args.is_empty()) {
        return r.act.action.ret();
    }
    for r in mine {
        let alone = r.clone();
        let answer = interp::run(&libseccomp_program(arch, default, &[alone], 1), d).expect("libseccomp's program");
        if answer != default.action.ret() {
            return answer;
        }
    }
    default.action.ret()
}
