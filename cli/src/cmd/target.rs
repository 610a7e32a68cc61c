//! Naming a container on the command line: `APP/CONTAINER`, a bare `CONTAINER` with `--file`,
//! or a bare name that names exactly one container under the state root.

use std::path::Path;

use tfctl_runtime::app::{one_off, record};
use tfctl_runtime::state::StateRoot;

use crate::exit::{Exit, Failure};

pub struct Target {
    pub app: String,
    pub container: Option<String>,
}

fn usage(msg: String) -> Failure {
    Failure::msg(Exit::Usage, msg)
}

/// Resolves `target`. With `need_container`, a bare app name is refused.
pub fn resolve(root: &StateRoot, target: &str, file: Option<&Path>, need_container: bool) -> Result<Target, Failure> {
    if let Some((app, container)) = target.split_once('/') {
        return Ok(Target { app: app.to_string(), container: Some(container.to_string()) });
    }
    if let Some(file) = file {
        let app = crate::cmd::check::load_app(file)?;
        if app.container(target).is_none() {
            let names: Vec<&str> = app.containers.iter().map(|c| c.name.as_str()).collect();
            return Err(usage(format!("app {} has no container {target}; its containers: {}", app.name, names.join(", "))));
        }
        return Ok(Target { app: app.name, container: Some(target.to_string()) });
    }
    // A container of `tfctl run` in the foreground is an app of one, named after it.
    if one_off::exists(root, target) {
        return Ok(Target { app: target.to_string(), container: Some(target.to_string()) });
    }
    let records = record::all(root);
    if !need_container && records.iter().any(|r| r.name == target) {
        return Ok(Target { app: target.to_string(), container: None });
    }
    let candidates: Vec<String> = records
        .iter()
        .filter(|r| r.net.as_ref().is_some_and(|n| n.containers.contains_key(target)))
        .map(|r| r.name.clone())
        .collect();
    match candidates.as_slice() {
        [app] => Ok(Target { app: app.clone(), container: Some(target.to_string()) }),
        [] => Err(usage(format!("no app or container named {target}: see `tfctl ps`"))),
        many => Err(usage(format!(
            "{target} names a container in several apps: {}; write APP/CONTAINER",
            many.iter().map(|a| format!("{a}/{target}")).collect::<Vec<_>>().join(", ")
        ))),
    }
}
