//! Hooks through `tfctl up`: host hooks fire once with the container's variables, a task that
//! exits 3 fires `exited` and `failed` with TFCTL_EXIT_CODE=3, `down` fires `exited` (stopped)
//! and never `failed`, and a failing `started` hook with on-fail="fail" ends `up --wait` with 3.

mod common;

use common::{sample_image, stderr, NetNs, Tfctl};
use std::time::{Duration, Instant};

fn image() -> String {
    sample_image()
}

/// Host hooks appending one line per event of the container to `log`.
fn event_hooks(log: &str) -> String {
    ["started", "exited", "failed"]
        .iter()
        .map(|e| {
            format!(
                " on \"{e}\" {{\n  run \"sh\" \"-c\" \"echo {e} $$TFCTL_CONTAINER ip=$$TFCTL_IP reason=$$TFCTL_REASON code=$$TFCTL_EXIT_CODE >> {log}\"\n }}\n"
            )
        })
        .collect()
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

/// Waits until `path` has a line starting with `prefix`.
fn wait_for_line(path: &std::path::Path, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(l) = lines(path).into_iter().find(|l| l.starts_with(prefix)) {
            return l;
        }
        assert!(Instant::now() < deadline, "no `{prefix}` line in {}: {:?}", path.display(), lines(path));
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hooks_fire_once_with_the_right_variables_and_down_fires_no_failed() {
    sample_image();
    let ns = NetNs::new("hooks");
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.log");
    let hooks = event_hooks(&log.to_string_lossy());
    let file = dir.path().join("app.kdl");
    std::fs::write(
        &file,
        format!(
            "app \"hk\"\ncontainer \"web\" {{\n image \"{img}\"\n command \"sleep\" \"600\"\n init\n stop-timeout \"1s\"\n{hooks}}}\n\
             container \"task\" {{\n image \"{img}\"\n command \"sh\" \"-c\" \"exit 3\"\n one-shot\n stop-timeout \"1s\"\n{hooks}}}\n",
            img = image()
        ),
    )
    .unwrap();
    let file = file.to_string_lossy().into_owned();
    let o = t.run_in(&ns, &["up", "-d", "--trust-file", &file]);
    // `-d` returns once the containers have started; if the task has already exited 3 by then,
    // `up` says so (and exits 1) while the app keeps running. Either way the hooks must fire.
    let err = stderr(&o);
    match o.status.code() {
        Some(0) => {}
        Some(1) => assert!(err.contains("task") && err.contains("status 3"), "{err}"),
        other => panic!("up -d exited {other:?}: {err}"),
    }

    let o = t.run_in(&ns, &["ps", "hk", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let web_ip = v["apps"][0]["containers"].as_array().unwrap().iter().find(|c| c["name"] == "web").unwrap()["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();

    let started = wait_for_line(&log, "started web ");
    assert!(started.contains(&format!("ip={web_ip} ")), "started hook got the wrong TFCTL_IP: {started} (ps: {web_ip})");
    let exited = wait_for_line(&log, "exited task ");
    assert!(exited.ends_with("code=3"), "exited hook of a task exiting 3: {exited}");
    let failed = wait_for_line(&log, "failed task ");
    assert!(failed.ends_with("code=3"), "failed hook of a task exiting 3: {failed}");

    let o = t.run_in(&ns, &["down", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let all = lines(&log);
    let count = |prefix: &str| all.iter().filter(|l| l.starts_with(prefix)).count();
    // Each event fired once; the exit `down` caused is `exited` (stopped), never `failed`.
    assert_eq!(count("started web "), 1, "{all:?}");
    assert_eq!(count("started task "), 1, "{all:?}");
    assert_eq!(count("exited task "), 1, "{all:?}");
    assert_eq!(count("failed task "), 1, "{all:?}");
    assert_eq!(count("exited web "), 1, "down did not fire web's exited hook once: {all:?}");
    assert!(all.iter().any(|l| l.starts_with("exited web ") && l.contains("reason=stopped")), "{all:?}");
    assert_eq!(count("failed web "), 0, "down fired failed: {all:?}");
}

fn started_hook_app(dir: &std::path::Path, name: &str, hook_command: &str) -> String {
    let file = dir.join(format!("{name}.kdl"));
    std::fs::write(
        &file,
        format!(
            "app \"{name}\"\ncontainer \"web\" {{\n image \"{}\"\n command \"sleep\" \"600\"\n init\n stop-timeout \"1s\"\n on \"started\" on-fail=\"fail\" {{\n  run \"sh\" \"-c\" \"{hook_command}\"\n }}\n}}\n",
            image()
        ),
    )
    .unwrap();
    file.to_string_lossy().into_owned()
}

#[test]
fn a_failing_started_hook_with_on_fail_fail_ends_wait_with_3() {
    sample_image();
    let ns = NetNs::new("hookfail");
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    // The same app with a hook that succeeds comes up.
    let good = started_hook_app(dir.path(), "good", "exit 0");
    let o = t.run_in(&ns, &["up", "--trust-file", "--wait=30s", &good]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(t.run_in(&ns, &["down", &good]).status.code(), Some(0));

    let bad = started_hook_app(dir.path(), "bad", "exit 1");
    let o = t.run_in(&ns, &["up", "--trust-file", "--wait=30s", &bad]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("web") && err.contains("hook"), "--wait does not name the container and its hook: {err}");
    assert_eq!(t.run_in(&ns, &["down", &bad]).status.code(), Some(0));
}

/// A hook script in a folder another user owns is refused by `up` (that user could swap it
/// for anything, and it would run as root); the control: the same folder given to root, and
/// the script runs, from the descriptor `up`'s supervisor checked (`$0` is `/dev/fd/N`).
#[test]
fn a_hook_script_in_a_folder_another_user_owns_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    sample_image();
    let ns = NetNs::new("hookdir");
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ran.log");
    let hooks = dir.path().join("hooks");
    std::fs::create_dir(&hooks).unwrap();
    std::fs::set_permissions(&hooks, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = hooks.join("notify.sh");
    std::fs::write(&script, format!("echo \"ran as $0\" >> {}\n", log.display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = dir.path().join("app.kdl");
    std::fs::write(
        &file,
        format!(
            "app \"hkdir\"\ncontainer \"web\" {{\n image \"{}\"\n command \"sleep\" \"600\"\n init\n stop-timeout \"1s\"\n on \"started\" {{\n  run \"sh\" \"./hooks/notify.sh\"\n }}\n}}\n",
            image()
        ),
    )
    .unwrap();
    let file = file.to_string_lossy().into_owned();

    std::os::unix::fs::chown(&hooks, Some(1000), Some(1000)).unwrap();
    let o = t.run_in(&ns, &["up", "--wait=30s", &file]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&hooks.display().to_string()) && err.contains("uid 1000") && err.contains("--trust-file"), "{err}");
    assert!(!log.exists(), "the hook ran although it was refused");

    std::os::unix::fs::chown(&hooks, Some(0), Some(0)).unwrap();
    let o = t.run_in(&ns, &["up", "--wait=30s", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let line = wait_for_line(&log, "ran as ");
    assert!(line.starts_with("ran as /dev/fd/"), "{line}");
    let o = t.run_in(&ns, &["down", "hkdir"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// What a hook prints is not lost: `up` shows it after the container and event, and
/// `tfctl logs APP` keeps it (container and app hooks alike) in the app's `_hooks` stream.
#[test]
fn hook_output_goes_to_up_s_output_and_to_the_app_s_logs() {
    let t = Tfctl::new();
    let ns = NetNs::new("hookout");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.kdl");
    std::fs::write(
        &file,
        format!(
            "app \"ho\"\non \"up\" {{\n run \"sh\" \"-c\" \"echo app-level-line\"\n}}\n\
             container \"box\" {{\n image \"{}\"\n command \"sleep\" \"600\"\n stop-timeout \"1s\"\n\
             on \"started\" {{\n  run \"sh\" \"-c\" \"echo out-line; echo err-line >&2\"\n }}\n}}\n",
            image()
        ),
    )
    .unwrap();
    let o = t.run_in(&ns, &["up", "--trust-file", "--wait=30s", file.to_str().unwrap()]);
    let up_said = stderr(&o);
    let logs = t.run_in(&ns, &["logs", "ho"]);
    let _ = t.run_in(&ns, &["down", "--volumes", "ho"]);
    assert_eq!(o.status.code(), Some(0), "{up_said}");
    assert!(up_said.contains("box: started: hook: out-line") && up_said.contains("box: started: hook: err-line"), "{up_said}");
    let logged = String::from_utf8_lossy(&logs.stdout).into_owned();
    assert!(logged.contains("box started: out-line") && logged.contains("box started: err-line"), "{logged}");
    assert!(logged.contains("app up: app-level-line"), "{logged}");
}
