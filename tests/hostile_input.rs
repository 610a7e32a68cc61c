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
