//! Seccomp: Moby's default profile (or a Docker-format JSON profile) resolved per container and
//! compiled to classic BPF in the parent, ahead of the spawn.
//!
//! Output for the spawner: [`SeccompPrograms`], plain `Vec<sock_filter>` programs. The child,
//! after `PR_SET_NO_NEW_PRIVS` and as its very last step before `execve`, installs `main` and
//! then `clone3_enosys` if present (order matters: among equal-precedence ERRNO results the
//! most recently installed filter's errno wins) with [`install`], which does not allocate.
//!
//! Architecture: the filter checks `seccomp_data.arch`; syscalls of any other architecture
//! (x86 32-bit `int 0x80`, x32 on x86_64, arm32 compat on aarch64) kill the process. Moby's
//! profile would allow the 32-bit sub-architectures; tfctl does not.
//!
//! Syscall names come from a table generated from the kernel's UAPI headers
//! (`syscalls.rs`, by `scripts/gen-syscall-tables.py`), so syscalls newer than seccompiler's or
//! libc's name lists (e.g. `mseal`, `listmount`, Linux 6.10+) are still numbered.

mod bpf;
pub mod docker_format;
pub mod interp;
mod linear;
pub mod oci;
pub mod profile;
mod syscalls;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

pub use seccompiler::{sock_filter, BpfProgram};

pub use bpf::{compile_clone3_enosys, compile_tree};
pub use docker_format::DockerProfile;
pub use linear::compile_linear;
pub use profile::{
    parse_docker_profile, resolve, Action, KernelVersion, ResolvedProfile, MOBY_DEFAULT,
};

use crate::capabilities::CapSet;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp profile: {0}")]
    Profile(String),
    #[error("cannot read the seccomp profile {path}: {source}")]
    ProfileFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("seccomp profile {path}: {message}")]
    ProfileInvalid { path: PathBuf, message: String },
    #[error("cannot tell the kernel version: {0}")]
    Kernel(String),
    #[error("the seccomp filter has {0} instructions; the kernel takes at most 4096 (simplify the profile)")]
    TooLarge(usize),
    #[error("seccompiler cannot express this profile: {0}")]
    Linear(String),
}

/// Architectures tfctl builds filters for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture tfctl was built for.
    pub fn native() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    /// `AUDIT_ARCH_*`, what the kernel puts in `seccomp_data.arch`.
    pub fn audit_arch(self) -> u32 {
        match self {
            Arch::X86_64 => 0xC000_003E,
            Arch::Aarch64 => 0xC000_00B7,
        }
    }

    /// The name Moby's profile uses in `arches` (Go's GOARCH).
    pub fn docker_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// Syscall numbers from here on belong to another ABI on the same `AUDIT_ARCH` (x32).
    fn foreign_nr_from(self) -> Option<u32> {
        match self {
            Arch::X86_64 => Some(0x4000_0000),
            Arch::Aarch64 => None,
        }
    }

    pub fn clone3_nr(self) -> u32 {
        435
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Arch::X86_64 => syscalls::X86_64,
            Arch::Aarch64 => syscalls::AARCH64,
        }
    }

    /// A syscall's name by number on this architecture.
    pub fn syscall_name(self, nr: u32) -> Option<&'static str> {
        // Indexed by number: the OCI form of a profile names every syscall it lists.
        // Per architecture, made at first use: a container start needs the native one only.
        static NAMES: [OnceLock<Vec<Option<&'static str>>>; 2] = [OnceLock::new(), OnceLock::new()];
        let names = NAMES[self as usize].get_or_init(|| {
            let mut v = vec![None; self.table().iter().map(|(_, n)| *n as usize + 1).max().unwrap_or(0)];
            for (name, n) in self.table() {
                v[*n as usize].get_or_insert(*name);
            }
            v
        });
        names.get(nr as usize).copied().flatten()
    }

    /// A syscall's number on this architecture; `None` if it has no such syscall.
    pub fn syscall_nr(self, name: &str) -> Option<u32> {
        static MAPS: [OnceLock<HashMap<&'static str, u32>>; 2] = [OnceLock::new(), OnceLock::new()];
        MAPS[self as usize].get_or_init(|| self.table().iter().copied().collect()).get(name).copied()
    }
}

/// Which profile a container runs under, loaded (a JSON profile is read once, at plan time).
#[derive(Debug, Clone, PartialEq)]
pub enum SeccompPolicy {
    Unconfined,
    /// Moby's default profile.
    Default,
    /// A Docker-format JSON profile.
    Profile(Arc<DockerProfile>),
}

impl SeccompPolicy {
    /// The app file's `seccomp` setting, with a profile file read and parsed.
    pub fn from_model(s: &tfctl_schema::model::Seccomp) -> Result<SeccompPolicy, SeccompError> {
        use tfctl_schema::model::Seccomp;
        Ok(match s {
            Seccomp::Default => SeccompPolicy::Default,
            Seccomp::Unconfined => SeccompPolicy::Unconfined,
            Seccomp::Profile(path) => SeccompPolicy::load(path)?,
        })
    }

    /// Reads a Docker-format JSON profile.
    pub fn load(path: &Path) -> Result<SeccompPolicy, SeccompError> {
        let json = std::fs::read_to_string(path).map_err(|source| SeccompError::ProfileFile {
            path: path.to_owned(),
            source,
        })?;
        let profile = parse_docker_profile(&json).map_err(|e| SeccompError::ProfileInvalid {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        // Resolve once now so a bad rule is reported at plan time, not at start.
        resolve(
            &profile,
            Arch::native(),
            KernelVersion(u32::MAX, 0),
            CapSet(u64::MAX),
        )
        .map_err(|e| SeccompError::ProfileInvalid {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Ok(SeccompPolicy::Profile(Arc::new(profile)))
    }
}

/// The compiled filters for one container: install `main`, then `clone3_enosys` if present.
#[derive(Debug, Clone, PartialEq)]
pub struct SeccompPrograms {
    pub main: BpfProgram,
    /// Needed only when `main` cannot answer clone3 with ENOSYS itself (the seccompiler layout).
    pub clone3_enosys: Option<BpfProgram>,
}

impl SeccompPrograms {
    /// The programs in installation order, as the spawner's plan carries them.
    pub fn to_plan(&self) -> Vec<crate::spawn::plan::BpfProgram> {
        std::iter::once(&self.main)
            .chain(self.clone3_enosys.as_ref())
            .map(|p| p.clone().into())
            .collect()
    }
}

/// How `main` is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// A binary search on the syscall number (tfctl's own generator): ~180 instructions for the
    /// Moby profile, clone3's ENOSYS included.
    Tree,
    /// seccompiler's linear chain (~1,600 instructions) plus the clone3 filter: the reference.
    Linear,
}

/// Resolves `policy` for a container whose bounding set is `caps`, for the native architecture
/// and the running kernel. `None` for `Unconfined`. The default profile's resolution is cached
/// per capability set: a container's spec (the OCI form) and its filters both start from it.
pub fn resolved(policy: &SeccompPolicy, caps: CapSet) -> Result<Option<Arc<ResolvedProfile>>, SeccompError> {
    static CACHE: Mutex<Option<HashMap<CapSet, Arc<ResolvedProfile>>>> = Mutex::new(None);
    let profile = match policy {
        SeccompPolicy::Unconfined => return Ok(None),
        SeccompPolicy::Default => {
            if let Some(hit) = CACHE.lock().unwrap().get_or_insert_with(HashMap::new).get(&caps) {
                return Ok(Some(hit.clone()));
            }
            &MOBY_DEFAULT
        }
        SeccompPolicy::Profile(p) => p.as_ref(),
    };
    let resolved = Arc::new(resolve(profile, Arch::native(), KernelVersion::running()?, caps)?);
    if *policy == SeccompPolicy::Default {
        CACHE.lock().unwrap().get_or_insert_with(HashMap::new).insert(caps, resolved.clone());
    }
    Ok(Some(resolved))
}

/// Resolves and compiles `policy` for a container whose bounding set is `caps`, for the native
/// architecture and the running kernel. `None` for `Unconfined`. The default profile's programs
/// are cached per capability set, so repeated starts cost a hash lookup.
pub fn programs(
    policy: &SeccompPolicy,
    caps: CapSet,
) -> Result<Option<Arc<SeccompPrograms>>, SeccompError> {
    static CACHE: Mutex<Option<HashMap<CapSet, Arc<SeccompPrograms>>>> = Mutex::new(None);
    if *policy == SeccompPolicy::Default {
        if let Some(hit) = CACHE
            .lock()
            .unwrap()
            .get_or_insert_with(HashMap::new)
            .get(&caps)
        {
            return Ok(Some(hit.clone()));
        }
    }
    let Some(resolved) = resolved(policy, caps)? else { return Ok(None) };
    let compiled = Arc::new(compile(&resolved, Layout::Tree)?);
    if *policy == SeccompPolicy::Default {
        CACHE
            .lock()
            .unwrap()
            .get_or_insert_with(HashMap::new)
            .insert(caps, compiled.clone());
    }
    Ok(Some(compiled))
}

/// Compiles a resolved profile with the chosen layout.
pub fn compile(p: &ResolvedProfile, layout: Layout) -> Result<SeccompPrograms, SeccompError> {
    let clone3_enosys =
        p.evaluate(p.arch.clone3_nr(), &[0; 6]) == Action::Errno(libc::ENOSYS as u16);
    Ok(match layout {
        Layout::Tree => SeccompPrograms {
            main: compile_tree(p)?,
            clone3_enosys: None,
        },
        Layout::Linear => SeccompPrograms {
            main: compile_linear(p)?,
            clone3_enosys: clone3_enosys.then(|| compile_clone3_enosys(p.arch)),
        },
    })
}

/// Installs one filter on the calling thread. Async-signal-safe (no allocation), for the
/// spawner's child; needs `PR_SET_NO_NEW_PRIVS` set first (or CAP_SYS_ADMIN).
pub fn install(program: &[sock_filter]) -> Result<(), nix::errno::Errno> {
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `program`, alive for the call; the kernel copies the program.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(nix::errno::Errno::last())
    }
}

#[cfg(test)]
mod tests;
