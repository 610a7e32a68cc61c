//! The layer unpacker against crafted malicious layers, and against a well-formed one.
//!
//! Each malicious layer aims at a canary directory outside the unpack target. The test first
//! applies the layer with a deliberately naive extractor (Python's tarfile without a filter)
//! and asserts the canary DID change, proving the layer is a real attack; then it unpacks the
//! same bytes with tfctl into a fresh directory and asserts the canary is untouched.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use tfctl_runtime::image::unpack_layer;

/// Builds tarballs from a Python list of member specs; python's tarfile writes any name/type.
const MAKE_TARS: &str = r#"
import io, json, sys, tarfile
spec = json.loads(sys.argv[1])
for out, members in spec.items():
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        for m in members:
            ti = tarfile.TarInfo(m["name"])
            ti.mode = m.get("mode", 0o644)
            ti.mtime = 1000000000
            kind = m["type"]
            data = b""
            if kind == "file":
                data = m.get("data", "PWNED").encode()
                ti.size = len(data)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = m.get("mode", 0o755)
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE; ti.linkname = m["target"]
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE; ti.linkname = m["target"]
            elif kind == "char":
                ti.type = tarfile.CHRTYPE; ti.devmajor = m["major"]; ti.devminor = m["minor"]
            if "xattrs" in m:
                ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in m["xattrs"].items()}
            t.addfile(ti, io.BytesIO(data) if kind == "file" else None)
"#;

const NAIVE_EXTRACT: &str = r#"
import sys, tarfile
kw = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
dest = sys.argv[1]
for f in sys.argv[2:]:
    try:
        tarfile.open(f).extractall(dest, **kw)
    except Exception as e:
        print("naive extractor error:", e, file=sys.stderr)
"#;

fn python(script: &str, args: &[&str]) {
    let out = Command::new("/usr/bin/python3").arg("-c").arg(script).args(args).output().expect("run python3");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// What a user would check about the canary: names, types, modes, contents, link targets.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let m = fs::symlink_metadata(dir).unwrap();
    out.insert(".".into(), format!("mode={:o}", m.mode()));
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = fs::symlink_metadata(e.path()).unwrap();
        let desc = if m.file_type().is_symlink() {
            format!("symlink->{}", fs::read_link(e.path()).unwrap().display())
        } else if m.is_file() {
            format!("file mode={:o} data={}", m.mode(), fs::read_to_string(e.path()).unwrap_or_default())
        } else {
            format!("other mode={:o}", m.mode())
        };
        out.insert(e.file_name().to_string_lossy().into_owned(), desc);
    }
    out
}

struct Case {
    name: &'static str,
    /// One member list per layer (layers unpacked in order).
    layers: Vec<serde_json::Value>,
}

fn cases(canary: &Path) -> Vec<Case> {
    use serde_json::json;
    let c = canary.display().to_string();
    let deep = "a/".repeat(100);
    let long_up = format!("{deep}{}canary/file", "../".repeat(101));
    vec![
        Case { name: "dotdot path", layers: vec![json!([{"name": "../canary/file", "type": "file"}])] },
        Case { name: "absolute path", layers: vec![json!([{"name": format!("{c}/file"), "type": "file"}])] },
        Case {
            name: "absolute symlink to a directory, then a file through it",
            layers: vec![json!([{"name": "link", "type": "symlink", "target": c}, {"name": "link/file", "type": "file"}])],
        },
        Case {
            name: "relative symlink escaping, then a file through it",
            layers: vec![json!([{"name": "link", "type": "symlink", "target": "../canary"}, {"name": "link/new", "type": "file"}])],
        },
        Case {
            name: "symlink to a file, then a regular file over it",
            layers: vec![json!([{"name": "f", "type": "symlink", "target": format!("{c}/file")}, {"name": "f", "type": "file"}])],
        },
        Case {
            name: "hardlink to an outside file, then a write through it",
            layers: vec![json!([{"name": "h", "type": "hardlink", "target": format!("{c}/file")}, {"name": "h", "type": "file"}])],
        },
        Case {
            name: "chmod setuid via a hardlink to an outside file",
            layers: vec![json!([{"name": "h", "type": "hardlink", "target": format!("{c}/file"), "mode": 0o4777}])],
        },
        Case {
            name: "chained symlinks escaping",
            layers: vec![json!([
                {"name": "b", "type": "symlink", "target": "../canary"},
                {"name": "a", "type": "symlink", "target": "b"},
                {"name": "a/new", "type": "file"}
            ])],
        },
        Case {
            name: "symlink planted by an earlier layer",
            layers: vec![
                json!([{"name": "link", "type": "symlink", "target": c}]),
                json!([{"name": "link/file", "type": "file"}]),
            ],
        },
        Case { name: "whiteout outside the root", layers: vec![json!([{"name": "../canary/.wh.file", "type": "file", "data": ""}])] },
        Case { name: "device node outside the root", layers: vec![json!([{"name": "../canary/null", "type": "char", "major": 1, "minor": 3}])] },
        Case { name: "chmod of an outside directory", layers: vec![json!([{"name": "../canary", "type": "dir", "mode": 0o777}])] },
        Case { name: "long path climbing out", layers: vec![json!([{"name": deep, "type": "dir"}, {"name": long_up, "type": "file"}])] },
        Case {
            name: "hardlink through a symlink to outside",
            layers: vec![json!([
                {"name": "l", "type": "symlink", "target": c},
                {"name": "h", "type": "hardlink", "target": "l/file"},
                {"name": "h", "type": "file"}
            ])],
        },
    ]
}

fn fresh_canary(dir: &Path) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir(dir).unwrap();
    fs::write(dir.join("file"), "original").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir.join("file"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
}

fn unpack_into(tar: &Path, dir: &Path) -> Result<String, tfctl_runtime::image::UnpackError> {
    fs::create_dir_all(dir).unwrap();
    let d = File::open(dir).unwrap();
    unpack_layer(File::open(tar).unwrap(), d.as_fd())
}

#[test]
fn malicious_layers_cannot_touch_anything_outside_the_layer() {
    let cases_checked = {
        let tmp = tempfile::tempdir().unwrap();
        let canary = tmp.path().join("canary");
        let mut n = 0;
        for (i, case) in cases(&canary).into_iter().enumerate() {
            let tars: Vec<PathBuf> = (0..case.layers.len()).map(|l| tmp.path().join(format!("case{i}-layer{l}.tar"))).collect();
            let spec: serde_json::Map<String, serde_json::Value> =
                tars.iter().zip(&case.layers).map(|(t, m)| (t.display().to_string(), m.clone())).collect();
            python(MAKE_TARS, &[&serde_json::Value::Object(spec).to_string()]);

            // 1. The naive extractor: the attack must work, else the case proves nothing.
            fresh_canary(&canary);
            let before = snapshot(&canary);
            let naive = tmp.path().join("naive");
            let _ = fs::remove_dir_all(&naive);
            fs::create_dir(&naive).unwrap();
            let mut args = vec![naive.to_str().unwrap()];
            args.extend(tars.iter().map(|t| t.to_str().unwrap()));
            python(NAIVE_EXTRACT, &args);
            assert_ne!(snapshot(&canary), before, "case {:?}: the naive extractor did not reach the canary", case.name);

            // 2. tfctl: each layer into its own directory, canary untouched.
            fresh_canary(&canary);
            let before = snapshot(&canary);
            let safe = tmp.path().join("safe");
            let _ = fs::remove_dir_all(&safe);
            let mut outcomes = Vec::new();
            for (l, t) in tars.iter().enumerate() {
                outcomes.push(unpack_into(t, &safe.join(l.to_string())).map_err(|e| e.to_string()));
            }
            assert_eq!(snapshot(&canary), before, "case {:?}: tfctl changed the canary ({outcomes:?})", case.name);
            for o in &outcomes {
                if let Err(msg) = o {
                    assert!(msg.contains("layer entry"), "case {:?}: unclear error {msg}", case.name);
                }
            }
            n += 1;
        }
        n
    };
    assert!(cases_checked >= 10);
}

#[test]
fn confined_writes_land_inside_the_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let canary = tmp.path().join("canary");
    fresh_canary(&canary);
    let tar = tmp.path().join("l.tar");
    let spec = serde_json::json!({ tar.display().to_string(): [
        {"name": "link", "type": "symlink", "target": canary.display().to_string()},
        {"name": format!("{}", canary.display()), "type": "dir"},
        {"name": "link/file", "type": "file", "data": "inside"},
        {"name": "../up", "type": "file", "data": "clamped"}
    ]});
    python(MAKE_TARS, &[&spec.to_string()]);
    let dir = tmp.path().join("layer");
    unpack_into(&tar, &dir).unwrap();
    // The absolute symlink resolved in the layer's own root: the write landed in the layer.
    let inside = dir.join(canary.strip_prefix("/").unwrap()).join("file");
    assert_eq!(fs::read_to_string(inside).unwrap(), "inside");
    assert_eq!(fs::read_to_string(dir.join("up")).unwrap(), "clamped");
    assert_eq!(fs::read_to_string(canary.join("file")).unwrap(), "original");
}

#[test]
fn unsafe_entries_fail_with_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, members, expect) in [
        ("whiteout of ..", serde_json::json!([{"name": "d/.wh...", "type": "file", "data": ""}]), "invalid whiteout"),
        ("raw overlay whiteout", serde_json::json!([{"name": "x", "type": "char", "major": 0, "minor": 0}]), "character device 0:0"),
        (
            "symlink loop",
            serde_json::json!([{"name": "a", "type": "symlink", "target": "b"}, {"name": "b", "type": "symlink", "target": "a"}, {"name": "a/x", "type": "file"}]),
            "a/x",
        ),
        ("hardlink to nothing", serde_json::json!([{"name": "h", "type": "hardlink", "target": "/etc/shadow"}]), "hard link"),
    ] {
        let tar = tmp.path().join("t.tar");
        python(MAKE_TARS, &[&serde_json::json!({ tar.display().to_string(): members }).to_string()]);
        let dir = tmp.path().join(format!("d-{}", name.replace(' ', "_")));
        let err = unpack_into(&tar, &dir).expect_err(name).to_string();
        assert!(err.contains(expect), "{name}: {err}");
    }
    // Garbage is not a layer.
    fs::write(tmp.path().join("junk"), b"\x1f\x8bnot gzip at all").unwrap();
    let err = unpack_into(&tmp.path().join("junk"), &tmp.path().join("junk-dir")).unwrap_err().to_string();
    assert!(err.contains("not a readable tar stream"), "{err}");
}

fn getxattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    rustix::fs::lgetxattr(p, name, &mut buf[..]).ok().map(|n| buf[..n].to_vec())
}

#[test]
fn well_formed_layer_keeps_what_the_image_says() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = tmp.path().join("l.tar");
    let spec = serde_json::json!({ tar.display().to_string(): [
        {"name": "bin/", "type": "dir", "mode": 0o755},
        {"name": "bin/su", "type": "file", "data": "su", "mode": 0o4755},
        {"name": "bin/ping", "type": "file", "data": "p", "mode": 0o755,
         "xattrs": {"security.capability": "\u{1}\u{0}\u{0}\u{2}\u{0}\u{20}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}", "user.note": "kept", "trusted.overlay.opaque": "y", "trusted.evil": "x"}},
        {"name": "bin/sh", "type": "hardlink", "target": "bin/su"},
        {"name": "var/run", "type": "symlink", "target": "/run"},
        {"name": "dev/null", "type": "char", "major": 1, "minor": 3, "mode": 0o666},
        {"name": "etc/.wh.removed", "type": "file", "data": ""},
        {"name": "opt/.wh..wh..opq", "type": "file", "data": ""},
        {"name": "opt/new", "type": "file", "data": "n"}
    ]});
    python(MAKE_TARS, &[&spec.to_string()]);
    let dir = tmp.path().join("layer");
    let diff_id = unpack_into(&tar, &dir).unwrap();
    // The diff_id is the sha256 of the uncompressed stream.
    let sum = Command::new("sha256sum").arg(&tar).output().unwrap();
    assert_eq!(diff_id, format!("sha256:{}", String::from_utf8_lossy(&sum.stdout).split_whitespace().next().unwrap()));

    let su = fs::metadata(dir.join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!(su.mtime(), 1000000000);
    assert_eq!(su.nlink(), 2, "hardlink bin/sh shares the inode");
    assert_eq!(fs::read_link(dir.join("var/run")).unwrap(), Path::new("/run"), "absolute symlink kept verbatim");
    let null = fs::metadata(dir.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    let wh = fs::symlink_metadata(dir.join("etc/removed")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0, "whiteout is an overlay char 0:0");
    assert!(!dir.join("etc/.wh.removed").exists());
    assert_eq!(getxattr(&dir.join("opt"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert!(!dir.join("opt/.wh..wh..opq").exists());
    let ping = dir.join("bin/ping");
    assert_eq!(getxattr(&ping, "user.note").as_deref(), Some(&b"kept"[..]));
    assert!(getxattr(&ping, "security.capability").is_some(), "file capability kept");
    assert_eq!(getxattr(&ping, "trusted.overlay.opaque"), None, "overlay xattrs from a layer are dropped");
    assert_eq!(getxattr(&ping, "trusted.evil"), None);
}
