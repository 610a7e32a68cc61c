//! What most commands need besides their own arguments: the host config, the state root, pull
//! options, an async runtime.

use std::path::Path;

use tfctl_runtime::image::PullOptions;
use tfctl_runtime::state::StateRoot;
use tfctl_schema::model::HostConfig;

use crate::args::{GlobalOpts, RegistryArgs};
use crate::exit::{Exit, Failure};

/// The host config (tfctl-config(5)); the default when the file does not exist.
pub fn host_config(global: &GlobalOpts) -> Result<HostConfig, Failure> {
    if !global.config.exists() {
        return Ok(HostConfig::default());
    }
    tfctl_schema::load_config(&global.config, &tfctl_schema::process_env)
        .map_err(|d| crate::cmd::check::print_diagnostics(&d))
}

/// Opens (creating if needed) the state root.
pub fn state_root(global: &GlobalOpts) -> Result<StateRoot, Failure> {
    StateRoot::open(&global.root).map_err(|e| Failure::new(Exit::Failed, miette::Report::msg(e.to_string())))
}

/// Opens the state root only if it exists (for commands that only read).
pub fn existing_state_root(global: &GlobalOpts) -> Result<Option<StateRoot>, Failure> {
    StateRoot::open_existing(&global.root).map_err(|e| Failure::new(Exit::Failed, miette::Report::msg(e.to_string())))
}

/// Pull options from the host config and the command's `--insecure-registry` flags.
pub fn pull_options(global: &GlobalOpts, config: &HostConfig, registry: &RegistryArgs) -> PullOptions {
    let mut insecure = config.insecure_registries.clone();
    insecure.extend(registry.insecure_registry.iter().cloned());
    PullOptions {
        insecure_registries: insecure,
        config_dir: global.config.parent().map(Path::to_path_buf),
        max_layer_size: config.max_layer_size,
        max_image_size: config.max_image_size,
        ..PullOptions::default()
    }
}

/// A runtime for commands that do network or process work. Commands that start containers
/// fork their spawner before calling this: a process with threads must not fork one.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

/// An error from the runtime crate as a failure with exit 1 and its message.
pub fn failed(e: impl std::fmt::Display) -> Failure {
    Failure::msg(Exit::Failed, e.to_string())
}
