//! Host modes (`privileged`, `network "host"`, `pid "host"`, `device`) are explicit and loud:
//! `tfctl check` warns for each container that has any, naming them, without failing; `ps`
//! names them for each container, in its text and in its JSON (`host_modes`). Each test in its
//! own state root (and network namespace when it runs an app).

mod common;

use common::{stderr, stdout, Tfctl, World};

fn warnings(o: &std::process::Output) -> Vec<String> {
    stderr(o).lines().filter(|l| l.starts_with("warning: ")).map(str::to_string).collect()
}

#[test]
fn check_warns_for_each_container_with_host_modes_and_still_passes() {
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.kdl");
    std::fs::write(
        &file,
        "app \"hm\"\n\
         container \"probe\" {\n image \"busybox\"\n privileged\n network \"host\"\n pid \"host\"\n device \"/dev/fuse\"\n}\n\
         container \"admin\" {\n image \"busybox\"\n privileged\n}\n\
         container \"web\" {\n image \"busybox\"\n}\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    for quiet in [false, true] {
        let o = if quiet { t.run(&["--quiet", "check", file]) } else { t.run(&["check", file]) };
        assert_eq!(o.status.code(), Some(0), "host modes are valid: {}", stderr(&o));
        assert_eq!(
            warnings(&o),
            [
                "warning: container probe: host modes privileged, network=host, pid=host, device=/dev/fuse: not confined from the host",
                "warning: container admin: host modes privileged: not confined from the host",
            ],
            "one line per container with host modes, the confined one not named (quiet: {quiet})"
        );
    }

    // Control: without host modes, check says nothing of them.
    let plain = dir.path().join("plain.kdl");
    std::fs::write(&plain, "app \"plain\"\ncontainer \"web\" {\n image \"busybox\"\n}\n").unwrap();
    let o = t.run(&["check", plain.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(warnings(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn ps_names_the_host_modes_of_each_container() {
    let w = World::new("hmod");
    let body = format!(
        "container \"admin\" {{\n image \"{i}\"\n command \"sleep\" \"300\"\n init\n stop-timeout \"1s\"\n privileged\n}}\n\
         container \"web\" {{\n image \"{i}\"\n command \"sleep\" \"300\"\n init\n stop-timeout \"1s\"\n}}\n",
        i = w.image
    );
    let up = w.up("hmod", &body);
    let v = up.ps();
    let containers = v["apps"][0]["containers"].as_array().expect("ps lists the containers");
    let modes = |name: &str| containers.iter().find(|c| c["name"] == name).map(|c| c["host_modes"].clone()).unwrap_or_default();
    assert_eq!(modes("admin"), serde_json::json!(["privileged"]), "{v}");
    assert_eq!(modes("web"), serde_json::json!([]), "a confined container has none: {v}");

    let o = up.run(&["ps", "hmod"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let line = |name: &str| text.lines().find(|l| l.split_whitespace().nth(1) == Some(name)).unwrap_or_default().to_string();
    assert!(line("admin").contains("admin [host: privileged]"), "{text}");
    assert!(!line("web").is_empty() && !line("web").contains("[host:"), "{text}");
}
