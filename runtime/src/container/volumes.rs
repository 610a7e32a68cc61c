//! Named volumes: folders under `volumes/<app>/<name>` that outlive containers. A new, empty
//! volume is first filled with what the image has at its mount point, as Docker does, so a
//! database image's initial files appear in its data volume.
//!
//! Layers are untrusted: the mount point is resolved inside each layer, as the container would
//! see it (`/data -> /etc` in an image names the image's /etc), never on the host.

use std::fs;
use std::io;
use std::os::unix::fs::{chown, lchown, symlink, DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::image::open_in_layer;

/// Makes the volume `dir` if absent, filling it from `layers` (base first) at `target` (the
/// container path). An existing volume is left as it is.
pub fn ensure(dir: &Path, layers: &[std::path::PathBuf], target: &str) -> io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let parent = dir.parent().ok_or_else(|| io::Error::other("a volume has no parent folder"))?;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(parent)?;
    // Fill a temporary folder and rename it, so a crash never leaves a half-filled volume
    // that would count as existing.
    let tmp = parent.join(format!(".{}.new", dir.file_name().unwrap_or_default().to_string_lossy()));
    let _ = fs::remove_dir_all(&tmp);
    fs::DirBuilder::new().mode(0o755).create(&tmp)?;
    for layer in layers {
        // Every component of the mount point, symlinks included, resolves inside the layer;
        // a path that leads nowhere in this layer (or to something else than a folder) adds
        // nothing from it.
        let Some(folder) = open_in_layer(layer, target, libc::O_RDONLY | libc::O_DIRECTORY)? else { continue };
        let m = fs::File::from(folder.try_clone()?).metadata()?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(m.mode() & 0o7777))?;
        chown(&tmp, Some(m.uid()), Some(m.gid()))?;
        // The folder is held open: its entries are reached through the descriptor, and below
        // it nothing is followed (copy_tree takes symlinks as links).
        let from = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&folder)));
        copy_tree(&from, &tmp)?;
    }
    fs::rename(&tmp, dir)
}

/// Copies regular files, folders and symlinks with their modes and owners; device nodes,
/// FIFOs, sockets and overlay whiteouts are not volume content and are skipped.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let m = fs::symlink_metadata(&src)?;
        let ft = m.file_type();
        if ft.is_dir() {
            if !dst.exists() {
                fs::DirBuilder::new().mode(m.mode() & 0o7777).create(&dst)?;
            }
            copy_tree(&src, &dst)?;
            chown(&dst, Some(m.uid()), Some(m.gid()))?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(m.mode() & 0o7777))?;
        } else if ft.is_symlink() {
            let _ = fs::remove_file(&dst);
            symlink(fs::read_link(&src)?, &dst)?;
            lchown(&dst, Some(m.uid()), Some(m.gid()))?;
        } else if ft.is_file() {
            let _ = fs::remove_file(&dst);
            fs::copy(&src, &dst)?;
            chown(&dst, Some(m.uid()), Some(m.gid()))?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(m.mode() & 0o7777))?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() || ft.is_socket() {
            continue;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_volume_takes_the_image_content_and_an_old_one_keeps_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let (base, top) = (tmp.path().join("l0"), tmp.path().join("l1"));
        fs::create_dir_all(base.join("var/lib/db")).unwrap();
        fs::write(base.join("var/lib/db/init"), "base").unwrap();
        fs::create_dir_all(top.join("var/lib/db/sub")).unwrap();
        fs::write(top.join("var/lib/db/init"), "top").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", top.join("var/lib/db/link")).unwrap();
        let vol = tmp.path().join("volumes/app/data");
        ensure(&vol, &[base.clone(), top.clone()], "/var/lib/db").unwrap();
        assert_eq!(fs::read_to_string(vol.join("init")).unwrap(), "top");
        assert!(vol.join("sub").is_dir());
        assert_eq!(fs::read_link(vol.join("link")).unwrap(), Path::new("/etc/passwd"));
        fs::write(vol.join("init"), "changed by the app").unwrap();
        ensure(&vol, &[base, top], "/var/lib/db").unwrap();
        assert_eq!(fs::read_to_string(vol.join("init")).unwrap(), "changed by the app");
    }

    /// The attack: an image whose `/data` is a symlink to a host folder, with a fresh volume at
    /// `/data/sub`, must not copy the host's folder into the volume. The control: the same
    /// symlink pointing inside the image fills the volume from the image's folder.
    #[test]
    fn a_symlink_in_the_image_never_reaches_host_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let host = tmp.path().join("host-etc");
        fs::create_dir_all(host.join("sub")).unwrap();
        fs::write(host.join("sub/ssh_host_key"), "HOST SECRET").unwrap();
        let layer = tmp.path().join("l0");
        fs::create_dir_all(layer.join("srv/sub")).unwrap();
        fs::write(layer.join("srv/sub/from-image"), "image").unwrap();
        // An absolute symlink to the host's folder, and a relative one climbing out of the layer.
        symlink(&host, layer.join("data")).unwrap();
        let climb = "../".repeat(layer.components().count() + 2) + host.strip_prefix("/").unwrap().to_str().unwrap();
        symlink(&climb, layer.join("up")).unwrap();
        for target in ["/data/sub", "/up/sub", "/../../../../host-etc/sub"] {
            let vol = tmp.path().join(format!("volumes/app{}", target.replace('/', "_")));
            ensure(&vol, std::slice::from_ref(&layer), target).unwrap();
            assert!(vol.is_dir(), "{target}: the volume is made");
            assert!(!vol.join("ssh_host_key").exists(), "{target}: a host file was copied into the volume");
            assert_eq!(fs::read_dir(&vol).unwrap().count(), 0, "{target}");
        }
        // The control: inside the image, `/data -> /srv` is followed as the container would.
        fs::remove_file(layer.join("data")).unwrap();
        symlink("/srv", layer.join("data")).unwrap();
        let vol = tmp.path().join("volumes/app/inside");
        ensure(&vol, std::slice::from_ref(&layer), "/data/sub").unwrap();
        assert_eq!(fs::read_to_string(vol.join("from-image")).unwrap(), "image");
    }
}
