//! The reference compilation through seccompiler: a linear chain of per-syscall checks.
//!
//! seccompiler has one match action per filter, so it expresses profiles whose non-default
//! answers are all ALLOW (Moby's is, but for clone3's ENOSYS, which the second filter gives).
//! tfctl starts containers with the tree layout; this one is kept as the independent reference
//! the tree is checked against, and for the benchmark.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::profile::{Action, CmpOp, ResolvedProfile};
use super::{Arch, SeccompError};

fn action(a: Action) -> SeccompAction {
    match a {
        Action::Allow => SeccompAction::Allow,
        Action::Errno(e) => SeccompAction::Errno(u32::from(e)),
        Action::KillProcess => SeccompAction::KillProcess,
        Action::KillThread => SeccompAction::KillThread,
        Action::Trap => SeccompAction::Trap,
        Action::Log => SeccompAction::Log,
        Action::Trace(d) => SeccompAction::Trace(u32::from(d)),
    }
}

pub fn compile_linear(p: &ResolvedProfile) -> Result<BpfProgram, SeccompError> {
    let err = |e: &dyn std::fmt::Display| SeccompError::Linear(e.to_string());
    let clone3 = p.arch.clone3_nr();
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (&nr, v) in &p.syscalls {
        if nr == clone3
            && v.otherwise == Some(Action::Errno(libc::ENOSYS as u16))
            && v.conditional.is_empty()
        {
            continue; // the clone3 filter answers it
        }
        if v.otherwise.is_some_and(|o| o != Action::Allow)
            || v.conditional.iter().any(|(_, a)| *a != Action::Allow)
        {
            return Err(SeccompError::Linear(format!(
                "syscall {nr} has an answer other than ALLOW or the default"
            )));
        }
        let entry = rules.entry(i64::from(nr)).or_default();
        if v.otherwise == Some(Action::Allow) {
            continue; // an empty rule list matches unconditionally
        }
        for (checks, _) in &v.conditional {
            let conds = checks
                .iter()
                .map(|c| {
                    let (op, value) = match c.op {
                        CmpOp::Eq => (SeccompCmpOp::Eq, c.value),
                        CmpOp::Ne => (SeccompCmpOp::Ne, c.value),
                        CmpOp::Lt => (SeccompCmpOp::Lt, c.value),
                        CmpOp::Le => (SeccompCmpOp::Le, c.value),
                        CmpOp::Gt => (SeccompCmpOp::Gt, c.value),
                        CmpOp::Ge => (SeccompCmpOp::Ge, c.value),
                        CmpOp::MaskedEq { mask } => (SeccompCmpOp::MaskedEq(mask), c.value),
                    };
                    SeccompCondition::new(c.index, SeccompCmpArgLen::Qword, op, value)
                        .map_err(|e| err(&e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            entry.push(SeccompRule::new(conds).map_err(|e| err(&e))?);
        }
    }
    let arch = match p.arch {
        Arch::X86_64 => TargetArch::x86_64,
        Arch::Aarch64 => TargetArch::aarch64,
    };
    let filter = SeccompFilter::new(rules, action(p.default), SeccompAction::Allow, arch)
        .map_err(|e| err(&e))?;
    BpfProgram::try_from(filter).map_err(|e| err(&e))
}
