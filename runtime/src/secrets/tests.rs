use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;

fn key() -> HostKey {
    HostKey::from_bytes([7u8; KEY_LEN])
}

#[test]
fn generated_secrets_are_stable_and_depend_on_every_input() {
    let k = key();
    let a = k.derive("shop", "db_password", 1, 32);
    assert_eq!(
        a,
        k.derive("shop", "db_password", 1, 32),
        "same inputs, same secret"
    );
    assert_eq!(a.expose().len(), 32);
    assert!(a.expose().iter().all(u8::is_ascii_alphanumeric));
    for other in [
        k.derive("shop2", "db_password", 1, 32),
        k.derive("shop", "db_passwore", 1, 32),
        k.derive("shop", "db_password", 2, 32),
        HostKey::from_bytes([8u8; KEY_LEN]).derive("shop", "db_password", 1, 32),
    ] {
        assert_ne!(a, other);
    }
    // Length-prefixed context: ("ab","c") and ("a","bc") differ.
    assert_ne!(k.derive("ab", "c", 1, 16), k.derive("a", "bc", 1, 16));
    assert!(
        !k.derive("shop", "db_password", 1, 40)
            .expose()
            .starts_with(a.expose()),
        "no prefix relation"
    );
    assert_eq!(k.derive("x", "y", 0, 5000).expose().len(), 5000);
}

#[test]
fn generated_characters_are_evenly_spread() {
    let s = key().derive("app", "big", 0, 62 * 2000);
    let mut counts = [0u32; 128];
    for &b in s.expose() {
        counts[usize::from(b)] += 1;
    }
    let used: Vec<u32> = counts.iter().copied().filter(|c| *c > 0).collect();
    assert_eq!(used.len(), 62, "all 62 characters appear");
    // Expected 2000 each; a biased mapping (b % 62 over 256) would give the first 8 ~25% more.
    assert!(used.iter().all(|c| (1750..2250).contains(c)), "{used:?}");
}

#[test]
fn host_key_is_created_once_private_and_reused() {
    let root = tempfile::tempdir().unwrap();
    let k1 = HostKey::load_or_create(root.path()).unwrap();
    let k2 = HostKey::load_or_create(root.path()).unwrap();
    assert_eq!(k1.derive("a", "b", 0, 20), k2.derive("a", "b", 0, 20));
    let dir = std::fs::metadata(root.path().join("keys")).unwrap();
    let file = std::fs::metadata(root.path().join("keys/secret.key")).unwrap();
    assert_eq!(dir.permissions().mode() & 0o7777, 0o700);
    assert_eq!(file.permissions().mode() & 0o7777, 0o600);
    assert_eq!(file.len(), 32);
    assert_eq!(
        std::fs::read_dir(root.path().join("keys")).unwrap().count(),
        1,
        "no temporary left"
    );
    assert!(!format!("{k1:?}").contains('7'));
}

#[test]
fn concurrent_first_runs_agree_on_one_key() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().to_path_buf();
    let derived: Vec<SecretValue> = (0..8)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || HostKey::load_or_create(&p).unwrap().derive("a", "b", 0, 24))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert!(derived.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn a_symlinked_or_open_key_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), root.path().join("keys")).unwrap();
    assert!(
        HostKey::load_or_create(root.path()).is_err(),
        "keys folder through a symlink"
    );
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);

    let root = tempfile::tempdir().unwrap();
    HostKey::load_or_create(root.path()).unwrap();
    let key = root.path().join("keys/secret.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = HostKey::load_or_create(root.path()).unwrap_err();
    assert!(matches!(e, SecretError::KeyPermissions { .. }), "{e}");
    std::fs::remove_file(&key).unwrap();
    std::os::unix::fs::symlink(elsewhere.path().join("k"), &key).unwrap();
    assert!(
        HostKey::load_or_create(root.path()).is_err(),
        "secret.key through a symlink"
    );
}

#[test]
fn fingerprints_compare_contents_without_keeping_them() {
    let k = key();
    let a = SecretValue::new(b"hunter2".to_vec());
    assert_eq!(
        k.fingerprint(&a),
        k.fingerprint(&SecretValue::new(b"hunter2".to_vec()))
    );
    assert_ne!(
        k.fingerprint(&a),
        k.fingerprint(&SecretValue::new(b"hunter3".to_vec()))
    );
    assert_ne!(
        k.fingerprint(&a),
        HostKey::from_bytes([1; KEY_LEN]).fingerprint(&a)
    );
    assert_eq!(format!("{a:?}"), "SecretValue(7 bytes)");
}

#[test]
fn sources_resolve_and_missing_ones_say_which() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pw");
    std::fs::write(&f, b"from-file\n").unwrap();
    let def = |source| SecretDef {
        name: "pw".into(),
        source,
    };
    let k = key();
    assert_eq!(
        resolve(&def(SecretSource::FromFile(f)), "a", 0, &k)
            .unwrap()
            .expose(),
        b"from-file\n"
    );
    assert_eq!(
        resolve(&def(SecretSource::Generate(12)), "a", 0, &k).unwrap(),
        k.derive("a", "pw", 0, 12)
    );
    let var = format!("TFCTL_TEST_SECRET_{}", std::process::id());
    let e = resolve(&def(SecretSource::FromEnv(var.clone())), "a", 0, &k).unwrap_err();
    assert!(e.to_string().contains(&var));
}

#[test]
fn secrets_tmpfs_holds_files_in_memory_with_mode_and_owner() {
    if !nix::unistd::geteuid().is_root() {
        crate::skip::cannot_run("secrets_tmpfs_holds_files_in_memory_with_mode_and_owner", "the secrets tmpfs needs root");
        return;
    }
    let mut m = SecretMounts::new().unwrap();
    m.add(&SecretFile {
        target: "/run/secrets/db",
        content: b"value-1",
        mode: 0o400,
        owner: Owner {
            uid: 1000,
            gid: 1001,
        },
    })
    .unwrap();
    assert_eq!(m.mounts.len(), 1);
    assert_eq!(m.mounts[0].target, "/run/secrets/db");
    let st = nix::sys::statfs::fstatfs(m.tmpfs()).unwrap();
    assert_eq!(st.filesystem_type(), nix::sys::statfs::TMPFS_MAGIC);
    let vfs = nix::sys::statvfs::fstatvfs(m.tmpfs()).unwrap();
    use nix::sys::statvfs::FsFlags;
    assert!(
        vfs.flags()
            .contains(FsFlags::ST_NOSUID | FsFlags::ST_NODEV | FsFlags::ST_NOEXEC),
        "{:?}",
        vfs.flags()
    );
    assert_eq!(m.noswap, !crate::sys::force_legacy(), "Linux 6.4+ takes noswap");
    // Read back through the detached mount.
    let fd = nix::fcntl::openat(
        m.tmpfs(),
        "0",
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let f = std::fs::File::from(fd);
    let meta = f.metadata().unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.permissions().mode() & 0o7777),
        (1000, 1001, 0o400)
    );
    assert_eq!(std::io::read_to_string(f).unwrap(), "value-1");
    // 1 MiB at most.
    let big = vec![b'x'; 2 << 20];
    let e = m
        .add(&SecretFile {
            target: "/big",
            content: &big,
            mode: 0o400,
            owner: Owner { uid: 0, gid: 0 },
        })
        .unwrap_err();
    assert!(matches!(e, SecretError::Full), "{e}");
}
