//! A container's root file system: an overlay of its image's layers (read-only lowers) and a
//! per-container upper and work directory, mounted `nodev`.
//!
//! Mounted with the new mount API: each lower layer is added on its own with fsconfig
//! `lowerdir+` (Linux 6.8+), so the option string never has to hold every path at once; 128
//! layers under a 100-character state root would not fit the one-page limit of mount(2)'s data.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::mount::{self as m, FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags};

#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("cannot mount the overlay at {target}: {step} failed: {source}{hint}")]
    Mount {
        target: PathBuf,
        step: String,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("an overlay needs at least one layer")]
    NoLayers,
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
    if layers.is_empty() {
        return Err(OverlayError::NoLayers);
    }
    let fail = |step: String, hint: &'static str| {
        let target = target.to_path_buf();
        move |e: rustix::io::Errno| OverlayError::Mount { target, step, hint, source: e.into() }
    };
    let fs = m::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(fail("fsopen(overlay)".into(), ""))?;
    // overlayfs lists the topmost lower first.
    for layer in layers.iter().rev() {
        m::fsconfig_set_string(fs.as_fd(), "lowerdir+", layer)
            .map_err(fail(format!("adding lower layer {}", layer.display()), " (lowerdir+ needs Linux 6.8 or later)"))?;
    }
    if let Some((upper, work)) = rw {
        m::fsconfig_set_string(fs.as_fd(), "upperdir", upper).map_err(fail(format!("upperdir {}", upper.display()), ""))?;
        m::fsconfig_set_string(fs.as_fd(), "workdir", work).map_err(fail(format!("workdir {}", work.display()), ""))?;
        if opts.volatile {
            m::fsconfig_set_flag(fs.as_fd(), "volatile").map_err(fail("volatile".into(), ""))?;
        }
    }
    m::fsconfig_create(fs.as_fd()).map_err(fail("creating the overlay".into(), " (see dmesg for overlayfs's reason)"))?;
    let mnt = m::fsmount(fs.as_fd(), FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::MOUNT_ATTR_NODEV)
        .map_err(fail("fsmount".into(), ""))?;
    m::move_mount(mnt.as_fd(), "", rustix::fs::CWD, target, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
        .map_err(fail("move_mount".into(), ""))?;
    Ok(OverlayMount { target: target.to_path_buf() })
}
