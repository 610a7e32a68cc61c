//! An app's record under the state root (`apps/<app>/record.json`): what survives the
//! supervisor — addresses, secret generations, the app file it came from, and who supervises it
//! now — so `down` removes exactly what exists, also after a crash.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::net::NetRecord;
use crate::state::files::{read_json, write_json};
use crate::state::identity::ProcessIdentity;
use crate::state::StateRoot;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppRecord {
    pub schema: u32,
    pub name: String,
    pub app_file: PathBuf,
    /// Bumped by `down --volumes`, which forgets generated secrets (they are derived from it).
    pub secret_generation: u64,
    /// The app's network; kept across `down`/`up` for the addresses.
    pub net: Option<NetRecord>,
    /// The live supervisor, while there is one.
    pub supervisor: Option<ProcessIdentity>,
    /// Cgroup names of the containers created, so a `down` after a crash can remove them.
    #[serde(default)]
    pub cgroups: Vec<String>,
    /// Whether the network objects (bridge, veths, table) currently exist.
    #[serde(default)]
    pub net_up: bool,
    /// Host ports published at the last `up`, as chosen then (`publish 0` takes a free one).
    #[serde(default)]
    pub ports: Vec<super::ops::PublishedPort>,
    /// Containers added at run time (`run --app`): not in the app file, kept by a reconcile from
    /// it, marked by `ps`, gone with the supervisor.
    #[serde(default)]
    pub added: Vec<String>,
    /// `up --trust-file`: host hooks run without the check of their files' owners.
    #[serde(default)]
    pub trusted_files: bool,
    /// The app's `label`s at the last `up`, for `ps` and `inspect`.
    #[serde(default)]
    pub labels: Vec<(String, String)>,
    /// Each container's `label`s at the last `up`, by container name.
    #[serde(default)]
    pub container_labels: std::collections::BTreeMap<String, Vec<(String, String)>>,
    /// Each container's host modes at the last `up` (`privileged`, `network=host`, ...), by
    /// container name: `ps` names them, so that what is not confined from the host is seen.
    #[serde(default)]
    pub host_modes: std::collections::BTreeMap<String, Vec<String>>,
    /// Containers `tfctl stop` stopped and no `start` started again since: a later `up` (after
    /// the supervisor ended without `down`: a reboot, a crash, a signal) keeps those with
    /// `restart "unless-stopped"` stopped, as Docker does. `down` forgets them.
    #[serde(default)]
    pub user_stopped: std::collections::BTreeSet<String>,
}

impl AppRecord {
    pub fn new(name: &str, app_file: &Path) -> AppRecord {
        AppRecord {
            schema: 1,
            name: name.to_string(),
            app_file: app_file.to_path_buf(),
            secret_generation: 0,
            net: None,
            supervisor: None,
            cgroups: Vec::new(),
            net_up: false,
            ports: Vec::new(),
            added: Vec::new(),
            trusted_files: false,
            labels: Vec::new(),
            container_labels: std::collections::BTreeMap::new(),
            host_modes: std::collections::BTreeMap::new(),
            user_stopped: std::collections::BTreeSet::new(),
        }
    }
}

impl AppRecord {
    /// Notes the labels of `app` (the app file's, at `up`).
    pub fn set_labels(&mut self, app: &tfctl_schema::App) {
        self.labels = app.labels.clone();
        self.container_labels = app.containers.iter().map(|c| (c.name.clone(), c.labels.clone())).collect();
    }

    /// Notes the host modes of `app`'s containers (the app file's, at `up`); those without any
    /// are left out.
    pub fn set_host_modes(&mut self, app: &tfctl_schema::App) {
        self.host_modes = app.containers.iter().map(|c| (c.name.clone(), c.host_modes())).filter(|(_, m)| !m.is_empty()).collect();
    }

    /// A container's host modes, empty for a confined one.
    pub fn host_modes_of(&self, container: &str) -> Vec<String> {
        self.host_modes.get(container).cloned().unwrap_or_default()
    }

    /// A container's labels with the app's beneath them: the container's own value wins.
    pub fn labels_of(&self, container: &str) -> Vec<(String, String)> {
        let own = self.container_labels.get(container).cloned().unwrap_or_default();
        let mut out: Vec<(String, String)> = self.labels.iter().filter(|(k, _)| !own.iter().any(|(o, _)| o == k)).cloned().collect();
        out.extend(own);
        out
    }
}

/// `apps/<app>/` under the state root.
pub fn app_dir(root: &StateRoot, app: &str) -> PathBuf {
    root.path().join("apps").join(app)
}

fn record_path(root: &StateRoot, app: &str) -> PathBuf {
    app_dir(root, app).join("record.json")
}

pub fn load(root: &StateRoot, app: &str) -> std::io::Result<Option<AppRecord>> {
    read_json(&record_path(root, app))
}

pub fn save(root: &StateRoot, record: &AppRecord) -> std::io::Result<()> {
    let dir = root.dir(&format!("apps/{}", record.name))?;
    write_json(&dir.join("record.json"), record)
}

/// Every app with a record under the root.
pub fn all(root: &StateRoot) -> Vec<AppRecord> {
    let Ok(entries) = std::fs::read_dir(root.path().join("apps")) else { return Vec::new() };
    let mut out: Vec<AppRecord> = entries
        .flatten()
        .filter_map(|e| load(root, &e.file_name().to_string_lossy()).ok().flatten())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
