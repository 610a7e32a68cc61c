//! Image behaviour a user sees through the `tfctl` binary: wrong credentials, `tfctl pull`
//! killed with SIGKILL in the middle of a layer, and two `tfctl pull` processes at once.

mod common;
#[path = "common/registry.rs"]
mod registry;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{stderr, stdout, Tfctl};
use registry::{Registry, RegistryOptions, TestImage, ThrottleProxy};

/// A tfctl command whose credentials live only in the test's own auth file.
fn cmd(t: &Tfctl, auth: &Path) -> Command {
    let mut c = t.cmd();
    // Wide enough that messages are not wrapped.
    c.env("REGISTRY_AUTH_FILE", auth).env("HOME", t.root.path()).env_remove("DOCKER_CONFIG").env("COLUMNS", "500");
    c
}

fn login(t: &Tfctl, auth: &Path, registry: &str, user: &str, password: &str) -> Output {
    let mut child = cmd(t, auth)
        .args(["login", "--username", user, "--password-stdin", registry])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_fail_with_the_registry_and_the_fix() {
    let reg = Registry::start(RegistryOptions { basic_auth: Some(("carol".into(), "right-pass-1".into())), ..Default::default() });
    reg.push("team/secret", "v1", &TestImage::busybox("s")).await;
    let t = Tfctl::new();
    let auth = t.root.path().join("auth.json");
    let reference = format!("{}/team/secret:v1", reg.addr);

    let o = login(&t, &auth, &reg.addr, "carol", "wrong-pass-7");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(fs::metadata(&auth).unwrap().permissions().mode() & 0o777, 0o600, "auth file is 0600");
    let o = cmd(&t, &auth).args(["pull", "--insecure-registry", &reg.addr, &reference]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&reg.addr), "names the registry: {err}");
    assert!(err.contains(&format!("tfctl login {}", reg.addr)), "says how to fix it: {err}");
    assert!(!err.contains("wrong-pass-7") && !stdout(&o).contains("wrong-pass-7"), "password leaked: {err}");

    let o = login(&t, &auth, &reg.addr, "carol", "right-pass-1");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = cmd(&t, &auth).args(["--verbose", "pull", "--insecure-registry", &reg.addr, &reference]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("right-pass-1") && !stdout(&o).contains("right-pass-1"));
    let state = fs::read_to_string(t.root.path().join("state/images/index.json")).unwrap();
    assert!(!state.contains("right-pass-1"), "credentials in the image index");

    let o = cmd(&t, &auth).args(["logout", &reg.addr]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!fs::read_to_string(&auth).unwrap().contains(&reg.addr));
}

fn blob_gets(reg: &Registry, image: &TestImage) -> Vec<usize> {
    image.layers.iter().map(|l| reg.count_requests("GET", &registry::sha256(&l.blob))).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_of_tfctl_pull_mid_layer_then_only_incomplete_blobs_are_fetched() {
    let reg = Registry::start(RegistryOptions::default());
    let image = registry::image_with_a_big_middle_layer();
    reg.push("team/kill", "v1", &image).await;
    let proxy = ThrottleProxy::start(&reg.addr, 1_000_000);
    let t = Tfctl::new();
    let auth = t.root.path().join("auth.json");
    let state = t.root.path().join("state");
    let tmp = state.join("tmp/images");

    let mut child = cmd(&t, &auth)
        .args(["pull", "--quiet", "--insecure-registry", &proxy.addr, &format!("{}/team/kill:v1", proxy.addr)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let big_hex = registry::sha256(&image.layers[1].blob)[7..19].to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let partial = fs::read_dir(&tmp).ok().into_iter().flatten().flatten().any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&format!("blob-{big_hex}")) && !n.ends_with(".lock") && e.metadata().is_ok_and(|m| m.len() > 100_000)
        });
        if partial {
            break;
        }
        assert!(Instant::now() < deadline, "the big download never started");
        assert!(child.try_wait().unwrap().is_none(), "tfctl pull ended before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();

    let present = |d: &str| state.join("blobs/sha256").join(&d[7..]).is_file();
    let missing: Vec<String> = image.layers.iter().map(|l| registry::sha256(&l.blob)).filter(|d| !present(d)).collect();
    assert!(missing.contains(&registry::sha256(&image.layers[1].blob)), "a partial blob entered the store");
    assert!(fs::read_dir(&tmp).unwrap().count() > 0);

    let before = blob_gets(&reg, &image);
    let reference = format!("{}/team/kill:v1", reg.addr);
    let o = cmd(&t, &auth).args(["pull", "--insecure-registry", &reg.addr, &reference]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let fetched: Vec<String> = image
        .layers
        .iter()
        .zip(before.iter().zip(blob_gets(&reg, &image)))
        .filter(|(_, (b, a))| a > b)
        .map(|(l, _)| registry::sha256(&l.blob))
        .collect();
    assert_eq!(fetched, missing, "only the incomplete blobs were fetched again");
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0, "the killed pull's temporary files were removed");
    let o = cmd(&t, &auth).args(["images", "--format", "json"]).output().unwrap();
    assert!(stdout(&o).contains(&reference), "{}", stdout(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_tfctl_pulls_of_one_image_at_once_both_succeed() {
    let reg = Registry::start(RegistryOptions::default());
    let image = TestImage::busybox("both");
    reg.push("team/twice", "v1", &image).await;
    let t = Tfctl::new();
    let auth = t.root.path().join("auth.json");
    let reference = format!("{}/team/twice:v1", reg.addr);
    let spawn = || {
        cmd(&t, &auth)
            .args(["pull", "--quiet", "--insecure-registry", &reg.addr, &reference])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for o in [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()] {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    // Manifest, config and three layers: each blob stored once.
    let blobs = fs::read_dir(t.root.path().join("state/blobs/sha256")).unwrap().count();
    assert_eq!(blobs, 5);
    assert_eq!(fs::read_dir(t.root.path().join("state/layers")).unwrap().count(), 3);
    assert_eq!(fs::read_dir(t.root.path().join("state/tmp/images")).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn credential_helper_supplies_the_password() {
    let reg = Registry::start(RegistryOptions { basic_auth: Some(("dave".into(), "helper-pass-3".into())), ..Default::default() });
    reg.push("team/helped", "v1", &TestImage::busybox("h")).await;
    let t = Tfctl::new();
    // A docker-credential-* helper that knows only this registry, found on PATH.
    let bin = t.root.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let helper = format!("tfctltest{}", std::process::id());
    let script = bin.join(format!("docker-credential-{helper}"));
    fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\nif [ \"$server\" = \"{}\" ]; then echo '{{\"ServerURL\":\"'$server'\",\"Username\":\"dave\",\"Secret\":\"helper-pass-3\"}}'; else echo 'credentials not found in native keychain'; exit 1; fi\n",
            reg.addr
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let auth = t.root.path().join("auth.json");
    fs::write(&auth, serde_json::json!({"credHelpers": {reg.addr.clone(): helper}}).to_string()).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let reference = format!("{}/team/helped:v1", reg.addr);
    let o = cmd(&t, &auth).env("PATH", &path).args(["pull", "--insecure-registry", &reg.addr, &reference]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // A helper that is not installed: a clear error naming the registry and the helper.
    fs::write(&auth, serde_json::json!({"credHelpers": {reg.addr.clone(): "tfctl-missing-helper"}}).to_string()).unwrap();
    let o = cmd(&t, &auth).args(["pull", "--insecure-registry", &reg.addr, &reference]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("docker-credential-tfctl-missing-helper") && stderr(&o).contains(&reg.addr), "{}", stderr(&o));
}
