//! What changes between two resolved models of one app, container by container, as far as the
//! model alone tells: `plan` and a reconciling `up` add what only the host knows (image digests,
//! file and secret contents).
//!
//! A container's `allow`, `allow-egress`, `egress`, `health`, `restart` and hooks can change
//! while it runs; any other difference means it must be created again.

use serde::Serialize;

use crate::model::{App, Container};

/// What reconciling does to one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Nothing changes.
    Keep,
    /// Changed in place: firewall, health check, restart policy or hooks.
    Update,
    /// Stopped, its filesystem changes discarded, and created again from the new definition.
    Recreate,
    /// New in the file.
    Create,
    /// Gone from the file.
    Remove,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Update => "update",
            Action::Recreate => "recreate",
            Action::Create => "create",
            Action::Remove => "remove",
        }
    }
}

/// One container's change, with the reasons in the file's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub container: String,
    pub action: Action,
    pub reasons: Vec<String>,
}

impl Change {
    /// Raises the action to at least `action`, adding `reason`.
    pub fn escalate(&mut self, action: Action, reason: impl Into<String>) {
        if action > self.action {
            self.action = action;
        }
        self.reasons.push(reason.into());
    }
}

/// Fields that change in place, by their serialised name.
const IN_PLACE: [&str; 6] = ["allow", "allow_egress", "egress", "health", "restart", "hooks"];

/// The file's spelling of a model field (`allow_egress` -> `allow-egress`).
fn vocabulary(field: &str) -> String {
    match field {
        "command" | "entrypoint" | "workdir" | "user" | "hostname" | "image" => field.to_string(),
        "files" => "file".into(),
        "secrets" => "secret use".into(),
        "mounts" => "mount".into(),
        "hooks" => "hooks".into(),
        "after" => "after".into(),
        other => other.replace('_', "-"),
    }
}

/// The fields of `a` and `b` that differ, in declaration order.
fn differing_fields(a: &Container, b: &Container, app_egress: (crate::model::Egress, crate::model::Egress)) -> Vec<&'static str> {
    let (va, vb) = (serde_json::to_value(a).unwrap_or_default(), serde_json::to_value(b).unwrap_or_default());
    let mut out = Vec::new();
    for field in FIELDS {
        let differs = if *field == "egress" {
            a.egress_or(app_egress.0) != b.egress_or(app_egress.1)
        } else {
            va.get(field) != vb.get(field)
        };
        if differs {
            out.push(*field);
        }
    }
    out
}

/// Every field of [`Container`] but its name, in declaration order (a test keeps this in step
/// with the struct).
const FIELDS: &[&str] = &[
    "image", "command", "entrypoint", "workdir", "user", "hostname", "env", "files", "secrets", "mounts", "tmpfs",
    "shm_size", "userns", "publish", "allow", "egress", "allow_egress", "after", "health", "restart", "hooks", "limits", "ulimits", "cap_add",
    "cap_drop", "seccomp", "sysctls", "stop_signal", "stop_timeout", "read_only", "init", "sleep", "one_shot",
    "profiles", "group_add", "labels", "aliases", "extra_hosts", "dns", "network", "networks", "host_pid", "privileged",
    "devices", "tty", "replicas", "log",
];

/// One container's change from `old` to `new` (either absent).
pub fn container(old: Option<(&App, &Container)>, new: Option<(&App, &Container)>) -> Option<Change> {
    let (name, action, reasons) = match (old, new) {
        (None, None) => return None,
        (None, Some((_, c))) => (c.name.clone(), Action::Create, vec!["new in the app file".to_string()]),
        (Some((_, c)), None) => (c.name.clone(), Action::Remove, vec!["no longer in the app file".to_string()]),
        (Some((oa, o)), Some((na, n))) => {
            let fields = differing_fields(o, n, (oa.egress, na.egress));
            let action = if fields.is_empty() {
                Action::Keep
            } else if fields.iter().all(|f| IN_PLACE.contains(f)) {
                Action::Update
            } else {
                Action::Recreate
            };
            (n.name.clone(), action, fields.iter().map(|f| format!("{} changed", vocabulary(f))).collect())
        }
    };
    Some(Change { container: name, action, reasons })
}

/// Every container's change from `old` to `new`, in the new file's order, then the removed ones.
pub fn containers(old: &App, new: &App) -> Vec<Change> {
    let mut out: Vec<Change> = new
        .containers
        .iter()
        .filter_map(|n| container(old.container(&n.name).map(|o| (old, o)), Some((new, n))))
        .collect();
    out.extend(
        old.containers
            .iter()
            .filter(|o| new.container(&o.name).is_none())
            .filter_map(|o| container(Some((old, o)), None)),
    );
    out
}

/// Changes that belong to no container, in words: the app's hooks, which change in place.
/// (The egress default shows in each container that follows it, and a secret's definition in
/// the content of the containers that use it.)
pub fn app_level(old: &App, new: &App) -> Vec<String> {
    if old.hooks != new.hooks {
        vec!["app hooks changed".to_string()]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn app(containers: Vec<Container>) -> App {
        App { containers, ..App::new("a", "/x/a.kdl".into()) }
    }

    #[test]
    fn fields_list_every_field_but_the_name() {
        let v = serde_json::to_value(Container::new("n", "i")).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).filter(|k| *k != "name").collect();
        let mut listed = FIELDS.to_vec();
        keys.sort();
        listed.sort();
        assert_eq!(keys, listed);
    }

    #[test]
    fn firewall_health_restart_hooks_change_in_place_the_rest_recreates() {
        let old = app(vec![Container::new("web", "img"), Container::new("db", "img"), Container::new("gone", "img")]);
        let mut web = Container::new("web", "img");
        web.allow.push(Allow { from: Peer::Host, ports: None, proto: None });
        web.restart.policy = RestartPolicy::Always;
        let mut db = Container::new("db", "img");
        db.env.push(("K".into(), "V".into()));
        let new = app(vec![web, db, Container::new("fresh", "img")]);
        let changes = containers(&old, &new);
        let by = |n: &str| changes.iter().find(|c| c.container == n).unwrap().clone();
        assert_eq!(by("web").action, Action::Update);
        assert_eq!(by("web").reasons, vec!["allow changed", "restart changed"]);
        assert_eq!(by("db").action, Action::Recreate);
        assert_eq!(by("db").reasons, vec!["env changed"]);
        assert_eq!(by("fresh").action, Action::Create);
        assert_eq!(by("gone").action, Action::Remove);
    }

    #[test]
    fn the_app_egress_default_counts_for_containers_without_their_own() {
        let old = app(vec![Container::new("web", "img")]);
        let mut new = old.clone();
        new.egress = Egress::Deny;
        let c = &containers(&old, &new)[0];
        assert_eq!((c.action, c.reasons.clone()), (Action::Update, vec!["egress changed".to_string()]));
        let same = containers(&old, &old);
        assert_eq!(same[0].action, Action::Keep);
    }
}
