//! The state folder of one container (`<root>/<id>/`): its record (`state.json`), the plan it
//! was started with (`plan.json`, for `exec`), the start gate (`exec.fifo`) and the empty
//! folder its root is attached at (`rootfs`). `state` prints the runtime spec's state document.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{check_id, OciError};
use crate::state::identity::stat_of;

/// Where runc keeps its state by default, beside which tfctl keeps its own.
pub const DEFAULT_ROOT: &str = "/run/tfctl-oci";

/// A container's status as the runtime spec names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What `create` recorded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    /// The process's start time (field 22 of /proc/PID/stat): a reused pid is not ours.
    pub pid_start: u64,
    pub bundle: PathBuf,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The container's cgroup folders (one per v1 hierarchy, or the v2 one).
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
    /// RFC 3339, for `list`.
    #[serde(default)]
    pub created: String,
}

/// The runtime spec's state document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateDoc {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// The `--root` folder.
#[derive(Clone, Debug)]
pub struct Root(pub PathBuf);

impl Root {
    pub fn dir(&self, id: &str) -> Result<PathBuf, OciError> {
        check_id(id)?;
        Ok(self.0.join(id))
    }

    /// Makes the folder of a new container (0700: the plan holds its environment).
    pub fn make(&self, id: &str) -> Result<PathBuf, OciError> {
        let dir = self.dir(id)?;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.0).map_err(OciError::io("cannot make the state root", &self.0))?;
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(OciError::Exists(id.to_string())),
            Err(e) => Err(OciError::io("cannot make the state folder", &dir)(e)),
        }
    }

    pub fn load(&self, id: &str) -> Result<Container, OciError> {
        let dir = self.dir(id)?;
        let path = dir.join("state.json");
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(OciError::NotFound(id.to_string())),
            Err(e) => return Err(OciError::io("cannot read", &path)(e)),
        };
        let record = serde_json::from_slice(&text).map_err(|e| OciError::Record { path, message: e.to_string() })?;
        Ok(Container { dir, record })
    }

    /// The ids of every container in the root.
    pub fn ids(&self) -> Result<Vec<String>, OciError> {
        let entries = match std::fs::read_dir(&self.0) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(OciError::io("cannot read the state root", &self.0)(e)),
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().join("state.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// One container's folder and record.
#[derive(Debug)]
pub struct Container {
    pub dir: PathBuf,
    pub record: Record,
}

impl Container {
    pub fn fifo(&self) -> PathBuf {
        self.dir.join("exec.fifo")
    }

    /// Whether the recorded process still lives (a zombie does not: it has exited).
    pub fn alive(&self) -> bool {
        stat_of(self.record.pid).is_some_and(|(state, start)| start == self.record.pid_start && state != 'Z' && state != 'X')
    }

    pub fn status(&self) -> Status {
        if !self.alive() {
            Status::Stopped
        } else if self.frozen() {
            Status::Paused
        } else if self.fifo().exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    fn frozen(&self) -> bool {
        self.record.cgroups.iter().any(|d| {
            std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
                || std::fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
        })
    }

    pub fn doc(&self) -> StateDoc {
        let status = self.status();
        StateDoc {
            oci_version: self.record.oci_version.clone(),
            id: self.record.id.clone(),
            status,
            pid: if status == Status::Stopped { 0 } else { self.record.pid },
            bundle: self.record.bundle.clone(),
            annotations: self.record.annotations.clone(),
        }
    }

    /// Processes in the container's cgroups (every one of them, for `kill --all` and `ps`).
    pub fn pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self.record.cgroups.iter().flat_map(|d| crate::cgroup::read_pids(&procs_file(d)).unwrap_or_default()).collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

/// A cgroup folder's member list: `cgroup.procs` (v2 and v1 alike list processes there).
pub(crate) fn procs_file(dir: &Path) -> PathBuf {
    dir.join("cgroup.procs")
}

/// Writes `path` whole, replacing it atomically (a reader never sees half a record).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), OciError> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(OciError::io("cannot write", &tmp))?;
    f.write_all(data).map_err(OciError::io("cannot write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(OciError::io("cannot write", path))
}

/// `state ID`: the runtime spec's state document.
pub fn state(root: &Root, id: &str) -> Result<StateDoc, OciError> {
    Ok(root.load(id)?.doc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_alive_and_dated() {
        let me = std::process::id() as i32;
        let (state, start) = stat_of(me).unwrap();
        assert!(start > 0);
        // Alive: running or sleeping (the test harness's main thread waits), never a zombie.
        assert!(!matches!(state, 'Z' | 'X'), "{state}");
        assert!(stat_of(0).is_none());
    }

    #[test]
    fn the_state_document_uses_the_spec_names() {
        let doc = StateDoc { oci_version: "1.2.0".into(), id: "c1".into(), status: Status::Created, pid: 42, bundle: "/b".into(), annotations: HashMap::new() };
        let v: serde_json::Value = serde_json::to_value(&doc).unwrap();
        assert_eq!(v["ociVersion"], "1.2.0");
        assert_eq!(v["status"], "created");
        assert_eq!(v["pid"], 42);
        assert!(v.get("annotations").is_none());
    }
}
