//! `tfctl oci`: tfctl's runtime behind the OCI runtime command line, as runc spells it, so
//! containerd's shim (Docker's `--runtime`) drives it: a bundle's `config.json` becomes a
//! [`crate::spawn::StartPlan`] and the lifecycle verbs work on a state folder per container.
//!
//! The create/start split: `create` starts the process through the spawner with a start gate
//! (a FIFO in the state folder, `exec.fifo`): the child does every step of the start sequence
//! (namespaces, mounts, pivot_root, user, capabilities) and then blocks reading the FIFO before
//! seccomp and execve. The plan is `detached` (no parent-death signal), so when `create` exits
//! with its spawner the process lives on, reparented to the caller's child subreaper (the shim)
//! which then reaps it. `start` writes the one byte and removes the FIFO: a container whose
//! process lives and whose FIFO exists is `created`, one whose FIFO is gone is `running`.
//!
//! One file per verb; [`state`] holds the record every verb reads.

pub mod create;
pub mod delete;
pub mod exec;
pub mod features;
pub mod hooks;
pub mod kill;
pub mod list;
pub mod pause;
pub mod plan;
pub mod run;
pub mod start;
pub mod state;

use std::path::PathBuf;

pub use state::{Root, Status};

/// What can go wrong in an OCI verb, in the terms of the caller (a shim, or a user at a shell).
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("container id `{0}` is not valid: use letters, digits, `_`, `-` and `.`, starting with a letter or digit")]
    BadId(String),
    #[error("container `{0}` does not exist in this --root")]
    NotFound(String),
    #[error("container `{0}` already exists in this --root: delete it first or pick another id")]
    Exists(String),
    #[error("container `{id}` is {status}: {what}")]
    WrongState { id: String, status: Status, what: &'static str },
    #[error("bundle config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("config.json asks for {0}, which tfctl oci does not support")]
    Unsupported(String),
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("`{0}` is not a signal: give a name (TERM, SIGKILL) or a number")]
    BadSignal(String),
    #[error("{kind} hook {path}: {message}")]
    Hook { kind: &'static str, path: PathBuf, message: String },
    #[error("console socket {path}: {source}")]
    ConsoleSocket { path: PathBuf, source: std::io::Error },
    #[error("the container's process: {0}")]
    Start(#[from] crate::spawn::StartError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error(transparent)]
    Plan(#[from] crate::container::plan::PlanError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Caps(#[from] crate::capabilities::CapError),
    #[error("the state record {path} is damaged ({message}): `tfctl oci delete --force` removes it")]
    Record { path: PathBuf, message: String },
}

impl OciError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> OciError {
        let path = path.into();
        move |source| OciError::Io { what, path, source }
    }
}

/// runc's rule for ids: they name a folder under the root, so no `/`, no `..`.
pub fn check_id(id: &str) -> Result<(), OciError> {
    let ok = id.len() <= 1024
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(OciError::BadId(id.to_string()))
    }
}

/// A signal by name (`TERM`, `SIGTERM`, `sigterm`) or number.
pub fn parse_signal(s: &str) -> Result<i32, OciError> {
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) { Ok(n) } else { Err(OciError::BadSignal(s.to_string())) };
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse::<nix::sys::signal::Signal>().map(|s| s as i32).map_err(|_| OciError::BadSignal(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_path_component() {
        for good in ["a", "abc-1_2.3", "0f3c"] {
            assert!(check_id(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "-x", ".hidden", "a b"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("SIGKILL").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("sighup").unwrap(), libc::SIGHUP);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("NOPE").is_err());
    }
}
