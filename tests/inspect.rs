//! Seeing what runs: `inspect` (checked against what this test reads itself from /proc of the
//! container's process), `events` (an up, a stop and a failing container, in order, with their
//! statuses; --since; --follow), `stats` and `top` (which agree), and the JSON of `check`,
//! `logs`, `version` and `up`. Each test in a network namespace and state root of its own.

mod common;

use std::io::{BufRead, BufReader};

use common::{stderr, stdout, Up, World};

fn json(o: &std::process::Output) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))).collect()
}

fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':')).unwrap_or_else(|| panic!("no {key} in {status}")).trim()
}

#[test]
fn inspect_shows_what_the_kernel_holds_for_the_container() {
    let w = World::new("insp");
    let image = w.image.clone();
    let up = w.up(
        "i",
        &format!(
            "container \"web\" {{\n image \"{image}\"\n command \"sh\" \"-c\" \"echo hello-log; exec sleep 600\"\n cap-drop \"NET_RAW\"\n limits memory=\"64M\" pids=50\n label \"tier\" \"front\"\n stop-timeout \"1s\"\n\
             health {{\n  exec \"test\" \"-e\" \"/bin/sh\"\n  interval \"1h\"\n }}\n}}\n"
        ),
    );
    let v = json(&up.run(&["inspect", "i/web", "--format", "json"]));
    assert_eq!(v["schema"], 1);
    assert_eq!(v["status"]["state"], "running", "{v}");
    assert_eq!(v["restarts"], 0);
    assert_eq!(v["labels"], serde_json::json!({"tier": "front"}));
    assert!(v["image"]["manifest_digest"].as_str().is_some_and(|d| d.starts_with("sha256:")), "{v}");
    assert!(v["address"].as_str().is_some_and(|a| a.parse::<std::net::Ipv4Addr>().is_ok()), "{v}");
    assert_eq!(v["health_history"][0]["health"], "healthy", "{v}");
    // The app's table is in the kernel, as nft (run by the test) lists it.
    assert_eq!(v["firewall"]["table_loaded"], true, "{v}");
    let table = v["firewall"]["table"].as_str().unwrap().to_string();
    let listed = w.ns.sh(&format!("nft list table inet {table}"));
    assert!(listed.status.success(), "{}", stderr(&listed));

    // The process part is what /proc says of that very process.
    let p = &v["process"];
    let pid = p["pid"].as_i64().expect("a pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(p["command"], serde_json::json!(["sleep", "600"]));
    assert_eq!(p["capabilities"]["effective"]["hex"], status_field(&status, "CapEff"), "{p}");
    assert_eq!(p["capabilities"]["bounding"]["hex"], status_field(&status, "CapBnd"), "{p}");
    let caps: Vec<&str> = p["capabilities"]["effective"]["names"].as_array().unwrap().iter().filter_map(|n| n.as_str()).collect();
    assert!(caps.contains(&"CAP_CHOWN") && !caps.contains(&"CAP_NET_RAW"), "{caps:?}");
    let seccomp = match status_field(&status, "Seccomp") {
        "0" => "disabled",
        "1" => "strict",
        _ => "filter",
    };
    assert_eq!(p["seccomp"], seccomp);
    assert_eq!(seccomp, "filter", "tfctl's default seccomp filter is in force");
    assert_eq!(p["no_new_privs"], status_field(&status, "NoNewPrivs") == "1");
    assert_eq!(p["uid"].as_u64().unwrap().to_string(), status_field(&status, "Uid").split_whitespace().nth(1).unwrap());
    for ns in ["net", "mnt", "pid", "uts", "ipc"] {
        let id = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap().to_string_lossy().into_owned();
        assert_eq!(p["namespaces"][ns]["id"], id, "{ns}");
        assert_eq!(p["namespaces"][ns]["shared_with_host"], false, "{ns}: {p}");
    }
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let targets: Vec<&str> = mountinfo.lines().map(|l| l.split(' ').nth(4).unwrap()).collect();
    let shown: Vec<&str> = p["mounts"].as_array().unwrap().iter().map(|m| m["target"].as_str().unwrap()).collect();
    assert_eq!(shown, targets);
    assert_eq!(p["mounts"][0]["target"], "/");

    // The cgroup part: the limits the kernel holds and a plausible usage.
    let cg = &v["cgroup"];
    assert_eq!(cg["limits"]["memory"], "67108864", "{cg}");
    assert_eq!(cg["limits"]["pids"], "50", "{cg}");
    assert!(cg["usage"]["memory_bytes"].as_u64().unwrap() > 0, "{cg}");
    assert_eq!(cg["usage"]["pids"], 1, "{cg}");
    assert_eq!(cg["usage"]["memory_limit_bytes"], 64 << 20);

    // The text form says the same.
    let text = stdout(&up.run(&["inspect", "i/web"]));
    assert!(text.contains("tier=front") && text.contains(&format!("pid:          {pid}")) && text.contains("seccomp:      filter"), "{text}");

    // `logs --format json`: JSON lines with the container's output.
    let lines = json_lines(&stdout(&up.run(&["logs", "i/web", "--format", "json"])));
    let hello = lines.iter().find(|l| l["text"] == "hello-log").unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!((&hello["schema"], &hello["container"], &hello["stream"], &hello["partial"]), (&1.into(), &"web".into(), &"stdout".into(), &false.into()));
    assert!(hello["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{hello}");

    // A stopped container has no process to show: the control.
    assert_eq!(up.run(&["stop", "i/web"]).status.code(), Some(0));
    let v = json(&up.run(&["inspect", "i/web", "--format", "json"]));
    assert_eq!(v["status"]["state"], "stopped");
    assert!(v["process"].is_null() && v["cgroup"].is_null(), "{v}");
    assert!(std::fs::metadata(format!("/proc/{pid}")).is_err(), "the process inspected before still runs");
}

#[test]
fn events_say_what_happened_in_order_with_statuses() {
    let w = World::new("ev");
    let (t, ns, image) = (&w.t, &w.ns, w.image.clone());
    let file = w.dir.path().join("app.kdl");
    std::fs::write(
        &file,
        format!(
            "app \"e\"\n\
             container \"ok\" {{\n image \"{image}\"\n command \"sh\" \"-c\" \"trap 'exit 7' TERM; while true; do sleep 0.1; done\"\n stop-timeout \"5s\"\n on \"started\" {{\n  run \"true\"\n }}\n}}\n\
             container \"bad\" {{\n image \"{image}\"\n command \"sh\" \"-c\" \"sleep 1; exit 3\"\n restart \"no\"\n}}\n\
             container \"flaky\" {{\n image \"{image}\"\n command \"sh\" \"-c\" \"sleep 1; exit 1\"\n restart \"on-failure\" max=1\n}}\n"
        ),
    )
    .unwrap();
    let o = t.run_in(ns, &["up", "-d", "--trust-file", "--format", "json", file.to_str().unwrap()]);
    // Down when the test ends, whatever happens.
    let up = Up { t, ns, app: "e".into() };
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // `up --format json`: every line says its schema and when.
    let lines = json_lines(&stdout(&o));
    assert!(!lines.is_empty());
    for l in &lines {
        assert_eq!(l["schema"], 1, "{l}");
        assert!(l["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{l}");
    }
    up.wait_state("bad", "failed");
    up.wait_state("flaky", "failed");

    // Followed from here: the stop and the down below are streamed to it.
    let mut follow = t.cmd_in(ns).args(["events", "e", "--follow", "--format", "json"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut reader = BufReader::new(follow.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.contains("\"event\""), "{first}");

    assert_eq!(up.run(&["stop", "e/ok"]).status.code(), Some(0));
    let o = up.run(&["events", "e", "--format", "json"]);
    let all = json_lines(&stdout(&o));
    let of = |c: &str| -> Vec<(String, String, Option<i64>)> {
        all.iter()
            .filter(|e| e["container"] == c)
            .map(|e| (e["event"].as_str().unwrap().to_string(), e["reason"].as_str().unwrap().to_string(), e["status"].as_i64()))
            .collect()
    };
    let s = |a: &str, b: &str, c: Option<i64>| (a.to_string(), b.to_string(), c);
    // The stop signal (SIGTERM), which it traps to exit 7.
    assert_eq!(of("ok"), [s("started", "started", None), s("hook", "started", Some(0)), s("exited", "stopped", Some(7))], "{all:?}");
    assert_eq!(of("bad"), [s("started", "started", None), s("exited", "exited", Some(3)), s("failed", "exited", Some(3))], "{all:?}");
    // Restarted once by its policy, then given up on.
    assert_eq!(
        of("flaky"),
        [
            s("started", "started", None),
            s("exited", "exited", Some(1)),
            s("started", "started", None),
            s("restarted", "started", None),
            s("exited", "exited", Some(1)),
            s("failed", "restart-limit", Some(1))
        ],
        "{all:?}"
    );
    assert_eq!(all.iter().find(|e| e["event"] == "restarted").unwrap()["restarts"], 1);
    for e in &all {
        assert_eq!((&e["schema"], &e["app"]), (&1.into(), &"e".into()), "{e}");
    }
    // --since and a container: from the stop on.
    let stopped_at = all.iter().find(|e| e["container"] == "ok" && e["event"] == "exited").unwrap()["time"].as_str().unwrap().to_string();
    let since = json_lines(&stdout(&up.run(&["events", "e/ok", "--since", &stopped_at, "--format", "json"])));
    assert_eq!(since.iter().map(|e| e["event"].as_str().unwrap()).collect::<Vec<_>>(), ["exited"]);
    let text = stdout(&up.run(&["events", "e/bad"]));
    assert!(text.contains("e/bad exited (status 3)"), "{text}");

    // A new app file applied to the running app is `reconciled`, saying what changed.
    let changed = std::fs::read_to_string(&file).unwrap().replace("stop-timeout \"5s\"", "stop-timeout \"5s\"\n label \"v\" \"2\"");
    std::fs::write(&file, changed).unwrap();
    let o = t.run_in(ns, &["up", "-d", "--trust-file", file.to_str().unwrap()]);
    // `up -d` returns once its containers started; the reconcile is journalled once all of it
    // is applied.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let r = loop {
        let now = json_lines(&stdout(&up.run(&["events", "e", "--format", "json"])));
        if let Some(r) = now.iter().find(|e| e["event"] == "reconciled") {
            break r.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no reconciled event ({}): {now:?}", stderr(&o));
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(r["container"].is_null() && r["message"].as_str().is_some_and(|m| m.contains("ok")), "{r}");

    // Down ends the follower, which has seen the stop and the down as they came.
    assert_eq!(up.run(&["down", "e"]).status.code(), Some(0));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    assert!(follow.wait().unwrap().success());
    let streamed = json_lines(&rest);
    assert!(streamed.iter().any(|e| e["container"] == "ok" && e["event"] == "exited" && e["status"] == 7), "{rest}");
    assert_eq!(streamed.last().map(|e| e["event"].clone()), Some("down".into()), "{rest}");
    // The journal outlives the app.
    let after = json_lines(&stdout(&up.run(&["events", "e", "--format", "json"])));
    assert!(after.len() > all.len() && after.last().unwrap()["event"] == "down");
}

#[test]
fn stats_and_top_agree_on_the_processes() {
    let w = World::new("stat");
    let image = w.image.clone();
    let up = w.up(
        "s",
        &format!(
            "container \"busy\" {{\n image \"{image}\"\n command \"sh\" \"-c\" \"sleep 600 & sleep 600 & wait\"\n stop-timeout \"1s\"\n}}\n\
             container \"lim\" {{\n image \"{image}\"\n command \"sleep\" \"600\"\n limits memory=\"32M\"\n stop-timeout \"1s\"\n}}\n"
        ),
    );
    let o = up.run(&["stats", "s", "--no-stream", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let sample = &json_lines(&stdout(&o))[0];
    assert_eq!(sample["schema"], 1);
    let of = |c: &str| sample["containers"].as_array().unwrap().iter().find(|x| x["container"] == c).cloned().unwrap_or_else(|| panic!("{sample}"));
    let (busy, lim) = (of("busy"), of("lim"));
    assert!(busy["memory_bytes"].as_u64().unwrap() > 0 && lim["memory_bytes"].as_u64().unwrap() > 0, "{sample}");
    assert!(busy["cpu_ns"].as_u64().unwrap() > 0, "{busy}");
    assert!(busy["cpu_percent"].as_f64().is_some_and(|p| (0.0..=200.0).contains(&p)), "{busy}");
    assert_eq!(lim["memory_limit_bytes"], 32 << 20);
    assert_eq!(lim["memory_source"], "cgroup");

    let top = json(&up.run(&["top", "s/busy", "--format", "json"]));
    let procs = top["processes"].as_array().unwrap();
    assert_eq!(busy["pids"].as_u64().unwrap() as usize, procs.len(), "stats {busy} / top {top}");
    assert_eq!(procs.len(), 3, "{top}");
    // sh is PID 1 of the container and the parent of the two sleeps; each pid is a live process
    // whose command line /proc gives as top does.
    let sh = procs.iter().find(|p| p["container_pid"] == 1).unwrap_or_else(|| panic!("{top}"));
    assert_eq!(sh["command"][0], "sh");
    for p in procs {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", p["pid"])).unwrap();
        let args: Vec<String> = cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        assert_eq!(p["command"], serde_json::json!(args));
        if p["pid"] != sh["pid"] {
            assert_eq!((&p["ppid"], &p["command"][0]), (&sh["pid"], &"sleep".into()), "{p}");
        }
    }
    let text = stdout(&up.run(&["top", "s/busy"]));
    assert_eq!(text.lines().filter(|l| l.contains("sleep 600")).count(), 3, "{text}");
    // A stopped container has no processes to show.
    assert_eq!(up.run(&["stop", "s/lim"]).status.code(), Some(0));
    let o = up.run(&["top", "s/lim"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not running"), "{}", stderr(&o));
}

#[test]
fn check_and_version_speak_json() {
    let w = World::new("cj");
    let bad = w.dir.path().join("bad.kdl");
    std::fs::write(&bad, "app \"x\"\ncontainer \"c\" {\n  comand \"true\"\n  image \"busybox\"\n}\n").unwrap();
    let o = w.t.run(&["check", "--format", "json", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)));
    assert_eq!((&v["schema"], &v["valid"]), (&1.into(), &false.into()), "{v}");
    let d = &v["diagnostics"][0];
    assert!(d["file"].as_str().is_some_and(|f| f.ends_with("bad.kdl")), "{d}");
    assert_eq!((&d["line"], &d["column"]), (&3.into(), &3.into()), "{d}");
    assert_eq!(d["code"], "tfctl::unknown-node", "{d}");
    assert!(d["message"].as_str().is_some_and(|m| m.contains("comand")), "{d}");
    assert!(d["help"].as_str().is_some_and(|h| h.contains("command")), "{d}");
    // A valid file: valid, no diagnostics, exit 0.
    let good = w.dir.path().join("good.kdl");
    std::fs::write(&good, "app \"x\"\ncontainer \"c\" {\n  image \"busybox\"\n}\n").unwrap();
    let v = json(&w.t.run(&["check", "--format", "json", good.to_str().unwrap()]));
    assert_eq!((&v["valid"], &v["diagnostics"], &v["containers"]), (&true.into(), &serde_json::json!([]), &1.into()));

    let v = json(&w.t.run(&["version", "--format", "json"]));
    assert_eq!((&v["schema"], &v["version"]), (&1.into(), &env!("CARGO_PKG_VERSION").into()), "{v}");
}
