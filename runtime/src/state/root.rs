//! The state root (`--root`, default /var/lib/tfctl): every image, container, volume and record
//! tfctl keeps lives below it.
//!
//! Whoever can write the state root can make tfctl mount, run and firewall what they like, so
//! tfctl creates it 0700 root:root and refuses one owned by someone else or writable by group or
//! others; one that others may read or enter (an admin's `mkdir`, mode 0755) is narrowed to 0700,
//! since images, logs and records below it are private. Folders below it are opened with `O_NOFOLLOW`, so a symlink planted in place of one
//! cannot send tfctl's writes elsewhere.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RootError {
    #[error("the state root {path} is owned by uid {uid}, not root: tfctl refuses it, since whoever can write it controls what tfctl runs; use a root-owned folder (--root or TFCTL_ROOT)")]
    NotRootOwned { path: PathBuf, uid: u32 },
    #[error("the state root {path} is writable by group or others (mode {mode:o}): run `chmod 700 {path}` or choose another --root")]
    Writable { path: PathBuf, mode: u32 },
    #[error("the state root {path} is not a directory (or is a symlink): choose another --root")]
    NotADirectory { path: PathBuf },
    #[error("the state root {path} is not absolute: give --root as an absolute path")]
    Relative { path: PathBuf },
    #[error("cannot create the state root {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot read the state root {path}: {source}")]
    Inspect { path: PathBuf, source: io::Error },
}

/// An opened, checked state root.
#[derive(Debug, Clone)]
pub struct StateRoot {
    path: PathBuf,
}

impl StateRoot {
    /// Opens the state root at `path`, creating it (and missing parents) 0700 if absent, and
    /// checks that it is a real directory owned by root that no one else can write.
    pub fn open(path: &Path) -> Result<StateRoot, RootError> {
        if !path.is_absolute() {
            return Err(RootError::Relative { path: path.to_path_buf() });
        }
        match fs::symlink_metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(path)
                    .map_err(|source| RootError::Create { path: path.to_path_buf(), source })?;
                // The umask may have narrowed the mode; it can never have widened it, but say
                // exactly what we mean.
                fs::set_permissions(path, fs::Permissions::from_mode(0o700))
                    .map_err(|source| RootError::Create { path: path.to_path_buf(), source })?;
            }
            Err(source) => return Err(RootError::Inspect { path: path.to_path_buf(), source }),
        }
        let root = StateRoot { path: path.to_path_buf() };
        root.check()?;
        Ok(root)
    }

    /// Opens the state root only if it exists: commands that merely read (`ps`, `images`)
    /// must not create it. `Ok(None)` when it does not exist.
    pub fn open_existing(path: &Path) -> Result<Option<StateRoot>, RootError> {
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(RootError::Inspect { path: path.to_path_buf(), source }),
            Ok(_) => {
                let root = StateRoot { path: path.to_path_buf() };
                root.check()?;
                Ok(Some(root))
            }
        }
    }

    fn check(&self) -> Result<(), RootError> {
        let path = &self.path;
        let meta = fs::symlink_metadata(path)
            .map_err(|source| RootError::Inspect { path: path.clone(), source })?;
        if !meta.file_type().is_dir() {
            return Err(RootError::NotADirectory { path: path.clone() });
        }
        if meta.uid() != 0 {
            return Err(RootError::NotRootOwned { path: path.clone(), uid: meta.uid() });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(RootError::Writable { path: path.clone(), mode });
        }
        // Checked before it is set: a chmod writes the inode, and every command opens the root.
        if mode & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7700))
                .map_err(|source| RootError::Create { path: path.clone(), source })?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A folder below the root (created 0700 if absent, never through a symlink).
    pub fn dir(&self, rel: &str) -> io::Result<PathBuf> {
        let mut at = self.path.clone();
        for part in Path::new(rel).components() {
            at.push(part);
            match fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_dir() => {}
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} is not a directory (a symlink or file stands in its place)", at.display()),
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::DirBuilder::new().mode(0o700).create(&at) {
                    Ok(()) => {}
                    // Containers start in parallel and ask for the same folders: another thread
                    // may create it between the look and the create. Fine if it is a directory.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists && fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_dir()) => {}
                    Err(e) => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
        Ok(at)
    }

    /// A short identifier derived from the state root, so host-wide objects (links, nftables
    /// tables, cgroups) of two state roots never collide.
    pub fn short_id(&self, extra: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.path.as_os_str().as_encoded_bytes());
        h.update([0]);
        h.update(extra.as_bytes());
        hex::encode(&h.finalize()[..4])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn creates_a_private_root_and_refuses_unsafe_ones() {
        assert!(is_root(), "this test changes owners: run it as root");
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a/b/root");
        let root = StateRoot::open(&path).unwrap();
        let mode = fs::metadata(root.path()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(StateRoot::open(&path), Err(RootError::Writable { .. })));
        // Readable by all (an admin's mkdir): narrowed, so blobs and records stay private.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        StateRoot::open(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o700);

        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let err = StateRoot::open(&path).unwrap_err();
        assert!(matches!(err, RootError::NotRootOwned { uid: 65534, .. }), "{err}");
        std::os::unix::fs::chown(&path, Some(0), None).unwrap();

        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(StateRoot::open(&link), Err(RootError::NotADirectory { .. })));
        assert!(matches!(StateRoot::open(Path::new("rel")), Err(RootError::Relative { .. })));
    }

    #[test]
    fn subfolders_are_never_followed_through_symlinks() {
        assert!(is_root(), "this test changes owners: run it as root");
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::open(&tmp.path().join("root")).unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.path().join("apps")).unwrap();
        assert!(root.dir("apps/web").is_err());
        assert!(!outside.join("web").exists());
        let ok = root.dir("images/x").unwrap();
        assert!(ok.is_dir());
        assert_eq!(fs::metadata(&ok).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn many_threads_can_ask_for_the_same_new_folder_at_once() {
        assert!(is_root(), "this test changes owners: run it as root");
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::open(&tmp.path().join("root")).unwrap();
        for round in 0..20 {
            let rel = format!("apps/a{round}/logs");
            let barrier = std::sync::Barrier::new(8);
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            root.dir(&rel)
                        })
                    })
                    .collect();
                for h in handles {
                    let dir = h.join().unwrap().expect("dir() of a folder another thread is creating");
                    assert!(dir.is_dir());
                }
            });
        }
    }

    #[test]
    fn short_ids_differ_per_root_and_app() {
        let a = StateRoot { path: PathBuf::from("/var/lib/tfctl") };
        let b = StateRoot { path: PathBuf::from("/tmp/other") };
        assert_ne!(a.short_id("web"), b.short_id("web"));
        assert_ne!(a.short_id("web"), a.short_id("db"));
        assert_eq!(a.short_id("web").len(), 8);
    }
}
