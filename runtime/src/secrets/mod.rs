//! Secrets: resolved into memory (never logged, never in errors or state), written only into a
//! detached tmpfs, and bind-mounted file by file onto their paths in the container.
//!
//! For the spawner: [`SecretMounts::mounts`] is plain data, a detached mount descriptor and the
//! absolute container path for each secret file (and each templated file that uses a secret).
//! In the child, after the rootfs is mounted and before `pivot_root`, for each mount:
//! `target = rootfs::open_or_create(root_fd, path, false)` (created by descriptor if
//! missing, resolved with `RESOLVE_IN_ROOT`), then [`attach`]`(mount.fd, target)`.
//! Secrets given as environment variables (`env=`) are in [`secret_env`].

pub mod from_env;
mod host_key;
mod tmpfs;

use std::collections::HashMap;
use std::ffi::CString;
use std::fmt;
use std::io::Write;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, Mode};
use nix::unistd::{fchown, Gid, Uid};
use tfctl_schema::model::{Owner, SecretDef, SecretSource, SecretTarget, SecretUse};
use zeroize::Zeroizing;

pub use host_key::{HostKey, KEY_LEN};

/// Size of each container's secrets tmpfs.
pub const SECRETS_TMPFS_SIZE: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("host key {path}: {source}")]
    HostKey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("host key {path} is readable by others (mode {mode:o}); it must be 0600 in a 0700 folder owned by root")]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("host key {path} holds {len} bytes, not 32: restore it from a backup, or remove it to make new generated secrets")]
    KeyInvalid { path: PathBuf, len: u64 },
    #[error("secret `{name}`: cannot read {path}: {source}")]
    FromFile {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("secret `{name}`: the environment variable `{var}` is not set")]
    FromEnv { name: String, var: String },
    #[error("secret `{0}` is used but not defined by the app")]
    Undefined(String),
    #[error("secrets tmpfs: {step} failed: {errno}")]
    Tmpfs {
        step: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("secrets tmpfs: cannot write the file for {path}: {errno}")]
    Write {
        path: String,
        errno: nix::errno::Errno,
    },
    #[error("secrets tmpfs is full: the secrets of one container may take at most 1 MiB")]
    Full,
}

/// A secret's bytes. Wiped from memory when dropped; `Debug` shows only the length, and there
/// is no `Display` or `Serialize`, so a value cannot end up in a log, an error or a state file.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(pub(crate) Zeroizing<Vec<u8>>);

impl SecretValue {
    pub fn new(bytes: Vec<u8>) -> SecretValue {
        SecretValue(Zeroizing::new(bytes))
    }

    /// The bytes, for writing them where they belong.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue({} bytes)", self.0.len())
    }
}

/// Resolves one secret: read from its file or variable, or derived from the host key with the
/// app's generation number (kept in the app's record).
pub fn resolve(
    def: &SecretDef,
    app: &str,
    generation: u64,
    key: &HostKey,
) -> Result<SecretValue, SecretError> {
    match &def.source {
        SecretSource::FromFile(path) => {
            std::fs::read(path)
                .map(SecretValue::new)
                .map_err(|source| SecretError::FromFile {
                    name: def.name.clone(),
                    path: path.clone(),
                    source,
                })
        }
        SecretSource::FromEnv(var) => std::env::var_os(var)
            .map(|v| SecretValue::new(std::os::unix::ffi::OsStringExt::into_vec(v)))
            .ok_or_else(|| SecretError::FromEnv {
                name: def.name.clone(),
                var: var.clone(),
            }),
        SecretSource::Generate(len) => Ok(key.derive(app, &def.name, generation, *len as usize)),
    }
}

/// The environment variables a container asks secrets in (`secret "NAME" env="VAR"`).
pub fn secret_env(
    uses: &[SecretUse],
    values: &HashMap<String, SecretValue>,
) -> Result<Vec<(String, SecretValue)>, SecretError> {
    uses.iter()
        .filter_map(|u| match &u.target {
            SecretTarget::Env(var) => Some((var, &u.name)),
            SecretTarget::File { .. } => None,
        })
        .map(|(var, name)| {
            let v = values
                .get(name)
                .ok_or_else(|| SecretError::Undefined(name.clone()))?;
            Ok((var.clone(), v.clone()))
        })
        .collect()
}

/// One file-sized detached mount and where it goes in the container.
#[derive(Debug)]
pub struct PreparedMount {
    /// A detached bind mount of one file on the secrets tmpfs.
    pub fd: OwnedFd,
    /// Absolute path inside the container.
    pub target: String,
    pub target_c: CString,
}

/// A container's secrets tmpfs and the mounts to place.
#[derive(Debug)]
pub struct SecretMounts {
    pub mounts: Vec<PreparedMount>,
    /// Whether the kernel took `noswap` (Linux 6.4+).
    pub noswap: bool,
    tmpfs: tmpfs::Tmpfs,
    next: usize,
}

/// One file to put on the secrets tmpfs: a secret, or a rendered template that uses one.
#[derive(Clone, Copy)]
pub struct SecretFile<'a> {
    pub target: &'a str,
    pub content: &'a [u8],
    pub mode: u32,
    pub owner: Owner,
}

impl SecretMounts {
    /// A fresh, empty secrets tmpfs (detached).
    pub fn new() -> Result<SecretMounts, SecretError> {
        let (tmpfs, noswap) = tmpfs::detached_tmpfs(SECRETS_TMPFS_SIZE)
            .map_err(|(step, errno)| SecretError::Tmpfs { step, errno })?;
        Ok(SecretMounts {
            mounts: Vec::new(),
            noswap,
            tmpfs,
            next: 0,
        })
    }

    /// Writes one file onto the tmpfs (from memory, mode and owner set before any byte is
    /// written) and prepares its mount.
    pub fn add(&mut self, f: &SecretFile<'_>) -> Result<(), SecretError> {
        let name = format!("{}", self.next);
        self.next += 1;
        let werr = |errno| SecretError::Write {
            path: f.target.to_string(),
            errno,
        };
        let fd = openat(
            self.tmpfs.fd(),
            name.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(werr)?;
        fchown(
            &fd,
            Some(Uid::from_raw(f.owner.uid)),
            Some(Gid::from_raw(f.owner.gid)),
        )
        .map_err(werr)?;
        fchmod(&fd, Mode::from_bits_truncate(f.mode & 0o7777)).map_err(werr)?;
        let mut file = std::fs::File::from(fd);
        file.write_all(f.content).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOSPC) {
                SecretError::Full
            } else {
                werr(nix::errno::Errno::from_raw(
                    e.raw_os_error().unwrap_or(libc::EIO),
                ))
            }
        })?;
        let c_name = CString::new(name).expect("digits");
        let fd = self.tmpfs.clone_file(&c_name).map_err(|errno| SecretError::Tmpfs {
            step: "open_tree",
            errno,
        })?;
        let target_c = CString::new(f.target).map_err(|_| werr(nix::errno::Errno::EINVAL))?;
        self.mounts.push(PreparedMount {
            fd,
            target: f.target.to_string(),
            target_c,
        });
        Ok(())
    }

    /// A fresh secrets tmpfs holding `files`, with a mount prepared for each, in order.
    pub fn with_files<'a>(files: impl IntoIterator<Item = SecretFile<'a>>) -> Result<SecretMounts, SecretError> {
        let mut m = SecretMounts::new()?;
        for f in files {
            m.add(&f)?;
        }
        Ok(m)
    }

    /// The tmpfs itself (for inspection in tests and `exec`).
    pub fn tmpfs(&self) -> BorrowedFd<'_> {
        self.tmpfs.fd()
    }
}

/// Builds a container's secret mounts: each `secret ... at=` file (owner defaulting to the
/// container's user) plus `extra` (templated files that use secrets). `None` when there is
/// nothing to mount.
pub fn prepare_mounts(
    uses: &[SecretUse],
    values: &HashMap<String, SecretValue>,
    user: Owner,
    extra: &[SecretFile<'_>],
) -> Result<Option<SecretMounts>, SecretError> {
    let files: Vec<_> = uses
        .iter()
        .filter_map(|u| match &u.target {
            SecretTarget::File { path, mode, owner } => {
                Some((u, path, *mode, owner.unwrap_or(user)))
            }
            SecretTarget::Env(_) => None,
        })
        .collect();
    if files.is_empty() && extra.is_empty() {
        return Ok(None);
    }
    let mut all = Vec::with_capacity(files.len() + extra.len());
    for (u, path, mode, owner) in files {
        let v = values
            .get(&u.name)
            .ok_or_else(|| SecretError::Undefined(u.name.clone()))?;
        all.push(SecretFile {
            target: path,
            content: v.expose(),
            mode,
            owner,
        });
    }
    all.extend(extra.iter().copied());
    SecretMounts::with_files(all).map(Some)
}

/// Moves a prepared mount onto its target (an `O_PATH` descriptor from
/// `rootfs::open_or_create`). Async-signal-safe.
pub fn attach(mount: BorrowedFd<'_>, target: BorrowedFd<'_>) -> Result<(), nix::errno::Errno> {
    tmpfs::move_mount_onto(mount, target)
}

#[cfg(test)]
mod tests;
