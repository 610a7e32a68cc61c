//! Classic BPF generation for seccomp: a binary search on the syscall number.
//!
//! seccompiler (and libseccomp's default layout) test syscalls one after another, so the Moby
//! profile costs about 1,600 instructions and every syscall walks a long chain. Here the syscall
//! numbers are first merged into intervals that share one verdict (most of the allow-list is
//! contiguous runs), then a balanced tree of `jge` comparisons finds the interval in
//! log2(intervals) steps. Syscalls with argument checks get a small block of 64-bit comparisons.

use seccompiler::{sock_filter, BpfProgram};

use super::profile::{Action, ArgCheck, CmpOp, ResolvedProfile, SyscallVerdict};
use super::{Arch, SeccompError};

// Opcodes (linux/bpf_common.h).
const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_ALU_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const BPF_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

// struct seccomp_data offsets.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
const ARGS_OFFSET: u32 = 16;

/// The kernel refuses longer programs.
pub const MAX_INSNS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Label(usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Next,
    To(Label),
}

#[derive(Debug, Clone, Copy)]
enum Insn {
    Ld(u32),
    And(u32),
    Jump {
        code: u16,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Ja(Label),
    Ret(u32),
    Mark(Label),
}

/// A tiny assembler with labels; conditional jumps farther than 255 instructions are rewritten
/// through an unconditional `ja` (32-bit offset).
#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    fn push(&mut self, i: Insn) {
        self.insns.push(i);
    }

    fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.push(Insn::Jump { code, k, jt, jf });
    }

    fn positions(&self) -> (Vec<usize>, Vec<usize>) {
        let mut at = Vec::with_capacity(self.insns.len());
        let mut labels = vec![usize::MAX; self.labels];
        let mut pc = 0;
        for i in &self.insns {
            at.push(pc);
            match i {
                Insn::Mark(l) => labels[l.0] = pc,
                _ => pc += 1,
            }
        }
        (at, labels)
    }

    fn finish(mut self) -> Result<BpfProgram, SeccompError> {
        loop {
            let (at, labels) = self.positions();
            let far = self.insns.iter().enumerate().find_map(|(n, i)| match *i {
                Insn::Jump {
                    jt: Target::To(l), ..
                }
                | Insn::Jump {
                    jf: Target::To(l), ..
                } if labels[l.0] - at[n] - 1 > 255 => Some(n),
                _ => None,
            });
            let Some(n) = far else { break };
            let Insn::Jump { code, k, jt, jf } = self.insns[n] else {
                unreachable!()
            };
            // `j? k, T, F` becomes `j? k, +0, skip; ja T; skip: ja F; after:`.
            let (skip, after) = (self.label(), self.label());
            let target = |t: Target| match t {
                Target::To(l) => l,
                Target::Next => after,
            };
            let mut replacement = vec![
                Insn::Jump {
                    code,
                    k,
                    jt: Target::Next,
                    jf: Target::To(skip),
                },
                Insn::Ja(target(jt)),
                Insn::Mark(skip),
            ];
            if let Target::To(l) = jf {
                replacement.push(Insn::Ja(l));
            }
            replacement.push(Insn::Mark(after));
            self.insns.splice(n..=n, replacement);
        }
        let (at, labels) = self.positions();
        let rel = |from: usize, t: Target| -> u8 {
            match t {
                Target::Next => 0,
                Target::To(l) => (labels[l.0] - from - 1) as u8,
            }
        };
        let mut out = Vec::new();
        for (n, i) in self.insns.iter().enumerate() {
            let pc = at[n];
            out.push(match *i {
                Insn::Ld(off) => stmt(BPF_LD_W_ABS, off),
                Insn::And(k) => stmt(BPF_ALU_AND_K, k),
                Insn::Jump { code, k, jt, jf } => sock_filter {
                    code,
                    jt: rel(pc, jt),
                    jf: rel(pc, jf),
                    k,
                },
                Insn::Ja(l) => stmt(BPF_JA, (labels[l.0] - pc - 1) as u32),
                Insn::Ret(k) => stmt(BPF_RET_K, k),
                Insn::Mark(_) => continue,
            });
        }
        if out.len() > MAX_INSNS {
            return Err(SeccompError::TooLarge(out.len()));
        }
        Ok(out)
    }
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// Kills anything not of the filter's architecture (and, on x86_64, the x32 ABI).
fn arch_check(a: &mut Asm, arch: Arch) {
    a.push(Insn::Ld(ARCH_OFFSET));
    let ok = a.label();
    a.jump(BPF_JEQ_K, arch.audit_arch(), Target::To(ok), Target::Next);
    a.push(Insn::Ret(Action::KillProcess.ret()));
    a.push(Insn::Mark(ok));
    a.push(Insn::Ld(NR_OFFSET));
    if let Some(x32) = arch.foreign_nr_from() {
        let fine = a.label();
        a.jump(BPF_JGE_K, x32, Target::Next, Target::To(fine));
        a.push(Insn::Ret(Action::KillProcess.ret()));
        a.push(Insn::Mark(fine));
    }
}

/// What a run of syscall numbers answers.
#[derive(Debug, Clone, Copy)]
enum Leaf<'a> {
    Simple(Action),
    Checked(&'a SyscallVerdict),
}

/// Compiles a resolved profile into one filter (a binary search over syscall numbers).
pub fn compile_tree(p: &ResolvedProfile) -> Result<BpfProgram, SeccompError> {
    // (first number, answer) for consecutive runs covering 0..=u32::MAX.
    let mut runs: Vec<(u32, Leaf)> = Vec::new();
    fn push<'a>(runs: &mut Vec<(u32, Leaf<'a>)>, start: u32, leaf: Leaf<'a>) {
        if let (Some((_, Leaf::Simple(prev))), Leaf::Simple(now)) = (runs.last(), leaf) {
            if *prev == now {
                return;
            }
        }
        runs.push((start, leaf));
    }
    let mut covered_to = 0u64; // first number not yet in a run
    for (&nr, verdict) in &p.syscalls {
        if u64::from(nr) > covered_to {
            push(&mut runs, covered_to as u32, Leaf::Simple(p.default));
        }
        let leaf = if verdict.conditional.is_empty() {
            Leaf::Simple(verdict.otherwise.unwrap_or(p.default))
        } else {
            Leaf::Checked(verdict)
        };
        push(&mut runs, nr, leaf);
        covered_to = u64::from(nr) + 1;
    }
    if covered_to <= u64::from(u32::MAX) {
        push(&mut runs, covered_to as u32, Leaf::Simple(p.default));
    }
    let mut a = Asm::default();
    arch_check(&mut a, p.arch);
    tree(&mut a, &runs, p.default);
    a.finish()
}

fn tree(a: &mut Asm, runs: &[(u32, Leaf)], default: Action) {
    if runs.len() == 1 {
        return leaf(a, runs[0].1, default);
    }
    let mid = runs.len() / 2;
    let right = a.label();
    a.jump(BPF_JGE_K, runs[mid].0, Target::To(right), Target::Next);
    tree(a, &runs[..mid], default);
    a.push(Insn::Mark(right));
    tree(a, &runs[mid..], default);
}

fn leaf(a: &mut Asm, l: Leaf, default: Action) {
    match l {
        Leaf::Simple(action) => a.push(Insn::Ret(action.ret())),
        Leaf::Checked(v) => {
            for (checks, action) in &v.conditional {
                let next_rule = a.label();
                for c in checks {
                    let pass = a.label();
                    arg_check(a, c, pass, next_rule);
                    a.push(Insn::Mark(pass));
                }
                a.push(Insn::Ret(action.ret()));
                a.push(Insn::Mark(next_rule));
            }
            a.push(Insn::Ret(v.otherwise.unwrap_or(default).ret()));
        }
    }
}

/// A 64-bit unsigned comparison from two 32-bit loads (little-endian `seccomp_data.args`).
fn arg_check(a: &mut Asm, c: &ArgCheck, pass: Label, fail: Label) {
    let lo_off = ARGS_OFFSET + 8 * u32::from(c.index);
    let hi_off = lo_off + 4;
    let (hi, lo) = ((c.value >> 32) as u32, c.value as u32);
    let (p, f, n) = (Target::To(pass), Target::To(fail), Target::Next);
    match c.op {
        CmpOp::Eq => {
            a.push(Insn::Ld(hi_off));
            a.jump(BPF_JEQ_K, hi, n, f);
            a.push(Insn::Ld(lo_off));
            a.jump(BPF_JEQ_K, lo, p, f);
        }
        CmpOp::Ne => {
            a.push(Insn::Ld(hi_off));
            a.jump(BPF_JEQ_K, hi, n, p);
            a.push(Insn::Ld(lo_off));
            a.jump(BPF_JEQ_K, lo, f, p);
        }
        CmpOp::Gt | CmpOp::Ge => {
            a.push(Insn::Ld(hi_off));
            a.jump(BPF_JGT_K, hi, p, n);
            a.jump(BPF_JEQ_K, hi, n, f);
            a.push(Insn::Ld(lo_off));
            let code = if c.op == CmpOp::Gt {
                BPF_JGT_K
            } else {
                BPF_JGE_K
            };
            a.jump(code, lo, p, f);
        }
        CmpOp::Lt | CmpOp::Le => {
            a.push(Insn::Ld(hi_off));
            a.jump(BPF_JGE_K, hi, n, p);
            a.jump(BPF_JEQ_K, hi, n, f);
            a.push(Insn::Ld(lo_off));
            // lo < v  <=>  !(lo >= v);  lo <= v  <=>  !(lo > v)
            let code = if c.op == CmpOp::Lt {
                BPF_JGE_K
            } else {
                BPF_JGT_K
            };
            a.jump(code, lo, f, p);
        }
        CmpOp::MaskedEq { mask } => {
            a.push(Insn::Ld(hi_off));
            a.push(Insn::And((mask >> 32) as u32));
            a.jump(BPF_JEQ_K, hi, n, f);
            a.push(Insn::Ld(lo_off));
            a.push(Insn::And(mask as u32));
            a.jump(BPF_JEQ_K, lo, p, f);
        }
    }
}

/// The second filter: `clone3` answers ENOSYS so libc falls back to `clone`, whose flags the main
/// filter can inspect (clone3 passes them in memory, out of seccomp's reach).
pub fn compile_clone3_enosys(arch: Arch) -> BpfProgram {
    let mut a = Asm::default();
    let allow = a.label();
    a.push(Insn::Ld(ARCH_OFFSET));
    // Foreign architectures are the main filter's business.
    a.jump(
        BPF_JEQ_K,
        arch.audit_arch(),
        Target::Next,
        Target::To(allow),
    );
    a.push(Insn::Ld(NR_OFFSET));
    a.jump(BPF_JEQ_K, arch.clone3_nr(), Target::Next, Target::To(allow));
    a.push(Insn::Ret(Action::Errno(libc::ENOSYS as u16).ret()));
    a.push(Insn::Mark(allow));
    a.push(Insn::Ret(Action::Allow.ret()));
    a.finish().expect("a six-instruction program")
}
