//! `pause`/`resume` (the freezer: v1 `freezer.state`, v2 `cgroup.freeze`) and `ps`.

use super::state::{Root, Status};
use super::OciError;

pub fn pause(root: &Root, id: &str, frozen: bool) -> Result<(), OciError> {
    let c = root.load(id)?;
    let status = c.status();
    let ok = if frozen { status == Status::Running } else { status == Status::Paused };
    if !ok {
        return Err(OciError::WrongState { id: id.to_string(), status, what: if frozen { "only a running container can be paused" } else { "only a paused container can be resumed" } });
    }
    let mut done = false;
    for dir in &c.record.cgroups {
        let (v1, v2) = (dir.join("freezer.state"), dir.join("cgroup.freeze"));
        if v1.exists() {
            std::fs::write(&v1, if frozen { "FROZEN" } else { "THAWED" }).map_err(OciError::io("cannot write", &v1))?;
            done = true;
        } else if v2.exists() {
            std::fs::write(&v2, if frozen { "1" } else { "0" }).map_err(OciError::io("cannot write", &v2))?;
            done = true;
        }
    }
    if done {
        Ok(())
    } else {
        Err(OciError::Unsupported("pause without a freezer cgroup".into()))
    }
}

/// The pids in the container's cgroups.
pub fn ps(root: &Root, id: &str) -> Result<Vec<i32>, OciError> {
    Ok(root.load(id)?.pids())
}
