//! Reading a Compose project: each file parsed (anchors and `<<` merge keys applied), its
//! `include`s loaded first, its variables interpolated and its `extends` resolved, then the files
//! merged in order.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use crate::error::Error;
use crate::interpolate::{interpolate, Env};
use crate::merge::{merge_files, merge_service, strip_tags};

/// The Compose files of a folder, in the order Compose looks for them.
pub const DEFAULT_FILES: &[&str] = &["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"];
/// The override file Compose adds to a default file of the same spelling.
const OVERRIDES: &[&str] = &["compose.override.yaml", "compose.override.yml", "docker-compose.override.yml", "docker-compose.override.yaml"];

/// The files `docker compose` reads in `dir` when none is named: those of `COMPOSE_FILE`
/// (separated by `COMPOSE_PATH_SEPARATOR`, default `:`), else the first default file and its
/// override file, if any.
pub fn default_files(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<PathBuf>, Error> {
    if let Some(list) = env("COMPOSE_FILE").filter(|l| !l.is_empty()) {
        let sep = env("COMPOSE_PATH_SEPARATOR").filter(|s| !s.is_empty()).unwrap_or_else(|| ":".into());
        return Ok(list.split(sep.as_str()).filter(|f| !f.is_empty()).map(|f| dir.join(f)).collect());
    }
    let (i, first) = DEFAULT_FILES
        .iter()
        .enumerate()
        .map(|(i, f)| (i, dir.join(f)))
        .find(|(_, p)| p.is_file())
        .ok_or_else(|| Error::NoFile { dir: dir.to_path_buf() })?;
    let mut files = vec![first];
    let over = dir.join(OVERRIDES[i]);
    if over.is_file() {
        files.push(over);
    }
    Ok(files)
}

/// A loaded project: the merged model and where it came from.
pub struct Project {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub model: Mapping,
    /// Variables that were used but not set (they became empty strings).
    pub unset: BTreeSet<String>,
}

/// The schema's lexical normaliser: one answer for app files and Compose files.
pub use tfctl_schema::normalize_path as normalize;

fn absolute(p: &Path) -> PathBuf {
    normalize(&std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
}

pub fn load(files: &[PathBuf], env: &mut Env) -> Result<Project, Error> {
    let files: Vec<PathBuf> = files.iter().map(|f| absolute(f)).collect();
    let dir = files[0].parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
    env.load_dotenv(&dir)?;
    let mut unset = BTreeSet::new();
    let mut model = Mapping::new();
    for f in &files {
        let doc = load_file(f, env, &mut unset, &mut Vec::new())?;
        model = merge_files(model, doc);
    }
    let model = match strip_tags(Value::Mapping(model)) {
        Some(Value::Mapping(m)) => m,
        _ => Mapping::new(),
    };
    Ok(Project { dir, files, model, unset })
}

/// Parses one file into a mapping with its merge keys applied and its variables interpolated.
fn read(path: &Path, env: &Env, unset: &mut BTreeSet<String>) -> Result<Mapping, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
    let mut value: Value =
        serde_yaml_ng::from_str(&text).map_err(|source| Error::Yaml { path: path.to_path_buf(), source })?;
    value.apply_merge().map_err(|source| Error::Yaml { path: path.to_path_buf(), source })?;
    interpolate(&mut value, env, path, "", unset)?;
    match value {
        Value::Mapping(m) => Ok(m),
        Value::Null => Ok(Mapping::new()),
        _ => Err(Error::Invalid { path: path.to_path_buf(), message: "the top level must be a mapping (services:, volumes:, ...)".into() }),
    }
}

/// One file with its includes merged before it and its services' `extends` resolved.
fn load_file(path: &Path, env: &Env, unset: &mut BTreeSet<String>, seen: &mut Vec<PathBuf>) -> Result<Mapping, Error> {
    if seen.contains(&path.to_path_buf()) {
        return Err(Error::Invalid { path: path.to_path_buf(), message: "it includes itself".into() });
    }
    seen.push(path.to_path_buf());
    let mut doc = read(path, env, unset)?;
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut model = Mapping::new();
    if let Some(includes) = doc.remove("include") {
        let Value::Sequence(items) = includes else {
            return Err(Error::Invalid { path: path.to_path_buf(), message: "`include` is a list of files".into() });
        };
        for item in items {
            let paths: Vec<String> = match &item {
                Value::String(s) => vec![s.clone()],
                Value::Mapping(_) => match item.get("path") {
                    Some(Value::String(s)) => vec![s.clone()],
                    Some(Value::Sequence(list)) => list.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
                    _ => return Err(Error::Invalid { path: path.to_path_buf(), message: "an `include` entry needs `path`".into() }),
                },
                _ => return Err(Error::Invalid { path: path.to_path_buf(), message: "an `include` entry is a path or a mapping".into() }),
            };
            for p in paths {
                let inc = load_file(&normalize(&dir.join(p)), env, unset, seen)?;
                model = merge_files(model, inc);
            }
        }
    }
    resolve_extends(&mut doc, path, env, unset)?;
    seen.pop();
    Ok(merge_files(model, doc))
}

/// Replaces every service that `extends` another by the merge of the two.
fn resolve_extends(doc: &mut Mapping, path: &Path, env: &Env, unset: &mut BTreeSet<String>) -> Result<(), Error> {
    let Some(Value::Mapping(services)) = doc.get("services") else {
        return Ok(());
    };
    let services = services.clone();
    let mut resolved = Mapping::new();
    for (name, _) in &services {
        let name = name.as_str().unwrap_or_default();
        let svc = extended(&services, name, path, env, unset, &mut Vec::new())?;
        resolved.insert(Value::String(name.to_string()), svc);
    }
    doc.insert(Value::String("services".into()), Value::Mapping(resolved));
    Ok(())
}

fn extended(
    services: &Mapping,
    name: &str,
    path: &Path,
    env: &Env,
    unset: &mut BTreeSet<String>,
    stack: &mut Vec<(PathBuf, String)>,
) -> Result<Value, Error> {
    let err = |message: String| Error::Extends { path: path.to_path_buf(), service: name.to_string(), message };
    let svc = services.get(name).cloned().unwrap_or(Value::Mapping(Mapping::new()));
    let Some(ext) = svc.get("extends").cloned() else {
        return Ok(svc);
    };
    let (base_name, base_file) = match &ext {
        Value::String(s) => (s.clone(), None),
        Value::Mapping(_) => (
            ext.get("service").and_then(Value::as_str).ok_or_else(|| err("`service` is required".into()))?.to_string(),
            ext.get("file").and_then(Value::as_str).map(str::to_string),
        ),
        _ => return Err(err("write the service to extend, or {service: NAME, file: FILE}".into())),
    };
    let here = (path.to_path_buf(), name.to_string());
    if stack.contains(&here) {
        let chain: Vec<String> = stack.iter().map(|(_, s)| s.clone()).chain([name.to_string()]).collect();
        return Err(err(format!("a cycle: {}", chain.join(" → "))));
    }
    stack.push(here);
    let base = match base_file {
        None => {
            if !services.contains_key(base_name.as_str()) {
                return Err(err(format!("no service `{base_name}` in this file")));
            }
            extended(services, &base_name, path, env, unset, stack)?
        }
        Some(f) => {
            let dir = path.parent().unwrap_or(Path::new("/"));
            let other = normalize(&dir.join(&f));
            let doc = read(&other, env, unset)?;
            let Some(Value::Mapping(theirs)) = doc.get("services") else {
                return Err(err(format!("{f} has no services")));
            };
            if !theirs.contains_key(base_name.as_str()) {
                return Err(err(format!("no service `{base_name}` in {f}")));
            }
            let base = extended(theirs, &base_name, &other, env, unset, stack)?;
            rebase(base, other.parent().unwrap_or(Path::new("/")))
        }
    };
    stack.pop();
    let mut child = svc;
    if let Value::Mapping(m) = &mut child {
        m.remove("extends");
    }
    Ok(merge_service(base, child))
}

/// A service taken from another file keeps its relative paths meaning what they meant there:
/// they become absolute, from that file's folder.
fn rebase(mut svc: Value, dir: &Path) -> Value {
    let fix = |s: &str| -> String {
        if s.starts_with('.') {
            normalize(&dir.join(s)).display().to_string()
        } else {
            s.to_string()
        }
    };
    if let Some(v) = svc.get_mut("env_file") {
        match v {
            Value::String(s) => *s = fix(s),
            Value::Sequence(items) => {
                for i in items {
                    match i {
                        Value::String(s) => *s = fix(s),
                        Value::Mapping(_) => {
                            if let Some(Value::String(s)) = i.get_mut("path") {
                                *s = fix(s);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(Value::Sequence(vols)) = svc.get_mut("volumes") {
        for v in vols {
            match v {
                Value::String(s) if s.starts_with('.') => {
                    if let Some((src, rest)) = s.split_once(':') {
                        *s = format!("{}:{rest}", fix(src));
                    }
                }
                Value::Mapping(_) => {
                    if let Some(Value::String(s)) = v.get_mut("source") {
                        *s = fix(s);
                    }
                }
                _ => {}
            }
        }
    }
    svc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)], vars: &[(&str, &str)]) -> Result<Project, Error> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = move |n: &str| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let mut env = Env { env: &lookup, dotenv: Vec::new() };
        let paths: Vec<PathBuf> =
            files.iter().filter(|(n, _)| n.starts_with("compose")).map(|(n, _)| dir.path().join(n)).collect();
        load(&paths, &mut env)
    }

    fn svc<'a>(p: &'a Project, name: &str) -> &'a Value {
        &p.model["services"][name]
    }

    #[test]
    fn interpolation_with_defaults_dotenv_and_escapes() {
        let p = project(
            &[
                ("compose.yaml", "services:\n  web:\n    image: \"nginx:${TAG:-1.27}\"\n    command: echo $$HOME ${GREETING} ${MISSING}\n    environment:\n      FROM_DOTENV: ${DOT}\n"),
                (".env", "DOT=from-dotenv\nGREETING=dotenv-loses\n"),
            ],
            &[("GREETING", "hello")],
        )
        .unwrap();
        let web = svc(&p, "web");
        assert_eq!(web["image"], Value::String("nginx:1.27".into()));
        assert_eq!(web["command"], Value::String("echo $HOME hello ".into()));
        assert_eq!(web["environment"]["FROM_DOTENV"], Value::String("from-dotenv".into()));
        assert!(p.unset.contains("MISSING"), "an unset variable is reported: {:?}", p.unset);
    }

    #[test]
    fn required_variable_fails_with_its_message() {
        let err = project(&[("compose.yaml", "services:\n  web:\n    image: ${IMAGE:?set IMAGE to the web image}\n")], &[])
            .err()
            .expect("an unset required variable is an error");
        let text = err.to_string();
        assert!(text.contains("services.web.image") && text.contains("set IMAGE to the web image"), "{text}");
    }

    #[test]
    fn anchors_merge_keys_and_extensions() {
        let p = project(
            &[(
                "compose.yaml",
                "x-common: &common\n  restart: always\n  environment:\n    TZ: UTC\nservices:\n  a:\n    <<: *common\n    image: a\n  b:\n    <<: *common\n    image: b\n    restart: \"no\"\n",
            )],
            &[],
        )
        .unwrap();
        assert_eq!(svc(&p, "a")["restart"], Value::String("always".into()));
        assert_eq!(svc(&p, "a")["environment"]["TZ"], Value::String("UTC".into()));
        assert_eq!(svc(&p, "b")["restart"], Value::String("no".into()));
        assert!(svc(&p, "b").get("<<").is_none());
    }

    #[test]
    fn extends_in_the_same_file_and_another() {
        let p = project(
            &[
                (
                    "compose.yaml",
                    "services:\n  base:\n    image: busybox\n    environment: [A=1]\n  child:\n    extends: base\n    environment: [B=2]\n  remote:\n    extends: {file: common.yaml, service: shared}\n    command: [run]\n",
                ),
                ("common.yaml", "services:\n  shared:\n    image: shared:1\n    env_file: ./shared.env\n    command: [old]\n"),
            ],
            &[],
        )
        .unwrap();
        let child = svc(&p, "child");
        assert_eq!(child["image"], Value::String("busybox".into()));
        assert_eq!(child["environment"]["A"], Value::String("1".into()));
        assert_eq!(child["environment"]["B"], Value::String("2".into()));
        assert!(child.get("extends").is_none());
        let remote = svc(&p, "remote");
        assert_eq!(remote["image"], Value::String("shared:1".into()));
        assert_eq!(remote["command"], serde_yaml_ng::from_str::<Value>("[run]").unwrap());
        let env_file = remote["env_file"].as_str().unwrap();
        assert!(env_file.starts_with('/') && env_file.ends_with("/shared.env"), "rebased: {env_file}");
    }

    #[test]
    fn extends_cycle_is_an_error() {
        let err = project(&[("compose.yaml", "services:\n  a: {extends: b, image: x}\n  b: {extends: a}\n")], &[])
            .err()
            .expect("a cycle is an error");
        assert!(err.to_string().contains("cycle"), "{err}");
    }

    #[test]
    fn default_files_follow_compose_file_then_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let none = |_: &str| None;
        assert!(matches!(default_files(dir.path(), &none), Err(Error::NoFile { .. })));
        std::fs::write(dir.path().join("docker-compose.yml"), "services: {}").unwrap();
        std::fs::write(dir.path().join("docker-compose.override.yml"), "services: {}").unwrap();
        std::fs::write(dir.path().join("compose.override.yaml"), "services: {}").unwrap();
        let names = |files: Vec<PathBuf>| -> Vec<String> {
            files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect()
        };
        assert_eq!(names(default_files(dir.path(), &none).unwrap()), ["docker-compose.yml", "docker-compose.override.yml"]);
        let set = |n: &str| (n == "COMPOSE_FILE").then(|| "a.yaml:b.yaml".to_string());
        assert_eq!(names(default_files(dir.path(), &set).unwrap()), ["a.yaml", "b.yaml"]);
    }

    #[test]
    fn files_merge_in_order() {
        let p = project(
            &[
                ("compose.yaml", "services:\n  web:\n    image: web:1\n    ports: ['80:80']\n"),
                ("compose.prod.yaml", "services:\n  web:\n    image: web:2\n    ports: ['443:443']\n"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(svc(&p, "web")["image"], Value::String("web:2".into()));
        assert_eq!(svc(&p, "web")["ports"], serde_yaml_ng::from_str::<Value>("['80:80', '443:443']").unwrap());
    }
}
