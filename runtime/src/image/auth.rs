//! Registry credentials as Docker and podman keep them: `auths` entries in auth files
//! (`$REGISTRY_AUTH_FILE`, `~/.docker/config.json`), and `credHelpers`/`credsStore` through the
//! docker-credential-* protocol. Credentials never appear in Debug output, logs or errors.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tfctl_schema::reference::normalize_registry;

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read auth file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("auth file {path} has an invalid entry for {registry}: {reason}; run `tfctl login {registry}` again")]
    BadEntry { path: PathBuf, registry: String, reason: String },
    #[error("credentials for {registry} are kept by the credential helper docker-credential-{helper} ({path}), which is not installed or failed: {reason}; install it, or remove the helper entry and run `tfctl login {registry}`")]
    Helper { registry: String, helper: String, path: PathBuf, reason: String },
    #[error("cannot write auth file {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("invalid registry name {0:?}: write HOST or HOST:PORT")]
    Registry(String),
}

/// `$REGISTRY_AUTH_FILE` when set, then `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
pub fn default_auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        files.push(PathBuf::from(d).join("config.json"));
    } else if let Some(h) = std::env::var_os("HOME") {
        files.push(PathBuf::from(h).join(".docker/config.json"));
    }
    files
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    creds_store: Option<String>,
    /// Everything else Docker keeps in config.json, preserved on login/logout.
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

fn read_file(path: &Path) -> Result<Option<AuthFile>, AuthError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| AuthError::Read { path: path.into(), reason: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuthError::Read { path: path.into(), reason: e.to_string() }),
    }
}

/// The key of an `auths` entry as a registry name (`https://index.docker.io/v1/` is Docker Hub).
fn key_registry(key: &str) -> Option<String> {
    let k = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = k.split('/').next().unwrap_or(k);
    normalize_registry(host).ok()
}

/// Credentials for `registry` from the first file that knows it, with that file's path.
pub fn credentials_for(registry: &str, files: &[PathBuf]) -> Result<Option<(Credentials, String)>, AuthError> {
    for path in files {
        let Some(file) = read_file(path)? else { continue };
        if let Some((_, helper)) = file.cred_helpers.iter().find(|(k, _)| key_registry(k).as_deref() == Some(registry)) {
            return run_helper(helper, registry, path).map(|c| c.map(|c| (c, format!("docker-credential-{helper}"))));
        }
        if let Some((key, entry)) = file.auths.iter().find(|(k, _)| key_registry(k).as_deref() == Some(registry)) {
            let bad = |reason: &str| AuthError::BadEntry { path: path.clone(), registry: registry.into(), reason: reason.into() };
            let creds = match (&entry.auth, &entry.username, &entry.password) {
                (Some(a), _, _) if !a.is_empty() => {
                    let raw = base64::engine::general_purpose::STANDARD.decode(a.trim()).map_err(|_| bad("\"auth\" is not base64"))?;
                    let s = String::from_utf8(raw).map_err(|_| bad("\"auth\" is not UTF-8"))?;
                    let (u, p) = s.split_once(':').ok_or_else(|| bad("\"auth\" is not USER:PASSWORD"))?;
                    Credentials { username: u.into(), password: p.into() }
                }
                (_, Some(u), Some(p)) => Credentials { username: u.clone(), password: p.clone() },
                _ => continue, // An entry without credentials (e.g. only an identity token) is skipped.
            };
            let _ = key;
            return Ok(Some((creds, path.display().to_string())));
        }
        if let Some(store) = &file.creds_store {
            if let Some(c) = run_helper(store, registry, path)? {
                return Ok(Some((c, format!("docker-credential-{store}"))));
            }
        }
    }
    Ok(None)
}

/// `docker-credential-HELPER get`: the server on stdin, `{"Username","Secret"}` on stdout.
fn run_helper(helper: &str, registry: &str, path: &Path) -> Result<Option<Credentials>, AuthError> {
    let fail = |reason: String| AuthError::Helper { registry: registry.into(), helper: helper.into(), path: path.into(), reason };
    if helper.is_empty() || helper.contains('/') {
        return Err(fail("invalid helper name".into()));
    }
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let server = if registry == "docker.io" { "https://index.docker.io/v1/" } else { registry };
    child.stdin.take().expect("piped").write_all(server.as_bytes()).map_err(|e| fail(e.to_string()))?;
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    // The helper's output may hold the secret: only its exit status goes into errors.
    if !out.status.success() {
        if String::from_utf8_lossy(&out.stdout).contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!("it exited with {}", out.status)));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Reply {
        username: String,
        secret: String,
    }
    let r: Reply = serde_json::from_slice(&out.stdout).map_err(|_| fail("its reply is not {\"Username\",\"Secret\"} JSON".into()))?;
    Ok(Some(Credentials { username: r.username, password: r.secret }))
}

fn write_file(path: &Path, file: &AuthFile) -> Result<(), AuthError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let werr = |e: std::io::Error| AuthError::Write { path: path.into(), reason: e.to_string() };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(werr)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let bytes = serde_json::to_vec_pretty(file).expect("auth file serialises");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(werr)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(werr)?;
    f.write_all(&bytes).map_err(werr)?;
    f.sync_all().map_err(werr)?;
    std::fs::rename(&tmp, path).map_err(werr)
}

/// Stores credentials for `registry` in `auth_file` (mode 0600), keeping its other content.
pub fn login(registry: &str, creds: &Credentials, auth_file: &Path) -> Result<(), AuthError> {
    let registry = normalize_registry(registry).map_err(|_| AuthError::Registry(registry.into()))?;
    let mut file = read_file(auth_file)?.unwrap_or_default();
    file.auths.retain(|k, _| key_registry(k).as_deref() != Some(registry.as_str()));
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", creds.username, creds.password));
    let key = if registry == "docker.io" { "https://index.docker.io/v1/".to_string() } else { registry };
    file.auths.insert(key, AuthEntry { auth: Some(token), ..Default::default() });
    write_file(auth_file, &file)
}

/// Removes the credentials for `registry`; returns whether there were any.
pub fn logout(registry: &str, auth_file: &Path) -> Result<bool, AuthError> {
    let registry = normalize_registry(registry).map_err(|_| AuthError::Registry(registry.into()))?;
    let Some(mut file) = read_file(auth_file)? else { return Ok(false) };
    let before = file.auths.len();
    file.auths.retain(|k, _| key_registry(k).as_deref() != Some(registry.as_str()));
    let removed = file.auths.len() != before;
    if removed {
        write_file(auth_file, &file)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn login_lookup_logout_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("auth.json");
        std::fs::write(&f, r#"{"auths":{},"HttpHeaders":{"X":"y"}}"#).unwrap();
        let c = Credentials { username: "u".into(), password: "p:w".into() };
        login("LOCALHOST:5000", &c, &f).unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        let (got, src) = credentials_for("localhost:5000", std::slice::from_ref(&f)).unwrap().unwrap();
        assert_eq!(got, c);
        assert_eq!(src, f.display().to_string());
        assert!(std::fs::read_to_string(&f).unwrap().contains("HttpHeaders"));
        assert!(!format!("{got:?}").contains("p:w"));
        assert!(credentials_for("other:1", std::slice::from_ref(&f)).unwrap().is_none());
        assert!(logout("localhost:5000", &f).unwrap());
        assert!(credentials_for("localhost:5000", &[f]).unwrap().is_none());
    }

    #[test]
    fn docker_hub_keys_and_missing_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("hub:secret");
        std::fs::write(&f, format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}}}},"credHelpers":{{"reg.example":"tfctl-test-missing"}}}}"#)).unwrap();
        assert_eq!(credentials_for("docker.io", std::slice::from_ref(&f)).unwrap().unwrap().0.username, "hub");
        let err = credentials_for("reg.example", &[f]).unwrap_err().to_string();
        assert!(err.contains("reg.example") && err.contains("docker-credential-tfctl-test-missing"), "{err}");
    }
}
