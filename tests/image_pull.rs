//! Pulls from a real registry (Debian's docker-registry on loopback) and from local sources.

#[path = "common/registry.rs"]
mod registry;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use registry::{Registry, RegistryOptions, TestImage};
use tfctl_runtime::image::{ImageError, ImageSource, NoProgress, PullOptions, Store};

fn opts(reg: &Registry, insecure: bool) -> PullOptions {
    PullOptions {
        insecure_registries: if insecure { vec![reg.addr.clone()] } else { vec![] },
        config_dir: None,
        auth_files: vec![],
        ..Default::default()
    }
}

fn src(s: &str) -> ImageSource {
    ImageSource::parse(s, Path::new("/")).unwrap()
}

fn blob_files(root: &Path) -> usize {
    fs::read_dir(root.join("blobs/sha256")).unwrap().count()
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_repull_and_concurrent_pulls() {
    let reg = Registry::start(RegistryOptions::default());
    let image = TestImage::busybox("one");
    reg.push("test/busybox", "v1", &image).await;
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let name = format!("{}/test/busybox:v1", reg.addr);
    let o = opts(&reg, true);

    let pulled = store.pull(&src(&name), &o, &NoProgress).await.unwrap();
    assert_eq!(pulled.downloaded_blobs, 4, "config + 3 layers");
    assert_eq!(pulled.unpacked_layers, 3);
    let img = store.resolve(&src(&name)).unwrap();
    assert_eq!(img.layers.len(), 3);
    assert_eq!(img.config.config().as_ref().unwrap().cmd().as_ref().unwrap(), &vec!["/bin/sh".to_string()]);
    // Layer contents as overlayfs will need them.
    assert!(img.layers[0].join("bin/busybox").is_file());
    assert_eq!(fs::read_link(img.layers[0].join("var/run")).unwrap(), Path::new("/run"));
    let wh = fs::symlink_metadata(img.layers[1].join("etc/removed")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert_eq!(fs::read(img.layers[2].join("marker")).unwrap(), b"one");

    // Re-pull: one manifest request, no blob download.
    let (manifests, blobs) = (reg.count_requests("GET", "/manifests/"), reg.count_requests("GET", "/blobs/"));
    let again = store.pull(&src(&name), &o, &NoProgress).await.unwrap();
    assert_eq!(again.downloaded_blobs, 0);
    assert_eq!(reg.count_requests("GET", "/manifests/") - manifests, 1, "{}", fs::read_to_string(&reg.log).unwrap());
    assert_eq!(reg.count_requests("GET", "/blobs/") - blobs, 0);

    // Two concurrent pulls of a new image into one store: both succeed, each blob stored once.
    let second = TestImage::busybox("two");
    reg.push("test/busybox", "v2", &second).await;
    let name2 = format!("{}/test/busybox:v2", reg.addr);
    let before = blob_files(state.path());
    let s2 = src(&name2);
    let (a, b) = tokio::join!(store.pull(&s2, &o, &NoProgress), store.pull(&s2, &o, &NoProgress));
    a.unwrap();
    b.unwrap();
    // New: manifest, config, top layer (base and middle layers are shared with v1).
    assert_eq!(blob_files(state.path()) - before, 3);
    assert_eq!(fs::read(store.resolve(&src(&name2)).unwrap().layers[2].join("marker")).unwrap(), b"two");
    assert_eq!(fs::read_dir(state.path().join("tmp/images")).unwrap().count(), 0, "no temporary files left");

    // rm keeps shared layers, prune of everything removes the rest.
    let lock = store.lock_exclusive().unwrap();
    store.remove(&src(&name).to_string()).unwrap();
    assert!(store.resolve(&src(&name2)).is_ok());
    store.prune(&Default::default()).unwrap();
    drop(lock);
    assert_eq!(blob_files(state.path()), 0);
    assert_eq!(fs::read_dir(state.path().join("layers")).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_arch_index_picks_the_host_platform() {
    let reg = Registry::start(RegistryOptions::default());
    let amd = TestImage::busybox("amd64");
    let mut arm = TestImage::busybox("arm64");
    arm = TestImage::new(arm.layers.drain(..).collect(), "arm64", "/bin/arm");
    let da = reg.push("test/multi", "amd64", &amd).await;
    let db = reg.push("test/multi", "arm64", &arm).await;
    let sa = reg.manifest_size("test/multi", &da).await;
    let sb = reg.manifest_size("test/multi", &db).await;
    reg.push_index("test/multi", "latest", &[(db.clone(), sb, "arm64"), (da.clone(), sa, "amd64")]).await;
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let name = format!("{}/test/multi", reg.addr);
    let pulled = store.pull(&src(&name), &opts(&reg, true), &NoProgress).await.unwrap();
    assert_eq!(pulled.record.manifest_digest, da, "amd64 manifest chosen on this host");
    let img = store.resolve(&src(&name)).unwrap();
    assert_eq!(fs::read(img.layers[2].join("marker")).unwrap(), b"amd64");
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupted_blob_is_rejected_and_nothing_is_stored() {
    let reg = Registry::start(RegistryOptions::default());
    let image = TestImage::busybox("x");
    reg.push("test/bad", "v1", &image).await;
    let top = &image.layers[2].blob;
    let data = reg.blob_data(&registry::sha256(top));
    let mut bytes = fs::read(&data).unwrap();
    bytes[0] ^= 0xff;
    fs::write(&data, bytes).unwrap();
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let err = store.pull(&src(&format!("{}/test/bad:v1", reg.addr)), &opts(&reg, true), &NoProgress).await.unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("does not match its digest"), "{err}");
    assert!(!store.has_blob(&registry::sha256(top)));
    assert!(store.list().unwrap().is_empty());
    assert_eq!(fs::read_dir(state.path().join("tmp/images")).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_right_wrong_and_missing() {
    let reg = Registry::start(RegistryOptions { basic_auth: Some(("alice".into(), "s3cret-pw".into())), ..Default::default() });
    reg.push("test/private", "v1", &TestImage::busybox("p")).await;
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let name = format!("{}/test/private:v1", reg.addr);
    let auth_file = state.path().join("auth.json");
    let mut o = opts(&reg, true);
    o.auth_files = vec![auth_file.clone()];

    let err = store.pull(&src(&name), &o, &NoProgress).await.unwrap_err().to_string();
    assert!(err.contains(&reg.addr) && err.contains("tfctl login"), "{err}");

    let wrong = tfctl_runtime::image::Credentials { username: "alice".into(), password: "wrong-pw-123".into() };
    tfctl_runtime::image::login(&reg.addr, &wrong, &auth_file).unwrap();
    let err = store.pull(&src(&name), &o, &NoProgress).await.unwrap_err().to_string();
    assert!(err.contains(&reg.addr) && err.contains("refused the credentials") && err.contains("tfctl login"), "{err}");
    assert!(!err.contains("wrong-pw-123"), "password leaked: {err}");

    let right = tfctl_runtime::image::Credentials { username: "alice".into(), password: "s3cret-pw".into() };
    tfctl_runtime::image::login(&reg.addr, &right, &auth_file).unwrap();
    assert_eq!(fs::metadata(&auth_file).unwrap().mode() & 0o777, 0o600);
    store.pull(&src(&name), &o, &NoProgress).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_private_ca_and_insecure_rules() {
    let reg = Registry::start(RegistryOptions { tls: true, ..Default::default() });
    reg.push("test/tls", "v1", &TestImage::busybox("t")).await;
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let name = format!("{}/test/tls:v1", reg.addr);
    // Unknown CA: refused, with the fix in the message.
    let err = store.pull(&src(&name), &opts(&reg, false), &NoProgress).await.unwrap_err().to_string();
    assert!(err.contains("certs.d"), "{err}");
    // The CA in <config>/certs.d/HOST:PORT/ca.crt: trusted.
    let config = state.path().join("config");
    fs::create_dir_all(config.join("certs.d").join(&reg.addr)).unwrap();
    fs::copy(reg.ca.as_ref().unwrap(), config.join("certs.d").join(&reg.addr).join("ca.crt")).unwrap();
    let mut o = opts(&reg, false);
    o.config_dir = Some(config);
    store.pull(&src(&name), &o, &NoProgress).await.unwrap();

    // A plain-HTTP registry on loopback is not insecure unless listed.
    let plain = Registry::start(RegistryOptions::default());
    plain.push("test/plain", "v1", &TestImage::busybox("h")).await;
    let pname = format!("{}/test/plain:v1", plain.addr);
    let err = store.pull(&src(&pname), &opts(&plain, false), &NoProgress).await.unwrap_err();
    assert!(matches!(err, ImageError::Connect { .. }), "{err}");
    store.pull(&src(&pname), &opts(&plain, true), &NoProgress).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_pull_refetches_only_incomplete_blobs() {
    let reg = Registry::start(RegistryOptions::default());
    let image = TestImage::busybox("r");
    reg.push("test/resume", "v1", &image).await;
    let state = tempfile::tempdir().unwrap();
    let name = format!("{}/test/resume:v1", reg.addr);
    let store = Store::open(state.path()).unwrap();
    store.pull(&src(&name), &opts(&reg, true), &NoProgress).await.unwrap();
    // Make the store look like a pull killed while downloading the base layer: its blob and
    // layer are missing, a half-written download (whose writer is dead, so its flock is free)
    // is left in the temporary folder, and the image was never recorded.
    let base = registry::sha256(&image.layers[0].blob);
    let diff = registry::sha256(&image.layers[0].tar);
    fs::remove_file(store.blob_path(&base)).unwrap();
    fs::remove_dir_all(store.layer_dir(&diff)).unwrap();
    let tmp = state.path().join("tmp/images");
    fs::write(tmp.join("blob-dead-XXXX"), &image.layers[0].blob[..1000]).unwrap();
    fs::write(tmp.join("blob-dead-XXXX.lock"), b"").unwrap();
    let lock = store.lock_exclusive().unwrap();
    let idx = state.path().join("images/index.json");
    fs::write(&idx, r#"{"schema":1,"images":{}}"#).unwrap();
    drop(lock);

    let blobs = reg.count_requests("GET", "/blobs/");
    let pulled = store.pull(&src(&name), &opts(&reg, true), &NoProgress).await.unwrap();
    assert_eq!(pulled.downloaded_blobs, 1);
    assert_eq!(reg.count_requests("GET", "/blobs/") - blobs, 1, "only the incomplete blob is fetched");
    assert_eq!(reg.count_requests("GET", &format!("/blobs/{base}")), 2);
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0, "stale temporary files cleaned");
    assert!(store.resolve(&src(&name)).unwrap().layers[0].join("bin/busybox").is_file());
}

fn skopeo(args: &[&str]) {
    let out = std::process::Command::new("skopeo").args(args).output().unwrap();
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn local_sources_need_no_network() {
    let reg = Registry::start(RegistryOptions::default());
    reg.push("test/local", "v1", &TestImage::busybox("local")).await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let from = format!("docker://{}/test/local:v1", reg.addr);
    skopeo(&["copy", "--src-tls-verify=false", &from, &format!("oci:{}:v1", w.join("layout").display())]);
    skopeo(&["copy", "--src-tls-verify=false", &from, &format!("oci-archive:{}:v1", w.join("img.tar").display())]);
    drop(reg); // From here on, no registry exists.

    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let o = PullOptions { auth_files: vec![], config_dir: None, ..Default::default() };
    for s in ["oci:layout:v1", "oci:layout", "oci-archive:img.tar:v1"] {
        let source = ImageSource::parse(s, w).unwrap();
        store.pull(&source, &o, &NoProgress).await.unwrap_or_else(|e| panic!("{s}: {e}"));
        let img = store.resolve(&source).unwrap();
        assert_eq!(fs::read(img.layers[2].join("marker")).unwrap(), b"local", "{s}");
    }
    let err = store.pull(&ImageSource::parse("oci:layout:nope", w).unwrap(), &o, &NoProgress).await.unwrap_err().to_string();
    assert!(err.contains("v1"), "lists the tags: {err}");

    // docker-archive with two images: REF picks one, none is an error listing both.
    let save = w.join("save");
    fs::create_dir(&save).unwrap();
    let a = TestImage::busybox("first").write_docker_save(&save, &["example/first:1"]);
    let b = TestImage::busybox("second").write_docker_save(&save, &["example/second:2"]);
    fs::write(save.join("manifest.json"), serde_json::to_vec(&serde_json::json!([a, b])).unwrap()).unwrap();
    let tar = w.join("save.tar");
    let st = std::process::Command::new("tar").arg("-C").arg(&save).arg("-cf").arg(&tar).arg(".").status().unwrap();
    assert!(st.success());
    let source = ImageSource::parse("docker-archive:save.tar:example/second:2", w).unwrap();
    store.pull(&source, &o, &NoProgress).await.unwrap();
    assert_eq!(fs::read(store.resolve(&source).unwrap().layers[2].join("marker")).unwrap(), b"second");
    let err = store.pull(&ImageSource::parse("docker-archive:save.tar", w).unwrap(), &o, &NoProgress).await.unwrap_err().to_string();
    assert!(err.contains("docker.io/example/first:1") || err.contains("example/first:1"), "{err}");
    assert!(err.contains("example/second:2"), "{err}");
    let _ = PathBuf::new();
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_auth() {
    let reg = Registry::start(RegistryOptions { token_auth: Some(("bob".into(), "tok-pw".into())), ..Default::default() });
    reg.push("test/token", "v1", &TestImage::busybox("tok")).await;
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let name = format!("{}/test/token:v1", reg.addr);
    let auth_file = state.path().join("auth.json");
    let mut o = opts(&reg, true);
    o.auth_files = vec![auth_file.clone()];
    let err = store.pull(&src(&name), &o, &NoProgress).await.unwrap_err().to_string();
    assert!(err.contains(&reg.addr) && err.contains("tfctl login"), "anonymous: {err}");
    let wrong = tfctl_runtime::image::Credentials { username: "bob".into(), password: "nope-pw-9".into() };
    tfctl_runtime::image::login(&reg.addr, &wrong, &auth_file).unwrap();
    let err = store.pull(&src(&name), &o, &NoProgress).await.unwrap_err().to_string();
    assert!(err.contains("refused the credentials") && !err.contains("nope-pw-9"), "{err}");
    let right = tfctl_runtime::image::Credentials { username: "bob".into(), password: "tok-pw".into() };
    tfctl_runtime::image::login(&reg.addr, &right, &auth_file).unwrap();
    let pulled = store.pull(&src(&name), &o, &NoProgress).await.unwrap();
    assert_eq!(pulled.downloaded_blobs, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_v2_manifest_list_and_manifest() {
    let reg = Registry::start(RegistryOptions::default());
    // Docker layers are gzip or plain tar; the busybox image's zstd layer is left out.
    let mut image = TestImage::busybox("docker");
    image.layers.remove(1);
    let image = TestImage::new(image.layers, "amd64", "/bin/sh");
    let md = reg.push_docker_v2("test/docker", "v2", &image, "amd64").await;
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let name = format!("{}/test/docker:v2", reg.addr);
    let pulled = store.pull(&src(&name), &opts(&reg, true), &NoProgress).await.unwrap();
    assert_eq!(pulled.record.manifest_digest, md);
    assert_ne!(pulled.record.top_digest, md, "the tag names a manifest list");
    let img = store.resolve(&src(&name)).unwrap();
    assert_eq!(fs::read(img.layers[1].join("marker")).unwrap(), b"docker");
    // By digest too.
    let by_digest = format!("{}/test/docker@{md}", reg.addr);
    store.pull(&src(&by_digest), &opts(&reg, true), &NoProgress).await.unwrap();
}
