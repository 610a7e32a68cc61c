//! `userns "auto"`: each such container gets a range of 65536 host ids that no one else uses, and
//! a user namespace mapping its ids 0..65536 onto them. Root in the container is then an
//! unprivileged id on the host: a host user whose uid equals a container's can no longer read
//! its /proc/PID/environ or its secrets, nor ptrace it.
//!
//! Ranges come from [`POOL_START`]..[`POOL_END`], skip every range /etc/subuid, /etc/subgid,
//! /etc/passwd or /etc/group already gives out, and are recorded host-wide (every state root
//! shares the host's ids) in [`REGISTRY`], one file per range created with O_EXCL, naming its
//! owner. A container gets back the range it had (restarts, a crashed supervisor); `down` gives
//! an app's ranges back. Nothing on disk carries these ids: image layers, volumes and the
//! container's upper layer are mounted idmapped, so files keep the container's own ids, and the
//! registry lives on /run, forgotten at reboot with the processes that used it.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Ids per container: a whole 16-bit range, as Podman's `auto` gives by default.
pub const RANGE: u32 = 65536;
/// Where tfctl's ranges start: above any id a distribution gives users or services.
pub const POOL_START: u32 = 1 << 30;
pub const POOL_END: u32 = 1 << 31;
/// The host-wide record of ranges in use.
pub const REGISTRY: &str = "/run/tfctl/userns";

#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("no free range of {RANGE} host ids is left for user namespaces (all of {POOL_START}..{POOL_END} are in use): stop containers with `userns \"auto\"`, or remove stale entries under {REGISTRY}")]
    Exhausted,
    #[error("cannot record a user namespace range under {path}: {source}")]
    Registry {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Container ids 0..size are host ids base..base+size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMap {
    pub base: u32,
    pub size: u32,
}

impl IdMap {
    /// A container id as the host sees it.
    pub fn host(&self, id: u32) -> u32 {
        if id < self.size {
            self.base + id
        } else {
            // Unmapped: the kernel's overflow id, which owns nothing.
            65534
        }
    }
}

/// Ranges of host ids already given out by the host's own files: `name:start:count` lines of
/// subuid/subgid, and every uid and gid of passwd/group (as a range of one).
fn taken_by_host(etc: &Path) -> Vec<(u64, u64)> {
    let mut taken = Vec::new();
    for f in ["subuid", "subgid"] {
        for line in fs::read_to_string(etc.join(f)).unwrap_or_default().lines() {
            let parts: Vec<&str> = line.split(':').collect();
            if let (Some(Ok(start)), Some(Ok(count))) = (parts.get(1).map(|s| s.parse::<u64>()), parts.get(2).map(|s| s.parse::<u64>())) {
                taken.push((start, start + count));
            }
        }
    }
    for (f, field) in [("passwd", 2), ("group", 2)] {
        for line in fs::read_to_string(etc.join(f)).unwrap_or_default().lines() {
            if let Some(Ok(id)) = line.split(':').nth(field).map(|s| s.parse::<u64>()) {
                taken.push((id, id + 1));
            }
        }
    }
    taken
}

fn overlaps(base: u32, taken: &[(u64, u64)]) -> bool {
    let (start, end) = (u64::from(base), u64::from(base) + u64::from(RANGE));
    taken.iter().any(|&(s, e)| s < end && start < e)
}

/// The registry entry's content: who holds the range.
fn owner_line(owner: &str) -> String {
    format!("{owner}\n")
}

/// A range for `owner` (state root, app and container, as `down` will name it): the one it
/// holds already, else the first free one.
pub fn allocate(owner: &str) -> Result<IdMap, UsernsError> {
    allocate_in(Path::new(REGISTRY), Path::new("/etc"), owner)
}

fn allocate_in(registry: &Path, etc: &Path, owner: &str) -> Result<IdMap, UsernsError> {
    let reg_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| UsernsError::Registry { path, source }
    };
    fs::DirBuilder::new().recursive(true).mode(0o700).create(registry).map_err(reg_err(registry))?;
    let line = owner_line(owner);
    if let Some(base) = held(registry, &line) {
        return Ok(IdMap { base, size: RANGE });
    }
    let taken = taken_by_host(etc);
    let mut base = POOL_START;
    while base < POOL_END {
        if !overlaps(base, &taken) {
            let path = registry.join(base.to_string());
            match fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
                Ok(mut f) => {
                    f.write_all(line.as_bytes()).map_err(reg_err(&path))?;
                    return Ok(IdMap { base, size: RANGE });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(reg_err(&path)(e)),
            }
        }
        base += RANGE;
    }
    Err(UsernsError::Exhausted)
}

/// The base of the range `line`'s owner holds.
fn held(registry: &Path, line: &str) -> Option<u32> {
    fs::read_dir(registry).ok()?.flatten().find_map(|e| {
        let base = e.file_name().to_str()?.parse::<u32>().ok()?;
        (fs::read_to_string(e.path()).ok()? == line).then_some(base)
    })
}

/// Gives back every range whose owner starts with `prefix` (an app's: `ROOT\0APP\0`).
pub fn release(prefix: &str) {
    release_in(Path::new(REGISTRY), prefix)
}

fn release_in(registry: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(registry) else { return };
    for e in entries.flatten() {
        if fs::read_to_string(e.path()).is_ok_and(|owner| owner.starts_with(prefix)) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The owner name of a container's range, and the prefix that names all of an app's.
pub fn owner(root: &Path, app: &str, container: &str) -> String {
    format!("{}{container}", app_prefix(root, app))
}

pub fn app_prefix(root: &Path, app: &str) -> String {
    format!("{}\u{1f}{app}\u{1f}", root.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_unique_kept_by_their_owner_and_avoid_the_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let (reg, etc) = (dir.path().join("reg"), dir.path().join("etc"));
        fs::create_dir(&etc).unwrap();
        // The first pool range is a subuid range already; an id in the second is a user's.
        fs::write(etc.join("subuid"), format!("podman:{}:65536\n", POOL_START)).unwrap();
        fs::write(etc.join("passwd"), format!("odd:x:{}:0::/:/bin/sh\n", POOL_START + RANGE + 5)).unwrap();
        let a = allocate_in(&reg, &etc, &owner(Path::new("/r"), "app", "a")).unwrap();
        assert_eq!(a, IdMap { base: POOL_START + 2 * RANGE, size: RANGE });
        let b = allocate_in(&reg, &etc, &owner(Path::new("/r"), "app", "b")).unwrap();
        assert_eq!(b.base, POOL_START + 3 * RANGE);
        // The same owner gets its own range back.
        assert_eq!(allocate_in(&reg, &etc, &owner(Path::new("/r"), "app", "a")).unwrap(), a);
        // Another state root's container of the same name is another owner.
        let c = allocate_in(&reg, &etc, &owner(Path::new("/other"), "app", "a")).unwrap();
        assert_eq!(c.base, POOL_START + 4 * RANGE);
        release_in(&reg, &app_prefix(Path::new("/r"), "app"));
        assert_eq!(fs::read_dir(&reg).unwrap().count(), 1, "only the other root's range is left");
        assert_eq!(allocate_in(&reg, &etc, &owner(Path::new("/r"), "app", "z")).unwrap().base, POOL_START + 2 * RANGE);
        assert_eq!(a.host(0), a.base);
        assert_eq!(a.host(RANGE), 65534);
    }
}
