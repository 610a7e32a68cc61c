//! `start ID`: releases a created container's process (one byte into its start gate).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use super::hooks::{self, Kind};
use super::plan::load_spec;
use super::state::{Root, Status};
use super::OciError;

pub fn start(root: &Root, id: &str) -> Result<(), OciError> {
    let c = root.load(id)?;
    let status = c.status();
    if status != Status::Created {
        return Err(OciError::WrongState { id: id.to_string(), status, what: "only a created container can be started" });
    }
    let spec = load_spec(&c.record.bundle)?;
    let doc = c.doc();
    hooks::run(Kind::StartContainer, &spec, &doc)?;
    let fifo = c.fifo();
    // Non-blocking: with no reader (the process died meanwhile) this fails instead of waiting.
    let mut gate = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(&fifo).map_err(OciError::io("cannot open the start FIFO", &fifo))?;
    // Removed before the byte goes: once the process may run, `state` says running.
    std::fs::remove_file(&fifo).map_err(OciError::io("cannot remove", &fifo))?;
    gate.write_all(&[0]).map_err(OciError::io("cannot write the start FIFO", &fifo))?;
    let mut doc = c.doc();
    doc.status = Status::Running;
    hooks::run_warning(Kind::Poststart, &spec, &doc);
    Ok(())
}
