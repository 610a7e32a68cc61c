//! Bringing a running app in line with a new model (a second `up`, `run --app`): which
//! containers change and why (`plan`), and carrying it out while the rest run on.
//!
//! The model tells most of it ([`tfctl_schema::diff`]); the host adds what the file cannot
//! show: an image tag now naming another digest, and pre-boot files or secrets whose content
//! changed. Contents are compared by HMAC-SHA256 under the host key, never by a plain hash, and
//! kept only in the supervisor's memory.

use std::collections::{BTreeSet, HashMap};
use std::os::fd::AsRawFd;

use tfctl_schema::diff::{self, Action, Change};
use tfctl_schema::model::{App, Container, FileContent, SecretSource};

use super::driver::{HostDriver, Model};
use super::record::{self, AppRecord};
use crate::container::ContainerDirs;
use crate::hooks::env::HookContext;
use crate::image::{ImageSource, Store};
use crate::net::{firewall, NetRecord};
use crate::secrets::{self, HostKey, SecretValue};
use crate::state::StateRoot;
use crate::supervise::{Supervisor, State};

/// What only the host knows of a container: its image's manifest digest and a keyed MAC of
/// its pre-boot files and secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    image: String,
    content: [u8; 32],
}

/// The supervisor's own state of the app beside the supervisor's model; one reconcile at a
/// time holds it.
pub struct Live {
    pub root: StateRoot,
    /// The host config file the app runs under, for the hooks' environment.
    pub config_file: Option<std::path::PathBuf>,
    pub record: AppRecord,
    pub key: HostKey,
    pub prints: HashMap<String, Fingerprint>,
    /// A bound socket per published host port, held while the app runs.
    pub held_ports: Vec<crate::net::ports::Reservation>,
}

/// A reconcile's input.
pub struct Request {
    /// The new model, as the caller resolved it from its file.
    pub app: App,
    /// from-env secrets the caller took from its environment; others keep their current value.
    pub env_secrets: HashMap<String, SecretValue>,
    /// Containers of `app` this request adds at run time.
    pub run_added: Vec<String>,
    /// Containers added at run time that this request removes (`run --app --rm`).
    pub run_removed: Vec<String>,
}

/// A planned reconcile: the changes, and the model that results.
pub struct Planned {
    pub changes: Vec<Change>,
    /// In-place changes that belong to no container (app hooks, the egress default).
    pub app_level: Vec<String>,
    model: Model,
    prints: HashMap<String, Fingerprint>,
    added: BTreeSet<String>,
}

impl Planned {
    /// Whether carrying it out changes anything.
    pub fn changes_anything(&self) -> bool {
        !self.app_level.is_empty() || self.changes.iter().any(|c| c.action != Action::Keep)
    }

    /// The containers that get a new process (created or recreated), not `sleep` ones.
    pub fn starting(&self) -> Vec<String> {
        self.changes
            .iter()
            .filter(|c| matches!(c.action, Action::Create | Action::Recreate))
            .filter(|c| self.model.app.container(&c.container).is_some_and(|d| !d.sleep))
            .map(|c| c.container.clone())
            .collect()
    }
}

/// Every secret `app` defines: from the caller's environment, else (for a from-env secret)
/// the value in use, else read or derived as at a first start.
pub fn secret_values(
    app: &App,
    generation: u64,
    key: &HostKey,
    env: &mut HashMap<String, SecretValue>,
    current: &HashMap<String, SecretValue>,
) -> Result<HashMap<String, SecretValue>, secrets::SecretError> {
    let mut out = HashMap::new();
    for def in &app.secrets {
        let value = match (env.remove(&def.name), &def.source, current.get(&def.name)) {
            (Some(v), _, _) => v,
            (None, SecretSource::FromEnv(_), Some(v)) => v.clone(),
            _ => secrets::resolve(def, &app.name, generation, key)?,
        };
        out.insert(def.name.clone(), value);
    }
    Ok(out)
}

/// A container's content fingerprint: its pre-boot files (a file from the host read now), the
/// secrets it receives, and for templates every secret (a template may use any of them).
fn content_mac(key: &HostKey, c: &Container, secrets: &HashMap<String, SecretValue>) -> Result<[u8; 32], String> {
    let mut owned: Vec<Vec<u8>> = Vec::new();
    for f in &c.files {
        owned.push(f.path.as_bytes().to_vec());
        owned.push(format!("{:o} {:?} {}", f.mode, f.owner, f.template).into_bytes());
        owned.push(match &f.content {
            FileContent::Inline(text) => text.as_bytes().to_vec(),
            FileContent::From(path) => std::fs::read(path).map_err(|e| format!("container {}: cannot read {}: {e}", c.name, path.display()))?,
        });
    }
    let mut names: Vec<&String> = if c.files.iter().any(|f| f.template) {
        secrets.keys().collect()
    } else {
        c.secrets.iter().map(|s| &s.name).collect()
    };
    names.sort();
    names.dedup();
    let mut fields: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    for n in names {
        fields.push(n.as_bytes());
        fields.push(secrets.get(n).map_or(&[][..], |v| v.expose()));
    }
    Ok(key.mac("tfctl container content v1", &fields))
}

/// Every container's fingerprint in `model`.
pub fn fingerprints(key: &HostKey, model: &Model) -> Result<HashMap<String, Fingerprint>, String> {
    let mut out = HashMap::new();
    for c in &model.app.containers {
        let image = model.images.get(&c.name).map(|i| i.manifest_digest.clone()).unwrap_or_default();
        out.insert(c.name.clone(), Fingerprint { image, content: content_mac(key, c, &model.secrets)? });
    }
    Ok(out)
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// What reconciling `live` (run by `sup`) to `req` changes. `pulled`: whether every image must
/// be stored already (`up`), or a missing one only says so (`plan`).
pub fn plan(sup: &Supervisor<HostDriver>, live: &Live, mut req: Request, pulled: bool) -> Result<Planned, String> {
    let current = sup.app();
    let mut app = req.app;
    if app.subnet.is_some() && app.subnet != current.subnet {
        return Err(format!("the subnet of app {} cannot change while it runs: `tfctl down {}` first", app.name, app.name));
    }
    app.subnet = current.subnet;
    // Containers added at run time stay (a file of the app does not name them) until a request
    // removes them.
    let mut added: BTreeSet<String> = live.record.added.iter().filter(|n| !req.run_removed.contains(n)).cloned().collect();
    for name in &added {
        if let (None, Some(c)) = (app.container(name), current.container(name)) {
            app.containers.push(c.clone());
        }
    }
    added.extend(req.run_added.iter().cloned());

    let store = Store::open(live.root.path()).map_err(|e| e.to_string())?;
    let mut images = HashMap::new();
    let mut unpulled = BTreeSet::new();
    for c in &app.containers {
        let source = ImageSource::parse(&c.image, &app.dir).map_err(|e| format!("container {}: {e}", c.name))?;
        match store.resolve(&source) {
            Ok(i) => {
                images.insert(c.name.clone(), i);
            }
            Err(crate::image::ImageError::NotFound { .. }) if !pulled => {
                unpulled.insert(c.name.clone());
            }
            Err(e) => return Err(format!("container {}: {e}", c.name)),
        }
    }
    let current_model = sup.driver().model();
    let values = secret_values(&app, live.record.secret_generation, &live.key, &mut req.env_secrets, &current_model.secrets).map_err(|e| e.to_string())?;
    let model = Model { app, images, net: current_model.net.clone(), secrets: values };
    let prints = fingerprints(&live.key, &model)?;

    let mut changes = diff::containers(&current, &model.app);
    for ch in changes.iter_mut().filter(|c| matches!(c.action, Action::Keep | Action::Update)) {
        let (Some(old), Some(new)) = (live.prints.get(&ch.container), prints.get(&ch.container)) else { continue };
        if unpulled.contains(&ch.container) {
            ch.escalate(Action::Recreate, "its image is not stored yet: `up` pulls it, and a new digest recreates it");
        } else if old.image != new.image {
            ch.escalate(Action::Recreate, format!("image digest changed ({} -> {})", short(&old.image), short(&new.image)));
        }
        if old.content != new.content {
            ch.escalate(Action::Recreate, "pre-boot file or secret content changed");
        }
    }
    // `up` makes it so: a container that failed (a long-running one that exited, a one-shot
    // that exited non-zero, one that could not start, or used up its restarts) is started
    // again from its definition, whatever the file changed. One between restarts (exited,
    // its policy bringing it back) is left to its policy.
    let status = sup.status().borrow().clone();
    for ch in changes.iter_mut().filter(|c| matches!(c.action, Action::Keep | Action::Update)) {
        let Some(s) = status.get(&ch.container).filter(|s| s.state == State::Failed) else { continue };
        let why = s.reason.clone().unwrap_or_else(|| "it failed".into());
        ch.escalate(Action::Recreate, format!("it failed ({why}): started again"));
    }
    let app_level = diff::app_level(&current, &model.app);
    Ok(Planned { changes, app_level, model, prints, added })
}

/// The hooks' shared environment for an app with `net` and `ports`.
pub fn hook_base(root: &StateRoot, config_file: Option<&std::path::Path>, app: &App, net: &NetRecord, ports: &[super::ops::PublishedPort], trusted_files: bool) -> HookContext {
    HookContext {
        trusted_files,
        config_file: config_file.map(std::path::Path::to_path_buf),
        app: app.name.clone(),
        root: root.path().to_path_buf(),
        app_file: app.file.clone(),
        ips: net.containers.iter().filter(|(n, _)| app.container(n).is_some()).map(|(n, c)| (n.clone(), c.address)).collect(),
        ports: super::ops::hook_ports(ports),
        ..HookContext::default()
    }
}

/// Carries `planned` out: removed containers go, the firewall takes the new rules in one batch,
/// the model changes (hooks, health checks, restart policies in place), changed containers are
/// recreated with their address kept, new ones start, and every running container's
/// /etc/hosts follows when the set of containers changed.
pub async fn apply(sup: &Supervisor<HostDriver>, live: &mut Live, planned: Planned) -> Result<(), String> {
    let Planned { changes, model: mut new, prints, added, .. } = planned;
    let by = |a: Action| changes.iter().filter(move |c| c.action == a).map(|c| c.container.clone());
    let removed: Vec<String> = by(Action::Remove).collect();
    let created: Vec<String> = by(Action::Create).collect();
    let recreated: Vec<String> = by(Action::Recreate).collect();
    let app_name = new.app.name.clone();
    let mut errors = Vec::new();

    for name in &removed {
        if let Err(e) = sup.stop(name).await {
            errors.push(e);
        }
        sup.driver().forget(name);
        sup.forget(name);
        let dirs = ContainerDirs::new(&live.root, &app_name, name);
        if let Err(e) = std::fs::remove_dir_all(&dirs.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                errors.push(format!("cannot remove {}: {e}", dirs.dir.display()));
            }
        }
        let cg = crate::container::cgroup_name(&live.root, &app_name, name);
        live.record.cgroups.retain(|c| *c != cg);
    }

    // Addresses first, saved before anything is made, so a crash still lets `down` find it all.
    let mut net = live.record.net.clone().ok_or("the app has no network record")?;
    for name in &removed {
        net.release(name);
    }
    for name in &created {
        net.assign(name).map_err(|e| e.to_string())?;
        let cg = crate::container::cgroup_name(&live.root, &app_name, name);
        if !live.record.cgroups.contains(&cg) {
            live.record.cgroups.push(cg);
        }
    }
    let spec = super::lifecycle::firewall_spec(&new.app, &live.record.ports);
    let ports = super::ops::published(&spec);
    super::ops::reserve_published(&ports, &mut live.held_ports).map_err(|e| e.to_string())?;
    live.record.ports = ports;
    live.record.net = Some(net.clone());
    record::save(&live.root, &live.record).map_err(|e| e.to_string())?;
    firewall::apply(&net, &spec).map_err(|e| format!("firewall: {e}"))?;

    new.net = Some(net.clone());
    live.record.app_file = new.app.file.clone();
    let hooks = hook_base(&live.root, live.config_file.as_deref(), &new.app, &net, &live.record.ports, live.record.trusted_files);
    let app = new.app.clone();
    sup.driver().set_model(new);
    sup.set_model(app, hooks);
    live.prints = prints;
    live.record.added = added.into_iter().filter(|n| sup.app().container(n).is_some()).collect();
    record::save(&live.root, &live.record).map_err(|e| e.to_string())?;

    // Recreated: stopped, filesystem changes discarded, started from the new definition; their
    // dependants stay.
    for name in &recreated {
        let state = sup.status().borrow().get(name).map(|s| (s.state, s.started_at.is_some()));
        if let Err(e) = sup.stop(name).await {
            errors.push(e);
            continue;
        }
        if let Err(e) = ContainerDirs::new(&live.root, &app_name, name).discard_changes() {
            errors.push(e);
        }
        // A `sleep` container never started stays so, to start later from the new definition.
        let never_started = matches!(state, Some((State::Waiting, false)));
        // One that cannot start now (what it comes after is stopped) says why; the rest go on.
        if !(never_started && sup.app().container(name).is_some_and(|c| c.sleep)) {
            if let Err(e) = sup.start(name).await {
                errors.push(e);
            }
        }
    }
    for name in &created {
        sup.launch(name);
    }
    if !removed.is_empty() || !created.is_empty() {
        rewrite_hosts(sup);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Writes every running container's /etc/hosts from the current model, resolved inside the
/// container's root by descriptor (a planted symlink cannot redirect it).
fn rewrite_hosts(sup: &Supervisor<HostDriver>) {
    for (name, pidfd) in sup.driver().running() {
        let Some(text) = sup.driver().hosts_file(&name) else { continue };
        let written = super::ops::container_root(&pidfd).and_then(|root| {
            // Owned by the container's root (the owner of its `/`: not host root under
            // `userns "auto"`, where the file is written as that root).
            let st = nix::sys::stat::fstat(&root).map_err(|e| e.to_string())?;
            let _as_root = crate::sys::userns::FilesAs::owner((st.st_uid, st.st_gid)).map_err(|e| std::io::Error::from_raw_os_error(e).to_string())?;
            let file = crate::start::config::FileConfig {
                path: c"/etc/hosts".to_owned(),
                data: text.into_bytes(),
                mode: 0o644,
                uid: st.st_uid,
                gid: st.st_gid,
            };
            crate::rootfs::write_file(root.as_raw_fd(), &file).map_err(|e| std::io::Error::from_raw_os_error(e).to_string())
        });
        if let Err(e) = written {
            tracing::warn!(container = %name, "cannot rewrite /etc/hosts: {e}");
        }
    }
}
