use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;

fn ctx() -> TemplateContext {
    let mut c = TemplateContext::default();
    c.ips.insert("db".into(), Ipv4Addr::new(10, 89, 3, 2));
    c.names.insert("db".into(), "db.shop".into());
    c.secrets
        .insert("pw".into(), SecretValue::new(b"s3cr3t-value".to_vec()));
    c
}

#[test]
fn templates_render_ips_names_and_secrets() {
    let r = render("host={{ ip.db }} name={{name.db}}\n", &ctx()).unwrap();
    assert_eq!(&r.bytes[..], b"host=10.89.3.2 name=db.shop\n");
    assert!(!r.uses_secret);
    let r = render("password: {{  secret.pw  }}", &ctx()).unwrap();
    assert_eq!(&r.bytes[..], b"password: s3cr3t-value");
    assert!(r.uses_secret);
    assert_eq!(
        &render("no braces { } here", &ctx()).unwrap().bytes[..],
        b"no braces { } here"
    );
}

#[test]
fn template_errors_name_the_reference_never_a_value() {
    let e = render("{{ secret.nope }}", &ctx()).err().unwrap();
    assert!(e.contains("secret.nope") && e.contains("`nope`"), "{e}");
    assert!(render("{{ ip.db", &ctx())
        .err()
        .unwrap()
        .contains("never closed"));
    assert!(render("{{ env.HOME }}", &ctx())
        .err()
        .unwrap()
        .contains("not ip.NAME"));
    assert!(render("{{ db }}", &ctx())
        .err()
        .unwrap()
        .contains("not ip.NAME"));
}

#[test]
fn render_files_reads_sources_and_marks_secret_templates() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("nginx.conf");
    std::fs::write(&src, "upstream {{ ip.db }};").unwrap();
    let files = vec![
        PreBootFile {
            path: "/etc/a".into(),
            content: FileContent::Inline("{{ ip.db }}".into()),
            template: false,
            mode: 0o644,
            owner: None,
        },
        PreBootFile {
            path: "/etc/b".into(),
            content: FileContent::From(src),
            template: true,
            mode: 0o600,
            owner: Some(Owner { uid: 7, gid: 8 }),
        },
        PreBootFile {
            path: "/etc/c".into(),
            content: FileContent::Inline("{{secret.pw}}".into()),
            template: true,
            mode: 0o400,
            owner: None,
        },
    ];
    let r = render_files(&files, &ctx()).unwrap();
    assert_eq!(
        &r[0].content[..],
        b"{{ ip.db }}",
        "not a template: verbatim"
    );
    assert_eq!(&r[1].content[..], b"upstream 10.89.3.2;");
    assert_eq!(r[1].owner, Owner { uid: 7, gid: 8 });
    assert_eq!(r[0].owner, Owner { uid: 0, gid: 0 });
    assert_eq!(
        (r[0].uses_secret, r[1].uses_secret, r[2].uses_secret),
        (false, false, true)
    );
    assert!(!format!("{:?}", r[2]).contains("s3cr3t"));
}

/// A rootfs with symlinks that try to leave it, and a host folder they point at.
struct Planted {
    rootfs: tempfile::TempDir,
    outside: tempfile::TempDir,
}

fn planted() -> Planted {
    let rootfs = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let out = outside.path();
    let r = rootfs.path();
    std::os::unix::fs::symlink(out, r.join("etc")).unwrap(); // absolute
    std::os::unix::fs::symlink(
        format!("../../../../../../../..{}", out.display()),
        r.join("data"),
    )
    .unwrap();
    std::fs::create_dir(r.join("conf")).unwrap();
    std::os::unix::fs::symlink(out.join("target.conf"), r.join("conf/app.conf")).unwrap(); // final component
    Planted { rootfs, outside }
}

fn root_fd(p: &Path) -> std::fs::File {
    std::fs::File::open(p).unwrap()
}

fn assert_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "something escaped the rootfs: {left:?}");
}

#[test]
fn planted_symlinks_cannot_redirect_a_file_outside_the_rootfs() {
    let p = planted();
    let root = root_fd(p.rootfs.path());
    let owner = Owner { uid: 0, gid: 0 };
    write_file(root.as_fd(), "/etc/app/config", b"one", 0o644, owner).unwrap();
    write_file(root.as_fd(), "/data/x", b"two", 0o644, owner).unwrap();
    write_file(root.as_fd(), "/conf/app.conf", b"three", 0o644, owner).unwrap();
    write_file(root.as_fd(), "/../../escape", b"four", 0o644, owner).unwrap();
    assert_empty(p.outside.path());
    // Each landed where the symlink points when read inside the container.
    let inside = p
        .rootfs
        .path()
        .join(p.outside.path().strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(inside.join("app/config")).unwrap(), b"one");
    assert_eq!(std::fs::read(inside.join("x")).unwrap(), b"two");
    assert_eq!(std::fs::read(inside.join("target.conf")).unwrap(), b"three");
    assert_eq!(
        std::fs::read(p.rootfs.path().join("escape")).unwrap(),
        b"four"
    );
}

#[test]
fn mount_targets_are_made_inside_the_rootfs() {
    let p = planted();
    let root = root_fd(p.rootfs.path());
    let fd = mount_target(root.as_fd(), "/etc/secrets/db", TargetKind::File).unwrap();
    assert_eq!(kind(fd.as_fd(), "x").unwrap(), SFlag::S_IFREG);
    mount_target(root.as_fd(), "/data/vol", TargetKind::Dir).unwrap();
    assert_empty(p.outside.path());
    let inside = p
        .rootfs
        .path()
        .join(p.outside.path().strip_prefix("/").unwrap());
    assert!(inside.join("secrets/db").is_file());
    assert!(inside.join("vol").is_dir());
    let e = mount_target(root.as_fd(), "/data/vol", TargetKind::File).unwrap_err();
    assert!(matches!(e, FileError::WrongKind { .. }), "{e}");
}

#[test]
fn files_get_their_mode_and_owner_and_special_files_are_refused() {
    let rootfs = tempfile::tempdir().unwrap();
    let root = root_fd(rootfs.path());
    std::fs::write(rootfs.path().join("old"), "previous longer content").unwrap();
    write_file(
        root.as_fd(),
        "/old",
        b"new",
        0o640,
        Owner {
            uid: 1234,
            gid: 5678,
        },
    )
    .unwrap();
    let m = std::fs::metadata(rootfs.path().join("old")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.permissions().mode() & 0o7777),
        (1234, 5678, 0o640)
    );
    assert_eq!(std::fs::read(rootfs.path().join("old")).unwrap(), b"new");
    write_file(
        root.as_fd(),
        "/deep/er/file",
        b"x",
        0o600,
        Owner { uid: 0, gid: 0 },
    )
    .unwrap();
    assert_eq!(
        std::fs::metadata(rootfs.path().join("deep/er"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    nix::unistd::mkfifo(&rootfs.path().join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
    // O_NONBLOCK: a FIFO without reader fails at once instead of hanging.
    assert!(write_file(root.as_fd(), "/fifo", b"x", 0o644, Owner { uid: 0, gid: 0 }).is_err());
    std::fs::create_dir(rootfs.path().join("adir")).unwrap();
    assert!(write_file(root.as_fd(), "/adir", b"x", 0o644, Owner { uid: 0, gid: 0 }).is_err());
}
