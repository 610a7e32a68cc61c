//! The tfctl container runtime.

pub(crate) mod rootfs;
pub mod spawn;
pub mod start;
pub mod sys;
