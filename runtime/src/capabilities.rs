//! A container's capability sets, computed once in the parent as plain bitmasks.
//!
//! The spawner's child applies them without allocating: bounding drops first (every bit not in
//! `bounding`, via `PR_CAPBSET_DROP`), then `capset(2)` with `effective`, `permitted` and
//! `inheritable` (after `setuid`, which needs `PR_SET_KEEPCAPS` to keep the permitted set),
//! then each `ambient` bit with `PR_CAP_AMBIENT_RAISE`. Bit `n` is capability number `n`
//! (`CAP_CHOWN` = 0); the two 32-bit halves of `capset`'s data are `mask as u32` and
//! `(mask >> 32) as u32`.
//!
//! [`drop_bounding`] and [`set_process_caps`] do exactly that, without allocating.
//!
//! Policy, as Docker: the default set below, `cap-add`/`cap-drop` (with `ALL`) adjust it;
//! bounding = permitted = effective; inheritable and ambient empty. A non-root user starts
//! with nothing effective (the kernel clears a non-root process's permitted set at `execve`
//! unless the capability is ambient): only capabilities the app file asks for by name with
//! `cap-add` are given to it, through inheritable + ambient, so `user "1000"` with
//! `cap-add "NET_BIND_SERVICE"` can bind port 80.

use std::fmt;
use std::str::FromStr;

use caps::Capability;

/// Docker's default capabilities.
pub const DEFAULT_CAPS: [Capability; 11] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_KILL,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETGID,
    Capability::CAP_SETPCAP,
    Capability::CAP_SETUID,
    Capability::CAP_SYS_CHROOT,
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    #[error("`{0}` is not a Linux capability (write e.g. NET_ADMIN or CAP_NET_ADMIN, or ALL)")]
    Unknown(String),
    #[error(
        "capability {0} cannot be given here: tfctl itself does not hold it (the host, or the \
         container tfctl runs in, keeps it out of its bounding set); remove it from cap-add"
    )]
    Unavailable(String),
}

/// A set of capabilities as a bitmask: bit `n` is capability number `n`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CapSet(pub u64);

impl CapSet {
    pub const EMPTY: CapSet = CapSet(0);

    pub fn from_caps(caps: impl IntoIterator<Item = Capability>) -> CapSet {
        CapSet(caps.into_iter().fold(0, |m, c| m | c.bitmask()))
    }

    pub fn default_set() -> CapSet {
        CapSet::from_caps(DEFAULT_CAPS)
    }

    /// Every capability this kernel knows (what `ALL` means).
    pub fn all_supported() -> CapSet {
        CapSet::from_caps(caps::runtime::thread_all_supported())
    }

    /// What tfctl can give a container: the capabilities in its own bounding set (a host, or
    /// a container tfctl runs in, may keep some out, as CAP_SYS_RESOURCE here and there).
    /// `ALL` means these, as Docker's does on such a host; unreadable, the kernel's whole set.
    pub fn grantable() -> CapSet {
        let own = caps::read(None, caps::CapSet::Bounding).map(CapSet::from_caps).unwrap_or(CapSet::all_supported());
        CapSet(CapSet::all_supported().0 & own.0)
    }

    pub fn contains(self, index: u8) -> bool {
        index < 64 && self.0 & (1 << index) != 0
    }

    pub fn caps(self) -> impl Iterator<Item = Capability> {
        caps::all()
            .into_iter()
            .filter(move |c| self.contains(c.index()))
    }

    /// Canonical names, sorted by capability number.
    pub fn names(self) -> Vec<String> {
        let mut caps: Vec<Capability> = self.caps().collect();
        caps.sort_by_key(|c| c.index());
        caps.iter().map(|c| c.to_string()).collect()
    }
}

impl fmt::Display for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The five capability sets a container's process starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessCaps {
    pub bounding: CapSet,
    pub permitted: CapSet,
    pub effective: CapSet,
    pub inheritable: CapSet,
    pub ambient: CapSet,
}

impl From<ProcessCaps> for crate::spawn::plan::CapSets {
    fn from(c: ProcessCaps) -> Self {
        crate::spawn::plan::CapSets {
            bounding: c.bounding.0,
            permitted: c.permitted.0,
            effective: c.effective.0,
            inheritable: c.inheritable.0,
            ambient: c.ambient.0,
        }
    }
}

/// Highest capability number the running kernel knows (`/proc/sys/kernel/cap_last_cap`), read
/// in the parent; the child drops bounding bits up to it.
pub fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Child side, step 1 (before changing user, while CAP_SETPCAP is held): drops every bounding
/// capability not in `caps.bounding`, numbers `0..=last_cap`. Async-signal-safe.
pub fn drop_bounding(caps: &ProcessCaps, last_cap: u8) -> Result<(), nix::errno::Errno> {
    for cap in 0..=last_cap {
        if !caps.bounding.contains(cap) {
            crate::sys::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0).map_err(nix::errno::Errno::from_raw)?;
        }
    }
    Ok(())
}

/// Child side, step 2 (after `setuid`, done with `PR_SET_KEEPCAPS` so the permitted set
/// survives): sets effective, permitted and inheritable with `capset(2)`, then raises the
/// ambient set. Async-signal-safe.
pub fn set_process_caps(caps: &ProcessCaps) -> Result<(), nix::errno::Errno> {
    let half = |s: CapSet, hi: bool| if hi { (s.0 >> 32) as u32 } else { s.0 as u32 };
    let words = [false, true].map(|hi| [half(caps.effective, hi), half(caps.permitted, hi), half(caps.inheritable, hi)]);
    crate::sys::capset(words).map_err(nix::errno::Errno::from_raw)?;
    for cap in 0..64u8 {
        if caps.ambient.contains(cap) {
            crate::sys::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong, libc::c_ulong::from(cap), 0, 0)
                .map_err(nix::errno::Errno::from_raw)?;
        }
    }
    Ok(())
}

/// One capability by name: `NET_ADMIN`, `CAP_NET_ADMIN`, any case.
pub fn parse_cap(name: &str) -> Result<Capability, CapError> {
    Capability::from_str(&caps::to_canonical(name.trim()))
        .map_err(|_| CapError::Unknown(name.to_string()))
}

/// A capability's number, by name.
pub fn cap_index(name: &str) -> Result<u8, CapError> {
    parse_cap(name).map(|c| c.index())
}

fn is_all(name: &str) -> bool {
    matches!(name.trim().to_ascii_uppercase().as_str(), "ALL" | "CAP_ALL")
}

/// Parses a `cap-add`/`cap-drop` list into a set; `ALL` is every capability the kernel knows.
fn parse_list(names: &[String]) -> Result<(CapSet, bool), CapError> {
    let mut set = CapSet::EMPTY;
    let mut all = false;
    for name in names {
        if is_all(name) {
            all = true;
        } else {
            set.0 |= parse_cap(name)?.bitmask();
        }
    }
    Ok((set, all))
}

/// Computes a container's capability sets from its `cap-add`/`cap-drop` and whether it runs as
/// root (uid 0). Docker's order: drop `ALL` empties the default set, then adds apply, then named
/// drops; add `ALL` gives everything but what is dropped by name.
pub fn resolve(
    cap_add: &[String],
    cap_drop: &[String],
    root_user: bool,
) -> Result<ProcessCaps, CapError> {
    let (added, add_all) = parse_list(cap_add)?;
    let (dropped, drop_all) = parse_list(cap_drop)?;
    let supported = CapSet::grantable();
    // One asked for by name that tfctl cannot give would fail the start (capset, EPERM)
    // with no word of which: name it now.
    if let Some(missing) = CapSet(added.0 & !supported.0 & !dropped.0).names().into_iter().next() {
        return Err(CapError::Unavailable(missing));
    }
    let mut set = if drop_all {
        CapSet::EMPTY
    } else {
        CapSet::default_set()
    };
    if add_all {
        set.0 |= supported.0;
    }
    set.0 |= added.0;
    set.0 &= !dropped.0;
    set.0 &= supported.0;
    if root_user {
        return Ok(ProcessCaps {
            bounding: set,
            permitted: set,
            effective: set,
            inheritable: CapSet::EMPTY,
            ambient: CapSet::EMPTY,
        });
    }
    // Only what was asked for by name survives execve for a non-root user.
    let asked = CapSet(if add_all { set.0 } else { added.0 & set.0 });
    Ok(ProcessCaps {
        bounding: set,
        permitted: asked,
        effective: asked,
        inheritable: asked,
        ambient: asked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_set_is_dockers_and_root_gets_it_effective() {
        let c = resolve(&[], &[], true).unwrap();
        // Docker's a80425fb without NET_RAW, MKNOD and AUDIT_WRITE.
        assert_eq!(c.bounding.0, 0x0000_0000_8004_05fb);
        assert_eq!(c.permitted, c.bounding);
        assert_eq!(c.effective, c.bounding);
        assert_eq!(c.inheritable, CapSet::EMPTY);
        assert_eq!(c.ambient, CapSet::EMPTY);
    }

    #[test]
    fn add_and_drop_adjust_the_set() {
        let c = resolve(
            &names(&["SYS_PTRACE", "cap_net_admin"]),
            &names(&["CAP_CHOWN"]),
            true,
        )
        .unwrap();
        assert!(c.bounding.contains(Capability::CAP_SYS_PTRACE.index()));
        assert!(c.bounding.contains(Capability::CAP_NET_ADMIN.index()));
        assert!(!c.bounding.contains(Capability::CAP_CHOWN.index()));
        assert!(c.bounding.contains(Capability::CAP_KILL.index()));
    }

    #[test]
    fn all_works_as_in_docker() {
        let c = resolve(&[], &names(&["ALL"]), true).unwrap();
        assert_eq!(c.bounding, CapSet::EMPTY);
        let c = resolve(&names(&["NET_RAW"]), &names(&["ALL"]), true).unwrap();
        assert_eq!(c.bounding.names(), vec!["CAP_NET_RAW".to_string()]);
        let c = resolve(&names(&["ALL"]), &names(&["SYS_ADMIN"]), true).unwrap();
        assert!(c.bounding.contains(Capability::CAP_SYS_MODULE.index()));
        assert!(!c.bounding.contains(Capability::CAP_SYS_ADMIN.index()));
        assert_eq!(
            c.bounding.0 | Capability::CAP_SYS_ADMIN.bitmask(),
            CapSet::grantable().0
        );
    }

    #[test]
    fn non_root_gets_only_what_it_asks_for() {
        let c = resolve(&[], &[], false).unwrap();
        assert_eq!(c.bounding, CapSet::default_set());
        assert_eq!(c.effective, CapSet::EMPTY);
        assert_eq!(c.ambient, CapSet::EMPTY);
        let c = resolve(&names(&["NET_BIND_SERVICE"]), &[], false).unwrap();
        let nbs = CapSet::from_caps([Capability::CAP_NET_BIND_SERVICE]);
        assert_eq!(
            (c.effective, c.permitted, c.inheritable, c.ambient),
            (nbs, nbs, nbs, nbs)
        );
        // Asked for, then dropped: not given.
        let c = resolve(&names(&["NET_RAW"]), &names(&["NET_RAW"]), false).unwrap();
        assert_eq!(c.ambient, CapSet::EMPTY);
    }

    #[test]
    fn the_spawners_default_agrees() {
        let c: crate::spawn::plan::CapSets = resolve(&[], &[], true).unwrap().into();
        assert_eq!(c, crate::spawn::plan::CapSets::docker_default());
    }

    #[test]
    fn unknown_names_are_refused() {
        assert_eq!(
            resolve(&names(&["FLY"]), &[], true),
            Err(CapError::Unknown("FLY".into()))
        );
    }
}
