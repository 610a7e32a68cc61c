//! The tfctl app-file model.
pub mod reference;
