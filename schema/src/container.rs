//! Lowering one `container "NAME" { ... }` block to the model.

use std::collections::HashMap;

use kdl::{KdlEntry, KdlValue};
use miette::SourceSpan;

use crate::crossref::{RefKind, Refs};
use crate::lower::{egress, health, hook, label, named};
use crate::model::*;
use crate::network::{allow, allow_egress, publish};
use crate::reader::{sub_span, value_span, Cx, Node};
use crate::values;
use crate::vocab::Ctx;

/// The smallest memory limit a container may have (Docker refuses less).
const MIN_MEMORY: u64 = 6 << 20;

pub const DEFAULT_FILE_MODE: u32 = 0o644;
pub const DEFAULT_SECRET_MODE: u32 = 0o400;

const CONTAINER_EVENTS: &[Event] = &[
    Event::Started,
    Event::Healthy,
    Event::Unhealthy,
    Event::Stopping,
    Event::Exited,
    Event::Failed,
];

/// Paths inside one container that two settings must not both claim.
#[derive(Default)]
struct Paths(HashMap<String, SourceSpan>);

impl Paths {
    fn claim(&mut self, cx: &mut Cx<'_>, path: &str, span: SourceSpan) {
        let key = path.trim_end_matches('/').to_string();
        if let Some(first) = self.0.get(&key) {
            let p = cx
                .problem(
                    "tfctl::duplicate-path",
                    span,
                    format!("`{path}` is used twice in this container"),
                )
                .label("second use")
                .also(*first, "first use")
                .help("each file, secret, mount and tmpfs needs a path of its own");
            cx.push(p);
        } else {
            self.0.insert(key, span);
        }
    }
}

pub fn container(cx: &mut Cx<'_>, n: Node<'_>, refs: &mut Refs) -> Option<Container> {
    let name = named(cx, n, "container");
    if let (Some(name), Some(e)) = (&name, n.arg(0)) {
        refs.containers.push((name.clone(), value_span(e)));
    }
    let owner_name = name.clone().unwrap_or_default();
    let mut c = Container::new(&owner_name, "");
    let mut have_image = false;
    let mut env_files: Vec<(String, String)> = Vec::new();
    let mut env_nodes: Vec<(String, String)> = Vec::new();
    let mut paths = Paths::default();
    if let Some(e) = n.prop("replicas") {
        c.replicas = replicas(cx, e).unwrap_or(1);
    }
    // Where the host-network mode was asked for, and the first `publish`, which it excludes.
    let mut host_network_at: Option<SourceSpan> = None;
    let mut no_network_at: Option<SourceSpan> = None;
    let mut named_network_at: Option<SourceSpan> = None;
    let mut fixed_publish_at: Option<SourceSpan> = None;
    for s in cx.nodes(n.kdl.children(), Ctx::Container) {
        let arg0 = s.arg(0);
        match s.spec.name {
            "image" => {
                have_image = true;
                if let Some(r) = cx.str(arg0) {
                    let dir = cx.dir.clone();
                    if let Some(img) = cx.parsed(
                        arg0?,
                        values::check_image(&r, &dir),
                        "invalid image reference",
                    ) {
                        c.image = img;
                    }
                }
            }
            "command" => c.command = Some(s.args().filter_map(|a| cx.scalar(Some(a))).collect()),
            "entrypoint" => {
                c.entrypoint = Some(s.args().filter_map(|a| cx.scalar(Some(a))).collect())
            }
            "workdir" => {
                if let Some(p) = container_path(cx, arg0) {
                    c.workdir = Some(p);
                }
            }
            "user" => {
                if let Some(u) = cx.scalar(arg0) {
                    c.user = cx
                        .parsed(arg0?, values::check_user(&u), "invalid user")
                        .map(|_| u);
                }
            }
            "hostname" => {
                if let Some(h) = cx.str(arg0) {
                    if cx
                        .parsed(arg0?, values::check_hostname(&h), "invalid hostname")
                        .is_some()
                    {
                        c.hostname = h;
                    }
                }
            }
            "env" => {
                for e in s.props() {
                    let key = e.name().map(|k| k.value().to_string()).unwrap_or_default();
                    if key.is_empty() || key.contains(['=', '\0']) {
                        let p = cx
                            .problem(
                                "tfctl::invalid-env",
                                e.span(),
                                format!("`{key}` is not a variable name"),
                            )
                            .label("invalid name")
                            .help("environment variable names are not empty and have no `=`");
                        cx.push(p);
                        continue;
                    }
                    if let Some(v) = cx.scalar(Some(e)) {
                        env_nodes.push((key, v));
                    }
                }
            }
            "env-file" => env_file(cx, arg0, &mut env_files),
            "file" => {
                if let Some(f) = pre_boot_file(cx, s, refs, &mut paths) {
                    c.files.push(f);
                }
            }
            "secret" => {
                if let Some(u) = secret_use(cx, s, refs, &mut paths) {
                    c.secrets.push(u);
                }
            }
            "mount" => {
                if let Some(m) = mount(cx, s, refs, &mut paths) {
                    c.mounts.push(m);
                }
            }
            "tmpfs" => {
                let path = container_path(cx, arg0);
                let size = match s.prop("size") {
                    Some(e) => cx.size(Some(e), "a tmpfs size").map(Some),
                    None => Some(None),
                };
                if let (Some(path), Some(size)) = (path, size) {
                    paths.claim(cx, &path, value_span(arg0?));
                    c.tmpfs.push(Tmpfs { path, size });
                }
            }
            "userns" => {
                if let (Some(e), Some(v)) = (arg0, cx.str(arg0)) {
                    c.userns = crate::config::userns(cx, e, &v);
                }
            }
            "shm-size" => {
                if let Some(size) = cx.size(arg0, "shm-size") {
                    c.shm_size = size;
                }
            }
            "publish" => {
                if let Some(p) = publish(cx, s, refs) {
                    if p.host_port != 0 && fixed_publish_at.is_none() {
                        fixed_publish_at = Some(s.name_span());
                    }
                    c.publish.push(p);
                }
            }
            "profile" => {
                for a in s.args() {
                    if let Some(p) = cx.str(Some(a)) {
                        if let Err(b) = values::check_name("profile", &p) {
                            cx.bad(b, value_span(a), "invalid profile name");
                        } else if !c.profiles.contains(&p) {
                            c.profiles.push(p);
                        }
                    }
                }
            }
            "label" => label(cx, s, &mut c.labels),
            "alias" => {
                if let Some(a) = cx.str(arg0) {
                    if let Err(b) = values::check_name("alias", &a) {
                        cx.bad(b, value_span(arg0?), "invalid alias");
                    } else {
                        refs.aliases.push((a.clone(), owner_name.clone(), value_span(arg0?)));
                        c.aliases.push(a);
                    }
                }
            }
            "extra-host" => {
                let name = cx.str(arg0);
                let addr_e = s.arg(1);
                let addr = cx.str(addr_e);
                if let (Some(name), Some(addr), Some(addr_e)) = (name, addr, addr_e) {
                    let name = cx
                        .parsed(arg0?, values::check_hostname(&name), "invalid host name")
                        .map(|_| name);
                    let addr = cx.parsed(addr_e, values::parse_ip(&addr), "not an IP address");
                    if let (Some(name), Some(addr)) = (name, addr) {
                        c.extra_hosts.push(ExtraHost { name, addr });
                    }
                }
            }
            "dns" => {
                for a in s.args() {
                    if let Some(v) = cx.str(Some(a)) {
                        if let Some(ip) = cx.parsed(a, values::parse_ip(&v), "not an IP address") {
                            c.dns.push(ip);
                        }
                    }
                }
            }
            "network" => {
                if let Some(v) = cx.str(arg0) {
                    let span = value_span(arg0?);
                    if v == "host" {
                        c.network = NetworkMode::Host;
                        host_network_at = Some(span);
                    } else if v == "none" {
                        c.network = NetworkMode::None;
                        no_network_at = Some(span);
                    } else if let Err(b) = values::check_name("network", &v) {
                        cx.bad(b, span, "invalid network name");
                    } else {
                        named_network_at.get_or_insert(span);
                        if !c.networks.contains(&v) {
                            c.networks.push(v);
                        }
                    }
                }
            }
            "pid" => {
                if cx.choice(arg0, "PID namespace", &["host"]).is_some() {
                    c.host_pid = true;
                }
            }
            "device" => {
                if let Some(d) = cx.str(arg0) {
                    if cx.parsed(arg0?, values::check_device(&d), "not a device path").is_some() {
                        c.devices.push(d);
                    }
                }
            }
            "log" => {
                if let Some(e) = s.prop("size") {
                    c.log.size = cx.size(Some(e), "a log size");
                }
                c.log.files = cx
                    .positive(s.prop("files"), "files")
                    .and_then(|f| u32::try_from(f).ok());
            }
            "allow" => {
                if let Some(a) = allow(cx, s, refs) {
                    c.allow.push(a);
                }
            }
            "egress" => c.egress = egress(cx, s),
            "allow-egress" => {
                if let Some(a) = allow_egress(cx, s) {
                    c.allow_egress.push(a);
                }
            }
            "after" => {
                let until = match cx.choice(
                    s.prop("until"),
                    "`until` value",
                    &["started", "healthy", "completed"],
                ) {
                    Some("healthy") => Until::Healthy,
                    Some("completed") => Until::Completed,
                    _ => Until::Started,
                };
                if let Some(target) = cx.str(arg0) {
                    let span = value_span(arg0?);
                    refs.uses
                        .push((RefKind::Container, target.clone(), span, "`after`"));
                    refs.afters
                        .push((owner_name.clone(), target.clone(), span, until));
                    c.after.push(After {
                        container: target,
                        until,
                        restart: cx.bool(s.prop("restart")).unwrap_or(false),
                    });
                }
            }
            "health" => c.health = health(cx, s),
            "restart" => {
                let policy = match cx.choice(
                    arg0,
                    "restart policy",
                    &["no", "always", "on-failure", "unless-stopped"],
                ) {
                    Some("always") => RestartPolicy::Always,
                    Some("on-failure") => RestartPolicy::OnFailure,
                    Some("unless-stopped") => RestartPolicy::UnlessStopped,
                    _ => RestartPolicy::No,
                };
                let max = cx
                    .positive(s.prop("max"), "max")
                    .and_then(|m| u32::try_from(m).ok());
                c.restart = Restart { policy, max };
            }
            "on" => {
                if let Some(h) = hook(cx, s, CONTAINER_EVENTS, true) {
                    c.hooks.push(h);
                }
            }
            "limits" => {
                c.limits.memory = cx.size(s.prop("memory"), "memory");
                // A limit no process can start under is a typo for a unit (`memory=64`).
                if let (Some(m), Some(e)) = (c.limits.memory, s.prop("memory")) {
                    if m < MIN_MEMORY {
                        let p = cx
                            .problem("tfctl::memory-too-small", value_span(e), format!("a memory limit of {m} bytes is too small for any process to start"))
                            .label("below 6 MiB")
                            .help(format!("sizes take a unit: memory=\"{m}M\" or \"{m}G\" (Docker also refuses limits below 6 MiB)"));
                        cx.push(p);
                        c.limits.memory = None;
                    }
                }
                c.limits.pids = cx.positive(s.prop("pids"), "pids");
                if let Some(e) = s.prop("cpus") {
                    let v = match e.value() {
                        KdlValue::Integer(i) => Some(*i as f64),
                        KdlValue::Float(f) => Some(*f),
                        _ => None,
                    };
                    match v {
                        Some(v) if v > 0.0 && v.is_finite() && v <= 4096.0 => {
                            c.limits.cpus = Some(v)
                        }
                        Some(v) => {
                            let p = cx
                                .problem(
                                    "tfctl::not-positive",
                                    value_span(e),
                                    format!("cpus must be more than 0, found {v}"),
                                )
                                .label("not positive")
                                .help("write a share of CPUs such as 0.5 or 2");
                            cx.push(p);
                        }
                        None => {}
                    }
                }
            }
            "ulimit" => {
                if let Some(u) = ulimit(cx, s) {
                    c.ulimits.push(u);
                }
            }
            "cap-add" | "cap-drop" => {
                for a in s.args() {
                    if let Some(name) = cx.str(Some(a)) {
                        if let Some(cap) =
                            cx.parsed(a, values::parse_capability(&name), "unknown capability")
                        {
                            if s.spec.name == "cap-add" {
                                &mut c.cap_add
                            } else {
                                &mut c.cap_drop
                            }
                            .push(cap);
                        }
                    }
                }
            }
            "seccomp" => {
                if let Some(v) = cx.str(arg0) {
                    c.seccomp = match v.as_str() {
                        "default" => Seccomp::Default,
                        "unconfined" => Seccomp::Unconfined,
                        path => {
                            let abs = cx.host_path(path);
                            cx.readable(arg0?, &abs, "seccomp profile");
                            Seccomp::Profile(abs)
                        }
                    }
                }
            }
            "sysctl" => {
                let key = cx.str(arg0);
                let value = cx.scalar(s.arg(1));
                if let (Some(key), Some(value)) = (key, value) {
                    if cx
                        .parsed(arg0?, values::check_sysctl(&key), "not namespaced")
                        .is_some()
                    {
                        c.sysctls.push((key, value));
                    }
                }
            }
            "stop-signal" => {
                if let Some(sig) = cx.str(arg0) {
                    if let Some(sig) =
                        cx.parsed(arg0?, values::parse_signal(&sig), "unknown signal")
                    {
                        c.stop_signal = Some(sig);
                    }
                }
            }
            "stop-timeout" => {
                if let Some(d) = cx.duration(arg0) {
                    c.stop_timeout = d;
                }
            }
            "group-add" => {
                for a in s.args() {
                    if let Some(g) = cx.scalar(Some(a)) {
                        if cx.parsed(a, values::check_group(&g), "invalid group").is_some() {
                            c.group_add.push(g);
                        }
                    }
                }
            }
            "read-only" => c.read_only = true,
            "init" => c.init = true,
            "sleep" => c.sleep = true,
            "one-shot" => c.one_shot = true,
            "privileged" => c.privileged = true,
            "tty" => c.tty = true,
            _ => {}
        }
    }
    if let (Some(host), Some(named)) = (host_network_at, named_network_at) {
        let p = cx
            .problem("tfctl::host-network", host, "a container in the host's network joins no other network")
            .label("the host's network")
            .also(named, "a named network")
            .help("remove `network \"host\"`, or the named networks");
        cx.push(p);
    }
    if let (Some(none), Some(other)) = (no_network_at, host_network_at.or(named_network_at)) {
        let p = cx
            .problem("tfctl::no-network", none, "a container on no network joins no other network")
            .label("no network")
            .also(other, "another network")
            .help("keep `network \"none\"` alone, or remove it");
        cx.push(p);
    }
    if let (Some(host), Some(publish)) = (host_network_at, fixed_publish_at) {
        let p = cx
            .problem("tfctl::host-network", publish, "`publish` has no meaning in the host's network")
            .label("published port")
            .also(host, "the host's network")
            .help("in the host's network the container's ports are the host's: remove `publish`");
        cx.push(p);
    }
    if let (true, Some(e)) = (c.network == NetworkMode::Host, n.prop("replicas").filter(|_| c.replicas > 1)) {
        let p = cx
            .problem("tfctl::host-network", value_span(e), "replicas of a container in the host's network would share its ports")
            .label("more than one instance")
            .help("remove `replicas=`, or run the container in the app's network");
        cx.push(p);
    }
    if let (true, Some(publish), Some(e)) = (c.replicas > 1, fixed_publish_at, n.prop("replicas")) {
        let p = cx
            .problem("tfctl::replicas-publish", publish, "replicas cannot all publish one host port")
            .label("a fixed host port")
            .also(value_span(e), "several instances")
            .help("publish host port 0 to give each instance a free port, or remove `replicas=`");
        cx.push(p);
    }
    if !have_image {
        let p = cx
            .problem(
                "tfctl::missing-image",
                n.name_span(),
                format!("container `{owner_name}` has no `image`"),
            )
            .label("no image")
            .help("add the image to run: image \"busybox\" (or a local \"oci:PATH\")");
        cx.push(p);
    }
    if c.network == NetworkMode::None && !c.publish.is_empty() {
        let p = cx
            .problem(
                "tfctl::publish-without-network",
                n.name_span(),
                format!("container `{owner_name}` has network \"none\" and publishes ports"),
            )
            .label("on no network")
            .help("a container on no network cannot publish: remove `network \"none\"` or its `publish` nodes");
        cx.push(p);
    }
    // env-file entries first, then env nodes; a later key wins, in the place of its first use.
    for (k, v) in env_files.into_iter().chain(env_nodes) {
        match c.env.iter_mut().find(|(ek, _)| *ek == k) {
            Some(slot) => slot.1 = v,
            None => c.env.push((k, v)),
        }
    }
    name.map(|_| c)
}

/// The most instances `replicas=` may ask for: each takes an address of the app's subnet.
pub const MAX_REPLICAS: u64 = 64;

fn replicas(cx: &mut Cx<'_>, e: &KdlEntry) -> Option<u32> {
    let n = cx.positive(Some(e), "replicas")?;
    if n > MAX_REPLICAS {
        let p = cx
            .problem("tfctl::invalid-replicas", value_span(e), format!("{n} replicas are more than tfctl runs of one container"))
            .label("too many")
            .help(format!("ask for at most {MAX_REPLICAS}; each instance takes an address of the app's subnet"));
        cx.push(p);
        return None;
    }
    u32::try_from(n).ok()
}

fn container_path(cx: &mut Cx<'_>, e: Option<&KdlEntry>) -> Option<String> {
    let e = e?;
    let p = cx.str(Some(e))?;
    cx.parsed(
        e,
        values::check_container_path(&p),
        "not a path in the container",
    )
    .map(|_| p)
}

fn owner(cx: &mut Cx<'_>, e: Option<&KdlEntry>) -> Option<Option<Owner>> {
    let Some(e) = e else { return Some(None) };
    let s = cx.str(Some(e))?;
    cx.parsed(e, values::parse_owner(&s), "invalid owner")
        .map(Some)
}

fn env_file(cx: &mut Cx<'_>, e: Option<&KdlEntry>, out: &mut Vec<(String, String)>) {
    let Some(e) = e else { return };
    let Some(p) = cx.str(Some(e)) else { return };
    let path = cx.host_path(&p);
    if !cx.readable(e, &path, "env-file") {
        return;
    }
    let text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => return,
    };
    let src = crate::diag::source(&path.to_string_lossy(), &text);
    let lookup = |n: &str| cx.vars.get(n);
    let (vars, problems) = crate::vars::parse_dotenv(&src, &text, &lookup);
    for p in problems {
        cx.push(p);
    }
    out.extend(vars);
}

fn pre_boot_file(
    cx: &mut Cx<'_>,
    s: Node<'_>,
    refs: &mut Refs,
    paths: &mut Paths,
) -> Option<PreBootFile> {
    let path_e = s.arg(0)?;
    let path = container_path(cx, Some(path_e));
    let template = cx.bool(s.prop("template")).unwrap_or(false);
    let mode = match s.prop("mode") {
        Some(e) => cx.mode(Some(e)),
        None => Some(DEFAULT_FILE_MODE),
    };
    let owner = owner(cx, s.prop("owner"));
    let content = match (s.arg(1), s.prop("from")) {
        (Some(inline), None) => {
            let text = cx.str(Some(inline))?;
            if template {
                let raw = match inline.value() {
                    KdlValue::String(r) if *r == text => Some(r.as_str()),
                    _ => None,
                };
                template_refs(cx, &text, refs, |start, end| match raw {
                    Some(r) => sub_span(inline, r, start, end),
                    None => value_span(inline),
                });
            }
            FileContent::Inline(text)
        }
        (None, Some(from)) => {
            let rel = cx.str(Some(from))?;
            let p = cx.host_path(&rel);
            if !cx.readable(from, &p, "file") {
                return None;
            }
            if template {
                if let Ok(bytes) = std::fs::read(&p) {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    template_refs(cx, &text, refs, |_, _| value_span(from));
                }
            }
            FileContent::From(p)
        }
        (Some(inline), Some(_)) => {
            let p = cx
                .problem(
                    "tfctl::file-content",
                    value_span(inline),
                    "the file has both inline content and `from=`",
                )
                .label("inline content")
                .help("give either the content as a second argument or from=\"PATH\", not both");
            cx.push(p);
            return None;
        }
        (None, None) => {
            let p = cx
                .problem(
                    "tfctl::file-content",
                    s.name_span(),
                    "the file has no content",
                )
                .label("no content")
                .help("give the content as a second argument, or from=\"./local/path\"");
            cx.push(p);
            return None;
        }
    };
    let path = path?;
    // tfctl writes /etc/hosts with the app's names: a file of the user's would silently drop
    // them (and the aliases and extra hosts), so it is refused and the nodes that add to it named.
    if path.trim_end_matches('/') == "/etc/hosts" {
        let p = cx
            .problem("tfctl::etc-hosts", value_span(path_e), "tfctl writes /etc/hosts itself, with the app's containers by name")
            .label("would replace the app's names")
            .help("add names with extra-host \"NAME\" \"ADDRESS\", or other names of this container with alias \"NAME\"");
        cx.push(p);
        return None;
    }
    paths.claim(cx, &path, value_span(path_e));
    Some(PreBootFile {
        path,
        content,
        template,
        mode: mode?,
        owner: owner?,
    })
}

/// Checks `{{ ip.NAME }}`, `{{ name.NAME }}` and `{{ secret.NAME }}` placeholders; `span_of` maps
/// byte offsets in `text` to the file.
fn template_refs(
    cx: &mut Cx<'_>,
    text: &str,
    refs: &mut Refs,
    span_of: impl Fn(usize, usize) -> SourceSpan,
) {
    let mut at = 0;
    while let Some(open) = text[at..].find("{{").map(|i| at + i) {
        let Some(close) = text[open..].find("}}").map(|i| open + i) else {
            let p = cx
                .problem(
                    "tfctl::invalid-template",
                    span_of(open, open + 2),
                    "`{{` is not closed by `}}`",
                )
                .label("unclosed placeholder")
                .help("write placeholders as {{ ip.NAME }}, {{ name.NAME }} or {{ secret.NAME }}");
            cx.push(p);
            return;
        };
        let inner = text[open + 2..close].trim();
        let span = span_of(open, close + 2);
        let kind = match inner.split_once('.') {
            Some(("ip" | "name", n)) if !n.is_empty() => Some((RefKind::Container, n)),
            Some(("secret", n)) if !n.is_empty() => Some((RefKind::Secret, n)),
            _ => None,
        };
        match kind {
            Some((k, n)) => refs.uses.push((k, n.to_string(), span, "the template")),
            None => {
                let p = cx
                    .problem(
                        "tfctl::invalid-template",
                        span,
                        format!("unknown placeholder `{{{{ {inner} }}}}`"),
                    )
                    .label("not a placeholder tfctl knows")
                    .help("write {{ ip.CONTAINER }}, {{ name.CONTAINER }} or {{ secret.NAME }}");
                cx.push(p);
            }
        }
        at = close + 2;
    }
}

fn secret_use(
    cx: &mut Cx<'_>,
    s: Node<'_>,
    refs: &mut Refs,
    paths: &mut Paths,
) -> Option<SecretUse> {
    let name_e = s.arg(0)?;
    let name = cx.str(Some(name_e))?;
    refs.uses.push((
        RefKind::Secret,
        name.clone(),
        value_span(name_e),
        "`secret`",
    ));
    if let Some(env) = s.prop("env") {
        if let Some(file_prop) = ["at", "mode", "owner"].iter().find_map(|k| s.prop(k)) {
            let p = cx
                .problem(
                    "tfctl::secret-target",
                    file_prop.span(),
                    "a secret goes either to a file or to `env=`",
                )
                .label("file setting")
                .help("remove `env=` to get a file, or the file settings to get a variable");
            cx.push(p);
            return None;
        }
        let var = cx.str(Some(env))?;
        if var.is_empty() || var.contains(['=', '\0']) {
            let p = cx
                .problem(
                    "tfctl::invalid-env",
                    value_span(env),
                    format!("`{var}` is not a variable name"),
                )
                .label("invalid name")
                .help("write the variable's name, e.g. env=\"DB_PASSWORD\"");
            cx.push(p);
            return None;
        }
        return Some(SecretUse {
            name,
            target: SecretTarget::Env(var),
        });
    }
    let path = match s.prop("at") {
        Some(e) => {
            let p = container_path(cx, Some(e))?;
            paths.claim(cx, &p, value_span(e));
            p
        }
        None => {
            let p = format!("/run/secrets/{name}");
            paths.claim(cx, &p, value_span(name_e));
            p
        }
    };
    let mode = match s.prop("mode") {
        Some(e) => cx.mode(Some(e))?,
        None => DEFAULT_SECRET_MODE,
    };
    let owner = owner(cx, s.prop("owner"))?;
    Some(SecretUse {
        name,
        target: SecretTarget::File { path, mode, owner },
    })
}

fn mount(cx: &mut Cx<'_>, s: Node<'_>, refs: &mut Refs, paths: &mut Paths) -> Option<Mount> {
    let src_e = s.arg(0)?;
    let src = cx.str(Some(src_e));
    let read_only = cx.bool(s.prop("read-only")).unwrap_or(false);
    let create = cx.bool(s.prop("create")).unwrap_or(false);
    let target = match s.prop("at") {
        Some(e) => {
            let t = container_path(cx, Some(e));
            if let Some(t) = &t {
                paths.claim(cx, t, value_span(e));
            }
            t
        }
        None => {
            let p = cx
                .problem(
                    "tfctl::missing-property",
                    s.name_span(),
                    "`mount` needs `at=`",
                )
                .label("no target path")
                .help("say where it goes: mount \"data\" at=\"/var/lib/data\"");
            cx.push(p);
            None
        }
    };
    let src = src?;
    let source = if src.starts_with("./") || src.starts_with("../") || src.starts_with('/') {
        let path = cx.host_path(&src);
        // Caught here, at its line, rather than when the container starts: a typo in a path
        // is the usual reason. `create=#true` asks for the folder instead.
        if !create && target.is_some() && std::fs::symlink_metadata(&path).is_err() {
            let p = cx
                .problem("tfctl::missing-bind-source", value_span(src_e), format!("bind mount source `{}` does not exist", path.display()))
                .label("no such file or folder")
                .help("relative paths start at the app file's folder; create it, or write create=#true on this `mount` to have tfctl make an empty folder, as `docker run -v` does");
            cx.push(p);
        }
        MountSource::Bind(path)
    } else {
        if create {
            if let Some(e) = s.prop("create") {
                let p = cx
                    .problem("tfctl::create-on-volume", value_span(e), "`create` is for a host path; a named volume is always made")
                    .label("not a host path")
                    .help("remove create=, or give a host path starting with ./, ../ or /");
                cx.push(p);
            }
        }
        refs.uses
            .push((RefKind::Volume, src.clone(), value_span(src_e), "`mount`"));
        MountSource::Volume(src)
    };
    Some(Mount {
        source,
        target: target?,
        read_only,
        create,
    })
}

fn ulimit(cx: &mut Cx<'_>, s: Node<'_>) -> Option<Ulimit> {
    let name_e = s.arg(0)?;
    let name = cx.str(Some(name_e))?;
    let name = cx
        .parsed(name_e, values::check_ulimit(&name), "unknown limit")
        .map(|_| name);
    let int = |cx: &mut Cx<'_>, e: &KdlEntry| {
        let v = cx.int(Some(e))?;
        match u64::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                let p = cx
                    .problem(
                        "tfctl::invalid-ulimit",
                        value_span(e),
                        format!("limit {v} is negative"),
                    )
                    .label("negative")
                    .help("limits are whole numbers from 0 up");
                cx.push(p);
                None
            }
        }
    };
    let Some(soft_e) = s.prop("soft") else {
        let p = cx
            .problem(
                "tfctl::missing-property",
                s.name_span(),
                "`ulimit` needs `soft=`",
            )
            .label("no soft limit")
            .help("write ulimit \"nofile\" soft=1024 hard=2048");
        cx.push(p);
        return None;
    };
    let soft = int(cx, soft_e)?;
    let hard = match s.prop("hard") {
        Some(e) => int(cx, e)?,
        None => soft,
    };
    if soft > hard {
        let p = cx
            .problem(
                "tfctl::invalid-ulimit",
                soft_e.span(),
                format!("the soft limit {soft} is above the hard limit {hard}"),
            )
            .label("above the hard limit")
            .help("the soft limit must not exceed the hard limit");
        cx.push(p);
        return None;
    }
    Some(Ulimit {
        name: name?,
        soft,
        hard,
    })
}
