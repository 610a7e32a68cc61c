//! `tfctl export kubernetes`: every sample, every app file of scripts/vm/apps, and an app file
//! using every node the export maps, exported and validated against the Kubernetes OpenAPI
//! schemas of two minor versions, offline, by kubernetes-validate (scripts/setup.sh installs
//! it); and nothing tfctl does is dropped without a warning that is also in the output.

mod common;

use std::path::{Path, PathBuf};

use common::{repo, stderr, stdout, Tfctl};

/// The oldest minor the output must stay valid for, and the newest k8s-openapi is built for.
const VERSIONS: [&str; 2] = ["1.30", "1.37"];

/// Validates manifests (files, or folders' *.yaml) strictly: unknown fields are errors too.
/// Returns the validator's complaints, each naming the file and the object.
fn validate(version: &str, files: &[PathBuf]) -> Result<(), String> {
    let out = std::process::Command::new("kubernetes-validate")
        .args(["--strict", "--quiet", "--kubernetes-version", version])
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubernetes-validate ({e}): scripts/setup.sh installs it (pip install kubernetes-validate)"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() && !text.contains("ERROR") {
        Ok(())
    } else {
        Err(text)
    }
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.iter().all(|f| f.extension().is_some_and(|e| e == "yaml")), "{files:?}");
    files
}

/// Exports `file` into a folder and to a stream, validates both for every version, and checks
/// that each warning is a comment in the output too.
fn export_and_validate(t: &Tfctl, file: &Path) -> (String, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("manifests");
    let o = t.run(&["export", "kubernetes", file.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}: {}", file.display(), stderr(&o));
    let warnings = stderr(&o);
    let files = yaml_files(&out);
    assert!(!files.is_empty(), "{}: no objects", file.display());
    let written: String = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    for line in warnings.lines().filter_map(|l| l.strip_prefix("warning: ")) {
        assert!(written.contains(&format!("# warning: {line}\n")), "{}: warning {line:?} is in no manifest", file.display());
    }

    let s = t.run(&["export", "kubernetes", file.to_str().unwrap()]);
    assert_eq!(s.status.code(), Some(0), "{}", stderr(&s));
    let stream = stdout(&s);
    assert_eq!(stream.matches("\n---\n").count() + 1, files.len(), "{}: one document per object", file.display());
    let stream_file = dir.path().join("stream.yaml");
    std::fs::write(&stream_file, &stream).unwrap();

    for v in VERSIONS {
        if let Err(e) = validate(v, &files) {
            panic!("{}: manifests invalid for Kubernetes {v}:\n{e}", file.display());
        }
        if let Err(e) = validate(v, std::slice::from_ref(&stream_file)) {
            panic!("{}: the stream is invalid for Kubernetes {v}:\n{e}", file.display());
        }
    }
    (warnings, files.iter().map(|f| PathBuf::from(f.file_name().unwrap())).collect())
}

#[test]
fn every_sample_and_vm_app_exports_valid_manifests() {
    let t = Tfctl::new();
    let mut apps: Vec<PathBuf> = Vec::new();
    for dir in ["samples", "scripts/vm/apps"] {
        for e in std::fs::read_dir(repo().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "kdl") {
                apps.push(p);
            }
        }
    }
    apps.sort();
    assert!(apps.len() >= 6, "{apps:?}");
    let mut exported = Vec::new();
    for app in &apps {
        // Only files tfctl itself accepts.
        if t.run(&["check", app.to_str().unwrap()]).status.code() != Some(0) {
            continue;
        }
        export_and_validate(&t, app);
        exported.push(app.file_name().unwrap().to_string_lossy().into_owned());
    }
    for sample in ["fixture.kdl", "real-stack.kdl", "three-tier.kdl", "web.kdl"] {
        assert!(exported.iter().any(|e| e == sample), "{sample} was not exported: {exported:?}");
    }
}

/// Every node the export maps or warns about, in one app.
const EVERYTHING: &str = r#"
app "everything"
egress "deny"
secret "pw" generate=24
secret "token" from-env="EXPORT_K8S_TOKEN"
secret "cert" from-file="cert.pem"
volume "data"
volume "shared"
on "up" { run "echo" "up"; }

container "migrate" {
    image "registry.example.com/shop/migrate:1.4"
    one-shot
    mount "data" at="/data"
    health { tcp 1; }
}
container "db" {
    image "postgres:16"
    entrypoint "docker-entrypoint.sh"
    command "postgres"
    after "migrate" until="completed"
    mount "data" at="/var/lib/postgresql/data"
    mount "shared" at="/shared" read-only=#true
    mount "./host-data" at="/host" create=#true
    secret "pw"
    secret "cert" at="/etc/ssl/cert.pem" mode=0o440 owner="999:999"
    secret "token" env="TOKEN"
    user "999:999"
    read-only
    cap-drop "ALL"
    cap-add "NET_BIND_SERVICE" "CAP_CHOWN"
    seccomp "profile.json"
    sysctl "net.ipv4.tcp_syncookies" "1"
    sysctl "net.core.somaxconn" "1024"
    limits memory="64M" cpus=1.5 pids=100
    ulimit "nofile" soft=1024 hard=2048
    stop-signal "SIGINT"
    stop-timeout "30s"
    hostname "db.internal"
    health {
        exec "pg_isready"
        interval "500ms"
        start-period "10s"
    }
    on "started" on-fail="ignore" { exec "sh" "-c" "echo up"; exec "touch" "/tmp/ready"; run "echo" "host"; }
    on "stopping" { exec "pg_ctl" "stop"; }
    on "healthy" { exec "true"; }
    on "unhealthy" { run "echo" "bad"; }
    on "exited" { run "echo" "gone"; }
    on "failed" { run "echo" "failed"; }
    file "/etc/db.conf" "host={{ ip.web }} name={{ name.web }}\n" template=#true mode=0o640
    file "/etc/pass.conf" "pw={{ secret.pw }}\n" template=#true mode=0o400
    file "/etc/logo.bin" from="logo.bin" owner="0:999"
    tmpfs "/scratch" size="16M"
    tmpfs "/run/big"
    shm-size "256M"
    allow from="web" port=5432
    allow from="any" port="9000-9010" proto="udp"
    allow from="10.1.2.3/16"
    allow from="host" port=22
    allow-egress to="10.0.0.0/8" port=443 proto="tcp"
    allow-egress to="169.254.169.254/32" port=80
    allow-egress to="host" port=53
    restart "on-failure" max=3
}
container "web" {
    image "docker.io/library/nginx:1.27"
    after "db" until="healthy"
    mount "shared" at="/srv"
    env MODE="prod" EMPTY=""
    workdir "/srv"
    publish 30080 to=80
    publish 8443 to=443 host-ip="127.0.0.1"
    publish 5353 to=53 proto="udp"
    egress "allow"
    health { http "http://127.0.0.1:80/health"; interval "2s"; timeout "1s"; retries 5; }
    restart "always"
    init
    userns "auto"
}
container "worker" {
    image "oci:images/worker:v2"
    user "nobody"
    after "web"
    seccomp "unconfined"
    sleep
}
container "report" {
    image "busybox"
    one-shot
    mount "shared" at="/out"
    restart "on-failure" max=4
}
container "nightly" {
    image "busybox"
    one-shot
    sleep
}
"#;

#[test]
fn an_app_using_every_node_exports_valid_manifests_and_warns_about_the_rest() {
    let t = Tfctl::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("profile.json"), r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
    std::fs::write(dir.path().join("cert.pem"), "not a real certificate\n").unwrap();
    std::fs::write(dir.path().join("logo.bin"), [0u8, 0xff, 0xfe, 1, 2, 3]).unwrap();
    std::fs::create_dir(dir.path().join("images")).unwrap();
    let file = dir.path().join("everything.kdl");
    std::fs::write(&file, EVERYTHING).unwrap();
    let c = t.run(&["check", file.to_str().unwrap()]);
    assert_eq!(c.status.code(), Some(0), "{}", stderr(&c));

    let (warnings, files) = export_and_validate(&t, &file);
    let names: Vec<String> = files.iter().map(|f| f.to_string_lossy().into_owned()).collect();
    for expected in [
        "secret-pw",
        "configmap-db-files",
        "secret-db-templates",
        "persistentvolumeclaim-everything-shared",
        "service-web-published",
        "statefulset-db",
        "statefulset-web",
        "deployment-worker",
        "job-report",
        "job-nightly",
        "networkpolicy-everything-default-deny",
        "networkpolicy-db-allow-4",
        "networkpolicy-db-egress",
        "networkpolicy-web-published",
    ] {
        assert!(names.iter().any(|n| n.contains(expected)), "no {expected} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.ends_with("-migrate.yaml")), "migrate runs as db's init container, with no pod or Service of its own: {names:?}");
    // Everything without an equivalent is named, node by node.
    for node in [
        "on \"up\"",
        "secret \"pw\"",
        "secret \"token\"",
        "secret \"cert\"",
        "container \"migrate\" > health",
        "container \"db\" > mount \"",
        "container \"db\" > secret \"cert\"",
        "container \"db\" > file \"/etc/pass.conf\"",
        "container \"db\" > file \"/etc/logo.bin\"",
        "container \"db\" > seccomp",
        "container \"db\" > sysctl \"net.core.somaxconn\"",
        "container \"db\" > limits",
        "container \"db\" > ulimit \"nofile\"",
        "container \"db\" > stop-signal",
        "container \"db\" > on \"started\"",
        "container \"db\" > on \"healthy\"",
        "container \"db\" > on \"unhealthy\"",
        "container \"db\" > on \"exited\"",
        "container \"db\" > on \"failed\"",
        "container \"db\" > allow from=\"host\"",
        "container \"db\" > allow-egress to=\"host\"",
        "container \"db\" > restart",
        "container \"web\" > after \"db\"",
        "container \"web\" > publish 8443",
        "container \"worker\" > image",
        "container \"worker\" > user",
        "container \"worker\" > after \"web\"",
        "volume \"shared\"",
    ] {
        assert!(warnings.contains(&format!("warning: {node}")), "no warning for {node}:\n{warnings}");
    }
    assert!(!warnings.contains("sysctl \"net.ipv4.tcp_syncookies\""), "a safe sysctl needs no warning:\n{warnings}");
}

#[test]
fn export_kubernetes_leaves_export_target_alone_and_checks_its_file() {
    let t = Tfctl::new();
    // Without FILE: a usage error naming it.
    let o = t.run(&["export", "kubernetes"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("<FILE>"), "{}", stderr(&o));
    // An invalid app file: its diagnostics, exit 2, nothing written.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.kdl");
    std::fs::write(&bad, "app \"x\"\ncontainer \"c\" { imag \"busybox\"; }\n").unwrap();
    let out = dir.path().join("out");
    let o = t.run(&["export", "kubernetes", bad.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("imag"), "{}", stderr(&o));
    assert!(!out.exists());
    // `export APP/CONTAINER` is still the filesystem archive.
    let o = t.run(&["export", "nosuch/box", "-o", dir.path().join("x.tar").to_str().unwrap()]);
    assert!(!stderr(&o).contains("kubernetes"), "{}", stderr(&o));
    assert_ne!(o.status.code(), Some(0));
}
