//! Store behaviour under failure and contention: a pull killed with SIGKILL in the middle of a
//! layer, and prune racing a container creation.

#[path = "common/registry.rs"]
mod registry;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use registry::{layer, Compression, Registry, RegistryOptions, TestImage, ThrottleProxy};
use tfctl_runtime::image::{ImageSource, NoProgress, PullOptions, Store};

fn opts(insecure: &str) -> PullOptions {
    PullOptions { insecure_registries: vec![insecure.into()], config_dir: None, auth_files: vec![], ..Default::default() }
}

/// Run only as the child of `sigkill_mid_layer_then_pull_fetches_only_incomplete_blobs`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "helper process of sigkill_mid_layer_then_pull_fetches_only_incomplete_blobs"]
async fn pull_child_helper() {
    let (Ok(root), Ok(reference), Ok(insecure)) =
        (std::env::var("TFCTL_TEST_ROOT"), std::env::var("TFCTL_TEST_REF"), std::env::var("TFCTL_TEST_INSECURE"))
    else {
        // Run directly (e.g. --include-ignored): nothing to do, the parent test drives it.
        eprintln!("pull_child_helper: only meaningful as the child of sigkill_mid_layer_then_pull_fetches_only_incomplete_blobs");
        return;
    };
    let store = Store::open(Path::new(&root)).unwrap();
    let source = ImageSource::parse(&reference, Path::new("/")).unwrap();
    store.pull(&source, &opts(&insecure), &NoProgress).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_layer_then_pull_fetches_only_incomplete_blobs() {
    let reg = Registry::start(RegistryOptions::default());
    // Small layers finish quickly; the big incompressible one is still streaming when killed.
    let image = registry::image_with_a_big_middle_layer();
    reg.push("test/kill", "v1", &image).await;
    let proxy = ThrottleProxy::start(&reg.addr, 1_000_000);
    let state = tempfile::tempdir().unwrap();
    let tmp = state.path().join("tmp/images");
    let reference = format!("{}/test/kill:v1", proxy.addr);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "pull_child_helper", "--ignored", "--nocapture", "--test-threads=1"])
        .env("TFCTL_TEST_ROOT", state.path())
        .env("TFCTL_TEST_REF", &reference)
        .env("TFCTL_TEST_INSECURE", &proxy.addr)
        .spawn()
        .unwrap();
    // Wait until the big layer's download has started writing, then SIGKILL the puller.
    let big_digest = registry::sha256(&image.layers[1].blob);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let partial = fs::read_dir(&tmp).ok().into_iter().flatten().flatten().any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&format!("blob-{}", &big_digest[7..19])) && !n.ends_with(".lock") && e.metadata().is_ok_and(|m| m.len() > 100_000)
        });
        if partial {
            break;
        }
        assert!(Instant::now() < deadline, "the big download never started");
        assert!(child.try_wait().unwrap().is_none(), "the pull finished before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();

    let store = Store::open(state.path()).unwrap();
    assert!(!store.has_blob(&big_digest), "a partial blob never enters the store");
    assert!(fs::read_dir(&tmp).unwrap().count() > 0, "the killed pull left its temporary files");
    let missing: Vec<String> = image.layers.iter().map(|l| registry::sha256(&l.blob)).filter(|d| !store.has_blob(d)).collect();
    assert!(missing.contains(&big_digest));
    assert!(missing.len() < 3, "some small blobs completed before the kill: {missing:?}");

    // The next pull (straight to the registry) cleans up and fetches only what is missing.
    let direct = ImageSource::parse(&format!("{}/test/kill:v1", reg.addr), Path::new("/")).unwrap();
    let before: Vec<usize> = image.layers.iter().map(|l| reg.count_requests("GET", &registry::sha256(&l.blob))).collect();
    let pulled = store.pull(&direct, &opts(&reg.addr), &NoProgress).await.unwrap();
    let fetched: Vec<String> = image
        .layers
        .iter()
        .zip(before)
        .filter(|(l, b)| reg.count_requests("GET", &registry::sha256(&l.blob)) > *b)
        .map(|(l, _)| registry::sha256(&l.blob))
        .collect();
    assert_eq!(fetched, missing, "only incomplete blobs are fetched again");
    // The config is fetched before any layer, so the killed pull had already stored it.
    assert_eq!(pulled.downloaded_blobs, missing.len());
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0, "stale temporary files removed");
    assert_eq!(fs::read(store.resolve(&direct).unwrap().layers[1].join("big")).unwrap(), registry::big_layer_file());
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_waits_for_a_container_creation_in_progress() {
    let state = tempfile::tempdir().unwrap();
    let layout = state.path().join("layout");
    TestImage::new(vec![layer(&[("f", b"x")], Compression::Gzip)], "amd64", "/bin/true").write_oci_layout(&layout, "v1");
    let store = Store::open(&state.path().join("root")).unwrap();
    let source = ImageSource::parse(&format!("oci:{}:v1", layout.display()), Path::new("/")).unwrap();
    store.pull(&source, &opts("none"), &NoProgress).await.unwrap();

    // A container creation: shared lock, resolve, use the layers.
    let creation = store.lock_shared().unwrap();
    let image = store.resolve(&source).unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let pruner = {
        let store = store.clone();
        std::thread::spawn(move || {
            let _lock = store.lock_exclusive().unwrap();
            let r = store.prune(&Default::default()).unwrap();
            done_tx.send(()).unwrap();
            r
        })
    };
    // While the creation holds its lock, prune cannot have removed anything.
    assert!(done_rx.recv_timeout(Duration::from_millis(300)).is_err(), "prune ran during a container creation");
    assert!(image.layers[0].join("f").is_file());
    drop(creation);
    let (removed, gc) = pruner.join().unwrap();
    assert_eq!(removed, vec![source.to_string()]);
    assert_eq!(gc.layers, 1);
    assert!(!image.layers[0].exists());
}
