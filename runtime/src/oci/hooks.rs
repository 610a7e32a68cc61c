//! The config's hooks, at the runtime spec's positions, each given the state document on
//! stdin and killed at its timeout. tfctl runs every hook in the runtime's namespaces (the
//! spec's createContainer and startContainer hooks run in the container's there).

use std::io::{Seek, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Spec};

use super::state::StateDoc;
use super::OciError;

/// A hook position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    fn of(self, spec: &Spec) -> Vec<Hook> {
        let Some(h) = spec.hooks().as_ref() else { return vec![] };
        #[allow(deprecated)]
        let list = match self {
            Kind::Prestart => h.prestart(),
            Kind::CreateRuntime => h.create_runtime(),
            Kind::CreateContainer => h.create_container(),
            Kind::StartContainer => h.start_container(),
            Kind::Poststart => h.poststart(),
            Kind::Poststop => h.poststop(),
        };
        list.clone().unwrap_or_default()
    }
}

/// A hook with no timeout of its own may run this long (a hung hook must not hang the shim).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the `kind` hooks in order; the first failure stops them and is returned.
pub fn run(kind: Kind, spec: &Spec, state: &StateDoc) -> Result<(), OciError> {
    let doc = serde_json::to_vec(state).unwrap_or_default();
    for hook in kind.of(spec) {
        run_one(kind, &hook, &doc)?;
    }
    Ok(())
}

/// Runs the `kind` hooks whose failure the spec says only to warn about (poststart, poststop).
pub fn run_warning(kind: Kind, spec: &Spec, state: &StateDoc) {
    let doc = serde_json::to_vec(state).unwrap_or_default();
    for hook in kind.of(spec) {
        if let Err(e) = run_one(kind, &hook, &doc) {
            tracing::warn!("{e}");
        }
    }
}

fn run_one(kind: Kind, hook: &Hook, doc: &[u8]) -> Result<(), OciError> {
    let path = hook.path().clone();
    let fail = |message: String| OciError::Hook { kind: kind.name(), path: path.clone(), message };
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(&path);
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().as_deref().unwrap_or_default() {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        cmd.env(k, v);
    }
    // The state comes from an unlinked file, not a pipe: a hook that exits without reading it
    // (`/bin/false`) must not kill tfctl with SIGPIPE mid-write, and nothing waits on its reading.
    let mut state = tempfile::tempfile().map_err(|e| fail(format!("cannot hold its state document: {e}")))?;
    state
        .write_all(doc)
        .and_then(|()| state.rewind())
        .map_err(|e| fail(format!("cannot hold its state document: {e}")))?;
    cmd.stdin(Stdio::from(state)).stdout(Stdio::null()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| fail(format!("cannot run it: {e}")))?;
    let timeout = hook.timeout().filter(|&t| t > 0).map_or(DEFAULT_TIMEOUT, |t| Duration::from_secs(t as u64));
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(fail(format!("failed ({status})"))),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("did not finish within its timeout of {} s; it was killed", timeout.as_secs())));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(fail(format!("cannot wait for it: {e}"))),
        }
    }
}
