//! Short ids and the names of host objects.
//!
//! Host objects are named from an 8-hex-digit id that hashes the state root and the app name, so
//! two state roots (or two apps) never share an object and every name fits IFNAMSIZ (15 bytes):
//! bridge `tfb<id>` (11), veth `tfv<id><n>` with `n` the container's host number in hex
//! (at most 4 digits, so subnets are /16 or smaller: 15), table `tfctl_<id>`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;

/// The short id of one app under one state root.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppId(String);

impl AppId {
    /// Derives the id from the state root (as given, made absolute by the caller) and the app name.
    pub fn derive(state_root: &Path, app: &str) -> AppId {
        AppId(short_hash(&[
            state_root.as_os_str().as_encoded_bytes(),
            app.as_bytes(),
        ]))
    }

    /// The id as text (8 lowercase hex digits).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The app's bridge.
    pub fn bridge(&self) -> String {
        format!("tfb{}", self.0)
    }

    /// The prefix shared by all of this app's host-side veths (used in rules so that a veth is
    /// covered by the app's drops from the moment it exists: fail closed).
    pub fn veth_prefix(&self) -> String {
        format!("tfv{}", self.0)
    }

    /// The host-side veth of the container whose address has host number `n` in the subnet.
    pub fn veth(&self, n: u32) -> String {
        format!("tfv{}{:x}", self.0, n)
    }

    /// The app's nftables table.
    pub fn table(&self) -> String {
        format!("tfctl_{}", self.0)
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The first 8 hex digits of SHA-256 over the parts, each length-prefixed so that
/// ("ab", "c") and ("a", "bc") differ.
pub(crate) fn short_hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(&h.finalize()[..4])
}

/// The name of the host-wide guard table of a state root (see `host`).
pub(crate) fn host_table(state_root: &Path) -> String {
    format!(
        "tfctl_host_{}",
        short_hash(&[state_root.as_os_str().as_encoded_bytes()])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_ifnamsiz_and_differ_per_root() {
        let a = AppId::derive(Path::new("/var/lib/tfctl"), "web");
        let b = AppId::derive(Path::new("/tmp/other-root"), "web");
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 8);
        assert!(a.bridge().len() <= 15);
        assert!(a.veth(0xfffe).len() <= 15, "{}", a.veth(0xfffe));
        assert!(a.veth(2).starts_with(&a.veth_prefix()));
        assert_eq!(a, AppId::derive(Path::new("/var/lib/tfctl"), "web"));
    }
}
