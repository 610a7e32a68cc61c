//! The samples load, and the resolved model survives a trip through `to_kdl`: loading the
//! rendered file from the same folder gives the same model.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tfctl_schema::model::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

/// Renders `app` and loads the result as the same file name in the same folder.
fn reload(app: &App) -> App {
    let text = tfctl_schema::to_kdl(app);
    let name = app.file.file_name().unwrap().to_str().unwrap();
    match tfctl_schema::load_str(name, &text, &app.dir, &no_env) {
        Ok(again) => again,
        Err(d) => panic!(
            "to_kdl output does not load:\n{text}\n{}",
            d.render_plain(100)
        ),
    }
}

#[test]
fn every_sample_loads_and_round_trips() {
    let mut seen = 0;
    for entry in std::fs::read_dir(samples()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "kdl") {
            let app = tfctl_schema::load(&path, &no_env).unwrap_or_else(|d| {
                panic!("{} does not load:\n{}", path.display(), d.render_plain(100))
            });
            assert!(app.file.is_absolute() && app.dir.is_absolute());
            for c in &app.containers {
                assert!(
                    c.image.starts_with("oci:/"),
                    "{}: samples use local images",
                    c.name
                );
                // The busybox image scripts/setup.sh builds, or the Debian-built ones of
                // scripts/real-images.sh (samples/real-stack.kdl).
                assert!(
                    c.image.ends_with("/samples/images/busybox") || c.image.starts_with("oci:/var/cache/tfctl-real-images:"),
                    "{}",
                    c.image
                );
            }
            assert_eq!(reload(&app), app, "{}", path.display());
            seen += 1;
        }
    }
    assert!(
        seen >= 3,
        "expected web, three-tier and fixture samples, found {seen}"
    );
}

#[test]
fn three_tier_sample_has_what_it_promises() {
    let app = tfctl_schema::load(&samples().join("three-tier.kdl"), &no_env).unwrap();
    assert_eq!(app.secrets[0].source, SecretSource::Generate(32));
    let db = app.container("db").unwrap();
    assert!(matches!(&db.mounts[0].source, MountSource::Volume(v) if v == "db-data"));
    assert_eq!(
        db.allow,
        [Allow {
            from: Peer::Container("api".into()),
            ports: Some(PortRange {
                start: 5432,
                end: 5432
            }),
            proto: None
        }]
    );
    let api = app.container("api").unwrap();
    assert_eq!(
        api.after,
        [After {
            container: "db".into(),
            until: Until::Healthy,
            restart: false,
        }]
    );
    let conf = api
        .files
        .iter()
        .find(|f| f.path == "/etc/api.conf")
        .unwrap();
    assert!(conf.template && conf.mode == 0o400);
    let cgi = api
        .files
        .iter()
        .find(|f| f.path == "/var/www/cgi-bin/status")
        .unwrap();
    match &cgi.content {
        // `$$` in the app file hands a literal `$` to the shell.
        FileContent::Inline(s) => assert!(s.starts_with("#!/bin/sh\n") && s.contains("$DB_HOST")),
        other => panic!("{other:?}"),
    }
    let front = app.container("front").unwrap();
    assert_eq!(front.publish[0].host_port, 8080);
    assert!(app.containers.iter().all(|c| c.health.is_some()));
    assert!(!app.hooks.is_empty() && app.containers.iter().any(|c| !c.hooks.is_empty()));
}

/// An app using every node and property of the language.
const EVERYTHING: &str = r#"
app "everything"
network subnet="10.89.7.0/24"
egress "deny"
secret "pw" from-file="./secrets/pw"
secret "token" from-env="API_TOKEN"
secret "key" generate=48
volume "data"
on "up" on-fail="fail" timeout="1m" { run "./notify.sh" "up"; }
on "down" { run "true"; }
container "db" {
    image "oci:images/busybox:1.36"
    command "sh" "-c" "exec nc -ll -p 5432 -e cat /data/x"
    one-shot
}
container "web" {
    image "registry.example.com:5000/shop/web:1.4"
    entrypoint "/bin/sh" "-c"
    command "exec httpd -f" 8080
    workdir "/srv"
    user "1000:1000"
    hostname "www"
    env-file "./web.env"
    env A="1" B=2 MODE="${MODE:-prod}" DOLLAR="$$HOME"
    file "/etc/motd" "hello\n" mode=0o600 owner="0:0"
    file "/etc/app.conf" from="./conf/app.conf" template=#true
    file "/etc/db.conf" "host={{ ip.db }} name={{ name.db }} pw={{ secret.pw }}" template=#true
    secret "pw"
    secret "key" at="/keys/key" mode=0o440 owner="1000:1000"
    secret "token" env="TOKEN"
    mount "data" at="/data" read-only=#true
    mount "./html" at="/var/www"
    mount "./made" at="/made" create=#true
    tmpfs "/tmp" size="64M"
    tmpfs "/run/cache"
    shm-size "128M"
    publish 8080 to=80
    publish 0 to=8443 host-ip="127.0.0.1" proto="tcp"
    publish 5353 to=53 proto="udp"
    allow from="db" port=80
    allow from="host"
    allow from="any" port="8000-8099" proto="tcp"
    allow from="10.0.0.0/8" proto="udp"
    egress "allow"
    allow-egress to="host" port=53 proto="udp"
    allow-egress to="192.0.2.0/24"
    after "db" until="completed"
    health {
        http "http://127.0.0.1:80/health"
        interval "1m30s"
        timeout "500ms"
        retries 5
        start-period "10s"
    }
    restart "on-failure" max=4
    on "started" { exec "test" "-f" "/etc/motd"; run "echo" "started"; }
    on "exited" on-fail="ignore" timeout="5s" { run "echo" "$$TFCTL_EXIT_CODE"; }
    limits memory="256M" cpus=0.5 pids=256
    ulimit "nofile" soft=1024 hard=2048
    ulimit "nproc" soft=64
    cap-add "NET_ADMIN" "cap_sys_ptrace"
    cap-drop "MKNOD"
    seccomp "./seccomp.json"
    sysctl "net.ipv4.ip_unprivileged_port_start" 0
    stop-signal "QUIT"
    stop-timeout "0s"
    read-only
    init
    sleep
}
"#;

#[test]
fn every_node_resolves_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (path, text) in [
        ("secrets/pw", "hunter2"),
        ("web.env", "A=from-file\nC=3\n"),
        ("conf/app.conf", "db={{ ip.db }}\n"),
        ("seccomp.json", "{}"),
        ("html/index.html", "hi"),
        ("app.kdl", EVERYTHING),
    ] {
        std::fs::create_dir_all(d.join(path).parent().unwrap()).unwrap();
        std::fs::write(d.join(path), text).unwrap();
    }
    let app = tfctl_schema::load(&d.join("app.kdl"), &no_env)
        .unwrap_or_else(|e| panic!("{}", e.render_plain(100)));
    let web = app.container("web").unwrap();
    let dir = std::path::absolute(d).unwrap();
    assert_eq!(app.subnet.unwrap().to_string(), "10.89.7.0/24");
    assert_eq!(
        app.secrets[0].source,
        SecretSource::FromFile(dir.join("secrets/pw"))
    );
    assert_eq!(
        app.container("db").unwrap().image,
        format!("oci:{}:1.36", dir.join("images/busybox").display())
    );
    assert!(app.container("db").unwrap().one_shot);
    assert_eq!(
        web.command.as_deref(),
        Some(&["exec httpd -f".to_string(), "8080".to_string()][..])
    );
    // env-file first, then env nodes; a later key wins in the place of its first use.
    let env: Vec<(&str, &str)> = web
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("A", "1"),
            ("C", "3"),
            ("B", "2"),
            ("MODE", "prod"),
            ("DOLLAR", "$HOME")
        ]
    );
    assert_eq!(web.files[0].mode, 0o600);
    assert_eq!(web.files[1].mode, 0o644, "default file mode");
    assert_eq!(
        web.files[1].content,
        FileContent::From(dir.join("conf/app.conf"))
    );
    assert_eq!(
        web.secrets[0].target,
        SecretTarget::File {
            path: "/run/secrets/pw".into(),
            mode: 0o400,
            owner: None
        }
    );
    assert_eq!(web.secrets[2].target, SecretTarget::Env("TOKEN".into()));
    assert_eq!(web.mounts[1].source, MountSource::Bind(dir.join("html")));
    assert!(!web.mounts[1].create);
    // Missing, but asked to be made: valid.
    assert_eq!(web.mounts[2].source, MountSource::Bind(dir.join("made")));
    assert!(web.mounts[2].create);
    assert_eq!(web.tmpfs[0].size, Some(64 << 20));
    assert_eq!(web.shm_size, 128 << 20);
    assert_eq!(web.publish[1].host_ip.to_string(), "127.0.0.1");
    assert_eq!(web.publish[0].host_ip.to_string(), "0.0.0.0");
    assert_eq!(web.publish[2].proto, Proto::Udp);
    assert_eq!(
        web.allow[2].ports,
        Some(PortRange {
            start: 8000,
            end: 8099
        })
    );
    let h = web.health.as_ref().unwrap();
    assert_eq!(
        (h.interval, h.timeout, h.retries),
        (Duration::from_secs(90), Duration::from_millis(500), 5)
    );
    assert_eq!(
        web.hooks[0].on_fail,
        OnFail::Fail,
        "started hooks fail by default"
    );
    assert_eq!(web.hooks[1].timeout, Duration::from_secs(5));
    assert_eq!(
        app.hooks[1].timeout,
        Duration::from_secs(30),
        "default hook timeout"
    );
    assert_eq!(web.limits.cpus, Some(0.5));
    assert_eq!(web.ulimits[1].hard, 64, "hard defaults to soft");
    assert_eq!(web.cap_add, ["CAP_NET_ADMIN", "CAP_SYS_PTRACE"]);
    assert_eq!(web.seccomp, Seccomp::Profile(dir.join("seccomp.json")));
    assert_eq!(web.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(web.stop_timeout, Duration::ZERO);
    assert!(web.read_only && web.init && web.sleep && !web.one_shot);
    assert_eq!(reload(&app), app);

    // Secrets appear only by their source.
    let rendered = tfctl_schema::to_kdl(&app);
    assert!(!rendered.contains("hunter2"));
    let json = serde_json::to_string(&app).unwrap();
    assert!(!json.contains("hunter2"));
}

#[test]
fn defaults_are_filled_in() {
    let app = tfctl_schema::load_str(
        "a.kdl",
        "app \"a\"\ncontainer \"c\" { image \"busybox\"; health { tcp 80; }; }\n",
        Path::new("/x"),
        &no_env,
    )
    .unwrap();
    let c = &app.containers[0];
    assert_eq!(app.egress, Egress::Allow);
    assert_eq!(c.hostname, "c");
    assert_eq!(c.stop_signal, None, "unset: the image's StopSignal, else SIGTERM");
    assert_eq!(c.stop_timeout, Duration::from_secs(10));
    assert_eq!(
        c.restart,
        Restart {
            policy: RestartPolicy::No,
            max: None
        }
    );
    assert_eq!(c.seccomp, Seccomp::Default);
    let h = c.health.as_ref().unwrap();
    assert_eq!(
        (h.interval, h.timeout, h.retries, h.start_period),
        (
            Duration::from_secs(5),
            Duration::from_secs(3),
            3,
            Duration::ZERO
        )
    );
    assert_eq!(app.file, Path::new("/x/a.kdl"));
}

/// The nodes `tfctl run`'s Docker flags share with app files load into the model `run` fills,
/// and survive `to_kdl`.
#[test]
fn run_flag_nodes_load_and_round_trip() {
    let text = r#"app "flags"
container "web" {
    image "busybox"
    group-add "audio" 4242
    label "com.example.team" "web"
    extra-host "db.local" "192.0.2.10"
    dns "192.0.2.53" "2001:db8::53"
    network "none"
    privileged
}
"#;
    let app = tfctl_schema::load_str("flags.kdl", text, &samples(), &no_env)
        .unwrap_or_else(|d| panic!("{}", d.render_plain(100)));
    let c = &app.containers[0];
    assert_eq!(c.group_add, vec!["audio".to_string(), "4242".to_string()]);
    assert_eq!(c.labels, vec![("com.example.team".to_string(), "web".to_string())]);
    assert_eq!(c.extra_hosts, vec![ExtraHost { name: "db.local".into(), addr: "192.0.2.10".parse().unwrap() }]);
    assert_eq!(c.dns, vec!["192.0.2.53".parse::<std::net::IpAddr>().unwrap(), "2001:db8::53".parse().unwrap()]);
    assert_eq!(c.network, NetworkMode::None);
    assert!(c.privileged);
    assert_eq!(&reload(&app), &app);
    // Left out, each is at Docker's default.
    let plain = Container::new("web", "busybox");
    assert!(plain.group_add.is_empty() && plain.labels.is_empty() && plain.extra_hosts.is_empty() && plain.dns.is_empty());
    assert_eq!((plain.network, plain.privileged), (NetworkMode::App, false));
}

/// The Compose-shaped nodes load to the model and survive `to_kdl`.
#[test]
fn compose_features_load_and_round_trip() {
    let text = r#"app "shop"
label "team" "payments"
container "db" {
    image "busybox"
    alias "database"
    network "back"
    log size="1M" files=3
    restart "unless-stopped"
}
container "web" replicas=3 {
    image "busybox"
    profile "debug" "ops"
    label "tier" "front"
    label "tier" "edge"
    extra-host "gw.local" "192.0.2.1"
    dns "1.1.1.1" "9.9.9.9"
    network "back"
    after "db" restart=#true
    tty
}
container "probe" {
    image "busybox"
    network "host"
    pid "host"
    privileged
    device "/dev/fuse"
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let app = tfctl_schema::load_str("app.kdl", text, dir.path(), &no_env)
        .unwrap_or_else(|d| panic!("{}", d.render_plain(100)));
    assert_eq!(app.labels, [("team".to_string(), "payments".to_string())]);
    let db = app.container("db").unwrap();
    assert_eq!(db.aliases, ["database"]);
    assert_eq!(db.networks, ["back"]);
    assert_eq!(db.log, LogOptions { size: Some(1 << 20), files: Some(3) });
    assert_eq!(db.restart.policy, RestartPolicy::UnlessStopped);
    let web = app.container("web").unwrap();
    assert_eq!(web.replicas, 3);
    assert_eq!(web.instance_names(), ["web-1", "web-2", "web-3"]);
    assert_eq!(web.profiles, ["debug", "ops"]);
    assert!(web.in_profiles(&["ops".to_string()]) && !web.in_profiles(&[]));
    assert!(db.in_profiles(&[]));
    // A later key wins, in the place of the first.
    assert_eq!(web.labels, [("tier".to_string(), "edge".to_string())]);
    assert_eq!(web.extra_hosts, [ExtraHost { name: "gw.local".into(), addr: "192.0.2.1".parse().unwrap() }]);
    assert_eq!(web.dns.len(), 2);
    assert!(web.after[0].restart && web.tty);
    let probe = app.container("probe").unwrap();
    assert_eq!(probe.host_modes(), ["privileged", "network=host", "pid=host", "device=/dev/fuse"]);
    assert!(db.host_modes().is_empty());
    assert_eq!(reload(&app), app);
}

/// `up --profile`: containers without a profile always run, profiled ones only when named;
/// waiting for a left-out container is refused, allowing one is dropped.
#[test]
fn profiles_select_containers() {
    let text = r#"app "shop"
container "db" { image "busybox"; }
container "debug" { image "busybox"; profile "debug"; }
container "web" {
    image "busybox"
    allow from="debug"
    allow from="db"
}
container "seed" { image "busybox"; profile "dev"; after "debug"; }
"#;
    let dir = tempfile::tempdir().unwrap();
    let app = tfctl_schema::load_str("app.kdl", text, dir.path(), &no_env).unwrap();
    let names = |a: &App| a.containers.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    let mut plain = app.clone();
    plain.select_profiles(&[]).unwrap();
    assert_eq!(names(&plain), ["db", "web"]);
    assert_eq!(plain.container("web").unwrap().allow.len(), 1);
    let mut debug = app.clone();
    debug.select_profiles(&["debug".to_string()]).unwrap();
    assert_eq!(names(&debug), ["db", "debug", "web"]);
    assert_eq!(debug.container("web").unwrap().allow.len(), 2);
    let mut dev = app.clone();
    assert!(matches!(
        dev.select_profiles(&["dev".to_string()]),
        Err(ProfileError::AfterLeftOut { container, after, .. }) if container == "seed" && after == "debug"
    ));
    let mut typo = app.clone();
    let err = typo.select_profiles(&["dbug".to_string()]).unwrap_err();
    assert_eq!(err.to_string(), "no container has profile `dbug` (the app's profiles: debug, dev); check its spelling");
}

/// A named network stands for `allow` rules between each pair of its members, and only them.
#[test]
fn networks_expand_to_allow_rules_between_members() {
    let text = r#"app "shop"
container "a" { image "busybox"; network "back"; }
container "b" { image "busybox"; network "back"; network "front"; allow from="a"; }
container "c" { image "busybox"; network "front"; }
container "d" { image "busybox"; }
"#;
    let dir = tempfile::tempdir().unwrap();
    let mut app = tfctl_schema::load_str("app.kdl", text, dir.path(), &no_env).unwrap();
    app.expand_networks();
    let froms = |n: &str| -> Vec<String> {
        app.container(n).unwrap().allow.iter().map(|a| match &a.from { Peer::Container(c) => c.clone(), other => format!("{other:?}") }).collect()
    };
    assert_eq!(froms("a"), ["b"]);
    // The rule already written is not repeated.
    assert_eq!(froms("b"), ["a", "c"]);
    assert_eq!(froms("c"), ["b"]);
    assert!(froms("d").is_empty());
}
