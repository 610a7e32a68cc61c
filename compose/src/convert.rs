//! The merged Compose model as a tfctl app file: one `container` per service, `volume`,
//! `secret` and file nodes for its resources, `network` nodes for its Compose networks (and
//! `allow` rules where `expose` narrows them). What has no equivalent becomes a warning and a
//! comment.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};
use tfctl_schema::{kdl_string as q, values};

use crate::error::Error;
use crate::interpolate::Env;
use crate::keys::{self, Fate};
use crate::load::{normalize, Project};
use crate::merge::{key_values, list_to_map, scalar_text};
use crate::ports::{self, Listen};
use crate::{Conversion, Warning};

/// Service keys this module turns into nodes (or into reachability); the others go to
/// `keys::fate`.
const MAPPED: &[&str] = &[
    "image", "build", "command", "entrypoint", "environment", "env_file", "user", "working_dir",
    "hostname", "ports", "expose", "volumes", "tmpfs", "secrets", "configs", "healthcheck",
    "depends_on", "restart", "deploy", "mem_limit", "cpus", "pids_limit", "ulimits", "cap_add",
    "cap_drop", "read_only", "init", "stop_signal", "stop_grace_period", "sysctls", "shm_size",
    "networks", "network_mode", "security_opt", "extends", "profiles", "labels", "logging",
    "extra_hosts", "dns", "pid", "privileged", "devices", "tty", "scale", "group_add",
];

/// Compose's health-check timing when a file leaves it out (tfctl's own defaults differ).
const COMPOSE_HEALTH_INTERVAL: &str = "30s";
const COMPOSE_HEALTH_TIMEOUT: &str = "30s";

/// A block of KDL lines, one node or comment each, indented by the writer.
#[derive(Default)]
struct Block {
    lines: Vec<String>,
    /// Properties of the node the block belongs to (` replicas=3` of its `container`).
    props: String,
}

impl Block {
    fn node(&mut self, s: impl Into<String>) {
        self.lines.push(s.into());
    }

    fn comment(&mut self, s: &str) {
        // A comment runs to the end of its line: a value's newlines must not end it.
        self.lines.push(format!("// {}", one_line(s)));
    }
}

fn one_line(s: &str) -> String {
    s.replace('\r', "").replace('\n', "\\n")
}

/// A YAML value written compactly, for comments and messages: `[a, b]`, `{k: v}`.
fn flow(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            if s.is_empty() || s.contains([',', ':', '[', ']', '{', '}', '#']) || s.trim() != s {
                format!("{s:?}")
            } else {
                s.clone()
            }
        }
        Value::Sequence(items) => format!("[{}]", items.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Value::Mapping(m) => format!(
            "{{{}}}",
            m.iter().map(|(k, v)| format!("{}: {}", flow(k), flow(v))).collect::<Vec<_>>().join(", ")
        ),
        Value::Tagged(t) => format!("{} {}", t.tag, flow(&t.value)),
    }
}

/// A Compose name as a tfctl name (a DNS label): lowercase, `_` and `.` as `-`.
fn dns_label(s: &str) -> String {
    let mapped: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut out = String::new();
    for c in mapped.trim_matches('-').chars() {
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out.truncate(63);
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "x".into()
    } else {
        out
    }
}

/// Names, unique among their kind, for Compose's names.
#[derive(Default)]
struct Names {
    map: BTreeMap<String, String>,
    used: BTreeSet<String>,
}

impl Names {
    fn add(&mut self, compose: &str) -> String {
        if let Some(n) = self.map.get(compose) {
            return n.clone();
        }
        let base = dns_label(compose);
        let mut name = base.clone();
        let mut i = 2;
        while self.used.contains(&name) {
            name = format!("{base}-{i}");
            i += 1;
        }
        self.used.insert(name.clone());
        self.map.insert(compose.to_string(), name.clone());
        name
    }

    fn get(&self, compose: &str) -> Option<&String> {
        self.map.get(compose)
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A Compose duration (`"1m30s"`, `"1.5s"`, `"500ms"`) as a tfctl one.
fn duration(v: &Value) -> Option<String> {
    let text = scalar_text(v)?;
    let d = values::parse_duration(&text).ok()?;
    let ms = d.as_millis();
    Some(if ms % 1000 == 0 { format!("{}s", ms / 1000) } else { format!("{ms}ms") })
}

/// A size as a KDL value: a string checked by tfctl's own parser, or a whole number of bytes.
fn size(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n.as_u64().filter(|n| *n > 0).map(|n| n.to_string()),
        Value::String(s) => values::parse_size(s).ok().map(|_| q(s)),
        _ => None,
    }
}

/// A file mode as written in Compose files: YAML 1.2 reads `0440` as decimal 440, but Compose
/// (YAML 1.1) means octal, so decimal digits that are all octal are taken as octal.
fn mode(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => {
            let n = n.as_u64()?;
            let digits = n.to_string();
            if digits.chars().all(|c| ('0'..='7').contains(&c)) {
                u32::from_str_radix(&digits, 8).ok()
            } else {
                u32::try_from(n).ok().filter(|m| *m <= 0o7777)
            }
        }
        Value::String(s) => {
            let t = s.trim_start_matches("0o");
            u32::from_str_radix(t, 8).ok().filter(|m| *m <= 0o7777)
        }
        _ => None,
    }
}

/// A command as Compose splits a string: shell words, with quotes and backslashes.
fn shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("a single quote is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("a double quote is not closed".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("a double quote is not closed".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// What one service needs to know of the others.
struct Peer {
    compose: String,
    name: String,
    networks: Vec<String>,
    listens: Vec<Listen>,
    has_health: bool,
    /// What its network settings did not convert, as comments for its block.
    notes: Vec<String>,
    /// `network_mode: none` or `host`: on none of the app's networks.
    mode: Option<&'static str>,
    /// Whether it joins its networks with `network` nodes: not when `expose` narrows the ports
    /// its peers reach, which a named network (every port) cannot say.
    joins: bool,
}

struct Cx<'a> {
    project: &'a Project,
    env: &'a Env<'a>,
    out_dir: PathBuf,
    app: String,
    /// The Compose project's own name, which names the images Compose builds.
    compose_project: String,
    warnings: Vec<Warning>,
    containers: Names,
    volumes: Names,
    secrets: Names,
    /// The app's volumes, in the order first used, with a comment.
    declared_volumes: Vec<(String, Option<String>)>,
    used_secrets: BTreeSet<String>,
    /// Aliases given so far: an alias names one container of the app.
    aliases: BTreeSet<String>,
}

impl Cx<'_> {
    fn warn(&mut self, block: &mut Block, service: Option<&str>, key: &str, message: String) {
        block.comment(&format!("compose: {key}: {message}"));
        self.warnings.push(Warning { service: service.map(str::to_string), key: key.to_string(), message });
    }

    /// A key without a node: its fate from the table, as a warning and a comment (or a comment
    /// alone when it changes nothing).
    fn unmapped(&mut self, block: &mut Block, service: Option<&str>, key: &str, value: &Value) {
        let fate = keys::fate(key).unwrap_or(if keys::SERVICE_KEYS.contains(&key) || service.is_none() {
            Fate::Unsupported("tfctl has no such setting")
        } else {
            Fate::Unsupported("not a key of the Compose Specification")
        });
        let text = keys::describe(fate, &flow(value));
        match fate {
            Fate::Ignored(_) => block.comment(&format!("compose: {key}: {text}")),
            _ => self.warn(block, service, key, text),
        }
    }

    /// A host path of the Compose files as the app file writes it: relative to the app file's
    /// folder when it lies below it (or its parent), else absolute.
    fn host_path(&self, p: &str, base: &Path) -> String {
        let expanded = match p.strip_prefix("~/") {
            Some(rest) => match self.env.get("HOME") {
                Some(home) => PathBuf::from(home).join(rest),
                None => PathBuf::from(p),
            },
            None => PathBuf::from(p),
        };
        let abs = normalize(&base.join(expanded));
        if let Ok(rest) = abs.strip_prefix(&self.out_dir) {
            if rest.as_os_str().is_empty() {
                return abs.display().to_string();
            }
            return format!("./{}", rest.display());
        }
        if let Some(parent) = self.out_dir.parent().filter(|p| p.parent().is_some()) {
            if let Ok(rest) = abs.strip_prefix(parent) {
                if !rest.as_os_str().is_empty() {
                    return format!("../{}", rest.display());
                }
            }
        }
        abs.display().to_string()
    }

    fn volume(&mut self, compose: &str, comment: Option<String>) -> String {
        let name = self.volumes.add(compose);
        if !self.declared_volumes.iter().any(|(n, _)| *n == name) {
            self.declared_volumes.push((name.clone(), comment));
        }
        name
    }
}

fn section(model: &Mapping, key: &str) -> Mapping {
    match model.get(key) {
        Some(Value::Mapping(m)) => m.clone(),
        _ => Mapping::new(),
    }
}

/// The project name: `-p`, then `name:`, then `COMPOSE_PROJECT_NAME`, then the folder's name,
/// lowercased to Compose's alphabet.
fn project_name(project: &Project, env: &Env, given: Option<&str>) -> String {
    let raw = given
        .map(str::to_string)
        .or_else(|| project.model.get("name").and_then(scalar_text))
        .or_else(|| env.get("COMPOSE_PROJECT_NAME").filter(|s| !s.is_empty()))
        .or_else(|| project.dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "app".into());
    let name: String = raw
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    name.trim_start_matches(['_', '-']).to_string()
}

pub fn convert(project: &Project, env: &Env, given_name: Option<&str>, out_dir: &Path) -> Result<Conversion, Error> {
    let services = section(&project.model, "services");
    if services.is_empty() {
        return Err(Error::NoServices);
    }
    let compose_project = project_name(project, env, given_name);
    let mut cx = Cx {
        project,
        env,
        out_dir: out_dir.to_path_buf(),
        app: dns_label(&compose_project),
        compose_project: compose_project.clone(),
        warnings: Vec::new(),
        containers: Names::default(),
        volumes: Names::default(),
        secrets: Names::default(),
        declared_volumes: Vec::new(),
        used_secrets: BTreeSet::new(),
        aliases: BTreeSet::new(),
    };
    let mut header = Block::default();
    for name in &project.unset {
        let msg = format!("variable `{name}` is not set: it became an empty string, as in Compose");
        cx.warn(&mut header, None, "interpolation", msg);
    }
    for (k, v) in &project.model {
        let key = k.as_str().unwrap_or_default();
        match key {
            "services" | "networks" | "volumes" | "secrets" | "configs" | "name" => {}
            k if k.starts_with("x-") => {}
            k => cx.unmapped(&mut header, None, k, v),
        }
    }
    let networks = networks(&mut cx, &mut header);
    for (name, _) in &services {
        cx.containers.add(name.as_str().unwrap_or_default());
    }

    // What each service needs of the others: its networks, its ports, whether it has a probe.
    let mut peers = Vec::new();
    for (name, svc) in &services {
        let compose = name.as_str().unwrap_or_default().to_string();
        let mut scratch = Block::default();
        let nets = service_networks(&mut cx, &mut scratch, &compose, svc, &networks);
        let mode = match svc.get("network_mode").and_then(Value::as_str) {
            Some("none") => Some("none"),
            Some("host") => Some("host"),
            _ => None,
        };
        let mut listens = Vec::new();
        let exposes = svc.get("expose").is_some();
        for e in seq(svc.get("expose")) {
            if let Ok(l) = ports::parse_expose(&e) {
                listens.push(l);
            }
        }
        if exposes {
            for p in seq(svc.get("ports")) {
                for one in ports::parse_port(&p).unwrap_or_default() {
                    let l = Listen { first: one.container, last: one.container, udp: one.udp };
                    if !listens.contains(&l) {
                        listens.push(l);
                    }
                }
            }
        }
        let has_health = svc
            .get("healthcheck")
            .map(|h| h.get("test").is_some() && !h.get("disable").and_then(as_bool).unwrap_or(false))
            .unwrap_or(false);
        let name = cx.containers.get(&compose).cloned().unwrap_or_default();
        let joins = !exposes || listens.is_empty();
        peers.push(Peer { name, compose, networks: nets, listens, has_health, notes: scratch.lines, mode, joins });
    }

    let mut blocks = Vec::new();
    for (name, svc) in &services {
        let compose = name.as_str().unwrap_or_default();
        let Value::Mapping(svc) = svc else {
            return Err(Error::Service { service: compose.into(), key: "services".into(), message: "a service is a mapping of its settings".into() });
        };
        let block = service(&mut cx, compose, svc, &peers, &networks)?;
        blocks.push((cx.containers.get(compose).cloned().unwrap_or_default(), block));
    }

    let top = top_level(&mut cx);
    let mut out = String::new();
    let files: Vec<String> = project
        .files
        .iter()
        .map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
        .collect();
    let _ = writeln!(out, "// Converted by `tfctl convert` from {} (Compose project \"{compose_project}\").", files.join(" + "));
    for l in &header.lines {
        let _ = writeln!(out, "{l}");
    }
    let _ = writeln!(out, "app {}", q(&cx.app));
    if !top.lines.is_empty() {
        out.push('\n');
        for l in &top.lines {
            let _ = writeln!(out, "{l}");
        }
    }
    for (name, block) in blocks {
        let _ = writeln!(out, "\ncontainer {}{} {{", q(&name), block.props);
        for l in &block.lines {
            let _ = writeln!(out, "    {l}");
        }
        out.push_str("}\n");
    }
    Ok(Conversion { kdl: out, warnings: cx.warnings })
}

/// A Compose network: its tfctl name and whether its containers may reach the outside world.
struct Network {
    name: String,
    internal: bool,
}

/// A Compose network's name as a tfctl network name: a DNS label, never `none` or `host`,
/// which `network` reads as modes.
fn network_name(used: &mut Names, compose: &str) -> String {
    match dns_label(compose).as_str() {
        "none" | "host" => used.add(&format!("{compose}-net")),
        _ => used.add(compose),
    }
}

fn networks(cx: &mut Cx, header: &mut Block) -> BTreeMap<String, Network> {
    let mut out = BTreeMap::new();
    let mut names = Names::default();
    out.insert("default".to_string(), Network { name: network_name(&mut names, "default"), internal: false });
    for (name, def) in &section(&cx.project.model, "networks") {
        let name = name.as_str().unwrap_or_default().to_string();
        let mut internal = false;
        if let Value::Mapping(def) = def {
            for (k, v) in def {
                let key = k.as_str().unwrap_or_default();
                match key {
                    "internal" => internal = as_bool(v).unwrap_or(false),
                    "driver" if v.as_str() == Some("bridge") => {}
                    "name" | "labels" | "attachable" | "enable_ipv4" => {}
                    "external" if !as_bool(v).unwrap_or(true) => {}
                    k => {
                        let full = format!("networks.{name}.{k}");
                        let fate = keys::fate(&format!("network.{k}"))
                            .unwrap_or(Fate::Unsupported("an app has one routed network"));
                        let msg = keys::describe(fate, &flow(v));
                        cx.warn(header, None, &full, msg);
                    }
                }
            }
        }
        let tf = network_name(&mut names, &name);
        out.insert(name, Network { name: tf, internal });
    }
    out
}

fn seq(v: Option<&Value>) -> Vec<Value> {
    match v {
        Some(Value::Sequence(s)) => s.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other.clone()],
    }
}

/// The Compose networks a service is on, and its aliases on them as `alias` nodes;
/// `network_mode` takes it off them.
fn service_networks(cx: &mut Cx, block: &mut Block, compose: &str, svc: &Value, known: &BTreeMap<String, Network>) -> Vec<String> {
    if let Some(mode) = svc.get("network_mode") {
        let m = scalar_text(mode).unwrap_or_default();
        if m != "none" && m != "host" {
            cx.unmapped(block, Some(compose), "network_mode", mode);
        }
        return Vec::new();
    }
    let Some(nets) = svc.get("networks") else {
        return vec!["default".into()];
    };
    let mut out = Vec::new();
    for (name, settings) in list_to_map(nets.clone()) {
        let name = name.as_str().unwrap_or_default().to_string();
        if !known.contains_key(&name) {
            let msg = format!("network `{name}` is not defined under the top-level `networks:`; the service is kept off it");
            cx.warn(block, Some(compose), "networks", msg);
            continue;
        }
        if let Value::Mapping(settings) = settings {
            for (k, v) in settings {
                let key = k.as_str().unwrap_or_default();
                if key == "aliases" {
                    aliases(cx, block, compose, &name, &v);
                    continue;
                }
                let fate = keys::fate(&format!("networks.{key}")).unwrap_or(Fate::Unsupported("tfctl has no such setting"));
                let msg = keys::describe(fate, &flow(&v));
                cx.warn(block, Some(compose), &format!("networks.{name}.{key}"), msg);
            }
        }
        out.push(name);
    }
    out
}

/// A service's aliases on one network as `alias` nodes. tfctl's aliases hold on every network of
/// the app, so an alias another container has (or is) cannot be given.
fn aliases(cx: &mut Cx, block: &mut Block, compose: &str, network: &str, v: &Value) {
    let me = cx.containers.get(compose).cloned().unwrap_or_default();
    for a in seq(Some(v)) {
        let text = scalar_text(&a).unwrap_or_default();
        let alias = dns_label(&text);
        let key = format!("networks.{network}.aliases");
        if alias == me || block.lines.contains(&format!("alias {}", q(&alias))) {
            continue;
        }
        if cx.containers.map.values().any(|n| *n == alias) {
            cx.warn(block, Some(compose), &key, format!("{text} (the name of another container: left out)"));
        } else if !cx.aliases.insert(alias.clone()) {
            cx.warn(block, Some(compose), &key, format!("{text} (another service's alias too: tfctl's aliases hold on every network, so it is left out here)"));
        } else {
            if alias != text {
                block.comment(&format!("compose: alias `{text}` is `{alias}` (tfctl names are DNS labels)"));
            }
            block.node(format!("alias {}", q(&alias)));
        }
    }
}

/// Secrets and volumes declared at the top level, after the services said which they use.
fn top_level(cx: &mut Cx) -> Block {
    let mut b = Block::default();
    let secrets = section(&cx.project.model, "secrets");
    for (name, def) in &secrets {
        let compose = name.as_str().unwrap_or_default();
        let Some(tf) = cx.secrets.get(compose).cloned() else {
            b.comment(&format!("compose: secret `{compose}` is used by no service"));
            continue;
        };
        if !cx.used_secrets.contains(&tf) {
            continue;
        }
        if let Some(f) = def.get("file").and_then(Value::as_str) {
            let path = cx.host_path(f, &cx.project.dir.clone());
            b.node(format!("secret {} from-file={}", q(&tf), q(&path)));
        } else if let Some(var) = def.get("environment").and_then(Value::as_str) {
            b.node(format!("secret {} from-env={}", q(&tf), q(var)));
        } else {
            let msg = keys::describe(keys::fate("secret.external").unwrap_or(Fate::Pending), &flow(def));
            cx.warn(&mut b, None, &format!("secrets.{compose}"), msg.clone());
            b.node(format!("/- secret {} generate=32", q(&tf)));
        }
    }
    let declared: Vec<(String, Option<String>)> = cx.declared_volumes.clone();
    let defs = section(&cx.project.model, "volumes");
    for (name, comment) in declared {
        let compose = cx.volumes.map.iter().find(|(_, v)| **v == name).map(|(k, _)| k.clone()).unwrap_or_default();
        if let Some(Value::Mapping(def)) = defs.get(compose.as_str()) {
            for (k, v) in def {
                let key = k.as_str().unwrap_or_default();
                let default = (key == "external" && !as_bool(v).unwrap_or(true)) || (key == "driver" && v.as_str() == Some("local"));
                if matches!(key, "name" | "labels") || default {
                    continue;
                }
                let fate = keys::fate(&format!("volume.{key}")).unwrap_or(Fate::Unsupported("volumes are folders of tfctl's state root"));
                let msg = keys::describe(fate, &flow(v));
                cx.warn(&mut b, None, &format!("volumes.{compose}.{key}"), msg);
            }
        }
        if let Some(c) = comment {
            b.comment(&c);
        }
        b.node(format!("volume {}", q(&name)));
    }
    b
}

fn service(cx: &mut Cx, compose: &str, svc: &Mapping, peers: &[Peer], networks: &BTreeMap<String, Network>) -> Result<Block, Error> {
    let mut b = Block::default();
    let s = Some(compose);
    let name = cx.containers.get(compose).cloned().unwrap_or_default();
    if name != compose {
        let msg = format!("the service is container `{name}` (tfctl names are DNS labels): the others reach it as `{name}`, not `{compose}`");
        cx.warn(&mut b, s, "name", msg);
    }
    let get = |k: &str| svc.get(k);

    // The image, or the one Compose would build.
    match (get("image").and_then(scalar_text), get("build")) {
        (Some(image), build) => {
            if let Some(build) = build {
                let msg = format!("{} (tfctl does not build images: it runs `{image}` as it finds it)", flow(build));
                cx.warn(&mut b, s, "build", msg);
            }
            b.node(format!("image {}", q(&image)));
        }
        (None, Some(build)) => {
            let image = format!("{}-{}", cx.compose_project, compose);
            let msg = format!(
                "{} (tfctl does not build images: build it as `{image}`, the name Compose gives it, and load or push it)",
                flow(build)
            );
            cx.warn(&mut b, s, "build", msg);
            b.node(format!("image {}", q(&image)));
        }
        (None, None) => {
            return Err(Error::Service { service: compose.into(), key: "image".into(), message: "a service needs `image` or `build`".into() });
        }
    }

    for key in ["entrypoint", "command"] {
        let Some(v) = get(key) else { continue };
        let words = match v {
            Value::Sequence(items) => items.iter().map(|i| scalar_text(i).unwrap_or_default()).collect(),
            Value::Null => continue,
            other => shell_words(&scalar_text(other).unwrap_or_default())
                .map_err(|m| Error::Service { service: compose.into(), key: key.into(), message: m })?,
        };
        if words.is_empty() {
            let msg = format!("{} (an empty {key} that clears the image's has no tfctl equivalent)", flow(v));
            cx.warn(&mut b, s, key, msg);
            continue;
        }
        let args: String = words.iter().map(|w| format!(" {}", q(w))).collect();
        b.node(format!("{key}{args}"));
    }
    if let Some(dir) = get("working_dir").and_then(scalar_text) {
        b.node(format!("workdir {}", q(&dir)));
    }
    if let Some(user) = get("user").and_then(scalar_text) {
        b.node(format!("user {}", q(&user)));
    }
    if let Some(h) = get("hostname").and_then(scalar_text) {
        b.node(format!("hostname {}", q(&h)));
    }

    env_files(cx, &mut b, compose, get("env_file"));
    if let Some(env) = get("environment") {
        for (k, v) in key_values(env.clone()) {
            let key = scalar_text(&k).unwrap_or_default();
            let value = match v {
                Value::Null => match cx.env.get(&key) {
                    Some(v) => v,
                    None => {
                        b.comment(&format!("compose: environment: {key} is taken from the environment, which did not set it when converted"));
                        continue;
                    }
                },
                other => scalar_text(&other).unwrap_or_else(|| flow(&other)),
            };
            b.node(format!("env {}={}", prop_key(&key), q(&value)));
        }
    }

    let replicas = replicas(cx, &mut b, compose, svc);
    if replicas > 1 {
        b.props = format!(" replicas={replicas}");
    }
    publish(cx, &mut b, compose, get("ports"), replicas);
    volumes(cx, &mut b, compose, get("volumes"))?;
    tmpfs(cx, &mut b, compose, get("tmpfs"));
    secrets(cx, &mut b, compose, get("secrets"));
    configs(cx, &mut b, compose, get("configs"));
    health(cx, &mut b, compose, get("healthcheck"));
    depends(cx, &mut b, compose, get("depends_on"), peers);
    restart(cx, &mut b, compose, get("restart"), get("deploy"));
    limits(cx, &mut b, compose, svc);
    if let Some(Value::Mapping(ul)) = get("ulimits") {
        for (k, v) in ul {
            let n = k.as_str().unwrap_or_default();
            if values::check_ulimit(n).is_err() {
                cx.warn(&mut b, s, &format!("ulimits.{n}"), format!("{} (tfctl does not know this limit)", flow(v)));
                continue;
            }
            let (soft, hard) = match v {
                Value::Mapping(_) => (v.get("soft").and_then(Value::as_i64), v.get("hard").and_then(Value::as_i64)),
                other => (other.as_i64(), None),
            };
            match soft {
                Some(soft) if soft >= 0 => {
                    let hard = hard.map(|h| format!(" hard={h}")).unwrap_or_default();
                    b.node(format!("ulimit {} soft={soft}{hard}", q(n)));
                }
                _ => cx.warn(&mut b, s, &format!("ulimits.{n}"), format!("{} (unlimited has no tfctl equivalent)", flow(v))),
            }
        }
    }
    for (key, node) in [("cap_add", "cap-add"), ("cap_drop", "cap-drop")] {
        let mut ok = Vec::new();
        for c in seq(get(key)) {
            let text = scalar_text(&c).unwrap_or_default();
            match values::parse_capability(&text) {
                Ok(_) => ok.push(q(&text)),
                Err(bad) => cx.warn(&mut b, s, key, format!("{text} ({})", bad.message)),
            }
        }
        if !ok.is_empty() {
            b.node(format!("{node} {}", ok.join(" ")));
        }
    }
    if let Some(Value::Mapping(_) | Value::Sequence(_)) = get("sysctls") {
        for (k, v) in key_values(get("sysctls").cloned().unwrap_or(Value::Null)) {
            let key = scalar_text(&k).unwrap_or_default();
            let value = scalar_text(&v).unwrap_or_default();
            match values::check_sysctl(&key) {
                Ok(()) => b.node(format!("sysctl {} {}", q(&key), q(&value))),
                Err(bad) => cx.warn(&mut b, s, &format!("sysctls.{key}"), format!("{value} ({})", bad.message)),
            }
        }
    }
    if let Some(v) = get("shm_size") {
        match size(v) {
            Some(sz) => b.node(format!("shm-size {sz}")),
            None => cx.warn(&mut b, s, "shm_size", format!("{} (not a size tfctl understands)", flow(v))),
        }
    }
    if let Some(sig) = get("stop_signal").and_then(scalar_text) {
        match values::parse_signal(&sig) {
            Ok(_) => b.node(format!("stop-signal {}", q(&sig))),
            Err(bad) => cx.warn(&mut b, s, "stop_signal", format!("{sig} ({})", bad.message)),
        }
    }
    if let Some(v) = get("stop_grace_period") {
        match duration(v) {
            Some(d) => b.node(format!("stop-timeout {}", q(&d))),
            None => cx.warn(&mut b, s, "stop_grace_period", format!("{} (not a duration)", flow(v))),
        }
    }
    if get("read_only").and_then(as_bool) == Some(true) {
        b.node("read-only");
    }
    if get("init").and_then(as_bool) == Some(true) {
        b.node("init");
    }
    security(cx, &mut b, compose, get("security_opt"));
    host_modes(cx, &mut b, compose, svc);
    extras(cx, &mut b, compose, svc);
    reachability(&mut b, compose, peers, networks);

    for (k, v) in svc {
        let key = k.as_str().unwrap_or_default();
        if MAPPED.contains(&key) || key.starts_with("x-") {
            continue;
        }
        cx.unmapped(&mut b, s, key, v);
    }
    Ok(b)
}

/// An environment variable's name as a KDL property key: bare when KDL allows it, else quoted.
fn prop_key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && !k.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    if bare {
        k.to_string()
    } else {
        format!("{k:?}")
    }
}

fn env_files(cx: &mut Cx, b: &mut Block, compose: &str, v: Option<&Value>) {
    let dir = cx.project.dir.clone();
    for item in seq(v) {
        let (path, required) = match &item {
            Value::Mapping(_) => (
                item.get("path").and_then(scalar_text).unwrap_or_default(),
                item.get("required").and_then(as_bool).unwrap_or(true),
            ),
            other => (scalar_text(other).unwrap_or_default(), true),
        };
        let abs = normalize(&dir.join(&path));
        if !required && !abs.exists() {
            b.comment(&format!("compose: env_file: {path} (optional, missing when converted)"));
            continue;
        }
        if let Some(fmt) = item.get("format") {
            cx.warn(b, Some(compose), "env_file.format", format!("{} (tfctl reads the .env format)", flow(fmt)));
        }
        let p = cx.host_path(&path, &dir);
        b.node(format!("env-file {}", q(&p)));
    }
}

fn publish(cx: &mut Cx, b: &mut Block, compose: &str, v: Option<&Value>, replicas: u32) {
    for p in seq(v) {
        match ports::parse_port(&p) {
            Ok(list) => {
                for one in list {
                    let mut host = one.host.unwrap_or(0);
                    if replicas > 1 && host != 0 {
                        // Compose fails to start the second replica on the same host port.
                        let msg = format!("{} ({replicas} replicas cannot share host port {host}: each is published on a free port)", flow(&p));
                        cx.warn(b, Some(compose), "ports", msg);
                        host = 0;
                    }
                    let mut line = format!("publish {host} to={}", one.container);
                    // tfctl is IPv4-only: an IPv6 address is narrowed to its IPv4 twin, never
                    // widened to more of the host than it named.
                    match one.host_ip.as_deref() {
                        None | Some("0.0.0.0") | Some("") => {}
                        Some(ip) if ip.parse::<std::net::Ipv4Addr>().is_ok() => {
                            let _ = write!(line, " host-ip={}", q(ip));
                        }
                        Some("::1") => {
                            let msg = format!("{} (tfctl is IPv4-only: published on 127.0.0.1 instead of ::1)", flow(&p));
                            cx.warn(b, Some(compose), "ports", msg);
                            line.push_str(" host-ip=\"127.0.0.1\"");
                        }
                        Some("::") => {
                            let msg = format!("{} (tfctl is IPv4-only: published on every IPv4 address instead of ::)", flow(&p));
                            cx.warn(b, Some(compose), "ports", msg);
                        }
                        Some(ip) => {
                            let msg = format!("{} (tfctl is IPv4-only: {ip} is not published)", flow(&p));
                            cx.warn(b, Some(compose), "ports", msg);
                            continue;
                        }
                    }
                    if one.udp {
                        line.push_str(" proto=\"udp\"");
                    }
                    b.node(line);
                }
            }
            Err(m) => cx.warn(b, Some(compose), "ports", m),
        }
    }
}

/// Short (`SRC:DST[:MODE]`) and long volume entries: named volumes, binds and tmpfs.
fn volumes(cx: &mut Cx, b: &mut Block, compose: &str, v: Option<&Value>) -> Result<(), Error> {
    let dir = cx.project.dir.clone();
    let s = Some(compose);
    let mut anon = 0;
    for item in seq(v) {
        let (kind, source, target, read_only, create) = match &item {
            Value::Mapping(_) => {
                let field = |f: &str| item.get(f).and_then(scalar_text);
                let kind = field("type").unwrap_or_else(|| "volume".into());
                let target = field("target").unwrap_or_default();
                let read_only = item.get("read_only").and_then(as_bool).unwrap_or(false);
                let create = item.get("bind").and_then(|b| b.get("create_host_path")).and_then(as_bool).unwrap_or(true);
                if let Some(Value::Mapping(extra)) = item.get("bind") {
                    for (k, v) in extra {
                        // Private is how tfctl binds, as Docker does by default.
                        let default = k.as_str() == Some("propagation") && matches!(v.as_str(), Some("rprivate" | "private"));
                        if k.as_str() != Some("create_host_path") && !default {
                            cx.warn(b, s, &format!("volumes.bind.{}", flow(k)), format!("{} (tfctl binds privately, without options)", flow(v)));
                        }
                    }
                }
                if let Some(Value::Mapping(extra)) = item.get("volume") {
                    for (k, v) in extra {
                        cx.warn(b, s, &format!("volumes.volume.{}", flow(k)), format!("{} (no tfctl equivalent)", flow(v)));
                    }
                }
                if kind == "tmpfs" {
                    let size = item.get("tmpfs").and_then(|t| t.get("size")).and_then(size);
                    b.node(format!("tmpfs {}{}", q(&target), size.map(|s| format!(" size={s}")).unwrap_or_default()));
                    continue;
                }
                (kind, field("source"), target, read_only, create)
            }
            other => {
                let text = scalar_text(other).unwrap_or_default();
                let parts: Vec<&str> = text.split(':').collect();
                match parts.as_slice() {
                    [target] => ("volume".to_string(), None, target.to_string(), false, true),
                    [src, target, rest @ ..] => {
                        let opts: Vec<&str> = rest.iter().flat_map(|r| r.split(',')).collect();
                        for o in &opts {
                            if !matches!(*o, "ro" | "rw" | "z" | "Z" | "cached" | "delegated" | "consistent") {
                                cx.warn(b, s, "volumes", format!("{text}: option `{o}` has no tfctl equivalent"));
                            }
                        }
                        let bind = src.starts_with(['.', '/', '~']);
                        (if bind { "bind" } else { "volume" }.to_string(), Some(src.to_string()), target.to_string(), opts.contains(&"ro"), true)
                    }
                    [] => continue,
                }
            }
        };
        let ro = if read_only { " read-only=#true" } else { "" };
        match (kind.as_str(), source) {
            ("bind", Some(src)) => {
                let path = cx.host_path(&src, &dir);
                let create = if create { " create=#true" } else { "" };
                b.node(format!("mount {} at={}{ro}{create}", q(&path), q(&target)));
            }
            ("volume", Some(src)) => {
                let defined = matches!(cx.project.model.get("volumes"), Some(Value::Mapping(m)) if m.contains_key(src.as_str()));
                if !defined {
                    return Err(Error::Service {
                        service: compose.into(),
                        key: "volumes".into(),
                        message: format!("volume `{src}` is not defined under the top-level `volumes:`; define it there, as Compose requires"),
                    });
                }
                let name = cx.volume(&src, None);
                b.node(format!("mount {} at={}{ro}", q(&name), q(&target)));
            }
            ("volume", None) => {
                anon += 1;
                let tag = if anon == 1 { "data".to_string() } else { format!("data-{anon}") };
                let key = format!("{compose}-{tag}");
                let note = format!("compose: the anonymous volume of `{compose}` at {target}");
                let name = cx.volume(&key, Some(note));
                b.node(format!("mount {} at={}{ro}", q(&name), q(&target)));
            }
            (other, _) => {
                cx.warn(b, s, "volumes", format!("{} (a `{other}` mount has no tfctl equivalent)", flow(&item)));
            }
        }
    }
    Ok(())
}

fn tmpfs(cx: &mut Cx, b: &mut Block, compose: &str, v: Option<&Value>) {
    for item in seq(v) {
        let text = scalar_text(&item).unwrap_or_default();
        let (path, opts) = text.split_once(':').unwrap_or((&text, ""));
        let mut size = None;
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o.split_once('=') {
                Some(("size", sz)) if values::parse_size(sz).is_ok() => size = Some(sz.to_string()),
                _ => cx.warn(b, Some(compose), "tmpfs", format!("{text}: option `{o}` has no tfctl equivalent")),
            }
        }
        b.node(format!("tmpfs {}{}", q(path), size.map(|s| format!(" size={}", q(&s))).unwrap_or_default()));
    }
}

/// `uid`/`gid` of a long-syntax secret or config as `owner="UID:GID"`.
fn owner(item: &Value) -> String {
    let uid = item.get("uid").and_then(scalar_text);
    let gid = item.get("gid").and_then(scalar_text);
    match (uid, gid) {
        (None, None) => String::new(),
        (u, g) => format!(" owner={}", q(&format!("{}:{}", u.unwrap_or_else(|| "0".into()), g.unwrap_or_else(|| "0".into())))),
    }
}

fn secrets(cx: &mut Cx, b: &mut Block, compose: &str, v: Option<&Value>) {
    let defined = section(&cx.project.model, "secrets");
    for item in seq(v) {
        let source = match &item {
            Value::Mapping(_) => item.get("source").and_then(scalar_text).unwrap_or_default(),
            other => scalar_text(other).unwrap_or_default(),
        };
        if !defined.contains_key(source.as_str()) {
            let msg = format!("secret `{source}` is not defined under the top-level `secrets:`; left out");
            cx.warn(b, Some(compose), "secrets", msg);
            continue;
        }
        let name = cx.secrets.add(&source);
        cx.used_secrets.insert(name.clone());
        let mut line = format!("secret {}", q(&name));
        if let Value::Mapping(_) = &item {
            let target = item.get("target").and_then(scalar_text);
            let at = match target {
                Some(t) if t.starts_with('/') => Some(t),
                Some(t) => Some(format!("/run/secrets/{t}")),
                None if name != source => Some(format!("/run/secrets/{source}")),
                None => None,
            };
            if let Some(at) = at {
                let _ = write!(line, " at={}", q(&at));
            }
            if let Some(m) = item.get("mode").and_then(mode) {
                let _ = write!(line, " mode=0o{m:o}");
            }
            line.push_str(&owner(&item));
        } else if name != source {
            let _ = write!(line, " at={}", q(&format!("/run/secrets/{source}")));
        }
        b.node(line);
    }
}

fn configs(cx: &mut Cx, b: &mut Block, compose: &str, v: Option<&Value>) {
    let defined = section(&cx.project.model, "configs");
    let dir = cx.project.dir.clone();
    for item in seq(v) {
        let source = match &item {
            Value::Mapping(_) => item.get("source").and_then(scalar_text).unwrap_or_default(),
            other => scalar_text(other).unwrap_or_default(),
        };
        let Some(def) = defined.get(source.as_str()) else {
            let msg = format!("config `{source}` is not defined under the top-level `configs:`; left out");
            cx.warn(b, Some(compose), "configs", msg);
            continue;
        };
        let target = match item.get("target").and_then(scalar_text) {
            Some(t) if t.starts_with('/') => t,
            Some(t) => format!("/{t}"),
            None => format!("/{source}"),
        };
        let mode = item.get("mode").and_then(mode).unwrap_or(0o444);
        let props = format!(" mode=0o{mode:o}{}", owner(&item));
        if let Some(f) = def.get("file").and_then(scalar_text) {
            let p = cx.host_path(&f, &dir);
            b.node(format!("file {} from={}{props}", q(&target), q(&p)));
        } else if let Some(content) = def.get("content").and_then(scalar_text) {
            b.node(format!("file {} {}{props}", q(&target), q(&content)));
        } else if let Some(var) = def.get("environment").and_then(scalar_text) {
            match cx.env.get(&var) {
                Some(value) => {
                    b.comment(&format!("compose: config `{source}` from ${var}, as it was when converted"));
                    b.node(format!("file {} {}{props}", q(&target), q(&value)));
                }
                None => {
                    let msg = format!("config `{source}` comes from ${var}, which was not set when converted; left out");
                    cx.warn(b, Some(compose), "configs", msg);
                }
            }
        } else {
            let fate = keys::fate("config.external").unwrap_or(Fate::Pending);
            cx.warn(b, Some(compose), &format!("configs.{source}"), keys::describe(fate, &flow(def)));
        }
    }
}

fn health(cx: &mut Cx, b: &mut Block, compose: &str, v: Option<&Value>) {
    let Some(h) = v else { return };
    let s = Some(compose);
    if h.get("disable").and_then(as_bool) == Some(true) {
        b.comment("compose: healthcheck disabled: no probe");
        return;
    }
    let probe: Vec<String> = match h.get("test") {
        None => {
            cx.warn(b, s, "healthcheck", format!("{} (timing without a test relies on the image's health check, which tfctl does not run)", flow(h)));
            return;
        }
        Some(Value::Sequence(items)) => {
            let words: Vec<String> = items.iter().map(|i| scalar_text(i).unwrap_or_default()).collect();
            match words.first().map(String::as_str) {
                Some("NONE") => {
                    b.comment("compose: healthcheck test NONE: no probe");
                    return;
                }
                Some("CMD") => words[1..].to_vec(),
                Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), words[1..].join(" ")],
                _ => {
                    cx.warn(b, s, "healthcheck.test", format!("{} (a test list starts with CMD, CMD-SHELL or NONE)", flow(&Value::Sequence(items.clone()))));
                    return;
                }
            }
        }
        Some(other) => vec!["/bin/sh".into(), "-c".into(), scalar_text(other).unwrap_or_default()],
    };
    if probe.is_empty() {
        cx.warn(b, s, "healthcheck.test", "an empty test (no tfctl equivalent)".into());
        return;
    }
    b.node("health {");
    let args: String = probe.iter().map(|w| format!(" {}", q(w))).collect();
    b.node(format!("    exec{args}"));
    let interval = h.get("interval").and_then(duration).unwrap_or_else(|| COMPOSE_HEALTH_INTERVAL.into());
    let timeout = h.get("timeout").and_then(duration).unwrap_or_else(|| COMPOSE_HEALTH_TIMEOUT.into());
    b.node(format!("    interval {}", q(&interval)));
    b.node(format!("    timeout {}", q(&timeout)));
    if let Some(r) = h.get("retries").and_then(Value::as_u64) {
        b.node(format!("    retries {r}"));
    }
    if let Some(p) = h.get("start_period").and_then(duration) {
        b.node(format!("    start-period {}", q(&p)));
    }
    b.node("}");
    if let Some(si) = h.get("start_interval") {
        let fate = keys::fate("healthcheck.start_interval").unwrap_or(Fate::Pending);
        cx.warn(b, s, "healthcheck.start_interval", keys::describe(fate, &flow(si)));
    }
}

fn depends(cx: &mut Cx, b: &mut Block, compose: &str, v: Option<&Value>, peers: &[Peer]) {
    let Some(v) = v else { return };
    let s = Some(compose);
    for (dep, settings) in list_to_map(v.clone()) {
        let dep = scalar_text(&dep).unwrap_or_default();
        let Some(peer) = peers.iter().find(|p| p.compose == dep) else {
            cx.warn(b, s, "depends_on", format!("service `{dep}` is not defined; left out"));
            continue;
        };
        let cond = settings.get("condition").and_then(scalar_text).unwrap_or_else(|| "service_started".into());
        let until = match cond.as_str() {
            "service_started" => None,
            "service_healthy" if peer.has_health => Some("healthy"),
            "service_healthy" => {
                let msg = format!("{dep}: service_healthy, but `{dep}` has no health check in the Compose files (the image's is not run): waits until it has started");
                cx.warn(b, s, "depends_on", msg);
                None
            }
            "service_completed_successfully" => Some("completed"),
            other => {
                cx.warn(b, s, "depends_on", format!("{dep}: condition `{other}` is not a Compose condition; waits until it has started"));
                None
            }
        };
        if settings.get("required").and_then(as_bool) == Some(false) {
            b.comment(&format!("compose: depends_on: {dep} is optional in Compose (required: false)"));
        }
        let restart = if settings.get("restart").and_then(as_bool) == Some(true) { " restart=#true" } else { "" };
        let until = until.map(|u| format!(" until={}", q(u))).unwrap_or_default();
        b.node(format!("after {}{until}{restart}", q(&peer.name)));
    }
}

fn restart(cx: &mut Cx, b: &mut Block, compose: &str, v: Option<&Value>, deploy: Option<&Value>) {
    let s = Some(compose);
    if let Some(policy) = v.and_then(scalar_text) {
        let (name, max) = policy.split_once(':').map(|(a, b)| (a.to_string(), Some(b.to_string()))).unwrap_or((policy.clone(), None));
        match name.as_str() {
            "no" => {}
            "always" => b.node("restart \"always\""),
            "unless-stopped" => b.node("restart \"unless-stopped\""),
            "on-failure" => match max.map(|m| m.parse::<u32>()) {
                None => b.node("restart \"on-failure\""),
                Some(Ok(m)) => b.node(format!("restart \"on-failure\" max={m}")),
                Some(Err(_)) => cx.warn(b, s, "restart", format!("{policy} (the count is not a number)")),
            },
            _ => cx.warn(b, s, "restart", format!("{policy} (not a Compose restart policy)")),
        }
        return;
    }
    let Some(rp) = deploy.and_then(|d| d.get("restart_policy")) else { return };
    let max = rp.get("max_attempts").and_then(Value::as_u64).map(|m| format!(" max={m}")).unwrap_or_default();
    match rp.get("condition").and_then(scalar_text).as_deref() {
        Some("none") => {}
        Some("on-failure") => b.node(format!("restart \"on-failure\"{max}")),
        _ => b.node(format!("restart \"always\"{max}")),
    }
    for k in ["delay", "window"] {
        if let Some(x) = rp.get(k) {
            cx.warn(b, s, &format!("deploy.restart_policy.{k}"), format!("{} (tfctl backs off from 100 ms to 30 s)", flow(x)));
        }
    }
}

/// `mem_limit`, `cpus`, `pids_limit` and `deploy.resources.limits` as one `limits` node; the
/// rest of `deploy` by the table.
fn limits(cx: &mut Cx, b: &mut Block, compose: &str, svc: &Mapping) {
    let s = Some(compose);
    let deploy = svc.get("deploy");
    let lim = deploy.and_then(|d| d.get("resources")).and_then(|r| r.get("limits"));
    let pick = |own: &str, deployed: &str| svc.get(own).or_else(|| lim.and_then(|l| l.get(deployed))).cloned();
    let mut props = Vec::new();
    if let Some(m) = pick("mem_limit", "memory") {
        match size(&m) {
            Some(sz) => props.push(format!("memory={sz}")),
            None => cx.warn(b, s, "mem_limit", format!("{} (not a size tfctl understands)", flow(&m))),
        }
    }
    if let Some(c) = pick("cpus", "cpus") {
        match scalar_text(&c).and_then(|t| t.parse::<f64>().ok()) {
            Some(n) if n > 0.0 => props.push(format!("cpus={n}")),
            Some(_) => {}
            None => cx.warn(b, s, "cpus", format!("{} (not a number)", flow(&c))),
        }
    }
    if let Some(p) = pick("pids_limit", "pids") {
        match p.as_i64() {
            Some(n) if n > 0 => props.push(format!("pids={n}")),
            _ => cx.warn(b, s, "pids_limit", format!("{} (unlimited has no tfctl equivalent: tfctl's default is 4096)", flow(&p))),
        }
    }
    if !props.is_empty() {
        b.node(format!("limits {}", props.join(" ")));
    }
    if let Some(Value::Mapping(lim)) = lim {
        for (k, v) in lim {
            let key = k.as_str().unwrap_or_default();
            if !matches!(key, "memory" | "cpus" | "pids") {
                cx.warn(b, s, &format!("deploy.resources.limits.{key}"), format!("{} (no tfctl equivalent)", flow(v)));
            }
        }
    }
    if let Some(Value::Mapping(d)) = deploy {
        for (k, v) in d {
            let key = k.as_str().unwrap_or_default();
            match key {
                "restart_policy" => {}
                "resources" => {
                    if let Value::Mapping(r) = v {
                        for (rk, rv) in r {
                            let rk = rk.as_str().unwrap_or_default();
                            if rk != "limits" {
                                cx.unmapped(b, s, &format!("deploy.resources.{rk}"), rv);
                            }
                        }
                    }
                }
                // `replicas` is read by `replicas`, `labels` by `extras`.
                "replicas" | "labels" => {}
                _ => cx.unmapped(b, s, &format!("deploy.{key}"), v),
            }
        }
    }
}

fn security(cx: &mut Cx, b: &mut Block, compose: &str, v: Option<&Value>) {
    for item in seq(v) {
        let text = scalar_text(&item).unwrap_or_default();
        let (k, val) = text.split_once([':', '=']).unwrap_or((&text, ""));
        match (k, val) {
            ("no-new-privileges", "" | "true") => b.comment("compose: security_opt: no-new-privileges (tfctl always sets it)"),
            ("seccomp", "unconfined") => b.node("seccomp \"unconfined\""),
            ("seccomp", path) if !path.is_empty() => {
                let p = cx.host_path(path, &cx.project.dir.clone());
                b.node(format!("seccomp {}", q(&p)));
            }
            _ => cx.unmapped(b, Some(compose), "security_opt", &item),
        }
    }
}

/// The service's Compose networks as `network` nodes, and `allow` rules where those cannot say
/// it: a service that `expose`s ports is reached by its peers on those ports only, as this
/// converter reads Compose's `expose`, while a named network opens every port to its members.
/// So such a service joins no named network; each peer sharing a Compose network with it is
/// allowed in on its exposed ports, and it is allowed into each such peer as a member would be.
fn reachability(b: &mut Block, compose: &str, peers: &[Peer], networks: &BTreeMap<String, Network>) {
    let Some(me) = peers.iter().find(|p| p.compose == compose) else { return };
    b.lines.extend(me.notes.iter().cloned());
    match me.mode {
        Some("none") => {
            b.comment("compose: network_mode: none: loopback only; no other container reaches it, and it reaches nothing");
            b.node("network \"none\"");
            return;
        }
        Some(_) => {
            b.comment("compose: network_mode: host: the host's network, outside tfctl's firewall");
            b.node("network \"host\"");
            return;
        }
        None => {}
    }
    if me.networks.is_empty() {
        b.comment("compose: on no network of the app: no other container reaches it");
        return;
    }
    let tf = |n: &String| networks.get(n).map(|n| n.name.clone()).unwrap_or_else(|| dns_label(n));
    if me.joins {
        for n in &me.networks {
            b.node(format!("network {}", q(&tf(n))));
        }
    }
    if me.networks.iter().all(|n| networks.get(n).is_some_and(|n| n.internal)) {
        b.comment(&format!("compose: only on internal networks ({}): no traffic to the outside world", me.networks.join(", ")));
        b.node("egress \"deny\"");
    }
    let shares = |p: &Peer| p.compose != compose && p.mode.is_none() && p.networks.iter().any(|n| me.networks.contains(n));
    // Pairs that both join a shared network reach each other through it.
    let by_network = |p: &Peer| me.joins && p.joins;
    let reached_by: Vec<&Peer> = peers.iter().filter(|p| shares(p) && !by_network(p)).collect();
    if reached_by.is_empty() {
        return;
    }
    let ports = if me.joins { "on every port" } else { "on its exposed ports" };
    b.comment(&format!(
        "compose: networks {}: also reached, {ports}, by services that share them but not their tfctl networks (`expose` keeps one side off them)",
        me.networks.join(", ")
    ));
    for p in reached_by {
        if me.joins {
            b.node(format!("allow from={}", q(&p.name)));
        } else {
            for l in &me.listens {
                let proto = if l.udp { " proto=\"udp\"" } else { " proto=\"tcp\"" };
                b.node(format!("allow from={} port={}{proto}", q(&p.name), l.kdl()));
            }
        }
    }
}

/// `scale` or `deploy.replicas` as `replicas=`: 1 when absent.
fn replicas(cx: &mut Cx, b: &mut Block, compose: &str, svc: &Mapping) -> u32 {
    let (key, v) = match (svc.get("scale"), svc.get("deploy").and_then(|d| d.get("replicas"))) {
        (Some(v), _) => ("scale", v),
        (None, Some(v)) => ("deploy.replicas", v),
        (None, None) => return 1,
    };
    match v.as_u64().or_else(|| scalar_text(v).and_then(|t| t.parse().ok())) {
        Some(n @ 1..=64) => n as u32,
        Some(0) => {
            cx.warn(b, Some(compose), key, "0 (no replicas has no tfctl equivalent: use a profile to leave a container out): one instance runs".into());
            1
        }
        _ => {
            cx.warn(b, Some(compose), key, format!("{} (tfctl runs 1 to 64 instances): one instance runs", flow(v)));
            1
        }
    }
}

/// `privileged`, `pid: host` and `devices`: the modes that give a container part of the host,
/// which `tfctl check` and `ps` name.
fn host_modes(cx: &mut Cx, b: &mut Block, compose: &str, svc: &Mapping) {
    let s = Some(compose);
    if svc.get("privileged").and_then(as_bool) == Some(true) {
        b.node("privileged");
    }
    if let Some(pid) = svc.get("pid") {
        match scalar_text(pid).as_deref() {
            Some("host") => b.node("pid \"host\""),
            _ => cx.unmapped(b, s, "pid", pid),
        }
    }
    for d in seq(svc.get("devices")) {
        // `HOST[:CONTAINER[:PERMISSIONS]]`, or the long syntax's `source`/`target`/`permissions`.
        let (host, target, perms) = match &d {
            Value::Mapping(_) => {
                let f = |k: &str| d.get(k).and_then(scalar_text);
                (f("source").unwrap_or_default(), f("target"), f("permissions"))
            }
            other => {
                let text = scalar_text(other).unwrap_or_default();
                let mut parts = text.splitn(3, ':').map(str::to_string);
                (parts.next().unwrap_or_default(), parts.next(), parts.next())
            }
        };
        // `/dev/x:rw` is a path and permissions, as Docker reads it.
        let (target, perms) = match target {
            Some(t) if !t.starts_with('/') && perms.is_none() => (None, Some(t)),
            t => (t, perms),
        };
        if target.as_ref().is_some_and(|t| *t != host) {
            cx.warn(b, s, "devices", format!("{} (tfctl makes a device available at its own path only)", flow(&d)));
            continue;
        }
        if let Err(bad) = values::check_device(&host) {
            cx.warn(b, s, "devices", format!("{} ({})", flow(&d), bad.message));
            continue;
        }
        if perms.as_deref().is_some_and(|p| p != "rwm") {
            cx.warn(b, s, "devices", format!("{} (tfctl allows read, write and mknod: the permissions are not narrowed)", flow(&d)));
        }
        b.node(format!("device {}", q(&host)));
    }
}

/// A label key as tfctl takes it: not empty, without `=`, `,` or spaces.
fn label_key_ok(k: &str) -> bool {
    !k.is_empty() && !k.contains(['=', ',']) && !k.contains(char::is_whitespace)
}

/// Profiles, labels, names and resolvers, terminal, log rotation and groups.
fn extras(cx: &mut Cx, b: &mut Block, compose: &str, svc: &Mapping) {
    let s = Some(compose);
    let profiles: Vec<String> = seq(svc.get("profiles")).iter().filter_map(scalar_text).map(|p| dns_label(&p)).collect();
    if !profiles.is_empty() {
        let args: String = profiles.iter().map(|p| format!(" {}", q(p))).collect();
        b.node(format!("profile{args}"));
    }
    let deploy_labels = svc.get("deploy").and_then(|d| d.get("labels")).cloned();
    for (key, v) in [("labels", svc.get("labels").cloned()), ("deploy.labels", deploy_labels)] {
        let Some(v) = v else { continue };
        if key == "deploy.labels" {
            b.comment("compose: deploy.labels (Swarm's service labels) are kept as container labels");
        }
        for (k, v) in key_values(v) {
            let k = scalar_text(&k).unwrap_or_default();
            let v = scalar_text(&v).unwrap_or_default();
            if label_key_ok(&k) {
                b.node(format!("label {} {}", q(&k), q(&v)));
            } else {
                cx.warn(b, s, key, format!("{k}={v} (a tfctl label key is not empty and has no `=`, `,` or spaces)"));
            }
        }
    }
    if let Some(hosts) = svc.get("extra_hosts") {
        // A list of `NAME=ADDR` or `NAME:ADDR` (an IPv6 address in brackets), or a mapping.
        let entries: Vec<(String, String)> = match hosts {
            Value::Mapping(m) => m
                .iter()
                .flat_map(|(k, v)| {
                    let k = scalar_text(k).unwrap_or_default();
                    seq(Some(v)).iter().map(|a| (k.clone(), scalar_text(a).unwrap_or_default())).collect::<Vec<_>>()
                })
                .collect(),
            other => seq(Some(other))
                .iter()
                .map(|e| {
                    let text = scalar_text(e).unwrap_or_default();
                    let (k, a) = text.split_once('=').or_else(|| text.split_once(':')).unwrap_or((&text, ""));
                    (k.to_string(), a.to_string())
                })
                .collect(),
        };
        for (name, addr) in entries {
            let addr = addr.trim_start_matches('[').trim_end_matches(']').to_string();
            let why = if addr == "host-gateway" {
                Some("the host's address on the app's network is not a fixed one: write the address".to_string())
            } else if let Err(bad) = values::check_hostname(&name) {
                Some(bad.message)
            } else {
                values::parse_ip(&addr).err().map(|bad| bad.message)
            };
            match why {
                None => b.node(format!("extra-host {} {}", q(&name), q(&addr))),
                Some(why) => cx.warn(b, s, "extra_hosts", format!("{name}:{addr} ({why}): left out")),
            }
        }
    }
    let mut dns = Vec::new();
    for a in seq(svc.get("dns")) {
        let text = scalar_text(&a).unwrap_or_default();
        match values::parse_ip(&text) {
            Ok(_) => dns.push(q(&text)),
            Err(bad) => cx.warn(b, s, "dns", format!("{text} ({}): left out", bad.message)),
        }
    }
    if !dns.is_empty() {
        b.node(format!("dns {}", dns.join(" ")));
    }
    if svc.get("tty").and_then(as_bool) == Some(true) {
        b.node("tty");
    }
    let mut groups = Vec::new();
    for g in seq(svc.get("group_add")) {
        let text = scalar_text(&g).unwrap_or_default();
        match values::check_group(&text) {
            Ok(()) => groups.push(q(&text)),
            Err(bad) => cx.warn(b, s, "group_add", format!("{text} ({})", bad.message)),
        }
    }
    if !groups.is_empty() {
        b.node(format!("group-add {}", groups.join(" ")));
    }
    if let Some(log) = svc.get("logging") {
        logging(cx, b, compose, log);
    }
}

/// `logging`: the json-file and local drivers' rotation as `log size= files=`.
fn logging(cx: &mut Cx, b: &mut Block, compose: &str, log: &Value) {
    let s = Some(compose);
    if let Some(driver) = log.get("driver").and_then(scalar_text) {
        if !matches!(driver.as_str(), "json-file" | "local") {
            cx.unmapped(b, s, "logging.driver", &Value::String(driver));
            return;
        }
    }
    let mut props = String::new();
    let Some(Value::Mapping(opts)) = log.get("options") else { return };
    for (k, v) in opts {
        let key = k.as_str().unwrap_or_default();
        match key {
            "max-size" => match size(v) {
                Some(sz) => {
                    let _ = write!(props, " size={sz}");
                }
                None => cx.warn(b, s, "logging.options.max-size", format!("{} (not a size tfctl understands)", flow(v))),
            },
            // Docker counts the current file; tfctl counts the rotated ones besides it.
            "max-file" => match v.as_u64().or_else(|| scalar_text(v).and_then(|t| t.parse().ok())) {
                Some(n) if n >= 2 => {
                    let _ = write!(props, " files={}", n - 1);
                }
                _ => cx.warn(b, s, "logging.options.max-file", format!("{} (tfctl keeps at least one rotated file)", flow(v))),
            },
            _ => cx.warn(b, s, &format!("logging.options.{key}"), format!("{} (no tfctl equivalent)", flow(v))),
        }
    }
    if !props.is_empty() {
        b.node(format!("log{props}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_split_like_compose() {
        assert_eq!(shell_words("sh -c 'echo hi; exit 0'").unwrap(), vec!["sh", "-c", "echo hi; exit 0"]);
        assert_eq!(shell_words(r#"a "b c" d\ e"#).unwrap(), vec!["a", "b c", "d e"]);
        assert!(shell_words("a 'b").is_err());
    }

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(dns_label("My_Service.1"), "my-service-1");
        let mut n = Names::default();
        assert_eq!(n.add("a_b"), "a-b");
        assert_eq!(n.add("a-b"), "a-b-2");
    }

    #[test]
    fn modes_read_as_compose_means_them() {
        let v = |s: &str| serde_yaml_ng::from_str::<Value>(s).unwrap();
        assert_eq!(mode(&v("0440")), Some(0o440));
        assert_eq!(mode(&v("440")), Some(0o440));
        assert_eq!(mode(&v("'0400'")), Some(0o400));
    }

    #[test]
    fn durations() {
        let v = |s: &str| Value::String(s.into());
        assert_eq!(duration(&v("1m30s")).as_deref(), Some("90s"));
        assert_eq!(duration(&v("1.5s")).as_deref(), Some("1500ms"));
    }
}
