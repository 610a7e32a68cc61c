//! A workload per container: a Deployment, a StatefulSet when it mounts a named volume (one
//! claim per volume from its volumeClaimTemplates), a Job for a one-shot; a one-shot others wait
//! on with `after until="completed"` runs as an init container of each of them instead.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container as KContainer, EmptyDirVolumeSource, EnvVar, ExecAction, HTTPGetAction, HostPathVolumeSource, Lifecycle,
    LifecycleHandler, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe as KProbe, ResourceRequirements, SeccompProfile, SecurityContext, Sysctl, TCPSocketAction, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tfctl_schema::model::{
    App, Container, Event, HookStep, MountSource, OnFail, Probe, RestartPolicy, Seccomp, Until, Userns, DEFAULT_SHM_SIZE,
};
use tfctl_schema::reference::ImageSource;

use crate::data::PodFiles;
use crate::{dns_name, meta, pod_labels, seconds, Object, Out, Resource};

/// The size each named volume's claim asks for: the app file does not say.
const CLAIM_SIZE: &str = "1Gi";

/// Sysctls Kubernetes allows without a kubelet flag (its "safe" set).
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// The containers that run as init containers, per container that waits for them, deepest
/// first: the one-shots it waits for with `until="completed"`, and theirs.
fn init_containers(app: &App) -> BTreeMap<String, Vec<String>> {
    fn visit(app: &App, name: &str, seen: &mut Vec<String>) {
        let Some(c) = app.container(name) else { return };
        for a in c.after.iter().filter(|a| a.until == Until::Completed) {
            if !seen.contains(&a.container) {
                visit(app, &a.container, seen);
                seen.push(a.container.clone());
            }
        }
    }
    app.containers
        .iter()
        .map(|c| {
            let mut seen = Vec::new();
            visit(app, &c.name, &mut seen);
            (c.name.clone(), seen)
        })
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// The containers that have no pod of their own: each runs in its waiters' pods.
pub(crate) fn init_only(app: &App) -> BTreeSet<String> {
    init_containers(app).into_values().flatten().collect()
}

pub fn workloads(app: &App, files: &BTreeMap<String, PodFiles>, out: &mut Out) {
    let inits = init_containers(app);
    let as_init: BTreeSet<&String> = inits.values().flatten().collect();
    // Which workloads mount each named volume, to warn when several do.
    let mut volume_users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut job_volumes = BTreeSet::new();
    let mut objects = Vec::new();
    for c in app.containers.iter().filter(|c| !as_init.contains(&c.name)) {
        let mut notes = Vec::new();
        let init_names = inits.get(&c.name).cloned().unwrap_or_default();
        let members: Vec<&Container> = init_names.iter().filter_map(|n| app.container(n)).chain(std::iter::once(c)).collect();
        let named: BTreeSet<String> = members
            .iter()
            .flat_map(|m| &m.mounts)
            .filter_map(|m| match &m.source {
                MountSource::Volume(v) => Some(v.clone()),
                MountSource::Bind(_) => None,
            })
            .collect();
        for v in &named {
            volume_users.entry(v.clone()).or_default().push(c.name.clone());
        }
        for i in &init_names {
            let waiters: Vec<&String> = inits.iter().filter(|(_, v)| v.contains(i)).map(|(k, _)| k).collect();
            notes.push(format!("Init container \"{i}\": the one-shot this container waits for (after \"{i}\" until=\"completed\")."));
            if waiters.len() > 1 && waiters[0] == &c.name {
                notes.push(out.warn(
                    format!("container \"{i}\""),
                    format!(
                        "{} wait for it to complete: it runs as an init container of each, so once per pod start of each rather than once",
                        waiters.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(" and ")
                    ),
                ));
            }
        }
        let job = c.one_shot;
        let mut spec = pod(app, c, &members, files, &named, job, &mut notes, out);
        let labels = pod_labels(app, &c.name);
        let template = |spec: PodSpec| PodTemplateSpec { metadata: Some(ObjectMeta { labels: Some(labels.clone()), ..Default::default() }), spec: Some(spec) };
        let selector = LabelSelector { match_labels: Some(labels.clone()), ..Default::default() };
        let replicas = if c.sleep {
            notes.push("sleep: no replicas; scale to 1 to start it, as `tfctl start` does.".into());
            0
        } else {
            c.replicas.max(1) as i32
        };
        let resource = if job {
            let (policy, backoff) = match (c.restart.policy, c.restart.max) {
                (RestartPolicy::No, _) => ("Never", 0),
                (_, Some(max)) => ("OnFailure", max as i32),
                (RestartPolicy::OnFailure, None) => ("OnFailure", i32::MAX),
                (RestartPolicy::Always | RestartPolicy::UnlessStopped, None) => {
                    notes.push("restart \"always\" or \"unless-stopped\": a Job restarts its pod until it succeeds, no further.".into());
                    ("OnFailure", i32::MAX)
                }
            };
            spec.restart_policy = Some(policy.into());
            for v in &named {
                job_volumes.insert(v.clone());
            }
            Resource::Job(Job {
                metadata: meta(&c.name, Some(&c.name)),
                spec: Some(JobSpec { backoff_limit: Some(backoff), suspend: c.sleep.then_some(true), template: template(spec), ..Default::default() }),
                ..Default::default()
            })
        } else {
            match (c.restart.policy, c.restart.max) {
                (RestartPolicy::Always, None) => {}
                (_, Some(max)) => notes.push(out.warn(
                    format!("container \"{}\" > restart", c.name),
                    format!("max={max} has no equivalent: Kubernetes restarts a Deployment's or StatefulSet's container whenever it exits, with no limit"),
                )),
                (p, None) => notes.push(format!(
                    "restart \"{}\": Kubernetes restarts this container whenever it exits.",
                    if p == RestartPolicy::No { "no" } else { "on-failure" }
                )),
            }
            if named.is_empty() {
                Resource::Deployment(Deployment {
                    metadata: meta(&c.name, Some(&c.name)),
                    spec: DeploymentSpec { replicas: Some(replicas), selector, template: template(spec), ..Default::default() },
                    ..Default::default()
                })
            } else {
                let claims = named.iter().map(|v| claim(&meta(v, None))).collect();
                notes.push(format!("Each named volume is a claim of {CLAIM_SIZE} in the cluster's default storage class: change the size to what the data needs."));
                Resource::StatefulSet(StatefulSet {
                    metadata: meta(&c.name, Some(&c.name)),
                    spec: StatefulSetSpec {
                        replicas: Some(replicas),
                        selector,
                        service_name: Some(c.name.clone()),
                        template: template(spec),
                        volume_claim_templates: Some(claims),
                        ..Default::default()
                    },
                    ..Default::default()
                })
            }
        };
        let mut o = Object::new(resource);
        o.notes = notes;
        objects.push(o);
    }
    for (v, users) in &volume_users {
        if users.len() > 1 {
            let note = out.warn(
                format!("volume \"{v}\""),
                format!(
                    "mounted by {}: each gets a claim of its own; to share the data, replace the claims with one ReadWriteMany PersistentVolumeClaim",
                    users.iter().map(|u| format!("\"{u}\"")).collect::<Vec<_>>().join(" and ")
                ),
            );
            if let Some(o) = objects.iter_mut().find(|o| o.resource.name() == users[0]) {
                o.notes.push(note);
            }
        }
    }
    // A Job has no claim templates: its volumes are claims of their own, made first.
    for v in job_volumes {
        let name = dns_name(&[&app.name, &v]);
        let mut o = Object::new(Resource::PersistentVolumeClaim(claim(&meta(&name, None))));
        o.notes.push(format!("Volume \"{v}\" of a one-shot: a claim of {CLAIM_SIZE}; change the size to what the data needs."));
        out.objects.push(o);
    }
    out.objects.extend(objects);
}

fn claim(metadata: &ObjectMeta) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: metadata.clone(),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), Quantity(CLAIM_SIZE.into()))])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The pod of container `c`, whose `members` are its init containers and itself (last).
#[allow(clippy::too_many_arguments)]
fn pod(
    app: &App,
    c: &Container,
    members: &[&Container],
    files: &BTreeMap<String, PodFiles>,
    named: &BTreeSet<String>,
    job: bool,
    notes: &mut Vec<String>,
    out: &mut Out,
) -> PodSpec {
    let mut volumes: Vec<Volume> = Vec::new();
    let mut add_volume = |v: Volume| {
        if !volumes.iter().any(|have| have.name == v.name) {
            volumes.push(v);
        }
    };
    let mut containers = Vec::new();
    for m in members {
        let is_init = m.name != c.name;
        let mut k = container(app, m, is_init, notes, out);
        let mut mounts = Vec::new();
        if let Some(f) = files.get(&m.name) {
            f.volumes.iter().cloned().for_each(&mut add_volume);
            mounts.extend(f.mounts.iter().cloned());
            k.env.get_or_insert_with(Vec::new).extend(f.env.iter().cloned());
            notes.extend(f.notes.iter().cloned());
        }
        for (i, mnt) in m.mounts.iter().enumerate() {
            let name = match &mnt.source {
                MountSource::Volume(v) if job => {
                    let claim = dns_name(&[&app.name, v]);
                    add_volume(Volume {
                        name: v.clone(),
                        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: claim, read_only: None }),
                        ..Default::default()
                    });
                    v.clone()
                }
                MountSource::Volume(v) => {
                    debug_assert!(named.contains(v));
                    v.clone()
                }
                MountSource::Bind(path) => {
                    let name = dns_name(&["host", &m.name, &(i + 1).to_string()]);
                    notes.push(out.warn(
                        format!("container \"{}\" > mount \"{}\"", m.name, path.display()),
                        "a bind mount becomes a hostPath volume: the path is each node's own, and many clusters forbid hostPath; prefer a named volume",
                    ));
                    add_volume(Volume {
                        name: name.clone(),
                        host_path: Some(HostPathVolumeSource {
                            path: path.to_string_lossy().into_owned(),
                            type_: mnt.create.then(|| "DirectoryOrCreate".into()),
                        }),
                        ..Default::default()
                    });
                    name
                }
            };
            mounts.push(VolumeMount { name, mount_path: mnt.target.clone(), read_only: mnt.read_only.then_some(true), ..Default::default() });
        }
        for (i, t) in m.tmpfs.iter().enumerate() {
            let name = dns_name(&["tmpfs", &m.name, &(i + 1).to_string()]);
            add_volume(Volume {
                name: name.clone(),
                empty_dir: Some(EmptyDirVolumeSource { medium: Some("Memory".into()), size_limit: t.size.map(bytes), ..Default::default() }),
                ..Default::default()
            });
            mounts.push(VolumeMount { name, mount_path: t.path.clone(), ..Default::default() });
        }
        if m.shm_size != DEFAULT_SHM_SIZE {
            let name = dns_name(&["shm", &m.name]);
            add_volume(Volume {
                name: name.clone(),
                empty_dir: Some(EmptyDirVolumeSource { medium: Some("Memory".into()), size_limit: Some(bytes(m.shm_size)), ..Default::default() }),
                ..Default::default()
            });
            mounts.push(VolumeMount { name, mount_path: "/dev/shm".into(), ..Default::default() });
        }
        k.volume_mounts = (!mounts.is_empty()).then_some(mounts);
        if k.env.as_ref().is_some_and(Vec::is_empty) {
            k.env = None;
        }
        containers.push(k);
    }
    let main = containers.pop().expect("the container itself is the last member");

    let mut security = PodSecurityContext::default();
    let mut sysctls = Vec::new();
    for (key, value) in &c.sysctls {
        if !SAFE_SYSCTLS.contains(&key.as_str()) {
            notes.push(out.warn(
                format!("container \"{}\" > sysctl \"{key}\"", c.name),
                "not in Kubernetes' safe set: the pod starts only on nodes whose kubelet allows it (--allowed-unsafe-sysctls)",
            ));
        }
        sysctls.push(Sysctl { name: key.clone(), value: value.clone() });
    }
    security.sysctls = (!sysctls.is_empty()).then_some(sysctls);
    let (grace, _) = seconds(c.stop_timeout, 0);
    if c.init {
        notes.push("init: the pod shares one process namespace, whose PID 1 (the pause process) reaps zombies; signals go to the process itself.".into());
    }
    let host_users = match c.userns {
        Some(Userns::Auto) => {
            notes.push("userns \"auto\": hostUsers false needs a cluster with user namespaces (beta from Kubernetes 1.30, on by default from 1.33).".into());
            Some(false)
        }
        _ => None,
    };
    PodSpec {
        hostname: hostname(c, notes),
        init_containers: (!containers.is_empty()).then_some(containers),
        containers: vec![main],
        volumes: (!volumes.is_empty()).then_some(volumes),
        termination_grace_period_seconds: Some(grace),
        share_process_namespace: c.init.then_some(true),
        host_users,
        security_context: (security != PodSecurityContext::default()).then_some(security),
        // tfctl gives containers no cluster credentials either.
        automount_service_account_token: Some(false),
        ..Default::default()
    }
}

/// A pod's hostname is one DNS label: of a name with dots, the first label (and `subdomain`
/// would need a Service of that name).
fn hostname(c: &Container, notes: &mut Vec<String>) -> Option<String> {
    match c.hostname.split_once('.') {
        None => Some(c.hostname.clone()),
        Some((label, _)) => {
            notes.push(format!("hostname \"{}\": a pod's hostname is one label, so it is \"{label}\".", c.hostname));
            Some(label.to_string())
        }
    }
}

/// One container of a pod: image, command, environment, probes, hooks, confinement, limits.
fn container(app: &App, c: &Container, is_init: bool, notes: &mut Vec<String>, out: &mut Out) -> KContainer {
    let node = |what: &str| format!("container \"{}\"{}{what}", c.name, if what.is_empty() { "" } else { " > " });
    let image = match ImageSource::parse(&c.image, &app.dir) {
        Ok(ImageSource::Registry(r)) => r.to_string(),
        Ok(local) => {
            let (path, tag) = match &local {
                ImageSource::OciLayout { path, tag } | ImageSource::OciArchive { path, tag } => (path.clone(), tag.clone()),
                ImageSource::DockerArchive { path, .. } => (path.clone(), None),
                ImageSource::Registry(_) => unreachable!("matched above"),
            };
            let base = path.file_stem().map(|s| s.to_string_lossy().to_ascii_lowercase()).unwrap_or_else(|| "image".into());
            let placeholder = format!("{base}:{}", tag.unwrap_or_else(|| "latest".into()));
            notes.push(out.warn(
                node("image"),
                format!("{local} is a local image a cluster cannot pull: push it to a registry and replace the placeholder \"{placeholder}\""),
            ));
            placeholder
        }
        Err(e) => {
            notes.push(out.warn(node("image"), format!("{e}; exported as written")));
            c.image.clone()
        }
    };
    let mut sc = SecurityContext {
        // tfctl sets no_new_privs on every container.
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: c.read_only.then_some(true),
        ..Default::default()
    };
    let cap = |v: &[String]| v.iter().map(|s| s.strip_prefix("CAP_").unwrap_or(s).to_string()).collect::<Vec<_>>();
    if !c.cap_add.is_empty() || !c.cap_drop.is_empty() {
        sc.capabilities = Some(Capabilities {
            add: (!c.cap_add.is_empty()).then(|| cap(&c.cap_add)),
            drop: (!c.cap_drop.is_empty()).then(|| cap(&c.cap_drop)),
        });
    }
    sc.seccomp_profile = Some(match &c.seccomp {
        Seccomp::Default => SeccompProfile { type_: "RuntimeDefault".into(), localhost_profile: None },
        Seccomp::Unconfined => SeccompProfile { type_: "Unconfined".into(), localhost_profile: None },
        Seccomp::Profile(path) => {
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "profile.json".into());
            let local = format!("tfctl/{}/{file}", app.name);
            notes.push(out.warn(
                node("seccomp"),
                format!("the profile is read from each node: copy {} to /var/lib/kubelet/seccomp/{local} on every node", path.display()),
            ));
            SeccompProfile { type_: "Localhost".into(), localhost_profile: Some(local) }
        }
    });
    if let Some(user) = &c.user {
        let mut parts = user.splitn(2, ':').map(|p| p.parse::<i64>().ok());
        match (parts.next().flatten(), parts.next()) {
            (Some(uid), None) => sc.run_as_user = Some(uid),
            (Some(uid), Some(Some(gid))) => {
                sc.run_as_user = Some(uid);
                sc.run_as_group = Some(gid);
            }
            _ => notes.push(out.warn(
                node("user"),
                format!("\"{user}\" is a name, and Kubernetes takes numeric ids only: set runAsUser (and runAsGroup) to its uid and gid in the image"),
            )),
        }
    }
    let mut resources = BTreeMap::new();
    if let Some(m) = c.limits.memory {
        resources.insert("memory".to_string(), bytes(m));
    }
    if let Some(cpus) = c.limits.cpus {
        resources.insert("cpu".to_string(), Quantity(format!("{}m", (cpus * 1000.0).round() as u64)));
    }
    if let Some(p) = c.limits.pids {
        notes.push(out.warn(node("limits"), format!("pids={p} has no per-container equivalent (the kubelet's --pod-max-pids limits every pod of a node)")));
    }
    for u in &c.ulimits {
        notes.push(out.warn(
            format!("container \"{}\" > ulimit \"{}\"", c.name, u.name),
            "Kubernetes has no ulimits: the container gets the container runtime's defaults",
        ));
    }
    if let Some(sig) = &c.stop_signal {
        notes.push(out.warn(
            node("stop-signal"),
            format!("{sig} is not exported: Kubernetes stops with the image's STOPSIGNAL, else SIGTERM (a preStop hook can send another)"),
        ));
    }
    for a in c.after.iter().filter(|a| a.until != Until::Completed) {
        notes.push(out.warn(
            format!("container \"{}\" > after \"{}\"", c.name, a.container),
            format!(
                "until=\"{}\" ordering has no equivalent: Kubernetes starts every pod at once; the container must retry until \"{}\" answers",
                if a.until == Until::Healthy { "healthy" } else { "started" },
                a.container
            ),
        ));
    }
    let mut k = KContainer {
        name: c.name.clone(),
        image: Some(image),
        command: c.entrypoint.clone(),
        args: c.command.clone(),
        working_dir: c.workdir.clone(),
        env: Some(c.env.iter().map(|(k, v)| EnvVar { name: k.clone(), value: Some(v.clone()), ..Default::default() }).collect()),
        security_context: Some(sc),
        resources: (!resources.is_empty()).then(|| ResourceRequirements { limits: Some(resources), ..Default::default() }),
        ..Default::default()
    };
    let readiness = c.health.as_ref().map(|h| probe(c, h, notes));
    let lifecycle = lifecycle(c, notes, out);
    if is_init {
        // An init container has neither probes nor lifecycle hooks: it runs to completion first.
        if c.health.is_some() {
            notes.push(out.warn(node("health"), "an init container has no probes: this health check is not exported"));
        }
        if lifecycle.is_some() {
            notes.push(out.warn(node("on"), "an init container has no lifecycle hooks: its started and stopping hooks are not exported"));
        }
    } else {
        k.readiness_probe = readiness;
        k.lifecycle = lifecycle;
    }
    k
}

/// Parts of an `http` probe URL (`http://HOST[:PORT][/PATH]`).
pub(crate) struct HttpUrl {
    pub host: String,
    pub port: u16,
    pub path: String,
}

pub(crate) fn parse_http(url: &str) -> Option<HttpUrl> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (authority, 80),
    };
    Some(HttpUrl { host: host.to_string(), port, path: path.to_string() })
}

/// `health` as a readiness probe: tfctl marks an unhealthy container failed but does not
/// restart it, and so does a failing readiness probe (it only leaves the Service).
fn probe(c: &Container, h: &tfctl_schema::model::Health, notes: &mut Vec<String>) -> KProbe {
    let mut p = KProbe::default();
    match &h.probe {
        Probe::Exec(cmd) => p.exec = Some(ExecAction { command: Some(cmd.clone()) }),
        Probe::Tcp(port) => p.tcp_socket = Some(TCPSocketAction { port: IntOrString::Int(i32::from(*port)), host: None }),
        Probe::Http(url) => {
            if let Some(u) = parse_http(url) {
                // tfctl probes from the container's own network namespace, where loopback is the
                // container; the kubelet's default host, the pod's address, is the same server.
                let local = matches!(u.host.as_str(), "127.0.0.1" | "localhost");
                p.http_get = Some(HTTPGetAction {
                    host: (!local).then_some(u.host),
                    port: IntOrString::Int(i32::from(u.port)),
                    path: Some(u.path),
                    scheme: Some("HTTP".into()),
                    ..Default::default()
                });
            }
        }
    }
    let (period, p_round) = seconds(h.interval, 1);
    let (timeout, t_round) = seconds(h.timeout, 1);
    let (delay, d_round) = seconds(h.start_period, 0);
    p.period_seconds = Some(period as i32);
    p.timeout_seconds = Some(timeout as i32);
    p.failure_threshold = Some(h.retries.max(1) as i32);
    p.initial_delay_seconds = (delay > 0).then_some(delay as i32);
    let rounded: Vec<String> = [("interval", h.interval, period, p_round), ("timeout", h.timeout, timeout, t_round), ("start-period", h.start_period, delay, d_round)]
        .into_iter()
        .filter(|r| r.3)
        .map(|(what, d, s, _)| format!("{what} {} to {s}s", tfctl_schema::model::format_duration(d)))
        .collect();
    if !rounded.is_empty() {
        notes.push(format!("health of \"{}\": probes count whole seconds, so {} (rounded up).", c.name, rounded.join(", ")));
    }
    if !h.start_period.is_zero() {
        notes.push("start-period: the readiness probe starts after it (tfctl already probes during it).".into());
    }
    p
}

/// Quotes a word for sh.
fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-=:,@+%".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `started` exec hooks as postStart, `stopping` ones as preStop; everything else a warning.
fn lifecycle(c: &Container, notes: &mut Vec<String>, out: &mut Out) -> Option<Lifecycle> {
    let mut post_start = Vec::new();
    let mut pre_stop = Vec::new();
    for h in &c.hooks {
        let node = format!("container \"{}\" > on \"{}\"", c.name, h.event);
        let target = match h.event {
            Event::Started => &mut post_start,
            Event::Stopping => &mut pre_stop,
            other => {
                notes.push(out.warn(
                    &node,
                    format!("Kubernetes has no hook on \"{other}\": it is not exported (a sidecar or an operator could watch for it)"),
                ));
                continue;
            }
        };
        if h.event == Event::Started && h.on_fail == OnFail::Ignore {
            notes.push(out.warn(&node, "on-fail=\"ignore\" has no equivalent: Kubernetes kills the container when its postStart hook fails"));
        }
        for step in &h.steps {
            match step {
                HookStep::Exec(argv) => target.push(argv.clone()),
                HookStep::Run(argv) => notes.push(out.warn(
                    &node,
                    format!("`run {}` runs on the host; Kubernetes has no host hooks, so it is not exported", argv.join(" ")),
                )),
            }
        }
    }
    let handler = |steps: Vec<Vec<String>>| -> Option<LifecycleHandler> {
        let command = match steps.len() {
            0 => return None,
            1 => steps.into_iter().next(),
            // One handler runs one command: the steps in order, stopping at the first failure.
            _ => Some(vec![
                "sh".into(),
                "-c".into(),
                steps.iter().map(|argv| argv.iter().map(|a| sh_quote(a)).collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join(" && "),
            ]),
        };
        Some(LifecycleHandler { exec: Some(ExecAction { command }), ..Default::default() })
    };
    let several = post_start.len() > 1 || pre_stop.len() > 1;
    let l = Lifecycle { post_start: handler(post_start), pre_stop: handler(pre_stop), ..Default::default() };
    if several {
        notes.push(format!("Hooks of \"{}\" with several exec steps run as one `sh -c` command: the image needs a shell.", c.name));
    }
    (l != Lifecycle::default()).then_some(l)
}

/// A byte count as a quantity, in the largest binary unit that divides it.
pub(crate) fn bytes(n: u64) -> Quantity {
    for (unit, shift) in [("Gi", 30), ("Mi", 20), ("Ki", 10)] {
        if n != 0 && n.trailing_zeros() >= shift {
            return Quantity(format!("{}{unit}", n >> shift));
        }
    }
    Quantity(n.to_string())
}
