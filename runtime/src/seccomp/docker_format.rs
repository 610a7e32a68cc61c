//! Docker's seccomp profile format (the JSON of `docker run --security-opt seccomp=FILE`).
//!
//! Shared by the build script, which turns the vendored Moby profile into a `static` of these
//! types, and by the runtime, which reads user profiles into the same types. `Cow` lets one
//! definition serve both: borrowed `'static` data when generated, owned data when parsed.
//! Fields tfctl does not use (`archMap`, `comment`, ...) are ignored.

use std::borrow::Cow;

use serde::Deserialize;

pub type Str = Cow<'static, str>;
pub type List<T> = Cow<'static, [T]>;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerProfile {
    /// `SCMP_ACT_ERRNO`, `SCMP_ACT_ALLOW`, ...
    pub default_action: Str,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub syscalls: Option<List<SyscallRule>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    #[serde(default)]
    pub names: Option<List<Str>>,
    /// The older single-name spelling.
    #[serde(default)]
    pub name: Option<Str>,
    pub action: Str,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Option<List<SyscallArg>>,
    #[serde(default)]
    pub includes: Option<RuleFilter>,
    #[serde(default)]
    pub excludes: Option<RuleFilter>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallArg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    /// `SCMP_CMP_EQ`, `SCMP_CMP_MASKED_EQ`, ...
    pub op: Str,
}

/// When a rule applies: every listed capability present (or, in `excludes`, any present), the
/// architecture listed, the kernel at least `minKernel`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleFilter {
    #[serde(default)]
    pub caps: Option<List<Str>>,
    #[serde(default)]
    pub arches: Option<List<Str>>,
    #[serde(default)]
    pub min_kernel: Option<Str>,
}
