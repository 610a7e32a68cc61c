//! Small files under the state root, written so a crash never leaves half of one: a temporary
//! file (never through a symlink), fsync, then rename over the old one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{de::DeserializeOwned, Serialize};

/// Replaces `path` with `bytes`, atomically, mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent folder"))?;
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)?;
    let written = f.write_all(bytes).and_then(|_| f.sync_all());
    if let Err(e) = written.and_then(|_| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Reads a file under the state root, refusing a symlink in its place. `Ok(None)` if absent.
pub fn read_nofollow(path: &Path) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut f = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(Some(buf))
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match read_nofollow(path)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{} is damaged: {e}", path.display()))),
    }
}

/// An exclusive, non-blocking flock on `path` (created 0600), held while the value lives.
pub struct Lock {
    _held: nix::fcntl::Flock<File>,
}

impl Lock {
    /// `Ok(None)` when another process holds it.
    pub fn try_exclusive(path: &Path) -> io::Result<Option<Lock>> {
        Lock::take(path, nix::fcntl::FlockArg::LockExclusiveNonblock)
    }

    /// Waits for the lock as long as its holder keeps it: only for a file whose holder is known
    /// to let go at once (one that is handing it over).
    pub fn exclusive(path: &Path) -> io::Result<Lock> {
        Lock::take(path, nix::fcntl::FlockArg::LockExclusive)?.ok_or_else(|| io::Error::from(io::ErrorKind::WouldBlock))
    }

    fn take(path: &Path, how: nix::fcntl::FlockArg) -> io::Result<Option<Lock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        match nix::fcntl::Flock::lock(file, how) {
            Ok(held) => Ok(Some(Lock { _held: held })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(e.into()),
        }
    }

    /// Whether some process holds the lock on `path` (probed with a shared lock, never
    /// creating the file); `false` when there is no file.
    pub fn is_held(path: &Path) -> io::Result<bool> {
        let file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock) {
            Ok(_) => Ok(false),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(true),
            Err((_, e)) => Err(e.into()),
        }
    }

    /// Waits up to `patience` for the lock; then `Err` with what its holder wrote into it
    /// ([`Lock::note`]), so the caller can name who holds it.
    pub fn exclusive_within(path: &Path, patience: std::time::Duration) -> io::Result<Result<Lock, String>> {
        let deadline = std::time::Instant::now() + patience;
        loop {
            if let Some(l) = Lock::try_exclusive(path)? {
                return Ok(Ok(l));
            }
            if std::time::Instant::now() >= deadline {
                return Ok(Err(fs::read_to_string(path).unwrap_or_default().trim().to_string()));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The locked file, to write into (a record kept in the lock itself).
    pub fn file(&self) -> &File {
        &self._held
    }

    /// Says who holds the lock, for those who wait for it.
    pub fn note(&self, text: &str) -> io::Result<()> {
        use std::io::{Seek, Write};
        let mut f: &File = &self._held;
        f.set_len(0)?;
        f.seek(io::SeekFrom::Start(0))?;
        f.write_all(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_and_never_follow_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record.json");
        write_json(&path, &serde_json::json!({"a": 1})).unwrap();
        write_json(&path, &serde_json::json!({"a": 2})).unwrap();
        let v: serde_json::Value = read_json(&path).unwrap().unwrap();
        assert_eq!(v["a"], 2);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "a temporary file was left behind");

        let outside = dir.path().join("outside");
        fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join("link.json")).unwrap();
        assert!(read_nofollow(&dir.path().join("link.json")).is_err());
        assert_eq!(read_json::<serde_json::Value>(&dir.path().join("absent.json")).unwrap(), None);
    }

    #[test]
    fn a_lock_is_held_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = Lock::try_exclusive(&path).unwrap().expect("free at first");
        assert!(Lock::try_exclusive(&path).unwrap().is_none(), "a second holder got the lock");
        drop(held);
        assert!(Lock::try_exclusive(&path).unwrap().is_some());
    }
}
