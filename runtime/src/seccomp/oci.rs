//! A resolved profile as the OCI runtime spec's `linux.seccomp` (for `config.json` bundles,
//! e.g. the benchmark's crun comparison with the same rules).

use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

use super::profile::{Action, CmpOp, ResolvedProfile};
use super::{Arch, SeccompError};

fn action(a: Action) -> (LinuxSeccompAction, Option<u32>) {
    match a {
        Action::Allow => (LinuxSeccompAction::ScmpActAllow, None),
        Action::Errno(e) => (LinuxSeccompAction::ScmpActErrno, Some(u32::from(e))),
        Action::KillProcess => (LinuxSeccompAction::ScmpActKillProcess, None),
        Action::KillThread => (LinuxSeccompAction::ScmpActKillThread, None),
        Action::Trap => (LinuxSeccompAction::ScmpActTrap, None),
        Action::Log => (LinuxSeccompAction::ScmpActLog, None),
        Action::Trace(d) => (LinuxSeccompAction::ScmpActTrace, Some(u32::from(d))),
    }
}

fn syscall(
    names: Vec<String>,
    a: Action,
    args: Vec<LinuxSeccompArg>,
) -> Result<LinuxSyscall, SeccompError> {
    let (act, errno) = action(a);
    let mut b = LinuxSyscallBuilder::default()
        .names(names)
        .action(act);
    if let Some(e) = errno {
        b = b.errno_ret(e);
    }
    if !args.is_empty() {
        b = b.args(args);
    }
    b.build().map_err(|e| SeccompError::Profile(e.to_string()))
}

/// The OCI form of a resolved profile: one entry per conditional rule, and one per action for
/// the syscalls that take it unconditionally (every container's spec holds this form: some 350
/// one-name entries cost a start as much as the rest of its spec).
pub fn to_oci(p: &ResolvedProfile) -> Result<LinuxSeccomp, SeccompError> {
    let mut syscalls = Vec::new();
    let mut unconditional: Vec<(Action, Vec<String>)> = Vec::new();
    for (&nr, v) in &p.syscalls {
        let Some(name) = p.arch.syscall_name(nr) else {
            continue;
        };
        for (checks, a) in &v.conditional {
            let args = checks
                .iter()
                .map(|c| {
                    let (op, value, value_two) = match c.op {
                        CmpOp::Eq => (LinuxSeccompOperator::ScmpCmpEq, c.value, None),
                        CmpOp::Ne => (LinuxSeccompOperator::ScmpCmpNe, c.value, None),
                        CmpOp::Lt => (LinuxSeccompOperator::ScmpCmpLt, c.value, None),
                        CmpOp::Le => (LinuxSeccompOperator::ScmpCmpLe, c.value, None),
                        CmpOp::Gt => (LinuxSeccompOperator::ScmpCmpGt, c.value, None),
                        CmpOp::Ge => (LinuxSeccompOperator::ScmpCmpGe, c.value, None),
                        CmpOp::MaskedEq { mask } => {
                            (LinuxSeccompOperator::ScmpCmpMaskedEq, mask, Some(c.value))
                        }
                    };
                    let mut b = LinuxSeccompArgBuilder::default()
                        .index(usize::from(c.index))
                        .value(value)
                        .op(op);
                    if let Some(v2) = value_two {
                        b = b.value_two(v2);
                    }
                    b.build().map_err(|e| SeccompError::Profile(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            syscalls.push(syscall(vec![name.to_string()], *a, args)?);
        }
        if let Some(a) = v.otherwise {
            if a != p.default {
                match unconditional.iter_mut().find(|(b, _)| *b == a) {
                    Some((_, names)) => names.push(name.to_string()),
                    None => unconditional.push((a, vec![name.to_string()])),
                }
            }
        }
    }
    for (a, names) in unconditional {
        syscalls.push(syscall(names, a, Vec::new())?);
    }
    let (default_action, default_errno) = action(p.default);
    let arch = match p.arch {
        Arch::X86_64 => OciArch::ScmpArchX86_64,
        Arch::Aarch64 => OciArch::ScmpArchAarch64,
    };
    let mut b = LinuxSeccompBuilder::default()
        .default_action(default_action)
        .architectures(vec![arch])
        .syscalls(syscalls);
    if let Some(e) = default_errno {
        b = b.default_errno_ret(e);
    }
    b.build().map_err(|e| SeccompError::Profile(e.to_string()))
}
