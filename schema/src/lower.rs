//! From a parsed KDL document to the resolved model: the top level of an app file, hooks and
//! health checks. Containers are in `container.rs`; checks across the whole app in `crossref.rs`.

use std::path::PathBuf;
use std::time::Duration;

use kdl::KdlDocument;
use miette::SourceSpan;

use crate::crossref::Refs;
use crate::model::*;
use crate::reader::{value_span, Cx, Node};
use crate::values;
use crate::vocab::Ctx;

pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Lowers a whole app file; `None` when something was reported (the problems are in `cx`).
pub fn app(cx: &mut Cx<'_>, doc: &KdlDocument, file: PathBuf) -> Option<App> {
    let mut refs = Refs::default();
    let mut app = App { dir: cx.dir.clone(), ..App::new("", file) };
    let mut have_app = false;
    let mut container_nodes = Vec::new();
    for n in cx.nodes(Some(doc), Ctx::App) {
        match n.spec.name {
            "app" => {
                have_app = true;
                if let Some(name) = cx.str(n.arg(0)) {
                    if let Err(b) = values::check_name("app", &name) {
                        cx.bad(b, value_span(n.arg(0)?), "invalid name");
                    }
                    app.name = name;
                }
            }
            "network" => match n.prop("subnet") {
                Some(e) => {
                    if let Some(s) = cx.str(Some(e)) {
                        app.subnet = crate::network::cidr(cx, e, &s);
                        if let Some(net) = app.subnet.filter(|n| n.prefix > 30) {
                            let p = cx
                                .problem(
                                    "tfctl::invalid-cidr",
                                    value_span(e),
                                    format!("subnet {net} is too small for an app"),
                                )
                                .label("fewer than 4 addresses")
                                .help("give the app at least a /30; a /24 is usual");
                            cx.push(p);
                        }
                    }
                }
                None => {
                    let p = cx
                        .problem("tfctl::missing-property", n.name_span(), "`network` needs `subnet=`")
                        .label("no subnet")
                        .help("write network subnet=\"10.89.7.0/24\", or leave `network` out to take a free /24");
                    cx.push(p);
                }
            },
            "egress" => {
                if let Some(e) = egress(cx, n) {
                    app.egress = e;
                }
            }
            "secret" => {
                if let Some(s) = secret_def(cx, n, &mut refs) {
                    app.secrets.push(s);
                }
            }
            "volume" => {
                if let Some(name) = named(cx, n, "volume") {
                    refs.volumes.push((name.clone(), value_span(n.arg(0)?)));
                    app.volumes.push(VolumeDef { name });
                }
            }
            "container" => container_nodes.push(n),
            "label" => label(cx, n, &mut app.labels),
            "on" => {
                if let Some(h) = hook(cx, n, &[Event::Up, Event::Down, Event::Failed], false) {
                    app.hooks.push(h);
                }
            }
            _ => {}
        }
    }
    let no_containers = container_nodes.is_empty();
    for n in container_nodes {
        if let Some(c) = crate::container::container(cx, n, &mut refs) {
            app.containers.push(c);
        }
    }
    if !have_app {
        let p = cx
            .problem(
                "tfctl::missing-app",
                SourceSpan::from(0..0),
                "the file has no `app` node",
            )
            .label("the app file starts here")
            .help("name the app on the first line: app \"NAME\"");
        cx.push(p);
    }
    if no_containers {
        let p = cx
            .problem(
                "tfctl::missing-container",
                SourceSpan::from(0..0),
                "the app has no `container`",
            )
            .label("the app file starts here")
            .help("add one: container \"web\" { image \"busybox\" }");
        cx.push(p);
    }
    crate::crossref::check(cx, &mut app, &refs);
    cx.diags.is_empty().then_some(app)
}

/// The name argument of `secret`, `volume`, `container`: a DNS label.
pub fn named(cx: &mut Cx<'_>, n: Node<'_>, what: &str) -> Option<String> {
    let e = n.arg(0)?;
    let name = cx.str(Some(e))?;
    match values::check_name(what, &name) {
        Ok(()) => Some(name),
        Err(b) => {
            cx.bad(b, value_span(e), "invalid name");
            None
        }
    }
}

/// `label "KEY" "VALUE"`: a later key replaces the value, in the place of its first use.
pub fn label(cx: &mut Cx<'_>, n: Node<'_>, out: &mut Vec<(String, String)>) {
    let key = cx.str(n.arg(0));
    let value = cx.scalar(n.arg(1));
    let (Some(key), Some(value), Some(e)) = (key, value, n.arg(0)) else { return };
    if key.is_empty() || key.contains(['=', ',', '\0']) || key.chars().any(char::is_whitespace) {
        let p = cx
            .problem("tfctl::invalid-label", value_span(e), format!("`{key}` is not a label key"))
            .label("invalid key")
            .help("a label key is not empty and has no `=`, `,` or spaces, so that `ps --filter label=KEY=VALUE` can name it; e.g. \"com.example.tier\"");
        cx.push(p);
        return;
    }
    match out.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => out.push((key, value)),
    }
}

pub fn egress(cx: &mut Cx<'_>, n: Node<'_>) -> Option<Egress> {
    match cx.choice(n.arg(0), "egress policy", &["allow", "deny"])? {
        "allow" => Some(Egress::Allow),
        _ => Some(Egress::Deny),
    }
}

fn secret_def(cx: &mut Cx<'_>, n: Node<'_>, refs: &mut Refs) -> Option<SecretDef> {
    let name = named(cx, n, "secret");
    let sources: Vec<&kdl::KdlEntry> = n
        .props()
        .filter(|e| {
            e.name()
                .is_some_and(|k| matches!(k.value(), "from-file" | "from-env" | "generate"))
        })
        .collect();
    if sources.len() != 1 {
        let (span, msg, label) = match sources.get(1) {
            Some(second) => (
                second.span(),
                "a secret has more than one source",
                "second source",
            ),
            None => (n.name_span(), "a secret needs a source", "no source"),
        };
        let p = cx
            .problem("tfctl::secret-source", span, msg)
            .label(label)
            .help("give exactly one of from-file=\"PATH\", from-env=\"VAR\" or generate=LENGTH");
        cx.push(p);
        return None;
    }
    let e = sources[0];
    let source = match e.name().map(|k| k.value()) {
        Some("from-file") => {
            let rel = cx.str(Some(e))?;
            let path = cx.host_path(&rel);
            if !cx.readable(e, &path, "secret file") {
                return None;
            }
            SecretSource::FromFile(path)
        }
        Some("from-env") => {
            let var = cx.str(Some(e))?;
            if var.is_empty() || var.contains(['=', '\0']) {
                let p = cx
                    .problem(
                        "tfctl::invalid-variable",
                        value_span(e),
                        format!("`{var}` is not a variable name"),
                    )
                    .label("not a name")
                    .help("write the environment variable's name, e.g. from-env=\"DB_PASSWORD\"");
                cx.push(p);
                return None;
            }
            SecretSource::FromEnv(var)
        }
        _ => {
            let len = cx.positive(Some(e), "a generated secret's length")?;
            match u32::try_from(len) {
                Ok(l) if l <= 4096 => SecretSource::Generate(l),
                _ => {
                    let p = cx
                        .problem(
                            "tfctl::invalid-length",
                            value_span(e),
                            format!("a secret of {len} characters is too long"),
                        )
                        .label("too long")
                        .help("generate at most 4096 characters; 32 is plenty");
                    cx.push(p);
                    return None;
                }
            }
        }
    };
    let name = name?;
    refs.secrets.push((name.clone(), value_span(n.arg(0)?)));
    Some(SecretDef { name, source })
}

/// An `on "EVENT" { ... }` hook; `in_container` allows `exec` steps for the events that have a
/// running container.
pub fn hook(cx: &mut Cx<'_>, n: Node<'_>, events: &[Event], in_container: bool) -> Option<Hook> {
    let names: Vec<&'static str> = events.iter().map(|e| e.as_str()).collect();
    let event = cx
        .choice(
            n.arg(0),
            if in_container {
                "container event"
            } else {
                "app event"
            },
            &names,
        )
        .and_then(|s| events.iter().copied().find(|e| e.as_str() == s));
    let on_fail = match cx.choice(n.prop("on-fail"), "`on-fail` value", &["fail", "ignore"]) {
        Some("fail") => Some(OnFail::Fail),
        Some(_) => Some(OnFail::Ignore),
        None => None,
    };
    let timeout = match n.prop("timeout") {
        Some(e) => cx.positive_duration(Some(e), "a hook's timeout"),
        None => Some(DEFAULT_HOOK_TIMEOUT),
    };
    let mut steps = Vec::new();
    for s in cx.nodes(n.kdl.children(), Ctx::Hook) {
        let argv: Vec<String> = s.args().filter_map(|a| cx.scalar(Some(a))).collect();
        match s.spec.name {
            "exec" => {
                let allowed = in_container && event.is_none_or(|e| e.allows_exec());
                if !allowed {
                    let why = if in_container {
                        format!(
                            "`exec` runs inside the container, which is not running on `{}`",
                            event.map_or("", |e| e.as_str())
                        )
                    } else {
                        "`exec` runs inside a container; app hooks run on the host".to_string()
                    };
                    let p = cx
                        .problem("tfctl::exec-not-allowed", s.name_span(), why)
                        .label("`exec` not allowed here")
                        .help("use `run` to run a command on the host; `exec` works in started, healthy, unhealthy and stopping hooks");
                    cx.push(p);
                }
                steps.push(HookStep::Exec(argv));
            }
            _ => steps.push(HookStep::Run(argv)),
        }
    }
    if steps.is_empty() {
        let span = n.kdl.children().map_or(n.name_span(), |c| c.span());
        let p = cx
            .problem("tfctl::empty-hook", span, "the hook has no commands")
            .label("no `run` or `exec` here")
            .help("add a block with commands: on \"started\" { run \"./notify.sh\" }");
        cx.push(p);
        return None;
    }
    let event = event?;
    Some(Hook {
        event,
        on_fail: on_fail.unwrap_or(event.default_on_fail()),
        timeout: timeout?,
        steps,
    })
}

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEFAULT_RETRIES: u32 = 3;

pub fn health(cx: &mut Cx<'_>, n: Node<'_>) -> Option<Health> {
    let mut probes: Vec<(Probe, SourceSpan)> = Vec::new();
    let mut h = Health {
        probe: Probe::Tcp(0),
        interval: DEFAULT_INTERVAL,
        timeout: DEFAULT_PROBE_TIMEOUT,
        retries: DEFAULT_RETRIES,
        start_period: Duration::ZERO,
    };
    let mut ok = true;
    for s in cx.nodes(n.kdl.children(), Ctx::Health) {
        match s.spec.name {
            "exec" => {
                let argv = s.args().filter_map(|a| cx.scalar(Some(a))).collect();
                probes.push((Probe::Exec(argv), s.name_span()));
            }
            "http" => {
                if let Some(url) = cx.str(s.arg(0)) {
                    if !(url.starts_with("http://") && url.len() > "http://".len()) {
                        let p = cx
                            .problem("tfctl::invalid-url", value_span(s.arg(0)?), format!("`{url}` is not an http:// URL"))
                            .label("not an http URL")
                            .help("write the URL the probe fetches from inside the container: \"http://localhost:8080/health\"");
                        cx.push(p);
                        ok = false;
                    }
                    probes.push((Probe::Http(url), s.name_span()));
                }
            }
            "tcp" => {
                let e = s.arg(0);
                if let Some(port) = cx
                    .int(e)
                    .and_then(|p| cx.parsed(e?, values::check_port(p, false), "not a port"))
                {
                    probes.push((Probe::Tcp(port), s.name_span()));
                } else {
                    ok = false;
                }
            }
            "interval" => ok &= set(&mut h.interval, cx.positive_duration(s.arg(0), "interval")),
            "timeout" => ok &= set(&mut h.timeout, cx.positive_duration(s.arg(0), "timeout")),
            "start-period" => ok &= set(&mut h.start_period, cx.duration(s.arg(0))),
            "retries" => {
                let r = cx
                    .positive(s.arg(0), "retries")
                    .and_then(|r| u32::try_from(r).ok());
                ok &= set(&mut h.retries, r);
            }
            _ => {}
        }
    }
    match probes.len() {
        1 => h.probe = probes.remove(0).0,
        0 => {
            if ok {
                let span = n.kdl.children().map_or(n.name_span(), |c| c.span());
                let p = cx
                    .problem("tfctl::health-probe", span, "the health check has no probe")
                    .label("no probe here")
                    .help("give exactly one probe: exec \"CMD\"..., http \"URL\" or tcp PORT");
                cx.push(p);
            }
            return None;
        }
        _ => {
            let p = cx
                .problem(
                    "tfctl::health-probe",
                    probes[1].1,
                    "the health check has more than one probe",
                )
                .label("second probe")
                .also(probes[0].1, "first probe")
                .help("give exactly one probe: exec \"CMD\"..., http \"URL\" or tcp PORT");
            cx.push(p);
            return None;
        }
    }
    ok.then_some(h)
}

/// Stores `v` in `slot` when present; tells whether it was.
fn set<T>(slot: &mut T, v: Option<T>) -> bool {
    match v {
        Some(v) => {
            *slot = v;
            true
        }
        None => false,
    }
}
