//! The control requests that concern a running app's model: `model` (the app as it runs, for
//! `run --app`), `plan` (what a new model would change) and `reconcile` (change it, reporting
//! progress on the connection until the app is ready or has failed), and their clients.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use serde_json::json;
use tokio::sync::Mutex;

use super::driver::HostDriver;
use super::reconcile::{self, Live, Request};
use crate::control::Connection;
use crate::secrets::SecretValue;
use crate::state::StateRoot;
use crate::supervise::{readiness, Readiness, Supervisor};

/// Whether `op` is one [`serve`] answers.
pub fn serves(op: &str) -> bool {
    matches!(op, "model" | "plan" | "reconcile")
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// The request's model: the resolved app file as KDL (variables already expanded by the
/// caller), loaded as the file it names.
fn request(req: &serde_json::Value) -> Result<Request, String> {
    let text = req["kdl"].as_str().ok_or("the request carries no model")?;
    let file = std::path::Path::new(req["file"].as_str().ok_or("the request names no app file")?);
    let (Some(dir), Some(name)) = (file.parent(), file.file_name().and_then(|n| n.to_str())) else {
        return Err(format!("{}: not a file path", file.display()));
    };
    let app = tfctl_schema::load_str(name, text, dir, &no_env).map_err(|d| d.render_plain(100))?;
    let mut env_secrets = HashMap::new();
    if let Some(map) = req["secrets"].as_object() {
        for (k, v) in map {
            let bytes = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default()).map_err(|e| format!("secret {k}: {e}"))?;
            env_secrets.insert(k.clone(), SecretValue::new(bytes));
        }
    }
    let names = |key: &str| req[key].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect();
    Ok(Request { app, env_secrets, run_added: names("run_added"), run_removed: names("run_removed") })
}

pub async fn serve(sup: &Supervisor<HostDriver>, live: &Arc<Mutex<Live>>, mut conn: Connection, req: &serde_json::Value) {
    let op = req["op"].as_str().unwrap_or_default();
    if op == "model" {
        let app = sup.app();
        let _ = conn.send(&json!({"ok": true, "kdl": tfctl_schema::to_kdl(&app), "file": app.file})).await;
        return;
    }
    let request = match request(req) {
        Ok(r) => r,
        Err(e) => {
            let _ = conn.send(&json!({"ok": false, "error": e})).await;
            return;
        }
    };
    // One reconcile at a time: the lock is held until the changes are made.
    let mut state = live.lock().await;
    let planned = match reconcile::plan(sup, &state, request, op == "reconcile") {
        Ok(p) => p,
        Err(e) => {
            let _ = conn.send(&json!({"ok": false, "error": e})).await;
            return;
        }
    };
    // A reconcile from `up` says whether its files were checked (`--trust-file`); one from
    // `run --app` changes no file and keeps what the app runs under.
    if let Some(trusted) = req["trusted_files"].as_bool().filter(|_| op == "reconcile") {
        state.record.trusted_files = trusted;
    }
    let reply = json!({"ok": true, "kind": "plan", "changes": planned.changes, "app_level": planned.app_level, "changed": planned.changes_anything()});
    if conn.send(&reply).await.is_err() || op == "plan" {
        return;
    }
    let starting = planned.starting();
    // What `tfctl events` says of it: each container that changed, and how.
    let summary: Vec<String> = planned
        .changes
        .iter()
        .filter(|c| c.action != tfctl_schema::diff::Action::Keep)
        .map(|c| format!("{} {}", c.container, c.action.as_str()))
        .chain(planned.app_level.iter().cloned())
        .collect();
    let mut events = sup.events();
    let applied = {
        let apply = reconcile::apply(sup, &mut state, planned);
        tokio::pin!(apply);
        loop {
            tokio::select! {
                done = &mut apply => break done,
                Ok(r) = events.recv() => {
                    let _ = conn.send(&json!({"kind": "report", "report": r})).await;
                }
            }
        }
    };
    drop(state);
    if applied.is_ok() {
        sup.driver().journal().reconciled(&summary.join(", "));
    }
    let msg = match &applied {
        Ok(()) => json!({"kind": "applied", "starting": starting}),
        Err(e) => json!({"kind": "failed", "container": "", "reason": format!("the reconcile failed: {e}")}),
    };
    if conn.send(&msg).await.is_err() || applied.is_err() {
        return;
    }
    // Then as a first `up` reports: events until the app is ready or a container failed.
    let mut status = sup.status();
    loop {
        let now = readiness(&sup.app(), &status.borrow_and_update());
        match now {
            Readiness::Ready => {
                let _ = conn.send(&json!({"kind": "ready"})).await;
                return;
            }
            Readiness::Failed { container, reason } => {
                let _ = conn.send(&json!({"kind": "failed", "container": container, "reason": reason})).await;
                return;
            }
            Readiness::Pending => {}
        }
        tokio::select! {
            changed = status.changed() => if changed.is_err() { return },
            Ok(r) = events.recv() => {
                if conn.send(&json!({"kind": "report", "report": r})).await.is_err() {
                    return;
                }
            }
        }
    }
}

pub use super::client::open;

/// Containers a reconcile adds or removes at run time (`run --app`).
#[derive(Debug, Default)]
pub struct RunTime<'a> {
    pub added: &'a [String],
    pub removed: &'a [String],
}

/// The message asking for a plan or a reconcile of `app` (resolved by the caller), with the
/// from-env secrets the caller took.
pub fn message(op: &str, app: &tfctl_schema::App, secrets: &HashMap<String, SecretValue>, run: RunTime<'_>) -> serde_json::Value {
    let secrets: serde_json::Map<String, serde_json::Value> =
        secrets.iter().map(|(k, v)| (k.clone(), base64::engine::general_purpose::STANDARD.encode(v.expose()).into())).collect();
    json!({"op": op, "kdl": tfctl_schema::to_kdl(app), "file": app.file, "secrets": secrets, "run_added": run.added, "run_removed": run.removed})
}

/// The app a live supervisor runs now, as its resolved KDL and file.
pub async fn request_model(root: &StateRoot, app: &str) -> Result<tfctl_schema::App, String> {
    let mut conn = open(root, app, &json!({"op": "model"})).await?;
    let reply: serde_json::Value = conn.recv().await.map_err(|e| e.to_string())?.ok_or("the supervisor closed the connection")?;
    if reply["ok"] != true {
        return Err(reply["error"].as_str().unwrap_or("failed").to_string());
    }
    request(&reply).map(|r| r.app)
}
