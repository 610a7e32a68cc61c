//! Resolving a Docker-format profile for one container: which rules apply given the container's
//! capabilities, the architecture and the running kernel (as Moby does), and syscall names turned
//! into numbers.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::docker_format::{DockerProfile, RuleFilter, SyscallArg, SyscallRule};
use super::{Arch, SeccompError};
use crate::capabilities::{cap_index, CapSet};

include!(concat!(env!("OUT_DIR"), "/moby_default.rs"));

/// What a filter answers for a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Allow,
    Errno(u16),
    KillProcess,
    KillThread,
    Trap,
    Log,
    Trace(u16),
}

impl Action {
    /// The filter's return value (`SECCOMP_RET_*`).
    pub fn ret(self) -> u32 {
        match self {
            Action::Allow => libc::SECCOMP_RET_ALLOW,
            Action::Errno(e) => libc::SECCOMP_RET_ERRNO | u32::from(e),
            Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Action::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            Action::Trap => libc::SECCOMP_RET_TRAP,
            Action::Log => libc::SECCOMP_RET_LOG,
            Action::Trace(d) => libc::SECCOMP_RET_TRACE | u32::from(d),
        }
    }

    fn parse(name: &str, errno: Option<u32>) -> Result<Action, SeccompError> {
        let data = |default: u32, max: u16| -> Result<u16, SeccompError> {
            let v = errno.unwrap_or(default);
            u16::try_from(v).ok().filter(|v| *v <= max).ok_or_else(|| {
                SeccompError::Profile(format!("errnoRet {v} of {name} is out of range (0-{max})"))
            })
        };
        Ok(match name {
            "SCMP_ACT_ALLOW" => Action::Allow,
            // Docker's default errno for ERRNO without errnoRet is EPERM. At most MAX_ERRNO:
            // the kernel would return 4095 for anything larger, and libseccomp (so Docker)
            // refuses it.
            "SCMP_ACT_ERRNO" => Action::Errno(data(libc::EPERM as u32, 4095)?),
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
            "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
            "SCMP_ACT_TRAP" => Action::Trap,
            "SCMP_ACT_LOG" => Action::Log,
            "SCMP_ACT_TRACE" => Action::Trace(data(0, u16::MAX)?),
            other => {
                return Err(SeccompError::Profile(format!(
                    "action `{other}` is not supported (use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, \
                     SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_LOG or \
                     SCMP_ACT_TRACE)"
                )))
            }
        })
    }
}

/// A 64-bit comparison of one syscall argument, as libseccomp does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArgCheck {
    pub index: u8,
    pub op: CmpOp,
    pub value: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `(arg & mask) == value` (`value` has no bit outside `mask`).
    MaskedEq {
        mask: u64,
    },
}

impl ArgCheck {
    fn parse(a: &SyscallArg) -> Result<ArgCheck, SeccompError> {
        let index = u8::try_from(a.index)
            .ok()
            .filter(|i| *i < 6)
            .ok_or_else(|| {
                SeccompError::Profile(format!("argument index {} is not 0-5", a.index))
            })?;
        let (op, value) = match a.op.as_ref() {
            "SCMP_CMP_EQ" => (CmpOp::Eq, a.value),
            "SCMP_CMP_NE" => (CmpOp::Ne, a.value),
            "SCMP_CMP_LT" => (CmpOp::Lt, a.value),
            "SCMP_CMP_LE" => (CmpOp::Le, a.value),
            "SCMP_CMP_GT" => (CmpOp::Gt, a.value),
            "SCMP_CMP_GE" => (CmpOp::Ge, a.value),
            // Docker: `value` is the mask, `valueTwo` the expected result. Bits of the result
            // outside the mask are dropped, as libseccomp (so Docker) does: `(arg & mask) ==
            // (valueTwo & mask)`, not a rule that can never match.
            "SCMP_CMP_MASKED_EQ" => (CmpOp::MaskedEq { mask: a.value }, a.value_two & a.value),
            other => {
                return Err(SeccompError::Profile(format!(
                    "comparison `{other}` is not supported"
                )))
            }
        };
        Ok(ArgCheck { index, op, value })
    }

    /// Evaluates the check on an argument value (the reference semantics the BPF code follows).
    pub fn matches(&self, arg: u64) -> bool {
        match self.op {
            CmpOp::Eq => arg == self.value,
            CmpOp::Ne => arg != self.value,
            CmpOp::Lt => arg < self.value,
            CmpOp::Le => arg <= self.value,
            CmpOp::Gt => arg > self.value,
            CmpOp::Ge => arg >= self.value,
            CmpOp::MaskedEq { mask } => arg & mask == self.value,
        }
    }
}

/// What one syscall gets: the first conditional rule whose checks all hold, else `otherwise`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SyscallVerdict {
    pub conditional: Vec<(Vec<ArgCheck>, Action)>,
    /// `None`: the profile's default action.
    pub otherwise: Option<Action>,
}

/// A profile resolved for one architecture, kernel and capability set: ready to compile.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResolvedProfile {
    pub arch: Arch,
    pub default: Action,
    /// By syscall number.
    pub syscalls: BTreeMap<u32, SyscallVerdict>,
    /// Names the profile lists that do not exist on this architecture (skipped).
    pub unknown: Vec<String>,
}

impl ResolvedProfile {
    /// The action for a syscall with these arguments (what the compiled filter must answer).
    pub fn evaluate(&self, nr: u32, args: &[u64; 6]) -> Action {
        let Some(v) = self.syscalls.get(&nr) else {
            return self.default;
        };
        for (checks, action) in &v.conditional {
            if checks.iter().all(|c| c.matches(args[usize::from(c.index)])) {
                return *action;
            }
        }
        v.otherwise.unwrap_or(self.default)
    }
}

/// A kernel version `major.minor`, compared as Moby's `minKernel` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion(pub u32, pub u32);

impl KernelVersion {
    /// Parses the start of a release string (`6.18.44-fc` -> 6.18).
    pub fn parse(release: &str) -> Option<KernelVersion> {
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
        Some(KernelVersion(major, minor))
    }

    /// The running kernel's version.
    pub fn running() -> Result<KernelVersion, SeccompError> {
        let uts = nix::sys::utsname::uname().map_err(|e| SeccompError::Kernel(e.to_string()))?;
        let release = uts.release().to_string_lossy().into_owned();
        KernelVersion::parse(&release).ok_or(SeccompError::Kernel(format!(
            "unreadable release `{release}`"
        )))
    }
}

/// Parses a Docker-format JSON profile.
pub fn parse_docker_profile(json: &str) -> Result<DockerProfile, SeccompError> {
    serde_json::from_str(json).map_err(|e| SeccompError::Profile(e.to_string()))
}

/// Resolves `profile` for a container whose bounding capability set is `caps`.
pub fn resolve(
    profile: &DockerProfile,
    arch: Arch,
    kernel: KernelVersion,
    caps: CapSet,
) -> Result<ResolvedProfile, SeccompError> {
    let default = Action::parse(&profile.default_action, profile.default_errno_ret)?;
    let mut resolved = ResolvedProfile {
        arch,
        default,
        syscalls: BTreeMap::new(),
        unknown: Vec::new(),
    };
    for rule in profile.syscalls.as_deref().unwrap_or_default() {
        if !applies(rule, arch, kernel, caps)? {
            continue;
        }
        // A rule errnoRet without its own default falls back to the profile's.
        let action = Action::parse(&rule.action, rule.errno_ret.or(profile.default_errno_ret))?;
        // As runc does: libseccomp refuses a rule that answers the default action, so Docker
        // skips it; it neither decides a syscall nor shadows a later rule.
        if action == default {
            continue;
        }
        let checks = rule
            .args
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(ArgCheck::parse)
            .collect::<Result<Vec<_>, _>>()?;
        for name in rule_names(rule)? {
            let Some(nr) = arch.syscall_nr(name) else {
                if !resolved.unknown.iter().any(|u| u == name) {
                    resolved.unknown.push(name.to_string());
                }
                continue;
            };
            let verdict = resolved.syscalls.entry(nr).or_default();
            if checks.is_empty() {
                // The first unconditional rule decides; a later one cannot change it (as in
                // libseccomp, which keeps the first and drops the rest).
                verdict.otherwise.get_or_insert(action);
            } else if !verdict
                .conditional
                .iter()
                .any(|(c, a)| *c == checks && *a == action)
            {
                verdict.conditional.push((checks.clone(), action));
            }
        }
    }
    // An unconditional rule decides its syscall whatever the conditional ones say, before or
    // after it: libseccomp drops a syscall's argument checks once it has a rule without any
    // (and conditional rules never answer the default: skipped above).
    for verdict in resolved.syscalls.values_mut() {
        if verdict.otherwise.is_some() {
            verdict.conditional.clear();
        }
    }
    resolved
        .syscalls
        .retain(|_, v| !(v.conditional.is_empty() && v.otherwise.unwrap_or(default) == default));
    Ok(resolved)
}

fn rule_names(rule: &SyscallRule) -> Result<Vec<&str>, SeccompError> {
    let mut names: Vec<&str> = rule
        .names
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|n| n.as_ref())
        .collect();
    if let Some(n) = &rule.name {
        names.push(n);
    }
    if names.is_empty() {
        return Err(SeccompError::Profile(format!(
            "a rule with action {} names no syscall",
            rule.action
        )));
    }
    Ok(names)
}

/// Moby's `includes`/`excludes` semantics: includes need every capability listed and the
/// architecture listed; excludes drop the rule if any capability or the architecture is listed.
fn applies(
    rule: &SyscallRule,
    arch: Arch,
    kernel: KernelVersion,
    caps: CapSet,
) -> Result<bool, SeccompError> {
    let empty = RuleFilter::default();
    let inc = rule.includes.as_ref().unwrap_or(&empty);
    let exc = rule.excludes.as_ref().unwrap_or(&empty);
    let list = |l: &Option<Cow<'static, [Cow<'static, str>]>>| -> Vec<String> {
        l.as_deref()
            .unwrap_or_default()
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let has_cap = |name: &str| -> Result<bool, SeccompError> {
        let idx = cap_index(name).map_err(|e| SeccompError::Profile(e.to_string()))?;
        Ok(caps.contains(idx))
    };
    let (inc_arches, exc_arches) = (list(&inc.arches), list(&exc.arches));
    if !inc_arches.is_empty() && !inc_arches.iter().any(|a| a == arch.docker_name()) {
        return Ok(false);
    }
    if exc_arches.iter().any(|a| a == arch.docker_name()) {
        return Ok(false);
    }
    for cap in list(&inc.caps) {
        if !has_cap(&cap)? {
            return Ok(false);
        }
    }
    for cap in list(&exc.caps) {
        if has_cap(&cap)? {
            return Ok(false);
        }
    }
    let min = |v: &Option<Cow<'static, str>>| -> Result<Option<KernelVersion>, SeccompError> {
        v.as_deref()
            .map(|s| {
                KernelVersion::parse(s).ok_or_else(|| {
                    SeccompError::Profile(format!("minKernel `{s}` is not a version"))
                })
            })
            .transpose()
    };
    if let Some(m) = min(&inc.min_kernel)? {
        if kernel < m {
            return Ok(false);
        }
    }
    if let Some(m) = min(&exc.min_kernel)? {
        if kernel >= m {
            return Ok(false);
        }
    }
    Ok(true)
}
