//! Images: the content-addressed store, pulls from registries and local sources, the layer
//! unpacker, and the overlay mount that turns an image's layers into a container's root.
//!
//! ```no_run
//! # async fn f() -> Result<(), tfctl_runtime::image::ImageError> {
//! use tfctl_runtime::image::{ImageSource, NoProgress, PullOptions, Store};
//! let store = Store::open("/var/lib/tfctl".as_ref())?;
//! let source = ImageSource::parse("busybox", ".".as_ref()).unwrap();
//! let pulled = store.pull(&source, &PullOptions::default(), &NoProgress).await?;
//! let image = store.resolve(&source)?; // config + layer directories, base first
//! # Ok(()) }
//! ```

pub mod auth;
mod local;
pub mod manifest;
pub mod overlay;
mod pull;
mod registry;
pub mod store;
pub mod unpack;

use std::path::PathBuf;

pub use auth::{login, logout, AuthError, Credentials};
pub use overlay::{mount_overlay, OverlayError, OverlayMount, OverlayOptions};
pub use registry::install_tls_provider;
pub use pull::{Image, PullOptions, PulledImage};
pub use store::{GcReport, ImageRecord, Store, StoreLock};
pub use tfctl_schema::reference::{ArchiveSelector, ImageReference, ImageSource};
pub use unpack::{unpack_layer, unpack_layer_within, UnpackError, UnpackLimit};

/// Why an image operation failed. Messages name the image, registry or file, and what to do;
/// they never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot {what} at {path}: {source}")]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: content does not match its digest (expected {expected}, got {actual}); the source is corrupt or was tampered with, nothing was stored")]
    DigestMismatch { what: String, expected: String, actual: String },
    #[error("layer {layer}: its uncompressed content is {actual} but the image config says {expected}; the image is inconsistent, nothing was stored")]
    DiffIdMismatch { layer: String, expected: String, actual: String },
    #[error("layer {layer} is malformed or unsafe, nothing was stored: {source}")]
    Unpack {
        layer: String,
        #[source]
        source: UnpackError,
    },
    #[error("cannot store layer {layer} under {path}: {source}; free space there (`tfctl images prune` removes unused layers) and pull again; nothing was stored")]
    Storage {
        layer: String,
        path: PathBuf,
        #[source]
        source: UnpackError,
    },
    #[error("{what} is not a valid manifest: {reason}")]
    InvalidManifest { what: String, reason: String },
    #[error("the image config of {what} is invalid: {reason}")]
    InvalidConfig { what: String, reason: String },
    #[error("{image} has no image for {wanted} (it has: {available})")]
    NoPlatform { image: String, wanted: String, available: String },
    #[error("image {image} is not in the store; run `tfctl pull {image}` first")]
    NotFound { image: String },
    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },
    #[error("registry {registry} refused the credentials{source_hint}: {message}; run `tfctl login {registry}` with a valid user and password (or fix the entry for {registry} in your auth file)")]
    Unauthorized { registry: String, source_hint: String, message: String },
    #[error("registry {registry} requires authentication: {message}; run `tfctl login {registry}`")]
    AuthRequired { registry: String, message: String },
    #[error("cannot reach registry {registry}: {message}")]
    Connect { registry: String, message: String },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{what}: {reason}")]
    Source { what: String, reason: String },
    #[error("{path}: the archive holds several images; name one of them: {images}")]
    AmbiguousArchive { path: PathBuf, images: String },
    #[error("pull task failed: {0}")]
    Task(String),
}

/// One step of a pull, for progress display. Digests name layers; sizes are compressed bytes.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ProgressEvent {
    /// The manifest was read: `layers` blobs to fetch or reuse.
    Resolved { image: String, manifest: String, layers: usize },
    /// A layer already in the store: nothing to fetch.
    LayerCached { digest: String, size: u64 },
    LayerStarted { digest: String, size: u64 },
    LayerProgress { digest: String, done: u64, size: u64 },
    LayerDownloaded { digest: String, size: u64 },
    LayerUnpacked { digest: String },
    Done { image: String, manifest: String, downloaded: u64 },
}

/// Receives pull progress; the CLI renders it as bars, lines or JSON.
pub trait Progress: Send + Sync {
    fn event(&self, event: ProgressEvent);
}

/// Discards progress.
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: ProgressEvent) {}
}

/// Opens `path`, a path as the image's container sees it, inside one unpacked layer: every
/// component, `..` and symlinks included, resolves inside the layer (openat2 `RESOLVE_IN_ROOT`),
/// so a layer's `/data -> /etc` names the layer's own `etc`, never the host's. `None` when the
/// path leads nowhere in this layer or to the wrong kind of file for `flags`.
pub fn open_in_layer(layer: &std::path::Path, path: &str, flags: libc::c_int) -> std::io::Result<Option<std::os::fd::OwnedFd>> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use nix::sys::stat::Mode;
    let root = nix::fcntl::open(layer, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
    let rel = match path.trim_start_matches('/') {
        "" => ".",
        rel => rel,
    };
    let how = OpenHow::new()
        .flags(OFlag::from_bits_truncate(flags) | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(&root, rel, how) {
        Ok(fd) => Ok(Some(fd)),
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR | nix::errno::Errno::ELOOP | nix::errno::Errno::EISDIR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
