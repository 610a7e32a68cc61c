//! The tfctl container runtime.

pub mod capabilities;
pub mod seccomp;
