//! A running app takes a new file: `up` reconciles (only what changed is recreated, firewall
//! changes apply in place), `plan` says what would change, `run --app` grows the app. Each test
//! in a network namespace of its own, with `down` on the way out even when it fails.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{stderr, stdout, Up, World};

/// The start time (jiffies since boot, field 22 of /proc/1/stat) of a container's PID 1: the
/// same as long as the process is the same.
fn started_at(up: &Up, container: &str) -> String {
    let o = up.run(&["exec", &format!("{}/{container}", up.app), "--", "cat", "/proc/1/stat"]);
    assert_eq!(o.status.code(), Some(0), "exec in {container}: {}", stderr(&o));
    let text = stdout(&o);
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = &text[text.rfind(')').unwrap() + 2..];
    after.split_whitespace().nth(19).unwrap().to_string()
}

fn upper_inode(up: &Up, container: &str) -> u64 {
    let dir = up.state_dir().join("apps").join(&up.app).join("containers").join(container).join("upper");
    std::fs::metadata(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).ino()
}

/// Whether `from` reaches `to`'s port 80 (busybox nc; the listeners answer "ok").
fn reaches(up: &Up, from: &str, ip: &str) -> bool {
    let o = up.run(&["exec", &format!("{}/{from}", up.app), "--", "sh", "-c", &format!("echo | nc -w 1 {ip} 80")]);
    stdout(&o).contains("ok")
}

fn address(up: &Up, container: &str) -> String {
    let ps = up.ps();
    let c = ps["apps"][0]["containers"].as_array().unwrap().iter().find(|c| c["name"] == container).cloned().unwrap();
    c["address"].as_str().unwrap().to_string()
}

/// A server (port 80), a worker with `MODE=env` (none when `env` is `None`) and a client with a
/// pre-boot file from the host.
fn body(image: &str, server_allow: &str, env: Option<&str>, motd: &Path) -> String {
    let worker = env.map_or(String::new(), |env| {
        format!("container \"worker\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n env MODE=\"{env}\"\n stop-timeout \"1s\"\n}}\n")
    });
    format!(
        "container \"server\" {{\n image \"{image}\"\n command \"sh\" \"-c\" \"nc -ll -p 80 -e echo ok\"\n {server_allow}\n stop-timeout \"1s\"\n}}\n\
         {worker}\
         container \"client\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n file \"/etc/motd\" from=\"{}\"\n stop-timeout \"1s\"\n}}\n",
        motd.display()
    )
}

#[test]
fn reconcile_recreates_only_what_changed_and_applies_allow_in_place() {
    let w = World::new("rec");
    let (dir, image) = (&w.dir, w.image.clone());
    let motd = dir.path().join("motd.txt");
    std::fs::write(&motd, "first\n").unwrap();
    let up = w.up("rec", &body(&image, "", Some("a"), &motd));
    let file = dir.path().join("app.kdl");
    let write = |text: String| std::fs::write(&file, format!("app \"rec\"\n{text}")).unwrap();
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", "--detailed-exitcode"];
        args.extend_from_slice(extra);
        args.push(file.to_str().unwrap());
        up.run(&args)
    };
    let (server_ip, worker_ip) = (address(&up, "server"), address(&up, "worker"));
    assert!(!reaches(&up, "client", &server_ip), "inbound is denied by default");

    let before: Vec<(String, u64)> = ["server", "worker", "client"].iter().map(|c| (started_at(&up, c), upper_inode(&up, c))).collect();
    // A change each container made to its filesystem: kept unless it is recreated.
    let marked = |c: &str| up.run(&["exec", &format!("rec/{c}"), "--", "test", "-e", "/marker"]).status.code() == Some(0);
    for c in ["server", "worker", "client"] {
        assert_eq!(up.run(&["exec", &format!("rec/{c}"), "--", "touch", "/marker"]).status.code(), Some(0));
    }
    // Nothing changed: plan says so with 0.
    let o = plan(&[]);
    assert_eq!(o.status.code(), Some(0), "plan of the same file: {}{}", stdout(&o), stderr(&o));

    // An allow for the server (in place), a new env for the worker (recreate).
    write(body(&image, "allow from=\"client\"", Some("b"), &motd));
    let o = plan(&[]);
    assert_eq!(o.status.code(), Some(5), "plan: {}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("server") && text.lines().any(|l| l.contains("server") && l.contains("update") && l.contains("allow changed")), "{text}");
    assert!(text.lines().any(|l| l.contains("worker") && l.contains("recreate") && l.contains("env changed")), "{text}");
    assert!(text.lines().any(|l| l.contains("client") && l.contains("keep")), "{text}");
    let o = up.run(&["plan", "--format", "json", file.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["changed"], true);

    let o = up.run(&["up", "--trust-file", "--wait=30s", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "reconciling up: {}", stderr(&o));
    let after: Vec<(String, u64)> = ["server", "worker", "client"].iter().map(|c| (started_at(&up, c), upper_inode(&up, c))).collect();
    assert_eq!(after[0], before[0], "the server changed in place only: same PID 1, same upper dir");
    assert_eq!(after[2], before[2], "the client did not change");
    assert_ne!(after[1].0, before[1].0, "the worker has a new PID 1");
    assert!(marked("server") && marked("client"), "their filesystem changes stay");
    assert!(!marked("worker"), "the worker's filesystem changes are discarded");
    let o = up.run(&["exec", "rec/worker", "--", "sh", "-c", "echo $MODE"]);
    assert_eq!(stdout(&o).trim(), "b");
    assert!(reaches(&up, "client", &server_ip), "the new allow admits the client");
    assert!(!reaches(&up, "worker", &server_ip), "and only the client");
    assert_eq!(address(&up, "worker"), worker_ip, "a recreated container keeps its address");
    let o = plan(&[]);
    assert_eq!(o.status.code(), Some(0), "after up, nothing is left to change: {}", stdout(&o));

    // The content of a pre-boot file from the host changed, not its definition: the HMAC of
    // its content tells, and only the client is recreated.
    std::fs::write(&motd, "second\n").unwrap();
    let o = plan(&[]);
    assert_eq!(o.status.code(), Some(5), "{}", stdout(&o));
    assert!(stdout(&o).lines().any(|l| l.contains("client") && l.contains("recreate") && l.contains("content changed")), "{}", stdout(&o));
    let o = up.run(&["up", "--trust-file", "-d", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = up.run(&["exec", "rec/client", "--", "cat", "/etc/motd"]);
    assert_eq!(stdout(&o), "second\n");
    assert_eq!(started_at(&up, "server"), before[0].0);

    // A container gone from the file goes; the others stay.
    write(body(&image, "allow from=\"client\"", None, &motd));
    let o = up.run(&["up", "--trust-file", "--wait=30s", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let names: Vec<String> = up.ps()["apps"][0]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, vec!["client", "server"], "worker removed");
    assert!(!up.state_dir().join("apps/rec/containers/worker").exists(), "its folders are gone");
    assert_eq!(started_at(&up, "server"), before[0].0);
}

#[test]
fn up_of_a_running_app_from_another_file_needs_replace() {
    let w = World::new("repl");
    let image = w.image.clone();
    let up = w.up("repl", &format!("container \"one\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n stop-timeout \"1s\"\n}}\n"));
    let other = tempfile::tempdir().unwrap();
    let file = other.path().join("other.kdl");
    std::fs::write(&file, format!("app \"repl\"\ncontainer \"two\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n stop-timeout \"1s\"\n}}\n")).unwrap();
    let o = up.run(&["up", "--trust-file", "-d", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--replace"), "{}", stderr(&o));
    assert_eq!(up.state("one"), "running", "the running app is untouched");

    let o = up.run(&["up", "--trust-file", "--replace", "--wait=30s", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let names: Vec<String> = up.ps()["apps"][0]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, vec!["two"]);
    // The app now comes from the new file: a plain `up` of it is a reconcile.
    let o = up.run(&["plan", "--detailed-exitcode", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn pull_never_refuses_a_missing_image_and_plan_of_an_app_that_is_down_creates_all() {
    let w = World::new("pulln");
    let (t, ns, dir) = (&w.t, &w.ns, &w.dir);
    let file = dir.path().join("app.kdl");
    std::fs::write(&file, format!("app \"pn\"\ncontainer \"c\" {{\n image \"{}\"\n command \"true\"\n}}\n", w.image.clone())).unwrap();
    let o = t.run_in(&ns, &["up", "--trust-file", "--pull", "never", "-d", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--pull never"), "{}", stderr(&o));
    let o = t.run_in(&ns, &["plan", "--detailed-exitcode", "--pull", "never", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5));
    assert!(stdout(&o).lines().any(|l| l.contains("c") && l.contains("create")), "{}", stdout(&o));
}

#[test]
fn run_app_adds_a_container_that_hosts_files_name_and_a_reconcile_keeps() {
    let w = World::new("runapp");
    let (dir, image) = (&w.dir, w.image.clone());
    // The app grows itself: the server's started hook adds a helper container.
    let hook = format!("$$TFCTL run --app ra --name helper -d {image} sleep 600");
    let body = format!(
        "container \"server\" {{\n image \"{image}\"\n command \"sh\" \"-c\" \"nc -ll -p 80 -e echo ok\"\n allow from=\"any\" port=80\n stop-timeout \"1s\"\n \
         on \"started\" {{\n run \"sh\" \"-c\" \"{}\"\n }}\n}}\n",
        hook.replace('"', "\\\"")
    );
    let up = w.up("ra", &body);
    up.wait_state("helper", "running");
    let ps = up.ps();
    let helper = ps["apps"][0]["containers"].as_array().unwrap().iter().find(|c| c["name"] == "helper").cloned().unwrap();
    assert_eq!(helper["added_at_run_time"], true);
    assert!(stdout(&up.run(&["ps", "ra"])).contains("helper (run)"));

    // From a shell: attached, its output and status are run's; it reaches the server, which
    // admits it, and knows it by name; the server's /etc/hosts learns the newcomer.
    let server_ip = address(&up, "server");
    let o = up.run(&[
        "run", "--app", "ra", "--name", "probe", "--rm", &image, "sh", "-c",
        &format!("echo | nc -w 1 {server_ip} 80; grep -c server /etc/hosts; exit 4"),
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ok\n1\n");
    let names: Vec<String> = up.ps()["apps"][0]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
    assert!(!names.contains(&"probe".to_string()), "--rm removed it: {names:?}");
    let hosts = stdout(&up.run(&["exec", "ra/server", "--", "cat", "/etc/hosts"]));
    assert!(hosts.contains("helper"), "{hosts}");

    // Inbound to a run-time container: only what --allow-from admits.
    let o = up.run(&["run", "--app", "ra", "--name", "quiet", "-d", &image, "sh", "-c", "nc -ll -p 80 -e echo ok"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = up.run(&["run", "--app", "ra", "--name", "open", "--allow-from", "helper:80/tcp", "-d", &image, "sh", "-c", "nc -ll -p 80 -e echo ok"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (quiet_ip, open_ip) = (address(&up, "quiet"), address(&up, "open"));
    assert!(!reaches(&up, "helper", &quiet_ip), "no --allow-from: denied");
    assert!(reaches(&up, "helper", &open_ip), "--allow-from helper:80/tcp admits the helper");
    assert!(!reaches(&up, "server", &open_ip), "and nobody else");

    // A reconcile from the file leaves run-time containers alone.
    let o = up.run(&["up", "--trust-file", "-d", dir.path().join("app.kdl").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(up.state("helper"), "running");
    assert_eq!(up.state("quiet"), "running");
}

#[test]
fn a_second_reconcile_waits_for_the_first_then_names_its_holder() {
    let w = World::new("lock");
    let dir = &w.dir;
    let up = w.up("lk", &format!("container \"c\" {{\n image \"{}\"\n command \"sleep\" \"600\"\n stop-timeout \"1s\"\n}}\n", w.image.clone()));
    // Another tfctl holds the app's reconcile lock (as `up` does while it reconciles).
    let lock = up.state_dir().join("apps/lk/reconcile.lock");
    std::fs::write(&lock, "tfctl pid 4242 (up)").unwrap();
    let mut holder = std::process::Command::new("flock").arg("--no-fork").arg(&lock).args(["sleep", "60"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let begun = std::time::Instant::now();
    let o = up.run(&["up", "--trust-file", "-d", dir.path().join("app.kdl").to_str().unwrap()]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(begun.elapsed() >= std::time::Duration::from_secs(29), "it waited");
    assert!(stderr(&o).contains("tfctl pid 4242"), "{}", stderr(&o));
    // Once free, the same `up` goes through.
    let o = up.run(&["up", "--trust-file", "-d", dir.path().join("app.kdl").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_tag_that_names_a_new_digest_recreates_with_pull_always_only() {
    let w = World::new("digest");
    let dir = &w.dir;
    let layout = dir.path().join("image");
    let build = |busybox: &Path| {
        let o = std::process::Command::new("python3")
            .arg(common::repo().join("scripts/busybox-image.py"))
            .arg(&layout)
            .arg("--busybox")
            .arg(busybox)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    build(Path::new("/bin/busybox"));
    let image = format!("oci:{}", layout.display());
    let up = w.up("dg", &format!("container \"c\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n stop-timeout \"1s\"\n}}\n"));
    let file = dir.path().join("app.kdl");
    let first = started_at(&up, "c");

    // The same tag, another image: a busybox with a byte appended (it still runs).
    let other = dir.path().join("busybox2");
    let mut bytes = std::fs::read("/bin/busybox").unwrap();
    bytes.push(0);
    std::fs::write(&other, bytes).unwrap();
    std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    build(&other);

    // --pull missing (the default): the stored digest of the tag stays in use.
    let o = up.run(&["plan", "--detailed-exitcode", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = up.run(&["up", "--trust-file", "-d", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(started_at(&up, "c"), first, "not recreated");

    // --pull always learns the new digest, and the container is recreated from it.
    let o = up.run(&["plan", "--detailed-exitcode", "--pull", "always", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).lines().any(|l| l.contains("recreate") && l.contains("image digest changed")), "{}", stdout(&o));
    let o = up.run(&["up", "--trust-file", "--pull", "always", "--wait=30s", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_ne!(started_at(&up, "c"), first, "recreated");
    let o = up.run(&["exec", "dg/c", "--", "sh", "-c", "tail -c 1 /bin/busybox | od -An -tx1"]);
    assert_eq!(stdout(&o).trim(), "00", "runs the new image");
}

#[test]
fn one_file_runs_twice_side_by_side_under_up_name() {
    let w = World::new("twice");
    let (t, ns, dir) = (&w.t, &w.ns, &w.dir);
    let file = dir.path().join("app.kdl");
    std::fs::write(
        &file,
        format!("app \"ci\"\ncontainer \"web\" {{\n image \"{}\"\n command \"httpd\" \"-f\" \"-p\" \"80\" \"-h\" \"/var/www\"\n publish 0 to=80\n stop-timeout \"1s\"\n}}\n", w.image.clone()),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    for name in ["job1", "job2"] {
        let o = t.run_in(&ns, &["up", "--trust-file", "--name", name, "--wait=30s", f]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
    }
    let ps: serde_json::Value = serde_json::from_slice(&t.run_in(&ns, &["ps", "--format", "json"]).stdout).unwrap();
    let apps = ps["apps"].as_array().unwrap();
    let running: Vec<(&str, &str, u64)> = apps
        .iter()
        .map(|a| {
            let c = &a["containers"][0];
            (a["name"].as_str().unwrap(), c["state"].as_str().unwrap(), c["ports"][0]["host_port"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(running.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(), vec![("job1", "running"), ("job2", "running")]);
    assert_ne!(running[0].2, running[1].2, "publish 0 took a free host port for each");
    assert_ne!(apps[0]["containers"][0]["address"], apps[1]["containers"][0]["address"], "each has its own subnet");
    // A plan names the app with --name too; each is its own.
    let o = t.run_in(&ns, &["plan", "--detailed-exitcode", "--name", "job2", f]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = t.run_in(&ns, &["down", "--name", "job1", f]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = t.run_in(&ns, &["port", "job2/web", "80"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains(&running[1].2.to_string()), "{}", stdout(&o));
    let _ = t.run_in(&ns, &["down", "--name", "job2", f]);
}
