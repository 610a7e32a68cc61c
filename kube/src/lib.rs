//! An app file's resolved model as Kubernetes manifests (`tfctl export kubernetes`).
//!
//! Every object is a typed k8s-openapi struct, so what is written is well-formed by
//! construction; the choices of the mapping are spelled out in tfctl-export-kubernetes(1).
//! Whatever tfctl does that Kubernetes has no equivalent for becomes a [`Warning`] naming the
//! app file's node, and the same text as a comment heading the object it concerns: nothing is
//! dropped silently.
//!
//! - `data`: Secrets for the app's secrets, ConfigMaps (and Secrets) for pre-boot files.
//! - `workload`: a Deployment, StatefulSet or Job per container, with its pod.
//! - `network`: Services and NetworkPolicies.

mod data;
mod network;
mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tfctl_schema::model::App;

/// The label every object carries with the app's name; with [`NAME_LABEL`] it selects one
/// container's pods, alone all of the app's.
pub const APP_LABEL: &str = "app.kubernetes.io/part-of";
/// The label naming the container a pod runs.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
const MANAGED_LABEL: &str = "app.kubernetes.io/managed-by";

/// What kind of Service a `publish` becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublishAs {
    /// A port on every node (the host port when it lies in the NodePort range).
    #[default]
    NodePort,
    /// A cloud load balancer listening on the host port.
    LoadBalancer,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `metadata.namespace` of every object; `None` leaves it to `kubectl -n`.
    pub namespace: Option<String>,
    pub publish_as: PublishAs,
}

/// One Kubernetes object.
// Unboxed: an export holds a few dozen objects, made once each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    Secret(Secret),
    ConfigMap(ConfigMap),
    PersistentVolumeClaim(PersistentVolumeClaim),
    Service(Service),
    Deployment(Deployment),
    StatefulSet(StatefulSet),
    Job(Job),
    NetworkPolicy(NetworkPolicy),
}

impl Resource {
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Secret(_) => "Secret",
            Resource::ConfigMap(_) => "ConfigMap",
            Resource::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
            Resource::Service(_) => "Service",
            Resource::Deployment(_) => "Deployment",
            Resource::StatefulSet(_) => "StatefulSet",
            Resource::Job(_) => "Job",
            Resource::NetworkPolicy(_) => "NetworkPolicy",
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Resource::Secret(o) => &o.metadata,
            Resource::ConfigMap(o) => &o.metadata,
            Resource::PersistentVolumeClaim(o) => &o.metadata,
            Resource::Service(o) => &o.metadata,
            Resource::Deployment(o) => &o.metadata,
            Resource::StatefulSet(o) => &o.metadata,
            Resource::Job(o) => &o.metadata,
            Resource::NetworkPolicy(o) => &o.metadata,
        }
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Resource::Secret(o) => &mut o.metadata,
            Resource::ConfigMap(o) => &mut o.metadata,
            Resource::PersistentVolumeClaim(o) => &mut o.metadata,
            Resource::Service(o) => &mut o.metadata,
            Resource::Deployment(o) => &mut o.metadata,
            Resource::StatefulSet(o) => &mut o.metadata,
            Resource::Job(o) => &mut o.metadata,
            Resource::NetworkPolicy(o) => &mut o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    fn to_yaml(&self) -> Result<String, serde_yaml_ng::Error> {
        match self {
            Resource::Secret(o) => serde_yaml_ng::to_string(o),
            Resource::ConfigMap(o) => serde_yaml_ng::to_string(o),
            Resource::PersistentVolumeClaim(o) => serde_yaml_ng::to_string(o),
            Resource::Service(o) => serde_yaml_ng::to_string(o),
            Resource::Deployment(o) => serde_yaml_ng::to_string(o),
            Resource::StatefulSet(o) => serde_yaml_ng::to_string(o),
            Resource::Job(o) => serde_yaml_ng::to_string(o),
            Resource::NetworkPolicy(o) => serde_yaml_ng::to_string(o),
        }
    }
}

/// An object and the comments that head it in the output.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub resource: Resource,
    /// Lines of explanation: how a setting was mapped, or what was not (each warning is one).
    pub notes: Vec<String>,
}

impl Object {
    fn new(resource: Resource) -> Object {
        Object { resource, notes: Vec::new() }
    }

    /// The object as one YAML document, its notes as `#` comments above it.
    pub fn to_yaml(&self) -> Result<String, ExportError> {
        let mut out = String::new();
        for note in &self.notes {
            for line in note.lines() {
                out.push_str("# ");
                out.push_str(line);
                out.push('\n');
            }
        }
        let body = self.resource.to_yaml().map_err(|source| ExportError::Yaml {
            kind: self.resource.kind(),
            name: self.resource.name().to_string(),
            source,
        })?;
        out.push_str(&body);
        Ok(out)
    }

    /// The file name this object is written to in a folder: numbered in apply order (Secrets
    /// and ConfigMaps before the pods that mount them), then kind and name.
    pub fn file_name(&self, index: usize) -> String {
        format!("{index:02}-{}-{}.yaml", self.resource.kind().to_ascii_lowercase(), self.resource.name())
    }
}

/// Something the app does that the manifests cannot: `node` names the app file's node
/// (`container "db" > ulimit "nofile"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub node: String,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.node, self.message)
    }
}

/// The manifests of one app.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// In apply order.
    pub objects: Vec<Object>,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot read {path} (`{node}`): {source}; the export puts its content into a ConfigMap, so it must be readable")]
    ReadFile {
        node: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {kind} {name} as YAML: {source}")]
    Yaml {
        kind: &'static str,
        name: String,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error("cannot write {path}: {source}; check that the folder exists and is writable")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Collects objects and warnings while an app is mapped.
struct Out {
    objects: Vec<Object>,
    warnings: Vec<Warning>,
}

impl Out {
    /// Records a warning and returns the comment line for the object it concerns.
    fn warn(&mut self, node: impl Into<String>, message: impl Into<String>) -> String {
        let w = Warning { node: node.into(), message: message.into() };
        let note = format!("warning: {w}");
        self.warnings.push(w);
        note
    }
}

/// Maps an app to Kubernetes objects. Reads the host files pre-boot files name (`file
/// from=`); never reads secret values.
pub fn export(app: &App, options: &Options) -> Result<Export, ExportError> {
    let mut out = Out { objects: Vec::new(), warnings: Vec::new() };
    let mut app_notes = Vec::new();
    for hook in &app.hooks {
        app_notes.push(out.warn(
            format!("on \"{}\"", hook.event),
            "app hooks run on the host; Kubernetes has no equivalent, so this one is not exported",
        ));
    }
    data::secrets(app, &mut out);
    let files = data::files(app, &mut out)?;
    network::services(app, options.publish_as, &mut out);
    workload::workloads(app, &files, &mut out);
    network::policies(app, &mut out);

    let labels = BTreeMap::from([
        (APP_LABEL.to_string(), app.name.clone()),
        (MANAGED_LABEL.to_string(), "tfctl".to_string()),
    ]);
    for o in &mut out.objects {
        let meta = o.resource.metadata_mut();
        meta.namespace = options.namespace.clone();
        let l = meta.labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in &labels {
            l.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(first) = out.objects.first_mut() {
        let mut notes = vec![format!("Exported by `tfctl export kubernetes` from app \"{}\" ({}).", app.name, app.file.display())];
        notes.append(&mut app_notes);
        notes.append(&mut first.notes);
        first.notes = notes;
    }
    Ok(Export { objects: out.objects, warnings: out.warnings })
}

impl Export {
    /// Every object as one multi-document YAML stream.
    pub fn to_stream(&self) -> Result<String, ExportError> {
        let mut out = String::new();
        for o in &self.objects {
            out.push_str("---\n");
            out.push_str(&o.to_yaml()?);
        }
        Ok(out)
    }

    /// Writes one file per object into `dir` (made when missing); returns the files written.
    pub fn write_dir(&self, dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
        std::fs::create_dir_all(dir).map_err(|source| ExportError::Write { path: dir.to_path_buf(), source })?;
        let mut written = Vec::new();
        for (i, o) in self.objects.iter().enumerate() {
            let path = dir.join(o.file_name(i + 1));
            std::fs::write(&path, o.to_yaml()?).map_err(|source| ExportError::Write { path: path.clone(), source })?;
            written.push(path);
        }
        Ok(written)
    }
}

/// Metadata with a name and the labels selecting one container's pods.
fn meta(name: &str, container: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        labels: container.map(|c| BTreeMap::from([(NAME_LABEL.to_string(), c.to_string())])),
        ..Default::default()
    }
}

/// The labels a container's pods carry (and its Service and policies select).
fn pod_labels(app: &App, container: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(APP_LABEL.to_string(), app.name.clone()), (NAME_LABEL.to_string(), container.to_string())])
}

/// A name derived from others, kept to a DNS label's 63 characters.
fn dns_name(parts: &[&str]) -> String {
    let mut s = parts.join("-");
    s.truncate(63);
    s.trim_end_matches('-').to_string()
}

/// Whole seconds for a duration, at least `min`, rounded up; and whether that changed it.
fn seconds(d: std::time::Duration, min: u64) -> (i64, bool) {
    let ms = d.as_millis();
    let s = (ms.div_ceil(1000) as u64).max(min);
    (i64::try_from(s).unwrap_or(i64::MAX), u128::from(s) * 1000 != ms)
}

#[cfg(test)]
mod tests;
