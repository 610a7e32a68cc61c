//! The host key, `<root>/keys/secret.key`: 32 random bytes, 0600 in a 0700 folder, from which
//! generated secrets are derived (never stored) and under which secret contents are
//! fingerprinted.

use std::fs::{DirBuilder, File};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use nix::fcntl::{openat, renameat2, OFlag, RenameFlags};
use nix::sys::stat::Mode;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{SecretError, SecretValue};

pub const KEY_LEN: usize = 32;
const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The host key, in memory only as long as needed; never printed.
pub struct HostKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostKey(..)")
    }
}

impl HostKey {
    /// Reads `<root>/keys/secret.key`, creating it (and the folder) on first use. Creation is
    /// atomic: the key is written to a private temporary file and renamed into place without
    /// replacing, so concurrent first runs agree on one key. Nothing is followed through a
    /// symlink.
    pub fn load_or_create(root: &Path) -> Result<HostKey, SecretError> {
        let dir = root.join("keys");
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source: std::io::Error| SecretError::HostKey { path, source }
        };
        match DirBuilder::new().mode(0o700).recursive(false).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                std::fs::create_dir_all(root).map_err(io(root))?;
                DirBuilder::new()
                    .mode(0o700)
                    .create(&dir)
                    .or_else(|e| {
                        if e.kind() == ErrorKind::AlreadyExists {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(io(&dir))?;
            }
            Err(e) => return Err(io(&dir)(e)),
        }
        let dirfd = nix::fcntl::open(
            &dir,
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
            Mode::empty(),
        )
        .map_err(|e| io(&dir)(e.into()))?;
        let meta = File::from(dirfd.try_clone().map_err(io(&dir))?)
            .metadata()
            .map_err(io(&dir))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(SecretError::KeyPermissions {
                path: dir,
                mode: meta.permissions().mode() & 0o7777,
            });
        }
        let key_path = dir.join("secret.key");
        loop {
            match openat(
                &dirfd,
                "secret.key",
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => return read_key(File::from(fd), &key_path),
                Err(nix::errno::Errno::ENOENT) => {}
                Err(e) => return Err(io(&key_path)(e.into())),
            }
            let mut key = Zeroizing::new([0u8; KEY_LEN]);
            getrandom::getrandom(key.as_mut())
                .map_err(|e| io(&key_path)(std::io::Error::other(e.to_string())))?;
            let tmp = format!(
                "secret.key.tmp-{}-{}",
                std::process::id(),
                hex::encode(&key[..4])
            );
            let fd = openat(
                &dirfd,
                tmp.as_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(|e| io(&key_path)(e.into()))?;
            let mut f = File::from(fd);
            let written = f.write_all(key.as_ref()).and_then(|_| f.sync_all());
            let renamed = written.map_err(io(&key_path)).and_then(|_| {
                renameat2(
                    &dirfd,
                    tmp.as_str(),
                    &dirfd,
                    "secret.key",
                    RenameFlags::RENAME_NOREPLACE,
                )
                .map_err(|e| io(&key_path)(e.into()))
            });
            match renamed {
                Ok(()) => {
                    let _ = nix::unistd::fsync(dirfd.as_fd());
                    return Ok(HostKey(key));
                }
                Err(e) => {
                    let _ = nix::unistd::unlinkat(
                        &dirfd,
                        tmp.as_str(),
                        nix::unistd::UnlinkatFlags::NoRemoveDir,
                    );
                    // Someone else created it first: read theirs.
                    if !matches!(&e, SecretError::HostKey { source, .. } if source.raw_os_error() == Some(libc::EEXIST))
                    {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// A key from raw bytes (tests, or a key kept elsewhere).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> HostKey {
        HostKey(Zeroizing::new(bytes))
    }

    /// A generated secret: HKDF-SHA256 of the host key with the app name, the secret name and
    /// the generation number as context, rendered as `length` alphanumeric characters
    /// (rejection sampling: no character is likelier than another).
    pub fn derive(&self, app: &str, secret: &str, generation: u64, length: usize) -> SecretValue {
        let hk = Hkdf::<Sha256>::new(Some(b"tfctl generated secret v1"), self.0.as_ref());
        let mut out = Zeroizing::new(Vec::with_capacity(length));
        let mut block = Zeroizing::new([0u8; 255]);
        let mut counter = 0u32;
        while out.len() < length {
            let mut info = Vec::new();
            for part in [app.as_bytes(), secret.as_bytes()] {
                info.extend_from_slice(&(part.len() as u32).to_be_bytes());
                info.extend_from_slice(part);
            }
            info.extend_from_slice(&generation.to_be_bytes());
            // The length too, so a shorter secret is not a prefix of a longer one.
            info.extend_from_slice(&(length as u64).to_be_bytes());
            info.extend_from_slice(&counter.to_be_bytes());
            hk.expand(&info, block.as_mut())
                .expect("255 bytes is within HKDF's limit");
            // 248 = 4 * 62: bytes above it would favour the first characters.
            for &b in block.iter().filter(|b| **b < 248) {
                if out.len() == length {
                    break;
                }
                out.push(ALPHABET[usize::from(b % 62)]);
            }
            counter += 1;
        }
        SecretValue(out)
    }

    /// HMAC-SHA256 under the host key of `fields`, each length-prefixed, after `label`: compares
    /// contents (did a pre-boot file or a secret change?) without keeping them, and without a
    /// plain hash anyone could test guesses against.
    pub fn mac(&self, label: &str, fields: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref())
            .expect("HMAC takes any key length");
        mac.update(label.as_bytes());
        for f in fields {
            mac.update(&(f.len() as u64).to_le_bytes());
            mac.update(f);
        }
        mac.finalize().into_bytes().into()
    }

    /// HMAC-SHA256 of a secret's content under the host key: compare contents later (did the
    /// file or variable change?) without keeping them.
    pub fn fingerprint(&self, value: &SecretValue) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref())
            .expect("HMAC takes any key length");
        mac.update(value.expose());
        mac.finalize().into_bytes().into()
    }
}

fn read_key(mut f: File, path: &Path) -> Result<HostKey, SecretError> {
    let err = |source| SecretError::HostKey {
        path: path.to_owned(),
        source,
    };
    let meta = f.metadata().map_err(err)?;
    if !meta.is_file() || meta.mode() & 0o077 != 0 {
        return Err(SecretError::KeyPermissions {
            path: path.to_owned(),
            mode: meta.mode() & 0o7777,
        });
    }
    if meta.len() != KEY_LEN as u64 {
        return Err(SecretError::KeyInvalid {
            path: path.to_owned(),
            len: meta.len(),
        });
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    f.read_exact(key.as_mut()).map_err(err)?;
    Ok(HostKey(key))
}
