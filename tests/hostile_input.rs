//! Findings of a hostile review, as a user meets them at the command line: ids the kernel reads
//! as "leave unchanged", a state root others can read, a layer that unpacks to far more than it
//! weighs. Each shows the defence and, where one makes sense, the control.

mod common;

use common::{busybox_image, stderr, stdout, Tfctl};
use std::os::unix::fs::PermissionsExt;

/// `--user 4294967295` is -1 to setresuid: the process would have stayed root.
#[test]
fn uid_4294967295_is_refused_and_never_runs_as_root() {
    let t = Tfctl::new();
    let image = busybox_image();
    for user in ["4294967295", "0:4294967295", "1000:4294967295"] {
        let o = t.run(&["run", "--rm", "--user", user, &image, "id"]);
        assert_eq!(o.status.code(), Some(125), "{user}: {} {}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains("4294967295"), "{}", stderr(&o));
        assert!(!stdout(&o).contains("uid=0"), "{}", stdout(&o));
    }
    // The control: the id below it runs as itself.
    let o = t.run(&["run", "--rm", "--user", "4294967294:4294967294", &image, "id", "-u"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "4294967294");

    // In an app file, `check` refuses it at the line.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.kdl");
    std::fs::write(&file, format!("app \"u\"\ncontainer \"c\" {{\n image \"{image}\"\n user \"4294967295\"\n}}\n")).unwrap();
    let o = t.run(&["check", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("4294967295") && stderr(&o).contains("app.kdl"), "{}", stderr(&o));
}

/// A state root an admin made with mode 0755 left image blobs, the index and logs readable by
/// every user: tfctl narrows it, and the store's folders, to 0700.
#[test]
fn a_state_root_others_can_read_is_narrowed_to_root_alone() {
    let t = Tfctl::new();
    let state = t.root.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = t.run(&["pull", &busybox_image()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    for sub in ["blobs", "layers", "images"] {
        assert_eq!(mode(&state.join(sub)), 0o700, "{sub}");
    }
}

/// An OCI layout whose one layer is 64 MiB of zeros in ~64 KiB of gzip.
fn zeros_image(dir: &std::path::Path) -> String {
    let script = r#"
import gzip, hashlib, io, json, os, sys, tarfile
out = sys.argv[1]
os.makedirs(out + "/blobs/sha256", exist_ok=True)
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(out + "/blobs/sha256/" + d, "wb").write(data)
    return "sha256:" + d, len(data)
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as t:
    info = tarfile.TarInfo("zeros"); info.size = 64 << 20; info.mode = 0o644
    t.addfile(info, io.BytesIO(bytes(64 << 20)))
tar = raw.getvalue()
layer, lsize = blob(gzip.compress(tar, 9, mtime=0))
config, csize = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/zeros"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]}}).encode())
manifest, msize = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": csize},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": lsize}]}).encode())
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest, "size": msize}]}, open(out + "/index.json", "w"))
open(out + "/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
"#;
    let layout = dir.join("zeros");
    let o = std::process::Command::new("python3").arg("-c").arg(script).arg(&layout).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    format!("oci:{}", layout.display())
}

/// A small layer that unpacks to far more than the host allows fails the pull, naming the layer
/// and the setting, and stores nothing; the control: under a larger limit it pulls.
#[test]
fn a_layer_past_the_hosts_unpack_limit_is_refused() {
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    let image = zeros_image(dir.path());
    let config = t.root.path().join("no-config.kdl");
    std::fs::write(&config, "max-layer-size \"16M\"\n").unwrap();
    let o = t.run(&["pull", &image]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("layer sha256:") && err.contains("max-layer-size") && err.contains("16777216"), "{err}");
    let layers = t.root.path().join("state/layers");
    assert_eq!(std::fs::read_dir(&layers).map(|d| d.count()).unwrap_or(0), 0, "a layer was stored");

    std::fs::write(&config, "max-layer-size \"100M\"\nmax-image-size \"100M\"\n").unwrap();
    let o = t.run(&["pull", &image]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// The container process running `sleep SECONDS` (its own command line, not tfctl's).
fn sleeper(seconds: &str) -> Option<u32> {
    let want = format!("sleep\0{seconds}\0");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        (std::fs::read(e.path().join("cmdline")).ok()? == want.as_bytes()).then_some(pid)
    })
}

fn status_ids(pid: u32, field: &str) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap().split_whitespace().next().unwrap().parse().unwrap()
}

/// Finding 8: a host user whose uid equals the container's could read its environment (and so
/// its secrets) through /proc. Under `--userns auto` the container's uid 1000 is a host uid no
/// one has: the same host user is refused. The control: with the host's ids, it reads them.
#[test]
fn userns_auto_keeps_a_host_user_of_the_same_uid_out() {
    let t = Tfctl::new();
    let image = busybox_image();
    for (mode, seconds) in [("auto", "31337"), ("host", "31338")] {
        let mut run = t.cmd().args(["run", "--rm", "--userns", mode, "-e", "SECRET=hunter2", "-u", "1000", &image, "sleep", seconds]).spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let pid = loop {
            if let Some(p) = sleeper(seconds) {
                break p;
            }
            assert!(std::time::Instant::now() < deadline, "{mode}: the container did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let (uid, gid) = (status_ids(pid, "Uid"), status_ids(pid, "Gid"));
        let read = std::process::Command::new("setpriv")
            .args(["--reuid", "1000", "--regid", "1000", "--clear-groups", "cat", &format!("/proc/{pid}/environ")])
            .output()
            .unwrap();
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
        let _ = run.wait();
        let leaked = String::from_utf8_lossy(&read.stdout).contains("hunter2");
        match mode {
            "auto" => {
                assert!(uid >= 1 << 30 && gid >= 1 << 30, "uid {uid} gid {gid}");
                assert_eq!(uid % 65536, 1000, "container uid 1000 is the range's 1000th: {uid}");
                assert!(!leaked && !read.status.success(), "a host user of the same uid read the container's environment");
            }
            _ => {
                assert_eq!(uid, 1000);
                assert!(leaked, "control: with the host's ids the same user reads it ({})", String::from_utf8_lossy(&read.stderr));
            }
        }
    }
}

/// Under `userns "auto"` the container's root owns its root filesystem and volumes as root
/// does in any container (it writes /etc, its volume's files keep uid 0 on disk, its secret is
/// its user's), while on the host its processes run as an unprivileged range; `exec` joins the
/// same namespace, and `down` gives the range back.
#[test]
fn an_app_under_userns_auto_works_as_root_inside_and_is_no_one_outside() {
    let ns = common::NetNs::new("userns");
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.kdl");
    std::fs::write(
        &file,
        format!(
            "app \"un\"\nsecret \"token\" generate=16\nvolume \"data\"\ncontainer \"box\" {{\n image \"{}\"\n userns \"auto\"\n command \"sh\" \"-c\" \"echo written > /etc/by-root; echo data > /data/file; exec sleep 6017\"\n mount \"data\" at=\"/data\"\n secret \"token\" at=\"/run/secrets/token\" mode=0o400\n user \"0\"\n stop-timeout \"1s\"\n}}\n",
            common::sample_image()
        ),
    )
    .unwrap();
    let file = file.to_string_lossy().into_owned();
    let o = t.run_in(&ns, &["up", "--trust-file", "--wait=30s", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = t.run_in(&ns, &["exec", "un/box", "--", "sh", "-c", "cat /proc/self/uid_map; id -u; cat /etc/by-root; wc -c < /run/secrets/token; ls -ln /data/file /etc/by-root"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let map: Vec<u64> = out.lines().next().unwrap().split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert_eq!((map[0], map[2]), (0, 65536), "{out}");
    assert!(map[1] >= 1 << 30, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[1], "0", "{out}");
    assert_eq!(lines[2], "written", "{out}");
    assert!(lines[4].contains(" 0 ") && lines[5].contains(" 0 "), "the container's files are root's inside: {out}");
    // On the host: the volume's file keeps the container's own ids, the process runs as the range.
    let vol = t.root.path().join("state/volumes/un/data/file");
    let meta = std::fs::metadata(&vol).unwrap();
    assert_eq!((std::os::unix::fs::MetadataExt::uid(&meta), std::fs::read_to_string(&vol).unwrap().as_str()), (0, "data\n"));
    // `cp` into it makes files its root owns (through the idmapped layer, host root has no id).
    let host_file = dir.path().join("copied.txt");
    std::fs::write(&host_file, "copied\n").unwrap();
    let o = t.run_in(&ns, &["cp", host_file.to_str().unwrap(), "un/box:/tmp/copied.txt"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = t.run_in(&ns, &["exec", "un/box", "--", "sh", "-c", "cat /tmp/copied.txt; stat -c %u:%g /tmp/copied.txt"]);
    assert_eq!(stdout(&o), "copied\n0:0\n", "{}", stderr(&o));
    let pid = sleeper("6017").expect("the container's process");
    assert_eq!(u64::from(status_ids(pid, "Uid")), map[1]);
    let registry = || std::fs::read_dir("/run/tfctl/userns").map(|d| d.flatten().filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|o| o.starts_with(&t.root.path().join("state").display().to_string()))).count()).unwrap_or(0);
    assert_eq!(registry(), 1);
    let o = t.run_in(&ns, &["down", "un"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(registry(), 0, "down left the app's id range taken");
}
