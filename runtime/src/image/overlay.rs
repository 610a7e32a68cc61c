//! A container's root file system: an overlay of its image's layers (read-only lowers) and a
//! per-container upper and work directory, mounted `nodev`.
//!
//! Mounted as a container's root is ([`crate::rootfs`]): layers named by short links, with
//! fsconfig `lowerdir+` on Linux 6.8+ and mount(2) before, so 128 layers under a 100-character
//! state root mount on either.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("cannot mount the overlay at {target}: {step} failed: {source}{hint}")]
    Mount {
        target: PathBuf,
        step: &'static str,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot mount the overlay at {target}: {source}")]
    Options {
        target: PathBuf,
        #[source]
        source: crate::start::config::PrepareError,
    },
}

/// Extra settings for [`mount_overlay`].
#[derive(Debug, Clone, Default)]
pub struct OverlayOptions {
    /// Skip syncing the upper directory (faster unmount; the upper dir is lost on a crash).
    pub volatile: bool,
}

/// A mounted overlay; unmounting is the owner's choice (see [`OverlayMount::unmount`]).
#[derive(Debug)]
pub struct OverlayMount {
    pub target: PathBuf,
}

impl OverlayMount {
    /// Detaches the mount.
    pub fn unmount(self) -> std::io::Result<()> {
        rustix::mount::unmount(&self.target, rustix::mount::UnmountFlags::DETACH).map_err(Into::into)
    }
}

/// Mounts `layers` (base layer first, as [`super::Image::layers`] lists them) with `upper` and
/// `work` (same file system, work empty) at `target`. Without `upper`/`work` the overlay is
/// read-only.
pub fn mount_overlay(
    layers: &[PathBuf],
    rw: Option<(&Path, &Path)>,
    target: &Path,
    opts: &OverlayOptions,
) -> Result<OverlayMount, OverlayError> {
    let cfg = crate::start::config::prepare_overlay(layers, rw, target, opts.volatile)
        .map_err(|source| OverlayError::Options { target: target.to_path_buf(), source })?;
    // The mount works in a link farm as its cwd: on a thread whose cwd is its own.
    let mounted = std::thread::scope(|s| {
        s.spawn(|| {
            crate::sys::unshare(libc::CLONE_FS).map_err(|e| crate::start::step::Failure::new(crate::start::step::Step::OverlayLinks, e))?;
            crate::rootfs::overlay(&cfg).map(crate::sys::close)
        })
        .join()
        .unwrap_or(Err(crate::start::step::Failure::new(crate::start::step::Step::RootfsOverlay, libc::EIO)))
    });
    mounted.map_err(|f| OverlayError::Mount {
        target: target.to_path_buf(),
        step: f.step.describe(),
        hint: if f.step == crate::start::step::Step::RootfsOverlay { " (see dmesg for overlayfs's reason)" } else { "" },
        source: std::io::Error::from_raw_os_error(f.errno),
    })?;
    Ok(OverlayMount { target: target.to_path_buf() })
}
