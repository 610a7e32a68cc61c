//! What tfctl keeps on disk: the state root and, per app, its record.

mod root;

pub use root::{RootError, StateRoot};
