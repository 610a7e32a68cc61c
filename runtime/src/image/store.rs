//! The content-addressed image store under the state root.
//!
//! ```text
//! <root>/blobs/sha256/<hex>     manifests, configs, compressed layers; named by their digest
//! <root>/layers/<hex>/          one unpacked layer, named by its diff_id; read-only once renamed
//! <root>/images/index.json      image name -> manifest digests, config, layers
//! <root>/images/store.lock      shared: pulls, container creation; exclusive: rm, prune
//! <root>/images/index.lock      serialises index updates between concurrent pulls
//! <root>/tmp/images/            downloads and unpacks in progress, each flock'ed by its writer
//! ```
//! Nothing appears under `blobs/` or `layers/` before it is verified: writers fill a temporary
//! file or directory and rename it into place only when the digest matches. A temporary entry
//! whose flock is free belongs to a dead writer (kill -9) and is removed by the next pull.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::unpack::{unpack_layer_within, UnpackLimit};
use super::ImageError;

/// One image recorded in the index.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    /// What the user pulled: a canonical reference or a local source.
    pub name: String,
    /// Digest of the manifest the name pointed at (an index for multi-arch images).
    pub top_digest: String,
    /// Digest of the platform's image manifest.
    pub manifest_digest: String,
    pub config_digest: String,
    /// Compressed layer blobs, base layer first.
    pub layer_digests: Vec<String>,
    /// Uncompressed layer digests (directory names under `layers/`), base layer first.
    pub diff_ids: Vec<String>,
    /// Sum of the compressed layer sizes.
    pub size: u64,
    /// Unix seconds of the last pull.
    pub pulled_at: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    schema: u32,
    images: BTreeMap<String, ImageRecord>,
}

/// Held while a store operation runs; dropping it releases the flock.
pub struct StoreLock(#[allow(dead_code)] Flock<File>);

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A temporary file or directory that stays flock'ed until it is committed or dropped.
pub(crate) struct TempEntry {
    pub(crate) path: PathBuf,
    lock: Option<Flock<File>>,
}

impl Drop for TempEntry {
    fn drop(&mut self) {
        if self.lock.is_some() {
            let _ = remove_any(&self.path);
            let _ = fs::remove_file(lock_path(&self.path));
        }
    }
}

fn lock_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

pub(crate) fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn io_err(what: impl Into<String>, path: &Path) -> impl FnOnce(io::Error) -> ImageError {
    let what = what.into();
    let path = path.to_path_buf();
    move |source| ImageError::Io { what, path, source }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Writes one blob: hashes while writing, renames into place only when the digest matches.
pub struct BlobWriter<'a> {
    store: &'a Store,
    expected: String,
    file: File,
    hasher: Sha256,
    written: u64,
    temp: TempEntry,
}

impl BlobWriter<'_> {
    pub fn write_chunk(&mut self, bytes: &[u8]) -> Result<(), ImageError> {
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        self.file.write_all(bytes).map_err(io_err("write a download", &self.temp.path))
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Verifies the digest and moves the blob into the store.
    pub fn commit(mut self, what: &str) -> Result<PathBuf, ImageError> {
        let actual = format!("sha256:{}", hex::encode(std::mem::take(&mut self.hasher).finalize()));
        if actual != self.expected {
            return Err(ImageError::DigestMismatch { what: what.into(), expected: self.expected.clone(), actual });
        }
        let dest = self.store.blob_path(&self.expected);
        fs::rename(&self.temp.path, &dest).map_err(io_err("store a verified blob", &dest))?;
        let _ = fs::remove_file(lock_path(&self.temp.path));
        self.temp.lock = None;
        Ok(dest)
    }
}

impl Store {
    /// Opens (creating if needed) the store under the state root `root`.
    pub fn open(root: &Path) -> Result<Self, ImageError> {
        let store = Store { root: root.to_path_buf() };
        for dir in [store.root.join("blobs/sha256"), store.root.join("layers"), store.root.join("images"), store.temp_dir()] {
            fs::create_dir_all(&dir).map_err(io_err("create the image store", &dir))?;
        }
        // Layers hold setuid files and device nodes exactly as the image says, blobs and the
        // index name and hold private images: keep them all unreachable for other users of
        // the host, whatever mode an older tfctl or an admin left on the state root.
        // Checked before it is set: a chmod changes the folder's ctime, an inode write at every
        // container start.
        use std::os::unix::fs::PermissionsExt;
        for dir in [store.root.join("blobs"), store.root.join("layers"), store.root.join("images"), store.temp_dir()] {
            let mode = fs::metadata(&dir).map_err(io_err("restrict", &dir))?.permissions().mode();
            if mode & 0o777 != 0o700 {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io_err("restrict", &dir))?;
            }
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn temp_dir(&self) -> PathBuf {
        self.root.join("tmp/images")
    }

    fn lock(&self, name: &str, arg: FlockArg) -> Result<Flock<File>, ImageError> {
        let path = self.root.join("images").join(name);
        let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io_err("open the store lock", &path))?;
        Flock::lock(file, arg).map_err(|(_, e)| io_err("lock the image store", &path)(e.into()))
    }

    /// Taken by pulls and by container creation: layers stay while it is held.
    pub fn lock_shared(&self) -> Result<StoreLock, ImageError> {
        self.lock("store.lock", FlockArg::LockShared).map(StoreLock)
    }

    /// Taken by `images rm` and `images prune`.
    pub fn lock_exclusive(&self) -> Result<StoreLock, ImageError> {
        self.lock("store.lock", FlockArg::LockExclusive).map(StoreLock)
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(hex_of(digest))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_file()
    }

    pub fn layer_dir(&self, diff_id: &str) -> PathBuf {
        self.root.join("layers").join(hex_of(diff_id))
    }

    pub fn has_layer(&self, diff_id: &str) -> bool {
        self.layer_dir(diff_id).is_dir()
    }

    /// A new flock'ed temporary path under `tmp/images/` (a file when `dir` is false).
    pub(crate) fn temp_entry(&self, prefix: &str, dir: bool) -> Result<TempEntry, ImageError> {
        let base = self.temp_dir();
        let lock_file = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .suffix(".lock")
            .rand_bytes(8)
            .tempfile_in(&base)
            .map_err(io_err("create a temporary file", &base))?;
        let (lock_file, lock_path_buf) = lock_file.keep().map_err(|e| io_err("create a temporary file", &base)(e.error))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| io_err("lock a temporary file", &lock_path_buf)(e.into()))?;
        let s = lock_path_buf.to_string_lossy();
        let path = PathBuf::from(s.strip_suffix(".lock").expect("suffix set above"));
        if dir {
            fs::create_dir(&path).map_err(io_err("create a temporary directory", &path))?;
        }
        Ok(TempEntry { path, lock: Some(lock) })
    }

    /// Removes temporary entries left by writers that died (their flock is free).
    pub fn clean_stale_temps(&self) -> Result<usize, ImageError> {
        let base = self.temp_dir();
        let mut removed = 0;
        for item in fs::read_dir(&base).map_err(io_err("list temporary files", &base))? {
            let Ok(item) = item else { continue };
            let p = item.path();
            if p.extension().is_none_or(|e| e != "lock") {
                continue;
            }
            let Ok(f) = File::open(&p) else { continue };
            if let Ok(guard) = Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                let s = p.to_string_lossy();
                let _ = remove_any(Path::new(s.strip_suffix(".lock").unwrap_or(&s)));
                let _ = fs::remove_file(&p);
                drop(guard);
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Starts writing the blob `digest` (already validated as sha256).
    pub fn blob_writer(&self, digest: &str) -> Result<BlobWriter<'_>, ImageError> {
        let temp = self.temp_entry(&format!("blob-{}", &hex_of(digest)[..12.min(hex_of(digest).len())]), false)?;
        let file = File::create(&temp.path).map_err(io_err("create a download file", &temp.path))?;
        Ok(BlobWriter { store: self, expected: digest.to_string(), file, hasher: Sha256::new(), written: 0, temp })
    }

    /// Stores `bytes` under `digest` after checking it.
    pub fn put_blob(&self, digest: &str, bytes: &[u8], what: &str) -> Result<(), ImageError> {
        if self.has_blob(digest) {
            return Ok(());
        }
        let mut w = self.blob_writer(digest)?;
        w.write_chunk(bytes)?;
        w.commit(what).map(|_| ())
    }

    /// Copies a blob from a reader into the store, verifying it.
    pub fn put_blob_from(&self, digest: &str, mut reader: impl Read, what: &str) -> Result<u64, ImageError> {
        let mut w = self.blob_writer(digest)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = reader.read(&mut buf).map_err(|e| ImageError::Source { what: what.into(), reason: e.to_string() })?;
            if n == 0 {
                break;
            }
            w.write_chunk(&buf[..n])?;
        }
        let n = w.written();
        w.commit(what)?;
        Ok(n)
    }

    /// Reads a small blob (manifest, config) and checks it against its digest again, so a blob
    /// damaged on disk is noticed rather than trusted.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let p = self.blob_path(digest);
        let bytes = fs::read(&p).map_err(io_err("read a blob", &p))?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(ImageError::DigestMismatch { what: format!("stored blob {}", p.display()), expected: digest.into(), actual });
        }
        Ok(bytes)
    }

    /// Unpacks the stored blob `blob_digest` into `layers/<diff_id>` unless that exists, checking
    /// the uncompressed digest against the image config's `diff_id`.
    pub fn unpack_layer(&self, blob_digest: &str, diff_id: &str, limit: &UnpackLimit) -> Result<PathBuf, ImageError> {
        let dest = self.layer_dir(diff_id);
        if dest.is_dir() {
            return Ok(dest);
        }
        let blob = self.blob_path(blob_digest);
        let file = File::open(&blob).map_err(io_err("open a layer blob", &blob))?;
        let temp = self.temp_entry(&format!("layer-{}", &hex_of(diff_id)[..12]), true)?;
        let dir = File::open(&temp.path).map_err(io_err("open a temporary layer directory", &temp.path))?;
        let actual = unpack_layer_within(file, dir.as_fd(), limit).map_err(|source| {
            if source.is_storage() {
                ImageError::Storage { layer: blob_digest.into(), path: self.root.clone(), source }
            } else {
                ImageError::Unpack { layer: blob_digest.into(), source }
            }
        })?;
        if actual != diff_id {
            return Err(ImageError::DiffIdMismatch { layer: blob_digest.into(), expected: diff_id.into(), actual });
        }
        match fs::rename(&temp.path, &dest) {
            Ok(()) => {}
            // A concurrent pull finished the same layer first; ours is dropped with `temp`.
            Err(e) if dest.is_dir() && matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) => return Ok(dest),
            Err(e) => return Err(io_err("move an unpacked layer into the store", &dest)(e)),
        }
        let mut temp = temp;
        let _ = fs::remove_file(lock_path(&temp.path));
        temp.lock = None;
        Ok(dest)
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("images/index.json")
    }

    fn load_index(&self) -> Result<Index, ImageError> {
        let p = self.index_path();
        match fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| ImageError::Io { what: "parse the image index".into(), path: p, source: io::Error::new(io::ErrorKind::InvalidData, e) }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index { schema: 1, images: BTreeMap::new() }),
            Err(e) => Err(io_err("read the image index", &p)(e)),
        }
    }

    fn save_index(&self, index: &Index) -> Result<(), ImageError> {
        let p = self.index_path();
        let tmp = p.with_extension(format!("json.{}", std::process::id()));
        let bytes = serde_json::to_vec_pretty(index).expect("index serialises");
        fs::write(&tmp, bytes).map_err(io_err("write the image index", &tmp))?;
        fs::rename(&tmp, &p).map_err(io_err("write the image index", &p))
    }

    /// Applies `change` to the index under the index lock.
    fn update_index<T>(&self, change: impl FnOnce(&mut Index) -> T) -> Result<T, ImageError> {
        let _guard = self.lock("index.lock", FlockArg::LockExclusive)?;
        let mut index = self.load_index()?;
        let out = change(&mut index);
        self.save_index(&index)?;
        Ok(out)
    }

    pub fn record(&self, mut record: ImageRecord) -> Result<(), ImageError> {
        record.pulled_at = now();
        self.update_index(|index| {
            index.images.insert(record.name.clone(), record);
        })
    }

    pub fn get(&self, name: &str) -> Result<Option<ImageRecord>, ImageError> {
        Ok(self.load_index()?.images.remove(name))
    }

    /// A record whose top manifest is `top_digest` and whose content is all present, under any
    /// name (so pulling a second tag of a known image downloads nothing).
    pub fn find_complete(&self, top_digest: &str) -> Result<Option<ImageRecord>, ImageError> {
        Ok(self.load_index()?.images.into_values().find(|r| r.top_digest == top_digest && self.is_complete(r)))
    }

    pub fn is_complete(&self, r: &ImageRecord) -> bool {
        self.has_blob(&r.manifest_digest) && self.has_blob(&r.config_digest) && r.diff_ids.iter().all(|d| self.has_layer(d))
    }

    /// Every image in the store, sorted by name.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        Ok(self.load_index()?.images.into_values().collect())
    }

    /// Forgets the image `name` and deletes content no other image uses. The caller holds
    /// [`Store::lock_exclusive`] and has checked that no container uses the image.
    pub fn remove(&self, name: &str) -> Result<GcReport, ImageError> {
        let found = self.update_index(|index| index.images.remove(name).is_some())?;
        if !found {
            return Err(ImageError::NotFound { image: name.into() });
        }
        self.collect_garbage()
    }

    /// Forgets every image whose name is not in `in_use`, then deletes unreferenced content and
    /// stale temporary files. The caller holds [`Store::lock_exclusive`].
    pub fn prune(&self, in_use: &HashSet<String>) -> Result<(Vec<String>, GcReport), ImageError> {
        let removed = self.update_index(|index| {
            let gone: Vec<String> = index.images.keys().filter(|n| !in_use.contains(*n)).cloned().collect();
            for n in &gone {
                index.images.remove(n);
            }
            gone
        })?;
        self.clean_stale_temps()?;
        Ok((removed, self.collect_garbage()?))
    }

    fn collect_garbage(&self) -> Result<GcReport, ImageError> {
        let index = self.load_index()?;
        let mut keep_blobs = HashSet::new();
        let mut keep_layers = HashSet::new();
        for r in index.images.values() {
            keep_blobs.extend([hex_of(&r.top_digest), hex_of(&r.manifest_digest), hex_of(&r.config_digest)].map(str::to_string));
            keep_blobs.extend(r.layer_digests.iter().map(|d| hex_of(d).to_string()));
            keep_layers.extend(r.diff_ids.iter().map(|d| hex_of(d).to_string()));
            // An index keeps the other platforms' manifests it lists out of the way: they were
            // never fetched, so there is nothing more to keep.
        }
        let mut report = GcReport::default();
        for (dir, keep, count) in [
            (self.root.join("blobs/sha256"), &keep_blobs, &mut report.blobs),
            (self.root.join("layers"), &keep_layers, &mut report.layers),
        ] {
            for item in fs::read_dir(&dir).map_err(io_err("list the store", &dir))? {
                let item = item.map_err(io_err("list the store", &dir))?;
                let name = item.file_name().to_string_lossy().into_owned();
                if !keep.contains(&name) {
                    let p = item.path();
                    if let Ok(m) = fs::symlink_metadata(&p) {
                        report.bytes += if m.is_dir() { 0 } else { m.len() };
                    }
                    remove_any(&p).map_err(io_err("remove unused content", &p))?;
                    *count += 1;
                }
            }
        }
        Ok(report)
    }
}

/// What garbage collection deleted.
#[derive(Debug, Default, Clone, Serialize)]
pub struct GcReport {
    pub blobs: usize,
    pub layers: usize,
    /// Bytes of blobs deleted (layer directories are not measured).
    pub bytes: u64,
}
