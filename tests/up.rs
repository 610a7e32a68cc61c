//! `tfctl up --wait`, `ps` and `down` of whole apps, each test in a network namespace of its
//! own: samples come up and answer, failures and timeouts give their exit codes, and `down`
//! leaves the namespace's links and ruleset as they were.

mod common;

use common::{repo, sample_image, stderr, stdout, NetNs, Tfctl};

fn snapshot(ns: &NetNs) -> (String, String) {
    let links = stdout(&ns.sh("ip -o link | sed 's/^[0-9]*: //'"));
    let rules = stdout(&ns.sh("nft list ruleset"));
    (links, rules)
}

fn write_app(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("app.kdl");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn every_sample_comes_up_answers_and_goes_down_cleanly() {
    sample_image();
    let ns = NetNs::new("samples");
    let before = snapshot(&ns);
    let t = Tfctl::new();
    for (sample, port) in [("web", Some(8080)), ("three-tier", Some(8080)), ("fixture", None)] {
        let file = repo().join(format!("samples/{sample}.kdl"));
        let file = file.to_str().unwrap();
        let o = t.run_in(&ns, &["up", "--wait=60s", file]);
        assert_eq!(o.status.code(), Some(0), "{sample}: {}", stderr(&o));
        let o = t.run_in(&ns, &["ps", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["schema"], 1);
        let app = v["apps"].as_array().unwrap().iter().find(|a| a["name"] == sample).expect("ps lists the app");
        assert!(app["supervisor"]["pid"].as_u64().unwrap() > 0);
        if let Some(port) = port {
            let page = ns.sh(&format!("wget -qO- -T 5 http://127.0.0.1:{port}/"));
            assert!(stdout(&page).contains("hello from tfctl"), "{sample}: {}", stderr(&page));
        }
        let o = t.run_in(&ns, &["down", file]);
        assert_eq!(o.status.code(), Some(0), "{sample}: {}", stderr(&o));
        assert_eq!(snapshot(&ns), before, "{sample}: down left links or rules behind");
        // down is idempotent.
        assert_eq!(t.run_in(&ns, &["down", file]).status.code(), Some(0));
    }
    assert!(common::mounts_under(t.root.path()).is_empty());
}

#[test]
fn wait_reports_a_failed_task_with_3_and_a_timeout_with_4() {
    sample_image();
    let ns = NetNs::new("wait");
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    let image = format!("oci:{}", repo().join("samples/images/busybox").display());
    let file = write_app(
        dir.path(),
        &format!("app \"tasks\"\ncontainer \"migrate\" {{\n image \"{image}\"\n command \"sh\" \"-c\" \"exit 3\"\n one-shot\n}}\n"),
    );
    let o = t.run_in(&ns, &["up", "--trust-file", "--wait=30s", &file]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("migrate") && stderr(&o).contains("status 3"), "{}", stderr(&o));
    assert_eq!(t.run_in(&ns, &["down", &file]).status.code(), Some(0));

    let file = write_app(
        dir.path(),
        &format!(
            "app \"slow\"\ncontainer \"web\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n init\n health {{\n  tcp 9\n  interval \"200ms\"\n  retries 1000\n }}\n}}\n"
        ),
    );
    let o = t.run_in(&ns, &["up", "--trust-file", "--wait=2s", &file]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    // The app keeps running after the timeout: down is the caller's job.
    let o = t.run_in(&ns, &["ps", "slow", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["apps"][0]["containers"][0]["state"], "running");
    assert_eq!(t.run_in(&ns, &["down", "slow"]).status.code(), Some(0));
}

#[test]
fn an_app_file_others_can_edit_is_refused() {
    sample_image();
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    let file = write_app(dir.path(), "app \"x\"\ncontainer \"c\" { image \"busybox\"; }\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = t.run(&["up", "--wait", &file]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("writable by group or others") && stderr(&o).contains("--trust-file"), "{}", stderr(&o));
}
