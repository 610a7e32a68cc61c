//! The mapping, field by field, on small app files.

use k8s_openapi::api::core::v1::{Container as KContainer, PodSpec};
use k8s_openapi::api::networking::v1::NetworkPolicySpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;

struct Exported {
    export: Export,
    _dir: tempfile::TempDir,
}

/// Exports an app file's text; `files` are written beside it first (seccomp profiles, `from=`).
fn export_app(kdl: &str, files: &[(&str, &[u8])], options: &Options) -> Exported {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let app = match tfctl_schema::load_str("app.kdl", kdl, dir.path(), &|_| None) {
        Ok(app) => app,
        Err(d) => panic!("{}", d.render_plain(100)),
    };
    Exported { export: export(&app, options).unwrap(), _dir: dir }
}

impl Exported {
    fn get(&self, kind: &str, name: &str) -> &Object {
        self.export
            .objects
            .iter()
            .find(|o| o.resource.kind() == kind && o.resource.name() == name)
            .unwrap_or_else(|| panic!("no {kind} {name} among {:?}", self.names()))
    }

    fn names(&self) -> Vec<String> {
        self.export.objects.iter().map(|o| format!("{}/{}", o.resource.kind(), o.resource.name())).collect()
    }

    fn pod(&self, kind: &str, name: &str) -> &PodSpec {
        match &self.get(kind, name).resource {
            Resource::Deployment(d) => d.spec.template.spec.as_ref().unwrap(),
            Resource::StatefulSet(s) => s.spec.template.spec.as_ref().unwrap(),
            Resource::Job(j) => j.spec.as_ref().unwrap().template.spec.as_ref().unwrap(),
            other => panic!("{} is no workload", other.kind()),
        }
    }

    fn container(&self, kind: &str, name: &str) -> &KContainer {
        &self.pod(kind, name).containers[0]
    }

    fn policy(&self, name: &str) -> &NetworkPolicySpec {
        match &self.get("NetworkPolicy", name).resource {
            Resource::NetworkPolicy(p) => p.spec.as_ref().unwrap(),
            _ => unreachable!(),
        }
    }

    /// The warning about `node`, which must also head one object as a comment.
    fn warning(&self, node: &str) -> &Warning {
        let w = self.export.warnings.iter().find(|w| w.node == node).unwrap_or_else(|| panic!("no warning for {node}: {:#?}", self.export.warnings));
        let comment = format!("warning: {w}");
        assert!(self.export.objects.iter().any(|o| o.notes.contains(&comment)), "warning {w} is on no object");
        w
    }
}

fn ports(p: &[k8s_openapi::api::networking::v1::NetworkPolicyPort]) -> Vec<(String, Option<i32>, Option<i32>)> {
    p.iter()
        .map(|p| {
            let port = p.port.as_ref().map(|p| match p {
                IntOrString::Int(i) => *i,
                IntOrString::String(s) => panic!("named port {s}"),
            });
            (p.protocol.clone().unwrap(), port, p.end_port)
        })
        .collect()
}

const NET: &str = r#"
app "shop"
egress "deny"
container "db" {
    image "postgres:16"
    allow from="api" port=5432
    allow from="any" port="9000-9010" proto="udp"
    allow from="10.1.2.3/16"
    allow from="host" port=22
}
container "api" {
    image "registry.example.com/shop/api:1.4"
    egress "allow"
    allow-egress to="10.0.0.0/8" port=443 proto="tcp"
    allow-egress to="host" port=53
    publish 30080 to=8000
    publish 8443 to=8443 proto="udp" host-ip="127.0.0.1"
}
"#;

#[test]
fn allow_is_one_ingress_policy_each_with_its_peers_and_ports() {
    let e = export_app(NET, &[], &Options::default());
    let deny = e.policy("shop-default-deny");
    assert_eq!(deny.policy_types.as_deref(), Some(&["Ingress".to_string(), "Egress".to_string()][..]));
    assert_eq!((deny.ingress.as_deref(), deny.egress.as_deref()), (Some(&[][..]), Some(&[][..])), "default deny admits nothing");
    assert_eq!(deny.pod_selector.as_ref().unwrap().match_labels.as_ref().unwrap()[APP_LABEL], "shop");

    // from a container: that container's pods, on its port, tcp and udp (proto not given).
    let p = e.policy("db-allow-1");
    let db_labels = p.pod_selector.as_ref().unwrap().match_labels.as_ref().unwrap();
    assert_eq!((db_labels[NAME_LABEL].as_str(), db_labels[APP_LABEL].as_str()), ("db", "shop"));
    let rule = &p.ingress.as_ref().unwrap()[0];
    let from = &rule.from.as_ref().unwrap()[0];
    assert_eq!(from.pod_selector.as_ref().unwrap().match_labels.as_ref().unwrap()[NAME_LABEL], "api");
    assert_eq!(ports(rule.ports.as_ref().unwrap()), [("TCP".into(), Some(5432), None), ("UDP".into(), Some(5432), None)]);
    // from any: no `from` at all; a range is port and endPort.
    let rule = &e.policy("db-allow-2").ingress.as_ref().unwrap()[0];
    assert!(rule.from.is_none());
    assert_eq!(ports(rule.ports.as_ref().unwrap()), [("UDP".into(), Some(9000), Some(9010))]);
    // from a CIDR: its network as an ipBlock, every port.
    let rule = &e.policy("db-allow-3").ingress.as_ref().unwrap()[0];
    assert_eq!(rule.from.as_ref().unwrap()[0].ip_block.as_ref().unwrap().cidr, "10.1.0.0/16");
    assert_eq!(ports(rule.ports.as_ref().unwrap()), [("TCP".into(), None, None), ("UDP".into(), None, None)]);
    // from the host: a policy that admits nobody, and a warning saying so.
    assert_eq!(e.policy("db-allow-4").ingress.as_ref().unwrap()[0].from.as_deref(), Some(&[][..]));
    assert!(e.warning("container \"db\" > allow from=\"host\"").message.contains("cannot name the node"));
}

#[test]
fn egress_and_publish_map_to_policies_and_services() {
    let e = export_app(NET, &[], &Options::default());
    // db: egress denied by the app: no egress policy of its own.
    assert!(!e.names().contains(&"NetworkPolicy/db-egress".to_string()));
    let p = e.policy("api-egress");
    assert_eq!(p.policy_types.as_deref(), Some(&["Egress".to_string()][..]));
    let rules = p.egress.as_ref().unwrap();
    let anywhere = rules[0].to.as_ref().unwrap()[0].ip_block.as_ref().unwrap();
    assert_eq!((anywhere.cidr.as_str(), anywhere.except.as_deref()), ("0.0.0.0/0", Some(&["169.254.0.0/16".to_string()][..])));
    let ten = rules[1].to.as_ref().unwrap()[0].ip_block.as_ref().unwrap();
    assert_eq!((ten.cidr.as_str(), ten.except.as_ref()), ("10.0.0.0/8", None));
    assert_eq!(ports(rules[1].ports.as_ref().unwrap()), [("TCP".into(), Some(443), None)]);
    assert!(e.warning("container \"api\" > allow-egress to=\"host\"").message.contains("ipBlock"));
    // The app's pods reach each other and DNS.
    let app = e.policy("shop-egress-app").egress.as_ref().unwrap();
    assert_eq!(ports(app[0].ports.as_ref().unwrap()), [("UDP".into(), Some(53), None), ("TCP".into(), Some(53), None)]);
    assert_eq!(app[1].to.as_ref().unwrap()[0].pod_selector.as_ref().unwrap().match_labels.as_ref().unwrap()[APP_LABEL], "shop");

    // Published ports: admitted from anywhere, served by a NodePort Service on the host port.
    let rule = &e.policy("api-published").ingress.as_ref().unwrap()[0];
    assert!(rule.from.is_none());
    assert_eq!(ports(rule.ports.as_ref().unwrap()), [("TCP".into(), Some(8000), None), ("UDP".into(), Some(8443), None)]);
    let Resource::Service(s) = &e.get("Service", "api-published").resource else { unreachable!() };
    let spec = s.spec.as_ref().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("NodePort"));
    let sp: Vec<_> = spec.ports.as_ref().unwrap().iter().map(|p| (p.port, p.target_port.clone(), p.node_port, p.protocol.clone().unwrap())).collect();
    assert_eq!(
        sp,
        [(30080, Some(IntOrString::Int(8000)), Some(30080), "TCP".into()), (8443, Some(IntOrString::Int(8443)), None, "UDP".into())]
    );
    assert!(e.warning("container \"api\" > publish 8443").message.contains("host-ip"));
    let lb = export_app(NET, &[], &Options { publish_as: PublishAs::LoadBalancer, namespace: Some("prod".into()) });
    let Resource::Service(s) = &lb.get("Service", "api-published").resource else { unreachable!() };
    assert_eq!(s.spec.as_ref().unwrap().type_.as_deref(), Some("LoadBalancer"));
    assert!(s.spec.as_ref().unwrap().ports.as_ref().unwrap().iter().all(|p| p.node_port.is_none()));
    assert!(lb.export.objects.iter().all(|o| o.resource.metadata().namespace.as_deref() == Some("prod")));

    // Each container's own Service: headless, under its name, selecting its pods.
    let Resource::Service(s) = &e.get("Service", "db").resource else { unreachable!() };
    let spec = s.spec.as_ref().unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(spec.selector.as_ref().unwrap()[NAME_LABEL], "db");
    let listed: Vec<_> = spec.ports.as_ref().unwrap().iter().map(|p| (p.name.clone().unwrap(), p.port)).collect();
    assert_eq!(listed, [("tcp-22".to_string(), 22), ("tcp-5432".to_string(), 5432)]);
}

const PODS: &str = r#"
app "pods"
secret "pw" generate=24
secret "token" from-env="TOKEN"
volume "data"
container "migrate" {
    image "migrate:1"
    one-shot
    mount "data" at="/data"
}
container "db" {
    image "postgres:16"
    entrypoint "docker-entrypoint.sh"
    command "postgres" "-c" "fsync=off"
    after "migrate" until="completed"
    mount "data" at="/var/lib/postgresql/data"
    secret "pw"
    secret "token" env="TOKEN"
    user "999:999"
    read-only
    cap-drop "ALL"
    cap-add "NET_BIND_SERVICE"
    seccomp "profile.json"
    limits memory="64M" cpus=0.5 pids=100
    ulimit "nofile" soft=1024
    stop-signal "SIGINT"
    stop-timeout "30s"
    health {
        exec "pg_isready"
        interval "500ms"
        timeout "2s"
        retries 7
        start-period "10s"
    }
    on "started" { exec "sh" "-c" "echo up"; exec "touch" "/tmp/it's ready"; }
    on "stopping" { exec "pg_ctl" "stop"; }
    on "exited" { run "echo" "gone"; }
    file "/etc/db.conf" "host={{ ip.web }}\n" template=#true mode=0o640
    file "/etc/pass.conf" "pw={{ secret.pw }}\n" template=#true
    tmpfs "/scratch" size="16M"
    shm-size "256M"
}
container "web" {
    image "nginx"
    after "db" until="healthy"
    health { http "http://127.0.0.1:8080/health"; }
    restart "always"
    init
    userns "auto"
}
container "report" {
    image "busybox"
    one-shot
    restart "on-failure" max=4
}
"#;

#[test]
fn containers_map_to_workloads_with_their_pods() {
    let e = export_app(PODS, &[("profile.json", b"{\"defaultAction\":\"SCMP_ACT_ALLOW\"}")], &Options::default());
    // The awaited one-shot is an init container of db's pod, which mounts a named volume: a
    // StatefulSet whose claim both use.
    assert!(!e.names().iter().any(|n| n.ends_with("/migrate") && !n.starts_with("Service")), "{:?}", e.names());
    let Resource::StatefulSet(s) = &e.get("StatefulSet", "db").resource else { unreachable!() };
    assert_eq!(s.spec.service_name.as_deref(), Some("db"));
    let claims = s.spec.volume_claim_templates.as_ref().unwrap();
    assert_eq!(claims.iter().map(|c| c.metadata.name.clone().unwrap()).collect::<Vec<_>>(), ["data"]);
    let pod = e.pod("StatefulSet", "db");
    let init = &pod.init_containers.as_ref().unwrap()[0];
    assert_eq!((init.name.as_str(), init.volume_mounts.as_ref().unwrap()[0].name.as_str()), ("migrate", "data"));
    assert_eq!(pod.termination_grace_period_seconds, Some(30));

    let c = e.container("StatefulSet", "db");
    assert_eq!(c.command.as_deref(), Some(&["docker-entrypoint.sh".to_string()][..]));
    assert_eq!(c.args.as_ref().unwrap()[2], "fsync=off");
    assert_eq!(c.image.as_deref(), Some("docker.io/library/postgres:16"));
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!((sc.run_as_user, sc.run_as_group, sc.read_only_root_filesystem, sc.allow_privilege_escalation), (Some(999), Some(999), Some(true), Some(false)));
    let caps = sc.capabilities.as_ref().unwrap();
    assert_eq!((caps.add.as_deref(), caps.drop.as_deref()), (Some(&["NET_BIND_SERVICE".to_string()][..]), Some(&["ALL".to_string()][..])));
    let seccomp = sc.seccomp_profile.as_ref().unwrap();
    assert_eq!((seccomp.type_.as_str(), seccomp.localhost_profile.as_deref()), ("Localhost", Some("tfctl/pods/profile.json")));
    assert!(e.warning("container \"db\" > seccomp").message.contains("/var/lib/kubelet/seccomp/tfctl/pods/profile.json"));
    let limits = c.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert_eq!((limits["memory"].0.as_str(), limits["cpu"].0.as_str()), ("64Mi", "500m"));
    for node in ["container \"db\" > limits", "container \"db\" > ulimit \"nofile\"", "container \"db\" > stop-signal", "container \"db\" > on \"exited\""] {
        e.warning(node);
    }

    // Probes: health is a readiness probe, whole seconds.
    let r = c.readiness_probe.as_ref().unwrap();
    assert_eq!(r.exec.as_ref().unwrap().command.as_deref(), Some(&["pg_isready".to_string()][..]));
    assert_eq!((r.period_seconds, r.timeout_seconds, r.failure_threshold, r.initial_delay_seconds), (Some(1), Some(2), Some(7), Some(10)));
    assert!(c.liveness_probe.is_none(), "tfctl never restarts an unhealthy container");
    let w = e.container("Deployment", "web").readiness_probe.as_ref().unwrap().http_get.as_ref().unwrap();
    assert_eq!((w.host.as_deref(), w.port.clone(), w.path.as_deref()), (None, IntOrString::Int(8080), Some("/health")));

    // Hooks: started exec steps are postStart (two steps: one sh -c), stopping preStop.
    let l = c.lifecycle.as_ref().unwrap();
    assert_eq!(
        l.post_start.as_ref().unwrap().exec.as_ref().unwrap().command.as_deref().unwrap(),
        ["sh", "-c", "sh -c 'echo up' && touch '/tmp/it'\\''s ready'"]
    );
    assert_eq!(l.pre_stop.as_ref().unwrap().exec.as_ref().unwrap().command.as_deref().unwrap(), ["pg_ctl", "stop"]);

    // Secrets: the file from the Secret's key with its mode, the env var from it.
    let mounts = c.volume_mounts.as_ref().unwrap();
    let pw = mounts.iter().find(|m| m.mount_path == "/run/secrets/pw").unwrap();
    assert_eq!((pw.name.as_str(), pw.sub_path.as_deref()), ("secret-pw", Some("value")));
    let vol = pod.volumes.as_ref().unwrap().iter().find(|v| v.name == "secret-pw").unwrap().secret.as_ref().unwrap();
    assert_eq!((vol.secret_name.as_deref(), vol.items.as_ref().unwrap()[0].mode), (Some("pw"), Some(0o400)));
    let env = c.env.as_ref().unwrap().iter().find(|v| v.name == "TOKEN").unwrap();
    let key = env.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
    assert_eq!((key.name.as_str(), key.key.as_str()), ("token", "value"));
    let Resource::Secret(s) = &e.get("Secret", "pw").resource else { unreachable!() };
    assert_eq!(s.string_data.as_ref().unwrap()["value"], "", "a secret's value is never exported");
    assert!(e.warning("secret \"pw\"").message.contains("head -c 24"));

    // Files: the ConfigMap with the template rendered to Service names, its mode on the item;
    // the template holding a secret in a Secret, placeholders kept.
    let Resource::ConfigMap(cm) = &e.get("ConfigMap", "db-files").resource else { unreachable!() };
    assert_eq!(cm.data.as_ref().unwrap()["etc_db.conf"], "host=web\n");
    let files = pod.volumes.as_ref().unwrap().iter().find(|v| v.name == "db-files").unwrap().config_map.as_ref().unwrap();
    assert_eq!(files.items.as_ref().unwrap()[0].mode, Some(0o640));
    let Resource::Secret(t) = &e.get("Secret", "db-templates").resource else { unreachable!() };
    assert_eq!(t.string_data.as_ref().unwrap()["etc_pass.conf"], "pw={{ secret.pw }}\n");
    e.warning("container \"db\" > file \"/etc/pass.conf\"");
    let tmp = mounts.iter().find(|m| m.mount_path == "/scratch").unwrap();
    let tmp = pod.volumes.as_ref().unwrap().iter().find(|v| v.name == tmp.name).unwrap().empty_dir.as_ref().unwrap();
    assert_eq!((tmp.medium.as_deref(), tmp.size_limit.as_ref().map(|q| q.0.as_str())), (Some("Memory"), Some("16Mi")));
    assert!(mounts.iter().any(|m| m.mount_path == "/dev/shm"));

    // web: a Deployment; init, userns; its ordering on db is a warning.
    let pod = e.pod("Deployment", "web");
    assert_eq!((pod.share_process_namespace, pod.host_users), (Some(true), Some(false)));
    e.warning("container \"web\" > after \"db\"");
    // report: a one-shot nobody waits for is a Job.
    let Resource::Job(j) = &e.get("Job", "report").resource else { unreachable!() };
    let spec = j.spec.as_ref().unwrap();
    assert_eq!((spec.backoff_limit, spec.template.spec.as_ref().unwrap().restart_policy.as_deref()), (Some(4), Some("OnFailure")));
}

#[test]
fn output_is_yaml_documents_with_comments_and_files_in_apply_order() {
    let e = export_app(NET, &[], &Options::default());
    let stream = e.export.to_stream().unwrap();
    assert_eq!(stream.matches("---\n").count(), e.export.objects.len());
    assert!(stream.starts_with("---\n# Exported by `tfctl export kubernetes` from app \"shop\""));
    assert!(stream.contains("\n# warning: container \"db\" > allow from=\"host\": "));
    assert!(stream.contains("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"));
    let dir = tempfile::tempdir().unwrap();
    let written = e.export.write_dir(dir.path()).unwrap();
    let names: Vec<_> = written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names[0], "01-service-db.yaml");
    assert!(names.iter().position(|n| n.contains("deployment-api")) < names.iter().position(|n| n.contains("networkpolicy")));
}

#[test]
fn template_references_to_containers_become_service_names() {
    assert_eq!(data::render("a={{ip.db}} b={{ name.web }} c={{ secret.pw }}"), ("a=db b=web c={{ secret.pw }}".into(), vec!["pw".into()]));
    assert_eq!(workload::bytes(3 << 30).0, "3Gi");
    assert_eq!(workload::bytes(1000).0, "1000");
}
