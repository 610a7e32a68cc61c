use std::os::fd::AsFd;

use tfctl_schema::model::{
    Mount as ModelMount, Seccomp, Tmpfs, Ulimit,
};

use super::*;

fn container() -> Container {
    Container::new("web", "nginx")
}

fn image(config: &str) -> ImageConfiguration {
    let json = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{config},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    );
    serde_json::from_str(&json).unwrap()
}

fn nginx() -> ImageConfiguration {
    image(
        r#"{"Entrypoint":["/docker-entrypoint.sh"],"Cmd":["nginx","-g","daemon off;"],"Env":["PATH=/usr/bin:/bin","NGINX_VERSION=1.25"],"WorkingDir":"/srv","User":"nginx"}"#,
    )
}

fn rootfs() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("etc")).unwrap();
    std::fs::write(
        d.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n# comment\nnginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin\nbroken line\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("etc/group"),
        "root:x:0:\nadm:x:4:nginx\nnginx:x:101:\nwww:x:33:nginx,other\n",
    )
    .unwrap();
    d
}

fn compile_in(
    c: &Container,
    img: &ImageConfiguration,
    root: &tempfile::TempDir,
) -> Result<CompiledContainer, SpecError> {
    let dir = std::fs::File::open(root.path()).unwrap();
    let ctx = SpecContext {
        app: "shop",
        volumes_dir: Path::new("/var/lib/tfctl/volumes/shop"),
        rootfs: dir.as_fd(),
        group_rootfs: dir.as_fd(),
    };
    compile(c, img, &ctx)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn command_merges_as_docker_does() {
    let img = nginx();
    let mut c = container();
    assert_eq!(
        merge_args(&c, &img).unwrap(),
        strings(&["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"])
    );
    c.command = Some(strings(&["nginx", "-t"]));
    assert_eq!(
        merge_args(&c, &img).unwrap(),
        strings(&["/docker-entrypoint.sh", "nginx", "-t"])
    );
    c.command = None;
    c.entrypoint = Some(strings(&["/bin/sh"]));
    assert_eq!(
        merge_args(&c, &img).unwrap(),
        strings(&["/bin/sh"]),
        "an entrypoint override drops the image's Cmd"
    );
    c.command = Some(strings(&["-c", "true"]));
    assert_eq!(
        merge_args(&c, &img).unwrap(),
        strings(&["/bin/sh", "-c", "true"])
    );
    c.entrypoint = Some(Vec::new());
    assert_eq!(
        merge_args(&c, &img).unwrap(),
        strings(&["-c", "true"]),
        "an empty entrypoint clears the image's"
    );
    let bare = image("{}");
    assert!(matches!(merge_args(&container(), &bare), Err(SpecError::NoCommand(n)) if n == "web"));
}

#[test]
fn env_merges_image_then_app_then_defaults() {
    let mut c = container();
    c.env = vec![
        ("NGINX_VERSION".into(), "1.27".into()),
        ("A".into(), "1=2".into()),
    ];
    let env = merge_env(&c, &nginx(), "/var/cache/nginx");
    assert_eq!(
        env,
        strings(&[
            "PATH=/usr/bin:/bin",
            "NGINX_VERSION=1.27",
            "A=1=2",
            "HOSTNAME=web",
            "HOME=/var/cache/nginx"
        ])
    );
    let env = merge_env(&container(), &image("{}"), "/");
    assert_eq!(env[0], format!("PATH={DEFAULT_PATH}"));
}

/// An image config with 200,000 Env entries (a million took a quadratic merge to minutes at
/// 100% CPU) merges in linear time: the later value of a key wins, in its first place.
#[test]
fn a_huge_image_env_merges_in_linear_time() {
    let entries: Vec<String> = (0..200_000).map(|i| format!("\"K{}=v{i}\"", i % 100_000)).collect();
    let cfg = image(&format!(r#"{{"Env": [{}]}}"#, entries.join(",")));
    let env = merge_env(&container(), &cfg, "/");
    assert_eq!(env.len(), 100_000 + 3);
    assert_eq!(env[0], "K0=v100000");
    assert_eq!(env[99_999], "K99999=v199999");
}

/// uid or gid 2^32-1 is -1 to setresuid/setgroups ("leave unchanged"): the process would stay
/// root. Refused from `--user` and from an image's /etc/passwd.
#[test]
fn uid_and_gid_4294967295_are_refused() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("etc")).unwrap();
    std::fs::write(d.path().join("etc/passwd"), "ghost:x:4294967295:4294967295::/:/bin/sh\nok:x:1000:4294967295::/:/bin/sh\n").unwrap();
    std::fs::write(d.path().join("etc/group"), "g:x:1000:\n").unwrap();
    let dir = std::fs::File::open(d.path()).unwrap();
    for spec in ["4294967295", "ghost", "0:4294967295", "ok", "4294967295:0"] {
        let err = resolve_user(Some(spec), dir.as_fd(), dir.as_fd()).unwrap_err();
        assert!(matches!(err, SpecError::ReservedId { id: u32::MAX, .. }), "{spec}: {err}");
        assert!(err.to_string().contains("4294967295"), "{err}");
    }
    // The control: the largest usable id is fine.
    assert_eq!(resolve_user(Some("4294967294:4294967294"), dir.as_fd(), dir.as_fd()).unwrap().uid, 4294967294);
}

#[test]
fn users_resolve_from_the_images_files() {
    let root = rootfs();
    let dir = std::fs::File::open(root.path()).unwrap();
    let u = resolve_user(Some("nginx"), dir.as_fd(), dir.as_fd()).unwrap();
    assert_eq!(
        (u.uid, u.gid, u.additional_gids.clone(), u.home.as_str()),
        (101, 101, vec![4, 33, 101], "/var/cache/nginx")
    );
    let u = resolve_user(Some("nginx:www"), dir.as_fd(), dir.as_fd()).unwrap();
    // A group named in `user` is the only one, as with Docker.
    assert_eq!((u.uid, u.gid, u.additional_gids), (101, 33, vec![33]));
    let u = resolve_user(Some("1000"), dir.as_fd(), dir.as_fd()).unwrap();
    assert_eq!(
        (u.uid, u.gid, u.home.as_str(), u.name),
        (1000, 0, "/", None)
    );
    let u = resolve_user(Some("1000:1000"), dir.as_fd(), dir.as_fd()).unwrap();
    assert_eq!((u.uid, u.gid), (1000, 1000));
    assert_eq!(resolve_user(None, dir.as_fd(), dir.as_fd()).unwrap().uid, 0);
    assert!(matches!(
        resolve_user(Some("ghost"), dir.as_fd(), dir.as_fd()),
        Err(SpecError::UnknownUser { .. })
    ));
    assert!(matches!(
        resolve_user(Some("nginx:ghosts"), dir.as_fd(), dir.as_fd()),
        Err(SpecError::UnknownUser {
            file: "/etc/group",
            ..
        })
    ));
}

#[test]
fn a_planted_passwd_symlink_or_fifo_cannot_reach_the_host() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("passwd"), "evil:x:0:0::/evil:/bin/sh\n").unwrap();
    std::fs::write(host.path().join("group"), "evil:x:66:evil\n").unwrap();
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("etc")).unwrap();
    std::os::unix::fs::symlink(host.path().join("passwd"), d.path().join("etc/passwd")).unwrap();
    let rel = format!(
        "../../../../../../../..{}",
        host.path().join("group").display()
    );
    std::os::unix::fs::symlink(rel, d.path().join("etc/group")).unwrap();
    let dir = std::fs::File::open(d.path()).unwrap();
    assert!(matches!(
        resolve_user(Some("evil"), dir.as_fd(), dir.as_fd()),
        Err(SpecError::UnknownUser { .. })
    ));
    assert!(matches!(
        resolve_user(Some("0:evil"), dir.as_fd(), dir.as_fd()),
        Err(SpecError::UnknownUser { .. })
    ));
    assert_eq!(resolve_user(Some("0"), dir.as_fd(), dir.as_fd()).unwrap().home, "/");
    // A loop fails, a FIFO fails at once instead of hanging.
    std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.path().join("etc/passwd")).unwrap();
    assert!(matches!(
        resolve_user(Some("0"), dir.as_fd(), dir.as_fd()),
        Err(SpecError::ImageFile { .. })
    ));
    std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
    nix::unistd::mkfifo(
        &d.path().join("etc/passwd"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    assert!(matches!(
        resolve_user(Some("0"), dir.as_fd(), dir.as_fd()),
        Err(SpecError::ImageFile { .. })
    ));
}

#[test]
fn compiled_spec_carries_the_hardened_defaults() {
    let root = rootfs();
    let mut c = container();
    c.user = Some("0".into());
    c.sysctls = vec![("net.ipv4.ip_unprivileged_port_start".into(), "0".into())];
    c.read_only = true;
    let out = compile_in(&c, &nginx(), &root).unwrap();
    let spec = &out.spec;
    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.cwd().to_str(), Some("/srv"));
    assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
    assert_eq!(p.no_new_privileges(), Some(true));
    let caps = p.capabilities().as_ref().unwrap();
    assert_eq!(caps.bounding().as_ref().unwrap().len(), 11);
    assert_eq!(caps.effective(), caps.bounding());
    assert!(caps.ambient().as_ref().unwrap().is_empty());
    assert_eq!(out.caps.bounding, CapSet::default_set());
    let linux = spec.linux().as_ref().unwrap();
    let ns: Vec<_> = linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    for t in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
    ] {
        assert!(ns.contains(&t), "{t:?}");
    }
    assert!(linux
        .masked_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/kcore".to_string()));
    assert!(linux
        .readonly_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/sys".to_string()));
    assert_eq!(
        linux.sysctl().as_ref().unwrap()["net.ipv4.ip_unprivileged_port_start"],
        "0"
    );
    assert_eq!(spec.hostname().as_deref(), Some("web"));
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    assert_eq!(
        linux
            .resources()
            .as_ref()
            .unwrap()
            .pids()
            .as_ref()
            .unwrap()
            .limit(),
        4096
    );
    let seccomp = linux.seccomp().as_ref().expect("default profile");
    let json = serde_json::to_string(spec).unwrap();
    assert!(json.contains(r#""defaultAction":"SCMP_ACT_ERRNO""#));
    assert!(seccomp
        .syscalls()
        .as_ref()
        .unwrap()
        .iter()
        .any(|s| s.names().iter().any(|n| n == "clone3") && s.errno_ret() == Some(38)));
    assert!(!seccomp
        .syscalls()
        .as_ref()
        .unwrap()
        .iter()
        .any(|s| s.names().iter().any(|n| n == "unshare")));

    c.seccomp = Seccomp::Unconfined;
    let out = compile_in(&c, &nginx(), &root).unwrap();
    assert!(out.spec.linux().as_ref().unwrap().seccomp().is_none());
    assert_eq!(out.seccomp, SeccompPolicy::Unconfined);
}

#[test]
fn a_non_root_user_starts_with_no_effective_capabilities() {
    let root = rootfs();
    let out = compile_in(&container(), &nginx(), &root).unwrap(); // the image's User: nginx
    assert_eq!(out.user.uid, 101);
    assert_eq!(out.caps.effective, CapSet::EMPTY);
    assert_eq!(out.caps.bounding, CapSet::default_set());
    let mut c = container();
    c.cap_add = vec!["CAP_NET_BIND_SERVICE".into()];
    let out = compile_in(&c, &nginx(), &root).unwrap();
    assert_eq!(
        out.caps.ambient.names(),
        vec!["CAP_NET_BIND_SERVICE".to_string()]
    );
}

#[test]
fn ulimits_are_checked_against_the_hosts_hard_limit() {
    let mut c = container();
    c.ulimits = vec![Ulimit {
        name: "nofile".into(),
        soft: 512,
        hard: 1024,
    }];
    let (raw, oci) = rlimits(&c).unwrap();
    assert_eq!(
        raw,
        vec![Rlimit {
            resource: libc::RLIMIT_NOFILE,
            soft: 512,
            hard: 1024
        }]
    );
    assert_eq!(oci[0].typ(), PosixRlimitType::RlimitNofile);
    let cur = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap()
        .1;
    if cur < u64::MAX {
        c.ulimits = vec![Ulimit {
            name: "nofile".into(),
            soft: 1,
            hard: cur + 1,
        }];
        let e = rlimits(&c).unwrap_err();
        assert!(e.to_string().contains("CAP_SYS_RESOURCE"), "{e}");
    }
    c.ulimits = vec![Ulimit {
        name: "nofile".into(),
        soft: 10,
        hard: 5,
    }];
    assert!(matches!(rlimits(&c), Err(SpecError::UlimitOrder { .. })));
    c.ulimits = vec![Ulimit {
        name: "bogus".into(),
        soft: 1,
        hard: 1,
    }];
    assert!(matches!(rlimits(&c), Err(SpecError::UnknownUlimit(_))));
}

#[test]
fn volumes_binds_and_tmpfs_are_nodev() {
    let mut c = container();
    c.mounts = vec![
        ModelMount {
            source: MountSource::Volume("data".into()),
            target: "/var/lib/db".into(),
            read_only: false,
            create: false,
        },
        ModelMount {
            source: MountSource::Bind("/srv/site".into()),
            target: "/usr/share/nginx/html".into(),
            read_only: true,
            create: false,
        },
    ];
    c.tmpfs = vec![Tmpfs {
        path: "/cache".into(),
        size: Some(64 << 20),
    }];
    let m = mounts(&c, Path::new("/var/lib/tfctl/volumes/shop")).unwrap();
    let find = |d: &str| {
        m.iter()
            .find(|m| m.destination().to_str() == Some(d))
            .unwrap()
    };
    let vol = find("/var/lib/db");
    assert_eq!(
        vol.source().as_ref().unwrap().to_str(),
        Some("/var/lib/tfctl/volumes/shop/data")
    );
    assert!(vol
        .options()
        .as_ref()
        .unwrap()
        .contains(&"nodev".to_string()));
    let bind = find("/usr/share/nginx/html");
    assert!(bind.options().as_ref().unwrap().contains(&"ro".to_string()));
    assert!(bind
        .options()
        .as_ref()
        .unwrap()
        .contains(&"nodev".to_string()));
    let t = find("/cache");
    assert!(t
        .options()
        .as_ref()
        .unwrap()
        .contains(&"size=67108864".to_string()));
    assert!(t.options().as_ref().unwrap().contains(&"nodev".to_string()));
    assert!(find("/proc")
        .options()
        .as_ref()
        .unwrap()
        .contains(&"noexec".to_string()));
}

#[test]
fn group_add_resolves_names_in_the_image_and_keeps_numbers() {
    let root = rootfs();
    let img = image(r#"{"Cmd":["sh"]}"#);
    let mut c = container();
    c.group_add = strings(&["www", "4242", "adm"]);
    let compiled = compile_in(&c, &img, &root).unwrap();
    // Root's own group (0) comes first, as Docker lists the primary group among the
    // supplementary ones; then the added ones, sorted.
    assert_eq!(compiled.user.additional_gids, vec![0, 4, 33, 4242]);
    c.group_add = strings(&["wheel"]);
    let err = compile_in(&c, &img, &root).unwrap_err();
    assert!(matches!(&err, SpecError::UnknownGroup(g) if g == "wheel"), "{err}");
}

#[test]
fn privileged_unmasks_proc_and_sys_and_drops_seccomp() {
    let root = rootfs();
    let img = image(r#"{"Cmd":["sh"]}"#);
    let mut c = container();
    c.cap_drop = strings(&["ALL"]);
    let plain = compile_in(&c, &img, &root).unwrap();
    c.privileged = true;
    let privileged = compile_in(&c, &img, &root).unwrap();
    // The control: the default confinement masks paths, filters syscalls and mounts /sys ro.
    let linux = |cc: &CompiledContainer| cc.spec.linux().clone().unwrap();
    let sys_ro = |cc: &CompiledContainer| {
        cc.spec.mounts().as_ref().unwrap().iter().find(|m| m.destination() == Path::new("/sys")).unwrap().options().clone().unwrap().contains(&"ro".to_string())
    };
    assert!(!linux(&plain).masked_paths().clone().unwrap().is_empty() && linux(&plain).seccomp().is_some() && sys_ro(&plain));
    assert!(linux(&privileged).masked_paths().clone().unwrap().is_empty());
    assert!(linux(&privileged).readonly_paths().clone().unwrap().is_empty());
    assert!(linux(&privileged).seccomp().is_none());
    assert!(!sys_ro(&privileged), "/sys stays read-only");
    // Every capability tfctl can give, --cap-drop ALL notwithstanding (as Docker ignores it).
    assert_eq!(privileged.caps.effective, crate::capabilities::CapSet::grantable());
}
