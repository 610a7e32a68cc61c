//! `list`: every container of the root, with its state.

use super::state::{Root, StateDoc};
use super::OciError;

/// (state, created) of each container, by id.
pub fn list(root: &Root) -> Result<Vec<(StateDoc, String)>, OciError> {
    let mut out = Vec::new();
    for id in root.ids()? {
        // One that went away meanwhile is not listed.
        if let Ok(c) = root.load(&id) {
            out.push((c.doc(), c.record.created.clone()));
        }
    }
    Ok(out)
}
