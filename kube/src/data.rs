//! Secrets and pre-boot files: a Secret per app secret, to be filled (tfctl never writes a
//! secret's value anywhere, and a generated one is derived from this host's key, which a
//! cluster does not have); a ConfigMap per container for its files, with their modes; a Secret
//! for the templates that hold a secret.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, EnvVar, EnvVarSource, KeyToPath, Secret, SecretKeySelector, SecretVolumeSource, Volume,
    VolumeMount,
};
use k8s_openapi::ByteString;
use tfctl_schema::model::{App, Container, FileContent, SecretSource, SecretTarget};

use crate::{dns_name, meta, ExportError, Object, Out, Resource};

/// The key of the value in each app secret's Secret.
pub const SECRET_KEY: &str = "value";
/// What a ConfigMap may hold (etcd's object limit).
const CONFIG_MAP_MAX: usize = 1 << 20;

/// What a container's pod gets from this module: volumes, their mounts, and environment
/// variables from secrets.
#[derive(Debug, Default)]
pub struct PodFiles {
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
    pub env: Vec<EnvVar>,
    pub notes: Vec<String>,
}

/// One Secret per app secret, its value left empty to be filled.
pub fn secrets(app: &App, out: &mut Out) {
    for s in &app.secrets {
        let (source, fill) = match &s.source {
            SecretSource::FromFile(p) => (
                format!("from-file={}", p.display()),
                format!("kubectl create secret generic {} --from-file={SECRET_KEY}={}", s.name, p.display()),
            ),
            SecretSource::FromEnv(v) => (
                format!("from-env={v}"),
                format!("kubectl create secret generic {} --from-literal={SECRET_KEY}=\"${v}\"", s.name),
            ),
            SecretSource::Generate(n) => (
                format!("generate={n}"),
                format!(
                    "kubectl create secret generic {} --from-literal={SECRET_KEY}=\"$(tr -dc A-Za-z0-9 </dev/urandom | head -c {n})\"",
                    s.name
                ),
            ),
        };
        let why = match &s.source {
            SecretSource::Generate(_) => "tfctl derives it from this host's key, which the cluster does not have",
            _ => "tfctl reads it when the app starts and never writes it out",
        };
        let note = out.warn(
            format!("secret \"{}\"", s.name),
            format!("exported empty ({why}): fill it before the pods start, e.g. `{fill}` (with --dry-run=client -o yaml to get a manifest)"),
        );
        let mut m = meta(&s.name, None);
        m.annotations = Some(BTreeMap::from([("tfctl/source".to_string(), source)]));
        let secret = Secret {
            metadata: m,
            type_: Some("Opaque".into()),
            string_data: Some(BTreeMap::from([(SECRET_KEY.to_string(), String::new())])),
            ..Default::default()
        };
        let mut o = Object::new(Resource::Secret(secret));
        o.notes.push(note);
        out.objects.push(o);
    }
}

/// Each container's pre-boot files (a ConfigMap, and a Secret for templates holding secrets)
/// and secret uses, as volumes and mounts for its pod.
pub fn files(app: &App, out: &mut Out) -> Result<BTreeMap<String, PodFiles>, ExportError> {
    let mut all = BTreeMap::new();
    for c in &app.containers {
        let mut pod = PodFiles::default();
        pre_boot_files(app, c, &mut pod, out)?;
        secret_uses(c, &mut pod, out);
        all.insert(c.name.clone(), pod);
    }
    Ok(all)
}

fn pre_boot_files(app: &App, c: &Container, pod: &mut PodFiles, out: &mut Out) -> Result<(), ExportError> {
    if c.files.is_empty() {
        return Ok(());
    }
    let cm_name = dns_name(&[&c.name, "files"]);
    let secret_name = dns_name(&[&c.name, "templates"]);
    let mut text = BTreeMap::new();
    let mut binary = BTreeMap::new();
    let mut templates = BTreeMap::new();
    let (mut cm_items, mut secret_items) = (Vec::new(), Vec::new());
    let mut cm_notes = Vec::new();
    let mut size = 0;
    let mut keys = Keys::default();
    for f in &c.files {
        let node = format!("container \"{}\" > file \"{}\"", c.name, f.path);
        let bytes = match &f.content {
            FileContent::Inline(s) => s.clone().into_bytes(),
            FileContent::From(p) => std::fs::read(p).map_err(|source| ExportError::ReadFile { node: node.clone(), path: p.clone(), source })?,
        };
        size += bytes.len();
        let key = keys.key(&f.path);
        if let Some(owner) = f.owner {
            cm_notes.push(out.warn(
                &node,
                format!("owner {}:{} is not exported: Kubernetes mounts files as root's (a pod's fsGroup can give them a group)", owner.uid, owner.gid),
            ));
        }
        let item = KeyToPath { key: key.clone(), path: key.clone(), mode: Some(f.mode as i32), ..Default::default() };
        let mount = VolumeMount { mount_path: f.path.clone(), sub_path: Some(key.clone()), read_only: Some(true), ..Default::default() };
        match (f.template, String::from_utf8(bytes)) {
            (true, Ok(t)) => {
                let (rendered, secrets) = render(&t);
                if secrets.is_empty() {
                    text.insert(key, rendered);
                    cm_items.push(item);
                    pod.mounts.push(VolumeMount { name: cm_name.clone(), ..mount });
                } else {
                    pod.notes.push(out.warn(
                        &node,
                        format!(
                            "a template with {} is not rendered in Kubernetes: it is exported as Secret {secret_name} with the placeholders left in; fill in the values before the pods start",
                            secrets.iter().map(|s| format!("{{{{ secret.{s} }}}}")).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                    templates.insert(key, rendered);
                    secret_items.push(item);
                    pod.mounts.push(VolumeMount { name: secret_name.clone(), ..mount });
                }
            }
            (_, Ok(t)) => {
                text.insert(key, t);
                cm_items.push(item);
                pod.mounts.push(VolumeMount { name: cm_name.clone(), ..mount });
            }
            (_, Err(e)) => {
                binary.insert(key, ByteString(e.into_bytes()));
                cm_items.push(item);
                pod.mounts.push(VolumeMount { name: cm_name.clone(), ..mount });
            }
        }
    }
    if size > CONFIG_MAP_MAX {
        cm_notes.push(out.warn(
            format!("container \"{}\"", c.name),
            format!("its files hold {size} bytes; Kubernetes refuses a ConfigMap over 1 MiB: put large files into the image or a volume"),
        ));
    }
    if !cm_items.is_empty() {
        let cm = ConfigMap {
            metadata: meta(&cm_name, Some(&c.name)),
            data: (!text.is_empty()).then_some(text),
            binary_data: (!binary.is_empty()).then_some(binary),
            ..Default::default()
        };
        let mut o = Object::new(Resource::ConfigMap(cm));
        o.notes = cm_notes;
        o.notes.push(format!(
            "The pre-boot files of container \"{}\" (app \"{}\"), each mounted at its path with its mode.",
            c.name, app.name
        ));
        out.objects.push(o);
        pod.volumes.push(Volume {
            name: cm_name.clone(),
            config_map: Some(ConfigMapVolumeSource { name: cm_name, items: Some(cm_items), ..Default::default() }),
            ..Default::default()
        });
    } else {
        pod.notes.extend(cm_notes);
    }
    if !secret_items.is_empty() {
        let s = Secret {
            metadata: meta(&secret_name, Some(&c.name)),
            type_: Some("Opaque".into()),
            string_data: Some(templates),
            ..Default::default()
        };
        let mut o = Object::new(Resource::Secret(s));
        o.notes.push(format!("Templates of container \"{}\" that hold secrets: replace each {{{{ secret.NAME }}}} with its value.", c.name));
        out.objects.push(o);
        pod.volumes.push(Volume {
            name: secret_name.clone(),
            secret: Some(SecretVolumeSource { secret_name: Some(secret_name), items: Some(secret_items), ..Default::default() }),
            ..Default::default()
        });
    }
    Ok(())
}

fn secret_uses(c: &Container, pod: &mut PodFiles, out: &mut Out) {
    for u in &c.secrets {
        match &u.target {
            SecretTarget::Env(var) => pod.env.push(EnvVar {
                name: var.clone(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector { name: u.name.clone(), key: SECRET_KEY.into(), optional: None }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            SecretTarget::File { path, mode, owner } => {
                let node = format!("container \"{}\" > secret \"{}\"", c.name, u.name);
                match owner {
                    Some(o) => pod.notes.push(out.warn(
                        &node,
                        format!("owner {}:{} is not exported: Kubernetes mounts secret files as root's (a pod's fsGroup can give them a group)", o.uid, o.gid),
                    )),
                    // tfctl hands a secret file to the container's user; Kubernetes keeps it
                    // root's, so a mode without read for group and others locks a non-root
                    // process out.
                    None if mode & 0o044 == 0 && !runs_as_root(c) => pod.notes.push(out.warn(
                        &node,
                        format!(
                            "{path} is the container user's in tfctl but root's in Kubernetes (mode {mode:04o}): if the process is not root, set the pod's fsGroup and a group-readable mode"
                        ),
                    )),
                    None => {}
                }
                let volume = dns_name(&["secret", &u.name]);
                pod.volumes.push(Volume {
                    name: volume.clone(),
                    secret: Some(SecretVolumeSource {
                        secret_name: Some(u.name.clone()),
                        items: Some(vec![KeyToPath { key: SECRET_KEY.into(), path: SECRET_KEY.into(), mode: Some(*mode as i32), ..Default::default() }]),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                pod.mounts.push(VolumeMount {
                    name: volume,
                    mount_path: path.clone(),
                    sub_path: Some(SECRET_KEY.into()),
                    read_only: Some(true),
                    ..Default::default()
                });
            }
        }
    }
}

/// Whether the app file says the container runs as root.
fn runs_as_root(c: &Container) -> bool {
    c.user.as_deref().is_some_and(|u| matches!(u.split(':').next(), Some("0" | "root")))
}

/// ConfigMap keys from file paths (`/etc/nginx/conf.d/x.conf` is `etc_nginx_conf.d_x.conf`),
/// made unique.
#[derive(Default)]
struct Keys(std::collections::BTreeSet<String>);

impl Keys {
    fn key(&mut self, path: &str) -> String {
        let base: String = path
            .trim_start_matches('/')
            .chars()
            .map(|ch| if ch.is_ascii_alphanumeric() || "-._".contains(ch) { ch } else { '_' })
            .collect();
        let base = if base.is_empty() || base.chars().all(|c| c == '.') { "file".to_string() } else { base };
        let mut key = base.clone();
        let mut n = 2;
        while !self.0.insert(key.clone()) {
            key = format!("{base}-{n}");
            n += 1;
        }
        key
    }
}

/// Renders what a cluster can know of a template: `{{ ip.NAME }}` and `{{ name.NAME }}` become
/// the name NAME's Service answers to; `{{ secret.NAME }}` stays, and its names are returned.
pub(crate) fn render(text: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut secrets = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else { break };
        let inner = rest[start + 2..start + len].trim();
        out.push_str(&rest[..start]);
        match inner.split_once('.') {
            Some(("ip" | "name", name)) => out.push_str(name),
            Some(("secret", name)) => {
                secrets.push(name.to_string());
                out.push_str(&rest[start..start + len + 2]);
            }
            _ => out.push_str(&rest[start..start + len + 2]),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    (out, secrets)
}
