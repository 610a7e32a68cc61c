//! A running app takes a new model: `up` of a running app, `plan`, and (with run_app.rs)
//! `run --app`. The supervisor does the work; these send it the resolved model and report.

use std::collections::HashMap;
use std::time::Duration;

use tfctl_runtime::app::record::{self, AppRecord};
use tfctl_runtime::app::serve_reconcile;
use tfctl_runtime::image::Store;
use tfctl_runtime::secrets::SecretValue;
use tfctl_runtime::state::files::Lock;
use tfctl_runtime::state::StateRoot;
use tfctl_schema::model::App;

use crate::args::{Format, GlobalOpts, PlanArgs, UpArgs};
use crate::context::{self, failed};
use crate::exit::{CmdResult, Exit, Failure};
use crate::output;

/// How long an `up` waits for another reconcile of the same app to end.
const RECONCILE_PATIENCE: Duration = Duration::from_secs(30);

/// The state root and record of `app` when its supervisor is alive.
pub(super) fn running(app: &str, global: &GlobalOpts) -> Result<Option<(StateRoot, AppRecord)>, Failure> {
    let Some(root) = context::existing_state_root(global)? else { return Ok(None) };
    let rec = record::load(&root, app).map_err(failed)?;
    Ok(rec.filter(|r| r.supervisor.as_ref().is_some_and(|s| s.is_alive())).map(|r| (root, r)))
}

/// Reconciles are serialised per app: this waits up to 30 s for another one to end, then fails
/// naming its holder.
pub(super) fn reconcile_lock(root: &StateRoot, app: &str, what: &str) -> Result<Lock, Failure> {
    let path = record::app_dir(root, app).join("reconcile.lock");
    match Lock::exclusive_within(&path, RECONCILE_PATIENCE).map_err(failed)? {
        Ok(lock) => {
            let _ = lock.note(&format!("tfctl pid {} ({what})", std::process::id()));
            Ok(lock)
        }
        Err(holder) => {
            let holder = if holder.is_empty() { "another tfctl".to_string() } else { holder };
            Err(Failure::msg(
                Exit::Failed,
                format!("app {app} is being changed by {holder}; waited {}s for it: try again once it is done", RECONCILE_PATIENCE.as_secs()),
            ))
        }
    }
}

/// The supervisor's replies to `msg` as a channel, read on a thread of their own (`None` once
/// the connection closes).
pub(super) fn messages(root: &StateRoot, app: &str, msg: serde_json::Value) -> Result<std::sync::mpsc::Receiver<Option<serde_json::Value>>, Failure> {
    let rt = context::runtime();
    let mut conn = rt.block_on(serve_reconcile::open(root, app, &msg)).map_err(|e| Failure::msg(Exit::Failed, e))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        rt.block_on(async move {
            while let Ok(Some(v)) = conn.recv::<serde_json::Value>().await {
                if tx.send(Some(v)).is_err() {
                    return;
                }
            }
            let _ = tx.send(None);
        })
    });
    Ok(rx)
}

/// `up` of a running app: its supervisor reconciles to the file, and `up` reports as a first
/// `up` does (`-d`: the changed containers started; `--wait`: the app ready).
pub(super) fn up_running(app: App, args: &UpArgs, wait: Option<Duration>, global: &GlobalOpts, (root, rec): (StateRoot, AppRecord)) -> CmdResult {
    if rec.app_file != app.file && !args.replace {
        return Err(Failure::msg(
            Exit::Usage,
            format!(
                "app {} runs from {}, not {}: pass --replace to run this file in its place, or --name to run it beside",
                app.name,
                rec.app_file.display(),
                app.file.display()
            ),
        ));
    }
    if args.exit_code_from.is_some() || args.abort_on_failure {
        return Err(Failure::msg(Exit::Usage, format!("app {} is already up: --exit-code-from and --abort-on-failure need a first, foreground `up`", app.name)));
    }
    let _lock = reconcile_lock(&root, &app.name, "up")?;
    let config = context::host_config(global)?;
    let mut app = app;
    app.apply_host_defaults(&config);
    let store = Store::open(root.path()).map_err(failed)?;
    super::up::images(&app, &store, global, &config, &args.registry, args.pull)?;
    let secrets = tfctl_runtime::secrets::from_env::take(&app.secrets).map_err(|e| Failure::msg(Exit::Failed, e.to_string()))?;
    let mut msg = serve_reconcile::message("reconcile", &app, &secrets, Default::default());
    msg["trusted_files"] = args.trust_file.into();
    let rx = messages(&root, &app.name, msg)?;
    super::up::report_until(rx, &app.name, Vec::new(), wait, global)
}

/// One line per container that changes: `~ web  recreate  image digest changed (...)`.
pub(super) fn change_lines(plan: &serde_json::Value, with_kept: bool) -> Vec<String> {
    let mut out = Vec::new();
    for c in plan["changes"].as_array().into_iter().flatten() {
        let action = c["action"].as_str().unwrap_or("");
        let sign = match action {
            "create" => "+",
            "remove" => "-",
            "keep" if !with_kept => continue,
            "keep" => " ",
            _ => "~",
        };
        let reasons: Vec<&str> = c["reasons"].as_array().into_iter().flatten().filter_map(|r| r.as_str()).collect();
        out.push(format!("{sign} {:<20} {:<9} {}", c["container"].as_str().unwrap_or(""), action, reasons.join("; ")));
    }
    for r in plan["app_level"].as_array().into_iter().flatten() {
        out.push(format!("~ {:<20} {:<9} {}", "(app)", "update", r.as_str().unwrap_or("")));
    }
    out
}

/// `tfctl plan FILE`: what `up` would change, per container with the reason.
pub fn plan(args: PlanArgs, global: &GlobalOpts) -> CmdResult {
    let app = super::up::load_named(&args.file, args.name.as_deref())?;
    let (plan, note) = match running(&app.name, global)? {
        None => {
            let changes: Vec<serde_json::Value> = app
                .containers
                .iter()
                .map(|c| serde_json::json!({"container": c.name, "action": "create", "reasons": ["the app is not up"]}))
                .collect();
            (serde_json::json!({"changes": changes, "app_level": [], "changed": !changes.is_empty()}), None)
        }
        Some((root, rec)) => {
            let note = (rec.app_file != app.file).then(|| format!("app {} runs from {}: `up` of this file needs --replace", app.name, rec.app_file.display()));
            let config = context::host_config(global)?;
            let mut app = app.clone();
            app.apply_host_defaults(&config);
            let store = Store::open(root.path()).map_err(failed)?;
            if args.pull != crate::args::PullPolicy::Never {
                super::up::images(&app, &store, global, &config, &args.registry, args.pull)?;
            }
            let secrets = env_secrets_if_set(&app);
            let rx = messages(&root, &app.name, serve_reconcile::message("plan", &app, &secrets, Default::default()))?;
            let reply = rx.recv().ok().flatten().ok_or_else(|| Failure::msg(Exit::Failed, format!("the supervisor of {} did not answer", app.name)))?;
            if reply["ok"] != true {
                return Err(Failure::msg(Exit::Failed, format!("app {}: {}", app.name, reply["error"].as_str().unwrap_or("the plan failed"))));
            }
            (reply, note)
        }
    };
    let changed = plan["changed"] == true;
    match global.format {
        Format::Json => output::print_json(&serde_json::json!({
            "app": app.name,
            "changes": plan["changes"],
            "app_level": plan["app_level"],
            "changed": changed,
            "note": note,
        })),
        Format::Text => {
            if let Some(n) = &note {
                eprintln!("note: {n}");
            }
            if changed {
                for l in change_lines(&plan, true) {
                    println!("{l}");
                }
            } else if !global.quiet {
                eprintln!("app {}: no change", app.name);
            }
        }
    }
    if changed && args.detailed_exitcode {
        return Err(Failure::silent(Exit::Changes));
    }
    Ok(())
}

/// The from-env secrets whose variables are set: a plan compares them; unset ones keep the
/// value in use.
fn env_secrets_if_set(app: &App) -> HashMap<String, SecretValue> {
    app.secrets
        .iter()
        .filter_map(|d| match &d.source {
            tfctl_schema::model::SecretSource::FromEnv(var) => {
                std::env::var_os(var).map(|v| (d.name.clone(), SecretValue::new(std::os::unix::ffi::OsStringExt::into_vec(v))))
            }
            _ => None,
        })
        .collect()
}
