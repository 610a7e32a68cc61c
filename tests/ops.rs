//! Operating a running app through the binary: `kill`, `port`, `rm`, `volumes` and `cp`, each
//! test in a network namespace of its own, with `down` on the way out even when it fails.

mod common;

use common::{stderr, stdout, Tfctl, Up, World};

#[test]
fn kill_signals_the_container_and_fails_when_it_is_not_running() {
    let w = World::new("kill");
    let (t, ns, dir, image) = (&w.t, &w.ns, &w.dir, w.image.clone());
    let up = Up::new(
        &t,
        &ns,
        dir.path(),
        "k",
        &format!(
            "container \"trap\" {{\n image \"{image}\"\n command \"sh\" \"-c\" \"trap 'echo got-usr1; exit 9' USR1; touch /tmp/trapped; while true; do sleep 0.1; done\"\n stop-timeout \"1s\"\n health {{\n  exec \"test\" \"-e\" \"/tmp/trapped\"\n  interval \"100ms\"\n  retries 100\n }}\n}}\n\
             container \"victim\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n stop-timeout \"1s\"\n}}\n"
        ),
    );
    // A signal the shell traps (healthy, so `up --wait` returned, only once the trap is set):
    // the container says so in its log and exits by itself.
    let o = up.run(&["kill", "-s", "USR1", "k/trap"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // An exit tfctl did not ask for, with no restart policy: failed.
    up.wait_state("trap", "failed");
    let logs = up.run(&["logs", "k/trap"]);
    assert!(stdout(&logs).contains("got-usr1"), "{}", stdout(&logs));
    // The default SIGKILL reaches a PID 1 that ignores everything else.
    let o = up.run(&["kill", "victim"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    up.wait_state("victim", "failed");
    // Nothing runs any more: exit 1, naming it.
    let o = up.run(&["kill", "-s", "TERM", "k/trap"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not running"), "{}", stderr(&o));
    let o = up.run(&["kill", "-s", "NOSUCH", "k/trap"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn publish_0_takes_a_free_port_that_port_ps_and_hooks_show() {
    let w = World::new("port");
    let (t, ns, dir, image) = (&w.t, &w.ns, &w.dir, w.image.clone());
    let up = Up::new(
        &t,
        &ns,
        dir.path(),
        "pp",
        &format!(
            "container \"web\" {{\n image \"{image}\"\n command \"httpd\" \"-f\" \"-p\" \"80\" \"-h\" \"/var/www\"\n publish 0 to=80\n stop-timeout \"1s\"\n\
             on \"started\" {{\n  run \"sh\" \"-c\" \"echo $$TFCTL_PORT_web_80 > hook-port\"\n }}\n}}\n"
        ),
    );
    let o = up.run(&["port", "pp/web"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let line = stdout(&o);
    let host_port: u16 = line.trim().strip_prefix("80/tcp -> 0.0.0.0:").unwrap_or_else(|| panic!("port said {line:?}")).parse().unwrap();
    assert_ne!(host_port, 0);
    let o = up.run(&["port", "pp/web", "80"]);
    assert_eq!(stdout(&o).trim(), format!("0.0.0.0:{host_port}"));
    // No such published port: exit 1.
    assert_eq!(up.run(&["port", "pp/web", "80/udp"]).status.code(), Some(1));
    // The port chosen is the one that answers.
    let page = ns.sh(&format!("wget -qO- -T 5 http://127.0.0.1:{host_port}/"));
    assert!(stdout(&page).contains("hello from tfctl"), "{}", stderr(&page));
    // ps and the hook see the same port.
    let v = up.ps();
    assert_eq!(v["apps"][0]["containers"][0]["ports"][0]["host_port"], host_port, "{v}");
    assert_eq!(std::fs::read_to_string(dir.path().join("hook-port")).unwrap().trim(), host_port.to_string());
}

#[test]
fn rm_removes_a_stopped_container_and_force_stops_first() {
    let w = World::new("rm");
    let (t, ns, dir, image) = (&w.t, &w.ns, &w.dir, w.image.clone());
    let up = Up::new(
        &t,
        &ns,
        dir.path(),
        "r",
        &format!(
            "container \"a\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n stop-timeout \"1s\"\n}}\n\
             container \"b\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n stop-timeout \"1s\"\n}}\n"
        ),
    );
    let folder = |c: &str| up.state_dir().join("apps/r/containers").join(c);
    assert!(folder("a").join("upper").is_dir());
    let o = up.run(&["rm", "r/a"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("running"), "{}", stderr(&o));
    assert!(folder("a").exists(), "rm of a running container removed it");
    assert_eq!(up.run(&["stop", "r/a"]).status.code(), Some(0));
    let o = up.run(&["rm", "r/a"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!folder("a").exists());
    // A second rm finds nothing.
    assert_eq!(up.run(&["rm", "r/a"]).status.code(), Some(1));
    // --force stops it first.
    let o = up.run(&["rm", "--force", "r/b"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!folder("b").exists());
    assert_eq!(up.state("b"), "stopped");
}

#[test]
fn volumes_are_listed_inspected_and_removed_only_when_unused() {
    let w = World::new("vol");
    let (t, ns, dir, image) = (&w.t, &w.ns, &w.dir, w.image.clone());
    let up = Up::new(
        &t,
        &ns,
        dir.path(),
        "v",
        &format!(
            "volume \"data\"\nvolume \"spare\"\n\
             container \"db\" {{\n image \"{image}\"\n command \"sh\" \"-c\" \"echo kept > /data/f; exec sleep 600\"\n mount \"data\" at=\"/data\"\n stop-timeout \"1s\"\n}}\n\
             container \"other\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n mount \"spare\" at=\"/spare\"\n stop-timeout \"1s\"\n}}\n"
        ),
    );
    let o = up.run(&["volumes", "ls", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let vols = v["volumes"].as_array().unwrap();
    let names: Vec<&str> = vols.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["data", "spare"]);
    assert_eq!(vols[0]["used_by"], serde_json::json!(["db"]));
    let o = up.run(&["volumes", "inspect", "v/data"]);
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let path = std::path::PathBuf::from(info["path"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(path.join("f")).unwrap(), "kept\n");
    // In use: refused, and the data stays.
    let o = up.run(&["volumes", "rm", "v/data"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("in use") && stderr(&o).contains("db"), "{}", stderr(&o));
    assert!(path.join("f").exists());
    // Once its container stopped, it goes.
    assert_eq!(up.run(&["stop", "v/db"]).status.code(), Some(0));
    let o = up.run(&["volumes", "rm", "v/data"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!path.exists());
    assert_eq!(up.run(&["volumes", "inspect", "v/data"]).status.code(), Some(1));
    assert_eq!(up.run(&["volumes", "rm", "v/../v"]).status.code(), Some(2));
}

fn sha256_file(path: &std::path::Path) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut std::fs::File::open(path).unwrap(), &mut h).unwrap();
    hex::encode(h.finalize())
}

/// `sha256sum` of `path` inside the container.
fn sha256_in(up: &Up<'_>, container: &str, path: &str) -> String {
    let o = up.run(&["exec", container, "--", "sha256sum", path]);
    assert_eq!(o.status.code(), Some(0), "sha256sum {path}: {}", stderr(&o));
    stdout(&o).split_whitespace().next().unwrap().to_string()
}

/// Deterministic bytes that are not all alike.
fn write_pseudo_random(path: &std::path::Path, len: usize, seed: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = seed | 1;
    for _ in 0..len / 8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        f.write_all(&x.to_le_bytes()).unwrap();
    }
}

fn sleeper(image: &str) -> String {
    format!("container \"box\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n stop-timeout \"1s\"\n}}\n")
}

#[test]
fn cp_copies_files_and_folders_both_ways_intact() {
    let w = World::new("cp");
    let dir = &w.dir;
    let up = w.up("cp", &sleeper(&w.image.clone()));

    // A file in, then out again.
    let local = dir.path().join("blob");
    write_pseudo_random(&local, 3 << 20, 7);
    let want = sha256_file(&local);
    let o = up.run(&["cp", local.to_str().unwrap(), "cp/box:/tmp/"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(sha256_in(&up, "cp/box", "/tmp/blob"), want);
    let back = dir.path().join("blob.back");
    let o = up.run(&["cp", "cp/box:/tmp/blob", back.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(sha256_file(&back), want);

    // A folder with a subfolder and a symlink in, then out.
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    write_pseudo_random(&tree.join("a"), 4096, 1);
    write_pseudo_random(&tree.join("sub/deeper/b"), 100_000, 2);
    std::os::unix::fs::symlink("sub/deeper/b", tree.join("link")).unwrap();
    let o = up.run(&["cp", tree.to_str().unwrap(), "cp/box:/tmp"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(sha256_in(&up, "cp/box", "/tmp/tree/a"), sha256_file(&tree.join("a")));
    assert_eq!(sha256_in(&up, "cp/box", "/tmp/tree/sub/deeper/b"), sha256_file(&tree.join("sub/deeper/b")));
    let o = up.run(&["exec", "cp/box", "--", "readlink", "/tmp/tree/link"]);
    assert_eq!(stdout(&o).trim(), "sub/deeper/b");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let o = up.run(&["cp", "cp/box:/tmp/tree", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for f in ["a", "sub/deeper/b"] {
        assert_eq!(sha256_file(&out.join("tree").join(f)), sha256_file(&tree.join(f)), "{f}");
    }
    let link = out.join("tree/link");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_link(&link).unwrap(), std::path::Path::new("sub/deeper/b"));
}

#[test]
fn cp_in_stays_inside_the_container_whatever_symlinks_it_planted() {
    let w = World::new("cpln");
    let dir = &w.dir;
    let up = w.up("ln", &sleeper(&w.image.clone()));
    // The host folder a hostile container would like the copy to land in.
    let victim = tempfile::tempdir().unwrap();
    let victim_path = victim.path().to_str().unwrap().to_string();
    let local = dir.path().join("payload");
    std::fs::write(&local, "payload\n").unwrap();
    // Destination /a/b/c/payload; a symlink at each component in turn, absolute to the host
    // folder's path or climbing out with `..`.
    let components = ["/a", "/a/b", "/a/b/c", "/a/b/c/payload"];
    for (i, planted) in components.iter().enumerate() {
        for target in [victim_path.clone(), format!("../../../../../../../..{victim_path}")] {
            let setup = format!(
                "rm -rf /a; mkdir -p /a/b/c; rm -rf {planted}; ln -s {target}{} {planted}",
                if i == components.len() - 1 { "/payload" } else { "" }
            );
            let o = up.run(&["exec", "ln/box", "--", "sh", "-c", &setup]);
            assert_eq!(o.status.code(), Some(0), "{setup}: {}", stderr(&o));
            // The copy may land inside the container or fail; it must never reach the host.
            let _ = up.run(&["cp", local.to_str().unwrap(), "ln/box:/a/b/c/payload"]);
            let leaked: Vec<_> = walk(victim.path());
            assert!(leaked.is_empty(), "a symlink at {planted} -> {target} redirected the copy to the host: {leaked:?}");
        }
    }
    // With no symlink planted the same copy lands where it should.
    let o = up.run(&["exec", "ln/box", "--", "sh", "-c", "rm -rf /a; mkdir -p /a/b/c"]);
    assert_eq!(o.status.code(), Some(0));
    let o = up.run(&["cp", local.to_str().unwrap(), "ln/box:/a/b/c/payload"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&up.run(&["exec", "ln/box", "--", "cat", "/a/b/c/payload"])), "payload\n");
}

/// Every path under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(e.path());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

#[test]
fn cp_out_drops_setuid_and_special_files_and_gives_files_to_the_user() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let w = World::new("cpsu");
    let dir = &w.dir;
    let up = w.up("su", &sleeper(&w.image.clone()));
    let setup = "mkdir /x && echo tool > /x/tool && chown 1234:1234 /x/tool && chmod 6755 /x/tool && mkfifo /x/fifo && ls -ln /x";
    let o = up.run(&["exec", "su/box", "--", "sh", "-c", setup]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("rwsr-sr-x"), "{}", stdout(&o));
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let o = up.run(&["cp", "su/box:/x", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("fifo"), "the skipped FIFO is not reported: {}", stderr(&o));
    let tool = std::fs::metadata(out.join("x/tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o7777, 0o755, "setuid or setgid survived");
    assert_eq!((tool.uid(), tool.gid()), (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw()));
    assert!(!out.join("x/fifo").exists() && std::fs::symlink_metadata(out.join("x/fifo")).is_err(), "a FIFO was created on the host");
    // --archive keeps the owner, still without setuid.
    let kept = dir.path().join("kept");
    let o = up.run(&["cp", "--archive", "su/box:/x/tool", kept.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let m = std::fs::metadata(&kept).unwrap();
    assert_eq!((m.uid(), m.gid(), m.permissions().mode() & 0o7777), (1234, 1234, 0o755));
}

/// A memory cgroup (v1) below this process's own, removed on drop.
struct MemoryCgroup(std::path::PathBuf);

impl MemoryCgroup {
    fn new(limit: u64) -> MemoryCgroup {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let rel = own.lines().find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string())).expect("a v1 memory cgroup");
        let path = std::path::Path::new("/sys/fs/cgroup/memory").join(rel.trim_start_matches('/')).join(format!("tfctl-cp-test-{}", std::process::id()));
        std::fs::create_dir(&path).unwrap();
        let cg = MemoryCgroup(path);
        std::fs::write(cg.0.join("memory.limit_in_bytes"), limit.to_string()).unwrap();
        assert_eq!(std::fs::read_to_string(cg.0.join("memory.limit_in_bytes")).unwrap().trim(), limit.to_string());
        cg
    }

    /// `tfctl args` run inside the cgroup.
    fn run(&self, t: &Tfctl, args: &[&str]) -> std::process::Output {
        let mut c = std::process::Command::new("sh");
        c.args(["-c", "echo $$ > \"$0\" && exec \"$@\""]).arg(self.0.join("cgroup.procs")).arg(common::tfctl_bin()).args(args);
        c.env("TFCTL_ROOT", t.root.path().join("state")).env("TFCTL_CONFIG", t.root.path().join("no-config.kdl")).env("NO_COLOR", "1");
        c.output().unwrap()
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn cp_streams_512_mib_each_way_under_a_64_mib_memory_limit() {
    let w = World::new("cpbig");
    let (t, dir) = (&w.t, &w.dir);
    let up = w.up("big", &sleeper(&w.image.clone()));
    let local = dir.path().join("big");
    write_pseudo_random(&local, 512 << 20, 42);
    let want = sha256_file(&local);
    let cg = MemoryCgroup::new(64 << 20);
    let o = cg.run(&t, &["cp", local.to_str().unwrap(), "big/box:/tmp/big"]);
    assert_eq!(o.status.code(), Some(0), "in: {}", stderr(&o));
    assert_eq!(sha256_in(&up, "big/box", "/tmp/big"), want);
    let back = dir.path().join("back");
    let o = cg.run(&t, &["cp", "big/box:/tmp/big", back.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "out: {}", stderr(&o));
    assert_eq!(sha256_file(&back), want);
    let failcnt = std::fs::read_to_string(cg.0.join("memory.failcnt")).unwrap();
    eprintln!("memory cgroup: limit 64 MiB, failcnt {}", failcnt.trim());
}

#[test]
fn export_archives_the_root_filesystem_without_following_links_or_leaving_it() {
    let w = World::new("export");
    let (t, ns, dir, image) = (&w.t, &w.ns, &w.dir, w.image.clone());
    let up = Up::new(
        &t,
        &ns,
        dir.path(),
        "ex",
        &format!(
            "secret \"token\" generate=32\n\
             container \"box\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n secret \"token\"\n stop-timeout \"1s\"\n}}\n"
        ),
    );
    let o = up.run(&["exec", "ex/box", "--", "sh", "-c", "mkdir -p /data && echo hi > /data/hello && ln -s /etc/shadow /data/escape && mkfifo /data/pipe"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let secret = stdout(&up.run(&["exec", "ex/box", "--", "cat", "/run/secrets/token"]));
    assert_eq!(secret.len(), 32, "the secret is there to be left out");

    let archive = dir.path().join("box.tar");
    let o = up.run(&["export", "ex/box", "-o", archive.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bytes = std::fs::read(&archive).unwrap();
    assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "the secret's tmpfs is another filesystem: left out");
    let mut entries = std::collections::BTreeMap::new();
    for e in tar::Archive::new(&bytes[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let link = e.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
        let mut data = String::new();
        if e.header().entry_type() == tar::EntryType::Regular {
            std::io::Read::read_to_string(&mut e, &mut data).ok();
        }
        entries.insert(path, (e.header().entry_type(), link, data));
    }
    assert_eq!(entries["data/hello"].2, "hi\n");
    assert_eq!(entries["data/escape"].0, tar::EntryType::Symlink);
    assert_eq!(entries["data/escape"].1.as_deref(), Some("/etc/shadow"), "a link stays a link");
    assert_eq!(entries["data/pipe"].0, tar::EntryType::Fifo);
    assert!(entries.contains_key("bin/busybox") && entries.contains_key("etc/hosts"));
    assert!(entries.contains_key("proc/") && !entries.keys().any(|k| k.starts_with("proc/1")), "/proc is a mount point only");
    assert!(!entries.keys().any(|k| k.starts_with("run/secrets/") && k != "run/secrets/"), "{:?}", entries.keys().filter(|k| k.starts_with("run")).collect::<Vec<_>>());

    // To standard output too; a container that is not running cannot be exported.
    let o = up.run(&["export", "ex/box"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(o.stdout.len(), bytes.len());
    assert_eq!(up.run(&["stop", "ex/box"]).status.code(), Some(0));
    let o = up.run(&["export", "ex/box", "-o", archive.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not running"), "{}", stderr(&o));
}

#[test]
fn exec_runs_as_another_user_and_in_another_folder() {
    let w = World::new("execu");
    let image = w.image.clone();
    let up = w.up("xu", &format!("container \"box\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n stop-timeout \"1s\"\n}}\n"));
    let exec = |args: &[&str]| {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        up.run(&all)
    };
    let o = exec(&["-u", "app", "xu/box", "--", "sh", "-c", "id; echo $HOME; grep CapEff /proc/self/status"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("uid=1000(app) gid=1000(app)"), "{text}");
    assert!(text.contains("/home/app\n"), "{text}");
    assert!(text.contains("CapEff:\t0000000000000000"), "a non-root user gets no capabilities: {text}");
    // The command right after the target, as `docker exec` takes it (no `--`).
    let o = exec(&["-u", "0:0", "-w", "/tmp", "xu/box", "sh", "-c", "id -u; pwd; grep CapEff /proc/self/status"]);
    assert_eq!(stdout(&o), "0\n/tmp\nCapEff:\t00000000800405fb\n", "{}", stderr(&o));
    let o = exec(&["-u", "nosuch", "xu/box", "--", "true"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("nosuch"), "{}", stderr(&o));
    let o = exec(&["-w", "/nope", "xu/box", "--", "true"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("/nope") || stderr(&o).to_lowercase().contains("working"), "{}", stderr(&o));
}

#[test]
fn exec_with_a_pty_names_it_passes_input_and_keeps_the_status() {
    let w = World::new("exect");
    let up = w.up("xt", &format!("container \"box\" {{\n image \"{}\"\n command \"sleep\" \"600\"\n stop-timeout \"1s\"\n}}\n", w.image));
    let o = up.run(&["exec", "-t", "xt/box", "--", "sh", "-c", "tty; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "/dev/pts/0\r\n", "a pty of the container's own devpts (the line discipline adds \\r)");
    // -i passes stdin through the pty (which echoes it, as a terminal does).
    let mut child = w
        .t
        .cmd_in(&w.ns)
        .args(["exec", "-it", "xt/box", "--", "head", "-1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"hello\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "hello\r\nhello\r\n");
}


/// A container that cannot start makes the command that started it fail, naming it and why
/// (not only the supervisor's log): `start` of a `sleep` container whose bind source went away
/// since `up`, and `up -d` of one whose program does not exist. Errors speak of the container
/// and the path, never of tfctl's internal parts.
#[test]
fn a_container_that_cannot_start_fails_the_command_that_started_it() {
    let w = World::new("startfail");
    let image = w.image.clone();
    let gone = w.dir.path().join("gone");
    std::fs::create_dir(&gone).unwrap();
    let up = w.up(
        "sf",
        &format!(
            "container \"box\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n stop-timeout \"1s\"\n}}\n\
             container \"late\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n sleep\n mount \"./gone\" at=\"/data\"\n stop-timeout \"1s\"\n}}\n"
        ),
    );
    // Control: with its folder there, `start` runs it.
    let o = up.run(&["start", "sf/late"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(up.state("late"), "running");
    let o = up.run(&["stop", "sf/late"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::remove_dir(&gone).unwrap();
    let o = up.run(&["start", "sf/late"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "a failed start must fail `start`: {err}");
    assert!(err.contains("late") && err.contains(&gone.display().to_string()), "names the container and the path: {err}");
    assert!(!err.contains("spawner") && !err.contains("plan"), "speaks the user's terms: {err}");
    assert!(!err.contains("start done"), "{err}");
    let o = up.run(&["restart", "sf/late"]);
    assert_eq!(o.status.code(), Some(1), "a failed start must fail `restart`: {}", stderr(&o));
    drop(up);

    // `up -d` of an app whose container cannot start: exit 1 with why.
    let file = w.dir.path().join("bad.kdl");
    std::fs::write(&file, format!("app \"sf2\"\ncontainer \"nope\" {{\n image \"{image}\"\n command \"/no/such/program\"\n}}\n")).unwrap();
    let o = w.t.run_in(&w.ns, &["up", "-d", "--trust-file", file.to_str().unwrap()]);
    let _ = w.t.run_in(&w.ns, &["down", "sf2"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("nope") && err.contains("/no/such/program"), "{err}");
}


/// `cap-add "ALL"` starts, as in Docker, with every capability tfctl itself holds: on a host
/// that keeps one out of root's bounding set (CAP_SYS_RESOURCE, on some), it is not asked for.
#[test]
fn cap_add_all_gives_every_capability_tfctl_holds() {
    let w = World::new("capall");
    let image = w.image.clone();
    let up = w.up("ca", &format!("container \"box\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n cap-add \"ALL\"\n stop-timeout \"1s\"\n}}\n"));
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = ours.lines().find(|l| l.starts_with("CapBnd:")).unwrap().to_string();
    let o = up.run(&["exec", "ca/box", "grep", "-e", "CapBnd", "-e", "CapEff", "/proc/self/status"]);
    let text = stdout(&o);
    assert!(text.contains(&bounding), "the container's bounding set is tfctl's own: {text} vs {bounding}");
    assert!(text.contains(&bounding.replace("CapBnd", "CapEff")), "and root's effective set: {text}");
}


/// A bind mount's missing host folder: `check` refuses the file at the line, unless the mount
/// says `create=#true`, which makes the folder at `up` as `docker run -v` does.
#[test]
fn a_missing_bind_source_is_refused_at_check_or_made_with_create() {
    let w = World::new("bindsrc");
    let image = w.image.clone();
    let file = w.dir.path().join("app.kdl");
    std::fs::write(&file, format!("app \"bs\"\ncontainer \"box\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n mount \"./missing\" at=\"/data\"\n}}\n")).unwrap();
    let o = w.t.run_in(&w.ns, &["check", file.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("missing") && err.contains("does not exist") && err.contains("create=#true"), "{err}");
    let made = w.dir.path().join("made");
    let up = w.up(
        "bs",
        &format!("container \"box\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n mount \"./made\" at=\"/data\" create=#true\n stop-timeout \"1s\"\n}}\n"),
    );
    assert!(made.is_dir(), "create=#true makes the folder");
    let o = up.run(&["exec", "bs/box", "sh", "-c", "echo hi > /data/f"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(made.join("f")).unwrap(), "hi\n", "the made folder is the one mounted");
}


/// `sysctl` in the app file is applied in the container's own namespaces (network and IPC), as
/// the container reads them, and the host's (here: the test's namespace's) values stay.
#[test]
fn sysctls_are_set_in_the_container_s_namespaces_only() {
    let w = World::new("sysctl");
    let image = w.image.clone();
    let read = |path: &str| std::fs::read_to_string(path).unwrap();
    let host_ipc = read("/proc/sys/kernel/shmmni");
    let host_net = stdout(&w.ns.sh("cat /proc/sys/net/ipv4/tcp_keepalive_time"));
    assert_ne!(host_ipc.trim(), "1234", "the control must differ from the value set");
    assert_ne!(host_net.trim(), "1234");
    let up = w.up(
        "sy",
        &format!(
            "container \"box\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n stop-timeout \"1s\"\n\
             sysctl \"net.ipv4.tcp_keepalive_time\" \"1234\"\n sysctl \"kernel.shmmni\" \"1234\"\n sysctl \"fs.mqueue.msg_max\" \"42\"\n}}\n"
        ),
    );
    let o = up.run(&["exec", "sy/box", "cat", "/proc/sys/net/ipv4/tcp_keepalive_time", "/proc/sys/kernel/shmmni", "/proc/sys/fs/mqueue/msg_max"]);
    assert_eq!(stdout(&o), "1234\n1234\n42\n", "{}", stderr(&o));
    assert_eq!(read("/proc/sys/kernel/shmmni"), host_ipc, "the host's IPC namespace keeps its value");
    assert_eq!(stdout(&w.ns.sh("cat /proc/sys/net/ipv4/tcp_keepalive_time")), host_net, "the host side's network namespace keeps its value");
}


/// After `down` an app's containers are gone from `ps`, its subnet is free for another app,
/// and its next run's logs hold that run's output only.
#[test]
fn down_removes_the_containers_frees_the_subnet_and_a_new_run_has_its_own_logs() {
    let w = World::new("downfree");
    let image = w.image.clone();
    let app = |word: &str| {
        format!(
            "network subnet=\"10.231.7.0/24\"\ncontainer \"box\" {{\n image \"{image}\"\n command \"sh\" \"-c\" \"echo {word}; exec sleep 600\"\n stop-timeout \"1s\"\n}}\n"
        )
    };
    // The container's first line may reach the log a moment after `up` returns.
    let logs_once_it_says = |u: &Up<'_>, word: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = stdout(&u.run(&["logs", "df/box"]));
            if text.contains(word) || std::time::Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let first = w.up("df", &app("first-run"));
    let text = logs_once_it_says(&first, "first-run");
    assert!(text.contains("first-run"), "{text}");
    let o = first.run(&["down", "df"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ps = first.ps();
    let listed = ps["apps"].as_array().into_iter().flatten().flat_map(|a| a["containers"].as_array().cloned().unwrap_or_default()).count();
    assert_eq!(listed, 0, "no container of a down app is listed: {ps}");
    // The same subnet, taken by another app: free since the first is down.
    let dir2 = tempfile::tempdir().unwrap();
    let other = Up::new(&w.t, &w.ns, dir2.path(), "df2", &app("other"));
    drop(other);
    // A new run of the first app: its logs are this run's.
    let again = w.up("df", &app("second-run"));
    let text = logs_once_it_says(&again, "second-run");
    assert!(text.contains("second-run") && !text.contains("first-run"), "{text}");
}


/// `up` makes it so: a container that failed is started again by the next `up` of the file,
/// and `plan` says so first.
#[test]
fn up_starts_a_failed_container_again_and_plan_says_so() {
    let w = World::new("upfix");
    let image = w.image.clone();
    let data = w.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let file = w.dir.path().join("app.kdl");
    std::fs::write(
        &file,
        format!(
            "app \"uf\"\ncontainer \"box\" {{\n image \"{image}\"\n command \"sh\" \"-c\" \"test -e /data/ok || exit 3; exec sleep 600\"\n mount \"./data\" at=\"/data\"\n stop-timeout \"1s\"\n}}\n"
        ),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    // Running at first (so `up` may call it up), then exiting with 3: failed.
    let _ = w.t.run_in(&w.ns, &["up", "--trust-file", "--wait=30s", f]);
    let up = Up { t: &w.t, ns: &w.ns, app: "uf".into() };
    up.wait_state("box", "failed");
    // Fixed on the host, not in the file.
    std::fs::write(data.join("ok"), "").unwrap();
    let o = up.run(&["plan", f]);
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(said.contains("box") && said.contains("started again"), "{said}");
    let o = up.run(&["up", "--trust-file", "--wait=30s", f]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(up.state("box"), "running");
}
