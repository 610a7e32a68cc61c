//! `tfctl convert`: every Compose file of the corpus (tests/compose) converts with exactly the
//! warnings its `# expect:` lines name, the result passes `tfctl check`, the converted nodes
//! keep the Compose meaning, and apps whose images are busybox run with Compose's
//! reachability: peers on a shared network reach each other, others do not.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{sample_image, stderr, stdout, NetNs, Tfctl};

fn corpus_dir() -> PathBuf {
    common::repo().join("tests/compose")
}

fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// What a corpus file's header says: `# args:` (more convert arguments, relative to the
/// corpus), `# env:` (variables) and `# expect:` (one line per warning, a part of its text).
struct Header {
    args: Vec<String>,
    env: Vec<(String, String)>,
    expect: Vec<String>,
}

fn header(file: &Path) -> Header {
    let text = std::fs::read_to_string(file).unwrap();
    let mut h = Header { args: Vec::new(), env: Vec::new(), expect: Vec::new() };
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(a) = line.strip_prefix("# args:") {
            h.args.extend(a.split_whitespace().map(str::to_string));
        } else if let Some(e) = line.strip_prefix("# env:") {
            let (k, v) = e.trim().split_once('=').unwrap();
            h.env.push((k.to_string(), v.to_string()));
        } else if let Some(x) = line.strip_prefix("# expect:") {
            h.expect.push(x.trim().to_string());
        }
    }
    h
}

/// `tfctl convert FILE ARGS... -o OUT` in the corpus folder, with the header's variables and
/// BUSYBOX naming the local image.
fn convert(t: &Tfctl, file: &Path, h: &Header, out: &Path, extra: &[&str]) -> Output {
    let mut cmd = t.cmd();
    cmd.current_dir(corpus_dir()).arg("convert").arg(file).args(&h.args).arg("-o").arg(out).args(extra);
    cmd.env("BUSYBOX", sample_image());
    for (k, v) in &h.env {
        cmd.env(k, v);
    }
    cmd.output().expect("tfctl runs")
}

fn warnings(o: &Output) -> Vec<String> {
    stderr(o).lines().filter_map(|l| l.strip_prefix("warning: ")).map(str::to_string).collect()
}

#[test]
fn corpus_converts_with_the_expected_warnings_and_passes_check() {
    let files = corpus();
    assert!(files.len() >= 25, "the corpus has {} Compose files", files.len());
    let t = Tfctl::new();
    let out_dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let h = header(file);
        let out = out_dir.path().join(format!("{name}.kdl"));
        let o = convert(&t, file, &h, &out, &[]);
        if !o.status.success() {
            failures.push(format!("{name}: convert failed: {}", stderr(&o)));
            continue;
        }
        // Exactly the expected warnings: each expectation matches its own warning.
        let mut got = warnings(&o);
        for want in &h.expect {
            match got.iter().position(|w| w.contains(want.as_str())) {
                Some(i) => {
                    got.remove(i);
                }
                None => failures.push(format!("{name}: no warning containing {want:?}; got {:?}", warnings(&o))),
            }
        }
        if !got.is_empty() {
            failures.push(format!("{name}: unexpected warnings {got:?}"));
        }
        // Every warning is also a comment at its place in the app file.
        let kdl = std::fs::read_to_string(&out).unwrap();
        let comments = kdl.lines().filter(|l| l.trim_start().starts_with("// compose: ")).count();
        if comments < h.expect.len() {
            failures.push(format!("{name}: {comments} `// compose:` comments for {} warnings:\n{kdl}", h.expect.len()));
        }
        let c = t.run(&["check", out.to_str().unwrap()]);
        if !c.status.success() {
            failures.push(format!("{name}: check failed:\n{}\n{kdl}", stderr(&c)));
        }
        // --strict: exit 2 and nothing written when anything did not convert exactly.
        let strict_out = out_dir.path().join(format!("{name}.strict.kdl"));
        let s = convert(&t, file, &h, &strict_out, &["--strict"]);
        let want = if h.expect.is_empty() { 0 } else { 2 };
        if s.status.code() != Some(want) || strict_out.exists() != (want == 0) {
            failures.push(format!("{name}: --strict exited {:?} (want {want}), wrote {}: {}", s.status.code(), strict_out.exists(), stderr(&s)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The converted text of a corpus file.
fn converted(name: &str) -> String {
    let t = Tfctl::new();
    let file = corpus_dir().join(format!("{name}.yaml"));
    let h = header(&file);
    let out = t.root.path().join("out.kdl");
    let o = convert(&t, &file, &h, &out, &[]);
    assert!(o.status.success(), "{name}: {}", stderr(&o));
    std::fs::read_to_string(out).unwrap()
}

fn assert_has(kdl: &str, lines: &[&str]) {
    for l in lines {
        assert!(kdl.lines().any(|k| k.trim() == *l), "missing `{l}` in:\n{kdl}");
    }
}

fn assert_lacks(kdl: &str, parts: &[&str]) {
    for p in parts {
        assert!(!kdl.contains(p), "unexpected `{p}` in:\n{kdl}");
    }
}

#[test]
fn converted_nodes_keep_the_compose_meaning() {
    let kdl = converted("web-db-cache");
    assert_has(&kdl, &[
        "app \"shop\"",
        "image \"registry.example.com/shop/web:1.4\"",
        "publish 8080 to=8000",
        "after \"db\" until=\"healthy\"",
        "after \"cache\"",
        "restart \"unless-stopped\"",
        "mount \"db-data\" at=\"/var/lib/postgresql/data\"",
        "exec \"/bin/sh\" \"-c\" \"pg_isready -U shop -d shop\"",
        "interval \"10s\"",
        "retries 5",
        "secret \"db-password\" at=\"/run/secrets/db_password\"",
        "command \"redis-server\" \"--appendonly\" \"yes\"",
        "volume \"cache-data\"",
    ]);

    // Files merged in order, with !override and !reset.
    let kdl = converted("override-base");
    assert_has(&kdl, &["image \"example/web:1.0.0\"", "command \"node\" \"server.js\"", "publish 80 to=3000", "env NODE_ENV=\"production\"", "env LOG_LEVEL=\"debug\""]);
    assert_lacks(&kdl, &["publish 3000", "publish 5432", "/app/src", "npm"]);

    // A service with only `build` runs the image Compose would build.
    assert_has(&converted("build-only"), &["image \"myproject-app\"", "image \"myproject-worker\""]);

    // extends (same file and another), anchors and interpolation.
    let kdl = converted("extends");
    assert_has(&kdl, &["image \"example/worker:2.3\"", "env QUEUE=\"default\"", "stop-signal \"SIGINT\"", "stop-timeout \"90s\"", "command \"app\" \"schedule\"", "restart \"on-failure\" max=5"]);
    let kdl = converted("interpolation");
    assert_has(&kdl, &[
        "image \"docker.io/library/nginx:1.27\"",
        "env DOMAIN=\"example.org\"",
        "env FROM_DOTENV=\"read from .env\"",
        "env LITERAL=\"$$HOME stays literal\"",
        "env ALT=\"domain is set\"",
        "publish 8089 to=80",
        "command \"sh\" \"-c\" \"echo $${DOMAIN}\"",
    ]);
    assert_has(&converted("anchors"), &["image \"example/app:1.0\"", "env JOBS_CONCURRENCY=\"8\"", "env CACHE_HOST=\"cache\""]);

    // A short-syntax bind is created when missing, as Docker does; a long one says so itself.
    let kdl = converted("volumes-long");
    assert!(kdl.contains("at=\"/app/src\" read-only=#true\n") || kdl.lines().any(|l| l.contains("at=\"/app/src\" read-only=#true") && !l.contains("create")), "{kdl}");
    assert!(kdl.lines().any(|l| l.contains("at=\"/app/uploads\"") && l.contains("create=#true")), "{kdl}");
    assert_has(&kdl, &["tmpfs \"/tmp\" size=\"64m\"", "tmpfs \"/run\" size=\"16m\"", "mount \"app-data\" at=\"/var/lib/app/anon\""]);
    assert!(converted("gitea").lines().any(|l| l.contains("at=\"/data\"") && l.contains("create=#true")));

    // Secrets and configs as files with their targets, owners and modes.
    let kdl = converted("secrets");
    assert_has(&kdl, &["secret \"api-token\" from-env=\"API_TOKEN\"", "secret \"api-token\" at=\"/run/secrets/token\" mode=0o440 owner=\"1000:1000\"", "secret \"tls-key\" at=\"/etc/ssl/private/app.key\" mode=0o400"]);
    assert_lacks(&kdl, &["not-there"]);
    let kdl = converted("configs");
    assert_has(&kdl, &["file \"/robots\" \"User-agent: *\\nDisallow: /\\n\" mode=0o444"]);

    // Limits, security, ports and reachability on an internal network.
    assert_has(&converted("limits"), &["limits memory=\"512M\" cpus=0.5 pids=200", "restart \"on-failure\" max=3", "ulimit \"nofile\" soft=20000 hard=40000", "limits memory=\"1g\" cpus=1.5 pids=100", "shm-size \"256m\""]);
    assert_has(&converted("security"), &["cap-drop \"ALL\"", "cap-add \"NET_BIND_SERVICE\"", "read-only", "init", "seccomp \"unconfined\"", "sysctl \"net.ipv4.conf.all.src_valid_mark\" \"1\"", "user \"1000:1000\"", "workdir \"/app\""]);
    let kdl = converted("ports");
    assert_has(&kdl, &["publish 0 to=3000", "publish 0 to=3002", "publish 9091 to=8081", "publish 0 to=5000 host-ip=\"127.0.0.1\"", "publish 6060 to=6060 proto=\"udp\"", "publish 8081 to=80 host-ip=\"127.0.0.1\"", "publish 5353 to=53 host-ip=\"127.0.0.1\" proto=\"udp\""]);
    let kdl = converted("internal-network");
    let db = kdl.split("container \"db\"").nth(1).unwrap();
    assert_has(db, &["egress \"deny\"", "network \"back\""]);
    let app = kdl.split("container \"app\"").nth(1).unwrap().split("container \"db\"").next().unwrap();
    assert!(!app.contains("egress \"deny\""), "app is also on a network with a way out:\n{kdl}");
    let batch = kdl.split("container \"batch\"").nth(1).unwrap();
    assert_has(batch, &["network \"none\""]);
    assert_lacks(batch, &["allow ", "network \"back\""]);
    assert_has(app, &["network \"front\"", "network \"back\""]);
    assert_lacks(app, &["allow "]);
    let kdl = converted("reverse-proxy");
    let whoami = kdl.split("container \"whoami\"").nth(1).unwrap().split("container \"blog\"").next().unwrap();
    assert_has(whoami, &["network \"apps\"", "label \"traefik.http.routers.whoami.rule\" \"Host(`whoami.localhost`)\""]);
    assert_lacks(whoami, &["network \"edge\""]);
    let proxy = kdl.split("container \"proxy\"").nth(1).unwrap().split("container \"whoami\"").next().unwrap();
    assert_has(proxy, &["network \"edge\"", "network \"apps\"", "publish 8081 to=8080 host-ip=\"127.0.0.1\""]);
    // Named networks stand for the per-pair rules.
    assert_lacks(&kdl, &["allow "]);
    let blog = kdl.split("container \"blog\"").nth(1).unwrap();
    assert_has(blog, &["alias \"ghost\""]);
}

#[test]
fn without_files_the_folder_compose_file_and_its_override_are_read() {
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), "services:\n  web:\n    image: nginx\n").unwrap();
    std::fs::write(dir.path().join("compose.override.yaml"), "services:\n  web:\n    ports: ['8080:80']\n    env_file: web.env\n").unwrap();
    std::fs::write(dir.path().join("web.env"), "A=1\n").unwrap();
    let o = t.cmd().current_dir(dir.path()).arg("convert").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let kdl = stdout(&o);
    // Host paths are written from the app file's folder, here the current one.
    assert_has(&kdl, &["image \"nginx\"", "publish 8080 to=80", "env-file \"./web.env\""]);
    let o = t.cmd().current_dir(dir.path()).args(["convert", "-o", "app.kdl"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let c = t.cmd().current_dir(dir.path()).args(["check", "app.kdl"]).output().unwrap();
    assert!(c.status.success(), "{}", stderr(&c));
    let name = dir.path().file_name().unwrap().to_string_lossy().to_ascii_lowercase();
    assert!(kdl.contains(&format!("app \"{}\"", name.trim_start_matches(['.', '_', '-']).replace(['_', '.'], "-"))), "{kdl}");

    let empty = tempfile::tempdir().unwrap();
    let o = t.cmd().current_dir(empty.path()).arg("convert").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("compose.yaml"), "{}", stderr(&o));
}

#[test]
fn bad_compose_files_are_refused_with_the_reason() {
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    for (text, says) in [
        ("services:\n  web:\n    image: ${IMAGE:?name the web image}\n", "name the web image"),
        ("services:\n  web: [\n", "not valid YAML"),
        ("services:\n  web:\n    volumes: ['data:/data']\n    image: x\n", "volume `data` is not defined"),
        ("services:\n  a:\n    extends: b\n  b:\n    extends: a\n", "cycle"),
        ("services:\n  web:\n    command: echo 'unclosed\n    image: x\n", "quote is not closed"),
        ("volumes:\n  data:\n", "no services"),
    ] {
        let f = dir.path().join("compose.yaml");
        std::fs::write(&f, text).unwrap();
        let o = t.run(&["convert", f.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{text}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{text}: {}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
}

/// A converted corpus app, up in its own namespace and state root.
struct Running {
    t: Tfctl,
    ns: NetNs,
    _dir: tempfile::TempDir,
    app: String,
    file: String,
}

impl Running {
    fn up(corpus_name: &str, app: &str) -> Running {
        Running::up_with(corpus_name, app, &[])
    }

    /// `up` with more arguments (`--profile P`).
    fn up_with(corpus_name: &str, app: &str, up_args: &[&str]) -> Running {
        let t = Tfctl::new();
        let dir = tempfile::tempdir().unwrap();
        let file = corpus_dir().join(format!("{corpus_name}.yaml"));
        let h = header(&file);
        let out = dir.path().join("app.kdl");
        let o = convert(&t, &file, &h, &out, &["-p", app]);
        assert!(o.status.success(), "{}", stderr(&o));
        let ns = NetNs::new(&corpus_name[..4]);
        let file = out.to_string_lossy().into_owned();
        let mut args = vec!["up", "--trust-file", "--wait=60s"];
        args.extend_from_slice(up_args);
        args.push(&file);
        let o = t.run_in(&ns, &args);
        let r = Running { t, ns, _dir: dir, app: app.to_string(), file };
        assert_eq!(o.status.code(), Some(0), "up: {}\n{}", stderr(&o), std::fs::read_to_string(&r.file).unwrap());
        r
    }

    fn addresses(&self) -> HashMap<String, String> {
        self.t.addresses_in(&self.ns, &self.app)
    }

    /// Whether container `from` gets "ok" from `to:port` (`to` a name or an address).
    fn reaches(&self, from: &str, to: &str, port: u16) -> bool {
        self.t.reaches_in(&self.ns, &format!("{}/{from}", self.app), to, port)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let o = self.t.run_in(&self.ns, &["down", "--volumes", &self.file]);
        assert!(o.status.success() || std::thread::panicking(), "down: {}", stderr(&o));
    }
}

#[test]
fn converted_networks_give_the_reachability_compose_gives() {
    let r = Running::up("net-split", "netsplit");
    let ip = r.addresses();
    // Peers on a shared network reach each other, by service name, on any port.
    assert!(r.reaches("front", "api", 8000), "front → api:8000 (frontend network)");
    assert!(r.reaches("front", "api", 9000), "front → api:9000 (no expose: every port)");
    assert!(r.reaches("api", "db", 5432), "api → db:5432 (backend network)");
    assert!(r.reaches("api", "front", 80), "api → front:80 (frontend network)");
    // No shared network: no way through, even by address.
    assert!(!r.reaches("front", &ip["db"], 5432), "front must not reach db: they share no network");
    assert!(!r.reaches("db", &ip["front"], 80), "db must not reach front: they share no network");
}

#[test]
fn expose_limits_peers_to_the_exposed_ports() {
    let r = Running::up("expose-only", "exposeonly");
    let ip = r.addresses();
    assert!(r.reaches("app", "db", 5432), "app → db:5432 (exposed)");
    assert!(!r.reaches("app", &ip["db"], 6000), "app → db:6000 is not exposed");
    // The database listens there: the firewall, not a missing server, said no.
    let o = r.t.run_in(&r.ns, &["exec", &format!("{}/db", r.app), "--", "sh", "-c", "echo | nc -w 1 127.0.0.1 6000"]);
    assert!(stdout(&o).contains("ok"), "db answers on 6000 itself: {}", stderr(&o));
}

#[test]
fn compose_features_become_app_format_nodes() {
    let kdl = converted("profiles");
    let adminer = kdl.split("container \"adminer\"").nth(1).unwrap().split("container ").next().unwrap();
    assert_has(adminer, &["profile \"debug\""]);
    let db = kdl.split("container \"db\"").nth(1).unwrap().split("container ").next().unwrap();
    assert_lacks(db, &["profile"]);

    assert_has(&converted("logging-labels"), &["label \"com.example.team\" \"payments\"", "label \"com.example.tier\" \"web\"", "log size=\"10m\" files=2"]);
    let kdl = converted("dns-hosts");
    assert_has(&kdl, &["extra-host \"db.internal\" \"10.0.0.5\"", "dns \"1.1.1.1\" \"9.9.9.9\"", "device \"/dev/fuse\""]);
    assert_lacks(&kdl, &["extra-host \"host.docker.internal\""]);
    let kdl = converted("monitoring");
    let exporter = kdl.split("container \"node-exporter\"").nth(1).unwrap().split("container ").next().unwrap();
    assert_has(exporter, &["network \"host\"", "pid \"host\""]);
    assert_lacks(exporter, &["allow ", "network \"default\""]);
    let cadvisor = kdl.split("container \"cadvisor\"").nth(1).unwrap();
    assert_has(cadvisor, &["privileged", "device \"/dev/kmsg\"", "allow from=\"prometheus\" port=8080 proto=\"tcp\""]);
    // cadvisor's `expose` keeps it off the network; its peers let it in as a member would be.
    assert_lacks(cadvisor, &["network \"default\""]);
    assert_has(&kdl, &["allow from=\"cadvisor\"", "restart \"unless-stopped\""]);
    assert_has(&converted("security"), &["privileged"]);
    assert_has(&converted("depends-conditions"), &["after \"db\" until=\"healthy\" restart=#true"]);

    let kdl = converted("host-features");
    assert_has(&kdl, &[
        "container \"worker\" replicas=3 {",
        "container \"web\" replicas=2 {",
        "publish 0 to=80",
        "tty",
        "group-add \"audio\" \"1001\"",
        "log size=\"5m\"",
        "device \"/dev/nvidia0\"",
        "device \"/dev/kvm\"",
        "extra-host \"db\" \"10.0.0.5\"",
        "extra-host \"db\" \"fd00::5\"",
        "dns \"::1\"",
        "alias \"log-sink\"",
        "network \"logs\"",
    ]);
    // Left out, with a warning and a comment only.
    let nodes: String = kdl.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    assert_lacks(&nodes, &["publish 8080", "/dev/dri", "alias \"worker\"", "pid "]);
}

/// The names of the containers `ps` lists for the app.
fn listed(r: &Running) -> Vec<String> {
    let mut names: Vec<String> = r.addresses().into_keys().collect();
    names.sort();
    names
}

#[test]
fn profiles_run_only_when_up_names_them() {
    let r = Running::up("profiles-run", "profnone");
    assert_eq!(listed(&r), ["web"], "without --profile only the service without profiles runs");
    drop(r);
    let r = Running::up_with("profiles-run", "profdebug", &["--profile", "debug"]);
    assert_eq!(listed(&r), ["debug", "web"], "--profile debug adds the debug service");
    assert!(r.reaches("debug", "web", 80), "debug → web:80 on the default network");
}
