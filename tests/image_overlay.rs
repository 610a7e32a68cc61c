//! Overlay mounts of pulled images: 128 layers under a 100-character state root, whiteouts
//! and opaque directories honoured, mounted nodev.

#[path = "common/registry.rs"]
mod registry;

use std::fs;
use std::path::{Path, PathBuf};

use registry::{layer, Compression, TestImage};
use tfctl_runtime::image::{mount_overlay, ImageSource, NoProgress, OverlayOptions, PullOptions, Store};

/// A directory whose path is exactly `len` characters.
fn root_of_len(base: &Path, len: usize) -> PathBuf {
    let prefix = base.display().to_string().len() + 1;
    assert!(len > prefix + 1, "temp dir path too long");
    let p = base.join("r".repeat(len - prefix));
    fs::create_dir(&p).unwrap();
    assert_eq!(p.display().to_string().len(), len);
    p
}

/// Unmounts on drop, also when an assertion fails.
struct Mounted(Option<tfctl_runtime::image::OverlayMount>);
impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(m) = self.0.take() {
            let _ = m.unmount();
        }
    }
}

fn mount_options(target: &Path) -> String {
    let t = target.display().to_string();
    fs::read_to_string("/proc/self/mountinfo").unwrap().lines().find(|l| l.split(' ').nth(4) == Some(t.as_str())).unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn image_with_128_layers_mounts_under_a_long_root() {
    let tmp = tempfile::Builder::new().prefix("ovl").tempdir_in("/tmp").unwrap();
    let root = root_of_len(tmp.path(), 100);
    let mut layers = vec![layer(&[("base/", b""), ("gone", b"g"), ("opaque/", b""), ("opaque/old", b"o")], Compression::Gzip)];
    for i in 1..127 {
        let name = format!("f{i:03}");
        layers.push(layer(&[(name.as_str(), name.as_bytes()), ("shadowed", name.as_bytes())], Compression::None));
    }
    layers.push(layer(&[(".wh.gone", b""), ("opaque/.wh..wh..opq", b""), ("opaque/new", b"n")], Compression::Zstd));
    let image = TestImage::new(layers, "amd64", "/bin/true");
    let layout = tmp.path().join("layout");
    image.write_oci_layout(&layout, "many");

    let store = Store::open(&root).unwrap();
    let source = ImageSource::parse(&format!("oci:{}:many", layout.display()), Path::new("/")).unwrap();
    store.pull(&source, &PullOptions { auth_files: vec![], config_dir: None, ..Default::default() }, &NoProgress).await.unwrap();
    let img = store.resolve(&source).unwrap();
    assert_eq!(img.layers.len(), 128);
    let joined: usize = img.layers.iter().map(|l| l.display().to_string().len() + 1).sum();
    assert!(joined > 4096, "the lower paths together ({joined} bytes) exceed one page");

    let c = root.join("c");
    let (upper, work, target) = (c.join("u"), c.join("w"), c.join("m"));
    for d in [&upper, &work, &target] {
        fs::create_dir_all(d).unwrap();
    }
    let _lock = store.lock_shared().unwrap();
    let m = Mounted(Some(mount_overlay(&img.layers, Some((&upper, &work)), &target, &OverlayOptions::default()).unwrap()));
    assert_eq!(fs::read_to_string(target.join("f001")).unwrap(), "f001");
    assert_eq!(fs::read_to_string(target.join("f126")).unwrap(), "f126");
    assert_eq!(fs::read_to_string(target.join("shadowed")).unwrap(), "f126", "upper layers win");
    assert!(target.join("base").is_dir());
    assert!(!target.join("gone").exists(), "whiteout hides the lower file");
    assert!(!target.join("opaque/old").exists(), "opaque directory hides lower content");
    assert!(target.join("opaque/new").exists());
    let info = mount_options(&target);
    assert!(info.contains("nodev"), "mounted nodev: {info}");
    // The layers are named by short links: mountinfo shows no host path (and on kernels before
    // 6.8, forced here with TFCTL_FORCE_LEGACY_MOUNT=1, 128 names fit mount(2)'s one page).
    let options = info.rsplit(" - ").next().unwrap_or("");
    assert!(!options.contains(&*root.display().to_string()), "host paths in mountinfo: {info}");
    assert!(options.contains("upperdir=u,workdir=w"), "{info}");
    let legacy = std::env::var_os("TFCTL_FORCE_LEGACY_MOUNT").is_some_and(|v| v == "1");
    let route = if legacy { "lowerdir=0:1:2:" } else { "lowerdir+=0,lowerdir+=1," };
    assert!(options.contains(route), "expected {route}: {info}");
    // Writes go to the container's upper dir, never into a layer.
    fs::write(target.join("f001"), "changed").unwrap();
    assert_eq!(fs::read_to_string(upper.join("f001")).unwrap(), "changed");
    assert_eq!(fs::read_to_string(img.layers[1].join("f001")).unwrap(), "f001");
    drop(m);
    assert!(mount_options(&target).is_empty(), "unmounted");
}
