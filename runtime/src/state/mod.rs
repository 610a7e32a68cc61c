//! What tfctl keeps on disk: the state root and, per app, its record.

pub mod files;
pub mod identity;
mod root;

pub use root::{RootError, StateRoot};
