//! Every validation rule, as the user sees it: the rendered diagnostic without colour (file,
//! line and column of the primary label, the label, the hint), compared with a committed
//! snapshot in tests/snapshots/. Each case also asserts the stable code of its first error.

use std::path::Path;

fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/root".to_string()),
        "TAG" => Some("1.36".to_string()),
        _ => None,
    }
}

/// Loads `text` as `app.kdl` in /srv/app (which need not exist) and renders its diagnostics.
fn render(text: &str) -> (Vec<&'static str>, String) {
    let diags = tfctl_schema::load_str("app.kdl", text, Path::new("/srv/app"), &env)
        .expect_err("the app file should have been refused");
    (
        diags.iter().map(|p| p.code).collect(),
        diags.render_plain(100),
    )
}

macro_rules! case {
    ($name:ident, $code:literal, $text:expr) => {
        #[test]
        fn $name() {
            let (codes, out) = render($text);
            assert_eq!(codes[0], $code, "first error of:\n{out}");
            insta::assert_snapshot!(stringify!($name), out);
        }
    };
}

/// A valid app with one container around `body`.
fn with(body: &str) -> String {
    format!("app \"shop\"\ncontainer \"web\" {{\n    image \"busybox\"\n{body}\n}}\n")
}

/// A valid app with one container and `top` before it.
fn top(top: &str) -> String {
    format!("app \"shop\"\n{top}\ncontainer \"web\" {{\n    image \"busybox\"\n}}\n")
}

// KDL syntax, with tfctl's own hints.
case!(
    kdl_unclosed_block,
    "tfctl::kdl-syntax",
    "app \"shop\"\ncontainer \"web\" {\n    image \"busybox\"\n"
);
case!(
    kdl_v1_boolean,
    "tfctl::kdl-v1-keyword",
    &with("    mount \"data\" at=\"/data\" read-only=true")
);
case!(
    kdl_unquoted_path,
    "tfctl::unquoted-path",
    &with("    mount ./data at=\"/data\"")
);
case!(
    kdl_missing_semicolon,
    "tfctl::missing-separator",
    "app \"shop\"\ncontainer \"web\" { image \"busybox\" init }\n"
);

case!(
    kdl_hash_comment,
    "tfctl::kdl-comment",
    "app \"shop\"\n# the web tier\ncontainer \"web\" { image \"busybox\"; }\n"
);
case!(
    kdl_unquoted_string,
    "tfctl::unquoted-string",
    "app \"shop\"\ncontainer \"web\" { image docker.io/library/busybox; }\n"
);
case!(
    kdl_docker_publish,
    "tfctl::publish-syntax",
    &with("    publish 8080:80")
);

// Shape: nodes, properties, arguments.
case!(
    unknown_node,
    "tfctl::unknown-node",
    &with("    imgae \"busybox\"")
);
case!(
    unknown_node_wrong_place,
    "tfctl::unknown-node",
    &top("image \"busybox\"")
);
case!(
    unknown_property,
    "tfctl::unknown-property",
    &with("    publish 8080 to=80 hostip=\"127.0.0.1\"")
);
case!(
    argument_count_extra,
    "tfctl::argument-count",
    &with("    workdir \"/a\" \"/b\"")
);
case!(
    argument_count_missing,
    "tfctl::argument-count",
    &with("    hostname")
);
case!(
    wrong_type,
    "tfctl::wrong-type",
    &with("    publish \"8080\" to=80")
);
case!(
    wrong_type_bool,
    "tfctl::wrong-type",
    &with("    mount \"/srv\" at=\"/srv\" read-only=\"true\"")
);
case!(
    duplicate_node,
    "tfctl::duplicate-node",
    &with("    image \"alpine\"")
);
case!(
    duplicate_property,
    "tfctl::duplicate-property",
    &with("    publish 8080 to=80 to=81")
);
case!(
    unexpected_block,
    "tfctl::unexpected-block",
    &with("    workdir \"/app\" { tag \"x\" }")
);

// Required nodes.
case!(
    missing_app,
    "tfctl::missing-app",
    "container \"web\" {\n    image \"busybox\"\n}\n"
);
case!(
    second_app,
    "tfctl::duplicate-node",
    "app \"shop\"\napp \"store\"\ncontainer \"web\" { image \"busybox\"; }\n"
);
case!(
    missing_image,
    "tfctl::missing-image",
    "app \"shop\"\ncontainer \"web\" {\n    command \"true\"\n}\n"
);
case!(
    missing_container,
    "tfctl::missing-container",
    "app \"shop\"\nvolume \"data\"\n"
);

// Names and image references.
case!(
    invalid_app_name,
    "tfctl::invalid-name",
    "app \"My Shop\"\ncontainer \"web\" { image \"busybox\"; }\n"
);
case!(
    invalid_container_name,
    "tfctl::invalid-name",
    "app \"shop\"\ncontainer \"Web_1\" { image \"busybox\"; }\n"
);
case!(
    invalid_image,
    "tfctl::invalid-image",
    "app \"shop\"\ncontainer \"web\" { image \"BusyBox:latest\"; }\n"
);
case!(
    invalid_image_digest,
    "tfctl::invalid-image",
    "app \"shop\"\ncontainer \"web\" { image \"busybox@sha256:abc\"; }\n"
);

// Duplicates.
case!(duplicate_container, "tfctl::duplicate-container", "app \"shop\"\ncontainer \"web\" { image \"busybox\"; }\ncontainer \"web\" { image \"busybox\"; }\n");
case!(
    duplicate_volume,
    "tfctl::duplicate-volume",
    &top("volume \"data\"\nvolume \"data\"")
);
case!(
    duplicate_secret,
    "tfctl::duplicate-secret",
    &top("secret \"pw\" generate=32\nsecret \"pw\" from-env=\"PW\"")
);
case!(duplicate_publish, "tfctl::duplicate-publish", "app \"shop\"\ncontainer \"a\" {\n    image \"busybox\"\n    publish 8080 to=80\n}\ncontainer \"b\" {\n    image \"busybox\"\n    publish 8080 to=80 host-ip=\"127.0.0.1\"\n}\n");
case!(
    duplicate_file_path,
    "tfctl::duplicate-path",
    &with("    file \"/etc/motd\" \"hi\"\n    file \"/etc/motd/\" \"again\"")
);

// References to things the app does not define.
case!(
    unknown_after,
    "tfctl::unknown-reference",
    &with("    after \"dbb\"")
);
case!(unknown_allow, "tfctl::unknown-reference", "app \"shop\"\ncontainer \"db\" { image \"busybox\"; }\ncontainer \"web\" {\n    image \"busybox\"\n    allow from=\"apii\" port=80\n}\n");
case!(
    unknown_volume,
    "tfctl::unknown-reference",
    &with("    mount \"data\" at=\"/data\"")
);
case!(
    unknown_secret,
    "tfctl::unknown-reference",
    &with("    secret \"db-password\"")
);
case!(
    unknown_template_ref,
    "tfctl::unknown-reference",
    &with("    file \"/etc/app.conf\" \"db={{ ip.db }}\" template=#true")
);
case!(
    invalid_template,
    "tfctl::invalid-template",
    &with("    file \"/etc/app.conf\" \"db={{ address.db }}\" template=#true")
);

// Ordering.
case!(after_cycle, "tfctl::after-cycle", "app \"shop\"\ncontainer \"a\" {\n    image \"busybox\"\n    after \"c\"\n}\ncontainer \"b\" {\n    image \"busybox\"\n    after \"a\"\n}\ncontainer \"c\" {\n    image \"busybox\"\n    after \"b\"\n}\n");
case!(after_self, "tfctl::after-cycle", &with("    after \"web\""));

// Paths and values.
case!(
    relative_container_path,
    "tfctl::relative-path",
    &with("    workdir \"app\"")
);
case!(
    invalid_duration,
    "tfctl::invalid-duration",
    &with("    stop-timeout \"10\"")
);
case!(
    invalid_size,
    "tfctl::invalid-size",
    &with("    tmpfs \"/tmp\" size=\"64 MB of RAM\"")
);
case!(
    invalid_shm_size,
    "tfctl::invalid-size",
    &with("    shm-size \"65536 pages\"")
);
case!(
    decimal_mode,
    "tfctl::invalid-mode",
    &with("    file \"/etc/motd\" \"hi\" mode=644")
);
case!(
    string_mode,
    "tfctl::invalid-mode",
    &with("    file \"/etc/motd\" \"hi\" mode=\"0644\"")
);
case!(
    mode_out_of_range,
    "tfctl::invalid-mode",
    &with("    file \"/etc/motd\" \"hi\" mode=0o77777")
);
case!(
    invalid_cidr,
    "tfctl::invalid-cidr",
    &top("network subnet=\"10.89.7.0\"")
);
case!(
    invalid_signal,
    "tfctl::invalid-signal",
    &with("    stop-signal \"SIGTREM\"")
);
case!(
    invalid_capability,
    "tfctl::invalid-capability",
    &with("    cap-add \"NET_ADMN\"")
);
case!(
    invalid_sysctl,
    "tfctl::invalid-sysctl",
    &with("    sysctl \"kernel.hostname\" \"x\"")
);
case!(
    invalid_owner,
    "tfctl::invalid-owner",
    &with("    file \"/etc/motd\" \"hi\" owner=\"app\"")
);
case!(
    invalid_user,
    "tfctl::invalid-user",
    &with("    user \"app user\"")
);
case!(
    ulimit_soft_above_hard,
    "tfctl::invalid-ulimit",
    &with("    ulimit \"nofile\" soft=4096 hard=1024")
);
case!(
    port_out_of_range,
    "tfctl::invalid-port",
    &with("    publish 8080 to=70000")
);
case!(
    port_zero_in_allow,
    "tfctl::invalid-port",
    &with("    allow from=\"any\" port=0")
);
case!(
    port_range_reversed,
    "tfctl::invalid-port-range",
    &with("    allow from=\"any\" port=\"9000-8000\"")
);
case!(
    cpus_not_positive,
    "tfctl::not-positive",
    &with("    limits cpus=0")
);
case!(
    pids_not_positive,
    "tfctl::not-positive",
    &with("    limits pids=-1")
);
case!(
    retries_not_positive,
    "tfctl::not-positive",
    &with("    health {\n        tcp 80\n        retries 0\n    }")
);
case!(
    size_not_positive,
    "tfctl::not-positive",
    &with("    limits memory=\"0M\"")
);

case!(
    invalid_hostname,
    "tfctl::invalid-hostname",
    &with("    hostname \"web_1\"")
);
case!(
    invalid_host_ip,
    "tfctl::invalid-address",
    &with("    publish 8080 to=80 host-ip=\"localhost\"")
);
case!(
    invalid_allow_address,
    "tfctl::invalid-cidr",
    &with("    allow from=\"10.0.0.300/8\"")
);
case!(
    invalid_ulimit_name,
    "tfctl::invalid-ulimit",
    &with("    ulimit \"openfiles\" soft=1024")
);
case!(
    path_with_dotdot,
    "tfctl::invalid-path",
    &with("    tmpfs \"/var/../etc\"")
);
case!(
    generated_secret_too_long,
    "tfctl::invalid-length",
    &top("secret \"pw\" generate=100000")
);
case!(
    missing_seccomp_profile,
    "tfctl::unreadable-file",
    &with("    seccomp \"./profiles/strict.json\"")
);
case!(
    too_deep,
    "tfctl::too-deep",
    &format!("app \"shop\"\n{}{}\n", "a{".repeat(65), "}".repeat(65))
);

// Choices.
case!(
    choice_egress,
    "tfctl::invalid-choice",
    &top("egress \"block\"")
);
case!(
    choice_proto,
    "tfctl::invalid-choice",
    &with("    publish 53 to=53 proto=\"udpp\"")
);
case!(
    choice_restart,
    "tfctl::invalid-choice",
    &with("    restart \"sometimes\"")
);
case!(choice_until, "tfctl::invalid-choice", "app \"shop\"\ncontainer \"db\" { image \"busybox\"; }\ncontainer \"web\" {\n    image \"busybox\"\n    after \"db\" until=\"ready\"\n}\n");
case!(
    choice_on_fail,
    "tfctl::invalid-choice",
    &with("    on \"started\" on-fail=\"abort\" {\n        run \"true\"\n    }")
);
case!(
    choice_event,
    "tfctl::invalid-choice",
    &with("    on \"start\" {\n        run \"true\"\n    }")
);
case!(
    choice_app_event,
    "tfctl::invalid-choice",
    &top("on \"started\" {\n    run \"true\"\n}")
);

// Hooks and health checks.
case!(
    exec_in_exited_hook,
    "tfctl::exec-not-allowed",
    &with("    on \"exited\" {\n        exec \"cleanup\"\n    }")
);
case!(
    exec_in_app_hook,
    "tfctl::exec-not-allowed",
    &top("on \"up\" {\n    exec \"true\"\n}")
);
case!(empty_hook, "tfctl::empty-hook", &with("    on \"started\""));
case!(
    health_no_probe,
    "tfctl::health-probe",
    &with("    health {\n        interval \"5s\"\n    }")
);
case!(
    health_two_probes,
    "tfctl::health-probe",
    &with("    health {\n        tcp 80\n        http \"http://localhost/\"\n    }")
);
case!(
    health_bad_url,
    "tfctl::invalid-url",
    &with("    health {\n        http \"localhost:80/health\"\n    }")
);

// Secrets, files and host paths.
case!(
    secret_without_source,
    "tfctl::secret-source",
    &top("secret \"pw\"")
);
case!(
    secret_two_sources,
    "tfctl::secret-source",
    &top("secret \"pw\" generate=32 from-env=\"PW\"")
);
case!(secret_file_and_env, "tfctl::secret-target", "app \"shop\"\nsecret \"pw\" generate=32\ncontainer \"web\" {\n    image \"busybox\"\n    secret \"pw\" env=\"PW\" at=\"/pw\"\n}\n");
case!(
    file_without_content,
    "tfctl::file-content",
    &with("    file \"/etc/motd\"")
);
case!(
    missing_from_file,
    "tfctl::unreadable-file",
    &with("    file \"/etc/app.conf\" from=\"./conf/app.conf\"")
);
case!(
    missing_secret_file,
    "tfctl::unreadable-file",
    &top("secret \"pw\" from-file=\"./secrets/pw.txt\"")
);
case!(
    missing_env_file,
    "tfctl::unreadable-file",
    &with("    env-file \"./web.env\"")
);
case!(
    mount_without_target,
    "tfctl::missing-property",
    &with("    mount \"./html\"")
);
case!(
    missing_bind_source,
    "tfctl::missing-bind-source",
    &with("    mount \"./no-such-folder\" at=\"/data\"")
);

// Variables.
case!(
    unset_variable,
    "tfctl::unset-variable",
    "app \"shop\"\ncontainer \"web\" {\n    image \"busybox:$VERSION\"\n}\n"
);
case!(
    required_variable,
    "tfctl::required-variable",
    &with("    env DB_URL=\"${DB_URL:?set it to the database's URL}\"")
);
case!(
    invalid_variable,
    "tfctl::invalid-variable",
    &with("    command \"echo\" \"costs $ 5\"")
);

// Compose features: profiles, labels, names, host modes, replicas.
case!(profile_name, "tfctl::invalid-name", &with("    profile \"Debug Tools\""));
case!(label_key, "tfctl::invalid-label", &with("    label \"tier=web\" \"front\""));
case!(
    alias_is_a_container_name,
    "tfctl::duplicate-name",
    "app \"shop\"\ncontainer \"db\" { image \"busybox\"; }\ncontainer \"web\" {\n    image \"busybox\"\n    alias \"db\"\n}\n"
);
case!(
    alias_on_two_containers,
    "tfctl::duplicate-name",
    "app \"shop\"\ncontainer \"db\" { image \"busybox\"; alias \"store\"; }\ncontainer \"web\" {\n    image \"busybox\"\n    alias \"store\"\n}\n"
);
case!(extra_host_address, "tfctl::invalid-address", &with("    extra-host \"db.local\" \"10.0.0\""));
case!(dns_address, "tfctl::invalid-address", &with("    dns \"1.1.1.1\" \"dns.google\""));
case!(user_etc_hosts, "tfctl::etc-hosts", &with("    file \"/etc/hosts\" \"10.0.0.1 db\\n\""));
case!(device_path, "tfctl::invalid-device", &with("    device \"fuse\""));
case!(pid_choice, "tfctl::invalid-choice", &with("    pid \"container\""));
case!(
    host_network_with_publish,
    "tfctl::host-network",
    &with("    network \"host\"\n    publish 8080 to=80")
);
case!(
    host_network_with_named_network,
    "tfctl::host-network",
    &with("    network \"host\"\n    network \"front\"")
);
case!(
    replicas_with_fixed_port,
    "tfctl::replicas-publish",
    "app \"shop\"\ncontainer \"web\" replicas=2 {\n    image \"busybox\"\n    publish 8080 to=80\n}\n"
);
case!(
    replicas_too_many,
    "tfctl::invalid-replicas",
    "app \"shop\"\ncontainer \"web\" replicas=1000 {\n    image \"busybox\"\n}\n"
);
case!(
    replica_name_taken,
    "tfctl::duplicate-name",
    "app \"shop\"\ncontainer \"web\" replicas=2 { image \"busybox\"; }\ncontainer \"web-2\" {\n    image \"busybox\"\n}\n"
);

#[test]
fn all_errors_of_a_file_in_one_run() {
    let text = "app \"Shop\"\ncontainer \"web\" {\n    image \"busybox\"\n    imgae \"x\"\n    publish 0 to=0\n    restart \"sometimes\"\n}\ncontainer \"db\" {\n    after \"nope\"\n}\n";
    let (codes, out) = render(text);
    assert_eq!(
        codes,
        [
            "tfctl::invalid-name",
            "tfctl::unknown-node",
            "tfctl::invalid-port",
            "tfctl::invalid-choice",
            "tfctl::missing-image",
            "tfctl::unknown-reference"
        ]
    );
    insta::assert_snapshot!("all_errors_of_a_file_in_one_run", out);
}

#[test]
fn unreadable_app_file() {
    let d = tfctl_schema::load(Path::new("/nonexistent/app.kdl"), &env).unwrap_err();
    assert_eq!(
        d.iter().map(|p| p.code).collect::<Vec<_>>(),
        ["tfctl::unreadable-file"]
    );
    insta::assert_snapshot!("unreadable_app_file", d.render_plain(100));
}

#[test]
fn a_container_named_like_a_number_is_a_container() {
    let text = "app \"shop\"\ncontainer \"1st\" { image \"busybox\"; }\ncontainer \"web\" {\n    image \"busybox\"\n    allow from=\"1st\"\n}\n";
    let app = tfctl_schema::load_str("app.kdl", text, Path::new("/srv/app"), &env).unwrap();
    assert_eq!(
        app.containers[1].allow[0].from,
        tfctl_schema::model::Peer::Container("1st".into())
    );
}

#[test]
fn variables_expand_with_compose_rules() {
    let text = "app \"shop\"\ncontainer \"web\" {\n    image \"busybox:${TAG}\"\n    env A=\"$HOME/x\" B=\"${NOPE:-fallback}\" C=\"$$HOME\"\n}\n";
    let app = tfctl_schema::load_str("app.kdl", text, Path::new("/srv/app"), &env).unwrap();
    let c = &app.containers[0];
    assert_eq!(c.image, "busybox:1.36");
    assert_eq!(
        c.env,
        [
            ("A".into(), "/root/x".into()),
            ("B".into(), "fallback".into()),
            ("C".into(), "$HOME".into())
        ]
    );
}

#[test]
fn dotenv_beside_the_app_file_supplies_variables() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "# defaults\nTAG=1.35\nGREETING=\"hi there\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("app.kdl"), "app \"shop\"\ncontainer \"web\" {\n    image \"busybox:$TAG\"\n    env G=\"$GREETING\"\n}\n").unwrap();
    // The process environment wins over .env.
    let app = tfctl_schema::load(&dir.path().join("app.kdl"), &env).unwrap();
    assert_eq!(app.containers[0].image, "busybox:1.36");
    assert_eq!(app.containers[0].env, [("G".into(), "hi there".into())]);
    let none = |_: &str| None;
    let app = tfctl_schema::load(&dir.path().join("app.kdl"), &none).unwrap();
    assert_eq!(app.containers[0].image, "busybox:1.35");
}

#[test]
fn dotenv_errors_name_the_line_but_show_no_value() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "OK=1\nDB_PASSWORD=\"s3cr3t-value\nNEXT=${UNSET_ONE}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("app.kdl"),
        "app \"shop\"\ncontainer \"web\" { image \"busybox\"; }\n",
    )
    .unwrap();
    let none = |_: &str| None;
    let d = tfctl_schema::load(&dir.path().join("app.kdl"), &none).unwrap_err();
    let codes: Vec<&str> = d.iter().map(|p| p.code).collect();
    assert_eq!(codes, ["tfctl::invalid-env-file", "tfctl::unset-variable"]);
    let out = d.render_plain(100);
    assert!(!out.contains("s3cr3t"), "{out}");
    let env_path = dir.path().join(".env").display().to_string();
    insta::assert_snapshot!("dotenv_errors", out.replace(&env_path, "[DIR]/.env"));
}

#[test]
fn config_file_errors() {
    let none = |_: &str| None;
    let text = "insecure-registry \"my registry\"\nsubnet-pool \"10.89.0.0/26\"\nlog-size \"ten megs\"\nlogsize \"1M\"\n";
    let diags = tfctl_schema::load_config_str("config.kdl", text, &none).unwrap_err();
    insta::assert_snapshot!("config_file_errors", diags.render_plain(100));
}

#[test]
fn diagnostics_as_one_report_show_every_problem() {
    // For callers that hand the whole set to miette as one report.
    let d = tfctl_schema::load_str(
        "app.kdl",
        "app \"A\"\ncontainer \"web\" { imgae \"x\"; }\n",
        Path::new("/srv/app"),
        &env,
    )
    .unwrap_err();
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    let mut out = String::new();
    handler.render_report(&mut out, &d).unwrap();
    assert!(out.contains("3 errors in app.kdl"), "{out}");
    for p in d.iter() {
        assert!(out.contains(&p.message), "{out}");
    }
    assert!(out.contains("[app.kdl:2:19]"), "{out}");
}

#[test]
fn problems_serialize_with_their_place() {
    let d = tfctl_schema::load_str(
        "app.kdl",
        "app \"shop\"\ncontainer \"wéb\" { image \"busybox\"; imgae \"x\"; }\n",
        Path::new("/srv/app"),
        &env,
    )
    .unwrap_err();
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json[0]["code"], "tfctl::invalid-name");
    assert_eq!(
        (json[0]["line"].as_u64(), json[0]["column"].as_u64()),
        (Some(2), Some(11))
    );
    // Columns count characters: `é` is one.
    assert_eq!(json[1]["code"], "tfctl::unknown-node");
    assert_eq!(json[1]["column"], 36);
    assert_eq!(json[1]["help"], "did you mean `image`?");
    assert_eq!(json[1]["file"], "app.kdl");
}

/// `memory=64` is 64 bytes, and `stop-timeout 10` has no unit: both are typos for a unit, each
/// told at its value with the fix.
#[test]
fn a_limit_or_duration_without_its_unit_says_which_unit() {
    let text = "app \"x\"\ncontainer \"c\" {\n  image \"busybox\"\n  limits memory=64\n  stop-timeout 10\n  on \"started\" timeout=5 {\n    run \"true\"\n  }\n}\n";
    let err = tfctl_schema::load_str("app.kdl", text, std::path::Path::new("/tmp"), &|_| None).unwrap_err();
    let out = err.render_plain(200);
    assert!(out.contains("a memory limit of 64 bytes is too small") && out.contains("memory=\"64M\""), "{out}");
    assert!(out.contains("`stop-timeout`'s argument: `10` has no unit") && out.contains("\"10s\""), "{out}");
    assert!(out.contains("`5` has no unit") && out.contains("\"5s\""), "{out}");
    assert_eq!(out.matches("has no unit").count(), 2, "one diagnostic per value: {out}");
    // The control: with units, the same file loads.
    let ok = text.replace("memory=64", "memory=\"64M\"").replace("stop-timeout 10", "stop-timeout \"10s\"").replace("timeout=5", "timeout=\"5s\"");
    tfctl_schema::load_str("app.kdl", &ok, std::path::Path::new("/tmp"), &|_| None).unwrap();
}
