//! The Compose features of app files as a user meets them: `profile` and `up --profile`,
//! `label` in `ps --format json` and `ps --filter label=`, and settings `check` accepts but
//! `up` does not run yet being refused by name. Each test in a network namespace and state
//! root of its own.

mod common;

use common::{stderr, World};

/// `ps APP --format json`'s container names, sorted.
fn names(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["containers"].as_array().cloned().unwrap_or_default())
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn a_profiled_container_runs_only_with_its_profile() {
    let w = World::new("profile");
    let body = format!(
        "container \"web\" {{\n image \"{i}\"\n command \"sleep\" \"300\"\n init\n stop-timeout \"1s\"\n}}\ncontainer \"debug\" {{\n image \"{i}\"\n command \"sleep\" \"300\"\n init\n stop-timeout \"1s\"\n profile \"debug\"\n}}\n",
        i = w.image
    );
    let file = w.dir.path().join("app.kdl");
    std::fs::write(&file, format!("app \"prof\"\n{body}")).unwrap();
    let file = file.to_str().unwrap();
    let up = |extra: &[&str]| {
        let mut args = vec!["up", "--trust-file", "--wait=30s"];
        args.extend_from_slice(extra);
        args.push(file);
        w.t.run_in(&w.ns, &args)
    };
    let ps = || -> serde_json::Value { serde_json::from_slice(&w.t.run_in(&w.ns, &["ps", "prof", "--format", "json"]).stdout).unwrap_or_default() };
    let down = || assert_eq!(w.t.run_in(&w.ns, &["down", "prof"]).status.code(), Some(0));

    // Without --profile: only the container without a profile.
    let o = up(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(names(&ps()), ["web"]);
    down();

    // With it: both, running.
    let o = up(&["--profile", "debug"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = ps();
    assert_eq!(names(&v), ["debug", "web"]);
    assert!(v["apps"][0]["containers"].as_array().unwrap().iter().all(|c| c["state"] == "running"), "{v}");
    down();

    // A misspelt profile is refused with the app's profiles, and starts nothing.
    let o = up(&["--profile", "dbug"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no container has profile `dbug` (the app's profiles: debug)"), "{}", stderr(&o));
    assert!(names(&ps()).is_empty() || ps()["apps"][0]["supervisor"].is_null(), "{}", ps());
}

#[test]
fn labels_show_in_ps_json_and_filter_it() {
    let w = World::new("labels");
    let up = w.up(
        "lab",
        &format!(
            "label \"team\" \"shop\"\ncontainer \"web\" {{\n image \"{i}\"\n command \"sleep\" \"300\"\n init\n stop-timeout \"1s\"\n label \"tier\" \"front\"\n}}\ncontainer \"db\" {{\n image \"{i}\"\n command \"sleep\" \"300\"\n init\n stop-timeout \"1s\"\n label \"tier\" \"back\"\n label \"team\" \"data\"\n}}\n",
            i = w.image
        ),
    );
    let v = up.ps();
    assert_eq!(v["apps"][0]["labels"], serde_json::json!({"team": "shop"}));
    let web = v["apps"][0]["containers"].as_array().unwrap().iter().find(|c| c["name"] == "web").unwrap().clone();
    // A container has its app's labels beneath its own.
    assert_eq!(web["labels"], serde_json::json!({"team": "shop", "tier": "front"}));
    let filtered = |f: &[&str]| -> serde_json::Value {
        let mut args = vec!["ps", "--format", "json"];
        for x in f {
            args.extend(["--filter", x]);
        }
        let o = up.run(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    assert_eq!(names(&filtered(&["label=tier=back"])), ["db"]);
    assert_eq!(names(&filtered(&["label=tier"])), ["db", "web"]);
    // The container's own value wins over the app's.
    assert_eq!(names(&filtered(&["label=team=shop"])), ["web"]);
    assert_eq!(names(&filtered(&["label=tier=front", "label=team=data"])), Vec::<String>::new());
    assert_eq!(filtered(&["label=nope"])["apps"], serde_json::json!([]));
    // The text listing filters the same way.
    let o = up.run(&["ps", "--filter", "label=tier=front"]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains(" web ") && !text.contains(" db "), "{text}");
    let o = up.run(&["ps", "--filter", "tier=front"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("write label=KEY or label=KEY=VALUE"), "{}", stderr(&o));
}

#[test]
fn settings_up_cannot_run_yet_are_refused_by_name() {
    let w = World::new("notyet");
    let file = w.dir.path().join("app.kdl");
    std::fs::write(&file, format!("app \"ny\"\ncontainer \"web\" {{\n image \"{}\"\n tty\n}}\n", w.image)).unwrap();
    let file = file.to_str().unwrap();
    // `check` accepts the file...
    let o = w.t.run_in(&w.ns, &["check", file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // ...`up` refuses it, naming the setting, and starts nothing.
    let o = w.t.run_in(&w.ns, &["up", "--trust-file", "-d", file]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("container web: this tfctl checks but does not run tty yet"), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&w.t.run_in(&w.ns, &["ps", "--format", "json"]).stdout).unwrap();
    assert_eq!(v["apps"], serde_json::json!([]));
}

#[test]
fn aliases_resolve_from_peers_and_extra_hosts_and_dns_are_written() {
    let w = World::new("names");
    let up = w.up(
        "nm",
        &format!(
            "container \"db\" {{\n image \"{i}\"\n command \"sleep\" \"300\"\n init\n stop-timeout \"1s\"\n alias \"database\"\n}}\ncontainer \"web\" {{\n image \"{i}\"\n command \"sleep\" \"300\"\n init\n stop-timeout \"1s\"\n extra-host \"gw.example\" \"192.0.2.1\"\n dns \"192.0.2.53\"\n}}\n",
            i = w.image
        ),
    );
    let v = up.ps();
    let db = v["apps"][0]["containers"].as_array().unwrap().iter().find(|c| c["name"] == "db").unwrap()["address"].as_str().unwrap().to_string();
    // ping resolves the alias through /etc/hosts and names the address it resolved to, whether
    // or not the firewall lets the echo through.
    let o = up.run(&["exec", "nm/web", "--", "ping", "-c1", "-W1", "database"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains(&format!("PING database ({db})")), "{out}{}", stderr(&o));
    // The control: a name nobody gave does not resolve.
    let o = up.run(&["exec", "nm/web", "--", "ping", "-c1", "-W1", "datastore"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("PING datastore ("));
    let hosts = String::from_utf8_lossy(&up.run(&["exec", "nm/web", "--", "cat", "/etc/hosts"]).stdout).into_owned();
    assert!(hosts.contains("192.0.2.1\tgw.example\n") && hosts.contains("\tdb.nm db\n"), "{hosts}");
    let resolv = String::from_utf8_lossy(&up.run(&["exec", "nm/web", "--", "cat", "/etc/resolv.conf"]).stdout).into_owned();
    assert_eq!(resolv, "nameserver 192.0.2.53\n");
    // db did not ask for dns: it keeps the host's nameservers.
    let resolv = String::from_utf8_lossy(&up.run(&["exec", "nm/db", "--", "cat", "/etc/resolv.conf"]).stdout).into_owned();
    assert!(!resolv.contains("192.0.2.53"), "{resolv}");
}

#[test]
fn a_named_network_admits_its_members_and_only_them() {
    let w = World::new("nets");
    let sleeper = |name: &str, extra: &str| format!("container \"{name}\" {{\n image \"{}\"\n command \"sleep\" \"300\"\n init\n stop-timeout \"1s\"\n{extra}}}\n", w.image);
    let up = w.up(
        "nw",
        &format!(
            "container \"api\" {{\n image \"{}\"\n command \"sh\" \"-c\" \"nc -ll -p 8080 -e echo ok\"\n init\n stop-timeout \"1s\"\n network \"back\"\n}}\n{}{}",
            w.image,
            sleeper("worker", " network \"back\"\n"),
            sleeper("outsider", " network \"front\"\n"),
        ),
    );
    let answer = |from: &str| {
        let o = up.run(&["exec", &format!("nw/{from}"), "--", "sh", "-c", "echo | nc -w 1 api 8080"]);
        String::from_utf8_lossy(&o.stdout).contains("ok")
    };
    assert!(answer("worker"), "a member of api's network is not admitted");
    // The control: a container of another network is dropped by api's firewall.
    assert!(!answer("outsider"), "a container of another network reached api");
    // The file is shown as written: the network, not the rules it stands for.
    let file = w.dir.path().join("app.kdl");
    let o = up.run(&["config", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains("network \"back\"") && !text.contains("allow from="), "{text}");
}

#[test]
fn a_container_log_rotates_at_its_own_size() {
    let w = World::new("logsize");
    // 4000 lines of 100 bytes: 400 kB of output against a 64K limit (the host's is 10M).
    let up = w.up(
        "lg",
        &format!(
            "container \"chatty\" {{\n image \"{}\"\n command \"sh\" \"-c\" \"i=0; while [ $$i -lt 4000 ]; do printf '%099d\\\\n' $$i; i=$$((i+1)); done; sleep 300\"\n init\n stop-timeout \"1s\"\n log size=\"64K\"\n}}\n",
            w.image
        ),
    );
    let logs = up.state_dir().join("apps/lg/logs");
    let current = logs.join("chatty.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !logs.join("chatty.log.1").exists() {
        assert!(std::time::Instant::now() < deadline, "the log never rotated: {:?}", std::fs::metadata(&current).map(|m| m.len()));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for f in [current, logs.join("chatty.log.1")] {
        let len = std::fs::metadata(&f).unwrap().len();
        assert!(len <= 64 * 1024, "{} is {len} bytes, above its 64K", f.display());
    }
}
