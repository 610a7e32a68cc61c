//! `run`: create, start and wait in one, then delete; exits with the process's status. The
//! process has no start gate and stays the spawner's child, so its exit is heard here.

use super::create::{launch, CreateOpts};
use super::hooks::{self, Kind};
use super::state::{Root, Status};
use super::OciError;
use crate::spawn::Spawner;

pub fn run(root: &Root, id: &str, opts: &CreateOpts, spawner: &Spawner) -> Result<i32, OciError> {
    let launched = launch(root, id, opts, spawner, false)?;
    let mut doc = launched.container.doc();
    doc.status = Status::Running;
    hooks::run_warning(Kind::Poststart, &launched.spec, &doc);
    let status = launched.child.wait();
    super::delete::delete(root, id, true)?;
    Ok(status?.code())
}
