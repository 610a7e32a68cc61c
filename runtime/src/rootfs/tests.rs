//! The root-confined writer and mount-target maker, against symlinks an image can plant.

use super::*;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// A rootfs whose /etc (absolute), /data (relative, climbing) and /conf/app.conf (last
/// component) are symlinks to a host folder outside it; the same path exists inside the rootfs,
/// where the container (and the writer) resolve them.
struct Planted {
    rootfs: tempfile::TempDir,
    outside: tempfile::TempDir,
}

impl Planted {
    fn new() -> Planted {
        let rootfs = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let (r, out) = (rootfs.path(), outside.path());
        std::os::unix::fs::symlink(out, r.join("etc")).unwrap();
        std::os::unix::fs::symlink(format!("../../../../../../../..{}", out.display()), r.join("data")).unwrap();
        std::fs::create_dir(r.join("conf")).unwrap();
        std::os::unix::fs::symlink(out.join("target.conf"), r.join("conf/app.conf")).unwrap();
        std::fs::create_dir_all(r.join(out.strip_prefix("/").unwrap())).unwrap();
        Planted { rootfs, outside }
    }

    /// Where a path under the outside folder lands when resolved inside the rootfs.
    fn inside(&self, rest: &str) -> std::path::PathBuf {
        self.rootfs.path().join(self.outside.path().strip_prefix("/").unwrap()).join(rest)
    }

    fn assert_outside_empty(&self) {
        let left: Vec<_> = std::fs::read_dir(self.outside.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert!(left.is_empty(), "something escaped the rootfs: {left:?}");
    }
}

fn root_fd(p: &Path) -> std::fs::File {
    std::fs::File::open(p).unwrap()
}

fn file(path: &str, data: &[u8], mode: u32, uid: u32, gid: u32) -> FileConfig {
    FileConfig { path: CString::new(path).unwrap(), data: data.to_vec(), mode, uid, gid }
}

fn write(root: &std::fs::File, path: &str, data: &[u8]) -> SysResult<()> {
    write_file(root.as_raw_fd(), &file(path, data, 0o644, 0, 0))
}

#[test]
fn planted_symlinks_cannot_send_a_file_outside_the_rootfs() {
    let p = Planted::new();
    let root = root_fd(p.rootfs.path());
    write(&root, "/etc/app/config", b"one").unwrap();
    write(&root, "/data/x", b"two").unwrap();
    write(&root, "/../../escape", b"three").unwrap();
    // A symlink as the file itself is refused, not followed (the start names it, ELOOP).
    assert_eq!(write(&root, "/conf/app.conf", b"four"), Err(libc::ELOOP));
    p.assert_outside_empty();
    // The folders on the way resolved as they would inside the container.
    assert_eq!(std::fs::read(p.inside("app/config")).unwrap(), b"one");
    assert_eq!(std::fs::read(p.inside("x")).unwrap(), b"two");
    assert_eq!(std::fs::read(p.rootfs.path().join("escape")).unwrap(), b"three");
    // A symlink whose target is missing inside the rootfs is not followed to make it (unlike
    // runc's MkdirAll): the write is refused, and nothing lands on the host either.
    std::os::unix::fs::symlink(p.outside.path().join("nowhere"), p.rootfs.path().join("opt")).unwrap();
    assert_eq!(write(&root, "/opt/app/config", b"five"), Err(libc::ENOENT));
    p.assert_outside_empty();
}

#[test]
fn mount_targets_are_made_inside_the_rootfs() {
    let p = Planted::new();
    let root = root_fd(p.rootfs.path());
    let made = |path: &str, dir: bool| {
        let fd = open_or_create(root.as_raw_fd(), &CString::new(path).unwrap(), dir).unwrap();
        // SAFETY: open_or_create returned a descriptor that nothing else owns.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    };
    made("/etc/secrets/db", false);
    made("/data/vol", true);
    p.assert_outside_empty();
    assert!(p.inside("secrets/db").is_file());
    assert!(p.inside("vol").is_dir());
}

#[test]
fn files_get_their_mode_and_owner_and_special_files_are_refused() {
    let rootfs = tempfile::tempdir().unwrap();
    let root = root_fd(rootfs.path());
    std::fs::write(rootfs.path().join("old"), "previous longer content").unwrap();
    write_file(root.as_raw_fd(), &file("/old", b"new", 0o640, 1234, 5678)).unwrap();
    let m = std::fs::metadata(rootfs.path().join("old")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.permissions().mode() & 0o7777), (1234, 5678, 0o640));
    assert_eq!(std::fs::read(rootfs.path().join("old")).unwrap(), b"new");
    write(&root, "/deep/er/file", b"x").unwrap();
    assert_eq!(std::fs::metadata(rootfs.path().join("deep/er")).unwrap().permissions().mode() & 0o777, 0o755);
    // O_NONBLOCK: a FIFO without reader fails at once (ENXIO) instead of hanging.
    nix::unistd::mkfifo(&rootfs.path().join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    assert!(write(&root, "/fifo", b"x").is_err());
    std::fs::create_dir(rootfs.path().join("adir")).unwrap();
    assert!(write(&root, "/adir", b"x").is_err());
}
