//! A classic-BPF interpreter for seccomp filters: what the kernel would answer for one syscall.
//!
//! Containers never run through it (the kernel runs the installed filters). It is how the tests
//! and the differential fuzz target (fuzz/seccomp_diff.rs) check a compiled program, tfctl's or
//! libseccomp's, against the profile without installing anything; so it follows the kernel's
//! rules (`seccomp_run_filters`, `bpf_check_classic`) rather than trusting the programs it runs:
//! an opcode seccomp refuses, a load outside `seccomp_data` or a jump off the end is an error.

use seccompiler::sock_filter;

/// The kernel's `struct seccomp_data`, the only memory a seccomp filter can load from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeccompData {
    pub nr: u32,
    /// `AUDIT_ARCH_*`.
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    /// A syscall of architecture `arch` (its `AUDIT_ARCH_*`) at instruction pointer 0.
    pub fn new(arch: u32, nr: u32, args: [u64; 6]) -> SeccompData {
        SeccompData {
            nr,
            arch,
            instruction_pointer: 0,
            args,
        }
    }

    /// The 64 bytes as the filter sees them (little-endian, the only byte order tfctl targets).
    fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_le_bytes());
        b[4..8].copy_from_slice(&self.arch.to_le_bytes());
        b[8..16].copy_from_slice(&self.instruction_pointer.to_le_bytes());
        for (n, a) in self.args.iter().enumerate() {
            b[16 + 8 * n..24 + 8 * n].copy_from_slice(&a.to_le_bytes());
        }
        b
    }
}

/// Why a program cannot be run (the kernel would have refused to load it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    #[error("instruction {pc}: opcode {code:#06x} is not allowed in a seccomp filter")]
    Opcode { pc: usize, code: u16 },
    #[error("instruction {pc}: load from offset {k}, outside the 64 bytes of seccomp_data")]
    Load { pc: usize, k: u32 },
    #[error("instruction {pc}: the program runs past its last instruction")]
    OffTheEnd { pc: usize },
    #[error("instruction {pc}: scratch memory slot {k} does not exist (there are 16)")]
    Scratch { pc: usize, k: u32 },
    #[error("the program has {len} instructions; the kernel takes 1 to {}", super::bpf::MAX_INSNS)]
    Length { len: usize },
}

/// Runs one filter on `data` and returns its `SECCOMP_RET_*` value.
pub fn run(prog: &[sock_filter], data: &SeccompData) -> Result<u32, InterpError> {
    use libc::{
        BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_DIV, BPF_IMM, BPF_JA, BPF_JEQ, BPF_JGE, BPF_JGT,
        BPF_JMP, BPF_JSET, BPF_LD, BPF_LDX, BPF_LEN, BPF_LSH, BPF_MEM, BPF_MISC, BPF_MUL, BPF_NEG,
        BPF_OR, BPF_RET, BPF_RSH, BPF_ST, BPF_STX, BPF_SUB, BPF_W, BPF_X, BPF_XOR,
    };
    // Not in the libc crate: linux/filter.h's BPF_MISC operations, BPF_RET's A source, BPF_MOD.
    const BPF_TAX: u32 = 0x00;
    const BPF_TXA: u32 = 0x80;
    const BPF_RET_A: u32 = 0x10;
    const BPF_MOD: u32 = 0x90;
    if prog.is_empty() || prog.len() > super::bpf::MAX_INSNS {
        return Err(InterpError::Length { len: prog.len() });
    }
    let bytes = data.bytes();
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    // Classic BPF only jumps forward: every step moves `pc` on by at least one, so a run ends
    // after at most `prog.len()` (≤ 4096) instructions, whatever the program.
    while let Some(i) = prog.get(pc) {
        let (code, k) = (u32::from(i.code), i.k);
        let bad = InterpError::Opcode { pc, code: i.code };
        let here = pc;
        pc += 1;
        match code & 0x07 {
            BPF_LD | BPF_LDX => {
                let v = match code & !0x07 {
                    m if m == BPF_W | BPF_ABS && code & 0x07 == BPF_LD => {
                        if k % 4 != 0 || k >= 64 {
                            return Err(InterpError::Load { pc: here, k });
                        }
                        let k = k as usize;
                        u32::from_le_bytes(bytes[k..k + 4].try_into().expect("four bytes"))
                    }
                    m if m == BPF_W | BPF_LEN => 64,
                    m if m == BPF_IMM => k,
                    m if m == BPF_MEM => *mem.get(k as usize).ok_or(InterpError::Scratch { pc: here, k })?,
                    _ => return Err(bad),
                };
                if code & 0x07 == BPF_LD {
                    a = v;
                } else {
                    x = v;
                }
            }
            BPF_ST | BPF_STX => {
                let slot = mem.get_mut(k as usize).ok_or(InterpError::Scratch { pc: here, k })?;
                *slot = if code == BPF_ST { a } else { x };
            }
            BPF_ALU => {
                let operand = if code & BPF_X != 0 { x } else { k };
                a = match code & 0xf0 {
                    BPF_ADD => a.wrapping_add(operand),
                    BPF_SUB => a.wrapping_sub(operand),
                    BPF_MUL => a.wrapping_mul(operand),
                    // The kernel's classic BPF answers 0 for a division by a zero X.
                    BPF_DIV => a.checked_div(operand).unwrap_or(0),
                    BPF_MOD => a.checked_rem(operand).unwrap_or(0),
                    BPF_OR => a | operand,
                    BPF_AND => a & operand,
                    BPF_XOR => a ^ operand,
                    BPF_LSH => a.checked_shl(operand).unwrap_or(0),
                    BPF_RSH => a.checked_shr(operand).unwrap_or(0),
                    BPF_NEG => a.wrapping_neg(),
                    _ => return Err(bad),
                };
            }
            BPF_JMP => {
                if code & 0xf0 == BPF_JA {
                    pc = pc.checked_add(k as usize).ok_or(InterpError::OffTheEnd { pc: here })?;
                    continue;
                }
                let operand = if code & BPF_X != 0 { x } else { k };
                let taken = match code & 0xf0 {
                    BPF_JEQ => a == operand,
                    BPF_JGT => a > operand,
                    BPF_JGE => a >= operand,
                    BPF_JSET => a & operand != 0,
                    _ => return Err(bad),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            BPF_RET => {
                return match code & 0x18 {
                    0 => Ok(k),
                    BPF_RET_A => Ok(a),
                    _ => Err(bad),
                }
            }
            BPF_MISC => match code & 0xf8 {
                BPF_TAX => x = a,
                BPF_TXA => a = x,
                _ => return Err(bad),
            },
            _ => return Err(bad),
        }
    }
    Err(InterpError::OffTheEnd { pc })
}

/// Runs stacked filters, given in installation order, as the kernel does: every filter runs,
/// the most severe action wins and, among equally severe ones, the most recently installed.
pub fn run_stack(progs: &[&[sock_filter]], data: &SeccompData) -> Result<u32, InterpError> {
    // Severity: the action bits compared as a signed number (KILL_PROCESS is negative).
    let rank = |r: u32| (r & libc::SECCOMP_RET_ACTION_FULL) as i32;
    let mut best: Option<u32> = None;
    for p in progs.iter().rev() {
        let r = run(p, data)?;
        if best.is_none_or(|b| rank(r) < rank(b)) {
            best = Some(r);
        }
    }
    Ok(best.unwrap_or(libc::SECCOMP_RET_ALLOW))
}
