//! `tfctl pull` and `tfctl images` through the binary: a real registry on loopback and a local
//! OCI layout, re-pulls that download nothing, JSON listings, inspect, rm and prune.

mod common;
#[path = "common/registry.rs"]
mod registry;

use common::{stderr, stdout, Tfctl};
use registry::{Registry, RegistryOptions, TestImage};

#[tokio::test(flavor = "multi_thread")]
async fn pull_from_a_registry_and_list_inspect_remove() {
    let reg = Registry::start(RegistryOptions::default());
    reg.push("team/app", "v1", &TestImage::busybox("one")).await;
    let t = Tfctl::new();
    let reference = format!("{}/team/app:v1", reg.addr);

    // Plain HTTP is refused unless the registry is listed as insecure.
    let o = t.run(&["pull", "--quiet", &reference]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(&reg.addr), "the error names the registry: {}", stderr(&o));

    let o = t.run(&["pull", "--insecure-registry", &reg.addr, &reference]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with(&format!("{reference} sha256:")), "{}", stdout(&o));
    let gets = reg.count_requests("GET", "/blobs/");

    let o = t.run(&["pull", "--format", "json", "--insecure-registry", &reg.addr, &reference]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(reg.count_requests("GET", "/blobs/"), gets, "a re-pull downloaded blobs");
    let done = stdout(&o).lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).find(|v| v["event"] == "done");
    assert_eq!(done.expect("a done event")["downloaded"], 0);

    let o = t.run(&["images", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["images"][0]["name"], reference.as_str());
    assert_eq!(v["images"][0]["layers"], 3);

    let o = t.run(&["images", "inspect", &reference]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["config"]["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);

    let o = t.run(&["images", "rm", &reference]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = t.run(&["images", "inspect", &reference]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("tfctl pull"), "{}", stderr(&o));
    let blobs = std::fs::read_dir(t.root.path().join("state/blobs/sha256")).unwrap().count();
    assert_eq!(blobs, 0, "removing the only image left its blobs");
}

#[test]
fn pull_every_image_of_an_app_file_from_a_local_layout() {
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("images/busybox");
    let ok = std::process::Command::new("python3")
        .arg(common::repo().join("scripts/busybox-image.py"))
        .arg(&layout)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let app = dir.path().join("app.kdl");
    std::fs::write(&app, "app \"local\"\ncontainer \"a\" { image \"oci:images/busybox\"; }\ncontainer \"b\" { image \"oci:images/busybox:latest\"; }\n").unwrap();
    let o = t.run(&["pull", app.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = t.run(&["images", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<_> = v["images"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect();
    assert!(names.iter().any(|n| n == &format!("oci:{}", layout.display())), "{names:?}");
    // prune keeps nothing no container uses
    let o = t.run(&["images", "prune"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = t.run(&["images", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["images"].as_array().unwrap().len(), 0);
}

#[test]
fn a_bad_reference_is_a_usage_error() {
    let t = Tfctl::new();
    let o = t.run(&["pull", "UPPER/Case:tag"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid image reference"), "{}", stderr(&o));
}
