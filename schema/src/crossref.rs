//! Checks across the whole app: duplicate names and published ports, references to containers,
//! volumes and secrets that do not exist, and cycles in `after`.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use miette::SourceSpan;

use crate::model::{App, Proto, Until};
use crate::reader::Cx;
use crate::vocab;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Container,
    Volume,
    Secret,
}

impl RefKind {
    fn noun(&self) -> &'static str {
        match self {
            RefKind::Container => "container",
            RefKind::Volume => "volume",
            RefKind::Secret => "secret",
        }
    }
}

/// What lowering noted for the checks across the app: definitions and uses, with their places.
#[derive(Default)]
pub struct Refs {
    pub containers: Vec<(String, SourceSpan)>,
    pub volumes: Vec<(String, SourceSpan)>,
    pub secrets: Vec<(String, SourceSpan)>,
    /// (kind, name, place, what refers to it: "`after`", "`allow`", "`mount`", "`secret`", "the template").
    pub uses: Vec<(RefKind, String, SourceSpan, &'static str)>,
    /// (container, the container it waits for, place, until).
    pub afters: Vec<(String, String, SourceSpan, Until)>,
    pub publishes: Vec<(Ipv4Addr, u16, Proto, SourceSpan)>,
    /// (alias, its container, place).
    pub aliases: Vec<(String, String, SourceSpan)>,
}

pub fn check(cx: &mut Cx<'_>, app: &mut App, refs: &Refs) {
    let containers = duplicates(cx, RefKind::Container, &refs.containers);
    let volumes = duplicates(cx, RefKind::Volume, &refs.volumes);
    let secrets = duplicates(cx, RefKind::Secret, &refs.secrets);
    for (kind, name, span, what) in &refs.uses {
        let defined = match kind {
            RefKind::Container => &containers,
            RefKind::Volume => &volumes,
            RefKind::Secret => &secrets,
        };
        if defined.contains_key(name.as_str()) {
            continue;
        }
        let noun = kind.noun();
        let mut help = match vocab::did_you_mean(name, defined.keys().copied()) {
            Some(s) => format!("did you mean `{s}`? "),
            None => String::new(),
        };
        help.push_str(&match kind {
            RefKind::Container if defined.is_empty() => "the app defines no containers".to_string(),
            RefKind::Container => format!("the app's containers are: {}", sorted(defined)),
            RefKind::Volume => format!(
                "define it at the top level with volume \"{name}\", or start a host path with ./ for a bind mount"
            ),
            RefKind::Secret => format!("define it at the top level: secret \"{name}\" generate=32"),
        });
        let p = cx
            .problem(
                "tfctl::unknown-reference",
                *span,
                format!(
                    "{} refers to {noun} `{name}`, which the app does not define",
                    capitalise(what)
                ),
            )
            .label(format!("no such {noun}"))
            .help(help);
        cx.push(p);
    }
    published_ports(cx, &refs.publishes);
    names_resolve_once(cx, app, refs, &containers);
    after_cycles(cx, refs, &containers);
    // A container that others wait for to complete is a task.
    for (_, target, _, until) in &refs.afters {
        if *until == Until::Completed {
            if let Some(c) = app.containers.iter_mut().find(|c| &c.name == target) {
                c.one_shot = true;
            }
        }
    }
}

/// Every name a peer resolves (a container, an instance `NAME-N` of replicas, an alias) means
/// one container: /etc/hosts can give one name only one meaning.
fn names_resolve_once(
    cx: &mut Cx<'_>,
    app: &App,
    refs: &Refs,
    containers: &HashMap<&str, SourceSpan>,
) {
    for c in app.containers.iter().filter(|c| c.replicas > 1) {
        for inst in c.instance_names() {
            if let Some(span) = containers.get(inst.as_str()) {
                let p = cx
                    .problem("tfctl::duplicate-name", *span, format!("container `{inst}` has the name of an instance of `{}`", c.name))
                    .label("this container")
                    .also(containers[c.name.as_str()], format!("replicas make {}-1 to {}-{}", c.name, c.name, c.replicas))
                    .help("rename this container, or lower `replicas=`");
                cx.push(p);
            }
        }
    }
    let mut seen: HashMap<&str, (&str, SourceSpan)> = HashMap::new();
    for (alias, owner, span) in &refs.aliases {
        if let Some(first) = containers.get(alias.as_str()) {
            let p = cx
                .problem("tfctl::duplicate-name", *span, format!("alias `{alias}` is the name of a container"))
                .label("alias")
                .also(*first, "the container of that name")
                .help("an alias is another name for its container; pick one no container has");
            cx.push(p);
        } else if let Some((other, first)) = seen.get(alias.as_str()).filter(|(o, _)| *o != owner) {
            let p = cx
                .problem("tfctl::duplicate-name", *span, format!("alias `{alias}` is given to both `{other}` and `{owner}`"))
                .label("second use")
                .also(*first, "first use")
                .help("an alias names one container; for several instances of one container use replicas=N");
            cx.push(p);
        } else {
            seen.insert(alias, (owner, *span));
        }
    }
}

fn sorted(m: &HashMap<&str, SourceSpan>) -> String {
    let mut names: Vec<&str> = m.keys().copied().collect();
    names.sort_unstable();
    names.join(", ")
}

/// Reports every second definition of a name; returns the first definitions.
fn duplicates<'r>(
    cx: &mut Cx<'_>,
    kind: RefKind,
    defs: &'r [(String, SourceSpan)],
) -> HashMap<&'r str, SourceSpan> {
    let mut seen: HashMap<&str, SourceSpan> = HashMap::with_capacity(defs.len());
    for (name, span) in defs {
        if let Some(first) = seen.get(name.as_str()) {
            let noun = kind.noun();
            let p = cx
                .problem(
                    dup_code(kind),
                    *span,
                    format!("{noun} `{name}` is defined twice"),
                )
                .label(format!("second {noun} `{name}`"))
                .also(*first, "first defined here")
                .help(format!("give each {noun} a name of its own"));
            cx.push(p);
        } else {
            seen.insert(name, *span);
        }
    }
    seen
}

fn dup_code(kind: RefKind) -> &'static str {
    match kind {
        RefKind::Container => "tfctl::duplicate-container",
        RefKind::Volume => "tfctl::duplicate-volume",
        RefKind::Secret => "tfctl::duplicate-secret",
    }
}

/// Two publishes of one host port and protocol on overlapping addresses (0.0.0.0 overlaps all).
fn published_ports(cx: &mut Cx<'_>, publishes: &[(Ipv4Addr, u16, Proto, SourceSpan)]) {
    let mut by_port: HashMap<(u16, Proto), Vec<(Ipv4Addr, SourceSpan)>> = HashMap::new();
    for (ip, port, proto, span) in publishes {
        if *port == 0 {
            continue;
        }
        let taken = by_port.entry((*port, *proto)).or_default();
        if let Some((_, first)) = taken
            .iter()
            .find(|(other, _)| other == ip || other.is_unspecified() || ip.is_unspecified())
        {
            let p = cx
                .problem(
                    "tfctl::duplicate-publish",
                    *span,
                    format!("host port {port}/{proto} is published twice"),
                )
                .label("second publish")
                .also(*first, "first published here")
                .help(
                    "publish each host port once, or use another port (publish 0 takes a free one)",
                );
            cx.push(p);
        } else {
            taken.push((*ip, *span));
        }
    }
}

/// Finds cycles among `after` edges with a depth-first search; each cycle is reported once, at
/// the `after` that closes it.
fn after_cycles(cx: &mut Cx<'_>, refs: &Refs, containers: &HashMap<&str, SourceSpan>) {
    let mut edges: HashMap<&str, Vec<(&str, SourceSpan)>> = HashMap::new();
    for (from, to, span, _) in &refs.afters {
        if containers.contains_key(to.as_str()) {
            edges
                .entry(from.as_str())
                .or_default()
                .push((to.as_str(), *span));
        }
    }
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut state: HashMap<&str, u8> = HashMap::new();
    let mut names: Vec<&str> = refs.containers.iter().map(|(n, _)| n.as_str()).collect();
    names.dedup();
    for start in names {
        if state.get(start).copied().unwrap_or(0) != 0 {
            continue;
        }
        // Iterative DFS: (node, index of the next edge to follow).
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        state.insert(start, 1);
        while let Some((node, i)) = stack.last().copied() {
            let out = edges.get(node).map(|v| v.as_slice()).unwrap_or(&[]);
            if i >= out.len() {
                state.insert(node, 2);
                stack.pop();
                continue;
            }
            if let Some(top) = stack.last_mut() {
                top.1 += 1;
            }
            let (next, span) = out[i];
            match state.get(next).copied().unwrap_or(0) {
                0 => {
                    state.insert(next, 1);
                    stack.push((next, 0));
                }
                1 => {
                    let from = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                    let mut path: Vec<&str> = stack[from..].iter().map(|(n, _)| *n).collect();
                    path.push(next);
                    let msg = if path.len() == 2 {
                        format!("container `{next}` waits for itself")
                    } else {
                        format!("`after` makes a cycle: {}", path.join(" → "))
                    };
                    let p = cx
                        .problem("tfctl::after-cycle", span, msg)
                        .label("closes the cycle")
                        .help("containers cannot wait for each other in a circle: remove one of these `after`s");
                    cx.push(p);
                }
                _ => {}
            }
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
